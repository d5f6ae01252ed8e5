/* SPDX-License-Identifier: MIT */
/* Test side: a Linux-like virtio-mmio driver over the sim (see vdriver.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vdriver.h"

bool vdriver_grants(void)
{
    const char *v = getenv("XVDM_TEST_GRANTS");

    return v && strcmp(v, "1") == 0;
}

void vdriver_init(struct vdriver *d, struct sim *sim, uint64_t base,
                  uint32_t irq, uint64_t ram_gpa, uint64_t ram_size)
{
    memset(d, 0, sizeof(*d));
    d->grants = vdriver_grants();
    d->sim = sim;
    d->base = base;
    d->irq = irq;
    d->alloc_next = ram_gpa;
    d->alloc_end = ram_gpa + ram_size;
    d->irq_seen = sim_irq_edges(sim, irq);
}

uint32_t vdriver_read(struct vdriver *d, uint64_t offset)
{
    uint64_t v = 0;
    int ret = sim_mmio_read(d->sim, d->vcpu, d->base + offset, 4, &v);

    if (ret && !d->io_error)
        d->io_error = ret;
    return ret ? 0 : (uint32_t)v;
}

void vdriver_write(struct vdriver *d, uint64_t offset, uint32_t value)
{
    int ret = sim_mmio_write(d->sim, d->vcpu, d->base + offset, 4, value);

    if (ret && !d->io_error)
        d->io_error = ret;
}

uint32_t vdriver_status(struct vdriver *d)
{
    return vdriver_read(d, VIRTIO_MMIO_STATUS);
}

static void vdriver_add_status(struct vdriver *d, uint32_t bits)
{
    vdriver_write(d, VIRTIO_MMIO_STATUS, vdriver_status(d) | bits);
}

void vdriver_reset(struct vdriver *d)
{
    vdriver_write(d, VIRTIO_MMIO_STATUS, 0);
    for (unsigned i = 0; i < VDRIVER_QUEUES_MAX; i++)
        if (d->ring_grant[i])
            sim_revoke(d->sim, d->ring_grant[i], d->ring_grant_len[i]);
    memset(d->ring, 0, sizeof(d->ring));
    memset(d->ring_grant, 0, sizeof(d->ring_grant));
}

static uint64_t vdriver_read_features(struct vdriver *d)
{
    uint64_t f;

    vdriver_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    f = (uint64_t)vdriver_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    vdriver_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    return f | vdriver_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
}

static void vdriver_write_features(struct vdriver *d, uint64_t f)
{
    vdriver_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vdriver_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
    vdriver_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    vdriver_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
}

int vdriver_probe(struct vdriver *d, uint32_t device_id, uint64_t wanted)
{
    if (vdriver_read(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC ||
        vdriver_read(d, VIRTIO_MMIO_VERSION) != 2 ||
        vdriver_read(d, VIRTIO_MMIO_DEVICE_ID) != device_id)
        return d->io_error ? d->io_error : -ENODEV;
    vdriver_reset(d);
    if (vdriver_status(d) != 0)
        return -EIO;
    vdriver_add_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    vdriver_add_status(d, VIRTIO_STATUS_DRIVER);
    d->offered = vdriver_read_features(d);
    if (d->grants)
        wanted |= 1ULL << VIRTIO_F_ACCESS_PLATFORM;
    d->features = d->offered & wanted;
    vdriver_write_features(d, d->features);
    vdriver_add_status(d, VIRTIO_STATUS_FEATURES_OK);
    if (d->io_error)
        return d->io_error;
    return vdriver_status(d) & VIRTIO_STATUS_FEATURES_OK ? 0 : -EIO;
}

uint64_t vdriver_alloc(struct vdriver *d, uint64_t size, uint64_t align)
{
    uint64_t gpa = (d->alloc_next + align - 1) & ~(align - 1);

    if (gpa + size > d->alloc_end)
        return 0;
    d->alloc_next = gpa + size;
    return gpa;
}

void *vdriver_ptr(struct vdriver *d, uint64_t gpa)
{
    return sim_guest_ptr(d->sim, gpa, 1);
}

static void vdriver_write_addr(struct vdriver *d, uint64_t low_reg,
                               uint64_t gpa)
{
    vdriver_write(d, low_reg, (uint32_t)gpa);
    vdriver_write(d, low_reg + 4, (uint32_t)(gpa >> 32));
}

int vdriver_setup_queue(struct vdriver *d, unsigned index, uint16_t num)
{
    struct guest_ring *r = &d->ring[index];
    uint64_t gpa, dma;

    if (index >= VDRIVER_QUEUES_MAX)
        return -ENOENT;
    vdriver_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
    if (vdriver_read(d, VIRTIO_MMIO_QUEUE_READY))
        return -EBUSY;
    if (vdriver_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX) == 0)
        return -ENOENT;
    gpa = vdriver_alloc(d, guest_ring_bytes(num), 4096);
    if (!gpa)
        return -ENOMEM;
    guest_ring_init(r, sim_guest_ptr(d->sim, sim_ram_base(d->sim), 1),
                    sim_ram_base(d->sim), sim_ram_size(d->sim), gpa, num);
    /* The rings' addresses for the device: the ring area granted as one
     * range (consecutive references), each part at its offset in it. */
    dma = gpa;
    if (d->grants) {
        if (sim_grant(d->sim, gpa, guest_ring_bytes(num), false, &dma))
            return -ENOMEM;
        d->ring_grant[index] = dma;
        d->ring_grant_len[index] = guest_ring_bytes(num);
        r->grant_sim = d->sim;
    }
    vdriver_write(d, VIRTIO_MMIO_QUEUE_NUM, num);
    vdriver_write_addr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, dma + (r->desc_gpa - gpa));
    vdriver_write_addr(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW,
                       dma + (r->avail_gpa - gpa));
    vdriver_write_addr(d, VIRTIO_MMIO_QUEUE_USED_LOW, dma + (r->used_gpa - gpa));
    vdriver_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
    return vdriver_read(d, VIRTIO_MMIO_QUEUE_READY) == 1 ? 0 : -EIO;
}

void vdriver_driver_ok(struct vdriver *d)
{
    vdriver_add_status(d, VIRTIO_STATUS_DRIVER_OK);
}

void vdriver_kick(struct vdriver *d, unsigned queue)
{
    int ret;

    vdriver_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, queue);
    if (d->bare_kicks)
        return;
    ret = sim_settle(d->sim, d->vcpu);
    if (ret && !d->io_error)
        d->io_error = ret;
    (void)vdriver_read(d, VIRTIO_MMIO_MAGIC_VALUE);
}

bool vdriver_kick_if_needed(struct vdriver *d, unsigned queue)
{
    struct guest_ring *r = &d->ring[queue];
    uint16_t old = r->kicked_idx, new_idx = r->avail_idx, event;
    bool need;

    /* Our avail->idx store before reading the device's suppression. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (d->features & (1ULL << VIRTIO_F_EVENT_IDX)) {
        event = le16toh(
            __atomic_load_n(guest_ring_avail_event(r), __ATOMIC_RELAXED));
        need = (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
    } else {
        need = !(le16toh(__atomic_load_n(&guest_ring_used(r)->flags,
                                         __ATOMIC_RELAXED)) &
                 VIRTQ_USED_F_NO_NOTIFY);
    }
    r->kicked_idx = new_idx;
    if (need)
        vdriver_kick(d, queue);
    return need;
}

int vdriver_wait_irq(struct vdriver *d, unsigned timeout_ms)
{
    uint32_t status;
    int ret = sim_irq_wait(d->sim, d->irq, d->irq_seen, timeout_ms);

    if (ret)
        return ret;
    d->irq_seen = sim_irq_edges(d->sim, d->irq);
    status = vdriver_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
    vdriver_write(d, VIRTIO_MMIO_INTERRUPT_ACK, status);
    return (int)status;
}

int vdriver_next_used(struct vdriver *d, unsigned q, uint32_t *id,
                      uint32_t *len, unsigned timeout_ms)
{
    while (!guest_ring_get_used(&d->ring[q], id, len)) {
        guest_ring_enable_cb(&d->ring[q]);
        if (guest_ring_get_used(&d->ring[q], id, len))
            return 0;
        if (vdriver_wait_irq(d, timeout_ms) < 0)
            return -ETIMEDOUT;
    }
    return 0;
}

unsigned vdriver_new_edges(struct vdriver *d)
{
    return sim_irq_edges(d->sim, d->irq) - d->irq_seen;
}

void vdriver_take_irqs(struct vdriver *d)
{
    if (vdriver_new_edges(d))
        vdriver_wait_irq(d, 0);
}
