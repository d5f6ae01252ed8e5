/* SPDX-License-Identifier: MIT */
/*
 * The tap side of virtio-net: a tap interface opened with a virtio-net
 * header on every frame (IFF_VNET_HDR, 12 bytes as VERSION_1 has it), so
 * that checksum and segmentation offloads pass through, non-blocking for
 * the event loop. Either an existing tap the administrator made, or one
 * made here and added to a bridge, as Xen's vif-bridge script does for PV
 * vifs (removed again when closed: it is not persistent).
 */
#ifndef XVDM_NET_TAP_H
#define XVDM_NET_TAP_H

#include <stdbool.h>
#include <stddef.h>

#define NET_TAP_HDR_LEN 12 /* struct virtio_net_hdr_mrg_rxbuf */

/* Open tap `name` (created when it does not exist). 0 and *fd, or a
 * negative errno with err naming what failed. */
int net_tap_open(const char *name, int *fd, char *err, size_t errlen);
/* Bring `name` up and add it to `bridge`. 0, or a negative errno with err
 * naming the bridge. */
int net_tap_join_bridge(const char *name, const char *bridge, char *err,
                        size_t errlen);
/* Set the interface MTU. */
int net_tap_set_mtu(const char *name, unsigned mtu, char *err, size_t errlen);
/* The TUN_F_* offloads the tap takes, of `wanted`: tried, then cleared. */
unsigned net_tap_probe_offloads(int fd, unsigned wanted);
/* Have the tap hand the reader these offloads (TUNSETOFFLOAD). */
int net_tap_set_offloads(int fd, unsigned tun_flags);

#endif
