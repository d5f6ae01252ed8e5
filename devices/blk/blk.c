/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk (VIRTIO 1.2 §5.2): a disk backed by a file, a block device,
 * an NBD export or a Ceph RBD image. Requests are parsed and checked on the
 * loop thread (blk-request.c), run straight on the guest's buffers by an
 * engine (worker threads, io_uring, an NBD connection, librbd; with
 * direct=on where the kernel cannot pin them, through the threads' own
 * buffers: blk-rw.h), and
 * completed back on the loop thread, one interrupt per batch.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <xvdm/device.h>

#include "blk-job-cache.h"
#include "blk-pool.h"
#include "blk-remote.h"
#include "blk-request.h"
#include "blk-rw.h"
#include "../common/iov-copy.h"
#ifdef BLK_IO_URING
#include "blk-uring.h"
#endif
#ifdef BLK_NBD
#include "blk-nbd-set.h"
#endif
#ifdef BLK_RBD
#include "blk-rbd.h"
#endif
#if defined(BLK_NBD) || defined(BLK_RBD)
#define BLK_REMOTE /* an engine that is the whole backing is built in */
#endif

#define BLK_DEVICE_ID 2
#define BLK_QUEUE_SIZE 256
#define BLK_QUEUES_MAX 16
/* What the loop thread may copy through dom0's page cache itself: a
 * request up to BLK_INLINE_MAX, up to BLK_INLINE_TURN bytes per drain.
 * Larger requests go to threads (io_uring's or ours): copying them takes
 * longer than the hand-offs saved, several threads copy at once, and the
 * loop serves every other vCPU and device meanwhile. */
#define BLK_INLINE_MAX (64 * 1024)
#define BLK_INLINE_TURN (1024 * 1024)
/* batch='s default: a few requests' service time on a disk, well under
 * what a round trip through dom0 costs a guest several times over. */
#define BLK_BATCH_US 200
/* The largest logical block blk offers a guest: NBD's largest minimum
 * block, and Linux's driver takes up to its page size. */
#define BLK_MAX_BLOCK (64 * 1024)
/* Config space up to write_zeroes_may_unmap and its padding (§5.2.4). */
#define BLK_CONFIG_SIZE (offsetof(struct virtio_blk_config, unused1) + 3)

struct blk {
    struct xvdm_dev *dev;
    int fd;
    bool blockdev;
    bool direct; /* O_DIRECT: no page cache */
    /* direct=on where the kernel cannot pin the guest's memory: reads and
     * writes copied through the threads' buffers (blk-rw.h), not io_uring.
     * Set once, by a worker thread. */
    atomic_bool bouncing;
    struct blk_rw_bounce bounce;
    bool bounce_ready;  /* bounce's key made */
    bool bounce_logged; /* loop thread only */
    bool flush;  /* the backing has a cache to flush: FLUSH offered */
    /* The backing's minimum block where it sets one (nbd=, rbd=, a file
     * with direct=on), or 0. */
    uint32_t min_block;
    /* Writeback: a write completes once dom0 holds it, and the guest's
     * flush makes it durable. Only for a driver that can flush; else, or
     * when it sets writeback to 0 (CONFIG_WCE), every write is durable
     * before it completes (§5.2.5). */
    bool writeback;
    bool writethrough_logged; /* said once: a guest may switch at will */
    /* Going to writethrough, the writes completed before are synced by a
     * job of the threads' (not the guest's): one at a time, and one more
     * when the guest switched again meanwhile. */
    bool sync_running;
    bool sync_wanted;
    struct blk_limits lim;
    struct virtio_blk_config config; /* little-endian, as the guest reads */
    char serial[VIRTIO_BLK_ID_BYTES];
    unsigned nqueues;
    int size_timer;            /* size-check=: a timerfd, or -1 */
    bool size_error_logged;    /* said once, until the size reads again */
    struct blk_job_cache jobs; /* loop thread only */
    struct blk_pool *pool;   /* the thread engine; for files */
#ifdef BLK_IO_URING
    struct blk_uring *uring; /* reads, writes, flushes when available */
#endif
    /* nbd=, rbd=: the engine for every request, and no file. */
    const struct blk_remote_ops *remote;
    void *engine;
    /* Queues left undrained while the remote engine had no room (bit per
     * queue index): drained again when it has. */
    uint32_t remote_stalled;
};

static const char *const blk_options[] = {
    "path=FILE: backing file or block device (this, nbd= or rbd=)",
    "nbd=URI: backing NBD export, nbd://HOST[:PORT]/EXPORT or "
    "nbd+unix:///EXPORT?socket=PATH (this, path= or rbd=)",
    "rbd=POOL/IMAGE[@SNAP]: backing Ceph RBD image (a snapshot: read-only) "
    "(this, path= or nbd=)",
    "conf=FILE: with rbd=, the Ceph configuration (default: librados' "
    "search, /etc/ceph/ceph.conf)",
    "id=USER: with rbd=, the Ceph client's name (default admin)",
    "ro=on|off: read-only disk (default off)",
    "serial=STR: disk serial, up to 20 bytes (default: the path's last part)",
    "discard=on|off: offer DISCARD and WRITE_ZEROES (default on)",
    "queues=N: virtqueues, 1..16 (default 1)",
    "direct=on|off: O_DIRECT, bypassing dom0's page cache (default off)",
    "iothreads=N: I/O worker threads, 1..64 (default 4)",
    "aio=io_uring|threads: I/O engine (default io_uring, or threads where "
    "the kernel refuses io_uring)",
    "size-check=SECONDS: look at the backing's size this often and announce "
    "a change to the guest, 0..3600 (default 1; 0: only on SIGHUP)",
    "batch=MICROSECONDS: while requests are in flight, hold the guest's kicks "
    "and interrupts for at most this long, 0..10000 (default 200; 0: off)",
    NULL,
};

/* ---- running requests (worker threads) ---------------------------------- */

static int blk_range_op(struct blk *b, const struct blk_range *r, bool zero)
{
    uint64_t range[2] = {r->offset, r->len};

    if (b->blockdev) {
        unsigned long req = zero && !r->unmap ? BLKZEROOUT : BLKDISCARD;

        return ioctl(b->fd, req, range) ? -errno : 0;
    }
    /* Punching a hole reads back as zeroes, so it serves both; zeroing
     * in place keeps the allocation when the guest did not allow unmap. */
    if (zero && !r->unmap &&
        fallocate(b->fd, FALLOC_FL_ZERO_RANGE, (off_t)r->offset,
                  (off_t)r->len) == 0)
        return 0;
    return fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     (off_t)r->offset, (off_t)r->len)
               ? -errno
               : 0;
}

/* With direct=on, straight on the guest's buffers until the kernel says
 * it cannot pin them (EFAULT, as on Xen's foreign mappings); from then on
 * through the threads' bounce buffers, this request included. */
static int blk_run_rw(struct blk *b, struct blk_job *job)
{
    const struct blk_request *req = &job->req;
    bool write = req->op == BLK_OP_WRITE;
    int ret = -EFAULT;

    if (!atomic_load_explicit(&b->bouncing, memory_order_relaxed))
        ret = blk_rw(b->fd, req->iov, req->niov, req->offset, req->len, write,
                     job->durable, NULL);
    if (ret != -EFAULT || !b->direct)
        return ret;
    atomic_store(&b->bouncing, true); /* said by the loop: blk_complete_list */
    return blk_rw(b->fd, req->iov, req->niov, req->offset, req->len, write,
                  job->durable, &b->bounce);
}

static int blk_run(struct blk *b, struct blk_job *job)
{
    struct blk_request *req = &job->req;
    int ret = 0;

    switch (req->op) {
    case BLK_OP_READ:
    case BLK_OP_WRITE:
        return blk_run_rw(b, job);
    case BLK_OP_FLUSH:
        /* Durable: every write completed before this flush is covered. */
        return fdatasync(b->fd) ? -errno : 0;
    case BLK_OP_DISCARD:
    case BLK_OP_WRITE_ZEROES:
        for (unsigned i = 0; i < req->nranges && ret == 0; i++)
            ret = blk_range_op(b, &req->range[i],
                               req->op == BLK_OP_WRITE_ZEROES);
        if (ret == 0 && job->durable && fdatasync(b->fd))
            ret = -errno;
        return ret;
    default:
        return -EINVAL;
    }
}

static void blk_exec(void *ctx, struct blk_job *job)
{
    int ret = blk_run(ctx, job);

    job->status = ret ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* ---- completing (loop thread) ------------------------------------------- */

/* Bytes the device wrote into the chain's writable part. */
static uint32_t blk_written(const struct blk_job *job)
{
    if (job->req.op == BLK_OP_READ || job->req.op == BLK_OP_GET_ID)
        return (uint32_t)job->req.len + 1;
    return job->req.op == BLK_OP_DROP ? 0 : 1;
}

static void blk_sync_earlier_writes(struct blk *b);

/* The sync of writes completed before a switch to writethrough. */
static void blk_sync_done(struct blk *b, struct blk_job *job)
{
    if (job->status != VIRTIO_BLK_S_OK)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "writethrough: syncing earlier writes failed");
    b->sync_running = false;
    if (b->sync_wanted)
        blk_sync_earlier_writes(b);
}

static void blk_complete(struct blk *b, struct blk_job *job)
{
    if (!job->q) {
        blk_sync_done(b, job);
        return;
    }
    /* A guest may make every request fail (writes to a full backing,
     * discards it refuses): rate-limited. */
    if (job->status != VIRTIO_BLK_S_OK && job->req.op != BLK_OP_DONE)
        xvdm_dev_guest_error(b->dev, "request %u failed: I/O error",
                             job->chain.head);
    if (job->req.status_p)
        *job->req.status_p = job->status;
    xvdm_queue_push(job->q, &job->chain, blk_written(job));
}

static unsigned blk_queue_index(struct blk *b, const struct xvdm_queue *q)
{
    for (unsigned i = 0; i < b->nqueues; i++)
        if (xvdm_dev_queue(b->dev, i) == q)
            return i;
    return 0;
}

/* Once, when a thread first copied through its buffer (blk_run_rw). */
static void blk_say_bouncing(struct blk *b)
{
    if (b->bounce_logged ||
        !atomic_load_explicit(&b->bouncing, memory_order_relaxed))
        return;
    b->bounce_logged = true;
    xvdm_dev_log(b->dev, XVDM_LOG_INFO,
                 "direct=on: dom0's kernel cannot do direct I/O on the "
                 "guest's memory; copying through dom0 buffers of %u KiB "
                 "per I/O thread",
                 BLK_RW_BOUNCE / 1024);
}

/* Complete jobs and interrupt once per queue that got any. */
static void blk_complete_list(struct blk *b, struct blk_job *job)
{
    bool touched[BLK_QUEUES_MAX] = {false};
    struct blk_job *next;

    blk_say_bouncing(b);
    for (; job; job = next) {
        next = job->next;
        blk_complete(b, job);
        touched[blk_queue_index(b, job->q)] |= job->q != NULL;
        blk_job_put(&b->jobs, job);
    }
    for (unsigned i = 0; i < b->nqueues; i++)
        if (touched[i])
            xvdm_queue_notify_guest(xvdm_dev_queue(b->dev, i));
#ifdef BLK_REMOTE
    if (b->remote && b->remote->delivered)
        b->remote->delivered(b->engine);
#endif
}

static void blk_on_completion(void *arg, uint32_t revents)
{
    struct blk *b = arg;

    blk_complete_list(b, blk_pool_reap(b->pool));
}

#ifdef BLK_REMOTE
static void blk_on_remote_done(void *ctx, struct blk_job *list)
{
    struct blk *b = ctx;

    blk_complete_list(b, list);
    for (unsigned i = 0; b->remote_stalled && i < b->nqueues; i++)
        if (b->remote_stalled & (1u << i))
            xvdm_queue_defer(xvdm_dev_queue(b->dev, i));
    b->remote_stalled = 0;
}
#endif

#ifdef BLK_IO_URING
/* Jobs io_uring finished go onto *done, but a short transfer, or one the
 * kernel could not do on the guest's memory, is finished by a worker
 * thread, which does the whole request again (redoing the transferred
 * part is harmless). */
static void blk_uring_finished(struct blk *b, struct blk_job *job,
                               struct blk_job **done)
{
    struct blk_job *next;

    for (; job; job = next) {
        next = job->next;
        if (job->on_thread) {
            job->on_thread = false;
            blk_pool_submit(b->pool, job);
        } else {
            job->next = *done;
            *done = job;
        }
    }
}

static void blk_on_uring_completion(void *arg, uint32_t revents)
{
    struct blk *b = arg;
    struct blk_job *done = NULL;

    blk_uring_finished(b, blk_uring_reap(b->uring), &done);
    blk_complete_list(b, done);
}
#endif

/* ---- taking requests (loop thread) -------------------------------------- */

/* A request answered without I/O: the list of such jobs, completed after
 * the drain. */
static void blk_answer_now(struct blk *b, struct blk_job *job,
                           struct blk_job **now)
{
    if (job->req.op == BLK_OP_GET_ID) {
        job->req.len = iov_copy(job->req.iov, job->req.niov, 0, b->serial,
                                job->req.len < sizeof(b->serial)
                                    ? job->req.len
                                    : sizeof(b->serial),
                                true);
        job->status = VIRTIO_BLK_S_OK;
    } else {
        xvdm_dev_guest_error(b->dev, "request %u: %s", job->chain.head,
                             job->req.why);
        job->status = job->req.status;
    }
    job->next = *now;
    *now = job;
}

static struct blk_job *blk_job_new(struct blk *b, struct xvdm_queue *q,
                                   unsigned index)
{
    struct blk_job *job = blk_job_get(&b->jobs);

    if (job) {
        job->q = q;
        job->queue = index;
        job->chain = (struct xvdm_chain){.iov = job->chain_iov,
                                         .iov_cap = BLK_IOV_MAX};
    }
    return job;
}

#ifdef BLK_IO_URING
/* The engine says the kernel refuses submissions for good (it fails the
 * requests itself): say so once. */
static void blk_uring_check(struct blk *b, int ret)
{
    if (ret < 0)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "io_uring refuses submissions (%s): reads, writes and "
                     "flushes fail from now on",
                     strerror(-ret));
}
#endif

/* Reads, writes and flushes go to io_uring when there is one; discard and
 * write-zeroes (no io_uring operation for block devices) to the threads.
 * What a remote engine cannot send goes onto *now, failed. */
static void blk_submit(struct blk *b, struct blk_job *job,
                       struct blk_job **now)
{
    if (b->remote) {
        /* No data: done, as on a file, with nothing sent. librbd refuses
         * an empty vector; an NBD server's block reaching over the sector
         * would be read and written back, which could undo another
         * request's write to it. */
        if ((job->req.op == BLK_OP_READ || job->req.op == BLK_OP_WRITE) &&
            job->req.len == 0) {
            job->status = VIRTIO_BLK_S_OK;
            job->next = *now;
            *now = job;
            return;
        }
        b->remote->submit(b->engine, job);
        for (struct blk_job *f = b->remote->take(b->engine), *next; f;
             f = next) {
            next = f->next;
            f->next = *now;
            *now = f;
        }
        return;
    }
#ifdef BLK_IO_URING
    bool data = job->req.op == BLK_OP_READ || job->req.op == BLK_OP_WRITE;

    if (b->uring &&
        ((data && !atomic_load_explicit(&b->bouncing, memory_order_relaxed)) ||
         job->req.op == BLK_OP_FLUSH)) {
        blk_uring_check(b, blk_uring_submit(b->uring, job));
        return;
    }
#endif
    blk_pool_submit(b->pool, job);
}

/* The thread engine: a small read dom0's page cache holds is done here, at
 * once, rather than handed to a thread that wakes the loop to complete it.
 * RWF_NOWAIT fails with EAGAIN instead of waiting for the disk; anything
 * but the whole read (not cached, partly cached, an error) goes to the
 * threads, which read it all again. */
static bool blk_read_cached(struct blk *b, struct blk_job *job)
{
#ifdef BLK_IO_URING
    if (b->uring)
        return false; /* io_uring reads cached data inline by itself */
#endif
    if (b->direct || b->remote || job->req.op != BLK_OP_READ ||
        !job->inline_ok ||
        preadv2(b->fd, job->req.iov, (int)job->req.niov, (off_t)job->req.offset,
                RWF_NOWAIT) != (ssize_t)job->req.len)
        return false;
    job->status = VIRTIO_BLK_S_OK;
    return true;
}

/* May this job's copy through the page cache run on the loop thread,
 * within the drain's budget (taken from *left)? */
static bool blk_may_inline(const struct blk_job *job, uint64_t *left)
{
    uint64_t len = job->req.len;

    if ((job->req.op != BLK_OP_READ && job->req.op != BLK_OP_WRITE) ||
        len > BLK_INLINE_MAX || len > *left)
        return false;
    *left -= len;
    return true;
}

static void blk_take(struct blk *b, struct blk_job *job, struct blk_job **now,
                     uint64_t *inline_left)
{
    blk_request_parse(&job->chain, &b->lim, &job->req);
    job->durable = !b->writeback; /* the mode when the guest asked */
    job->inline_ok = blk_may_inline(job, inline_left);
    if (job->req.op == BLK_OP_DONE || job->req.op == BLK_OP_DROP ||
        job->req.op == BLK_OP_GET_ID) {
        blk_answer_now(b, job, now);
    } else if (blk_read_cached(b, job)) {
        job->next = *now;
        *now = job;
    } else {
        blk_submit(b, job, now);
    }
}

/* May the queue be drained further? Not while a remote engine has no room
 * (its commands in flight are bounded): the queue is left with kicks off,
 * and deferred once there is room (blk_on_remote_done()). */
static bool blk_has_room(struct blk *b, unsigned index)
{
    if (b->remote && !b->remote->room(b->engine, index)) {
        b->remote_stalled |= 1u << index;
        return false;
    }
    return true;
}

/* Take what the driver made available. Then, with io_uring, what
 * completed while being submitted is answered in this round, with the
 * rest, under one interrupt. */
static void blk_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct blk *b = priv;
    struct blk_job *job, *now = NULL;
    uint64_t inline_left = BLK_INLINE_TURN;

    while (blk_has_room(b, index)) {
        job = blk_job_new(b, q, index);
        if (!job) {
            xvdm_queue_defer(q); /* no memory for a job now: try again soon */
            break;
        }
        if (xvdm_queue_next(q, &job->chain) != 1) {
            blk_job_put(&b->jobs, job);
            break;
        }
        blk_take(b, job, &now, &inline_left);
    }
#ifdef BLK_IO_URING
    if (b->uring) {
        blk_uring_check(b, blk_uring_flush(b->uring));
        blk_uring_finished(b, blk_uring_take(b->uring), &now);
    }
#endif
    blk_complete_list(b, now);
}

/* The device forgets its queues: wait for the workers to let go of the
 * guest's buffers, and complete nothing (the rings are gone). */
static void blk_reset(void *priv)
{
    struct blk *b = priv;

#ifdef BLK_IO_URING
    if (b->uring) {
        blk_uring_wait_idle(b->uring);
        blk_job_put_list(&b->jobs, blk_uring_reap(b->uring));
    }
#endif
    if (b->remote) {
        b->remote->wait_idle(b->engine);
        blk_job_put_list(&b->jobs, b->remote->take(b->engine));
        b->remote_stalled = 0;
    }
    if (b->pool) {
        blk_pool_wait_idle(b->pool);
        blk_job_put_list(&b->jobs, blk_pool_reap(b->pool));
    }
    /* The sync ran (the threads are idle); one the guest asked for since
     * goes now. */
    b->sync_running = false;
    if (b->sync_wanted)
        blk_sync_earlier_writes(b);
}

/* ---- config space --------------------------------------------------------- */

static void blk_config_read(void *priv, uint32_t offset, void *buf,
                            uint32_t len)
{
    struct blk *b = priv;

    memcpy(buf, (const uint8_t *)&b->config + offset, len);
}

/* Writeback where the driver can flush, else writethrough (§5.2.5.1: a
 * driver without FLUSH may take every completed write as durable). */
static int blk_features_ok(void *priv, uint64_t features)
{
    struct blk *b = priv;

    b->writeback = features & (1ULL << VIRTIO_BLK_F_FLUSH);
    b->config.wce = b->writeback;
    return 0;
}

/* The driver may switch the cache mode (CONFIG_WCE); nothing else in
 * config space is writable. Going to writethrough, what writes completed
 * before are made durable now: the driver will not flush them. */
static void blk_config_write(void *priv, uint32_t offset, const void *buf,
                             uint32_t len)
{
    struct blk *b = priv;
    uint64_t f = xvdm_dev_features(b->dev);
    bool writeback;

    if (offset != offsetof(struct virtio_blk_config, wce) || len != 1 ||
        !(f & (1ULL << VIRTIO_BLK_F_CONFIG_WCE))) {
        xvdm_dev_guest_error(b->dev, "config write of %u bytes at %u ignored",
                             len, offset);
        return;
    }
    writeback = *(const uint8_t *)buf && (f & (1ULL << VIRTIO_BLK_F_FLUSH));
    if (writeback == b->writeback)
        return;
    if (!writeback)
        blk_sync_earlier_writes(b);
    b->writeback = writeback;
    b->config.wce = writeback;
    if (!writeback && !b->writethrough_logged)
        xvdm_dev_log(b->dev, XVDM_LOG_INFO,
                     "the guest set the cache to writethrough: each write "
                     "is synced before it completes");
    b->writethrough_logged |= !writeback;
}

/* A sync on a thread (or a flush a remote backing answers), not on the
 * loop: however long dom0 takes to write its cache back, the loop serves
 * on. A write completed before this call
 * is covered by the first sync that starts after it. */
static void blk_sync_earlier_writes(struct blk *b)
{
    struct blk_job *job, *now = NULL;

    if (b->sync_running) {
        b->sync_wanted = true;
        return;
    }
    job = blk_job_get(&b->jobs);
    if (!job) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "writethrough: no memory to sync earlier writes");
        return;
    }
    memset(job, 0, offsetof(struct blk_job, chain_iov));
    job->req.op = BLK_OP_FLUSH; /* job->q NULL: no guest's chain */
    b->sync_running = true;
    b->sync_wanted = false;
    if (b->pool) {
        blk_pool_submit(b->pool, job);
        return;
    }
    blk_submit(b, job, &now);
    blk_complete_list(b, now); /* failed at once: not sent */
}

/* ---- the backing's size ------------------------------------------------ */

static int blk_backing_size(struct blk *b, uint64_t *bytes)
{
    struct stat st;

    struct blk_remote_info info;

    if (b->remote) {
        int ret = b->remote->info(b->engine, &info);

        if (ret == 0)
            *bytes = info.size;
        return ret;
    }

    if (b->blockdev)
        return ioctl(b->fd, BLKGETSIZE64, bytes) ? -errno : 0;
    if (fstat(b->fd, &st))
        return -errno;
    *bytes = (uint64_t)st.st_size;
    return 0;
}

/* The backing may have grown or shrunk: on SIGHUP (`asked`), and every
 * size-check= seconds, as xen-blkback notices a resized device by itself.
 * Requests are checked against lim.sectors when they are taken, on this
 * thread, so none taken from now on reaches past the new end; the driver
 * re-reads capacity on the config change (VIRTIO 1.2 §5.2.2). */
static void blk_check_size(struct blk *b, bool asked)
{
    uint64_t bytes, old = b->lim.sectors * BLK_SECTOR;
    int ret = blk_backing_size(b, &bytes);

    if (ret) {
        if (asked || !b->size_error_logged)
            xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                         "cannot size the backing again, capacity stays "
                         "%llu bytes: %s",
                         (unsigned long long)old, strerror(-ret));
        b->size_error_logged = true;
        return;
    }
    b->size_error_logged = false;
    if (bytes / BLK_SECTOR == b->lim.sectors) {
        if (asked)
            xvdm_dev_log(b->dev, XVDM_LOG_INFO,
                         "backing size unchanged, %llu bytes",
                         (unsigned long long)bytes);
        return;
    }
    xvdm_dev_log(b->dev, XVDM_LOG_INFO, "backing size %llu -> %llu bytes",
                 (unsigned long long)old, (unsigned long long)bytes);
    b->lim.sectors = bytes / BLK_SECTOR;
    b->config.capacity = htole64(b->lim.sectors);
    xvdm_dev_config_changed(b->dev);
}

static void blk_reload(void *priv)
{
    blk_check_size(priv, true);
}

static void blk_on_size_timer(void *arg, uint32_t revents)
{
    struct blk *b = arg;
    uint64_t expirations;

    if (read(b->size_timer, &expirations, sizeof(expirations)) > 0)
        blk_check_size(b, false);
}

/* size-check=SECONDS (0: none). */
static int blk_start_size_timer(struct blk *b, uint64_t seconds)
{
    struct itimerspec every = {.it_interval = {(time_t)seconds, 0},
                               .it_value = {(time_t)seconds, 0}};
    int ret;

    if (!seconds)
        return 0;
    b->size_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (b->size_timer < 0 || timerfd_settime(b->size_timer, 0, &every, NULL))
        ret = -errno;
    else
        ret = xvdm_dev_watch_fd(b->dev, b->size_timer, EPOLLIN,
                                blk_on_size_timer, b);
    if (ret)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "cannot start checking the backing's size: %s",
                     strerror(-ret));
    return ret;
}

/* ---- setting up ------------------------------------------------------------ */

/* With O_DIRECT a file's reads and writes must start and end on the
 * offset alignment its storage needs (4096 bytes on a 4K-sector disk),
 * which the kernel tells through statx (Linux 6.1 on; 512 is assumed
 * where it does not). */
static int blk_file_dio_block(struct blk *b, const char *path)
{
    struct statx stx;
    uint32_t align;

    if (statx(b->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) ||
        !(stx.stx_mask & STATX_DIOALIGN))
        return 0;
    align = stx.stx_dio_offset_align;
    if (align == 0) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "direct=on: path='%s' does not support direct I/O "
                     "(use direct=off)", path);
        return -EINVAL;
    }
    if (align > BLK_MAX_BLOCK || (align & (align - 1))) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "direct=on: path='%s' needs direct I/O aligned to %u "
                     "bytes; blk offers a guest a block of at most %u "
                     "(use direct=off)", path, align, BLK_MAX_BLOCK);
        return -EINVAL;
    }
    if (align > BLK_SECTOR)
        b->min_block = align;
    return 0;
}

static int blk_open(struct blk *b, const char *path, bool ro, bool direct)
{
    struct stat st;
    uint64_t bytes;
    int ret;

    b->direct = direct;
    b->fd = open(path, (ro ? O_RDONLY : O_RDWR) | (direct ? O_DIRECT : 0) |
                           O_CLOEXEC);
    if (b->fd < 0 || fstat(b->fd, &st)) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "cannot open path='%s': %s",
                     path, strerror(errno));
        return -errno;
    }
    b->blockdev = S_ISBLK(st.st_mode);
    if (!b->blockdev && !S_ISREG(st.st_mode)) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "path='%s' is neither a file nor a block device", path);
        return -EINVAL;
    }
    ret = blk_backing_size(b, &bytes);
    if (ret) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "cannot size path='%s': %s", path,
                     strerror(-ret));
        return ret;
    }
    b->lim.sectors = bytes / BLK_SECTOR;
    return direct && !b->blockdev ? blk_file_dio_block(b, path) : 0;
}

/* The ID is 20 bytes, NUL-padded, not NUL-terminated when full (§5.2.6). */
static void blk_copy_serial(struct blk *b, const char *s, size_t len)
{
    memset(b->serial, 0, sizeof(b->serial));
    memcpy(b->serial, s, len < sizeof(b->serial) ? len : sizeof(b->serial));
}

static void blk_default_serial(struct blk *b, const char *path)
{
    const char *base = strrchr(path, '/');

    base = base ? base + 1 : path;
    blk_copy_serial(b, base, strlen(base));
}

static int blk_set_serial(struct blk *b, const char *serial)
{
    if (strlen(serial) > sizeof(b->serial)) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "serial='%s' is longer than %zu bytes", serial,
                     sizeof(b->serial));
        return -EINVAL;
    }
    blk_copy_serial(b, serial, strlen(serial));
    return 0;
}

#ifdef BLK_NBD
/* A reconnect may find the export resized: the guest hears of it now, not
 * at the next size-check=. */
static void blk_on_remote_back(void *ctx)
{
    blk_check_size(ctx, false);
}
#endif

#ifdef BLK_REMOTE
/* The backing decides what the device offers, within what the options
 * allow (ro=on, discard=off). */
static int blk_remote_offer(struct blk *b)
{
    struct blk_remote_info info;
    int ret = b->remote->info(b->engine, &info);

    if (ret)
        return ret;
    b->lim.sectors = info.size / BLK_SECTOR;
    b->lim.read_only |= info.read_only;
    b->lim.write_zeroes = b->lim.discard && info.zero;
    b->lim.discard &= info.trim;
    b->flush = info.flush;
    b->min_block = info.block;
    return 0;
}
#endif

/* nbd=URI: its export's name is the default serial. */
static int blk_open_nbd(struct blk *b, const char *uri, bool name_serial)
{
#ifdef BLK_NBD
    struct blk_nbd_set *n;
    char name[64];
    int ret = blk_nbd_set_create(&n, b->dev, uri, b->nqueues,
                                 blk_on_remote_done, blk_on_remote_back, b);

    if (ret)
        return ret;
    b->remote = &blk_nbd_set_ops;
    b->engine = n;
    if (name_serial)
        ret = blk_nbd_set_export_name(n, name, sizeof(name));
    if (ret)
        return ret;
    if (name_serial)
        blk_copy_serial(b, name, strlen(name));
    return blk_remote_offer(b);
#else
    xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                 "nbd='%s': this xvdm was built without libnbd "
                 "(install libnbd-dev and rebuild)", uri);
    return -ENOTSUP;
#endif
}

/* rbd=POOL/IMAGE[@SNAP]: the image's name is the default serial. */
static int blk_open_rbd(struct blk *b, const struct xvdm_options *opts,
                        const char *image)
{
#ifdef BLK_RBD
    const struct blk_rbd_backing *rbd = blk_rbd_load(b->dev);
    struct blk_rbd *r;
    int ret = rbd ? rbd->create(&r, b->dev, image, xvdm_opt_get(opts, "conf"),
                                xvdm_opt_get(opts, "id"), b->lim.read_only,
                                blk_on_remote_done, b)
                  : -ENOENT;

    if (ret)
        return ret;
    b->remote = rbd->ops;
    b->engine = r;
    if (!xvdm_opt_get(opts, "serial"))
        blk_default_serial(b, image);
    return blk_remote_offer(b);
#else
    xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                 "rbd='%s': this xvdm was built without librbd "
                 "(install librbd-dev and rebuild)", image);
    return -ENOTSUP;
#endif
}

/* Topology and logical block size, where the backing reports them. */
static void blk_config_topology(struct blk *b, uint64_t *features)
{
    /* The backing's minimum block is the guest's logical block, so that a
     * driver keeping to blk_size sends nothing the backing refuses (an
     * NBD server and libnbd, O_DIRECT on a file). */
    int lbs = b->min_block ? (int)b->min_block : 512;
    unsigned pbs = 0, min_io = 0, opt_io = 0;

    if (b->blockdev && ioctl(b->fd, BLKSSZGET, &lbs) == 0 &&
        ioctl(b->fd, BLKPBSZGET, &pbs) == 0 && ioctl(b->fd, BLKIOMIN, &min_io)
        == 0 && ioctl(b->fd, BLKIOOPT, &opt_io) == 0 && lbs >= 512) {
        unsigned exp = 0;

        while (((unsigned)lbs << (exp + 1)) <= pbs)
            exp++;
        b->config.physical_block_exp = (uint8_t)exp;
        b->config.min_io_size = htole16((uint16_t)(min_io / (unsigned)lbs));
        b->config.opt_io_size = htole32(opt_io / (unsigned)lbs);
        *features |= 1ULL << VIRTIO_BLK_F_TOPOLOGY;
    }
    b->config.blk_size = htole32((uint32_t)lbs);
}

static uint64_t blk_config_fill(struct blk *b)
{
    uint64_t f =
        (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE);

    /* A backing with no cache (an NBD server without flush) is always
     * writethrough: without FLUSH the driver takes it so (§5.2.5.1). */
    if (b->flush)
        f |= (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_CONFIG_WCE);
    b->config.capacity = htole64(b->lim.sectors);
    b->config.seg_max = htole32(BLK_SEG_MAX);
    b->config.wce = b->flush; /* until features_ok() knows if it can flush */
    blk_config_topology(b, &f);
    if (b->lim.read_only)
        f |= 1ULL << VIRTIO_BLK_F_RO;
    if (b->nqueues > 1)
        f |= 1ULL << VIRTIO_BLK_F_MQ;
    b->config.num_queues = htole16((uint16_t)b->nqueues);
    if (b->lim.discard) {
        f |= 1ULL << VIRTIO_BLK_F_DISCARD;
        b->config.max_discard_sectors = htole32(BLK_DWZ_SECTORS_MAX);
        b->config.max_discard_seg = htole32(BLK_DWZ_SEG_MAX);
        b->config.discard_sector_alignment = htole32(1);
    }
    if (b->lim.write_zeroes) {
        f |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
        b->config.max_write_zeroes_sectors = htole32(BLK_DWZ_SECTORS_MAX);
        b->config.max_write_zeroes_seg = htole32(BLK_DWZ_SEG_MAX);
        b->config.write_zeroes_may_unmap = 1;
    }
    return f;
}

static int blk_parse_options(struct blk *b, const struct xvdm_options *opts,
                             bool *direct, uint64_t *threads,
                             uint64_t *size_check)
{
    const char *serial = xvdm_opt_get(opts, "serial");
    uint64_t queues = 1;
    int ret;

    b->lim.discard = true;
    ret = xvdm_opt_bool(b->dev, opts, "ro", &b->lim.read_only);
    if (!ret)
        ret = xvdm_opt_bool(b->dev, opts, "discard", &b->lim.discard);
    if (!ret)
        ret = xvdm_opt_bool(b->dev, opts, "direct", direct);
    if (!ret)
        ret = xvdm_opt_u64(b->dev, opts, "queues", 1, BLK_QUEUES_MAX,
                           &queues);
    if (!ret)
        ret = xvdm_opt_u64(b->dev, opts, "iothreads", 1, 64, threads);
    if (!ret)
        ret = xvdm_opt_u64(b->dev, opts, "size-check", 0, 3600, size_check);
    if (!ret && serial)
        ret = blk_set_serial(b, serial);
    b->nqueues = (unsigned)queues;
    return ret;
}

static void blk_destroy(void *priv)
{
    struct blk *b = priv;

#ifdef BLK_IO_URING
    if (b->uring) {
        xvdm_dev_unwatch_fd(b->dev, blk_uring_fd(b->uring));
        blk_uring_destroy(b->uring);
    }
#endif
    if (b->pool) {
        xvdm_dev_unwatch_fd(b->dev, blk_pool_fd(b->pool));
        blk_pool_wait_idle(b->pool);
        blk_pool_destroy(b->pool);
    }
    if (b->bounce_ready)
        blk_rw_bounce_fini(&b->bounce);
    blk_job_cache_drain(&b->jobs);
    if (b->size_timer >= 0) {
        xvdm_dev_unwatch_fd(b->dev, b->size_timer);
        close(b->size_timer);
    }
    if (b->remote)
        b->remote->destroy(b->engine);
    if (b->fd >= 0)
        close(b->fd);
    free(b);
}

static int blk_start_pool(struct blk *b, unsigned threads)
{
    int ret = blk_rw_bounce_init(&b->bounce);

    b->bounce_ready = ret == 0;
    if (ret == 0)
        ret = blk_pool_create(&b->pool, threads, blk_exec, b);

    if (ret == 0)
        ret = xvdm_dev_watch_fd(b->dev, blk_pool_fd(b->pool), EPOLLIN,
                                blk_on_completion, b);
    if (ret)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "cannot start I/O threads: %s",
                     strerror(-ret));
    return ret;
}

/* aio=io_uring (or no aio=) wants io_uring; only an explicit request makes
 * its absence an error. */
static int blk_start_uring(struct blk *b, const char *aio)
{
    bool explicit = aio && strcmp(aio, "io_uring") == 0;

    if (aio && !explicit && strcmp(aio, "threads") != 0) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "aio='%s' is not io_uring or threads", aio);
        return -EINVAL;
    }
    if (aio && !explicit)
        return 0;
#ifdef BLK_IO_URING
    int ret = blk_uring_create(&b->uring, b->fd, BLK_QUEUE_SIZE * b->nqueues,
                               b->direct);

    if (ret == 0)
        ret = xvdm_dev_watch_fd(b->dev, blk_uring_fd(b->uring), EPOLLIN,
                                blk_on_uring_completion, b);
    if (ret == 0)
        return 0;
    blk_uring_destroy(b->uring);
    b->uring = NULL;
    xvdm_dev_log(b->dev, explicit ? XVDM_LOG_ERROR : XVDM_LOG_INFO,
                 "io_uring unavailable (%s)%s", strerror(-ret),
                 explicit ? "" : ": using threads");
    return explicit ? ret : 0;
#else
    if (explicit)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "aio=io_uring: this xvdm was built without liburing");
    return explicit ? -ENOTSUP : 0;
#endif
}

/* A file or block device, with the thread engine and io_uring. */
static int blk_open_file(struct blk *b, const struct xvdm_options *opts,
                         const char *path, bool direct, uint64_t threads)
{
    int ret;

    if (!xvdm_opt_get(opts, "serial"))
        blk_default_serial(b, path);
    b->lim.write_zeroes = b->lim.discard;
    b->flush = true;
    ret = blk_open(b, path, b->lim.read_only, direct);
    if (!ret)
        ret = blk_start_pool(b, (unsigned)threads);
    if (!ret)
        ret = blk_start_uring(b, xvdm_opt_get(opts, "aio"));
#ifdef BLK_IO_URING
    if (!ret)
        xvdm_dev_log(b->dev, XVDM_LOG_INFO, "%s, I/O engine %s", path,
                     b->uring ? "io_uring" : "threads");
#else
    if (!ret)
        xvdm_dev_log(b->dev, XVDM_LOG_INFO, "%s, I/O engine threads", path);
#endif
    return ret;
}

/* Options of another kind of backing than `key`=`value` are refused,
 * naming both: `names` belong to `owner`. */
static int blk_refuse(struct blk *b, const struct xvdm_options *opts,
                      const char *const names[], size_t n, const char *owner,
                      const char *key, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        if (xvdm_opt_get(opts, names[i])) {
            xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "%s= is for %s, not %s='%s'",
                         names[i], owner, key, value);
            return -EINVAL;
        }
    }
    return 0;
}

/* Exactly one of path=, nbd=, rbd=, and only its own options: an NBD
 * export or an RBD image is its own engine, so the options that choose a
 * file's have no meaning there. */
static int blk_open_backing(struct blk *b, const struct xvdm_options *opts,
                            bool direct, uint64_t threads)
{
    static const char *const keys[] = {"path", "nbd", "rbd"};
    static const char *const file_only[] = {"direct", "aio", "iothreads"};
    static const char *const rbd_only[] = {"conf", "id"};
    const char *key = NULL, *value = NULL;
    int ret = 0;

    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        const char *v = xvdm_opt_get(opts, keys[i]);

        if (v && value) {
            xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                         "%s='%s' and %s='%s': give one of them", key, value,
                         keys[i], v);
            return -EINVAL;
        }
        if (v) {
            key = keys[i];
            value = v;
        }
    }
    if (!value) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "path=, nbd= or rbd= is required");
        return -EINVAL;
    }
    if (strcmp(key, "rbd") != 0)
        ret = blk_refuse(b, opts, rbd_only, 2, "rbd=", key, value);
    if (!ret && strcmp(key, "path") == 0)
        return blk_open_file(b, opts, value, direct, threads);
    if (!ret)
        ret = blk_refuse(b, opts, file_only, 3, "path=", key, value);
    if (ret)
        return ret;
    return strcmp(key, "rbd") == 0
               ? blk_open_rbd(b, opts, value)
               : blk_open_nbd(b, value, !xvdm_opt_get(opts, "serial"));
}

/* batch=: one interrupt and no kick for requests that finish close
 * together (xvdm_dev_batch()). */
static int blk_start_batch(struct blk *b, const struct xvdm_options *opts)
{
    uint64_t us = BLK_BATCH_US;
    int ret = xvdm_opt_u64(b->dev, opts, "batch", 0, 10000, &us);

    if (ret == 0)
        ret = xvdm_dev_batch(b->dev, (uint32_t)us);
    return ret;
}

static int blk_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                      struct xvdm_device_setup *setup, void **priv)
{
    struct blk *b = calloc(1, sizeof(*b));
    uint64_t threads = 4, size_check = 1;
    bool direct = false;
    int ret;

    if (!b)
        return -ENOMEM;
    b->dev = dev;
    b->fd = -1;
    b->size_timer = -1;
    ret = blk_parse_options(b, opts, &direct, &threads, &size_check);
    /* As many as the guest can have in flight when it keeps to its rings. */
    blk_job_cache_init(&b->jobs, BLK_QUEUE_SIZE * b->nqueues);
    if (!ret)
        ret = blk_open_backing(b, opts, direct, threads);
    if (!ret)
        ret = blk_start_size_timer(b, size_check);
    if (!ret)
        ret = blk_start_batch(b, opts);
    if (ret) {
        blk_destroy(b);
        return ret;
    }
    setup->features = blk_config_fill(b);
    setup->num_queues = (uint16_t)b->nqueues;
    for (unsigned i = 0; i < b->nqueues; i++)
        setup->queue_size_max[i] = BLK_QUEUE_SIZE;
    setup->config_size = BLK_CONFIG_SIZE;
    *priv = b;
    return 0;
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "blk",
    .summary = "block device (virtio-blk) backed by a file, a block device, "
               "an NBD export or a Ceph RBD image",
    .device_id = BLK_DEVICE_ID,
    .options = blk_options,
    .create = blk_create,
    .destroy = blk_destroy,
    .config_read = blk_config_read,
    .config_write = blk_config_write,
    .features_ok = blk_features_ok,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
    .reload = blk_reload,
};
