/* SPDX-License-Identifier: MIT */
/*
 * Noticing that the guest is going away, in every mode xvdm runs in
 * (with --xenstore or not, with or without xenstored).
 *
 * On Arm, Xen cannot destroy a domain while a device model still maps its
 * RAM: relinquish_memory() (xen/arch/arm/domain.c) starts again from the
 * head of the domain's page list after each preemption, and a page still
 * mapped elsewhere stays on that list, so with the whole RAM mapped
 * XEN_DOMCTL_destroydomain never finishes, and dom0's kernel, issuing it
 * again and again for xl, soft-locks. So xvdm lets go of the guest as soon
 * as it has shut down, before a toolstack gets to destroy it.
 *
 * Only Xen can say a domain has shut down (XEN_DOMCTL_getdomaininfo), and
 * only through a privcmd handle that cannot be restricted to one domain,
 * which a confined xvdm (--user, --chroot, --seccomp) must not keep. So a
 * watcher process, started before anything else, holds that handle and
 * nothing else of the guest's: it looks at the domain's state whenever
 * xenstored fires @releaseDomain (on every shutdown and death) and every
 * GUEST_WATCH_POLL_MS, and tells xvdm through a pipe.
 */
#ifndef XVDM_GUEST_WATCH_H
#define XVDM_GUEST_WATCH_H

#include <stdint.h>
#include <sys/types.h>

#include "hv.h"

struct store;

/* How often the watcher looks without being told to (no xenstored, or a
 * watch event lost). */
#define GUEST_WATCH_POLL_MS 500

/* The watcher's loop: until state(ctx, domid) says the guest is no longer
 * running, look at it whenever `st` (may be NULL: no xenstored) fires
 * @releaseDomain and every poll_ms; then write that state, one byte, to
 * notify_fd and return 0. Returns -EPIPE when notify_fd's reader went away
 * first, or the store's negative errno. */
int guest_watch_run(struct store *st,
                    enum hv_guest_state (*state)(void *ctx, uint32_t domid),
                    void *ctx, uint32_t domid, int notify_fd,
                    unsigned poll_ms);

/* Start the watcher process for Xen domain `domid`. The read end of its
 * pipe (readable once the guest has gone: a byte, or end of file if the
 * watcher died) and its pid, or a negative errno after a logged line.
 * Call it before xvdm starts any thread: the child runs on in the
 * forked copy. */
int guest_watch_spawn(uint32_t domid, pid_t *pid);

/* The guest state byte read from the pipe, for a log line. */
const char *guest_state_name(enum hv_guest_state state);

#endif
