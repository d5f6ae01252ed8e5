/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock transmit (VIRTIO 1.2 §5.10.6.4-6): the guest's packets,
 * each served at once, so that one connection's slow reader never holds
 * the queue for the others: its data is held (within the credit it was
 * given) by the connection, not by the chain. A packet the device does
 * not serve is answered as Linux's virtio_transport_recv_pkt answers it:
 * RST where it reached a port, else dropped; with a rate-limited line.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <string.h>
#include <sys/socket.h>

#include "vsock.h"

/* A packet on a connection that breaks the protocol: RST, and it ends. */
static void tx_conn_error(struct vsock_conn *c, const char *why)
{
    xvdm_dev_guest_error(c->v->dev, "connection %u -> %u: %s: RST",
                         c->peer_port, c->local_port, why);
    vsock_conn_reset(c);
}

/* §5.10.6.4: a REQUEST to a port with no connection yet. */
static void tx_request(struct vsock *v, const struct virtio_vsock_hdr *hdr)
{
    uint32_t port = le32toh(hdr->dst_port);
    struct vsock_conn *c = vsock_conn_new(v, VSOCK_ESTABLISHED, -1);
    int ret = 0;

    if (!c) {
        xvdm_dev_guest_error(v->dev,
                             "REQUEST to port %u with %u connections open, "
                             "the guest's most (max-conns=): RST",
                             port, v->nr_conns);
        vsock_rst_unknown(v, hdr);
        return;
    }
    c->local_port = port;
    c->peer_port = le32toh(hdr->src_port);
    c->fd = vsock_host_connect(v, port);
    if (c->fd < 0) {
        xvdm_dev_log(v->dev, XVDM_LOG_DEBUG, "%s_%u refused: RST", v->uds,
                     port);
        c->fd = -1;
    } else if ((ret = vsock_host_watch_first(c))) {
        xvdm_dev_guest_error(v->dev, "REQUEST to port %u: its socket cannot "
                             "be watched (%s): RST", port, strerror(-ret));
    }
    if (c->fd < 0 || ret) {
        vsock_conn_free(c);
        vsock_rst_unknown(v, hdr);
        return;
    }
    if (!vsock_conn_take_credit(c, hdr)) {
        tx_conn_error(c, "REQUEST with a fwd_cnt");
        return;
    }
    c->readable = true; /* dom0 may have written already */
    vsock_conn_owe(c, VSOCK_SEND_RESPONSE);
}

/* The guest accepted a dom0 client's connection. */
static void tx_response(struct vsock_conn *c)
{
    if (c->state != VSOCK_REQUESTING || (c->pending & VSOCK_SEND_REQUEST)) {
        tx_conn_error(c, "RESPONSE to no REQUEST");
        return;
    }
    if (vsock_listen_answer(c, true, NULL)) {
        vsock_conn_reset(c); /* the client left meanwhile */
        return;
    }
    vsock_conn_set_state(c, VSOCK_ESTABLISHED);
    c->readable = true; /* the client may have written after its line */
    vsock_conn_requeue(c);
}

/* §5.10.6.6: the flags add up; with both, the guest waits for our RST,
 * sent once what it wrote is in dom0's socket. */
static void tx_shutdown(struct vsock_conn *c, uint32_t flags)
{
    c->guest_shutdown |= flags & (VIRTIO_VSOCK_SHUTDOWN_RCV |
                                  VIRTIO_VSOCK_SHUTDOWN_SEND);
    if (c->guest_shutdown ==
        (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND))
        vsock_conn_set_state(c, VSOCK_CLOSING);
    if (vsock_host_flush(c))
        vsock_conn_reset(c);
    else
        vsock_conn_requeue(c);
}

/* The guest may have sent only what it was given room for: buf_alloc
 * less what it was last told is not forwarded yet (§5.10.6.3). */
static void tx_data(struct vsock_conn *c, const struct xvdm_chain *chain,
                    uint32_t len)
{
    struct iovec iov[VSOCK_IOV_MAX];
    unsigned n;

    if (c->guest_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND) {
        tx_conn_error(c, "data after the guest's SHUTDOWN");
        return;
    }
    if (c->rx_cnt + len - c->fwd_told > VSOCK_BUF_ALLOC) {
        tx_conn_error(c, "data past the credit given (buf_alloc)");
        return;
    }
    c->rx_cnt += len;
    n = vsock_iov_slice(chain->iov, chain->out_num, VSOCK_HDR_LEN, len, iov,
                        VSOCK_IOV_MAX);
    if (vsock_host_write(c, iov, n, len))
        vsock_conn_reset(c); /* dom0's side is gone: the guest must know */
}

static void tx_established(struct vsock_conn *c, const struct xvdm_chain *chain,
                           const struct virtio_vsock_hdr *hdr)
{
    switch (le16toh(hdr->op)) {
    case VIRTIO_VSOCK_OP_RW:
        tx_data(c, chain, le32toh(hdr->len));
        break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        tx_shutdown(c, le32toh(hdr->flags));
        break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        vsock_conn_owe(c, VSOCK_SEND_CREDIT);
        break;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break; /* taken from every header */
    default:
        tx_conn_error(c, "REQUEST or RESPONSE on an open connection");
    }
}

static void tx_conn_packet(struct vsock_conn *c, const struct xvdm_chain *chain,
                           const struct virtio_vsock_hdr *hdr)
{
    uint16_t op = le16toh(hdr->op);

    if (op == VIRTIO_VSOCK_OP_RST) {
        if (c->state == VSOCK_REQUESTING)
            vsock_listen_answer(c, false, "refused by the guest");
        vsock_conn_free(c);
        return;
    }
    if (c->state == VSOCK_RESETTING)
        return; /* our RST is on its way */
    if (!vsock_conn_take_credit(c, hdr)) {
        tx_conn_error(c, "fwd_cnt past the bytes sent (credit overflow)");
        return;
    }
    if (op == VIRTIO_VSOCK_OP_RESPONSE)
        tx_response(c);
    else if (c->state == VSOCK_REQUESTING || c->state == VSOCK_CLOSING)
        tx_conn_error(c, "a packet while the connection opens or closes");
    else
        tx_established(c, chain, hdr);
}

static void tx_packet(struct vsock *v, const struct xvdm_chain *chain)
{
    struct virtio_vsock_hdr hdr;
    struct vsock_conn *c;
    bool rst;
    const char *why = vsock_pkt_check(v, chain, &hdr, &rst);

    if (why) {
        xvdm_dev_guest_error(v->dev, "tx chain %u of %u bytes: %s: %s",
                             chain->head, chain->out_len, why,
                             rst ? "RST" : "dropped");
        c = rst ? vsock_conn_find(v, le32toh(hdr.dst_port),
                                  le32toh(hdr.src_port))
                : NULL;
        if (c)
            vsock_conn_reset(c);
        else if (rst)
            vsock_rst_unknown(v, &hdr);
        return;
    }
    c = vsock_conn_find(v, le32toh(hdr.dst_port), le32toh(hdr.src_port));
    if (c) {
        tx_conn_packet(c, chain, &hdr);
    } else if (le16toh(hdr.op) == VIRTIO_VSOCK_OP_REQUEST) {
        tx_request(v, &hdr);
    } else if (le16toh(hdr.op) != VIRTIO_VSOCK_OP_RST) {
        /* §5.10.6.5: RST for a packet of no connection (data before
         * connect included). */
        xvdm_dev_guest_error(v->dev, "op %u from port %u to port %u of no "
                             "connection: RST",
                             le16toh(hdr.op), le32toh(hdr.src_port),
                             le32toh(hdr.dst_port));
        vsock_rst_unknown(v, &hdr);
    }
}

void vsock_tx_drain(struct vsock *v)
{
    struct xvdm_queue *q = xvdm_dev_queue(v->dev, VSOCK_TXQ);

    v->tx_chain.iov = v->tx_iov;
    v->tx_chain.iov_cap = VSOCK_IOV_MAX;
    while (xvdm_queue_next(q, &v->tx_chain) == 1) {
        tx_packet(v, &v->tx_chain);
        xvdm_queue_push(q, &v->tx_chain, 0);
    }
    xvdm_queue_notify_guest(q);
    vsock_rx_drain(v);
}
