/* SPDX-License-Identifier: MIT */
/*
 * The connections of one NBD-backed device: one per queue where the
 * server allows multi-conn, else one for every queue. Each is a struct
 * blk_nbd (blk-nbd.c) with its own socket in the loop, its own reconnect
 * and backoff, and its own bound of 64 commands in flight. All reach one
 * server: the others are re-made each time the first reconnects.
 */
#ifndef XVDM_BLK_NBD_SET_H
#define XVDM_BLK_NBD_SET_H

#include <stddef.h>

#include "blk-remote.h"

struct blk_nbd_set;

/* Connect to `uri` once, and, where the server allows multi-conn and
 * `queues` > 1, once more for each other queue (one that cannot connect
 * is left out: its queue goes on the first). 0, or a negative errno when
 * the first connection failed, after a line naming the URI. */
int blk_nbd_set_create(struct blk_nbd_set **out, struct xvdm_dev *dev,
                       const char *uri, unsigned queues,
                       blk_remote_done_fn *done, blk_remote_back_fn *back,
                       void *ctx);

/* The engine's operations (blk-remote.h) on a struct blk_nbd_set: a
 * queue's jobs go on its own connection while it is up, else on the
 * first, as does every job that needs a bounce buffer (so that there is
 * one read-modify-write at a time per device, and one bounce budget). */
extern const struct blk_remote_ops blk_nbd_set_ops;

/* The export's name, as the server took it. */
int blk_nbd_set_export_name(const struct blk_nbd_set *s, char *buf,
                            size_t len);

#endif
