/* SPDX-License-Identifier: MIT */
/*
 * Test side: the driver's view of one split virtqueue laid out in guest RAM.
 * Tests use it to build rings, chains and indirect tables the way a driver
 * does (and to corrupt them the way a hostile one does), and to read back
 * what the device put in the used ring.
 */
#ifndef XVDM_TEST_GUEST_RING_H
#define XVDM_TEST_GUEST_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "sim.h"
#include "virtqueue.h"

struct guest_ring {
    /* Guest RAM as the test sees it: host pointer for gpa ram_gpa. */
    uint8_t *ram;
    uint64_t ram_gpa;
    uint64_t ram_size;

    uint16_t num;
    uint64_t desc_gpa, avail_gpa, used_gpa;

    uint16_t avail_idx;  /* driver's next avail idx */
    uint16_t kicked_idx; /* avail idx when the driver last decided to kick */
    uint16_t last_used; /* used entries consumed so far */
    uint16_t next_desc; /* descriptors are handed out round-robin */

    /* Grant mode, as Linux's grant DMA: every buffer (and indirect table)
     * is granted when its chain is added, read-only unless the device
     * writes it, its descriptor holding the grant address; the grants
     * end when the chain comes back used. NULL: guest-physical
     * addresses. */
    struct sim *grant_sim;
};

/* One buffer of a chain. write: device-writable. */
struct guest_buf {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

/* Lay out desc table, avail ring and used ring back to back from ring_gpa
 * (16-byte aligned, each part aligned as the spec requires), zero them. */
void guest_ring_init(struct guest_ring *r, void *ram, uint64_t ram_gpa,
                     uint64_t ram_size, uint64_t ring_gpa, uint16_t num);
/* Bytes the three parts take from ring_gpa (incl. event fields). */
uint64_t guest_ring_bytes(uint16_t num);

/* Host pointer for guest address gpa (the test must stay inside RAM). */
void *guest_ring_ptr(struct guest_ring *r, uint64_t gpa);

/* Write a chain of n buffers into the descriptor table, linked with NEXT;
 * returns the head index. Not yet visible to the device. */
uint16_t guest_ring_add_chain(struct guest_ring *r, const struct guest_buf *b,
                              unsigned n);
/* Write an indirect table of n buffers at table_gpa and one descriptor
 * pointing at it; returns that descriptor's index. */
uint16_t guest_ring_add_indirect(struct guest_ring *r, uint64_t table_gpa,
                                 const struct guest_buf *b, unsigned n);
/* Put head in the avail ring and, after a write barrier, bump avail->idx. */
void guest_ring_publish(struct guest_ring *r, uint16_t head);

/* Raw access, for hostile tests. */
struct virtq_desc *guest_ring_desc(struct guest_ring *r, uint16_t i);
struct virtq_avail *guest_ring_avail(struct guest_ring *r);
struct virtq_used *guest_ring_used(struct guest_ring *r);
uint16_t *guest_ring_used_event(struct guest_ring *r);  /* in avail ring */
uint16_t *guest_ring_avail_event(struct guest_ring *r); /* in used ring */

/* Take the next used element: true with *id and *len set, false when the
 * device has not published one. In grant mode its grants are ended (the
 * sim counts any the device still maps: sim_revokes_refused()). */
bool guest_ring_get_used(struct guest_ring *r, uint32_t *id, uint32_t *len);
/* With EVENT_IDX: ask for an interrupt at the next used element, as
 * Linux's virtqueue_enable_cb() does after draining the used ring. */
void guest_ring_enable_cb(struct guest_ring *r);

#endif
