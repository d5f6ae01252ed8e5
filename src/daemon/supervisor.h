/* SPDX-License-Identifier: MIT */
/*
 * The dom0 supervisor (xvdm --supervise): one `xvdm --domid D --xenstore`
 * per guest that has virtio devices with this domain as backend, started
 * as soon as libxl writes their nodes (libxl waits about 10 s for the
 * handshake), restarted with backoff when it fails while the guest still
 * needs it, and stopped when the guest dies. Instances that exit 0 have
 * let go of their guest (its devices closed) and are not restarted unless
 * the guest declares open devices again.
 *
 * Children are reaped on SIGCHLD, which supervisor_create() blocks in the
 * calling thread (create the process's other threads after it) and takes
 * from a signalfd in the loop; none is left behind: supervisor_destroy()
 * stops and reaps every instance.
 */
#ifndef XVDM_SUPERVISOR_H
#define XVDM_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>

#include "hv.h"

struct loop;
struct store;
struct supervisor;

/* An instance's exit status after SIGUSR2: its xenstore devices left
 * open for the next instance to serve (EX_TEMPFAIL). */
#define XVDM_EXIT_HANDED_OVER 75

struct supervisor_config {
    /* The program run per guest, with "--domid D --xenstore --foreground"
     * and then extra_args (NULL-terminated, may be NULL). */
    const char *exe;
    const char *const *extra_args;
    /* Restart delay after the n-th failure in a row: min * 2^(n-1), at
     * most max. 0: 1000 and 30000. */
    unsigned backoff_min_ms;
    unsigned backoff_max_ms;
    /* What Xen says of a guest (hv_xen_guest_state() and its probe): one
     * that has shut down needs no instance, whatever its devices say,
     * until it is gone. */
    enum hv_guest_state (*guest_state)(void *ctx, uint32_t domid);
    void *guest_state_ctx;
    /* Hold a guest paused (hold true) or let it go (false); 0 or a
     * negative errno. A guest is held from its instance's start until
     * every device it declared is in InitWait (served), for at most
     * hold_max_ms (0: 10000): on Xen on Arm a vCPU that touches a window
     * no ioreq server serves takes a data abort. NULL: never held. */
    int (*hold)(void *ctx, uint32_t domid, bool hold);
    void *hold_ctx;
    unsigned hold_max_ms;
};

/* Watch the backend nodes and start instances from the loop. 0, or a
 * negative errno after one line saying why. cfg must outlive sv. */
int supervisor_create(struct supervisor **out, struct store *st,
                      struct loop *loop, const struct supervisor_config *cfg);
/* SIGTERM every instance, wait for them (SIGKILL after 10 s), stop
 * watching, free. NULL is fine. */
void supervisor_destroy(struct supervisor *sv);
/* Send signo to every running instance that is not being stopped (the
 * operator's SIGHUP, meant for the instances' devices). */
void supervisor_signal(struct supervisor *sv, int signo);

#endif
