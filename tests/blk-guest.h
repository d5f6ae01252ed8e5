/* SPDX-License-Identifier: MIT */
/* Test side: the guest's half of virtio-blk as Linux's virtio_blk drives
 * it (VIRTIO 1.2 §5.2.6): bring the device up, put requests of header,
 * data and status byte on a queue, kick and collect completions. Shared
 * by the block tests whatever the device's backing. */
#ifndef XVDM_TEST_BLK_GUEST_H
#define XVDM_TEST_BLK_GUEST_H

#include <check.h>
#include <endian.h>
#include <linux/virtio_blk.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vdriver.h"

#define BLK_GUEST_ID 2 /* VIRTIO 1.2 §5: device ID of a block device */
#define BLK_GUEST_WAIT_MS 5000
/* What Linux's virtio_blk asks for, RO included so that a read-only disk
 * is seen to offer it. */
#define BLK_GUEST_FEATURES                                                    \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_BLK_F_FLUSH) |            \
     (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES) |   \
     (1ULL << VIRTIO_BLK_F_MQ) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |            \
     (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_RO))

/* The harness started on `spec` on a sim made from cfg, and d probed
 * with `features`, queues 0..queues-1 of queue_size entries set up and
 * DRIVER_OK: 0, or what harness_start_sim() returned, with nothing else
 * done. */
static inline int blk_guest_start_sim(struct harness *h, struct vdriver *d,
                                      const char *spec, unsigned queues,
                                      uint16_t queue_size, uint64_t features,
                                      const struct sim_config *cfg)
{
    const char *specs[] = {spec};
    int ret = harness_start_sim(h, specs, 1, cfg);

    if (ret)
        return ret;
    vdriver_init(d, h->sim, h->specs[0].base, h->specs[0].irq,
                 sim_ram_base(h->sim) + (1 << 20), 32 << 20);
    ck_assert_int_eq(vdriver_probe(d, BLK_GUEST_ID, features), 0);
    for (unsigned q = 0; q < queues; q++)
        ck_assert_int_eq(vdriver_setup_queue(d, q, queue_size), 0);
    vdriver_driver_ok(d);
    return 0;
}

/* The same on the harness's usual sim (harness_start()). */
static inline int blk_guest_start(struct harness *h, struct vdriver *d,
                                  const char *spec, unsigned queues,
                                  uint16_t queue_size, uint64_t features)
{
    struct sim_config cfg = harness_sim_config(1);

    return blk_guest_start_sim(h, d, spec, queues, queue_size, features, &cfg);
}

/* `size` bytes at `offset` of struct virtio_blk_config, as the guest
 * reads them. */
static inline uint64_t blk_guest_config(struct vdriver *d, unsigned offset,
                                        unsigned size)
{
    uint64_t v = 0;

    ck_assert_int_eq(sim_mmio_read(d->sim, 0, d->base + 0x100 + offset,
                                   size, &v), 0);
    return v;
}

/* One request on the ring, where the guest sees its status and data. */
struct blk_req {
    uint8_t *status;
    uint8_t *data;
};

/* Publish (not kick) one request on `queue`: its header, data the device
 * reads or (device_writes) writes, in `nparts` buffers of part[i] bytes
 * (contiguous, as the guest sees the data), and a status byte the device
 * must overwrite (0xff until it does). */
static inline struct blk_req blk_guest_submit_split(struct vdriver *d,
                                                    unsigned queue,
                                                    uint32_t type,
                                                    uint64_t sector,
                                                    const uint32_t *part,
                                                    unsigned nparts,
                                                    bool device_writes)
{
    struct blk_req r;
    uint64_t hdr = vdriver_alloc(d, 16, 16), len = 0;
    uint64_t data, status;
    struct virtio_blk_outhdr *oh = vdriver_ptr(d, hdr);
    struct guest_buf b[8];
    unsigned n = 0;

    ck_assert_uint_le(nparts, 6);
    for (unsigned i = 0; i < nparts; i++)
        len += part[i];
    data = len ? vdriver_alloc(d, len, 512) : 0;
    status = vdriver_alloc(d, 1, 1);
    *oh = (struct virtio_blk_outhdr){htole32(type), 0, htole64(sector)};
    b[n++] = (struct guest_buf){hdr, 16, false};
    for (uint64_t i = 0, at = data; i < nparts; at += part[i++])
        b[n++] = (struct guest_buf){at, part[i], device_writes};
    b[n++] = (struct guest_buf){status, 1, true};
    r.status = vdriver_ptr(d, status);
    *r.status = 0xff;
    r.data = len ? vdriver_ptr(d, data) : NULL;
    guest_ring_publish(&d->ring[queue],
                       guest_ring_add_chain(&d->ring[queue], b, n));
    return r;
}

/* The same with the data in one buffer of `len` bytes (none if 0). */
static inline struct blk_req blk_guest_submit(struct vdriver *d,
                                              unsigned queue, uint32_t type,
                                              uint64_t sector, uint32_t len,
                                              bool device_writes)
{
    return blk_guest_submit_split(d, queue, type, sector, &len, len ? 1 : 0,
                                  device_writes);
}

/* Kick the nq queues listed and collect `n` completions from them,
 * failing the test if the device stays silent for BLK_GUEST_WAIT_MS. */
static inline void blk_guest_complete(struct vdriver *d,
                                      const unsigned *queues, unsigned nq,
                                      unsigned n)
{
    unsigned got = 0;
    uint32_t id, len;

    for (unsigned i = 0; i < nq; i++)
        vdriver_kick(d, queues[i]);
    while (got < n) {
        for (unsigned i = 0; i < nq; i++)
            while (guest_ring_get_used(&d->ring[queues[i]], &id, &len))
                got++;
        if (got < n)
            ck_assert_int_ge(vdriver_wait_irq(d, BLK_GUEST_WAIT_MS), 0);
    }
}

/* One request on queue 0 with its data in `nparts` buffers of part[i]
 * bytes, completed: its status. A write sends `fill` bytes, a read
 * returns its data in *out. */
static inline uint8_t blk_guest_run_split(struct vdriver *d, uint32_t type,
                                          uint64_t sector,
                                          const uint32_t *part,
                                          unsigned nparts, int fill,
                                          uint8_t **out)
{
    static const unsigned q0[] = {0};
    bool device_writes = type == VIRTIO_BLK_T_IN;
    struct blk_req r = blk_guest_submit_split(d, 0, type, sector, part,
                                              nparts, device_writes);
    uint64_t len = 0;

    for (unsigned i = 0; i < nparts; i++)
        len += part[i];
    if (len && !device_writes)
        memset(r.data, fill, len);
    blk_guest_complete(d, q0, 1, 1);
    if (out)
        *out = r.data;
    return *r.status;
}

/* The same with the data in one buffer. */
static inline uint8_t blk_guest_run(struct vdriver *d, uint32_t type,
                                    uint64_t sector, uint32_t len, int fill,
                                    uint8_t **out)
{
    return blk_guest_run_split(d, type, sector, &len, len ? 1 : 0, fill, out);
}

/* Whether `sectors` sectors at `sector` read (successfully) as `byte`. */
static inline bool blk_guest_reads_as(struct vdriver *d, uint64_t sector,
                                      unsigned sectors, uint8_t byte)
{
    uint8_t *data;

    ck_assert_uint_eq(blk_guest_run(d, VIRTIO_BLK_T_IN, sector, sectors * 512,
                                    0, &data),
                      VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < sectors * 512; i++)
        if (data[i] != byte)
            return false;
    return true;
}

/* A read-only disk as the guest sees it, whatever its backing: offered
 * RO, a write fails, and its first `sectors` sectors still read as
 * `byte`. */
static inline void blk_guest_is_read_only(struct vdriver *d, unsigned sectors,
                                          uint8_t byte)
{
    ck_assert(d->offered & (1ULL << VIRTIO_BLK_F_RO));
    ck_assert_uint_eq(blk_guest_run(d, VIRTIO_BLK_T_OUT, 0, 512, 1, NULL),
                      VIRTIO_BLK_S_IOERR);
    ck_assert(blk_guest_reads_as(d, 0, sectors, byte));
}

/* Publish (not kick) a DISCARD or WRITE_ZEROES (VIRTIO 1.2 §5.2.6) on
 * queue 0 of the `n` segments seg[i] = {sector, sectors}, with `flags`. */
static inline struct blk_req blk_guest_submit_ranges(struct vdriver *d,
                                                     uint32_t type,
                                                     const uint64_t (*seg)[2],
                                                     unsigned n,
                                                     uint32_t flags)
{
    struct virtio_blk_discard_write_zeroes s;
    struct blk_req r = blk_guest_submit(d, 0, type, 0, n * sizeof(s), false);

    for (unsigned i = 0; i < n; i++) {
        s = (struct virtio_blk_discard_write_zeroes){
            htole64(seg[i][0]), htole32((uint32_t)seg[i][1]), htole32(flags)};
        memcpy(r.data + i * sizeof(s), &s, sizeof(s));
    }
    return r;
}

/* A DISCARD or WRITE_ZEROES of one segment on queue 0, completed: its
 * status. */
static inline uint8_t blk_guest_range(struct vdriver *d, uint32_t type,
                                      uint64_t sector, uint32_t num,
                                      uint32_t flags)
{
    static const unsigned q0[] = {0};
    const uint64_t seg[1][2] = {{sector, num}};
    struct blk_req r = blk_guest_submit_ranges(d, type, seg, 1, flags);

    blk_guest_complete(d, q0, 1, 1);
    return *r.status;
}

/* DISCARD and WRITE_ZEROES (VIRTIO 1.2 §5.2.6) on a disk of `sectors`,
 * whatever its backing: both offered; with sectors 0..63 written as 0x77,
 * a WRITE_ZEROES of 8..15 (allocation kept) and of 24..31 (unmap allowed)
 * and a DISCARD of 40..47 succeed, and a DISCARD past the end fails. What
 * each left is the backing's test to check. */
static inline void blk_guest_discards_and_zeroes(struct vdriver *d,
                                                 uint64_t sectors)
{
    ck_assert(d->features & (1ULL << VIRTIO_BLK_F_DISCARD));
    ck_assert(d->features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
    ck_assert_uint_eq(blk_guest_run(d, VIRTIO_BLK_T_OUT, 0, 64 * 512, 0x77,
                                    NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_guest_range(d, VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_guest_range(d, VIRTIO_BLK_T_WRITE_ZEROES, 24, 8, 1),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_guest_range(d, VIRTIO_BLK_T_DISCARD, 40, 8, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(
        blk_guest_range(d, VIRTIO_BLK_T_DISCARD, sectors - 4, 8, 0),
        VIRTIO_BLK_S_IOERR); /* past the end */
}

/* Eight rounds of 16 writes in flight together over queues 0 and 1, of
 * 1..16 sectors of random bytes each, also put at their place in shadow
 * (a disk of `sectors`). Requests in flight together may complete in any
 * order (VIRTIO 1.2 §2.7.14), so each of a round's 16 stays in its own
 * 1/16 of the disk. */
static inline void blk_guest_random_writes(struct vdriver *d,
                                           uint8_t *shadow,
                                           uint64_t sectors, unsigned *seed)
{
    static const unsigned both[] = {0, 1};

    for (unsigned round = 0; round < 8; round++) {
        for (unsigned i = 0; i < 16; i++) {
            uint32_t n = 1 + rand_r(seed) % 16;
            uint64_t sector = i * (sectors / 16) +
                              rand_r(seed) % (sectors / 16 - n);
            struct blk_req r = blk_guest_submit(d, i % 2, VIRTIO_BLK_T_OUT,
                                                sector, n * 512, false);

            for (uint32_t k = 0; k < n * 512; k++)
                r.data[k] = (uint8_t)rand_r(seed);
            memcpy(shadow + sector * 512, r.data, n * 512);
        }
        blk_guest_complete(d, both, 2, 16);
    }
}

/* Whether the whole disk (of `sectors`, a multiple of 128) reads back
 * through the device as shadow, in reads of 128 sectors on queue 0. */
static inline bool blk_guest_reads_back(struct vdriver *d,
                                        const uint8_t *shadow,
                                        uint64_t sectors)
{
    static const unsigned q0[] = {0};

    for (uint64_t sector = 0; sector < sectors; sector += 128) {
        struct blk_req r = blk_guest_submit(d, 0, VIRTIO_BLK_T_IN, sector,
                                            128 * 512, true);

        blk_guest_complete(d, q0, 1, 1);
        if (*r.status != VIRTIO_BLK_S_OK ||
            memcmp(r.data, shadow + sector * 512, 128 * 512) != 0)
            return false;
    }
    return true;
}

#endif
