/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (VIRTIO 1.2 §5.1): a network card whose wire is a tap
 * interface in dom0, either one the administrator made (tap=) or one made
 * here and put on a bridge as Xen's vif-bridge does (bridge=). Frames go
 * between the tap and the guest's buffers with no copy in between
 * (net-rx.c, net-tx.c); checksum and segmentation offloads are the tap's
 * own, through its virtio-net header. With queues=N the tap has N queues,
 * one per receive/transmit pair (VIRTIO_NET_F_MQ), and the kernel spreads
 * flows over those the driver enabled; the control queue (net-ctrl.c)
 * comes after the pairs.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "net-tap.h"
#include "net.h"

#define NET_DEVICE_ID 1
#define NET_CONFIG_SIZE (offsetof(struct virtio_net_config, mtu) + 2)
#define NET_MTU_MIN 68
#define NET_MTU_MAX 65535
#define BIT(f) (1ULL << (f))

static const char *const net_options[] = {
    "tap=IFNAME: attach to this existing tap interface",
    "bridge=BRIDGE: make a tap vif-virtio<domid>.<n>, up, on this bridge",
    "mac=MAC: the guest's MAC address (default 00:16:3e:xx:xx:xx from the "
    "domid and the device's number)",
    "mtu=N: MTU for the tap and the guest, 68..65535 (default: the tap's)",
    "queues=N: receive/transmit queue pairs, 1..31, each on a queue of the "
    "tap (N > 1: a multi_queue tap for tap=; default 1)",
    NULL,
};

/* ---- the tap in the loop --------------------------------------------------
 */

void net_watch(struct net_pair *p)
{
    struct net *n = p->n;
    uint32_t events = 0;
    int ret;

    if (n->started && p->rx.on)
        events |= EPOLLIN;
    if (n->started && p->tx.held)
        events |= EPOLLOUT;
    if (!p->watched || events == p->events)
        return;
    ret = xvdm_dev_modify_fd(n->dev, p->tap, events);
    if (ret)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "cannot watch tap %s queue %u: %s",
                     n->ifname, p->index, strerror(-ret));
    else
        p->events = events;
}

static void net_unwatch(struct net_pair *p)
{
    if (p->watched)
        xvdm_dev_unwatch_fd(p->n->dev, p->tap);
    p->watched = false;
}

/* The interface was deleted under us: the fd reports an error for ever,
 * so stop watching it, and tell the guest its link is down. */
static void net_tap_gone(struct net_pair *p)
{
    struct net *n = p->n;

    xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "tap %s is gone: link down",
                 n->ifname);
    net_unwatch(p);
    n->config.status = 0;
    xvdm_dev_config_changed(n->dev);
}

static void net_on_tap(void *arg, uint32_t revents)
{
    struct net_pair *p = arg;

    if (revents & (EPOLLERR | EPOLLHUP)) {
        net_tap_gone(p);
        return;
    }
    if (!p->n->started)
        return;
    if (revents & EPOLLOUT)
        net_tx_drain(p);
    if (revents & EPOLLIN)
        net_rx_drain(p);
}

static int net_watch_queue(struct net_pair *p)
{
    int ret = xvdm_dev_watch_fd(p->n->dev, p->tap, 0, net_on_tap, p);

    p->watched = ret == 0;
    p->events = 0;
    return ret;
}

/* Read the taps of the pairs in use, once the driver is ready. */
static void net_listen(struct net *n)
{
    for (unsigned i = 0; i < n->nr_pairs; i++) {
        n->pair[i].rx.on = n->started && i < n->active;
        net_watch(&n->pair[i]);
    }
}

/* A detached queue is watched no more: it has no device behind it. */
static int net_attach(struct net_pair *p, bool attach)
{
    int ret;

    if (p->attached == attach)
        return 0;
    if (!attach)
        net_unwatch(p);
    ret = tap_set_queue(p->tap, attach);
    if (ret == 0)
        p->attached = attach;
    if (ret == 0 && attach)
        ret = net_watch_queue(p);
    if (ret)
        xvdm_dev_log(p->n->dev, XVDM_LOG_ERROR,
                     "tap %s: cannot %s queue %u: %s", p->n->ifname,
                     attach ? "attach" : "detach", p->index, strerror(-ret));
    return ret;
}

int net_set_pairs(struct net *n, unsigned active)
{
    int ret = 0;

    for (unsigned i = 0; i < n->nr_pairs && ret == 0; i++)
        ret = net_attach(&n->pair[i], i < active);
    if (ret == 0)
        n->active = active;
    net_listen(n);
    return ret;
}

/* ---- virtio -----------------------------------------------------------------
 */

static void net_config_read(void *priv, uint32_t offset, void *buf,
                            uint32_t len)
{
    struct net *n = priv;

    memcpy(buf, (const uint8_t *)&n->config + offset, len);
}

/* VIRTIO 1.2 §5.1.3.1: a feature the driver may accept only with
 * another (any one of `needs`). */
static const struct {
    unsigned feature;
    uint64_t needs;
} net_feature_deps[] = {
    {VIRTIO_NET_F_GUEST_TSO4, BIT(VIRTIO_NET_F_GUEST_CSUM)},
    {VIRTIO_NET_F_GUEST_TSO6, BIT(VIRTIO_NET_F_GUEST_CSUM)},
    {VIRTIO_NET_F_GUEST_ECN,
     BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6)},
    {VIRTIO_NET_F_HOST_TSO4, BIT(VIRTIO_NET_F_CSUM)},
    {VIRTIO_NET_F_HOST_TSO6, BIT(VIRTIO_NET_F_CSUM)},
    {VIRTIO_NET_F_HOST_ECN,
     BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6)},
    {VIRTIO_NET_F_CTRL_RX, BIT(VIRTIO_NET_F_CTRL_VQ)},
    {VIRTIO_NET_F_CTRL_MAC_ADDR, BIT(VIRTIO_NET_F_CTRL_VQ)},
    {VIRTIO_NET_F_MQ, BIT(VIRTIO_NET_F_CTRL_VQ)},
};

/* Guest receive offloads and the tap's names for them. */
static const struct {
    unsigned feature;
    unsigned tun;
} net_guest_offloads[] = {
    {VIRTIO_NET_F_GUEST_CSUM, TUN_F_CSUM},
    {VIRTIO_NET_F_GUEST_TSO4, TUN_F_TSO4},
    {VIRTIO_NET_F_GUEST_TSO6, TUN_F_TSO6},
    {VIRTIO_NET_F_GUEST_ECN, TUN_F_TSO_ECN},
};

#define NET_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static unsigned net_tun_flags(uint64_t features)
{
    unsigned flags = 0;

    for (unsigned i = 0; i < NET_COUNT(net_guest_offloads); i++)
        if (features & BIT(net_guest_offloads[i].feature))
            flags |= net_guest_offloads[i].tun;
    return flags;
}

/* The receive room to gather before reading a frame, and the least to
 * try with: a frame larger than the MTU comes only with GSO. */
static void net_rx_sizes(struct net *n, uint64_t features)
{
    size_t mtu_frame = NET_HDR_LEN + n->mtu + NET_L2_OVERHEAD;
    bool gso = features &
               (BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6));

    for (unsigned i = 0; i < n->nr_pairs; i++) {
        n->pair[i].rx.least = mtu_frame;
        n->pair[i].rx.want = gso ? NET_HDR_LEN + NET_FRAME_MAX : mtu_frame;
    }
}

static int net_features_ok(void *priv, uint64_t features)
{
    struct net *n = priv;
    int ret;

    for (unsigned i = 0; i < NET_COUNT(net_feature_deps); i++) {
        if ((features & BIT(net_feature_deps[i].feature)) &&
            !(features & net_feature_deps[i].needs)) {
            xvdm_dev_guest_error(n->dev,
                                 "driver accepted feature %u "
                                 "without the one it depends on",
                                 net_feature_deps[i].feature);
            return -EINVAL;
        }
    }
    /* Offloads are the interface's: any of its queues sets them. */
    ret = tap_set_offloads(n->pair[0].tap, net_tun_flags(features));
    if (ret) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "tap %s refused offloads 0x%x: "
                     "%s",
                     n->ifname, net_tun_flags(features), strerror(-ret));
        return ret;
    }
    n->mrg_rxbuf = features & BIT(VIRTIO_NET_F_MRG_RXBUF);
    n->guest_csum = features & BIT(VIRTIO_NET_F_GUEST_CSUM);
    net_rx_sizes(n, features);
    return 0;
}

static void net_start(void *priv)
{
    struct net *n = priv;

    n->started = true;
    net_listen(n);
}

static void net_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct net *n = priv;
    struct net_pair *p;

    if (index == NET_CTRL_QUEUE(n->nr_pairs)) {
        net_ctrl_drain(n);
        return;
    }
    p = &n->pair[index / 2];
    if (p->index >= n->active)
        return; /* §5.1.6.5.5: its chains wait for VQ_PAIRS_SET */
    if (index == NET_RX_QUEUE(p->index))
        net_rx_drain(p);
    else
        net_tx_drain(p);
}

/* Back to what create() set up: one pair, the MAC of the options. */
static void net_reset(void *priv)
{
    struct net *n = priv;

    n->started = false;
    for (unsigned i = 0; i < n->nr_pairs; i++) {
        net_rx_reset(&n->pair[i]);
        net_tx_reset(&n->pair[i]);
    }
    memcpy(n->config.mac, n->mac, sizeof(n->mac));
    net_set_pairs(n, 1);
}

/* ---- options ------------------------------------------------------------ */

/* Xen's OUI, then bit 7 set, the domid's 15 bits and the device's number:
 * stable across restarts, one per device, and never one libxl picks
 * (its random ones keep bit 7 of the fourth byte clear). */
static void net_default_mac(struct net *n, unsigned index)
{
    uint32_t domid = xvdm_dev_domid(n->dev);
    uint8_t *mac = n->config.mac;

    mac[0] = 0x00;
    mac[1] = 0x16;
    mac[2] = 0x3e;
    mac[3] = (uint8_t)(0x80 | ((domid >> 8) & 0x7f));
    mac[4] = (uint8_t)domid;
    mac[5] = (uint8_t)index;
}

static int net_parse_mac(struct net *n, const char *s)
{
    uint8_t *mac = n->config.mac;
    int end = 0;

    if (sscanf(s, "%2hhx:%2hhx:%2hhx:%2hhx:%2hhx:%2hhx%n", &mac[0], &mac[1],
               &mac[2], &mac[3], &mac[4], &mac[5], &end) != 6 ||
        s[end] != '\0' || strlen(s) != 17) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "mac='%s' is not six hex bytes like 00:16:3e:00:00:01", s);
        return -EINVAL;
    }
    if ((mac[0] & 1) ||
        !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "mac='%s' is not a unicast address", s);
        return -EINVAL;
    }
    return 0;
}

/* The device's number among this guest's net devices: "net2" -> 2. */
static unsigned net_index(struct net *n)
{
    const char *name = xvdm_dev_name(n->dev);

    return (unsigned)strtoul(name + strcspn(name, "0123456789"), NULL, 10);
}

/* vif-virtio<domid>.<n> as Xen names vifs vif<domid>.<n>; an interface
 * name has 15 bytes, so large domids get the short form vifv<domid>.<n>. */
static void net_bridge_ifname(struct net *n)
{
    uint32_t domid = xvdm_dev_domid(n->dev);
    unsigned index = net_index(n);

    if (snprintf(n->ifname, sizeof(n->ifname), "vif-virtio%u.%u", domid,
                 index) >= (int)sizeof(n->ifname))
        snprintf(n->ifname, sizeof(n->ifname), "vifv%u.%u", domid, index);
}

/* ---- setting up ------------------------------------------------------------
 */

/* One tap queue per pair, all attached. */
static int net_open_queues(struct net *n, bool create)
{
    for (unsigned i = 0; i < n->nr_pairs; i++) {
        struct net_pair *p = &n->pair[i];

        p->tap =
            tap_open(n->ifname, create && i == 0, n->nr_pairs > 1, NET_HDR_LEN);
        if (p->tap < 0)
            return p->tap;
        p->attached = true;
    }
    return 0;
}

static int net_open_tap(struct net *n, const char *tap, const char *bridge)
{
    int ret;

    if (!tap == !bridge) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "give one of tap=IFNAME or bridge=BRIDGE");
        return -EINVAL;
    }
    if (tap && strlen(tap) >= IFNAMSIZ) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "tap='%s' is longer than %d bytes",
                     tap, IFNAMSIZ - 1);
        return -EINVAL;
    }
    if (tap)
        snprintf(n->ifname, sizeof(n->ifname), "%s", tap);
    else
        net_bridge_ifname(n);
    ret = net_open_queues(n, bridge != NULL);
    if (ret == 0)
        return 0;
    if (tap && ret == -EINVAL && n->nr_pairs > 1)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "tap='%s' is not a multi_queue tap, which queues=%u "
                     "needs",
                     tap, n->nr_pairs);
    else if (tap)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "tap='%s': %s", tap,
                     ret == -ENODEV ? "no such interface" : strerror(-ret));
    else
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "cannot make tap %s: %s",
                     n->ifname, strerror(-ret));
    return ret;
}

/* What vif-bridge does for a vif: up, and a port of the bridge. The tap
 * leaves the bridge when it goes away, with the fd. */
static int net_join_bridge(struct net *n, const char *bridge)
{
    int ret = tap_set_up(n->ifname);

    if (ret) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "cannot bring %s up: %s",
                     n->ifname, strerror(-ret));
        return ret;
    }
    ret = tap_add_to_bridge(n->ifname, bridge);
    if (ret)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "bridge='%s': cannot add %s to it: %s", bridge, n->ifname,
                     ret == -ENODEV ? "no such bridge" : strerror(-ret));
    return ret;
}

static int net_setup_mtu(struct net *n, uint64_t mtu)
{
    int ret = mtu ? tap_set_mtu(n->ifname, (unsigned)mtu) : 0;

    if (ret == 0)
        ret = tap_get_mtu(n->ifname, &n->mtu);
    if (ret)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "%s: cannot %s its MTU: %s",
                     n->ifname, mtu ? "set" : "read", strerror(-ret));
    return ret;
}

/* Transmit offloads need only the header (the tap takes partial checksums
 * and GSO frames from us as they are); receive ones, what the tap agrees
 * to hand over, probed largest first. */
static int net_features(struct net *n, uint64_t mtu, uint64_t *features)
{
    static const unsigned tries[] = {
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_F_CSUM};
    uint64_t f = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) |
                 BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_NET_F_CSUM) |
                 BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_HOST_TSO6) |
                 BIT(VIRTIO_NET_F_HOST_ECN) | BIT(VIRTIO_NET_F_CTRL_VQ) |
                 BIT(VIRTIO_NET_F_CTRL_RX) | BIT(VIRTIO_NET_F_CTRL_MAC_ADDR);
    int ret = tap_probe_offloads(n->pair[0].tap, tries, NET_COUNT(tries),
                                 &n->tun_offloads);

    if (ret) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "%s: cannot set offloads: %s",
                     n->ifname, strerror(-ret));
        return ret;
    }
    for (unsigned i = 0; i < NET_COUNT(net_guest_offloads); i++)
        if (n->tun_offloads & net_guest_offloads[i].tun)
            f |= BIT(net_guest_offloads[i].feature);
    if (mtu) {
        f |= BIT(VIRTIO_NET_F_MTU);
        n->config.mtu = htole16((uint16_t)mtu);
    }
    if (n->nr_pairs > 1)
        f |= BIT(VIRTIO_NET_F_MQ);
    n->config.max_virtqueue_pairs = htole16((uint16_t)n->nr_pairs);
    n->config.status = htole16(VIRTIO_NET_S_LINK_UP);
    *features = f;
    return 0;
}

static int net_alloc_pairs(struct net *n, uint64_t queues)
{
    n->pair = calloc(queues, sizeof(*n->pair));
    if (!n->pair)
        return -ENOMEM;
    n->nr_pairs = (unsigned)queues;
    for (unsigned i = 0; i < n->nr_pairs; i++)
        n->pair[i] = (struct net_pair){.n = n, .index = i, .tap = -1};
    return 0;
}

static int net_parse_options(struct net *n, const struct xvdm_options *opts,
                             uint64_t *mtu)
{
    const char *mac = xvdm_opt_get(opts, "mac");
    uint64_t queues = 1;
    int ret = xvdm_opt_u64(n->dev, opts, "mtu", NET_MTU_MIN, NET_MTU_MAX, mtu);

    if (ret == 0)
        ret = xvdm_opt_u64(n->dev, opts, "queues", 1, NET_PAIRS_MAX, &queues);
    if (ret == 0)
        ret = net_alloc_pairs(n, queues);
    if (ret == 0 && mac)
        ret = net_parse_mac(n, mac);
    else if (ret == 0)
        net_default_mac(n, net_index(n));
    memcpy(n->mac, n->config.mac, sizeof(n->mac));
    return ret;
}

static void net_destroy(void *priv)
{
    struct net *n = priv;

    for (unsigned i = 0; i < n->nr_pairs; i++) {
        net_unwatch(&n->pair[i]);
        if (n->pair[i].tap >= 0)
            close(n->pair[i].tap);
    }
    free(n->pair);
    free(n);
}

static int net_setup(struct net *n, const struct xvdm_options *opts,
                     uint64_t *features)
{
    const char *bridge = xvdm_opt_get(opts, "bridge");
    uint64_t mtu = 0;
    int ret = net_parse_options(n, opts, &mtu);

    if (ret == 0)
        ret = net_open_tap(n, xvdm_opt_get(opts, "tap"), bridge);
    if (ret == 0)
        ret = net_setup_mtu(n, mtu);
    if (ret == 0 && bridge)
        ret = net_join_bridge(n, bridge);
    if (ret == 0)
        ret = net_features(n, mtu, features);
    for (unsigned i = 0; i < n->nr_pairs && ret == 0; i++)
        ret = net_watch_queue(&n->pair[i]);
    if (ret == 0)
        ret = net_set_pairs(n, 1);
    return ret;
}

static int net_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                      struct xvdm_device_setup *setup, void **priv)
{
    struct net *n = calloc(1, sizeof(*n));
    const uint8_t *m;
    int ret;

    if (!n)
        return -ENOMEM;
    n->dev = dev;
    ret = net_setup(n, opts, &setup->features);
    if (ret) {
        net_destroy(n);
        return ret;
    }
    m = n->config.mac;
    xvdm_dev_log(dev, XVDM_LOG_INFO,
                 "tap %s, %u queue pair%s, mtu %u, mac "
                 "%02x:%02x:%02x:%02x:%02x:%02x, receive offloads 0x%x",
                 n->ifname, n->nr_pairs, n->nr_pairs > 1 ? "s" : "", n->mtu,
                 m[0], m[1], m[2], m[3], m[4], m[5], n->tun_offloads);
    net_rx_sizes(n, 0);
    setup->num_queues = (uint16_t)(NET_CTRL_QUEUE(n->nr_pairs) + 1);
    for (unsigned i = 0; i < 2 * n->nr_pairs; i++)
        setup->queue_size_max[i] = NET_QUEUE_SIZE;
    setup->queue_size_max[NET_CTRL_QUEUE(n->nr_pairs)] = NET_CTRL_QUEUE_SIZE;
    setup->config_size = NET_CONFIG_SIZE;
    *priv = n;
    return 0;
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "net",
    .summary = "network card (virtio-net) on a tap interface",
    .device_id = NET_DEVICE_ID,
    .options = net_options,
    .create = net_create,
    .destroy = net_destroy,
    .config_read = net_config_read,
    .features_ok = net_features_ok,
    .start = net_start,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
};
