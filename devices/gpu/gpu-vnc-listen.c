/* SPDX-License-Identifier: MIT */
/*
 * Where vnc= listens: unix:PATH, PORT or HOST:PORT. xvdm makes the
 * socket, not libvncserver: 0.9.14 listens on TCP only, and on every
 * interface unless told otherwise. It is made when the device is, so
 * before --user and --chroot.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/uds-bind.h"
#include "gpu.h"

#define VNC_UNIX "unix:"
#define VNC_HOST_DEFAULT "127.0.0.1"
#define VNC_BACKLOG 4

static int gpu_vnc_bad(struct xvdm_dev *dev, const char *addr)
{
    xvdm_dev_log(dev, XVDM_LOG_ERROR,
                 "vnc='%s' is not unix:PATH, PORT or HOST:PORT (HOST an "
                 "IPv4 address, PORT 1..65535)",
                 addr);
    return -EINVAL;
}

static int gpu_vnc_cannot(struct xvdm_dev *dev, const char *addr, int fd,
                          int err)
{
    xvdm_dev_log(dev, XVDM_LOG_ERROR, "cannot listen on vnc='%s': %s", addr,
                 strerror(-err));
    if (fd >= 0)
        close(fd);
    return err;
}

/* Mode 0600, set before listen(): no one connects while it is the
 * umask's. Under --chroot DIR, PATH must be in DIR (xvdm removes it at
 * the end, from inside), and is named as the instance reaches it now
 * (from inside too, for a device added once serving). */
static int gpu_vnc_listen_unix(struct xvdm_dev *dev, const char *addr,
                               char **where)
{
    const char *given = addr + strlen(VNC_UNIX);
    const char *path = xvdm_host_path(given);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, ret;

    if (!*given || strlen(given) >= sizeof(sa.sun_path))
        return gpu_vnc_bad(dev, addr);
    if (!path) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR,
                     "vnc='%s' is outside --chroot's directory", addr);
        return -EINVAL;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ret = fd < 0 ? -errno : uds_bind(fd, &sa);
    if (ret)
        return gpu_vnc_cannot(dev, addr, fd, ret);
    ret = chmod(path, 0600) || listen(fd, VNC_BACKLOG) ? -errno : 0;
    if (!ret)
        *where = strdup(addr);
    if (!ret && !*where)
        ret = -ENOMEM;
    if (ret) {
        unlink(path);
        return gpu_vnc_cannot(dev, addr, fd, ret);
    }
    return fd;
}

/* PORT: 1..65535, digits only. */
static bool gpu_vnc_port(const char *s, uint16_t *port)
{
    size_t len = strlen(s);
    unsigned long n;

    if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
        return false;
    n = strtoul(s, NULL, 10);
    *port = (uint16_t)n;
    return n >= 1 && n <= 65535;
}

/* HOST:PORT or PORT into sa; HOST, when not given, the loopback's. */
static bool gpu_vnc_inet(const char *addr, struct sockaddr_in *sa)
{
    const char *colon = strrchr(addr, ':');
    char host[INET_ADDRSTRLEN] = VNC_HOST_DEFAULT;
    uint16_t port;

    if (colon && (colon == addr || (size_t)(colon - addr) >= sizeof(host)))
        return false;
    if (colon)
        snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    if (!gpu_vnc_port(colon ? colon + 1 : addr, &port) ||
        inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return false;
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    return true;
}

/* SO_REUSEADDR: a restarted xvdm gets its port back while the last one's
 * connections linger in TIME_WAIT. */
static int gpu_vnc_listen_tcp(struct xvdm_dev *dev, const char *addr,
                              char **where)
{
    const int one = 1;
    struct sockaddr_in sa = {0};
    char host[INET_ADDRSTRLEN], at[INET_ADDRSTRLEN + sizeof(":65535")];
    int fd, ret;

    if (!gpu_vnc_inet(addr, &sa))
        return gpu_vnc_bad(dev, addr);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ret = fd < 0 ||
                  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
                  bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) ||
                  listen(fd, VNC_BACKLOG)
              ? -errno
              : 0;
    if (ret)
        return gpu_vnc_cannot(dev, addr, fd, ret);
    inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
    snprintf(at, sizeof(at), "%s:%u", host, ntohs(sa.sin_port));
    *where = strdup(at);
    if (!*where)
        return gpu_vnc_cannot(dev, addr, fd, -ENOMEM);
    return fd;
}

int gpu_vnc_listen(struct xvdm_dev *dev, const char *addr, char **where)
{
    if (strncmp(addr, VNC_UNIX, strlen(VNC_UNIX)) == 0)
        return gpu_vnc_listen_unix(dev, addr, where);
    return gpu_vnc_listen_tcp(dev, addr, where);
}
