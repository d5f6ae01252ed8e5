/* SPDX-License-Identifier: MIT */
/* The tap side of virtio-net (see net-tap.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-tap.h"

static int tap_fail(char *err, size_t errlen, const char *what,
                    const char *name)
{
    int ret = -errno;

    snprintf(err, errlen, "%s '%s': %s", what, name, strerror(errno));
    return ret;
}

int net_tap_open(const char *name, int *fd, char *err, size_t errlen)
{
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
    int hdr = NET_TAP_HDR_LEN;

    if (strlen(name) >= IFNAMSIZ) {
        snprintf(err, errlen, "tap='%s' is longer than %d characters", name,
                 IFNAMSIZ - 1);
        return -EINVAL;
    }
    *fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0)
        return tap_fail(err, errlen, "cannot open /dev/net/tun for", name);
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(*fd, TUNSETIFF, &ifr) || ioctl(*fd, TUNSETVNETHDRSZ, &hdr)) {
        int ret = tap_fail(err, errlen, "cannot attach to tap", name);

        close(*fd);
        return ret;
    }
    return 0;
}

/* An ioctl on interface `name` through a throwaway socket. */
static int tap_ifreq(unsigned long req, struct ifreq *ifr, const char *name)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int ret;

    if (s < 0)
        return -errno;
    snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", name);
    ret = ioctl(s, req, ifr) ? -errno : 0;
    close(s);
    return ret;
}

int net_tap_join_bridge(const char *name, const char *bridge, char *err,
                        size_t errlen)
{
    struct ifreq ifr = {0};
    int ret, index;

    ret = tap_ifreq(SIOCGIFINDEX, &ifr, name);
    index = ifr.ifr_ifindex;
    if (ret == 0)
        ret = tap_ifreq(SIOCGIFFLAGS, &ifr, name);
    if (ret == 0) {
        ifr.ifr_flags |= IFF_UP;
        ret = tap_ifreq(SIOCSIFFLAGS, &ifr, name);
    }
    if (ret == 0) {
        memset(&ifr, 0, sizeof(ifr));
        ifr.ifr_ifindex = index;
        ret = tap_ifreq(SIOCBRADDIF, &ifr, bridge);
    }
    if (ret) {
        errno = -ret;
        return tap_fail(err, errlen, "cannot add the tap to bridge", bridge);
    }
    return 0;
}

int net_tap_set_mtu(const char *name, unsigned mtu, char *err, size_t errlen)
{
    struct ifreq ifr = {.ifr_mtu = (int)mtu};
    int ret = tap_ifreq(SIOCSIFMTU, &ifr, name);

    if (ret) {
        errno = -ret;
        return tap_fail(err, errlen, "cannot set the MTU of tap", name);
    }
    return 0;
}

unsigned net_tap_probe_offloads(int fd, unsigned wanted)
{
    unsigned ok = 0;

    /* Each with the checksum offload that segmentation needs. */
    for (unsigned bit = TUN_F_CSUM; bit <= TUN_F_TSO_ECN; bit <<= 1)
        if ((wanted & bit) &&
            ioctl(fd, TUNSETOFFLOAD, (unsigned long)(bit | TUN_F_CSUM)) == 0)
            ok |= bit;
    ioctl(fd, TUNSETOFFLOAD, 0UL);
    return ok;
}

int net_tap_set_offloads(int fd, unsigned tun_flags)
{
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)tun_flags) ? -errno : 0;
}
