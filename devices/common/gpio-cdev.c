/* SPDX-License-Identifier: MIT */
/* dom0's GPIO chips through the character device (see gpio-cdev.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gpio-cdev.h"

int gpio_cdev_open_chip(const char *path, unsigned *lines, const char **why)
{
    struct gpiochip_info info;
    int fd = open(path, O_RDWR | O_CLOEXEC), err;

    if (fd < 0) {
        *why = "cannot be opened";
        return -errno;
    }
    memset(&info, 0, sizeof(info));
    err = ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, &info) < 0 ? errno : 0;
    /* Not a chip (ENOTTY), or a chip without a line to give. */
    if (err == ENOTTY || (!err && !info.lines))
        err = ENODEV;
    if (err) {
        *why = "is not a GPIO chip's character device "
               "(GPIO_GET_CHIPINFO_IOCTL)";
        close(fd);
        return -err;
    }
    *lines = info.lines;
    return fd;
}

void gpio_cdev_config(struct gpio_v2_line_config *c, uint64_t flags, int value)
{
    memset(c, 0, sizeof(*c));
    c->flags = flags;
    if (flags & GPIO_V2_LINE_FLAG_OUTPUT) {
        c->num_attrs = 1;
        c->attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
        c->attrs[0].attr.values = (uint64_t)value;
        c->attrs[0].mask = 1;
    }
}

int gpio_cdev_request(int chip, unsigned offset, const char *consumer,
                      const struct gpio_v2_line_config *c)
{
    struct gpio_v2_line_request req;

    memset(&req, 0, sizeof(req));
    req.offsets[0] = offset;
    req.num_lines = 1;
    strncpy(req.consumer, consumer, sizeof(req.consumer) - 1);
    req.config = *c;
    if (ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req) < 0)
        return -errno;
    return req.fd;
}

int gpio_cdev_set(int line, int value)
{
    struct gpio_v2_line_values v = {.bits = (uint64_t)value, .mask = 1};

    return ioctl(line, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0 ? -errno : 0;
}
