/* SPDX-License-Identifier: MIT */
/* xvdm_dev_publish(): what a device says about itself, in xenstore where
 * tools look for it, gone again with the device (see <xvdm/device.h>). */
#define _GNU_SOURCE
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "log.h"
#include "store.h"

#define PUBLISH_KEY_MAX 64

/* One path element: nothing a module could use to write elsewhere. */
static bool publish_key_ok(const char *key)
{
    size_t len = strlen(key);

    if (len == 0 || len > PUBLISH_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '-' && key[i] != '_')
            return false;
    return true;
}

/* Has the device written `path` before? */
static bool publish_known(const struct xvdm_dev *dev, const char *path)
{
    for (unsigned i = 0; i < dev->nr_published; i++)
        if (strcmp(dev->published[i], path) == 0)
            return true;
    return false;
}

int xvdm_dev_publish(struct xvdm_dev *dev, const char *key, const char *value)
{
    char *path;
    bool known;
    int ret;

    if (!publish_key_ok(key)) {
        log_err("%scannot publish '%s': a key is 1 to %d letters, digits, "
                "'-' or '_'",
                dev->prefix, key, PUBLISH_KEY_MAX);
        return -EINVAL;
    }
    if (!dev->store)
        return 0;
    if (asprintf(&path, "%s/%s", dev->node, key) < 0)
        return -ENOMEM;
    known = publish_known(dev, path);
    ret = !known && dev->nr_published == DEV_PUBLISHED_MAX ? -ENOSPC : 0;
    if (ret == 0)
        ret = store_write(dev->store, path, value);
    if (ret)
        log_err("%scannot publish %s: %s", dev->prefix, path, strerror(-ret));
    if (ret == 0 && !known)
        dev->published[dev->nr_published++] = path;
    else
        free(path);
    return ret;
}

/* A node someone else removed first (libxl removing the backend
 * directory) is fine. */
void dev_unpublish(struct xvdm_dev *dev)
{
    for (unsigned i = 0; i < dev->nr_published; i++) {
        int ret = store_rm(dev->store, dev->published[i]);

        if (ret && ret != -ENOENT)
            log_warn("%scannot remove %s: %s", dev->prefix, dev->published[i],
                     strerror(-ret));
        free(dev->published[i]);
    }
    dev->nr_published = 0;
}
