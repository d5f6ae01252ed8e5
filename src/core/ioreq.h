/* SPDX-License-Identifier: MIT */
/*
 * ioreq dispatch: answers the ioreqs Xen puts in the shared ioreq page, one
 * slot per vCPU, and routes MMIO accesses by address to the window that
 * contains them.
 *
 * Per slot: STATE_IOREQ_READY -> (read barrier) emulate -> (release)
 * compare-and-swap READY -> STATE_IORESP_READY -> notify the vCPU's port;
 * never INPROCESS, the host kernel's mark (ioreq.c). Every ioreq
 * is answered, whatever its type, size or address, so no vCPU ever hangs:
 * IOREQ_TYPE_COPY is an MMIO access; IOREQ_TYPE_INVALIDATE and other types
 * are acknowledged; data_is_ptr and count > 1 (x86 string I/O, never sent
 * for Arm MMIO) are refused safely (reads return all ones).
 */
#ifndef XVDM_IOREQ_H
#define XVDM_IOREQ_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

struct hv;
struct loop;
struct mmio;

#define IOREQ_RANGES_MAX 64

/* A guest-physical range served by a virtio-mmio window. */
struct ioreq_range {
    uint64_t base;
    uint64_t size;
    struct mmio *window;
};

struct ioreq_stats {
    uint64_t mmio;        /* IOREQ_TYPE_COPY accesses emulated */
    uint64_t unclaimed;   /* MMIO to no window of ours: reads all ones */
    uint64_t refused;     /* bad size, data_is_ptr, count != 1 */
    uint64_t invalidate;  /* IOREQ_TYPE_INVALIDATE */
    uint64_t other;       /* any other type, answered untouched */
    uint64_t deferred;    /* answers held back while the host's kernel
                           * looked at the slot (ioreq.c) */
};

/* One page of ioreq slots holds this many vCPUs' (32 bytes each). */
#define IOREQ_VCPUS_MAX 128

/* An answer owed to a vCPU whose slot the host's kernel held when it was
 * ready: given once the slot is READY again with the same access. */
struct ioreq_owed {
    bool owed;
    uint64_t addr, data;
    uint32_t size;
    uint8_t dir, type;
};

struct ioreq_dispatch {
    struct hv *hv;
    struct loop *loop; /* serving from it, after ioreq_dispatch_start() */
    unsigned nr_ranges;
    struct ioreq_range range[IOREQ_RANGES_MAX];
    struct ioreq_stats stats;
    struct ratelimit rl;
    /* timerfd: look at the slots again, one was seen INPROCESS (where the
     * host's kernel may give it back READY without an event). */
    int recheck_fd;
    bool recheck_armed;
    struct ioreq_owed owed[IOREQ_VCPUS_MAX];
    /* vCPUs whose kick xvdm claims though the host has its ioeventfd
     * (ioreq_serve_waiting()). */
    bool claim[IOREQ_VCPUS_MAX];
};

void ioreq_dispatch_init(struct ioreq_dispatch *d, struct hv *hv);
/* Route [base, base + size) to r's window and ask the hypervisor to send
 * those accesses here. -EEXIST when it overlaps a range already added,
 * -ENOSPC when full, or the hypervisor's error. */
int ioreq_add_range(struct ioreq_dispatch *d, const struct ioreq_range *r);
/* Serve from `loop`: when the event channel fd is readable, answer every
 * pending vCPU's ioreq; a slot found INPROCESS, which only the host's
 * kernel leaves so (privcmd-eventfd.h), is looked at again shortly until
 * it is answered or READY again. A port that cannot be read, unmasked or notified
 * leaves a vCPU waiting for ever, so no guest access can be served any
 * more: the loop then stops with that error, after a line saying what
 * failed. */
int ioreq_dispatch_start(struct ioreq_dispatch *d, struct loop *loop);
/* Answer any ioreq already waiting in a slot, whatever the ports say: an
 * ioreq sent between enabling the server and binding its ports has had
 * its notification go nowhere, and a kick sent before the host's
 * ioeventfds were assigned went to no kernel handler. For once the fast
 * path is set up; 0, or the error of a failed notify. */
int ioreq_serve_waiting(struct ioreq_dispatch *d);
/* Log each vCPU's slot: empty, or the access in it and its state. A vCPU
 * whose guest is stuck with an ioreq READY in its slot waits for xvdm; one
 * with none waits for something else (SIGUSR1's counters). */
void ioreq_log_slots(const struct ioreq_dispatch *d);
/* Stop serving from the loop and unmap every range from the
 * hypervisor. */
void ioreq_dispatch_fini(struct ioreq_dispatch *d);

#endif
