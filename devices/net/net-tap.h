/* SPDX-License-Identifier: MIT */
/*
 * The tap side of virtio-net: open a tap queue with virtio-net headers,
 * and the interface operations Xen's vif-bridge script does (bring it up,
 * add it to a bridge), by ioctl. Functions return 0 or a negative errno.
 */
#ifndef XVDM_NET_TAP_H
#define XVDM_NET_TAP_H

#include <stdbool.h>

/* A non-blocking queue of tap `name` that reads and writes frames behind
 * a `hdr_len`-byte little-endian virtio-net header. create: make a new,
 * non-persistent tap (-EBUSY if the name is taken; the tap goes away with
 * the fd); else attach to an existing one (-ENODEV if there is none).
 * multi_queue: one of several queues of a multi-queue tap (-EINVAL when
 * the existing tap was made without IFF_MULTI_QUEUE). */
int tap_open(const char *name, bool create, bool multi_queue, unsigned hdr_len);
/* Attach the queue `fd` to its multi-queue tap again, or detach it: the
 * kernel steers frames only to attached queues, and drops what a queue
 * held when it is detached. */
int tap_set_queue(int fd, bool attach);
int tap_set_up(const char *name);
int tap_add_to_bridge(const char *name, const char *bridge);
int tap_set_mtu(const char *name, unsigned mtu);
int tap_get_mtu(const char *name, unsigned *mtu);
/* TUN_F_* bits: what the kernel may hand us unsegmented or with partial
 * checksums. */
int tap_set_offloads(int fd, unsigned tun_flags);
/* *got: the first set of `wanted` the tap takes (largest first), or 0.
 * The tap is left with none. */
int tap_probe_offloads(int fd, const unsigned *wanted, unsigned n,
                       unsigned *got);

#endif
