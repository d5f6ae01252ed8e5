/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu's vnc=: a guest draws, transfers and flushes as Linux's
 * virtio-gpu does, and a libvncclient viewer (and tools/vnc-screenshot)
 * sees the frame byte for byte in each format, a flushed rectangle
 * update only itself, a scanout turned off go black; the Unix socket of
 * mode 0600, TCP on the loopback unless a host is given, the password
 * asked for and checked, the options a user can get wrong.
 */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <png.h>
#include <poll.h>
#include <rfb/rfbclient.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check-run.h"
#include "host-path.h"
#include "log-lines.h"
#include "refused-spec.h"
#include "syscall-filter.h"
#include "vnc-screenshot-run.h"
/* Last: its guest, h and d, would shadow the names of the helpers above. */
#include "gpu-guest.h"

#define XRES 64
#define YRES 48
#define VIEWER_WAIT_US 5000000

/* Where red, green and blue are in a pixel of each format, as its name
 * lists them in memory order: the test's own reading of the names. */
struct layout {
    uint32_t format;
    unsigned r, g, b;
};

static const struct layout layouts[] = {
    {VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2, 1, 0},
    {VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, 0, 1, 2},
    {VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 1, 2, 3},
    {VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, 3, 2, 1},
};

/* A rectangle of the screen, [x0, x1) x [y0, y1). */
struct box {
    int x0, y0, x1, y1;
};

static char sock_path[108];
/* The screen's size, as the last start_unix_mode() set it, and the part
 * of it the guest's mode shows (the rest black). */
static int screen_w = XRES, screen_h = YRES;
static int shown_w = XRES, shown_h = YRES;

/* vnc=unix:PATH of this test's own (named by the test's process, also
 * in a child of it), with more options after. */
static void start_unix_mode(int xres, int yres, const char *more)
{
    char opts[160];

    if (!*sock_path)
        snprintf(sock_path, sizeof(sock_path), "/tmp/xvdm-test-vnc-%d.sock",
                 (int)getpid());
    snprintf(opts, sizeof(opts), ",xres=%d,yres=%d,vnc=unix:%s%s", xres, yres,
             sock_path, more);
    screen_w = shown_w = xres;
    screen_h = shown_h = yres;
    start(opts);
}

static void start_unix(const char *more)
{
    start_unix_mode(XRES, YRES, more);
}

/* ---- a viewer --------------------------------------------------------- */

static const char *viewer_password;
/* What the viewer asks for: raw, unless a test wants another. */
static const char *viewer_encodings = "raw";
static bool viewer_done;
static struct box viewer_got; /* what the last update's rectangles cover */
static unsigned viewer_rects;  /* how many they were */

static void quiet(const char *format, ...)
{
}

/* None: NULL (libvncclient then gives up, and would not free ""). */
static char *viewer_give_password(rfbClient *c)
{
    return viewer_password ? strdup(viewer_password) : NULL;
}

static void viewer_on_rect(rfbClient *c, int x, int y, int w, int ht)
{
    struct box *b = &viewer_got;

    viewer_rects++;
    if (b->x1 == 0 || x < b->x0)
        b->x0 = x;
    if (b->x1 == 0 || y < b->y0)
        b->y0 = y;
    b->x1 = x + w > b->x1 ? x + w : b->x1;
    b->y1 = y + ht > b->y1 ? y + ht : b->y1;
}

static void viewer_on_finished(rfbClient *c)
{
    viewer_done = true;
}

/* The next update with pixels in it, whole (the server may send one of
 * pseudo-rectangles alone first, such as the screen's size). */
static void viewer_wait(rfbClient *c)
{
    while (!viewer_done || viewer_got.x1 == 0) {
        viewer_done = false;
        ck_assert_int_gt(WaitForMessage(c, VIEWER_WAIT_US), 0);
        ck_assert(HandleRFBServerMessage(c));
    }
    viewer_done = false;
}

/* A viewer of host:port (host a socket file: that socket) with its first,
 * full, update; NULL when the server refused it. Raw pixels, lossless. */
static rfbClient *viewer_open(const char *host, int port, const char *password)
{
    rfbClient *c = rfbGetClient(8, 3, 4);

    c->appData.encodingsString = viewer_encodings;
    c->appData.enableJPEG = FALSE; /* Tight without it is lossless */
    c->GetPassword = viewer_give_password;
    c->GotFrameBufferUpdate = viewer_on_rect;
    c->FinishedFrameBufferUpdate = viewer_on_finished;
    free(c->serverHost); /* rfbGetClient()'s "" */
    c->serverHost = strdup(host);
    c->serverPort = port;
    viewer_password = password;
    viewer_done = false;
    viewer_got = (struct box){0};
    if (!rfbInitClient(c, NULL, NULL))
        return NULL;
    viewer_wait(c);
    return c;
}

/* What changed since the viewer's last update. */
static void viewer_update(rfbClient *c)
{
    viewer_got = (struct box){0};
    viewer_rects = 0;
    ck_assert(SendFramebufferUpdateRequest(c, 0, 0, c->width, c->height, TRUE));
    viewer_wait(c);
}

/* libvncclient leaves the screen's pixels to the caller. */
static void viewer_close(rfbClient *c)
{
    free(c->frameBuffer);
    rfbClientCleanup(c);
}

/* ---- what the viewer must show ---------------------------------------- */

static uint8_t channel(uint32_t pixel, int shift)
{
    return (uint8_t)(pixel >> shift);
}

/* Screen pixel (x, y) in rgb: resource pixel (ox + x, oy + y) of a
 * res_w-wide resource in layout l, generation 2 inside `newer`, 1 outside
 * (fb_byte(): the guest's frame is the resource byte for byte). */
static void expected_rgb(const struct layout *l, uint32_t res_w, uint32_t ox,
                         uint32_t oy, const struct box *newer, int x, int y,
                         uint8_t rgb[3])
{
    uint64_t k = (((uint64_t)oy + y) * res_w + ox + x) * 4;
    unsigned gen = newer && x >= newer->x0 && x < newer->x1 && y >= newer->y0 &&
                           y < newer->y1
                       ? 2
                       : 1;

    rgb[0] = fb_byte(k + l->r, gen);
    rgb[1] = fb_byte(k + l->g, gen);
    rgb[2] = fb_byte(k + l->b, gen);
}

/* The viewer's screen, pixel by pixel; l NULL: black (and past what the
 * mode shows). */
static void expect_screen(const rfbClient *c, const struct layout *l,
                          uint32_t res_w, uint32_t ox, uint32_t oy,
                          const struct box *newer)
{
    ck_assert_int_eq(c->width, screen_w);
    ck_assert_int_eq(c->height, screen_h);
    for (int y = 0; y < screen_h; y++)
        for (int x = 0; x < screen_w; x++) {
            uint8_t want[3] = {0, 0, 0};
            uint32_t p;

            if (l && x < shown_w && y < shown_h)
                expected_rgb(l, res_w, ox, oy, newer, x, y, want);
            memcpy(&p, c->frameBuffer + ((size_t)y * screen_w + x) * 4, 4);
            ck_assert_msg(channel(p, c->format.redShift) == want[0] &&
                              channel(p, c->format.greenShift) == want[1] &&
                              channel(p, c->format.blueShift) == want[2],
                          "pixel (%d, %d): rgb %02x%02x%02x, not %02x%02x%02x",
                          x, y, channel(p, c->format.redShift),
                          channel(p, c->format.greenShift),
                          channel(p, c->format.blueShift), want[0], want[1],
                          want[2]);
        }
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Threads of this process now. */
static unsigned threads(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[128];
    unsigned n = 0;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %u", &n) == 1)
            break;
    fclose(f);
    return n;
}

/* ---- the frame ---------------------------------------------------------- */

START_TEST(a_viewer_gets_the_frame_byte_for_byte_in_each_format)
{
    const struct layout *l = &layouts[_i];
    unsigned before = threads();
    struct fb f;
    rfbClient *c;

    start_unix("");
    fb_resource(&f, 1, l->format, XRES, YRES);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, XRES, YRES)), OK);
    ck_assert_uint_eq(flush(1, rect(0, 0, XRES, YRES)), OK);
    c = viewer_open(sock_path, 0, NULL);
    ck_assert_ptr_nonnull(c);
    expect_screen(c, l, XRES, 0, 0, NULL);
    /* Stopped with the viewer still there: its threads, the listener's
     * and the loop's all end (joined). */
    finish();
    ck_assert_uint_eq(threads(), before);
    viewer_close(c);
}
END_TEST

/* A resource larger than the mode, shown from (10, 5): the screen is its
 * top-left 192 x 128 of that. The guest draws a new frame and transfers
 * all of it, but flushes one rectangle, partly off the screen: only its
 * part on the screen changes, and only the 64x64 tiles holding it are
 * sent. */
START_TEST(a_flushed_rectangle_updates_only_itself)
{
    const struct layout *l = &layouts[0];
    const struct box newer = {130, 95, 192, 128}, tiles = {128, 64, 192, 128};
    struct fb f;
    rfbClient *c;

    start_unix_mode(192, 128, "");
    fb_resource(&f, 1, l->format, 250, 150);
    ck_assert_uint_eq(set_scanout(0, 1, rect(10, 5, 240, 145)), OK);
    c = viewer_open(sock_path, 0, NULL);
    ck_assert_ptr_nonnull(c);
    expect_screen(c, l, 250, 10, 5, NULL);
    fb_draw(&f, 2);
    ck_assert_uint_eq(transfer(1, rect(0, 0, 250, 150), 0), OK);
    ck_assert_uint_eq(flush(1, rect(140, 100, 110, 50)), OK);
    viewer_update(c);
    ck_assert_int_ge(viewer_got.x0, tiles.x0);
    ck_assert_int_ge(viewer_got.y0, tiles.y0);
    ck_assert_int_le(viewer_got.x1, tiles.x1);
    ck_assert_int_le(viewer_got.y1, tiles.y1);
    expect_screen(c, l, 250, 10, 5, &newer);
    finish();
    viewer_close(c);
}
END_TEST

START_TEST(a_scanout_turned_off_or_unreferenced_shows_black)
{
    struct fb f;
    rfbClient *c;

    start_unix("");
    fb_resource(&f, 1, layouts[1].format, XRES, YRES);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, XRES, YRES)), OK);
    c = viewer_open(sock_path, 0, NULL);
    ck_assert_ptr_nonnull(c);
    expect_screen(c, &layouts[1], XRES, 0, 0, NULL);
    ck_assert_uint_eq(set_scanout(0, 0, rect(0, 0, 0, 0)), OK);
    viewer_update(c);
    expect_screen(c, NULL, 0, 0, 0, NULL);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, XRES, YRES)), OK);
    viewer_update(c);
    expect_screen(c, &layouts[1], XRES, 0, 0, NULL);
    ck_assert_uint_eq(unref(1), OK);
    viewer_update(c);
    expect_screen(c, NULL, 0, 0, 0, NULL);
    finish();
    viewer_close(c);
}
END_TEST

/* Each SET_SCANOUT redraws the whole screen, black where nothing is
 * shown, and that costs the drain as copying does: six that turn a
 * 4095x4095 output (just under 64 MiB) off, in one kick, take three
 * drains or more (two pass a drain's 64 MiB), not one (the counters a
 * user reads with SIGUSR1). */
START_TEST(redrawing_the_screen_counts_against_the_drain)
{
    enum { N = 6 };
    struct virtio_gpu_set_scanout c = {hdr(VIRTIO_GPU_CMD_SET_SCANOUT),
                                       rect(0, 0, 0, 0), 0, 0};
    struct virtio_gpu_ctrl_hdr r;
    uint64_t rs[N], drains;
    uint16_t head[N];

    start_unix_mode(4095, 4095, "");
    for (unsigned k = 0; k < N; k++)
        head[k] = post(CTRLQ, &c, sizeof(c), NULL, 0, sizeof(r), &rs[k]);
    drains = vm_device(h.vm, 0)->counters.drains;
    vdriver_kick(&d, CTRLQ);
    for (unsigned k = 0; k < N; k++) {
        ck_assert_uint_eq(collect(CTRLQ, head[k], rs[k], &r, sizeof(r)),
                          sizeof(r));
        ck_assert_uint_eq(le32toh(r.type), OK);
    }
    ck_assert_uint_ge(vm_device(h.vm, 0)->counters.drains - drains, N / 2);
    finish();
}
END_TEST

/* Flush cell k of a checkerboard on a side-wide screen: 1x1 each. */
static void flush_cells(unsigned first, unsigned n, unsigned side)
{
    struct virtio_gpu_resource_flush c[GPU_QUEUE_SIZE / 2];
    struct virtio_gpu_ctrl_hdr r;
    uint64_t rs[GPU_QUEUE_SIZE / 2];
    uint16_t head[GPU_QUEUE_SIZE / 2];

    for (unsigned k = 0; k < n; k++) {
        unsigned cell = 2 * (first + k), y = cell / side;

        c[k] = flush_cmd(1, rect(cell % side + (y & 1), y, 1, 1));
        head[k] = post(CTRLQ, &c[k], sizeof(c[k]), NULL, 0, sizeof(r), &rs[k]);
    }
    vdriver_kick(&d, CTRLQ);
    for (unsigned k = 0; k < n; k++) {
        ck_assert_uint_eq(collect(CTRLQ, head[k], rs[k], &r, sizeof(r)),
                          sizeof(r));
        ck_assert_uint_eq(le32toh(r.type), OK);
    }
}

/* A guest flushing 70000 single pixels of a checkerboard does not split
 * what a viewer is sent next into as many rectangles (each some bytes on
 * the wire and a piece of the region libvncserver keeps per viewer, and
 * past 65535 more than RFB's count without LastRect): the update comes
 * in whole 64x64 tiles, the screen as it is. */
START_TEST(single_pixel_flushes_reach_a_viewer_in_whole_tiles)
{
    enum { SIDE = 512, CELLS = 70000, BATCH = GPU_QUEUE_SIZE / 2 };
    const struct layout *l = &layouts[0];
    struct fb f;
    rfbClient *c;

    start_unix_mode(SIDE, SIDE, "");
    fb_resource(&f, 1, l->format, SIDE, SIDE);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, SIDE, SIDE)), OK);
    viewer_encodings = "tight";
    c = viewer_open(sock_path, 0, NULL);
    viewer_encodings = "raw";
    ck_assert_ptr_nonnull(c);
    for (unsigned k = 0; k < CELLS; k += BATCH)
        flush_cells(k, CELLS - k < BATCH ? CELLS - k : BATCH, SIDE);
    viewer_update(c);
    ck_assert_uint_le(viewer_rects, (SIDE / 64) * (SIDE / 64));
    expect_screen(c, l, SIDE, 0, 0, NULL);
    finish();
    viewer_close(c);
}
END_TEST

/* ---- resizing ---------------------------------------------------------- */

#define CFG_AT(field) offsetof(struct virtio_gpu_config, field)

/* Output 0's mode in the guest's display info. */
static void expect_mode(uint32_t w, uint32_t ht)
{
    struct virtio_gpu_ctrl_hdr c = hdr(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
    struct virtio_gpu_resp_display_info r;

    ck_assert_uint_eq(gpu_send(CTRLQ, &c, sizeof(c), NULL, 0, &r, sizeof(r)),
                      sizeof(r));
    ck_assert_uint_eq(le32toh(r.pmodes[0].enabled), 1);
    ck_assert_uint_eq(le32toh(r.pmodes[0].r.width), w);
    ck_assert_uint_eq(le32toh(r.pmodes[0].r.height), ht);
}

/* Whether the device says the displays changed within wait_ms, as
 * Linux's virtio-gpu reads it on a config-change interrupt; cleared as
 * it clears it. */
static bool display_event(unsigned wait_ms)
{
    for (unsigned ms = 0; ms <= wait_ms; ms += 10) {
        if (vdriver_read(&d, CFG + CFG_AT(events_read)) &
            VIRTIO_GPU_EVENT_DISPLAY) {
            vdriver_write(&d, CFG + CFG_AT(events_clear),
                          VIRTIO_GPU_EVENT_DISPLAY);
            ck_assert_uint_eq(vdriver_read(&d, CFG + CFG_AT(events_read)), 0);
            return true;
        }
        usleep(10000);
    }
    return false;
}

/* Until the viewer's screen is w x ht. */
static void viewer_sized(rfbClient *c, int w, int ht)
{
    for (unsigned n = 0; n < 100 && (c->width != w || c->height != ht); n++)
        if (WaitForMessage(c, 100000) > 0)
            ck_assert(HandleRFBServerMessage(c));
    ck_assert_int_eq(c->width, w);
    ck_assert_int_eq(c->height, ht);
}

/* A viewer asks for a smaller screen (RFB's SetDesktopSize, TigerVNC's
 * "resize remote session"): the guest is told the displays changed and
 * finds the new mode in its display info; the viewer's screen keeps its
 * size and shows the mode at its top left, black around it, and then a
 * frame the guest draws at the new mode byte for byte. A size past the
 * mode given at start is refused: the mode stays. */
START_TEST(a_viewer_resizes_the_guests_screen)
{
    const struct layout *l = &layouts[0];
    struct fb f, f2;
    rfbClient *c;

    start_unix_mode(128, 96, "");
    fb_resource(&f, 1, l->format, 128, 96);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, 128, 96)), OK);
    c = viewer_open(sock_path, 0, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert(!display_event(0));
    ck_assert(SendExtDesktopSize(c, 96, 64));
    ck_assert(display_event(5000));
    expect_mode(96, 64);
    shown_w = 96;
    shown_h = 64;
    /* What was shown, cut to the new mode, until the guest draws anew. */
    viewer_update(c);
    expect_screen(c, l, 128, 0, 0, NULL);
    fb_resource(&f2, 2, l->format, 96, 64);
    ck_assert_uint_eq(set_scanout(0, 2, rect(0, 0, 96, 64)), OK);
    ck_assert_uint_eq(flush(2, rect(0, 0, 96, 64)), OK);
    viewer_update(c);
    expect_screen(c, l, 96, 0, 0, NULL);
    usleep(300 * 1000); /* past the quarter second between two */
    ck_assert(SendExtDesktopSize(c, 200, 64));
    ck_assert(!display_event(500));
    expect_mode(96, 64);
    finish();
    viewer_close(c);
}
END_TEST


/* A viewer scales its screen down (UltraVNC's SetScale: a 64 x 48 copy
 * of 128 x 96), then asks for a mode of 128 x 32. Were the screen made
 * that small, libvncserver's scaled copy would be taller than it, and
 * its next update would divide by zero. */
START_TEST(a_scaled_viewer_asking_for_a_smaller_mode_crashes_nothing)
{
    const struct layout *l = &layouts[0];
    char scale[4] = {rfbSetScale, 2, 0, 0};
    struct fb f;
    rfbClient *c;

    start_unix_mode(128, 96, "");
    fb_resource(&f, 1, l->format, 128, 96);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, 128, 96)), OK);
    c = viewer_open(sock_path, 0, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert(WriteToRFBServer(c, scale, sizeof(scale)));
    ck_assert(SendFramebufferUpdateRequest(c, 0, 0, 64, 48, TRUE));
    viewer_sized(c, 64, 48);
    ck_assert(SendExtDesktopSize(c, 128, 32));
    ck_assert(display_event(5000));
    expect_mode(128, 32);
    ck_assert_uint_eq(flush(1, rect(0, 0, 128, 32)), OK);
    finish();
    viewer_close(c);
}
END_TEST

/* A viewer that does not read has an update of two 1024 x 384
 * rectangles under way, raw; it switches to RRE and asks for a mode of
 * 16 x 16. Were the screen made that small, RRE would encode the second
 * rectangle into a buffer sized for the new screen, overrunning it. */
START_TEST(an_update_under_way_outlives_a_smaller_mode)
{
    char top[10] = {rfbFramebufferUpdateRequest, 0, 0, 0, 0, 0, 4, 0, 1, 0x80};
    char bottom[10] = {rfbFramebufferUpdateRequest, 0, 0, 0, 1, 0x90, 4, 0, 1, 0x70};
    char rre[8] = {rfbSetEncodings, 0, 0, 1, 0, 0, 0, rfbEncodingRRE};
    char sink[65536];
    rfbClient *c;
    double until;

    start_unix_mode(1024, 768, "");
    c = viewer_open(sock_path, 0, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert(WriteToRFBServer(c, top, sizeof(top)));
    ck_assert(WriteToRFBServer(c, bottom, sizeof(bottom)));
    usleep(300 * 1000); /* its thread blocks writing the first */
    ck_assert(WriteToRFBServer(c, rre, sizeof(rre)));
    ck_assert(SendExtDesktopSize(c, 16, 16));
    ck_assert(display_event(5000));
    usleep(200 * 1000);
    until = now_s() + 3;
    while (now_s() < until) {
        struct pollfd p = {.fd = c->sock, .events = POLLIN};

        if (poll(&p, 1, 100) > 0 && read(c->sock, sink, sizeof(sink)) <= 0)
            break;
    }
    expect_mode(16, 16);
    finish();
    viewer_close(c);
}
END_TEST

/* ---- where it listens ------------------------------------------------- */

START_TEST(the_unix_socket_is_the_users_alone_and_goes_with_the_device)
{
    struct stat st;

    start_unix("");
    ck_assert_int_eq(stat(sock_path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    finish();
    ck_assert_int_ne(stat(sock_path, &st), 0);
}
END_TEST

/* Under --chroot DIR, PATH must be in DIR (xvdm removes it at the end,
 * from inside). */
START_TEST(under_chroot_the_socket_must_be_inside_the_directory)
{
    struct stat st;

    host_path_set_root("/srv/xvdm-jail");
    expect_spec_refused("gpu,vnc=unix:/tmp/xvdm-test-vnc.sock",
                        "vnc='unix:/tmp/xvdm-test-vnc.sock'");
    host_path_set_root("/tmp");
    start_unix("");
    ck_assert_int_eq(stat(sock_path, &st), 0);
    finish();
    ck_assert_int_ne(stat(sock_path, &st), 0);
    host_path_set_root(NULL);
}
END_TEST

/* A TCP port free now (nothing else here takes it meanwhile). */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* The TCP sockets this process listens on (IPv4 or IPv6): how many, and
 * the last one's address in at, as "HOST:PORT". */
static unsigned tcp_listening(char *at, size_t size)
{
    unsigned n = 0;

    for (int fd = 0; fd < 1024; fd++) {
        struct sockaddr_in6 sa;
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
        socklen_t len = sizeof(sa), on_len = sizeof(int);
        char host[INET6_ADDRSTRLEN];
        int on = 0;

        if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
            (sa.sin6_family != AF_INET && sa.sin6_family != AF_INET6) ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &on_len) != 0 || !on)
            continue;
        n++;
        if (sa.sin6_family == AF_INET)
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        else
            inet_ntop(AF_INET6, &sa.sin6_addr, host, sizeof(host));
        snprintf(at, size, "%s:%u", host, ntohs(sa.sin6_port));
    }
    return n;
}

START_TEST(tcp_listens_on_the_loopback_unless_a_host_is_given)
{
    int port = free_port();
    char opts[80], at[64] = "", want[64];
    rfbClient *c;

    snprintf(opts, sizeof(opts), ",xres=%d,yres=%d,vnc=%d", XRES, YRES, port);
    start(opts);
    ck_assert_uint_eq(tcp_listening(at, sizeof(at)), 1);
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    ck_assert_str_eq(at, want);
    c = viewer_open("127.0.0.1", port, NULL);
    ck_assert_ptr_nonnull(c);
    expect_screen(c, NULL, 0, 0, 0, NULL);
    finish();
    viewer_close(c);
    snprintf(opts, sizeof(opts), ",vnc=0.0.0.0:%d", port);
    start(opts);
    ck_assert_uint_eq(tcp_listening(at, sizeof(at)), 1);
    snprintf(want, sizeof(want), "0.0.0.0:%d", port);
    ck_assert_str_eq(at, want);
    finish();
}
END_TEST

/* One viewer past GPU_VNC_VIEWERS_MAX is refused; one more is taken once
 * one has left (the server sees it go a moment later). */
START_TEST(viewers_at_once_are_bounded)
{
    rfbClient *c[GPU_VNC_VIEWERS_MAX + 1] = {0};

    start_unix("");
    for (unsigned i = 0; i < GPU_VNC_VIEWERS_MAX; i++) {
        c[i] = viewer_open(sock_path, 0, NULL);
        ck_assert_ptr_nonnull(c[i]);
    }
    ck_assert_ptr_null(viewer_open(sock_path, 0, NULL));
    viewer_close(c[0]);
    c[0] = NULL;
    for (unsigned tries = 0; !c[0] && tries < 100; tries++) {
        usleep(10000);
        c[0] = viewer_open(sock_path, 0, NULL);
    }
    ck_assert_ptr_nonnull(c[0]);
    finish();
    for (unsigned i = 0; i < GPU_VNC_VIEWERS_MAX; i++)
        viewer_close(c[i]);
}
END_TEST

/* --user drops the privileges once the devices are made, and glibc's
 * setuid() then signals every thread of the process (SIGSETXID, which
 * interrupts a select()): viewers are still taken after it. */
START_TEST(a_viewer_is_served_after_setuid)
{
    rfbClient *c;

    start_unix("");
    ck_assert_int_eq(setuid(getuid()), 0);
    c = viewer_open(sock_path, 0, NULL);
    ck_assert_ptr_nonnull(c);
    expect_screen(c, NULL, 0, 0, 0, NULL);
    finish();
    viewer_close(c);
}
END_TEST

/* ---- the password ----------------------------------------------------- */

static char password_file[64];

/* A password file whose first line is `line` (then a second one). */
static void make_password_file(const char *line)
{
    FILE *f;

    snprintf(password_file, sizeof(password_file), "/tmp/xvdm-test-vnc-%d.pw",
             (int)getpid());
    f = fopen(password_file, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\nnot this one\n", line);
    fclose(f);
}

/* A wrong password is refused after a second (guessing goes at most a
 * viewer's place a second). */
START_TEST(a_password_is_asked_for_and_checked)
{
    char more[96];
    rfbClient *c;
    double t;

    make_password_file("guest-eyes");
    snprintf(more, sizeof(more), ",vnc-password-file=%s", password_file);
    start_unix(more);
    ck_assert_ptr_null(viewer_open(sock_path, 0, NULL));
    t = now_s();
    ck_assert_ptr_null(viewer_open(sock_path, 0, "not-it"));
    ck_assert_double_ge(now_s() - t, 1.0);
    ck_assert_ptr_null(viewer_open(sock_path, 0, "not this one"));
    c = viewer_open(sock_path, 0, "guest-eyes");
    ck_assert_ptr_nonnull(c);
    expect_screen(c, NULL, 0, 0, 0, NULL);
    finish();
    viewer_close(c);
    unlink(password_file);
}
END_TEST

/* ---- tools/vnc-screenshot ---------------------------------------------- */

/* tools/vnc-screenshot on ADDR, writing FILE, with password file PW
 * (or none); its status. */
static int screenshot(const char *addr, const char *file, const char *pw)
{
    char *args[] = {(char *)addr, (char *)file, (char *)pw, NULL};

    return vnc_screenshot_run(args);
}

/* The PNG's pixels as RGB, XRES x YRES of them. */
static uint8_t *png_rgb(const char *path)
{
    png_image img = {.version = PNG_IMAGE_VERSION};
    uint8_t *rgb;

    ck_assert(png_image_begin_read_from_file(&img, path));
    ck_assert_uint_eq(img.width, XRES);
    ck_assert_uint_eq(img.height, YRES);
    img.format = PNG_FORMAT_RGB;
    rgb = malloc(PNG_IMAGE_SIZE(img));
    ck_assert_ptr_nonnull(rgb);
    ck_assert(png_image_finish_read(&img, NULL, rgb, 0, NULL));
    return rgb;
}

/* The PPM vnc-screenshot writes for FILE.ppm: its header, then RGB. */
static uint8_t *ppm_rgb(const char *path)
{
    char header[32];
    FILE *f = fopen(path, "re");
    size_t len = (size_t)snprintf(header, sizeof(header), "P6\n%d %d\n255\n",
                                  XRES, YRES);
    uint8_t *buf = malloc(len + XRES * YRES * 3 + 1);

    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(buf);
    /* One byte more than there should be: a longer file fails. */
    ck_assert_uint_eq(fread(buf, 1, len + XRES * YRES * 3 + 1, f),
                      len + XRES * YRES * 3);
    fclose(f);
    ck_assert_mem_eq(buf, header, len);
    memmove(buf, buf + len, XRES * YRES * 3);
    return buf;
}

static void expect_rgb(const struct layout *l, const uint8_t *rgb)
{
    for (int y = 0; y < YRES; y++)
        for (int x = 0; x < XRES; x++) {
            uint8_t want[3];

            expected_rgb(l, XRES, 0, 0, NULL, x, y, want);
            ck_assert_mem_eq(rgb + ((size_t)y * XRES + x) * 3, want, 3);
        }
}

/* As a PNG, and as a PPM when the file's name ends in .ppm. */
START_TEST(the_screenshot_tool_writes_the_frame_as_a_png_or_ppm)
{
    const struct layout *l = &layouts[2];
    char addr[120], png[64], ppm[64], more[96];
    struct fb f;
    uint8_t *rgb;

    make_password_file("sesame");
    snprintf(more, sizeof(more), ",vnc-password-file=%s", password_file);
    start_unix(more);
    fb_resource(&f, 1, l->format, XRES, YRES);
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, XRES, YRES)), OK);
    snprintf(addr, sizeof(addr), "unix:%s", sock_path);
    snprintf(png, sizeof(png), "/tmp/xvdm-test-vnc-%d.png", (int)getpid());
    snprintf(ppm, sizeof(ppm), "/tmp/xvdm-test-vnc-%d.ppm", (int)getpid());
    ck_assert_int_ne(screenshot(addr, png, NULL), 0);
    ck_assert_int_eq(screenshot(addr, png, password_file), 0);
    rgb = png_rgb(png);
    expect_rgb(l, rgb);
    free(rgb);
    ck_assert_int_eq(screenshot(addr, ppm, password_file), 0);
    rgb = ppm_rgb(ppm);
    expect_rgb(l, rgb);
    free(rgb);
    finish();
    unlink(png);
    unlink(ppm);
    unlink(password_file);
}
END_TEST

/* ---- under --seccomp ---------------------------------------------------- */

/* Not under ASan: its start of a thread reads /proc, which the filter
 * forbids (the plain builds run it). */
#if defined(HAVE_LIBSECCOMP) && !defined(__SANITIZE_ADDRESS__)
#define FILTERED_VIEW
/* A viewer served, with a password, once --seccomp's filter is in: the
 * server's threads (a new pair for the viewer) live with it. In a process
 * of its own (Check's bookkeeping needs more than xvdm); 0 when the
 * viewer saw the frame, else which step failed. */
static int filtered_view(const void *unused)
{
    const struct layout *l = &layouts[0];
    char more[96];
    struct fb f;
    rfbClient *c;

    snprintf(more, sizeof(more), ",vnc-password-file=%s", password_file);
    start_unix(more);
    fb_resource(&f, 1, l->format, XRES, YRES);
    if (syscall_filter_install())
        return 1;
    ck_assert_uint_eq(set_scanout(0, 1, rect(0, 0, XRES, YRES)), OK);
    c = viewer_open(sock_path, 0, "filtered");
    if (!c)
        return 2;
    expect_screen(c, l, XRES, 0, 0, NULL);
    /* A thread in a namespace of its own is refused by the filter
     * (EPERM), not by the kernel (EINVAL: no CLONE_SIGHAND). */
    if (syscall(SYS_clone, CLONE_THREAD | CLONE_NEWNET, NULL, NULL, NULL,
                NULL) != -1 ||
        errno != EPERM)
        return 3;
    finish();
    viewer_close(c);
    return 0;
}

/* The files are the test's to remove: the filter forbids unlink(). */
START_TEST(a_viewer_is_served_under_the_syscall_filter)
{
    snprintf(sock_path, sizeof(sock_path), "/tmp/xvdm-test-vnc-%d.sock",
             (int)getpid());
    make_password_file("filtered");
    check_in_child("a viewer under --seccomp", filtered_view, NULL);
    unlink(sock_path);
    unlink(password_file);
}
END_TEST
#endif

/* ---- viewers that do not play along ------------------------------------ */

/* A connection to the Unix socket that will say what the test sends. */
static int raw_viewer(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Seconds until the server closes fd (what it sends read and dropped);
 * -1 if it has not within `most`. */
static double closed_within(int fd, double most)
{
    double start = now_s();
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[64];

    while (now_s() - start < most) {
        if (poll(&p, 1, 100) == 1 && read(fd, buf, sizeof(buf)) <= 0)
            return now_s() - start;
    }
    return -1;
}

/* Viewers that connect and say nothing take every place, but only for
 * the handshake's 10 s (and the 2 s between the loop's looks): then they
 * are let go, and a viewer gets in again. */
START_TEST(viewers_that_say_nothing_are_let_go)
{
    int fd[GPU_VNC_VIEWERS_MAX];
    rfbClient *c = NULL;
    double took;

    start_unix("");
    for (unsigned i = 0; i < GPU_VNC_VIEWERS_MAX; i++)
        fd[i] = raw_viewer();
    ck_assert_ptr_null(viewer_open(sock_path, 0, NULL));
    for (unsigned i = 0; i < GPU_VNC_VIEWERS_MAX; i++) {
        took = closed_within(fd[i], 20);
        ck_assert_msg(took >= 0, "a silent viewer is still served after 20 s");
        close(fd[i]);
    }
    for (unsigned tries = 0; !c && tries < 100; tries++) {
        usleep(10000);
        c = viewer_open(sock_path, 0, NULL);
    }
    ck_assert_ptr_nonnull(c);
    finish();
    viewer_close(c);
}
END_TEST

/* 30 viewers that send a version that is not RFB's: libvncserver's line
 * for each goes to xvdm's log, 10 at most in its 10 s. */
static void bad_versions(void)
{
    for (unsigned i = 0; i < 30; i++) {
        int fd = raw_viewer();

        ck_assert_int_eq(write(fd, "XYZ 000.000\n", 12), 12);
        ck_assert_double_ge(closed_within(fd, 10), 0);
        close(fd);
    }
}

START_TEST(libvncservers_error_lines_are_logged_rate_limited)
{
    unsigned lines;

    start_unix("");
    lines = log_lines_during(bad_versions, "gpu0: libvncserver: ");
    ck_assert_uint_ge(lines, 1);
    ck_assert_uint_le(lines, 10);
    finish();
}
END_TEST

/* libvncserver select()s on every viewer's socket: the process's open
 * descriptors are brought down to what select() can watch. */
START_TEST(descriptors_stay_below_what_libvncserver_can_watch)
{
    struct rlimit was, rl;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &was), 0);
    rl = was;
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    ck_assert_uint_gt(rl.rlim_cur, FD_SETSIZE);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    start_unix("");
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_uint_eq(rl.rlim_cur, FD_SETSIZE);
    finish();
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &was), 0);
}
END_TEST

/* libvncserver keeps one list of viewers for all its screens: a second
 * gpu with vnc= in one xvdm is refused, naming its address. */
static void start_two_screens(void)
{
    static struct harness two;
    char a[160], b[160];
    const char *specs[] = {a, b};

    snprintf(a, sizeof(a), "gpu,vnc=unix:%s", sock_path);
    snprintf(b, sizeof(b), "gpu,vnc=unix:%s.2", sock_path);
    ck_assert_int_ne(harness_start(&two, specs, 2), 0);
}

START_TEST(one_vnc_server_a_process)
{
    snprintf(sock_path, sizeof(sock_path), "/tmp/xvdm-test-vnc-%d.sock",
             (int)getpid());
    ck_assert_uint_eq(
        log_lines_during(start_two_screens, "another gpu device of this xvdm "
                                            "already has vnc="),
        1);
}
END_TEST

/* ---- options ---------------------------------------------------------- */

START_TEST(bad_vnc_options_are_refused_naming_the_value)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof(sa);
    char spec[64];

    expect_spec_refused("gpu,vnc=unix:/nonexistent/vnc.sock",
                        "vnc='unix:/nonexistent/vnc.sock'");
    expect_spec_refused("gpu,vnc=5900,vnc-password-file=/nonexistent",
                        "vnc-password-file='/nonexistent'");
    expect_spec_refused("gpu,vnc=5900,vnc-password-file=/dev/null",
                        "vnc-password-file='/dev/null'");
    expect_spec_refused("gpu,vnc=127.0.0.1:5900x", "vnc='127.0.0.1:5900x'");
    expect_spec_refused("gpu,vnc=[::1]:5900", "vnc='[::1]:5900'");
    /* A port something else listens on. */
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(spec, sizeof(spec), "gpu,vnc=%d", ntohs(sa.sin_port));
    expect_spec_refused(spec, spec + strlen("gpu,"));
    close(fd);
}
END_TEST

static Suite *gpu_vnc_suite(void)
{
    Suite *s = suite_create("gpu-vnc");
    TCase *tc = tcase_create("frame");

    tcase_add_loop_test(tc,
                        a_viewer_gets_the_frame_byte_for_byte_in_each_format, 0,
                        sizeof(layouts) / sizeof(*layouts));
    tcase_add_test(tc, a_flushed_rectangle_updates_only_itself);
    tcase_add_test(tc, a_scanout_turned_off_or_unreferenced_shows_black);
    tcase_add_test(tc, redrawing_the_screen_counts_against_the_drain);
    tcase_add_test(tc,
                   single_pixel_flushes_reach_a_viewer_in_whole_tiles);
    tcase_add_test(tc, a_viewer_resizes_the_guests_screen);
    tcase_add_test(tc, a_scaled_viewer_asking_for_a_smaller_mode_crashes_nothing);
    tcase_add_test(tc, an_update_under_way_outlives_a_smaller_mode);
    tcase_add_test(tc, the_screenshot_tool_writes_the_frame_as_a_png_or_ppm);
    suite_add_tcase(s, tc);
    tc = tcase_create("access");
    tcase_add_test(tc,
                   the_unix_socket_is_the_users_alone_and_goes_with_the_device);
    tcase_add_test(tc, tcp_listens_on_the_loopback_unless_a_host_is_given);
    tcase_add_test(tc, under_chroot_the_socket_must_be_inside_the_directory);
    tcase_add_test(tc, viewers_at_once_are_bounded);
    tcase_add_test(tc, viewers_that_say_nothing_are_let_go);
    tcase_add_test(tc, libvncservers_error_lines_are_logged_rate_limited);
    tcase_add_test(tc, descriptors_stay_below_what_libvncserver_can_watch);
    tcase_add_test(tc, one_vnc_server_a_process);
    tcase_add_test(tc, a_viewer_is_served_after_setuid);
    tcase_add_test(tc, a_password_is_asked_for_and_checked);
    tcase_add_test(tc, bad_vnc_options_are_refused_naming_the_value);
#ifdef FILTERED_VIEW
    tcase_add_test(tc, a_viewer_is_served_under_the_syscall_filter);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    rfbClientLog = quiet;
    rfbClientErr = quiet;
    return check_run_all_modes(gpu_vnc_suite);
}
