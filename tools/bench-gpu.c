/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu benchmark: full-screen 2D updates at 1920x1080 B8G8R8X8, in
 * frames a second, against a memcpy() of the same bytes, side by side in
 * the same run:
 *   xvdm: a sim guest (sim/gpu-guest.h) has one 1920x1080 resource on
 *     scanout 0 of a gpu of that mode, backed by one entry a page, as
 *     Linux's shmem pages are when none are contiguous, and written by
 *     the guest once. A frame is what Linux's plane update sends:
 *     TRANSFER_TO_HOST_2D of the whole resource and a fenced
 *     RESOURCE_FLUSH of it, queued together, one kick, and both answers
 *     waited for (Linux waits for the flush's fence before the next page
 *     flip). xvdm maps each page of the backing and copies it, row by
 *     row, into the resource's pixels. The first transfer, which touches
 *     those pixels, is made before the clock starts.
 *   direct: memcpy() of 1920*1080*4 bytes from one buffer into another,
 *     both touched before.
 * With libvncserver, a second row: the gpu has vnc=unix:PATH, so each
 * flush also converts the frame into the VNC screen; no viewer connects.
 * Its direct side is the same memcpy(). Each round starts xvdm anew.
 * Prints each row's median fps over several rounds with their range, and
 * the ratio xvdm / direct (the median of the rounds' own ratios); each
 * side goes first in half of the rounds.
 *
 *   tools/bench-gpu [--rounds N] [--frames N]
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench-median.h"
#include "gpu-guest.h"

#define WIDTH 1920
#define HEIGHT 1080
#define FRAME_BYTES ((size_t)WIDTH * HEIGHT * GPU_BYTES_PER_PIXEL)
#define PAGE 4096
#define PAGES (FRAME_BYTES / PAGE)
#define RES_ID 1

/* Each frame's requests take some 300 bytes of the guest's 32 MiB, where
 * the backing takes a quarter. */
#define FRAMES_MAX 50000

static unsigned frames = 1000;
static uint8_t *direct_from, *direct_to;

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- direct: memcpy() ---------------------------------------------------- */

static double direct_fps(void)
{
    double t0 = now();

    for (unsigned i = 0; i < frames; i++) {
        memcpy(direct_to, direct_from, FRAME_BYTES);
        /* The copy is seen: the compiler may not drop it. */
        __asm__ volatile("" : : "r"(direct_to) : "memory");
    }
    return frames / (now() - t0);
}

/* ---- xvdm: a sim guest's frames ------------------------------------------ */

static struct harness h;
static struct vdriver d;

/* A controlq command, with data; 0, or a negative errno (-EIO: not
 * OK_NODATA). */
static int guest_cmd(const void *req, uint32_t len, const void *data,
                     uint32_t data_len)
{
    struct virtio_gpu_ctrl_hdr r;
    uint32_t used;
    int ret = gpu_guest_send(&d, GPU_QUEUE_CONTROL, req, len, data, data_len,
                             &r, sizeof(r), &used);

    if (ret)
        return ret;
    return le32toh(r.type) == VIRTIO_GPU_RESP_OK_NODATA ? 0 : -EIO;
}

/* The pages' entries, in grant mode grants of them. */
static int guest_entries(uint64_t gpa, struct virtio_gpu_mem_entry *e)
{
    for (size_t i = 0; i < PAGES; i++) {
        uint64_t addr;
        int ret = gpu_guest_dma(h.sim, gpa + i * PAGE, PAGE, &addr);

        if (ret)
            return ret;
        e[i] = (struct virtio_gpu_mem_entry){htole64(addr), htole32(PAGE), 0};
    }
    return 0;
}

/* Resource RES_ID on scanout 0, backed by one entry a page of a frame
 * the guest wrote, transferred once. */
static int guest_screen(void)
{
    static struct virtio_gpu_mem_entry e[PAGES];
    const struct virtio_gpu_rect all = rect(0, 0, WIDTH, HEIGHT);
    struct virtio_gpu_resource_create_2d c =
        create_cmd(RES_ID, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, WIDTH, HEIGHT);
    struct virtio_gpu_resource_attach_backing a = {
        hdr(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), htole32(RES_ID),
        htole32(PAGES)};
    struct virtio_gpu_set_scanout s = {hdr(VIRTIO_GPU_CMD_SET_SCANOUT), all, 0,
                                       htole32(RES_ID)};
    struct virtio_gpu_transfer_to_host_2d t = transfer_cmd(RES_ID, all, 0);
    uint64_t gpa = vdriver_alloc(&d, FRAME_BYTES, PAGE);
    int ret = gpa ? guest_entries(gpa, e) : -ENOMEM;

    if (ret)
        return ret;
    memset(vdriver_ptr(&d, gpa), 0x5a, FRAME_BYTES);
    ret = guest_cmd(&c, sizeof(c), NULL, 0);
    ret = ret ? ret : guest_cmd(&a, sizeof(a), e, sizeof(e));
    ret = ret ? ret : guest_cmd(&s, sizeof(s), NULL, 0);
    return ret ? ret : guest_cmd(&t, sizeof(t), NULL, 0);
}

/* Frame `fence`: the whole resource transferred and flushed, the flush
 * fenced, one kick, as Linux's plane update; both answers waited for.
 * 0, or a negative errno. */
static int guest_frame(uint64_t fence)
{
    const struct virtio_gpu_rect all = rect(0, 0, WIDTH, HEIGHT);
    struct virtio_gpu_transfer_to_host_2d t = transfer_cmd(RES_ID, all, 0);
    struct virtio_gpu_resource_flush f = flush_cmd(RES_ID, all);
    struct virtio_gpu_ctrl_hdr r;
    uint64_t rs[2];
    uint16_t head[2];
    uint32_t used;
    int ret = 0;

    f.hdr.flags = htole32(VIRTIO_GPU_FLAG_FENCE);
    f.hdr.fence_id = htole64(fence);
    head[0] = gpu_guest_post(&d, GPU_QUEUE_CONTROL, &t, sizeof(t), NULL, 0,
                             sizeof(r), &rs[0]);
    head[1] = gpu_guest_post(&d, GPU_QUEUE_CONTROL, &f, sizeof(f), NULL, 0,
                             sizeof(r), &rs[1]);
    vdriver_kick_if_needed(&d, GPU_QUEUE_CONTROL);
    for (unsigned i = 0; ret == 0 && i < 2; i++) {
        ret = gpu_guest_collect(&d, GPU_QUEUE_CONTROL, head[i], rs[i], &r,
                                sizeof(r), &used);
        if (ret == 0 && le32toh(r.type) != VIRTIO_GPU_RESP_OK_NODATA)
            ret = -EIO;
    }
    return ret;
}

/* xvdm with "gpu<opts>": frames a second in *fps. */
static int xvdm_fps(const char *opts, double *fps)
{
    int ret = gpu_guest_start(&h, &d, opts);
    double t0;

    if (ret)
        return ret;
    d.bare_kicks = true; /* as Linux kicks */
    ret = guest_screen();
    t0 = now();
    for (unsigned i = 0; ret == 0 && i < frames; i++)
        ret = guest_frame(i + 1);
    *fps = frames / (now() - t0);
    harness_stop(&h);
    return ret;
}

/* ---- the report ---------------------------------------------------------- */

/* Round r: xvdm then direct, or (odd r) the reverse. */
static int bench_round(const char *opts, unsigned r, double *x, double *y)
{
    int ret;

    if (r % 2)
        *y = direct_fps();
    ret = xvdm_fps(opts, x);
    if (r % 2 == 0)
        *y = direct_fps();
    return ret;
}

static int bench_row(const char *title, const char *opts, unsigned rounds)
{
    double x[BENCH_ROUNDS_MAX], y[BENCH_ROUNDS_MAX];
    struct bench_row row;

    for (unsigned r = 0; r < rounds; r++) {
        int ret = bench_round(opts, r, &x[r], &y[r]);

        if (ret) {
            fprintf(stderr, "bench-gpu: %s: %s\n", title, strerror(-ret));
            return ret;
        }
    }
    row = bench_pairs(x, y, rounds);
    printf("%-12s %8.0f %5.0f-%-5.0f %10.0f %5.0f-%-5.0f %6.2f %4.2f-%.2f\n",
           title, row.x, row.x_lo, row.x_hi, row.y, row.y_lo, row.y_hi,
           row.ratio, row.lo, row.hi);
    return 0;
}

#ifdef HAVE_LIBVNCSERVER
/* The row with vnc= on a socket in a directory of its own. */
static int bench_vnc_row(const char *mode, unsigned rounds)
{
    char dir[] = "/tmp/xvdm-bench-gpu-XXXXXX", opts[128];
    int ret;

    if (!mkdtemp(dir)) {
        ret = -errno;
        fprintf(stderr, "bench-gpu: %s: %s\n", dir, strerror(-ret));
        return ret;
    }
    snprintf(opts, sizeof(opts), "%s,vnc=unix:%s/vnc", mode, dir);
    ret = bench_row("with vnc=", opts, rounds);
    rmdir(dir); /* xvdm removed the socket with the device */
    return ret;
}
#endif

int main(int argc, char **argv)
{
    static const char mode[] = ",xres=1920,yres=1080";
    unsigned rounds = 6;
    int ret;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--frames") == 0)
            frames = (unsigned)atoi(argv[i + 1]);
    }
    if (rounds < 1 || rounds > BENCH_ROUNDS_MAX || frames < 1 ||
        frames > FRAMES_MAX) {
        fprintf(stderr, "bench-gpu: --rounds takes 1..16, --frames "
                        "1..50000\n");
        return 2;
    }
    direct_from = malloc(FRAME_BYTES);
    direct_to = malloc(FRAME_BYTES);
    if (!direct_from || !direct_to) {
        fprintf(stderr, "bench-gpu: %s\n", strerror(ENOMEM));
        return 1;
    }
    memset(direct_from, 0x5a, FRAME_BYTES);
    memset(direct_to, 0, FRAME_BYTES);
    printf("bench-gpu: %ux%u B8G8R8X8, %u frames a round, %u rounds, each "
           "side first in half of them\n",
           WIDTH, HEIGHT, frames, rounds);
    printf("%-12s %8s %11s %10s %11s %6s %9s\n", "", "xvdm fps", "range",
           "direct fps", "range", "ratio", "range");
    ret = bench_row("full screen", mode, rounds);
#ifdef HAVE_LIBVNCSERVER
    ret = ret ? ret : bench_vnc_row(mode, rounds);
#else
    printf("(no vnc= row: built without libvncserver)\n");
#endif
    free(direct_from);
    free(direct_to);
    return ret ? 1 : 0;
}
