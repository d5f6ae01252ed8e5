/* SPDX-License-Identifier: MIT */
/* The virtio-blk Ceph RBD backing (see blk-rbd.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <pthread.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk-rbd.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#define RBD_KEPT_FOR_GOOD(p) __lsan_ignore_object(p)
#else
#define RBD_KEPT_FOR_GOOD(p) ((void)(p))
#endif

/* Requests at librbd per device; past it the device takes no more until
 * one completes. A request is at most BLK_DWZ_SEG_MAX operations (its
 * ranges) and then a flush. */
#define RBD_INFLIGHT_MAX 64
/* Seconds: how long connecting may take (librados waits 5 minutes by
 * default), and after how long an operation the cluster does not answer
 * fails (by default it waits for ever, and a reset with it). */
#define RBD_CONNECT_S "10"
#define RBD_OP_TIMEOUT_S "30"
#define RBD_OP_TIMEOUT_MS 30000 /* the same, for closing the image */

struct blk_rbd {
    struct xvdm_dev *dev;
    char *name; /* POOL/IMAGE[@SNAP], for log lines */
    rados_t cluster;
    rados_ioctx_t io;
    rbd_image_t image;
    bool read_only;
    int efd; /* written when a job's operations are all back */
    /* Jobs whose operations are all back; and the counts of every job's
     * operations (cmd_*), which librbd's threads update. */
    pthread_mutex_t lock;
    struct blk_job *back;
    /* The loop thread's own. */
    unsigned busy;          /* jobs at librbd */
    bool stalled;           /* the device was told there is no room */
    struct blk_job *done;   /* status set, for the device */
    blk_remote_done_fn *done_fn;
    void *ctx;
    rbd_completion_t closing; /* the image's close, when destroyed */
};

/* ---- one job's operations (any thread) ------------------------------------ */

/* Every operation a job sends holds it, and so does its sender until it
 * has sent them all: the job is back when the last one lets go. */
static void rbd_release(struct blk_rbd *r, struct blk_job *job, bool ok)
{
    uint64_t one = 1;
    bool first;

    pthread_mutex_lock(&r->lock);
    job->cmd_ok += ok;
    if (++job->cmd_retired < job->cmd_sent) {
        pthread_mutex_unlock(&r->lock);
        return;
    }
    first = !r->back;
    job->next = r->back;
    r->back = job;
    /* One wake-up per batch: the loop takes the whole list, and clears
     * the eventfd, under the lock. Cannot fail short of overflow. */
    if (first && write(r->efd, &one, sizeof(one)) < 0)
        abort();
    pthread_mutex_unlock(&r->lock);
}

/* On one of librbd's threads: nothing but the job is touched. */
static void rbd_op_done(rbd_completion_t c, void *arg)
{
    struct blk_job *job = arg;
    ssize_t ret = rbd_aio_get_return_value(c);

    rbd_aio_release(c);
    rbd_release(job->rbd, job, ret >= 0);
}

/* ---- sending (loop thread) ------------------------------------------------- */

/* Operation `i` of the job (a range of a discard or write-zeroes), or its
 * flush (`flush`), with completion c. */
static int rbd_issue(struct blk_rbd *r, struct blk_job *job, unsigned i,
                     bool flush, rbd_completion_t c)
{
    const struct blk_request *req = &job->req;
    const struct blk_range *range = &req->range[i];

    if (flush || req->op == BLK_OP_FLUSH)
        return rbd_aio_flush(r->image, c);
    switch (req->op) {
    case BLK_OP_READ:
        return rbd_aio_readv(r->image, req->iov, (int)req->niov, req->offset,
                             c);
    case BLK_OP_WRITE:
        return rbd_aio_writev(r->image, req->iov, (int)req->niov, req->offset,
                              c);
    case BLK_OP_DISCARD:
        return rbd_aio_discard(r->image, range->offset, range->len, c);
    default:
        /* Without unmap the zeroes stay allocated (VIRTIO 1.2 §5.2.6.2). */
        return rbd_aio_write_zeroes(
            r->image, range->offset, range->len, c,
            range->unmap ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION, 0);
    }
}

/* Send one operation, counted before it goes: librbd may complete it at
 * once, on its own thread. One librbd refuses counts as failed; false
 * when there was no memory to send it. */
static bool rbd_send_op(struct blk_rbd *r, struct blk_job *job, unsigned i,
                        bool flush)
{
    rbd_completion_t c;
    int ret = rbd_aio_create_completion(job, rbd_op_done, &c);

    if (ret < 0) {
        xvdm_dev_log(r->dev, XVDM_LOG_ERROR,
                     "rbd='%s': no completion for a request: %s", r->name,
                     strerror(-ret));
        return false;
    }
    pthread_mutex_lock(&r->lock);
    job->cmd_sent++;
    pthread_mutex_unlock(&r->lock);
    ret = rbd_issue(r, job, i, flush, c);
    if (ret < 0) {
        xvdm_dev_guest_error(r->dev, "rbd='%s' refused a request: %s",
                             r->name, strerror(-ret));
        rbd_aio_release(c);
        rbd_release(r, job, false);
    }
    return true;
}

/* All of the job's operations (or its follow-up flush), then the
 * sender's hold let go of. */
static void rbd_send(struct blk_rbd *r, struct blk_job *job, bool flush)
{
    const struct blk_request *req = &job->req;
    unsigned n = !flush && (req->op == BLK_OP_DISCARD ||
                            req->op == BLK_OP_WRITE_ZEROES)
                     ? req->nranges
                     : 1;
    bool sent = true;

    /* Nothing of this job is at librbd: no lock yet. */
    job->cmd_sent = 1;
    job->cmd_ok = 0;
    job->cmd_retired = 0;
    for (unsigned i = 0; i < n && sent; i++)
        sent = rbd_send_op(r, job, i, flush);
    rbd_release(r, job, sent);
}

static void rbd_finish(struct blk_rbd *r, struct blk_job *job, uint8_t status)
{
    job->status = status;
    job->next = r->done;
    r->done = job;
}

/* Jobs back from librbd to the done list, once their follow-up flush, if
 * any, is back too (only with `follow`: a reset abandons them). */
static void rbd_look_at_back(struct blk_rbd *r, bool follow)
{
    struct blk_job *job, *next;
    uint64_t count;

    pthread_mutex_lock(&r->lock);
    job = r->back;
    r->back = NULL;
    /* Drained under the lock: a later completion writes it again. */
    if (read(r->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        abort();
    pthread_mutex_unlock(&r->lock);
    for (; job; job = next) {
        bool ok = job->cmd_ok == job->cmd_sent;

        next = job->next;
        if (ok && job->then_flush) {
            job->then_flush = false;
            if (follow) {
                rbd_send(r, job, true);
                continue;
            }
            ok = false; /* written, but not known to be durable */
        }
        r->busy--;
        rbd_finish(r, job, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
    }
}

static struct blk_job *rbd_take(void *e)
{
    struct blk_rbd *r = e;
    struct blk_job *list = r->done;

    r->done = NULL;
    return list;
}

/* Hand what finished to the device, and room if it was told there was
 * none. */
static void rbd_on_event(void *arg, uint32_t revents)
{
    struct blk_rbd *r = arg;
    bool room;

    rbd_look_at_back(r, true);
    room = r->stalled && r->busy < RBD_INFLIGHT_MAX;
    if (room)
        r->stalled = false;
    if (r->done || room)
        r->done_fn(r->ctx, rbd_take(r));
}

/* ---- the device's side ------------------------------------------------------ */

static int rbd_size(struct blk_rbd *r, uint64_t *size)
{
    return rbd_get_size(r->image, size);
}

static void rbd_submit(void *e, struct blk_job *job)
{
    struct blk_rbd *r = e;
    uint64_t size;

    job->rbd = r;
    job->then_flush = job->durable && blk_request_writes(&job->req);
    /* The image may have shrunk (another client resized it) before the
     * guest heard of it; librbd would fail the request anyway. */
    if (rbd_size(r, &size) || !blk_request_within(&job->req, size)) {
        rbd_finish(r, job, VIRTIO_BLK_S_IOERR);
        return;
    }
    r->busy++;
    rbd_send(r, job, false);
}

static bool rbd_room(void *e, unsigned queue)
{
    struct blk_rbd *r = e;
    bool room = r->busy < RBD_INFLIGHT_MAX;

    r->stalled |= !room;
    return room;
}

static void rbd_wait_idle(void *e)
{
    struct blk_rbd *r = e;
    struct pollfd p = {.fd = r->efd, .events = POLLIN};

    rbd_look_at_back(r, false);
    while (r->busy) {
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            abort();
        rbd_look_at_back(r, false);
    }
}

static int rbd_info(void *e, struct blk_remote_info *info)
{
    struct blk_rbd *r = e;
    uint64_t size;
    int ret = rbd_size(r, &size);

    if (ret < 0)
        return ret;
    *info = (struct blk_remote_info){.size = size, .read_only = r->read_only,
                                     .trim = true, .zero = true,
                                     .flush = true, .fua = false,
                                     .block = 512};
    return 0;
}

static void rbd_free_list(struct blk_job *job)
{
    struct blk_job *next;

    for (; job; job = next) {
        next = job->next;
        free(job);
    }
}

/* Close the image within RBD_OP_TIMEOUT_MS: true when closed. Closing
 * releases the image's lock and watch at the cluster, one operation
 * after another, each up to the timeout (90 s in all with the OSD gone,
 * test-blk-rbd): past the bound the image is left to librbd, whose
 * completion touches nothing of xvdm's (no callback). librbd's threads
 * outlive blk.so: glibc never unloads librbd and librados (C++ unique
 * symbols), whoever loaded them. */
static bool rbd_close_in_bounds(struct blk_rbd *r)
{
    int waited_ms = 0;

    if (rbd_aio_create_completion(NULL, NULL, &r->closing) < 0) {
        rbd_close(r->image); /* no memory for the bound: unbounded */
        return true;
    }
    if (rbd_aio_close(r->image, r->closing) < 0) {
        rbd_aio_release(r->closing);
        return false;
    }
    while (!rbd_aio_is_complete(r->closing) &&
           waited_ms < RBD_OP_TIMEOUT_MS) {
        poll(NULL, 0, 10);
        waited_ms += 10;
    }
    if (!rbd_aio_is_complete(r->closing)) {
        xvdm_dev_log(r->dev, XVDM_LOG_ERROR,
                     "rbd='%s': the cluster did not answer closing the "
                     "image within %s s: left open",
                     r->name, RBD_OP_TIMEOUT_S);
        return false;
    }
    rbd_aio_release(r->closing);
    return true;
}

static void rbd_destroy(void *e)
{
    struct blk_rbd *r = e;
    bool closed;

    if (!r)
        return;
    /* Every job is back (wait_idle(), or none was sent). */
    closed = !r->image || rbd_close_in_bounds(r);
    if (closed && r->io)
        rados_ioctx_destroy(r->io);
    if (closed && r->cluster)
        rados_shutdown(r->cluster);
    rbd_free_list(r->back);
    rbd_free_list(r->done);
    if (r->efd >= 0) {
        xvdm_dev_unwatch_fd(r->dev, r->efd);
        close(r->efd);
    }
    /* An image left open keeps its handles (and librbd what it holds of
     * them) for the rest of the process: not a leak to report. */
    if (!closed) {
        RBD_KEPT_FOR_GOOD(r);
        return;
    }
    pthread_mutex_destroy(&r->lock);
    free(r->name);
    free(r);
}

/* ---- connecting --------------------------------------------------------------- */

/* "POOL/IMAGE[@SNAP]" cut in place into its parts; false when it is not
 * so. */
static bool rbd_parse_name(char *spec, char **pool, char **image, char **snap)
{
    char *slash = strchr(spec, '/'), *at;

    if (!slash || slash == spec || strchr(slash + 1, '/'))
        return false;
    *slash = '\0';
    *pool = spec;
    *image = slash + 1;
    at = strchr(*image, '@');
    *snap = NULL;
    if (at) {
        *at = '\0';
        *snap = at + 1;
        if (!**snap)
            return false;
    }
    return **image != '\0';
}

/* The cluster, as `conf` says and with xvdm's timeouts: 0, or a negative
 * errno with *what saying which step failed. */
static int rbd_connect(struct blk_rbd *r, const char *conf, const char *id,
                       const char **what)
{
    int ret;

    *what = "cannot create a librados handle";
    ret = rados_create(&r->cluster, id);
    if (ret < 0) {
        r->cluster = NULL;
        return ret;
    }
    *what = "cannot read the Ceph configuration";
    ret = rados_conf_read_file(r->cluster, conf);
    if (ret < 0)
        return ret;
    *what = "cannot set librados' timeouts";
    ret = rados_conf_set(r->cluster, "client_mount_timeout", RBD_CONNECT_S);
    if (ret == 0)
        ret = rados_conf_set(r->cluster, "rados_osd_op_timeout",
                             RBD_OP_TIMEOUT_S);
    if (ret == 0)
        ret = rados_conf_set(r->cluster, "rados_mon_op_timeout",
                             RBD_OP_TIMEOUT_S);
    /* No cache in librbd, whatever `conf` says: a write it held would be
     * written back past the guest's view, and with the cluster gone
     * closing the image waits for that write for ever (the operation
     * timeout fails it, the cache keeps it dirty and tries again). The
     * guest's own cache is the one to flush. */
    if (ret == 0)
        ret = rados_conf_set(r->cluster, "rbd_cache", "false");
    if (ret < 0)
        return ret;
    *what = "cannot connect to the cluster";
    return rados_connect(r->cluster);
}

static int rbd_open_image(struct blk_rbd *r, const char *conf, const char *id,
                          bool read_only, const char **what)
{
    char *spec = strdup(r->name), *pool, *image, *snap;
    int ret;

    if (!spec)
        return -ENOMEM;
    if (!rbd_parse_name(spec, &pool, &image, &snap)) {
        *what = "not POOL/IMAGE or POOL/IMAGE@SNAP";
        ret = -EINVAL;
    } else {
        ret = rbd_connect(r, conf, id, what);
    }
    if (ret == 0) {
        *what = "no such pool";
        ret = rados_ioctx_create(r->cluster, pool, &r->io);
        if (ret < 0)
            r->io = NULL;
    }
    if (ret == 0) {
        /* A snapshot is read-only whatever the device is told. */
        r->read_only = read_only || snap;
        *what = "cannot open the image";
        ret = r->read_only ? rbd_open_read_only(r->io, image, &r->image, snap)
                           : rbd_open(r->io, image, &r->image, NULL);
        if (ret < 0)
            r->image = NULL;
    }
    free(spec);
    return ret;
}

static int blk_rbd_create(struct blk_rbd **out, struct xvdm_dev *dev,
                          const char *image, const char *conf,
                          const char *id, bool read_only,
                          blk_remote_done_fn *done, void *ctx)
{
    struct blk_rbd *r = calloc(1, sizeof(*r));
    const char *what = "";
    uint64_t size;
    int ret;

    if (!r)
        return -ENOMEM;
    r->dev = dev;
    r->done_fn = done;
    r->ctx = ctx;
    pthread_mutex_init(&r->lock, NULL);
    r->name = strdup(image);
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!r->name || r->efd < 0) {
        what = "out of resources";
        ret = -errno;
    } else {
        ret = xvdm_dev_watch_fd(dev, r->efd, EPOLLIN, rbd_on_event, r);
        what = "cannot watch the completions' eventfd";
    }
    if (ret == 0)
        ret = rbd_open_image(r, conf, id, read_only, &what);
    if (ret == 0) {
        what = "cannot size the image";
        ret = rbd_size(r, &size);
    }
    if (ret < 0) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR, "cannot connect to rbd='%s': %s: %s",
                     image, what, strerror(-ret));
        rbd_destroy(r);
        return ret;
    }
    xvdm_dev_log(dev, XVDM_LOG_INFO, "rbd='%s': %llu bytes%s", image,
                 (unsigned long long)size, r->read_only ? ", read-only" : "");
    *out = r;
    return 0;
}

static const struct blk_remote_ops blk_rbd_ops = {
    .submit = rbd_submit,
    .room = rbd_room,
    .take = rbd_take,
    .wait_idle = rbd_wait_idle,
    .info = rbd_info,
    .destroy = rbd_destroy,
};

const struct blk_rbd_backing blk_rbd_backing = {
    .create = blk_rbd_create,
    .ops = &blk_rbd_ops,
};
