/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock connections: a table of max-conns= entries made at create,
 * so a guest opening connections makes xvdm allocate nothing; the work
 * list of those that owe the guest a packet; and the credit each side
 * gives the other (VIRTIO 1.2 §5.10.6.3).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <stdlib.h>
#include <unistd.h>

#include "vsock.h"

struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t local_port,
                                   uint32_t peer_port)
{
    for (unsigned i = 0; i < v->max_conns; i++) {
        struct vsock_conn *c = &v->conns[i];

        if (c->state != VSOCK_FREE && c->state != VSOCK_HANDSHAKE &&
            c->local_port == local_port && c->peer_port == peer_port)
            return c;
    }
    return NULL;
}

static bool conn_half_open(enum vsock_state s)
{
    return s == VSOCK_HANDSHAKE || s == VSOCK_REQUESTING;
}

void vsock_conn_set_state(struct vsock_conn *c, enum vsock_state state)
{
    c->v->half_open += conn_half_open(state);
    c->v->half_open -= conn_half_open(c->state);
    c->state = state;
    vsock_listen_timer_update(c->v);
    vsock_listen_update(c->v);
}

struct vsock_conn *vsock_conn_new(struct vsock *v, enum vsock_state state,
                                  int fd)
{
    if (v->nr_conns >= v->max_conns ||
        (conn_half_open(state) && v->half_open >= VSOCK_HALF_OPEN_MAX))
        return NULL;
    for (unsigned i = 0; i < v->max_conns; i++) {
        struct vsock_conn *c = &v->conns[i];

        if (c->state != VSOCK_FREE)
            continue;
        *c = (struct vsock_conn){.v = v, .fd = fd};
        v->nr_conns++;
        vsock_conn_set_state(c, state);
        return c;
    }
    return NULL;
}

static void conn_close_fd(struct vsock_conn *c)
{
    if (c->fd < 0)
        return;
    if (c->watched)
        xvdm_dev_unwatch_fd(c->v->dev, c->fd);
    close(c->fd);
    c->fd = -1;
    c->watched = false;
    c->events = 0;
}

void vsock_conn_free(struct vsock_conn *c)
{
    struct vsock *v = c->v;

    conn_close_fd(c);
    if (c->queued)
        TAILQ_REMOVE(&v->work, c, work);
    free(c->buf);
    vsock_conn_set_state(c, VSOCK_FREE);
    *c = (struct vsock_conn){.v = v, .fd = -1};
    v->nr_conns--;
    v->accept_failed = false;
    vsock_listen_update(v);
}

void vsock_conn_free_all(struct vsock *v)
{
    for (unsigned i = 0; i < v->max_conns; i++)
        if (v->conns[i].state != VSOCK_FREE)
            vsock_conn_free(&v->conns[i]);
    v->rst_first = v->rst_count = 0;
}

uint32_t vsock_conn_peer_credit(const struct vsock_conn *c)
{
    uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

    return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Data the guest may be sent now: what dom0 wrote that we have not read,
 * while the guest has room and still reads. */
static bool conn_may_read(const struct vsock_conn *c)
{
    return (c->state == VSOCK_ESTABLISHED || c->state == VSOCK_CLOSING) &&
           c->readable && !c->host_eof &&
           !(c->guest_shutdown & VIRTIO_VSOCK_SHUTDOWN_RCV) &&
           vsock_conn_peer_credit(c) > 0;
}

void vsock_conn_requeue(struct vsock_conn *c)
{
    bool work = c->pending || conn_may_read(c);

    if (work && !c->queued)
        TAILQ_INSERT_TAIL(&c->v->work, c, work);
    else if (!work && c->queued)
        TAILQ_REMOVE(&c->v->work, c, work);
    c->queued = work;
    if (c->fd >= 0)
        vsock_host_watch(c);
}

void vsock_conn_owe(struct vsock_conn *c, unsigned what)
{
    c->pending |= what;
    vsock_conn_requeue(c);
}

/* §5.10.6.3: fwd_cnt only grows, and never past what was sent. */
bool vsock_conn_take_credit(struct vsock_conn *c,
                            const struct virtio_vsock_hdr *hdr)
{
    uint32_t fwd = le32toh(hdr->fwd_cnt);

    if ((uint32_t)(c->tx_cnt - fwd) > (uint32_t)(c->tx_cnt - c->peer_fwd_cnt))
        return false;
    c->peer_fwd_cnt = fwd;
    c->peer_buf_alloc = le32toh(hdr->buf_alloc);
    vsock_conn_requeue(c);
    return true;
}

/* A guest that stopped at buf_alloc waits for this; one update per
 * quarter of it keeps it going without one packet back per packet. */
void vsock_conn_credit_freed(struct vsock_conn *c)
{
    if (c->fwd_cnt - c->fwd_told >= VSOCK_BUF_ALLOC / 4)
        vsock_conn_owe(c, VSOCK_SEND_CREDIT);
}

void vsock_conn_reset(struct vsock_conn *c)
{
    conn_close_fd(c);
    free(c->buf);
    c->buf = NULL;
    c->buf_len = 0;
    vsock_conn_set_state(c, VSOCK_RESETTING);
    c->pending = VSOCK_SEND_RST;
    vsock_conn_requeue(c);
}

void vsock_rst_unknown(struct vsock *v, const struct virtio_vsock_hdr *hdr)
{
    struct vsock_rst *r;

    if (v->rst_count == VSOCK_RST_RING) {
        xvdm_dev_guest_error(v->dev, "%u RSTs wait for receive buffers: "
                             "one more dropped", VSOCK_RST_RING);
        return;
    }
    r = &v->rst[(v->rst_first + v->rst_count++) % VSOCK_RST_RING];
    r->src_port = le32toh(hdr->dst_port);
    r->dst_port = le32toh(hdr->src_port);
}
