/* SPDX-License-Identifier: MIT */
/*
 * A guest interrupt line (an SPI) shared by one or more virtio-mmio devices.
 *
 * libxl declares virtio-mmio interrupts edge-rising and Linux's virtio_mmio
 * requests them IRQF_SHARED, so several devices may sit on one SPI. Both of
 * Xen's vGICs make an edge-triggered SPI pending on every
 * XEN_DMOP_set_irq_level with level 1 and ignore level 0 (a falling edge),
 * whether or not the interrupt is already pending or being handled
 * (xen/arch/arm/vgic.c, vgic/vgic.c: vgic_inject_irq). So each event is one
 * hypercall and the line is never lowered: an event while the guest handles
 * an earlier one makes the SPI pending again, and Linux's handler then reads
 * the InterruptStatus of every device on the line. Lowering it would cost a
 * hypercall per interrupt for nothing.
 */
#ifndef XVDM_IRQ_H
#define XVDM_IRQ_H

#include <stdint.h>

struct hv;

struct irq_line {
    struct hv *hv;
    uint32_t spi;
};

void irq_line_init(struct irq_line *line, struct hv *hv, uint32_t spi);

/* A device on the line has a new event: make the SPI pending in the guest.
 * 0, or the hypervisor's negative errno. */
int irq_line_event(struct irq_line *line);

#endif
