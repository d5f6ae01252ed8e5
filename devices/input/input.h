/* SPDX-License-Identifier: MIT */
/* virtio-input fed by one of dom0's evdev devices or a gpu's VNC
 * viewers: what input.c (life cycle, queues), input-config.c (config
 * space) and input-vnc.c (vnc=) share. */
#ifndef XVDM_INPUT_H
#define XVDM_INPUT_H

#include <linux/input.h>
#include <linux/virtio_input.h>
#include <stdbool.h>
#include <stdint.h>

#include <xvdm/device.h>

#define INPUT_QUEUE_EVENT 0
#define INPUT_QUEUE_STATUS 1
/* Linux's virtio_input posts one 8-byte buffer per eventq entry: 64
 * events in flight is more than one report of a multitouch screen. */
#define INPUT_QUEUE_SIZE 64
/* Buffers one eventq chain may have: Linux's has one. */
#define INPUT_IOV_MAX 4

/* A bitmap as EVIOCGBIT fills it: longs, bit n in long n / BITS. */
#define INPUT_LONG_BITS (8 * sizeof(unsigned long))
#define INPUT_LONGS(bits) (((bits) + INPUT_LONG_BITS - 1) / INPUT_LONG_BITS)

struct input {
    struct xvdm_dev *dev;
    char *path; /* evdev=, or vnc='s offer ("gpu0.keyboard") */
    int fd;
    /* vnc=: the profile of a gpu's VNC keyboard or tablet, whose answers
     * (input-vnc.c) the config space gives instead of an evdev node's;
     * NULL for evdev=. */
    const struct input_vnc_kind *vnc;
    uint8_t vnc_codes[EV_CNT][sizeof(((struct virtio_input_config *)0)->u)];
    /* The event types the device has and, for the two the guest may
     * send back (EV_LED, EV_SND), their codes: read once at create. */
    unsigned long ev_bits[INPUT_LONGS(EV_CNT)];
    unsigned long led_bits[INPUT_LONGS(LED_CNT)];
    unsigned long snd_bits[INPUT_LONGS(SND_CNT)];
    struct virtio_input_config config;
    /* eventq chains the guest posted, each waiting for one event, in
     * the order posted: held[first], then the next nr_held - 1, modulo
     * INPUT_QUEUE_SIZE (the queue's most, so never more). */
    struct iovec iov[INPUT_QUEUE_SIZE][INPUT_IOV_MAX];
    struct xvdm_chain held[INPUT_QUEUE_SIZE];
    unsigned first, nr_held;
    /* The start of an event a read returned only part of (evdev never
     * does; a node that is not quite evdev may): the rest comes first in
     * the next read. */
    uint8_t part[sizeof(struct input_event)];
    size_t nr_part;
    bool reading; /* the fd is watched for input */
    bool gone;    /* the device left dom0 (ENODEV): said once */
};

struct input_vnc_kind;

bool input_has_bit(const unsigned long *bits, unsigned n);
void input_set_bit(unsigned long *bits, unsigned n);
/* "evdev" or "vnc": the option that named i->path, for lines. */
const char *input_source(const struct input *i);
/* vnc=DEVICE.KIND: take the pipe gpu DEVICE offers and answer as its
 * KIND (keyboard or tablet) does (input-vnc.c). 0, or a negative errno
 * after a line naming the value. */
int input_vnc_open(struct input *i, const char *name);
/* input_config_select()'s answer for a vnc= device. */
uint8_t input_vnc_answer(struct input *i, uint8_t select, uint8_t subsel);
/* Answer the driver's select/subsel into i->config (VIRTIO 1.2
 * §5.8.5.1). */
void input_config_select(struct input *i);

#endif
