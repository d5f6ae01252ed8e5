/* SPDX-License-Identifier: MIT */
/*
 * virtio-console's pty backend. The master stays with xvdm; whoever opens
 * the slave (screen, minicom, cat) is the reader. Linux reports a hang-up
 * on the master while no one has the slave open (after it was opened once),
 * and reports no event when someone opens it: so the slave is opened and
 * closed once here, and while hung up a timer looks every
 * CON_PTY_POLL_MS for the hang-up to end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <unistd.h>

#include "console-backend-private.h"

#define CON_PTY_POLL_MS 100

static int con_pty_timer(struct con_backend *b, bool on)
{
    struct itimerspec its = {0};

    if (on) {
        its.it_interval.tv_nsec = CON_PTY_POLL_MS * 1000000L;
        its.it_value = its.it_interval;
    }
    return timerfd_settime(b->timer_fd, 0, &its, NULL) ? -errno : 0;
}

static bool con_pty_hung_up(const struct con_backend *b)
{
    struct pollfd p = {.fd = b->pty_fd};

    return poll(&p, 1, 0) < 0 || (p.revents & POLLHUP);
}

static void con_pty_on_tick(void *arg, uint32_t revents)
{
    struct con_backend *b = arg;
    uint64_t ticks;
    int ret;

    if (read(b->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
        return;
    if (b->connected || con_pty_hung_up(b))
        return;
    ret = con_pty_timer(b, false);
    if (!ret)
        ret = con_attach(b, b->pty_fd, b->pty_fd);
    if (ret) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "pty: %s", strerror(-ret));
        return;
    }
    xvdm_dev_log(b->dev, XVDM_LOG_INFO, "pty opened by a reader");
    b->notify(b->notify_arg, CON_EV_STATE);
}

void con_pty_lost(struct con_backend *b)
{
    int ret = con_pty_timer(b, true);

    xvdm_dev_log(b->dev, XVDM_LOG_INFO, "pty closed by its reader");
    if (ret)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "pty: cannot wait for the next reader: %s",
                     strerror(-ret));
}

/* Raw mode, set on the slave: bytes pass as they are, both ways. The
 * setting stays with the pty when the slave is closed and reopened. */
static int con_pty_raw(struct con_backend *b, const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct termios t;
    int ret = 0;

    if (fd < 0 || tcgetattr(fd, &t) != 0)
        ret = -errno;
    if (!ret) {
        cfmakeraw(&t);
        if (tcsetattr(fd, TCSANOW, &t) != 0)
            ret = -errno;
    }
    if (fd >= 0)
        close(fd);
    return ret;
}

static int con_pty_create(struct con_backend *b, char *path, size_t size)
{
    b->pty_fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (b->pty_fd < 0 || grantpt(b->pty_fd) || unlockpt(b->pty_fd))
        return -errno;
    if (ptsname_r(b->pty_fd, path, size))
        return -errno;
    return con_pty_raw(b, path);
}

int con_pty_open(struct con_backend *b)
{
    char path[PATH_MAX];
    int ret = con_pty_create(b, path, sizeof(path));

    if (!ret) {
        b->timer_fd =
            timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        ret = b->timer_fd < 0 ? -errno : 0;
    }
    if (!ret)
        ret =
            xvdm_dev_watch_fd(b->dev, b->timer_fd, EPOLLIN, con_pty_on_tick, b);
    if (!ret)
        ret = con_pty_timer(b, true);
    if (ret) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "cannot create a pty: %s",
                     strerror(-ret));
        return ret;
    }
    xvdm_dev_log(b->dev, XVDM_LOG_INFO, "guest console on %s", path);
    /* For tools (an `xl console` of virtio consoles) to find it. */
    return xvdm_dev_publish(b->dev, "pty", path);
}

void con_pty_close(struct con_backend *b)
{
    if (b->timer_fd >= 0) {
        xvdm_dev_unwatch_fd(b->dev, b->timer_fd);
        close(b->timer_fd);
    }
    if (b->pty_fd >= 0)
        close(b->pty_fd);
}
