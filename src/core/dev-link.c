/* SPDX-License-Identifier: MIT */
/* xvdm_dev_offer_fd() and xvdm_dev_take_fd(): one device of an instance
 * handing a descriptor to another (see <xvdm/device.h>). One instance
 * serves one guest, so the devices of a process are one guest's: the
 * table is the process's. Devices are created and destroyed on the main
 * thread only, so it needs no lock. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "dev.h"
#include "log.h"

/* Offers in all: two a gpu's screen (keyboard, tablet), and room. */
#define LINKS_MAX 16

static struct dev_link {
    const struct xvdm_dev *owner; /* NULL: a free slot */
    char name[64];                /* "<owner's name>.<key>" */
    int fd;
    bool taken; /* by one device: a second would split what comes */
} links[LINKS_MAX];

static bool link_key_ok(const char *key)
{
    size_t len = strlen(key);

    if (len == 0 || len > 16)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(key[i] >= 'a' && key[i] <= 'z') && key[i] != '-')
            return false;
    return true;
}

static struct dev_link *link_find(const char *name)
{
    for (unsigned i = 0; i < LINKS_MAX; i++)
        if (links[i].owner && strcmp(links[i].name, name) == 0)
            return &links[i];
    return NULL;
}

int xvdm_dev_offer_fd(struct xvdm_dev *dev, const char *key, int fd)
{
    char name[sizeof(links[0].name)];
    struct dev_link *l = NULL;

    if (!link_key_ok(key) || fd < 0) {
        log_err("%soffers '%s' (fd %d): a key is 1 to 16 of a-z and '-'",
                dev->prefix, key, fd);
        return -EINVAL;
    }
    snprintf(name, sizeof(name), "%s.%s", dev->name, key);
    if (link_find(name)) {
        log_err("%soffers '%s' twice", dev->prefix, name);
        return -EEXIST;
    }
    for (unsigned i = 0; i < LINKS_MAX && !l; i++)
        if (!links[i].owner)
            l = &links[i];
    if (!l) {
        log_err("%scannot offer '%s': the instance's %d offers are taken",
                dev->prefix, name, LINKS_MAX);
        return -ENOSPC;
    }
    l->owner = dev;
    l->fd = fd;
    memcpy(l->name, name, sizeof(name));
    return 0;
}

int xvdm_dev_take_fd(struct xvdm_dev *dev, const char *name)
{
    struct dev_link *l = link_find(name);
    int fd;

    (void)dev;
    if (!l)
        return -ENOENT;
    if (l->taken)
        return -EBUSY;
    fd = fcntl(l->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    l->taken = true;
    return fd;
}

void dev_withdraw_links(const struct xvdm_dev *dev)
{
    for (unsigned i = 0; i < LINKS_MAX; i++)
        if (links[i].owner == dev)
            links[i] = (struct dev_link){0};
}
