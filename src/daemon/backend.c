/* SPDX-License-Identifier: MIT */
/* xvdm as the XenBus backend of a guest's virtio devices (see backend.h). */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <time.h>

#include "backend.h"
#include "devspec.h"
#include "log.h"
#include "loop.h"
#include "store.h"
#include "xl-devices.h"

/* XenBus states (xen/io/xenbus.h). */
#define XENBUS_STATE_INIT_WAIT "2"
#define XENBUS_STATE_CLOSING 5
#define XENBUS_STATE_CLOSED "6"

#define TOKEN_STATE "state"
#define TOKEN_RELEASE "release"
#define TOKEN_DECLARED "declared"

struct backend {
    struct store *st;
    uint32_t domid;
    uint32_t backend_domid; /* ours, as xenstore knows it */
    struct loop *loop;
    bool watching;
    void (*on_gone)(void *arg);
    void *arg;
    bool gone;
    /* specs[0 .. nr_xl) came from xenstore: their text is their backend
     * directory. The command line's follow. */
    unsigned nr_xl;
    unsigned nr_specs;
    struct devspec specs[BACKEND_DEVICES_MAX];
    bool warned_closing[BACKEND_DEVICES_MAX];
};

/* ---- the device list ------------------------------------------------------- */

/* Both say grants= (dev from grant_usage), and not the same. */
static bool backend_grants_disagree(const struct devspec *from,
                                    const struct devspec *dev)
{
    return from->grants_given && dev->grants_given &&
           from->grants != dev->grants;
}

/* from sets none of the options dev already has, nor another memory
 * mode. */
static bool backend_can_back(const struct devspec *from,
                             const struct devspec *dev)
{
    if (backend_grants_disagree(from, dev))
        return false;
    for (unsigned k = 0; k < from->opts.nr; k++)
        if (xvdm_opt_get(&dev->opts, from->opts.kv[k].key))
            return false;
    return true;
}

/* The given device a xenstore device takes its options from: same type,
 * no layout of its own, not taken yet, and one that sets none of the
 * options the device has, so that path= backs a virtio = [...] disk
 * rather than a 4.17 disk (whose path is the xl config's). With
 * `any_cli`, a command-line one that does (to be refused as given twice);
 * a guest file's line waits for a device it can back. */
static int backend_find_backing(const struct devspec *given, unsigned nr,
                                const bool *taken, const struct devspec *dev,
                                bool any_cli)
{
    for (unsigned i = 0; i < nr; i++) {
        if (taken[i] || given[i].base_given || given[i].irq_given ||
            strcmp(given[i].type, dev->type) != 0)
            continue;
        if (backend_can_back(&given[i], dev) ||
            (any_cli && !given[i].backs_declared_only))
            return (int)i;
    }
    return -1;
}

/* The toolstack's grant_usage shaped the guest's device tree (libxl adds
 * xen,grant-dma only with 1), so the guest's driver gives grants or guest
 * addresses accordingly: a line cannot change that, only say the same.
 * Where xenstore says nothing (a Xen 4.17 disk), the line decides. */
static int backend_adopt_grants(struct devspec *spec,
                                const struct devspec *from)
{
    if (!from->grants_given)
        return 0;
    if (backend_grants_disagree(from, spec)) {
        log_err("'%s': grants=%s, but '%s' has grant_usage=%d in xenstore",
                from->text, from->grants ? "on" : "off", spec->text,
                spec->grants);
        return -EINVAL;
    }
    spec->grants = from->grants;
    spec->grants_given = true;
    return 0;
}

static int backend_adopt_options(struct devspec *spec,
                                  const struct devspec *from)
{
    char err[512];
    int ret = backend_adopt_grants(spec, from);

    for (unsigned k = 0; k < from->opts.nr && ret == 0; k++) {
        ret = devspec_add_option(spec, from->opts.kv[k].key,
                                 from->opts.kv[k].value, err, sizeof(err));
        if (ret)
            log_err("%s", err);
    }
    if (ret == 0)
        log_info("'%s': %s with the options of '%s'", spec->text,
                 spec->type, from->text);
    return ret;
}

/* The command line's devices: re-parsed, so that b owns its specs. */
static int backend_add_cli(struct backend *b, const struct devspec *cli,
                           unsigned nr_cli, const bool *taken)
{
    char err[512];

    for (unsigned i = 0; i < nr_cli; i++) {
        if (taken[i])
            continue;
        if (cli[i].backs_declared_only) {
            /* Under the supervisor the instance starts again once the
             * guest declares more devices. */
            log_info("'%s' backs none of the devices the guest declared "
                     "yet: left out", cli[i].text);
            continue;
        }
        if (b->nr_specs == BACKEND_DEVICES_MAX) {
            log_err("more than %d devices", BACKEND_DEVICES_MAX);
            return -E2BIG;
        }
        if (devspec_parse(cli[i].text, &b->specs[b->nr_specs], err,
                          sizeof(err))) {
            log_err("%s", err);
            return -EINVAL;
        }
        b->nr_specs++;
    }
    return 0;
}

static int backend_read_xl(struct backend *b, const char *module_dir,
                           const struct devspec *cli, unsigned nr_cli,
                           bool *taken)
{
    struct xl_device xl[BACKEND_DEVICES_MAX];
    int from[BACKEND_DEVICES_MAX];
    char err[512];
    int ret;

    ret = xl_devices_read(b->st, b->backend_domid, b->domid, module_dir, xl,
                          BACKEND_DEVICES_MAX, &b->nr_xl, err, sizeof(err));
    if (ret) {
        log_err("domain %u: %s", b->domid, err);
        return ret;
    }
    /* First the given devices that set nothing a declared one has, then
     * command-line ones that do (refused as given twice). */
    for (unsigned i = 0; i < b->nr_xl; i++) {
        b->specs[b->nr_specs++] = xl[i].spec;
        from[i] = -1;
    }
    for (int any = 0; any < 2; any++)
        for (unsigned i = 0; i < b->nr_xl; i++) {
            if (from[i] >= 0)
                continue;
            from[i] = backend_find_backing(cli, nr_cli, taken, &b->specs[i],
                                           any);
            if (from[i] >= 0)
                taken[from[i]] = true;
        }
    for (unsigned i = 0; i < b->nr_xl && ret == 0; i++)
        if (from[i] >= 0)
            ret = backend_adopt_options(&b->specs[i], &cli[from[i]]);
    return ret;
}

/* Where devices of the command line publish: QEMU's convention for a
 * device model's own nodes, one directory more for xvdm's. */
static void backend_dm_dir(const struct backend *b, char *path, size_t len)
{
    snprintf(path, len, "/local/domain/%u/device-model/%u/xvdm",
             b->backend_domid, b->domid);
}

/* Each device's directory for xvdm_dev_publish(): its backend directory
 * when libxl declared it, else one named like the device under
 * backend_dm_dir(). */
static int backend_set_nodes(struct backend *b)
{
    char dm[256];

    backend_dm_dir(b, dm, sizeof(dm));
    for (unsigned i = 0; i < b->nr_specs; i++) {
        struct devspec *s = &b->specs[i];
        int ret = i < b->nr_xl ? asprintf(&s->node, "%s", s->text)
                               : asprintf(&s->node, "%s/%s%u", dm, s->type,
                                          devspec_type_index(b->specs, i));

        if (ret < 0) {
            s->node = NULL;
            return -ENOMEM;
        }
    }
    return 0;
}

int backend_open(struct backend **out, struct store *st, uint32_t domid,
                 const char *module_dir, const struct devspec *cli,
                 unsigned nr_cli)
{
    bool taken[BACKEND_DEVICES_MAX] = {false};
    struct backend *b;
    char err[512];
    int ret;

    if (nr_cli > BACKEND_DEVICES_MAX)
        return -E2BIG;
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->st = st;
    b->domid = domid;
    b->backend_domid = xl_backend_domid(st);
    ret = backend_read_xl(b, module_dir, cli, nr_cli, taken);
    if (ret == 0)
        ret = backend_add_cli(b, cli, nr_cli, taken);
    if (ret == 0 && b->nr_specs == 0) {
        log_err("domain %u: no virtio devices in xenstore and none given "
                "with --device", domid);
        ret = -ENOENT;
    }
    if (ret == 0 &&
        devspec_assign_layout(b->specs, b->nr_specs, err, sizeof(err))) {
        log_err("%s", err);
        ret = -EINVAL;
    }
    if (ret == 0)
        ret = backend_set_nodes(b);
    if (ret) {
        backend_close(b);
        return ret;
    }
    *out = b;
    return 0;
}

static uint64_t backend_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Until a device of the guest's is in xenstore (0), the guest died
 * (-ESRCH) or wait_ms passed (-ETIMEDOUT), woken by xenstore's watches. */
static int backend_wait_declared(struct store *st, uint32_t self,
                                 uint32_t domid, unsigned wait_ms)
{
    /* One more: the clock counts whole ms, so "now" may be most of one
     * past it, and the wait would end up to 1 ms short. */
    uint64_t deadline = backend_now_ms() + wait_ms + 1;
    char dir[256], **block;
    int ret;

    snprintf(dir, sizeof(dir), "/local/domain/%u/backend", self);
    ret = store_watch(st, dir, TOKEN_DECLARED);
    if (ret == 0)
        ret = store_watch(st, "@releaseDomain", TOKEN_RELEASE);
    while (ret == 0 && !xl_devices_declared(st, self, domid)) {
        struct pollfd p = {.fd = store_fd(st), .events = POLLIN};
        uint64_t now = backend_now_ms();

        if (!store_domain_exists(st, domid))
            ret = -ESRCH;
        else if (now >= deadline)
            ret = -ETIMEDOUT;
        else if (poll(&p, 1, (int)(deadline - now)) < 0 && errno != EINTR)
            ret = -errno;
        while (ret == 0 && store_next_event(st, &block) == 1)
            free(block);
    }
    store_unwatch(st, "@releaseDomain", TOKEN_RELEASE);
    store_unwatch(st, dir, TOKEN_DECLARED);
    return ret;
}

int backend_wait_for_devices(struct store *st, uint32_t domid,
                             unsigned wait_ms)
{
    uint32_t self = xl_backend_domid(st);
    int ret;

    if (xl_devices_declared(st, self, domid))
        return 0;
    log_info("domain %u: no virtio devices in xenstore yet: waiting up to "
             "%u ms for the toolstack to write them", domid, wait_ms);
    ret = backend_wait_declared(st, self, domid, wait_ms);
    if (ret == -ESRCH)
        log_err("domain %u died while xvdm waited for its devices", domid);
    return ret == -ESRCH ? ret : 0;
}

const struct devspec *backend_specs(const struct backend *b, unsigned *n)
{
    *n = b->nr_specs;
    return b->specs;
}

/* ---- the handshake ------------------------------------------------------------ */

static void backend_state_path(const struct backend *b, unsigned i,
                               char *path, size_t len)
{
    snprintf(path, len, "%s/state", b->specs[i].text);
}

/* Is device i closing? A removed device counts as closed. */
static bool backend_device_closing(const struct backend *b, unsigned i)
{
    char path[512], *state;
    bool closing;

    backend_state_path(b, i, path, sizeof(path));
    state = store_read(b->st, path);
    closing = !state || atoi(state) >= XENBUS_STATE_CLOSING;
    free(state);
    return closing;
}

/* Say once per device that it is closing; while others stay, it cannot
 * go away (no hot-unplug). libxl closes a dying guest's devices one by
 * one, so this is not a warning: a detach that never completes is what
 * the user sees from xl. */
static void backend_report_closing(struct backend *b, const bool *closing,
                                   bool all)
{
    for (unsigned i = 0; i < b->nr_xl; i++) {
        if (!closing[i] || b->warned_closing[i])
            continue;
        b->warned_closing[i] = true;
        if (all)
            log_info("'%s': the toolstack is closing it", b->specs[i].text);
        else
            log_info("'%s': the toolstack is closing it; virtio-mmio has "
                     "no hot-unplug, so it is served until all of domain "
                     "%u's devices close",
                     b->specs[i].text, b->domid);
    }
}

static bool backend_all_closing(struct backend *b)
{
    bool closing[BACKEND_DEVICES_MAX], all = true;

    for (unsigned i = 0; i < b->nr_xl; i++) {
        closing[i] = backend_device_closing(b, i);
        all &= closing[i];
    }
    backend_report_closing(b, closing, all);
    return all;
}

static void backend_gone(struct backend *b, const char *why)
{
    if (b->gone)
        return;
    b->gone = true;
    log_info("domain %u: %s; letting go of it", b->domid, why);
    b->on_gone(b->arg);
}

static void backend_event(struct backend *b, const char *token)
{
    if (strcmp(token, TOKEN_RELEASE) == 0) {
        if (!store_domain_exists(b->st, b->domid))
            backend_gone(b, "the domain is gone");
    } else if (b->nr_xl > 0 && backend_all_closing(b)) {
        backend_gone(b, "the toolstack is closing its devices");
    }
}

static void backend_on_store(void *arg, uint32_t revents)
{
    struct backend *b = arg;
    char **block;
    int ret;

    while ((ret = store_next_event(b->st, &block)) == 1) {
        backend_event(b, block[STORE_EVENT_TOKEN]);
        free(block);
    }
    if (ret < 0)
        log_warn("domain %u: reading xenstore watch events: %s", b->domid,
                 strerror(-ret));
}

static int backend_watch_all(struct backend *b)
{
    char path[512];
    int ret;

    ret = store_watch(b->st, "@releaseDomain", TOKEN_RELEASE);
    for (unsigned i = 0; i < b->nr_xl && ret == 0; i++) {
        backend_state_path(b, i, path, sizeof(path));
        ret = store_watch(b->st, path, TOKEN_STATE);
    }
    return ret;
}

static void backend_unwatch_all(struct backend *b)
{
    char path[512];

    store_unwatch(b->st, "@releaseDomain", TOKEN_RELEASE);
    for (unsigned i = 0; i < b->nr_xl; i++) {
        backend_state_path(b, i, path, sizeof(path));
        store_unwatch(b->st, path, TOKEN_STATE);
    }
}

/* Write `state` to every xenstore device whose state node still exists:
 * writing a removed one would bring its directory back. */
static int backend_set_state(struct backend *b, const char *state)
{
    char path[512], *old;
    int ret = 0;

    for (unsigned i = 0; i < b->nr_xl && ret == 0; i++) {
        backend_state_path(b, i, path, sizeof(path));
        old = store_read(b->st, path);
        if (old)
            ret = store_write(b->st, path, state);
        if (ret)
            log_err("cannot write '%s': %s", path, strerror(-ret));
        free(old);
    }
    return ret;
}

int backend_start(struct backend *b, struct loop *loop,
                  void (*on_gone)(void *arg), void *arg)
{
    int ret;

    b->on_gone = on_gone;
    b->arg = arg;
    ret = loop_watch(loop, store_fd(b->st), EPOLLIN, backend_on_store, b);
    if (ret) {
        log_err("cannot watch xenstore: %s", strerror(-ret));
        return ret;
    }
    b->loop = loop;
    ret = backend_watch_all(b);
    b->watching = true;
    if (ret) {
        log_err("domain %u: cannot watch its xenstore nodes: %s", b->domid,
                strerror(-ret));
        return ret;
    }
    return backend_set_state(b, XENBUS_STATE_INIT_WAIT);
}

/* The devices removed their own keys; the directories they were in go
 * too, or tools would find a device model that is no more. */
static void backend_remove_dm_dir(struct backend *b)
{
    char dm[256];
    int ret;

    if (b->nr_specs == b->nr_xl)
        return;
    backend_dm_dir(b, dm, sizeof(dm));
    ret = store_rm(b->st, dm);
    if (ret && ret != -ENOENT)
        log_warn("cannot remove %s: %s", dm, strerror(-ret));
}

static void backend_free(struct backend *b, bool closed)
{
    if (!b)
        return;
    if (b->watching)
        backend_unwatch_all(b);
    if (b->loop)
        loop_unwatch(b->loop, store_fd(b->st));
    if (b->watching && closed)
        backend_set_state(b, XENBUS_STATE_CLOSED);
    backend_remove_dm_dir(b);
    for (unsigned i = 0; i < b->nr_specs; i++)
        devspec_free(&b->specs[i]);
    free(b);
}

void backend_close(struct backend *b)
{
    backend_free(b, true);
}

void backend_hand_over(struct backend *b)
{
    backend_free(b, false);
}
