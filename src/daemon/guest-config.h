/* SPDX-License-Identifier: MIT */
/*
 * A guest's own xvdm configuration: DIR/NAME.conf, NAME the guest's name
 * as xenstore knows it (xl's name = "..."), one device per line in
 * --device's syntax ('#' starts a comment). Its lines back the devices
 * the guest's xl config declares, as --device does (Xen 4.18's
 * virtio = [...] devices say nothing of their backing), or add devices
 * of their own with base=. Read by root before privileges are dropped.
 */
#ifndef XVDM_GUEST_CONFIG_H
#define XVDM_GUEST_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "devspec.h"

struct store;

/* Larger files are refused: a device list is a few lines. */
#define GUEST_CONFIG_BYTES_MAX 65536
#define GUEST_CONFIG_DEVICES_MAX 32

/* Read guest `domid`'s file under dir into out[0 .. *n), at most max.
 * No file, or a guest name that cannot name one (warned): 0 and *n = 0.
 * path (len bytes) gets the file's path, for messages. 0, or a negative errno with err naming the file (and line)
 * and the bad value. */
int guest_config_read(struct store *st, uint32_t domid, const char *dir,
                      struct devspec *out, unsigned max, unsigned *n,
                      char *path, size_t len, char *err, size_t errlen);
/* given[0 .. nr_cli + nr_file): the command line's specs, then those of
 * the file at path (copies sharing their strings). 0, or -E2BIG with err
 * naming the file and both counts when together they are more than max. */
int guest_config_combine(const struct devspec *cli, unsigned nr_cli,
                         const struct devspec *file, unsigned nr_file,
                         const char *path, struct devspec *given,
                         unsigned max, char *err, size_t errlen);

#endif
