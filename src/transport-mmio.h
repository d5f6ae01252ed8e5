/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio transport, version 2 (VIRTIO 1.2 §4.2.2): the register file
 * of one device window, the device status state machine, feature
 * negotiation, queue setup, interrupt status and config space access.
 * Every register value the guest writes enters xvdm here and is checked
 * here.
 */
#ifndef XVDM_TRANSPORT_MMIO_H
#define XVDM_TRANSPORT_MMIO_H

#include <stdint.h>

#include "gmem.h"

struct xvdm_dev;
struct irq_line;

/* Register offsets (VIRTIO 1.2 §4.2.2, table "MMIO Device Register Layout"). */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_AVAIL_LOW 0x090
#define VIRTIO_MMIO_QUEUE_AVAIL_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_USED_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_USED_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4d445658 /* "XVDM", little-endian */

/* InterruptStatus bits. */
#define VIRTIO_MMIO_INT_VRING 0x1
#define VIRTIO_MMIO_INT_CONFIG 0x2

/* Device status bits (VIRTIO 1.2 §2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

struct mmio {
    struct xvdm_dev *dev;
    const struct gmem *mem;
    struct irq_line *line;
    uint64_t base;

    uint32_t status;
    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint64_t driver_features; /* as written, both halves */
    uint64_t negotiated;      /* accepted at FEATURES_OK */
    uint32_t queue_sel;
    uint32_t interrupt_status;
    uint32_t config_generation;
};

/* Attach the transport to dev (sets dev->mmio) at window `base`. */
void mmio_init(struct mmio *m, struct xvdm_dev *dev, const struct gmem *mem,
               struct irq_line *line, uint64_t base);

/* A guest access at `offset` inside the window, `size` 1, 2, 4 or 8.
 * Registers below 0x100 take 32-bit accesses only (VIRTIO 1.2 §4.2.2.2);
 * other sizes read as 0 and are ignored on write, with a rate-limited log.
 * Config space takes any size, within setup.config_size. */
uint64_t mmio_read(struct mmio *m, uint64_t offset, unsigned size);
void mmio_write(struct mmio *m, uint64_t offset, unsigned size,
                uint64_t value);

/* The device put buffers in a used ring: raise VIRTIO_MMIO_INT_VRING. */
void mmio_signal_used(struct mmio *m);
/* Config space changed: bump ConfigGeneration, raise VIRTIO_MMIO_INT_CONFIG. */
void mmio_config_changed(struct mmio *m);
/* The device is broken by the guest: set NEEDS_RESET, notify the driver. */
void mmio_needs_reset(struct mmio *m);
/* Device reset, as on a write of 0 to Status: the device's reset op, all
 * queues forgotten, registers back to their initial values, interrupt
 * status cleared (the line drops if nothing else holds it). */
void mmio_reset(struct mmio *m);

#endif
