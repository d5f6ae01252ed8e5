/* SPDX-License-Identifier: MIT */
/* A device module built for another ABI version: xvdm must refuse it. */
#include <xvdm/device.h>

static int bad_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                      struct xvdm_device_setup *setup, void **priv)
{
    return 0;
}

static void bad_destroy(void *priv)
{
}

static void bad_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
}

static void bad_reset(void *priv)
{
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION + 1,
    .name = "bad-abi",
    .summary = "refused: built for the next ABI version",
    .device_id = 4,
    .create = bad_create,
    .destroy = bad_destroy,
    .queue_notify = bad_queue_notify,
    .reset = bad_reset,
};
