/* SPDX-License-Identifier: MIT */
/*
 * The virtio devices libxl declared for a guest, read from its backend
 * nodes in xenstore. Two layouts exist:
 *   Xen 4.17, disks only: BACKEND/virtio_disk/DOMID/DEVID/{params, mode,
 *     base, irq, discard-enable, state, ...}: a virtio-blk device whose
 *     backing and mode come from the xl disk line;
 *   Xen 4.18 and later: BACKEND/virtio/DOMID/DEVID/{type="virtio,deviceN"
 *     (N the virtio device id in hex), transport, base, irq, grant_usage,
 *     state, ...}: any device type, with nothing about its backing, which
 *     then comes from a --device of the same type.
 * where BACKEND is /local/domain/<backend domid>/backend.
 */
#ifndef XVDM_XL_DEVICES_H
#define XVDM_XL_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devspec.h"

struct store;

struct xl_device {
    /* Type and options from the nodes, base= and irq= always given; its
     * text is the backend directory, which names it in messages. */
    struct devspec spec;
};

/* This domain's id as xenstore knows it (its "domid" node), 0 when it
 * has none (dom0 in some setups). */
uint32_t xl_backend_domid(struct store *st);

/* Read every device libxl declared for guest `domid` with this backend
 * domain, both layouts, in devid order; devices the toolstack is already
 * closing (state 5 or 6) are left out. Generic devices get the module of
 * their virtio id from module_dir. 0 with *n set, or -EINVAL with err
 * naming the node and its bad value (or -E2BIG, -ENOMEM). */
/* Has libxl written any device of guest `domid`, in either layout? libxl
 * writes each device's nodes in one transaction: a device seen is whole. */
bool xl_devices_declared(struct store *st, uint32_t backend_domid,
                         uint32_t domid);

int xl_devices_read(struct store *st, uint32_t backend_domid, uint32_t domid,
                    const char *module_dir, struct xl_device *out,
                    unsigned max, unsigned *n, char *err, size_t errlen);

#endif
