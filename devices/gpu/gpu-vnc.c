/* SPDX-License-Identifier: MIT */
/*
 * vnc=: scanout 0 shown over VNC by libvncserver, at the mode's size
 * (xres x yres at start; a viewer may ask for a smaller mode, shown at
 * the top left of a screen of the same size: gpu_vnc_resize()), 32-bit
 * true colour. The screen is a copy
 * of scanout 0, taken on SET_SCANOUT (all of it) and RESOURCE_FLUSH (the
 * flushed rectangle, converted from the resource's format); only what
 * was flushed is sent as changed.
 *
 * Threads: libvncserver serves the viewers from threads of its own
 * (rfbRunEventLoop() in the background: a listener, and two threads per
 * viewer), so a slow or stalled viewer holds up only its threads, never
 * xvdm's loop and the guest behind it. The loop writes the screen while
 * a viewer's thread may be sending from it: that viewer can get a
 * rectangle part old, part new (tearing). A view can live with that: each
 * rectangle is marked as changed after its copy, so the next update sends
 * it as it is by then. What those threads read (the screen, its pixels,
 * the password) is freed only once they are joined (gpu-vnc-viewers.c).
 *
 * The threads start when the first viewer knocks (the loop sees the
 * socket readable), not when the device is created: that is before
 * --user, and glibc's setuid() signals every thread of the process
 * (SIGSETXID, which no mask blocks), which libvncserver 0.9.15's
 * listener takes for an error of its select(): it would end, and no
 * viewer would ever be taken.
 */
#include <errno.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "gpu.h"

struct gpu_vnc {
    rfbScreenInfoPtr screen;
    bool guarded;     /* gpu_vnc_guard_start() took the process's server */
    bool serving;     /* its threads started */
    int fd;           /* the listening socket, until then */
    uint32_t width, height; /* the screen's: the mode at start */
    uint32_t *pixels;       /* width * height, in the server's format */
    /* What viewers' threads read, of its own: left with the screen when
     * a thread does not end. For rfbCheckPasswordByList(): the password,
     * then NULL; the desktop's name. */
    char **password;
    char *name;
    char *where; /* "unix:PATH" or "HOST:PORT" */
    struct gpu_vnc_viewers *viewers;
    struct gpu_vnc_input *input; /* the viewers' keys and pointer */
};

/* The bytes of red, green and blue in a pixel of each format: its name
 * lists them in memory order (as Linux's driver and QEMU read them). */
struct gpu_vnc_layout {
    uint32_t format;
    uint8_t r, g, b;
};

static const struct gpu_vnc_layout gpu_vnc_layouts[] = {
    {VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 2, 1, 0},
    {VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2, 1, 0},
    {VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, 1, 2, 3},
    {VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 1, 2, 3},
    {VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 0, 1, 2},
    {VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, 0, 1, 2},
    {VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, 3, 2, 1},
    {VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, 3, 2, 1},
};

/* A resource has one of them: gpu-resource.c creates no other. */
static const struct gpu_vnc_layout *gpu_vnc_layout(uint32_t format)
{
    for (size_t i = 0; i < sizeof(gpu_vnc_layouts) / sizeof(*gpu_vnc_layouts);
         i++)
        if (gpu_vnc_layouts[i].format == format)
            return &gpu_vnc_layouts[i];
    return &gpu_vnc_layouts[0];
}

/* Screen pixels [x0, x1) x [y0, y1) from scanout 0, which shows them. Its
 * bytes count against the drain's GPU_TURN_COST, as a transfer's do: a
 * guest flushing the whole screen again and again waits its turn. */
static void gpu_vnc_copy(struct gpu *g, uint32_t x0, uint32_t y0, uint32_t x1,
                         uint32_t y1)
{
    const struct gpu_scanout *s = &g->scanout[0];
    const struct gpu_vnc_layout *l = gpu_vnc_layout(s->res->format);

    for (uint32_t y = y0; y < y1; y++) {
        const uint8_t *from =
            s->res->pixels +
            ((uint64_t)(s->r.y + y) * s->res->width + s->r.x + x0) *
                GPU_BYTES_PER_PIXEL;
        uint32_t *to = g->vnc->pixels + (uint64_t)y * g->vnc->width;

        /* The server's format is B8G8R8X8's (gpu_vnc_screen()). */
        if (l->b == 0 && l->g == 1 && l->r == 2) {
            memcpy(to + x0, from, (size_t)(x1 - x0) * GPU_BYTES_PER_PIXEL);
            continue;
        }
        for (uint32_t x = x0; x < x1; x++, from += GPU_BYTES_PER_PIXEL)
            to[x] = from[l->b] | (uint32_t)from[l->g] << 8 |
                    (uint32_t)from[l->r] << 16;
    }
    g->turn_cost += (uint64_t)(x1 - x0) * (y1 - y0) * GPU_BYTES_PER_PIXEL;
}

static uint32_t gpu_vnc_min(uint64_t a, uint64_t b)
{
    return (uint32_t)(a < b ? a : b);
}

void gpu_vnc_show(struct gpu *g)
{
    const struct gpu_scanout *s = &g->scanout[0];
    struct gpu_vnc *v = g->vnc;
    uint32_t w = 0, h = 0;

    if (!v)
        return;
    if (s->res) {
        w = gpu_vnc_min(s->r.width, g->xres);
        h = gpu_vnc_min(s->r.height, g->yres);
        gpu_vnc_copy(g, 0, 0, w, h);
    }
    /* Black around what is shown (all of it, when nothing is; past the
     * mode, when a viewer made it smaller); counted as copying is, or a
     * guest turning the output off and on again would clear the screen
     * for free, request after request. */
    g->turn_cost +=
        ((uint64_t)v->width * v->height - (uint64_t)w * h) * sizeof(uint32_t);
    for (uint32_t y = 0; y < v->height; y++) {
        uint32_t from = y < h ? w : 0;

        memset(v->pixels + (uint64_t)y * v->width + from, 0,
               (size_t)(v->width - from) * sizeof(uint32_t));
    }
    rfbMarkRectAsModified(v->screen, 0, 0, (int)v->width, (int)v->height);
}

/* One axis of a flushed rectangle, [at, at + len) of the resource, on
 * the screen, where scanout 0 starts at `from` of the resource and shows
 * `shown` of it: [*lo, *hi), empty when *lo >= *hi. */
static void gpu_vnc_axis(uint32_t at, uint32_t len, uint32_t from,
                         uint32_t shown, uint32_t *lo, uint32_t *hi)
{
    uint64_t end = (uint64_t)at + len;

    *lo = at > from ? at - from : 0;
    *hi = gpu_vnc_min(end > from ? end - from : 0, shown);
}

/* A side's end, rounded up to the next tile but not past `most`. */
static uint32_t gpu_vnc_tile_end(uint32_t end, uint32_t most)
{
    return gpu_vnc_min(((uint64_t)end + GPU_VNC_TILE - 1) & ~(GPU_VNC_TILE - 1),
                       most);
}

/* [x0, x1) x [y0, y1) changed: marked in whole tiles, counted as what the
 * viewers will be sent. libvncserver keeps what each viewer has not been
 * sent yet as a region, and RFB counts an update's rectangles in 16 bits:
 * a guest flushing single pixels of a checkerboard would split that
 * region past 65535 pieces, whose count libvncserver wraps for Tight,
 * Zlib and others, and the viewer would read pixels as messages; each
 * piece also costs the region memory, and adding to it time. In tiles,
 * a screen of at most 4095 x 4095 has 4096 pieces at most. */
static void gpu_vnc_mark(struct gpu *g, uint32_t x0, uint32_t y0, uint32_t x1,
                         uint32_t y1)
{
    x0 &= ~(GPU_VNC_TILE - 1);
    y0 &= ~(GPU_VNC_TILE - 1);
    x1 = gpu_vnc_tile_end(x1, g->xres);
    y1 = gpu_vnc_tile_end(y1, g->yres);
    g->turn_cost += (uint64_t)(x1 - x0) * (y1 - y0) * sizeof(uint32_t);
    rfbMarkRectAsModified(g->vnc->screen, (int)x0, (int)y0, (int)x1, (int)y1);
}

void gpu_vnc_flush(struct gpu *g, const struct gpu_resource *res,
                   const struct virtio_gpu_rect *r)
{
    const struct gpu_scanout *s = &g->scanout[0];
    uint32_t x0, y0, x1, y1;

    if (!g->vnc || s->res != res)
        return;
    gpu_vnc_axis(r->x, r->width, s->r.x, gpu_vnc_min(s->r.width, g->xres), &x0,
                 &x1);
    gpu_vnc_axis(r->y, r->height, s->r.y, gpu_vnc_min(s->r.height, g->yres),
                 &y0, &y1);
    if (x0 >= x1 || y0 >= y1)
        return;
    gpu_vnc_copy(g, x0, y0, x1, y1);
    gpu_vnc_mark(g, x0, y0, x1, y1);
}

/* Each viewer that takes a screen size (NewFBSize, ExtendedDesktopSize)
 * is sent it again: libvncserver answers a SetDesktopSize it was told
 * succeeded only with that. */
static void gpu_vnc_viewers_resized(rfbScreenInfoPtr s)
{
    rfbClientIteratorPtr it = rfbGetClientIterator(s);
    rfbClientPtr cl;

    while ((cl = rfbClientIteratorNext(it))) {
        pthread_mutex_lock(&cl->updateMutex);
        if (cl->useNewFBSize)
            cl->newFBSizePending = TRUE;
        pthread_cond_signal(&cl->updateCond);
        pthread_mutex_unlock(&cl->updateMutex);
    }
    rfbReleaseClientIterator(it);
}

/* The screen keeps its size: libvncserver cannot make one smaller under
 * its viewers' threads. Those size what they send from the screen's
 * width and height as they read them, without a lock: an update of the
 * old size encoded in RRE, CoRRE or Zlib after a shrink overruns a buffer
 * sized for the new one, and a viewer's scaled copy (UltraVNC's
 * SetScale) larger than the screen divides by zero. Nor
 * rfbNewFramebuffer(): it frees the buffer and the translation tables a
 * thread may be sending from. So the guest's picture is shown at the
 * top left of the screen, black around it. */
void gpu_vnc_resize(struct gpu *g, uint32_t w, uint32_t h)
{
    gpu_mode_change(g, w, h);
    gpu_vnc_input_mode(g->vnc->input, w, h);
    /* The size first: a viewer that clears its screen on it then gets the
     * whole screen as changed after it, not before. */
    gpu_vnc_viewers_resized(g->vnc->screen);
    gpu_vnc_show(g);
}

/* vnc-password-file=FILE: its first line, without its line end. */
static int gpu_vnc_password(struct xvdm_dev *dev, const char *file,
                            char **password)
{
    FILE *f = fopen(file, "re");
    size_t cap = 0;
    ssize_t len;
    int ret = 0;

    if (!f) {
        ret = -errno;
        xvdm_dev_log(dev, XVDM_LOG_ERROR,
                     "cannot read vnc-password-file='%s': %s", file,
                     strerror(errno));
        return ret;
    }
    len = getline(password, &cap, f);
    while (len > 0 &&
           ((*password)[len - 1] == '\n' || (*password)[len - 1] == '\r'))
        (*password)[--len] = '\0';
    if (len <= 0) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR,
                     "vnc-password-file='%s': its first line, the password, "
                     "is empty",
                     file);
        /* At the end of the file getline() leaves no string there. */
        free(*password);
        *password = NULL;
        ret = -EINVAL;
    }
    fclose(f);
    return ret;
}

/* The server, listening nowhere yet: the screen black, no cursor drawn
 * over the guest's pixels, shared by every viewer (a screenshot does not
 * push a viewer off). */
static int gpu_vnc_screen(struct gpu *g, struct gpu_vnc *v)
{
    static char name[] = "xvdm";
    char *argv[] = {name, NULL};
    int argc = 1, ret;
    rfbScreenInfoPtr s;

    v->width = g->xres;
    v->height = g->yres;
    v->pixels = calloc((size_t)v->width * v->height, sizeof(*v->pixels));
    v->name = strdup(xvdm_dev_name(g->dev));
    if (!v->pixels || !v->name)
        return -ENOMEM;
    /* Its notes (some twenty lines a viewer) would go to stderr, apart
     * from xvdm's log; this silences its errors too, which
     * gpu-vnc-guard.c sends to xvdm's log instead. */
    rfbLogEnable(FALSE);
    s = rfbGetScreen(&argc, argv, (int)v->width, (int)v->height, 8, 3, 4);
    if (!s)
        return -ENOMEM;
    v->screen = s;
    ret = gpu_vnc_input_create(g, s, &v->input);
    if (ret)
        return ret;
    if (gpu_vnc_viewers_watch(s, v->input, &v->viewers))
        return -ENOMEM;
    s->frameBuffer = (char *)v->pixels;
    /* Blue in the low byte, then green and red: the format of Linux's
     * XRGB8888 framebuffers (B8G8R8X8 in memory), whose rows are then
     * copied as they are; the fourth byte is not read. */
    s->serverFormat.redShift = 16;
    s->serverFormat.greenShift = 8;
    s->serverFormat.blueShift = 0;
    s->desktopName = v->name;
    s->alwaysShared = TRUE;
    s->cursor = NULL;
    /* Listening is gpu-vnc-listen.c's: none of libvncserver's own. */
    s->port = 0;
    s->ipv6port = 0;
    if (v->password[0])
        s->authPasswdData = v->password; /* checked by gpu-vnc-guard.c */
    return 0;
}

/* From now on, libvncserver's threads serve the viewers on fd. (It also
 * has SIGPIPE ignored, process-wide: a viewer gone mid-write must not end
 * xvdm.) */
static void gpu_vnc_serve(struct gpu_vnc *v, int fd)
{
    rfbScreenInfoPtr s = v->screen;

    rfbInitServer(s);
    s->listenSock = fd;
    FD_SET(fd, &s->allFds);
    s->maxFd = fd > s->maxFd ? fd : s->maxFd;
    rfbRunEventLoop(s, -1, TRUE);
    v->serving = true;
}

/* In the loop, so after --user: the first viewer waits in the socket's
 * backlog for the listener started now. */
static void gpu_vnc_knock(void *arg, uint32_t revents)
{
    struct gpu *g = arg;
    struct gpu_vnc *v = g->vnc;

    xvdm_dev_unwatch_fd(g->dev, v->fd);
    gpu_vnc_serve(v, v->fd);
    v->fd = -1;
}

/* libvncserver select()s: a descriptor past FD_SETSIZE it cannot watch. */
static int gpu_vnc_fd_check(struct xvdm_dev *dev, const char *addr, int fd)
{
    if (fd < FD_SETSIZE)
        return 0;
    xvdm_dev_log(dev, XVDM_LOG_ERROR,
                 "vnc='%s': its socket is descriptor %d, past the %d "
                 "libvncserver can watch",
                 addr, fd, FD_SETSIZE);
    close(fd);
    return -EMFILE;
}

int gpu_vnc_create(struct gpu *g, const char *addr, const char *password_file)
{
    struct gpu_vnc *v = calloc(1, sizeof(*v));
    int fd = -1, ret = 0;

    if (!v)
        return -ENOMEM;
    v->fd = -1;
    g->vnc = v;
    ret = gpu_vnc_guard_start(g->dev, addr);
    v->guarded = ret == 0;
    v->password = calloc(2, sizeof(*v->password));
    if (!ret && !v->password)
        ret = -ENOMEM;
    if (!ret && password_file)
        ret = gpu_vnc_password(g->dev, password_file, &v->password[0]);
    if (!ret)
        ret = gpu_vnc_screen(g, v);
    if (!ret) {
        fd = gpu_vnc_listen(g->dev, addr, &v->where);
        ret = fd < 0 ? fd : gpu_vnc_fd_check(g->dev, addr, fd);
    }
    if (!ret) {
        v->fd = fd;
        ret = gpu_vnc_guard_screen(g->dev, v->screen);
        if (!ret)
            ret = xvdm_dev_watch_fd(g->dev, fd, EPOLLIN, gpu_vnc_knock, g);
    }
    if (ret) {
        gpu_vnc_destroy(g);
        return ret;
    }
    xvdm_dev_log(g->dev, XVDM_LOG_INFO, "scanout 0 on VNC at %s, %s", v->where,
                 password_file ? "with a password" : "without a password");
    return xvdm_dev_publish(g->dev, "vnc", v->where);
}

/* Every viewer gone and its threads joined; else what they may still
 * use (the screen, its pixels, the password, the input pipes) stays, with
 * a line. */
static bool gpu_vnc_stopped(struct gpu *g, struct gpu_vnc *v)
{
    unsigned left = gpu_vnc_viewers_end(v->screen, v->viewers);

    if (!left)
        return true;
    xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                 "%u VNC viewer thread(s) did not end: their screen is left "
                 "allocated",
                 left);
    v->pixels = NULL;
    v->password = NULL;
    v->name = NULL;
    gpu_vnc_input_orphan(v->input);
    v->input = NULL;
    return false;
}

void gpu_vnc_destroy(struct gpu *g)
{
    struct gpu_vnc *v = g->vnc;
    bool stopped;

    if (!v)
        return;
    /* The listener joined (not the viewers: gpu-vnc-viewers.c says why). */
    if (v->serving)
        rfbShutdownServer(v->screen, FALSE);
    if (v->fd >= 0) { /* no viewer came */
        xvdm_dev_unwatch_fd(g->dev, v->fd);
        close(v->fd);
    }
    stopped = gpu_vnc_stopped(g, v);
    if (v->guarded)
        gpu_vnc_guard_stop(g->dev, stopped);
    if (stopped && v->screen)
        rfbScreenCleanup(v->screen);
    if (v->where && strncmp(v->where, "unix:", 5) == 0 &&
        xvdm_host_path(v->where + 5))
        unlink(xvdm_host_path(v->where + 5));
    if (v->password && v->password[0])
        explicit_bzero(v->password[0], strlen(v->password[0]));
    if (v->password)
        free(v->password[0]);
    free(v->password);
    free(v->name);
    free(v->where);
    free(v->pixels);
    gpu_vnc_input_destroy(v->input);
    free(v);
    g->vnc = NULL;
}
