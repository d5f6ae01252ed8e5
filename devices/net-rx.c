/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's receive path: frames read from the tap (with their
 * virtio-net header) into the guest's receive buffers. A frame is read
 * only into xvdm's one frame buffer, and the tap is read only while the
 * guest has buffers: a guest that posts none leaves frames queued in the
 * kernel (which drops them when its queue is full), never here, and
 * costs no CPU. With MRG_RXBUF a frame spans as many buffers as it
 * needs, counted in the header's num_buffers.
 */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "net.h"

#define NET_HDR_NUM_BUFFERS 10 /* offset of num_buffers in the header */

/* Copy up to len bytes to the chain's device-writable buffers. */
static uint32_t chain_write(const struct xvdm_chain *c, const uint8_t *src,
                            uint32_t len)
{
    uint32_t done = 0;

    for (unsigned i = c->out_num; i < c->out_num + c->in_num && done < len;
         i++) {
        size_t n = c->iov[i].iov_len < len - done ? c->iov[i].iov_len
                                                  : len - done;

        memcpy(c->iov[i].iov_base, src + done, n);
        done += (uint32_t)n;
    }
    return done;
}

/* The frame waiting goes into the held chains, which go back to the
 * guest. */
static void net_rx_complete(struct net *n, struct xvdm_queue *q)
{
    uint16_t count = htole16((uint16_t)n->nheld);
    uint32_t off = 0;

    memcpy(n->frame + NET_HDR_NUM_BUFFERS, &count, sizeof(count));
    for (unsigned i = 0; i < n->nheld; i++) {
        uint32_t len = chain_write(&n->held[i].chain, n->frame + off,
                                   n->frame_len - off);

        xvdm_queue_push(q, &n->held[i].chain, len);
        n->rx_pushed++;
        off += len;
    }
    n->nheld = 0;
    n->held_room = 0;
    n->frame_len = 0;
}

/* The frame cannot be delivered: the held chains go back empty. */
static void net_rx_drop(struct net *n, struct xvdm_queue *q, const char *why)
{
    xvdm_dev_guest_error(n->dev, "receive: %s; frame of %u bytes dropped",
                         why, n->frame_len);
    for (unsigned i = 0; i < n->nheld; i++)
        xvdm_queue_push(q, &n->held[i].chain, 0);
    n->rx_pushed += n->nheld;
    n->nheld = 0;
    n->held_room = 0;
    n->frame_len = 0;
}

/* Hold one more receive chain. 1, 0 when the guest has none, or a
 * negative errno (queue broken). */
static int net_rx_take_chain(struct net *n, struct xvdm_queue *q)
{
    struct net_rx_chain *h = &n->held[n->nheld];
    int ret;

    h->chain = (struct xvdm_chain){.iov = h->iov, .iov_cap = NET_RX_IOV_MAX};
    ret = xvdm_queue_pop(q, &h->chain);
    if (ret != 1)
        return ret;
    if (h->chain.out_num || !h->chain.in_len) {
        xvdm_dev_guest_error(n->dev, "receive buffer that the device cannot "
                                     "write to");
        xvdm_queue_push(q, &h->chain, 0);
        n->rx_pushed++;
        return 1;
    }
    n->nheld++;
    n->held_room += h->chain.in_len;
    return 1;
}

/* Deliver the waiting frame. 1 when it is gone (delivered or dropped), 0
 * when it waits for more buffers, or a negative errno. */
static int net_rx_deliver(struct net *n, struct xvdm_queue *q)
{
    bool merge = xvdm_dev_features(n->dev) & (1ULL << VIRTIO_NET_F_MRG_RXBUF);
    int ret;

    while (n->held_room < n->frame_len) {
        if (n->nheld && !merge) {
            net_rx_drop(n, q, "buffer smaller than the frame");
            return 1;
        }
        if (n->nheld == NET_RX_CHAINS_MAX) {
            net_rx_drop(n, q, "buffers too small to merge");
            return 1;
        }
        ret = net_rx_take_chain(n, q);
        if (ret <= 0)
            return ret;
    }
    net_rx_complete(n, q);
    return 1;
}

/* Read the next frame from the tap. false when there is none. */
static bool net_rx_read(struct net *n)
{
    for (;;) {
        ssize_t r = read(n->fd, n->frame, sizeof(n->frame));

        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                xvdm_dev_log(n->dev, XVDM_LOG_WARN, "reading %s: %s",
                             n->ifname, strerror(errno));
            return false;
        }
        if (r >= NET_TAP_HDR_LEN) {
            n->frame_len = (uint32_t)r;
            return true;
        }
    }
}

void net_rx(struct net *n)
{
    struct xvdm_queue *q = xvdm_dev_queue(n->dev, NET_RX_QUEUE);
    unsigned budget = NET_BUDGET;
    int ret = 1;

    n->rx_pushed = 0;
    for (; budget; budget--) {
        if (!n->frame_len && !net_rx_read(n))
            break;
        ret = net_rx_deliver(n, q);
        if (ret <= 0)
            break;
    }
    /* Out of buffers: leave frames in the tap until the guest kicks. */
    net_watch(n, EPOLLIN, ret > 0);
    if (!budget)
        xvdm_queue_defer(q);
    if (n->rx_pushed)
        xvdm_queue_notify_guest(q);
}

void net_rx_reset(struct net *n)
{
    n->nheld = 0;
    n->held_room = 0;
    n->frame_len = 0;
    net_watch(n, EPOLLIN, false);
}
