/* SPDX-License-Identifier: MIT */
/*
 * Test side: the guest's half of virtio-gpu as Linux's virtio-gpu drives
 * it (VIRTIO 1.2 §5.7.6): bring the device up, send controlq and cursorq
 * requests and collect their answers (sim/gpu-guest.h's, asserted), and a
 * framebuffer in three pieces of guest RAM. Shared by the gpu tests
 * (test-gpu, test-gpu-vnc); one guest, h and d, per test program.
 */
#ifndef XVDM_TEST_GPU_GUEST_H
#define XVDM_TEST_GPU_GUEST_H

#include <check.h>
#include <linux/virtio_config.h>
#include <string.h>

#include "../sim/gpu-guest.h"
#include "vm.h"

#define GPU_ID GPU_GUEST_ID
#define RING GPU_QUEUE_SIZE
#define WAIT_MS 5000
#define CTRLQ GPU_QUEUE_CONTROL
#define CURQ GPU_QUEUE_CURSOR
#define CFG 0x100
#define GUARD GPU_GUEST_GUARD
#define HDR_LEN ((uint32_t)sizeof(struct virtio_gpu_ctrl_hdr))

static struct harness h;
static struct vdriver d;

static inline void start(const char *opts)
{
    ck_assert_int_eq(gpu_guest_start(&h, &d, opts), 0);
}

static inline void finish(void)
{
    ck_assert_int_eq(d.io_error, 0);
    ck_assert_uint_eq(vdriver_status(&d) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    harness_stop(&h);
}

static inline struct gpu *the_gpu(void)
{
    return vm_device(h.vm, 0)->priv;
}

/* The address the device gets for guest [gpa, gpa + len): in grant mode
 * a grant of it, as Linux's grant DMA maps a backing page list. */
static inline uint64_t dma_addr(uint64_t gpa, uint64_t len)
{
    uint64_t addr;

    ck_assert_int_eq(gpu_guest_dma(h.sim, gpa, len, &addr), 0);
    return addr;
}

/* ---- requests --------------------------------------------------------- */

#define DATA_PAGES GPU_GUEST_DATA_PAGES

/* As gpu_guest_post(), on d. */
static inline uint16_t post(unsigned q, const void *req, uint32_t req_len,
                            const void *data, uint32_t data_len,
                            uint32_t resp_len, uint64_t *rs)
{
    ck_assert_uint_le(data_len, DATA_PAGES * 4096);
    return gpu_guest_post(&d, q, req, req_len, data, data_len, resp_len, rs);
}

/* The next used chain of q, which must be `head`, its answer in resp
 * and the GUARD after it untouched. The used length. */
static inline uint32_t collect(unsigned q, uint16_t head, uint64_t rs,
                               void *resp, uint32_t resp_len)
{
    uint32_t len;

    ck_assert_int_eq(gpu_guest_collect(&d, q, head, rs, resp, resp_len, &len),
                     0);
    return len;
}

/* One chain on queue q, as post() makes it, kicked and waited for; the
 * answer in resp. The used length. */
static inline uint32_t gpu_send(unsigned q, const void *req, uint32_t req_len,
                                const void *data, uint32_t data_len, void *resp,
                                uint32_t resp_len)
{
    uint32_t len;

    ck_assert_uint_le(data_len, DATA_PAGES * 4096);
    ck_assert_int_eq(gpu_guest_send(&d, q, req, req_len, data, data_len, resp,
                                    resp_len, &len),
                     0);
    return len;
}

/* A controlq command with data; the answer's type. */
static inline uint32_t ctrl_data(const void *req, uint32_t len,
                                 const void *data, uint32_t data_len)
{
    struct virtio_gpu_ctrl_hdr r;

    ck_assert_uint_eq(gpu_send(CTRLQ, req, len, data, data_len, &r, sizeof(r)),
                      sizeof(r));
    return le32toh(r.type);
}

static inline uint32_t ctrl(const void *req, uint32_t len)
{
    return ctrl_data(req, len, NULL, 0);
}

static inline uint32_t create(uint32_t id, uint32_t format, uint32_t w,
                              uint32_t ht)
{
    struct virtio_gpu_resource_create_2d c = create_cmd(id, format, w, ht);

    return ctrl(&c, sizeof(c));
}

static inline uint32_t unref(uint32_t id)
{
    struct virtio_gpu_resource_unref c = {hdr(VIRTIO_GPU_CMD_RESOURCE_UNREF),
                                          htole32(id), 0};

    return ctrl(&c, sizeof(c));
}

/* ATTACH_BACKING as Linux sends it: the entries in a buffer of their
 * own; nr_entries as given (hostile tests give more than sent). */
static inline uint32_t attach_n(uint32_t id,
                                const struct virtio_gpu_mem_entry *e,
                                uint32_t sent, uint32_t nr_entries)
{
    struct virtio_gpu_resource_attach_backing c = {
        hdr(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), htole32(id),
        htole32(nr_entries)};

    return ctrl_data(&c, sizeof(c), e, sent * (uint32_t)sizeof(*e));
}

static inline uint32_t attach(uint32_t id, const struct virtio_gpu_mem_entry *e,
                              uint32_t n)
{
    return attach_n(id, e, n, n);
}

static inline uint32_t detach(uint32_t id)
{
    struct virtio_gpu_resource_detach_backing c = {
        hdr(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING), htole32(id), 0};

    return ctrl(&c, sizeof(c));
}

static inline uint32_t transfer(uint32_t id, struct virtio_gpu_rect r,
                                uint64_t offset)
{
    struct virtio_gpu_transfer_to_host_2d c = transfer_cmd(id, r, offset);

    return ctrl(&c, sizeof(c));
}

static inline uint32_t set_scanout(uint32_t sid, uint32_t id,
                                   struct virtio_gpu_rect r)
{
    struct virtio_gpu_set_scanout c = {hdr(VIRTIO_GPU_CMD_SET_SCANOUT), r,
                                       htole32(sid), htole32(id)};

    return ctrl(&c, sizeof(c));
}

static inline uint32_t flush(uint32_t id, struct virtio_gpu_rect r)
{
    struct virtio_gpu_resource_flush c = flush_cmd(id, r);

    return ctrl(&c, sizeof(c));
}

#define OK VIRTIO_GPU_RESP_OK_NODATA

/* ---- a guest framebuffer, in pieces ----------------------------------- */

#define FB_PIECES 3
struct fb {
    uint32_t w, ht;
    uint64_t len;
    uint64_t gpa[FB_PIECES];
    uint32_t piece[FB_PIECES];
    struct virtio_gpu_mem_entry e[FB_PIECES];
};

/* Byte k of the frame the guest draws, generation gen. */
static inline uint8_t fb_byte(uint64_t k, unsigned gen)
{
    return (uint8_t)(k * 7 + k / 251 + gen * 31);
}

/* w x ht pixels backed by three pieces of guest RAM apart from each
 * other, cut where rows are not (the first at 5000 bytes). */
static inline void fb_make(struct fb *f, uint32_t w, uint32_t ht)
{
    uint64_t left;

    f->w = w;
    f->ht = ht;
    f->len = (uint64_t)w * ht * 4;
    f->piece[0] = 5000;
    f->piece[1] = 4096;
    left = f->len - f->piece[0] - f->piece[1];
    f->piece[2] = (uint32_t)left;
    for (unsigned i = 0; i < FB_PIECES; i++) {
        f->gpa[i] = vdriver_alloc(&d, f->piece[i] + 4096, 4096) + 4096;
        f->e[i] = (struct virtio_gpu_mem_entry){
            htole64(dma_addr(f->gpa[i], f->piece[i])), htole32(f->piece[i]), 0};
    }
}

/* The guest draws generation gen into the whole frame. */
static inline void fb_draw(struct fb *f, unsigned gen)
{
    uint64_t k = 0;

    for (unsigned i = 0; i < FB_PIECES; i++) {
        uint8_t *p = vdriver_ptr(&d, f->gpa[i]);

        for (uint32_t j = 0; j < f->piece[i]; j++, k++)
            p[j] = fb_byte(k, gen);
    }
}

/* Resource id of w x ht in format, backed by a new frame f the guest
 * drew as generation 1, transferred whole. */
static inline void fb_resource(struct fb *f, uint32_t id, uint32_t format,
                               uint32_t w, uint32_t ht)
{
    fb_make(f, w, ht);
    fb_draw(f, 1);
    ck_assert_uint_eq(create(id, format, w, ht), OK);
    ck_assert_uint_eq(attach(id, f->e, FB_PIECES), OK);
    ck_assert_uint_eq(transfer(id, rect(0, 0, w, ht), 0), OK);
}

#endif
