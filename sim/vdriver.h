/* SPDX-License-Identifier: MIT */
/*
 * Test side: a virtio-mmio driver that talks to xvdm through the simulated
 * hypervisor exactly as Linux's drivers/virtio/virtio_mmio.c does (32-bit
 * register accesses, the same probe and queue setup order), with a bump
 * allocator over a slice of guest RAM for rings and buffers.
 */
#ifndef XVDM_TEST_VDRIVER_H
#define XVDM_TEST_VDRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "guest-ring.h"
#include "sim.h"
#include "transport-mmio.h"

#define VDRIVER_QUEUES_MAX 8

struct vdriver {
    struct sim *sim;
    unsigned vcpu;
    uint64_t base;  /* the device's window */
    uint32_t irq;   /* its SPI */
    int io_error;   /* first failed register access (negative errno) */
    uint64_t offered;  /* device features read at probe */
    uint64_t features; /* what the driver accepted */
    unsigned irq_seen; /* edges of irq consumed so far */
    uint64_t alloc_next, alloc_end; /* guest RAM slice for this driver */
    struct guest_ring ring[VDRIVER_QUEUES_MAX];
    /* Grant mode (vdriver_grants()): the device is given only grants, as
     * by Linux's grant DMA, rings included (their grant addresses here,
     * to end at reset). */
    bool grants;
    uint64_t ring_grant[VDRIVER_QUEUES_MAX];
    uint64_t ring_grant_len[VDRIVER_QUEUES_MAX];
    /* Kicks return once answered, as Linux's do, while xvdm may still be
     * draining (benchmarks); else as vdriver_kick() says (tests). */
    bool bare_kicks;
};

/* Do the tests run the guest in grant mode ($XVDM_TEST_GRANTS=1; the
 * harness then serves every device with grants=on)? */
bool vdriver_grants(void);

/* Attach to the device at base/irq; rings and buffers come from guest RAM
 * [ram_gpa, ram_gpa + ram_size). */
void vdriver_init(struct vdriver *d, struct sim *sim, uint64_t base,
                  uint32_t irq, uint64_t ram_gpa, uint64_t ram_size);

/* 32-bit register access; a failure is kept in d->io_error and reads 0. */
uint32_t vdriver_read(struct vdriver *d, uint64_t offset);
void vdriver_write(struct vdriver *d, uint64_t offset, uint32_t value);

/* Reset (Status 0, read back 0), ACKNOWLEDGE, DRIVER, read the features,
 * accept offered & wanted (and ACCESS_PLATFORM in grant mode, as Linux's
 * grant DMA needs), FEATURES_OK and check it stuck. 0, or -ENODEV
 * (not a virtio-mmio v2 device of this id), -EIO (FEATURES_OK refused) or
 * the access error. */
int vdriver_probe(struct vdriver *d, uint32_t device_id, uint64_t wanted);
/* Linux's vm_setup_vq: select, check not ready, size, ring addresses,
 * QueueReady 1, read it back. 0, -ENOENT (no such queue), -EIO (not made
 * ready). */
int vdriver_setup_queue(struct vdriver *d, unsigned index, uint16_t num);
/* Status |= DRIVER_OK. */
void vdriver_driver_ok(struct vdriver *d);
/* Status = 0, and forget the rings (a fresh probe follows); in grant mode
 * their grants end, as the driver frees them. */
void vdriver_reset(struct vdriver *d);
uint32_t vdriver_status(struct vdriver *d);

/* Guest RAM for buffers: gpa of `size` bytes aligned to `align`. */
uint64_t vdriver_alloc(struct vdriver *d, uint64_t size, uint64_t align);
void *vdriver_ptr(struct vdriver *d, uint64_t gpa);

/* QueueNotify, then wait until xvdm has drained what it started: where
 * the host answers kicks (the fast path) through sim_settle(), and in any
 * case through the guest's next access, which xvdm answers after the
 * drain its loop turn began with. Tests then read the rings as the
 * drain left them. With d->bare_kicks, only the QueueNotify. */
void vdriver_kick(struct vdriver *d, unsigned queue);
/* Kick only when Linux's virtqueue_kick_prepare() would (VIRTIO 1.2
 * §2.7.10): with EVENT_IDX, when avail->idx passed the device's avail_event
 * since the last decision; without, unless the device set
 * VIRTQ_USED_F_NO_NOTIFY. A device that forgets to publish avail_event
 * then hears nothing, as it would from Linux. True when it kicked. */
bool vdriver_kick_if_needed(struct vdriver *d, unsigned queue);
/* Wait for a new edge on the SPI, then do what vm_interrupt does: read
 * InterruptStatus and ACK it. The status (>= 0), or -ETIMEDOUT. */
int vdriver_wait_irq(struct vdriver *d, unsigned timeout_ms);
/* The next used element of queue q, waited for as Linux's driver does:
 * asking for an interrupt (EVENT_IDX's used_event) once the ring is
 * drained, then waiting for it. 0, or -ETIMEDOUT when none comes. */
int vdriver_next_used(struct vdriver *d, unsigned q, uint32_t *id,
                      uint32_t *len, unsigned timeout_ms);
/* Rising edges on the SPI not consumed by vdriver_wait_irq() yet. */
unsigned vdriver_new_edges(struct vdriver *d);
/* Handle the interrupts the SPI has had that this driver has not: read
 * InterruptStatus and ACK it, as vm_interrupt does. A device raises no
 * second interrupt for an event of a kind the driver has not read of. */
void vdriver_take_irqs(struct vdriver *d);

#endif
