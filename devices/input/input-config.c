/* SPDX-License-Identifier: MIT */
/*
 * virtio-input's config space (VIRTIO 1.2 §5.8.2): the driver writes
 * select and subsel, and reads back size and the answer, asked of the
 * evdev device then (EVIOCG*), so that it is what dom0 sees now; a vnc=
 * device's come from its profile (input-vnc.c).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "input.h"

bool input_has_bit(const unsigned long *bits, unsigned n)
{
    return bits[n / INPUT_LONG_BITS] >> (n % INPUT_LONG_BITS) & 1;
}

void input_set_bit(unsigned long *bits, unsigned n)
{
    bits[n / INPUT_LONG_BITS] |= 1ul << (n % INPUT_LONG_BITS);
}

/* A NUL-terminated string ioctl (EVIOCGNAME, EVIOCGUNIQ): its bytes,
 * without the NUL; none when the device has none (ENOENT). */
static uint8_t input_string(struct input *i, unsigned long req)
{
    char *s = i->config.u.string;

    if (ioctl(i->fd, req, s) < 0)
        return 0;
    return (uint8_t)strnlen(s, sizeof(i->config.u.string));
}

/* A bitmap ioctl (EVIOCGBIT, EVIOCGPROP), filled as host longs, as the
 * spec's bitmap: bit n in byte n / 8. Its size stops at the last byte
 * with a bit set: 0 when none is. */
static uint8_t input_bitmap(struct input *i, unsigned long req)
{
    unsigned long bits[INPUT_LONGS(8 * sizeof(i->config.u.bitmap))];
    uint8_t size = 0;

    memset(bits, 0, sizeof(bits));
    if (ioctl(i->fd, req, bits) < 0)
        return 0;
    for (unsigned n = 0; n < 8 * sizeof(i->config.u.bitmap); n++) {
        if (input_has_bit(bits, n)) {
            i->config.u.bitmap[n / 8] |= (uint8_t)(1u << (n % 8));
            size = (uint8_t)(n / 8 + 1);
        }
    }
    return size;
}

static uint8_t input_devids(struct input *i)
{
    struct input_id id;

    if (ioctl(i->fd, EVIOCGID, &id) < 0)
        return 0;
    i->config.u.ids.bustype = htole16(id.bustype);
    i->config.u.ids.vendor = htole16(id.vendor);
    i->config.u.ids.product = htole16(id.product);
    i->config.u.ids.version = htole16(id.version);
    return sizeof(i->config.u.ids);
}

/* Axis subsel's range, when the device has it. */
static uint8_t input_absinfo(struct input *i, uint8_t axis)
{
    unsigned long abs[INPUT_LONGS(ABS_CNT)];
    struct input_absinfo a;

    memset(abs, 0, sizeof(abs));
    if (!input_has_bit(i->ev_bits, EV_ABS) || axis >= ABS_CNT ||
        ioctl(i->fd, EVIOCGBIT(EV_ABS, sizeof(abs)), abs) < 0 ||
        !input_has_bit(abs, axis) || ioctl(i->fd, EVIOCGABS(axis), &a) < 0)
        return 0;
    i->config.u.abs.min = htole32((uint32_t)a.minimum);
    i->config.u.abs.max = htole32((uint32_t)a.maximum);
    i->config.u.abs.fuzz = htole32((uint32_t)a.fuzz);
    i->config.u.abs.flat = htole32((uint32_t)a.flat);
    i->config.u.abs.res = htole32((uint32_t)a.resolution);
    return sizeof(i->config.u.abs);
}

/* The codes of event type subsel. EV_SYN's bitmap is the types'
 * (EVIOCGBIT(0)), not codes: none. */
static uint8_t input_ev_bits(struct input *i, uint8_t type)
{
    if (type == EV_SYN || type >= EV_CNT || !input_has_bit(i->ev_bits, type))
        return 0;
    return input_bitmap(i, EVIOCGBIT(type, sizeof(i->config.u.bitmap)));
}

/* §5.8.5.1: an answer for the pair the driver selected, size 0 for one
 * the device does not know (or has nothing for). */
static uint8_t input_answer(struct input *i, uint8_t select, uint8_t subsel)
{
    size_t len = sizeof(i->config.u.string);

    switch (select) {
    case VIRTIO_INPUT_CFG_ID_NAME:
        return subsel ? 0 : input_string(i, EVIOCGNAME(len));
    case VIRTIO_INPUT_CFG_ID_SERIAL:
        return subsel ? 0 : input_string(i, EVIOCGUNIQ(len));
    case VIRTIO_INPUT_CFG_ID_DEVIDS:
        return subsel ? 0 : input_devids(i);
    case VIRTIO_INPUT_CFG_PROP_BITS:
        return subsel ? 0 : input_bitmap(i, EVIOCGPROP(len));
    case VIRTIO_INPUT_CFG_EV_BITS:
        return input_ev_bits(i, subsel);
    case VIRTIO_INPUT_CFG_ABS_INFO:
        return input_absinfo(i, subsel);
    default:
        return 0;
    }
}

void input_config_select(struct input *i)
{
    struct virtio_input_config *c = &i->config;

    memset(&c->size, 0,
           sizeof(*c) - offsetof(struct virtio_input_config, size));
    c->size = i->vnc ? input_vnc_answer(i, c->select, c->subsel)
                     : input_answer(i, c->select, c->subsel);
}
