/* SPDX-License-Identifier: MIT */
/*
 * One device instance: a loaded module's ops and state, its queues, and
 * the virtio core's state of it. dev.c implements the xvdm_* functions of
 * <xvdm/device.h> on top of the virtqueue layer and the virtio core.
 */
#ifndef XVDM_DEV_H
#define XVDM_DEV_H

#include <stdint.h>

#include <xvdm/device.h>

#include "log.h"
#include "loop.h"
#include "virtio.h"
#include "virtqueue.h"

struct loop;
struct devspec;
struct store;

#define DEV_OPTIONS_MAX 32
/* Keys one device may publish (xvdm_dev_publish). */
#define DEV_PUBLISHED_MAX 8

struct xvdm_options {
    unsigned nr;
    struct {
        char *key;
        char *value;
    } kv[DEV_OPTIONS_MAX];
};

struct xvdm_queue {
    struct vq vq;
    struct xvdm_dev *dev;
    uint16_t index;
    uint64_t turn;  /* the loop turn `taken` counts in */
    unsigned taken; /* chains popped (or skipped) in that turn */
    uint64_t pages; /* granted pages those chains mapped */
    bool draining;  /* in xvdm_queue_next()'s run: kicks off */
    bool starved;   /* a chain waits for granted pages (gbudget) */
    bool held_back; /* xvdm_queue_next()'s last 0 was not "no more" */
    /* Trap batching (queue-batch.c), when the device's batch_ns is set. */
    unsigned in_flight; /* chains handed to the device, not yet pushed */
    unsigned done;      /* chains pushed since the last interrupt */
    uint64_t irq_since; /* when the interrupt began to wait; 0: it does not */
    uint64_t looked;    /* kicks off: when the ring was last looked at; 0:
                         * the driver is asked to kick as usual */
};

struct xvdm_dev {
    const struct xvdm_device_ops *ops;
    void *priv;
    char name[32];  /* type + index: "rng0" */
    char prefix[48]; /* log prefix: "rng0: " */
    uint32_t domid;
    struct xvdm_device_setup setup;
    uint64_t offered; /* setup.features plus the transport's own */
    struct xvdm_queue queues[XVDM_QUEUES_MAX];
    /* The virtio core's (virtio.c), from virtio_attach() on. */
    bool attached;
    struct virtio_transport transport;
    struct gaccess ga; /* how its queues reach guest memory */
    uint32_t status;
    uint64_t driver_features; /* as written, both halves */
    uint64_t negotiated;      /* accepted at FEATURES_OK */
    uint32_t isr;
    /* isr's bits whose interrupt was raised since the guest last read it */
    uint32_t isr_fresh;
    uint32_t config_generation;
    struct loop *loop;
    struct loop_owner watch_share; /* its fds' share of the loop's watches */
    const uint64_t *loop_turn; /* the loop's turn counter (loop_turn()) */
    struct ratelimit guest_rl;
    int defer_fd;        /* eventfd for xvdm_queue_defer(), made on first use */
    uint64_t deferred;   /* queues to notify from the loop */
    uint64_t batch_ns;   /* xvdm_dev_batch()'s bound, 0: no batching */
    int batch_fd;        /* its timerfd, made on first use */
    bool batch_armed;
    /* What the guest had the device do, for the counters line
     * (mmio_log_counters()). Loop thread, but chains and bytes: modules
     * may complete from threads of their own. */
    struct dev_counters {
        uint64_t drains;   /* queue_notify calls: kicks, deferred turns */
        uint64_t drain_ns; /* the loop's time in them */
        uint64_t chains;   /* completed */
        uint64_t bytes;    /* written into the guest's buffers */
    } counters;
    struct store *store; /* where xvdm_dev_publish() writes; NULL: nowhere */
    char *node;          /* the device's directory there */
    unsigned nr_published;
    char *published[DEV_PUBLISHED_MAX]; /* paths written, removed at the end */
};

/* Every key of opts is one of ops->options; else one line naming the key
 * and the accepted ones is logged and -EINVAL returned. */
int dev_check_options(const struct xvdm_device_ops *ops,
                      const struct xvdm_options *opts);
/* Validate opts against ops->options, call ops->create and check what it
 * set up (queue counts and sizes, config size). `index` numbers devices of
 * one guest for names. The device publishes its keys in xenstore `st`
 * under directory `node`, or nowhere when either is NULL. On failure, one
 * line naming the problem has been logged and a negative errno is
 * returned. */
int dev_create(struct xvdm_dev **out, const struct xvdm_device_ops *ops,
               const struct xvdm_options *opts, unsigned index, uint32_t domid,
               struct loop *loop, struct store *st, const char *node);
/* Remove every key the device published (dev-publish.c). */
void dev_unpublish(struct xvdm_dev *dev);
/* Forget every descriptor the device offered (dev-link.c). */
void dev_withdraw_links(const struct xvdm_dev *dev);
/* Forget everything the guest set up in a queue (device reset). */
void dev_queue_reset(struct xvdm_queue *q);
/* Reset (when a transport is attached) and destroy. NULL is fine. */
void dev_destroy(struct xvdm_dev *dev);
/* The operator's reload request (SIGHUP): the module's reload op, when its
 * ABI version has one and it is set. */
void dev_reload(struct xvdm_dev *dev);

/* Transport feature bits every device gets offered. */
#define DEV_TRANSPORT_FEATURES                                                \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC) |        \
     (1ULL << VIRTIO_F_EVENT_IDX))

#endif
