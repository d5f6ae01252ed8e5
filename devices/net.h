/* SPDX-License-Identifier: MIT */
/* virtio-net's state, shared by the device (net.c) and its receive path
 * (net-rx.c). Everything runs on the loop thread. */
#ifndef XVDM_NET_H
#define XVDM_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <xvdm/device.h>

#include "net-tap.h"

#define NET_RX_QUEUE 0
#define NET_TX_QUEUE 1
#define NET_QUEUE_SIZE 256
#define NET_IOV_MAX 64
/* The largest frame a tap hands over with GSO (IP's 64 KiB plus link
 * headers), after the virtio-net header. */
#define NET_FRAME_MAX 65550
/* Frames (or chains) handled per call; the rest is deferred. */
#define NET_BUDGET 64
/* Receive chains held for one frame: a guest whose buffers are so small
 * that a frame needs more loses that frame. Linux posts one buffer per
 * chain. */
#define NET_RX_CHAINS_MAX 64
#define NET_RX_IOV_MAX 4

struct net_rx_chain {
    struct xvdm_chain chain;
    struct iovec iov[NET_RX_IOV_MAX];
};

struct net {
    struct xvdm_dev *dev;
    int fd;
    char ifname[IFNAMSIZ];
    uint8_t mac[6];
    uint16_t mtu; /* 0: not given */
    unsigned tun_offloads; /* TUN_F_* the tap takes */
    uint32_t watched;      /* epoll events on fd */
    /* receive: one frame read from the tap, waiting for guest buffers */
    uint8_t frame[NET_TAP_HDR_LEN + NET_FRAME_MAX];
    uint32_t frame_len; /* 0: none waiting */
    unsigned nheld;     /* chains popped for it so far */
    uint32_t held_room; /* their device-writable bytes */
    unsigned rx_pushed; /* chains given back in this round */
    struct net_rx_chain held[NET_RX_CHAINS_MAX];
    /* transmit: a chain the tap could not take yet (EAGAIN) */
    bool tx_held;
    struct iovec tx_iov[NET_IOV_MAX];
    struct xvdm_chain tx_chain;
};

/* Watch the tap for these events (EPOLLIN while the guest has receive
 * buffers, EPOLLOUT while a frame waits for room). */
void net_watch(struct net *n, uint32_t events, bool on);

/* Move frames from the tap to the guest's receive buffers until either
 * runs out (then stop reading the tap until the guest posts more). */
void net_rx(struct net *n);
/* The driver reset: forget the frame waiting for buffers. */
void net_rx_reset(struct net *n);

#endif
