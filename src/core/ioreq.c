/* SPDX-License-Identifier: MIT */
/*
 * ioreq dispatch (see ioreq.h). The slot is shared with Xen: its fields are
 * read once, after the state says READY and a read barrier, and the answer
 * is published with a write barrier before IORESP_READY.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "hv.h"
#include "ioreq.h"
#include "loop.h"
#include "mmio-fast.h"
#include "transport-mmio.h"

void ioreq_dispatch_init(struct ioreq_dispatch *d, struct hv *hv)
{
    memset(d, 0, sizeof(*d));
    d->hv = hv;
    d->recheck_fd = -1;
}

static bool ranges_overlap(const struct ioreq_range *a,
                           const struct ioreq_range *b)
{
    return a->base < b->base + b->size && b->base < a->base + a->size;
}

int ioreq_add_range(struct ioreq_dispatch *d, const struct ioreq_range *r)
{
    int ret;

    if (r->size == 0 || r->base + r->size < r->base)
        return -EINVAL;
    for (unsigned i = 0; i < d->nr_ranges; i++)
        if (ranges_overlap(&d->range[i], r))
            return -EEXIST;
    if (d->nr_ranges == IOREQ_RANGES_MAX)
        return -ENOSPC;
    ret = hv_map_mmio(d->hv, r->base, r->size);
    if (ret)
        return ret;
    d->range[d->nr_ranges++] = *r;
    return 0;
}

void ioreq_dispatch_fini(struct ioreq_dispatch *d)
{
    if (d->loop) {
        loop_unwatch(d->loop, hv_evtchn_fd(d->hv));
        loop_unwatch(d->loop, d->recheck_fd);
    }
    d->loop = NULL;
    if (d->recheck_fd >= 0)
        close(d->recheck_fd);
    d->recheck_fd = -1;
    for (unsigned i = 0; i < d->nr_ranges; i++) {
        int ret = hv_unmap_mmio(d->hv, d->range[i].base, d->range[i].size);

        if (ret)
            log_warn("cannot unmap MMIO window 0x%" PRIx64 ": %s",
                     d->range[i].base, strerror(-ret));
    }
    d->nr_ranges = 0;
}

/* The range that holds all of [addr, addr + size), or NULL. */
static const struct ioreq_range *ioreq_route(const struct ioreq_dispatch *d,
                                             uint64_t addr, unsigned size)
{
    for (unsigned i = 0; i < d->nr_ranges; i++) {
        const struct ioreq_range *r = &d->range[i];

        if (addr - r->base < r->size && size <= r->size - (addr - r->base))
            return r;
    }
    return NULL;
}

/* A QueueNotify or InterruptACK the host answers itself (mmio-fast.h):
 * the port fired for xvdm too, but the request is not xvdm's to claim.
 * The kernel looks at neither data_is_ptr nor count, so neither may xvdm
 * here. */
static bool ioreq_host_takes(const struct ioreq_dispatch *d,
                             const struct ioreq *req)
{
    const struct ioreq_range *r = ioreq_route(d, req->addr, 4);

    return r && mmio_fast_takes(r->window, req);
}

static bool ioreq_size_ok(uint32_t size)
{
    return size == 1 || size == 2 || size == 4 || size == 8;
}

static uint64_t ioreq_mask(unsigned size)
{
    return size == 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;
}

/* One MMIO access. Returns the value a read gets; writes return 0. */
static uint64_t ioreq_mmio(struct ioreq_dispatch *d, const struct ioreq *req,
                           struct mmio **window)
{
    const struct ioreq_range *r;

    /* Arm MMIO is always a single access of 1..8 bytes by value; anything
     * else is a confused or hostile sender. */
    if (req->data_is_ptr || req->count != 1 || !ioreq_size_ok(req->size)) {
        d->stats.refused++;
        log_ratelimited(&d->rl, NULL, "refused MMIO ioreq at 0x%" PRIx64
                        ": size %" PRIu32 ", count %" PRIu32
                        ", data_is_ptr %u", req->addr, req->size, req->count,
                        req->data_is_ptr);
        return UINT64_MAX;
    }
    r = ioreq_route(d, req->addr, req->size);
    if (!r) {
        d->stats.unclaimed++;
        log_ratelimited(&d->rl, NULL, "MMIO at 0x%" PRIx64 " (%" PRIu32
                        " bytes) outside every window", req->addr,
                        req->size);
        return ioreq_mask(req->size);
    }
    d->stats.mmio++;
    *window = r->window;
    if (req->dir == IOREQ_READ)
        return mmio_read(r->window, req->addr - r->base, req->size) &
               ioreq_mask(req->size);
    mmio_write(r->window, req->addr - r->base, req->size,
               req->data & ioreq_mask(req->size));
    return 0;
}

/* Linux's ioeventfd handler marks every COPY write it looks at INPROCESS
 * while it searches its ioeventfds, and gives one it does not take back
 * READY with no event of its own (drivers/xen/privcmd.c,
 * ioeventfd_interrupt()); xvdm, woken by the same port, may look in
 * between. Short: the handler runs with interrupts off, unless dom0's vCPU
 * is descheduled inside it. */
#define IOREQ_RECHECK_NS 50000

static void ioreq_recheck_later(struct ioreq_dispatch *d)
{
    struct itimerspec t = {.it_value.tv_nsec = IOREQ_RECHECK_NS};

    if (d->recheck_fd < 0 || d->recheck_armed)
        return;
    if (timerfd_settime(d->recheck_fd, 0, &t, NULL))
        log_ratelimited(&d->rl, NULL, "cannot arm the ioreq recheck timer: "
                        "%s", strerror(errno));
    else
        d->recheck_armed = true;
}

/* vCPU `vcpu`'s slot, indexed by hand: Xen declares the array with one
 * element. */
static volatile struct ioreq *ioreq_slot(const struct ioreq_dispatch *d,
                                         unsigned vcpu)
{
    return (struct ioreq *)d->hv->iopage + vcpu;
}

/* The byte holding the slot's 4-bit state (xen/hvm/ioreq.h): the byte
 * before `type`, the field in its low bits as gcc and clang lay out
 * bit-fields on little-endian ABIs (every one Xen runs on). */
_Static_assert(offsetof(struct ioreq, type) == 31, "ioreq layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "ioreq state bits");

static volatile uint8_t *ioreq_state_byte(volatile struct ioreq *slot)
{
    return (volatile uint8_t *)slot + offsetof(struct ioreq, type) - 1;
}

/* The slot's state, with acquire: the fields after it are read only
 * once READY was seen. */
static uint8_t ioreq_state(volatile struct ioreq *slot)
{
    return __atomic_load_n(ioreq_state_byte(slot), __ATOMIC_ACQUIRE) & 0xf;
}

/* READY -> IORESP_READY, only if the slot is still READY: false when the
 * host's kernel holds it INPROCESS. Its handler stores READY back when
 * it is done with a write it does not take, whatever the slot holds by
 * then, so an answer stored meanwhile would be undone and the vCPU wait
 * for ever. A kernel that read READY but has not yet stored INPROCESS
 * (it takes a spinlock in between) is not seen: narrowed, not closed,
 * until the kernel's handler claims slots with a compare-and-swap of its
 * own. */
static bool ioreq_hand_back(volatile struct ioreq *slot)
{
    volatile uint8_t *b = ioreq_state_byte(slot);
    uint8_t old = *b;

    if ((old & 0xf) != STATE_IOREQ_READY)
        return false;
    /* Release: a read's data before the state that hands it back. */
    return __atomic_compare_exchange_n(b, &old,
                                       (uint8_t)((old & ~0xf) |
                                                 STATE_IORESP_READY),
                                       false, __ATOMIC_RELEASE,
                                       __ATOMIC_RELAXED);
}

static bool ioreq_reads(const struct ioreq_owed *a)
{
    return a->type == IOREQ_TYPE_COPY && a->dir == IOREQ_READ;
}

static bool ioreq_owed_for(const struct ioreq_owed *a, const struct ioreq *r)
{
    return a->owed && a->addr == r->addr && a->size == r->size &&
           a->dir == r->dir && a->type == r->type &&
           (ioreq_reads(a) || a->data == r->data);
}

/* Hand vCPU `vcpu` the answer `a` (its data, for a read), or owe it until
 * the host's kernel gives the slot back; a kick the kernel took is its
 * to answer (`host_kick`), never owed. 0, or the error of the notify. */
static int ioreq_answer(struct ioreq_dispatch *d, unsigned vcpu,
                        const struct ioreq_owed *a, bool host_kick)
{
    volatile struct ioreq *slot = ioreq_slot(d, vcpu);
    int ret;

    if (ioreq_reads(a))
        slot->data = a->data;
    if (!ioreq_hand_back(slot)) {
        /* The kernel holds the kick: it answers it, or gives it back
         * READY and it is claimed again then. */
        if (host_kick) {
            ioreq_recheck_later(d);
            return 0;
        }
        if (!d->owed[vcpu].owed)
            d->stats.deferred++;
        d->owed[vcpu] = *a;
        d->owed[vcpu].owed = true;
        ioreq_recheck_later(d);
        return 0;
    }
    d->owed[vcpu].owed = false;
    d->claim[vcpu] = false;
    ret = hv_evtchn_notify(d->hv, vcpu);
    if (ret)
        log_err("event channel: cannot notify vCPU %u of its answer: %s", vcpu,
                strerror(-ret));
    return ret;
}

/* Answer vCPU `vcpu`'s slot if Xen left an ioreq in it. A kick that
 * matches one of the host's ioeventfds is the host's, unless the vCPU is
 * marked to be claimed (ioreq_serve_waiting()). 0, or the error of the
 * notify that hands the answer back. */
static int ioreq_serve(struct ioreq_dispatch *d, unsigned vcpu)
{
    bool host_kick;
    volatile struct ioreq *slot = ioreq_slot(d, vcpu);
    uint8_t state = ioreq_state(slot);
    struct ioreq req;
    struct mmio *window = NULL;
    uint64_t data = 0;
    int ret;

    if (state == STATE_IOREQ_INPROCESS)
        ioreq_recheck_later(d);
    if (state != STATE_IOREQ_READY) {
        /* Answered after all (the kernel took it): nothing owed, nothing
         * to claim. */
        if (state != STATE_IOREQ_INPROCESS) {
            d->owed[vcpu].owed = false;
            d->claim[vcpu] = false;
        }
        return 0; /* a stray notify: nothing to answer */
    }
    memcpy(&req, (const void *)slot, sizeof(req));
    /* The vCPU waits for its answer, so a READY slot with an answer owed
     * for the same access is that access, given back by the host's
     * kernel: emulated already. */
    if (ioreq_owed_for(&d->owed[vcpu], &req))
        return ioreq_answer(d, vcpu, &d->owed[vcpu], false);
    d->owed[vcpu].owed = false;
    host_kick = ioreq_host_takes(d, &req);
    if (host_kick && !d->claim[vcpu])
        return 0;
    /* Not marked INPROCESS: the kernel's handler would take that for its
     * own mark (ioreq_hand_back()). */
    switch (req.type) {
    case IOREQ_TYPE_COPY:
        data = ioreq_mmio(d, &req, &window);
        break;
    case IOREQ_TYPE_INVALIDATE:
        /* Guest RAM is mapped once and the foreign mapping holds its
         * pages, so there is no cache of mappings to drop. */
        d->stats.invalidate++;
        log_debug("ioreq INVALIDATE on vCPU %u acknowledged", vcpu);
        break;
    default:
        d->stats.other++;
        log_ratelimited(&d->rl, NULL, "ioreq type %u at 0x%" PRIx64
                        " answered untouched", req.type, req.addr);
        break;
    }
    ret = ioreq_answer(d, vcpu,
                       &(struct ioreq_owed){.addr = req.addr,
                                            .data = req.dir == IOREQ_READ
                                                        ? data
                                                        : req.data,
                                            .size = req.size,
                                            .dir = req.dir,
                                            .type = req.type},
                       host_kick);
    /* A QueueNotify is answered before its drain: on real Xen the vCPU
     * then runs on meanwhile, as with the host's ioeventfd (the 4.20
     * rig's peers-slow figures). */
    if (window)
        mmio_run_kicks(window);
    return ret;
}

static int ioreq_handle_events(struct ioreq_dispatch *d)
{
    /* Each vCPU waits for its answer, so a round has at most one ioreq
     * per vCPU; the bound keeps a storm of stray notifies from starving
     * the loop (the fd stays readable and brings us back). */
    unsigned budget = 4 * d->hv->nr_vcpus;
    unsigned vcpu;
    int ret = 0;

    while (ret == 0 && budget--) {
        ret = hv_evtchn_pending(d->hv, &vcpu);
        if (ret == -EAGAIN)
            return 0;
        /* Taking or unmasking a port failed: the fd would stay readable
         * and the loop spin on it, or the port stay masked. */
        if (ret)
            log_err("event channel: cannot take a pending port: %s",
                    strerror(-ret));
        else if (vcpu < d->hv->nr_vcpus)
            ret = ioreq_serve(d, vcpu);
    }
    return ret;
}

static int ioreq_serve_each(struct ioreq_dispatch *d)
{
    int ret = 0;

    for (unsigned vcpu = 0; vcpu < d->hv->nr_vcpus && ret == 0; vcpu++)
        ret = ioreq_serve(d, vcpu);
    return ret;
}

/* A kick READY or held INPROCESS now may have had its event before the
 * kernel's handler knew its ioeventfd (they are assigned one by one,
 * after the server is enabled): the kernel then gives it back READY with
 * no event of its own, and only xvdm will answer it. Each vCPU is marked
 * until its slot is seen answered or with an access of another kind: its
 * kick is claimed with the same compare-and-swap as any answer, and left
 * to the kernel if it holds it. A kernel that read READY but has not yet
 * marked it when xvdm swaps answers it too (ioreq_hand_back()). */
int ioreq_serve_waiting(struct ioreq_dispatch *d)
{
    for (unsigned vcpu = 0; vcpu < d->hv->nr_vcpus; vcpu++)
        d->claim[vcpu] = true;
    return ioreq_serve_each(d);
}

static const char *ioreq_state_name(uint8_t state)
{
    switch (state) {
    case STATE_IOREQ_NONE:
        return "empty";
    case STATE_IOREQ_READY:
        return "READY (waiting for an answer)";
    case STATE_IOREQ_INPROCESS:
        return "INPROCESS (the host's kernel looking at it)";
    case STATE_IORESP_READY:
        return "answered, not yet taken by Xen";
    default:
        return "unknown state";
    }
}

void ioreq_log_slots(const struct ioreq_dispatch *d)
{
    for (unsigned vcpu = 0; vcpu < d->hv->nr_vcpus; vcpu++) {
        volatile struct ioreq *slot = ioreq_slot(d, vcpu);
        uint8_t state = ioreq_state(slot);

        if (state == STATE_IOREQ_NONE)
            log_info("ioreq slot of vCPU %u: empty", vcpu);
        else
            log_info("ioreq slot of vCPU %u: %s: type %u, %s of %u bytes at "
                     "0x%" PRIx64,
                     vcpu, ioreq_state_name(state), slot->type,
                     slot->dir == IOREQ_READ ? "read" : "write", slot->size,
                     slot->addr);
    }
}

static void ioreq_on_events(void *arg, uint32_t revents)
{
    struct ioreq_dispatch *d = arg;
    int ret = ioreq_handle_events(d);

    if (ret)
        loop_fail(d->loop, ret);
}

static void ioreq_on_recheck(void *arg, uint32_t revents)
{
    struct ioreq_dispatch *d = arg;
    uint64_t expired;
    int ret;

    if (read(d->recheck_fd, &expired, sizeof(expired)) < 0)
        return;
    d->recheck_armed = false;
    ret = ioreq_serve_each(d);
    if (ret)
        loop_fail(d->loop, ret);
}

static int ioreq_watch_recheck(struct ioreq_dispatch *d, struct loop *loop)
{
    d->recheck_fd =
        timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (d->recheck_fd < 0)
        return -errno;
    return loop_watch(loop, d->recheck_fd, EPOLLIN, ioreq_on_recheck, d);
}

int ioreq_dispatch_start(struct ioreq_dispatch *d, struct loop *loop)
{
    int ret;

    if (d->hv->nr_vcpus > IOREQ_VCPUS_MAX) {
        log_err("%u vCPUs: one ioreq page serves %u at most",
                d->hv->nr_vcpus, IOREQ_VCPUS_MAX);
        return -E2BIG;
    }
    ret = ioreq_watch_recheck(d, loop);
    if (ret) {
        log_err("cannot set up the ioreq recheck timer: %s", strerror(-ret));
        return ret;
    }
    ret = loop_watch(loop, hv_evtchn_fd(d->hv), EPOLLIN, ioreq_on_events, d);
    if (ret)
        log_err("cannot watch the event channel: %s", strerror(-ret));
    d->loop = loop;
    return ret;
}
