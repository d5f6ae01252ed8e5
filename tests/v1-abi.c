/* SPDX-License-Identifier: MIT */
/*
 * A device module of ABI version 1, from before the ops table had reload:
 * xvdm must still load it and never read past the version 1 table. What
 * follows reset in its table is not a reload op (a version 1 module has
 * something else there, or nothing), so calling it fails the test.
 */
#include <stdlib.h>

#include <xvdm/device.h>

static int v1_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                     struct xvdm_device_setup *setup, void **priv)
{
    setup->num_queues = 1;
    setup->queue_size_max[0] = 16;
    return 0;
}

static void v1_nothing(void *priv)
{
}

static void v1_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
}

static void v1_not_an_op(void *priv)
{
    abort();
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = 1,
    .name = "v1-abi",
    .summary = "loads: built for ABI version 1",
    .device_id = 4,
    .create = v1_create,
    .destroy = v1_nothing,
    .queue_notify = v1_queue_notify,
    .reset = v1_nothing,
    .reload = v1_not_an_op,
};
