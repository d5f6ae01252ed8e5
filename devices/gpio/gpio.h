/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpio's state, shared by its parts: gpio.c (the module: options,
 * the chip, life cycle, the queues' drains), gpio-req.c (the requestq's
 * messages), gpio-line.c (a guest line as a line request on dom0's chip)
 * and gpio-irq.c (the eventq: interrupts from the line's edge events).
 */
#ifndef XVDM_GPIO_H
#define XVDM_GPIO_H

#include <linux/gpio.h>
#include <linux/virtio_gpio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <xvdm/device.h>

/* Lines a guest may be given: each one the guest activates holds a line
 * request (an fd) on dom0's chip. GPIO_V2_LINES_MAX, the uAPI's lines
 * per request, is as many as a chip's consumer is expected to hold. */
#define GPIO_LINES_MAX GPIO_V2_LINES_MAX
#define GPIO_REQUEST_QUEUE_SIZE 128
/* The eventq holds at most one buffer per line. */
#define GPIO_EVENT_QUEUE_SIZE GPIO_LINES_MAX
/* Buffers per chain; Linux's driver uses 2 on either queue. */
#define GPIO_IOV_MAX 4
#define GPIO_QUEUE_REQUEST 0
#define GPIO_QUEUE_EVENT 1

/* One of the guest's lines: host line `offset` of the chip. */
struct gpio_line {
    struct gpio *g;
    unsigned index;   /* the guest's number for it */
    unsigned offset;  /* dom0's */
    int fd;           /* its line request, -1 while the guest does not use it */
    uint8_t dir;      /* VIRTIO_GPIO_DIRECTION_* the guest set */
    uint8_t value;    /* the output value the guest set, kept for when
                         the line becomes an output (VIRTIO 1.2, GPIO
                         Device, Set Value) */
    uint8_t irq_type; /* VIRTIO_GPIO_IRQ_TYPE_* */
    bool latched;     /* an edge came while the interrupt was masked */
    uint64_t edges;    /* the GPIO_V2_LINE_FLAG_EDGE_* fd detects */
    uint64_t since_ns; /* edges before (CLOCK_MONOTONIC, the events'
                          clock) were for other edges than these */
    bool unmasked;    /* the guest's eventq buffer for it is held in irq */
    struct xvdm_chain irq;
    struct iovec irq_iov[GPIO_IOV_MAX];
};

struct gpio {
    struct xvdm_dev *dev;
    char *chip; /* chip=, as given */
    int fd;     /* the chip's character device */
    unsigned chip_lines;
    char consumer[GPIO_MAX_NAME_SIZE]; /* dom0's gpioinfo shows it */
    struct virtio_gpio_config config;
    char *names; /* config.gpio_names_size bytes */
    unsigned nr; /* lines[0 .. nr) */
    struct gpio_line lines[GPIO_LINES_MAX];
};

/* ---- gpio-line.c ---- */

/* Make l's line request on dom0's chip what the guest's direction, value
 * and interrupt type now ask: none, an output at l->value, or an input
 * with the edge detection its interrupt type needs. 0, or a negative
 * errno (the request stays as it was) after a rate-limited line. */
int gpio_line_apply(struct gpio_line *l);
/* Give l's line request back to dom0 (at a reset, or on the way out). */
void gpio_line_release(struct gpio_line *l);
/* The level l carries: 0 or 1, or a negative errno when l is not
 * requested or the chip failed. */
int gpio_line_get(struct gpio_line *l);
/* Drive an output line to l->value. 0, or a negative errno. */
int gpio_line_set(struct gpio_line *l);

/* ---- gpio-req.c ---- */

/* Serve one requestq chain; push it. */
void gpio_req_serve(struct gpio *g, struct xvdm_queue *q,
                    const struct xvdm_chain *ch);

/* ---- gpio-irq.c ---- */

/* Take one eventq chain: the guest unmasks a line's interrupt. */
void gpio_irq_unmask(struct gpio *g, struct xvdm_queue *q,
                     const struct xvdm_chain *ch);
/* l's line request saw an edge (its detection is the interrupt type's). */
void gpio_irq_edge(struct gpio_line *l);
/* The guest's interrupt type for l changed (or l went back to none):
 * forget a latched edge; with none, return the held buffer INVALID. */
void gpio_irq_retype(struct gpio_line *l);
/* Forget l's interrupt state and held buffer without touching the guest's
 * memory (a reset: xvdm forgets the queues). */
void gpio_irq_forget(struct gpio_line *l);

#endif
