/* SPDX-License-Identifier: MIT */
/* A device module that cannot start (its backing is gone, say): create()
 * fails, and xvdm must give up cleanly, saying why. */
#include <errno.h>

#include <xvdm/device.h>

static int fail_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                       struct xvdm_device_setup *setup, void **priv)
{
    xvdm_dev_log(dev, XVDM_LOG_ERROR, "backing 'nowhere' is gone");
    return -EIO;
}

static void fail_destroy(void *priv)
{
}

static void fail_queue_notify(void *priv, struct xvdm_queue *q,
                              unsigned index)
{
}

static void fail_reset(void *priv)
{
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "fail-create",
    .summary = "test module whose create() fails",
    .device_id = 4,
    .create = fail_create,
    .destroy = fail_destroy,
    .queue_notify = fail_queue_notify,
    .reset = fail_reset,
};
