/* SPDX-License-Identifier: MIT */
/* The tap side of virtio-net (see net-tap.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-tap.h"

static void tap_ifreq(struct ifreq *ifr, const char *name)
{
    memset(ifr, 0, sizeof(*ifr));
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
}

/* Interface ioctls go through any socket; datagram INET is always there. */
static int tap_if_ioctl(unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

    if (s < 0)
        return -errno;
    if (ioctl(s, req, ifr))
        ret = -errno;
    close(s);
    return ret;
}

/* TUNSETIFF makes the tap when there is none; attaching must not. */
static int tap_attach(int fd, const char *name, bool create, bool multi_queue)
{
    struct ifreq ifr;

    if (!create && if_nametoindex(name) == 0)
        return -ENODEV;
    tap_ifreq(&ifr, name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
                    (create ? IFF_TUN_EXCL : 0) |
                    (multi_queue ? IFF_MULTI_QUEUE : 0);
    return ioctl(fd, TUNSETIFF, &ifr) ? -errno : 0;
}

int tap_open(const char *name, bool create, bool multi_queue, unsigned hdr_len)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    int sz = (int)hdr_len, le = 1, ret;

    if (fd < 0)
        return -errno;
    ret = tap_attach(fd, name, create, multi_queue);
    /* VERSION_1 headers are little-endian on every host. */
    if (ret == 0 &&
        (ioctl(fd, TUNSETVNETHDRSZ, &sz) || ioctl(fd, TUNSETVNETLE, &le)))
        ret = -errno;
    if (ret == 0)
        ret = tap_set_offloads(fd, 0);
    if (ret) {
        close(fd);
        return ret;
    }
    return fd;
}

int tap_set_queue(int fd, bool attach)
{
    struct ifreq ifr = {.ifr_flags =
                            attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE};

    return ioctl(fd, TUNSETQUEUE, &ifr) ? -errno : 0;
}

int tap_set_up(const char *name)
{
    struct ifreq ifr;
    int ret;

    tap_ifreq(&ifr, name);
    ret = tap_if_ioctl(SIOCGIFFLAGS, &ifr);
    if (ret)
        return ret;
    ifr.ifr_flags |= IFF_UP;
    return tap_if_ioctl(SIOCSIFFLAGS, &ifr);
}

int tap_add_to_bridge(const char *name, const char *bridge)
{
    struct ifreq ifr;
    unsigned index = if_nametoindex(name);

    if (index == 0)
        return -errno;
    tap_ifreq(&ifr, bridge);
    ifr.ifr_ifindex = (int)index;
    return tap_if_ioctl(SIOCBRADDIF, &ifr);
}

int tap_set_mtu(const char *name, unsigned mtu)
{
    struct ifreq ifr;

    tap_ifreq(&ifr, name);
    ifr.ifr_mtu = (int)mtu;
    return tap_if_ioctl(SIOCSIFMTU, &ifr);
}

int tap_get_mtu(const char *name, unsigned *mtu)
{
    struct ifreq ifr;
    int ret;

    tap_ifreq(&ifr, name);
    ret = tap_if_ioctl(SIOCGIFMTU, &ifr);
    if (ret == 0)
        *mtu = (unsigned)ifr.ifr_mtu;
    return ret;
}

int tap_set_offloads(int fd, unsigned tun_flags)
{
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) ? -errno : 0;
}

int tap_probe_offloads(int fd, const unsigned *wanted, unsigned n,
                       unsigned *got)
{
    *got = 0;
    for (unsigned i = 0; i < n && !*got; i++)
        if (tap_set_offloads(fd, wanted[i]) == 0)
            *got = wanted[i];
    return tap_set_offloads(fd, 0);
}
