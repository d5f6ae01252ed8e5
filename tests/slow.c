/* SPDX-License-Identifier: MIT */
/*
 * A device module whose requests take time, as a disk's do, but exactly:
 * it takes every chain the driver makes available and completes one each
 * period=MS (default 20) after the one before, in the order taken, with
 * nothing written. batch=US is passed to xvdm_dev_batch() (default 0).
 * For the tests of trap batching (test-batch.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <xvdm/device.h>

#define SLOW_QUEUE_SIZE 16
#define SLOW_IOV_MAX 4

struct slow {
    struct xvdm_dev *dev;
    struct xvdm_queue *q;
    struct xvdm_chain chain[SLOW_QUEUE_SIZE];
    struct iovec iov[SLOW_QUEUE_SIZE][SLOW_IOV_MAX];
    unsigned first, taken; /* ring of the chains in flight */
    uint64_t period_ms;
    int timer;
};

static const char *const slow_options[] = {
    "period=MS: time between two completions, 1..1000 (default 20)",
    "batch=US: xvdm_dev_batch()'s bound, 0..1000000 (default 0: off)",
    NULL,
};

static void slow_arm(struct slow *s, bool on)
{
    struct timespec every = {.tv_sec = (time_t)(s->period_ms / 1000),
                             .tv_nsec = (long)(s->period_ms % 1000) * 1000000};
    struct itimerspec t = {.it_interval = every, .it_value = every};

    if (!on)
        t = (struct itimerspec){0};
    timerfd_settime(s->timer, 0, &t, NULL);
}

/* One period passed: the oldest chain in flight is done. */
static void slow_on_period(void *arg, uint32_t revents)
{
    struct slow *s = arg;
    uint64_t expired;

    if (read(s->timer, &expired, sizeof(expired)) < 0 || s->taken == 0)
        return;
    xvdm_queue_push(s->q, &s->chain[s->first], 0);
    s->first = (s->first + 1) % SLOW_QUEUE_SIZE;
    if (--s->taken == 0)
        slow_arm(s, false);
    xvdm_queue_notify_guest(s->q);
}

static void slow_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct slow *s = priv;
    bool idle = s->taken == 0;

    s->q = q;
    while (s->taken < SLOW_QUEUE_SIZE) {
        unsigned i = (s->first + s->taken) % SLOW_QUEUE_SIZE;

        s->chain[i] = (struct xvdm_chain){.iov = s->iov[i],
                                          .iov_cap = SLOW_IOV_MAX};
        if (xvdm_queue_next(q, &s->chain[i]) != 1)
            break;
        s->taken++;
    }
    if (idle && s->taken)
        slow_arm(s, true);
}

static void slow_destroy(void *priv)
{
    struct slow *s = priv;

    if (s->timer >= 0) {
        xvdm_dev_unwatch_fd(s->dev, s->timer);
        close(s->timer);
    }
    free(s);
}

static int slow_start(struct slow *s, const struct xvdm_options *opts)
{
    uint64_t batch_us = 0;
    int ret;

    s->period_ms = 20;
    ret = xvdm_opt_u64(s->dev, opts, "period", 1, 1000, &s->period_ms);
    if (ret == 0)
        ret = xvdm_opt_u64(s->dev, opts, "batch", 0, 1000000, &batch_us);
    if (ret == 0)
        ret = xvdm_dev_batch(s->dev, (uint32_t)batch_us);
    if (ret)
        return ret;
    s->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->timer < 0)
        return -errno;
    return xvdm_dev_watch_fd(s->dev, s->timer, EPOLLIN, slow_on_period, s);
}

static int slow_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                       struct xvdm_device_setup *setup, void **priv)
{
    struct slow *s = calloc(1, sizeof(*s));
    int ret;

    if (!s)
        return -ENOMEM;
    s->dev = dev;
    s->timer = -1;
    ret = slow_start(s, opts);
    if (ret) {
        slow_destroy(s);
        return ret;
    }
    setup->num_queues = 1;
    setup->queue_size_max[0] = SLOW_QUEUE_SIZE;
    *priv = s;
    return 0;
}

/* The chains in flight belong to rings that are gone: forgotten. */
static void slow_reset(void *priv)
{
    struct slow *s = priv;

    s->taken = 0;
    slow_arm(s, false);
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "slow",
    .summary = "test device: completes a chain every period, in order",
    .device_id = 4, /* the entropy device's: any id will do */
    .options = slow_options,
    .create = slow_create,
    .destroy = slow_destroy,
    .queue_notify = slow_queue_notify,
    .reset = slow_reset,
};
