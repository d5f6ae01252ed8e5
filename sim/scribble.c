/* SPDX-License-Identifier: MIT */
/* Test side: a hostile vCPU rewriting the rings (see scribble.h). */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scribble.h"

/* ---- random values ------------------------------------------------------- */

/* xorshift64*: small, fast, and the same sequence for the same seed. */
static uint64_t scribble_rand(struct scribbler *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t scribble_below(struct scribbler *s, uint64_t n)
{
    return n ? scribble_rand(s) % n : 0;
}

/* A buffer length: empty, one byte, small, large, or past any region. */
static uint32_t scribble_len(struct scribbler *s)
{
    switch (scribble_below(s, 8)) {
    case 0:
        return 0;
    case 1:
        return 1;
    case 2:
    case 3:
        return (uint32_t)scribble_below(s, 4096) + 1;
    case 4:
    case 5:
        return (uint32_t)scribble_below(s, 65536) + 1;
    case 6:
        return (uint32_t)scribble_below(s, 4u << 20) + 1;
    default:
        return (uint32_t)scribble_rand(s);
    }
}

/* An address for a buffer of `len` bytes: inside a region, ending at
 * its last byte, at its first, just past it or across its end, in a
 * hole, anywhere, or wrapping past 2^64. */
static uint64_t scribble_addr(struct scribbler *s, uint32_t len)
{
    struct sim_ram_region r = sim_ram_region(
        s->sim, (unsigned)scribble_below(s, sim_ram_regions(s->sim)));
    uint64_t end = r.gpa + r.size;

    switch (scribble_below(s, 8)) {
    case 0:
    case 1:
        return r.gpa + scribble_below(s, r.size > len ? r.size - len : 1);
    case 2:
        return end - (len < r.size ? len : r.size);
    case 3:
        return r.gpa;
    case 4:
        return end;
    case 5:
        return end - scribble_below(s, 16);
    case 6:
        return scribble_rand(s);
    default:
        return (uint64_t)0 - scribble_below(s, 4096);
    }
}

/* Mostly the flags a driver uses (NEXT, WRITE, INDIRECT), now and then
 * any 16 bits. */
static uint16_t scribble_flags(struct scribbler *s)
{
    return (uint16_t)(scribble_below(s, 16) ? scribble_below(s, 8)
                                            : scribble_rand(s));
}

/* A descriptor index: mostly inside the table, now and then anything. */
static uint16_t scribble_index(struct scribbler *s, uint16_t num)
{
    return (uint16_t)(scribble_below(s, 16) ? scribble_below(s, num)
                                            : scribble_rand(s));
}

/* ---- rewriting ----------------------------------------------------------- */

static void scribble_store16(void *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}

/* One field of d, or all four. */
static void scribble_desc(struct scribbler *s, struct virtq_desc *d,
                          uint16_t num)
{
    uint32_t len = scribble_len(s);

    switch (scribble_below(s, 5)) {
    case 0:
        __atomic_store_n(&d->addr, htole64(scribble_addr(s, len)),
                         __ATOMIC_RELAXED);
        break;
    case 1:
        __atomic_store_n(&d->len, htole32(len), __ATOMIC_RELAXED);
        break;
    case 2:
        scribble_store16(&d->flags, scribble_flags(s));
        break;
    case 3:
        scribble_store16(&d->next, scribble_index(s, num));
        break;
    default:
        __atomic_store_n(&d->addr, htole64(scribble_addr(s, len)),
                         __ATOMIC_RELAXED);
        __atomic_store_n(&d->len, htole32(len), __ATOMIC_RELAXED);
        scribble_store16(&d->flags, scribble_flags(s));
        scribble_store16(&d->next, scribble_index(s, num));
        break;
    }
}

/* The avail index a little ahead of or behind where it is, or anything. */
static void scribble_avail_idx(struct scribbler *s, struct virtq_avail *a)
{
    uint16_t idx = le16toh(__atomic_load_n(&a->idx, __ATOMIC_RELAXED));

    if (scribble_below(s, 8))
        idx = (uint16_t)(idx + scribble_below(s, 6) - 2);
    else
        idx = (uint16_t)scribble_rand(s);
    scribble_store16(&a->idx, idx);
}

static void scribble_ring_once(struct scribbler *s, struct scribble_ring *r)
{
    switch (scribble_below(s, 4)) {
    case 0:
    case 1:
        scribble_desc(s, &r->desc[scribble_below(s, r->num)], r->num);
        break;
    case 2:
        scribble_store16(&r->avail->ring[scribble_below(s, r->num)],
                         scribble_index(s, r->num));
        break;
    default:
        scribble_avail_idx(s, r->avail);
        break;
    }
}

static void scribble_table_once(struct scribbler *s, struct scribble_area *t)
{
    struct virtq_desc *d = (struct virtq_desc *)t->p;

    scribble_desc(s, &d[scribble_below(s, t->len / 16)],
                  (uint16_t)(t->len / 16));
}

/* A QueueNotify from the scribbler's vCPU, for one of its queues or any. */
static void scribble_kick(struct scribbler *s)
{
    unsigned queue = scribble_below(s, 8)
                         ? s->ring[scribble_below(s, s->nr_rings)].queue
                         : (unsigned)scribble_below(s, 70);
    int ret = sim_mmio_write(s->sim, s->vcpu,
                             s->base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, queue);

    s->kicks++;
    if (ret && ret != -ENXIO && !s->error)
        s->error = ret;
}

static void scribble_once(struct scribbler *s)
{
    uint64_t pick = scribble_below(s, 64);

    if (pick == 0 && s->base)
        scribble_kick(s);
    else if (pick < 8 && s->nr_tables)
        scribble_table_once(s, &s->table[scribble_below(s, s->nr_tables)]);
    else if (s->nr_rings)
        scribble_ring_once(s, &s->ring[scribble_below(s, s->nr_rings)]);
    s->writes++;
}

/* Bursts of up to 1024 writes, then up to 2 ms of quiet. */
static void *scribble_thread(void *arg)
{
    struct scribbler *s = arg;

    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
        struct timespec quiet = {0, (long)scribble_below(s, 2000000)};

        for (uint64_t n = scribble_below(s, 1024); n; n--)
            scribble_once(s);
        nanosleep(&quiet, NULL);
    }
    return NULL;
}

/* ---- the scribbler's life ------------------------------------------------ */

uint32_t scribble_seed(void)
{
    const char *env = getenv("XVDM_SCRIBBLE_SEED");
    struct timespec t;
    uint32_t seed;

    clock_gettime(CLOCK_REALTIME, &t);
    seed = env && *env ? (uint32_t)strtoul(env, NULL, 0)
                       : (uint32_t)(t.tv_sec ^ t.tv_nsec);
    fprintf(stderr, "scribbler: seed %u (XVDM_SCRIBBLE_SEED=%u replays it)\n",
            seed, seed);
    return seed;
}

void scribble_init(struct scribbler *s, struct sim *sim, uint32_t seed,
                   unsigned vcpu, uint64_t base)
{
    memset(s, 0, sizeof(*s));
    s->sim = sim;
    s->seed = seed;
    s->rng = ((uint64_t)seed << 32 | seed) ^ 0x9e3779b97f4a7c15ULL;
    s->vcpu = vcpu;
    s->base = base;
}

void scribble_ring(struct scribbler *s, struct guest_ring *r, unsigned queue)
{
    if (s->nr_rings == SCRIBBLE_RINGS_MAX)
        return;
    s->ring[s->nr_rings++] = (struct scribble_ring){
        guest_ring_desc(r, 0), guest_ring_avail(r), r->num, queue};
}

void scribble_table(struct scribbler *s, uint64_t gpa, uint64_t len)
{
    uint8_t *p = sim_guest_ptr(s->sim, gpa, len);

    if (!p || gpa % 16 || len < 16 || s->nr_tables == SCRIBBLE_TABLES_MAX)
        return;
    s->table[s->nr_tables++] = (struct scribble_area){p, len};
}

int scribble_start(struct scribbler *s)
{
    int ret;

    __atomic_store_n(&s->stop, 0, __ATOMIC_RELAXED);
    ret = -pthread_create(&s->thread, NULL, scribble_thread, s);
    s->running = ret == 0;
    return ret;
}

int scribble_stop(struct scribbler *s)
{
    if (s->running) {
        __atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
        pthread_join(s->thread, NULL);
        s->running = false;
    }
    return s->error;
}

/* ---- a guest's run under the scribbler ----------------------------------- */

static uint64_t scribble_now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

int scribble_run(struct scribbler *s, const struct scribble_guest *g,
                 unsigned ms, struct scribble_stats *st)
{
    uint64_t end = scribble_now_ms() + ms;
    int ret = scribble_start(s);

    memset(st, 0, sizeof(*st));
    while (ret == 0 && g->d->io_error == 0 && scribble_now_ms() < end) {
        if (vdriver_status(g->d) & VIRTIO_STATUS_NEEDS_RESET) {
            g->bring_up();
            st->resets++;
        } else {
            st->requests++;
            st->answered += g->request(20);
        }
    }
    ret = scribble_stop(s);
    fprintf(stderr,
            "scribbler: seed %u: %llu writes, %llu kicks; %u requests, "
            "%u answered right, %u resets\n",
            s->seed, (unsigned long long)s->writes,
            (unsigned long long)s->kicks, st->requests, st->answered,
            st->resets);
    return g->d->io_error ? g->d->io_error : ret;
}

static bool scribble_needs_reset(struct vdriver *d)
{
    return vdriver_status(d) & VIRTIO_STATUS_NEEDS_RESET;
}

static void scribble_resync(struct guest_ring *r)
{
    r->avail_idx = le16toh(*guest_ring_avail_event(r));
    r->kicked_idx = r->avail_idx;
    r->last_used = le16toh(guest_ring_used(r)->idx);
    scribble_store16(&guest_ring_avail(r)->idx, r->avail_idx);
}

bool scribble_settled(const struct scribble_guest *g, unsigned ms)
{
    if (scribble_needs_reset(g->d))
        return true;
    for (unsigned i = 0; i < g->nr_queues; i++)
        scribble_resync(&g->d->ring[g->queue[i]]);
    for (unsigned i = 0; i < g->nr_queues; i++)
        if (!g->request(ms))
            return scribble_needs_reset(g->d);
    return true;
}

bool scribble_recovers(const struct scribble_guest *g, unsigned ms)
{
    g->bring_up();
    for (unsigned i = 0; i < g->nr_queues; i++)
        if (!g->request(ms))
            return false;
    return g->d->io_error == 0;
}

const char *scribble_verdict(struct scribbler *s,
                             const struct scribble_guest *g, unsigned run_ms,
                             unsigned wait_ms)
{
    struct scribble_stats st;

    if (scribble_run(s, g, run_ms, &st))
        return "a register access was not answered";
    if (!scribble_settled(g, wait_ms))
        return "the device neither serves nor says NEEDS_RESET";
    if (!scribble_recovers(g, wait_ms))
        return "no request served after a reset";
    return NULL;
}

int scribble_harness_start(struct harness *h, struct vdriver *d,
                           const char *spec, uint64_t ram_size)
{
    char mapped[256];
    const char *specs[] = {mapped};
    int ret;

    if (snprintf(mapped, sizeof(mapped), "%s,grants=off", spec) >=
        (int)sizeof(mapped))
        return -ENAMETOOLONG;
    ret = harness_start_vcpus(h, specs, 1, 2);
    if (ret)
        return ret;
    vdriver_init(d, h->sim, h->specs[0].base, h->specs[0].irq,
                 sim_ram_base(h->sim) + (1 << 20), ram_size);
    d->grants = false;
    return 0;
}

const char *scribble_guest_verdict(const struct scribble_guest *g,
                                   uint32_t seed, uint64_t table_gpa,
                                   uint64_t table_len, unsigned wait_ms)
{
    struct scribbler s;

    scribble_init(&s, g->d->sim, seed, 1, g->d->base);
    for (unsigned i = 0; i < g->nr_queues; i++)
        scribble_ring(&s, &g->d->ring[g->queue[i]], g->queue[i]);
    scribble_table(&s, table_gpa, table_len);
    return scribble_verdict(&s, g, SCRIBBLE_RUN_MS, wait_ms);
}

/* Mark heads[i] come, with its length; the heads still awaited. */
static unsigned scribble_take(const uint16_t *heads, bool *seen, unsigned n,
                              uint32_t id, uint32_t used, uint32_t *len)
{
    unsigned left = 0;

    for (unsigned i = 0; i < n; i++) {
        if (!seen[i] && heads[i] == id) {
            seen[i] = true;
            len[i] = used;
            id = UINT32_MAX; /* a head given twice is taken once */
        }
        left += !seen[i];
    }
    return left;
}

bool scribble_wait_used(struct vdriver *d, unsigned q, const uint16_t *heads,
                        unsigned n, unsigned ms, uint32_t *len)
{
    uint64_t end = scribble_now_ms() + ms;
    bool seen[SCRIBBLE_HEADS_MAX] = {false};
    unsigned left = n;
    uint32_t id, used;

    if (n > SCRIBBLE_HEADS_MAX)
        return false;
    do {
        guest_ring_enable_cb(&d->ring[q]);
        while (left && guest_ring_get_used(&d->ring[q], &id, &used))
            left = scribble_take(heads, seen, n, id, used, len);
        if (left)
            vdriver_wait_irq(d, 1);
    } while (left && scribble_now_ms() < end);
    return left == 0;
}
