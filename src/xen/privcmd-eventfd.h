/* SPDX-License-Identifier: MIT */
/*
 * Linux privcmd's ioeventfd and irqfd (Linux 6.7 and later, built with
 * CONFIG_XEN_PRIVCMD_EVENTFD): dom0's kernel answers a guest's QueueNotify
 * itself and signals an eventfd, and turns an eventfd signal into
 * XEN_DMOP_set_irq_level, so neither waits for xvdm's loop.
 *
 * Two facts of the kernel's side shape how it is used:
 * - The kernel takes a QueueNotify only when the ioreq is READY, a COPY
 *   write at window + 0x50 of exactly the registered length, with
 *   (data & 0xffff) the registered queue (it checks neither the window
 *   nor the queue when assigning: xvdm has it take InterruptACK writes of
 *   1 with the window moved, mmio-fast.c); it binds the vCPUs' ports
 *   IRQF_SHARED beside /dev/xen/evtchn's handler, so xvdm still sees every
 *   port fire and must leave those ioreqs to the kernel (ioreq.c).
 * - privcmd does not undo an ioeventfd when its file is closed: xvdm must
 *   deassign every one before it lets go of the ioreq page.
 */
#ifndef XVDM_PRIVCMD_EVENTFD_H
#define XVDM_PRIVCMD_EVENTFD_H

#include <stdbool.h>
#include <stdint.h>

/* Open a privcmd handle restricted to domain `domid` and find out whether
 * the kernel has both calls. 0 and *fd set; -EOPNOTSUPP where the kernel
 * lacks them (Debian 12's and 13's stock kernels), with nothing left open;
 * another negative errno when privcmd cannot be opened or restricted. */
int privcmd_eventfd_open(uint32_t domid, int *fd);

/* Assign (or deassign) eventfd `efd` to QueueNotify writes of 4 bytes of
 * queue `vq` at window `window` of domain `domid`, whose ioreq page is
 * mapped at `iopage` and whose vCPUs' local ports are ports[0..vcpus). */
int privcmd_ioeventfd(int fd, uint32_t domid, const void *iopage,
                      const uint32_t *ports, unsigned vcpus, uint64_t window,
                      uint32_t vq, int efd, bool assign);

/* Assign (or deassign) eventfd `efd` to drive SPI `spi` of domain `domid`
 * to level 1 on each signal. */
int privcmd_irqfd(int fd, uint32_t domid, uint32_t spi, int efd, bool assign);

#endif
