/* SPDX-License-Identifier: MIT */
/* The connections of an NBD-backed device (see blk-nbd-set.h). */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <stdlib.h>
#include <string.h>

#include "blk-nbd-set.h"
#include "blk-nbd.h"

/* A connection's writes on its session that no flush may cover yet: the
 * device's count of writes when the first and the last completed, and
 * the session they were on. */
struct set_unflushed {
    uint64_t first, seq;
    unsigned long session;
};

struct blk_nbd_set {
    blk_remote_done_fn *done; /* the device's, which the set passes on */
    blk_remote_back_fn *back;
    void *ctx;
    struct xvdm_dev *dev;
    char *uri;
    /* Writes completed, not durable; of those, the ones a flush that
     * succeeded covers; and the first and last that none covers and were
     * on a session that ended since (the server may have lost them), 0
     * when the guest has been told of every such write. */
    uint64_t wrote, flushed, lost_first, lost;
    /* How many times the guest was told (a failed flush of its own), of
     * those how many have reached its rings, and the first lost write it
     * was told of the last time: a flush sent before the guest could see
     * that that covers it fails too. */
    uint64_t told, told_seen, told_first;
    bool resetting; /* between wait_idle() and take(): see set_take() */
    struct set_unflushed *unflushed; /* one per connection */
    unsigned n; /* connections: 1, or one per queue that could connect */
    struct blk_nbd *conn[];
};

/* A write, write-zeroes or discard completed but kept in the server's
 * cache, maybe: not writethrough (durable: FUA, or its own flush). */
static bool set_volatile_write(const struct blk_job *job)
{
    return job->status == VIRTIO_BLK_S_OK && !job->durable &&
           blk_request_writes(&job->req);
}

static unsigned set_index(const struct blk_nbd_set *s, const struct blk_nbd *c)
{
    unsigned i = 0;

    while (i + 1 < s->n && s->conn[i] != c)
        i++;
    return i;
}

/* Connection i's last write no flush covered, if its session ended: a
 * server restarted or failed over may have lost it, so the device's next
 * flush cannot promise it is durable. */
static void set_check_ended(struct blk_nbd_set *s, unsigned i)
{
    struct set_unflushed *u = &s->unflushed[i];

    if (u->seq && u->session != blk_nbd_session(s->conn[i])) {
        /* Those a flush covered since are durable. */
        uint64_t first = u->first > s->flushed ? u->first : s->flushed + 1;

        if (u->seq > s->flushed && (!s->lost || first < s->lost_first))
            s->lost_first = first;
        if (u->seq > s->flushed && u->seq > s->lost)
            s->lost = u->seq;
        u->seq = 0;
    }
}

static void set_wrote(struct blk_nbd_set *s, const struct blk_job *job)
{
    unsigned i = set_index(s, job->nbd);
    struct set_unflushed *u = &s->unflushed[i];

    set_check_ended(s, i);
    if (!u->seq || u->seq <= s->flushed || u->session != job->nbd_session)
        u->first = s->wrote + 1; /* none before it is pending here */
    u->seq = ++s->wrote;
    u->session = job->nbd_session;
}

/* Whether a flush that completed OK must fail: it covers a write lost
 * with its session that the guest had not been told of when it was sent.
 * While one is untold (s->lost), every flush fails. A flush sent before
 * the guest's ring had the telling fails if it covers the first write
 * that telling was about; one sent before an earlier telling, always
 * (that is rare, and failing errs the safe way). */
static bool set_flush_fails(const struct blk_nbd_set *s,
                            const struct blk_job *job)
{
    if (s->lost)
        return true;
    if (job->nbd_told == s->told)
        return false;
    return job->nbd_told + 1 < s->told || job->nbd_covers >= s->told_first;
}

/* Every connection's unflushed writes, if its session ended. */
static void set_check_all_ended(struct blk_nbd_set *s)
{
    for (unsigned i = 0; i < s->n; i++)
        set_check_ended(s, i);
}

/* The guest hears of the lost writes from its request `job` that fails:
 * the mark is spent if the request was sent after the last of them
 * completed (one sent before covers less). */
static void set_tell(struct blk_nbd_set *s, const struct blk_job *job)
{
    if (!s->lost || !job->q || job->nbd_covers < s->lost)
        return;
    s->told++;
    s->told_first = s->lost_first;
    s->lost = 0;
}

static void set_fail(struct blk_nbd_set *s, struct blk_job *job,
                     const char *what)
{
    job->status = VIRTIO_BLK_S_IOERR;
    xvdm_dev_log(s->dev, XVDM_LOG_ERROR,
                 "nbd='%s': a %s fails: writes completed before it were "
                 "on a session with the server that ended before a flush, "
                 "and may be lost",
                 s->uri, what);
}

/* VIRTIO 1.2 §5.2.6: a flush that completes OK says the writes completed
 * before it are durable; not so for those a lost session took. The mark
 * stays until the guest's own flush that covers the last of them has
 * failed and reaches it: one sent before that write completed (it covers
 * less) must not use it up for the flush that covers it, nor one a reset
 * drops (`told` false). The device's own flush (a switch to
 * writethrough, no guest's chain) fails too, which dom0's log says, but
 * tells the guest nothing, so it leaves the mark alone. */
static void set_flushed(struct blk_nbd_set *s, struct blk_job *job, bool told)
{
    set_check_all_ended(s);
    if (job->nbd_covers > s->flushed)
        s->flushed = job->nbd_covers;
    if (!told || !set_flush_fails(s, job))
        return;
    set_tell(s, job);
    set_fail(s, job, "flush");
}

/* A guest that writes through (after a switch to it, say) sends no flush
 * to fail: its next durable write (or write-zeroes: a discard's error a
 * guest may ignore) fails instead while a lost write is untold, the
 * write's own data on the server or not (a failed write leaves its
 * sectors undefined); one sent after the last lost write completed
 * spends the mark, as a flush covering it does. */
static void set_wrote_through(struct blk_nbd_set *s, struct blk_job *job,
                              bool told)
{
    set_check_all_ended(s);
    if (!told || !s->lost)
        return;
    set_tell(s, job);
    set_fail(s, job, "write");
}

/* What finished, seen before the device has it; `told`: and the guest
 * will have it (not a reset's, which drops it: nothing to fail or say). */
static struct blk_job *set_account(struct blk_nbd_set *s,
                                   struct blk_job *list, bool told)
{
    for (struct blk_job *job = list; job; job = job->next) {
        if (job->status != VIRTIO_BLK_S_OK)
            continue;
        if (set_volatile_write(job))
            set_wrote(s, job);
        else if (job->req.op == BLK_OP_FLUSH)
            set_flushed(s, job, told);
        else if (job->q && (job->req.op == BLK_OP_WRITE ||
                            job->req.op == BLK_OP_WRITE_ZEROES))
            set_wrote_through(s, job, told);
    }
    return list;
}

/* NBD, "NBD_FLAG_CAN_MULTI_CONN": with it, a flush's (or FUA's) effect
 * is visible across all connections when its reply comes, so a guest's
 * flush on its own queue's connection covers the writes completed on all
 * of them; without it, commands should not be spread over connections. */
static struct blk_nbd *set_conn(const struct blk_nbd_set *s, unsigned queue)
{
    struct blk_nbd *c = queue < s->n ? s->conn[queue] : s->conn[0];

    return blk_nbd_ready(c) ? c : s->conn[0];
}

static void set_submit(void *e, struct blk_job *job)
{
    struct blk_nbd_set *s = e;
    struct blk_nbd *c = set_conn(s, job->queue);

    if (!blk_nbd_direct(c, job))
        c = s->conn[0];
    job->nbd_covers = s->wrote;
    job->nbd_told = s->told_seen;
    blk_nbd_ops.submit(c, job);
}

static bool set_room(void *e, unsigned queue)
{
    struct blk_nbd_set *s = e;

    return blk_nbd_ops.room(set_conn(s, queue), queue);
}

/* After wait_idle(), the jobs go nowhere (blk-remote.h): a flush among
 * them tells the guest nothing. */
static struct blk_job *set_take(void *e)
{
    struct blk_nbd_set *s = e;
    struct blk_job *list = NULL, **end = &list;
    bool told = !s->resetting;

    s->resetting = false;
    for (unsigned i = 0; i < s->n; i++) {
        *end = blk_nbd_ops.take(s->conn[i]);
        while (*end)
            end = &(*end)->next;
    }
    return set_account(s, list, told);
}

/* A failed flush that told the guest is in its ring now: flushes sent
 * from here on were sent knowing. (One taken during submit() is only
 * pushed at the end of the drain, after the chains behind it in the ring
 * were sent.) */
static void set_delivered(void *e)
{
    struct blk_nbd_set *s = e;

    s->told_seen = s->told;
}

/* One deadline for the device's connections, waited for in turn: a
 * reset waits NBD_IDLE_MS at most, not that once per connection. */
static void set_wait_idle(void *e)
{
    struct blk_nbd_set *s = e;
    uint64_t deadline = blk_nbd_idle_deadline();

    s->resetting = true;
    for (unsigned i = 0; i < s->n; i++)
        blk_nbd_wait_idle_until(s->conn[i], deadline);
}

static void set_done(void *ctx, struct blk_job *list)
{
    struct blk_nbd_set *s = ctx;

    s->done(s->ctx, set_account(s, list, true));
}

/* A connection is back: the export may have changed size. */
static void set_back(void *ctx)
{
    struct blk_nbd_set *s = ctx;

    s->back(s->ctx);
}

/* The first connection has a new session, which may be with another
 * server (a failover, a restart, a socket moved: NBD cannot tell). The
 * others may still reach the server it left, where what they write is
 * lost to the device: each is dropped and re-made after its backoff, to
 * the server the first reaches now, which refuses it unless it allows
 * multi-conn; one lost on its own since waits for this (blk-nbd.c). That
 * loss does not make the first reconnect to bring it back: dropping a
 * session that serves would fail its requests for the sake of speed, and
 * a server that closed one connection is likely to close the first soon
 * enough. */
static void set_first_back(void *ctx)
{
    struct blk_nbd_set *s = ctx;

    for (unsigned i = 1; i < s->n; i++)
        blk_nbd_drop(s->conn[i], "the first connection has a new session");
    set_back(s);
}

/* The export as a connection that is up sees it. */
static int set_info(void *e, struct blk_remote_info *info)
{
    struct blk_nbd_set *s = e;
    unsigned i = 0;

    while (i + 1 < s->n && !blk_nbd_ready(s->conn[i]))
        i++;
    return blk_nbd_ops.info(s->conn[i], info);
}

static void set_destroy(void *e)
{
    struct blk_nbd_set *s = e;

    if (!s)
        return;
    for (unsigned i = 0; i < s->n; i++)
        blk_nbd_ops.destroy(s->conn[i]);
    free(s->unflushed);
    free(s->uri);
    free(s);
}

/* Which it is, said once: one connection a queue, or one for all. */
static void set_say(const struct blk_nbd_set *s, struct xvdm_dev *dev,
                    const char *uri, unsigned queues)
{
    if (s->n > 1)
        xvdm_dev_log(dev, XVDM_LOG_INFO, "nbd='%s': %u connections (multi-conn)",
                     uri, s->n);
    else if (queues > 1 && !blk_nbd_multi_conn(s->conn[0]))
        xvdm_dev_log(dev, XVDM_LOG_INFO,
                     "nbd='%s': 1 connection for %u queues (the server does "
                     "not allow multi-conn)",
                     uri, queues);
    else
        xvdm_dev_log(dev, XVDM_LOG_INFO, "nbd='%s': 1 connection", uri);
}

int blk_nbd_set_create(struct blk_nbd_set **out, struct xvdm_dev *dev,
                       const char *uri, unsigned queues,
                       blk_remote_done_fn *done, blk_remote_back_fn *back,
                       void *ctx)
{
    struct blk_nbd_set *s = calloc(1, sizeof(*s) + queues * sizeof(s->conn[0]));
    int ret;

    if (!s)
        return -ENOMEM;
    s->done = done;
    s->back = back;
    s->ctx = ctx;
    s->dev = dev;
    s->uri = strdup(uri);
    s->unflushed = calloc(queues, sizeof(*s->unflushed));
    ret = s->uri && s->unflushed ? blk_nbd_create(&s->conn[0], dev, uri, 0,
                                                  set_done, set_first_back, s)
                                 : -ENOMEM;
    if (ret) {
        set_destroy(s);
        return ret;
    }
    s->n = 1;
    /* A connection the server refuses (past its limit, say) is not
     * worth failing the device for: its queue shares the first. */
    while (s->n < queues && blk_nbd_multi_conn(s->conn[0]) &&
           blk_nbd_create(&s->conn[s->n], dev, uri, s->n + 1, set_done,
                          set_back, s) == 0)
        s->n++;
    /* Each connection's lines say which it is, the first's too once
     * there are others. */
    if (s->n > 1)
        blk_nbd_number(s->conn[0], 1);
    set_say(s, dev, uri, queues);
    *out = s;
    return 0;
}

int blk_nbd_set_export_name(const struct blk_nbd_set *s, char *buf,
                            size_t len)
{
    return blk_nbd_export_name(s->conn[0], buf, len);
}

const struct blk_remote_ops blk_nbd_set_ops = {
    .submit = set_submit,
    .room = set_room,
    .take = set_take,
    .wait_idle = set_wait_idle,
    .delivered = set_delivered,
    .info = set_info,
    .destroy = set_destroy,
};
