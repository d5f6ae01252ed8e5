/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's state, shared by its parts: net.c (the module: options,
 * features, config space, life cycle, queue pairs), net-rx.c (tap ->
 * guest), net-tx.c (guest -> tap), net-ctrl.c (the control queue) and
 * net-tap.c (setting the tap up).
 */
#ifndef XVDM_NET_H
#define XVDM_NET_H

#include <limits.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <xvdm/device.h>

#include "../common/iov-copy.h"

/* VIRTIO 1.2 §5.1.2: receiveq1, transmitq1, ... receiveqN, transmitqN,
 * then controlq. */
#define NET_RX_QUEUE(pair) (2 * (pair))
#define NET_TX_QUEUE(pair) (2 * (pair) + 1)
#define NET_CTRL_QUEUE(pairs) (2 * (pairs))
#define NET_PAIRS_MAX ((XVDM_QUEUES_MAX - 1) / 2)
#define NET_QUEUE_SIZE 256
/* Linux waits for each command before it sends the next. */
#define NET_CTRL_QUEUE_SIZE 64
/* With VERSION_1 the header is virtio_net_hdr_v1 (num_buffers included)
 * whether or not MRG_RXBUF is negotiated (VIRTIO 1.2 §5.1.6). */
#define NET_HDR_LEN ((uint32_t)sizeof(struct virtio_net_hdr_v1))
/* Largest frame either way: 64 KiB of GSO payload behind Ethernet and
 * VLAN headers, as QEMU and vhost-net bound it. */
#define NET_FRAME_MAX 65550
/* Ethernet header plus one VLAN tag, on top of the MTU. */
#define NET_L2_OVERHEAD 18
/* Buffers per chain. Linux uses 1 per receive chain (2 with small
 * buffers, MAX_SKB_FRAGS + 2 with big ones) and up to MAX_SKB_FRAGS + 2
 * per transmit chain; a chain with more is completed unused. */
#define NET_RX_IOV_MAX 32
#define NET_TX_IOV_MAX 64

/* A receive chain taken from the queue and not yet filled. */
struct net_rx_slot {
    struct xvdm_chain chain;
    struct iovec iov[NET_RX_IOV_MAX];
};

struct net_rx {
    /* Chains held for the next frames, oldest first: a ring of `count`
     * slots from `first`. The frame's size is known only once it is read,
     * so the room for the largest one is taken from the queue before. */
    struct net_rx_slot slot[NET_QUEUE_SIZE];
    unsigned first, count;
    size_t room;  /* writable bytes in the held chains */
    size_t want;  /* room to gather before a read: the largest frame */
    size_t least; /* room without which no read is tried: MTU-sized */
    bool on;      /* reading the tap (else waiting for the guest's kick) */
    struct iovec flat[IOV_MAX]; /* the held chains' buffers, for readv */
    uint8_t past; /* read into when a frame is larger than the room */
};

struct net_tx {
    /* The chain being sent, kept across EAGAIN from the tap. */
    struct xvdm_chain chain;
    struct iovec iov[NET_TX_IOV_MAX];
    bool held;
};

struct net;

/* receiveq i, transmitq i and the tap's queue i. */
struct net_pair {
    struct net *n;
    unsigned index;
    int tap;         /* the tap's queue, non-blocking */
    bool attached;   /* the kernel steers frames to this tap queue */
    bool watched;    /* tap is in the loop */
    uint32_t events; /* what the loop watches it for */
    struct net_rx rx;
    struct net_tx tx;
};

struct net {
    struct xvdm_dev *dev;
    char ifname[IFNAMSIZ];
    unsigned mtu;          /* the tap's */
    unsigned tun_offloads; /* TUN_F_* the tap takes */
    bool started;          /* DRIVER_OK and not reset since */
    bool mrg_rxbuf;        /* negotiated: a frame may span chains */
    bool guest_csum;       /* negotiated: headers keep the tap's flags */
    struct virtio_net_config config; /* little-endian, as the guest reads */
    uint8_t mac[6];    /* from the options; config.mac again on reset */
    unsigned nr_pairs; /* queues= */
    unsigned active;   /* pairs in use: 1 until VQ_PAIRS_SET (§5.1.6.5.5) */
    struct net_pair *pair;
};

/* Watch the tap for what rx and tx wait for now (nothing before start). */
void net_watch(struct net_pair *p);
/* Use pairs [0, active) and detach the tap queues of the others, so that
 * the kernel steers frames to the used ones only. 0 or a negative errno. */
int net_set_pairs(struct net *n, unsigned active);

/* Frames from the tap into the receive queue, a bounded number per call. */
void net_rx_drain(struct net_pair *p);
/* Forget held chains (device reset: the rings are going away). */
void net_rx_reset(struct net_pair *p);

/* Frames from the transmit queue to the tap, a bounded number per call;
 * stops at EAGAIN and waits for the tap to take more. */
void net_tx_drain(struct net_pair *p);
void net_tx_reset(struct net_pair *p);

/* Run the driver's commands on the control queue (§5.1.6.5). */
void net_ctrl_drain(struct net *n);

#endif
