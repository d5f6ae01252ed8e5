/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock's state, shared by its parts: vsock.c (the module: options,
 * config space, life cycle, the event queue), vsock-pkt.c (packet headers
 * in and out of chains), vsock-conn.c (the connection table and credit),
 * vsock-host.c (the Unix sockets in dom0), vsock-tx.c (guest -> device
 * packets) and vsock-rx.c (device -> guest packets).
 */
#ifndef XVDM_VSOCK_H
#define XVDM_VSOCK_H

#include <linux/virtio_vsock.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include <xvdm/device.h>

#include "../common/iov-copy.h"

/* VIRTIO 1.2 §5.10.2: rx, tx, event. */
#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
#define VSOCK_QUEUE_SIZE 256
#define VSOCK_EVQ_SIZE 16
#define VSOCK_HOST_CID 2
#define VSOCK_HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))
/* Largest payload of one packet either way: Linux's
 * VIRTIO_VSOCK_MAX_PKT_BUF_SIZE, which vhost-vsock also refuses past. */
#define VSOCK_PKT_MAX (64 * 1024)
/* What each connection may hold of the guest's data while its host
 * reader is slow: the buf_alloc the guest is told (§5.10.6.3). Linux's
 * own default (VIRTIO_VSOCK_DEFAULT_BUF_SIZE): with one packet's worth a
 * stream waits a round trip for credit after every 64 KiB packet. */
#define VSOCK_BUF_ALLOC (256 * 1024)
/* Buffers per chain; Linux uses 1 or 2 each way. */
#define VSOCK_IOV_MAX 16
/* Connections being set up at once, either way. */
#define VSOCK_HALF_OPEN_MAX 32
/* Unknown-connection RSTs waiting for a receive buffer. */
#define VSOCK_RST_RING 64
/* How long a dom0 client may take to say CONNECT, and the guest to answer
 * a REQUEST (Firecracker's 2 s). */
#define VSOCK_CONNECT_TIMEOUT_NS (2000ULL * 1000 * 1000)
#define VSOCK_CONNECT_LINE_MAX 32
#define VSOCK_MAX_CONNS_DEFAULT 128
#define VSOCK_MAX_CONNS_MAX 1024
/* Local ports xvdm gives dom0-initiated connections, as Firecracker
 * starts them at 1 << 30. */
#define VSOCK_LOCAL_PORT_FIRST (1U << 30)

enum vsock_state {
    VSOCK_FREE,
    VSOCK_HANDSHAKE,  /* dom0 client accepted, its CONNECT line awaited */
    VSOCK_REQUESTING, /* REQUEST to the guest queued or sent */
    VSOCK_ESTABLISHED,
    VSOCK_CLOSING, /* the guest shut both ways: flush its data, then RST */
    VSOCK_RESETTING, /* host side closed; the RST owed, then free */
};

/* Packets a connection owes the guest (vsock_conn.pending). */
#define VSOCK_SEND_REQUEST (1U << 0)
#define VSOCK_SEND_RESPONSE (1U << 1)
#define VSOCK_SEND_CREDIT (1U << 2)
#define VSOCK_SEND_RST (1U << 3)

struct vsock;

struct vsock_conn {
    struct vsock *v;
    enum vsock_state state;
    int fd;             /* the Unix socket in dom0, non-blocking */
    bool watched;       /* fd is in the loop */
    uint32_t events;    /* what the loop watches it for */
    uint32_t local_port; /* the host's side of the connection */
    uint32_t peer_port;  /* the guest's */
    uint64_t deadline_ns; /* HANDSHAKE and REQUESTING end by then */
    char line[VSOCK_CONNECT_LINE_MAX]; /* HANDSHAKE: the client's so far */
    unsigned line_len;
    TAILQ_ENTRY(vsock_conn) work; /* on v->work while queued */
    bool queued;
    unsigned pending;       /* VSOCK_SEND_* */

    /* host -> guest: read only as far as the guest's credit goes. */
    uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
    bool readable; /* fd has data (or EOF) we have not read yet */
    bool host_eof; /* read returned 0 */
    bool host_hup; /* dom0 closed its socket altogether */

    /* guest -> host: at most VSOCK_BUF_ALLOC held while fd is full. */
    uint32_t guest_shutdown; /* VIRTIO_VSOCK_SHUTDOWN_* the guest sent */
    uint32_t rx_cnt;   /* payload bytes the guest sent */
    uint32_t fwd_cnt;  /* of which written to fd */
    uint32_t fwd_told; /* fwd_cnt in the last header the guest was given */
    uint8_t *buf;      /* ring of VSOCK_BUF_ALLOC bytes, while needed */
    uint32_t buf_head, buf_len;
};

/* A chain taken from the receive queue, kept until a packet fills it. */
struct vsock_rx {
    struct xvdm_chain chain;
    struct iovec iov[VSOCK_IOV_MAX];
    bool held;
};

/* An RST for a packet that has no connection: the addresses to swap. */
struct vsock_rst {
    uint32_t src_port, dst_port;
};

struct vsock {
    struct xvdm_dev *dev;
    uint64_t cid;
    char *uds;     /* uds=PATH: dom0 connects here, and to PATH_<port> */
    int listen_fd;
    bool bound;     /* uds is ours to unlink */
    bool listening; /* listen_fd is watched */
    bool accept_failed; /* out of fds: listen again when one is freed */
    int timer_fd;   /* ticks while connections are half open */
    bool timer_on;
    bool started;   /* DRIVER_OK, until reset */
    bool was_started; /* since create: a later start owes a reset event */
    bool event_owed;  /* TRANSPORT_RESET not given to the guest yet */
    uint64_t config_cid; /* le64, what the guest reads */

    unsigned max_conns, nr_conns, half_open;
    struct vsock_conn *conns; /* max_conns entries */
    uint32_t next_local_port;
    TAILQ_HEAD(, vsock_conn) work; /* connections that owe the guest */

    struct vsock_rx rx;
    struct vsock_rst rst[VSOCK_RST_RING];
    unsigned rst_first, rst_count;

    struct xvdm_chain tx_chain;
    struct iovec tx_iov[VSOCK_IOV_MAX];
};

/* ---- vsock-pkt.c ---- */

/* The list iov[0..n) from byte `off`, at most `len` bytes, as another list
 * in out[0..cap). Its number of buffers. */
unsigned vsock_iov_slice(const struct iovec *iov, unsigned n, size_t off,
                         size_t len, struct iovec *out, unsigned cap);
/* Why a transmitted chain's header is not one the device serves, or NULL:
 * *hdr is then the guest's header, and its payload starts at
 * VSOCK_HDR_LEN of the chain. *answer_rst says whether the spec answers
 * the refusal with RST (a packet that reached a port) or it is dropped. */
const char *vsock_pkt_check(const struct vsock *v, const struct xvdm_chain *c,
                            struct virtio_vsock_hdr *hdr, bool *answer_rst);

/* ---- vsock-conn.c ---- */

struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t local_port,
                                   uint32_t peer_port);
/* A free entry in `state`, or NULL (the guest's bound is reached). */
struct vsock_conn *vsock_conn_new(struct vsock *v, enum vsock_state state,
                                  int fd);
/* Close the host side and free the entry. */
void vsock_conn_free(struct vsock_conn *c);
/* Owe the guest `what` (VSOCK_SEND_*) and queue c for the receive queue. */
void vsock_conn_owe(struct vsock_conn *c, unsigned what);
/* The connection has work for the receive queue (owed packets, or data it
 * may read); queue or dequeue it. */
void vsock_conn_requeue(struct vsock_conn *c);
/* Bytes the guest can take now (§5.10.6.3: buf_alloc - (tx_cnt -
 * fwd_cnt)). */
uint32_t vsock_conn_peer_credit(const struct vsock_conn *c);
/* Take the guest's buf_alloc and fwd_cnt from a header. false when its
 * fwd_cnt claims bytes never sent (credit overflow). */
bool vsock_conn_take_credit(struct vsock_conn *c,
                            const struct virtio_vsock_hdr *hdr);
/* The guest's data was forwarded up to fwd_cnt: tell it when enough room
 * came back that it might be waiting for it. */
void vsock_conn_credit_freed(struct vsock_conn *c);
/* Leave the half-open count (state left HANDSHAKE or REQUESTING). */
void vsock_conn_set_state(struct vsock_conn *c, enum vsock_state state);
/* RST the guest and close: the connection is over, whatever its state. */
void vsock_conn_reset(struct vsock_conn *c);
/* Drop every connection (device reset). */
void vsock_conn_free_all(struct vsock *v);
/* Queue an RST for a packet with no connection (bounded; dropped when
 * the guest has let VSOCK_RST_RING of them pile up). */
void vsock_rst_unknown(struct vsock *v, const struct virtio_vsock_hdr *hdr);

/* ---- vsock-listen.c ---- */

/* Listen on uds=PATH for dom0's clients. 0, or a negative errno after a
 * line naming the path. */
int vsock_listen_open(struct vsock *v);
void vsock_listen_close(struct vsock *v);
/* Watch the listener while the guest can take a new connection. */
void vsock_listen_update(struct vsock *v);
/* A client in HANDSHAKE sent something: its CONNECT line, or not. */
void vsock_listen_on_client(struct vsock_conn *c);
/* Tell the dom0 client of a dom0-initiated connection its outcome: "OK
 * <port>\n", or an error line (the caller then closes). 0, or a negative
 * errno when the client is gone. */
int vsock_listen_answer(struct vsock_conn *c, bool ok, const char *why);
/* Half-open connections past their deadline: time them out. */
void vsock_listen_timer_update(struct vsock *v);

/* ---- vsock-host.c ---- */

/* Connect to PATH_<port> for the guest. The fd, or a negative errno. */
int vsock_host_connect(struct vsock *v, uint32_t port);
/* Put c's new fd in the loop. 0, or a negative errno (the loop's table
 * is full, say): c cannot be served, and the caller refuses it. */
int vsock_host_watch_first(struct vsock_conn *c);
/* Watch c's fd for what c waits for now. */
void vsock_host_watch(struct vsock_conn *c);
/* Write the guest's payload (iov, len bytes) to c's socket, holding what
 * it does not take. 0, or a negative errno (the host side is gone). */
int vsock_host_write(struct vsock_conn *c, const struct iovec *iov,
                     unsigned n, uint32_t len);
/* Write what c holds of the guest's data; once all is written, carry out
 * the guest's shutdown. 0, or a negative errno (the host side is gone). */
int vsock_host_flush(struct vsock_conn *c);
/* ---- vsock-tx.c / vsock-rx.c ---- */

void vsock_tx_drain(struct vsock *v);
void vsock_rx_drain(struct vsock *v);
void vsock_rx_reset(struct vsock *v);

#endif
