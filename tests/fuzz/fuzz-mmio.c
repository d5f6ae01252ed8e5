/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the fuzzer is the guest of a running xvdm. Through the
 * simulated hypervisor (the real loop, ioreq dispatch, transport,
 * virtqueue and rng module) it performs a sequence of operations:
 *   0  write a register or config byte range: offset, size, value
 *   1  read one
 *   2  write bytes into guest RAM (rings and buffers live there)
 *   3  acknowledge the interrupt status it reads; with bit 4 set, send
 *      bytes from the device's host end instead (a frame into net's tap,
 *      input on console's socket: fuzz-peer.c)
 * Each input ends with a device reset, so inputs are independent.
 * The device is $XVDM_FUZZ_DEVICE: a --device spec (e.g. "blk,path=F"
 * with a real backing file), "net" or "console" for one with a host end
 * the fuzzer drives; by default "rng".
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-layout.h"
#include "fuzz-peer.h"
#include "harness.h"
#include "transport-mmio.h"

/* The part of guest RAM the fuzzer writes: enough for rings and buffers,
 * small enough to clear on every input. */
#define FUZZ_RAM_SPAN 0x10000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct harness h;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *spec = getenv("XVDM_FUZZ_DEVICE");
    const char *specs[] = {fuzz_peer_setup(spec && *spec ? spec : "rng")};

    if (!specs[0] || harness_start(&h, specs, 1) || fuzz_peer_connect())
        abort();
    return 0;
}

/* Reads bytes off the input; past its end everything is 0. */
struct input {
    const uint8_t *p;
    size_t left;
};

static uint64_t take(struct input *in, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n && in->left; i++, in->left--)
        v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

static void guest_ram_write(struct input *in)
{
    uint64_t off = take(in, 2) % FUZZ_RAM_SPAN;
    unsigned len = (unsigned)take(in, 1) % 64;
    uint8_t *ram = sim_guest_ptr(h.sim, sim_ram_base(h.sim), FUZZ_RAM_SPAN);

    if (len > FUZZ_RAM_SPAN - off)
        len = (unsigned)(FUZZ_RAM_SPAN - off);
    for (unsigned i = 0; i < len; i++)
        ram[off + i] = (uint8_t)take(in, 1);
}

static void peer_send(struct input *in)
{
    uint8_t buf[256];
    unsigned len = (unsigned)take(in, 1);

    for (unsigned i = 0; i < len; i++)
        buf[i] = (uint8_t)take(in, 1);
    fuzz_peer_send(buf, len);
}

/* An access xvdm did not answer in time is a hang: report it as a crash. */
static void check(int ret)
{
    if (ret == -ETIMEDOUT)
        abort();
}

static void run_op(struct input *in, uint64_t base)
{
    static const unsigned sizes[] = {4, 1, 2, 8};
    unsigned op = (unsigned)take(in, 1);
    uint64_t offset = take(in, 2) % VIRTIO_MMIO_WINDOW_SIZE, v;
    unsigned size = sizes[(op >> 2) & 3];

    switch (op & 3) {
    case 0:
        check(sim_mmio_write(h.sim, 0, base + offset, size, take(in, size)));
        break;
    case 1:
        check(sim_mmio_read(h.sim, 0, base + offset, size, &v));
        break;
    case 2:
        guest_ram_write(in);
        break;
    default:
        if (op & 0x10) {
            peer_send(in);
            break;
        }
        check(sim_mmio_read(h.sim, 0, base + VIRTIO_MMIO_INTERRUPT_STATUS, 4,
                            &v));
        check(sim_mmio_write(h.sim, 0, base + VIRTIO_MMIO_INTERRUPT_ACK, 4, v));
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    uint64_t base = h.specs[0].base;

    memset(sim_guest_ptr(h.sim, sim_ram_base(h.sim), FUZZ_RAM_SPAN), 0,
           FUZZ_RAM_SPAN);
    fuzz_peer_drain();
    /* Bounded: every op consumes at least one byte. */
    while (in.left)
        run_op(&in, base);
    /* A reset waits for the device's I/O in flight and frees its jobs:
     * without it, a job whose only pointer is in io_uring's rings (which
     * LeakSanitizer does not scan) reads as a leak when libFuzzer checks
     * after this input. */
    check(sim_mmio_write(h.sim, 0, base + VIRTIO_MMIO_STATUS, 4, 0));
    return 0;
}
