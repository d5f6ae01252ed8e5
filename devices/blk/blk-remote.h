/* SPDX-License-Identifier: MIT */
/*
 * A virtio-blk backing that is its own engine, with no file in dom0: an
 * NBD export (blk-nbd.c) or a Ceph RBD image (blk-rbd.c). Everything runs
 * on the loop thread; the engine bounds what it has in flight and hands
 * finished jobs back in its own events.
 */
#ifndef XVDM_BLK_REMOTE_H
#define XVDM_BLK_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "blk-pool.h"

/* What the backing offers, as of now. */
struct blk_remote_info {
    uint64_t size; /* bytes */
    bool read_only;
    bool trim;
    bool zero;
    bool flush; /* no flush: the backing keeps no volatile cache */
    bool fua;
    /* The smallest request it takes, at least 512: the guest's logical
     * block. */
    uint32_t block;
};

/* Jobs the engine finished in one of its own events: a list linked by
 * next, status set; or NULL, when there is room again after room() said
 * there was none. */
typedef void blk_remote_done_fn(void *ctx, struct blk_job *list);
/* The backing may have changed size (after a reconnect). */
typedef void blk_remote_back_fn(void *ctx);

struct blk_remote_ops {
    /* Send a read or write (never of no data: blk.c completes those),
     * flush, discard or write-zeroes; job->durable asks for it to be on
     * stable storage when it completes. A job that
     * cannot be sent is finished at once with VIRTIO_BLK_S_IOERR: see
     * take(). */
    void (*submit)(void *e, struct blk_job *job);
    /* Whether the device may submit another job from `queue` now. After
     * false, the done callback says when there is room. */
    bool (*room)(void *e, unsigned queue);
    /* The jobs that finished during submit() or wait_idle(), without
     * waiting. */
    struct blk_job *(*take)(void *e);
    /* Block until no command holds a guest buffer (or the engine gave up
     * on them, bounded in time): a device reset, which then take()s what
     * finished and drops it, the guest told nothing. */
    void (*wait_idle)(void *e);
    /* The backing as of now; a negative errno when it cannot say. */
    int (*info)(void *e, struct blk_remote_info *info);
    /* Jobs still in flight are freed, not completed (call after
     * wait_idle() to lose nothing). */
    void (*destroy)(void *e);
    /* The jobs finished so far (through the done callback or take())
     * are in the guest's rings now. May be NULL. */
    void (*delivered)(void *e);
};

#endif
