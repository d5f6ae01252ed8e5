/* SPDX-License-Identifier: MIT */
/*
 * virtio-console (VIRTIO 1.2 §5.3), one port: the guest's output from the
 * transmitq goes through an output ring (console-ring.c) to the backend
 * (console-backend.c: pty, socket, file or stdio); the backend's input is
 * read straight into the buffers the guest posted on the receiveq.
 *
 * Output is never dropped while a reader is there: with the ring full and
 * the reader not taking more, transmit chains wait in the queue. With no
 * reader, the ring keeps the most recent CON_RING_SIZE bytes for the next
 * one and chains complete at once, so the guest never hangs on its
 * console. Input is read only while the guest has receive buffers: with
 * none, the backend's fd is not watched for input until the guest kicks the
 * receiveq.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <linux/virtio_console.h>
#include <stdlib.h>
#include <string.h>

#include <xvdm/device.h>

#include "console-backend.h"
#include "console-ring.h"

#define CON_DEVICE_ID 3
#define CON_QUEUE_SIZE 128
#define CON_IOV_MAX 64
#define CON_RING_SIZE (64 * 1024)
/* file=: the disk a guest's output may take (max-size=). */
#define CON_FILE_CAP_DEFAULT (16ULL << 20)
#define CON_FILE_CAP_MIN (2ULL * CON_RING_SIZE)
#define CON_FILE_CAP_MAX (1ULL << 40)
#define CON_RXQ 0
#define CON_TXQ 1

/* A chain taken from a queue and not completed yet. */
struct con_held {
    struct iovec iov[CON_IOV_MAX];
    struct xvdm_chain chain;
    bool held;
    uint32_t off; /* transmit: bytes of it already in the ring */
};

struct console {
    struct xvdm_dev *dev;
    struct con_backend *be;
    struct con_ring out;
    struct con_held tx, rx;
    bool running;    /* DRIVER_OK, until reset */
    bool rx_starved; /* the guest has no receive buffers: input waits */
    bool buffering;  /* output is kept for a reader to come (logged) */
    bool has_size;   /* VIRTIO_CONSOLE_F_SIZE offered */
    struct virtio_console_config config; /* little-endian */
};

static const char *const con_options[] = {
    "pty=: (as 'pty') a new pseudo-terminal, whose path is logged and, "
    "with --xenstore, written to the device's xenstore node pty",
    "socket=PATH: a listening unix socket; one client at a time",
    "file=PATH: append the guest's output to PATH; no input",
    "max-size=SIZE: with file=, the most PATH holds; past it the newest "
    "half is kept (128k..1T, default 16M)",
    "stdio=: (as 'stdio') xvdm's own stdin and stdout",
    NULL,
};

static struct xvdm_queue *con_queue(struct console *c, unsigned index)
{
    return xvdm_dev_queue(c->dev, index);
}

/* ---- output: transmitq -> ring -> backend -------------------------------- */

/* Write the ring to the reader until it is empty or the reader is full. */
static void con_flush(struct console *c)
{
    struct iovec iov[2];
    unsigned n;
    ssize_t w;

    while (con_backend_connected(c->be) &&
           (n = con_ring_peek(&c->out, iov)) > 0) {
        w = con_backend_write(c->be, iov, n);
        if (w <= 0)
            return; /* full (wait for EPOLLOUT), or gone (the ring keeps it) */
        con_ring_consume(&c->out, (size_t)w);
    }
}

/* Log once per reader-less stretch that output is kept, not delivered. */
static void con_note_buffering(struct console *c)
{
    if (c->buffering)
        return;
    c->buffering = true;
    xvdm_dev_log(
        c->dev, XVDM_LOG_INFO,
        "no reader: keeping the last %u bytes of output for the next one",
        CON_RING_SIZE);
}

/* Move the held transmit chain into the ring; complete it once it is all
 * there. Without a reader, the oldest output gives way. False while the
 * ring is full and a reader has yet to take it. */
static bool con_tx_take(struct console *c, struct xvdm_queue *q)
{
    struct con_held *t = &c->tx;
    bool keep_newest = !con_backend_connected(c->be);

    if (keep_newest && t->chain.out_len > t->off)
        con_note_buffering(c);
    t->off +=
        (uint32_t)con_ring_put(&c->out, t->chain.iov, t->chain.out_num, t->off,
                               t->chain.out_len - t->off, keep_newest);
    if (t->off < t->chain.out_len)
        return false;
    xvdm_queue_push(q, &t->chain, 0);
    t->held = false;
    return true;
}

/* Hold the chain just taken, unless it has buffers for the device to
 * write: then it is the guest's mistake, completed with nothing. */
static void con_tx_hold(struct console *c, struct xvdm_queue *q)
{
    if (c->tx.chain.in_num) {
        xvdm_dev_guest_error(c->dev,
                             "transmitq: chain %u has device-writable buffers",
                             c->tx.chain.head);
        xvdm_queue_push(q, &c->tx.chain, 0);
        return;
    }
    c->tx.held = true;
    c->tx.off = 0;
}

/* Serve the transmitq until its chains are written or the reader is full
 * (the chain waits, and EPOLLOUT resumes it). */
static void con_tx(struct console *c)
{
    struct xvdm_queue *q = con_queue(c, CON_TXQ);

    for (;;) {
        con_flush(c);
        if (c->tx.held && !con_tx_take(c, q))
            break; /* waits for the reader: EPOLLOUT */
        if (xvdm_queue_next(q, &c->tx.chain) != 1)
            break;
        con_tx_hold(c, q);
    }
    con_flush(c);
    /* A chain larger than the ring's room waits with the ring emptied by
     * now: nothing would wake it (room is watched for only while the
     * ring holds bytes, and never on a file), so its next part goes in
     * next turn. */
    if (c->tx.held && c->out.len < c->out.cap)
        xvdm_queue_defer(q);
}

/* ---- input: backend -> receiveq ------------------------------------------ */

/* Pop the next receive chain into c->rx: 1 when held, 0 when it was the
 * guest's mistake (completed with nothing), -EAGAIN when the guest has none
 * (and was asked to kick), or another negative errno when it broke the
 * queue. */
static int con_rx_next(struct console *c, struct xvdm_queue *q)
{
    struct xvdm_chain *ch = &c->rx.chain;
    int ret = xvdm_queue_next(q, ch);

    if (ret <= 0)
        return ret ? ret : -EAGAIN;
    if (!ch->out_num && ch->in_len) {
        c->rx.held = true;
        return 1;
    }
    xvdm_dev_guest_error(c->dev, "receiveq: chain %u has %s", ch->head,
                         ch->out_num ? "device-readable buffers" : "no room");
    xvdm_queue_push(q, ch, 0);
    return 0;
}

/* Read input into receive chains while the backend has some (epoll calls
 * again while more is there). With no chain left, input waits in the
 * backend until the guest posts more. */
static void con_rx(struct console *c)
{
    struct xvdm_queue *q = con_queue(c, CON_RXQ);
    struct con_held *r = &c->rx;
    ssize_t n;
    int ret;

    for (;;) {
        if (!r->held) {
            ret = con_rx_next(c, q);
            if (ret < 0) {
                c->rx_starved = true;
                break;
            }
            if (ret == 0)
                continue;
        }
        n = con_backend_read(c->be, r->iov + r->chain.out_num, r->chain.in_num);
        if (n <= 0)
            break; /* nothing now, or the input is gone: the chain waits */
        xvdm_queue_push(q, &r->chain, (uint32_t)n);
        r->held = false;
    }
    xvdm_queue_notify_guest(q);
}

/* ---- the loop's view ----------------------------------------------------- */

/* Watch the backend for input while the guest can take it, and for room
 * while output waits for the reader. */
static void con_update_wants(struct console *c)
{
    con_backend_want(c->be, c->running && !c->rx_starved, c->out.len > 0);
}

/* A pty's or terminal's size, to the guest when it changes (VIRTIO 1.2
 * §5.3.4, §5.3.6). Linux gives the master no event for a resize, so it is
 * looked at whenever the console has news. */
static void con_update_size(struct console *c)
{
    uint16_t cols, rows;

    if (!c->has_size || con_backend_winsize(c->be, &cols, &rows) ||
        (le16toh(c->config.cols) == cols && le16toh(c->config.rows) == rows))
        return;
    c->config.cols = htole16(cols);
    c->config.rows = htole16(rows);
    if (c->running)
        xvdm_dev_config_changed(c->dev);
}

/* A reader came: say what it gets. */
static void con_on_connect(struct console *c)
{
    if (!con_backend_connected(c->be))
        return;
    c->buffering = false;
    if (c->out.dropped)
        xvdm_dev_log(
            c->dev, XVDM_LOG_INFO,
            "%llu older bytes of output were dropped while no one read",
            (unsigned long long)c->out.dropped);
    c->out.dropped = 0;
}

/* The reader has room, came or went: its room goes to the ring, then to
 * waiting chains; with the reader gone, waiting chains complete into the
 * ring. */
static void con_tx_resume(struct console *c)
{
    if (!c->running) {
        con_flush(c);
        return;
    }
    con_tx(c);
    xvdm_queue_notify_guest(con_queue(c, CON_TXQ));
}

static void con_on_backend(void *arg, unsigned events)
{
    struct console *c = arg;
    bool connected = con_backend_connected(c->be);

    if (events & CON_EV_STATE)
        con_on_connect(c);
    con_update_size(c);
    if (c->running && (events & CON_EV_IN))
        con_rx(c);
    if (connected != con_backend_connected(c->be))
        events |= CON_EV_STATE; /* the reader left while we read */
    if (events & (CON_EV_OUT | CON_EV_STATE))
        con_tx_resume(c);
    con_update_wants(c);
}

/* ---- the device ---------------------------------------------------------- */

static void con_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct console *c = priv;

    con_update_size(c);
    if (index == CON_RXQ) {
        c->rx_starved = false; /* new buffers: epoll says when input is in */
    } else {
        con_tx(c);
        xvdm_queue_notify_guest(q);
    }
    con_update_wants(c);
}

static void con_start(void *priv)
{
    struct console *c = priv;

    c->running = true;
    c->rx_starved = false;
    con_update_wants(c);
}

/* Chains are only ever held here, never handed elsewhere: forgetting them
 * is all it takes. Output already in the ring still goes to the reader. */
static void con_reset(void *priv)
{
    struct console *c = priv;

    c->running = false;
    c->tx.held = false;
    c->rx.held = false;
    c->rx_starved = true;
    con_update_wants(c);
}

static void con_config_read(void *priv, uint32_t offset, void *buf,
                            uint32_t len)
{
    struct console *c = priv;

    memcpy(buf, (const uint8_t *)&c->config + offset, len);
}

/* Exactly one backend key, and a value only where it takes one. */
static int con_parse(struct xvdm_dev *dev, const struct xvdm_options *opts,
                     enum con_kind *kind, const char **arg)
{
    static const char *const keys[] = {"pty", "socket", "file", "stdio"};
    static const enum con_kind kinds[] = {CON_PTY, CON_SOCKET, CON_FILE,
                                          CON_STDIO};
    const char *first = NULL;

    for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = xvdm_opt_get(opts, keys[i]);

        if (!v)
            continue;
        if (first) {
            xvdm_dev_log(dev, XVDM_LOG_ERROR,
                         "'%s' and '%s': give one backend only", first,
                         keys[i]);
            return -EINVAL;
        }
        if ((kinds[i] == CON_PTY || kinds[i] == CON_STDIO) != !*v) {
            xvdm_dev_log(dev, XVDM_LOG_ERROR, "%s='%s': %s", keys[i], v,
                         *v ? "takes no value" : "needs a path");
            return -EINVAL;
        }
        first = keys[i];
        *kind = kinds[i];
        *arg = v;
    }
    if (!first) {
        xvdm_dev_log(
            dev, XVDM_LOG_ERROR,
            "no backend: give one of pty, socket=PATH, file=PATH, stdio");
        return -EINVAL;
    }
    return 0;
}

/* max-size=, for file= only. At least twice the ring, so that what one
 * write brings fits in the half kept. */
static int con_parse_file_cap(struct xvdm_dev *dev,
                              const struct xvdm_options *opts,
                              enum con_kind kind, uint64_t *cap)
{
    if (kind != CON_FILE && xvdm_opt_get(opts, "max-size")) {
        xvdm_dev_log(dev, XVDM_LOG_ERROR, "max-size= goes with file= only");
        return -EINVAL;
    }
    return xvdm_opt_u64(dev, opts, "max-size", CON_FILE_CAP_MIN,
                        CON_FILE_CAP_MAX, cap);
}

static void con_destroy(void *priv)
{
    struct console *c = priv;

    con_backend_close(c->be);
    con_ring_free(&c->out);
    free(c);
}

static void con_init_held(struct con_held *h)
{
    h->chain = (struct xvdm_chain){.iov = h->iov, .iov_cap = CON_IOV_MAX};
}

static int con_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                      struct xvdm_device_setup *setup, void **priv)
{
    struct console *c = calloc(1, sizeof(*c));
    uint64_t file_cap = CON_FILE_CAP_DEFAULT;
    enum con_kind kind;
    const char *arg;
    int ret;

    if (!c)
        return -ENOMEM;
    c->dev = dev;
    c->rx_starved = true;
    con_init_held(&c->tx);
    con_init_held(&c->rx);
    ret = con_ring_init(&c->out, CON_RING_SIZE);
    if (!ret)
        ret = con_parse(dev, opts, &kind, &arg);
    if (!ret)
        ret = con_parse_file_cap(dev, opts, kind, &file_cap);
    if (!ret)
        ret = con_backend_open(&c->be, dev, kind, arg, file_cap,
                               con_on_backend, c);
    if (ret) {
        con_destroy(c);
        return ret;
    }
    c->has_size =
        con_backend_winsize(c->be, &(uint16_t){0}, &(uint16_t){0}) == 0;
    con_update_size(c);
    setup->features = c->has_size ? 1ULL << VIRTIO_CONSOLE_F_SIZE : 0;
    setup->num_queues = 2;
    setup->queue_size_max[CON_RXQ] = CON_QUEUE_SIZE;
    setup->queue_size_max[CON_TXQ] = CON_QUEUE_SIZE;
    setup->config_size = sizeof(c->config);
    *priv = c;
    return 0;
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "console",
    .summary = "console (virtio-console), one port on a pty, unix socket, file "
               "or stdio",
    .device_id = CON_DEVICE_ID,
    .options = con_options,
    .create = con_create,
    .destroy = con_destroy,
    .config_read = con_config_read,
    .start = con_start,
    .queue_notify = con_queue_notify,
    .reset = con_reset,
};
