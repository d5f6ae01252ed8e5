/* SPDX-License-Identifier: MIT */
/*
 * vnc='s keyboard and pointer, for the guest: what the viewers type and
 * point at, as Linux input events (struct input_event, as an evdev node
 * gives them), in two pipes the device offers to the instance's input
 * devices (xvdm_dev_offer_fd(): "gpu0.keyboard" and "gpu0.tablet", taken
 * by `input,vnc=gpu0.keyboard`). The pointer is a tablet: a viewer sends
 * where it is on the screen, not how far it moved.
 *
 * The viewers' threads write, and never wait: each report (its events
 * and a SYN_REPORT) is far below PIPE_BUF, so the pipe takes it whole or
 * not at all, and reports from two viewers never mix. A pipe holds 64 KiB
 * (some 2700 events) at most: when the guest takes none (no input device
 * reads it, or the guest's driver posts no buffers) what comes next is
 * dropped, said at most once a minute; but the last GPU_VNC_LETGO_ROOM
 * bytes are kept for letting go of what is down, so a key the guest was
 * told is pressed is always told released.
 *
 * A viewer that goes with keys or buttons down (its window closed, its
 * link lost) would leave them down in the guest, whose kernel repeats a
 * held key: when a viewer goes, whatever the guest was told is down is
 * let go. Viewers share one keyboard and tablet, so that is every
 * viewer's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../common/clock-now.h"
#include "../common/vnc-input.h"
#include "gpu.h"

/* Most events one report has: both axes, three buttons, a wheel, SYN. */
#define GPU_VNC_REPORT_MAX 8
/* A screen size a viewer asks for is taken at most this often: each
 * redraws the screen and has the guest ask for its displays again. */
#define GPU_VNC_RESIZE_EVERY_MS 250
/* Sizes taken over the device's life: libvncserver 0.9.14 leaks 24 bytes
 * for each (an iterator of its SetDesktopSize handling, never released),
 * so this bounds that at 96 KiB; a person resizes far less. */
#define GPU_VNC_RESIZES_MAX 4096
#define GPU_VNC_FULL_SAID_MS 60000
/* Room kept in each pipe for letting go: presses and moves are dropped
 * before the pipe is that full, so the release of every key (at most
 * VNC_INPUT_KEY_LAST) or button down always fits, a report each. */
#define GPU_VNC_LETGO_ROOM                                                     \
    ((VNC_INPUT_KEY_LAST + 1) * 2 * sizeof(struct input_event))

struct gpu_vnc_input {
    struct gpu *g;
    struct xvdm_dev *dev;
    uint32_t xres, yres; /* at create: the largest size a viewer may ask */
    atomic_uint mode;    /* now: width << 16 | height */
    /* The size a viewer asked for last (width << 16 | height; 0: none),
     * when, and the eventfd that tells the loop. */
    atomic_uint asked;
    uint64_t asked_ms; /* under lock */
    unsigned resizes;  /* taken so far, under lock */
    int asked_fd;
    struct gpu_vnc_pipe {
        int fd[2]; /* read end (offered), write end */
        int size;  /* F_GETPIPE_SZ */
        const char *what;
    } keyboard, tablet;
    /* What the guest was last told is down: the keys (by code) and the
     * tablet's buttons; and the order of reports on each pipe. Taken
     * while a report is made and written. */
    pthread_mutex_t lock;
    uint64_t keys[(VNC_INPUT_KEY_LAST + 64) / 64];
    int buttons;
    uint64_t full_said_ms; /* when a full pipe was last said */
};

struct gpu_vnc_report {
    struct input_event ev[GPU_VNC_REPORT_MAX];
    unsigned n;
};

static void gpu_vnc_add(struct gpu_vnc_report *r, uint16_t type,
                        uint16_t code, int32_t value)
{
    r->ev[r->n++] = (struct input_event){
        .type = type,
        .code = code,
        .value = value,
    };
}

/* Whether report r fits in pipe p now; a report that lets nothing go
 * leaves GPU_VNC_LETGO_ROOM free. */
static bool gpu_vnc_fits(const struct gpu_vnc_pipe *p,
                         const struct gpu_vnc_report *r, bool letting_go)
{
    int queued;

    if (letting_go)
        return true;
    if (ioctl(p->fd[0], FIONREAD, &queued) < 0)
        return false;
    return (size_t)queued + r->n * sizeof(r->ev[0]) + GPU_VNC_LETGO_ROOM <=
           (size_t)p->size;
}

/* The report, with its SYN_REPORT, into the pipe, whole or not at all;
 * in->lock held. false: dropped (the pipe full), which is said at most
 * once a minute (a guest taking a report now and then would otherwise
 * have it said for each). */
static bool gpu_vnc_write(struct gpu_vnc_input *in, const struct gpu_vnc_pipe *p,
                          struct gpu_vnc_report *r, bool letting_go)
{
    const char *what = p->what;
    uint64_t now;

    gpu_vnc_add(r, EV_SYN, SYN_REPORT, 0);
    errno = EAGAIN;
    if (gpu_vnc_fits(p, r, letting_go) &&
        write(p->fd[1], r->ev, r->n * sizeof(r->ev[0])) > 0)
        return true;
    now = clock_now_ms();
    if (errno == EAGAIN && in->dev &&
        (!in->full_said_ms || now - in->full_said_ms >= GPU_VNC_FULL_SAID_MS)) {
        in->full_said_ms = now;
        xvdm_dev_log(in->dev, XVDM_LOG_WARN,
                     "%s.%s is full: VNC viewers' input is dropped until "
                     "the guest takes some (through an input device with "
                     "vnc=%s.%s)",
                     xvdm_dev_name(in->dev), what, xvdm_dev_name(in->dev),
                     what);
    }
    return false;
}

/* Key `code` down or up, told the guest; in->lock held. It is down for
 * the guest from when its press got into the pipe until its release
 * does; a key the guest was not told is down is not let go. */
static void gpu_vnc_key_report(struct gpu_vnc_input *in, uint16_t code,
                               bool down)
{
    struct gpu_vnc_report r = {.n = 0};
    uint64_t bit = 1ull << (code % 64);

    if (!down && !(in->keys[code / 64] & bit))
        return;
    gpu_vnc_add(&r, EV_KEY, code, down);
    if (!gpu_vnc_write(in, &in->keyboard, &r, !down))
        return;
    in->keys[code / 64] = down ? in->keys[code / 64] | bit
                               : in->keys[code / 64] & ~bit;
}

/* A viewer's thread: a key pressed or let go. Symbols no US key gives
 * are not the guest's. */
static void gpu_vnc_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
    struct gpu_vnc_input *in = gpu_vnc_viewers_data(cl);
    uint16_t code = gpu_vnc_key_code(keysym);

    if (!code)
        return;
    gpu_vnc_viewer_typed(cl);
    pthread_mutex_lock(&in->lock);
    gpu_vnc_key_report(in, code, down);
    pthread_mutex_unlock(&in->lock);
}

/* A screen coordinate (a viewer may send any up to 65535) on the axis. */
static int32_t gpu_vnc_abs(int at, uint32_t side)
{
    uint64_t v = at < 0 ? 0 : (uint64_t)at;

    if (side < 2)
        return 0;
    if (v > side - 1)
        v = side - 1;
    return (int32_t)(v * VNC_INPUT_ABS_MAX / (side - 1));
}

/* RFB's button mask (RFC 6143 §7.5.5): bits 0-2 the left, middle and
 * right buttons, 3-4 the wheel up and down, 5-6 left and right; a wheel
 * "button" pressed is one notch. */
static void gpu_vnc_buttons(struct gpu_vnc_report *r, int was, int mask)
{
    static const uint16_t buttons[] = {BTN_LEFT, BTN_MIDDLE, BTN_RIGHT};
    static const struct {
        uint16_t code;
        int32_t value;
    } notches[] = {{REL_WHEEL, 1}, {REL_WHEEL, -1}, {REL_HWHEEL, -1},
                   {REL_HWHEEL, 1}};
    int pressed = mask & ~was;

    for (unsigned b = 0; b < 3; b++)
        if ((mask ^ was) >> b & 1)
            gpu_vnc_add(r, EV_KEY, buttons[b], mask >> b & 1);
    for (unsigned b = 0; b < 4; b++)
        if (pressed >> (b + 3) & 1)
            gpu_vnc_add(r, EV_REL, notches[b].code, notches[b].value);
}

/* A viewer's thread: the pointer is at (x, y) with these buttons down. */
static void gpu_vnc_pointer(int mask, int x, int y, rfbClientPtr cl)
{
    struct gpu_vnc_input *in = gpu_vnc_viewers_data(cl);
    struct gpu_vnc_report r = {.n = 0};
    unsigned mode = atomic_load(&in->mode);

    gpu_vnc_viewer_typed(cl);
    gpu_vnc_add(&r, EV_ABS, ABS_X, gpu_vnc_abs(x, mode >> 16));
    gpu_vnc_add(&r, EV_ABS, ABS_Y, gpu_vnc_abs(y, mode & 0xffff));
    pthread_mutex_lock(&in->lock);
    gpu_vnc_buttons(&r, in->buttons, mask);
    if (gpu_vnc_write(in, &in->tablet, &r, in->buttons & ~mask & 7))
        in->buttons = mask;
    pthread_mutex_unlock(&in->lock);
}

void gpu_vnc_input_viewer_gone(struct gpu_vnc_input *in)
{
    struct gpu_vnc_report r = {.n = 0};

    pthread_mutex_lock(&in->lock);
    for (uint16_t code = 0; code <= VNC_INPUT_KEY_LAST; code++)
        if (in->keys[code / 64] >> (code % 64) & 1)
            gpu_vnc_key_report(in, code, false);
    if (in->buttons) {
        gpu_vnc_buttons(&r, in->buttons, 0);
        if (gpu_vnc_write(in, &in->tablet, &r, true))
            in->buttons = 0;
    }
    pthread_mutex_unlock(&in->lock);
}

void gpu_vnc_input_mode(struct gpu_vnc_input *in, uint32_t w, uint32_t h)
{
    atomic_store(&in->mode, w << 16 | h);
}

/* The loop stops watching for sizes asked: its callback would reach the
 * device being freed. The eventfd stays open for the threads to write. */
void gpu_vnc_input_orphan(struct gpu_vnc_input *in)
{
    if (in->asked_fd >= 0)
        xvdm_dev_unwatch_fd(in->dev, in->asked_fd);
    pthread_mutex_lock(&in->lock);
    in->dev = NULL;
    pthread_mutex_unlock(&in->lock);
}

/* A viewer's thread: it asks for a screen of w x h (RFB's SetDesktopSize,
 * one screen: its layout is not asked about). Taken when it is no larger
 * than the mode given at start (the screen's pixels were allocated for
 * it) nor sooner than GPU_VNC_RESIZE_EVERY_MS after the last, and while
 * fewer than GPU_VNC_RESIZES_MAX were; the loop makes it so, and
 * libvncserver answers the viewer then. */
static int gpu_vnc_desktop_size(int w, int h, int nr_screens,
                                struct rfbExtDesktopScreen *screens,
                                rfbClientPtr cl)
{
    struct gpu_vnc_input *in = gpu_vnc_viewers_data(cl);
    uint64_t now = clock_now_ms(), one = 1;
    int ret = rfbExtDesktopSize_Success;

    (void)nr_screens;
    (void)screens;
    if (w < (int)GPU_RES_MIN || h < (int)GPU_RES_MIN ||
        (uint32_t)w > in->xres || (uint32_t)h > in->yres)
        return rfbExtDesktopSize_OutOfResources;
    pthread_mutex_lock(&in->lock);
    if ((in->asked_ms && now - in->asked_ms < GPU_VNC_RESIZE_EVERY_MS) ||
        in->resizes >= GPU_VNC_RESIZES_MAX) {
        ret = rfbExtDesktopSize_ResizeProhibited;
    } else {
        in->asked_ms = now;
        if (++in->resizes == GPU_VNC_RESIZES_MAX && in->dev)
            xvdm_dev_log(in->dev, XVDM_LOG_WARN,
                         "vnc=: %u screen sizes taken: no more for this "
                         "device's life (libvncserver leaks a little for "
                         "each)",
                         in->resizes);
        atomic_store(&in->asked, (unsigned)w << 16 | (unsigned)h);
        if (write(in->asked_fd, &one, sizeof(one)) < 0)
            ret = rfbExtDesktopSize_OutOfResources;
    }
    pthread_mutex_unlock(&in->lock);
    return ret;
}

/* The loop: the size asked for last, made so. */
static void gpu_vnc_asked(void *arg, uint32_t revents)
{
    struct gpu_vnc_input *in = arg;
    uint64_t n;
    unsigned wh;

    (void)revents;
    if (read(in->asked_fd, &n, sizeof(n)) <= 0)
        return;
    wh = atomic_exchange(&in->asked, 0);
    if (wh)
        gpu_vnc_resize(in->g, wh >> 16, wh & 0xffff);
}

static int gpu_vnc_pipe(struct gpu_vnc_input *in, const char *key,
                        struct gpu_vnc_pipe *p)
{
    int ret;

    p->what = key;
    if (pipe2(p->fd, O_NONBLOCK | O_CLOEXEC) < 0 ||
        (p->size = fcntl(p->fd[1], F_GETPIPE_SZ)) < 0) {
        ret = -errno;
        xvdm_dev_log(in->dev, XVDM_LOG_ERROR, "vnc=: %s pipe: %s", key,
                     strerror(errno));
        return ret;
    }
    return xvdm_dev_offer_fd(in->dev, key, p->fd[0]);
}

int gpu_vnc_input_create(struct gpu *g, struct _rfbScreenInfo *s,
                         struct gpu_vnc_input **out)
{
    struct gpu_vnc_input *in = calloc(1, sizeof(*in));
    int ret;

    *out = in;
    if (!in)
        return -ENOMEM;
    in->g = g;
    in->dev = g->dev;
    in->xres = g->xres;
    in->yres = g->yres;
    gpu_vnc_input_mode(in, g->xres, g->yres);
    in->keyboard.fd[0] = in->keyboard.fd[1] = -1;
    in->tablet.fd[0] = in->tablet.fd[1] = -1;
    pthread_mutex_init(&in->lock, NULL);
    in->asked_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (in->asked_fd < 0) {
        ret = -errno;
        xvdm_dev_log(in->dev, XVDM_LOG_ERROR, "vnc=: eventfd: %s",
                     strerror(errno));
        return ret;
    }
    ret = xvdm_dev_watch_fd(in->dev, in->asked_fd, EPOLLIN, gpu_vnc_asked, in);
    if (ret) {
        close(in->asked_fd);
        in->asked_fd = -1;
        return ret;
    }
    ret = gpu_vnc_pipe(in, VNC_INPUT_KEYBOARD, &in->keyboard);
    if (!ret)
        ret = gpu_vnc_pipe(in, VNC_INPUT_TABLET, &in->tablet);
    if (ret)
        return ret;
    s->kbdAddEvent = gpu_vnc_key;
    s->ptrAddEvent = gpu_vnc_pointer;
    s->setDesktopSizeHook = gpu_vnc_desktop_size;
    return 0;
}

void gpu_vnc_input_destroy(struct gpu_vnc_input *in)
{
    if (!in)
        return;
    if (in->asked_fd >= 0) {
        xvdm_dev_unwatch_fd(in->dev, in->asked_fd);
        close(in->asked_fd);
    }
    for (unsigned k = 0; k < 2; k++) {
        if (in->keyboard.fd[k] >= 0)
            close(in->keyboard.fd[k]);
        if (in->tablet.fd[k] >= 0)
            close(in->tablet.fd[k]);
    }
    pthread_mutex_destroy(&in->lock);
    free(in);
}
