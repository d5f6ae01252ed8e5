/* SPDX-License-Identifier: MIT */
/* Loading blk+rbd.so, the RBD backing, from beside blk.so (blk-rbd.h). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "blk-rbd.h"

/* The library's path: blk.so's own directory, wherever xvdm found it
 * (the module directory, or a test's). 0, or -1 when it cannot be told. */
static int blk_rbd_path(char *path, size_t size)
{
    Dl_info self;
    const char *slash;

    if (!dladdr((void *)blk_rbd_load, &self) || !self.dli_fname)
        return -1;
    slash = strrchr(self.dli_fname, '/');
    if (!slash)
        return -1;
    if (snprintf(path, size, "%.*s/%s", (int)(slash - self.dli_fname),
                 self.dli_fname, BLK_RBD_LIBRARY) >= (int)size)
        return -1;
    return 0;
}

const struct blk_rbd_backing *blk_rbd_load(struct xvdm_dev *dev)
{
    static const struct blk_rbd_backing *backing;
    char path[PATH_MAX];
    void *lib;

    if (backing)
        return backing;
    if (blk_rbd_path(path, sizeof(path))) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR,
                     "cannot tell where blk.so is, to load %s beside it",
                     BLK_RBD_LIBRARY);
        return NULL;
    }
    /* Never closed: librbd's threads may run on after an image closes. */
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (lib)
        backing = dlsym(lib, BLK_RBD_SYMBOL);
    if (!backing)
        xvdm_dev_log(dev, XVDM_LOG_ERROR, "cannot load the RBD backing: %s",
                     lib ? "no " BLK_RBD_SYMBOL : dlerror());
    return backing;
}
