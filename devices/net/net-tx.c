/* SPDX-License-Identifier: MIT */
/*
 * virtio-net transmit (VIRTIO 1.2 §5.1.6.2): each chain of the transmit
 * queue is one header and one frame, written to the tap with one writev
 * straight from guest memory. The tap checks the header (it refuses a bad
 * GSO description with EINVAL); here, only what the spec asks of the
 * chain's shape.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

/* A chain that is not one readable header and frame is the guest's fault:
 * dropped. The reason, or NULL when it may be sent. */
static const char *tx_refusal(const struct xvdm_chain *c)
{
    if (c->in_num)
        return "has device-writable buffers";
    if (c->out_len < NET_HDR_LEN)
        return "is shorter than the virtio-net header";
    if (c->out_len > NET_HDR_LEN + NET_FRAME_MAX)
        return "is larger than the largest frame";
    return NULL;
}

/* 0 when the frame is sent or dropped, -EAGAIN when the tap is full. */
static int tx_send(struct net_pair *p, const struct xvdm_chain *c)
{
    const char *why = tx_refusal(c);
    ssize_t r;

    if (why) {
        xvdm_dev_guest_error(p->n->dev, "tx chain %u of %u bytes %s: dropped",
                             c->head, c->out_len, why);
        return 0;
    }
    do
        r = writev(p->tap, c->iov, c->out_num);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EAGAIN)
        return -EAGAIN;
    /* EINVAL: the guest's header; EIO: the tap is down. A NIC drops. */
    if (r < 0)
        xvdm_dev_guest_error(p->n->dev, "tx frame of %u bytes dropped: %s",
                             c->out_len, strerror(errno));
    return 0;
}

/* Send the chain held from the last EAGAIN, if any. false: still full. */
static bool tx_flush_held(struct net_pair *p, struct xvdm_queue *q)
{
    if (!p->tx.held)
        return true;
    if (tx_send(p, &p->tx.chain) == -EAGAIN)
        return false;
    xvdm_queue_push(q, &p->tx.chain, 0);
    p->tx.held = false;
    return true;
}

/* On EAGAIN the chain is kept and the tap watched for room; the drain
 * goes on from there. */
static void tx_drain_queue(struct net_pair *p, struct xvdm_queue *q)
{
    while (xvdm_queue_next(q, &p->tx.chain) == 1) {
        if (tx_send(p, &p->tx.chain) == -EAGAIN) {
            p->tx.held = true;
            return;
        }
        xvdm_queue_push(q, &p->tx.chain, 0);
    }
}

void net_tx_drain(struct net_pair *p)
{
    struct xvdm_queue *q = xvdm_dev_queue(p->n->dev, NET_TX_QUEUE(p->index));

    p->tx.chain.iov = p->tx.iov;
    p->tx.chain.iov_cap = NET_TX_IOV_MAX;
    if (tx_flush_held(p, q))
        tx_drain_queue(p, q);
    xvdm_queue_notify_guest(q);
    net_watch(p);
}

void net_tx_reset(struct net_pair *p)
{
    p->tx.held = false;
}
