/* SPDX-License-Identifier: MIT */
/*
 * The virtio device core (VIRTIO 1.2 §2, §3.1): what every transport has
 * in common, so that a transport only decodes its registers. It owns the
 * device status and its state machine, feature negotiation, enabling and
 * notifying queues, NEEDS_RESET, config space and its generation, and the
 * interrupt status (the ISR), which the transport raises a guest
 * interrupt for through its callback.
 *
 * Every value a transport hands in comes from the guest: it is checked
 * here, and a violation gets the spec's outcome and a rate-limited line.
 */
#ifndef XVDM_VIRTIO_H
#define XVDM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "gaccess.h"

struct xvdm_dev;
struct xvdm_queue;

/* Device status bits (VIRTIO 1.2 §2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Interrupt status bits (the ISR, §4.1.4.5; virtio-mmio's InterruptStatus). */
#define VIRTIO_ISR_VRING 0x1
#define VIRTIO_ISR_CONFIG 0x2

/* How the core reaches the transport that serves a device. */
struct virtio_transport {
    /* The ISR gained a bit: make the guest take an interrupt. 0, or a
     * negative errno when it could not be raised. */
    int (*interrupt)(void *ctx);
    void *ctx;
};

/* Serve dev through transport t, its queues reaching guest memory
 * through ga (both copied). In grant mode the device offers
 * VIRTIO_F_ACCESS_PLATFORM, and a driver must accept it. */
void virtio_attach(struct xvdm_dev *dev, const struct gaccess *ga,
                   const struct virtio_transport *t);

uint32_t virtio_status(const struct xvdm_dev *dev);
/* The driver writes Status: 0 resets the device; else the bits it adds
 * are checked (FEATURES_OK kept only for an acceptable subset, DRIVER_OK
 * only after FEATURES_OK; bits are never cleared but by a reset). */
void virtio_set_status(struct xvdm_dev *dev, uint32_t value);
/* Device reset: the device's reset op, every queue forgotten, status,
 * features and ISR back to 0. */
void virtio_reset(struct xvdm_dev *dev);
/* The eventfd xvdm_queue_defer() wakes the loop with, watched on the
 * device's own account: made when the device is, within the watches the
 * loop keeps for it, so that a device past its share (vsock's
 * connections) can still defer. For a device with a loop only, once.
 * 0, or a negative errno. */
int virtio_defer_init(struct xvdm_dev *dev);

/* 32 bits of the offered features: half 0 (bits 0..31) or 1; others 0. */
uint32_t virtio_device_features(const struct xvdm_dev *dev, uint32_t half);
/* The driver's features, half by half; ignored once FEATURES_OK is set. */
void virtio_set_driver_features(struct xvdm_dev *dev, uint32_t half,
                                uint32_t value);

/* QueueReady 1: check the rings the transport recorded and start the
 * queue. QueueReady 0: stop it. */
void virtio_queue_ready(struct xvdm_dev *dev, struct xvdm_queue *q,
                        bool ready);
/* The driver notified queue `index` (any value: checked here). */
void virtio_queue_notify(struct xvdm_dev *dev, uint32_t index);
/* The host answered notifies of queue `index` for xvdm (the fast path)
 * and now says so, later than the guest wrote them: a reset or QueueReady
 * 0 in between makes them stale, which is no fault of the driver's. */
void virtio_queue_kicked(struct xvdm_dev *dev, uint32_t index);

/* InterruptStatus, as the guest reads it. */
uint32_t virtio_isr_read(struct xvdm_dev *dev);
void virtio_isr_ack(struct xvdm_dev *dev, uint32_t bits);

uint32_t virtio_config_generation(const struct xvdm_dev *dev);
/* `size` bytes (1, 2, 4 or 8) at `offset` into config space,
 * little-endian (§2.5); outside the device's config space a read is 0
 * and a write ignored. */
uint64_t virtio_config_read(struct xvdm_dev *dev, uint32_t offset,
                            unsigned size);
void virtio_config_write(struct xvdm_dev *dev, uint32_t offset,
                         unsigned size, uint64_t value);

/* For the device: chains were used, the config changed, the guest broke
 * the device's contract (§2.1.2). */
void virtio_signal_used(struct xvdm_dev *dev);
void virtio_config_changed(struct xvdm_dev *dev);
void virtio_needs_reset(struct xvdm_dev *dev);

/* Granted pages came back to the guest's budget: every queue of dev that
 * waited for them is drained again from the loop. */
void virtio_queue_unstarve(struct xvdm_dev *dev);

/* May the driver's queues be served now (DRIVER_OK, no NEEDS_RESET)? */
bool virtio_serving(const struct xvdm_dev *dev);

#endif
