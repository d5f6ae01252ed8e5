/* SPDX-License-Identifier: MIT */
/*
 * Device instances and the functions of the device-module ABI
 * (<xvdm/device.h>): options, logging, queues and signalling, mapped onto
 * the virtqueue, transport and loop layers.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dev.h"
#include "loop.h"
#include "queue-batch.h"

/* Bits 24..40 belong to the transport (VIRTIO 1.2 §6): a module may not
 * offer them, or a driver could negotiate a ring format xvdm lacks. */
#define DEV_TRANSPORT_RESERVED_BITS                                           \
    ((uint64_t)(((1ULL << 41) - 1) & ~((1ULL << 24) - 1)))

/* ---- options ---------------------------------------------------------- */

/* Does `key` name one of the module's "key=VALUE: help" entries? */
static bool option_known(const char *const *known, const char *key)
{
    size_t len = strlen(key);

    for (; known && *known; known++)
        if (strncmp(*known, key, len) == 0 && (*known)[len] == '=')
            return true;
    return false;
}

static void option_names(const char *const *known, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (; known && *known && used < size; known++) {
        int n = snprintf(buf + used, size - used, "%s%.*s", used ? ", " : "",
                         (int)strcspn(*known, "="), *known);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int dev_check_options(const struct xvdm_device_ops *ops,
                      const struct xvdm_options *opts)
{
    char names[256];

    for (unsigned i = 0; i < opts->nr; i++) {
        if (option_known(ops->options, opts->kv[i].key))
            continue;
        option_names(ops->options, names, sizeof(names));
        log_err("device %s: unknown option '%s' (accepted: %s)", ops->name,
                opts->kv[i].key, names[0] ? names : "none");
        return -EINVAL;
    }
    return 0;
}

const char *xvdm_opt_get(const struct xvdm_options *opts, const char *key)
{
    for (unsigned i = 0; i < opts->nr; i++)
        if (strcmp(opts->kv[i].key, key) == 0)
            return opts->kv[i].value;
    return NULL;
}

int xvdm_opt_bool(struct xvdm_dev *dev, const struct xvdm_options *opts,
                  const char *key, bool *out)
{
    static const char *const yes[] = {"on", "yes", "true", "1"};
    static const char *const no[] = {"off", "no", "false", "0"};
    const char *v = xvdm_opt_get(opts, key);

    if (!v)
        return 0;
    for (unsigned i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    xvdm_dev_log(dev, XVDM_LOG_ERROR, "%s='%s' is not on or off", key, v);
    return -EINVAL;
}

/* k, M, G, T: binary multiples, as sizes are usually given. */
static int suffix_shift(const char *s, unsigned *shift)
{
    static const char units[] = "kmgt";
    const char *u;

    if (*s == '\0') {
        *shift = 0;
        return 0;
    }
    u = strchr(units, s[0] | 0x20);
    if (!u || s[1] != '\0')
        return -EINVAL;
    *shift = 10 * (unsigned)(u - units + 1);
    return 0;
}

int xvdm_opt_u64(struct xvdm_dev *dev, const struct xvdm_options *opts,
                 const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = xvdm_opt_get(opts, key);
    unsigned long long n;
    unsigned shift;
    char *end;

    if (!v)
        return 0;
    errno = 0;
    n = strtoull(v, &end, 0);
    if (errno || end == v || v[0] == '-' || suffix_shift(end, &shift)) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR, "%s='%s' is not a number", key, v);
        return -EINVAL;
    }
    if ((shift && n > (UINT64_MAX >> shift)) || (n << shift) < min ||
        (n << shift) > max) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR,
                     "%s='%s' is out of range [%" PRIu64 ", %" PRIu64 "]",
                     key, v, min, max);
        return -ERANGE;
    }
    *out = n << shift;
    return 0;
}

/* ---- device instances --------------------------------------------------- */

static bool power_of_two(unsigned n)
{
    return n && !(n & (n - 1));
}

/* A module's setup is code we did not write: check it like input. */
static int setup_check(const struct xvdm_dev *dev)
{
    const struct xvdm_device_setup *s = &dev->setup;

    if (s->num_queues == 0 || s->num_queues > XVDM_QUEUES_MAX) {
        log_err("%sdevice module set up %u queues (1..%u allowed)",
                dev->prefix, s->num_queues, XVDM_QUEUES_MAX);
        return -EINVAL;
    }
    for (unsigned i = 0; i < s->num_queues; i++) {
        if (!power_of_two(s->queue_size_max[i]) ||
            s->queue_size_max[i] > XVDM_QUEUE_SIZE_MAX) {
            log_err("%sdevice module gave queue %u size %u (a power of two "
                    "up to %u needed)", dev->prefix, i, s->queue_size_max[i],
                    XVDM_QUEUE_SIZE_MAX);
            return -EINVAL;
        }
    }
    if (s->config_size > XVDM_CONFIG_SIZE_MAX ||
        (s->config_size && !dev->ops->config_read)) {
        log_err("%sdevice module has %u bytes of config space (at most %u, "
                "with config_read)", dev->prefix, s->config_size,
                XVDM_CONFIG_SIZE_MAX);
        return -EINVAL;
    }
    if (s->features & DEV_TRANSPORT_RESERVED_BITS) {
        log_err("%sdevice module offers transport feature bits 0x%" PRIx64,
                dev->prefix, s->features & DEV_TRANSPORT_RESERVED_BITS);
        return -EINVAL;
    }
    return 0;
}

static void dev_queue_fault(void *opaque, const char *what)
{
    struct xvdm_queue *q = opaque;

    xvdm_dev_guest_error(q->dev, "queue %u: %s", q->index, what);
    xvdm_dev_needs_reset(q->dev);
}

static void dev_queues_init(struct xvdm_dev *dev)
{
    for (unsigned i = 0; i < dev->setup.num_queues; i++) {
        struct xvdm_queue *q = &dev->queues[i];

        q->dev = dev;
        q->index = (uint16_t)i;
        q->vq.num_max = dev->setup.queue_size_max[i];
        q->vq.on_fault = dev_queue_fault;
        q->vq.fault_opaque = q;
    }
}

/* The device and what it holds of its own; ops->destroy() is the
 * caller's. */
static void dev_free(struct xvdm_dev *dev)
{
    batch_fini(dev);
    if (dev->defer_fd >= 0) {
        loop_unwatch(dev->loop, dev->defer_fd);
        close(dev->defer_fd);
    }
    if (dev->loop)
        loop_owner_remove(dev->loop, &dev->watch_share);
    dev_unpublish(dev);
    dev_withdraw_links(dev);
    free(dev->node);
    free(dev);
}

int dev_create(struct xvdm_dev **out, const struct xvdm_device_ops *ops,
               const struct xvdm_options *opts, unsigned index, uint32_t domid,
               struct loop *loop, struct store *st, const char *node)
{
    struct xvdm_dev *dev;
    int ret;

    ret = dev_check_options(ops, opts);
    if (ret)
        return ret;
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        return -ENOMEM;
    dev->ops = ops;
    dev->domid = domid;
    dev->loop = loop;
    dev->loop_turn = loop ? loop_turn(loop) : NULL;
    dev->defer_fd = -1;
    dev->batch_fd = -1;
    if (st && node) {
        dev->store = st;
        dev->node = strdup(node);
        if (!dev->node) {
            free(dev);
            return -ENOMEM;
        }
    }
    if (loop) {
        loop_owner_add(loop, &dev->watch_share);
        ret = virtio_defer_init(dev);
        if (ret) {
            dev_free(dev);
            return ret;
        }
    }
    snprintf(dev->name, sizeof(dev->name), "%s%u", ops->name, index);
    snprintf(dev->prefix, sizeof(dev->prefix), "%s: ", dev->name);

    ret = ops->create(dev, opts, &dev->setup, &dev->priv);
    if (ret) {
        dev_free(dev);
        return ret < 0 ? ret : -EINVAL;
    }
    ret = setup_check(dev);
    if (ret) {
        ops->destroy(dev->priv);
        dev_free(dev);
        return ret;
    }
    dev->offered = dev->setup.features | DEV_TRANSPORT_FEATURES;
    dev_queues_init(dev);
    *out = dev;
    return 0;
}

void dev_queue_reset(struct xvdm_queue *q)
{
    vq_reset(&q->vq);
    q->draining = false;
    q->starved = false;
    batch_forget(q);
}

void dev_destroy(struct xvdm_dev *dev)
{
    if (!dev)
        return;
    if (dev->attached)
        virtio_reset(dev);
    else
        dev->ops->reset(dev->priv);
    dev->ops->destroy(dev->priv);
    dev_free(dev);
}

void dev_reload(struct xvdm_dev *dev)
{
    /* A version 1 table ends before reload: nothing to read there. */
    if (dev->ops->abi_version >= 2 && dev->ops->reload)
        dev->ops->reload(dev->priv);
}

uint32_t xvdm_dev_domid(const struct xvdm_dev *dev)
{
    return dev->domid;
}

const char *xvdm_dev_name(const struct xvdm_dev *dev)
{
    return dev->name;
}

uint64_t xvdm_dev_features(const struct xvdm_dev *dev)
{
    return dev->negotiated;
}

struct xvdm_queue *xvdm_dev_queue(struct xvdm_dev *dev, unsigned index)
{
    return index < dev->setup.num_queues ? &dev->queues[index] : NULL;
}

void xvdm_dev_log(struct xvdm_dev *dev, enum xvdm_log_level level,
                  const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg((enum log_level)level, dev->prefix, fmt, ap);
    va_end(ap);
}

void xvdm_dev_guest_error(struct xvdm_dev *dev, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vratelimited(&dev->guest_rl, dev->prefix, fmt, ap);
    va_end(ap);
}

void xvdm_dev_needs_reset(struct xvdm_dev *dev)
{
    if (dev->attached)
        virtio_needs_reset(dev);
}

void xvdm_dev_config_changed(struct xvdm_dev *dev)
{
    if (dev->attached)
        virtio_config_changed(dev);
}

int xvdm_dev_watch_fd(struct xvdm_dev *dev, int fd, uint32_t events,
                      void (*cb)(void *arg, uint32_t revents), void *arg)
{
    return loop_watch_owned(dev->loop, &dev->watch_share, fd, events, cb,
                            arg);
}

int xvdm_dev_modify_fd(struct xvdm_dev *dev, int fd, uint32_t events)
{
    return loop_modify(dev->loop, fd, events);
}

int xvdm_dev_unwatch_fd(struct xvdm_dev *dev, int fd)
{
    return loop_unwatch(dev->loop, fd);
}
