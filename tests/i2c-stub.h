/* SPDX-License-Identifier: MIT */
/*
 * Test side: a stand-in for one of dom0's I2C adapters as i2c-dev shows
 * it, where no kernel module can be loaded (a container, CI). Through
 * node-stub.h's ioctl(), on the file i2c_stub_start() makes, it answers
 * I2C_FUNCS and I2C_SLAVE and carries out I2C_RDWR (refused without
 * I2C_FUNC_I2C) and I2C_SMBUS (as the messages each command is) as the
 * kernel does (i2c-dev's bounds: 42 messages, 8192 bytes each); every
 * other ioctl goes on to libc. Its chips are i2c-stub's: 256 byte
 * registers and a pointer, which a write's first byte sets, further
 * written bytes are stored at and reads return from, advancing it; an
 * address with no chip NACKs (-ENXIO), and a zero-length message (SMBus
 * quick) is acknowledged by a chip.
 */
#ifndef XVDM_TEST_I2C_STUB_H
#define XVDM_TEST_I2C_STUB_H

#include <stdint.h>

#define I2C_STUB_CHIPS_MAX 8

/* The adapter, answering I2C_FUNCS with funcs, with chips at the 7-bit
 * addresses chips[0..n): the path of its node (a temporary file). */
const char *i2c_stub_start(unsigned long funcs, const uint16_t *chips,
                           unsigned n);
/* A driver in dom0 has the chip at addr: I2C_SLAVE says EBUSY for it,
 * as i2c-dev does (I2C_RDWR still reaches it, as i2c-dev's does). */
void i2c_stub_bind_driver(uint16_t addr);
/* Remove the node. */
void i2c_stub_stop(void);
/* I2C_RDWR calls so far, and the messages of the last one. */
unsigned i2c_stub_transfers(void);
unsigned i2c_stub_last_nmsgs(void);
/* I2C_SMBUS calls so far (an adapter without I2C_FUNC_I2C refuses
 * I2C_RDWR, as the kernel's do). */
unsigned i2c_stub_smbus_calls(void);
/* A copy of the registers of the chip at addr. */
void i2c_stub_regs(uint16_t addr, uint8_t regs[256]);

#endif
