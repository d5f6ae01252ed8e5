/* SPDX-License-Identifier: MIT */
/*
 * Device-tree nodes for the virtio-mmio devices xvdm serves, for guests
 * whose toolstack does not declare them: Xen 4.17's xl declares disks
 * only (its device_tree= option merges a partial device tree's
 * /passthrough node into the guest's), and dom0less guests have no xl.
 */
#ifndef XVDM_DTS_H
#define XVDM_DTS_H

#include <stdint.h>
#include <stdio.h>

struct devspec;

/* Print a partial device tree (dts source, for dtc) with one virtio,mmio
 * node per spec under /passthrough, with the child node its virtio device
 * (device_ids[i]) has in Linux's bindings, if any. Specs must have their
 * layout. */
void dts_print(FILE *out, const struct devspec *specs,
               const uint32_t *device_ids, unsigned n);

#endif
