/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu (2D) on the simulated hypervisor, with a driver that sends
 * what Linux's virtio-gpu sends: the config space and the modes, a valid
 * EDID, a frame from guest pages to the scanout byte for byte (what a
 * host consumer reads, through the module's gpu_scanout_snapshot()),
 * fences echoed, max-memory and every rectangle, offset, id and buffer
 * length a hostile guest can get wrong, the cursor, and the options a
 * user can get wrong.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <linux/virtio_config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../devices/gpu/gpu.h"
#include "check-run.h"
#include "dev.h"
#include "harness.h"
#include "log-lines.h"
#include "refused-spec.h"
#include "vdriver.h"
#include "vm.h"
/* Last: its guest, h and d, would shadow the names of the helpers above. */
#include "gpu-guest.h"

/* ---- what the host consumer sees -------------------------------------- */

typedef int snapshot_fn(const struct gpu *g, unsigned id, void *buf,
                        size_t size, struct gpu_snapshot_info *info);

/* The module's own gpu_scanout_snapshot(), from the copy xvdm loaded. */
static snapshot_fn *snapshot_fn_of_module(void)
{
    char path[4096];
    void *so, *fn;

    snprintf(path, sizeof(path), "%s/gpu.so", getenv("XVDM_MODULE_DIR"));
    so = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    ck_assert_ptr_nonnull(so);
    fn = dlsym(so, "gpu_scanout_snapshot");
    ck_assert_ptr_nonnull(fn);
    dlclose(so);
    return (snapshot_fn *)fn;
}

static int snapshot(unsigned id, void *buf, size_t size,
                    struct gpu_snapshot_info *info)
{
    return snapshot_fn_of_module()(the_gpu(), id, buf, size, info);
}

/* ---- config space, modes, EDID ---------------------------------------- */

#define CFG_AT(field) offsetof(struct virtio_gpu_config, field)

/* As Linux's virtio_cread_le() reads it: 32 bits at a time. */
static uint32_t cfg_read(unsigned off)
{
    return vdriver_read(&d, CFG + off);
}

START_TEST(config_says_the_outputs_no_capsets_and_offers_edid)
{
    start(",outputs=3");
    ck_assert(d.offered & (1ULL << VIRTIO_GPU_F_EDID));
    ck_assert_uint_eq(cfg_read(CFG_AT(num_scanouts)), 3);
    ck_assert_uint_eq(cfg_read(CFG_AT(num_capsets)), 0);
    ck_assert_uint_eq(cfg_read(CFG_AT(events_read)), 0);
    /* Only events_clear takes a write; num_scanouts stays. */
    vdriver_write(&d, CFG + CFG_AT(num_scanouts), 9);
    ck_assert_uint_eq(cfg_read(CFG_AT(num_scanouts)), 3);
    vdriver_write(&d, CFG + CFG_AT(events_clear), 1);
    ck_assert_uint_eq(cfg_read(CFG_AT(events_read)), 0);
    finish();
}
END_TEST

static void expect_modes(uint32_t outputs, uint32_t w, uint32_t ht)
{
    struct virtio_gpu_ctrl_hdr c = hdr(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    struct virtio_gpu_resp_display_info r;

    ck_assert_uint_eq(gpu_send(CTRLQ, &c, sizeof(c), NULL, 0, &r, sizeof(r)),
                      sizeof(r));
    ck_assert_uint_eq(le32toh(r.hdr.type), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    for (uint32_t i = 0; i < VIRTIO_GPU_MAX_SCANOUTS; i++) {
        ck_assert_uint_eq(le32toh(r.pmodes[i].enabled), i < outputs);
        ck_assert_uint_eq(le32toh(r.pmodes[i].r.x), 0);
        ck_assert_uint_eq(le32toh(r.pmodes[i].r.y), 0);
        ck_assert_uint_eq(le32toh(r.pmodes[i].r.width), i < outputs ? w : 0);
        ck_assert_uint_eq(le32toh(r.pmodes[i].r.height), i < outputs ? ht : 0);
    }
}

START_TEST(display_info_gives_each_output_its_mode)
{
    start("");
    expect_modes(1, 1024, 768);
    harness_stop(&h);
    start(",outputs=2,xres=1920,yres=1080");
    expect_modes(2, 1920, 1080);
    finish();
}
END_TEST

static uint32_t get_edid(uint32_t scanout, struct virtio_gpu_resp_edid *r)
{
    struct virtio_gpu_cmd_get_edid c = {hdr(VIRTIO_GPU_CMD_GET_EDID),
                                        htole32(scanout), 0};
    uint32_t len = gpu_send(CTRLQ, &c, sizeof(c), NULL, 0, r, sizeof(*r));
    uint32_t type = le32toh(r->hdr.type);

    ck_assert_uint_eq(len,
                      type == VIRTIO_GPU_RESP_OK_EDID ? sizeof(*r) : HDR_LEN);
    return type;
}

/* VESA E-EDID 1.4: the header, a checksum that sums to 0, and the
 * preferred detailed timing of the output's mode. */
static void expect_edid(const uint8_t *e, uint32_t w, uint32_t ht)
{
    static const uint8_t head[] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
    const uint8_t *t = e + 54;
    uint8_t sum = 0;

    ck_assert_mem_eq(e, head, sizeof(head));
    ck_assert_uint_eq(e[18], 1);
    ck_assert_uint_eq(e[19], 4);
    for (unsigned i = 0; i < 128; i++)
        sum += e[i];
    ck_assert_uint_eq(sum, 0);
    ck_assert_uint_ne(t[0] | t[1], 0); /* a timing, not a descriptor */
    ck_assert_uint_eq(t[2] | (t[4] >> 4) << 8, w);
    ck_assert_uint_eq(t[5] | (t[7] >> 4) << 8, ht);
    ck_assert_mem_eq(e + 54 + 18 + 5, "xvdm\n", 5);
}

START_TEST(edid_is_a_valid_block_for_each_outputs_mode)
{
    struct virtio_gpu_resp_edid r;

    start(",outputs=2,xres=2560,yres=1440");
    ck_assert_uint_eq(get_edid(1, &r), VIRTIO_GPU_RESP_OK_EDID);
    ck_assert_uint_eq(le32toh(r.size), 128);
    expect_edid(r.edid, 2560, 1440);
    ck_assert_uint_eq(get_edid(2, &r), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
    harness_stop(&h);
    start(",xres=4095,yres=4095");
    ck_assert_uint_eq(get_edid(0, &r), VIRTIO_GPU_RESP_OK_EDID);
    expect_edid(r.edid, 4095, 4095);
    finish();
}
END_TEST

/* ---- a frame, end to end ---------------------------------------------- */

/* The consumer sees exactly the guest's frame. */
static void expect_frame(const struct fb *f, unsigned gen, uint64_t flushes)
{
    struct gpu_snapshot_info info;
    uint8_t *got = malloc(f->len);

    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(snapshot(0, got, f->len, &info), 0);
    ck_assert_uint_eq(info.width, f->w);
    ck_assert_uint_eq(info.height, f->ht);
    ck_assert_uint_eq(info.format, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM);
    ck_assert_uint_eq(info.flushes, flushes);
    for (uint64_t k = 0; k < f->len; k++)
        if (got[k] != fb_byte(k, gen))
            ck_abort_msg("byte %llu: 0x%x, not 0x%x", (unsigned long long)k,
                         got[k], fb_byte(k, gen));
    free(got);
}

START_TEST(a_frame_reaches_the_scanout_byte_for_byte)
{
    struct gpu_snapshot_info info;
    struct fb f;
    uint8_t small[4];

    start("");
    fb_make(&f, 64, 48);
    fb_draw(&f, 1);
    ck_assert_int_eq(snapshot(0, small, sizeof(small), &info), -ENOENT);
    ck_assert_uint_eq(create(7, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 48), OK);
    ck_assert_uint_eq(attach(7, f.e, FB_PIECES), OK);
    ck_assert_uint_eq(transfer(7, rect(0, 0, 64, 48), 0), OK);
    ck_assert_uint_eq(set_scanout(0, 7, rect(0, 0, 64, 48)), OK);
    ck_assert_uint_eq(flush(7, rect(0, 0, 64, 48)), OK);
    expect_frame(&f, 1, 1);
    ck_assert_int_eq(snapshot(0, small, sizeof(small), &info), -ENOSPC);
    finish();
}
END_TEST

/* Linux updates a damaged rectangle: offset = y * pitch + x * 4, rows
 * a pitch apart. Only that rectangle changes on the host. */
START_TEST(a_damaged_rectangle_updates_only_itself)
{
    const uint32_t x = 10, y = 5, w = 30, ht = 20, pitch = 64 * 4;
    struct gpu_snapshot_info info;
    struct fb f;
    uint8_t *got = malloc(64 * 48 * 4);

    start("");
    fb_resource(&f, 1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 48);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, 64, 48)), OK);
    fb_draw(&f, 2);
    ck_assert_uint_eq(transfer(1, rect(x, y, w, ht), y * pitch + x * 4), OK);
    ck_assert_uint_eq(flush(1, rect(x, y, w, ht)), OK);
    ck_assert_int_eq(snapshot(0, got, 64 * 48 * 4, &info), 0);
    ck_assert_uint_eq(info.flushes, 1);
    for (uint32_t k = 0; k < 64 * 48 * 4; k++) {
        uint32_t px = k % pitch / 4, py = k / pitch;
        bool in = px >= x && px < x + w && py >= y && py < y + ht;

        ck_assert_uint_eq(got[k], fb_byte(k, in ? 2 : 1));
    }
    free(got);
    finish();
}
END_TEST

/* Requests are answered in order: a fenced one is done when answered,
 * its fence_id and ctx_id given back with FLAG_FENCE. */
START_TEST(a_fence_comes_back_with_its_answer)
{
    struct virtio_gpu_resource_create_2d c =
        create_cmd(3, VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 8, 8);
    struct virtio_gpu_ctrl_hdr r;

    start("");
    c.hdr.flags = htole32(VIRTIO_GPU_FLAG_FENCE);
    c.hdr.fence_id = htole64(0x1122334455667788ULL);
    c.hdr.ctx_id = htole32(5);
    ck_assert_uint_eq(gpu_send(CTRLQ, &c, sizeof(c), NULL, 0, &r, sizeof(r)),
                      sizeof(r));
    ck_assert_uint_eq(le32toh(r.type), OK);
    ck_assert_uint_eq(le32toh(r.flags), VIRTIO_GPU_FLAG_FENCE);
    ck_assert_uint_eq(le64toh(r.fence_id), 0x1122334455667788ULL);
    ck_assert_uint_eq(le32toh(r.ctx_id), 5);
    /* Unfenced: nothing echoed. */
    c.hdr = hdr(VIRTIO_GPU_CMD_RESOURCE_UNREF);
    ck_assert_uint_eq(gpu_send(CTRLQ, &c,
                               sizeof(struct virtio_gpu_resource_unref), NULL,
                               0, &r, sizeof(r)),
                      sizeof(r));
    ck_assert_uint_eq(le32toh(r.flags), 0);
    ck_assert_uint_eq(le64toh(r.fence_id), 0);
    finish();
}
END_TEST

START_TEST(every_format_linux_uses_is_taken_and_others_refused)
{
    static const uint32_t formats[] = {
        VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM,
        VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM,
        VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM,
        VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM};

    start("");
    for (uint32_t i = 0; i < 8; i++)
        ck_assert_uint_eq(create(i + 1, formats[i], 16, 16), OK);
    ck_assert_uint_eq(create(20, 0, 16, 16),
                      VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    ck_assert_uint_eq(create(20, 5, 16, 16),
                      VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    /* An id in use, and id 0. */
    ck_assert_uint_eq(create(1, formats[0], 16, 16),
                      VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    ck_assert_uint_eq(create(0, formats[0], 16, 16),
                      VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    finish();
}
END_TEST

/* Unref takes the resource off the scanout; its id is unknown after,
 * and a detached one cannot be transferred from. */
START_TEST(unref_and_detach_end_what_they_name)
{
    struct gpu_snapshot_info info;
    uint8_t px[16 * 16 * 4];
    struct fb f;

    start("");
    fb_make(&f, 64, 48);
    ck_assert_uint_eq(create(2, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 48), OK);
    ck_assert_uint_eq(attach(2, f.e, FB_PIECES), OK);
    ck_assert_uint_eq(attach(2, f.e, FB_PIECES),
                      VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    ck_assert_uint_eq(detach(2), OK);
    ck_assert_uint_eq(detach(2), VIRTIO_GPU_RESP_ERR_UNSPEC);
    ck_assert_uint_eq(transfer(2, rect(0, 0, 16, 16), 0),
                      VIRTIO_GPU_RESP_ERR_UNSPEC);
    ck_assert_uint_eq(set_scanout(0, 2, rect(0, 0, 16, 16)), OK);
    ck_assert_int_eq(snapshot(0, px, sizeof(px), &info), 0);
    ck_assert_uint_eq(unref(2), OK);
    ck_assert_int_eq(snapshot(0, px, sizeof(px), &info), -ENOENT);
    ck_assert_uint_eq(unref(2), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    ck_assert_uint_eq(transfer(2, rect(0, 0, 1, 1), 0),
                      VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    ck_assert_uint_eq(flush(2, rect(0, 0, 1, 1)),
                      VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    ck_assert_uint_eq(set_scanout(0, 2, rect(0, 0, 1, 1)),
                      VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    ck_assert_uint_eq(attach(2, f.e, 1),
                      VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    ck_assert_uint_eq(detach(2), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    finish();
}
END_TEST

/* A reset ends every resource: none is known to the next probe, and
 * max-memory is whole again. */
START_TEST(a_reset_ends_every_resource)
{
    struct virtio_gpu_resp_edid edid;

    start(",max-memory=1M");
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 400, 400),
                      OK);
    vdriver_reset(&d);
    ck_assert_int_eq(vdriver_probe(&d, GPU_ID, DEV_TRANSPORT_FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, CTRLQ, RING), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, CURQ, RING), 0);
    vdriver_driver_ok(&d);
    ck_assert_uint_eq(unref(1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
    /* This driver took no VIRTIO_GPU_F_EDID: no EDID for it. */
    ck_assert_uint_eq(get_edid(0, &edid), VIRTIO_GPU_RESP_ERR_UNSPEC);
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 400, 400),
                      OK);
    finish();
}
END_TEST

/* ---- bounds ----------------------------------------------------------- */

static void over_the_limit(void)
{
    for (uint32_t i = 0; i < 50; i++)
        ck_assert_uint_eq(
            create(100 + i, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 512, 512),
            VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
}

/* 1 MiB: a 512x512 frame (1 MiB of pixels, plus the resource) does not
 * fit, three of 256x256 do and a fourth does not; the refusals are
 * logged, rate-limited; memory comes back with unref. */
START_TEST(max_memory_bounds_the_resources)
{
    start(",max-memory=1M");
    ck_assert_uint_le(log_lines_during(over_the_limit, "max-memory"), 20);
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 256, 256),
                      OK);
    ck_assert_uint_eq(create(2, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 256, 256),
                      OK);
    ck_assert_uint_eq(create(3, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 256, 256),
                      OK);
    ck_assert_uint_eq(create(4, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 256, 256),
                      VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    ck_assert_uint_eq(unref(1), OK);
    ck_assert_uint_eq(create(4, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 256, 256),
                      OK);
    /* The largest sides there are: 1 GiB. */
    ck_assert_uint_eq(create(5, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16384, 16384),
                      VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    finish();
}
END_TEST

/* Pixels of 64 KiB or more take whole pages, and max-memory counts them
 * so: with 2 MiB, thirty resources of 4097x4 (65552 bytes, 69632 in
 * pages) fit and a thirty-first does not (it would, counted by bytes). */
START_TEST(max_memory_counts_large_pixels_in_whole_pages)
{
    start(",max-memory=2M");
    for (uint32_t i = 1; i <= 30; i++)
        ck_assert_uint_eq(
            create(i, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4097, 4), OK);
    ck_assert_uint_eq(create(31, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 4097, 4),
                      VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
    finish();
}
END_TEST

/* Sides are 1..16384, as QEMU's: a transfer's rows are bounded, and
 * width * height * 4 cannot overflow (these would wrap 64 bits to 4096
 * and to 0, and 32). */
START_TEST(resource_sides_are_at_most_16384)
{
    const uint32_t bad = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    const uint32_t x8 = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM;

    start("");
    ck_assert_uint_eq(create(5, x8, 1235045764, 3734020352u), bad);
    ck_assert_uint_eq(create(5, x8, 0x80000000, 0x80000000), bad);
    ck_assert_uint_eq(create(5, x8, 0xffffffff, 0xffffffff), bad);
    ck_assert_uint_eq(create(5, x8, 0x10000, 0x10000), bad);
    ck_assert_uint_eq(create(5, x8, 0, 16), bad);
    ck_assert_uint_eq(create(5, x8, 1, 16385), bad);
    ck_assert_uint_eq(create(5, x8, 16385, 1), bad);
    ck_assert_uint_eq(create(5, x8, 1, 16384), OK);
    ck_assert_uint_eq(create(6, x8, 16384, 1), OK);
    finish();
}
END_TEST

START_TEST(rectangles_offsets_and_scanouts_outside_are_refused)
{
    const uint32_t bad = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    struct fb f;

    start(",outputs=2");
    fb_make(&f, 64, 48);
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 48), OK);
    ck_assert_uint_eq(attach(1, f.e, FB_PIECES), OK);
    ck_assert_uint_eq(transfer(1, rect(1, 0, 64, 48), 0), bad);
    ck_assert_uint_eq(transfer(1, rect(0, 47, 64, 2), 0), bad);
    ck_assert_uint_eq(transfer(1, rect(0xffffffff, 0, 2, 1), 0), bad);
    ck_assert_uint_eq(transfer(1, rect(0, 0xffffffff, 1, 2), 0), bad);
    ck_assert_uint_eq(transfer(1, rect(0, 0, 0, 1), 0), bad);
    /* Rows past the backing: one byte, and offsets that wrap. */
    ck_assert_uint_eq(transfer(1, rect(0, 0, 64, 48), 1), bad);
    ck_assert_uint_eq(transfer(1, rect(0, 0, 1, 1), 64 * 48 * 4), bad);
    ck_assert_uint_eq(transfer(1, rect(0, 0, 1, 1), UINT64_MAX), bad);
    ck_assert_uint_eq(transfer(1, rect(0, 0, 1, 1), UINT64_MAX - 2), bad);
    ck_assert_uint_eq(transfer(1, rect(63, 47, 1, 1), 64 * 48 * 4 - 4), OK);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, 65, 48)), bad);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0xfffffff0, 0, 0x20, 1)), bad);
    ck_assert_uint_eq(set_scanout(2, 1, rect(0, 0, 64, 48)),
                      VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
    ck_assert_uint_eq(set_scanout(0xffffffff, 0, rect(0, 0, 0, 0)),
                      VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
    ck_assert_uint_eq(set_scanout(1, 1, rect(32, 24, 32, 24)), OK);
    ck_assert_uint_eq(flush(1, rect(0, 0, 64, 49)), bad);
    ck_assert_uint_eq(flush(1, rect(0, 0xffffffff, 1, 2)), bad);
    finish();
}
END_TEST

/* Each entry must be guest memory when attached; entries are bounded
 * and must all be in the request. */
START_TEST(backing_outside_the_guest_or_the_request_is_refused)
{
    const uint32_t bad = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    struct virtio_gpu_mem_entry e[2], many[17];
    uint64_t end;
    struct fb f;

    start("");
    end = sim_ram_base(h.sim) + sim_ram_size(h.sim);
    fb_make(&f, 64, 48);
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 64, 48), OK);
    e[0] = f.e[0];
    e[1] = (struct virtio_gpu_mem_entry){htole64(end - 4096), htole32(8192), 0};
    ck_assert_uint_eq(attach(1, e, 2), bad);
    e[1] = (struct virtio_gpu_mem_entry){htole64(UINT64_MAX - 10),
                                         htole32(4096), 0};
    ck_assert_uint_eq(attach(1, e, 2), bad);
    e[1] = (struct virtio_gpu_mem_entry){htole64(0), htole32(4096), 0};
    ck_assert_uint_eq(attach(1, e, 2), bad);
    e[1] = (struct virtio_gpu_mem_entry){e[0].addr, 0, 0};
    ck_assert_uint_eq(attach(1, e, 2), bad);
    ck_assert_uint_eq(attach_n(1, f.e, FB_PIECES, FB_PIECES + 1), bad);
    ck_assert_uint_eq(attach_n(1, f.e, 0, 0), bad);
    ck_assert_uint_eq(attach_n(1, f.e, FB_PIECES, 0xffffffff), bad);
    /* Every entry but the last a page or more. */
    e[0] = (struct virtio_gpu_mem_entry){f.e[0].addr, htole32(4095), 0};
    e[1] = f.e[1];
    ck_assert_uint_eq(attach(1, e, 2), bad);
    e[0] = f.e[1];
    e[1] = (struct virtio_gpu_mem_entry){f.e[0].addr, htole32(1), 0};
    ck_assert_uint_eq(attach(1, e, 2), OK);
    ck_assert_uint_eq(detach(1), OK);
    /* More backing than the resource needs is the driver's to give: the
     * same page 17 times (12 KiB resource). */
    for (unsigned i = 0; i < 17; i++)
        many[i] = (struct virtio_gpu_mem_entry){f.e[1].addr, htole32(4096), 0};
    ck_assert_uint_eq(attach(1, many, 17), OK);
    ck_assert_uint_eq(detach(1), OK);
    /* None of it stuck: a good list is taken. */
    ck_assert_uint_eq(attach(1, f.e, FB_PIECES), OK);
    finish();
}
END_TEST

/* An entry larger than one mapping of guest memory (16 MiB) is checked
 * whole: 20 MiB at the end of RAM, for a resource of 20 MiB, is taken,
 * one page more is not. In grant mode an attach only checks that it is
 * a grant address: the grants are tried when a transfer reads them. */
START_TEST(a_large_backing_entry_is_checked_to_its_last_page)
{
    const uint64_t len = 20 << 20;
    struct virtio_gpu_mem_entry e;
    uint64_t gpa, addr;

    start("");
    gpa = sim_ram_base(h.sim) + sim_ram_size(h.sim) - len;
    addr = dma_addr(gpa, len);
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2560, 2048),
                      OK);
    e = (struct virtio_gpu_mem_entry){htole64(addr), htole32(len + 4096), 0};
    if (!vdriver_grants())
        ck_assert_uint_eq(attach(1, &e, 1),
                          VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
    e.length = htole32(len);
    ck_assert_uint_eq(attach(1, &e, 1), OK);
    finish();
}
END_TEST

/* Requests shorter than their command get ERR_UNSPEC; answers longer
 * than the writable part are cut there, never written past it. */
START_TEST(short_requests_and_short_answer_buffers)
{
    struct virtio_gpu_resource_create_2d c =
        create_cmd(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16, 16);
    struct virtio_gpu_ctrl_hdr info = hdr(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    struct virtio_gpu_resp_display_info r;
    uint8_t tiny[8];

    start("");
    ck_assert_uint_eq(ctrl(&c, sizeof(c) - 1), VIRTIO_GPU_RESP_ERR_UNSPEC);
    ck_assert_uint_eq(ctrl(&c, 3), VIRTIO_GPU_RESP_ERR_UNSPEC);
    c.hdr = hdr(0x1234);
    ck_assert_uint_eq(ctrl(&c, sizeof(c)), VIRTIO_GPU_RESP_ERR_UNSPEC);
    ck_assert_uint_eq(
        gpu_send(CTRLQ, &info, sizeof(info), NULL, 0, &r, HDR_LEN), HDR_LEN);
    ck_assert_uint_eq(le32toh(r.hdr.type), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
    ck_assert_uint_eq(
        gpu_send(CTRLQ, &info, sizeof(info), NULL, 0, tiny, sizeof(tiny)),
        sizeof(tiny));
    /* No room at all: completed with nothing written. */
    ck_assert_uint_eq(gpu_send(CTRLQ, &info, sizeof(info), NULL, 0, NULL, 0),
                      0);
    finish();
}
END_TEST

/* ---- cursor ----------------------------------------------------------- */

static void cursor(uint32_t type, uint32_t sid, uint32_t x, uint32_t y,
                   uint32_t id)
{
    struct virtio_gpu_update_cursor c = {
        .hdr = hdr(type),
        .pos = {htole32(sid), htole32(x), htole32(y), 0},
        .resource_id = htole32(id),
        .hot_x = htole32(3),
        .hot_y = htole32(4),
    };

    ck_assert_uint_eq(gpu_send(CURQ, &c, sizeof(c), NULL, 0, NULL, 0), 0);
}

START_TEST(the_cursor_is_kept_as_the_guest_sets_and_moves_it)
{
    const struct gpu_cursor *cur;

    start(",outputs=2");
    ck_assert_uint_eq(create(9, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64), OK);
    cursor(VIRTIO_GPU_CMD_UPDATE_CURSOR, 1, 100, 200, 9);
    cur = &the_gpu()->cursor;
    ck_assert_uint_eq(cur->resource_id, 9);
    ck_assert_uint_eq(cur->scanout, 1);
    ck_assert_uint_eq(cur->x, 100);
    ck_assert_uint_eq(cur->hot_y, 4);
    cursor(VIRTIO_GPU_CMD_MOVE_CURSOR, 1, 5, 6, 0);
    ck_assert_uint_eq(cur->resource_id, 9);
    ck_assert_uint_eq(cur->x, 5);
    ck_assert_uint_eq(cur->y, 6);
    /* An unknown resource, a scanout not there: ignored. */
    cursor(VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 1, 1, 77);
    cursor(VIRTIO_GPU_CMD_MOVE_CURSOR, 2, 1, 1, 0);
    ck_assert_uint_eq(cur->resource_id, 9);
    ck_assert_uint_eq(cur->x, 5);
    cursor(VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 1, 2, 0);
    ck_assert_uint_eq(cur->resource_id, 0);
    finish();
}
END_TEST

/* UPDATE_CURSOR takes the image as its resource is then: the guest may
 * draw the next one into it, or free it, without the cursor changing. */
START_TEST(the_cursor_image_is_copied_when_it_is_set)
{
    const struct gpu_cursor *cur;
    struct fb f;

    start("");
    fb_resource(&f, 9, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64);
    cursor(VIRTIO_GPU_CMD_UPDATE_CURSOR, 0, 10, 20, 9);
    fb_draw(&f, 2);
    ck_assert_uint_eq(transfer(9, rect(0, 0, 64, 64), 0), OK);
    ck_assert_uint_eq(unref(9), OK);
    cur = &the_gpu()->cursor;
    ck_assert_uint_eq(cur->format, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM);
    for (uint64_t k = 0; k < sizeof(cur->image); k++)
        ck_assert_uint_eq(cur->image[k], fb_byte(k, 1));
    finish();
}
END_TEST

/* ---- what a guest's backing costs -------------------------------------- */

/* Linux's largest entry list, 16384 entries (each here the same page),
 * sent one page per buffer as Linux sends a vmalloc()ed list: taken,
 * and in grant mode without mapping a grant; a transfer then reads each
 * entry. */
START_TEST(the_largest_backing_list_is_taken_without_mapping_it)
{
    static struct virtio_gpu_mem_entry e[GPU_BACKING_ENTRIES_MAX];
    uint64_t page, addr;
    struct gpu_snapshot_info info;
    static uint8_t rows[2 * 4096];
    unsigned maps;

    start("");
    page = vdriver_alloc(&d, 4096, 4096);
    for (unsigned k = 0; k < 4096; k++)
        ((uint8_t *)vdriver_ptr(&d, page))[k] = fb_byte(k, 3);
    addr = dma_addr(page, 4096);
    for (unsigned k = 0; k < GPU_BACKING_ENTRIES_MAX; k++)
        e[k] = (struct virtio_gpu_mem_entry){htole64(addr), htole32(4096), 0};
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1024, 16384),
                      OK);
    maps = sim_grant_map_calls(h.sim);
    ck_assert_uint_eq(attach(1, e, GPU_BACKING_ENTRIES_MAX), OK);
    /* In grant mode, the request's own two (its readable part and its
     * writable part), and no more. */
    ck_assert_uint_eq(sim_grant_map_calls(h.sim),
                      maps + (vdriver_grants() ? 2 : 0));
    ck_assert_uint_eq(transfer(1, rect(0, 0, 1024, 16384), 0), OK);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 16382, 1024, 2)), OK);
    ck_assert_int_eq(snapshot(0, rows, sizeof(rows), &info), 0);
    for (unsigned k = 0; k < sizeof(rows); k++)
        ck_assert_uint_eq(rows[k], fb_byte(k % 4096, 3));
    finish();
}
END_TEST

/* A guest that queues transfers of 64 MiB each cannot keep the loop from
 * its other queue: the cursor is served while they are still going (each
 * drain spends at most GPU_TURN_COST, then the rest waits a turn). */
START_TEST(transfers_leave_the_loop_to_the_other_queue)
{
    enum { N = 16, PIECE = 4 << 20 };
    struct virtio_gpu_transfer_to_host_2d c =
        transfer_cmd(1, rect(0, 0, 1024, 16384), 0);
    struct virtio_gpu_mem_entry e[N];
    struct virtio_gpu_ctrl_hdr r;
    uint64_t rs[N], piece;
    uint16_t head[N], used;

    start("");
    piece = dma_addr(vdriver_alloc(&d, PIECE, 4096), PIECE);
    for (unsigned k = 0; k < N; k++)
        e[k] = (struct virtio_gpu_mem_entry){htole64(piece), htole32(PIECE), 0};
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 1024, 16384),
                      OK);
    ck_assert_uint_eq(attach(1, e, N), OK);
    for (unsigned k = 0; k < N; k++)
        head[k] = post(CTRLQ, &c, sizeof(c), NULL, 0, sizeof(r), &rs[k]);
    vdriver_kick(&d, CTRLQ);
    cursor(VIRTIO_GPU_CMD_MOVE_CURSOR, 0, 7, 8, 0);
    used =
        le16toh(guest_ring_used(&d.ring[CTRLQ])->idx) - d.ring[CTRLQ].last_used;
    ck_assert_uint_lt(used, N);
    ck_assert_uint_eq(the_gpu()->cursor.x, 7);
    for (unsigned k = 0; k < N; k++) {
        ck_assert_uint_eq(collect(CTRLQ, head[k], rs[k], &r, sizeof(r)),
                          sizeof(r));
        ck_assert_uint_eq(le32toh(r.type), OK);
    }
    finish();
}
END_TEST

/* A one-pixel column of a 2x16384 resource whose backing is one granted
 * entry: the entry is mapped once, not once per row, and every row
 * arrives. */
START_TEST(a_narrow_transfer_maps_each_entry_once)
{
    const uint32_t ht = 16384, len = 2 * 4 * ht;
    struct virtio_gpu_mem_entry e;
    struct gpu_snapshot_info info;
    static uint8_t col[4 * 16384];
    uint64_t gpa;
    uint8_t *p;
    unsigned maps;

    start("");
    gpa = vdriver_alloc(&d, len, 4096);
    p = vdriver_ptr(&d, gpa);
    for (uint32_t k = 0; k < len; k++)
        p[k] = fb_byte(k, 4);
    e = (struct virtio_gpu_mem_entry){htole64(dma_addr(gpa, len)),
                                      htole32(len), 0};
    ck_assert_uint_eq(create(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2, ht), OK);
    ck_assert_uint_eq(attach(1, &e, 1), OK);
    maps = sim_grant_map_calls(h.sim);
    ck_assert_uint_eq(transfer(1, rect(1, 0, 1, ht), 4), OK);
    /* The request's own two, and the entry. */
    ck_assert_uint_eq(sim_grant_map_calls(h.sim),
                      maps + (vdriver_grants() ? 3 : 0));
    ck_assert_uint_eq(set_scanout(0, 1, rect(1, 0, 1, ht)), OK);
    ck_assert_int_eq(snapshot(0, col, sizeof(col), &info), 0);
    for (uint32_t y = 0; y < ht; y++)
        for (uint32_t b = 0; b < 4; b++)
            ck_assert_uint_eq(col[4 * y + b], fb_byte(4 + 8 * y + b, 4));
    finish();
}
END_TEST

/* In grant mode a queue maps at most 16384 pages of chains a loop turn:
 * 28 requests of 4 MiB of granted data each (as a guest may send, to be
 * ignored), made available at once, take two drains (the counters a user
 * reads with SIGUSR1), not one. */
START_TEST(granted_pages_a_turn_are_bounded)
{
    enum { N = 28, DATA = 4 << 20 };
    struct virtio_gpu_ctrl_hdr c = hdr(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    struct virtio_gpu_resp_display_info r;
    struct guest_buf b[3];
    uint64_t data, rs[N], drains;
    uint16_t head[N];

    if (!vdriver_grants())
        return;
    start("");
    data = vdriver_alloc(&d, DATA, 4096);
    for (unsigned k = 0; k < N; k++) {
        uint64_t cmd = vdriver_alloc(&d, sizeof(c), 8);

        memcpy(vdriver_ptr(&d, cmd), &c, sizeof(c));
        rs[k] = vdriver_alloc(&d, sizeof(r) + GUARD, 8);
        memset(vdriver_ptr(&d, rs[k]), 0xa5, sizeof(r) + GUARD);
        b[0] = (struct guest_buf){cmd, sizeof(c), false};
        b[1] = (struct guest_buf){data, DATA, false};
        b[2] = (struct guest_buf){rs[k], sizeof(r), true};
        head[k] = guest_ring_add_chain(&d.ring[CTRLQ], b, 3);
        guest_ring_publish(&d.ring[CTRLQ], head[k]);
    }
    drains = vm_device(h.vm, 0)->counters.drains;
    vdriver_kick(&d, CTRLQ);
    for (unsigned k = 0; k < N; k++)
        ck_assert_uint_eq(collect(CTRLQ, head[k], rs[k], &r, sizeof(r)),
                          sizeof(r));
    ck_assert_uint_ge(vm_device(h.vm, 0)->counters.drains - drains, 2);
    finish();
}
END_TEST

/* ---- options ---------------------------------------------------------- */

START_TEST(bad_options_are_refused_naming_the_value)
{
    expect_spec_refused("gpu,xres=0", "xres='0'");
    expect_spec_refused("gpu,xres=4096", "xres='4096'");
    expect_spec_refused("gpu,yres=wide", "yres='wide'");
    expect_spec_refused("gpu,outputs=17", "outputs='17'");
    expect_spec_refused("gpu,outputs=0", "outputs='0'");
    expect_spec_refused("gpu,max-memory=1k", "max-memory='1k'");
    /* With libvncserver or without (then naming it), every value. */
    expect_spec_refused("gpu,vnc=0", "vnc='0'");
    expect_spec_refused("gpu,vnc=65536", "vnc='65536'");
    expect_spec_refused("gpu,vnc=localhost:5900", "vnc='localhost:5900'");
    expect_spec_refused("gpu,vnc=:5900", "vnc=':5900'");
    expect_spec_refused("gpu,vnc=unix:", "vnc='unix:'");
    expect_spec_refused("gpu,vnc-password-file=/dev/null", "without vnc=");
#ifndef HAVE_LIBVNCSERVER
    expect_spec_refused("gpu,vnc=5900", "without libvncserver");
#endif
}
END_TEST

static Suite *gpu_suite(void)
{
    Suite *s = suite_create("gpu");
    TCase *tc = tcase_create("display");

    tcase_add_test(tc, config_says_the_outputs_no_capsets_and_offers_edid);
    tcase_add_test(tc, display_info_gives_each_output_its_mode);
    tcase_add_test(tc, edid_is_a_valid_block_for_each_outputs_mode);
    tcase_add_test(tc, bad_options_are_refused_naming_the_value);
    suite_add_tcase(s, tc);
    tc = tcase_create("resources");
    tcase_add_test(tc, a_frame_reaches_the_scanout_byte_for_byte);
    tcase_add_test(tc, a_damaged_rectangle_updates_only_itself);
    tcase_add_test(tc, a_fence_comes_back_with_its_answer);
    tcase_add_test(tc, every_format_linux_uses_is_taken_and_others_refused);
    tcase_add_test(tc, unref_and_detach_end_what_they_name);
    tcase_add_test(tc, a_reset_ends_every_resource);
    tcase_add_test(tc, the_cursor_is_kept_as_the_guest_sets_and_moves_it);
    tcase_add_test(tc, the_cursor_image_is_copied_when_it_is_set);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc, max_memory_bounds_the_resources);
    tcase_add_test(tc, resource_sides_are_at_most_16384);
    tcase_add_test(tc, max_memory_counts_large_pixels_in_whole_pages);
    tcase_add_test(tc, the_largest_backing_list_is_taken_without_mapping_it);
    tcase_add_test(tc, transfers_leave_the_loop_to_the_other_queue);
    tcase_add_test(tc, a_narrow_transfer_maps_each_entry_once);
    tcase_add_test(tc, granted_pages_a_turn_are_bounded);
    tcase_add_test(tc, rectangles_offsets_and_scanouts_outside_are_refused);
    tcase_add_test(tc, backing_outside_the_guest_or_the_request_is_refused);
    tcase_add_test(tc, a_large_backing_entry_is_checked_to_its_last_page);
    tcase_add_test(tc, short_requests_and_short_answer_buffers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(gpu_suite);
}
