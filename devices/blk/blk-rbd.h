/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk Ceph RBD backing: requests sent to an RBD image through
 * librbd's asynchronous API straight from the guest's buffers, up to 64
 * requests at librbd per device. librbd completes them on its own
 * threads; the completions come back to xvdm's loop through an eventfd,
 * and everything else runs on the loop thread.
 */
#ifndef XVDM_BLK_RBD_H
#define XVDM_BLK_RBD_H

#include <stdbool.h>

#include "blk-remote.h"

struct blk_rbd;

/* Open `image` ("POOL/IMAGE", or "POOL/IMAGE@SNAP" for a snapshot, which
 * is read-only) on the cluster `conf` names (NULL: librados' default
 * search) as client `id` (NULL: admin), read-only if asked. 0, or a
 * negative errno after a logged line naming the image. */
int blk_rbd_create(struct blk_rbd **out, struct xvdm_dev *dev,
                   const char *image, const char *conf, const char *id,
                   bool read_only, blk_remote_done_fn *done, void *ctx);

/* The engine's operations (blk-remote.h) on a struct blk_rbd. info():
 * the image's size as librbd knows it now (it follows a resize by
 * another client), trim, zero and flush, no FUA (a durable write is
 * followed by a flush), 512-byte blocks. room() is false while
 * RBD_INFLIGHT_MAX (64) requests are at librbd. wait_idle() waits for
 * every operation to come back: the cluster answers or fails each within
 * rados_osd_op_timeout, which xvdm sets (30 s). destroy() closes the
 * image, or after 30 s leaves it open to librbd, saying so. */
extern const struct blk_remote_ops blk_rbd_ops;

#endif
