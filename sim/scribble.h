/* SPDX-License-Identifier: MIT */
/*
 * Test side: a hostile second vCPU. While the guest's driver has requests
 * in flight, a scribbler thread rewrites the driver's rings in a tight
 * loop with seeded random values: descriptor fields (addr, len, flags,
 * next), avail ring entries, avail->idx, and indirect tables; and it
 * kicks the queues from its own vCPU. Values are as often nearly right
 * as wrong (inside RAM, at region edges, in the holes, wrapping past
 * 2^64), so that the device gets past its first checks often enough to
 * be hurt by the later ones. Bursts of writes alternate with short quiet
 * spells, in which the device may make progress.
 *
 * scribble_run() is what every device's suite does with it: the driver
 * makes good requests for a while, bringing the device back up whenever
 * it says NEEDS_RESET, and every register access must be answered.
 *
 * The device runs with the guest's RAM mapped (grants=off), not in grant
 * mode: there the test's driver ends a used chain's grants by walking the
 * chain in the ring (guest_ring_get_used), which the scribbler rewrites,
 * so it would end grants the device still maps for another chain, and the
 * sim takes such a refused revoke for the device's fault (harness_stop).
 */
#ifndef XVDM_TEST_SCRIBBLE_H
#define XVDM_TEST_SCRIBBLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "vdriver.h"

#define SCRIBBLE_RINGS_MAX 8
#define SCRIBBLE_TABLES_MAX 8
#define SCRIBBLE_HEADS_MAX 16

struct scribble_area {
    uint8_t *p; /* guest RAM as the test sees it */
    uint64_t len;
};

struct scribble_ring {
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    uint16_t num;
    unsigned queue; /* its index, for kicks */
};

struct scribbler {
    struct sim *sim;
    uint32_t seed;
    unsigned vcpu; /* the scribbler's vCPU */
    uint64_t base; /* the device's window, for kicks; 0: no kicks */
    unsigned nr_rings;
    struct scribble_ring ring[SCRIBBLE_RINGS_MAX];
    unsigned nr_tables;
    struct scribble_area table[SCRIBBLE_TABLES_MAX];
    uint64_t rng;
    /* Shared with the thread. */
    pthread_t thread;
    bool running;
    int stop;        /* atomic */
    uint64_t writes; /* read after stop */
    uint64_t kicks;
    int error; /* the first kick xvdm did not answer (-ETIMEDOUT) */
};

/* $XVDM_SCRIBBLE_SEED, else one from the clock; said on stderr, so that
 * a failing run can be replayed. */
uint32_t scribble_seed(void);

/* A scribbler for guest `sim`, acting as vCPU `vcpu`, kicking the device
 * at `base` (0: none). Then name what it rewrites: rings (at the addresses
 * the driver set up; a driver that sets them up again must use the same)
 * and indirect tables (16-byte aligned). */
void scribble_init(struct scribbler *s, struct sim *sim, uint32_t seed,
                   unsigned vcpu, uint64_t base);
void scribble_ring(struct scribbler *s, struct guest_ring *r, unsigned queue);
void scribble_table(struct scribbler *s, uint64_t gpa, uint64_t len);

/* Start and stop the thread. stop: 0, or the first error of its own
 * register accesses (-ETIMEDOUT: xvdm left one unanswered). */
int scribble_start(struct scribbler *s);
int scribble_stop(struct scribbler *s);

/* What a suite gives scribble_run(): its driver and the queues it uses,
 * how to bring the device up (reset, probe, queues at the same addresses
 * as the first time, DRIVER_OK; it may assert) and one good request, as
 * a driver makes it, on each queue in turn: true when it completed with
 * the right answer within ms. */
struct scribble_guest {
    struct vdriver *d;
    unsigned nr_queues;
    unsigned queue[SCRIBBLE_RINGS_MAX];
    void (*bring_up)(void);
    bool (*request)(unsigned ms);
};

struct scribble_stats {
    unsigned requests, answered, resets;
};

/* Scribble for `ms` while the guest makes requests, bringing the device
 * up again each time it says NEEDS_RESET. 0, or the first register access
 * xvdm did not answer, the guest's or the scribbler's. */
int scribble_run(struct scribbler *s, const struct scribble_guest *g,
                 unsigned ms, struct scribble_stats *st);

/* After scribble_run(), without a reset: the device either says
 * NEEDS_RESET, or it still works: each of the guest's rings taken up where
 * the device is, as far as a guest can know it (the next avail entry it
 * reads, its avail_event, so VIRTIO_F_EVENT_IDX must be on; the used
 * entries it published), a request on each queue is served within ms,
 * unless the device says NEEDS_RESET meanwhile. */
bool scribble_settled(const struct scribble_guest *g, unsigned ms);
/* Then: after a reset, a clean probe and a request on each queue work. */
bool scribble_recovers(const struct scribble_guest *g, unsigned ms);

/* All of it: scribble_run() for run_ms, then scribble_settled() and
 * scribble_recovers() with wait_ms for each request. NULL when the device
 * passed, else what went wrong. */
const char *scribble_verdict(struct scribbler *s,
                             const struct scribble_guest *g, unsigned run_ms,
                             unsigned wait_ms);

/* Start xvdm serving `spec` with the guest's RAM mapped (grants=off, see
 * above) on a guest of two vCPUs, and d as its driver over ram_size bytes
 * 1 MiB into guest RAM. 0, or harness_start_vcpus()'s error. */
int scribble_harness_start(struct harness *h, struct vdriver *d,
                           const char *spec, uint64_t ram_size);

/* What each suite's case does once its guest is up: a scribbler with
 * `seed` on vCPU 1, kicking g's device, over g's rings and the indirect
 * table at table_gpa (table_len bytes), then scribble_verdict() for
 * SCRIBBLE_RUN_MS with wait_ms for each request. */
#define SCRIBBLE_RUN_MS 1000
const char *scribble_guest_verdict(const struct scribble_guest *g,
                                   uint32_t seed, uint64_t table_gpa,
                                   uint64_t table_len, unsigned wait_ms);

/* Wait up to ms for heads[0..n) in the used ring of queue q, in any
 * order, passing over other entries (the scribbler's chains): true when
 * all came, with their lengths in len[]. */
bool scribble_wait_used(struct vdriver *d, unsigned q, const uint16_t *heads,
                        unsigned n, unsigned ms, uint32_t *len);

#endif
