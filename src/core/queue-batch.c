/* SPDX-License-Identifier: MIT */
/* Trap batching (see queue-batch.h). Loop thread only. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dev.h"
#include "queue-batch.h"

static void batch_on_bound(void *arg, uint32_t revents);

int xvdm_dev_batch(struct xvdm_dev *dev, uint32_t max_us)
{
    int ret;

    /* A device made only to be described has no loop: nothing to bound. */
    if (max_us && dev->loop && dev->batch_fd < 0) {
        dev->batch_fd = timerfd_create(CLOCK_MONOTONIC,
                                       TFD_NONBLOCK | TFD_CLOEXEC);
        if (dev->batch_fd < 0)
            return -errno;
        ret = loop_watch_owned(dev->loop, &dev->watch_share, dev->batch_fd,
                               EPOLLIN, batch_on_bound, dev);
        if (ret) {
            close(dev->batch_fd);
            dev->batch_fd = -1;
            return ret;
        }
    }
    dev->batch_ns = dev->batch_fd >= 0 ? (uint64_t)max_us * 1000 : 0;
    return 0;
}

void batch_fini(struct xvdm_dev *dev)
{
    if (dev->batch_fd < 0)
        return;
    loop_unwatch(dev->loop, dev->batch_fd);
    close(dev->batch_fd);
    dev->batch_fd = -1;
}

void batch_took(struct xvdm_queue *q)
{
    if (q->dev->batch_ns)
        q->in_flight++;
}

void batch_pushed(struct xvdm_queue *q, unsigned n)
{
    q->in_flight -= n < q->in_flight ? n : q->in_flight;
    q->done += n;
}

/* The timer goes off at `at` (monotonic ns), or not at all (0). A timer
 * that cannot be set is dom0's trouble, not the guest's: said under a
 * limit of its own (the loop thread's, for every device), which a guest's
 * errors cannot use up. */
static void batch_set_timer(struct xvdm_dev *dev, uint64_t at)
{
    static struct ratelimit rl;
    struct itimerspec t = {
        .it_value = {.tv_sec = (time_t)(at / 1000000000u),
                     .tv_nsec = (long)(at % 1000000000u)},
    };

    if (timerfd_settime(dev->batch_fd, TFD_TIMER_ABSTIME, &t, NULL) == 0)
        dev->batch_armed = at != 0;
    else
        log_ratelimited(&rl, dev->prefix, "cannot set the batch timer: %s",
                        strerror(errno));
}

/* Something starts to wait now: the timer runs, if it can. */
static bool batch_wait_from(struct xvdm_queue *q, uint64_t *since)
{
    struct xvdm_dev *dev = q->dev;
    uint64_t now = monotonic_ns();

    if (!dev->batch_armed)
        batch_set_timer(dev, now + dev->batch_ns);
    if (dev->batch_armed)
        *since = now;
    return dev->batch_armed;
}

/* Ask the driver to kick again; chains it added meanwhile are taken from
 * the loop's next turn. */
static void batch_release_kicks(struct xvdm_queue *q)
{
    if (!q->looked)
        return;
    q->looked = 0;
    q->draining = false;
    if (vq_enable_kicks(&q->vq))
        xvdm_queue_defer(q);
}

static void batch_release_interrupt(struct xvdm_queue *q)
{
    q->irq_since = 0;
    q->done = 0;
}

/* With kicks off, chains the driver added since the last look are taken
 * from the loop's next turn: a completion's chance to look at the ring
 * instead of the guest's kick. */
static void batch_look(struct xvdm_queue *q)
{
    if (!q->looked)
        return;
    q->looked = monotonic_ns();
    if (vq_has_available(&q->vq))
        xvdm_queue_defer(q);
}

bool batch_holds_kicks(struct xvdm_queue *q)
{
    if (!q->dev->batch_ns || q->in_flight == 0)
        return false;
    if (!q->looked)
        return batch_wait_from(q, &q->looked);
    q->looked = monotonic_ns(); /* the drain just found the ring empty */
    return true;
}

/* When queue q's oldest wait is up, or 0 when nothing waits. */
static uint64_t batch_due(const struct xvdm_queue *q, uint64_t bound)
{
    uint64_t since = q->irq_since;

    if (q->looked && (!since || q->looked < since))
        since = q->looked;
    return since ? since + bound : 0;
}

/* Nothing waits on any queue of the device any more: the timer stops, so
 * that a drain served at once (a disk's reads from dom0's page cache)
 * costs no wake-up of it later. */
static void batch_disarm_if_idle(struct xvdm_dev *dev)
{
    for (unsigned i = 0; i < dev->setup.num_queues; i++)
        if (batch_due(&dev->queues[i], dev->batch_ns))
            return;
    if (dev->batch_armed)
        batch_set_timer(dev, 0);
}

/* The guest gets its interrupt once as many chains are done as are still
 * in flight: a driver that refills on each interrupt (as Linux's block
 * layer does) keeps half its queue depth busy meanwhile, for one
 * interrupt per half of it rather than one per request. */
bool batch_holds_interrupt(struct xvdm_queue *q)
{
    if (!q->dev->batch_ns || q->in_flight == 0) {
        batch_release_interrupt(q);
        batch_release_kicks(q);
        if (q->dev->batch_ns)
            batch_disarm_if_idle(q->dev);
        return false;
    }
    batch_look(q);
    if (q->done >= q->in_flight) {
        batch_release_interrupt(q);
        return false;
    }
    return q->irq_since || batch_wait_from(q, &q->irq_since);
}

void batch_forget(struct xvdm_queue *q)
{
    q->in_flight = 0;
    q->done = 0;
    q->irq_since = 0;
    q->looked = 0;
}

/* What has waited until `now` goes: the interrupt, and the driver is
 * asked to kick again. When the next oldest wait is up, or 0. */
static uint64_t batch_release_due(struct xvdm_dev *dev, uint64_t now)
{
    uint64_t next = 0;

    for (unsigned i = 0; i < dev->setup.num_queues; i++) {
        struct xvdm_queue *q = &dev->queues[i];
        uint64_t due;

        if (q->irq_since && q->irq_since + dev->batch_ns <= now) {
            batch_release_interrupt(q);
            if (vq_should_signal(&q->vq))
                virtio_signal_used(dev);
        }
        if (q->looked && q->looked + dev->batch_ns <= now)
            batch_release_kicks(q);
        due = batch_due(q, dev->batch_ns);
        if (due && (!next || due < next))
            next = due;
    }
    return next;
}

/* The bound passed for some wait: what waited that long goes, and the
 * timer is set for the next oldest wait; if it cannot be, nothing may
 * wait any more. */
static void batch_on_bound(void *arg, uint32_t revents)
{
    struct xvdm_dev *dev = arg;
    uint64_t expired, next;

    if (read(dev->batch_fd, &expired, sizeof(expired)) < 0)
        return;
    dev->batch_armed = false;
    next = batch_release_due(dev, monotonic_ns());
    if (next)
        batch_set_timer(dev, next);
    if (next && !dev->batch_armed)
        batch_release_due(dev, UINT64_MAX);
}
