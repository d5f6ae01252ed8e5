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

/*
 * blk-rbd.c is a library of its own, blk+rbd.so beside blk.so, which
 * blk.so loads (blk-rbd-load.c) only for a device with rbd=: librbd and
 * the Ceph libraries under it take about 24 MiB of memory and 20 ms to
 * load, which every instance would otherwise pay. Its one export: */
#define BLK_RBD_LIBRARY "blk+rbd.so"
#define BLK_RBD_SYMBOL "blk_rbd_backing"

struct blk_rbd_backing {
    /* Open `image` ("POOL/IMAGE", or "POOL/IMAGE@SNAP" for a snapshot,
     * which is read-only) on the cluster `conf` names (NULL: librados'
     * default search) as client `id` (NULL: admin), read-only if asked.
     * 0, or a negative errno after a logged line naming the image. */
    int (*create)(struct blk_rbd **out, struct xvdm_dev *dev,
                  const char *image, const char *conf, const char *id,
                  bool read_only, blk_remote_done_fn *done, void *ctx);
    /* The engine's operations (blk-remote.h) on a struct blk_rbd.
     * info(): the image's size as librbd knows it now (it follows a
     * resize by another client), trim, zero and flush, no FUA (a durable
     * write is followed by a flush), 512-byte blocks. room() is false
     * while RBD_INFLIGHT_MAX (64) requests are at librbd. wait_idle()
     * waits for every operation to come back: the cluster answers or
     * fails each within rados_osd_op_timeout, which xvdm sets (30 s).
     * destroy() closes the image, or after 30 s leaves it open to
     * librbd, saying so. */
    const struct blk_remote_ops *ops;
};

/* blk+rbd.so's backing, loaded on first use and kept loaded (librbd's
 * threads may outlive an image); NULL after a line naming the library
 * and why it did not load. */
const struct blk_rbd_backing *blk_rbd_load(struct xvdm_dev *dev);

#endif
