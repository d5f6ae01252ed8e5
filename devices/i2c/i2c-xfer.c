/* SPDX-License-Identifier: MIT */
/*
 * virtio-i2c requests (VIRTIO 1.2 §5.19.6): each chain is an 8-byte
 * header (addr, padding, flags), the message's data (device-readable for
 * a write, device-writable for a read, absent for a zero-length request)
 * and one status byte. Requests chained with VIRTIO_I2C_FLAGS_FAIL_NEXT
 * are the segments of one I2C transaction (a write of a register number,
 * then a read, with a repeated START between): they go to the adapter as
 * one I2C_RDWR, so that no other master can come between them, and fail
 * or succeed together.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../common/iov-copy.h"
#include "i2c.h"

#define I2C_FLAGS_KNOWN (VIRTIO_I2C_FLAGS_FAIL_NEXT | VIRTIO_I2C_FLAGS_M_RD)

static bool i2c_addr_allowed(const struct i2c *c, uint16_t addr)
{
    return addr <= I2C_ADDR_LAST && (c->allowed[addr / 8] & (1U << addr % 8));
}

/* §5.19.6: the 7-bit address A6..A0 sits in bits 7..1; a 10-bit one has
 * 11110 in bits 7..3. true, with why[] saying it, when addr is not one
 * the device serves; else r->addr is set. */
static bool i2c_req_address_fault(const struct i2c *c, struct i2c_req *r,
                                  uint16_t addr, char *why, size_t len)
{
    if ((addr & 0xf9) == 0xf0)
        snprintf(why, len,
                 "uses a 10-bit address (0x%04x), which this "
                 "device does not serve",
                 addr);
    else if (addr & 0xff01)
        snprintf(why, len, "has address field 0x%04x, not a 7-bit address",
                 addr);
    else if (!i2c_addr_allowed(c, addr >> 1))
        snprintf(why, len,
                 "is for address 0x%02x, which addrs= does not "
                 "list",
                 addr >> 1);
    else {
        r->addr = addr >> 1;
        return false;
    }
    return true;
}

/* The chain's layout, flags and address; see i2c_req_address_fault(). */
static bool i2c_req_fault(const struct i2c *c, struct i2c_req *r, char *why,
                          size_t len)
{
    const struct xvdm_chain *ch = &r->chain;
    struct virtio_i2c_out_hdr h;
    uint32_t flags, data;

    if (ch->out_len < I2C_HDR_LEN) {
        snprintf(why, len, "is shorter than its %u-byte header", I2C_HDR_LEN);
        return true;
    }
    iov_copy(ch->iov, ch->out_num, 0, &h, I2C_HDR_LEN, false);
    flags = le32toh(h.flags);
    r->fail_next = flags & VIRTIO_I2C_FLAGS_FAIL_NEXT;
    r->read = flags & VIRTIO_I2C_FLAGS_M_RD;
    if (ch->in_len == 0) {
        snprintf(why, len, "has no byte for its status");
        return true;
    }
    data = r->read ? ch->in_len - 1 : ch->out_len - I2C_HDR_LEN;
    if (flags & ~I2C_FLAGS_KNOWN)
        snprintf(why, len, "sets reserved flags (0x%08x)", flags);
    else if (r->read && ch->out_len != I2C_HDR_LEN)
        snprintf(why, len, "is a read with data for the device");
    else if (!r->read && ch->in_len != 1)
        snprintf(why, len,
                 "is a write with %u bytes for the device to "
                 "write (only the status is)",
                 ch->in_len);
    else if (data > I2C_LEN_MAX)
        snprintf(why, len, "carries %u bytes, more than a message's %u", data,
                 I2C_LEN_MAX);
    else if (!i2c_req_address_fault(c, r, le16toh(h.addr), why, len)) {
        r->len = (uint16_t)data;
        return false;
    }
    return true;
}

void i2c_req_check(struct i2c *c, struct i2c_req *r)
{
    char why[128];

    r->fail_next = r->read = false;
    r->addr = r->len = 0;
    r->refused = i2c_req_fault(c, r, why, sizeof(why));
    if (r->refused)
        xvdm_dev_guest_error(c->dev, "request %u %s: VIRTIO_I2C_MSG_ERR",
                             r->chain.head, why);
}

/* Chips not answering are what probing a bus (i2cdetect) finds: not
 * worth a line unless asked for, and then one a second at most. */
static void i2c_log_failed(struct i2c *c, int err)
{
    struct timespec now;
    char more[64] = "";

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec == c->failed_logged.tv_sec) {
        c->failed_unlogged++;
        return;
    }
    if (c->failed_unlogged)
        snprintf(more, sizeof(more), " (%u more failed since the last line)",
                 c->failed_unlogged);
    xvdm_dev_log(c->dev, XVDM_LOG_DEBUG,
                 "a transfer of %u message(s), the first to 0x%02x: %s%s",
                 c->nr, c->msgs[0].addr, strerror(err), more);
    c->failed_logged = now;
    c->failed_unlogged = 0;
}

/* The group as one I2C_RDWR, or one SMBus command. 0, or a negative
 * errno (the adapter's: -ENXIO when no chip answers the address). */
static int i2c_transfer(struct i2c *c)
{
    struct i2c_rdwr_ioctl_data rdwr = {.msgs = c->msgs, .nmsgs = c->nr};
    int ret;

    for (unsigned i = 0; i < c->nr; i++) {
        struct i2c_req *r = &c->reqs[i];

        c->msgs[i] = (struct i2c_msg){.addr = r->addr,
                                      .flags = r->read ? I2C_M_RD : 0,
                                      .len = r->len,
                                      .buf = c->bounce + i * I2C_LEN_MAX};
        if (!r->read)
            iov_copy(r->chain.iov, r->chain.out_num, I2C_HDR_LEN,
                     c->msgs[i].buf, r->len, false);
    }
    if (!(c->funcs & I2C_FUNC_I2C))
        ret = i2c_smbus_transfer(c);
    else if ((ret = ioctl(c->fd, I2C_RDWR, &rdwr)) == (int)c->nr)
        ret = 0;
    else
        ret = ret < 0 ? -errno : -EIO;
    if (ret) {
        if (ret != -ENOMSG) /* i2c-smbus.c's refusal, which has its line */
            i2c_log_failed(c, -ret);
        return ret;
    }
    for (unsigned i = 0; i < c->nr; i++) {
        struct xvdm_chain *ch = &c->reqs[i].chain;

        if (c->reqs[i].read)
            iov_copy(&ch->iov[ch->out_num], ch->in_num, 0, c->msgs[i].buf,
                     c->msgs[i].len, true);
    }
    return 0;
}

/* The status into the last writable byte. The used length counts the
 * writable bytes written from the first on (§2.7.8.1), so a failed read,
 * whose buffer is left alone, reports none. */
static void i2c_req_answer(struct xvdm_queue *q, struct i2c_req *r, bool ok)
{
    struct xvdm_chain *ch = &r->chain;
    uint8_t status = ok ? VIRTIO_I2C_MSG_OK : VIRTIO_I2C_MSG_ERR;

    if (ch->in_len)
        iov_copy(&ch->iov[ch->out_num], ch->in_num, ch->in_len - 1, &status, 1,
                 true);
    xvdm_queue_push(q, ch, ok || ch->in_len == 1 ? ch->in_len : 0);
}

/* More data than one transaction may move (I2C_XFER_BYTES_MAX)? */
static bool i2c_group_too_long(struct i2c *c)
{
    uint32_t bytes = 0;

    for (unsigned i = 0; i < c->nr; i++)
        bytes += c->reqs[i].len;
    if (bytes <= I2C_XFER_BYTES_MAX)
        return false;
    xvdm_dev_guest_error(c->dev,
                         "a transaction of %u bytes (request %u and before), "
                         "more than %u: VIRTIO_I2C_MSG_ERR for all of it",
                         bytes, c->reqs[c->nr - 1].chain.head,
                         I2C_XFER_BYTES_MAX);
    return true;
}

bool i2c_group_run(struct i2c *c, struct xvdm_queue *q)
{
    const struct i2c_req *last = &c->reqs[c->nr - 1];
    bool ok = !c->failing_group, tried;

    if (c->failing_group) {
        c->failing_group = last->fail_next;
    } else if (last->fail_next && c->nr == I2C_MSGS_MAX) {
        xvdm_dev_guest_error(c->dev,
                             "a transaction of more than %u "
                             "messages (request %u and before): "
                             "VIRTIO_I2C_MSG_ERR for all of it",
                             I2C_MSGS_MAX, last->chain.head);
        c->failing_group = true;
        ok = false;
    }
    for (unsigned i = 0; i < c->nr && ok; i++)
        ok = !c->reqs[i].refused;
    if (ok)
        ok = !i2c_group_too_long(c);
    tried = ok;
    if (ok)
        ok = i2c_transfer(c) == 0;
    for (unsigned i = 0; i < c->nr; i++)
        i2c_req_answer(q, &c->reqs[i], ok);
    c->nr = 0;
    return tried;
}
