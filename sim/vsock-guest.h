/* SPDX-License-Identifier: MIT */
/*
 * Test side: the guest's half of virtio-vsock's rings as Linux's
 * virtio_transport drives them (VIRTIO 1.2 §5.10): the three queues,
 * receive and event buffers posted, packets of header and payload on the
 * transmit queue; and dom0's side of the uds= convention. The sockets and
 * their credit are the caller's. Shared by the vsock tests and benchmark.
 */
#ifndef XVDM_TEST_VSOCK_GUEST_H
#define XVDM_TEST_VSOCK_GUEST_H

#include <linux/virtio_vsock.h>
#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "vdriver.h"

#define VSOCK_GUEST_ID 19 /* VIRTIO 1.2 §5: device ID of a socket device */
#define VSOCK_GUEST_RXQ 0
#define VSOCK_GUEST_TXQ 1
#define VSOCK_GUEST_EVQ 2
#define VSOCK_GUEST_RING 128
#define VSOCK_GUEST_EV_BUFS 4
#define VSOCK_GUEST_HDR ((uint32_t)sizeof(struct virtio_vsock_hdr))

struct vsock_guest {
    struct vdriver d;
    uint64_t cid;     /* config space guest_cid, read at setup */
    uint32_t rx_len;  /* each receive buffer, header included */
    /* Transmit descriptors in flight, and each chain's count by head:
     * descriptors are handed out round-robin, so the next ones must be
     * back before they are reused (a guest that runs on while the device
     * drains would otherwise rewrite packets it has not taken yet). */
    unsigned tx_descs;
    uint8_t tx_pieces[VSOCK_GUEST_RING];
    /* The buffer of each descriptor (tx) or posted head (rx, event). */
    uint64_t rx_gpa[VSOCK_GUEST_RING], ev_gpa[VSOCK_GUEST_RING];
    uint64_t tx_gpa[VSOCK_GUEST_RING];
};

/* A guest stream socket's state, as Linux's virtio_vsock_sock keeps it
 * (VIRTIO 1.2 §5.10.6.3): what it was told of the peer's credit, and what
 * it tells. */
struct vsock_guest_sock {
    uint32_t lport, rport;
    bool connected, rst;
    uint32_t shutdown; /* VIRTIO_VSOCK_SHUTDOWN_* the peer sent */
    uint32_t tx_cnt, peer_buf_alloc, peer_fwd_cnt;
    uint32_t buf_alloc, fwd_cnt, fwd_told;
};

/* Bytes s may send now: peer_buf_alloc - (tx_cnt - peer_fwd_cnt). */
uint32_t vsock_guest_sock_credit(const struct vsock_guest_sock *s);
/* A packet of s's from the guest: its credit told (fwd_told updated). */
struct virtio_vsock_hdr vsock_guest_sock_hdr(const struct vsock_guest *g,
                                             struct vsock_guest_sock *s,
                                             uint16_t op, uint32_t len);
/* A packet the device sent s: the peer's credit, and what RESPONSE, RST
 * and SHUTDOWN say. */
void vsock_guest_sock_take(struct vsock_guest_sock *s,
                           const struct virtio_vsock_hdr *hh);

/* Attach to h's first device; a transmit buffer of tx_len bytes per
 * descriptor; receive buffers of rx_len bytes at each setup. */
void vsock_guest_init(struct vsock_guest *g, struct harness *h,
                      uint32_t rx_len, uint32_t tx_len);
/* Probe with VERSION_1, set the queues up, read the CID, post the
 * receive and event buffers, DRIVER_OK and kick them. 0 or a negative
 * errno (from vdriver_probe or vdriver_setup_queue). */
int vsock_guest_setup(struct vsock_guest *g);
/* A stream packet's header from the guest to the host (CID 2). */
struct virtio_vsock_hdr vsock_guest_hdr(const struct vsock_guest *g,
                                        uint32_t src, uint32_t dst,
                                        uint16_t op, uint32_t len);
/* Post the device-writable buffer gpa of len bytes on queue q; map keeps
 * which buffer each head is. */
void vsock_guest_post(struct vsock_guest *g, unsigned q, uint64_t gpa,
                      uint32_t len, uint64_t *map);
/* Collect completed transmit chains. */
void vsock_guest_reap_tx(struct vsock_guest *g);
/* The transmit buffer the next packet goes in (tx_gpa[slot]), once the
 * ring has room for a chain of two, waiting up to ms for the device to
 * complete earlier ones: the slot, or -ETIMEDOUT. */
int vsock_guest_tx_slot(struct vsock_guest *g, unsigned ms);
/* Publish the packet of n bytes (header included) written in slot's
 * buffer, in one descriptor, or two (header, payload) as Linux puts it. */
void vsock_guest_tx_publish(struct vsock_guest *g, int slot, uint32_t n,
                            unsigned pieces);
/* Hand each packet the device put in the receive queue to on() and post
 * its buffer again (no kick): how many there were. */
unsigned vsock_guest_rx_drain(struct vsock_guest *g,
                              void (*on)(void *arg, const uint8_t *pkt,
                                         uint32_t len),
                              void *arg);

/* dom0's side. A listener at uds_port (PATH_<port>), non-blocking: its fd
 * or a negative errno. */
int vsock_dom0_listen(const char *uds, uint32_t port);
/* A client of uds itself (PATH): its fd or a negative errno. */
int vsock_dom0_connect_raw(const char *uds, bool nonblock);
/* The same having written "CONNECT <port>\n". */
int vsock_dom0_connect(const char *uds, uint32_t port, bool nonblock);

#endif
