/* SPDX-License-Identifier: MIT */
/* virtio-console backends: the state the kinds share, and what each kind
 * (console-pty.c, console-socket.c, console-file.c, console-backend.c for
 * stdio)
 * provides to the common part. Not for console.c. */
#ifndef XVDM_CONSOLE_BACKEND_PRIVATE_H
#define XVDM_CONSOLE_BACKEND_PRIVATE_H

#include "console-backend.h"

/* One fd of the connected reader in the event loop. */
struct con_watch {
    struct con_backend *b;
    int fd;          /* -1: none */
    bool watched;    /* registered in the loop (epoll refuses plain files) */
    uint32_t events; /* as registered */
};

struct con_backend {
    struct xvdm_dev *dev;
    enum con_kind kind;
    con_notify_fn *notify;
    void *notify_arg;
    bool connected;
    bool want_in, want_out;
    /* The reader's input and output fds (the same fd for a pty or a socket
     * client, none for input of a file). Owned by the kind. */
    struct con_watch in, out;
    int pty_fd;         /* the master side */
    int timer_fd;       /* pty: polls for a reader while none is there */
    int listen_fd;      /* socket */
    char *path;         /* socket: unlinked at close */
    int stdio_flags[2]; /* stdin's and stdout's, restored at close */
    uint64_t file_cap;  /* file: its max-size */
    bool file_rotated;  /* file: reached it (said once) */
};

/* The kinds: open, and undo. */
int con_pty_open(struct con_backend *b);
void con_pty_close(struct con_backend *b);
int con_socket_open(struct con_backend *b, const char *path);
void con_socket_close(struct con_backend *b);
int con_file_open(struct con_backend *b, const char *path, uint64_t cap);
/* As writev(2), within the file's cap (console-file.c). */
ssize_t con_file_write(struct con_backend *b, const struct iovec *iov,
                       unsigned n);
/* The reader went away (the common part has stopped watching its fds). */
void con_pty_lost(struct con_backend *b);
void con_socket_lost(struct con_backend *b);

/* A reader is there on these fds (either may be -1): watch them for what
 * the device wants. 0 or negative errno. */
int con_attach(struct con_backend *b, int in_fd, int out_fd);

#endif
