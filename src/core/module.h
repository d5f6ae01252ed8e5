/* SPDX-License-Identifier: MIT */
/* Device modules: shared objects named TYPE.so in a module directory,
 * loaded with dlopen and checked for ABI version. */
#ifndef XVDM_MODULE_H
#define XVDM_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <xvdm/device.h>

struct module {
    void *handle; /* from dlopen */
    const struct xvdm_device_ops *ops;
};

/* The directory to load from: $XVDM_MODULE_DIR when set, else the one
 * chosen at configure time. */
const char *module_default_dir(void);

/* Load dir/TYPE.so. -ENOENT (unknown type: err lists the types found in
 * dir), -EINVAL (bad type name, missing symbol, ABI version mismatch: err
 * names both versions), or 0. */
int module_load(struct module *mod, const char *dir, const char *type,
                char *err, size_t errlen);
void module_unload(struct module *mod);

/* Print every module of dir for --list-devices: name, virtio id, summary
 * and its options. Returns the number listed or a negative errno. */
int module_list(const char *dir, FILE *out);

/* The type of the first module of dir (in name order) that implements
 * virtio device `device_id`, into type[len]. 0, -ENOENT when none does, or
 * a negative errno when dir cannot be read. */
int module_find_id(const char *dir, uint32_t device_id, char *type,
                   size_t len);

#endif
