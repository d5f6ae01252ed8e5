/* SPDX-License-Identifier: MIT */
/*
 * virtio-console's host side: where the guest's output goes and its input
 * comes from. Four kinds: a pty, a listening unix socket (one client at a
 * time), a file appended to up to a cap, and xvdm's own stdin/stdout. Every fd is
 * non-blocking and watched in the event loop only for what the device
 * wants, so the loop never waits on a reader and never spins on one.
 *
 * A backend is connected while something is there to read the output: a
 * socket client, a process holding the pty's slave side, the file, stdout.
 * It tells the device of readiness and of a reader coming or going through
 * one callback; reads and writes that find the reader gone disconnect the
 * backend and say so in their return value.
 */
#ifndef XVDM_CONSOLE_BACKEND_H
#define XVDM_CONSOLE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <xvdm/device.h>

/* What the backend reports to the device, as bits. */
#define CON_EV_IN 1u    /* input may be read */
#define CON_EV_OUT 2u   /* output may be written */
#define CON_EV_STATE 4u /* a reader connected or went away */

enum con_kind { CON_PTY, CON_SOCKET, CON_FILE, CON_STDIO };

struct con_backend;

typedef void con_notify_fn(void *arg, unsigned events);

/* Open a backend of `kind`; `arg` is the socket or file path (NULL for
 * pty and stdio), file_cap the most a file may hold. notify(notify_arg,
 * CON_EV_*) runs on the loop thread. 0, or a negative errno after one
 * logged line naming the bad value. */
int con_backend_open(struct con_backend **out, struct xvdm_dev *dev,
                     enum con_kind kind, const char *arg, uint64_t file_cap,
                     con_notify_fn *notify, void *notify_arg);
void con_backend_close(struct con_backend *b);

bool con_backend_connected(const struct con_backend *b);
/* Terminal size of a pty or tty backend: 0, or -ENOTTY. */
int con_backend_winsize(const struct con_backend *b, uint16_t *cols,
                        uint16_t *rows);

/* Bytes read into iov (> 0), 0 when there is nothing now, or -EPIPE when
 * the input is gone (the backend then disconnected, or for stdio stopped
 * reading). */
ssize_t con_backend_read(struct con_backend *b, const struct iovec *iov,
                         unsigned n);
/* Bytes written (> 0), 0 when the reader cannot take more now, -EPIPE when
 * it is gone (the backend is then disconnected). */
ssize_t con_backend_write(struct con_backend *b, const struct iovec *iov,
                          unsigned n);
/* Which readiness the device waits for; applied while connected. */
void con_backend_want(struct con_backend *b, bool in, bool out);

#endif
