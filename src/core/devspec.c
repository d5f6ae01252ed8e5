/* SPDX-License-Identifier: MIT */
/* Device specs and their guest layout (see devspec.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devspec.h"
#include "guest-layout.h"

#define DEVSPEC_NAME_MAX 31

/* Type names and keys: lower-case letters, digits, '-' and '_'. */
static bool name_ok(const char *s)
{
    size_t len = strlen(s);

    return len > 0 && len <= DEVSPEC_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == len;
}

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    unsigned long long n;
    char *end;

    errno = 0;
    n = strtoull(v, &end, 0);
    if (errno || end == v || *end || v[0] == '-' || n > max)
        return -EINVAL;
    *out = n;
    return 0;
}

/* on/off and their usual spellings. */
static int parse_onoff(const char *v, bool *out)
{
    static const char *const on[] = {"on", "yes", "true", "1"};
    static const char *const off[] = {"off", "no", "false", "0"};

    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(v, on[i]) == 0 || strcmp(v, off[i]) == 0) {
            *out = strcmp(v, on[i]) == 0;
            return 0;
        }
    }
    return -EINVAL;
}

/* Keys every device takes, for the transport rather than the module. */
static bool spec_transport_key(const char *key)
{
    return strcmp(key, "base") == 0 || strcmp(key, "irq") == 0 ||
           strcmp(key, "grants") == 0;
}

static bool spec_key_given(const struct devspec *s, const char *key)
{
    return (strcmp(key, "base") == 0 && s->base_given) ||
           (strcmp(key, "irq") == 0 && s->irq_given) ||
           (strcmp(key, "grants") == 0 && s->grants_given) ||
           xvdm_opt_get(&s->opts, key);
}

static int spec_layout_key(struct devspec *s, const char *key,
                           const char *value, char *err, size_t errlen)
{
    uint64_t n;

    if (strcmp(key, "grants") == 0) {
        if (parse_onoff(value, &s->grants))
            return errbuf_printf(err, errlen,
                                 "'%s': grants='%s' is not on or off",
                                 s->text, value);
        s->grants_given = true;
        return 0;
    }
    if (strcmp(key, "base") == 0) {
        if (parse_u64(value, UINT64_MAX - VIRTIO_MMIO_WINDOW_SIZE, &n))
            return errbuf_printf(err, errlen,
                                 "'%s': base='%s' is not an "
                                 "address",
                                 s->text, value);
        s->base = n;
        s->base_given = true;
        return 0;
    }
    if (parse_u64(value, UINT32_MAX, &n))
        return errbuf_printf(err, errlen, "'%s': irq='%s' is not a number",
                             s->text, value);
    s->irq = (uint32_t)n;
    s->irq_given = true;
    return 0;
}

int devspec_add_option(struct devspec *s, const char *key, const char *value,
                       char *err, size_t errlen)
{
    if (!name_ok(key))
        return errbuf_printf(err, errlen, "'%s': bad option name '%s'", s->text,
                             key);
    if (spec_key_given(s, key))
        return errbuf_printf(err, errlen, "'%s': option '%s' given twice",
                             s->text, key);
    if (spec_transport_key(key))
        return spec_layout_key(s, key, value, err, errlen);
    if (s->opts.nr == DEV_OPTIONS_MAX)
        return errbuf_printf(err, errlen, "'%s': more than %d options", s->text,
                             DEV_OPTIONS_MAX);
    s->opts.kv[s->opts.nr].key = strdup(key);
    s->opts.kv[s->opts.nr].value = strdup(value);
    s->opts.nr++;
    if (!s->opts.kv[s->opts.nr - 1].key || !s->opts.kv[s->opts.nr - 1].value)
        return -ENOMEM;
    return 0;
}

/* "key=value", or "key" alone for an empty value. */
static int spec_add_item(struct devspec *s, char *item, char *err,
                         size_t errlen)
{
    char *eq = strchr(item, '=');

    if (eq)
        *eq = '\0';
    return devspec_add_option(s, item, eq ? eq + 1 : "", err, errlen);
}

int devspec_init(struct devspec *s, const char *text, const char *type)
{
    memset(s, 0, sizeof(*s));
    s->text = strdup(text);
    s->type = strdup(type);
    if (s->text && s->type)
        return 0;
    devspec_free(s);
    return -ENOMEM;
}

int devspec_parse(const char *text, struct devspec *out, char *err,
                  size_t errlen)
{
    char *copy, *item, *save = NULL;
    int ret = 0;

    memset(out, 0, sizeof(*out));
    out->text = strdup(text);
    copy = strdup(text);
    if (!out->text || !copy) {
        free(copy);
        devspec_free(out);
        return -ENOMEM;
    }
    item = strtok_r(copy, ",", &save);
    if (!item || text[0] == ',' || !name_ok(item)) {
        ret = errbuf_printf(err, errlen,
                            "'%s': device type '%s' is not a "
                            "name (a-z, 0-9, -, _)",
                            text, item ? item : "");
        goto out;
    }
    out->type = strdup(item);
    if (!out->type)
        ret = -ENOMEM;
    while (!ret && (item = strtok_r(NULL, ",", &save)))
        ret = spec_add_item(out, item, err, errlen);
out:
    free(copy);
    if (ret)
        devspec_free(out);
    return ret;
}

void devspec_free(struct devspec *spec)
{
    for (unsigned i = 0; i < spec->opts.nr; i++) {
        free(spec->opts.kv[i].key);
        free(spec->opts.kv[i].value);
    }
    free(spec->type);
    free(spec->text);
    free(spec->node);
    memset(spec, 0, sizeof(*spec));
}

unsigned devspec_type_index(const struct devspec *specs, unsigned i)
{
    unsigned index = 0;

    for (unsigned j = 0; j < i; j++)
        if (strcmp(specs[j].type, specs[i].type) == 0)
            index++;
    return index;
}

/* ---- layout ------------------------------------------------------------- */

static bool window_overlaps(uint64_t base, uint64_t start, uint64_t size)
{
    return base < start + size && start < base + VIRTIO_MMIO_WINDOW_SIZE;
}

static int check_window(const struct devspec *specs, unsigned i, char *err,
                        size_t errlen)
{
    const struct devspec *s = &specs[i];

    if (s->base % VIRTIO_MMIO_WINDOW_SIZE)
        return errbuf_printf(err, errlen,
                             "'%s': base=0x%" PRIx64 " is not "
                             "0x200-aligned",
                             s->text, s->base);
    if (window_overlaps(s->base, GUEST_LAYOUT_RAM0_BASE,
                        GUEST_LAYOUT_RAM0_SIZE) ||
        window_overlaps(s->base, GUEST_LAYOUT_RAM1_BASE,
                        GUEST_LAYOUT_RAM1_SIZE))
        return errbuf_printf(err, errlen,
                             "'%s': window 0x%" PRIx64 " lies in "
                             "guest RAM",
                             s->text, s->base);
    for (unsigned j = 0; j < i; j++)
        if (window_overlaps(s->base, specs[j].base, VIRTIO_MMIO_WINDOW_SIZE))
            return errbuf_printf(err, errlen,
                                 "'%s' and '%s' both use window "
                                 "0x%" PRIx64,
                                 specs[j].text, s->text, s->base);
    if (s->irq < GUEST_LAYOUT_SPI_MIN || s->irq > GUEST_LAYOUT_SPI_MAX)
        return errbuf_printf(err, errlen,
                             "'%s': irq=%" PRIu32 " is not an SPI "
                             "(%d..%d)",
                             s->text, s->irq, GUEST_LAYOUT_SPI_MIN,
                             GUEST_LAYOUT_SPI_MAX);
    return 0;
}

/* Is window `base` taken by a spec other than i that keeps its base, or
 * by one before i that was given a default already? */
static bool window_taken(const struct devspec *specs, unsigned n, unsigned i,
                         uint64_t base)
{
    for (unsigned j = 0; j < n; j++)
        if (j != i && (specs[j].base_given || j < i) && specs[j].base == base)
            return true;
    return false;
}

/* libxl gives the n-th virtio device window n and SPI FIRST + n. A spec
 * without base= takes the first such slot whose window is free, so that
 * devices from the command line fit around those libxl placed, and the
 * guest's device tree and xvdm agree without base=/irq=. */
static int assign_default(struct devspec *specs, unsigned n, unsigned i,
                          char *err, size_t errlen)
{
    struct devspec *s = &specs[i];
    unsigned slot = 0;

    if (!s->base_given) {
        while (window_taken(specs, n, i, GUEST_LAYOUT_VIRTIO_MMIO_BASE +
                                             slot * VIRTIO_MMIO_WINDOW_SIZE))
            slot++;
        s->base = GUEST_LAYOUT_VIRTIO_MMIO_BASE + slot * VIRTIO_MMIO_WINDOW_SIZE;
    } else {
        slot = (unsigned)((s->base - GUEST_LAYOUT_VIRTIO_MMIO_BASE) /
                          VIRTIO_MMIO_WINDOW_SIZE);
    }
    if (s->irq_given)
        return 0;
    if (s->base < GUEST_LAYOUT_VIRTIO_MMIO_BASE ||
        GUEST_LAYOUT_VIRTIO_MMIO_SPI_FIRST + slot >
            GUEST_LAYOUT_VIRTIO_MMIO_SPI_LAST)
        return errbuf_printf(err, errlen,
                             "'%s': no default SPI for window "
                             "0x%" PRIx64 ": give irq=",
                             s->text, s->base);
    s->irq = GUEST_LAYOUT_VIRTIO_MMIO_SPI_FIRST + slot;
    return 0;
}

int devspec_assign_layout(struct devspec *specs, unsigned n, char *err,
                          size_t errlen)
{
    int ret = 0;

    for (unsigned i = 0; i < n && ret == 0; i++)
        ret = assign_default(specs, n, i, err, errlen);
    for (unsigned i = 0; i < n && ret == 0; i++)
        ret = check_window(specs, i, err, errlen);
    return ret;
}
