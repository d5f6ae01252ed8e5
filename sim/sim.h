/* SPDX-License-Identifier: MIT */
/*
 * The simulated hypervisor: an implementation of the hv seam that keeps
 * Xen's contract, for tests and for people writing device modules without
 * a Xen host.
 *
 * xvdm's side gets a struct hv (sim_hv()) and runs exactly the code it runs
 * on Xen. The test side plays the guest and Xen: it owns guest RAM (a
 * buffer at GUEST_RAM0_BASE), makes vCPU MMIO accesses that are delivered
 * the way Xen delivers them (the vCPU's slot of a struct shared_iopage set
 * to STATE_IOREQ_READY after a write barrier, its port made pending on the
 * one event-channel fd, then the vCPU waits for STATE_IORESP_READY and the
 * notify), and watches the SPI lines xvdm drives.
 *
 * The guest side calls may come from any thread but xvdm's loop thread.
 */
#ifndef XVDM_SIM_H
#define XVDM_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include <xen/hvm/ioreq.h>

struct hv;
struct sim;

/* One contiguous piece of guest RAM. */
struct sim_ram_region {
    uint64_t gpa;
    uint64_t size; /* page multiple */
};

#define SIM_RAM_REGIONS_MAX 8
/* The default layout's pieces past the first: after a hole of
 * SIM_RAM_HOLE, the rest of bank 0; and the start of bank 1. */
#define SIM_RAM_HOLE (64ULL << 10)
#define SIM_RAM_TAIL_SIZE (1ULL << 20)
#define SIM_RAM_BANK1_SIZE (1ULL << 20)

struct sim_config {
    uint32_t domid;
    unsigned nr_vcpus;  /* 1..64 */
    /* Guest RAM, shaped as Xen gives it to a device model on Arm: when
     * nr_regions is 0, ram_size bytes at GUEST_LAYOUT_RAM0_BASE (the
     * region tests use), then past a hole of SIM_RAM_HOLE the rest of bank
     * 0 (SIM_RAM_TAIL_SIZE), and bank 1 at GUEST_LAYOUT_RAM1_BASE
     * (SIM_RAM_BANK1_SIZE). Else exactly the regions given (sorted,
     * disjoint). Every region is mapped on its own, between inaccessible
     * pages, so that xvdm touching a byte outside guest RAM crashes the
     * test rather than going unnoticed. */
    uint64_t ram_size;  /* page multiple */
    unsigned nr_regions;
    struct sim_ram_region region[SIM_RAM_REGIONS_MAX];
    /* Whether the kernel may pin the RAM for direct I/O. Xen's foreign
     * mappings (privcmd's) it may not, and neither may it the sim's RAM
     * where the host has memfd_secret(2), unless this is set: for guests
     * whose devices all reach them only through grants. Linux on Arm
     * maps grants (gntdev) on pages it can pin, and the sim's views of
     * granted pages, mapped anew, would otherwise count against
     * RLIMIT_MEMLOCK. */
    bool pinnable_ram;
    /* How long a vCPU waits for its ioreq to be answered before the access
     * fails with -ETIMEDOUT (a hung device model fails the test rather than
     * hanging it). 0: 5000 ms. */
    unsigned ioreq_timeout_ms;
    /* The host has the fast path (Linux privcmd's ioeventfd and irqfd):
     * QueueNotify writes that match an assigned ioeventfd are answered by
     * "the kernel" (sim-eventfd.c); kernel_delay_ms delays its claim past
     * the moment xvdm sees the port fire. */
    bool eventfds;
    unsigned kernel_delay_ms;
    /* What assigning an ioeventfd returns (negative errno: a host out of
     * room, or refusing the ports), or 0: it works. */
    int ioeventfd_error;
    /* Called once, as xvdm assigns its first ioeventfd and before the sim
     * takes it: a guest acting between the server's start and the fast
     * path's (a vCPU running on while an instance restarts). */
    void (*before_ioeventfds)(struct sim *sim, void *arg);
    void *before_ioeventfds_arg;
};

/* NULL + errno. */
struct sim *sim_create(const struct sim_config *cfg);
/* Frees the sim. Close the hv first (hv_close()), or never opened it. */
void sim_destroy(struct sim *sim);

/* xvdm's handle on this sim. Owned by the sim until hv_close(), which
 * destroys the ioreq server, unbinds ports and forgets the MMIO ranges but
 * leaves the sim (guest RAM, IRQ history) for the test to inspect. */
struct hv *sim_hv(struct sim *sim);

/* ---- the guest's RAM -------------------------------------------------- */

/* The first region: where tests put rings and buffers. */
uint64_t sim_ram_base(const struct sim *sim);
uint64_t sim_ram_size(const struct sim *sim);
/* Every region, in guest-physical order: how many, and the i-th. */
unsigned sim_ram_regions(const struct sim *sim);
struct sim_ram_region sim_ram_region(const struct sim *sim, unsigned i);
/* Pointer to guest RAM [gpa, gpa + len), or NULL when outside it. */
void *sim_guest_ptr(struct sim *sim, uint64_t gpa, uint64_t len);

/* ---- the guest's grant table ------------------------------------------ */

/* As many as Xen gives a guest by default: max_grant_frames 64
 * (xen/common/grant_table.c), 512 version-1 entries a frame. */
#define SIM_GRANTS_MAX 32768
/* The DMA address Linux's grant DMA gives a device: bit 63, the first
 * grant reference, the offset in its page (drivers/xen/grant-dma-ops.c). */
#define SIM_GRANT_ADDR(gref, offset)                                         \
    ((1ULL << 63) | ((uint64_t)(gref) << 12) | ((offset) & 0xfff))

/* Grant the pages of guest RAM [gpa, gpa + len) to the backend, as
 * consecutive references (as Linux's grant DMA does): 0 and *addr set to
 * the device address of gpa, or -ENOSPC / -EINVAL (not in RAM). */
int sim_grant(struct sim *sim, uint64_t gpa, uint64_t len, bool readonly,
              uint64_t *addr);
/* End the grants of what sim_grant() gave at addr for len bytes: 0, or
 * -EBUSY when the backend still maps one (Linux then says "Grant still in
 * use" and the device breaks), -ENOENT when one is not granted. */
int sim_revoke(struct sim *sim, uint64_t addr, uint64_t len);
/* Grant mappings xvdm holds now, and the most it held at once. */
/* Whether the kernel can pin the guest's RAM for direct I/O: as asked
 * (sim_config's pinnable_ram), or because the host has no memfd_secret. */
bool sim_ram_pinnable(const struct sim *sim);
unsigned sim_grants_mapped(struct sim *sim);
unsigned sim_grants_mapped_peak(struct sim *sim);
/* Mappings of grants xvdm made so far (each one a hypercall on Xen). */
unsigned sim_grant_map_calls(struct sim *sim);
/* Revokes refused so far because xvdm still mapped the grant: each one a
 * guest whose Linux would say "Grant still in use" and break the device. */
unsigned sim_revokes_refused(struct sim *sim);
/* The guest page a grant address names, or 0 when not granted. */
uint64_t sim_grant_gpa(struct sim *sim, uint64_t addr);

/* ---- vCPU accesses, delivered as Xen delivers them -------------------- */

/* An MMIO read or write by `vcpu` of `size` bytes (1, 2, 4 or 8). 0 with
 * *value set for reads; -ENXIO when no ioreq server claimed the address
 * (Xen would inject a data abort); -ETIMEDOUT when not answered in time;
 * -EINVAL for a bad vcpu. */
int sim_mmio_read(struct sim *sim, unsigned vcpu, uint64_t addr,
                  unsigned size, uint64_t *value);
int sim_mmio_write(struct sim *sim, unsigned vcpu, uint64_t addr,
                   unsigned size, uint64_t value);
/* Deliver an arbitrary ioreq (any type, size, count, data_is_ptr) to the
 * server, whether or not its address is mapped, as Xen does for
 * broadcast types such as IOREQ_TYPE_INVALIDATE. On return *req holds the
 * answer. 0, -ETIMEDOUT, or -ENODEV when no server exists. */
int sim_ioreq(struct sim *sim, unsigned vcpu, struct ioreq *req);

/* True when xvdm asked for [addr, addr + 1) to be sent to it. */
bool sim_mmio_mapped(struct sim *sim, uint64_t addr);

/* ---- interrupt lines -------------------------------------------------- */

/* Times xvdm made SPI `spi` pending (set_irq_level with level 1) so far,
 * and all its set_irq_level calls, level 0 (which Xen ignores) included. */
unsigned sim_irq_edges(struct sim *sim, uint32_t spi);
unsigned sim_irq_calls(struct sim *sim, uint32_t spi);
/* Wait until the edge count of `spi` exceeds `seen`. 0, or -ETIMEDOUT. */
int sim_irq_wait(struct sim *sim, uint32_t spi, unsigned seen,
                 unsigned timeout_ms);

/* ---- the fast path (cfg.eventfds) ----------------------------------- */

/* Writes the kernel answered (QueueNotify, and InterruptACK where xvdm
 * assigned it), and those it found already taken by xvdm (each one a race
 * that, on Xen, could answer the vCPU's next ioreq twice). */
unsigned sim_kernel_answers(struct sim *sim);
unsigned sim_kernel_missed(struct sim *sim);
/* True while vCPU `vcpu`'s ioreq waits READY for an answer. */
bool sim_ioreq_waiting(struct sim *sim, unsigned vcpu);
/* ioeventfds and irqfds assigned now. */
unsigned sim_eventfds_assigned(struct sim *sim);
/* Of sim_irq_edges(spi), those an irqfd made. */
unsigned sim_irqfd_edges(struct sim *sim, uint32_t spi);
/* For tests written as a guest that waits for its kick: once xvdm has
 * read every kick eventfd, one register read by `vcpu` through xvdm's loop,
 * which it answers only after the drain those kicks started (as the path
 * without ioeventfds answers a kick); then the SPIs xvdm's irqfds asked
 * for by then are raised (Linux's irqfd raises it within the write that
 * signals it). 0 at once without eventfds. */
int sim_settle(struct sim *sim, unsigned vcpu);

/* From now on, the kernel's handler holds every QueueNotify-shaped
 * candidate it looks at (a COPY write, while an ioeventfd is assigned)
 * INPROCESS for `ms` before it answers it or, matching none of its
 * ioeventfds, gives it back READY, as Linux's ioeventfd_interrupt() does
 * with a dom0 vCPU descheduled inside it. xvdm sees the port fire before
 * that. 0 stops it. */
void sim_kernel_hold(struct sim *sim, unsigned ms);
/* The kernel's handler for vCPU `vcpu`'s event runs now, late (its dom0
 * vCPU descheduled between /dev/xen/evtchn's handler and its own): a
 * COPY write still READY is marked INPROCESS, and `ms` later, on a
 * thread of the sim's, answered if it matches an ioeventfd or else set
 * READY again, whatever the slot holds by then, as Linux's
 * ioeventfd_interrupt() does. For tests, from inside xvdm's handling of
 * that very access; a look still running is waited for first. 0, or
 * -EAGAIN when the slot holds no such write. */
int sim_kernel_look_late(struct sim *sim, unsigned vcpu, unsigned ms);

/* ---- fault injection -------------------------------------------------- */

/* Make every set_irq_level fail with `err` (negative errno) from now on,
 * as Xen does for a bad SPI or a dying domain; 0 stops it. */
void sim_fail_irq(struct sim *sim, int err);

/* The event-channel calls xvdm makes, failing as libxenevtchn's do: taking
 * a pending port (the port stays pending, the fd readable), unmasking the
 * port just taken (it is taken, and lost), notifying a vCPU's port. */
enum sim_evtchn_call {
    SIM_EVTCHN_PENDING,
    SIM_EVTCHN_UNMASK,
    SIM_EVTCHN_NOTIFY,
    SIM_EVTCHN_CALLS
};

/* Make every `call` fail with `err` (negative errno) from now on; 0 stops
 * it. */
void sim_fail_evtchn(struct sim *sim, enum sim_evtchn_call call, int err);

/* Make every grant unmap fail with `err` from now on, the pages staying
 * mapped (as gntdev leaves them when its unmap fails); 0 stops it. */
void sim_fail_grant_unmap(struct sim *sim, int err);

#endif
