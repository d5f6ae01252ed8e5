/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpio requests (VIRTIO 1.2, GPIO Device, requestq Operation):
 * each chain is an 8-byte request (type, gpio, value) and a response the
 * device fills: status and value, or for GET_NAMES status and the names
 * block. Linux's driver checks the used length is the response's, so an
 * answer is written whole. Every field is checked here, where it enters:
 * a request that fails a check gets VIRTIO_GPIO_STATUS_ERR and a
 * rate-limited line saying why.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../common/iov-copy.h"
#include "gpio.h"

#define GPIO_RESP_LEN ((uint32_t)sizeof(struct virtio_gpio_response))

/* A request, its fields in host order. */
struct gpio_msg {
    uint16_t type;
    uint16_t gpio;
    uint32_t value;
};

/* The result of a message: 0 (VIRTIO_GPIO_STATUS_OK), or -EINVAL with
 * why[] saying what the guest got wrong, or another negative errno that
 * the chip gave and that was logged. */
typedef int gpio_msg_fn(struct gpio_line *l, uint32_t value, uint8_t *out,
                        char *why, size_t len);

static int gpio_bad_value(uint32_t value, char *why, size_t len)
{
    snprintf(why, len, "has value %u", value);
    return -EINVAL;
}

static int gpio_get_direction(struct gpio_line *l, uint32_t value, uint8_t *out,
                              char *why, size_t len)
{
    if (value)
        return gpio_bad_value(value, why, len);
    *out = l->dir;
    return 0;
}

/* NONE deactivates the line: the spec has the device discard all of its
 * state, its interrupt included. */
static int gpio_set_direction(struct gpio_line *l, uint32_t value, uint8_t *out,
                              char *why, size_t len)
{
    uint8_t old = l->dir;
    int ret;

    (void)out;
    if (value > VIRTIO_GPIO_DIRECTION_IN)
        return gpio_bad_value(value, why, len);
    if (value == VIRTIO_GPIO_DIRECTION_OUT &&
        l->irq_type != VIRTIO_GPIO_IRQ_TYPE_NONE) {
        snprintf(why, len, "makes an output of a line with an interrupt");
        return -EINVAL;
    }
    if (value == VIRTIO_GPIO_DIRECTION_NONE) {
        l->value = 0;
        l->irq_type = VIRTIO_GPIO_IRQ_TYPE_NONE;
        gpio_irq_retype(l);
    }
    l->dir = (uint8_t)value;
    ret = gpio_line_apply(l);
    if (ret)
        l->dir = old;
    return ret;
}

static int gpio_get_value(struct gpio_line *l, uint32_t value, uint8_t *out,
                          char *why, size_t len)
{
    int level;

    if (value)
        return gpio_bad_value(value, why, len);
    level = gpio_line_get(l);
    if (level == -EPERM) {
        snprintf(why, len, "reads a line it has not given a direction");
        return -EINVAL;
    }
    if (level < 0) {
        snprintf(why, len, "could not be read from the chip: %s",
                 strerror(-level));
        return -EINVAL;
    }
    *out = (uint8_t)level;
    return 0;
}

static int gpio_set_value(struct gpio_line *l, uint32_t value, uint8_t *out,
                          char *why, size_t len)
{
    uint8_t old = l->value;
    int ret = 0;

    (void)out;
    if (value > 1)
        return gpio_bad_value(value, why, len);
    l->value = (uint8_t)value;
    if (l->dir == VIRTIO_GPIO_DIRECTION_OUT)
        ret = gpio_line_set(l);
    if (ret) {
        l->value = old;
        snprintf(why, len, "could not be set on the chip: %s", strerror(-ret));
        return -EINVAL;
    }
    return 0;
}

static bool gpio_irq_type_known(uint32_t type)
{
    switch (type) {
    case VIRTIO_GPIO_IRQ_TYPE_NONE:
    case VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING:
    case VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING:
    case VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH:
    case VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH:
    case VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW:
        return true;
    default:
        return false;
    }
}

/* Every SET_IRQ_TYPE starts afresh: an edge latches from this point on. */
static int gpio_set_irq_type(struct gpio_line *l, uint32_t value, uint8_t *out,
                             char *why, size_t len)
{
    uint8_t old = l->irq_type;
    int ret;

    (void)out;
    if (!(xvdm_dev_features(l->g->dev) & (1ULL << VIRTIO_GPIO_F_IRQ))) {
        snprintf(why, len,
                 "sets an interrupt type without "
                 "VIRTIO_GPIO_F_IRQ");
        return -EINVAL;
    }
    if (!gpio_irq_type_known(value))
        return gpio_bad_value(value, why, len);
    if (value != VIRTIO_GPIO_IRQ_TYPE_NONE &&
        l->dir == VIRTIO_GPIO_DIRECTION_OUT) {
        snprintf(why, len, "sets an interrupt on an output");
        return -EINVAL;
    }
    l->irq_type = (uint8_t)value;
    ret = gpio_line_apply(l);
    if (ret) {
        l->irq_type = old;
        return ret;
    }
    gpio_irq_retype(l);
    return 0;
}

/* The handler of a type that names a line, or NULL. */
static gpio_msg_fn *gpio_msg_handler(uint16_t type)
{
    switch (type) {
    case VIRTIO_GPIO_MSG_GET_DIRECTION:
        return gpio_get_direction;
    case VIRTIO_GPIO_MSG_SET_DIRECTION:
        return gpio_set_direction;
    case VIRTIO_GPIO_MSG_GET_VALUE:
        return gpio_get_value;
    case VIRTIO_GPIO_MSG_SET_VALUE:
        return gpio_set_value;
    case VIRTIO_GPIO_MSG_IRQ_TYPE:
        return gpio_set_irq_type;
    default:
        return NULL;
    }
}

/* GET_NAMES: gpio and value 0, room for the whole block. */
static int gpio_get_names(struct gpio *g, const struct xvdm_chain *ch,
                          const struct gpio_msg *m, char *why, size_t len)
{
    uint32_t size = le32toh(g->config.gpio_names_size);

    if (m->gpio || m->value) {
        snprintf(why, len, "asks for names with gpio %u, value %u", m->gpio,
                 m->value);
        return -EINVAL;
    }
    if (ch->in_len < 1 + size) {
        snprintf(why, len, "has %u bytes for %u bytes of names", ch->in_len,
                 1 + size);
        return -EINVAL;
    }
    iov_copy(&ch->iov[ch->out_num], ch->in_num, 1, g->names, size, true);
    return 0;
}

/* Carry out the request; its value into *out. 0 or as gpio_msg_fn. */
static int gpio_msg_run(struct gpio *g, const struct xvdm_chain *ch,
                        const struct gpio_msg *m, uint8_t *out, char *why,
                        size_t len)
{
    gpio_msg_fn *fn = gpio_msg_handler(m->type);

    if (m->type == VIRTIO_GPIO_MSG_GET_NAMES)
        return gpio_get_names(g, ch, m, why, len);
    if (!fn) {
        snprintf(why, len, "has unknown type %u", m->type);
        return -EINVAL;
    }
    if (ch->in_len < GPIO_RESP_LEN) {
        snprintf(why, len, "has %u bytes for its %u-byte response", ch->in_len,
                 GPIO_RESP_LEN);
        return -EINVAL;
    }
    if (m->gpio >= g->nr) {
        snprintf(why, len, "is for line %u of %u", m->gpio, g->nr);
        return -EINVAL;
    }
    return fn(&g->lines[m->gpio], m->value, out, why, len);
}

void gpio_req_serve(struct gpio *g, struct xvdm_queue *q,
                    const struct xvdm_chain *ch)
{
    struct virtio_gpio_request req = {0};
    struct gpio_msg m = {0};
    struct virtio_gpio_response res = {VIRTIO_GPIO_STATUS_ERR, 0};
    uint32_t written;
    char why[128];
    int ret = -EINVAL;

    if (ch->out_len != sizeof(req)) {
        snprintf(why, sizeof(why), "is %u bytes, not %zu", ch->out_len,
                 sizeof(req));
    } else {
        iov_copy(ch->iov, ch->out_num, 0, &req, sizeof(req), false);
        m = (struct gpio_msg){le16toh(req.type), le16toh(req.gpio),
                              le32toh(req.value)};
        ret = gpio_msg_run(g, ch, &m, &res.value, why, sizeof(why));
    }
    if (ret == -EINVAL)
        xvdm_dev_guest_error(g->dev,
                             "request %u (type %u) %s: "
                             "VIRTIO_GPIO_STATUS_ERR",
                             ch->head, m.type, why);
    written = GPIO_RESP_LEN;
    if (ret == 0) {
        res.status = VIRTIO_GPIO_STATUS_OK;
        if (m.type == VIRTIO_GPIO_MSG_GET_NAMES)
            written = 1 + le32toh(g->config.gpio_names_size);
    }
    /* GET_NAMES answers its status alone; the names are in already. */
    iov_copy(&ch->iov[ch->out_num], ch->in_num, 0, &res,
             m.type == VIRTIO_GPIO_MSG_GET_NAMES ? 1 : GPIO_RESP_LEN, true);
    xvdm_queue_push(q, ch, written);
}
