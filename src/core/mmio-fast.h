/* SPDX-License-Identifier: MIT */
/*
 * The fast path of one virtio-mmio window, where the host has it (on Xen:
 * Linux privcmd's ioeventfd and irqfd, Linux 6.7+ with
 * CONFIG_XEN_PRIVCMD_EVENTFD). dom0's kernel answers the guest's
 * QueueNotify at once and signals the queue's eventfd, so the vCPU runs
 * on while xvdm drains the queue; the device's interrupts are one eventfd
 * write, turned into XEN_DMOP_set_irq_level by the kernel; the guest's
 * InterruptACK of a used-buffer interrupt is answered by the kernel too,
 * and xvdm applies it as the guest next reads InterruptStatus. Where the
 * host lacks it, or assigning fails, the window keeps the path through
 * xvdm's loop, and says which it uses.
 */
#ifndef XVDM_MMIO_FAST_H
#define XVDM_MMIO_FAST_H

#include <stdbool.h>

#include <xen/hvm/ioreq.h>

#include "transport-mmio.h"

/* No fast path yet (mmio_init()). */
void mmio_fast_init(struct mmio *m);
/* Take the fast path where the host has it: an eventfd per queue of the
 * device, assigned and watched in `loop`, and the irqfd. Once the ioreq
 * server has been enabled. 0 whichever path is taken, or a negative errno
 * when an eventfd cannot even be made. */
int mmio_fast_start(struct mmio *m, struct loop *loop);
/* Undo every assignment (the host keeps them otherwise) and close the
 * eventfds. Before the ioreq page goes. */
void mmio_fast_stop(struct mmio *m);
/* Apply the InterruptACKs the host answered (virtio_isr_ack() keeps what
 * was raised since the guest's read). Before answering InterruptStatus:
 * the host signals the eventfd before the vCPU goes on, so every ACK the
 * guest made before the read is there. */
void mmio_fast_acked(struct mmio *m);
/* Is this ioreq for the host to answer (one of m's assigned queues, or
 * an ACK it takes)? xvdm must leave such a request alone: the kernel
 * claims it from the same port event, and two answers would land on the
 * vCPU's next ioreq.
 * The test is the kernel's own (privcmd-eventfd.h). */
bool mmio_fast_takes(const struct mmio *m, const struct ioreq *req);
/* The interrupt through the irqfd. 0 or a negative errno. */
int mmio_fast_interrupt(struct mmio *m);

#endif
