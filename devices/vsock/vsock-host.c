/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock's host side of one connection: its Unix socket in dom0.
 * The guest's payload is written straight from its buffers; what the
 * socket does not take is held, at most the VSOCK_BUF_ALLOC the guest was
 * given as credit, and written when the socket has room. Reading is the
 * receive queue's (vsock-rx.c): the loop only says when there is data.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsock.h"

static void host_on_fd(void *arg, uint32_t revents);

int vsock_host_connect(struct vsock *v, uint32_t port)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int ret;

    if (fd < 0)
        return -errno;
    /* create() checked that uds + "_" + 10 digits fits, and that it is
     * reachable under --chroot. */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u",
             xvdm_host_path(v->uds), port);
    /* A Unix socket connects at once or not at all (a full backlog gives
     * EAGAIN): there is no half-open state on this side. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    ret = -errno;
    close(fd);
    return ret;
}

/* What c waits for from its socket: data while it has not read all there
 * is, room while it holds the guest's data. */
static uint32_t host_events(const struct vsock_conn *c)
{
    uint32_t events = 0;

    if (c->state == VSOCK_HANDSHAKE)
        return EPOLLIN;
    if (c->state != VSOCK_ESTABLISHED && c->state != VSOCK_CLOSING)
        return 0;
    if (!c->readable && !c->host_eof)
        events |= EPOLLIN;
    if (c->buf_len)
        events |= EPOLLOUT;
    return events;
}

int vsock_host_watch_first(struct vsock_conn *c)
{
    uint32_t events = host_events(c);
    int ret = xvdm_dev_watch_fd(c->v->dev, c->fd, events, host_on_fd, c);

    c->watched = ret == 0;
    c->events = events;
    return ret;
}

/* Only an fd watched from the first: one the loop could not take was
 * refused then, not retried (and logged) at each packet. */
void vsock_host_watch(struct vsock_conn *c)
{
    uint32_t events = host_events(c);
    int ret;

    if (c->host_hup || !c->watched || events == c->events)
        return;
    ret = xvdm_dev_modify_fd(c->v->dev, c->fd, events);
    if (ret) {
        xvdm_dev_log(c->v->dev, XVDM_LOG_ERROR,
                     "cannot watch the socket of port %u: %s", c->local_port,
                     strerror(-ret));
        return;
    }
    c->events = events;
}

/* A socket whose peer closed it altogether reports EPOLLHUP whatever it
 * is watched for: out of the loop, what it still holds is read while the
 * guest takes it. */
static void host_gone(struct vsock_conn *c)
{
    xvdm_dev_unwatch_fd(c->v->dev, c->fd);
    c->watched = false;
    c->events = 0;
    c->host_hup = true;
    c->readable = true;
}

static ssize_t host_send(int fd, const struct iovec *iov, unsigned n)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = n};
    ssize_t r;

    do
        r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EAGAIN)
        return 0;
    return r < 0 ? -errno : r;
}

/* The held bytes as at most two buffers of the ring. */
static unsigned host_held_iov(const struct vsock_conn *c, struct iovec *iov)
{
    uint32_t first = VSOCK_BUF_ALLOC - c->buf_head;

    if (c->buf_len <= first) {
        iov[0] = (struct iovec){c->buf + c->buf_head, c->buf_len};
        return 1;
    }
    iov[0] = (struct iovec){c->buf + c->buf_head, first};
    iov[1] = (struct iovec){c->buf, c->buf_len - first};
    return 2;
}

static void host_forwarded(struct vsock_conn *c, uint32_t n)
{
    c->fwd_cnt += n;
    vsock_conn_credit_freed(c);
}

/* Everything the guest sent is in the socket: carry out its shutdown. */
static void host_flushed(struct vsock_conn *c)
{
    free(c->buf);
    c->buf = NULL;
    c->buf_head = 0;
    if (c->state == VSOCK_CLOSING)
        vsock_conn_reset(c); /* §5.10.6.6: the RST that ends it */
    else if (c->guest_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND)
        shutdown(c->fd, SHUT_WR);
}

/* Write what is held; 0, or a negative errno when the socket is gone. */
int vsock_host_flush(struct vsock_conn *c)
{
    struct iovec iov[2];
    ssize_t r;

    if (c->buf_len) {
        r = host_send(c->fd, iov, host_held_iov(c, iov));
        if (r < 0)
            return (int)r;
        c->buf_head = (uint32_t)((c->buf_head + r) % VSOCK_BUF_ALLOC);
        c->buf_len -= (uint32_t)r;
        host_forwarded(c, (uint32_t)r);
    }
    if (c->buf_len == 0)
        host_flushed(c);
    return 0;
}

static int host_hold(struct vsock_conn *c, const struct iovec *iov, unsigned n,
                     size_t off, uint32_t len)
{
    struct iovec dst[2];
    uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
    uint32_t first = VSOCK_BUF_ALLOC - tail;

    if (!c->buf && !(c->buf = malloc(VSOCK_BUF_ALLOC)))
        return -ENOMEM;
    dst[0] = (struct iovec){c->buf + tail, len < first ? len : first};
    dst[1] = (struct iovec){c->buf, len - dst[0].iov_len};
    for (unsigned i = 0; i < 2; i++) {
        iov_copy(iov, n, off, dst[i].iov_base, dst[i].iov_len, false);
        off += dst[i].iov_len;
    }
    c->buf_len += len;
    return 0;
}

int vsock_host_write(struct vsock_conn *c, const struct iovec *iov,
                     unsigned n, uint32_t len)
{
    ssize_t r = 0;

    /* The caller checked the guest kept to its credit: what is held stays
     * within VSOCK_BUF_ALLOC. */
    if (c->buf_len == 0) {
        r = host_send(c->fd, iov, n);
        if (r < 0)
            return (int)r;
        host_forwarded(c, (uint32_t)r);
    }
    if ((uint32_t)r < len) {
        int ret = host_hold(c, iov, n, (size_t)r, len - (uint32_t)r);

        if (ret)
            return ret;
    }
    vsock_host_watch(c);
    return 0;
}

static void host_on_fd(void *arg, uint32_t revents)
{
    struct vsock_conn *c = arg;
    int ret = 0;

    if (c->state == VSOCK_HANDSHAKE) {
        vsock_listen_on_client(c);
        return;
    }
    if (revents & (EPOLLHUP | EPOLLERR)) {
        /* Held data can no longer reach dom0: §5.10.6.6 RST, not loss. */
        if (c->buf_len || c->state == VSOCK_REQUESTING) {
            vsock_conn_reset(c);
            vsock_rx_drain(c->v);
            return;
        }
        host_gone(c);
    }
    if (revents & EPOLLIN)
        c->readable = true;
    if ((revents & EPOLLOUT) && c->buf_len)
        ret = vsock_host_flush(c);
    if (ret)
        vsock_conn_reset(c);
    else if (c->state != VSOCK_FREE)
        vsock_conn_requeue(c);
    vsock_rx_drain(c->v);
}
