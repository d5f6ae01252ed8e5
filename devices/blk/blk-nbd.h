/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk NBD backing: requests sent to an NBD server through
 * libnbd's asynchronous API, its socket watched in xvdm's loop, up to 64
 * commands in flight, no thread. Requests not aligned to the server's
 * minimum block go through a bounce buffer. A server that goes away fails
 * what was in flight, and is reconnected with backoff; requests meanwhile
 * fail. Everything runs on the loop thread.
 */
#ifndef XVDM_BLK_NBD_H
#define XVDM_BLK_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blk-pool.h"

struct blk_nbd;

/* What the export offers (NBD's export flags), per connection. */
struct blk_nbd_info {
    uint64_t size; /* bytes */
    bool read_only;
    bool trim;
    bool zero;
    bool flush; /* no flush: the server keeps no volatile cache */
    bool fua;
    /* The server's minimum block size, at least 512: libnbd refuses
     * requests smaller or not aligned to it (nbd_set_strict_mode(3)). */
    uint32_t block;
};

/* Jobs the engine finished in one of its own events (its socket, its
 * timer): a list linked by next, status set; or NULL, when there is room
 * again after blk_nbd_room() said there was none. */
typedef void blk_nbd_done_fn(void *ctx, struct blk_job *list);
/* Connected again after the connection was lost: the export may have
 * changed size (blk_nbd_info()). */
typedef void blk_nbd_back_fn(void *ctx);

/* Connect to `uri` (nbd:// or nbd+unix://), waiting for the handshake:
 * the device is offered as the export is. 0, or a negative errno after a
 * logged line naming the URI. */
int blk_nbd_create(struct blk_nbd **out, struct xvdm_dev *dev, const char *uri,
                   blk_nbd_done_fn *done, blk_nbd_back_fn *back, void *ctx);
/* Drops the connection; jobs still in flight are freed, not completed
 * (call after blk_nbd_wait_idle() to lose nothing). */
void blk_nbd_destroy(struct blk_nbd *n);

/* The export as of the current connection; -ENOTCONN while there is
 * none. */
int blk_nbd_info(const struct blk_nbd *n, struct blk_nbd_info *info);

/* The export's name, as the server took it. */
int blk_nbd_export_name(const struct blk_nbd *n, char *buf, size_t len);

/* Send a read, write, flush, discard or write-zeroes; job->durable asks
 * for it to be on stable storage when it completes (FUA, or a flush
 * after it). A job that cannot be sent (no connection, past the export's
 * end, a write to an export back read-only from a reconnect) is finished
 * at once with VIRTIO_BLK_S_IOERR: see blk_nbd_take(). */
void blk_nbd_submit(struct blk_nbd *n, struct blk_job *job);
/* Whether the device may submit another job now: not while
 * NBD_INFLIGHT_MAX (64) commands are at the server or a job waits to send
 * its own (a request may be many commands). After false, the done
 * callback says when there is room. */
bool blk_nbd_room(struct blk_nbd *n);
/* The jobs that finished during blk_nbd_submit() or blk_nbd_wait_idle(),
 * without waiting. */
struct blk_job *blk_nbd_take(struct blk_nbd *n);
/* Block until no command holds a guest buffer: replies are awaited for a
 * few seconds, then the connection is dropped (and reconnected later). */
void blk_nbd_wait_idle(struct blk_nbd *n);

#endif
