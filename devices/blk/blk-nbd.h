/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk NBD backing, one connection of it: requests sent to an
 * NBD server through libnbd's asynchronous API, its socket watched in
 * xvdm's loop, up to 64 commands in flight, no thread (blk-nbd-set.c
 * opens one a queue where the server allows multi-conn). Requests not aligned to the server's
 * minimum block go through a bounce buffer. A server that goes away fails
 * what was in flight, and is reconnected with backoff; requests meanwhile
 * fail. Everything runs on the loop thread.
 */
#ifndef XVDM_BLK_NBD_H
#define XVDM_BLK_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blk-remote.h"

struct blk_nbd;

/* Connect to `uri` (nbd:// or nbd+unix://), waiting for the handshake:
 * the device is offered as the export is. 0, or a negative errno after a
 * logged line naming the URI. `back`: connected again after the
 * connection was lost. number: 0 for a device's first connection, its
 * lines naming the URI alone (until blk_nbd_number()); else a connection
 * beside others, its lines naming it "(connection <number>)", which
 * refuses a server that does not allow multi-conn (and retries). */
int blk_nbd_create(struct blk_nbd **out, struct xvdm_dev *dev, const char *uri,
                   unsigned number, blk_remote_done_fn *done,
                   blk_remote_back_fn *back, void *ctx);

/* Its lines name it "(connection <number>)" after the URI from now on:
 * one of several. */
void blk_nbd_number(struct blk_nbd *n, unsigned number);

/* The engine's operations (blk-remote.h) on a struct blk_nbd. info():
 * NBD's export flags, block the server's minimum block size (libnbd
 * refuses requests smaller or not aligned to it, nbd_set_strict_mode(3));
 * -ENOTCONN while there is no connection. A job cannot be sent with no
 * connection, past the export's end, or writing to an export back
 * read-only from a reconnect. room() (for any queue) is false while
 * NBD_INFLIGHT_MAX (64) commands are at the server or a job waits to send
 * its own (a request may be many commands). wait_idle() awaits replies for a few seconds,
 * then drops the connection (reconnected later). destroy() drops it. */
extern const struct blk_remote_ops blk_nbd_ops;

/* wait_idle() for one of several connections, which share the wait: the
 * deadline, from blk_nbd_idle_deadline() (NBD_IDLE_MS, 5 s, from now),
 * is the device's. Past it, replies that already came are still read. */
uint64_t blk_nbd_idle_deadline(void);
void blk_nbd_wait_idle_until(struct blk_nbd *n, uint64_t deadline);

/* Dropped, as when the connection is lost, and retried after the
 * backoff: what was in flight or waiting fails, and the device has it
 * (its done callback) before this returns. One of several connections
 * lost on its own waits for this to reconnect; nothing for another that
 * is down. */
void blk_nbd_drop(struct blk_nbd *n, const char *why);

/* Connected and serving. */
bool blk_nbd_ready(const struct blk_nbd *n);
/* The session it serves, never 0; 0 while it serves none. A job was
 * sent on the session job->nbd_session. */
unsigned long blk_nbd_session(const struct blk_nbd *n);
/* The server allows multi-conn (NBD_FLAG_CAN_MULTI_CONN). */
bool blk_nbd_multi_conn(const struct blk_nbd *n);
/* The job goes as it is, no bounce buffer, no read-modify-write: aligned
 * to the server's minimum block. */
bool blk_nbd_direct(const struct blk_nbd *n, const struct blk_job *job);

/* The export's name, as the server took it. */
int blk_nbd_export_name(const struct blk_nbd *n, char *buf, size_t len);

#endif
