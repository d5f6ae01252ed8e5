/* SPDX-License-Identifier: MIT */
/* The virtio-blk NBD backing (see blk-nbd.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <libnbd.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock-now.h"
#include "../common/iov-copy.h"
#include "blk-nbd-uri.h"
#include "blk-nbd.h"

/* libnbd refuses reads and writes over 64 MiB, and a server that
 * advertises no maximum may drop the connection past 32 MiB
 * (nbd_get_block_size(3)): larger buffers go as several commands. */
#define NBD_LEN_DEFAULT (32ULL << 20)
#define NBD_LEN_LIBNBD (64ULL << 20)
/* How long a handshake may take, at creation and at each reconnect, and
 * how long a reset waits for the replies to what is in flight. */
#define NBD_CONNECT_MS 10000
#define NBD_IDLE_MS 5000
/* How long a connection still reads replies that came, once the wait is
 * over (blk_nbd_wait_idle_until()). */
#define NBD_LATE_MS 10
#define NBD_BACKOFF_MIN_MS 100
#define NBD_BACKOFF_MAX_MS 5000
/* A session that served a reply, or stayed up this long, was a success:
 * the next loss retries from NBD_BACKOFF_MIN_MS. One that ends sooner
 * (a server that closes after the handshake) is a failure, else every
 * cycle would start over at 100 ms, forever, each dropping the device's
 * other connections. */
#define NBD_STABLE_MS 5000
/* Most bytes of one bounce buffer. A request whose buffers straddle the
 * server's minimum block (or that does not start and end on it) goes
 * through one a piece of at most this at a time. */
#define NBD_BOUNCE_MAX (1ULL << 20)
/* Per connection: bytes in bounce buffers (only a device's first
 * connection bounces, blk-nbd-set.c), and commands at the server. A
 * request may be many commands (buffers larger than the server's
 * maximum): past the bound its other commands wait for replies, and the
 * queues it serves take no more requests (nbd_room()). */
#define NBD_BOUNCE_TOTAL (4ULL << 20)
#define NBD_INFLIGHT_MAX 64

enum nbd_state { NBD_DOWN, NBD_CONNECTING, NBD_READY };

struct blk_nbd {
    struct xvdm_dev *dev;
    char *uri;
    /* How its lines name it: nbd='URI', and which connection it is where
     * the device has several (blk_nbd_number()). */
    char *name;
    struct nbd_handle *h; /* NULL while down */
    enum nbd_state state;
    int fd;          /* h's socket, watched, or -1 */
    uint32_t events; /* what is watched on fd */
    int timer;       /* the backoff before a reconnect, or its deadline */
    unsigned backoff_ms;
    unsigned failures; /* reconnects that failed since the last success */
    struct blk_remote_info info;
    uint64_t max_len; /* bytes per read or write command */
    unsigned busy;    /* jobs with commands at libnbd or waiting */
    unsigned cmds;    /* commands at libnbd, up to NBD_INFLIGHT_MAX */
    uint64_t bounced; /* bytes in bounce buffers, see NBD_BOUNCE_TOTAL */
    bool rmw;         /* a read-modify-write is under way */
    bool stalled;     /* the device was told there is no room */
    struct blk_job *waiting; /* jobs with commands still to send, in order */
    struct blk_job *finished; /* every command retired, not yet looked at */
    struct blk_job *done;     /* status set, for the device */
    blk_remote_done_fn *done_fn;
    blk_remote_back_fn *back_fn;
    bool was_up; /* connected before: a connection now is a reconnect */
    unsigned long sessions; /* made since created */
    uint64_t up_since; /* when the session began */
    bool served;       /* a reply came on the session */
    /* One of several connections to the export: it serves only while the
     * server allows multi-conn (blk-nbd-set.c). */
    bool need_multi;
    /* Lost on its own, one of several: no reconnect until the first
     * connection's next session (blk_nbd_drop()). */
    bool held;
    /* nbd_cannot()'s reason was logged on this connection (its flags
     * leave one reason at most: read-only, else no write-zeroes). */
    bool cannot_said;
    void *ctx;
};

/* libnbd's last error, right after the call that failed; a state
 * machine that died without one was closed by the server. */
static const char *nbd_why(void)
{
    const char *e = nbd_get_error();

    return e ? e : "the server closed the connection";
}

/* ---- one job's commands ------------------------------------------------ */

/* Every command a job sends holds it, and so does its sender until it has
 * sent them all: the job is finished when the last one lets go. */
static void nbd_release(struct blk_nbd *n, struct blk_job *job)
{
    if (++job->cmd_retired < job->cmd_sent)
        return;
    n->busy--;
    if (job->nbd_rmw)
        n->rmw = false; /* the next read-modify-write may read */
    job->nbd_rmw = false;
    job->next = n->finished;
    n->finished = job;
}

static int nbd_cmd_reply(void *user_data, int *error)
{
    struct blk_job *job = user_data;

    /* A connection that dies fails its commands here too: only a reply
     * that succeeded tells of a server that serves. */
    if (*error == 0) {
        job->cmd_ok++;
        job->nbd->served = true;
    }
    return 1; /* retired: nothing asks for its status later */
}

/* libnbd calls this once it will not touch the command's buffer again:
 * after its reply, when it refused to send it, or when the connection
 * ended (libnbd(3), "Callback lifetimes"). Only the job is touched here:
 * no nbd_* call is allowed under libnbd's lock. */
static void nbd_cmd_free(void *user_data)
{
    struct blk_job *job = user_data;

    job->nbd->cmds--;
    nbd_release(job->nbd, job);
}

static nbd_completion_callback nbd_cmd(struct blk_job *job)
{
    job->cmd_sent++;
    job->nbd->cmds++;
    return (nbd_completion_callback){
        .callback = nbd_cmd_reply, .user_data = job, .free = nbd_cmd_free};
}

/* A command libnbd refused at once (its free callback has counted it as
 * failed): say why, rate-limited, as the guest's request may be the
 * cause; unless the connection died sending it, which nbd_pump() says. */
static void cmd_sent(struct blk_nbd *n, int64_t cookie)
{
    if (cookie < 0 && !nbd_aio_is_dead(n->h))
        xvdm_dev_guest_error(n->dev, "%s refused a command: %s", n->name,
                             nbd_get_error());
}

static void nbd_begin(struct blk_nbd *n, struct blk_job *job)
{
    job->nbd = n;
    job->nbd_session = n->sessions;
    job->cmd_sent = 1; /* the sender's hold */
    job->cmd_ok = 1;
    job->cmd_retired = 0;
    job->nbd_pos = 0;
    job->nbd_stage = 0;
    job->nbd_part = 0;
    n->busy++;
}

/* What sending a job's next command came to. */
enum nbd_next { NBD_NEXT_SENT, NBD_NEXT_NONE, NBD_NEXT_WAIT };

/* A read (`read`) or write of [off, off + len) from or into p. */
static void nbd_send_io(struct blk_nbd *n, struct blk_job *job, bool read,
                        uint8_t *p, uint64_t len, uint64_t off)
{
    if (read)
        cmd_sent(n, nbd_aio_pread(n->h, p, len, off, nbd_cmd(job), 0));
    else
        cmd_sent(n, nbd_aio_pwrite(n->h, p, len, off, nbd_cmd(job),
                                   job->nbd_fua));
}

/* Straight from the guest: the buffer holding byte nbd_pos, from there,
 * up to max_len. */
static enum nbd_next nbd_next_direct(struct blk_nbd *n, struct blk_job *job)
{
    const struct blk_request *req = &job->req;
    uint64_t skip = job->nbd_pos;

    for (unsigned i = 0; i < req->niov; i++) {
        uint64_t left = req->iov[i].iov_len;

        if (skip >= left) {
            skip -= left;
            continue;
        }
        left -= skip;
        left = left < n->max_len ? left : n->max_len;
        nbd_send_io(n, job, req->op == BLK_OP_READ,
                    (uint8_t *)req->iov[i].iov_base + skip, left,
                    req->offset + job->nbd_pos);
        job->nbd_pos += left;
        return NBD_NEXT_SENT;
    }
    return NBD_NEXT_NONE;
}

/* A request, or one of its buffers, that does not start and end on the
 * server's minimum block: libnbd would refuse it sent as it is. The guest
 * may split data anywhere (VIRTIO 1.2 §2.6.4.2), and the server may have
 * come back from a reconnect with a larger block than the guest was told. */
static bool nbd_needs_bounce(const struct blk_nbd *n,
                             const struct blk_request *req)
{
    uint64_t mask = n->info.block - 1;

    if ((req->offset | req->len) & mask)
        return true;
    for (unsigned i = 0; i < req->niov; i++)
        if (req->iov[i].iov_len & mask)
            return true;
    return false;
}

/* Whether every command the job sent is back (its sender's hold aside). */
static bool nbd_all_back(const struct blk_job *job)
{
    return job->cmd_retired + 1 >= job->cmd_sent;
}

/* The guest's bytes of the piece into the bounce buffer, at their place:
 * the data of a write (the piece's part of it), or zeroes. */
static void nbd_bounce_fill(struct blk_job *job)
{
    uint8_t *at = job->nbd_bounce + (job->nbd_piece_off - job->nbd_bounce_off);

    if (job->req.op == BLK_OP_WRITE)
        iov_copy(job->req.iov, job->req.niov,
                 job->nbd_piece_off - job->req.offset, at, job->nbd_piece_len,
                 false);
    else
        memset(at, 0, job->nbd_piece_len);
}

/* The blocks a bounced piece [off, off + glen) covers, in a buffer of
 * them: read whole, the guest's part copied out when it completes
 * (nbd_unbounce); or the guest's part put in and written whole, after
 * reading the blocks first where the guest's part does not cover them
 * (read-modify-write, one job at a time per device, so that two never
 * write the same block from stale data). Up to NBD_BOUNCE_MAX and the
 * server's maximum, else failed; it waits while the device's bounce
 * buffers would pass NBD_BOUNCE_TOTAL. nbd_stage: 1 once the read of a
 * read-modify-write is sent, 2 once all is. */
static enum nbd_next nbd_bounce_start(struct blk_nbd *n, struct blk_job *job,
                                      uint64_t off, uint64_t glen)
{
    uint64_t mask = n->info.block - 1, start = off & ~mask;
    uint64_t len = ((off + glen + mask) & ~mask) - start;
    bool read = job->req.op == BLK_OP_READ, rmw = !read && len != glen;

    if (len > NBD_BOUNCE_MAX || len > n->max_len) {
        xvdm_dev_guest_error(n->dev,
                             "%s: a request of %llu bytes not aligned "
                             "to the server's %u-byte block",
                             n->name, (unsigned long long)glen, n->info.block);
        job->cmd_ok--;
        return NBD_NEXT_NONE;
    }
    if ((n->bounced && n->bounced + len > NBD_BOUNCE_TOTAL) ||
        (rmw && n->rmw && !job->nbd_rmw))
        return NBD_NEXT_WAIT; /* one finishing lets go of its buffer */
    /* Not zeroed: a write fills it whole, or reads it first and writes it
     * only if the read succeeded; a read reaches the guest only if it
     * succeeded. libnbd zeroes a read's buffer before it starts
     * (nbd_set_pread_initialize(3), left on), so what a server's reply
     * leaves out is zeroes, never old heap bytes. */
    job->nbd_bounce = malloc(len);
    if (!job->nbd_bounce) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "%s: no memory for a bounce buffer", n->name);
        job->cmd_ok--;
        return NBD_NEXT_NONE;
    }
    n->bounced += len;
    n->rmw |= rmw;
    job->nbd_rmw |= rmw;
    job->nbd_bounce_off = start;
    job->nbd_bounce_len = len;
    job->nbd_piece_off = off;
    job->nbd_piece_len = glen;
    if (!read && !rmw)
        nbd_bounce_fill(job);
    nbd_send_io(n, job, read || rmw, job->nbd_bounce, len, start);
    job->nbd_stage = rmw ? 1 : 2;
    return NBD_NEXT_SENT;
}

/* The write of a read-modify-write, once its read succeeded. */
static enum nbd_next nbd_bounce_write(struct blk_nbd *n, struct blk_job *job)
{
    if (!nbd_all_back(job))
        return NBD_NEXT_WAIT; /* the read is not back */
    job->nbd_stage = 2;
    if (job->cmd_ok < job->cmd_sent)
        return NBD_NEXT_NONE; /* it failed: so does the request */
    nbd_bounce_fill(job);
    nbd_send_io(n, job, false, job->nbd_bounce, job->nbd_bounce_len,
                job->nbd_bounce_off);
    return NBD_NEXT_SENT;
}

static enum nbd_next nbd_next_bounced(struct blk_nbd *n, struct blk_job *job,
                                      uint64_t off, uint64_t len)
{
    if (job->nbd_stage == 0)
        return nbd_bounce_start(n, job, off, len);
    if (job->nbd_stage == 1)
        return nbd_bounce_write(n, job);
    return NBD_NEXT_NONE;
}

/* A bounced read that succeeded goes to the guest's buffers; the bounce
 * buffer is let go of in any case. */
static void nbd_unbounce(struct blk_nbd *n, struct blk_job *job, bool ok)
{
    if (!job->nbd_bounce)
        return;
    if (ok && job->req.op == BLK_OP_READ)
        iov_copy(job->req.iov, job->req.niov,
                 job->nbd_piece_off - job->req.offset,
                 job->nbd_bounce + (job->nbd_piece_off - job->nbd_bounce_off),
                 job->nbd_piece_len, true);
    free(job->nbd_bounce);
    job->nbd_bounce = NULL;
    n->bounced -= job->nbd_bounce_len;
}

/* The piece of a bounced read or write that starts nbd_pos bytes in: up
 * to NBD_BOUNCE_MAX (and the server's maximum) in whole blocks from the
 * block it starts in, so that only the first and the last piece may have
 * edge blocks to read first. */
static uint64_t nbd_piece_len(const struct blk_nbd *n,
                              const struct blk_job *job)
{
    uint64_t mask = n->info.block - 1;
    uint64_t most = (n->max_len < NBD_BOUNCE_MAX ? n->max_len
                                                 : NBD_BOUNCE_MAX) & ~mask;
    uint64_t at = job->req.offset + job->nbd_pos;
    uint64_t end = job->req.offset + job->req.len;
    uint64_t stop = (at & ~mask) + most;

    if (!most) /* a server whose maximum is below its block: refused */
        return end - at;
    return (stop < end ? stop : end) - at;
}

/* A bounced read or write, a piece at a time (nbd_pos: where the next one
 * starts), each through a bounce buffer once the one before is back and
 * let go of: a request larger than one bounce buffer goes through, the
 * jobs behind it waiting meanwhile. The last piece, once sent, is let go
 * of when the job finishes, as a request of one piece is: jobs behind it
 * go on. */
static enum nbd_next nbd_next_pieces(struct blk_nbd *n, struct blk_job *job)
{
    enum nbd_next r;

    for (;;) {
        if (job->nbd_stage == 0 && job->nbd_bounce) { /* the piece before */
            if (!nbd_all_back(job))
                return NBD_NEXT_WAIT;
            nbd_unbounce(n, job, job->cmd_ok == job->cmd_sent);
            if (job->cmd_ok < job->cmd_sent)
                return NBD_NEXT_NONE; /* it failed: so does the request */
        }
        r = nbd_next_bounced(n, job, job->req.offset + job->nbd_pos,
                             nbd_piece_len(n, job));
        if (r != NBD_NEXT_NONE || job->nbd_stage != 2)
            return r;
        job->nbd_pos += job->nbd_piece_len;
        if (job->nbd_pos == job->req.len)
            return NBD_NEXT_NONE;
        job->nbd_stage = 0;
    }
}

/* A range cut by the server's minimum block (which may have grown since
 * the guest was told it, at a reconnect): the edge before the whole
 * blocks inside it, those blocks, and the edge after them, each edge
 * within one block; parts [cut[i], cut[i + 1]). */
static void nbd_range_cut(const struct blk_nbd *n, const struct blk_range *r,
                          uint64_t cut[4])
{
    uint64_t mask = n->info.block - 1, end = r->offset + r->len;
    uint64_t first = (r->offset + mask) & ~mask, last = end & ~mask;

    cut[0] = r->offset;
    cut[1] = first < end ? first : end;
    cut[2] = last > cut[1] ? last : cut[1];
    cut[3] = end;
}

/* Whether a part of a write-zeroes job (`edge`, or its whole blocks) may
 * start. The guest's ranges may share a block, and the server may run
 * commands in any order: an edge starts once every command the job sent
 * is back, lest it read the block before zeroes another part sent, or
 * write it back after them; whole blocks start once the edge before, if
 * any, is back, lest its write land after their zeroes. That edge then
 * lets go of its buffer. */
static bool nbd_part_may_start(struct blk_nbd *n, struct blk_job *job,
                               bool edge)
{
    if ((edge || job->nbd_bounce) && !nbd_all_back(job))
        return false;
    nbd_unbounce(n, job, false);
    return true;
}

/* An edge of a write-zeroes range: its block read, zeroed where the guest
 * said, written back. */
static enum nbd_next nbd_next_edge(struct blk_nbd *n, struct blk_job *job,
                                   uint64_t off, uint64_t len)
{
    if (job->nbd_stage == 0 && !nbd_part_may_start(n, job, true))
        return NBD_NEXT_WAIT;
    return nbd_next_bounced(n, job, off, len);
}

/* The part nbd_part of the range: its whole blocks as one command; its
 * edges, which the server refuses as they are, zeroed through a bounce
 * buffer, or, for a discard, left alone (VIRTIO 1.2 §5.2.6.2: a discard
 * is a hint). Write zeroes keeps the allocation unless the guest allowed
 * unmapping (VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP); NBD says so with
 * NO_HOLE. */
static enum nbd_next nbd_next_part(struct blk_nbd *n, struct blk_job *job,
                                   const struct blk_range *r)
{
    uint64_t cut[4], off, len;

    nbd_range_cut(n, r, cut);
    off = cut[job->nbd_part];
    len = cut[job->nbd_part + 1] - off;
    if (len == 0) /* NBD refuses empty commands: nothing to do */
        return NBD_NEXT_NONE;
    if (job->nbd_part != 1)
        return job->req.op == BLK_OP_WRITE_ZEROES
                   ? nbd_next_edge(n, job, off, len)
                   : NBD_NEXT_NONE;
    if (job->nbd_stage == 0 && !nbd_part_may_start(n, job, false))
        return NBD_NEXT_WAIT;
    /* A discard is a hint: nothing to do where the server (back from a
     * reconnect) has no trim. */
    if (job->nbd_stage++ || (job->req.op == BLK_OP_DISCARD && !n->info.trim))
        return NBD_NEXT_NONE;
    if (job->req.op == BLK_OP_DISCARD)
        cmd_sent(n, nbd_aio_trim(n->h, len, off, nbd_cmd(job), job->nbd_fua));
    else
        cmd_sent(n, nbd_aio_zero(n->h, len, off, nbd_cmd(job),
                                 job->nbd_fua |
                                     (r->unmap ? 0 : LIBNBD_CMD_FLAG_NO_HOLE)));
    return NBD_NEXT_SENT;
}

/* Each range, nbd_pos, in its three parts, nbd_part. */
static enum nbd_next nbd_next_range(struct blk_nbd *n, struct blk_job *job)
{
    enum nbd_next r;

    while (job->nbd_pos < job->req.nranges) {
        r = nbd_next_part(n, job, &job->req.range[job->nbd_pos]);
        if (r != NBD_NEXT_NONE)
            return r;
        job->nbd_stage = 0;
        if (++job->nbd_part == 3) {
            job->nbd_part = 0;
            job->nbd_pos++;
        }
    }
    return NBD_NEXT_NONE;
}

/* Without a flush (NBD_FLAG_SEND_FLUSH unset) the server keeps no
 * volatile cache: there is nothing to make durable. */
static enum nbd_next nbd_next_flush(struct blk_nbd *n, struct blk_job *job)
{
    if (job->nbd_pos++ || !n->info.flush)
        return NBD_NEXT_NONE;
    cmd_sent(n, nbd_aio_flush(n->h, nbd_cmd(job), 0));
    return NBD_NEXT_SENT;
}

static enum nbd_next nbd_next(struct blk_nbd *n, struct blk_job *job)
{
    if (job->nbd_flushing || job->req.op == BLK_OP_FLUSH)
        return nbd_next_flush(n, job);
    if (job->req.op != BLK_OP_READ && job->req.op != BLK_OP_WRITE)
        return nbd_next_range(n, job);
    if (job->nbd_stage || job->nbd_bounce || nbd_needs_bounce(n, &job->req))
        return nbd_next_pieces(n, job);
    return nbd_next_direct(n, job);
}

static void nbd_watch_update(struct blk_nbd *n);
static void nbd_fail_and_retry(struct blk_nbd *n, const char *why);

/* Whether libnbd found the connection dead the last time it ran (r < 0:
 * what nbd_aio_notify_* or nbd_poll returned), which it may do in any
 * call, a command's send too: it has then closed the socket and failed
 * what was in flight. If so the connection is dropped, and retried after
 * a backoff. */
static bool nbd_lost(struct blk_nbd *n, int r)
{
    if (r >= 0 && !nbd_aio_is_dead(n->h) && !nbd_aio_is_closed(n->h))
        return false;
    nbd_fail_and_retry(n, nbd_why());
    return true;
}

/* Send the waiting jobs' commands, in order, while fewer than
 * NBD_INFLIGHT_MAX are at the server; a job that has sent them all lets
 * go of its sender's hold. Every command is sent from here, and libnbd
 * may have sent only part of one (a large write, more than the socket
 * takes at once): the socket is then watched for writing the rest, else
 * it waits for a reply to something else, which may never come. A send
 * that finds the connection gone stops it: the jobs still waiting fail,
 * and the connection is dropped (n->h is then NULL). */
static void nbd_pump(struct blk_nbd *n)
{
    struct blk_job *job;
    enum nbd_next r = NBD_NEXT_SENT;

    while ((job = n->waiting) && n->cmds < NBD_INFLIGHT_MAX &&
           !nbd_aio_is_dead(n->h) &&
           (r = nbd_next(n, job)) != NBD_NEXT_WAIT) {
        if (r == NBD_NEXT_SENT)
            continue;
        n->waiting = job->next;
        nbd_release(n, job);
    }
    if (!nbd_lost(n, 0))
        nbd_watch_update(n);
}

/* Queue the job's commands behind the others' and send what the bound
 * allows now. */
static void nbd_enqueue(struct blk_nbd *n, struct blk_job *job, bool flushing)
{
    struct blk_job **end = &n->waiting;

    nbd_begin(n, job);
    job->nbd_flushing = flushing;
    job->next = NULL;
    while (*end)
        end = &(*end)->next;
    *end = job;
    nbd_pump(n);
}

/* The connection is gone: jobs that could not send all their commands
 * fail. */
static void nbd_fail_waiting(struct blk_nbd *n)
{
    struct blk_job *job;

    while ((job = n->waiting)) {
        n->waiting = job->next;
        job->cmd_ok--;
        nbd_release(n, job);
    }
}

/* A durable write goes with FUA where the server takes it, else is
 * followed by a flush once it completed (NBD: a flush covers the writes
 * completed before it was sent). */
static void nbd_send(struct blk_nbd *n, struct blk_job *job)
{
    bool durable = job->durable && blk_request_writes(&job->req);

    job->nbd_fua = durable && n->info.fua ? LIBNBD_CMD_FLAG_FUA : 0;
    job->then_flush = durable && !n->info.fua && n->info.flush;
    nbd_enqueue(n, job, false);
}

/* What the export cannot do of the job since a reconnect took it away
 * (virtio cannot take back what the guest was offered, as RO once it
 * accepted the features): why, or NULL. */
static const char *nbd_cannot(const struct blk_nbd *n,
                              const struct blk_job *job)
{
    if (blk_request_writes(&job->req) && n->info.read_only)
        return "the export is read-only";
    if (job->req.op == BLK_OP_WRITE_ZEROES && !n->info.zero)
        return "the export takes no write-zeroes";
    return NULL;
}

static void nbd_finish(struct blk_nbd *n, struct blk_job *job, uint8_t status)
{
    nbd_unbounce(n, job, status == VIRTIO_BLK_S_OK);
    job->status = status;
    job->next = n->done;
    n->done = job;
}

/* Finished jobs to the done list, once their follow-up flush, if any, has
 * completed too (only with `follow`: a reset abandons them). */
static void nbd_look_at_finished(struct blk_nbd *n, bool follow)
{
    struct blk_job *job;

    do {
        while ((job = n->finished)) {
            bool ok = job->cmd_ok == job->cmd_sent;

            n->finished = job->next;
            if (ok && job->then_flush) {
                job->then_flush = false;
                /* The write is done with its bounce buffer: held until
                 * the flush, which queues behind a job waiting for
                 * bounce room, it would deadlock the device. */
                nbd_unbounce(n, job, true);
                if (follow && n->state == NBD_READY) {
                    nbd_enqueue(n, job, true);
                    continue;
                }
                ok = false; /* written, but not known to be durable */
            }
            nbd_finish(n, job, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
        }
        /* Their bounce buffers let go of, a waiting job may go on (during
         * a reset too, which waits for all to finish). */
        if (n->state == NBD_READY)
            nbd_pump(n);
    } while (n->finished);
}


/* ---- the socket in the loop -------------------------------------------- */

/* Watch what libnbd's state machine waits for (nbd_aio_get_direction(3)):
 * the loop is level-triggered, so nothing it does not want. Never after
 * libnbd found the connection dead, as it then closed the socket (whose
 * number may be another's by now): nbd_lost() comes first and drops it. */
static void nbd_watch_update(struct blk_nbd *n)
{
    unsigned dir;
    uint32_t ev = 0;
    int ret;

    if (n->fd < 0)
        return;
    dir = nbd_aio_get_direction(n->h);
    if (dir & LIBNBD_AIO_DIRECTION_READ)
        ev |= EPOLLIN;
    if (dir & LIBNBD_AIO_DIRECTION_WRITE)
        ev |= EPOLLOUT;
    if (ev == n->events)
        return;
    ret = xvdm_dev_modify_fd(n->dev, n->fd, ev);
    if (ret)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "%s: cannot watch the socket: %s",
                     n->name, strerror(-ret));
    else
        n->events = ev;
}

static void nbd_arm(struct blk_nbd *n, unsigned ms)
{
    struct itimerspec t = {.it_value = {ms / 1000, (long)(ms % 1000) * 1000000}};

    if (timerfd_settime(n->timer, 0, &t, NULL))
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "%s: cannot set the reconnect timer: %s", n->name,
                     strerror(errno));
}

/* Close the connection: libnbd lets go of every command (each job in
 * flight is finished, failed), and the loop of its socket. */
static void nbd_drop(struct blk_nbd *n)
{
    if (n->fd >= 0)
        xvdm_dev_unwatch_fd(n->dev, n->fd);
    n->fd = -1;
    n->events = 0;
    nbd_close(n->h);
    n->h = NULL;
    n->state = NBD_DOWN;
    nbd_fail_waiting(n);
}

static void nbd_succeeded(struct blk_nbd *n)
{
    n->failures = 0;
    n->backoff_ms = NBD_BACKOFF_MIN_MS;
}

/* The connection, or an attempt at one, failed: said once when the
 * connection is lost, then at each doubling of the failures. */
static void nbd_fail(struct blk_nbd *n, const char *why)
{
    if (n->state != NBD_READY)
        n->failures++;
    else if (n->served || clock_now_ms() - n->up_since >= NBD_STABLE_MS)
        nbd_succeeded(n);
    if (n->state == NBD_READY)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "%s: connection lost (%s): requests fail until "
                     "it is back",
                     n->name, why);
    else if ((n->failures & (n->failures - 1)) == 0)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "cannot reconnect to %s (%u tries): %s", n->name,
                     n->failures, why);
    nbd_drop(n);
}

/* Try again after a backoff that doubles up to NBD_BACKOFF_MAX_MS. */
static void nbd_retry(struct blk_nbd *n)
{
    n->held = false;
    nbd_arm(n, n->backoff_ms);
    n->backoff_ms = n->backoff_ms * 2 < NBD_BACKOFF_MAX_MS
                        ? n->backoff_ms * 2
                        : NBD_BACKOFF_MAX_MS;
}

/* Failed, and retried after the backoff; but one of several connections
 * lost on its own waits for the first's next session: the URI may reach
 * another server by now, where what its queue writes would be lost to
 * the first's. Its queue goes on the first meanwhile (blk-nbd-set.c). A
 * handshake that fails is retried: it is the set's re-make, following
 * the first's session. */
static void nbd_fail_and_retry(struct blk_nbd *n, const char *why)
{
    bool lost = n->state == NBD_READY;

    nbd_fail(n, why);
    if (!lost || !n->need_multi) {
        nbd_retry(n);
        return;
    }
    n->held = true;
    xvdm_dev_log(n->dev, XVDM_LOG_INFO,
                 "%s: waits for the first connection's next session, its "
                 "queue on the first meanwhile",
                 n->name);
}

/* The export's flags and sizes; *tail: its bytes past the last whole
 * minimum block, which NBD lets no request reach (a request must be
 * aligned to the block and end within the export: the NBD protocol,
 * "Block size constraints"), so they are left out of its size. */
static int nbd_read_info(struct nbd_handle *h, struct blk_remote_info *info,
                         uint64_t *tail)
{
    int64_t size = nbd_get_size(h);
    int ro = nbd_is_read_only(h), trim = nbd_can_trim(h);
    int zero = nbd_can_zero(h), flush = nbd_can_flush(h), fua = nbd_can_fua(h);
    /* 0 (none said) or a power of 2 up to 64 KiB, as libnbd checked. */
    int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
    uint32_t block = min > 512 ? (uint32_t)min : 512;

    if (size < 0 || ro < 0 || trim < 0 || zero < 0 || flush < 0 || fua < 0 ||
        min < 0)
        return -1;
    *tail = (uint64_t)size & (block - 1);
    *info = (struct blk_remote_info){(uint64_t)size - *tail, ro, trim, zero,
                                  flush, fua, block};
    return 0;
}

static void nbd_connected(struct blk_nbd *n)
{
    int64_t max = nbd_get_block_size(n->h, LIBNBD_SIZE_MAXIMUM);
    uint64_t tail;

    if (nbd_read_info(n->h, &n->info, &tail)) {
        nbd_fail_and_retry(n, nbd_why());
        return;
    }
    if (n->need_multi && nbd_can_multi_conn(n->h) != 1) {
        nbd_fail_and_retry(n, "the server no longer allows multi-conn");
        return;
    }
    n->max_len = max > 0 && (uint64_t)max < NBD_LEN_LIBNBD ? (uint64_t)max
                 : max > 0                               ? NBD_LEN_LIBNBD
                                                         : NBD_LEN_DEFAULT;
    n->state = NBD_READY;
    n->sessions++;
    n->up_since = clock_now_ms();
    n->served = false;
    n->cannot_said = false;
    nbd_arm(n, 0);
    xvdm_dev_log(n->dev, XVDM_LOG_INFO, "%s: connected, %llu bytes%s", n->name,
                 (unsigned long long)n->info.size,
                 n->info.read_only ? ", read-only" : "");
    if (tail)
        xvdm_dev_log(n->dev, XVDM_LOG_WARN,
                     "%s: the export's last %llu bytes are not a whole "
                     "%u-byte block, which NBD cannot reach: left out",
                     n->name, (unsigned long long)tail, n->info.block);
    if (n->was_up)
        n->back_fn(n->ctx);
    n->was_up = true;
}

/* After libnbd ran (r: what nbd_aio_notify_* or nbd_poll returned). */
static void nbd_progress(struct blk_nbd *n, int r)
{
    if (nbd_lost(n, r))
        return;
    if (n->state == NBD_CONNECTING && nbd_aio_is_ready(n->h))
        nbd_connected(n);
    if (n->state == NBD_READY)
        nbd_pump(n); /* replies made room */
    nbd_watch_update(n);
}

static bool nbd_has_room(const struct blk_nbd *n)
{
    return !n->waiting && n->cmds < NBD_INFLIGHT_MAX;
}

static struct blk_job *nbd_take(void *e)
{
    struct blk_nbd *n = e;
    struct blk_job *list = n->done;

    n->done = NULL;
    return list;
}

/* Hand what finished to the device, and room if it was told there was
 * none. */
static void nbd_deliver(struct blk_nbd *n)
{
    bool room;

    nbd_look_at_finished(n, true);
    room = n->stalled && nbd_has_room(n);
    if (room)
        n->stalled = false;
    if (n->done || room)
        n->done_fn(n->ctx, nbd_take(n));
}

/* nbd_aio_get_direction(3): with both ready, only the read, whose reply
 * may change what is to be written. A hang-up is read (or written) to
 * learn what happened. */
static void nbd_on_socket(void *arg, uint32_t revents)
{
    struct blk_nbd *n = arg;
    unsigned dir = nbd_aio_get_direction(n->h);
    int r = 0;

    if ((dir & LIBNBD_AIO_DIRECTION_READ) &&
        (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        r = nbd_aio_notify_read(n->h);
    else if ((dir & LIBNBD_AIO_DIRECTION_WRITE) &&
             (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
        r = nbd_aio_notify_write(n->h);
    else if (!dir)
        r = -1; /* a state that expects nothing of the socket: dead */
    nbd_progress(n, r);
    nbd_deliver(n);
}

/* Start connecting, without waiting: 0, or -1 after `why` was filled. */
static int nbd_start(struct blk_nbd *n, char *why, size_t why_len)
{
    char *uri = blk_nbd_uri_now(n->uri);
    bool failed;
    int ret;

    if (!uri) {
        snprintf(why, why_len, "%s", strerror(errno));
        return -1;
    }
    n->h = nbd_create();
    failed = !n->h ||
             nbd_set_uri_allow_transports(n->h, LIBNBD_ALLOW_TRANSPORT_TCP |
                                                    LIBNBD_ALLOW_TRANSPORT_UNIX) ||
             nbd_aio_connect_uri(n->h, uri);
    free(uri);
    if (failed) {
        snprintf(why, why_len, "%s", nbd_why());
        nbd_close(n->h);
        n->h = NULL;
        return -1;
    }
    n->fd = nbd_aio_get_fd(n->h);
    ret = xvdm_dev_watch_fd(n->dev, n->fd, 0, nbd_on_socket, n);
    if (ret) {
        snprintf(why, why_len, "cannot watch the socket: %s", strerror(-ret));
        n->fd = -1;
        nbd_drop(n);
        return -1;
    }
    n->state = NBD_CONNECTING;
    nbd_watch_update(n);
    return 0;
}

static void nbd_on_timer(void *arg, uint32_t revents)
{
    struct blk_nbd *n = arg;
    uint64_t expirations;
    char why[256];

    if (read(n->timer, &expirations, sizeof(expirations)) <= 0)
        return;
    if (n->state == NBD_CONNECTING) {
        nbd_fail_and_retry(n, "no handshake within the time allowed");
    } else if (n->state == NBD_DOWN) {
        if (nbd_start(n, why, sizeof(why)))
            nbd_fail_and_retry(n, why);
        else
            nbd_arm(n, NBD_CONNECT_MS);
    }
    nbd_deliver(n);
}

/* ---- the device's side --------------------------------------------------- */

static void nbd_submit(void *e, struct blk_job *job)
{
    struct blk_nbd *n = e;
    const char *why;

    job->then_flush = false;
    job->nbd_bounce = NULL;
    job->nbd_rmw = false;
    if (n->state != NBD_READY || !blk_request_within(&job->req, n->info.size)) {
        nbd_finish(n, job, VIRTIO_BLK_S_IOERR);
        return;
    }
    why = nbd_cannot(n, job);
    if (why) {
        /* The export's state, not the guest's doing: said once per
         * connection, so not through the guest's error budget, which the
         * guest (or its reads failed while the server was away) may have
         * used up. Each request still fails (blk_complete()'s line). */
        if (!n->cannot_said)
            xvdm_dev_log(n->dev, XVDM_LOG_WARN,
                         "%s: %s: the guest's requests that need it "
                         "fail",
                         n->name, why);
        n->cannot_said = true;
        nbd_finish(n, job, VIRTIO_BLK_S_IOERR);
        return;
    }
    nbd_send(n, job);
    nbd_look_at_finished(n, true);
}

static bool nbd_room(void *e, unsigned queue)
{
    struct blk_nbd *n = e;
    bool room = nbd_has_room(n);

    n->stalled |= !room;
    return room;
}

/* A handshake under way goes too: it may have reached the server the
 * caller wants left; and one held (lost on its own) is retried now. What
 * failed is handed to the device now: its timer, the connection's next
 * event, may be the backoff away. */
void blk_nbd_drop(struct blk_nbd *n, const char *why)
{
    if (!n->h && !n->held)
        return;
    if (n->h)
        nbd_fail(n, why);
    nbd_retry(n);
    nbd_deliver(n);
}

bool blk_nbd_ready(const struct blk_nbd *n)
{
    return n->state == NBD_READY;
}

unsigned long blk_nbd_session(const struct blk_nbd *n)
{
    return n->state == NBD_READY ? n->sessions : 0;
}

bool blk_nbd_multi_conn(const struct blk_nbd *n)
{
    return n->h && nbd_can_multi_conn(n->h) == 1;
}

bool blk_nbd_direct(const struct blk_nbd *n, const struct blk_job *job)
{
    uint64_t cut[4];

    if (job->req.op == BLK_OP_READ || job->req.op == BLK_OP_WRITE)
        return !nbd_needs_bounce(n, &job->req);
    for (unsigned i = 0;
         job->req.op == BLK_OP_WRITE_ZEROES && i < job->req.nranges; i++) {
        nbd_range_cut(n, &job->req.range[i], cut);
        if (cut[0] != cut[1] || cut[2] != cut[3])
            return false;
    }
    return true;
}

int blk_nbd_export_name(const struct blk_nbd *n, char *buf, size_t len)
{
    char *name = n->h ? nbd_get_export_name(n->h) : NULL;

    if (!name)
        return -ENOTCONN;
    snprintf(buf, len, "%s", name);
    free(name);
    return 0;
}

static int nbd_info(void *e, struct blk_remote_info *info)
{
    const struct blk_nbd *n = e;

    if (n->state != NBD_READY)
        return -ENOTCONN;
    *info = n->info;
    return 0;
}

uint64_t blk_nbd_idle_deadline(void)
{
    return clock_now_ms() + NBD_IDLE_MS;
}

void blk_nbd_wait_idle_until(struct blk_nbd *n, uint64_t deadline)
{
    uint64_t now = clock_now_ms();
    uint64_t late = (now > deadline ? now : deadline) + NBD_LATE_MS;
    int r = 1;

    nbd_look_at_finished(n, false);
    /* Past the deadline (the device's other connections may have taken
     * the time) the replies that came are still read, without waiting,
     * for NBD_LATE_MS at most: a server can send reply chunks that end
     * no command faster than they are read. A connection is dropped for
     * replies that did not come. */
    while (n->busy && n->h && (now < deadline || (r > 0 && now < late))) {
        r = nbd_poll(n->h, now < deadline ? (int)(deadline - now) : 0);
        nbd_progress(n, r);
        nbd_look_at_finished(n, false);
        now = clock_now_ms();
    }
    if (n->busy) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "%s: no reply within %d ms, dropping the "
                     "connection",
                     n->name, NBD_IDLE_MS);
        nbd_fail_and_retry(n, "no reply");
    }
    nbd_look_at_finished(n, false);
}

static void nbd_wait_idle(void *e)
{
    blk_nbd_wait_idle_until(e, blk_nbd_idle_deadline());
}

/* The first connection, waited for: the device is offered as the export
 * is. */
static int nbd_first_connect(struct blk_nbd *n)
{
    uint64_t deadline = clock_now_ms() + NBD_CONNECT_MS, now;
    char why[256] = "no handshake within the time allowed";

    if (nbd_start(n, why, sizeof(why)) == 0) {
        while (!nbd_aio_is_ready(n->h) && (now = clock_now_ms()) < deadline) {
            if (nbd_poll(n->h, (int)(deadline - now)) < 0 ||
                nbd_aio_is_dead(n->h) || nbd_aio_is_closed(n->h)) {
                snprintf(why, sizeof(why), "%s", nbd_why());
                break;
            }
        }
        if (nbd_aio_is_ready(n->h)) {
            nbd_connected(n);
            nbd_watch_update(n);
        }
    }
    if (n->state == NBD_READY)
        return 0;
    xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "cannot connect to %s: %s", n->name,
                 why);
    return -ECONNREFUSED;
}

/* A URI that could not be served as given, from its first connection
 * to its reconnects inside --chroot, is refused naming it. */
static int nbd_uri_refused(const struct blk_nbd *n)
{
    const char *why;
    int ret = blk_nbd_uri_check(n->uri, &why);

    if (ret)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "nbd='%s': %s", n->uri, why);
    return ret;
}

static void nbd_free_list(struct blk_job *job)
{
    struct blk_job *next;

    for (; job; job = next) {
        next = job->next;
        free(job->nbd_bounce);
        free(job);
    }
}

static void nbd_destroy(void *e)
{
    struct blk_nbd *n = e;

    if (!n)
        return;
    if (n->h)
        nbd_drop(n);
    nbd_free_list(n->finished);
    nbd_free_list(n->done);
    if (n->timer >= 0) {
        xvdm_dev_unwatch_fd(n->dev, n->timer);
        close(n->timer);
    }
    free(n->uri);
    free(n->name);
    free(n);
}

/* nbd='URI', followed by "(connection N)" unless number is 0; NULL when
 * out of memory. */
static char *nbd_name_of(const char *uri, unsigned number)
{
    char *name;

    if ((number ? asprintf(&name, "nbd='%s' (connection %u)", uri, number)
                : asprintf(&name, "nbd='%s'", uri)) < 0)
        return NULL;
    return name;
}

void blk_nbd_number(struct blk_nbd *n, unsigned number)
{
    char *name = nbd_name_of(n->uri, number);

    if (!name)
        return; /* out of memory: its lines keep the name they had */
    free(n->name);
    n->name = name;
}

int blk_nbd_create(struct blk_nbd **out, struct xvdm_dev *dev, const char *uri,
                   unsigned number, blk_remote_done_fn *done,
                   blk_remote_back_fn *back, void *ctx)
{
    struct blk_nbd *n = calloc(1, sizeof(*n));
    int ret = 0;

    if (!n)
        return -ENOMEM;
    *n = (struct blk_nbd){.dev = dev,
                          .fd = -1,
                          .timer = -1,
                          .done_fn = done,
                          .back_fn = back,
                          .ctx = ctx,
                          .need_multi = number > 0,
                          .backoff_ms = NBD_BACKOFF_MIN_MS};
    n->uri = strdup(uri);
    n->name = nbd_name_of(uri, number);
    if (!n->uri || !n->name)
        ret = -ENOMEM;
    n->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (!ret && n->timer < 0)
        ret = -errno;
    if (!ret)
        ret = xvdm_dev_watch_fd(dev, n->timer, EPOLLIN, nbd_on_timer, n);
    if (ret)
        xvdm_dev_log(dev, XVDM_LOG_ERROR, "nbd='%s': %s", uri, strerror(-ret));
    else
        ret = nbd_uri_refused(n);
    if (ret == 0)
        ret = nbd_first_connect(n);
    if (ret) {
        nbd_destroy(n);
        return ret;
    }
    *out = n;
    return 0;
}

const struct blk_remote_ops blk_nbd_ops = {
    .submit = nbd_submit,
    .room = nbd_room,
    .take = nbd_take,
    .wait_idle = nbd_wait_idle,
    .info = nbd_info,
    .destroy = nbd_destroy,
};
