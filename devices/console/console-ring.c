/* SPDX-License-Identifier: MIT */
/* virtio-console's output ring (see console-ring.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "console-ring.h"

int con_ring_init(struct con_ring *r, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->buf = malloc(cap);
    if (!r->buf)
        return -ENOMEM;
    r->cap = cap;
    return 0;
}

void con_ring_free(struct con_ring *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* Copy len bytes at the tail; the caller made room. */
static void con_ring_append(struct con_ring *r, const uint8_t *p, size_t len)
{
    size_t tail = (r->head + r->len) % r->cap;
    size_t first = len < r->cap - tail ? len : r->cap - tail;

    memcpy(r->buf + tail, p, first);
    memcpy(r->buf, p + first, len - first);
    r->len += len;
}

/* Make room for `len` more bytes (len <= cap) by dropping the oldest. */
static void con_ring_make_room(struct con_ring *r, size_t len)
{
    size_t excess = r->len + len > r->cap ? r->len + len - r->cap : 0;

    con_ring_consume(r, excess);
    r->dropped += excess;
}

size_t con_ring_put(struct con_ring *r, const struct iovec *iov, unsigned n,
                    size_t off, size_t len, bool overwrite)
{
    size_t take = overwrite ? len : r->cap - r->len, done = 0;

    if (take > len)
        take = len;
    /* Only the newest cap bytes can survive: skip the rest. */
    if (take > r->cap) {
        r->dropped += r->len + take - r->cap;
        con_ring_consume(r, r->len);
        off += take - r->cap;
        done = take - r->cap;
    }
    for (unsigned i = 0; i < n && done < take; i++) {
        size_t chunk;

        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        chunk = iov[i].iov_len - off;
        if (chunk > take - done)
            chunk = take - done;
        con_ring_make_room(r, chunk);
        con_ring_append(r, (const uint8_t *)iov[i].iov_base + off, chunk);
        done += chunk;
        off = 0;
    }
    return done;
}

unsigned con_ring_peek(const struct con_ring *r, struct iovec iov[2])
{
    size_t first = r->len < r->cap - r->head ? r->len : r->cap - r->head;

    if (r->len == 0)
        return 0;
    iov[0] = (struct iovec){r->buf + r->head, first};
    iov[1] = (struct iovec){r->buf, r->len - first};
    return r->len > first ? 2 : 1;
}

void con_ring_consume(struct con_ring *r, size_t n)
{
    r->head = r->len == n ? 0 : (r->head + n) % r->cap;
    r->len -= n;
}
