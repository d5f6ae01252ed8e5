/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio transport, version 2 (VIRTIO 1.2 §4.2.2): the register file
 * of one device window, decoded into the virtio core's operations
 * (virtio.h), and the guest interrupt the core asks for. Every register
 * value the guest writes enters xvdm here; what it means is checked by the
 * core.
 */
#ifndef XVDM_TRANSPORT_MMIO_H
#define XVDM_TRANSPORT_MMIO_H

#include <stdint.h>

#include <xvdm/device.h>

#include "gaccess.h"
#include "virtio.h"

struct hv;
struct loop;
struct xvdm_dev;

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
#define VIRTIO_MMIO_SHM_SEL 0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW 0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH 0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW 0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH 0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x4d445658 /* "XVDM", little-endian */

/* InterruptStatus is the core's ISR. */
#define VIRTIO_MMIO_INT_VRING VIRTIO_ISR_VRING
#define VIRTIO_MMIO_INT_CONFIG VIRTIO_ISR_CONFIG

/* The device behind one window, and the SPI its interrupts go to. libxl
 * declares virtio-mmio interrupts edge-rising and Linux's virtio_mmio
 * requests them IRQF_SHARED, so several devices may sit on one SPI. Both
 * of Xen's vGICs make an edge-triggered SPI pending on every
 * XEN_DMOP_set_irq_level with level 1 and ignore level 0 (a falling
 * edge), whether or not the interrupt is already pending or being handled
 * (xen/arch/arm/vgic.c, vgic/vgic.c: vgic_inject_irq). So each interrupt
 * is one hypercall and the line is never lowered: one while the guest
 * handles an earlier one makes the SPI pending again, and Linux's handler
 * then reads the InterruptStatus of every device on the line. */
struct mmio {
    struct xvdm_dev *dev;
    struct hv *hv;
    uint32_t spi;
    uint64_t base;

    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint32_t queue_sel;

    /* The guest's traps into this window, and what answering cost
     * (mmio_log_counters()). */
    struct mmio_counters {
        uint64_t notifies;   /* QueueNotify writes xvdm answered */
        uint64_t host_kicks; /* QueueNotify writes the host answered */
        uint64_t isr_reads;  /* InterruptStatus */
        uint64_t acks;       /* InterruptACK writes xvdm answered */
        uint64_t host_acks;  /* InterruptACK writes the host answered */
        uint64_t other;      /* every other register access */
        uint64_t config;     /* config-space accesses */
        uint64_t interrupts; /* raised */
    } counters;

    /* The fast path (mmio-fast.h), where the host has it: an eventfd per
     * queue whose QueueNotify writes the host answers, one for the
     * InterruptACK writes of a used-buffer interrupt it answers, and one
     * that raises the SPI. -1 where unused. */
    struct loop *loop;
    uint64_t kick_vqs; /* bit per queue with a kick eventfd assigned */
    uint64_t kicked;   /* bit per queue kicked, drained once answered */
    struct mmio_kick {
        struct mmio *m;
        unsigned vq;
        int fd;
    } kick[XVDM_QUEUES_MAX];
    int ackfd;
    int irqfd;
};

/* Serve dev at window `base`, its interrupts on SPI `spi`, reaching
 * guest memory through ga. */
void mmio_init(struct mmio *m, struct xvdm_dev *dev, const struct gaccess *ga,
               struct hv *hv, uint32_t spi, uint64_t base);

/* A guest access at `offset` inside the window, `size` 1, 2, 4 or 8.
 * Registers below 0x100 take 32-bit accesses only (VIRTIO 1.2 §4.2.2.2);
 * other sizes read as 0 and are ignored on write, with a rate-limited log.
 * Config space takes any size, within setup.config_size. A QueueNotify
 * write only records the kick: the caller runs mmio_run_kicks() once it
 * has answered the access. */
uint64_t mmio_read(struct mmio *m, uint64_t offset, unsigned size);
void mmio_write(struct mmio *m, uint64_t offset, unsigned size,
                uint64_t value);

/* One line of what the window's device did and what the guest's traps
 * were, so far: requests and bytes, drains and the loop's time in them,
 * kicks by path, interrupts, and ioreqs by register and per request. */
void mmio_log_counters(const struct mmio *m);

/* Drain the queues whose QueueNotify m took: after the ioreq is
 * answered, so that the vCPU runs on meanwhile, as with the host's
 * ioeventfd. */
void mmio_run_kicks(struct mmio *m);

#endif
