/* SPDX-License-Identifier: MIT */
/* The Arm guest physical layout that libxl gives a domU (xen/arch-arm.h).
 * Xen's header can only be included when building for Arm, but the tests
 * run on any host, so xvdm keeps these values here; hv-xen.c checks them
 * against Xen's own header with static assertions on Arm builds. */
#ifndef XVDM_GUEST_LAYOUT_H
#define XVDM_GUEST_LAYOUT_H

#define GUEST_LAYOUT_RAM0_BASE 0x40000000ULL
#define GUEST_LAYOUT_RAM0_SIZE 0xc0000000ULL
#define GUEST_LAYOUT_RAM1_BASE 0x0200000000ULL
#define GUEST_LAYOUT_RAM1_SIZE 0xfe00000000ULL

/* libxl's virtio-mmio allocator: windows of 0x200 from the base, one SPI
 * each from SPI_FIRST (libxl_arm.c alloc_virtio_mmio_params). */
#define GUEST_LAYOUT_VIRTIO_MMIO_BASE 0x02000000ULL
#define GUEST_LAYOUT_VIRTIO_MMIO_SIZE 0x00100000ULL
#define GUEST_LAYOUT_VIRTIO_MMIO_SPI_FIRST 33
#define GUEST_LAYOUT_VIRTIO_MMIO_SPI_LAST 43

/* One virtio-mmio window: registers below 0x100, config space above. */
#define VIRTIO_MMIO_WINDOW_SIZE 0x200ULL

/* GIC: SPIs are interrupt ids 32..1019. */
#define GUEST_LAYOUT_SPI_MIN 32
#define GUEST_LAYOUT_SPI_MAX 1019

#endif
