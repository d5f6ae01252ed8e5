/* SPDX-License-Identifier: MIT */
/*
 * vnc=DEVICE.KIND: the guest's keyboard or tablet is what the viewers of
 * gpu DEVICE's vnc= type and point at (devices/gpu/gpu-vnc-input.c
 * writes them into a pipe DEVICE offers; input.c reads it as it reads an
 * evdev node). No node to ask: the config space answers from a fixed
 * profile, as QEMU's virtio-keyboard and virtio-tablet do.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "../common/vnc-input.h"
#include "input.h"

struct input_vnc_kind {
    const char *kind; /* the offer's key */
    const char *name; /* VIRTIO_INPUT_CFG_ID_NAME */
    uint16_t product;
    void (*codes)(struct input *i);
};

static void input_vnc_code(struct input *i, unsigned type, unsigned code)
{
    i->vnc_codes[type][code / 8] |= (uint8_t)(1u << (code % 8));
    input_set_bit(i->ev_bits, type);
}

/* The keys of a PC keyboard and its three LEDs, which the guest may set
 * (they go nowhere: RFB has no way to show them). EV_REP: the guest's
 * kernel repeats a held key, as it does for a keyboard of its own; a
 * viewer's repeated presses of a key already down change nothing. */
static void input_vnc_keyboard(struct input *i)
{
    static const unsigned leds[] = {LED_NUML, LED_CAPSL, LED_SCROLLL};

    for (unsigned c = VNC_INPUT_KEY_FIRST; c <= VNC_INPUT_KEY_LAST; c++)
        input_vnc_code(i, EV_KEY, c);
    for (unsigned k = 0; k < sizeof(leds) / sizeof(*leds); k++) {
        input_vnc_code(i, EV_LED, leds[k]);
        input_set_bit(i->led_bits, leds[k]);
    }
    input_set_bit(i->ev_bits, EV_REP);
}

/* Three buttons, both wheels, and where on the screen. */
static void input_vnc_tablet(struct input *i)
{
    input_vnc_code(i, EV_KEY, BTN_LEFT);
    input_vnc_code(i, EV_KEY, BTN_RIGHT);
    input_vnc_code(i, EV_KEY, BTN_MIDDLE);
    input_vnc_code(i, EV_REL, REL_WHEEL);
    input_vnc_code(i, EV_REL, REL_HWHEEL);
    input_vnc_code(i, EV_ABS, ABS_X);
    input_vnc_code(i, EV_ABS, ABS_Y);
}

static const struct input_vnc_kind input_vnc_kinds[] = {
    {VNC_INPUT_KEYBOARD, "xvdm VNC keyboard", 1, input_vnc_keyboard},
    {VNC_INPUT_TABLET, "xvdm VNC tablet", 2, input_vnc_tablet},
};

static const struct input_vnc_kind *input_vnc_kind(const char *name)
{
    const char *dot = strrchr(name, '.');

    for (size_t k = 0; dot && dot != name && k < 2; k++)
        if (strcmp(dot + 1, input_vnc_kinds[k].kind) == 0)
            return &input_vnc_kinds[k];
    return NULL;
}

int input_vnc_open(struct input *i, const char *name)
{
    const struct input_vnc_kind *kind = input_vnc_kind(name);

    if (!kind) {
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                     "vnc='%s' is not DEVICE.keyboard or DEVICE.tablet "
                     "(DEVICE: a gpu with vnc=, such as gpu0)",
                     name);
        return -EINVAL;
    }
    i->path = strdup(name);
    if (!i->path)
        return -ENOMEM;
    i->fd = xvdm_dev_take_fd(i->dev, name);
    if (i->fd == -ENOENT)
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                     "vnc='%s': no device offers it (a gpu device with vnc= "
                     "must come before this one; gpu0 is the first gpu "
                     "device given, gpu1 the second)",
                     name);
    else if (i->fd == -EBUSY)
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                     "vnc='%s' is another input device's already", name);
    else if (i->fd < 0)
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR, "vnc='%s': %s", name,
                     strerror(-i->fd));
    if (i->fd < 0)
        return i->fd;
    i->vnc = kind;
    kind->codes(i);
    return 0;
}

static uint8_t input_vnc_string(struct input *i, const char *s)
{
    size_t len = strnlen(s, sizeof(i->config.u.string));

    memcpy(i->config.u.string, s, len);
    return (uint8_t)len;
}

static uint8_t input_vnc_devids(struct input *i)
{
    i->config.u.ids.bustype = htole16(BUS_VIRTUAL);
    i->config.u.ids.product = htole16(i->vnc->product);
    i->config.u.ids.version = htole16(1);
    return sizeof(i->config.u.ids);
}

/* A type's codes; EV_REP, which has none, answers one byte of none for
 * the driver to see it there (Linux's virtio_input asks its size). */
static uint8_t input_vnc_codes(struct input *i, uint8_t type)
{
    uint8_t size = 0;

    if (type >= EV_CNT || type == EV_SYN || !input_has_bit(i->ev_bits, type))
        return 0;
    if (type == EV_REP)
        return 1;
    for (uint8_t n = 0; n < sizeof(i->vnc_codes[type]); n++)
        if (i->vnc_codes[type][n])
            size = (uint8_t)(n + 1);
    memcpy(i->config.u.bitmap, i->vnc_codes[type], size);
    return size;
}

static uint8_t input_vnc_absinfo(struct input *i, uint8_t axis)
{
    if (axis >= ABS_CNT || !(i->vnc_codes[EV_ABS][axis / 8] >> (axis % 8) & 1))
        return 0;
    i->config.u.abs.max = htole32(VNC_INPUT_ABS_MAX);
    return sizeof(i->config.u.abs);
}

uint8_t input_vnc_answer(struct input *i, uint8_t select, uint8_t subsel)
{
    switch (select) {
    case VIRTIO_INPUT_CFG_ID_NAME:
        return subsel ? 0 : input_vnc_string(i, i->vnc->name);
    case VIRTIO_INPUT_CFG_ID_SERIAL:
        return subsel ? 0 : input_vnc_string(i, i->path);
    case VIRTIO_INPUT_CFG_ID_DEVIDS:
        return subsel ? 0 : input_vnc_devids(i);
    case VIRTIO_INPUT_CFG_EV_BITS:
        return input_vnc_codes(i, subsel);
    case VIRTIO_INPUT_CFG_ABS_INFO:
        return input_vnc_absinfo(i, subsel);
    default: /* PROP_BITS: none */
        return 0;
    }
}
