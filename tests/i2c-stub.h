/* SPDX-License-Identifier: MIT */
/*
 * Test side: a stand-in for one of dom0's I2C adapters as i2c-dev shows
 * it, where no kernel module can be loaded (a container, CI). Through
 * node-stub.h's ioctl(), on the file i2c_stub_start() makes, it answers I2C_FUNCS and carries out I2C_RDWR
 * as the kernel does (i2c-dev's bounds: 42 messages, 8192 bytes each);
 * every other ioctl goes on to libc. Its chips are i2c-stub's: 256 byte
 * registers and a pointer, which a write's first byte sets, further
 * written bytes are stored at and reads return from, advancing it; an
 * address with no chip NACKs (-ENXIO), and a zero-length message (SMBus
 * quick) is acknowledged by a chip. (i2c-stub itself is SMBus-only: it
 * has no I2C_FUNC_I2C, which xvdm needs for I2C_RDWR.)
 */
#ifndef XVDM_TEST_I2C_STUB_H
#define XVDM_TEST_I2C_STUB_H

#include <stdint.h>

#define I2C_STUB_CHIPS_MAX 8

/* The adapter, answering I2C_FUNCS with funcs, with chips at the 7-bit
 * addresses chips[0..n): the path of its node (a temporary file). */
const char *i2c_stub_start(unsigned long funcs, const uint16_t *chips,
                           unsigned n);
/* Remove the node. */
void i2c_stub_stop(void);
/* I2C_RDWR calls so far, and the messages of the last one. */
unsigned i2c_stub_transfers(void);
unsigned i2c_stub_last_nmsgs(void);
/* A copy of the registers of the chip at addr. */
void i2c_stub_regs(uint16_t addr, uint8_t regs[256]);

#endif
