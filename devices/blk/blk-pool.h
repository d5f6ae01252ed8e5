/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk I/O engine: worker threads that run requests against the
 * backing with preadv/pwritev/fdatasync/fallocate straight on the guest's
 * buffers (no copy, but for blk-rw.h's bounce), and hand completions back
 * to the event loop through an eventfd. The loop thread submits and
 * reaps; only the job lists are shared, under one mutex.
 */
#ifndef XVDM_BLK_POOL_H
#define XVDM_BLK_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "blk-request.h"

struct blk_job {
    struct blk_job *next;
    struct xvdm_queue *q;
    unsigned queue; /* q's index (0 without q): an NBD connection each */
    struct xvdm_chain chain;
    struct iovec chain_iov[BLK_IOV_MAX];
    struct blk_request req;
    uint8_t status; /* set by the engine */
    /* io_uring moved fewer bytes, or could not pin the guest's memory for
     * O_DIRECT: finish on a thread. */
    bool on_thread;
    bool durable;   /* writethrough: on stable storage before it completes */
    /* May copy through dom0's page cache on the loop thread (blk.c bounds
     * the bytes a turn copies so); else the I/O is done elsewhere. */
    bool inline_ok;
    /* A remote engine (blk-nbd.c, blk-rbd.c): the job's commands sent
     * (one per buffer or range, plus the sender's own hold until it has
     * sent them all), those that succeeded and those the library is done
     * with; and a flush still to send after them (a durable write where
     * the backing has no FUA). */
    uint32_t cmd_sent, cmd_ok, cmd_retired;
    bool then_flush;
    /* The RBD engine's device, for its completion callbacks. */
    struct blk_rbd *rbd;
    /* The NBD engine: its device; where the job's next command starts
     * (bytes for a read or write, else ranges or flushes sent), its
     * flags, and whether it is its follow-up flush. A read or write not
     * aligned to the server's minimum block, or whose buffers are not,
     * goes through nbd_bounce: the blocks it covers, from nbd_bounce_off,
     * nbd_bounce_len bytes; nbd_rmw when written after reading them. The
     * guest's bytes in it are the piece, the request's or one edge of a
     * write-zeroes range (nbd_part: which part of the range nbd_pos is
     * at); nbd_stage: how far its bounce is. */
    struct blk_nbd *nbd;
    /* The NBD connection's session the job was sent on; for a flush, the
     * device's writes that completed before it was sent, and how many
     * times the guest had been told of lost writes then (blk-nbd-set.c). */
    unsigned long nbd_session;
    uint64_t nbd_covers, nbd_told;
    bool nbd_flushing, nbd_rmw;
    uint8_t nbd_stage, nbd_part;
    uint64_t nbd_pos;
    uint32_t nbd_fua;
    uint8_t *nbd_bounce;
    uint64_t nbd_bounce_off, nbd_bounce_len;
    uint64_t nbd_piece_off, nbd_piece_len;
};

struct blk_pool;

/* The work itself, run on a worker thread; sets job->status. */
typedef void blk_exec_fn(void *ctx, struct blk_job *job);

int blk_pool_create(struct blk_pool **out, unsigned workers,
                    blk_exec_fn *exec, void *ctx);
/* Joins the workers; jobs still queued are dropped (call after
 * blk_pool_wait_idle() to lose nothing). */
void blk_pool_destroy(struct blk_pool *pool);

void blk_pool_submit(struct blk_pool *pool, struct blk_job *job);
/* Readable when completed jobs wait to be reaped. */
int blk_pool_fd(const struct blk_pool *pool);
/* Take every completed job (a list linked by next), or NULL. */
struct blk_job *blk_pool_reap(struct blk_pool *pool);
/* Block until nothing is queued or running. */
void blk_pool_wait_idle(struct blk_pool *pool);

#endif
