/* SPDX-License-Identifier: MIT */
/*
 * How xvdm reaches one device's guest memory, in one of two modes:
 *   - foreign: the guest's RAM, mapped once (gmem.h): an address is a
 *     guest-physical one, translated;
 *   - grant: only what the guest grants (Xen's grant DMA, the device tree's
 *     "xen,grant-dma", VIRTIO_F_ACCESS_PLATFORM): an address is
 *     (1 << 63) | (gref << 12) | offset, a buffer of several pages uses
 *     consecutive references (Linux's drivers/xen/grant-dma-ops.c), and
 *     each is mapped through the hypervisor when needed and unmapped after.
 * The virtqueue layer maps through here and nowhere else.
 */
#ifndef XVDM_GACCESS_H
#define XVDM_GACCESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "gmem.h"

struct hv;

#define GACCESS_GRANT_BIT (1ULL << 63)
#define GACCESS_PAGE 4096ULL
/* Pages one mapping may take: a chain or a ring (16 MiB), well under
 * gntdev's 64 Ki per request. */
#define GACCESS_MAP_PAGES_MAX 4096

/* One guest's granted pages that chains hold mapped, all its devices
 * together. Xen takes an entry of dom0's maptrack table for each mapped
 * grant, and dom0's other backends (blkback, netback, other guests'
 * instances) take theirs from the same table: past `max`, a chain waits
 * until pages come back, as a disk queue waits for a slot. Rings (three
 * per queue, for the queue's life) and indirect tables (while a chain is
 * read) are not counted: few and bounded by the queues. */
struct gbudget {
    uint64_t max;
    uint64_t mapped; /* atomic */
    bool waiting;    /* atomic: a chain waits for pages */
    int wake_fd;     /* eventfd: pages came back while one waited */
};

/* Default: 64 MiB of chains in flight per guest: 16384 of the 262144
 * maptrack entries Xen gives dom0 by default (max_maptrack_frames 1024,
 * 256 entries a frame: xen/common/grant_table.c). */
#define GBUDGET_DEFAULT_PAGES 16384

/* 0, or a negative errno (the eventfd). */
int gbudget_init(struct gbudget *b, uint64_t max);
void gbudget_fini(struct gbudget *b);

struct gaccess {
    const struct gmem *ram; /* foreign mode */
    struct hv *hv;          /* grant mode, when ram is NULL */
    struct gbudget *budget; /* grant mode: chains' pages; NULL: no bound */
};

/* What to let go of; pages 0: nothing (foreign mode). */
struct gmap {
    void *base;
    unsigned pages;
    bool budgeted; /* pages taken from the budget */
};

static inline bool gaccess_grants(const struct gaccess *ga)
{
    return !ga->ram;
}

/* One range: a pointer to guest [addr, addr + len) (len > 0), writable
 * too when `write`, with what to unmap in *m; NULL when it is not the
 * guest's to give (outside its RAM; in grant mode not a grant address,
 * references that wrap, more than GACCESS_MAP_PAGES_MAX pages, or not
 * granted that way). For rings and indirect tables: not from the budget. */
void *gaccess_map(const struct gaccess *ga, uint64_t addr, uint64_t len,
                  bool write, struct gmap *m);
/* A chain's buffers: iov[0..out) readable, mapped read-only, and
 * iov[out..out + in) writable, each direction in one mapping (*m_out,
 * *m_in). iov[i].iov_base holds a guest address on entry (iov_len > 0),
 * the host address on return. In grant mode the pages of both are taken
 * from ga->budget at once. 0, -E2BIG when a direction takes more than
 * GACCESS_MAP_PAGES_MAX pages or both more than the whole budget, -EFAULT
 * as gaccess_map() returns NULL, or -EBUSY when the budget has no room
 * for them now (then nothing is mapped, and iov holds no address). */
int gaccess_map_chain(const struct gaccess *ga, struct iovec *iov,
                      unsigned out, unsigned in, struct gmap *m_out,
                      struct gmap *m_in);
void gaccess_unmap(const struct gaccess *ga, struct gmap *m);
/* Whether guest [addr, addr + len) (len > 0, any length) may be the
 * guest's, without mapping it: in foreign mode inside one RAM region; in
 * grant mode a grant address whose references do not wrap. Whether the
 * guest granted them is only known when they are mapped. */
bool gaccess_may_map(const struct gaccess *ga, uint64_t addr, uint64_t len);

#endif
