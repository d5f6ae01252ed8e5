/* SPDX-License-Identifier: MIT */
/* Test side: xvdm on the sim, in-process (see harness.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "harness.h"
#include "vdriver.h"
#include "hv.h"
#include "log.h"
#include "loop.h"
#include "module.h"
#include "vm.h"

static void *harness_loop_thread(void *arg)
{
    struct harness *h = arg;

    h->loop_ret = loop_run(h->loop);
    return NULL;
}

static int harness_parse(struct harness *h, const char *const *specs,
                         unsigned n)
{
    char err[256];
    int ret;

    if (n > HARNESS_DEVICES_MAX)
        return -E2BIG;
    for (unsigned i = 0; i < n; i++) {
        ret = devspec_parse(specs[i], &h->specs[i], err, sizeof(err));
        if (ret) {
            log_err("%s", err);
            return ret;
        }
        if (vdriver_grants() && !h->specs[i].grants_given)
            h->specs[i].grants = true;
        h->nr_specs = i + 1;
    }
    ret = devspec_assign_layout(h->specs, n, err, sizeof(err));
    if (ret)
        log_err("%s", err);
    return ret;
}

static void harness_on_sighup(void *arg, uint32_t revents)
{
    struct harness *h = arg;
    struct signalfd_siginfo si;

    if (read(h->sighup_fd, &si, sizeof(si)) == sizeof(si))
        vm_reload(h->vm);
}

/* Blocked before the vm starts any thread, so that none dies of it. */
static int harness_block_sighup(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int harness_watch_sighup(struct harness *h)
{
    sigset_t set;
    int ret;

    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    h->sighup_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (h->sighup_fd < 0)
        return -errno;
    ret = loop_watch(h->loop, h->sighup_fd, EPOLLIN, harness_on_sighup, h);
    if (ret)
        close(h->sighup_fd);
    h->sighup_watched = ret == 0;
    return ret;
}

/* Does the sim host offer the fast path ($XVDM_TEST_FASTPATH=1)? */
static bool harness_fast_path(void)
{
    const char *v = getenv("XVDM_TEST_FASTPATH");

    return v && strcmp(v, "1") == 0;
}

struct sim_config harness_sim_config(unsigned nr_vcpus)
{
    return (struct sim_config){.domid = 1,
                               .nr_vcpus = nr_vcpus,
                               .ram_size = HARNESS_RAM_SIZE,
                               .pinnable_ram = vdriver_grants(),
                               .eventfds = harness_fast_path()};
}

static int harness_create(struct harness *h, const struct sim_config *cfg)
{
    h->sim = sim_create(cfg);
    h->loop = loop_create();
    return h->sim && h->loop ? 0 : -errno;
}

/* xvdm's options for the guest: the test modules' directory, and
 * $XVDM_TEST_GRANT_PAGES as --grant-pages. */
static struct vm_options harness_vm_options(void)
{
    const char *pages = getenv("XVDM_TEST_GRANT_PAGES");

    return (struct vm_options){
        .module_dir = module_default_dir(),
        .grant_pages = pages ? strtoull(pages, NULL, 10) : 0,
    };
}

int harness_setup(struct harness *h, const struct devspec *specs, unsigned n)
{
    struct sim_config cfg = harness_sim_config(h->nr_vcpus ? h->nr_vcpus : 1);
    struct vm_options opts = harness_vm_options();
    int ret;

    ret = h->sim ? 0 : harness_create(h, &cfg);
    if (ret == 0)
        ret = harness_block_sighup();
    if (ret == 0)
        ret = vm_create(&h->vm, sim_hv(h->sim), h->loop, h->store, specs, n,
                        &opts);
    if (ret == 0)
        ret = harness_watch_sighup(h);
    if (ret)
        harness_stop(h);
    return ret;
}

int harness_run(struct harness *h)
{
    int ret = -pthread_create(&h->thread, NULL, harness_loop_thread, h);

    if (ret)
        harness_stop(h);
    h->running = ret == 0;
    return ret;
}

int harness_start(struct harness *h, const char *const *specs, unsigned n)
{
    return harness_start_vcpus(h, specs, n, 1);
}

int harness_start_vcpus(struct harness *h, const char *const *specs,
                        unsigned n, unsigned nr_vcpus)
{
    struct sim_config cfg = harness_sim_config(nr_vcpus);

    return harness_start_sim(h, specs, n, &cfg);
}

int harness_start_sim(struct harness *h, const char *const *specs,
                      unsigned n, const struct sim_config *cfg)
{
    int ret;

    memset(h, 0, sizeof(*h));
    h->nr_vcpus = cfg->nr_vcpus;
    ret = harness_create(h, cfg);
    if (ret == 0)
        ret = harness_parse(h, specs, n);
    if (ret) {
        harness_stop(h);
        return ret;
    }
    ret = harness_setup(h, h->specs, n);
    return ret ? ret : harness_run(h);
}

void harness_halt(struct harness *h)
{
    if (h->running) {
        loop_stop(h->loop);
        pthread_join(h->thread, NULL);
        h->running = false;
    }
    if (h->sighup_watched) {
        loop_unwatch(h->loop, h->sighup_fd);
        close(h->sighup_fd);
        h->sighup_watched = false;
    }
    vm_destroy(h->vm);
    h->vm = NULL;
    if (h->sim && !h->hv_closed)
        hv_close(sim_hv(h->sim));
    h->hv_closed = true;
}

void harness_stop(struct harness *h)
{
    harness_halt(h);
    /* What Linux would call "Grant still in use": a device that broke. */
    if (h->sim && sim_revokes_refused(h->sim)) {
        log_err("%u grants were still mapped when the guest ended them",
                sim_revokes_refused(h->sim));
        abort();
    }
    loop_destroy(h->loop);
    sim_destroy(h->sim);
    for (unsigned i = 0; i < h->nr_specs; i++)
        devspec_free(&h->specs[i]);
    memset(h, 0, sizeof(*h));
}
