/* SPDX-License-Identifier: MIT */
/* The watcher process that notices the guest going (see guest-watch.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "guest-watch.h"
#include "log.h"
#include "store.h"

#define GUEST_WATCH_TOKEN "guest-watch"

const char *guest_state_name(enum hv_guest_state state)
{
    switch (state) {
    case HV_GUEST_RUNNING:
        return "running";
    case HV_GUEST_SHUT_DOWN:
        return "shut down";
    case HV_GUEST_DYING:
        return "being destroyed";
    case HV_GUEST_GONE:
        return "gone";
    }
    return "in an unknown state";
}

/* Take every queued watch event: they only say "look again". */
static int guest_watch_drain(struct store *st)
{
    char **block;
    int ret;

    while ((ret = store_next_event(st, &block)) == 1)
        free(block);
    return ret;
}

/* Sleep until the store has events, the poll interval passed, or
 * notify_fd's reader went away (-EPIPE). */
static int guest_watch_wait(struct store *st, int notify_fd, unsigned poll_ms)
{
    struct pollfd fds[2] = {{.fd = notify_fd, .events = 0},
                            {.fd = st ? store_fd(st) : -1, .events = POLLIN}};
    int n = poll(fds, 2, (int)poll_ms);

    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (fds[0].revents & (POLLERR | POLLHUP))
        return -EPIPE;
    return fds[1].revents & POLLIN ? guest_watch_drain(st) : 0;
}

int guest_watch_run(struct store *st,
                    enum hv_guest_state (*state)(void *ctx, uint32_t domid),
                    void *ctx, uint32_t domid, int notify_fd,
                    unsigned poll_ms)
{
    enum hv_guest_state now;
    uint8_t byte;
    int ret = st ? store_watch(st, "@releaseDomain", GUEST_WATCH_TOKEN) : 0;

    while (ret >= 0 && (now = state(ctx, domid)) == HV_GUEST_RUNNING)
        ret = guest_watch_wait(st, notify_fd, poll_ms);
    if (ret < 0)
        return ret;
    byte = (uint8_t)now;
    return write(notify_fd, &byte, 1) == 1 ? 0 : -errno;
}

/* The child: the domain's state from Xen, woken by xenstored where it
 * runs. Nothing of the parent's is needed: it exits with it. */
static int guest_watcher_main(uint32_t domid, int notify_fd, pid_t parent)
{
    struct hv_state_probe *probe;
    struct store *st;
    int ret;

    /* The parent's handles on the guest are not the watcher's to hold. */
    close_range(STDERR_FILENO + 1, (unsigned)notify_fd - 1, 0);
    close_range((unsigned)notify_fd + 1, ~0U, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
        return 1;
    probe = hv_xen_state_probe_open();
    if (!probe)
        return 1;
    st = store_xen_open();
    if (!st)
        log_info("domain %u: no xenstore: looking at its state every %u ms",
                 domid, GUEST_WATCH_POLL_MS);
    ret = guest_watch_run(st, hv_xen_guest_state, probe, domid, notify_fd,
                          GUEST_WATCH_POLL_MS);
    if (ret && ret != -EPIPE)
        log_err("domain %u: watching its state failed: %s", domid,
                strerror(-ret));
    return ret && ret != -EPIPE;
}

int guest_watch_spawn(uint32_t domid, pid_t *pid)
{
    pid_t parent = getpid();
    int fds[2], ret;

    if (pipe2(fds, O_CLOEXEC))
        return -errno;
    *pid = fork();
    if (*pid == 0) {
        close(fds[0]);
        _exit(guest_watcher_main(domid, fds[1], parent));
    }
    ret = *pid < 0 ? -errno : 0;
    close(fds[1]);
    if (ret) {
        close(fds[0]);
        log_err("domain %u: cannot start the process that watches it: %s",
                domid, strerror(-ret));
        return ret;
    }
    return fds[0];
}
