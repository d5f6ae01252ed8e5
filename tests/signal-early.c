/* SPDX-License-Identifier: MIT */
/*
 * A device module that plays someone signalling xvdm the moment it starts:
 * loaded to check its options (before xvdm daemonizes), it sends its
 * process SIGTERM, or the signal $SIGNAL_EARLY names (HUP, INT, USR1,
 * USR2), which xvdm has blocked. It stays loaded, and at exit the daemon
 * (a process other than the one that loaded it) says on stderr whether
 * the signal reached it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xvdm/device.h>

/* How long the daemon waits for a SIGTERM its parent passes on. */
#define SIGNAL_EARLY_WAIT_S 5

static const struct {
    const char *name;
    int signo;
} signal_early_signals[] = {
    {"TERM", SIGTERM}, {"HUP", SIGHUP},   {"INT", SIGINT},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
};

static pid_t loader;
static unsigned chosen; /* index in signal_early_signals */

static void signal_early_choose(void)
{
    const char *name = getenv("SIGNAL_EARLY");
    unsigned n = sizeof(signal_early_signals) / sizeof(signal_early_signals[0]);

    for (unsigned i = 0; name && i < n; i++)
        if (strcmp(name, signal_early_signals[i].name) == 0)
            chosen = i;
}

static void signal_early_keep_loaded(void)
{
    Dl_info self;

    if (dladdr((void *)signal_early_keep_loaded, &self) && self.dli_fname)
        dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

__attribute__((constructor)) static void signal_early_load(void)
{
    loader = getpid();
    signal_early_keep_loaded();
    signal_early_choose();
    kill(loader, signal_early_signals[chosen].signo);
}

__attribute__((destructor)) static void signal_early_exit(void)
{
    struct timespec wait = {SIGNAL_EARLY_WAIT_S, 0};
    int signo = signal_early_signals[chosen].signo;
    sigset_t one;

    if (getpid() == loader)
        return;
    sigemptyset(&one);
    sigaddset(&one, signo);
    fprintf(stderr, "signal-early: the daemon got %sSIG%s\n",
            sigtimedwait(&one, NULL, &wait) == signo ? "" : "no ",
            signal_early_signals[chosen].name);
}

static int signal_early_create(struct xvdm_dev *dev,
                               const struct xvdm_options *opts,
                               struct xvdm_device_setup *setup, void **priv)
{
    return -ENODEV;
}

static void signal_early_destroy(void *priv)
{
}

static void signal_early_queue_notify(void *priv, struct xvdm_queue *q,
                                      unsigned index)
{
}

static void signal_early_reset(void *priv)
{
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "signal-early",
    .summary = "test module that sends a signal when loaded",
    .device_id = 4,
    .create = signal_early_create,
    .destroy = signal_early_destroy,
    .queue_notify = signal_early_queue_notify,
    .reset = signal_early_reset,
};
