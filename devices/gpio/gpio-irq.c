/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpio interrupts (VIRTIO 1.2, GPIO Device, eventq Operation). The
 * guest enables a line's interrupt with SET_IRQ_TYPE on the requestq and
 * unmasks it by posting one buffer for the line on the eventq; the device
 * returns that buffer VALID when the interrupt fires, which masks it
 * again, and INVALID when the type goes back to NONE. dom0's chip gives
 * edges only (the line request's events), so the level types are made of
 * them: on unmask, and on each edge into the level, the line is read and
 * the buffer returned if it is at the level. Linux's driver handles every
 * interrupt with handle_level_irq, unmasking (posting the buffer again)
 * once its handler ran: a level still held fires again at once, as on a
 * real level-triggered controller. A level interrupt is never latched
 * while masked; an edge is (the spec's device requirements).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "../common/iov-copy.h"
#include "gpio.h"

static bool gpio_irq_is_level(uint8_t type)
{
    return type &
           (VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH | VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW);
}

/* The status byte into the buffer, which goes back to the guest. */
static void gpio_irq_answer(struct xvdm_queue *q, const struct xvdm_chain *ch,
                            uint8_t status)
{
    iov_copy(&ch->iov[ch->out_num], ch->in_num, 0, &status, 1, true);
    xvdm_queue_push(q, ch, 1);
}

static void gpio_irq_complete(struct gpio_line *l, uint8_t status)
{
    struct xvdm_queue *q = xvdm_dev_queue(l->g->dev, GPIO_QUEUE_EVENT);

    l->unmasked = false;
    gpio_irq_answer(q, &l->irq, status);
    xvdm_queue_notify_guest(q);
}

/* A level interrupt, unmasked: fire it if the line is at its level. */
static void gpio_irq_level_check(struct gpio_line *l)
{
    int level = gpio_line_get(l);

    if (level == (l->irq_type == VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH))
        gpio_irq_complete(l, VIRTIO_GPIO_IRQ_STATUS_VALID);
}

void gpio_irq_edge(struct gpio_line *l)
{
    /* An event the kernel queued before the detection changed. */
    if (l->irq_type == VIRTIO_GPIO_IRQ_TYPE_NONE)
        return;
    if (gpio_irq_is_level(l->irq_type)) {
        if (l->unmasked)
            gpio_irq_level_check(l);
    } else if (l->unmasked) {
        gpio_irq_complete(l, VIRTIO_GPIO_IRQ_STATUS_VALID);
    } else {
        l->latched = true;
    }
}

/* The line an eventq chain is for, or NULL with why[] saying what is
 * wrong with it. */
static struct gpio_line *gpio_irq_line_of(struct gpio *g,
                                          const struct xvdm_chain *ch,
                                          char *why, size_t len)
{
    struct virtio_gpio_irq_request req = {0};
    unsigned index;

    if (!(xvdm_dev_features(g->dev) & (1ULL << VIRTIO_GPIO_F_IRQ))) {
        snprintf(why, len, "without VIRTIO_GPIO_F_IRQ");
        return NULL;
    }
    if (ch->out_len != sizeof(req)) {
        snprintf(why, len, "with a %u-byte request, not %zu", ch->out_len,
                 sizeof(req));
        return NULL;
    }
    iov_copy(ch->iov, ch->out_num, 0, &req, sizeof(req), false);
    index = le16toh(req.gpio);
    if (index >= g->nr) {
        snprintf(why, len, "for line %u of %u", index, g->nr);
        return NULL;
    }
    if (g->lines[index].unmasked) {
        snprintf(why, len, "for line %u, which has one already", index);
        return NULL;
    }
    return &g->lines[index];
}

void gpio_irq_unmask(struct gpio *g, struct xvdm_queue *q,
                     const struct xvdm_chain *ch)
{
    struct gpio_line *l;
    char why[96];

    if (ch->in_len == 0) {
        xvdm_dev_guest_error(
            g->dev, "eventq buffer %u has no byte for its status", ch->head);
        xvdm_queue_push(q, ch, 0);
        return;
    }
    l = gpio_irq_line_of(g, ch, why, sizeof(why));
    if (!l) {
        xvdm_dev_guest_error(g->dev,
                             "eventq buffer %u %s: VIRTIO_GPIO_IRQ_STATUS_"
                             "INVALID",
                             ch->head, why);
        gpio_irq_answer(q, ch, VIRTIO_GPIO_IRQ_STATUS_INVALID);
        return;
    }
    /* Unmasked before it was enabled: back at once (the spec's outcome,
     * and what Linux's driver waits for when it disables the interrupt
     * while posting the buffer). */
    if (l->irq_type == VIRTIO_GPIO_IRQ_TYPE_NONE) {
        gpio_irq_answer(q, ch, VIRTIO_GPIO_IRQ_STATUS_INVALID);
        return;
    }
    l->irq = *ch;
    memcpy(l->irq_iov, ch->iov,
           sizeof(ch->iov[0]) * (ch->out_num + ch->in_num));
    l->irq.iov = l->irq_iov;
    l->unmasked = true;
    if (gpio_irq_is_level(l->irq_type)) {
        gpio_irq_level_check(l);
    } else if (l->latched) {
        l->latched = false;
        gpio_irq_complete(l, VIRTIO_GPIO_IRQ_STATUS_VALID);
    }
}

void gpio_irq_retype(struct gpio_line *l)
{
    l->latched = false;
    if (l->irq_type == VIRTIO_GPIO_IRQ_TYPE_NONE && l->unmasked)
        gpio_irq_complete(l, VIRTIO_GPIO_IRQ_STATUS_INVALID);
}

void gpio_irq_forget(struct gpio_line *l)
{
    l->irq_type = VIRTIO_GPIO_IRQ_TYPE_NONE;
    l->latched = false;
    l->unmasked = false;
}
