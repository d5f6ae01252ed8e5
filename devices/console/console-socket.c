/* SPDX-License-Identifier: MIT */
/*
 * virtio-console's socket backend: a listening unix stream socket at
 * socket=PATH. One client at a time is the reader; while it is connected
 * the listener is not watched, so the next one waits in the backlog until
 * the first leaves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/uds-bind.h"
#include "console-backend-private.h"

static void con_socket_listen(struct con_backend *b, bool on)
{
    int ret = xvdm_dev_modify_fd(b->dev, b->listen_fd, on ? EPOLLIN : 0);

    if (ret)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "socket='%s': %s", b->path,
                     strerror(-ret));
}

static void con_socket_on_accept(void *arg, uint32_t revents)
{
    struct con_backend *b = arg;
    int fd = accept4(b->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0 && (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED))
        return;
    if (fd < 0) {
        /* Out of fds, say: the listener would stay readable, and the loop
         * spin on it. */
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "socket='%s': accept: %s; no more clients", b->path,
                     strerror(errno));
        con_socket_listen(b, false);
        return;
    }
    if (con_attach(b, fd, fd)) {
        close(fd);
        return;
    }
    con_socket_listen(b, false);
    xvdm_dev_log(b->dev, XVDM_LOG_INFO, "client connected on %s", b->path);
    b->notify(b->notify_arg, CON_EV_STATE);
}

void con_socket_lost(struct con_backend *b)
{
    close(b->in.fd);
    b->in.fd = b->out.fd = -1;
    con_socket_listen(b, true);
    xvdm_dev_log(b->dev, XVDM_LOG_INFO, "client left %s", b->path);
}

int con_socket_open(struct con_backend *b, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int ret;

    if (strlen(path) == 0 || strlen(path) >= sizeof(sa.sun_path)) {
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR,
                     "socket='%s' is not a path of 1..%zu bytes", path,
                     sizeof(sa.sun_path) - 1);
        return -EINVAL;
    }
    strcpy(sa.sun_path, path);
    b->listen_fd =
        socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ret = b->listen_fd < 0 ? -errno : uds_bind(b->listen_fd, &sa);
    if (!ret) {
        b->path = strdup(path);
        ret = !b->path ? -ENOMEM : listen(b->listen_fd, 1) ? -errno : 0;
    }
    if (!ret)
        ret = xvdm_dev_watch_fd(b->dev, b->listen_fd, EPOLLIN,
                                con_socket_on_accept, b);
    if (ret)
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "cannot listen on socket='%s': %s",
                     path, strerror(-ret));
    else
        xvdm_dev_log(b->dev, XVDM_LOG_INFO, "guest console on socket %s", path);
    return ret;
}

void con_socket_close(struct con_backend *b)
{
    if (b->in.fd >= 0)
        close(b->in.fd);
    if (b->listen_fd >= 0) {
        xvdm_dev_unwatch_fd(b->dev, b->listen_fd);
        close(b->listen_fd);
    }
    if (b->path)
        unlink(b->path);
    free(b->path);
}
