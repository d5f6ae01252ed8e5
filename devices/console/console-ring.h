/* SPDX-License-Identifier: MIT */
/*
 * virtio-console's output ring: a fixed buffer of guest output on its way
 * to the backend. While a reader is there it holds what the backend has not
 * taken yet (and is full = backpressure); while none is, it keeps the most
 * recent output, dropping the oldest, for the next reader.
 */
#ifndef XVDM_CONSOLE_RING_H
#define XVDM_CONSOLE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct con_ring {
    uint8_t *buf;
    size_t cap;
    size_t head;      /* oldest byte */
    size_t len;       /* bytes held */
    uint64_t dropped; /* oldest bytes overwritten since the last reset */
};

/* 0, or -ENOMEM. */
int con_ring_init(struct con_ring *r, size_t cap);
void con_ring_free(struct con_ring *r);

/* Append up to `len` bytes of the buffers iov[0..n), starting `off` bytes
 * in, and return how many were taken. Without overwrite, at most the free
 * space is taken; with it, all `len` are, the oldest bytes (held or new)
 * giving way. */
size_t con_ring_put(struct con_ring *r, const struct iovec *iov, unsigned n,
                    size_t off, size_t len, bool overwrite);
/* The held bytes, oldest first, as up to two iovecs; how many. */
unsigned con_ring_peek(const struct con_ring *r, struct iovec iov[2]);
/* Forget the `n` oldest bytes (n <= len). */
void con_ring_consume(struct con_ring *r, size_t n);

#endif
