/* SPDX-License-Identifier: MIT */
/*
 * A guest line as a line request on dom0's chip, through the GPIO
 * character device's uAPI v2 (../common/gpio-cdev.h). One request per
 * line, made when the guest
 * first uses the line and given back when it stops, so that dom0 sees
 * which lines the guest holds (gpioinfo names xvdm's consumer) and the
 * others stay free.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../common/clock-now.h"
#include "../common/gpio-cdev.h"
#include "gpio.h"

/* Edge events taken per read: the kernel keeps 16 per line by default. */
#define GPIO_EVENTS_PER_READ 16
#define GPIO_LINE_EDGES                                                        \
    (GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING)

/* The flags l's request needs now; 0: no request. A line with an
 * interrupt is an input, whatever direction the guest gave it (its
 * consumer may be an interrupt user alone: Linux then sends no
 * direction); the level types detect the edge into their level. */
static uint64_t gpio_line_flags(const struct gpio_line *l)
{
    uint64_t flags = GPIO_V2_LINE_FLAG_INPUT;

    if (l->dir == VIRTIO_GPIO_DIRECTION_OUT)
        return GPIO_V2_LINE_FLAG_OUTPUT;
    switch (l->irq_type) {
    case VIRTIO_GPIO_IRQ_TYPE_NONE:
        return l->dir == VIRTIO_GPIO_DIRECTION_IN ? flags : 0;
    case VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING:
    case VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH:
        return flags | GPIO_V2_LINE_FLAG_EDGE_RISING;
    case VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING:
    case VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW:
        return flags | GPIO_V2_LINE_FLAG_EDGE_FALLING;
    default:
        return flags | GPIO_V2_LINE_FLAG_EDGE_RISING |
               GPIO_V2_LINE_FLAG_EDGE_FALLING;
    }
}

/* The request's edge events, all of them read. The kernel keeps those it
 * queued before a change of the edges detected: only those since are
 * edges the interrupt's type asked for. */
static void gpio_line_readable(void *arg, uint32_t revents)
{
    struct gpio_line *l = arg;
    struct gpio_v2_line_event ev[GPIO_EVENTS_PER_READ];
    bool fresh = false;
    ssize_t n;

    (void)revents;
    n = read(l->fd, ev, sizeof(ev));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < (ssize_t)sizeof(ev[0])) {
        /* Not a line request's events: stop listening rather than spin. */
        xvdm_dev_log(l->g->dev, XVDM_LOG_ERROR,
                     "line %u (chip line %u): reading its events: %s; its "
                     "interrupts stop",
                     l->index, l->offset,
                     n < 0 ? strerror(errno) : "short read");
        xvdm_dev_modify_fd(l->g->dev, l->fd, 0);
        return;
    }
    for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++)
        fresh |= ev[i].timestamp_ns >= l->since_ns;
    if (fresh)
        gpio_irq_edge(l);
}

static int gpio_line_request(struct gpio_line *l, uint64_t flags)
{
    struct gpio *g = l->g;
    struct gpio_v2_line_config c;
    int fd, ret;

    /* An output starts at the value the guest set before. */
    gpio_cdev_config(&c, flags, l->value);
    fd = gpio_cdev_request(g->fd, l->offset, g->consumer, &c);
    if (fd < 0)
        return fd;
    /* Reads must not block the loop. */
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        ret = -errno;
    else
        ret = xvdm_dev_watch_fd(g->dev, fd, EPOLLIN, gpio_line_readable, l);
    if (ret) {
        close(fd);
        return ret;
    }
    l->fd = fd;
    return 0;
}

int gpio_line_apply(struct gpio_line *l)
{
    uint64_t flags = gpio_line_flags(l);
    uint64_t edges = flags & GPIO_LINE_EDGES;
    /* Taken before the change: an edge in between may pass for a new
     * one (an interrupt too many, which a driver bears), never the
     * other way round (one lost, which it may wait for forever). */
    uint64_t since = clock_now_ns();
    bool fresh = l->fd < 0; /* a new request: all its events are new */
    struct gpio_v2_line_config c;
    int ret = 0;

    if (!flags) {
        gpio_line_release(l);
        return 0;
    }
    if (fresh) {
        ret = gpio_line_request(l, flags);
    } else {
        gpio_cdev_config(&c, flags, l->value);
        if (ioctl(l->fd, GPIO_V2_LINE_SET_CONFIG_IOCTL, &c) < 0)
            ret = -errno;
    }
    /* dom0 holds the line (EBUSY), or the chip refuses the config. */
    if (ret) {
        xvdm_dev_guest_error(l->g->dev,
                             "line %u (chip line %u %s): cannot make it an "
                             "%s: %s: VIRTIO_GPIO_STATUS_ERR",
                             l->index, l->offset, l->g->chip,
                             flags & GPIO_V2_LINE_FLAG_OUTPUT ? "output"
                                                              : "input",
                             strerror(-ret));
        return ret;
    }
    /* The kernel keeps its queue when the edges it detects stay the
     * same: what it queued is still of the edges asked for. */
    if (fresh)
        l->since_ns = 0;
    else if (edges != l->edges)
        l->since_ns = since;
    l->edges = edges;
    return 0;
}

void gpio_line_release(struct gpio_line *l)
{
    if (l->fd < 0)
        return;
    xvdm_dev_unwatch_fd(l->g->dev, l->fd);
    close(l->fd);
    l->fd = -1;
}

int gpio_line_get(struct gpio_line *l)
{
    struct gpio_v2_line_values v = {.mask = 1};

    if (l->fd < 0)
        return -EPERM;
    if (ioctl(l->fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0)
        return -errno;
    return (int)(v.bits & 1);
}

int gpio_line_set(struct gpio_line *l)
{
    return gpio_cdev_set(l->fd, l->value);
}
