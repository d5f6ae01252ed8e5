/* SPDX-License-Identifier: MIT */
/* Test side: an I2C adapter with i2c-stub's chips (see i2c-stub.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "i2c-stub.h"
#include "node-stub.h"

static node_stub_ioctl_fn i2c_stub_ioctl;

struct stub_chip {
    uint16_t addr;
    uint8_t regs[256];
    uint8_t ptr;
};

/* The module calls ioctl() from xvdm's loop thread, the test reads from
 * its own. */
static pthread_mutex_t stub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool on;
    struct node_stub node;
    unsigned long funcs;
    struct stub_chip chips[I2C_STUB_CHIPS_MAX];
    unsigned nr_chips;
    uint8_t driver_bound[128 / 8]; /* 7-bit addresses dom0 drivers have */
    unsigned transfers, last_nmsgs, smbus_calls;
    uint16_t slave; /* I2C_SLAVE's address, for I2C_SMBUS */
} stub;

const char *i2c_stub_start(unsigned long funcs, const uint16_t *chips,
                           unsigned n)
{
    node_stub_require(n <= I2C_STUB_CHIPS_MAX);
    pthread_mutex_lock(&stub_lock);
    memset(&stub, 0, sizeof(stub));
    node_stub_make(&stub.node, "xvdm-i2c-");
    node_stub_answer(i2c_stub_ioctl);
    stub.funcs = funcs;
    for (unsigned i = 0; i < n; i++)
        stub.chips[i].addr = chips[i];
    stub.nr_chips = n;
    stub.on = true;
    pthread_mutex_unlock(&stub_lock);
    return stub.node.path;
}

void i2c_stub_bind_driver(uint16_t addr)
{
    node_stub_require(addr < 128);
    pthread_mutex_lock(&stub_lock);
    stub.driver_bound[addr / 8] |= 1U << addr % 8;
    pthread_mutex_unlock(&stub_lock);
}

void i2c_stub_stop(void)
{
    pthread_mutex_lock(&stub_lock);
    unlink(stub.node.path);
    stub.on = false;
    pthread_mutex_unlock(&stub_lock);
}

/* A counter the loop thread updates, read from the test's. */
static unsigned stub_count(const unsigned *counter)
{
    unsigned n;

    pthread_mutex_lock(&stub_lock);
    n = *counter;
    pthread_mutex_unlock(&stub_lock);
    return n;
}

unsigned i2c_stub_transfers(void)
{
    return stub_count(&stub.transfers);
}

unsigned i2c_stub_last_nmsgs(void)
{
    return stub_count(&stub.last_nmsgs);
}

static struct stub_chip *stub_chip(uint16_t addr)
{
    for (unsigned i = 0; i < stub.nr_chips; i++)
        if (stub.chips[i].addr == addr)
            return &stub.chips[i];
    return NULL;
}

void i2c_stub_regs(uint16_t addr, uint8_t regs[256])
{
    pthread_mutex_lock(&stub_lock);
    node_stub_require(stub_chip(addr));
    memcpy(regs, stub_chip(addr)->regs, 256);
    pthread_mutex_unlock(&stub_lock);
}

/* One message on the bus, as the chip answers it. */
static int stub_msg(const struct i2c_msg *m)
{
    struct stub_chip *chip = stub_chip(m->addr);

    if (m->flags & ~I2C_M_RD)
        return -EINVAL; /* xvdm sends plain messages only */
    if (!chip)
        return -ENXIO; /* no ACK for the address */
    for (unsigned i = 0; i < m->len; i++) {
        if (m->flags & I2C_M_RD)
            m->buf[i] = chip->regs[chip->ptr++];
        else if (i == 0)
            chip->ptr = m->buf[0];
        else
            chip->regs[chip->ptr++] = m->buf[i];
    }
    return 0;
}

/* i2c-dev's I2C_RDWR: the number of messages, or -errno. */
static int stub_rdwr(const struct i2c_rdwr_ioctl_data *rdwr)
{
    int ret = 0;

    if (!(stub.funcs & I2C_FUNC_I2C))
        return -EOPNOTSUPP; /* an SMBus-only adapter's master_xfer */
    if (rdwr->nmsgs > I2C_RDWR_IOCTL_MAX_MSGS)
        return -EINVAL;
    for (unsigned i = 0; i < rdwr->nmsgs; i++)
        if (rdwr->msgs[i].len > 8192)
            return -EINVAL;
    stub.transfers++;
    stub.last_nmsgs = rdwr->nmsgs;
    for (unsigned i = 0; i < rdwr->nmsgs && ret == 0; i++)
        ret = stub_msg(&rdwr->msgs[i]);
    return ret ? ret : (int)rdwr->nmsgs;
}

/* The messages an SMBus command is on the bus, to the I2C_SLAVE address:
 * [command] (or nothing, for quick and a byte read) written, then what
 * is read, or with the data written after the command. */
static int stub_smbus_msgs(const struct i2c_smbus_ioctl_data *io,
                           uint8_t *data, uint16_t len)
{
    bool rd = io->read_write == I2C_SMBUS_READ;
    uint8_t wbuf[1 + I2C_SMBUS_BLOCK_MAX + 1] = {io->command};
    struct i2c_msg cmd = {stub.slave, 0, 1, wbuf},
                   rest = {stub.slave, rd ? I2C_M_RD : 0, len, data};
    int ret;

    if (io->size == I2C_SMBUS_QUICK || (io->size == I2C_SMBUS_BYTE && rd))
        return stub_msg(&rest);
    if (!rd) {
        memcpy(wbuf + 1, data, len);
        cmd.len = (uint16_t)(1 + len);
        return stub_msg(&cmd);
    }
    ret = stub_msg(&cmd);
    return ret ? ret : stub_msg(&rest);
}

/* i2c-dev's I2C_SMBUS on an adapter with the command's function. */
static int stub_smbus(const struct i2c_smbus_ioctl_data *io)
{
    union i2c_smbus_data *d = io->data;
    uint8_t word[2];
    int ret;

    stub.smbus_calls++;
    switch (io->size) {
    case I2C_SMBUS_QUICK:
        return stub.funcs & I2C_FUNC_SMBUS_QUICK
                   ? stub_smbus_msgs(io, NULL, 0)
                   : -EOPNOTSUPP;
    case I2C_SMBUS_BYTE:
        if (!(stub.funcs & I2C_FUNC_SMBUS_BYTE))
            return -EOPNOTSUPP;
        return stub_smbus_msgs(io, &d->byte,
                               io->read_write == I2C_SMBUS_READ);
    case I2C_SMBUS_BYTE_DATA:
        return stub.funcs & I2C_FUNC_SMBUS_BYTE_DATA
                   ? stub_smbus_msgs(io, &d->byte, 1)
                   : -EOPNOTSUPP;
    case I2C_SMBUS_WORD_DATA: /* low byte first */
        if (!(stub.funcs & I2C_FUNC_SMBUS_WORD_DATA))
            return -EOPNOTSUPP;
        word[0] = (uint8_t)d->word;
        word[1] = (uint8_t)(d->word >> 8);
        ret = stub_smbus_msgs(io, word, 2);
        d->word = (uint16_t)(word[0] | word[1] << 8);
        return ret;
    case I2C_SMBUS_BLOCK_DATA: /* writes: the count goes on the bus */
        if (!(stub.funcs & I2C_FUNC_SMBUS_WRITE_BLOCK_DATA) ||
            io->read_write != I2C_SMBUS_WRITE)
            return -EOPNOTSUPP;
        if (d->block[0] < 1 || d->block[0] > I2C_SMBUS_BLOCK_MAX)
            return -EINVAL;
        return stub_smbus_msgs(io, d->block, (uint16_t)(d->block[0] + 1));
    case I2C_SMBUS_I2C_BLOCK_DATA:
        if (!(stub.funcs & I2C_FUNC_SMBUS_I2C_BLOCK))
            return -EOPNOTSUPP;
        if (d->block[0] < 1 || d->block[0] > I2C_SMBUS_BLOCK_MAX)
            return -EINVAL;
        return stub_smbus_msgs(io, &d->block[1], d->block[0]);
    }
    return -EOPNOTSUPP;
}

unsigned i2c_stub_smbus_calls(void)
{
    return stub_count(&stub.smbus_calls);
}

/* i2c-dev's I2C_SLAVE: EBUSY where a driver has the address. */
static int stub_slave(unsigned long addr)
{
    if (addr > 0x7f)
        return -EINVAL;
    if (stub.driver_bound[addr / 8] & (1U << addr % 8))
        return -EBUSY;
    stub.slave = (uint16_t)addr;
    return 0;
}

static int stub_ioctl(unsigned long request, void *arg)
{
    if (request == I2C_SLAVE)
        return stub_slave((unsigned long)arg);
    if (request == I2C_FUNCS) {
        *(unsigned long *)arg = stub.funcs;
        return 0;
    }
    if (request == I2C_RDWR)
        return stub_rdwr(arg);
    if (request == I2C_SMBUS)
        return stub_smbus(arg);
    return -ENOTTY;
}

static int i2c_stub_ioctl(int fd, unsigned long request, void *arg)
{
    int ret = NODE_STUB_PASS;

    pthread_mutex_lock(&stub_lock);
    if (stub.on && node_stub_is(&stub.node, fd))
        ret = stub_ioctl(request, arg);
    pthread_mutex_unlock(&stub_lock);
    return ret;
}
