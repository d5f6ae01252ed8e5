/* SPDX-License-Identifier: MIT */
/*
 * virtio-input (VIRTIO 1.2 §5.8) fed by one of dom0's evdev devices
 * (/dev/input/eventN): a keyboard, mouse or touchscreen given to the
 * guest; or by a gpu's VNC viewers (vnc=, input-vnc.c), through a pipe
 * read as the node is. Events read from the device fill the guest's eventq buffers,
 * one each; the guest's status events (LEDs, sounds) go back to the
 * device. This file: options, life cycle, the two queues;
 * input-config.c: the config space.
 *
 * dom0 holds no queue of its own: the device is read only while the
 * guest has buffers posted, and never for more events than it has
 * buffers. Events the guest is not ready for wait in the kernel's evdev
 * buffer; when that overflows the kernel drops the oldest and puts
 * SYN_DROPPED in their place, which the guest gets as is (evdev's
 * contract: discard up to the next SYN_REPORT and ask for the state
 * again).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../common/iov-copy.h"
#include "input.h"

#define INPUT_DEVICE_ID 18
#define EVENT_LEN ((uint32_t)sizeof(struct virtio_input_event))

static const char *const input_options[] = {
    "evdev=PATH: dom0's input device, its evdev node /dev/input/eventN "
    "(this or vnc= is required)",
    "grab=on|off: with evdev=, take the device for the guest alone "
    "(EVIOCGRAB), so that dom0 does not act on its input too (default on)",
    "vnc=DEVICE.keyboard|DEVICE.tablet: what the VNC viewers of gpu "
    "DEVICE (with vnc=, given before this device) type or point at",
    NULL,
};

const char *input_source(const struct input *i)
{
    return i->vnc ? "vnc" : "evdev";
}

/* Watch the device for input, or stop. */
static void input_read_fd(struct input *i, bool on)
{
    if (i->gone || i->reading == on)
        return;
    if (xvdm_dev_modify_fd(i->dev, i->fd, on ? EPOLLIN : 0) == 0)
        i->reading = on;
}

/* The device left dom0 (unplugged) or failed: the guest gets no more
 * events from it. Said once. */
static void input_lost(struct input *i, int err)
{
    xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                 "%s=%s: %s: the guest gets no more of its events",
                 input_source(i), i->path, strerror(err));
    xvdm_dev_unwatch_fd(i->dev, i->fd);
    i->gone = true;
    i->reading = false;
}

/* One event from the device into the oldest held chain. */
static void input_deliver(struct input *i, struct xvdm_queue *q,
                          const struct input_event *ev)
{
    struct xvdm_chain *ch = &i->held[i->first];
    struct virtio_input_event ve = {
        .type = htole16(ev->type),
        .code = htole16(ev->code),
        .value = htole32((uint32_t)ev->value),
    };

    iov_copy(ch->iov, ch->in_num, 0, &ve, sizeof(ve), true);
    xvdm_queue_push(q, ch, EVENT_LEN);
    i->first = (i->first + 1) % INPUT_QUEUE_SIZE;
    i->nr_held--;
}

/* As many events as the guest has buffers for, in one read. evdev
 * returns whole events only; from a node that returns part of one, the
 * part waits for its rest, so that every later event is not shifted. */
static void input_fill(struct input *i)
{
    struct xvdm_queue *q = xvdm_dev_queue(i->dev, INPUT_QUEUE_EVENT);
    union {
        struct input_event ev[INPUT_QUEUE_SIZE];
        uint8_t b[INPUT_QUEUE_SIZE * sizeof(struct input_event)];
    } buf;
    size_t whole;
    ssize_t n;

    if (!i->nr_held) {
        input_read_fd(i, false);
        return;
    }
    memcpy(buf.b, i->part, i->nr_part);
    n = read(i->fd, buf.b + i->nr_part,
             i->nr_held * sizeof(buf.ev[0]) - i->nr_part);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        input_lost(i, errno);
    else if (n == 0)
        input_lost(i, ENODEV);
    if (n > 0) {
        n += (ssize_t)i->nr_part;
        whole = (size_t)n / sizeof(buf.ev[0]);
        for (size_t k = 0; k < whole; k++)
            input_deliver(i, q, &buf.ev[k]);
        i->nr_part = (size_t)n % sizeof(buf.ev[0]);
        memcpy(i->part, buf.b + whole * sizeof(buf.ev[0]), i->nr_part);
    }
    xvdm_queue_notify_guest(q);
    if (!i->nr_held)
        input_read_fd(i, false);
}

/* evdev polls EPOLLHUP | EPOLLERR once its device has left dom0. */
static void input_on_fd(void *arg, uint32_t revents)
{
    if (revents & (EPOLLHUP | EPOLLERR))
        input_lost(arg, ENODEV);
    else
        input_fill(arg);
}

/* §5.8.6.1: eventq buffers are device-writable, one event each. */
static bool input_event_chain_ok(struct input *i, const struct xvdm_chain *ch)
{
    if (ch->out_num == 0 && ch->in_len >= EVENT_LEN)
        return true;
    xvdm_dev_guest_error(i->dev,
                         "eventq: chain %u has %u readable and %u writable "
                         "bytes, not room for one event (%u)",
                         ch->head, ch->out_len, ch->in_len, EVENT_LEN);
    return false;
}

/* Hold the buffers the guest posted until events come for them. */
static void input_eventq(struct input *i, struct xvdm_queue *q)
{
    while (i->nr_held < INPUT_QUEUE_SIZE) {
        unsigned slot = (i->first + i->nr_held) % INPUT_QUEUE_SIZE;
        struct xvdm_chain *ch = &i->held[slot];

        *ch =
            (struct xvdm_chain){.iov = i->iov[slot], .iov_cap = INPUT_IOV_MAX};
        if (xvdm_queue_next(q, ch) != 1)
            break;
        if (input_event_chain_ok(i, ch))
            i->nr_held++;
        else
            xvdm_queue_push(q, ch, 0);
    }
    /* Full (the guest's whole queue held): the loop stopped before
     * xvdm_queue_next() found the queue empty, which is where it asks
     * the driver to kick again. Ask here, or the buffers the driver
     * posts again as events use these up are never heard of. */
    if (i->nr_held == INPUT_QUEUE_SIZE)
        xvdm_queue_enable_kicks(q);
    xvdm_queue_notify_guest(q);
    input_read_fd(i, i->nr_held > 0);
}

/* §5.8.6.2: only what a device takes back, and only the codes this one
 * has: LEDs and sounds. Anything else written to an evdev node would be
 * input injected into dom0 (a key press, say). */
static bool input_status_ok(const struct input *i, uint16_t type, uint16_t code)
{
    if (type >= EV_CNT || !input_has_bit(i->ev_bits, type))
        return false;
    if (type == EV_LED)
        return code < LED_CNT && input_has_bit(i->led_bits, code);
    if (type == EV_SND)
        return code < SND_CNT && input_has_bit(i->snd_bits, code);
    return false;
}

/* One status event to the device, as one report of its own: the first
 * 8 bytes of a buffer of at least that many (§5.8.6.1). */
static void input_status(struct input *i, const struct xvdm_chain *ch)
{
    struct virtio_input_event ve;
    struct input_event out[2];
    uint16_t type, code;

    if (ch->out_len < EVENT_LEN) {
        xvdm_dev_guest_error(i->dev,
                             "statusq: chain %u has %u readable bytes, not "
                             "room for one event (%u)",
                             ch->head, ch->out_len, EVENT_LEN);
        return;
    }
    iov_copy(ch->iov, ch->out_num, 0, &ve, sizeof(ve), false);
    type = le16toh(ve.type);
    code = le16toh(ve.code);
    if (!input_status_ok(i, type, code)) {
        xvdm_dev_guest_error(i->dev,
                             "statusq: event type %u code %u is not a LED "
                             "or sound the device has",
                             type, code);
        return;
    }
    memset(out, 0, sizeof(out));
    out[0].type = type;
    out[0].code = code;
    out[0].value = (int32_t)le32toh(ve.value);
    out[1].type = EV_SYN;
    out[1].code = SYN_REPORT;
    /* A VNC keyboard's LEDs are the guest's own: RFB cannot show them. */
    if (!i->vnc && !i->gone && write(i->fd, out, sizeof(out)) < 0)
        xvdm_dev_guest_error(i->dev, "evdev=%s: status event: %s", i->path,
                             strerror(errno));
}

static void input_statusq(struct input *i, struct xvdm_queue *q)
{
    struct iovec iov[INPUT_IOV_MAX];
    struct xvdm_chain ch = {.iov = iov, .iov_cap = INPUT_IOV_MAX};

    while (xvdm_queue_next(q, &ch) == 1) {
        input_status(i, &ch);
        xvdm_queue_push(q, &ch, 0);
        ch = (struct xvdm_chain){.iov = iov, .iov_cap = INPUT_IOV_MAX};
    }
    xvdm_queue_notify_guest(q);
}

static void input_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    if (index == INPUT_QUEUE_EVENT)
        input_eventq(priv, q);
    else
        input_statusq(priv, q);
}

/* The held chains are the queue's, which xvdm forgets after a reset. */
static void input_reset(void *priv)
{
    struct input *i = priv;

    i->first = 0;
    i->nr_held = 0;
    input_read_fd(i, false);
    memset(&i->config, 0, sizeof(i->config));
}

static void input_config_read(void *priv, uint32_t offset, void *buf,
                              uint32_t len)
{
    struct input *i = priv;

    memcpy(buf, (const uint8_t *)&i->config + offset, len);
}

/* §5.8.2: select and subsel are the driver's to write, nothing else. */
static void input_config_write(void *priv, uint32_t offset, const void *buf,
                               uint32_t len)
{
    struct input *i = priv;
    const uint8_t *b = buf;
    bool selected = false;

    for (uint32_t k = 0; k < len; k++) {
        if (offset + k == offsetof(struct virtio_input_config, select))
            i->config.select = b[k];
        else if (offset + k == offsetof(struct virtio_input_config, subsel))
            i->config.subsel = b[k];
        else
            continue;
        selected = true;
    }
    if (offset + len > offsetof(struct virtio_input_config, size))
        xvdm_dev_guest_error(i->dev,
                             "config write of %u bytes at %u: only select "
                             "and subsel are writable",
                             len, offset);
    if (selected)
        input_config_select(i);
}

static void input_destroy(void *priv)
{
    struct input *i = priv;

    if (i->fd >= 0) {
        if (!i->gone)
            xvdm_dev_unwatch_fd(i->dev, i->fd);
        close(i->fd); /* and with it the grab */
    }
    free(i->path);
    free(i);
}

/* A type's codes, when the device has the type. */
static int input_codes(struct input *i, unsigned type, unsigned long *bits,
                       size_t size)
{
    if (!input_has_bit(i->ev_bits, type) ||
        ioctl(i->fd, EVIOCGBIT(type, size), bits) >= 0)
        return 0;
    xvdm_dev_log(i->dev, XVDM_LOG_ERROR, "evdev=%s: EVIOCGBIT(%u): %s", i->path,
                 type, strerror(errno));
    return -errno;
}

/* Open evdev= and learn what the device has. */
static int input_open(struct input *i, const char *path)
{
    int version, err;

    if (!path || !*path) {
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                     "evdev= or vnc= is required: dom0's input device "
                     "(/dev/input/eventN), or a gpu's VNC viewers "
                     "(gpu0.keyboard, gpu0.tablet)");
        return -EINVAL;
    }
    i->path = strdup(path);
    if (!i->path)
        return -ENOMEM;
    i->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (i->fd < 0) {
        err = errno;
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR, "evdev=%s cannot be opened: %s",
                     path, strerror(err));
        return -err;
    }
    if (ioctl(i->fd, EVIOCGVERSION, &version) < 0 ||
        ioctl(i->fd, EVIOCGBIT(0, sizeof(i->ev_bits)), i->ev_bits) < 0) {
        err = errno == ENOTTY || errno == EINVAL ? ENODEV : errno;
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                     "evdev=%s is not an evdev input device "
                     "(EVIOCGVERSION): %s",
                     path, strerror(err));
        return -err;
    }
    err = input_codes(i, EV_LED, i->led_bits, sizeof(i->led_bits));
    if (!err)
        err = input_codes(i, EV_SND, i->snd_bits, sizeof(i->snd_bits));
    return err;
}

static int input_grab(struct input *i, const struct xvdm_options *opts)
{
    bool grab = true;
    int ret = xvdm_opt_bool(i->dev, opts, "grab", &grab);

    if (ret || !grab)
        return ret;
    if (ioctl(i->fd, EVIOCGRAB, (void *)1) == 0)
        return 0;
    ret = errno;
    xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                 "evdev=%s: EVIOCGRAB: %s (another program has grabbed it; "
                 "grab=off shares it)",
                 i->path, strerror(ret));
    return -ret;
}

/* evdev= (with grab=) or vnc=: one source. */
static int input_source_open(struct input *i, const struct xvdm_options *opts)
{
    const char *evdev = xvdm_opt_get(opts, "evdev");
    const char *vnc = xvdm_opt_get(opts, "vnc");
    int ret;

    if (evdev && vnc) {
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                     "evdev='%s' and vnc='%s': a device has one source", evdev,
                     vnc);
        return -EINVAL;
    }
    if (vnc && xvdm_opt_get(opts, "grab")) {
        xvdm_dev_log(i->dev, XVDM_LOG_ERROR,
                     "grab= is for evdev=, not vnc='%s'", vnc);
        return -EINVAL;
    }
    if (vnc)
        return input_vnc_open(i, vnc);
    ret = input_open(i, evdev);
    return ret ? ret : input_grab(i, opts);
}

static int input_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                        struct xvdm_device_setup *setup, void **priv)
{
    struct input *i = calloc(1, sizeof(*i));
    int ret;

    if (!i)
        return -ENOMEM;
    i->dev = dev;
    i->fd = -1;
    i->gone = true; /* until watched */
    ret = input_source_open(i, opts);
    if (!ret)
        ret = xvdm_dev_watch_fd(dev, i->fd, 0, input_on_fd, i);
    if (ret) {
        input_destroy(i);
        return ret;
    }
    i->gone = false;
    xvdm_dev_log(dev, XVDM_LOG_INFO, "input device %s=%s", input_source(i),
                 i->path);
    setup->num_queues = 2;
    setup->queue_size_max[INPUT_QUEUE_EVENT] = INPUT_QUEUE_SIZE;
    setup->queue_size_max[INPUT_QUEUE_STATUS] = INPUT_QUEUE_SIZE;
    setup->config_size = sizeof(i->config);
    *priv = i;
    return 0;
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "input",
    .summary = "input device (virtio-input) fed by one of dom0's evdev "
               "devices (keyboard, mouse, touchscreen) or a gpu's VNC viewers",
    .device_id = INPUT_DEVICE_ID,
    .options = input_options,
    .create = input_create,
    .destroy = input_destroy,
    .config_read = input_config_read,
    .config_write = input_config_write,
    .queue_notify = input_queue_notify,
    .reset = input_reset,
};
