/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock (VIRTIO 1.2 §5.10): sockets between the guest and dom0
 * with no network, dom0's side being Unix sockets as Firecracker and
 * Cloud Hypervisor lay them out. The guest connecting to CID 2 port P
 * reaches the socket uds=PATH_P; a dom0 program connecting to uds=PATH
 * and writing "CONNECT P\n" reaches the guest's port P
 * (vsock-listen.c). Stream sockets only (see README). This file: options,
 * config space, life cycle and the event queue.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "vsock.h"

#define VSOCK_DEVICE_ID 19
/* §5.10.4: CIDs 0, 1 and 2 are the hypervisor's, loopback and the
 * host's; VMADDR_CID_ANY (-1U) is no one's. */
#define VSOCK_CID_MIN 3
#define VSOCK_CID_MAX 0xfffffffeULL
/* The default: the domid past the reserved CIDs. */
#define VSOCK_CID_DOMID_OFFSET 3

static const char *const vsock_options[] = {
    "uds=PATH: dom0's Unix sockets: connections from dom0 come to PATH, "
    "the guest's to CID 2 port P go to PATH_P (required)",
    "cid=N: the guest's CID, 3..4294967294 (default: domid + 3)",
    "max-conns=N: connections the guest may have open at once, 1..1024 "
    "(default 128)",
    NULL,
};

static void vsock_config_read(void *priv, uint32_t offset, void *buf,
                              uint32_t len)
{
    struct vsock *v = priv;

    memcpy(buf, (const uint8_t *)&v->config_cid + offset, len);
}

/* §5.10.6.7: tell the guest its connections are gone, once it has an
 * event buffer. */
static void vsock_event_drain(struct vsock *v)
{
    struct xvdm_queue *q = xvdm_dev_queue(v->dev, VSOCK_EVQ);
    struct virtio_vsock_event ev = {
        .id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET)};
    struct iovec iov[VSOCK_IOV_MAX];
    struct xvdm_chain c = {.iov = iov, .iov_cap = VSOCK_IOV_MAX};

    while (v->event_owed && xvdm_queue_next(q, &c) == 1) {
        if (c.out_num || c.in_len < sizeof(ev)) {
            xvdm_dev_guest_error(v->dev, "event chain %u is not a %zu-byte "
                                 "writable buffer: returned unused",
                                 c.head, sizeof(ev));
            xvdm_queue_push(q, &c, 0);
            continue;
        }
        iov_copy(&iov[c.out_num], c.in_num, 0, &ev, sizeof(ev), true);
        xvdm_queue_push(q, &c, sizeof(ev));
        v->event_owed = false;
    }
    xvdm_queue_notify_guest(q);
}

/* Started again after a reset: the guest's sockets from before are not
 * ours any more (each host socket was closed at the reset). */
static void vsock_start(void *priv)
{
    struct vsock *v = priv;

    v->started = true;
    v->event_owed = v->was_started;
    v->was_started = true;
    vsock_event_drain(v);
    vsock_listen_update(v);
    vsock_rx_drain(v);
}

static void vsock_queue_notify(void *priv, struct xvdm_queue *q,
                               unsigned index)
{
    struct vsock *v = priv;

    (void)q;
    if (!v->started)
        return;
    if (index == VSOCK_RXQ)
        vsock_rx_drain(v);
    else if (index == VSOCK_TXQ)
        vsock_tx_drain(v);
    else
        vsock_event_drain(v);
}

static void vsock_reset(void *priv)
{
    struct vsock *v = priv;

    v->started = false;
    v->event_owed = false;
    vsock_conn_free_all(v);
    vsock_rx_reset(v);
    vsock_listen_update(v);
}

static void vsock_destroy(void *priv)
{
    struct vsock *v = priv;

    v->started = false;
    if (v->conns)
        vsock_conn_free_all(v);
    vsock_listen_close(v);
    free(v->conns);
    free(v->uds);
    free(v);
}

/* cid= as the user gave it, or the default from the domid. */
static int vsock_parse_cid(struct vsock *v, const struct xvdm_options *opts)
{
    uint64_t cid = xvdm_dev_domid(v->dev) + VSOCK_CID_DOMID_OFFSET;
    int ret = xvdm_opt_u64(v->dev, opts, "cid", 0, UINT64_MAX, &cid);

    if (ret)
        return ret;
    if (cid < VSOCK_CID_MIN || cid > VSOCK_CID_MAX) {
        xvdm_dev_log(v->dev, XVDM_LOG_ERROR,
                     "cid=%llu is reserved or too large: a guest's CID is "
                     "3..4294967294 (0, 1, 2 and 4294967295 are not a "
                     "guest's)",
                     (unsigned long long)cid);
        return -EINVAL;
    }
    v->cid = cid;
    v->config_cid = htole64(cid);
    return 0;
}

/* PATH_<port> must fit a socket address with the largest port. */
static int vsock_parse_uds(struct vsock *v, const char *uds)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1 - 11;

    if (!uds || !*uds || strlen(uds) > max) {
        xvdm_dev_log(v->dev, XVDM_LOG_ERROR,
                     "uds='%s' is not a path of 1..%zu bytes (PATH_<port> "
                     "must fit a socket address)",
                     uds ? uds : "", max);
        return -EINVAL;
    }
    if (!xvdm_host_path(uds)) {
        xvdm_dev_log(v->dev, XVDM_LOG_ERROR,
                     "uds='%s' is outside the --chroot directory: once "
                     "serving, the guest's connections to PATH_<port> "
                     "could not reach it",
                     uds);
        return -EINVAL;
    }
    v->uds = strdup(uds);
    return v->uds ? 0 : -ENOMEM;
}

static int vsock_setup(struct vsock *v, const struct xvdm_options *opts)
{
    uint64_t max = VSOCK_MAX_CONNS_DEFAULT;
    int ret = vsock_parse_cid(v, opts);

    if (ret == 0)
        ret = vsock_parse_uds(v, xvdm_opt_get(opts, "uds"));
    if (ret == 0)
        ret = xvdm_opt_u64(v->dev, opts, "max-conns", 1, VSOCK_MAX_CONNS_MAX,
                           &max);
    if (ret)
        return ret;
    v->max_conns = (unsigned)max;
    v->conns = calloc(max, sizeof(*v->conns));
    if (!v->conns)
        return -ENOMEM;
    for (unsigned i = 0; i < v->max_conns; i++)
        v->conns[i] = (struct vsock_conn){.v = v, .fd = -1};
    return vsock_listen_open(v);
}

static int vsock_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                        struct xvdm_device_setup *setup, void **priv)
{
    struct vsock *v = calloc(1, sizeof(*v));
    int ret;

    if (!v)
        return -ENOMEM;
    v->dev = dev;
    v->listen_fd = v->timer_fd = -1;
    v->next_local_port = VSOCK_LOCAL_PORT_FIRST;
    TAILQ_INIT(&v->work);
    ret = vsock_setup(v, opts);
    if (ret) {
        vsock_destroy(v);
        return ret;
    }
    xvdm_dev_log(dev, XVDM_LOG_INFO, "guest CID %llu, dom0 sockets %s[_PORT], "
                 "at most %u connections",
                 (unsigned long long)v->cid, v->uds, v->max_conns);
    /* §5.10.3: no VIRTIO_VSOCK_F_SEQPACKET, see README. */
    setup->features = 0;
    setup->num_queues = 3;
    setup->queue_size_max[VSOCK_RXQ] = VSOCK_QUEUE_SIZE;
    setup->queue_size_max[VSOCK_TXQ] = VSOCK_QUEUE_SIZE;
    setup->queue_size_max[VSOCK_EVQ] = VSOCK_EVQ_SIZE;
    setup->config_size = sizeof(v->config_cid);
    *priv = v;
    return 0;
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "vsock",
    .summary = "sockets to dom0 (virtio-vsock) as Unix sockets",
    .device_id = VSOCK_DEVICE_ID,
    .options = vsock_options,
    .create = vsock_create,
    .destroy = vsock_destroy,
    .config_read = vsock_config_read,
    .start = vsock_start,
    .queue_notify = vsock_queue_notify,
    .reset = vsock_reset,
};
