/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock's listener at uds=PATH, for connections dom0 opens: a
 * client connects, writes "CONNECT <port>\n", and once the guest accepts
 * reads "OK <local port>\n" and the stream goes on (Firecracker's and
 * Cloud Hypervisor's convention). A client that says anything else, or
 * whose guest port refuses or does not answer within 2 s, reads an error
 * line and is closed. Half-open connections are timed out here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock-now.h"
#include "../common/uds-bind.h"
#include "vsock.h"

void vsock_listen_update(struct vsock *v)
{
    bool on = v->started && !v->accept_failed && v->nr_conns < v->max_conns &&
              v->half_open < VSOCK_HALF_OPEN_MAX;
    int ret;

    if (v->listen_fd < 0 || on == v->listening)
        return;
    ret = xvdm_dev_modify_fd(v->dev, v->listen_fd, on ? EPOLLIN : 0);
    if (ret)
        xvdm_dev_log(v->dev, XVDM_LOG_ERROR, "uds='%s': %s", v->uds,
                     strerror(-ret));
    else
        v->listening = on;
}

static void listen_on_accept(void *arg, uint32_t revents)
{
    struct vsock *v = arg;
    int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct vsock_conn *c;
    int ret;

    (void)revents;
    if (fd < 0 && (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED))
        return;
    if (fd < 0) {
        /* Out of fds, say: the listener would stay readable, and the loop
         * spin on it. A connection closing watches it again. */
        xvdm_dev_log(v->dev, XVDM_LOG_ERROR, "uds='%s': accept: %s", v->uds,
                     strerror(errno));
        v->accept_failed = true;
        vsock_listen_update(v);
        return;
    }
    c = vsock_conn_new(v, VSOCK_HANDSHAKE, fd);
    if (!c) {
        close(fd); /* not listened for: cannot happen but is not trusted */
        return;
    }
    c->deadline_ns = clock_now_ns() + VSOCK_CONNECT_TIMEOUT_NS;
    ret = vsock_host_watch_first(c);
    if (ret) {
        /* The loop is full: as out of fds, until a connection ends. */
        xvdm_dev_log(v->dev, XVDM_LOG_ERROR, "uds='%s': cannot watch a "
                     "client: %s", v->uds, strerror(-ret));
        vsock_conn_free(c);
        v->accept_failed = true;
    }
    vsock_listen_update(v);
}

int vsock_listen_answer(struct vsock_conn *c, bool ok, const char *why)
{
    char line[64];
    int len = ok ? snprintf(line, sizeof(line), "OK %u\n", c->local_port)
                 : snprintf(line, sizeof(line), "ERROR %s\n", why);
    ssize_t r = send(c->fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);

    return r == len ? 0 : -EPIPE;
}

/* dom0 clients' connections take local ports from 1 << 30 up, skipping
 * those in use, as Firecracker hands them out. */
static uint32_t listen_local_port(struct vsock *v, uint32_t peer)
{
    uint32_t port;

    do
        port = v->next_local_port++;
    while (port < VSOCK_LOCAL_PORT_FIRST || vsock_conn_find(v, port, peer));
    return port;
}

/* "CONNECT <port>": the port, or -1. */
static int64_t listen_parse(const char *line)
{
    char *end;
    unsigned long long port;

    if (strncmp(line, "CONNECT ", 8) || line[8] < '0' || line[8] > '9')
        return -1;
    errno = 0;
    port = strtoull(line + 8, &end, 10);
    if (errno || *end || port > UINT32_MAX)
        return -1;
    return (int64_t)port;
}

static void listen_refuse(struct vsock_conn *c, const char *why)
{
    vsock_listen_answer(c, false, why);
    vsock_conn_free(c);
}

static void listen_request(struct vsock_conn *c, uint32_t port)
{
    c->peer_port = port;
    c->local_port = listen_local_port(c->v, port);
    c->deadline_ns = clock_now_ns() + VSOCK_CONNECT_TIMEOUT_NS;
    vsock_conn_set_state(c, VSOCK_REQUESTING);
    vsock_conn_owe(c, VSOCK_SEND_REQUEST);
    vsock_rx_drain(c->v);
}

/* The line up to its '\n' only: what follows is the stream's, left in
 * the socket for the guest. */
void vsock_listen_on_client(struct vsock_conn *c)
{
    unsigned room = VSOCK_CONNECT_LINE_MAX - 1 - c->line_len;
    char *line = c->line + c->line_len, *nl;
    ssize_t r = recv(c->fd, line, room, MSG_PEEK | MSG_DONTWAIT);
    int64_t port;

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        vsock_conn_free(c);
        return;
    }
    nl = memchr(line, '\n', (size_t)r);
    if (nl)
        r = nl - line + 1;
    if (recv(c->fd, line, (size_t)r, MSG_DONTWAIT) != r) {
        vsock_conn_free(c);
        return;
    }
    c->line_len += (unsigned)r;
    c->line[c->line_len] = '\0';
    if (!nl) {
        if (c->line_len == VSOCK_CONNECT_LINE_MAX - 1)
            listen_refuse(c, "expected CONNECT <port>");
        return;
    }
    /* nl, not the line's first '\n': a NUL the client sent before it
     * would hide it from strchr(). Such a line then fails to parse. */
    *nl = '\0';
    port = nl - c->line == (ptrdiff_t)strlen(c->line) ? listen_parse(c->line)
                                                      : -1;
    if (port < 0)
        listen_refuse(c, "expected CONNECT <port>");
    else
        listen_request(c, (uint32_t)port);
}

static void listen_expire(struct vsock_conn *c)
{
    vsock_listen_answer(c, false, "timed out");
    if (c->state == VSOCK_HANDSHAKE)
        vsock_conn_free(c);
    else
        vsock_conn_reset(c); /* the guest may still hold the REQUEST */
}

static void listen_on_timer(void *arg, uint32_t revents)
{
    struct vsock *v = arg;
    uint64_t ticks, now = clock_now_ns();

    (void)revents;
    if (read(v->timer_fd, &ticks, sizeof(ticks)) < 0)
        return;
    for (unsigned i = 0; i < v->max_conns; i++) {
        struct vsock_conn *c = &v->conns[i];

        if ((c->state == VSOCK_HANDSHAKE || c->state == VSOCK_REQUESTING) &&
            c->deadline_ns <= now)
            listen_expire(c);
    }
    vsock_rx_drain(v);
}

/* Tick every 200 ms while anything is half open, not otherwise. */
void vsock_listen_timer_update(struct vsock *v)
{
    bool on = v->half_open > 0;
    struct itimerspec its = {{0, 200000000}, {0, 200000000}};

    if (v->timer_fd < 0 || on == v->timer_on)
        return;
    if (!on)
        its = (struct itimerspec){{0, 0}, {0, 0}};
    if (timerfd_settime(v->timer_fd, 0, &its, NULL) == 0)
        v->timer_on = on;
}

static int listen_bind(struct vsock *v)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int ret;

    strcpy(sa.sun_path, v->uds); /* create() checked its length */
    ret = uds_bind(v->listen_fd, &sa);
    v->bound = ret == 0;
    return ret;
}

int vsock_listen_open(struct vsock *v)
{
    int ret;

    v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    ret = v->timer_fd < 0 ? -errno
                          : xvdm_dev_watch_fd(v->dev, v->timer_fd, EPOLLIN,
                                              listen_on_timer, v);
    if (ret == 0) {
        v->listen_fd =
            socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ret = v->listen_fd < 0 ? -errno : listen_bind(v);
    }
    if (ret == 0 && listen(v->listen_fd, VSOCK_HALF_OPEN_MAX))
        ret = -errno;
    if (ret == 0)
        ret = xvdm_dev_watch_fd(v->dev, v->listen_fd, 0, listen_on_accept, v);
    if (ret)
        xvdm_dev_log(v->dev, XVDM_LOG_ERROR, "cannot listen on uds='%s': %s",
                     v->uds, strerror(-ret));
    return ret;
}

void vsock_listen_close(struct vsock *v)
{
    if (v->listen_fd >= 0) {
        xvdm_dev_unwatch_fd(v->dev, v->listen_fd);
        close(v->listen_fd);
    }
    if (v->bound)
        unlink(xvdm_host_path(v->uds));
    if (v->timer_fd >= 0) {
        xvdm_dev_unwatch_fd(v->dev, v->timer_fd);
        close(v->timer_fd);
    }
}
