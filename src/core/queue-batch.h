/* SPDX-License-Identifier: MIT */
/*
 * Trap batching (xvdm_dev_batch() in <xvdm/device.h>): while a device has
 * chains of a queue in flight, the driver is not asked to kick it (each
 * completion looks at the ring instead) and the interrupt waits until as
 * many chains are done as are still in flight; nothing waits longer than
 * the device's bound. On Xen every kick and every interrupt (its
 * InterruptStatus read and InterruptACK write) stops a guest vCPU for a
 * round trip through dom0; for a device whose requests finish close
 * together, such as a disk, no kick and one interrupt per half of the
 * depth in flight instead of one each per request.
 */
#ifndef XVDM_QUEUE_BATCH_H
#define XVDM_QUEUE_BATCH_H

#include <stdbool.h>

struct xvdm_dev;
struct xvdm_queue;

/* The device was handed one chain of q, or completed n of them. */
void batch_took(struct xvdm_queue *q);
void batch_pushed(struct xvdm_queue *q, unsigned n);
/* At the end of a drain, before the driver is asked to kick again: true
 * when that waits (chains are in flight); the ring is looked at again as
 * chains complete, and kicks are asked for once none is in flight or the
 * bound passes. */
bool batch_holds_kicks(struct xvdm_queue *q);
/* Before an interrupt for q: true when it waits (fewer chains done than
 * still in flight, and not yet for the bound); else it goes now. */
bool batch_holds_interrupt(struct xvdm_queue *q);
/* The queue is reset: nothing in flight, nothing waits. */
void batch_forget(struct xvdm_queue *q);
/* The device's bound timer, if it has one. */
void batch_fini(struct xvdm_dev *dev);

#endif /* XVDM_QUEUE_BATCH_H */
