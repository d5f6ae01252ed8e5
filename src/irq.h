/* SPDX-License-Identifier: MIT */
/*
 * A guest interrupt line (an SPI) shared by one or more virtio-mmio devices.
 *
 * libxl declares virtio-mmio interrupts edge-rising and Linux's virtio_mmio
 * requests them IRQF_SHARED, so several devices may sit on one SPI. The
 * line is up while any of its devices has InterruptStatus != 0; every new
 * event produces a fresh rising edge (the line is dropped first when it was
 * already up), so an event from a second device is never lost behind the
 * first one's edge.
 */
#ifndef XVDM_IRQ_H
#define XVDM_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct hv;

struct irq_line {
    struct hv *hv;
    uint32_t spi;
    bool level;        /* what we last drove the line to */
    unsigned asserted; /* devices on this line with InterruptStatus != 0 */
};

void irq_line_init(struct irq_line *line, struct hv *hv, uint32_t spi);

/* A device on the line has a new event. was_pending: its InterruptStatus
 * was already non-zero before this event. Produces a rising edge. */
int irq_line_event(struct irq_line *line, bool was_pending);
/* A device's InterruptStatus went from non-zero to zero (ACK or reset);
 * the line drops once no device on it is pending. */
int irq_line_clear(struct irq_line *line);

#endif
