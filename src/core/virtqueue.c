/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue, device side (VIRTIO 1.2 §2.7). Every value read from the
 * rings is read once into a local (the guest may change it under us) and
 * checked before it is used.
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtqueue.h"

/* A 16-byte descriptor as read from guest memory, host byte order. */
struct vq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* Where a chain walk is: the table it reads and how much it may still
 * take, so that loops and oversized chains end in a fault. */
struct vq_walk {
    const struct virtq_desc *table;
    uint32_t table_size;
    uint32_t budget; /* descriptors left, direct + indirect (§2.7.5.3.1) */
    bool seen_write;
    bool indirect;         /* walking an indirect table */
    struct gmap table_map; /* grant mode: that table, for the walk */
};

static void vq_fault(struct vq *vq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void vq_fault(struct vq *vq, const char *fmt, ...)
{
    char what[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    vq->broken = true;
    if (vq->on_fault)
        vq->on_fault(vq->fault_opaque, what);
}

static uint16_t vq_load16(const uint16_t *p)
{
    return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void vq_store16(uint16_t *p, uint16_t v)
{
    __atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static uint16_t *vq_used_event(struct vq *vq)
{
    return &vq->avail->ring[vq->num];
}

static uint16_t *vq_avail_event(struct vq *vq)
{
    return (uint16_t *)&vq->used->ring[vq->num];
}

/* ---- enabling ----------------------------------------------------------- */

enum { VQ_RING_DESC, VQ_RING_AVAIL, VQ_RING_USED };

static void *vq_map_ring(struct vq *vq, const struct gaccess *ga, int ring,
                         uint64_t gpa, uint64_t len, uint64_t align)
{
    if (gpa & (align - 1))
        return NULL;
    /* Only the used ring is the device's to write. */
    return gaccess_map(ga, gpa, len, ring == VQ_RING_USED,
                       &vq->ring_map[ring]);
}

static void vq_unmap_rings(struct vq *vq)
{
    for (unsigned i = 0; i < 3; i++)
        gaccess_unmap(vq->ga, &vq->ring_map[i]);
    vq->desc = NULL;
    vq->avail = NULL;
    vq->used = NULL;
}

static void vq_free_heads(struct vq *vq)
{
    free(vq->held);
    free(vq->chain_map);
    vq->held = NULL;
    vq->chain_map = NULL;
    vq->held_num = 0;
}

/* Which heads the device holds and, in grant mode, what each one's chain
 * maps, for a queue of num entries. Not while the device still holds
 * chains of an earlier enabling: their heads index the old arrays. */
static int vq_alloc_heads(struct vq *vq)
{
    if (vq->inflight)
        return -EBUSY;
    vq_free_heads(vq);
    vq->held = calloc((vq->num + 63) / 64, sizeof(*vq->held));
    if (vq->held && gaccess_grants(vq->ga))
        vq->chain_map = calloc(vq->num, sizeof(*vq->chain_map));
    if (!vq->held || (gaccess_grants(vq->ga) && !vq->chain_map)) {
        vq_free_heads(vq);
        return -ENOMEM;
    }
    vq->held_num = vq->num;
    return 0;
}

static bool vq_head_held(const struct vq *vq, uint16_t head)
{
    return vq->held[head / 64] & (1ULL << (head % 64));
}

static void vq_set_held(struct vq *vq, uint16_t head, bool held)
{
    if (held)
        vq->held[head / 64] |= 1ULL << (head % 64);
    else
        vq->held[head / 64] &= ~(1ULL << (head % 64));
}

/* The used ring is the only part the device writes. On top of the
 * descriptor table or the avail ring, the device's own completions would
 * publish new work to itself (one kick, endless work): refused. Both
 * ranges are the guest's, so the sums cannot wrap. */
static bool vq_rings_overlap(uint64_t a, uint64_t alen, uint64_t b,
                             uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

int vq_enable(struct vq *vq, const struct gaccess *ga, uint64_t features)
{
    uint64_t num = vq->num;
    int ret;

    /* A broken queue waits for a device reset (§2.1.2 NEEDS_RESET). */
    if (vq->broken || num == 0 || (num & (num - 1)) || num > vq->num_max)
        return -EINVAL;
    vq->ga = ga;
    vq_unmap_rings(vq); /* of an earlier enabling, if any */
    /* Sizes include used_event/avail_event (§2.7.6, §2.7.8). */
    vq->desc = vq_map_ring(vq, ga, VQ_RING_DESC, vq->desc_gpa, 16 * num, 16);
    vq->avail = vq_map_ring(vq, ga, VQ_RING_AVAIL, vq->avail_gpa, 6 + 2 * num,
                            2);
    vq->used = vq_map_ring(vq, ga, VQ_RING_USED, vq->used_gpa, 6 + 8 * num, 4);
    ret = -EINVAL;
    if (vq->desc && vq->avail && vq->used &&
        !vq_rings_overlap(vq->used_gpa, 6 + 8 * num, vq->desc_gpa, 16 * num) &&
        !vq_rings_overlap(vq->used_gpa, 6 + 8 * num, vq->avail_gpa,
                          6 + 2 * num))
        ret = vq_alloc_heads(vq);
    if (ret) {
        vq_unmap_rings(vq);
        return ret;
    }
    vq->event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
    vq->indirect = features & (1ULL << VIRTIO_F_INDIRECT_DESC);
    /* A driver zeroes a new ring (Linux does), so this is 0; taking it from
     * the ring keeps both sides agreeing should a driver hand over a ring
     * it already used. The avail index is checked on every pop. */
    vq->used_idx = vq_load16(&vq->used->idx);
    vq->last_avail_idx = vq->used_idx;
    vq->signalled_used = vq->used_idx;
    vq->signalled_used_valid = false;
    vq->ready = true;
    return 0;
}

void vq_reset(struct vq *vq)
{
    struct vq keep = *vq;

    if (vq->ga) {
        vq_unmap_rings(vq);
        for (unsigned i = 0; vq->chain_map && i < vq->held_num; i++) {
            gaccess_unmap(vq->ga, &vq->chain_map[i].out);
            gaccess_unmap(vq->ga, &vq->chain_map[i].in);
        }
    }
    vq_free_heads(vq);
    memset(vq, 0, sizeof(*vq));
    vq->num_max = keep.num_max;
    vq->on_fault = keep.on_fault;
    vq->fault_opaque = keep.fault_opaque;
    vq->rl = keep.rl;
}

/* ---- popping chains ------------------------------------------------------- */

/* One copy of the guest's 16 bytes, then decoded: nothing is read twice.
 * memcpy, because an indirect table need not be aligned (the spec asks
 * alignment only of the rings), and a misaligned typed load is
 * undefined. */
static void vq_read_desc(const struct virtq_desc *d, struct vq_desc *out)
{
    struct virtq_desc raw;

    memcpy(&raw, d, sizeof(raw));
    out->addr = le64toh(raw.addr);
    out->len = le32toh(raw.len);
    out->flags = le16toh(raw.flags);
    out->next = le16toh(raw.next);
}

/* Add one data descriptor to the chain. 0, 1 when it does not fit in the
 * caller's iovecs (the chain is then skipped), or -EIO after a fault. */
static int vq_add_buffer(struct vq *vq, struct vq_walk *w,
                         const struct vq_desc *d, struct xvdm_chain *chain)
{
    bool write = d->flags & VIRTQ_DESC_F_WRITE;
    uint32_t *total = write ? &chain->in_len : &chain->out_len;
    unsigned n = chain->out_num + chain->in_num;
    void *hva;

    if (!write && w->seen_write) {
        vq_fault(vq, "descriptor readable after writable in chain %u",
                 chain->head);
        return -EIO;
    }
    w->seen_write |= write;
    /* The spec does not forbid a zero-length buffer, but it holds nothing:
     * it is left out, so that every iovec a device gets has a first and a
     * last byte inside guest RAM (a device that writes "the last byte" of
     * a chain must never be handed a pointer just outside a region). */
    if (d->len == 0)
        return 0;
    if (gaccess_grants(vq->ga))
        hva = (void *)(uintptr_t)d->addr; /* mapped once the walk is done */
    else
        hva = gmem_translate(vq->ga->ram, d->addr, d->len);
    if (!hva) {
        vq_fault(vq, "buffer 0x%" PRIx64 "+0x%" PRIx32 " outside guest RAM",
                 d->addr, d->len);
        return -EIO;
    }
    if (*total > UINT32_MAX - d->len) {
        vq_fault(vq, "chain %u longer than 4 GiB", chain->head);
        return -EIO;
    }
    *total += d->len;
    if (n >= chain->iov_cap)
        return 1;
    chain->iov[n].iov_base = hva;
    chain->iov[n].iov_len = d->len;
    if (write)
        chain->in_num++;
    else
        chain->out_num++;
    return 0;
}

/* Switch the walk to an indirect table (§2.7.5.3). */
static int vq_enter_indirect(struct vq *vq, struct vq_walk *w,
                             const struct vq_desc *d)
{
    if (!vq->indirect) {
        vq_fault(vq, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
        return -EIO;
    }
    /* Tracked, not derived from the table's address: a table the guest
     * places on the descriptor table itself is still an indirect one. */
    if (w->indirect) {
        vq_fault(vq, "nested indirect descriptor");
        return -EIO;
    }
    if (d->flags & VIRTQ_DESC_F_NEXT) {
        vq_fault(vq, "indirect descriptor with NEXT set");
        return -EIO;
    }
    if (d->len == 0 || d->len % 16 || d->len / 16 > w->budget) {
        vq_fault(vq, "indirect table of %" PRIu32 " bytes (queue size %u)",
                 d->len, vq->num);
        return -EIO;
    }
    w->table = gaccess_map(vq->ga, d->addr, d->len, false, &w->table_map);
    if (!w->table) {
        vq_fault(vq, "indirect table 0x%" PRIx64 "+0x%" PRIx32
                 " not the guest's to give", d->addr, d->len);
        return -EIO;
    }
    w->table_size = d->len / 16;
    w->indirect = true;
    return 0;
}

/* Walk the chain starting at `index` of w->table. 0, 1 (too many buffers
 * for chain->iov), or -EIO. */
static int vq_walk_chain(struct vq *vq, struct vq_walk *w, uint16_t index,
                         struct xvdm_chain *chain)
{
    bool overflow = false;
    struct vq_desc d;
    int ret;

    for (;;) {
        if (index >= w->table_size) {
            vq_fault(vq, "descriptor index %u past table of %" PRIu32,
                     index, w->table_size);
            return -EIO;
        }
        if (w->budget-- == 0) {
            vq_fault(vq, "chain %u longer than the queue (a loop?)",
                     chain->head);
            return -EIO;
        }
        vq_read_desc(&w->table[index], &d);
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            ret = vq_enter_indirect(vq, w, &d);
            if (ret)
                return ret;
            index = 0;
            continue;
        }
        ret = vq_add_buffer(vq, w, &d, chain);
        if (ret < 0)
            return ret;
        overflow |= ret;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return overflow;
        index = d.next;
    }
}

/* vq_map_chain()'s answer for a chain whose pages could never be mapped
 * at once (vq_walk_chain()'s 1 is for too many buffers). */
#define VQ_OVER_BUDGET 2

/* Grant mode: map the chain's buffers, readable ones read-only, until it
 * is pushed back. 0, VQ_OVER_BUDGET when they take more pages than one
 * mapping or the guest's whole budget (the chain is skipped), -EAGAIN
 * when the budget has no room for them now, or -EIO after a fault. */
static int vq_map_chain(struct vq *vq, struct xvdm_chain *chain)
{
    struct vq_chain_map *m = &vq->chain_map[chain->head];
    int ret;

    ret = gaccess_map_chain(vq->ga, chain->iov, chain->out_num,
                            chain->in_num, &m->out, &m->in);
    if (ret == -E2BIG)
        return VQ_OVER_BUDGET;
    if (ret == -EBUSY)
        return -EAGAIN;
    if (ret)
        vq_fault(vq, "chain %u: buffers not granted, or granted read-only "
                 "where the device writes", chain->head);
    return ret ? -EIO : 0;
}

/* The guest's avail index, checked: it may be at most num ahead of us. */
static int vq_avail_pending(struct vq *vq, uint16_t *pending)
{
    uint16_t idx = vq_load16(&vq->avail->idx);
    uint16_t n = (uint16_t)(idx - vq->last_avail_idx);

    if (n > vq->num) {
        vq_fault(vq, "avail idx jumped from %u to %u, queue size %u",
                 vq->last_avail_idx, idx, vq->num);
        return -EIO;
    }
    *pending = n;
    return 0;
}

bool vq_has_available(struct vq *vq)
{
    uint16_t pending;

    return vq_live(vq) && vq_avail_pending(vq, &pending) == 0 && pending;
}

unsigned vq_chain_pages(const struct vq *vq, const struct xvdm_chain *chain)
{
    const struct vq_chain_map *m;

    if (!vq->chain_map)
        return 0;
    m = &vq->chain_map[chain->head];
    return m->out.pages + m->in.pages;
}

int vq_pop(struct vq *vq, struct xvdm_chain *chain)
{
    struct vq_walk w;
    uint16_t pending, head;
    int ret;

    if (vq->broken)
        return -EIO;
    if (!vq->ready)
        return 0;
    ret = vq_avail_pending(vq, &pending);
    if (ret || pending == 0)
        return ret;
    /* Read the ring entry only after seeing the index (§2.7.13.3). */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    head = vq_load16(&vq->avail->ring[vq->last_avail_idx % vq->num]);
    vq->last_avail_idx++;
    if (head >= vq->num) {
        vq_fault(vq, "head %u past table of %u", head, vq->num);
        return -EIO;
    }
    if (vq_head_held(vq, head)) {
        vq_fault(vq, "chain %u made available again while in use", head);
        return -EIO;
    }
    chain->head = head;
    chain->out_num = chain->in_num = 0;
    chain->out_len = chain->in_len = 0;
    w = (struct vq_walk){.table = vq->desc, .table_size = vq->num,
                         .budget = vq->num};
    ret = vq_walk_chain(vq, &w, head, chain);
    gaccess_unmap(vq->ga, &w.table_map);
    if (ret == 0 && vq->chain_map)
        ret = vq_map_chain(vq, chain);
    if (ret == -EAGAIN)
        vq->last_avail_idx--; /* still available: taken again later */
    if (ret < 0)
        return ret;
    vq->inflight++;
    vq_set_held(vq, head, true);
    if (ret == 0)
        return 1;
    if (ret == VQ_OVER_BUDGET)
        log_ratelimited(&vq->rl, NULL,
                        "chain %u takes more granted pages than one mapping "
                        "or the guest's budget holds: completed unused",
                        head);
    else
        log_ratelimited(&vq->rl, NULL,
                        "chain %u has more buffers than the device takes "
                        "(%u): completed unused", head, chain->iov_cap);
    vq_push(vq, chain, 0);
    return VQ_SKIPPED;
}

/* ---- completing ---------------------------------------------------------- */

/* Mark every chain of a batch no longer held: all or, when one is not
 * held (or is there twice), none. */
static bool vq_release_heads(struct vq *vq,
                             const struct xvdm_chain *const *chains,
                             unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint16_t head = chains[i]->head;

        if (head >= vq->held_num || !vq_head_held(vq, head)) {
            while (i--)
                vq_set_held(vq, chains[i]->head, true);
            return false;
        }
        vq_set_held(vq, head, false);
    }
    return true;
}

void vq_push_batch(struct vq *vq, const struct xvdm_chain *const *chains,
                   const uint32_t *written, unsigned n)
{
    if (!vq_live(vq))
        return; /* held, and mapped, until the device is reset */
    if (!vq_release_heads(vq, chains, n)) {
        /* A device completing what it does not hold: its bug, not the
         * guest's, but a guest may be able to provoke it repeatedly. */
        log_ratelimited(&vq->rl, NULL, "completion of %u chain(s) not all "
                        "in use: dropped", n);
        return;
    }
    vq->inflight = (uint16_t)(vq->inflight - n);
    /* Unmapped before the driver can see them used: it ends the grants. */
    for (unsigned i = 0; vq->chain_map && i < n; i++) {
        struct vq_chain_map *m = &vq->chain_map[chains[i]->head];

        gaccess_unmap(vq->ga, &m->out);
        gaccess_unmap(vq->ga, &m->in);
    }
    for (unsigned i = 0; i < n; i++) {
        struct virtq_used_elem *e =
            &vq->used->ring[(uint16_t)(vq->used_idx + i) % vq->num];
        uint32_t len = written[i] > chains[i]->in_len ? chains[i]->in_len
                                                      : written[i];

        __atomic_store_n(&e->id, htole32(chains[i]->head), __ATOMIC_RELAXED);
        __atomic_store_n(&e->len, htole32(len), __ATOMIC_RELAXED);
    }
    /* The elements must be visible before the index that publishes them. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    vq->used_idx = (uint16_t)(vq->used_idx + n);
    vq_store16(&vq->used->idx, vq->used_idx);
}

void vq_push(struct vq *vq, const struct xvdm_chain *chain, uint32_t written)
{
    vq_push_batch(vq, &chain, &written, 1);
}

/* §2.7.10: signal when used_event lies in [old, new). */
static bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_should_signal(struct vq *vq)
{
    uint16_t old, event;
    bool valid;

    if (!vq_live(vq))
        return false;
    old = vq->signalled_used;
    valid = vq->signalled_used_valid;
    if (old == vq->used_idx)
        return false; /* nothing used since the last look */
    vq->signalled_used = vq->used_idx;
    vq->signalled_used_valid = true;
    /* Our used->idx store must be visible before we read the driver's
     * suppression state, or both sides may wait (§2.7.10). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(vq_load16(&vq->avail->flags) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    if (!valid)
        return true;
    event = vq_load16(vq_used_event(vq));
    return vq_need_event(event, vq->used_idx, old);
}

void vq_disable_kicks(struct vq *vq)
{
    if (vq_live(vq) && !vq->event_idx)
        vq_store16(&vq->used->flags, VIRTQ_USED_F_NO_NOTIFY);
    /* With EVENT_IDX the driver kicks only when crossing avail_event,
     * which stays behind while we drain. */
}

bool vq_enable_kicks(struct vq *vq)
{
    uint16_t pending;

    if (!vq_live(vq))
        return false;
    if (vq->event_idx)
        vq_store16(vq_avail_event(vq), vq->last_avail_idx);
    else
        vq_store16(&vq->used->flags, 0);
    /* Publish before re-reading avail->idx, or a chain added meanwhile
     * would have no kick and no pop (§2.7.10). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* Checked as vq_pop() checks it: a device-writable buffer may cover
     * the avail index, so the device's own writes may have moved it. */
    return vq_avail_pending(vq, &pending) == 0 && pending != 0;
}
