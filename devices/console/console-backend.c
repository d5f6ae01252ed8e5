/* SPDX-License-Identifier: MIT */
/*
 * virtio-console backends, the common part: watching the reader's fds for
 * what the device wants, reading and writing, noticing the reader go; and
 * the two kinds that are only a pair of fds, file= and stdio.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "console-backend-private.h"

/* ---- watching the reader's fds ------------------------------------------- */

static uint32_t con_events_for(const struct con_backend *b, int fd)
{
    uint32_t events = 0;

    if (fd == b->in.fd && b->want_in)
        events |= EPOLLIN;
    if (fd == b->out.fd && b->want_out)
        events |= EPOLLOUT;
    return events;
}

/* The watch that registers fd: the input's when both are the same fd. */
static struct con_watch *con_watch_of(struct con_backend *b, int fd)
{
    return fd == b->in.fd ? &b->in : &b->out;
}

static void con_watch_apply(struct con_backend *b, struct con_watch *w)
{
    uint32_t events = con_events_for(b, w->fd);
    int ret;

    if (!w->watched || events == w->events)
        return;
    ret = xvdm_dev_modify_fd(b->dev, w->fd, events);
    if (ret)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "cannot watch fd %d: %s", w->fd,
                     strerror(-ret));
    else
        w->events = events;
}

void con_backend_want(struct con_backend *b, bool in, bool out)
{
    b->want_in = in;
    b->want_out = out;
    if (!b->connected)
        return;
    con_watch_apply(b, &b->in);
    if (b->out.fd != b->in.fd)
        con_watch_apply(b, &b->out);
}

static void con_unwatch(struct con_backend *b, struct con_watch *w)
{
    if (w->watched)
        xvdm_dev_unwatch_fd(b->dev, w->fd);
    w->watched = false;
}

/* The reader went away: stop watching its fds, and let the kind close them
 * or wait for the next reader. */
static void con_lost(struct con_backend *b)
{
    if (!b->connected)
        return;
    con_unwatch(b, &b->in);
    con_unwatch(b, &b->out);
    b->connected = false;
    if (b->kind == CON_PTY)
        con_pty_lost(b);
    else if (b->kind == CON_SOCKET)
        con_socket_lost(b);
    else
        xvdm_dev_log(
            b->dev, XVDM_LOG_WARN,
            "output closed: keeping only the most recent output from now on");
}

/* stdin ended; stdout goes on. */
static void con_input_ended(struct con_backend *b)
{
    con_unwatch(b, &b->in);
    b->in.fd = -1;
    xvdm_dev_log(b->dev, XVDM_LOG_INFO, "end of input");
}

/* Input is gone: for a pty or a socket client the reader is. */
static void con_input_gone(struct con_backend *b)
{
    if (b->in.fd == b->out.fd)
        con_lost(b);
    else
        con_input_ended(b);
}

static void con_on_fd(void *arg, uint32_t revents)
{
    struct con_watch *w = arg;
    struct con_backend *b = w->b;
    unsigned events = 0;

    if (w->fd == b->in.fd && (revents & EPOLLIN))
        events |= CON_EV_IN;
    if (w->fd == b->out.fd && (revents & EPOLLOUT))
        events |= CON_EV_OUT;
    /* epoll reports a hang-up whatever the mask: unless the device is about
     * to read the last input, act on it now, or the loop would spin. */
    if ((revents & (EPOLLHUP | EPOLLERR)) &&
        !((events & CON_EV_IN) && b->want_in)) {
        if (w->fd == b->out.fd)
            con_lost(b);
        else
            con_input_ended(b);
        events = CON_EV_STATE;
    }
    if (events)
        b->notify(b->notify_arg, events);
}

/* Register fd; epoll refuses plain files, which never block anyway. */
static int con_watch_start(struct con_backend *b, struct con_watch *w, int fd)
{
    int ret;

    w->b = b;
    w->fd = fd;
    w->watched = false;
    if (fd < 0 || con_watch_of(b, fd) != w)
        return 0;
    w->events = con_events_for(b, fd);
    ret = xvdm_dev_watch_fd(b->dev, fd, w->events, con_on_fd, w);
    if (ret == -EPERM)
        return 0;
    w->watched = ret == 0;
    return ret;
}

int con_attach(struct con_backend *b, int in_fd, int out_fd)
{
    int ret;

    b->in.fd = in_fd;
    b->out.fd = out_fd;
    ret = con_watch_start(b, &b->in, in_fd);
    if (!ret)
        ret = con_watch_start(b, &b->out, out_fd);
    if (ret) {
        con_unwatch(b, &b->in);
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "cannot watch the console: %s",
                     strerror(-ret));
        return ret;
    }
    b->connected = true;
    return 0;
}

/* ---- reading and writing ------------------------------------------------- */

ssize_t con_backend_read(struct con_backend *b, const struct iovec *iov,
                         unsigned n)
{
    ssize_t r;

    if (!b->connected || b->in.fd < 0)
        return -EPIPE;
    r = readv(b->in.fd, iov, (int)n);
    if (r > 0)
        return r;
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    /* End of file, or EIO from a pty master whose slave closed. */
    con_input_gone(b);
    return -EPIPE;
}

/* Writing to a pipe or socket whose reader is gone raises SIGPIPE, which
 * would end xvdm: block it for the write, and take it back if it came. */
static ssize_t con_writev(int fd, const struct iovec *iov, unsigned n)
{
    static const struct timespec now = {0, 0};
    sigset_t pipe, old;
    ssize_t r;
    int err;

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    r = writev(fd, iov, (int)n);
    err = errno;
    if (r < 0 && err == EPIPE && !sigismember(&old, SIGPIPE))
        sigtimedwait(&pipe, NULL, &now);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return r;
}

ssize_t con_backend_write(struct con_backend *b, const struct iovec *iov,
                          unsigned n)
{
    ssize_t r;

    if (!b->connected)
        return -EPIPE;
    r = b->kind == CON_FILE ? con_file_write(b, iov, n)
                            : con_writev(b->out.fd, iov, n);
    if (r >= 0)
        return r;
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    if (errno != EPIPE && errno != EIO && errno != ECONNRESET)
        xvdm_dev_log(b->dev, XVDM_LOG_WARN, "console write: %s",
                     strerror(errno));
    con_lost(b);
    return -EPIPE;
}

/* ---- state --------------------------------------------------------------- */

bool con_backend_connected(const struct con_backend *b)
{
    return b->connected;
}

int con_backend_winsize(const struct con_backend *b, uint16_t *cols,
                        uint16_t *rows)
{
    int fd = b->kind == CON_PTY     ? b->pty_fd
             : b->kind == CON_STDIO ? STDOUT_FILENO
                                    : -1;
    struct winsize ws;

    if (fd < 0 || ioctl(fd, TIOCGWINSZ, &ws) != 0)
        return -ENOTTY;
    *cols = ws.ws_col;
    *rows = ws.ws_row;
    return 0;
}

/* ---- stdio ---------------------------------------------------------------- */

/* Non-blocking, as every fd of the loop; the flags are the terminal's
 * (shared with the shell), so close() puts them back. */
static int con_stdio_nonblock(struct con_backend *b, int fd)
{
    int flags = fcntl(fd, F_GETFL);

    b->stdio_flags[fd] = flags;
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "stdio: fd %d: %s", fd,
                     strerror(errno));
        return -errno;
    }
    return 0;
}

static int con_stdio_open(struct con_backend *b)
{
    int ret = con_stdio_nonblock(b, STDIN_FILENO);

    if (!ret)
        ret = con_stdio_nonblock(b, STDOUT_FILENO);
    if (!ret)
        ret = con_attach(b, STDIN_FILENO, STDOUT_FILENO);
    if (!ret && !b->in.watched) {
        /* A plain file or /dev/null: epoll cannot say when it has input. */
        xvdm_dev_log(b->dev, XVDM_LOG_INFO,
                     "stdin cannot be polled: no console input");
        b->in.fd = -1;
    }
    return ret;
}

static void con_stdio_close(struct con_backend *b)
{
    for (int fd = STDIN_FILENO; fd <= STDOUT_FILENO; fd++)
        if (b->stdio_flags[fd] >= 0)
            fcntl(fd, F_SETFL, b->stdio_flags[fd]);
}

/* ---- open and close ------------------------------------------------------ */

int con_backend_open(struct con_backend **out, struct xvdm_dev *dev,
                     enum con_kind kind, const char *arg, uint64_t file_cap,
                     con_notify_fn *notify, void *notify_arg)
{
    struct con_backend *b = calloc(1, sizeof(*b));
    int ret;

    if (!b)
        return -ENOMEM;
    *b = (struct con_backend){.dev = dev,
                              .kind = kind,
                              .notify = notify,
                              .notify_arg = notify_arg,
                              .pty_fd = -1,
                              .timer_fd = -1,
                              .listen_fd = -1,
                              .stdio_flags = {-1, -1},
                              .in = {.b = b, .fd = -1},
                              .out = {.b = b, .fd = -1}};
    switch (kind) {
    case CON_PTY:
        ret = con_pty_open(b);
        break;
    case CON_SOCKET:
        ret = con_socket_open(b, arg);
        break;
    case CON_FILE:
        ret = con_file_open(b, arg, file_cap);
        break;
    default:
        ret = con_stdio_open(b);
        break;
    }
    if (ret) {
        con_backend_close(b);
        return ret;
    }
    *out = b;
    return 0;
}

void con_backend_close(struct con_backend *b)
{
    if (!b)
        return;
    con_unwatch(b, &b->in);
    con_unwatch(b, &b->out);
    if (b->kind == CON_PTY)
        con_pty_close(b);
    else if (b->kind == CON_SOCKET)
        con_socket_close(b);
    else if (b->kind == CON_FILE && b->out.fd >= 0)
        close(b->out.fd);
    else
        con_stdio_close(b);
    free(b);
}
