/* SPDX-License-Identifier: MIT */
/*
 * The xenstore seam: the few xenstore operations xvdm needs to learn a
 * guest's devices from what libxl wrote and to answer libxl's backend
 * handshake.
 *
 * Two implementations: store-xen.c (libxenstore) and store-sim.c, an
 * in-memory store with xenstored's watch semantics for tests. Paths are
 * absolute; a watch fires once when it is registered and then whenever
 * its path or anything below it is written or removed; the special paths
 * "@releaseDomain" and "@introduceDomain" fire when a domain goes or
 * comes.
 */
#ifndef XVDM_STORE_H
#define XVDM_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct store;

struct store_ops {
    /* The node's value (malloc'd, NUL-terminated), or NULL with errno
     * set (ENOENT when there is no such node). */
    char *(*read)(struct store *st, const char *path);
    int (*write)(struct store *st, const char *path, const char *value);
    /* Remove path and everything below it: 0, or -ENOENT when there is
     * no such node. */
    int (*rm)(struct store *st, const char *path);
    /* The names of path's children as one malloc'd block (free() it), *n
     * set; NULL with errno set (ENOENT when there is no such node). */
    char **(*list)(struct store *st, const char *path, unsigned *n);
    int (*watch)(struct store *st, const char *path, const char *token);
    int (*unwatch)(struct store *st, const char *path, const char *token);
    /* The fd that becomes readable when a watch event is queued. */
    int (*fd)(struct store *st);
    /* Take one queued watch event without blocking: 1 with *path and
     * *token set (one malloc'd block in *block, free() it), 0 when none,
     * or a negative errno. */
    int (*next_event)(struct store *st, char ***block);
    /* Does xenstored still know domain `domid`? 1, 0 once it died, or a
     * negative errno when it will not say: it answers privileged callers
     * only (XSA-115), so a backend in a driver domain gets -EACCES. */
    int (*domain_exists)(struct store *st, uint32_t domid);
    void (*close)(struct store *st);
};

struct store {
    const struct store_ops *ops;
};

/* Indexes into the block next_event() returns (as libxenstore's). */
#define STORE_EVENT_PATH 0
#define STORE_EVENT_TOKEN 1

/* Connect to xenstored. NULL + errno after one line saying why. */
struct store *store_xen_open(void);

static inline char *store_read(struct store *st, const char *path)
{
    return st->ops->read(st, path);
}

static inline int store_write(struct store *st, const char *path,
                              const char *value)
{
    return st->ops->write(st, path, value);
}

static inline int store_rm(struct store *st, const char *path)
{
    return st->ops->rm(st, path);
}

static inline char **store_list(struct store *st, const char *path,
                                unsigned *n)
{
    return st->ops->list(st, path, n);
}

static inline int store_watch(struct store *st, const char *path,
                              const char *token)
{
    return st->ops->watch(st, path, token);
}

static inline int store_unwatch(struct store *st, const char *path,
                                const char *token)
{
    return st->ops->unwatch(st, path, token);
}

static inline int store_fd(struct store *st)
{
    return st->ops->fd(st);
}

static inline int store_next_event(struct store *st, char ***block)
{
    return st->ops->next_event(st, block);
}

/* Unknown counts as alive: a backend that may not ask learns of its
 * guest's end from libxl removing the backend nodes. */
static inline bool store_domain_exists(struct store *st, uint32_t domid)
{
    return st->ops->domain_exists(st, domid) != 0;
}

static inline void store_close(struct store *st)
{
    if (st)
        st->ops->close(st);
}

#endif
