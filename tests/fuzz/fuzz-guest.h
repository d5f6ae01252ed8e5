/* SPDX-License-Identifier: MIT */
/*
 * Fuzz side: the fuzzer as the guest of a running xvdm, for the libFuzzer
 * targets that drive the whole stack (fuzz-mmio.c, fuzz-vcpus.c). Through
 * the simulated hypervisor (the real loop, ioreq dispatch, transport,
 * virtqueue and a device module) vCPU 0 performs operations read off the
 * input, each starting with one byte:
 *   0  write a register or config byte range: offset, size, value
 *   1  read one
 *   2  write bytes into guest RAM (rings and buffers live there)
 *   3  acknowledge the interrupt status it reads; with bit 4 set, send
 *      bytes from the device's host end instead (a frame into net's tap,
 *      input on console's socket, data from vsock's dom0 service:
 *      fuzz-peer.c); in grant mode, with bit 5 set, revoke a range of
 *      the granted pages, or grant them again (a byte: first page, bits
 *      0-3, and pages after it, bits 4-7)
 * The device is $XVDM_FUZZ_DEVICE: a --device spec (e.g. "blk,path=F"
 * with a real backing file), "net", "console" or "vsock" for one with a
 * host end the fuzzer drives; by default "rng". With $XVDM_TEST_GRANTS=1
 * it is served in grant mode and the guest grants the 64 KiB of RAM the
 * fuzzer writes, page i as reference i + 1, read-only from page 12
 * (fuzz-guest.c); after each input's reset it ends every grant, and
 * aborts when xvdm still maps one.
 */
#ifndef XVDM_FUZZ_GUEST_H
#define XVDM_FUZZ_GUEST_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of an input; past its end everything reads as 0. */
struct fuzz_input {
    const uint8_t *p;
    size_t left;
};

/* Start xvdm with the device on a guest of nr_vcpus vCPUs; aborts when it
 * cannot. */
void fuzz_guest_start(unsigned nr_vcpus);

/* Each input: begin (guest RAM the fuzzer writes cleared, the host end
 * drained), operations, end (a device reset, so inputs are independent). */
void fuzz_guest_begin(void);
void fuzz_guest_op(struct fuzz_input *in);
void fuzz_guest_end(void);

/* Operation 2 alone: offset, length, bytes into guest RAM. Any thread. */
void fuzz_guest_ram_write(struct fuzz_input *in);

#endif
