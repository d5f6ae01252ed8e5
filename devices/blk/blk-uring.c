/* SPDX-License-Identifier: MIT */
/* The virtio-blk io_uring engine (see blk-uring.h). */
#include <errno.h>
#include <liburing.h>
#include <stdbool.h>
#include <linux/virtio_blk.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "blk-uring.h"

struct blk_uring {
    struct io_uring ring;
    int fd;      /* the backing */
    bool direct; /* O_DIRECT: submitting copies nothing */
    int efd; /* signalled on completions */
    unsigned inflight;
    struct blk_job *done; /* completed, for the next reap */
    /* Prepared in the submission ring, not yet taken by the kernel, in
     * ring order. */
    struct blk_job *pending, **pending_tail;
    bool broken; /* the kernel refused a submission: nothing goes in */
};

/* Only what blk_uring_prep() submits; no register operation once the
 * ring runs. The filter that --seccomp installs lets io_uring_enter
 * through, so without these the ring could open and read any file. */
static int blk_uring_restrict(struct io_uring *ring)
{
    struct io_uring_restriction r[] = {
        {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV},
        {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV},
        {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC},
        {.opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED,
         .sqe_flags = IOSQE_ASYNC},
    };

    /* Debian 12's liburing 2.3 declares io_uring_register_restrictions()
     * and io_uring_enable_rings() but its library does not export them:
     * the system call, as they would make it. */
    if (syscall(SYS_io_uring_register, ring->ring_fd,
                IORING_REGISTER_RESTRICTIONS, r, sizeof(r) / sizeof(*r)) ||
        syscall(SYS_io_uring_register, ring->ring_fd,
                IORING_REGISTER_ENABLE_RINGS, NULL, 0))
        return -errno;
    return 0;
}

/* Created disabled: restrictions can only be set before it runs. */
static int blk_uring_setup(struct blk_uring *u, unsigned entries)
{
    int ret = io_uring_queue_init(entries, &u->ring, IORING_SETUP_R_DISABLED);

    if (ret)
        return ret;
    ret = io_uring_register_eventfd(&u->ring, u->efd);
    if (ret == 0)
        ret = blk_uring_restrict(&u->ring);
    if (ret)
        io_uring_queue_exit(&u->ring);
    return ret;
}

int blk_uring_create(struct blk_uring **out, int fd, unsigned entries,
                     bool direct)
{
    struct blk_uring *u = calloc(1, sizeof(*u));
    int ret;

    if (!u)
        return -ENOMEM;
    u->fd = fd;
    u->direct = direct;
    u->pending_tail = &u->pending;
    u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (u->efd < 0) {
        ret = -errno;
        free(u);
        return ret;
    }
    ret = blk_uring_setup(u, entries);
    if (ret) {
        close(u->efd);
        free(u);
        return ret;
    }
    *out = u;
    return 0;
}

void blk_uring_destroy(struct blk_uring *u)
{
    if (!u)
        return;
    blk_uring_wait_idle(u);
    while (u->done) {
        struct blk_job *job = u->done;

        u->done = job->next;
        free(job);
    }
    io_uring_queue_exit(&u->ring);
    close(u->efd);
    free(u);
}

static void blk_uring_prep(struct blk_uring *u, struct io_uring_sqe *sqe,
                           struct blk_job *job)
{
    struct blk_request *req = &job->req;

    if (req->op == BLK_OP_READ)
        io_uring_prep_readv(sqe, u->fd, req->iov, req->niov, req->offset);
    else if (req->op == BLK_OP_WRITE)
        io_uring_prep_writev(sqe, u->fd, req->iov, req->niov, req->offset);
    else
        io_uring_prep_fsync(sqe, u->fd, IORING_FSYNC_DATASYNC);
    if (req->op == BLK_OP_WRITE && job->durable)
        sqe->rw_flags = RWF_DSYNC; /* on stable storage when it completes */
    /* io_uring copies page-cache data inside the submitting call: what
     * the loop may not spend its turn on goes to io_uring's workers. */
    if (!job->inline_ok && !u->direct)
        io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
    io_uring_sqe_set_data(sqe, job);
}

/* A job completed without the kernel: on the done list, and the loop
 * woken to reap it. */
static void blk_uring_fail(struct blk_uring *u, struct blk_job *job)
{
    uint64_t one = 1;

    job->status = VIRTIO_BLK_S_IOERR;
    job->on_thread = false;
    job->next = u->done;
    u->done = job;
    if (write(u->efd, &one, sizeof(one)) < 0)
        return; /* the counter is saturated: a wake-up is pending anyway */
}

/* Hand the prepared jobs to the kernel. When it refuses for good (not a
 * transient EAGAIN/EBUSY/EINTR), the jobs it did not take fail with
 * IOERR instead of waiting forever, and later ones fail at once. */
static int blk_uring_submit_pending(struct blk_uring *u)
{
    int n = u->pending ? io_uring_submit(&u->ring) : 0;

    if (n == -EAGAIN || n == -EBUSY || n == -EINTR)
        return 0; /* retried at the next flush or reap */
    for (; n > 0 && u->pending; n--)
        u->pending = u->pending->next;
    if (n < 0) {
        u->broken = true;
        while (u->pending) {
            struct blk_job *job = u->pending;

            u->pending = job->next;
            u->inflight--;
            blk_uring_fail(u, job);
        }
    }
    if (!u->pending)
        u->pending_tail = &u->pending;
    return n < 0 ? n : 0;
}

int blk_uring_submit(struct blk_uring *u, struct blk_job *job)
{
    struct io_uring_sqe *sqe = u->broken ? NULL : io_uring_get_sqe(&u->ring);
    int ret = 0;

    if (!sqe && !u->broken) {
        /* The submission ring is full: hand what is there to the kernel. */
        ret = blk_uring_submit_pending(u);
        sqe = u->broken ? NULL : io_uring_get_sqe(&u->ring);
    }
    if (!sqe) {
        blk_uring_fail(u, job);
        return ret;
    }
    blk_uring_prep(u, sqe, job);
    job->next = NULL;
    *u->pending_tail = job;
    u->pending_tail = &job->next;
    u->inflight++;
    return 0;
}

int blk_uring_fd(const struct blk_uring *u)
{
    return u->efd;
}

static void blk_uring_complete(struct blk_uring *u, struct io_uring_cqe *cqe)
{
    struct blk_job *job = io_uring_cqe_get_data(cqe);
    bool data = job->req.op != BLK_OP_FLUSH;
    uint64_t want = data ? job->req.len : 0;

    /* A failed O_DIRECT read or write may be the kernel unable to pin the
     * guest's memory: EFAULT, or EIO from a block device's request of
     * more than 256 pages. A thread does it again, and tells the two
     * apart (blk-rw.h); another error fails there as it did here. */
    job->on_thread = (cqe->res >= 0 && (uint64_t)cqe->res != want) ||
                     (cqe->res < 0 && data && u->direct);
    job->status = cqe->res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    io_uring_cqe_seen(&u->ring, cqe);
    u->inflight--;
    job->next = u->done;
    u->done = job;
}

/* Every completion the ring holds, onto the done list; how many. */
static unsigned blk_uring_collect(struct blk_uring *u)
{
    struct io_uring_cqe *cqe;
    unsigned n = 0;

    for (; io_uring_peek_cqe(&u->ring, &cqe) == 0; n++)
        blk_uring_complete(u, cqe);
    return n;
}

/* Reset the eventfd's count: false only if the read fails otherwise than
 * finding nothing signalled. */
static bool blk_uring_clear_signal(struct blk_uring *u)
{
    uint64_t count;

    return read(u->efd, &count, sizeof(count)) == sizeof(count) ||
           errno == EAGAIN;
}

/* Page-cache reads complete inside the submitting system call, so their
 * completions are taken at once instead of after a wake-up of the loop.
 * Those it finds were signalled on the eventfd: cleared, so the loop does
 * not wake for nothing, and the ring looked at again for completions that
 * came between (their signal was cleared too). */
int blk_uring_flush(struct blk_uring *u)
{
    int ret = blk_uring_submit_pending(u);

    if (blk_uring_collect(u) && blk_uring_clear_signal(u))
        blk_uring_collect(u);
    return ret;
}

struct blk_job *blk_uring_take(struct blk_uring *u)
{
    struct blk_job *list = u->done;

    u->done = NULL;
    return list;
}

struct blk_job *blk_uring_reap(struct blk_uring *u)
{
    if (!blk_uring_clear_signal(u))
        return NULL;
    blk_uring_submit_pending(u); /* after a transient refusal */
    blk_uring_collect(u);
    return blk_uring_take(u);
}

void blk_uring_wait_idle(struct blk_uring *u)
{
    struct io_uring_cqe *cqe;

    blk_uring_submit_pending(u);
    while (u->inflight && io_uring_wait_cqe(&u->ring, &cqe) == 0)
        blk_uring_complete(u, cqe);
}
