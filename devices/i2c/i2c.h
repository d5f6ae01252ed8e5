/* SPDX-License-Identifier: MIT */
/*
 * virtio-i2c's state, shared by its parts: i2c.c (the module: options,
 * the adapter, life cycle, the request queue's drain) and i2c-xfer.c (a
 * request checked out of its chain, a group of them carried out as one
 * I2C_RDWR transaction and answered).
 */
#ifndef XVDM_I2C_H
#define XVDM_I2C_H

#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <linux/virtio_i2c.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include <xvdm/device.h>

#define I2C_QUEUE_SIZE 128
/* Buffers per chain; Linux's driver uses 2 or 3. */
#define I2C_IOV_MAX 8
/* A transaction's messages at most: i2c-dev's own bound for I2C_RDWR. */
#define I2C_MSGS_MAX I2C_RDWR_IOCTL_MAX_MSGS
/* A message's bytes at most: i2c-dev refuses longer ones (i2c_msg.len is
 * 16 bits, and i2c-dev takes 8192). */
#define I2C_LEN_MAX 8192
/* Data bytes of one transaction, all its messages together: the ioctl
 * holds the loop (and dom0's bus) while they move, about 0.75 s at
 * 100 kHz. i2c-dev alone would allow 42 messages of I2C_LEN_MAX. */
#define I2C_XFER_BYTES_MAX 8192
#define I2C_HDR_LEN ((uint32_t)sizeof(struct virtio_i2c_out_hdr))
/* 7-bit addresses a guest may be given: 0x00..0x07 and 0x78..0x7f are
 * reserved by the I2C specification (general call, CBUS, 10-bit, ...). */
#define I2C_ADDR_FIRST 0x08
#define I2C_ADDR_LAST 0x77

/* One request of the guest's, as its chain says it. */
struct i2c_req {
    struct xvdm_chain chain;
    struct iovec iov[I2C_IOV_MAX];
    uint16_t addr;  /* 7-bit */
    uint16_t len;   /* data bytes, 0 for a zero-length request */
    bool read;      /* VIRTIO_I2C_FLAGS_M_RD */
    bool fail_next; /* VIRTIO_I2C_FLAGS_FAIL_NEXT: the group goes on */
    bool refused;   /* a check failed: its group is not carried out */
};

struct i2c {
    struct xvdm_dev *dev;
    char *bus; /* bus=, as given */
    int fd;    /* the adapter's i2c-dev node */
    unsigned long funcs; /* its I2C_FUNCS */
    uint8_t allowed[(I2C_ADDR_LAST + 1 + 7) / 8]; /* addrs=, a bitmap */
    /* The group being gathered: reqs[0 .. nr). */
    struct i2c_req reqs[I2C_MSGS_MAX];
    unsigned nr;
    /* A group longer than I2C_MSGS_MAX was failed: fail its rest too. */
    bool failing_group;
    /* Failed transfers are logged at most once a second (the guest
     * decides how often they fail): when the last line went out, and the
     * failures since. */
    struct timespec failed_logged;
    unsigned failed_unlogged;
    struct i2c_msg msgs[I2C_MSGS_MAX];
    uint8_t *bounce; /* I2C_MSGS_MAX * I2C_LEN_MAX: the messages' data */
};

/* ---- i2c-xfer.c ---- */

/* Take r's header out of its chain and check it and the chain's layout;
 * a request that fails a check is marked refused, with a line saying
 * why. */
void i2c_req_check(struct i2c *c, struct i2c_req *r);
/* Carry out the gathered group reqs[0 .. nr) as one transaction (none if
 * a request of it was refused) and answer each request of it. True when
 * the adapter was asked to. */
bool i2c_group_run(struct i2c *c, struct xvdm_queue *q);

/* ---- i2c-smbus.c ---- */

/* Carry out the messages msgs[0 .. nr), their data in place, as the one
 * SMBus command they are, on an adapter without I2C_FUNC_I2C; read data
 * into the read message's buffer. 0, or a negative errno (-ENOMSG, with
 * a line, when they are no command the adapter has). */
int i2c_smbus_transfer(struct i2c *c);

#endif
