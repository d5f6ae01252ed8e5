/* SPDX-License-Identifier: MIT */
/* Binding a device's listening Unix socket (see uds-bind.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uds-bind.h"

/* connect() to a socket file no one listens on is refused. */
static bool uds_stale(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool stale = fd >= 0 &&
                 connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 &&
                 errno == ECONNREFUSED;

    if (fd >= 0)
        close(fd);
    return stale;
}

int uds_bind(int fd, const struct sockaddr_un *sa)
{
    if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
        return 0;
    if (errno != EADDRINUSE)
        return -errno;
    if (!uds_stale(sa))
        return -EADDRINUSE;
    if (unlink(sa->sun_path) != 0)
        return -errno;
    return bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? -errno : 0;
}
