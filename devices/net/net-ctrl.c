/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's control queue (VIRTIO 1.2 §5.1.6.5), for the commands
 * Linux's virtio_net sends with the features offered here: CTRL_RX
 * (PROMISC, ALLMULTI) and CTRL_MAC's TABLE_SET, from its rx-mode work;
 * CTRL_MAC's ADDR_SET (CTRL_MAC_ADDR) when the MAC changes; CTRL_MQ's
 * VQ_PAIRS_SET (MQ) at probe and on `ethtool -L`. A command is the class
 * and command bytes and its data, device-readable, then one ack byte,
 * device-writable; whatever is not exactly that gets VIRTIO_NET_ERR.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <string.h>

#include "net.h"

#define BIT(f) (1ULL << (f))
/* Linux uses four: header, the two MAC tables, ack. */
#define CTRL_IOV_MAX 8
#define CTRL_HDR_LEN ((uint32_t)sizeof(struct virtio_net_ctrl_hdr))

/* The chain of one command and where its data is. */
struct ctrl_cmd {
    const struct xvdm_chain *chain;
    struct virtio_net_ctrl_hdr hdr;
    uint32_t len; /* bytes of data after the header */
};

/* `len` bytes of the command's data from `off`; false past its end. */
static bool ctrl_data(const struct ctrl_cmd *c, uint64_t off, void *buf,
                      uint32_t len)
{
    const struct xvdm_chain *ch = c->chain;

    if (off + len > c->len)
        return false;
    iov_copy(ch->iov, ch->out_num, CTRL_HDR_LEN + off, buf, len, false);
    return true;
}

static bool ctrl_negotiated(const struct net *n, unsigned feature)
{
    return xvdm_dev_features(n->dev) & BIT(feature);
}

/* §5.1.6.5.1: one on/off byte. The tap hands the device every frame sent
 * to it and the guest's own stack drops frames not for it, so the device
 * filters nothing: it is always promiscuous, and accepting either mode
 * is honest. ALLUNI and the rest need CTRL_RX_EXTRA, not offered. */
static uint8_t ctrl_rx_mode(const struct ctrl_cmd *c)
{
    if (c->hdr.cmd != VIRTIO_NET_CTRL_RX_PROMISC &&
        c->hdr.cmd != VIRTIO_NET_CTRL_RX_ALLMULTI)
        return VIRTIO_NET_ERR;
    return c->len == 1 ? VIRTIO_NET_OK : VIRTIO_NET_ERR;
}

/* §5.1.6.5.2: the unicast then the multicast table, each a le32 count and
 * that many MACs, filling the data exactly. Checked, not kept: as for
 * the rx modes, every frame reaches the guest. */
static uint8_t ctrl_mac_table(const struct ctrl_cmd *c)
{
    uint64_t off = 0;
    uint32_t entries;

    for (unsigned table = 0; table < 2; table++) {
        if (!ctrl_data(c, off, &entries, sizeof(entries)))
            return VIRTIO_NET_ERR;
        off += sizeof(entries) + 6ULL * le32toh(entries);
    }
    return off == c->len ? VIRTIO_NET_OK : VIRTIO_NET_ERR;
}

/* §5.1.6.5.2.1: the device's MAC in config space is the one set. */
static uint8_t ctrl_mac_addr(struct net *n, const struct ctrl_cmd *c)
{
    if (c->len != sizeof(n->config.mac) ||
        !ctrl_negotiated(n, VIRTIO_NET_F_CTRL_MAC_ADDR))
        return VIRTIO_NET_ERR;
    ctrl_data(c, 0, n->config.mac, sizeof(n->config.mac));
    return VIRTIO_NET_OK;
}

static uint8_t ctrl_mac(struct net *n, const struct ctrl_cmd *c)
{
    if (c->hdr.cmd == VIRTIO_NET_CTRL_MAC_TABLE_SET &&
        ctrl_negotiated(n, VIRTIO_NET_F_CTRL_RX))
        return ctrl_mac_table(c);
    if (c->hdr.cmd == VIRTIO_NET_CTRL_MAC_ADDR_SET)
        return ctrl_mac_addr(n, c);
    return VIRTIO_NET_ERR;
}

/* §5.1.6.5.5: use pairs 1..virtqueue_pairs from now on. */
static uint8_t ctrl_mq(struct net *n, const struct ctrl_cmd *c)
{
    struct virtio_net_ctrl_mq mq;
    unsigned pairs;

    if (c->hdr.cmd != VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET ||
        !ctrl_negotiated(n, VIRTIO_NET_F_MQ) || c->len != sizeof(mq))
        return VIRTIO_NET_ERR;
    ctrl_data(c, 0, &mq, sizeof(mq));
    pairs = le16toh(mq.virtqueue_pairs);
    if (pairs < 1 || pairs > n->nr_pairs)
        return VIRTIO_NET_ERR;
    return net_set_pairs(n, pairs) ? VIRTIO_NET_ERR : VIRTIO_NET_OK;
}

static uint8_t ctrl_run(struct net *n, const struct ctrl_cmd *c)
{
    switch (c->hdr.class) {
    case VIRTIO_NET_CTRL_RX:
        return ctrl_negotiated(n, VIRTIO_NET_F_CTRL_RX) ? ctrl_rx_mode(c)
                                                        : VIRTIO_NET_ERR;
    case VIRTIO_NET_CTRL_MAC:
        return ctrl_mac(n, c);
    case VIRTIO_NET_CTRL_MQ:
        return ctrl_mq(n, c);
    default:
        return VIRTIO_NET_ERR;
    }
}

/* Run one command and write its ack. The bytes written: 1, or 0 when the
 * chain has no room for the ack. */
static uint32_t ctrl_answer(struct net *n, const struct xvdm_chain *chain)
{
    struct ctrl_cmd c = {.chain = chain};
    uint8_t ack = VIRTIO_NET_ERR;

    if (chain->out_len >= CTRL_HDR_LEN) {
        iov_copy(chain->iov, chain->out_num, 0, &c.hdr, CTRL_HDR_LEN,
                     false);
        c.len = chain->out_len - CTRL_HDR_LEN;
        ack = ctrl_run(n, &c);
    }
    if (ack != VIRTIO_NET_OK)
        xvdm_dev_guest_error(n->dev,
                             "control command of %u bytes (class %u, "
                             "command %u) refused",
                             chain->out_len, c.hdr.class, c.hdr.cmd);
    if (chain->in_len == 0) {
        xvdm_dev_guest_error(n->dev,
                             "control chain %u has no ack byte: "
                             "returned unanswered",
                             chain->head);
        return 0;
    }
    iov_copy(&chain->iov[chain->out_num], chain->in_num, 0, &ack,
                 sizeof(ack), true);
    return sizeof(ack);
}

void net_ctrl_drain(struct net *n)
{
    struct xvdm_queue *q = xvdm_dev_queue(n->dev, NET_CTRL_QUEUE(n->nr_pairs));
    struct iovec iov[CTRL_IOV_MAX];
    struct xvdm_chain chain = {.iov = iov, .iov_cap = CTRL_IOV_MAX};

    while (xvdm_queue_next(q, &chain) == 1)
        xvdm_queue_push(q, &chain, ctrl_answer(n, &chain));
    xvdm_queue_notify_guest(q);
}
