/* SPDX-License-Identifier: MIT */
/*
 * One guest served: its devices (modules loaded, instances created, a
 * virtio-mmio transport each, on its SPI), and the ioreq server with
 * every window mapped to it, served from the loop.
 */
#ifndef XVDM_VM_H
#define XVDM_VM_H

#include <stddef.h>
#include <stdint.h>

struct hv;
struct loop;
struct devspec;
struct store;
struct vm;
struct xvdm_dev;

struct vm_options {
    const char *module_dir; /* where device modules are loaded from */
    /* Granted pages the guest's chains may hold mapped at once, all its
     * devices together (gbudget); 0: GBUDGET_DEFAULT_PAGES. */
    uint64_t grant_pages;
};

/* Specs must have their layout assigned (devspec_assign_layout). Devices
 * publish their keys in `store` (NULL without xenstore) under their
 * spec's node. On failure, everything taken is released, one line saying what
 * failed has been logged, and a negative errno is returned. */
int vm_create(struct vm **out, struct hv *hv, struct loop *loop,
              struct store *store, const struct devspec *specs, unsigned n,
              const struct vm_options *opts);
/* Disable the ioreq server, reset and destroy every device, unmap the
 * windows. The hv stays open (the caller closes it). NULL is fine. */
void vm_destroy(struct vm *vm);
/* Each device's counters line (mmio_log_counters()). */
void vm_log_counters(const struct vm *vm);
/* Each vCPU's ioreq slot, once serving (ioreq_log_slots()). */
void vm_log_ioreq_slots(const struct vm *vm);
/* Ask every device to look at its backing again (SIGHUP). */
void vm_reload(struct vm *vm);
/* The i-th device, as the specs were given, or NULL: for what serves a
 * device's output to dom0 (a framebuffer's consumer) and for tests. */
struct xvdm_dev *vm_device(const struct vm *vm, unsigned i);

#endif
