/* SPDX-License-Identifier: MIT */
/* The virtio device core (see virtio.h), and the device ABI's queue
 * functions: the one drain policy, its bound per loop turn, deferral. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dev.h"
#include "loop.h"
#include "queue-batch.h"
#include "virtio.h"

/* Status bits the driver may set; NEEDS_RESET is the device's. */
#define VIRTIO_DRIVER_STATUS_BITS                                             \
    (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |                       \
     VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |                    \
     VIRTIO_STATUS_FAILED)

void virtio_attach(struct xvdm_dev *dev, const struct gaccess *ga,
                   const struct virtio_transport *t)
{
    dev->ga = *ga;
    dev->transport = *t;
    dev->attached = true;
    if (gaccess_grants(ga))
        dev->offered |= 1ULL << VIRTIO_F_ACCESS_PLATFORM;
}

static bool virtio_has(const struct xvdm_dev *dev, uint32_t bit)
{
    return dev->status & bit;
}

bool virtio_serving(const struct xvdm_dev *dev)
{
    return virtio_has(dev, VIRTIO_STATUS_DRIVER_OK) &&
           !virtio_has(dev, VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- interrupts ------------------------------------------------------- */

/* An event the guest has not read of yet (its bit raised since the last
 * InterruptStatus read) has an interrupt on its way: the guest's handler
 * will read the bit, then look at every queue, so a second event of that
 * kind rides on the same interrupt. Raising it again would only have the
 * guest take one more interrupt, read nothing new and ACK it: two traps
 * for nothing. */
static void virtio_interrupt(struct xvdm_dev *dev, uint32_t bit)
{
    dev->isr |= bit;
    if (dev->isr_fresh & bit)
        return;
    if (dev->transport.interrupt(dev->transport.ctx) == 0)
        dev->isr_fresh |= bit;
}

uint32_t virtio_isr_read(struct xvdm_dev *dev)
{
    dev->isr_fresh = 0;
    return dev->isr;
}

/* The driver acknowledges what it read: an event raised since has an
 * interrupt of its own on its way, so its bit stays set. That makes an ACK
 * the host answered (mmio-fast.h) safe to apply late, after such an event:
 * clearing its bit then would leave the guest an interrupt with nothing
 * to say and, the event's being suppressed by then (virtio_interrupt()),
 * no other. Nothing else to do: the transport's lines are edge-triggered. */
void virtio_isr_ack(struct xvdm_dev *dev, uint32_t bits)
{
    dev->isr &= ~(bits & ~dev->isr_fresh);
}

void virtio_signal_used(struct xvdm_dev *dev)
{
    virtio_interrupt(dev, VIRTIO_ISR_VRING);
}

void virtio_config_changed(struct xvdm_dev *dev)
{
    dev->config_generation++;
    virtio_interrupt(dev, VIRTIO_ISR_CONFIG);
}

/* VIRTIO 1.2 §2.1.2: after setting NEEDS_RESET with DRIVER_OK set, the
 * device must send a configuration change notification. */
void virtio_needs_reset(struct xvdm_dev *dev)
{
    if (virtio_has(dev, VIRTIO_STATUS_NEEDS_RESET))
        return;
    dev->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (virtio_has(dev, VIRTIO_STATUS_DRIVER_OK))
        virtio_interrupt(dev, VIRTIO_ISR_CONFIG);
}

/* ---- status and features ------------------------------------------------ */

uint32_t virtio_status(const struct xvdm_dev *dev)
{
    return dev->status;
}

void virtio_reset(struct xvdm_dev *dev)
{
    /* The device lets go of every chain before its queues are forgotten. */
    dev->ops->reset(dev->priv);
    for (unsigned i = 0; i < dev->setup.num_queues; i++)
        dev_queue_reset(&dev->queues[i]);
    dev->isr = dev->isr_fresh = 0;
    dev->status = 0;
    dev->driver_features = 0;
    dev->negotiated = 0;
}

uint32_t virtio_device_features(const struct xvdm_dev *dev, uint32_t half)
{
    return half < 2 ? (uint32_t)(dev->offered >> (32 * half)) : 0;
}

/* Features are fixed once FEATURES_OK is set (§3.1.1). */
void virtio_set_driver_features(struct xvdm_dev *dev, uint32_t half,
                                uint32_t value)
{
    unsigned shift = 32 * half;

    if (half > 1 || virtio_has(dev, VIRTIO_STATUS_FEATURES_OK))
        return;
    dev->driver_features = (dev->driver_features & ~(0xffffffffULL << shift)) |
                           ((uint64_t)value << shift);
}

/* FEATURES_OK is kept only for a subset of what was offered that includes
 * VERSION_1 (no legacy interface here) and that the device accepts; the
 * driver reads Status back to learn the verdict (§3.1.1). */
static bool virtio_features_acceptable(struct xvdm_dev *dev)
{
    uint64_t f = dev->driver_features;

    if (f & ~dev->offered) {
        xvdm_dev_guest_error(dev, "driver accepted features 0x%" PRIx64
                             " that were not offered", f & ~dev->offered);
        return false;
    }
    if (!(f & (1ULL << VIRTIO_F_VERSION_1))) {
        xvdm_dev_guest_error(dev, "driver did not accept VERSION_1");
        return false;
    }
    /* Without it the driver would hand out guest-physical addresses,
     * which grant mode has no mapping for. */
    if (gaccess_grants(&dev->ga) &&
        !(f & (1ULL << VIRTIO_F_ACCESS_PLATFORM))) {
        xvdm_dev_guest_error(dev, "driver did not accept ACCESS_PLATFORM, "
                             "which grants need");
        return false;
    }
    return !dev->ops->features_ok || dev->ops->features_ok(dev->priv, f) == 0;
}

static void virtio_add_status(struct xvdm_dev *dev, uint32_t value)
{
    uint32_t next = value & VIRTIO_DRIVER_STATUS_BITS;
    uint32_t added = next & ~dev->status;

    if (dev->status & VIRTIO_DRIVER_STATUS_BITS & ~next) {
        xvdm_dev_guest_error(dev, "status 0x%" PRIx32 " clears bits of 0x%"
                             PRIx32 " without a reset", value, dev->status);
        return;
    }
    if (added & VIRTIO_STATUS_FEATURES_OK) {
        if (!virtio_features_acceptable(dev))
            added &= ~VIRTIO_STATUS_FEATURES_OK;
        else
            dev->negotiated = dev->driver_features;
    }
    if ((added & VIRTIO_STATUS_DRIVER_OK) &&
        !((dev->status | added) & VIRTIO_STATUS_FEATURES_OK)) {
        xvdm_dev_guest_error(dev, "DRIVER_OK before FEATURES_OK");
        added &= ~VIRTIO_STATUS_DRIVER_OK;
    }
    dev->status |= added;
    if ((added & VIRTIO_STATUS_DRIVER_OK) && dev->ops->start)
        dev->ops->start(dev->priv);
}

void virtio_set_status(struct xvdm_dev *dev, uint32_t value)
{
    if (value == 0)
        virtio_reset(dev);
    else
        virtio_add_status(dev, value);
}

/* ---- queues --------------------------------------------------------------- */

void virtio_queue_ready(struct xvdm_dev *dev, struct xvdm_queue *q,
                        bool ready)
{
    if (!ready) {
        q->vq.ready = false;
        return;
    }
    if (q->vq.ready)
        return;
    if (!virtio_has(dev, VIRTIO_STATUS_FEATURES_OK)) {
        xvdm_dev_guest_error(dev, "queue %u made ready before FEATURES_OK",
                             q->index);
        return;
    }
    if (vq_enable(&q->vq, &dev->ga, dev->negotiated))
        xvdm_dev_guest_error(dev, "queue %u: size %u, rings 0x%" PRIx64
                             "/0x%" PRIx64 "/0x%" PRIx64 " unusable",
                             q->index, q->vq.num, q->vq.desc_gpa,
                             q->vq.avail_gpa, q->vq.used_gpa);
}

/* The device drains queue q, timed for the counters. A queue deferred to
 * the loop's next turn is drained then, not again at each kick meanwhile:
 * a guest's vCPUs, kicking as fast as they are answered, would otherwise
 * run drain after drain in one turn, and what a device bounds per drain (a
 * queue's worth of chains, gpu's copying) would not bound the turn. */
static void virtio_drain(struct xvdm_dev *dev, struct xvdm_queue *q,
                         unsigned index)
{
    uint64_t start;

    if (dev->deferred & (1ULL << index))
        return;
    start = monotonic_ns();
    dev->ops->queue_notify(dev->priv, q, index);
    dev->counters.drains++;
    dev->counters.drain_ns += monotonic_ns() - start;
}

/* Queue `index` if the driver may use it now, else NULL. */
static struct xvdm_queue *virtio_live_queue(struct xvdm_dev *dev,
                                            uint32_t index)
{
    struct xvdm_queue *q = xvdm_dev_queue(dev, index);

    return q && q->vq.ready && virtio_serving(dev) ? q : NULL;
}

void virtio_queue_notify(struct xvdm_dev *dev, uint32_t index)
{
    struct xvdm_queue *q = virtio_live_queue(dev, index);

    if (!q) {
        xvdm_dev_guest_error(dev, "notify of queue %" PRIu32
                             " ignored (status 0x%" PRIx32 ")", index,
                             dev->status);
        return;
    }
    virtio_drain(dev, q, index);
}

void virtio_queue_kicked(struct xvdm_dev *dev, uint32_t index)
{
    struct xvdm_queue *q = virtio_live_queue(dev, index);

    if (q)
        virtio_drain(dev, q, index);
}

/* ---- config space ------------------------------------------------------- */

uint32_t virtio_config_generation(const struct xvdm_dev *dev)
{
    return dev->config_generation;
}

static bool virtio_config_range(const struct xvdm_dev *dev, uint32_t offset,
                                unsigned size)
{
    return size <= dev->setup.config_size &&
           offset <= dev->setup.config_size - size;
}

uint64_t virtio_config_read(struct xvdm_dev *dev, uint32_t offset,
                            unsigned size)
{
    uint8_t buf[8] = {0};
    uint64_t v = 0;

    if (size > sizeof(buf) || !virtio_config_range(dev, offset, size)) {
        xvdm_dev_guest_error(dev, "config read of %u bytes at 0x%" PRIx32
                             " outside its %" PRIu32 " bytes", size, offset,
                             dev->setup.config_size);
        return 0;
    }
    dev->ops->config_read(dev->priv, offset, buf, size);
    for (unsigned i = size; i > 0; i--)
        v = (v << 8) | buf[i - 1];
    return v;
}

void virtio_config_write(struct xvdm_dev *dev, uint32_t offset, unsigned size,
                         uint64_t value)
{
    uint8_t buf[8];

    if (size > sizeof(buf) || !virtio_config_range(dev, offset, size) ||
        !dev->ops->config_write) {
        xvdm_dev_guest_error(dev, "config write of %u bytes at 0x%" PRIx32
                             " ignored", size, offset);
        return;
    }
    for (unsigned i = 0; i < size; i++)
        buf[i] = (uint8_t)(value >> (8 * i));
    dev->ops->config_write(dev->priv, offset, buf, size);
}

/* ---- serving queues (the device ABI) --------------------------------------------------------------- */

/* NEEDS_RESET stops every queue of the device, not just the one that broke:
 * the driver must reset the whole device (VIRTIO 1.2 §2.1.2). */
static bool dev_stopped(const struct xvdm_dev *dev)
{
    return dev->status & VIRTIO_STATUS_NEEDS_RESET;
}

/* A queue hands out at most a queue's worth of chains per turn of the
 * loop, skipped ones included, whatever the device's own loop does, and
 * in grant mode stops once they mapped QUEUE_TURN_PAGES (each page a
 * grant map and unmap in the hypervisor, 8192 a chain at most); the rest
 * waits for the next turn (the queue is deferred). So however fast a
 * guest refills a queue, from another vCPU or by rewriting its ring, the
 * loop gets back to every other fd (vCPUs, devices, signals, xenstore). */
#define QUEUE_TURN_PAGES GBUDGET_DEFAULT_PAGES
static bool queue_turn_spent(struct xvdm_queue *q)
{
    uint64_t turn;

    if (!q->dev->loop_turn)
        return false;
    turn = *q->dev->loop_turn;
    if (turn != q->turn) {
        q->turn = turn;
        q->taken = 0;
        q->pages = 0;
    }
    if (q->taken < q->vq.num && q->pages < QUEUE_TURN_PAGES)
        return false;
    if (!(q->dev->deferred & (1ULL << q->index)))
        xvdm_queue_defer(q);
    return true;
}

/* The next chain this turn allows: 1, 0 (none, or the turn is spent:
 * *spent says which), or -EIO. */
static int queue_take(struct xvdm_queue *q, struct xvdm_chain *chain,
                      bool *spent)
{
    int ret;

    if (dev_stopped(q->dev))
        return -EIO;
    do {
        *spent = queue_turn_spent(q);
        if (*spent)
            return 0;
        ret = vq_pop(&q->vq, chain);
        if (ret == -EAGAIN) {
            /* Taken up again when the guest's pages come back
             * (virtio_queue_unstarve()), not by a kick: kicks stay off. */
            q->starved = true;
            *spent = true;
            return 0;
        }
        q->taken += ret > 0;
        if (ret == 1) {
            q->pages += vq_chain_pages(&q->vq, chain);
            batch_took(q);
        }
        /* The skipped chain is used now: the driver is told of it as of
         * any (VIRTIO 1.2 §2.7.7.2), whether or not the device completes
         * anything in this turn. */
        if (ret == VQ_SKIPPED)
            xvdm_queue_notify_guest(q);
    } while (ret == VQ_SKIPPED);
    return ret;
}

int xvdm_queue_pop(struct xvdm_queue *q, struct xvdm_chain *chain)
{
    bool spent;

    return queue_take(q, chain, &spent);
}

/* The one drain policy every device uses (VIRTIO 1.2 §2.7.10): kicks off
 * while taking chains, on again once there are none, and a look for any
 * that came in between; at most a queue's worth per loop turn. */
int xvdm_queue_next(struct xvdm_queue *q, struct xvdm_chain *chain)
{
    bool spent;
    int ret;

    if (!q->draining) {
        vq_disable_kicks(&q->vq);
        q->draining = true;
    }
    while ((ret = queue_take(q, chain, &spent)) == 0 && !spent &&
           !batch_holds_kicks(q) && vq_enable_kicks(&q->vq))
        vq_disable_kicks(&q->vq);
    q->draining = ret == 1;
    q->held_back = ret == 0 && spent;
    return ret;
}

bool xvdm_queue_held_back(const struct xvdm_queue *q)
{
    return q->held_back;
}

static void virtio_count_used(struct xvdm_dev *dev, unsigned chains,
                              uint64_t bytes)
{
    __atomic_fetch_add(&dev->counters.chains, chains, __ATOMIC_RELAXED);
    __atomic_fetch_add(&dev->counters.bytes, bytes, __ATOMIC_RELAXED);
}

void xvdm_queue_push(struct xvdm_queue *q, const struct xvdm_chain *chain,
                     uint32_t written)
{
    vq_push(&q->vq, chain, written);
    batch_pushed(q, 1);
    virtio_count_used(q->dev, 1, written);
}

void xvdm_queue_push_batch(struct xvdm_queue *q,
                           const struct xvdm_chain *const *chains,
                           const uint32_t *written, unsigned n)
{
    uint64_t bytes = 0;

    vq_push_batch(&q->vq, chains, written, n);
    batch_pushed(q, n);
    for (unsigned i = 0; i < n; i++)
        bytes += written[i];
    virtio_count_used(q->dev, n, bytes);
}

void xvdm_queue_notify_guest(struct xvdm_queue *q)
{
    if (batch_holds_interrupt(q))
        return;
    if (vq_should_signal(&q->vq))
        virtio_signal_used(q->dev);
}

void xvdm_queue_disable_kicks(struct xvdm_queue *q)
{
    vq_disable_kicks(&q->vq);
}

/* A queue whose turn is spent has been deferred: it is drained again
 * from the loop, so no kick is needed, and none is asked for. */
bool xvdm_queue_enable_kicks(struct xvdm_queue *q)
{
    return !queue_turn_spent(q) && vq_enable_kicks(&q->vq);
}

void virtio_queue_unstarve(struct xvdm_dev *dev)
{
    for (unsigned i = 0; i < dev->setup.num_queues; i++) {
        struct xvdm_queue *q = &dev->queues[i];

        if (q->starved) {
            q->starved = false;
            xvdm_queue_defer(q);
        }
    }
}

/* ---- deferred notifies ---------------------------------------------------- */

/* Deferred queues get their notify only while the driver could still kick
 * them: DRIVER_OK, no NEEDS_RESET, queue ready (a reset in between drops
 * them). */
static void dev_run_deferred(void *arg, uint32_t revents)
{
    struct xvdm_dev *dev = arg;
    uint64_t count, pending = dev->deferred;

    if (read(dev->defer_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        log_warn("%scannot read its defer eventfd: %s", dev->prefix,
                 strerror(errno));
    dev->deferred = 0;
    for (unsigned i = 0; i < dev->setup.num_queues; i++) {
        struct xvdm_queue *q = &dev->queues[i];

        if ((pending & (1ULL << i)) && virtio_serving(dev) &&
            vq_live(&q->vq))
            virtio_drain(dev, q, i);
    }
}

int virtio_defer_init(struct xvdm_dev *dev)
{
    int ret;

    dev->defer_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (dev->defer_fd < 0)
        return -errno;
    ret = loop_watch_owned(dev->loop, &dev->watch_share, dev->defer_fd,
                           EPOLLIN, dev_run_deferred, dev);
    if (ret) {
        close(dev->defer_fd);
        dev->defer_fd = -1;
    }
    return ret;
}

void xvdm_queue_defer(struct xvdm_queue *q)
{
    struct xvdm_dev *dev = q->dev;
    uint64_t one = 1;
    /* None without a loop (a device made only to be described). */
    int ret = dev->defer_fd >= 0 ? 0 : -ENOTCONN;

    if (ret == 0 && write(dev->defer_fd, &one, sizeof(one)) < 0)
        ret = -errno;
    if (ret) {
        /* Without a wake-up the queue would sit until the next kick. */
        log_err("%squeue %u: cannot defer its work: %s", dev->prefix,
                q->index, strerror(-ret));
        return;
    }
    dev->deferred |= 1ULL << q->index;
}
