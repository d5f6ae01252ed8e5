/* SPDX-License-Identifier: MIT */
/*
 * What keeps vnc='s viewers, and libvncserver serving them, within
 * bounds beyond the viewer count (gpu-vnc-viewers.c):
 * - one server a process: libvncserver 0.9.14 keeps one list of viewers
 *   for all its screens, whose lock each new screen initialises again,
 *   under any viewer thread of another screen holding it;
 * - descriptors below FD_SETSIZE: libvncserver select()s on the
 *   listening socket and every viewer's, and FD_SETs them unchecked, so
 *   the process's soft RLIMIT_NOFILE is brought down to FD_SETSIZE;
 * - a handshake deadline: a viewer that connects and says nothing (or
 *   never gets the password right) would hold its place and two threads
 *   for ever; the loop disconnects it GPU_VNC_HELLO_S after it came;
 * - a wrong password costs its viewer's thread a second, so guessing
 *   goes at most GPU_VNC_VIEWERS_MAX a second;
 * - libvncserver's error lines (rfbErr, which viewers can cause at will)
 *   go to xvdm's log, rate-limited.
 * The state is the process's: there is one server.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock-now.h"
#include "gpu.h"

/* From connecting to past the handshake (version, security, password,
 * init): a person typing a password needs the viewer's prompt first. */
#define GPU_VNC_HELLO_S 10
/* How often the loop looks for viewers past it. */
#define GPU_VNC_EXPIRE_EVERY_S 2
#define GPU_VNC_WRONG_PASSWORD_S 1
/* libvncserver's error lines: so many a window, the rest counted. */
#define GPU_VNC_ERR_LINES 10
#define GPU_VNC_ERR_WINDOW_S 10

static struct {
    pthread_mutex_t lock; /* dev and the error lines' count */
    struct xvdm_dev *dev; /* the device serving; NULL: none */
    bool taken;           /* by a server, until its threads are gone */
    int timer_fd;
    rfbScreenInfoPtr screen;
    uint64_t window_s; /* when the error lines' window began */
    unsigned lines, dropped;
} guard = {.lock = PTHREAD_MUTEX_INITIALIZER, .timer_fd = -1};

/* rfbErr: on any of libvncserver's threads. */
static void gpu_vnc_error(const char *format, ...)
    __attribute__((format(printf, 1, 2)));

static void gpu_vnc_error(const char *format, ...)
{
    uint64_t now_s;
    char line[256];
    va_list ap;
    size_t len;

    va_start(ap, format);
    vsnprintf(line, sizeof(line), format, ap);
    va_end(ap);
    len = strlen(line);
    while (len && line[len - 1] == '\n')
        line[--len] = '\0';
    /* A viewer's bytes may be in it: no line of its own, no terminal
     * escape. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    /* Said for every viewer on a Unix socket: not an error there. */
    if (strstr(line, "can't set TCP_NODELAY flag, non TCP socket"))
        return;
    now_s = clock_now_ms() / 1000;
    pthread_mutex_lock(&guard.lock);
    if (now_s - guard.window_s >= GPU_VNC_ERR_WINDOW_S) {
        if (guard.dropped && guard.dev)
            xvdm_dev_log(guard.dev, XVDM_LOG_WARN,
                         "libvncserver: %u more lines not logged",
                         guard.dropped);
        guard.window_s = now_s;
        guard.lines = guard.dropped = 0;
    }
    if (guard.dev && guard.lines++ < GPU_VNC_ERR_LINES)
        xvdm_dev_log(guard.dev, XVDM_LOG_WARN, "libvncserver: %s", line);
    else
        guard.dropped++;
    pthread_mutex_unlock(&guard.lock);
}

static int gpu_vnc_descriptors(struct xvdm_dev *dev)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur <= FD_SETSIZE)
        return 0;
    xvdm_dev_log(dev, XVDM_LOG_WARN,
                 "vnc=: the process's open descriptors brought down to %d "
                 "from %llu, for every device: libvncserver select()s",
                 FD_SETSIZE, (unsigned long long)rl.rlim_cur);
    rl.rlim_cur = FD_SETSIZE;
    return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

/* Once a server was made, this module and libvncserver stay mapped when
 * xvdm unloads the module: libvncserver's globals (rfbErr, pointing
 * here; its one list of viewers) outlive the device, and viewer threads
 * left after the end's wait run code of both. */
static void gpu_vnc_pin_module(void)
{
    Dl_info self;

    if (dladdr((void *)gpu_vnc_pin_module, &self) && self.dli_fname)
        dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

int gpu_vnc_guard_start(struct xvdm_dev *dev, const char *addr)
{
    int ret;

    if (guard.taken) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR,
                     "vnc='%s': another gpu device of this xvdm already "
                     "has vnc= (one a process: libvncserver keeps one list "
                     "of viewers for all)",
                     addr);
        return -EBUSY;
    }
    ret = gpu_vnc_descriptors(dev);
    if (ret) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR, "vnc='%s': RLIMIT_NOFILE: %s", addr,
                     strerror(-ret));
        return ret;
    }
    guard.taken = true;
    pthread_mutex_lock(&guard.lock);
    guard.dev = dev;
    pthread_mutex_unlock(&guard.lock);
    rfbErr = gpu_vnc_error;
    gpu_vnc_pin_module();
    return 0;
}

static void gpu_vnc_expire(void *arg, uint32_t revents)
{
    uint64_t ticks;

    (void)revents;
    if (read(guard.timer_fd, &ticks, sizeof(ticks)) > 0)
        gpu_vnc_viewers_expire(arg, GPU_VNC_HELLO_S);
}

/* A viewer's thread: its password's answer, wrong ones after a wait. */
static rfbBool gpu_vnc_password_check(rfbClientPtr cl, const char *response,
                                      int len)
{
    if (rfbCheckPasswordByList(cl, response, len))
        return TRUE;
    sleep(GPU_VNC_WRONG_PASSWORD_S);
    return FALSE;
}

int gpu_vnc_guard_screen(struct xvdm_dev *dev, rfbScreenInfoPtr s)
{
    struct itimerspec every = {{GPU_VNC_EXPIRE_EVERY_S, 0},
                               {GPU_VNC_EXPIRE_EVERY_S, 0}};
    int ret;

    if (s->authPasswdData)
        s->passwordCheck = gpu_vnc_password_check;
    guard.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (guard.timer_fd < 0 ||
        timerfd_settime(guard.timer_fd, 0, &every, NULL) < 0) {
        ret = -errno;
        xvdm_dev_log(dev, XVDM_LOG_ERROR, "vnc=: handshake timer: %s",
                     strerror(errno));
        return ret;
    }
    ret = xvdm_dev_watch_fd(dev, guard.timer_fd, EPOLLIN, gpu_vnc_expire, s);
    if (ret)
        return ret;
    guard.screen = s;
    return 0;
}

void gpu_vnc_guard_stop(struct xvdm_dev *dev, bool threads_gone)
{
    if (guard.screen)
        xvdm_dev_unwatch_fd(dev, guard.timer_fd);
    guard.screen = NULL;
    if (guard.timer_fd >= 0)
        close(guard.timer_fd);
    guard.timer_fd = -1;
    pthread_mutex_lock(&guard.lock);
    if (guard.dropped)
        xvdm_dev_log(dev, XVDM_LOG_WARN,
                     "libvncserver: %u more lines not logged", guard.dropped);
    guard.dropped = 0;
    guard.dev = NULL; /* threads left log nothing more */
    pthread_mutex_unlock(&guard.lock);
    /* Threads left may still use libvncserver's list: no new server. */
    guard.taken = !threads_gone;
}
