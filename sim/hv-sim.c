/* SPDX-License-Identifier: MIT */
/*
 * The simulated hypervisor (see sim.h). It plays Xen's part of the ioreq
 * contract: a vCPU access fills that vCPU's slot of a shared_iopage, sets
 * STATE_IOREQ_READY after a write barrier, makes the vCPU's port pending on
 * one fd, and waits for STATE_IORESP_READY plus a notify on its port.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guest-layout.h"
#include "hv.h"
#include "sim-private.h"
#include "sim.h"

struct sim *sim_of(struct hv *hv)
{
    return (struct sim *)hv; /* hv is the first member */
}

unsigned sim_count(struct sim *sim, const unsigned *counter)
{
    unsigned n;

    pthread_mutex_lock(&sim->lock);
    n = *counter;
    pthread_mutex_unlock(&sim->lock);
    return n;
}

static volatile struct ioreq *sim_slot(struct sim *sim, unsigned vcpu)
{
    return (struct ioreq *)sim->hv.iopage + vcpu;
}

/* ---- xvdm's side: the hv operations -------------------------------------- */

static int sim_server_create(struct hv *hv)
{
    struct sim *sim = sim_of(hv);
    int ret = 0;

    pthread_mutex_lock(&sim->lock);
    if (sim->server_exists)
        ret = -EEXIST;
    else
        sim->server_exists = true;
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static int sim_map_mmio(struct hv *hv, uint64_t start, uint64_t size)
{
    struct sim *sim = sim_of(hv);
    int ret = 0;

    pthread_mutex_lock(&sim->lock);
    if (!sim->server_exists)
        ret = -ENOENT;
    else if (sim->nr_ranges == SIM_RANGES_MAX)
        ret = -ENOSPC;
    else
        sim->range[sim->nr_ranges++] = (struct sim_range){start, size};
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static int sim_unmap_mmio(struct hv *hv, uint64_t start, uint64_t size)
{
    struct sim *sim = sim_of(hv);
    int ret = -ENOENT;

    pthread_mutex_lock(&sim->lock);
    for (unsigned i = 0; i < sim->nr_ranges; i++) {
        if (sim->range[i].start == start && sim->range[i].size == size) {
            sim->range[i] = sim->range[--sim->nr_ranges];
            ret = 0;
            break;
        }
    }
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static int sim_set_server_state(struct hv *hv, bool enabled)
{
    struct sim *sim = sim_of(hv);
    int ret = 0;

    pthread_mutex_lock(&sim->lock);
    if (sim->server_exists) {
        sim->server_enabled = enabled;
        sim->server_was_enabled |= enabled;
    } else
        ret = -ENOENT;
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static int sim_evtchn_fd(struct hv *hv)
{
    return sim_of(hv)->evtchn_fd;
}

static int sim_evtchn_pending(struct hv *hv, unsigned *vcpu)
{
    struct sim *sim = sim_of(hv);
    uint64_t drained;
    int ret = -EAGAIN;

    pthread_mutex_lock(&sim->lock);
    if (sim->evtchn_error[SIM_EVTCHN_PENDING]) {
        ret = sim->evtchn_error[SIM_EVTCHN_PENDING];
        pthread_mutex_unlock(&sim->lock);
        return ret;
    }
    if (sim->pending) {
        *vcpu = (unsigned)__builtin_ctzll(sim->pending);
        sim->pending &= sim->pending - 1;
        ret = sim->evtchn_error[SIM_EVTCHN_UNMASK];
    }
    /* The fd stays readable exactly while a port is pending. */
    if (!sim->pending &&
        read(sim->evtchn_fd, &drained, sizeof(drained)) < 0 &&
        errno != EAGAIN)
        ret = -errno;
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static int sim_evtchn_notify(struct hv *hv, unsigned vcpu)
{
    struct sim *sim = sim_of(hv);
    int ret;

    if (vcpu >= sim->cfg.nr_vcpus)
        return -EINVAL;
    pthread_mutex_lock(&sim->lock);
    ret = sim->evtchn_error[SIM_EVTCHN_NOTIFY];
    if (ret == 0)
        sim->notified |= 1ULL << vcpu;
    pthread_cond_broadcast(&sim->answered);
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static int sim_set_irq_level(struct hv *hv, uint32_t irq, unsigned level)
{
    struct sim *sim = sim_of(hv);
    struct sim_spi *spi;

    /* Xen refuses SPIs outside what the guest's GIC has. */
    if (irq < GUEST_LAYOUT_SPI_MIN || irq >= SIM_SPIS || level > 1)
        return -EINVAL;
    pthread_mutex_lock(&sim->lock);
    if (sim->irq_error) {
        pthread_mutex_unlock(&sim->lock);
        return sim->irq_error;
    }
    spi = &sim->spi[irq];
    /* As Xen's vGICs treat an edge-triggered SPI: every level 1 makes it
     * pending, level 0 is ignored. */
    spi->calls++;
    if (level)
        spi->edges++;
    pthread_cond_broadcast(&sim->edge);
    pthread_mutex_unlock(&sim->lock);
    return 0;
}

static void sim_close(struct hv *hv)
{
    struct sim *sim = sim_of(hv);

    pthread_mutex_lock(&sim->lock);
    sim->server_exists = false;
    sim->server_enabled = false;
    sim->nr_ranges = 0;
    pthread_cond_broadcast(&sim->answered);
    pthread_mutex_unlock(&sim->lock);
}

static const struct hv_ops sim_ops = {
    .name = "sim",
    .ioreq_server_create = sim_server_create,
    .map_mmio = sim_map_mmio,
    .unmap_mmio = sim_unmap_mmio,
    .set_server_state = sim_set_server_state,
    .evtchn_fd = sim_evtchn_fd,
    .evtchn_pending = sim_evtchn_pending,
    .evtchn_notify = sim_evtchn_notify,
    .set_irq_level = sim_set_irq_level,
    .grant_map = sim_grant_map,
    .grant_unmap = sim_grant_unmap,
    .ioeventfd = sim_ioeventfd,
    .irqfd = sim_irqfd,
    .close = sim_close,
};

/* ---- life cycle ------------------------------------------------------------ */

static int sim_init_sync(struct sim *sim)
{
    pthread_condattr_t attr;
    int ret;

    /* Timeouts must not jump with the wall clock. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    ret = pthread_cond_init(&sim->answered, &attr);
    if (ret == 0) {
        ret = pthread_cond_init(&sim->edge, &attr);
        if (ret)
            pthread_cond_destroy(&sim->answered);
    }
    pthread_condattr_destroy(&attr);
    if (ret)
        return -ret;
    ret = pthread_mutex_init(&sim->lock, NULL);
    if (ret) {
        pthread_cond_destroy(&sim->edge);
        pthread_cond_destroy(&sim->answered);
        return -ret;
    }
    return 0;
}

static void sim_destroy_sync(struct sim *sim)
{
    pthread_cond_destroy(&sim->edge);
    pthread_cond_destroy(&sim->answered);
    pthread_mutex_destroy(&sim->lock);
}

/* The regions cfg asks for: its own, or the default shape (sim.h). */
static unsigned sim_layout(const struct sim_config *cfg,
                           struct sim_ram_region *out)
{
    uint64_t tail = GUEST_LAYOUT_RAM0_BASE + cfg->ram_size + SIM_RAM_HOLE;

    if (cfg->nr_regions) {
        memcpy(out, cfg->region, cfg->nr_regions * sizeof(*out));
        return cfg->nr_regions;
    }
    out[0] = (struct sim_ram_region){GUEST_LAYOUT_RAM0_BASE, cfg->ram_size};
    out[1] = (struct sim_ram_region){tail, SIM_RAM_TAIL_SIZE};
    out[2] = (struct sim_ram_region){GUEST_LAYOUT_RAM1_BASE,
                                     SIM_RAM_BANK1_SIZE};
    return 3;
}

static bool sim_config_ok(const struct sim_config *cfg)
{
    if (cfg->nr_vcpus < 1 || cfg->nr_vcpus > SIM_VCPUS_MAX ||
        cfg->nr_regions > SIM_RAM_REGIONS_MAX)
        return false;
    if (cfg->nr_regions == 0)
        return cfg->ram_size && cfg->ram_size % SIM_PAGE == 0 &&
               cfg->ram_size <= GUEST_LAYOUT_RAM0_SIZE - SIM_RAM_HOLE -
                                    SIM_RAM_TAIL_SIZE;
    for (unsigned i = 0; i < cfg->nr_regions; i++)
        if (!cfg->region[i].size || cfg->region[i].size % SIM_PAGE ||
            cfg->region[i].gpa % SIM_PAGE)
            return false;
    return true;
}

/* Map one region between guard pages, from `offset` in the RAM's memfd,
 * and add it to the guest's RAM. */
static int sim_map_ram(struct sim *sim, const struct sim_ram_region *r,
                       off_t offset)
{
    struct sim_ram_map *m = &sim->ram[sim->nr_ram];
    int ret;

    m->len = r->size + 2 * SIM_PAGE;
    m->map = mmap(NULL, m->len, PROT_NONE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m->map == MAP_FAILED)
        return -errno;
    if (mmap(m->map + SIM_PAGE, r->size, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_FIXED, sim->ram_fd, offset) == MAP_FAILED) {
        ret = -errno;
        munmap(m->map, m->len);
        return ret;
    }
    ret = gmem_add(&sim->hv.mem, r->gpa, r->size, m->map + SIM_PAGE);
    if (ret) {
        munmap(m->map, m->len);
        return ret;
    }
    m->r = *r;
    m->offset = offset;
    sim->nr_ram++;
    return 0;
}

static void sim_unmap_ram(struct sim *sim)
{
    for (unsigned i = 0; i < sim->nr_ram; i++)
        munmap(sim->ram[i].map, sim->ram[i].len);
    sim->nr_ram = 0;
    if (sim->ram_fd >= 0)
        close(sim->ram_fd);
    sim->ram_fd = -1;
}

/* A memfd of `len` bytes (sized once and for all) the kernel cannot pin
 * for I/O, where the host has memfd_secret(2) and lets us lock that much;
 * else -1. Xen's foreign mappings of a guest's RAM (privcmd: VM_IO |
 * VM_PFNMAP) cannot be pinned either: O_DIRECT on them fails with EFAULT,
 * copying in and out of them works. The sim's RAM behaves the same
 * wherever it can. */
static int sim_unpinnable_memfd(off_t len)
{
#ifdef SYS_memfd_secret
    int fd = (int)syscall(SYS_memfd_secret, (unsigned)O_CLOEXEC);
    void *probe;

    if (fd < 0)
        return -1;
    probe = ftruncate(fd, len) == 0
                ? mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED,
                       fd, 0)
                : MAP_FAILED;
    if (probe != MAP_FAILED) {
        munmap(probe, (size_t)len);
        return fd;
    }
    close(fd);
#endif
    (void)len;
    return -1;
}

bool sim_ram_pinnable(const struct sim *sim)
{
    return sim->ram_pinnable;
}

/* The regions' bytes live in one memfd, so that a grant can map a page of
 * them a second time, as Xen maps a granted page for the backend. */
static int sim_create_ram(struct sim *sim)
{
    struct sim_ram_region want[SIM_RAM_REGIONS_MAX];
    unsigned n = sim_layout(&sim->cfg, want);
    off_t total = 0;
    int ret = 0;

    for (unsigned i = 0; i < n; i++)
        total += (off_t)want[i].size;
    sim->ram_fd = sim->cfg.pinnable_ram ? -1 : sim_unpinnable_memfd(total);
    sim->ram_pinnable = sim->ram_fd < 0;
    if (sim->ram_fd < 0) {
        sim->ram_fd = memfd_create("xvdm-sim-ram", MFD_CLOEXEC);
        if (sim->ram_fd < 0 || ftruncate(sim->ram_fd, total))
            return -errno;
    }
    total = 0;
    for (unsigned i = 0; i < n && ret == 0; i++) {
        ret = sim_map_ram(sim, &want[i], total);
        total += (off_t)want[i].size;
    }
    return ret;
}

struct sim *sim_create(const struct sim_config *cfg)
{
    struct sim *sim;
    int err = ENOMEM;

    if (!sim_config_ok(cfg)) {
        errno = EINVAL;
        return NULL;
    }
    sim = calloc(1, sizeof(*sim));
    if (!sim)
        return NULL;
    sim->cfg = *cfg;
    sim->evtchn_fd = -1;
    sim->ram_fd = -1;
    sim->irqfd_epoll = sim->irqfd_stop = -1;
    sim->hv.iopage = aligned_alloc(SIM_PAGE, SIM_PAGE);
    if (!sim->hv.iopage)
        goto fail;
    memset(sim->hv.iopage, 0, SIM_PAGE);
    sim->evtchn_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sim->evtchn_fd < 0) {
        err = errno;
        goto fail;
    }
    err = -sim_create_ram(sim);
    if (err)
        goto fail;
    err = -sim_init_sync(sim);
    if (err)
        goto fail;
    if (cfg->eventfds && (err = -sim_irqfd_start(sim)) != 0) {
        sim_irqfd_stop(sim);
        sim_destroy_sync(sim);
        goto fail;
    }
    sim->hv.eventfds = cfg->eventfds;
    sim->hv.ops = &sim_ops;
    sim->hv.domid = cfg->domid;
    sim->hv.nr_vcpus = cfg->nr_vcpus;
    return sim;
fail:
    if (sim->evtchn_fd >= 0)
        close(sim->evtchn_fd);
    sim_unmap_ram(sim);
    free(sim->hv.iopage);
    free(sim);
    errno = err;
    return NULL;
}

void sim_destroy(struct sim *sim)
{
    if (!sim)
        return;
    sim->grant_unmap_error = 0; /* what is still mapped goes now */
    sim_kernel_late_join(sim);
    sim_irqfd_stop(sim);
    sim_destroy_sync(sim);
    close(sim->evtchn_fd);
    free(sim->hv.iopage);
    while (sim->mappings)
        sim_grant_unmap(&sim->hv, sim->mappings->addr, sim->mappings->n);
    sim_unmap_ram(sim);
    free(sim);
}

struct hv *sim_hv(struct sim *sim)
{
    return &sim->hv;
}

/* ---- the guest's RAM ------------------------------------------------------ */

uint64_t sim_ram_base(const struct sim *sim)
{
    return sim->ram[0].r.gpa;
}

uint64_t sim_ram_size(const struct sim *sim)
{
    return sim->ram[0].r.size;
}

unsigned sim_ram_regions(const struct sim *sim)
{
    return sim->nr_ram;
}

struct sim_ram_region sim_ram_region(const struct sim *sim, unsigned i)
{
    return i < sim->nr_ram ? sim->ram[i].r : (struct sim_ram_region){0, 0};
}

void *sim_guest_ptr(struct sim *sim, uint64_t gpa, uint64_t len)
{
    return gmem_translate(&sim->hv.mem, gpa, len);
}

/* ---- the guest's side: vCPU accesses ------------------------------------- */

static struct timespec sim_deadline(unsigned timeout_ms)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += timeout_ms / 1000;
    t.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static bool sim_claimed(struct sim *sim, uint64_t addr)
{
    for (unsigned i = 0; i < sim->nr_ranges; i++)
        if (addr - sim->range[i].start < sim->range[i].size)
            return true;
    return false;
}

/* Xen's side of one ioreq, with the lock held: publish, kick, wait. */
static int sim_deliver(struct sim *sim, unsigned vcpu, struct ioreq *req)
{
    volatile struct ioreq *slot = sim_slot(sim, vcpu);
    unsigned ms = sim->cfg.ioreq_timeout_ms ? sim->cfg.ioreq_timeout_ms : 5000;
    struct timespec deadline = sim_deadline(ms);
    int ret;

    /* Xen's ioreq_send(): a slot the device model left in any state but
     * NONE crashes the domain ("device model set bad IO state"). */
    if (slot->state != STATE_IOREQ_NONE) {
        fprintf(stderr, "sim: vCPU %u: device model set bad IO state %u\n",
                vcpu, (unsigned)slot->state);
        return -EIO;
    }
    slot->addr = req->addr;
    slot->data = req->data;
    slot->count = req->count;
    slot->size = req->size;
    slot->vp_eport = vcpu;
    slot->data_is_ptr = req->data_is_ptr;
    slot->dir = req->dir;
    slot->df = req->df;
    slot->type = req->type;
    /* The ioreq's fields must be visible before its state. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    slot->state = STATE_IOREQ_READY;
    sim->notified &= ~(1ULL << vcpu);
    ret = sim_kernel_event(sim, vcpu);
    if (ret)
        return ret;
    while (!(sim->notified & (1ULL << vcpu)) ||
           slot->state != STATE_IORESP_READY) {
        if (pthread_cond_timedwait(&sim->answered, &sim->lock, &deadline))
            return -ETIMEDOUT;
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    req->data = slot->data;
    req->state = STATE_IORESP_READY;
    slot->state = STATE_IOREQ_NONE;
    return 0;
}

static int sim_access(struct sim *sim, unsigned vcpu, struct ioreq *req,
                      bool need_claim)
{
    int ret;

    if (vcpu >= sim->cfg.nr_vcpus)
        return -EINVAL;
    pthread_mutex_lock(&sim->lock);
    if (!sim->server_enabled)
        ret = need_claim ? -ENXIO : -ENODEV;
    else if (need_claim && !sim_claimed(sim, req->addr))
        ret = -ENXIO;
    else
        ret = sim_deliver(sim, vcpu, req);
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

static int sim_mmio(struct sim *sim, unsigned vcpu, uint64_t addr,
                    unsigned size, uint8_t dir, uint64_t *value)
{
    struct ioreq req = {
        .addr = addr,
        .data = dir == IOREQ_WRITE ? *value : 0,
        .count = 1,
        .size = size,
        .dir = dir,
        .type = IOREQ_TYPE_COPY,
    };
    int ret;

    if (size != 1 && size != 2 && size != 4 && size != 8)
        return -EINVAL;
    ret = sim_access(sim, vcpu, &req, true);
    if (ret == 0 && dir == IOREQ_READ)
        *value = size == 8 ? req.data
                           : req.data & ((1ULL << (8 * size)) - 1);
    return ret;
}

int sim_mmio_read(struct sim *sim, unsigned vcpu, uint64_t addr,
                  unsigned size, uint64_t *value)
{
    return sim_mmio(sim, vcpu, addr, size, IOREQ_READ, value);
}

int sim_mmio_write(struct sim *sim, unsigned vcpu, uint64_t addr,
                   unsigned size, uint64_t value)
{
    return sim_mmio(sim, vcpu, addr, size, IOREQ_WRITE, &value);
}

int sim_ioreq(struct sim *sim, unsigned vcpu, struct ioreq *req)
{
    return sim_access(sim, vcpu, req, false);
}

bool sim_mmio_mapped(struct sim *sim, uint64_t addr)
{
    bool mapped;

    pthread_mutex_lock(&sim->lock);
    mapped = sim->server_exists && sim_claimed(sim, addr);
    pthread_mutex_unlock(&sim->lock);
    return mapped;
}

/* ---- interrupt lines ------------------------------------------------------ */

static struct sim_spi *sim_spi(struct sim *sim, uint32_t spi)
{
    static struct sim_spi none;

    return spi < SIM_SPIS ? &sim->spi[spi] : &none;
}

static struct sim_spi sim_spi_snapshot(struct sim *sim, uint32_t spi)
{
    struct sim_spi copy;

    pthread_mutex_lock(&sim->lock);
    copy = *sim_spi(sim, spi);
    pthread_mutex_unlock(&sim->lock);
    return copy;
}

unsigned sim_irq_edges(struct sim *sim, uint32_t spi)
{
    return sim_spi_snapshot(sim, spi).edges;
}

unsigned sim_irq_calls(struct sim *sim, uint32_t spi)
{
    return sim_spi_snapshot(sim, spi).calls;
}

int sim_irq_wait(struct sim *sim, uint32_t spi, unsigned seen,
                 unsigned timeout_ms)
{
    struct timespec deadline = sim_deadline(timeout_ms);
    int ret = 0;

    pthread_mutex_lock(&sim->lock);
    while (sim_spi(sim, spi)->edges <= seen && ret == 0)
        if (pthread_cond_timedwait(&sim->edge, &sim->lock, &deadline))
            ret = -ETIMEDOUT;
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

/* ---- fault injection ------------------------------------------------------ */

void sim_fail_irq(struct sim *sim, int err)
{
    pthread_mutex_lock(&sim->lock);
    sim->irq_error = err;
    pthread_mutex_unlock(&sim->lock);
}

void sim_fail_grant_unmap(struct sim *sim, int err)
{
    pthread_mutex_lock(&sim->lock);
    sim->grant_unmap_error = err;
    pthread_mutex_unlock(&sim->lock);
}

void sim_fail_evtchn(struct sim *sim, enum sim_evtchn_call call, int err)
{
    pthread_mutex_lock(&sim->lock);
    sim->evtchn_error[call] = err;
    pthread_mutex_unlock(&sim->lock);
}
