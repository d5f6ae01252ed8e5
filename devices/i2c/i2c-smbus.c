/* SPDX-License-Identifier: MIT */
/*
 * A transaction on an SMBus-only adapter (i801 on a PC, some SoCs'
 * controllers, Linux's i2c-stub): no I2C_RDWR there, but the transfers a
 * guest's SMBus tools and most chip drivers make are SMBus commands
 * written as I2C messages (Linux's i2c core emulates SMBus so on
 * i2c-virtio): a register write and a read after it is "read byte data",
 * and so on. Such a transaction is carried out as that command
 * (I2C_SLAVE, then I2C_SMBUS); any other gets an error, with a line
 * saying why.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "i2c.h"

/* One SMBus command: the ioctl's arguments and the adapter function it
 * needs. */
struct smbus_cmd {
    struct i2c_smbus_ioctl_data io;
    union i2c_smbus_data data;
    unsigned long func;
};

static void smbus_set(struct smbus_cmd *s, uint8_t rw, uint8_t command,
                      uint32_t size, unsigned long func)
{
    s->io = (struct i2c_smbus_ioctl_data){.read_write = rw,
                                          .command = command,
                                          .size = size,
                                          .data = &s->data};
    s->func = func;
}

/* [command, count, count bytes]: SMBus's block write, the same bytes on
 * the bus as an I2C block write of count + 1, which is the shorter
 * command where the adapter has it; the block write carries 32 data
 * bytes, one more, and is what some adapters have instead. */
static bool smbus_block_write(const struct i2c_msg *m, unsigned long funcs)
{
    unsigned count = m->len >= 3 ? m->buf[1] : 0;

    return count == m->len - 2u && count <= I2C_SMBUS_BLOCK_MAX &&
           (funcs & I2C_FUNC_SMBUS_WRITE_BLOCK_DATA) &&
           (m->len - 1u > I2C_SMBUS_BLOCK_MAX ||
            !(funcs & I2C_FUNC_SMBUS_WRITE_I2C_BLOCK));
}

/* A message of its own: quick, a byte, a byte or word at a register, or
 * a block at one. Preferring the shortest command, if the adapter has
 * it. */
static bool smbus_of_one(const struct i2c_msg *m, unsigned long funcs,
                         struct smbus_cmd *s)
{
    const uint8_t *b = m->buf;

    if (m->len == 0)
        smbus_set(s, m->flags & I2C_M_RD ? I2C_SMBUS_READ : I2C_SMBUS_WRITE,
                  0, I2C_SMBUS_QUICK, I2C_FUNC_SMBUS_QUICK);
    else if (m->flags & I2C_M_RD)
        smbus_set(s, I2C_SMBUS_READ, 0, I2C_SMBUS_BYTE,
                  m->len == 1 ? I2C_FUNC_SMBUS_READ_BYTE : 0);
    else if (m->len == 1)
        smbus_set(s, I2C_SMBUS_WRITE, b[0], I2C_SMBUS_BYTE,
                  I2C_FUNC_SMBUS_WRITE_BYTE);
    else if (m->len == 2 && (funcs & I2C_FUNC_SMBUS_WRITE_BYTE_DATA)) {
        smbus_set(s, I2C_SMBUS_WRITE, b[0], I2C_SMBUS_BYTE_DATA,
                  I2C_FUNC_SMBUS_WRITE_BYTE_DATA);
        s->data.byte = b[1];
    } else if (m->len == 3 && (funcs & I2C_FUNC_SMBUS_WRITE_WORD_DATA)) {
        smbus_set(s, I2C_SMBUS_WRITE, b[0], I2C_SMBUS_WORD_DATA,
                  I2C_FUNC_SMBUS_WRITE_WORD_DATA);
        s->data.word = (uint16_t)(b[1] | b[2] << 8); /* SMBus: low first */
    } else if (smbus_block_write(m, funcs)) {
        smbus_set(s, I2C_SMBUS_WRITE, b[0], I2C_SMBUS_BLOCK_DATA,
                  I2C_FUNC_SMBUS_WRITE_BLOCK_DATA);
        memcpy(s->data.block, &b[1], m->len - 1u); /* count, then data */
    } else {
        smbus_set(s, I2C_SMBUS_WRITE, b[0], I2C_SMBUS_I2C_BLOCK_DATA,
                  m->len - 1u <= I2C_SMBUS_BLOCK_MAX
                      ? I2C_FUNC_SMBUS_WRITE_I2C_BLOCK
                      : 0);
        s->data.block[0] = (uint8_t)(m->len - 1);
        if (s->func)
            memcpy(&s->data.block[1], &b[1], m->len - 1u);
    }
    return s->func != 0;
}

/* A register number written, then read from, at one chip. */
static bool smbus_of_two(const struct i2c_msg *m, unsigned long funcs,
                         struct smbus_cmd *s)
{
    uint16_t len = m[1].len;

    if ((m[0].flags & I2C_M_RD) || m[0].len != 1 || !(m[1].flags & I2C_M_RD) ||
        m[0].addr != m[1].addr || len == 0 || len > I2C_SMBUS_BLOCK_MAX)
        return false;
    if (len == 1 && (funcs & I2C_FUNC_SMBUS_READ_BYTE_DATA))
        smbus_set(s, I2C_SMBUS_READ, m[0].buf[0], I2C_SMBUS_BYTE_DATA,
                  I2C_FUNC_SMBUS_READ_BYTE_DATA);
    else if (len == 2 && (funcs & I2C_FUNC_SMBUS_READ_WORD_DATA))
        smbus_set(s, I2C_SMBUS_READ, m[0].buf[0], I2C_SMBUS_WORD_DATA,
                  I2C_FUNC_SMBUS_READ_WORD_DATA);
    else {
        smbus_set(s, I2C_SMBUS_READ, m[0].buf[0], I2C_SMBUS_I2C_BLOCK_DATA,
                  I2C_FUNC_SMBUS_READ_I2C_BLOCK);
        s->data.block[0] = (uint8_t)len;
    }
    return true;
}

/* What a read brought, into the read message's buffer. */
static void smbus_read_back(const struct smbus_cmd *s, struct i2c_msg *rd)
{
    if (s->io.size == I2C_SMBUS_WORD_DATA) {
        rd->buf[0] = (uint8_t)s->data.word;
        rd->buf[1] = (uint8_t)(s->data.word >> 8);
    } else if (s->io.size == I2C_SMBUS_I2C_BLOCK_DATA)
        memcpy(rd->buf, &s->data.block[1], rd->len);
    else
        rd->buf[0] = s->data.byte;
}

int i2c_smbus_transfer(struct i2c *c)
{
    struct i2c_msg *m = c->msgs;
    /* Zeroed: an adapter that reads a shorter block than asked must not
     * show the guest dom0's stack. */
    struct smbus_cmd s = {0};
    bool match = c->nr == 1   ? smbus_of_one(m, c->funcs, &s)
                 : c->nr == 2 ? smbus_of_two(m, c->funcs, &s)
                              : false;

    if (!match || !(c->funcs & s.func)) {
        /* The guest's to know: its adapter says I2C_FUNC_I2C. */
        xvdm_dev_guest_error(
            c->dev,
            "a transaction of %u message(s) to 0x%02x (request %u) is no "
            "SMBus command %s, and %s carries nothing else: "
            "VIRTIO_I2C_MSG_ERR",
            c->nr, m[0].addr, c->reqs[0].chain.head,
            match ? "this adapter has" : "there is", c->bus);
        return -ENOMSG;
    }
    if (ioctl(c->fd, I2C_SLAVE, (unsigned long)m[0].addr) < 0 ||
        ioctl(c->fd, I2C_SMBUS, &s.io) < 0)
        return -errno;
    if (s.io.read_write == I2C_SMBUS_READ && m[c->nr - 1].len)
        smbus_read_back(&s, &m[c->nr - 1]);
    return 0;
}
