/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio version 2 (VIRTIO 1.2 §4.2.2): the register file of one
 * device window. Every value the guest writes to a register is checked
 * here, before anything below sees it.
 */
#include "config.h"

#include <inttypes.h>

#include "dev.h"
#include "irq.h"
#include "transport-mmio.h"

/* Status bits the driver may set; NEEDS_RESET is the device's. */
#define MMIO_DRIVER_STATUS_BITS                                               \
    (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |                       \
     VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK |                    \
     VIRTIO_STATUS_FAILED)

void mmio_init(struct mmio *m, struct xvdm_dev *dev, const struct gmem *mem,
               struct irq_line *line, uint64_t base)
{
    *m = (struct mmio){.dev = dev, .mem = mem, .line = line, .base = base};
    dev->mmio = m;
}

static struct xvdm_queue *mmio_selected(struct mmio *m)
{
    return xvdm_dev_queue(m->dev, m->queue_sel);
}

static bool mmio_has(const struct mmio *m, uint32_t bit)
{
    return m->status & bit;
}

/* ---- interrupts ------------------------------------------------------- */

static void mmio_interrupt(struct mmio *m, uint32_t bit)
{
    int ret;

    m->interrupt_status |= bit;
    ret = irq_line_event(m->line);
    if (ret)
        xvdm_dev_guest_error(m->dev, "cannot raise SPI %" PRIu32 ": %d",
                             m->line->spi, ret);
}

/* Nothing to lower: Xen ignores a falling edge (irq.h). */
static void mmio_interrupt_ack(struct mmio *m, uint32_t bits)
{
    m->interrupt_status &= ~bits;
}

void mmio_signal_used(struct mmio *m)
{
    mmio_interrupt(m, VIRTIO_MMIO_INT_VRING);
}

void mmio_config_changed(struct mmio *m)
{
    m->config_generation++;
    mmio_interrupt(m, VIRTIO_MMIO_INT_CONFIG);
}

/* VIRTIO 1.2 §2.1.2: after setting NEEDS_RESET with DRIVER_OK set, the
 * device must send a configuration change notification. */
void mmio_needs_reset(struct mmio *m)
{
    if (mmio_has(m, VIRTIO_STATUS_NEEDS_RESET))
        return;
    m->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (mmio_has(m, VIRTIO_STATUS_DRIVER_OK))
        mmio_interrupt(m, VIRTIO_MMIO_INT_CONFIG);
}

void mmio_reset(struct mmio *m)
{
    struct xvdm_dev *dev = m->dev;

    /* The device lets go of every chain before its queues are forgotten. */
    dev->ops->reset(dev->priv);
    for (unsigned i = 0; i < dev->setup.num_queues; i++)
        vq_reset(&dev->queues[i].vq);
    mmio_interrupt_ack(m, m->interrupt_status);
    m->status = 0;
    m->device_features_sel = 0;
    m->driver_features_sel = 0;
    m->driver_features = 0;
    m->negotiated = 0;
    m->queue_sel = 0;
}

/* ---- status ------------------------------------------------------------- */

/* FEATURES_OK is kept only for a subset of what was offered that includes
 * VERSION_1 (no legacy interface here) and that the device accepts; the
 * driver reads Status back to learn the verdict (§3.1.1). */
static bool mmio_features_acceptable(struct mmio *m)
{
    uint64_t f = m->driver_features;
    const struct xvdm_device_ops *ops = m->dev->ops;

    if (f & ~m->dev->offered) {
        xvdm_dev_guest_error(m->dev, "driver accepted features 0x%" PRIx64
                             " that were not offered",
                             f & ~m->dev->offered);
        return false;
    }
    if (!(f & (1ULL << VIRTIO_F_VERSION_1))) {
        xvdm_dev_guest_error(m->dev, "driver did not accept VERSION_1");
        return false;
    }
    return !ops->features_ok || ops->features_ok(m->dev->priv, f) == 0;
}

static void mmio_set_status(struct mmio *m, uint32_t value)
{
    uint32_t next = value & MMIO_DRIVER_STATUS_BITS;
    uint32_t added = next & ~m->status;

    if (m->status & MMIO_DRIVER_STATUS_BITS & ~next) {
        xvdm_dev_guest_error(m->dev, "status 0x%" PRIx32 " clears bits of "
                             "0x%" PRIx32 " without a reset", value,
                             m->status);
        return;
    }
    if (added & VIRTIO_STATUS_FEATURES_OK) {
        if (!mmio_features_acceptable(m))
            added &= ~VIRTIO_STATUS_FEATURES_OK;
        else
            m->negotiated = m->driver_features;
    }
    if ((added & VIRTIO_STATUS_DRIVER_OK) &&
        !((m->status | added) & VIRTIO_STATUS_FEATURES_OK)) {
        xvdm_dev_guest_error(m->dev, "DRIVER_OK before FEATURES_OK");
        added &= ~VIRTIO_STATUS_DRIVER_OK;
    }
    m->status |= added;
    if ((added & VIRTIO_STATUS_DRIVER_OK) && m->dev->ops->start)
        m->dev->ops->start(m->dev->priv);
}

/* ---- queues --------------------------------------------------------------- */

static void mmio_queue_ready(struct mmio *m, uint32_t value)
{
    struct xvdm_queue *q = mmio_selected(m);

    if (!q)
        return;
    if (value == 0) {
        q->vq.ready = false;
        return;
    }
    if (q->vq.ready)
        return;
    if (!mmio_has(m, VIRTIO_STATUS_FEATURES_OK)) {
        xvdm_dev_guest_error(m->dev, "queue %u made ready before "
                             "FEATURES_OK", q->index);
        return;
    }
    if (vq_enable(&q->vq, m->mem, m->negotiated))
        xvdm_dev_guest_error(m->dev, "queue %u: size %u, rings 0x%" PRIx64
                             "/0x%" PRIx64 "/0x%" PRIx64 " unusable",
                             q->index, q->vq.num, q->vq.desc_gpa,
                             q->vq.avail_gpa, q->vq.used_gpa);
}

static void mmio_queue_notify(struct mmio *m, uint32_t index)
{
    struct xvdm_queue *q = xvdm_dev_queue(m->dev, index);

    if (!q || !q->vq.ready || !mmio_has(m, VIRTIO_STATUS_DRIVER_OK) ||
        mmio_has(m, VIRTIO_STATUS_NEEDS_RESET)) {
        xvdm_dev_guest_error(m->dev, "notify of queue %" PRIu32
                             " ignored (status 0x%" PRIx32 ")", index,
                             m->status);
        return;
    }
    m->dev->ops->queue_notify(m->dev->priv, q, index);
}

/* The ring address a Low/High register offset names, or NULL. */
static uint64_t *mmio_ring_addr(struct vq *vq, uint64_t offset)
{
    switch (offset & ~4ULL) {
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
        return &vq->desc_gpa;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
        return &vq->avail_gpa;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
        return &vq->used_gpa;
    }
    return NULL;
}

static void set_half(uint64_t *v, bool high, uint32_t half)
{
    unsigned shift = high ? 32 : 0;

    *v = (*v & ~(0xffffffffULL << shift)) | ((uint64_t)half << shift);
}

static uint32_t get_half(uint64_t v, uint32_t sel)
{
    return sel < 2 ? (uint32_t)(v >> (32 * sel)) : 0;
}

/* Queue layout registers may change only while the queue is not ready
 * (§4.2.2.2); QueueNum above the largest size is remembered as 0 so the
 * later QueueReady fails instead of truncating it. */
static void mmio_queue_layout(struct mmio *m, uint64_t offset, uint32_t value)
{
    struct xvdm_queue *q = mmio_selected(m);
    uint64_t *addr;

    if (!q || q->vq.ready) {
        xvdm_dev_guest_error(m->dev, "queue %" PRIu32 " layout write at 0x%"
                             PRIx64 " ignored", m->queue_sel, offset);
        return;
    }
    if (offset == VIRTIO_MMIO_QUEUE_NUM) {
        q->vq.num = value <= q->vq.num_max ? (uint16_t)value : 0;
        return;
    }
    addr = mmio_ring_addr(&q->vq, offset);
    set_half(addr, offset & 4, value);
}

static uint32_t mmio_queue_read(struct mmio *m, uint64_t offset)
{
    struct xvdm_queue *q = mmio_selected(m);
    uint64_t *addr;

    if (!q)
        return 0;
    switch (offset) {
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return q->vq.num_max;
    case VIRTIO_MMIO_QUEUE_NUM:
        return q->vq.num;
    case VIRTIO_MMIO_QUEUE_READY:
        return q->vq.ready;
    }
    addr = mmio_ring_addr(&q->vq, offset);
    return addr ? get_half(*addr, (offset & 4) != 0) : 0;
}

/* ---- config space ------------------------------------------------------- */

static bool mmio_config_range(struct mmio *m, uint64_t offset, unsigned size)
{
    uint64_t off = offset - VIRTIO_MMIO_CONFIG;

    return off + size <= m->dev->setup.config_size;
}

static uint64_t mmio_config_read(struct mmio *m, uint64_t offset,
                                 unsigned size)
{
    uint8_t buf[8] = {0};
    uint64_t v = 0;

    if (!mmio_config_range(m, offset, size)) {
        xvdm_dev_guest_error(m->dev, "config read of %u bytes at 0x%" PRIx64
                             " outside its %" PRIu32 " bytes", size, offset,
                             m->dev->setup.config_size);
        return 0;
    }
    m->dev->ops->config_read(m->dev->priv,
                             (uint32_t)(offset - VIRTIO_MMIO_CONFIG), buf,
                             size);
    /* Config fields are little-endian (§2.5). */
    for (unsigned i = size; i > 0; i--)
        v = (v << 8) | buf[i - 1];
    return v;
}

static void mmio_config_write(struct mmio *m, uint64_t offset, unsigned size,
                              uint64_t value)
{
    uint8_t buf[8];

    if (!mmio_config_range(m, offset, size) || !m->dev->ops->config_write) {
        xvdm_dev_guest_error(m->dev, "config write of %u bytes at 0x%" PRIx64
                             " ignored", size, offset);
        return;
    }
    for (unsigned i = 0; i < size; i++)
        buf[i] = (uint8_t)(value >> (8 * i));
    m->dev->ops->config_write(m->dev->priv,
                              (uint32_t)(offset - VIRTIO_MMIO_CONFIG), buf,
                              size);
}

/* ---- register file -------------------------------------------------------- */

static uint32_t mmio_register_read(struct mmio *m, uint64_t offset)
{
    switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION:
        return 2;
    case VIRTIO_MMIO_DEVICE_ID:
        return m->dev->ops->device_id;
    case VIRTIO_MMIO_VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return get_half(m->dev->offered, m->device_features_sel);
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        return m->interrupt_status;
    case VIRTIO_MMIO_STATUS:
        return m->status;
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return m->config_generation;
    }
    return mmio_queue_read(m, offset);
}

static void mmio_register_write(struct mmio *m, uint64_t offset,
                                uint32_t value)
{
    switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        m->device_features_sel = value;
        return;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        /* Features are fixed once FEATURES_OK is set (§3.1.1). */
        if (m->driver_features_sel < 2 &&
            !mmio_has(m, VIRTIO_STATUS_FEATURES_OK))
            set_half(&m->driver_features, m->driver_features_sel == 1,
                     value);
        return;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        m->driver_features_sel = value;
        return;
    case VIRTIO_MMIO_QUEUE_SEL:
        m->queue_sel = value;
        return;
    case VIRTIO_MMIO_QUEUE_READY:
        mmio_queue_ready(m, value);
        return;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        mmio_queue_notify(m, value);
        return;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        mmio_interrupt_ack(m, value);
        return;
    case VIRTIO_MMIO_STATUS:
        if (value == 0)
            mmio_reset(m);
        else
            mmio_set_status(m, value);
        return;
    case VIRTIO_MMIO_QUEUE_NUM:
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
    case VIRTIO_MMIO_QUEUE_USED_LOW:
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
        mmio_queue_layout(m, offset, value);
        return;
    }
    xvdm_dev_guest_error(m->dev, "write of 0x%" PRIx32 " to register 0x%"
                         PRIx64 " ignored", value, offset);
}

/* §4.2.2.2: registers take 32-bit accesses only; config space any size. */
static bool mmio_access_ok(struct mmio *m, uint64_t offset, unsigned size)
{
    if (offset >= VIRTIO_MMIO_CONFIG)
        return size == 1 || size == 2 || size == 4 || size == 8;
    if (size == 4 && !(offset & 3))
        return true;
    xvdm_dev_guest_error(m->dev, "%u-byte access to register 0x%" PRIx64
                         " ignored", size, offset);
    return false;
}

uint64_t mmio_read(struct mmio *m, uint64_t offset, unsigned size)
{
    if (!mmio_access_ok(m, offset, size))
        return 0;
    if (offset >= VIRTIO_MMIO_CONFIG)
        return mmio_config_read(m, offset, size);
    return mmio_register_read(m, offset);
}

void mmio_write(struct mmio *m, uint64_t offset, unsigned size,
                uint64_t value)
{
    if (!mmio_access_ok(m, offset, size))
        return;
    if (offset >= VIRTIO_MMIO_CONFIG)
        mmio_config_write(m, offset, size, value);
    else
        mmio_register_write(m, offset, (uint32_t)value);
}
