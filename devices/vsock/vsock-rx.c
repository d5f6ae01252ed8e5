/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock receive (VIRTIO 1.2 §5.10.6.4-6): the packets the device
 * owes the guest. Control packets first, then data read from dom0's
 * sockets straight into the guest's buffer, never more than the guest's
 * credit: a guest that stops reading stops dom0's writers in their
 * socket, with nothing buffered here. One packet per connection in turn,
 * so that one busy connection does not starve the others.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <unistd.h>

#include "vsock.h"

/* A receive chain held for the next packet. 1, 0 when the guest has none
 * (it kicks when it posts one), or a negative errno (broken queue). */
static int rx_take(struct vsock *v, struct xvdm_queue *q)
{
    while (!v->rx.held) {
        struct xvdm_chain *c = &v->rx.chain;
        int ret;

        *c = (struct xvdm_chain){.iov = v->rx.iov, .iov_cap = VSOCK_IOV_MAX};
        ret = xvdm_queue_next(q, c);
        if (ret <= 0)
            return ret;
        /* Room past the header too: the chain may be given data, and a
         * read into no room would look like dom0's EOF (Firecracker too
         * wants a data buffer). */
        if (c->out_num == 0 && c->in_len > VSOCK_HDR_LEN) {
            v->rx.held = true;
            break;
        }
        xvdm_dev_guest_error(v->dev,
                             "rx chain %u is not a receive buffer larger than "
                             "the %u-byte header: returned unused",
                             c->head, VSOCK_HDR_LEN);
        xvdm_queue_push(q, c, 0);
    }
    return 1;
}

static void rx_send(struct vsock *v, struct xvdm_queue *q,
                    const struct virtio_vsock_hdr *hdr)
{
    struct xvdm_chain *c = &v->rx.chain;

    iov_copy(&c->iov[c->out_num], c->in_num, 0, (void *)hdr,
                   sizeof(*hdr), true);
    xvdm_queue_push(q, c, VSOCK_HDR_LEN + le32toh(hdr->len));
    v->rx.held = false;
}

static struct virtio_vsock_hdr rx_header(const struct vsock *v, uint32_t src,
                                         uint32_t dst, uint16_t op)
{
    return (struct virtio_vsock_hdr){
        .src_cid = htole64(VSOCK_HOST_CID),
        .dst_cid = htole64(v->cid),
        .src_port = htole32(src),
        .dst_port = htole32(dst),
        .type = htole16(VIRTIO_VSOCK_TYPE_STREAM),
        .op = htole16(op),
    };
}

/* Every packet of a connection tells the guest our credit (§5.10.6.3). */
static struct virtio_vsock_hdr rx_conn_header(struct vsock_conn *c,
                                              uint16_t op)
{
    struct virtio_vsock_hdr h = rx_header(c->v, c->local_port, c->peer_port,
                                          op);

    h.buf_alloc = htole32(VSOCK_BUF_ALLOC);
    h.fwd_cnt = htole32(c->fwd_cnt);
    c->fwd_told = c->fwd_cnt;
    return h;
}

static void rx_unknown_rst(struct vsock *v, struct xvdm_queue *q)
{
    const struct vsock_rst *r = &v->rst[v->rst_first];
    struct virtio_vsock_hdr h =
        rx_header(v, r->src_port, r->dst_port, VIRTIO_VSOCK_OP_RST);

    v->rst_first = (v->rst_first + 1) % VSOCK_RST_RING;
    v->rst_count--;
    rx_send(v, q, &h);
}

/* Read from dom0's socket into the held chain, after the header. The
 * payload's length, 0 at EOF, or a negative errno (-EAGAIN: none yet). */
static ssize_t rx_read(struct vsock_conn *c)
{
    const struct xvdm_chain *ch = &c->v->rx.chain;
    uint32_t room = ch->in_len - VSOCK_HDR_LEN;
    uint32_t credit = vsock_conn_peer_credit(c);
    struct iovec iov[VSOCK_IOV_MAX];
    unsigned n;
    ssize_t r;

    if (room > credit)
        room = credit;
    if (room > VSOCK_PKT_MAX)
        room = VSOCK_PKT_MAX;
    n = vsock_iov_slice(&ch->iov[ch->out_num], ch->in_num, VSOCK_HDR_LEN, room,
                        iov, VSOCK_IOV_MAX);
    do
        r = readv(c->fd, iov, (int)n);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

/* Data, or the SHUTDOWN that follows the last of it. false: nothing. */
static bool rx_data(struct vsock_conn *c, struct virtio_vsock_hdr *h)
{
    ssize_t r = rx_read(c);

    if (r == -EAGAIN) {
        c->readable = false;
        return false;
    }
    if (r < 0) {
        vsock_conn_reset(c);
        return false;
    }
    if (r == 0) {
        /* dom0 shut its side: it sends no more; closed altogether, it
         * takes no more either. */
        c->host_eof = true;
        *h = rx_conn_header(c, VIRTIO_VSOCK_OP_SHUTDOWN);
        h->flags = htole32(VIRTIO_VSOCK_SHUTDOWN_SEND |
                           (c->host_hup ? VIRTIO_VSOCK_SHUTDOWN_RCV : 0));
        return true;
    }
    *h = rx_conn_header(c, VIRTIO_VSOCK_OP_RW);
    h->len = htole32((uint32_t)r);
    c->tx_cnt += (uint32_t)r;
    return true;
}

/* The packet c owes first into the held chain. */
static void rx_conn(struct vsock_conn *c, struct xvdm_queue *q)
{
    static const struct {
        unsigned what;
        uint16_t op;
    } owed[] = {
        {VSOCK_SEND_RST, VIRTIO_VSOCK_OP_RST},
        {VSOCK_SEND_REQUEST, VIRTIO_VSOCK_OP_REQUEST},
        {VSOCK_SEND_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE},
        {VSOCK_SEND_CREDIT, VIRTIO_VSOCK_OP_CREDIT_UPDATE},
    };
    struct virtio_vsock_hdr h;

    for (unsigned i = 0; i < sizeof(owed) / sizeof(owed[0]); i++) {
        if (!(c->pending & owed[i].what))
            continue;
        c->pending &= ~owed[i].what;
        h = rx_conn_header(c, owed[i].op);
        rx_send(c->v, q, &h);
        if (owed[i].what == VSOCK_SEND_RST)
            vsock_conn_free(c);
        return;
    }
    if (rx_data(c, &h)) {
        /* The credit went with the data. */
        rx_send(c->v, q, &h);
    }
}

void vsock_rx_drain(struct vsock *v)
{
    struct xvdm_queue *q = xvdm_dev_queue(v->dev, VSOCK_RXQ);
    unsigned budget = VSOCK_QUEUE_SIZE;

    if (!v->started)
        return;
    while (v->rst_count || !TAILQ_EMPTY(&v->work)) {
        struct vsock_conn *c = TAILQ_FIRST(&v->work);

        if (budget-- == 0) {
            xvdm_queue_defer(q); /* the rest on the loop's next turn */
            break;
        }
        if (rx_take(v, q) <= 0)
            break;
        if (v->rst_count) {
            rx_unknown_rst(v, q);
            continue;
        }
        TAILQ_REMOVE(&v->work, c, work);
        c->queued = false;
        rx_conn(c, q);
        if (c->state != VSOCK_FREE)
            vsock_conn_requeue(c); /* to the tail, if it has more */
    }
    xvdm_queue_notify_guest(q);
}

void vsock_rx_reset(struct vsock *v)
{
    v->rx.held = false;
}
