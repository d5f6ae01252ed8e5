/* SPDX-License-Identifier: MIT */
/*
 * virtio-i2c (VIRTIO 1.2 §5.19): the guest's I2C adapter, its transfers
 * carried out on one of dom0's adapters through i2c-dev, to the chip
 * addresses addrs= lists and no other. This file: options, the adapter,
 * life cycle, the request queue's drain; i2c-xfer.c: the requests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../common/range-list.h"
#include "i2c.h"

#define I2C_DEVICE_ID 34

static const char *const i2c_options[] = {
    "bus=PATH: dom0's I2C adapter the guest's transfers go to, its "
    "i2c-dev node /dev/i2c-N (required)",
    "addrs=A[:B...]: the 7-bit chip addresses the guest may reach, in "
    "hex as i2cdetect shows them (0x optional), 08..77, ':'-separated, "
    "A-B for a range (required)",
    NULL,
};

/* One item of addrs=, in hex always: "50" is the chip i2cdetect shows
 * as 50, not decimal 50 (0x32). */
static int i2c_allow_range(void *arg, unsigned long first, unsigned long last,
                           const char *item)
{
    struct i2c *c = arg;

    if (first < I2C_ADDR_FIRST || last > I2C_ADDR_LAST) {
        xvdm_dev_log(c->dev, XVDM_LOG_ERROR,
                     "addrs=: '%s' is not a 7-bit address 0x%02x..0x%02x "
                     "or a range A-B of them",
                     item, I2C_ADDR_FIRST, I2C_ADDR_LAST);
        return -EINVAL;
    }
    for (unsigned long a = first; a <= last; a++)
        c->allowed[a / 8] |= 1U << a % 8;
    return 0;
}

static int i2c_parse_addrs(struct i2c *c, const char *addrs)
{
    if (!addrs || !*addrs) {
        xvdm_dev_log(c->dev, XVDM_LOG_ERROR,
                     "addrs= is required: the chip addresses the guest "
                     "may reach, e.g. addrs=0x50:0x51");
        return -EINVAL;
    }
    return range_list_walk(c->dev, "addrs", addrs, 16, i2c_allow_range, c);
}

/* SMBus commands i2c-smbus.c can carry a guest's transfers as. */
#define I2C_FUNC_SMBUS_CARRIED                                                 \
    (I2C_FUNC_SMBUS_QUICK | I2C_FUNC_SMBUS_BYTE | I2C_FUNC_SMBUS_BYTE_DATA |   \
     I2C_FUNC_SMBUS_WORD_DATA | I2C_FUNC_SMBUS_I2C_BLOCK)

/* Open bus= and check it carries plain I2C transfers (I2C_RDWR), or else
 * SMBus commands. */
static int i2c_open_bus(struct i2c *c, const char *bus)
{
    unsigned long funcs = 0;

    if (!bus || !*bus) {
        xvdm_dev_log(c->dev, XVDM_LOG_ERROR,
                     "bus= is required: dom0's I2C adapter, /dev/i2c-N");
        return -EINVAL;
    }
    c->bus = strdup(bus);
    if (!c->bus)
        return -ENOMEM;
    c->fd = open(bus, O_RDWR | O_CLOEXEC);
    if (c->fd < 0) {
        int err = errno;

        xvdm_dev_log(c->dev, XVDM_LOG_ERROR, "bus=%s: cannot open: %s", bus,
                     strerror(err));
        return -err;
    }
    if (ioctl(c->fd, I2C_FUNCS, &funcs) < 0) {
        int err = errno;

        xvdm_dev_log(c->dev, XVDM_LOG_ERROR,
                     "bus=%s: not an I2C adapter's i2c-dev node "
                     "(I2C_FUNCS: %s)",
                     bus, strerror(err));
        return -EINVAL;
    }
    c->funcs = funcs;
    if (funcs & I2C_FUNC_I2C)
        return 0;
    if (!(funcs & I2C_FUNC_SMBUS_CARRIED)) {
        xvdm_dev_log(c->dev, XVDM_LOG_ERROR,
                     "bus=%s: the adapter does neither plain I2C transfers "
                     "(I2C_FUNC_I2C) nor SMBus commands (functionality "
                     "0x%lx)",
                     bus, funcs);
        return -EINVAL;
    }
    xvdm_dev_log(c->dev, XVDM_LOG_INFO,
                 "bus=%s does SMBus only (functionality 0x%lx): a transfer "
                 "of the guest's goes as the SMBus command it is, or fails",
                 bus, funcs);
    return 0;
}

/* i2c-dev's I2C_RDWR reaches any address, even one a dom0 driver has
 * bound (an RTC, a PMIC, the board's EEPROM): giving it to the guest too
 * would let the guest and that driver interleave on one chip. I2C_SLAVE
 * says EBUSY for such an address; a driver bound after xvdm starts is the
 * operator's to avoid (README). */
static int i2c_check_addrs_free(struct i2c *c, const char *addrs)
{
    for (unsigned a = I2C_ADDR_FIRST; a <= I2C_ADDR_LAST; a++) {
        int err;

        if (!(c->allowed[a / 8] & (1U << a % 8)) ||
            ioctl(c->fd, I2C_SLAVE, (unsigned long)a) == 0)
            continue;
        err = errno;
        if (err == EBUSY)
            xvdm_dev_log(c->dev, XVDM_LOG_ERROR,
                         "addrs=%s: chip 0x%02x on %s belongs to a driver in "
                         "dom0 (I2C_SLAVE: busy): unbind it there or leave "
                         "it out of addrs=",
                         addrs, a, c->bus);
        else
            xvdm_dev_log(c->dev, XVDM_LOG_ERROR,
                         "addrs=%s: chip 0x%02x on %s: I2C_SLAVE: %s", addrs, a,
                         c->bus, strerror(err));
        return -err;
    }
    return 0;
}

static void i2c_destroy(void *priv)
{
    struct i2c *c = priv;

    if (c->fd >= 0)
        close(c->fd);
    free(c->bounce);
    free(c->bus);
    free(c);
}

static int i2c_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                      struct xvdm_device_setup *setup, void **priv)
{
    struct i2c *c = calloc(1, sizeof(*c));
    int ret;

    if (!c)
        return -ENOMEM;
    c->dev = dev;
    c->fd = -1;
    ret = i2c_parse_addrs(c, xvdm_opt_get(opts, "addrs"));
    if (ret == 0)
        ret = i2c_open_bus(c, xvdm_opt_get(opts, "bus"));
    if (ret == 0)
        ret = i2c_check_addrs_free(c, xvdm_opt_get(opts, "addrs"));
    /* Zeroed: a read the adapter leaves short must not show dom0's heap. */
    if (ret == 0 && !(c->bounce = calloc(I2C_MSGS_MAX, I2C_LEN_MAX)))
        ret = -ENOMEM;
    if (ret) {
        i2c_destroy(c);
        return ret;
    }
    xvdm_dev_log(dev, XVDM_LOG_INFO, "I2C adapter %s, chip addresses %s",
                 c->bus, xvdm_opt_get(opts, "addrs"));
    setup->features = 1ULL << VIRTIO_I2C_F_ZERO_LENGTH_REQUEST;
    setup->num_queues = 1;
    setup->queue_size_max[0] = I2C_QUEUE_SIZE;
    *priv = c;
    return 0;
}

/* §5.19.6.1: the device MUST reject a driver without ZERO_LENGTH_REQUEST
 * (which also says the driver sets VIRTIO_I2C_FLAGS_M_RD). */
static int i2c_features_ok(void *priv, uint64_t features)
{
    struct i2c *c = priv;

    if (features & (1ULL << VIRTIO_I2C_F_ZERO_LENGTH_REQUEST))
        return 0;
    xvdm_dev_guest_error(c->dev, "the driver did not accept "
                                 "VIRTIO_I2C_F_ZERO_LENGTH_REQUEST, which the "
                                 "device requires: FEATURES_OK refused");
    return -EINVAL;
}

/* The queue gave no more requests: what was gathered ends in FAIL_NEXT
 * (a group's end, or a failing one, ran at once). Held back, the rest of
 * its group may be behind. */
static void i2c_group_end(struct i2c *c, struct xvdm_queue *q, bool held_back)
{
    if (c->nr && held_back) {
        xvdm_dev_guest_error(c->dev,
                             "a transaction cut short at request %u: the "
                             "queue held back its next request (the grant "
                             "budget, or this turn's share): "
                             "VIRTIO_I2C_MSG_ERR for all of it",
                             c->reqs[c->nr - 1].chain.head);
        c->failing_group = true;
    }
    if (c->nr)
        i2c_group_run(c, q);
    if (!held_back)
        c->failing_group = false;
}

/* Gather the requests of one group and carry it out. One transaction on
 * the adapter per turn of the loop (groups failed without one go on):
 * the adapter's ioctl holds the loop while the bus runs it, and every
 * other device of the guest, and its vCPUs' traps, wait meanwhile. A group ends
 * at a request without FAIL_NEXT, at I2C_MSGS_MAX requests, or where the queue
 * holds no more: Linux's driver, its queue full, sends part of a transfer,
 * FAIL_NEXT set on its last request, and waits for that part. Where the queue
 * was held back instead (the grant budget, or the turn's share), the rest of
 * the group may be behind: the part is failed, and the rest with it as it
 * comes, rather than carried out as a transaction of its own; holding it would
 * wait for pages its own requests may hold. A group failed for its
 * length also ends where the queue is empty, so that the guest's next
 * transfer is not failed with it. */
static void i2c_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct i2c *c = priv;
    int ret;

    (void)index;
    for (;;) {
        struct i2c_req *r = &c->reqs[c->nr];

        r->chain = (struct xvdm_chain){.iov = r->iov, .iov_cap = I2C_IOV_MAX};
        ret = xvdm_queue_next(q, &r->chain);
        if (ret != 1)
            break;
        i2c_req_check(c, r);
        c->nr++;
        if ((!r->fail_next || c->nr == I2C_MSGS_MAX || c->failing_group) &&
            i2c_group_run(c, q)) {
            xvdm_queue_defer(q);
            break;
        }
    }
    if (ret == 0)
        i2c_group_end(c, q, xvdm_queue_held_back(q));
    c->nr = 0;
    xvdm_queue_notify_guest(q);
}

/* Requests are answered inside queue_notify; only a group's failure
 * carries over between them. */
static void i2c_reset(void *priv)
{
    struct i2c *c = priv;

    c->nr = 0;
    c->failing_group = false;
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "i2c",
    .summary = "I2C adapter (virtio-i2c) on one of dom0's, to listed chips",
    .device_id = I2C_DEVICE_ID,
    .options = i2c_options,
    .create = i2c_create,
    .destroy = i2c_destroy,
    .features_ok = i2c_features_ok,
    .queue_notify = i2c_queue_notify,
    .reset = i2c_reset,
};
