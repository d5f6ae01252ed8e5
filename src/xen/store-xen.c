/* SPDX-License-Identifier: MIT */
/* The xenstore seam on libxenstore (see store.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#include "log.h"
#include "store.h"

struct store_xen {
    struct store st;
    struct xs_handle *xs;
};

static struct xs_handle *xs_of(struct store *st)
{
    return ((struct store_xen *)st)->xs;
}

static char *xen_read(struct store *st, const char *path)
{
    unsigned len;

    return xs_read(xs_of(st), XBT_NULL, path, &len);
}

static int xen_write(struct store *st, const char *path, const char *value)
{
    return xs_write(xs_of(st), XBT_NULL, path, value, strlen(value))
               ? 0
               : -errno;
}

static int xen_rm(struct store *st, const char *path)
{
    return xs_rm(xs_of(st), XBT_NULL, path) ? 0 : -errno;
}

static char **xen_list(struct store *st, const char *path, unsigned *n)
{
    return xs_directory(xs_of(st), XBT_NULL, path, n);
}

static int xen_watch(struct store *st, const char *path, const char *token)
{
    return xs_watch(xs_of(st), path, token) ? 0 : -errno;
}

static int xen_unwatch(struct store *st, const char *path, const char *token)
{
    return xs_unwatch(xs_of(st), path, token) ? 0 : -errno;
}

static int xen_fd(struct store *st)
{
    return xs_fileno(xs_of(st));
}

static int xen_next_event(struct store *st, char ***block)
{
    *block = xs_check_watch(xs_of(st));
    if (*block)
        return 1;
    return errno == EAGAIN ? 0 : -errno;
}

static int xen_domain_exists(struct store *st, uint32_t domid)
{
    /* libxenstore says false both for "F" and for a refused request. */
    errno = 0;
    if (xs_is_domain_introduced(xs_of(st), domid))
        return 1;
    return errno == EACCES || errno == EPERM ? -errno : 0;
}

static void xen_close(struct store *st)
{
    xs_close(xs_of(st));
    free(st);
}

static const struct store_ops xen_store_ops = {
    .read = xen_read,
    .write = xen_write,
    .rm = xen_rm,
    .list = xen_list,
    .watch = xen_watch,
    .unwatch = xen_unwatch,
    .fd = xen_fd,
    .next_event = xen_next_event,
    .domain_exists = xen_domain_exists,
    .close = xen_close,
};

struct store *store_xen_open(void)
{
    struct store_xen *x = calloc(1, sizeof(*x));

    if (!x)
        return NULL;
    x->st.ops = &xen_store_ops;
    x->xs = xs_open(0);
    if (!x->xs) {
        int err = errno;

        log_err("cannot connect to xenstore: %s (is xenstored running?)",
                strerror(err));
        free(x);
        errno = err;
        return NULL;
    }
    return &x->st;
}
