/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor seam: the few operations of xvdm that touch Xen.
 *
 * Two implementations sit below it: hv-xen.c (libxendevicemodel,
 * libxenforeignmemory, libxenevtchn, libxenctrl) and hv-sim.c, a simulated
 * hypervisor that keeps Xen's contract (same shared ioreq page layout and
 * states, per-vCPU event ports readable on one fd, guest RAM, SPI lines).
 * Everything above this header is the same code for both.
 *
 * Every operation returns 0 or a negative errno, and logs nothing itself
 * unless it is the only one that can say what failed.
 */
#ifndef XVDM_HV_H
#define XVDM_HV_H

#include <stdbool.h>
#include <stdint.h>

#include <xen/hvm/ioreq.h> /* the shared ioreq page: Xen's ABI, not a library */

#include "gmem.h"

struct hv;
struct hv_state_probe;

struct hv_ops {
    const char *name; /* "xen", "sim" */
    /* Create the ioreq server (buffered ioreqs off) and map its
     * synchronous ioreq page into hv->iopage. */
    int (*ioreq_server_create)(struct hv *hv);
    /* Send guest MMIO accesses in [start, start + size) to this server. */
    int (*map_mmio)(struct hv *hv, uint64_t start, uint64_t size);
    int (*unmap_mmio)(struct hv *hv, uint64_t start, uint64_t size);
    /* Enable or disable the server (Xen sends nothing while disabled).
     * The first enable also binds every vCPU's event port: Xen publishes
     * them in the ioreq page only then. */
    int (*set_server_state)(struct hv *hv, bool enabled);
    /* The one fd that becomes readable when a vCPU port is pending. */
    int (*evtchn_fd)(struct hv *hv);
    /* Take one pending port: 0 and *vcpu set, -EAGAIN when none. The port
     * is unmasked again before this returns. */
    int (*evtchn_pending)(struct hv *hv, unsigned *vcpu);
    /* Kick vCPU `vcpu`'s port: its ioreq has been answered. */
    int (*evtchn_notify)(struct hv *hv, unsigned vcpu);
    /* Drive SPI `irq` of the guest to `level` (0 or 1). */
    int (*set_irq_level)(struct hv *hv, uint32_t irq, unsigned level);
    /* Map the guest's grant references refs[0..n) side by side, writable
     * or read-only: all of them or none (NULL + errno: EINVAL for a
     * reference not granted, or granted read-only when writable was
     * asked). For devices in grant mode. */
    void *(*grant_map)(struct hv *hv, const uint32_t *refs, unsigned n,
                       bool writable);
    int (*grant_unmap)(struct hv *hv, void *addr, unsigned n);
    /* The fast path, where hv->eventfds says the host has it (on Xen:
     * Linux privcmd's ioeventfd and irqfd, privcmd-eventfd.h). ioeventfd:
     * from now on the host answers 4-byte writes at `window` + QueueNotify's
     * offset whose low 16 bits are `vq` itself (QueueNotify writes of queue
     * `vq` at that window; mmio-fast.c moves the window for InterruptACK)
     * and signals eventfd `fd`; those ioreqs never reach xvdm
     * (mmio_fast_takes()). irqfd: each signal of `fd`
     * drives SPI `spi` to level 1. assign false undoes either; every
     * ioeventfd must be undone before close. Only after the server was
     * first enabled (its ports bound). */
    int (*ioeventfd)(struct hv *hv, uint64_t window, uint32_t vq, int fd,
                     bool assign);
    int (*irqfd)(struct hv *hv, uint32_t spi, int fd, bool assign);
    /* Restrict every handle to this one guest (xendevicemodel_restrict and
     * friends). May be NULL where there is nothing to restrict. */
    int (*restrict_to_guest)(struct hv *hv);
    /* Map the guest's RAM into hv->mem, once. NULL where it is mapped
     * from the start (the sim). Before it, only register accesses that
     * touch no guest memory can be served. */
    int (*map_guest_ram)(struct hv *hv);
    /* Destroy the server, unmap everything, close handles, free hv. */
    void (*close)(struct hv *hv);
};

struct hv {
    const struct hv_ops *ops;
    uint32_t domid;
    unsigned nr_vcpus;
    /* Valid after ioreq_server_create(): one struct ioreq per vCPU. */
    struct shared_iopage *iopage;
    /* The guest's RAM, mapped once when the hv is opened. */
    struct gmem mem;
    /* The host offers ioeventfd and irqfd (ops->ioeventfd, ops->irqfd). */
    bool eventfds;
};

/* What Xen says of a domain, for noticing it go (guest-watch.h). */
enum hv_guest_state {
    HV_GUEST_RUNNING,   /* running or paused, or suspended (it may resume) */
    HV_GUEST_SHUT_DOWN, /* powered off, rebooting, crashed: it runs no more */
    HV_GUEST_DYING,     /* being destroyed */
    HV_GUEST_GONE,      /* no such domain */
};

/* A handle of its own on Xen domains' states. It cannot be restricted to
 * one domain: for the watcher process and the supervisor only, never for
 * a confined instance. NULL + errno after a logged line. */
struct hv_state_probe *hv_xen_state_probe_open(void);
/* Domain `domid`'s state now (probe: a struct hv_state_probe *). */
enum hv_guest_state hv_xen_guest_state(void *probe, uint32_t domid);
void hv_xen_state_probe_close(struct hv_state_probe *probe);
/* Pause domain `domid` (hold true) or unpause it, through the probe's
 * handle: Xen counts pauses, so one taken here does not undo the
 * toolstack's. 0 or a negative errno. */
int hv_xen_hold_guest(void *probe, uint32_t domid, bool hold);

/* Open the Xen implementation for guest `domid`: device-model, foreign
 * memory, event-channel and control handles, and the vCPU count. The
 * guest's RAM is mapped by hv_map_guest_ram(). NULL + errno on failure, after logging one line that
 * says why (e.g. no Xen hypervisor on this machine). */
struct hv *hv_xen_open(uint32_t domid);

static inline int hv_ioreq_server_create(struct hv *hv)
{
    return hv->ops->ioreq_server_create(hv);
}

static inline int hv_map_mmio(struct hv *hv, uint64_t start, uint64_t size)
{
    return hv->ops->map_mmio(hv, start, size);
}

static inline int hv_unmap_mmio(struct hv *hv, uint64_t start, uint64_t size)
{
    return hv->ops->unmap_mmio(hv, start, size);
}

static inline int hv_set_server_state(struct hv *hv, bool enabled)
{
    return hv->ops->set_server_state(hv, enabled);
}

static inline int hv_evtchn_fd(struct hv *hv)
{
    return hv->ops->evtchn_fd(hv);
}

static inline int hv_evtchn_pending(struct hv *hv, unsigned *vcpu)
{
    return hv->ops->evtchn_pending(hv, vcpu);
}

static inline int hv_evtchn_notify(struct hv *hv, unsigned vcpu)
{
    return hv->ops->evtchn_notify(hv, vcpu);
}

static inline int hv_set_irq_level(struct hv *hv, uint32_t irq, unsigned level)
{
    return hv->ops->set_irq_level(hv, irq, level);
}

static inline int hv_restrict_to_guest(struct hv *hv)
{
    return hv->ops->restrict_to_guest ? hv->ops->restrict_to_guest(hv) : 0;
}

static inline int hv_map_guest_ram(struct hv *hv)
{
    return hv->ops->map_guest_ram ? hv->ops->map_guest_ram(hv) : 0;
}

static inline void *hv_grant_map(struct hv *hv, const uint32_t *refs,
                                 unsigned n, bool writable)
{
    return hv->ops->grant_map(hv, refs, n, writable);
}

static inline int hv_grant_unmap(struct hv *hv, void *addr, unsigned n)
{
    return hv->ops->grant_unmap(hv, addr, n);
}

static inline int hv_ioeventfd(struct hv *hv, uint64_t window, uint32_t vq,
                               int fd, bool assign)
{
    return hv->ops->ioeventfd(hv, window, vq, fd, assign);
}

static inline int hv_irqfd(struct hv *hv, uint32_t spi, int fd, bool assign)
{
    return hv->ops->irqfd(hv, spi, fd, assign);
}

static inline void hv_close(struct hv *hv)
{
    if (hv)
        hv->ops->close(hv);
}

#endif
