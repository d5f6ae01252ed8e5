/* SPDX-License-Identifier: MIT */
/*
 * The seccomp allowlist of a running instance (--seccomp): once serving,
 * xvdm needs only the system calls of its event loop, of guest memory
 * already mapped, of the device backings already open and of logging.
 * Everything else (opening files, sockets, exec, ptrace, mapping new
 * devices, ...) then fails with EPERM, in every thread.
 */
#ifndef XVDM_SYSCALL_FILTER_H
#define XVDM_SYSCALL_FILTER_H

#include <stdbool.h>

/* Was xvdm built with libseccomp? */
bool syscall_filter_available(void);

/* Install the allowlist in every thread of the process. 0, or a
 * negative errno after one line saying what failed. */
int syscall_filter_install(void);

#endif
