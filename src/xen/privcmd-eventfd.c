/* SPDX-License-Identifier: MIT */
/* Linux privcmd's ioeventfd and irqfd (see privcmd-eventfd.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xen/hvm/dm_op.h>

#include "privcmd-eventfd.h"

/* Linux's include/uapi/xen/privcmd.h (6.7+). Debian's libxen-dev ships an
 * older copy of that header without them, so the ABI is spelt out here;
 * _IOW encodes each struct's size, which the asserts pin. */
struct xvdm_privcmd_irqfd {
    uint64_t dm_op;
    uint32_t size;
    uint32_t fd;
    uint32_t flags;
    uint16_t dom;
    uint8_t pad[2];
};

struct xvdm_privcmd_ioeventfd {
    uint64_t ioreq;
    uint64_t ports;
    uint64_t addr;
    uint32_t addr_len;
    uint32_t event_fd;
    uint32_t vcpus;
    uint32_t vq;
    uint32_t flags;
    uint16_t dom;
    uint8_t pad[2];
};

_Static_assert(sizeof(struct xvdm_privcmd_irqfd) == 24, "privcmd_irqfd");
_Static_assert(sizeof(struct xvdm_privcmd_ioeventfd) == 48,
               "privcmd_ioeventfd");

#define XVDM_PRIVCMD_RESTRICT _IOC(_IOC_NONE, 'P', 6, sizeof(uint16_t))
#define XVDM_PRIVCMD_IRQFD _IOW('P', 8, struct xvdm_privcmd_irqfd)
#define XVDM_PRIVCMD_IOEVENTFD _IOW('P', 9, struct xvdm_privcmd_ioeventfd)
#define XVDM_PRIVCMD_DEASSIGN 1

/* virtio-mmio's QueueNotify takes 32-bit writes (VIRTIO 1.2 §4.2.2.2). */
#define XVDM_NOTIFY_LEN 4

int privcmd_irqfd(int fd, uint32_t domid, uint32_t spi, int efd, bool assign)
{
    /* The kernel copies the op when it is assigned. */
    struct xen_dm_op op = {
        .op = XEN_DMOP_set_irq_level,
        .u.set_irq_level = {.irq = spi, .level = 1},
    };
    struct xvdm_privcmd_irqfd arg = {
        .dm_op = (uintptr_t)&op,
        .size = sizeof(op),
        .fd = (uint32_t)efd,
        .flags = assign ? 0 : XVDM_PRIVCMD_DEASSIGN,
        .dom = (uint16_t)domid,
    };

    return ioctl(fd, XVDM_PRIVCMD_IRQFD, &arg) ? -errno : 0;
}

int privcmd_ioeventfd(int fd, uint32_t domid, const void *iopage,
                      const uint32_t *ports, unsigned vcpus, uint64_t window,
                      uint32_t vq, int efd, bool assign)
{
    struct xvdm_privcmd_ioeventfd arg = {
        .ioreq = (uintptr_t)iopage,
        .ports = (uintptr_t)ports,
        .addr = window,
        .addr_len = XVDM_NOTIFY_LEN,
        .event_fd = (uint32_t)efd,
        .vcpus = vcpus,
        .vq = vq,
        .flags = assign ? 0 : XVDM_PRIVCMD_DEASSIGN,
        .dom = (uint16_t)domid,
    };

    return ioctl(fd, XVDM_PRIVCMD_IOEVENTFD, &arg) ? -errno : 0;
}

/* Deassigning an eventfd that was never assigned succeeds where the
 * kernel has irqfd, and fails with EOPNOTSUPP (6.7+ built without it) or
 * ENOTTY (older) where it has not; it changes nothing either way. */
static int privcmd_eventfd_probe(int fd, uint32_t domid)
{
    int efd = eventfd(0, EFD_CLOEXEC);
    int ret;

    if (efd < 0)
        return -errno;
    ret = privcmd_irqfd(fd, domid, 0, efd, false);
    close(efd);
    return ret == -ENOTTY ? -EOPNOTSUPP : ret;
}

int privcmd_eventfd_open(uint32_t domid, int *out)
{
    uint16_t dom = (uint16_t)domid;
    int fd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
    int ret;

    if (fd < 0)
        return -errno;
    ret = ioctl(fd, XVDM_PRIVCMD_RESTRICT, &dom) ? -errno : 0;
    if (ret == 0)
        ret = privcmd_eventfd_probe(fd, domid);
    if (ret) {
        close(fd);
        return ret;
    }
    *out = fd;
    return 0;
}
