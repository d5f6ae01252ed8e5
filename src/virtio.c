/* SPDX-License-Identifier: MIT */
/* The virtio device core (see virtio.h). */
#include "config.h"

#include <inttypes.h>

#include "dev.h"
#include "virtio.h"

/* Status bits the driver may set; NEEDS_RESET is the device's. */
#define VIRTIO_DRIVER_STATUS_BITS                                             \
    (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |                       \
     VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |                    \
     VIRTIO_STATUS_FAILED)

void virtio_attach(struct xvdm_dev *dev, const struct gmem *mem,
                   const struct virtio_transport *t)
{
    dev->mem = mem;
    dev->transport = *t;
    dev->attached = true;
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

static void virtio_interrupt(struct xvdm_dev *dev, uint32_t bit)
{
    dev->isr |= bit;
    dev->transport.interrupt(dev->transport.ctx);
}

uint32_t virtio_isr(const struct xvdm_dev *dev)
{
    return dev->isr;
}

/* The driver acknowledges: nothing else to do, the transport's lines are
 * edge-triggered. */
void virtio_isr_ack(struct xvdm_dev *dev, uint32_t bits)
{
    dev->isr &= ~bits;
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
    dev->isr = 0;
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
    if (vq_enable(&q->vq, dev->mem, dev->negotiated))
        xvdm_dev_guest_error(dev, "queue %u: size %u, rings 0x%" PRIx64
                             "/0x%" PRIx64 "/0x%" PRIx64 " unusable",
                             q->index, q->vq.num, q->vq.desc_gpa,
                             q->vq.avail_gpa, q->vq.used_gpa);
}

void virtio_queue_notify(struct xvdm_dev *dev, uint32_t index)
{
    struct xvdm_queue *q = xvdm_dev_queue(dev, index);

    if (!q || !q->vq.ready || !virtio_serving(dev)) {
        xvdm_dev_guest_error(dev, "notify of queue %" PRIu32
                             " ignored (status 0x%" PRIx32 ")", index,
                             dev->status);
        return;
    }
    dev->ops->queue_notify(dev->priv, q, index);
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
