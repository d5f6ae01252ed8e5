/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio version 2 (VIRTIO 1.2 §4.2.2): the register file of one
 * device window, decoded into the virtio core's operations.
 */
#include "config.h"

#include <inttypes.h>

#include "dev.h"
#include "hv.h"
#include "mmio-fast.h"
#include "transport-mmio.h"

/* The core's interrupt: make the SPI pending (never lowered: see
 * transport-mmio.h), through the host's irqfd where it has one. */
static int mmio_interrupt(void *ctx)
{
    struct mmio *m = ctx;
    int ret = m->irqfd >= 0 ? mmio_fast_interrupt(m)
                            : hv_set_irq_level(m->hv, m->spi, 1);

    m->counters.interrupts++;
    if (ret)
        xvdm_dev_guest_error(m->dev, "cannot raise SPI %" PRIu32 ": %d",
                             m->spi, ret);
    return ret;
}

void mmio_init(struct mmio *m, struct xvdm_dev *dev, const struct gaccess *ga,
               struct hv *hv, uint32_t spi, uint64_t base)
{
    struct virtio_transport t = {.interrupt = mmio_interrupt, .ctx = m};

    *m = (struct mmio){.dev = dev, .hv = hv, .spi = spi, .base = base};
    mmio_fast_init(m);
    virtio_attach(dev, ga, &t);
}

static struct xvdm_queue *mmio_selected(struct mmio *m)
{
    return xvdm_dev_queue(m->dev, m->queue_sel);
}

/* ---- queues --------------------------------------------------------------- */

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

static uint32_t get_half(uint64_t v, bool high)
{
    return (uint32_t)(v >> (high ? 32 : 0));
}

/* Queue layout registers may change only while the queue is not ready
 * (§4.2.2.2); QueueNum above the largest size is remembered as 0 so the
 * later QueueReady fails instead of truncating it. */
static void mmio_queue_layout(struct mmio *m, uint64_t offset, uint32_t value)
{
    struct xvdm_queue *q = mmio_selected(m);

    if (!q || q->vq.ready) {
        xvdm_dev_guest_error(m->dev, "queue %" PRIu32 " layout write at 0x%"
                             PRIx64 " ignored", m->queue_sel, offset);
        return;
    }
    if (offset == VIRTIO_MMIO_QUEUE_NUM)
        q->vq.num = value <= q->vq.num_max ? (uint16_t)value : 0;
    else
        set_half(mmio_ring_addr(&q->vq, offset), offset & 4, value);
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
    return addr ? get_half(*addr, offset & 4) : 0;
}

static void mmio_queue_ready(struct mmio *m, uint32_t value)
{
    struct xvdm_queue *q = mmio_selected(m);

    if (q)
        virtio_queue_ready(m->dev, q, value != 0);
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
        return virtio_device_features(m->dev, m->device_features_sel);
    case VIRTIO_MMIO_INTERRUPT_STATUS:
        mmio_fast_acked(m); /* the ACKs the host answered come first */
        return virtio_isr_read(m->dev);
    case VIRTIO_MMIO_STATUS:
        return virtio_status(m->dev);
    case VIRTIO_MMIO_CONFIG_GENERATION:
        return virtio_config_generation(m->dev);
    /* No device has shared memory regions: every one the guest selects
     * is absent, which §4.2.2 says is a length of -1 (Linux's virtio_gpu
     * asks for its host-visible region, and fails its probe on a region
     * of length 0 at 0). QEMU answers the base the same way. */
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW:
    case VIRTIO_MMIO_SHM_BASE_HIGH:
        return 0xffffffff;
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
        virtio_set_driver_features(m->dev, m->driver_features_sel, value);
        return;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        m->driver_features_sel = value;
        return;
    case VIRTIO_MMIO_QUEUE_SEL:
        m->queue_sel = value;
        return;
    case VIRTIO_MMIO_SHM_SEL: /* any region selected is absent (above) */
        return;
    case VIRTIO_MMIO_QUEUE_READY:
        mmio_queue_ready(m, value);
        return;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
        if (value < XVDM_QUEUES_MAX)
            m->kicked |= 1ULL << value;
        else
            virtio_queue_notify(m->dev, value); /* says what is wrong */
        return;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        virtio_isr_ack(m->dev, value);
        return;
    case VIRTIO_MMIO_STATUS:
        /* A reset also brings the transport's selectors back to 0. */
        if (value == 0)
            m->device_features_sel = m->driver_features_sel = m->queue_sel =
                0;
        virtio_set_status(m->dev, value);
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

static void mmio_count(struct mmio *m, uint64_t offset)
{
    struct mmio_counters *c = &m->counters;

    if (offset >= VIRTIO_MMIO_CONFIG)
        c->config++;
    else if (offset == VIRTIO_MMIO_QUEUE_NOTIFY)
        c->notifies++;
    else if (offset == VIRTIO_MMIO_INTERRUPT_STATUS)
        c->isr_reads++;
    else if (offset == VIRTIO_MMIO_INTERRUPT_ACK)
        c->acks++;
    else
        c->other++;
}

uint64_t mmio_read(struct mmio *m, uint64_t offset, unsigned size)
{
    mmio_count(m, offset);
    if (!mmio_access_ok(m, offset, size))
        return 0;
    if (offset >= VIRTIO_MMIO_CONFIG)
        return virtio_config_read(m->dev,
                                  (uint32_t)(offset - VIRTIO_MMIO_CONFIG),
                                  size);
    return mmio_register_read(m, offset);
}

void mmio_write(struct mmio *m, uint64_t offset, unsigned size,
                uint64_t value)
{
    mmio_count(m, offset);
    if (!mmio_access_ok(m, offset, size))
        return;
    if (offset >= VIRTIO_MMIO_CONFIG)
        virtio_config_write(m->dev, (uint32_t)(offset - VIRTIO_MMIO_CONFIG),
                            size, value);
    else
        mmio_register_write(m, offset, (uint32_t)value);
}

void mmio_log_counters(const struct mmio *m)
{
    const struct mmio_counters *c = &m->counters;
    const struct dev_counters *d = &m->dev->counters;
    uint64_t chains = __atomic_load_n(&d->chains, __ATOMIC_RELAXED);
    uint64_t bytes = __atomic_load_n(&d->bytes, __ATOMIC_RELAXED);
    uint64_t ioreqs = c->notifies + c->isr_reads + c->acks + c->other +
                      c->config;

    log_info("%scounters: %" PRIu64 " requests, %" PRIu64 " bytes to the "
             "guest; %" PRIu64 " drains, %.1f us each; kicks: %" PRIu64
             " through xvdm, %" PRIu64 " through the host; %" PRIu64
             " interrupts, %" PRIu64 " ACKs through the host; ioreqs: %"
             PRIu64 " InterruptStatus, %" PRIu64
             " InterruptACK, %" PRIu64 " QueueNotify, %" PRIu64
             " other registers, %" PRIu64 " config, %.2f per request",
             m->dev->prefix, chains, bytes, d->drains,
             d->drains ? d->drain_ns / 1e3 / (double)d->drains : 0.0,
             c->notifies, c->host_kicks, c->interrupts, c->host_acks,
             c->isr_reads,
             c->acks, c->notifies, c->other, c->config,
             chains ? (double)ioreqs / (double)chains : 0.0);
}

/* m->kicked holds a bit per queue. */
_Static_assert(XVDM_QUEUES_MAX <= 64, "mmio.kicked is 64 bits");

void mmio_run_kicks(struct mmio *m)
{
    uint64_t kicked = m->kicked;

    m->kicked = 0;
    for (unsigned vq = 0; kicked; vq++, kicked >>= 1)
        if (kicked & 1)
            virtio_queue_notify(m->dev, vq);
}
