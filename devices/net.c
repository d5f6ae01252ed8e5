/* SPDX-License-Identifier: MIT */
/*
 * virtio-net (VIRTIO 1.2 §5.1) on a tap: one receive and one transmit
 * queue, the guest's MAC (Xen's OUI by default), link status, an MTU
 * when given, mergeable receive buffers, and the checksum and
 * segmentation offloads the tap takes, passed through its virtio-net
 * header. Transmit writes the guest's buffers straight to the tap;
 * receive is in net-rx.c.
 */
#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "net.h"

#define NET_DEVICE_ID 1
#define NET_CONFIG_SIZE 12 /* mac, status, max_virtqueue_pairs, mtu */

static const char *const net_options[] = {
    "tap=IFNAME: attach to tap IFNAME (made when it does not exist)",
    "bridge=BRIDGE: make tap xvdm<domid>.<n> and add it to BRIDGE",
    "mac=MAC: the guest's MAC (default: 00:16:3e, then from domid and n)",
    "mtu=N: the MTU offered to the guest and set on the tap (68..65535)",
    NULL,
};

/* Offload features and the tap flag each needs for frames to the guest
 * (GUEST_*) or from it (HOST_*: the tap takes those frames anyway). */
static const struct {
    unsigned bit;
    unsigned tun;
} net_offloads[] = {
    {VIRTIO_NET_F_CSUM, TUN_F_CSUM},
    {VIRTIO_NET_F_HOST_TSO4, TUN_F_TSO4},
    {VIRTIO_NET_F_HOST_TSO6, TUN_F_TSO6},
    {VIRTIO_NET_F_HOST_ECN, TUN_F_TSO_ECN},
    {VIRTIO_NET_F_GUEST_CSUM, TUN_F_CSUM},
    {VIRTIO_NET_F_GUEST_TSO4, TUN_F_TSO4},
    {VIRTIO_NET_F_GUEST_TSO6, TUN_F_TSO6},
    {VIRTIO_NET_F_GUEST_ECN, TUN_F_TSO_ECN},
};

void net_watch(struct net *n, uint32_t events, bool on)
{
    uint32_t want = on ? n->watched | events : n->watched & ~events;

    if (want != n->watched && xvdm_dev_modify_fd(n->dev, n->fd, want) == 0)
        n->watched = want;
}

/* ---- transmit ------------------------------------------------------------ */

/* A chain the device can send: header plus frame, nothing to write. */
static bool net_tx_chain_ok(struct net *n, const struct xvdm_chain *c)
{
    const char *why = NULL;

    if (c->in_num)
        why = "device-writable buffer";
    else if (c->out_len < NET_TAP_HDR_LEN)
        why = "shorter than the virtio-net header";
    else if (c->out_len > NET_TAP_HDR_LEN + NET_FRAME_MAX)
        why = "frame larger than 64 KiB";
    if (why)
        xvdm_dev_guest_error(n->dev, "transmit chain of %u bytes: %s; "
                                     "dropped",
                             c->out_len, why);
    return !why;
}

/* Send the held chain. false when the tap is full (the chain stays). */
static bool net_tx_send(struct net *n)
{
    ssize_t r = writev(n->fd, n->tx_chain.iov, n->tx_chain.out_num);

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (r < 0)
        xvdm_dev_log(n->dev, XVDM_LOG_WARN, "writing to %s: %s; frame "
                                           "dropped",
                     n->ifname, strerror(errno));
    return true;
}

/* Pop the next chain worth sending into tx_chain. 1, 0 when none, or a
 * negative errno (queue broken). Bad chains go back at once. */
static int net_tx_take(struct net *n, struct xvdm_queue *q, unsigned *done)
{
    int ret;

    n->tx_chain = (struct xvdm_chain){.iov = n->tx_iov,
                                      .iov_cap = NET_IOV_MAX};
    while ((ret = xvdm_queue_pop(q, &n->tx_chain)) == 1 &&
           !net_tx_chain_ok(n, &n->tx_chain)) {
        xvdm_queue_push(q, &n->tx_chain, 0);
        (*done)++;
    }
    return ret;
}

static void net_tx(struct net *n)
{
    struct xvdm_queue *q = xvdm_dev_queue(n->dev, NET_TX_QUEUE);
    unsigned budget = NET_BUDGET, done = 0;
    int ret = 0;

    do {
        xvdm_queue_disable_kicks(q);
        for (; budget; budget--) {
            if (!n->tx_held && (ret = net_tx_take(n, q, &done)) != 1)
                break;
            n->tx_held = true;
            if (!net_tx_send(n))
                break;
            xvdm_queue_push(q, &n->tx_chain, 0);
            n->tx_held = false;
            done++;
        }
        if (ret < 0 || n->tx_held || !budget)
            break;
    } while (xvdm_queue_enable_kicks(q));
    /* A frame the tap could not take yet: send it when it has room. */
    net_watch(n, EPOLLOUT, n->tx_held);
    if (!budget)
        xvdm_queue_defer(q);
    if (done)
        xvdm_queue_notify_guest(q);
}

static void net_on_tap(void *arg, uint32_t revents)
{
    struct net *n = arg;

    if (revents & EPOLLOUT)
        net_tx(n);
    if (revents & EPOLLIN)
        net_rx(n);
}

/* ---- setting up -------------------------------------------------------------- */

/* The device's rank among the guest's net devices ("net1" -> 1). */
static unsigned net_index(const struct net *n)
{
    const char *name = xvdm_dev_name(n->dev);

    return (unsigned)strtoul(name + strcspn(name, "0123456789"), NULL, 10);
}

/* Xen's OUI, then the domain id (15 bits) and the device's rank: the same
 * MAC every time the guest starts. */
static void net_default_mac(struct net *n)
{
    uint32_t domid = xvdm_dev_domid(n->dev);

    n->mac[0] = 0x00;
    n->mac[1] = 0x16;
    n->mac[2] = 0x3e;
    n->mac[3] = (uint8_t)((domid >> 8) & 0x7f);
    n->mac[4] = (uint8_t)domid;
    n->mac[5] = (uint8_t)net_index(n);
}

static int net_parse_mac(struct net *n, const char *text)
{
    unsigned b[6];
    char end;

    if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
               &b[4], &b[5], &end) != 6 ||
        (b[0] & 1) || !(b[0] | b[1] | b[2] | b[3] | b[4] | b[5])) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "mac='%s' is not a unicast MAC (xx:xx:xx:xx:xx:xx)",
                     text);
        return -EINVAL;
    }
    for (unsigned i = 0; i < 6; i++)
        n->mac[i] = (uint8_t)b[i];
    return 0;
}

/* tap= or bridge=, exactly one: the tap to open. */
static int net_tap_name(struct net *n, const struct xvdm_options *opts,
                        const char **bridge)
{
    const char *tap = xvdm_opt_get(opts, "tap");

    *bridge = xvdm_opt_get(opts, "bridge");
    if (!tap == !*bridge) {
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR,
                     "give exactly one of tap=IFNAME and bridge=BRIDGE");
        return -EINVAL;
    }
    if (tap)
        snprintf(n->ifname, sizeof(n->ifname), "%s", tap);
    else
        snprintf(n->ifname, sizeof(n->ifname), "xvdm%u.%u",
                 xvdm_dev_domid(n->dev), net_index(n));
    return 0;
}

static int net_open_tap(struct net *n, const struct xvdm_options *opts)
{
    const char *bridge;
    char err[256];
    int ret;

    ret = net_tap_name(n, opts, &bridge);
    if (ret)
        return ret;
    ret = net_tap_open(n->ifname, &n->fd, err, sizeof(err));
    if (ret == 0 && bridge)
        ret = net_tap_join_bridge(n->ifname, bridge, err, sizeof(err));
    if (ret == 0 && n->mtu)
        ret = net_tap_set_mtu(n->ifname, n->mtu, err, sizeof(err));
    if (ret)
        xvdm_dev_log(n->dev, XVDM_LOG_ERROR, "%s", err);
    return ret;
}

static uint64_t net_features(struct net *n)
{
    uint64_t f = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS) |
                 (1ULL << VIRTIO_NET_F_MRG_RXBUF);
    unsigned wanted = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;

    n->tun_offloads = net_tap_probe_offloads(n->fd, wanted);
    for (size_t i = 0; i < sizeof(net_offloads) / sizeof(*net_offloads); i++)
        if (n->tun_offloads & net_offloads[i].tun)
            f |= 1ULL << net_offloads[i].bit;
    if (n->mtu)
        f |= 1ULL << VIRTIO_NET_F_MTU;
    return f;
}

static int net_options_parse(struct net *n, const struct xvdm_options *opts)
{
    const char *mac = xvdm_opt_get(opts, "mac");
    uint64_t mtu = 0;
    int ret;

    net_default_mac(n);
    ret = mac ? net_parse_mac(n, mac) : 0;
    if (ret == 0)
        ret = xvdm_opt_u64(n->dev, opts, "mtu", 68, 65535, &mtu);
    n->mtu = (uint16_t)mtu;
    return ret;
}

static void net_destroy(void *priv)
{
    struct net *n = priv;

    if (n->fd >= 0) {
        xvdm_dev_unwatch_fd(n->dev, n->fd);
        close(n->fd); /* a tap made here goes away with it */
    }
    free(n);
}

static int net_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                      struct xvdm_device_setup *setup, void **priv)
{
    struct net *n = calloc(1, sizeof(*n));
    int ret;

    if (!n)
        return -ENOMEM;
    n->dev = dev;
    n->fd = -1;
    ret = net_options_parse(n, opts);
    if (ret == 0)
        ret = net_open_tap(n, opts);
    if (ret == 0)
        ret = xvdm_dev_watch_fd(dev, n->fd, 0, net_on_tap, n);
    if (ret) {
        net_destroy(n);
        return ret;
    }
    setup->features = net_features(n);
    setup->num_queues = 2;
    setup->queue_size_max[NET_RX_QUEUE] = NET_QUEUE_SIZE;
    setup->queue_size_max[NET_TX_QUEUE] = NET_QUEUE_SIZE;
    setup->config_size = NET_CONFIG_SIZE;
    xvdm_dev_log(dev, XVDM_LOG_INFO,
                 "tap %s, MAC %02x:%02x:%02x:%02x:%02x:%02x, offloads 0x%x",
                 n->ifname, n->mac[0], n->mac[1], n->mac[2], n->mac[3],
                 n->mac[4], n->mac[5], n->tun_offloads);
    *priv = n;
    return 0;
}

/* ---- the driver's side ------------------------------------------------------- */

static void net_config_read(void *priv, uint32_t offset, void *buf,
                            uint32_t len)
{
    struct net *n = priv;
    uint8_t config[NET_CONFIG_SIZE] = {0};
    uint16_t status = htole16(VIRTIO_NET_S_LINK_UP), pairs = htole16(1);
    uint16_t mtu = htole16(n->mtu);

    memcpy(config, n->mac, 6);
    memcpy(config + 6, &status, 2);
    memcpy(config + 8, &pairs, 2);
    memcpy(config + 10, &mtu, 2);
    memcpy(buf, config + offset, len);
}

/* Frames to the guest carry only the offloads it accepted. */
static int net_features_ok(void *priv, uint64_t features)
{
    struct net *n = priv;
    unsigned tun = 0;

    for (size_t i = 0; i < sizeof(net_offloads) / sizeof(*net_offloads); i++)
        if (net_offloads[i].bit >= VIRTIO_NET_F_GUEST_CSUM &&
            net_offloads[i].bit <= VIRTIO_NET_F_GUEST_ECN &&
            (features & (1ULL << net_offloads[i].bit)))
            tun |= net_offloads[i].tun;
    return net_tap_set_offloads(n->fd, tun);
}

static void net_start(void *priv)
{
    net_rx(priv);
}

static void net_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct net *n = priv;

    if (index == NET_RX_QUEUE)
        net_rx(n); /* new buffers: read the tap again */
    else if (index == NET_TX_QUEUE)
        net_tx(n);
}

static void net_reset(void *priv)
{
    struct net *n = priv;

    net_rx_reset(n);
    n->tx_held = false;
    net_watch(n, EPOLLOUT, false);
    net_tap_set_offloads(n->fd, 0);
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "net",
    .summary = "network (virtio-net) on a tap, optionally on a bridge",
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
