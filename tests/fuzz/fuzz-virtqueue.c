/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the fuzzer is the driver of one split virtqueue. It
 * chooses the queue size, the negotiated features, how many iovecs the
 * device takes, where the rings sit, and every byte of guest RAM behind
 * them (descriptor and indirect tables, avail and used rings). The device
 * side pops, writes into every buffer it gets, and completes, as a device
 * module does. Guest RAM is an exactly sized heap block, so AddressSanitizer
 * reports any access outside it.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtqueue.h"

#define RAM_GPA 0x40000000ULL
#define RAM_SIZE 0x4000
/* Input: num (1), features and iovec count (1), unused (1), desc, avail
 * and used ring positions (2 each); then guest RAM's contents. */
#define HEADER 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_fault(void *opaque, const char *what)
{
}

/* A ring offset inside guest RAM, aligned as the ring needs: alignment
 * and range refusals are unit-tested, the fuzzer's time is better spent
 * behind a queue that comes up. */
static uint64_t ring_gpa(const uint8_t *p, uint64_t align)
{
    return RAM_GPA + ((uint64_t)(p[0] | p[1] << 8) * align) % RAM_SIZE;
}

static void drain(struct vq *vq, uint16_t iov_cap)
{
    struct iovec iov[64];
    struct xvdm_chain chain = {.iov = iov, .iov_cap = iov_cap};

    for (unsigned round = 0; round < 2u * vq->num + 2; round++) {
        if (vq_pop(vq, &chain) != 1)
            break;
        /* What a device does with a chain: read it, write into it. */
        for (unsigned i = 0; i < chain.out_num + chain.in_num; i++)
            memset(iov[i].iov_base, 0xa5, iov[i].iov_len);
        vq_push(vq, &chain, chain.in_len / 2 + 1);
        if (round & 1)
            vq_disable_kicks(vq);
        else
            vq_enable_kicks(vq);
        vq_should_signal(vq);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gmem mem = {0};
    struct gaccess ga = {.ram = &mem};
    struct vq vq = {.num_max = 256, .on_fault = on_fault};
    uint8_t *ram;

    if (size < HEADER)
        return 0;
    ram = malloc(RAM_SIZE);
    if (!ram || gmem_add(&mem, RAM_GPA, RAM_SIZE, ram)) {
        free(ram);
        return 0;
    }
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, data + HEADER,
           size - HEADER < RAM_SIZE ? size - HEADER : RAM_SIZE);
    vq.num = (uint16_t)(1u << (data[0] % 9)); /* 1..256 */
    vq.desc_gpa = ring_gpa(data + 3, 16);
    vq.avail_gpa = ring_gpa(data + 5, 2);
    vq.used_gpa = ring_gpa(data + 7, 4);
    if (vq_enable(&vq, &ga, (uint64_t)(data[2] & 3) << VIRTIO_F_INDIRECT_DESC)
        == 0)
        drain(&vq, (uint16_t)(1 + (data[2] >> 2)));
    vq_reset(&vq);
    free(ram);
    return 0;
}
