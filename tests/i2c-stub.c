/* SPDX-License-Identifier: MIT */
/* Test side: an I2C adapter with i2c-stub's chips (see i2c-stub.h). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "i2c-stub.h"
#include "node-stub.h"

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
    unsigned transfers, last_nmsgs;
} stub;

const char *i2c_stub_start(unsigned long funcs, const uint16_t *chips,
                           unsigned n)
{
    ck_assert_uint_le(n, I2C_STUB_CHIPS_MAX);
    pthread_mutex_lock(&stub_lock);
    memset(&stub, 0, sizeof(stub));
    node_stub_make(&stub.node, "xvdm-i2c-");
    stub.funcs = funcs;
    for (unsigned i = 0; i < n; i++)
        stub.chips[i].addr = chips[i];
    stub.nr_chips = n;
    stub.on = true;
    pthread_mutex_unlock(&stub_lock);
    return stub.node.path;
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
    ck_assert_ptr_nonnull(stub_chip(addr));
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

static int stub_ioctl(unsigned long request, void *arg)
{
    if (request == I2C_FUNCS) {
        *(unsigned long *)arg = stub.funcs;
        return 0;
    }
    if (request == I2C_RDWR)
        return stub_rdwr(arg);
    return -ENOTTY;
}

int node_stub_ioctl(int fd, unsigned long request, void *arg)
{
    int ret = NODE_STUB_PASS;

    pthread_mutex_lock(&stub_lock);
    if (stub.on && node_stub_is(&stub.node, fd))
        ret = stub_ioctl(request, arg);
    pthread_mutex_unlock(&stub_lock);
    return ret;
}
