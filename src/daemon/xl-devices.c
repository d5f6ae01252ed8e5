/* SPDX-License-Identifier: MIT */
/* The virtio devices libxl declared for a guest (see xl-devices.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "module.h"
#include "store.h"
#include "xl-devices.h"

/* XenbusStateClosing: the toolstack is taking the device away. */
#define XENBUS_STATE_CLOSING 5

/* What reading one backend directory needs. */
struct xl_read {
    struct store *st;
    const char *dir;
    const char *module_dir;
    char *err;
    size_t errlen;
};

uint32_t xl_backend_domid(struct store *st)
{
    char *value = store_read(st, "domid");
    uint32_t domid = value ? (uint32_t)strtoul(value, NULL, 10) : 0;

    free(value);
    return domid;
}

/* dir/node, malloc'd, or NULL when absent. */
static char *xl_node(const struct xl_read *r, const char *node)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", r->dir, node);
    return store_read(r->st, path);
}

static int xl_missing(const struct xl_read *r, const char *node)
{
    return errbuf_printf(r->err, r->errlen, "'%s' has no '%s' node", r->dir,
                         node);
}

/* Copy dir/node into the spec as option `key` (base, irq, path). */
static int xl_copy_node(const struct xl_read *r, struct devspec *spec,
                        const char *node, const char *key)
{
    char *value = xl_node(r, node);
    int ret;

    if (!value)
        return xl_missing(r, node);
    ret = devspec_add_option(spec, key, value, r->err, r->errlen);
    free(value);
    return ret;
}

/* Is the node absent or equal to `want`? */
static int xl_expect(const struct xl_read *r, const char *node,
                     const char *want, const char *why)
{
    char *value = xl_node(r, node);
    int ret = 0;

    if (value && strcmp(value, want) != 0)
        ret = errbuf_printf(r->err, r->errlen, "'%s/%s' is '%s': %s", r->dir,
                            node, value, why);
    free(value);
    return ret;
}

static bool xl_closing(const struct xl_read *r)
{
    char *state = xl_node(r, "state");
    bool closing = state && atoi(state) >= XENBUS_STATE_CLOSING;

    free(state);
    return closing;
}

/* ---- Xen 4.17: virtio_disk ---------------------------------------------- */

static int xl_disk_mode(const struct xl_read *r, struct devspec *spec)
{
    char *mode = xl_node(r, "mode");
    int ret;

    if (mode && strcmp(mode, "w") != 0 && strcmp(mode, "r") != 0)
        ret = errbuf_printf(r->err, r->errlen, "'%s/mode' is '%s', not w or r",
                            r->dir, mode);
    else
        ret = devspec_add_option(spec, "ro", mode && mode[0] == 'r' ? "on"
                                                                     : "off",
                                 r->err, r->errlen);
    free(mode);
    return ret;
}

static int xl_disk_discard(const struct xl_read *r, struct devspec *spec)
{
    char *discard = xl_node(r, "discard-enable");
    int ret = 0;

    if (discard)
        ret = devspec_add_option(spec, "discard",
                                 strcmp(discard, "0") ? "on" : "off", r->err,
                                 r->errlen);
    free(discard);
    return ret;
}

/* libxl writes `direct-io-safe` = 1 for the disk flag of that name: the
 * user's word that the storage may be used with O_DIRECT (QEMU's Xen disk
 * takes it the same way). Absent, dom0's page cache stays in the path. */
static int xl_disk_direct(const struct xl_read *r, struct devspec *spec)
{
    char *safe = xl_node(r, "direct-io-safe");
    int ret = 0;

    if (safe && strcmp(safe, "0") != 0)
        ret = devspec_add_option(spec, "direct", "on", r->err, r->errlen);
    free(safe);
    return ret;
}

static int xl_read_disk(const struct xl_read *r, struct xl_device *d)
{
    int ret;

    ret = xl_expect(r, "transport", "mmio", "xvdm serves virtio-mmio only");
    if (ret == 0)
        ret = devspec_init(&d->spec, r->dir, "blk");
    if (ret == 0)
        ret = xl_copy_node(r, &d->spec, "params", "path");
    if (ret == 0)
        ret = xl_disk_mode(r, &d->spec);
    if (ret == 0)
        ret = xl_disk_discard(r, &d->spec);
    if (ret == 0)
        ret = xl_disk_direct(r, &d->spec);
    return ret;
}

/* ---- Xen 4.18+: virtio ---------------------------------------------------- */

/* "virtio,device<hex id>", as in the device-tree binding. */
static int xl_virtio_id(const struct xl_read *r, uint32_t *id)
{
    static const char prefix[] = "virtio,device";
    char *type = xl_node(r, "type"), *end = NULL;
    unsigned long n = 0;
    int ret = 0;

    if (!type)
        return xl_missing(r, "type");
    if (strncmp(type, prefix, sizeof(prefix) - 1) == 0)
        n = strtoul(type + sizeof(prefix) - 1, &end, 16);
    if (!end || end == type + sizeof(prefix) - 1 || *end || n == 0 ||
        n > UINT16_MAX)
        ret = errbuf_printf(r->err, r->errlen,
                            "'%s/type' is '%s', not virtio,device<hex id>",
                            r->dir, type);
    free(type);
    *id = (uint32_t)n;
    return ret;
}

static int xl_virtio_module(const struct xl_read *r, uint32_t id, char *type,
                            size_t len)
{
    int ret = module_find_id(r->module_dir, id, type, len);

    if (ret)
        return errbuf_printf(r->err, r->errlen,
                             "'%s': no device module in %s implements "
                             "virtio device %u",
                             r->dir, r->module_dir, id);
    return 0;
}

static int xl_read_virtio(const struct xl_read *r, struct xl_device *d)
{
    char type[64];
    uint32_t id = 0;
    int ret;

    ret = xl_expect(r, "transport", "mmio", "xvdm serves virtio-mmio only");
    if (ret == 0)
        ret = xl_virtio_id(r, &id);
    if (ret == 0)
        ret = xl_virtio_module(r, id, type, sizeof(type));
    if (ret == 0)
        ret = devspec_init(&d->spec, r->dir, type);
    return ret;
}

/* ---- both ------------------------------------------------------------------ */

static int devid_order(const void *a, const void *b)
{
    unsigned long x = strtoul(*(char *const *)a, NULL, 10);
    unsigned long y = strtoul(*(char *const *)b, NULL, 10);

    return (x > y) - (x < y);
}

/* grant_usage (4.18+ virtio devices, 4.19+ disks): 1 when the guest
 * shares its memory with the device only by grants (libxl then gives it
 * the xen,grant-dma node). */
static int xl_grant_usage(const struct xl_read *r, struct devspec *spec)
{
    char *value = xl_node(r, "grant_usage");
    int ret = 0;

    if (value)
        ret = devspec_add_option(spec, "grants", value, r->err, r->errlen);
    free(value);
    return ret;
}

static int xl_read_one(struct xl_read *r, bool disk, struct xl_device *d)
{
    int ret;

    memset(d, 0, sizeof(*d));
    ret = disk ? xl_read_disk(r, d) : xl_read_virtio(r, d);
    if (ret == 0)
        ret = xl_copy_node(r, &d->spec, "base", "base");
    if (ret == 0)
        ret = xl_copy_node(r, &d->spec, "irq", "irq");
    if (ret == 0)
        ret = xl_grant_usage(r, &d->spec);
    if (ret)
        devspec_free(&d->spec);
    return ret;
}

/* Every device under `kind_dir` (BACKEND/virtio_disk/DOMID, ...). */
static int xl_read_kind(struct xl_read *r, const char *kind_dir, bool disk,
                        struct xl_device *out, unsigned max, unsigned *n)
{
    unsigned nr_devids = 0;
    char **devids = store_list(r->st, kind_dir, &nr_devids), dir[512];
    int ret = 0;

    if (!devids && errno == ENOENT)
        return 0;
    if (!devids)
        return errbuf_printf(r->err, r->errlen, "cannot list '%s': %s",
                             kind_dir, strerror(errno));
    qsort(devids, nr_devids, sizeof(*devids), devid_order);
    for (unsigned i = 0; i < nr_devids && ret == 0; i++) {
        snprintf(dir, sizeof(dir), "%s/%s", kind_dir, devids[i]);
        r->dir = dir;
        if (xl_closing(r))
            continue;
        if (*n == max)
            ret = errbuf_printf(r->err, r->errlen,
                                "more than %u virtio devices", max);
        else if ((ret = xl_read_one(r, disk, &out[*n])) == 0)
            (*n)++;
    }
    free(devids);
    return ret;
}

static const char *const xl_kinds[] = {"virtio_disk", "virtio"};

bool xl_devices_declared(struct store *st, uint32_t backend_domid,
                         uint32_t domid)
{
    bool any = false;

    for (size_t k = 0; k < sizeof(xl_kinds) / sizeof(xl_kinds[0]) && !any;
         k++) {
        char dir[256], **devids;
        unsigned n = 0;

        snprintf(dir, sizeof(dir), "/local/domain/%u/backend/%s/%u",
                 backend_domid, xl_kinds[k], domid);
        devids = store_list(st, dir, &n);
        any = devids && n > 0;
        free(devids);
    }
    return any;
}

int xl_devices_read(struct store *st, uint32_t backend_domid, uint32_t domid,
                    const char *module_dir, struct xl_device *out,
                    unsigned max, unsigned *n, char *err, size_t errlen)
{
    struct xl_read r = {st, NULL, module_dir, err, errlen};
    char kind_dir[256];
    int ret = 0;

    *n = 0;
    /* xl_kinds[0] is the 4.17 disk layout. */
    for (size_t k = 0; k < sizeof(xl_kinds) / sizeof(xl_kinds[0]) && !ret;
         k++) {
        snprintf(kind_dir, sizeof(kind_dir), "/local/domain/%u/backend/%s/%u",
                 backend_domid, xl_kinds[k], domid);
        ret = xl_read_kind(&r, kind_dir, k == 0, out, max, n);
    }
    if (ret) {
        for (unsigned i = 0; i < *n; i++)
            devspec_free(&out[i].spec);
        *n = 0;
    }
    return ret;
}
