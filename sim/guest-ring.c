/* SPDX-License-Identifier: MIT */
/* Test side: a driver's split virtqueue in guest RAM (VIRTIO 1.2 §2.7). */
#include "config.h"

#include <endian.h>
#include <string.h>

#include "guest-ring.h"

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Offsets of the avail and used rings from the descriptor table. */
static uint64_t avail_off(uint16_t num)
{
    return 16ULL * num;
}

static uint64_t used_off(uint16_t num)
{
    return align_up(avail_off(num) + 6 + 2ULL * num, 4);
}

uint64_t guest_ring_bytes(uint16_t num)
{
    return used_off(num) + 6 + 8ULL * num;
}

void *guest_ring_ptr(struct guest_ring *r, uint64_t gpa)
{
    return r->ram + (gpa - r->ram_gpa);
}

void guest_ring_init(struct guest_ring *r, void *ram, uint64_t ram_gpa,
                     uint64_t ram_size, uint64_t ring_gpa, uint16_t num)
{
    memset(r, 0, sizeof(*r));
    r->ram = ram;
    r->ram_gpa = ram_gpa;
    r->ram_size = ram_size;
    r->num = num;
    r->desc_gpa = ring_gpa;
    r->avail_gpa = ring_gpa + avail_off(num);
    r->used_gpa = ring_gpa + used_off(num);
    memset(guest_ring_ptr(r, ring_gpa), 0, guest_ring_bytes(num));
}

struct virtq_desc *guest_ring_desc(struct guest_ring *r, uint16_t i)
{
    return (struct virtq_desc *)guest_ring_ptr(r, r->desc_gpa) + i;
}

struct virtq_avail *guest_ring_avail(struct guest_ring *r)
{
    return guest_ring_ptr(r, r->avail_gpa);
}

struct virtq_used *guest_ring_used(struct guest_ring *r)
{
    return guest_ring_ptr(r, r->used_gpa);
}

uint16_t *guest_ring_used_event(struct guest_ring *r)
{
    return &guest_ring_avail(r)->ring[r->num];
}

uint16_t *guest_ring_avail_event(struct guest_ring *r)
{
    return (uint16_t *)&guest_ring_used(r)->ring[r->num];
}

/* memcpy: an indirect table may sit at any address (hostile tests put
 * one at an unaligned one). */
static void write_desc(void *dst, uint64_t addr, uint32_t len, uint16_t flags,
                       uint16_t next)
{
    struct virtq_desc d = {htole64(addr), htole32(len), htole16(flags),
                           htole16(next)};

    memcpy(dst, &d, sizeof(d));
}

/* The address the device gets for [gpa, gpa + len): gpa, or in grant
 * mode a grant of it (none for an empty buffer, which holds nothing). */
static uint64_t dma_addr(struct guest_ring *r, uint64_t gpa, uint32_t len,
                         bool device_writes)
{
    uint64_t addr;

    if (!r->grant_sim || len == 0 ||
        sim_grant(r->grant_sim, gpa, len, !device_writes, &addr))
        return gpa;
    return addr;
}

static uint16_t buf_flags(const struct guest_buf *b, bool more)
{
    return (uint16_t)((b->write ? VIRTQ_DESC_F_WRITE : 0) |
                      (more ? VIRTQ_DESC_F_NEXT : 0));
}

uint16_t guest_ring_add_chain(struct guest_ring *r, const struct guest_buf *b,
                              unsigned n)
{
    uint16_t head = r->next_desc;

    for (unsigned i = 0; i < n; i++) {
        uint16_t idx = r->next_desc;
        uint16_t next = (uint16_t)((idx + 1) % r->num);

        write_desc(guest_ring_desc(r, idx),
                   dma_addr(r, b[i].gpa, b[i].len, b[i].write), b[i].len,
                   buf_flags(&b[i], i + 1 < n), next);
        r->next_desc = next;
    }
    return head;
}

uint16_t guest_ring_add_indirect(struct guest_ring *r, uint64_t table_gpa,
                                 const struct guest_buf *b, unsigned n)
{
    uint8_t *table = guest_ring_ptr(r, table_gpa);
    uint16_t idx = r->next_desc;

    for (unsigned i = 0; i < n; i++)
        write_desc(table + 16 * i, dma_addr(r, b[i].gpa, b[i].len, b[i].write),
                   b[i].len, buf_flags(&b[i], i + 1 < n), (uint16_t)(i + 1));
    write_desc(guest_ring_desc(r, idx),
               dma_addr(r, table_gpa, 16 * n, false), 16 * n,
               VIRTQ_DESC_F_INDIRECT, 0);
    r->next_desc = (uint16_t)((idx + 1) % r->num);
    return idx;
}

void guest_ring_publish(struct guest_ring *r, uint16_t head)
{
    struct virtq_avail *avail = guest_ring_avail(r);

    avail->ring[r->avail_idx % r->num] = htole16(head);
    r->avail_idx++;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&avail->idx, htole16(r->avail_idx), __ATOMIC_RELAXED);
}

static void read_desc(const void *src, struct virtq_desc *d)
{
    memcpy(d, src, sizeof(*d));
}

/* End the grants a descriptor's buffer holds, an indirect table's too. */
static void end_grants(struct guest_ring *r, const struct virtq_desc *d)
{
    uint64_t addr = le64toh(d->addr);
    uint32_t len = le32toh(d->len);
    struct virtq_desc in;

    if (!(addr & (1ULL << 63)) || len == 0)
        return;
    if (le16toh(d->flags) & VIRTQ_DESC_F_INDIRECT) {
        uint64_t gpa = sim_grant_gpa(r->grant_sim, addr);

        for (uint32_t i = 0; gpa && i < len / 16; i++) {
            read_desc(sim_guest_ptr(r->grant_sim, gpa + 16 * i, 16), &in);
            end_grants(r, &in);
        }
    }
    sim_revoke(r->grant_sim, addr, len);
}

/* The chain at `head` came back: its grants end, as the driver's
 * dma_unmap does. */
static void end_chain_grants(struct guest_ring *r, uint16_t head)
{
    struct virtq_desc d;

    for (unsigned n = 0; n < r->num && head < r->num; n++) {
        read_desc(guest_ring_desc(r, head), &d);
        end_grants(r, &d);
        if (!(le16toh(d.flags) & VIRTQ_DESC_F_NEXT))
            break;
        head = le16toh(d.next);
    }
}

bool guest_ring_get_used(struct guest_ring *r, uint32_t *id, uint32_t *len)
{
    struct virtq_used *used = guest_ring_used(r);
    struct virtq_used_elem *e;

    if (le16toh(__atomic_load_n(&used->idx, __ATOMIC_RELAXED)) ==
        r->last_used)
        return false;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    e = &used->ring[r->last_used % r->num];
    *id = le32toh(e->id);
    *len = le32toh(e->len);
    r->last_used++;
    if (r->grant_sim)
        end_chain_grants(r, (uint16_t)*id);
    return true;
}

void guest_ring_enable_cb(struct guest_ring *r)
{
    __atomic_store_n(guest_ring_used_event(r), htole16(r->last_used),
                     __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
