/* SPDX-License-Identifier: MIT */
/* xvdm_dev_guest_read(): guest memory a device's requests point at,
 * reached through the device's gaccess as its queues' buffers are. In
 * grant mode each mapping is outside the guest's grant budget (gbudget):
 * one at a time, at most GACCESS_MAP_PAGES_MAX pages, and unmapped before
 * the call returns, so a device holds at most that many extra maptrack
 * entries, and only for the length of a call. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "dev.h"

/* One mapping at a time: gaccess_map() takes at most
 * GACCESS_MAP_PAGES_MAX pages, counted from addr's page. */
static uint64_t dev_guest_chunk(uint64_t addr, uint64_t len)
{
    uint64_t room =
        GACCESS_MAP_PAGES_MAX * GACCESS_PAGE - (addr & (GACCESS_PAGE - 1));

    return len < room ? len : room;
}

int xvdm_dev_guest_view(struct xvdm_dev *dev, uint64_t addr, uint64_t len,
                        xvdm_guest_piece_fn *fn, void *arg)
{
    if (!dev->attached || addr + len < addr)
        return -EFAULT;
    while (len) {
        uint64_t n = dev_guest_chunk(addr, len);
        struct gmap m = {0};
        const void *p = gaccess_map(&dev->ga, addr, n, false, &m);

        if (!p)
            return -EFAULT;
        fn(arg, p, n);
        gaccess_unmap(&dev->ga, &m);
        addr += n;
        len -= n;
    }
    return 0;
}

static void dev_guest_copy(void *arg, const void *p, uint64_t n)
{
    uint8_t **to = arg;

    memcpy(*to, p, n);
    *to += n;
}

int xvdm_dev_guest_read(struct xvdm_dev *dev, uint64_t addr, void *buf,
                        uint64_t len)
{
    uint8_t *to = buf;

    if (to)
        return xvdm_dev_guest_view(dev, addr, len, dev_guest_copy, &to);
    if (!dev->attached || addr + len < addr)
        return -EFAULT;
    return len == 0 || gaccess_may_map(&dev->ga, addr, len) ? 0 : -EFAULT;
}
