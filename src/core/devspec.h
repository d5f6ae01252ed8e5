/* SPDX-License-Identifier: MIT */
/*
 * Device specs: "TYPE[,key=value...]" as given to --device, or built from
 * what libxl wrote in xenstore, and the guest layout every device gets: a
 * 0x200 window and an SPI, by default in libxl's order (slot n: window
 * GUEST_VIRTIO_MMIO_BASE + n * 0x200, SPI GUEST_VIRTIO_MMIO_SPI_FIRST + n),
 * overridable with base= and irq=.
 *
 * Errors are written to err as one line naming the bad value, without a
 * trailing newline, for the caller to print.
 */
#ifndef XVDM_DEVSPEC_H
#define XVDM_DEVSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev.h"

struct devspec {
    char *text; /* as given */
    char *type;
    struct xvdm_options opts; /* every key but base, irq and grants */
    uint64_t base;
    uint32_t irq;
    bool base_given;
    bool irq_given;
    /* grants=on: the device reaches guest memory only through what the
     * guest grants (gaccess.h); the default maps the guest's RAM. */
    bool grants;
    bool grants_given;
    /* A guest's own file's line without base= or irq=: it only lends its
     * options to a device the guest declares, never makes one. */
    bool backs_declared_only;
    /* The xenstore directory the device publishes its keys in
     * (xvdm_dev_publish), set by backend_open(); NULL: none. */
    char *node;
};

/* Parse one spec. 0, or -EINVAL with err set (empty type, bad type name,
 * empty key, duplicate key, too many options, malformed base/irq). */
int devspec_parse(const char *text, struct devspec *out, char *err,
                  size_t errlen);
void devspec_free(struct devspec *spec);
/* Build a spec piece by piece: `text` names it in messages. 0 or -ENOMEM
 * (nothing left to free). */
int devspec_init(struct devspec *spec, const char *text, const char *type);
/* Add key=value ("base" and "irq" set the layout, "grants" the memory
 * mode). 0, or -EINVAL with err set (bad name, given twice, too many,
 * malformed base/irq/grants). */
int devspec_add_option(struct devspec *spec, const char *key,
                       const char *value, char *err, size_t errlen);

/* How many of specs[0 .. i) have the type of specs[i]: the number in the
 * device's name ("net1" is a guest's second net device). */
unsigned devspec_type_index(const struct devspec *specs, unsigned i);

/* Give every spec without base= the first slot whose window no other
 * spec uses, and without irq= the SPI of its slot; then check the whole
 * list: windows 0x200-aligned, not overlapping each other or guest RAM;
 * SPIs in 32..1019 (devices may share one). -EINVAL with err naming both
 * devices of a conflict. */
int devspec_assign_layout(struct devspec *specs, unsigned n, char *err,
                          size_t errlen);

#endif
