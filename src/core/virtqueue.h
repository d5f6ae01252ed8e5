/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue (VIRTIO 1.2 §2.7), device side.
 *
 * The transport fills num, desc/avail/used addresses from guest registers
 * and calls vq_enable() when the driver sets QueueReady; from then on this
 * layer is the one place that reads descriptors, and it checks every value
 * the guest put there: ring addresses and sizes, descriptor addresses and
 * lengths (inside guest RAM, no overflow), chain length (bounded by the
 * queue size, so loops end), indirect tables, readable-before-writable
 * order, avail index jumps, and chains in use (a head the device holds
 * is not taken again, so at most the queue size are in use). A violation
 * calls vq->on_fault (which marks the device NEEDS_RESET) and the queue
 * stops.
 */
#ifndef XVDM_VIRTQUEUE_H
#define XVDM_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include <xvdm/device.h>

#include "gaccess.h"
#include "log.h"

/* Feature bits this layer implements (VIRTIO 1.2 §6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* Ring layouts in guest memory, little-endian (VIRTIO 1.2 §2.7.5-8). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* then uint16_t used_event */
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[]; /* then uint16_t avail_event */
};

/* Grant mode: what one chain's buffers map, read-only and writable. */
struct vq_chain_map {
    struct gmap out, in;
};

struct vq {
    /* Written by the transport while the queue is not ready. */
    uint16_t num;     /* queue size */
    uint16_t num_max; /* largest size the device takes (power of two) */
    uint64_t desc_gpa, avail_gpa, used_gpa;

    /* Set by vq_enable(). */
    bool ready;
    bool broken;
    bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
    bool indirect;  /* VIRTIO_F_INDIRECT_DESC negotiated */
    const struct gaccess *ga;
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    /* Grant mode: the rings, mapped for the queue's life, and per head
     * what its chain's buffers map until it is pushed back. */
    struct gmap ring_map[3];
    struct vq_chain_map *chain_map;
    /* Per head, whether the device holds its chain (popped, not pushed),
     * one bit each; held and chain_map have held_num entries, the queue
     * size they were made for (the guest may rewrite num meanwhile). */
    uint64_t *held;
    uint16_t held_num;

    /* Device-side ring state. */
    uint16_t last_avail_idx;  /* next avail entry to pop */
    uint16_t used_idx;        /* next used entry to write */
    uint16_t signalled_used;  /* used_idx at the last vq_should_signal() */
    bool signalled_used_valid;
    /* Chains popped and not yet pushed. A driver owns num descriptors, so
     * it cannot have more than num chains with the device (§2.7.13); one
     * that makes a head available again while the device holds it (a
     * fault) could otherwise grow the device's work without bound, and
     * have the chain completed, and in grant mode unmapped, under the
     * device that still writes to it. */
    uint16_t inflight;

    /* Who to tell when the guest breaks the queue; set by the owner. The
     * message says what was wrong, with the bad values. */
    void (*on_fault)(void *opaque, const char *what);
    void *fault_opaque;
    /* For chains the device cannot take (more buffers than it has iovecs):
     * not a fault, but worth a line now and then. */
    struct ratelimit rl;
};

/* Check the ring areas the transport recorded (num a power of two in
 * 1..num_max; desc 16-, avail 2-, used 4-byte aligned; each whole ring
 * the guest's to give through ga; the used ring on neither other), map
 * them, and start the queue with indices taken from the rings. 0, or
 * -EINVAL when the guest's values are unusable, -EBUSY when the device
 * still holds chains of an earlier enabling, -ENOMEM (the queue stays not
 * ready). */
int vq_enable(struct vq *vq, const struct gaccess *ga, uint64_t features);

/* Enabled and not broken: the rings may be touched. */
static inline bool vq_live(const struct vq *vq)
{
    return vq->ready && !vq->broken;
}

/* Forget everything guest-written, unmapping what grant mode mapped; keeps
 * num_max, the fault callback and the rate limit. The device holds no
 * chain by now. */
void vq_reset(struct vq *vq);

/* Take the next available chain: 1 with *chain filled, VQ_SKIPPED when it
 * had more buffers than chain->iov_cap, or more granted pages than one
 * mapping takes (it has been completed with 0 bytes written, and the
 * caller may pop again), 0 when none is available (or the queue is not
 * ready), -EIO once the guest broke the queue, -EAGAIN in grant mode
 * when the guest's budget of mapped pages has no room for the chain now
 * (it stays available; the budget's wake_fd says when pages came back).
 * One chain per call, so the caller bounds the work. Zero-length buffers
 * are not given to the device: every iovec has at least one byte. In
 * grant mode the buffers are mapped until the chain is pushed. */
#define VQ_SKIPPED 2
int vq_pop(struct vq *vq, struct xvdm_chain *chain);
/* Grant mode: the pages a popped chain's buffers map; 0 in foreign mode. */
unsigned vq_chain_pages(const struct vq *vq, const struct xvdm_chain *chain);
/* See xvdm_queue_push(). In grant mode the chain's buffers are unmapped
 * before the driver can see it used (the guest ends the grants then). */
void vq_push(struct vq *vq, const struct xvdm_chain *chain, uint32_t written);
/* See xvdm_queue_push_batch(). */
void vq_push_batch(struct vq *vq, const struct xvdm_chain *const *chains,
                   const uint32_t *written, unsigned n);
/* After pushes: does the guest want an interrupt now? Updates the EVENT_IDX
 * bookkeeping, so call it once per batch and signal when true. */
bool vq_should_signal(struct vq *vq);
/* Kick suppression (VIRTQ_USED_F_NO_NOTIFY or avail_event). */
void vq_disable_kicks(struct vq *vq);
bool vq_enable_kicks(struct vq *vq); /* true: more chains arrived */
/* The driver made chains available that were not taken yet. */
bool vq_has_available(struct vq *vq);

#endif
