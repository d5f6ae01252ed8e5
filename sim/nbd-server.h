/* SPDX-License-Identifier: MIT */
/* NBD servers for the tests and the benchmark of blk,nbd=URI: nbdkit or
 * qemu-nbd run in the foreground on a Unix socket in a fresh directory,
 * killed when done (nbdkit also exits with its parent). Nothing here
 * needs libnbd: only the servers' programs, found on PATH. */
#ifndef XVDM_SIM_NBD_SERVER_H
#define XVDM_SIM_NBD_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

struct nbd_server {
    char dir[64];  /* for the socket and the server's files */
    char sock[96]; /* dir/sock */
    char uri[160]; /* nbd+unix:///?socket=sock */
    pid_t pid;     /* the server, or -1 */
};

/* Whether `prog` is on PATH. */
bool nbd_server_installed(const char *prog);

/* A fresh directory under /tmp, and the socket's path and URI in it; no
 * server yet. 0, or -1 with errno. */
int nbd_server_dir(struct nbd_server *s);

/* argv[0] run with argv (which names s->sock), back when it accepts
 * connections on the socket: 0, or -1 (said on stderr) when it does not
 * within 10 s. */
int nbd_server_start(struct nbd_server *s, char *const argv[]);

/* nbdkit serving its plugin in `words` (filters first, each a
 * "--filter=..." word; then the plugin and its arguments),
 * NULL-terminated. As nbd_server_start(). */
int nbd_server_nbdkit(struct nbd_server *s, const char *const *words);

/* qemu-nbd serving `img` in `format` ("raw", "qcow2") to at most
 * `clients` at once, until killed. As nbd_server_start(). */
int nbd_server_qemu(struct nbd_server *s, const char *format, const char *img,
                    unsigned clients);

/* A hostile server of a 1 MiB export on s->sock (nbd-chatter.c): every
 * read is answered with reply chunks that never end it, until the client
 * goes. 0, or -1 with errno. */
int nbd_server_chatter(struct nbd_server *s);

/* A hostile server of a 1 MiB export on s->sock (nbd-chatter.c) that
 * closes each connection right after its handshake. As
 * nbd_server_chatter(). */
int nbd_server_flapping(struct nbd_server *s);

/* The server killed and reaped; nothing when there is none. */
void nbd_server_kill(struct nbd_server *s);

/* The directory and everything in it removed: 0, or -1. */
int nbd_server_remove_dir(struct nbd_server *s);

#endif
