/* SPDX-License-Identifier: MIT */
/*
 * Binding a device's listening Unix socket, for the modules that have one
 * (console's socket=, vsock's uds=). Compiled into each of them: a module
 * links nothing but the device ABI.
 */
#ifndef XVDM_UDS_BIND_H
#define XVDM_UDS_BIND_H

#include <sys/un.h>

/* Bind fd to sa, replacing a socket file no one listens on (what a killed
 * xvdm leaves behind); a live one is left alone. 0, or a negative errno
 * (-EADDRINUSE when something listens there). */
__attribute__((visibility("hidden"))) int
uds_bind(int fd, const struct sockaddr_un *sa);

#endif
