/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpio (VIRTIO 1.2, GPIO Device): the guest's GPIO controller,
 * its lines some of dom0's chip's, those lines= lists and no other:
 * guest line i is chip line lines[i]. This file: options, the chip, life
 * cycle, the queues' drains; gpio-req.c: the requests; gpio-line.c:
 * dom0's line requests; gpio-irq.c: interrupts.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../common/gpio-cdev.h"
#include "../common/range-list.h"
#include "gpio.h"

#define GPIO_DEVICE_ID 41

static const char *const gpio_options[] = {
    "chip=PATH: dom0's GPIO chip the guest's lines are on, its character "
    "device /dev/gpiochipN (required)",
    "lines=A[:B...]: the chip's lines the guest gets, in the order it "
    "numbers them, decimal as gpioinfo shows them, ':'-separated, A-B for "
    "a range, at most 64 (required)",
    NULL,
};

/* One item of lines=: its lines, each on the chip and new, appended. */
static int gpio_add_range(void *arg, unsigned long first, unsigned long last,
                          const char *item)
{
    struct gpio *g = arg;

    if (last >= g->chip_lines) {
        xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                     "lines=: '%s' is beyond the lines of %s, 0..%u", item,
                     g->chip, g->chip_lines - 1);
        return -EINVAL;
    }
    for (unsigned long off = first; off <= last; off++) {
        if (g->nr == GPIO_LINES_MAX) {
            xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                         "lines=: '%s' makes more than %u lines", item,
                         GPIO_LINES_MAX);
            return -EINVAL;
        }
        for (unsigned i = 0; i < g->nr; i++) {
            if (g->lines[i].offset == off) {
                xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                             "lines=: '%s' names line %lu again", item, off);
                return -EINVAL;
            }
        }
        g->lines[g->nr++].offset = (unsigned)off;
    }
    return 0;
}

/* Open chip= and read how many lines it has. */
static int gpio_open_chip(struct gpio *g, const char *chip)
{
    const char *why;

    if (!chip || !*chip) {
        xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                     "chip= is required: dom0's GPIO chip, /dev/gpiochipN");
        return -EINVAL;
    }
    g->chip = strdup(chip);
    if (!g->chip)
        return -ENOMEM;
    g->fd = gpio_cdev_open_chip(chip, &g->chip_lines, &why);
    if (g->fd < 0) {
        int err = -g->fd;

        xvdm_dev_log(g->dev, XVDM_LOG_ERROR, "chip=%s %s: %s", chip, why,
                     strerror(err));
        return -err;
    }
    return 0;
}

static int gpio_parse_lines(struct gpio *g, const char *lines)
{
    if (!lines || !*lines) {
        xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                     "lines= is required: the chip's lines the guest gets, "
                     "e.g. lines=0-7");
        return -EINVAL;
    }
    return range_list_walk(g->dev, "lines", lines, 10, gpio_add_range, g);
}

/* A name the guest may see: 7-bit ASCII, printable, and not one an
 * earlier line has (the spec wants them unique; Linux warns of
 * duplicates). */
static bool gpio_name_ok(const struct gpio *g, const char *name, size_t at)
{
    for (const char *p = name; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    for (size_t i = 0; i < at; i += strlen(g->names + i) + 1)
        if (*name && !strcmp(g->names + i, name))
            return false;
    return true;
}

/* l's name from the chip into the block at *at; its use in dom0 said. */
static int gpio_name_line(struct gpio *g, const struct gpio_line *l, size_t *at)
{
    struct gpio_v2_line_info info;

    memset(&info, 0, sizeof(info));
    info.offset = l->offset;
    if (ioctl(g->fd, GPIO_V2_GET_LINEINFO_IOCTL, &info) < 0) {
        int err = errno;

        xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                     "chip=%s: line %u: GPIO_V2_GET_LINEINFO_IOCTL: %s",
                     g->chip, l->offset, strerror(err));
        return -err;
    }
    info.name[sizeof(info.name) - 1] = '\0';
    info.consumer[sizeof(info.consumer) - 1] = '\0';
    if (info.flags & GPIO_V2_LINE_FLAG_USED)
        xvdm_dev_log(g->dev, XVDM_LOG_WARN,
                     "chip line %u is in use in dom0 (by '%s'): the "
                     "guest cannot use its line %u until it is free",
                     l->offset, info.consumer, l->index);
    if (!gpio_name_ok(g, info.name, *at))
        info.name[0] = '\0';
    strcpy(g->names + *at, info.name);
    *at += strlen(info.name) + 1;
    return 0;
}

/* The names block of GET_NAMES: each line's name, NUL-terminated, in
 * the guest's order; an unnamed line's is empty. */
static int gpio_names(struct gpio *g)
{
    size_t at = 0;
    int ret = 0;

    g->names = calloc(g->nr, GPIO_MAX_NAME_SIZE);
    if (!g->names)
        return -ENOMEM;
    for (unsigned i = 0; i < g->nr && !ret; i++)
        ret = gpio_name_line(g, &g->lines[i], &at);
    g->config.ngpio = htole16((uint16_t)g->nr);
    g->config.gpio_names_size = htole32((uint32_t)at);
    return ret;
}

static void gpio_lines_init(struct gpio *g)
{
    for (unsigned i = 0; i < g->nr; i++) {
        struct gpio_line *l = &g->lines[i];

        l->g = g;
        l->index = i;
        l->fd = -1;
    }
}

static void gpio_reset(void *priv)
{
    struct gpio *g = priv;

    for (unsigned i = 0; i < g->nr; i++) {
        struct gpio_line *l = &g->lines[i];

        gpio_line_release(l);
        gpio_irq_forget(l);
        l->dir = VIRTIO_GPIO_DIRECTION_NONE;
        l->value = 0;
    }
}

static void gpio_destroy(void *priv)
{
    struct gpio *g = priv;

    gpio_reset(g);
    if (g->fd >= 0)
        close(g->fd);
    free(g->names);
    free(g->chip);
    free(g);
}

static int gpio_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                       struct xvdm_device_setup *setup, void **priv)
{
    struct gpio *g = calloc(1, sizeof(*g));
    int ret;

    if (!g)
        return -ENOMEM;
    g->dev = dev;
    g->fd = -1;
    snprintf(g->consumer, sizeof(g->consumer), "xvdm dom%u %s",
             xvdm_dev_domid(dev), xvdm_dev_name(dev));
    ret = gpio_open_chip(g, xvdm_opt_get(opts, "chip"));
    if (ret == 0)
        ret = gpio_parse_lines(g, xvdm_opt_get(opts, "lines"));
    gpio_lines_init(g);
    if (ret == 0)
        ret = gpio_names(g);
    if (ret) {
        gpio_destroy(g);
        return ret;
    }
    xvdm_dev_log(dev, XVDM_LOG_INFO, "GPIO chip %s, lines %s", g->chip,
                 xvdm_opt_get(opts, "lines"));
    setup->features = 1ULL << VIRTIO_GPIO_F_IRQ;
    setup->num_queues = 2;
    setup->queue_size_max[GPIO_QUEUE_REQUEST] = GPIO_REQUEST_QUEUE_SIZE;
    setup->queue_size_max[GPIO_QUEUE_EVENT] = GPIO_EVENT_QUEUE_SIZE;
    setup->config_size = sizeof(g->config);
    *priv = g;
    return 0;
}

static void gpio_config_read(void *priv, uint32_t offset, void *buf,
                             uint32_t len)
{
    struct gpio *g = priv;

    memcpy(buf, (const uint8_t *)&g->config + offset, len);
}

/* Requests are short ioctls, answered as they come: xvdm_queue_next()
 * bounds a turn's. An eventq buffer is held until its interrupt. */
static void gpio_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct gpio *g = priv;
    struct iovec iov[GPIO_IOV_MAX];
    struct xvdm_chain ch = {.iov = iov, .iov_cap = GPIO_IOV_MAX};

    while (xvdm_queue_next(q, &ch) == 1) {
        if (index == GPIO_QUEUE_REQUEST)
            gpio_req_serve(g, q, &ch);
        else
            gpio_irq_unmask(g, q, &ch);
        ch = (struct xvdm_chain){.iov = iov, .iov_cap = GPIO_IOV_MAX};
    }
    xvdm_queue_notify_guest(q);
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "gpio",
    .summary = "GPIO controller (virtio-gpio) with listed lines of one of "
               "dom0's chips",
    .device_id = GPIO_DEVICE_ID,
    .options = gpio_options,
    .create = gpio_create,
    .destroy = gpio_destroy,
    .config_read = gpio_config_read,
    .queue_notify = gpio_queue_notify,
    .reset = gpio_reset,
};
