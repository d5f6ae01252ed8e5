/* SPDX-License-Identifier: MIT */
/*
 * Test side: the guest's half of virtio-gpu's queues as Linux's
 * virtio-gpu drives them (VIRTIO 1.2 §5.7.6), without Check: the device
 * brought up, commands built, chains posted and their answers collected.
 * Errors are returned; tests/gpu-guest.h asserts on them, tools/bench-gpu
 * reports them.
 */
#ifndef XVDM_SIM_GPU_GUEST_H
#define XVDM_SIM_GPU_GUEST_H

#include <endian.h>
#include <stdint.h>

#include "../devices/gpu/gpu.h"
#include "harness.h"
#include "vdriver.h"

#define GPU_GUEST_ID 16
/* Bytes after each writable buffer that the device must leave alone. */
#define GPU_GUEST_GUARD 64
/* Data in buffers of a page at most, as Linux puts an entry list it had
 * to vmalloc(): the largest takes 64. */
#define GPU_GUEST_DATA_PAGES 64

/* xvdm with one "gpu<opts>" device, and d driving it, both queues set
 * up and DRIVER_OK. 0, or a negative errno. */
int gpu_guest_start(struct harness *h, struct vdriver *d, const char *opts);
/* The address the device gets for guest [gpa, gpa + len): in grant mode
 * a grant of it, as Linux's grant DMA maps a backing page list. 0, or a
 * negative errno. */
int gpu_guest_dma(struct sim *sim, uint64_t gpa, uint64_t len, uint64_t *addr);
/* A chain made available on queue q, not kicked: req, then data (when
 * data_len, at most GPU_GUEST_DATA_PAGES pages), readable; then resp_len
 * writable bytes (when resp_len) at *rs, with GPU_GUEST_GUARD bytes after
 * them. Its head. */
uint16_t gpu_guest_post(struct vdriver *d, unsigned q, const void *req,
                        uint32_t req_len, const void *data, uint32_t data_len,
                        uint32_t resp_len, uint64_t *rs);
/* The next used chain of q, which must be `head`: its answer copied to
 * resp (resp_len bytes at rs), its used length in *len. 0, -ETIMEDOUT,
 * -EPROTO (another chain came back) or -EFAULT (the device wrote past
 * the answer). */
int gpu_guest_collect(struct vdriver *d, unsigned q, uint16_t head, uint64_t rs,
                      void *resp, uint32_t resp_len, uint32_t *len);
/* One chain on queue q, as gpu_guest_post() makes it, kicked and waited
 * for; the answer in resp, the used length in *len. 0, or as
 * gpu_guest_collect(). */
int gpu_guest_send(struct vdriver *d, unsigned q, const void *req,
                   uint32_t req_len, const void *data, uint32_t data_len,
                   void *resp, uint32_t resp_len, uint32_t *len);

/* ---- commands ---------------------------------------------------------- */

static inline struct virtio_gpu_ctrl_hdr hdr(uint32_t type)
{
    return (struct virtio_gpu_ctrl_hdr){.type = htole32(type)};
}

static inline struct virtio_gpu_rect rect(uint32_t x, uint32_t y, uint32_t w,
                                          uint32_t ht)
{
    return (struct virtio_gpu_rect){htole32(x), htole32(y), htole32(w),
                                    htole32(ht)};
}

static inline struct virtio_gpu_resource_create_2d
create_cmd(uint32_t id, uint32_t format, uint32_t w, uint32_t ht)
{
    return (struct virtio_gpu_resource_create_2d){
        hdr(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D), htole32(id), htole32(format),
        htole32(w), htole32(ht)};
}

static inline struct virtio_gpu_transfer_to_host_2d
transfer_cmd(uint32_t id, struct virtio_gpu_rect r, uint64_t offset)
{
    return (struct virtio_gpu_transfer_to_host_2d){
        hdr(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D), r, htole64(offset),
        htole32(id), 0};
}

static inline struct virtio_gpu_resource_flush
flush_cmd(uint32_t id, struct virtio_gpu_rect r)
{
    return (struct virtio_gpu_resource_flush){
        hdr(VIRTIO_GPU_CMD_RESOURCE_FLUSH), r, htole32(id), 0};
}

#endif
