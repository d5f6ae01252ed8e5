/* SPDX-License-Identifier: MIT */
/*
 * virtio-net receive (VIRTIO 1.2 §5.1.6.3-4): frames are read from the tap
 * with one readv straight into the guest's buffers. A frame's size is
 * known only after the read, so chains for the largest one are taken
 * first and held; with MRG_RXBUF one frame may fill several of them. When
 * the guest has no buffers, the tap is not read at all (frames wait in
 * the kernel, which drops past its queue length) until the guest kicks.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static struct net_rx_slot *rx_slot(struct net_rx *rx, unsigned i)
{
    return &rx->slot[(rx->first + i) % NET_QUEUE_SIZE];
}

/* §5.1.6.3.1: every receive buffer is device-writable and holds at least
 * the header. Anything else is the guest's fault: completed empty. */
static bool rx_chain_usable(struct net_pair *p, const struct xvdm_chain *c)
{
    if (c->out_num == 0 && c->in_len >= NET_HDR_LEN)
        return true;
    xvdm_dev_guest_error(p->n->dev,
                         "rx chain %u is not a receive buffer of "
                         "at least the %u-byte header (%u readable, %u "
                         "writable bytes): returned unused",
                         c->head, NET_HDR_LEN, c->out_len, c->in_len);
    return false;
}

/* Has the held room reached what a read needs? Without MRG_RXBUF a frame
 * goes in one chain, whatever its size (§5.1.6.3.1 only says SHOULD); with
 * every slot held, what is held is all there will be. */
static bool rx_enough(const struct net_pair *p, size_t need)
{
    if (!p->n->mrg_rxbuf)
        return p->rx.count > 0;
    return p->rx.room >= need || p->rx.count == NET_QUEUE_SIZE;
}

/* Take chains until the room for the largest frame is held (or every
 * slot is in use). 0 when there is that room, or none for now; a
 * negative errno when the guest broke the queue. */
static int rx_gather(struct net_pair *p, struct xvdm_queue *q)
{
    while (!rx_enough(p, p->rx.want)) {
        struct net_rx_slot *s = rx_slot(&p->rx, p->rx.count);
        int ret;

        s->chain =
            (struct xvdm_chain){.iov = s->iov, .iov_cap = NET_RX_IOV_MAX};
        ret = xvdm_queue_next(q, &s->chain);
        if (ret <= 0)
            return ret;
        if (!rx_chain_usable(p, &s->chain)) {
            xvdm_queue_push(q, &s->chain, 0);
            continue;
        }
        p->rx.count++;
        p->rx.room += s->chain.in_len;
    }
    return 0;
}

/* The held chains' buffers as one list, whole chains only, then the
 * byte past them: a read from the tap returns at most the room it is
 * given (tun_chr_read_iter clamps its count to it), so without that byte
 * a frame cut to fit would look like one that fits. The room. */
static size_t rx_flatten(struct net_pair *p, unsigned *niov)
{
    size_t bytes = 0;
    unsigned k = 0;

    for (unsigned i = 0; i < p->rx.count; i++) {
        const struct xvdm_chain *c = &rx_slot(&p->rx, i)->chain;

        if (k + c->in_num > IOV_MAX - 1)
            break;
        memcpy(&p->rx.flat[k], &c->iov[c->out_num],
               c->in_num * sizeof(struct iovec));
        k += c->in_num;
        bytes += c->in_len;
    }
    p->rx.flat[k++] = (struct iovec){&p->rx.past, sizeof(p->rx.past)};
    *niov = k;
    return bytes;
}

/* The tap writes the first 10 bytes of the header; num_buffers is ours
 * (§5.1.6.4: 1 without MRG_RXBUF), and without GUEST_CSUM flags must be 0
 * (§5.1.6.4.1), where the tap may have set DATA_VALID. */
static void rx_finish_header(struct net_pair *p, const struct xvdm_chain *first,
                             unsigned buffers)
{
    const struct iovec *iov = &first->iov[first->out_num];
    struct virtio_net_hdr_v1 hdr;

    iov_copy(iov, first->in_num, 0, &hdr, sizeof(hdr), false);
    hdr.num_buffers = htole16((uint16_t)buffers);
    if (!p->n->guest_csum)
        hdr.flags = 0;
    iov_copy(iov, first->in_num, 0, &hdr, sizeof(hdr), true);
}

/* Give the guest the chains a `len`-byte read filled, all at once. */
static void rx_complete(struct net_pair *p, struct xvdm_queue *q, size_t len)
{
    const struct xvdm_chain *done[NET_QUEUE_SIZE];
    uint32_t written[NET_QUEUE_SIZE];
    unsigned used = 0;

    while (len) {
        const struct xvdm_chain *c = &rx_slot(&p->rx, used)->chain;

        written[used] = len < c->in_len ? (uint32_t)len : c->in_len;
        len -= written[used];
        p->rx.room -= c->in_len;
        done[used++] = c;
    }
    rx_finish_header(p, done[0], used);
    xvdm_queue_push_batch(q, done, written, used);
    p->rx.first = (p->rx.first + used) % NET_QUEUE_SIZE;
    p->rx.count -= used;
}

/* One frame from the tap into the held chains. 1: a frame went to the
 * guest; 0: one was dropped; -EAGAIN: none waiting; other negative errno:
 * the tap failed. */
static int rx_frame(struct net_pair *p, struct xvdm_queue *q)
{
    unsigned niov;
    size_t room = rx_flatten(p, &niov);
    ssize_t r;

    do
        r = readv(p->tap, p->rx.flat, (int)niov);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    /* Reaching the byte past the room: the frame did not fit. */
    if ((size_t)r > room || (size_t)r < NET_HDR_LEN) {
        xvdm_dev_guest_error(p->n->dev,
                             "rx frame of %s%zd bytes dropped: the "
                             "guest gave %zu bytes of buffers",
                             (size_t)r > room ? "more than " : "",
                             (size_t)r > room ? (ssize_t)room : r, room);
        return 0;
    }
    rx_complete(p, q, (size_t)r);
    return 1;
}

/* At most a queue's worth of frames per call (the core bounds the chains
 * taken); the tap stays readable (level-triggered) when more frames wait,
 * so the loop comes back after serving everything else. Out of buffers,
 * the tap is not read until the guest kicks (the drain asked it to). */
void net_rx_drain(struct net_pair *p)
{
    struct xvdm_queue *q = xvdm_dev_queue(p->n->dev, NET_RX_QUEUE(p->index));
    unsigned budget = NET_QUEUE_SIZE;
    int ret = 0;

    p->rx.on = true;
    while (budget-- && ret >= 0) {
        ret = rx_gather(p, q);
        if (ret < 0 || !rx_enough(p, p->rx.least)) {
            p->rx.on = false; /* none for now, or the guest broke the queue */
            break;
        }
        ret = rx_frame(p, q);
    }
    if (ret < 0 && ret != -EAGAIN && p->rx.on) {
        xvdm_dev_log(p->n->dev, XVDM_LOG_ERROR, "reading tap %s: %s",
                     p->n->ifname, strerror(-ret));
        p->rx.on = false;
    }
    xvdm_queue_notify_guest(q);
    net_watch(p);
}

void net_rx_reset(struct net_pair *p)
{
    p->rx.first = 0;
    p->rx.count = 0;
    p->rx.room = 0;
    p->rx.on = false;
}
