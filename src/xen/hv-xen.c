/* SPDX-License-Identifier: MIT */
/*
 * The hv seam on Xen: libxendevicemodel (ioreq server, MMIO ranges, IRQ
 * levels), libxenforeignmemory (the ioreq page and the guest's RAM, mapped
 * once), libxenevtchn (the vCPUs' ioreq ports) and libxenctrl (domain
 * facts, at open only).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xendevicemodel.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xengnttab.h>
#include <xentoollog.h>

#include "guest-layout.h"
#include "hv.h"
#include "log.h"
#include "privcmd-eventfd.h"

/* guest-layout.h keeps libxl's Arm layout for hosts that cannot include
 * Xen's Arm header; where it can, the two must agree. */
#if defined(__aarch64__) || defined(__arm__)
_Static_assert(GUEST_LAYOUT_RAM0_BASE == GUEST_RAM0_BASE, "RAM0 base");
_Static_assert(GUEST_LAYOUT_RAM0_SIZE == GUEST_RAM0_SIZE, "RAM0 size");
_Static_assert(GUEST_LAYOUT_RAM1_BASE == GUEST_RAM1_BASE, "RAM1 base");
_Static_assert(GUEST_LAYOUT_RAM1_SIZE == GUEST_RAM1_SIZE, "RAM1 size");
_Static_assert(GUEST_LAYOUT_VIRTIO_MMIO_BASE == GUEST_VIRTIO_MMIO_BASE,
               "virtio-mmio base");
_Static_assert(GUEST_LAYOUT_VIRTIO_MMIO_SIZE == GUEST_VIRTIO_MMIO_SIZE,
               "virtio-mmio size");
_Static_assert(GUEST_LAYOUT_VIRTIO_MMIO_SPI_FIRST ==
                   GUEST_VIRTIO_MMIO_SPI_FIRST, "first virtio SPI");
_Static_assert(GUEST_LAYOUT_VIRTIO_MMIO_SPI_LAST == GUEST_VIRTIO_MMIO_SPI_LAST,
               "last virtio SPI");
#endif

#define XEN_PAGE 4096ULL
/* Guest RAM is mapped in chunks of this many pages, for a bounded pfn/err
 * array per call; the chunks of a bank go side by side in one reserved
 * range, so the bank is one region wherever the guest has pages. */
#define XEN_MAP_CHUNK_PAGES 65536 /* 256 MiB */
#define XEN_VCPUS_MAX 128
#define XEN_BANKS 2

/* One RAM bank's host range: reserved whole, then filled chunk by chunk.
 * What became of each chunk decides how it is let go: a mapped one is
 * unmapped, a reserved one (not reached) munmapped, and one whose mapping
 * failed is left alone (libxenforeignmemory has unmapped it, or not: the
 * range may no longer be ours). */
enum xen_chunk_state { XEN_CHUNK_RESERVED, XEN_CHUNK_MAPPED, XEN_CHUNK_LOST };

struct xen_bank {
    uint8_t *base;
    size_t len;
    size_t chunks;
    uint8_t *state; /* enum xen_chunk_state, per chunk */
};

struct hv_xen {
    struct hv hv; /* first: the seam's handle */
    xentoollog_logger logger;
    xendevicemodel_handle *dm;
    xenforeignmemory_handle *fmem;
    xenevtchn_handle *evtchn;
    xengnttab_handle *gnttab; /* NULL where gntdev is missing */
    xenforeignmemory_resource_handle *iopage_res;
    bool server_created;
    ioservid_t server;
    bool ports_bound;
    evtchn_port_t local_port[XEN_VCPUS_MAX];
    unsigned nr_banks;
    struct xen_bank bank[XEN_BANKS];
    int privcmd; /* for ioeventfd and irqfd: -1 where the kernel lacks them */
};

static struct hv_xen *xen_of(struct hv *hv)
{
    return (struct hv_xen *)hv;
}

/* The Xen libraries report through a xentoollog logger; theirs prints to
 * stderr. Ours sends their detail to our debug level: what failed is said
 * once, by us. */
static void xen_log_vmessage(xentoollog_logger *logger,
                             xentoollog_level level, int errnoval,
                             const char *context, const char *format,
                             va_list al) __attribute__((format(printf, 5, 0)));

static void xen_log_vmessage(xentoollog_logger *logger,
                             xentoollog_level level, int errnoval,
                             const char *context, const char *format,
                             va_list al)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), format, al);
    log_debug("%s: %s%s%s", context ? context : "xen", msg,
              errnoval >= 0 ? ": " : "",
              errnoval >= 0 ? strerror(errnoval) : "");
}

static void xen_log_destroy(xentoollog_logger *logger)
{
}

/* ---- ioreq server ----------------------------------------------------- */

static int xen_bind_ports(struct hv_xen *x)
{
    const struct ioreq *slots = (const struct ioreq *)x->hv.iopage;

    for (unsigned i = 0; i < x->hv.nr_vcpus; i++) {
        xenevtchn_port_or_error_t port = xenevtchn_bind_interdomain(
            x->evtchn, x->hv.domid, slots[i].vp_eport);

        if (port < 0) {
            log_err("cannot bind vCPU %u's ioreq port %" PRIu32 ": %s", i,
                    slots[i].vp_eport, strerror(errno));
            return -errno;
        }
        x->local_port[i] = (evtchn_port_t)port;
    }
    x->ports_bound = true;
    return 0;
}

static int xen_ioreq_server_create(struct hv *hv)
{
    struct hv_xen *x = xen_of(hv);
    void *page = NULL;

    /* Buffered ioreqs are for x86 port writes; virtio-mmio needs none. */
    if (xendevicemodel_create_ioreq_server(x->dm, hv->domid,
                                           HVM_IOREQSRV_BUFIOREQ_OFF,
                                           &x->server)) {
        log_err("cannot create an ioreq server for domain %u: %s (is Xen "
                "built with CONFIG_IOREQ_SERVER?)", hv->domid,
                strerror(errno));
        return -errno;
    }
    x->server_created = true;
    x->iopage_res = xenforeignmemory_map_resource(
        x->fmem, hv->domid, XENMEM_resource_ioreq_server, x->server,
        XENMEM_resource_ioreq_server_frame_ioreq(0), 1, &page,
        PROT_READ | PROT_WRITE, 0);
    if (!x->iopage_res) {
        log_err("cannot map the ioreq page of server %u: %s", x->server,
                strerror(errno));
        return -errno;
    }
    hv->iopage = page;
    return 0;
}

/* Xen takes an inclusive end. */
static int xen_mmio_range(struct hv *hv, uint64_t start, uint64_t size,
                          bool map)
{
    struct hv_xen *x = xen_of(hv);
    uint64_t end = start + size - 1;
    int ret;

    if (map)
        ret = xendevicemodel_map_io_range_to_ioreq_server(
            x->dm, hv->domid, x->server, 1, start, end);
    else
        ret = xendevicemodel_unmap_io_range_from_ioreq_server(
            x->dm, hv->domid, x->server, 1, start, end);
    return ret ? -errno : 0;
}

static int xen_map_mmio(struct hv *hv, uint64_t start, uint64_t size)
{
    return xen_mmio_range(hv, start, size, true);
}

static int xen_unmap_mmio(struct hv *hv, uint64_t start, uint64_t size)
{
    return xen_mmio_range(hv, start, size, false);
}

/* Xen writes each vCPU's port into the ioreq page only when the server is
 * enabled (ioreq_update_evtchn() in Xen's common/ioreq.c), so the ports
 * are bound then, as QEMU does. */
static int xen_set_server_state(struct hv *hv, bool enabled)
{
    struct hv_xen *x = xen_of(hv);

    if (xendevicemodel_set_ioreq_server_state(x->dm, hv->domid, x->server,
                                              enabled))
        return -errno;
    return enabled && !x->ports_bound ? xen_bind_ports(x) : 0;
}

/* ---- event channels ----------------------------------------------------- */

static int xen_evtchn_fd(struct hv *hv)
{
    return xenevtchn_fd(xen_of(hv)->evtchn);
}

static int xen_evtchn_pending(struct hv *hv, unsigned *vcpu)
{
    struct hv_xen *x = xen_of(hv);
    xenevtchn_port_or_error_t port = xenevtchn_pending(x->evtchn);

    if (port < 0)
        return errno == EAGAIN ? -EAGAIN : -errno;
    if (xenevtchn_unmask(x->evtchn, (evtchn_port_t)port))
        return -errno;
    for (unsigned i = 0; i < hv->nr_vcpus; i++) {
        if (x->local_port[i] == (evtchn_port_t)port) {
            *vcpu = i;
            return 0;
        }
    }
    *vcpu = UINT32_MAX; /* not one of ours: the caller ignores it */
    return 0;
}

static int xen_evtchn_notify(struct hv *hv, unsigned vcpu)
{
    struct hv_xen *x = xen_of(hv);

    if (vcpu >= hv->nr_vcpus)
        return -EINVAL;
    return xenevtchn_notify(x->evtchn, x->local_port[vcpu]) ? -errno : 0;
}

static int xen_set_irq_level(struct hv *hv, uint32_t irq, unsigned level)
{
    if (xendevicemodel_set_irq_level(xen_of(hv)->dm, hv->domid, irq, level))
        return -errno;
    return 0;
}

/* ---- the fast path (privcmd-eventfd.h) ------------------------------------ */

static int xen_ioeventfd(struct hv *hv, uint64_t window, uint32_t vq, int fd,
                         bool assign)
{
    struct hv_xen *x = xen_of(hv);

    if (!x->ports_bound)
        return -EINVAL;
    return privcmd_ioeventfd(x->privcmd, hv->domid, hv->iopage,
                             x->local_port, hv->nr_vcpus, window, vq, fd,
                             assign);
}

static int xen_irqfd(struct hv *hv, uint32_t spi, int fd, bool assign)
{
    return privcmd_irqfd(xen_of(hv)->privcmd, hv->domid, spi, fd, assign);
}

/* Opened now, before any --chroot, restricted to the guest at once. */
static void xen_open_privcmd(struct hv_xen *x)
{
    int ret = privcmd_eventfd_open(x->hv.domid, &x->privcmd);

    x->hv.eventfds = ret == 0;
    if (ret == -EOPNOTSUPP)
        log_info("fast path: off: this kernel lacks privcmd's ioeventfd and "
                 "irqfd (Linux 6.7 or later with "
                 "CONFIG_XEN_PRIVCMD_EVENTFD)");
    else if (ret)
        log_warn("fast path: off: cannot open /dev/xen/privcmd for it: %s",
                 strerror(-ret));
}

/* ---- grants ------------------------------------------------------------- */

static void *xen_grant_map(struct hv *hv, const uint32_t *refs, unsigned n,
                           bool writable)
{
    struct hv_xen *x = xen_of(hv);

    if (!x->gnttab) {
        errno = ENODEV;
        return NULL;
    }
    return xengnttab_map_domain_grant_refs(
        x->gnttab, n, hv->domid, (uint32_t *)refs,
        PROT_READ | (writable ? PROT_WRITE : 0));
}

static int xen_grant_unmap(struct hv *hv, void *addr, unsigned n)
{
    return xengnttab_unmap(xen_of(hv)->gnttab, addr, n) ? -errno : 0;
}

static int xen_restrict(struct hv *hv)
{
    struct hv_xen *x = xen_of(hv);

    if (xendevicemodel_restrict(x->dm, hv->domid) ||
        xenforeignmemory_restrict(x->fmem, hv->domid))
        return -errno;
#ifdef HAVE_XENEVTCHN_RESTRICT
    if (xenevtchn_restrict(x->evtchn, hv->domid))
        return -errno;
#endif
    return 0;
}

/* ---- teardown ------------------------------------------------------------ */

#define XEN_CHUNK_BYTES (XEN_MAP_CHUNK_PAGES * XEN_PAGE)

/* Chunk c of bank b: where it is, and its pages (the last may be short). */
static uint8_t *xen_chunk_at(const struct xen_bank *b, size_t c,
                             size_t *pages)
{
    size_t left = b->len - c * XEN_CHUNK_BYTES;

    *pages = (left < XEN_CHUNK_BYTES ? left : XEN_CHUNK_BYTES) / XEN_PAGE;
    return b->base + c * XEN_CHUNK_BYTES;
}

static void xen_unmap_ram(struct hv_xen *x)
{
    for (unsigned i = 0; i < x->nr_banks; i++) {
        struct xen_bank *b = &x->bank[i];

        for (size_t c = 0; c < b->chunks; c++) {
            size_t pages;
            uint8_t *at = xen_chunk_at(b, c, &pages);

            if (b->state[c] == XEN_CHUNK_MAPPED)
                xenforeignmemory_unmap(x->fmem, at, pages);
            else if (b->state[c] == XEN_CHUNK_RESERVED)
                munmap(at, pages * XEN_PAGE);
        }
        free(b->state);
    }
    x->nr_banks = 0;
}

static void xen_close(struct hv *hv)
{
    struct hv_xen *x = xen_of(hv);

    for (unsigned i = 0; x->evtchn && i < hv->nr_vcpus; i++)
        if (x->local_port[i])
            xenevtchn_unbind(x->evtchn, x->local_port[i]);
    if (x->iopage_res)
        xenforeignmemory_unmap_resource(x->fmem, x->iopage_res);
    if (x->server_created &&
        xendevicemodel_destroy_ioreq_server(x->dm, hv->domid, x->server))
        log_warn("cannot destroy ioreq server %u: %s", x->server,
                 strerror(errno));
    if (x->fmem)
        xen_unmap_ram(x);
    if (x->evtchn)
        xenevtchn_close(x->evtchn);
    if (x->gnttab)
        xengnttab_close(x->gnttab);
    if (x->privcmd >= 0)
        close(x->privcmd);
    if (x->fmem)
        xenforeignmemory_close(x->fmem);
    if (x->dm)
        xendevicemodel_close(x->dm);
    free(x);
}

static int xen_map_ram(struct hv_xen *x);

static int xen_map_guest_ram(struct hv *hv)
{
    int ret = xen_map_ram(xen_of(hv));

    if (ret)
        log_err("domain %u: cannot map its RAM: %s", hv->domid,
                strerror(-ret));
    else
        log_info("domain %u: %u RAM region(s) mapped", hv->domid,
                 hv->mem.nr);
    return ret;
}

static const struct hv_ops xen_ops = {
    .name = "xen",
    .ioreq_server_create = xen_ioreq_server_create,
    .map_mmio = xen_map_mmio,
    .unmap_mmio = xen_unmap_mmio,
    .set_server_state = xen_set_server_state,
    .evtchn_fd = xen_evtchn_fd,
    .evtchn_pending = xen_evtchn_pending,
    .evtchn_notify = xen_evtchn_notify,
    .set_irq_level = xen_set_irq_level,
    .grant_map = xen_grant_map,
    .grant_unmap = xen_grant_unmap,
    .ioeventfd = xen_ioeventfd,
    .irqfd = xen_irqfd,
    .restrict_to_guest = xen_restrict,
    .map_guest_ram = xen_map_guest_ram,
    .close = xen_close,
};

/* ---- opening -------------------------------------------------------------- */

/* The most RAM the guest may have: libxl sets it from the xl config. The
 * libxenctrl API for it changed in Xen 4.18. */
static int xen_guest_max_ram(struct hv_xen *x, uint64_t *bytes)
{
    xc_interface *xc = xc_interface_open(&x->logger, &x->logger, 0);
    int ret = 0;

    if (!xc)
        return -errno;
#ifdef HAVE_XC_DOMAIN_GETINFO_SINGLE
    xc_domaininfo_t info;

    if (xc_domain_getinfo_single(xc, x->hv.domid, &info) < 0)
        ret = -errno;
    else
        *bytes = (uint64_t)info.max_pages * XEN_PAGE;
#else
    xc_dominfo_t info;

    if (xc_domain_getinfo(xc, x->hv.domid, 1, &info) != 1 ||
        info.domid != x->hv.domid)
        ret = -ESRCH;
    else
        *bytes = (uint64_t)info.max_memkb * 1024;
#endif
    xc_interface_close(xc);
    return ret;
}

/* ---- the domain's state, for the watcher process --------------------------- */

struct hv_state_probe {
    xc_interface *xc;
};

struct hv_state_probe *hv_xen_state_probe_open(void)
{
    struct hv_state_probe *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->xc = xc_interface_open(NULL, NULL, 0);
    if (!p->xc) {
        int err = errno;

        log_err("cannot open Xen's control interface to watch guests: %s",
                strerror(err));
        free(p);
        errno = err;
        return NULL;
    }
    return p;
}

void hv_xen_state_probe_close(struct hv_state_probe *p)
{
    if (p) {
        xc_interface_close(p->xc);
        free(p);
    }
}

int hv_xen_hold_guest(void *probe, uint32_t domid, bool hold)
{
    struct hv_state_probe *p = probe;
    int ret = hold ? xc_domain_pause(p->xc, domid)
                   : xc_domain_unpause(p->xc, domid);

    return ret < 0 ? -errno : 0;
}

/* A suspended guest may be resumed (a checkpoint), so it is still ours. */
static enum hv_guest_state xen_state_of(bool dying, bool shutdown,
                                        unsigned reason)
{
    if (dying)
        return HV_GUEST_DYING;
    if (shutdown && reason != SHUTDOWN_suspend)
        return HV_GUEST_SHUT_DOWN;
    return HV_GUEST_RUNNING;
}

enum hv_guest_state hv_xen_guest_state(void *probe, uint32_t domid)
{
    struct hv_state_probe *p = probe;
#ifdef HAVE_XC_DOMAIN_GETINFO_SINGLE
    xc_domaininfo_t info;

    /* A failure other than "no such domain" says nothing of the guest. */
    if (xc_domain_getinfo_single(p->xc, domid, &info) < 0)
        return errno == ESRCH ? HV_GUEST_GONE : HV_GUEST_RUNNING;
    return xen_state_of(info.flags & XEN_DOMINF_dying,
                        info.flags & XEN_DOMINF_shutdown,
                        (info.flags >> XEN_DOMINF_shutdownshift) &
                            XEN_DOMINF_shutdownmask);
#else
    xc_dominfo_t info;

    /* It answers for the first domain from domid on; a failure says
     * nothing of the guest. */
    int n = xc_domain_getinfo(p->xc, domid, 1, &info);

    if (n < 0)
        return HV_GUEST_RUNNING;
    if (n == 0 || info.domid != domid)
        return HV_GUEST_GONE;
    return xen_state_of(info.dying, info.shutdown, info.shutdown_reason);
#endif
}

/* Add the runs of pages that mapped (err[i] == 0) as guest RAM regions:
 * pages the guest never populated are holes, not errors. */
static int xen_add_runs(struct hv_xen *x, uint64_t gpa, uint8_t *addr,
                        const int *err, size_t pages)
{
    size_t i = 0;

    while (i < pages) {
        size_t start;
        int ret;

        for (; i < pages && err[i]; i++)
            ;
        for (start = i; i < pages && !err[i]; i++)
            ;
        if (i == start)
            continue;
        ret = gmem_add(&x->hv.mem, gpa + start * XEN_PAGE,
                       (i - start) * XEN_PAGE, addr + start * XEN_PAGE);
        if (ret == -ENOSPC)
            log_err("domain %u: guest RAM splits into more than %d regions "
                    "(runs of pages between pages it never populated)",
                    x->hv.domid, GMEM_REGIONS_MAX);
        if (ret)
            return ret;
    }
    return 0;
}

/* Map chunk c of the bank, which starts at guest address gpa, in place of
 * its part of the reservation. A chunk Xen has no pages for at all is not
 * an error: the guest has a hole there. */
static int xen_map_chunk(struct hv_xen *x, struct xen_bank *b, size_t c,
                         uint64_t gpa, xen_pfn_t *pfns, int *err)
{
    size_t pages;
    uint8_t *at = xen_chunk_at(b, c, &pages);

    for (size_t i = 0; i < pages; i++)
        pfns[i] = (xen_pfn_t)(gpa / XEN_PAGE + i);
    if (!xenforeignmemory_map2(x->fmem, x->hv.domid, at,
                               PROT_READ | PROT_WRITE, MAP_FIXED, pages, pfns,
                               err)) {
        b->state[c] = XEN_CHUNK_LOST;
        return errno == ENOENT || errno == EINVAL ? 0 : -errno;
    }
    b->state[c] = XEN_CHUNK_MAPPED;
    return xen_add_runs(x, gpa, at, err, pages);
}

/* The bank [base, base + size) into one host range, its chunks side by
 * side, so that where the guest has pages on both sides of a chunk's end
 * they are one region. */
static int xen_map_bank(struct hv_xen *x, uint64_t base, uint64_t size,
                        xen_pfn_t *pfns, int *err)
{
    struct xen_bank *b = &x->bank[x->nr_banks];
    size_t chunks = (size + XEN_CHUNK_BYTES - 1) / XEN_CHUNK_BYTES;
    void *range;

    b->state = calloc(chunks, 1);
    if (!b->state)
        return -ENOMEM;
    range = mmap(NULL, size, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (range == MAP_FAILED) {
        free(b->state);
        return -errno;
    }
    *b = (struct xen_bank){.base = range, .len = size, .chunks = chunks,
                           .state = b->state};
    x->nr_banks++;
    for (size_t c = 0; c < chunks; c++) {
        int ret = xen_map_chunk(x, b, c, base + c * XEN_CHUNK_BYTES, pfns,
                                err);

        if (ret)
            return ret;
    }
    return 0;
}

/* Arm guests: libxl puts the first 3 GiB at GUEST_RAM0_BASE and the rest
 * at GUEST_RAM1_BASE. */
static int xen_map_ram(struct hv_xen *x)
{
    xen_pfn_t *pfns = calloc(XEN_MAP_CHUNK_PAGES, sizeof(*pfns));
    int *err = calloc(XEN_MAP_CHUNK_PAGES, sizeof(*err));
    uint64_t max = 0, bank0;
    int ret;

    ret = !pfns || !err ? -ENOMEM : xen_guest_max_ram(x, &max);
    max &= ~(XEN_PAGE - 1);
    if (ret == 0) {
        bank0 = max < GUEST_LAYOUT_RAM0_SIZE ? max : GUEST_LAYOUT_RAM0_SIZE;
        ret = xen_map_bank(x, GUEST_LAYOUT_RAM0_BASE, bank0, pfns, err);
        if (ret == 0 && max > bank0)
            ret = xen_map_bank(x, GUEST_LAYOUT_RAM1_BASE, max - bank0, pfns,
                               err);
    }
    free(pfns);
    free(err);
    if (ret == 0 && x->hv.mem.nr == 0)
        ret = -ENOMEM;
    return ret;
}

static int xen_open_handles(struct hv_xen *x)
{
    unsigned vcpus;
    int flags;

    x->dm = xendevicemodel_open(&x->logger, 0);
    if (!x->dm) {
        log_err("cannot open Xen's device-model interface: %s (is this "
                "dom0 of a Xen host, with /dev/xen mounted?)",
                strerror(errno));
        return -errno;
    }
    x->fmem = xenforeignmemory_open(&x->logger, 0);
    x->evtchn = xenevtchn_open(&x->logger, 0);
    /* Only devices in grant mode need it; opened now, before any
     * --chroot, or never. */
    x->gnttab = xengnttab_open(&x->logger, 0);
    if (!x->fmem || !x->evtchn) {
        log_err("cannot open Xen's foreign-memory or event-channel "
                "interface: %s", strerror(errno));
        return -errno;
    }
    /* The loop drains ports until EAGAIN; it must never block. */
    flags = fcntl(xenevtchn_fd(x->evtchn), F_GETFL);
    if (flags < 0 ||
        fcntl(xenevtchn_fd(x->evtchn), F_SETFL, flags | O_NONBLOCK))
        return -errno;
    if (xendevicemodel_nr_vcpus(x->dm, x->hv.domid, &vcpus)) {
        log_err("domain %u: cannot get its vCPU count: %s (does it exist?)",
                x->hv.domid, strerror(errno));
        return -errno;
    }
    if (vcpus == 0 || vcpus > XEN_VCPUS_MAX) {
        log_err("domain %u has %u vCPUs; xvdm serves 1..%d", x->hv.domid,
                vcpus, XEN_VCPUS_MAX);
        return -ERANGE;
    }
    x->hv.nr_vcpus = vcpus;
    xen_open_privcmd(x);
    return 0;
}

struct hv *hv_xen_open(uint32_t domid)
{
    struct hv_xen *x = calloc(1, sizeof(*x));
    int ret;

    if (!x)
        return NULL;
    x->hv.ops = &xen_ops;
    x->hv.domid = domid;
    x->privcmd = -1;
    x->logger.vmessage = xen_log_vmessage;
    x->logger.destroy = xen_log_destroy;
    ret = xen_open_handles(x);
    if (ret) {
        xen_close(&x->hv);
        errno = -ret;
        return NULL;
    }
    log_info("domain %u: %u vCPUs", domid, x->hv.nr_vcpus);
    return &x->hv;
}
