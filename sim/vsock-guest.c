/* SPDX-License-Identifier: MIT */
/* Test side: a vsock guest's rings and dom0's sockets (see vsock-guest.h). */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsock-guest.h"

void vsock_guest_init(struct vsock_guest *g, struct harness *h,
                      uint32_t rx_len, uint32_t tx_len)
{
    vdriver_init(&g->d, h->sim, h->specs[0].base, h->specs[0].irq,
                 sim_ram_base(h->sim) + (1 << 20), 48 << 20);
    g->rx_len = rx_len;
    for (unsigned i = 0; i < VSOCK_GUEST_RING; i++)
        g->tx_gpa[i] = vdriver_alloc(&g->d, tx_len, 64);
}

void vsock_guest_post(struct vsock_guest *g, unsigned q, uint64_t gpa,
                      uint32_t len, uint64_t *map)
{
    struct guest_buf b = {gpa, len, true};
    uint16_t head = guest_ring_add_chain(&g->d.ring[q], &b, 1);

    map[head] = gpa;
    guest_ring_publish(&g->d.ring[q], head);
}

int vsock_guest_setup(struct vsock_guest *g)
{
    static const uint16_t sizes[] = {VSOCK_GUEST_RING, VSOCK_GUEST_RING,
                                     VSOCK_GUEST_EV_BUFS};
    struct vdriver *d = &g->d;
    int ret = vdriver_probe(d, VSOCK_GUEST_ID, 1ULL << VIRTIO_F_VERSION_1);

    for (unsigned q = 0; q < 3 && ret == 0; q++)
        ret = vdriver_setup_queue(d, q, sizes[q]);
    if (ret)
        return ret;
    /* VIRTIO 1.2 §5.10.4: le64 guest_cid, read as two 32-bit halves. */
    g->cid = vdriver_read(d, 0x100) | (uint64_t)vdriver_read(d, 0x104) << 32;
    for (unsigned i = 0; i < VSOCK_GUEST_RING; i++)
        vsock_guest_post(g, VSOCK_GUEST_RXQ, vdriver_alloc(d, g->rx_len, 64),
                         g->rx_len, g->rx_gpa);
    for (unsigned i = 0; i < VSOCK_GUEST_EV_BUFS; i++)
        vsock_guest_post(g, VSOCK_GUEST_EVQ, vdriver_alloc(d, 8, 8), 8,
                         g->ev_gpa);
    g->tx_descs = 0;
    memset(g->tx_pieces, 0, sizeof(g->tx_pieces));
    vdriver_driver_ok(d);
    vdriver_kick(d, VSOCK_GUEST_RXQ);
    vdriver_kick(d, VSOCK_GUEST_EVQ);
    return d->io_error;
}

struct virtio_vsock_hdr vsock_guest_hdr(const struct vsock_guest *g,
                                        uint32_t src, uint32_t dst,
                                        uint16_t op, uint32_t len)
{
    return (struct virtio_vsock_hdr){
        .src_cid = htole64(g->cid),
        .dst_cid = htole64(2),
        .src_port = htole32(src),
        .dst_port = htole32(dst),
        .len = htole32(len),
        .type = htole16(VIRTIO_VSOCK_TYPE_STREAM),
        .op = htole16(op),
    };
}

uint32_t vsock_guest_sock_credit(const struct vsock_guest_sock *s)
{
    uint32_t in_flight = s->tx_cnt - s->peer_fwd_cnt;

    return in_flight >= s->peer_buf_alloc ? 0 : s->peer_buf_alloc - in_flight;
}

struct virtio_vsock_hdr vsock_guest_sock_hdr(const struct vsock_guest *g,
                                             struct vsock_guest_sock *s,
                                             uint16_t op, uint32_t len)
{
    struct virtio_vsock_hdr hh = vsock_guest_hdr(g, s->lport, s->rport, op,
                                                 len);

    hh.buf_alloc = htole32(s->buf_alloc);
    hh.fwd_cnt = htole32(s->fwd_cnt);
    s->fwd_told = s->fwd_cnt;
    return hh;
}

void vsock_guest_sock_take(struct vsock_guest_sock *s,
                           const struct virtio_vsock_hdr *hh)
{
    uint16_t op = le16toh(hh->op);

    s->peer_buf_alloc = le32toh(hh->buf_alloc);
    s->peer_fwd_cnt = le32toh(hh->fwd_cnt);
    if (op == VIRTIO_VSOCK_OP_RESPONSE)
        s->connected = true;
    else if (op == VIRTIO_VSOCK_OP_RST)
        s->rst = true;
    else if (op == VIRTIO_VSOCK_OP_SHUTDOWN)
        s->shutdown |= le32toh(hh->flags);
}

void vsock_guest_reap_tx(struct vsock_guest *g)
{
    uint32_t id, len;

    /* A head used twice, or never given, counts nothing: the test that
     * checks the device sees it, not a wait that times out here. */
    while (guest_ring_get_used(&g->d.ring[VSOCK_GUEST_TXQ], &id, &len))
        if (id < VSOCK_GUEST_RING) {
            g->tx_descs -= g->tx_pieces[id];
            g->tx_pieces[id] = 0;
        }
}

int vsock_guest_tx_slot(struct vsock_guest *g, unsigned ms)
{
    struct guest_ring *r = &g->d.ring[VSOCK_GUEST_TXQ];

    vsock_guest_reap_tx(g);
    while (g->tx_descs + 2 > VSOCK_GUEST_RING) {
        guest_ring_enable_cb(r);
        vsock_guest_reap_tx(g);
        if (g->tx_descs + 2 <= VSOCK_GUEST_RING)
            break;
        if (vdriver_wait_irq(&g->d, ms) < 0)
            return -ETIMEDOUT;
        vsock_guest_reap_tx(g);
    }
    return r->next_desc;
}

void vsock_guest_tx_publish(struct vsock_guest *g, int slot, uint32_t n,
                            unsigned pieces)
{
    struct guest_ring *r = &g->d.ring[VSOCK_GUEST_TXQ];
    uint64_t gpa = g->tx_gpa[slot];
    struct guest_buf b[2] = {
        {gpa, pieces == 2 ? VSOCK_GUEST_HDR : n, false},
        {gpa + VSOCK_GUEST_HDR, n - VSOCK_GUEST_HDR, false},
    };
    uint16_t head = guest_ring_add_chain(r, b, pieces);

    g->tx_pieces[head] = (uint8_t)pieces;
    g->tx_descs += pieces;
    guest_ring_publish(r, head);
}

unsigned vsock_guest_rx_drain(struct vsock_guest *g,
                              void (*on)(void *arg, const uint8_t *pkt,
                                         uint32_t len),
                              void *arg)
{
    struct guest_ring *r = &g->d.ring[VSOCK_GUEST_RXQ];
    uint32_t id, len;
    unsigned n = 0;

    for (;;) {
        guest_ring_enable_cb(r);
        if (!guest_ring_get_used(r, &id, &len))
            return n;
        on(arg, vdriver_ptr(&g->d, g->rx_gpa[id]), len);
        vsock_guest_post(g, VSOCK_GUEST_RXQ, g->rx_gpa[id], g->rx_len,
                         g->rx_gpa);
        n++;
    }
}

/* ---- dom0's side ---------------------------------------------------------- */

static int dom0_socket(const char *uds, uint32_t port, bool with_port,
                       bool nonblock, struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX,
                    SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0),
                    0);

    *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
    if (with_port)
        snprintf(sa->sun_path, sizeof(sa->sun_path), "%s_%u", uds, port);
    else
        snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", uds);
    return fd < 0 ? -errno : fd;
}

/* fd, or -errno with fd closed when `failed`. */
static int dom0_done(int fd, bool failed)
{
    int ret = errno ? -errno : -EIO;

    if (!failed)
        return fd;
    close(fd);
    return ret;
}

int vsock_dom0_listen(const char *uds, uint32_t port)
{
    struct sockaddr_un sa;
    int fd = dom0_socket(uds, port, true, true, &sa);

    if (fd < 0)
        return fd;
    return dom0_done(fd, bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
                             listen(fd, 128));
}

int vsock_dom0_connect_raw(const char *uds, bool nonblock)
{
    struct sockaddr_un sa;
    int fd = dom0_socket(uds, 0, false, nonblock, &sa);

    if (fd < 0)
        return fd;
    return dom0_done(fd, connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0);
}

int vsock_dom0_connect(const char *uds, uint32_t port, bool nonblock)
{
    char line[32];
    int fd = vsock_dom0_connect_raw(uds, nonblock);
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);

    if (fd < 0)
        return fd;
    return dom0_done(fd, write(fd, line, (size_t)n) != n);
}
