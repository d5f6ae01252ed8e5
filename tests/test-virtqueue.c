/* SPDX-License-Identifier: MIT */
/* The split virtqueue against a hostile driver: what the device accepts,
 * what it refuses, and what the driver sees in the used ring. */
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check-run.h"
#include "log-lines.h"
#include "guest-ring.h"
#include "hv.h"
#include "sim.h"
#include "virtqueue.h"

#define RAM_GPA 0x40000000ULL
#define RAM_SIZE 0x40000ULL
#define RING_GPA (RAM_GPA + 0x1000)
#define BUF_GPA (RAM_GPA + 0x10000)
#define TABLE_GPA (RAM_GPA + 0x30000)
#define NUM 8
#define ALL_FEATURES                                                          \
    ((1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_F_EVENT_IDX))

static uint8_t *ram;
static struct gmem mem;
static struct gaccess ga = {.ram = &mem};
static struct guest_ring ring;
static struct vq vq;
static unsigned faults;
static char last_fault[160];
static struct iovec iov[4];
static struct xvdm_chain chain;

static void on_fault(void *opaque, const char *what)
{
    faults++;
    snprintf(last_fault, sizeof(last_fault), "%s", what);
}

static void setup(void)
{
    ram = aligned_alloc(4096, RAM_SIZE);
    memset(ram, 0, RAM_SIZE);
    mem = (struct gmem){0};
    ck_assert_int_eq(gmem_add(&mem, RAM_GPA, RAM_SIZE, ram), 0);
    guest_ring_init(&ring, ram, RAM_GPA, RAM_SIZE, RING_GPA, NUM);
    vq = (struct vq){.num_max = 256, .on_fault = on_fault};
    faults = 0;
    last_fault[0] = '\0';
    chain = (struct xvdm_chain){.iov = iov, .iov_cap = 4};
}

static void teardown(void)
{
    vq_reset(&vq);
    free(ram);
}

static int enable(uint16_t num, uint64_t features)
{
    vq.num = num;
    vq.desc_gpa = ring.desc_gpa;
    vq.avail_gpa = ring.avail_gpa;
    vq.used_gpa = ring.used_gpa;
    return vq_enable(&vq, &ga, features);
}

static void publish(const struct guest_buf *b, unsigned n)
{
    guest_ring_publish(&ring, guest_ring_add_chain(&ring, b, n));
}

static void publish_one(uint32_t len, bool write)
{
    struct guest_buf b = {BUF_GPA, len, write};

    publish(&b, 1);
}

START_TEST(simple_chain_becomes_iovecs_into_guest_ram)
{
    struct guest_buf b[] = {{BUF_GPA, 16, false},
                            {BUF_GPA + 0x100, 512, true},
                            {BUF_GPA + 0x400, 1, true}};

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish(b, 3);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    ck_assert_uint_eq(chain.out_num, 1);
    ck_assert_uint_eq(chain.in_num, 2);
    ck_assert_uint_eq(chain.out_len, 16);
    ck_assert_uint_eq(chain.in_len, 513);
    ck_assert_ptr_eq(iov[0].iov_base, ram + 0x10000);
    ck_assert_ptr_eq(iov[1].iov_base, ram + 0x10100);
    ck_assert_uint_eq(iov[2].iov_len, 1);
    ck_assert_int_eq(vq_pop(&vq, &chain), 0);
    ck_assert_uint_eq(faults, 0);
}
END_TEST

START_TEST(push_publishes_head_and_clamps_written_to_in_len)
{
    uint32_t id, len;

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish_one(100, true);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    vq_push(&vq, &chain, 5000);
    ck_assert(guest_ring_get_used(&ring, &id, &len));
    ck_assert_uint_eq(id, chain.head);
    ck_assert_uint_eq(len, 100);
}
END_TEST

/* Merged receive buffers: a driver that sees the first of a batch must
 * see all of it, so used->idx moves once, past the whole batch. */
START_TEST(push_batch_publishes_all_elements_with_one_index_move)
{
    struct iovec iovs[3][4];
    struct xvdm_chain c[3];
    const struct xvdm_chain *cp[3] = {&c[0], &c[1], &c[2]};
    const uint32_t written[3] = {100, 100, 7};
    uint32_t id, len;

    ck_assert_int_eq(enable(NUM, 0), 0);
    for (unsigned i = 0; i < 3; i++) {
        publish_one(100, true);
        c[i] = (struct xvdm_chain){.iov = iovs[i], .iov_cap = 4};
        ck_assert_int_eq(vq_pop(&vq, &c[i]), 1);
    }
    vq_push_batch(&vq, cp, written, 3);
    ck_assert_uint_eq(le16toh(guest_ring_used(&ring)->idx), 3);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert(guest_ring_get_used(&ring, &id, &len));
        ck_assert_uint_eq(id, c[i].head);
        ck_assert_uint_eq(len, written[i]);
    }
}
END_TEST

START_TEST(indirect_chain_is_walked_when_negotiated)
{
    struct guest_buf b[] = {{BUF_GPA, 16, false}, {BUF_GPA + 0x100, 64, true}};

    ck_assert_int_eq(enable(NUM, ALL_FEATURES), 0);
    guest_ring_publish(&ring, guest_ring_add_indirect(&ring, TABLE_GPA, b, 2));
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    ck_assert_uint_eq(chain.out_len, 16);
    ck_assert_uint_eq(chain.in_len, 64);
    ck_assert_ptr_eq(iov[1].iov_base, ram + 0x10100);
}
END_TEST

static void expect_fault(const char *what)
{
    ck_assert_int_eq(vq_pop(&vq, &chain), -EIO);
    ck_assert_uint_eq(faults, 1);
    ck_assert_msg(strstr(last_fault, what), "fault '%s' lacks '%s'",
                  last_fault, what);
    ck_assert(vq.broken);
}

START_TEST(indirect_table_at_an_unaligned_address_is_read)
{
    struct guest_buf b[] = {{BUF_GPA, 16, false}, {BUF_GPA + 0x100, 64, true}};

    ck_assert_int_eq(enable(NUM, ALL_FEATURES), 0);
    guest_ring_publish(&ring,
                       guest_ring_add_indirect(&ring, TABLE_GPA + 3, b, 2));
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    ck_assert_uint_eq(chain.out_len, 16);
    ck_assert_uint_eq(chain.in_len, 64);
    ck_assert_uint_eq(faults, 0);
}
END_TEST

START_TEST(indirect_without_negotiation_faults)
{
    struct guest_buf b = {BUF_GPA, 16, true};

    ck_assert_int_eq(enable(NUM, 0), 0);
    guest_ring_publish(&ring, guest_ring_add_indirect(&ring, TABLE_GPA, &b, 1));
    expect_fault("INDIRECT_DESC");
}
END_TEST

START_TEST(nested_indirect_faults)
{
    struct guest_buf b = {BUF_GPA, 16, true};
    uint16_t head;

    ck_assert_int_eq(enable(NUM, ALL_FEATURES), 0);
    head = guest_ring_add_indirect(&ring, TABLE_GPA, &b, 1);
    /* The table's only entry points to another table. */
    *(struct virtq_desc *)guest_ring_ptr(&ring, TABLE_GPA) =
        (struct virtq_desc){htole64(TABLE_GPA + 0x100), htole32(16),
                            htole16(VIRTQ_DESC_F_INDIRECT), 0};
    guest_ring_publish(&ring, head);
    expect_fault("nested");
}
END_TEST

/* Point the head's descriptor at the indirect table with other flags or
 * length, as a hostile driver might. */
static void publish_bad_indirect(uint16_t flags, uint32_t len)
{
    struct guest_buf b = {BUF_GPA, 16, true};
    uint16_t head = guest_ring_add_indirect(&ring, TABLE_GPA, &b, 1);

    guest_ring_desc(&ring, head)->flags = htole16(flags);
    guest_ring_desc(&ring, head)->len = htole32(len);
    guest_ring_publish(&ring, head);
}

START_TEST(indirect_with_next_faults)
{
    ck_assert_int_eq(enable(NUM, ALL_FEATURES), 0);
    publish_bad_indirect(VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 16);
    expect_fault("NEXT");
}
END_TEST

START_TEST(indirect_table_of_bad_length_faults)
{
    /* Empty, not whole descriptors, and more entries than the queue. */
    static const uint32_t lens[] = {0, 24, 16 * (NUM + 1)};

    for (unsigned i = 0; i < 3; i++) {
        vq_reset(&vq);
        faults = 0;
        ck_assert_int_eq(enable(NUM, ALL_FEATURES), 0);
        publish_bad_indirect(VIRTQ_DESC_F_INDIRECT, lens[i]);
        expect_fault("indirect table");
    }
}
END_TEST

START_TEST(chain_over_4_gib_faults)
{
    /* A reserved, never touched 4 GiB region makes the buffers valid
     * guest RAM; only their sum is too big for a 32-bit length. */
    const uint64_t big_gpa = 1ULL << 40, big_size = 1ULL << 32;
    void *big = mmap(NULL, big_size, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct guest_buf b[] = {{big_gpa, 0xc0000000, true},
                            {big_gpa, 0xc0000000, true}};

    ck_assert_ptr_ne(big, MAP_FAILED);
    ck_assert_int_eq(gmem_add(&mem, big_gpa, big_size, big), 0);
    ck_assert_int_eq(enable(NUM, 0), 0);
    publish(b, 2);
    expect_fault("4 GiB");
    munmap(big, big_size);
}
END_TEST

START_TEST(descriptor_loop_faults_and_returns)
{
    struct guest_buf b[] = {{BUF_GPA, 16, true}, {BUF_GPA, 16, true}};
    uint16_t head;

    ck_assert_int_eq(enable(NUM, 0), 0);
    head = guest_ring_add_chain(&ring, b, 2);
    guest_ring_desc(&ring, head + 1)->flags =
        htole16(VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT);
    guest_ring_desc(&ring, head + 1)->next = htole16(head);
    guest_ring_publish(&ring, head);
    expect_fault("loop");
}
END_TEST

START_TEST(buffer_past_ram_faults)
{
    struct guest_buf b = {RAM_GPA + RAM_SIZE - 8, 16, true};

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish(&b, 1);
    expect_fault("outside guest RAM");
}
END_TEST

START_TEST(buffer_address_plus_length_overflow_faults)
{
    struct guest_buf b = {0xfffffffffffff000ULL, 0x2000, true};

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish(&b, 1);
    expect_fault("outside guest RAM");
}
END_TEST

START_TEST(readable_after_writable_faults)
{
    struct guest_buf b[] = {{BUF_GPA, 16, true}, {BUF_GPA, 16, false}};

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish(b, 2);
    expect_fault("readable after writable");
}
END_TEST

START_TEST(head_index_past_queue_faults)
{
    ck_assert_int_eq(enable(NUM, 0), 0);
    guest_ring_publish(&ring, NUM);
    expect_fault("past table");
}
END_TEST

START_TEST(avail_idx_jump_faults_and_queue_stays_broken)
{
    ck_assert_int_eq(enable(NUM, 0), 0);
    guest_ring_avail(&ring)->idx = htole16(NUM + 1);
    expect_fault("avail idx jumped");
    guest_ring_avail(&ring)->idx = 0;
    publish_one(16, true);
    ck_assert_int_eq(vq_pop(&vq, &chain), -EIO);
    ck_assert_uint_eq(faults, 1);
    vq_reset(&vq);
    ck_assert(!vq.broken && !vq.ready);
    ck_assert_uint_eq(vq.num_max, 256);
}
END_TEST

START_TEST(broken_queue_touches_nothing_until_reset)
{
    struct xvdm_chain old;

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish_one(16, true);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    old = chain;
    guest_ring_publish(&ring, NUM);
    expect_fault("past table");
    vq_push(&vq, &old, 16);
    ck_assert_uint_eq(guest_ring_used(&ring)->idx, 0);
    ck_assert(!vq_should_signal(&vq));
    vq_disable_kicks(&vq);
    ck_assert_uint_eq(guest_ring_used(&ring)->flags, 0);
    ck_assert(!vq_enable_kicks(&vq));
    ck_assert_int_eq(enable(NUM, 0), -EINVAL);
    vq_reset(&vq);
    guest_ring_init(&ring, ram, RAM_GPA, RAM_SIZE, RING_GPA, NUM);
    ck_assert_int_eq(enable(NUM, 0), 0);
    publish_one(16, true);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    ck_assert_uint_eq(faults, 1);
}
END_TEST

/* One chain per call, skipped or not: the caller's bound on how many it
 * takes counts the skipped ones too. */
START_TEST(chain_longer_than_iov_cap_is_completed_empty_and_skipped)
{
    struct guest_buf b[5];
    uint32_t id, len;

    for (unsigned i = 0; i < 5; i++)
        b[i] = (struct guest_buf){BUF_GPA + 64 * i, 64, true};
    ck_assert_int_eq(enable(NUM, 0), 0);
    publish(b, 5);
    publish_one(32, true);
    ck_assert_int_eq(vq_pop(&vq, &chain), VQ_SKIPPED);
    ck_assert(guest_ring_get_used(&ring, &id, &len));
    ck_assert_uint_eq(id, 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    ck_assert_uint_eq(chain.in_len, 32);
    ck_assert_uint_eq(faults, 0);
}
END_TEST

/* A zero-length buffer is left out: a device taking "the last byte" of
 * the writable part gets one inside RAM, even when the empty buffer sits
 * at the first byte of a region (its last byte would be the one before). */
START_TEST(zero_length_buffers_are_left_out)
{
    struct guest_buf b[] = {{BUF_GPA, 16, false},
                            {RAM_GPA, 0, false},
                            {BUF_GPA + 0x100, 1, true},
                            {RAM_GPA, 0, true}};

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish(b, 4);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    ck_assert_uint_eq(chain.out_num, 1);
    ck_assert_uint_eq(chain.in_num, 1);
    ck_assert_uint_eq(chain.in_len, 1);
    ck_assert_ptr_eq(iov[1].iov_base, ram + 0x10100);
    ck_assert_uint_eq(iov[1].iov_len, 1);
    ck_assert_uint_eq(faults, 0);
}
END_TEST

/* §2.7.5.3.1: an indirect table holds no indirect descriptor, wherever the
 * driver put it, the descriptor table itself included. */
START_TEST(indirect_table_on_the_descriptor_table_cannot_nest)
{
    struct guest_buf b = {BUF_GPA, 16, true};

    ck_assert_int_eq(enable(NUM, ALL_FEATURES), 0);
    guest_ring_add_indirect(&ring, TABLE_GPA, &b, 1); /* descriptor 0 */
    *guest_ring_desc(&ring, 1) = (struct virtq_desc){
        htole64(ring.desc_gpa), htole32(16), htole16(VIRTQ_DESC_F_INDIRECT),
        0};
    guest_ring_publish(&ring, 1);
    expect_fault("nested");
}
END_TEST

/* The driver owns num descriptors, so at most num chains are with the
 * device; a head published again before it is used is refused, which
 * bounds the work a guest can queue. */
START_TEST(more_chains_in_use_than_the_queue_size_faults)
{
    struct iovec iovs[NUM][4];
    struct xvdm_chain c[NUM];

    ck_assert_int_eq(enable(NUM, 0), 0);
    for (unsigned i = 0; i < NUM; i++) {
        publish_one(16, true);
        c[i] = (struct xvdm_chain){.iov = iovs[i], .iov_cap = 4};
        ck_assert_int_eq(vq_pop(&vq, &c[i]), 1);
    }
    vq_push(&vq, &c[0], 0);
    guest_ring_publish(&ring, c[0].head); /* used again: fine */
    ck_assert_int_eq(vq_pop(&vq, &c[0]), 1);
    guest_ring_publish(&ring, c[1].head); /* still in use */
    expect_fault("in use");
}
END_TEST

/* A head the device holds, published again as a chain of more buffers
 * than the device takes: refused, not "skipped", which would complete the
 * chain the device is still writing (and in grant mode unmap it). */
START_TEST(a_held_head_published_again_as_an_overlong_chain_faults)
{
    struct guest_buf b[5];
    struct iovec iov2[4];
    struct xvdm_chain c2 = {.iov = iov2, .iov_cap = 4};
    uint32_t id, len;

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish_one(16, true);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    for (unsigned i = 0; i < 5; i++)
        b[i] = (struct guest_buf){BUF_GPA + 64 * i, 64, true};
    ring.next_desc = chain.head; /* the held head's descriptors rewritten */
    guest_ring_publish(&ring, guest_ring_add_chain(&ring, b, 5));
    ck_assert_int_eq(vq_pop(&vq, &c2), -EIO);
    ck_assert_msg(strstr(last_fault, "in use"), "fault: %s", last_fault);
    ck_assert(!guest_ring_get_used(&ring, &id, &len));
}
END_TEST

START_TEST(indices_wrap_around_16_bits)
{
    uint32_t id, len;

    /* A ring handed over at a high index: both sides continue from it. */
    guest_ring_used(&ring)->idx = htole16(65533);
    ring.avail_idx = ring.last_used = 65533;
    guest_ring_avail(&ring)->idx = htole16(65533);
    ck_assert_int_eq(enable(NUM, 0), 0);
    for (unsigned i = 0; i < 6; i++) {
        publish_one(8, true);
        ck_assert_int_eq(vq_pop(&vq, &chain), 1);
        vq_push(&vq, &chain, 8);
        ck_assert(guest_ring_get_used(&ring, &id, &len));
        ck_assert_uint_eq(len, 8);
    }
    ck_assert_uint_eq(le16toh(guest_ring_used(&ring)->idx), 3);
    ck_assert_uint_eq(faults, 0);
}
END_TEST

static void complete_one(void)
{
    publish_one(8, true);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    vq_push(&vq, &chain, 8);
}

START_TEST(event_idx_signals_only_when_used_event_is_crossed)
{
    ck_assert_int_eq(enable(NUM, ALL_FEATURES), 0);
    *guest_ring_used_event(&ring) = htole16(100);
    complete_one();
    ck_assert(vq_should_signal(&vq)); /* the first signal always goes */
    complete_one();
    ck_assert(!vq_should_signal(&vq)); /* used_event 100 not reached */
    *guest_ring_used_event(&ring) = htole16(2);
    complete_one(); /* used idx 2 -> 3 crosses used_event 2 */
    ck_assert(vq_should_signal(&vq));
    complete_one();
    ck_assert(!vq_should_signal(&vq));
}
END_TEST

START_TEST(no_interrupt_flag_suppresses_signal_without_event_idx)
{
    ck_assert_int_eq(enable(NUM, 0), 0);
    complete_one();
    ck_assert(vq_should_signal(&vq));
    guest_ring_avail(&ring)->flags = htole16(VIRTQ_AVAIL_F_NO_INTERRUPT);
    complete_one();
    ck_assert(!vq_should_signal(&vq));
}
END_TEST

START_TEST(kick_suppression_uses_flags_without_event_idx)
{
    ck_assert_int_eq(enable(NUM, 0), 0);
    vq_disable_kicks(&vq);
    ck_assert_uint_eq(le16toh(guest_ring_used(&ring)->flags),
                      VIRTQ_USED_F_NO_NOTIFY);
    ck_assert(!vq_enable_kicks(&vq));
    ck_assert_uint_eq(guest_ring_used(&ring)->flags, 0);
    publish_one(8, true);
    vq_disable_kicks(&vq);
    ck_assert(vq_enable_kicks(&vq)); /* a chain arrived meanwhile */
}
END_TEST

START_TEST(kick_suppression_uses_avail_event_with_event_idx)
{
    ck_assert_int_eq(enable(NUM, ALL_FEATURES), 0);
    complete_one();
    complete_one();
    vq_disable_kicks(&vq);
    ck_assert(!vq_enable_kicks(&vq));
    ck_assert_uint_eq(le16toh(*guest_ring_avail_event(&ring)), 2);
    ck_assert_uint_eq(guest_ring_used(&ring)->flags, 0);
}
END_TEST

/* The device writes only the used ring: on top of the descriptor table or
 * the avail ring, its completions would make new work for itself. */
START_TEST(used_ring_on_the_drivers_parts_is_refused)
{
    vq.num = NUM;
    vq.desc_gpa = RING_GPA;
    vq.avail_gpa = RING_GPA + 0x202;
    vq.used_gpa = RING_GPA + 0x204; /* flags on the avail index */
    ck_assert_int_eq(vq_enable(&vq, &ga, 0), -EINVAL);
    vq.used_gpa = RING_GPA + 0x70; /* inside the descriptor table */
    ck_assert_int_eq(vq_enable(&vq, &ga, 0), -EINVAL);
    vq.used_gpa = RING_GPA + 0x400;
    ck_assert_int_eq(vq_enable(&vq, &ga, 0), 0);
}
END_TEST

/* A device-writable buffer may still cover the avail index (the spec does
 * not forbid it): the index the device moves by writing data is checked
 * like any other. */
START_TEST(avail_index_moved_by_a_device_write_is_checked)
{
    struct guest_buf b = {RING_GPA + 0x80, 4, true}; /* avail flags, idx */

    ck_assert_int_eq(enable(NUM, 0), 0);
    publish(&b, 1);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    memset(iov[0].iov_base, 0x7f, 4); /* idx 0x7f7f: a jump */
    ck_assert(!vq_enable_kicks(&vq));
    ck_assert(vq.broken);
}
END_TEST

START_TEST(unusable_ring_setups_are_refused)
{
    ck_assert_int_eq(enable(0, 0), -EINVAL);
    ck_assert_int_eq(enable(6, 0), -EINVAL);
    ck_assert_int_eq(enable(512, 0), -EINVAL); /* above num_max 256 */
    vq.num = NUM;
    vq.desc_gpa = RING_GPA + 8; /* not 16-byte aligned */
    vq.avail_gpa = ring.avail_gpa;
    vq.used_gpa = ring.used_gpa;
    ck_assert_int_eq(vq_enable(&vq, &ga, 0), -EINVAL);
    vq.desc_gpa = RING_GPA;
    vq.avail_gpa = ring.avail_gpa + 1; /* not 2-byte aligned */
    ck_assert_int_eq(vq_enable(&vq, &ga, 0), -EINVAL);
    vq.avail_gpa = ring.avail_gpa;
    vq.used_gpa = ring.used_gpa + 2; /* not 4-byte aligned */
    ck_assert_int_eq(vq_enable(&vq, &ga, 0), -EINVAL);
    vq.used_gpa = RAM_GPA + RAM_SIZE - 16; /* runs past RAM */
    ck_assert_int_eq(vq_enable(&vq, &ga, 0), -EINVAL);
    ck_assert(!vq.ready);
    ck_assert_uint_eq(faults, 0);
}
END_TEST

/* ---- grant mode: what the device holds stays mapped -------------------- */

static struct sim *gsim;
static uint64_t gbase;

static uint64_t grant(uint64_t gpa, uint64_t len, bool readonly)
{
    uint64_t addr;

    ck_assert_int_eq(sim_grant(gsim, gpa, len, readonly, &addr), 0);
    return addr;
}

/* A queue of NUM whose rings the guest granted, with fault counting. */
static void setup_grants(void)
{
    struct sim_config cfg = {.domid = 1, .nr_vcpus = 1, .ram_size = 16 << 20};

    gsim = sim_create(&cfg);
    ck_assert_ptr_nonnull(gsim);
    gbase = sim_ram_base(gsim);
    ga = (struct gaccess){.hv = sim_hv(gsim)};
    guest_ring_init(&ring, sim_guest_ptr(gsim, gbase, 1 << 20), gbase,
                    1 << 20, gbase + 0x1000, NUM);
    vq = (struct vq){.num_max = 256, .on_fault = on_fault};
    faults = 0;
    last_fault[0] = '\0';
    chain = (struct xvdm_chain){.iov = iov, .iov_cap = 4};
    vq.num = NUM;
    vq.desc_gpa = grant(ring.desc_gpa, 16 * NUM, true);
    vq.avail_gpa = grant(ring.avail_gpa, 6 + 2 * NUM, true);
    vq.used_gpa = grant(ring.used_gpa, 6 + 8 * NUM, false);
    ck_assert_int_eq(vq_enable(&vq, &ga, 0), 0);
}

static void teardown_grants(void)
{
    vq_reset(&vq);
    hv_close(sim_hv(gsim));
    sim_destroy(gsim);
    ga = (struct gaccess){.ram = &mem};
}

/* Descriptor i: one buffer of len bytes at addr, device-writable. */
static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
    *guest_ring_desc(&ring, i) = (struct virtq_desc){
        htole64(addr), htole32(len), htole16(VIRTQ_DESC_F_WRITE | flags),
        htole16(next)};
}

/* Held head 0 published again with more buffers than the device takes:
 * refused, and the held chain's page stays mapped for the device. */
START_TEST(a_held_chain_stays_mapped_when_its_head_is_published_again)
{
    struct iovec iov2[4];
    struct xvdm_chain c2 = {.iov = iov2, .iov_cap = 4};
    uint64_t buf = grant(gbase + 0x20000, 4096, false);
    uint32_t id, len;

    set_desc(0, buf, 4096, 0, 0);
    guest_ring_publish(&ring, 0);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    ck_assert_uint_eq(sim_grants_mapped(gsim), 4); /* 3 rings, 1 buffer */
    for (unsigned i = 0; i < 6; i++)
        set_desc(i, buf, 16, i < 5 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
    guest_ring_publish(&ring, 0);
    ck_assert_int_eq(vq_pop(&vq, &c2), -EIO);
    ck_assert_msg(strstr(last_fault, "in use"), "fault: %s", last_fault);
    ck_assert_uint_eq(sim_grants_mapped(gsim), 4);
    memset(iov[0].iov_base, 0xab, iov[0].iov_len); /* still the device's */
    ck_assert(!guest_ring_get_used(&ring, &id, &len));
}
END_TEST

/* Held head 0 as an empty chain (nothing mapped), published again with a
 * buffer: refused, so completing the first cannot unmap the second's. */
START_TEST(a_held_empty_chain_cannot_be_published_again_with_a_buffer)
{
    struct iovec iov2[4];
    struct xvdm_chain c2 = {.iov = iov2, .iov_cap = 4};
    uint64_t buf = grant(gbase + 0x20000, 4096, false);

    set_desc(0, buf, 0, 0, 0);
    guest_ring_publish(&ring, 0);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    set_desc(0, buf, 4096, 0, 0);
    guest_ring_publish(&ring, 0);
    ck_assert_int_eq(vq_pop(&vq, &c2), -EIO);
    ck_assert_uint_eq(sim_grants_mapped(gsim), 3); /* the rings only */
}
END_TEST

/* Chain `head`: one granted page of its own, device-writable. */
static void one_page_chain(unsigned head)
{
    set_desc(head, grant(gbase + 0x20000 + head * 4096ULL, 4096, false), 4096,
             0, 0);
    guest_ring_publish(&ring, (uint16_t)head);
}

/* A guest's budget of two pages: a third one-page chain waits, still
 * available, with nothing more mapped; when a chain is used its page
 * comes back, the wait is signalled, and the third is taken. */
START_TEST(a_chain_past_the_guests_budget_waits_for_pages)
{
    struct iovec iov2[4], iov3[4];
    struct xvdm_chain c2 = {.iov = iov2, .iov_cap = 4};
    struct xvdm_chain c3 = {.iov = iov3, .iov_cap = 4};
    struct gbudget budget;
    uint64_t woken;

    ck_assert_int_eq(gbudget_init(&budget, 2), 0);
    ga.budget = &budget;
    for (unsigned i = 0; i < 3; i++)
        one_page_chain(i);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    ck_assert_int_eq(vq_pop(&vq, &c2), 1);
    ck_assert_int_eq(vq_pop(&vq, &c3), -EAGAIN);
    ck_assert_int_eq(vq_pop(&vq, &c3), -EAGAIN);
    ck_assert_uint_eq(sim_grants_mapped(gsim), 5); /* 3 rings, 2 buffers */
    ck_assert_uint_eq(faults, 0);
    ck_assert_int_eq(read(budget.wake_fd, &woken, sizeof(woken)), -1);
    vq_push(&vq, &chain, 0);
    ck_assert_int_eq(read(budget.wake_fd, &woken, sizeof(woken)),
                     sizeof(woken));
    ck_assert_int_eq(vq_pop(&vq, &c3), 1);
    ck_assert_uint_eq(c3.head, 2);
    vq_push(&vq, &c2, 0);
    vq_push(&vq, &c3, 0);
    ck_assert_uint_eq(budget.mapped, 0);
    vq_reset(&vq);
    gbudget_fini(&budget);
}
END_TEST

/* Chains taken while the budget has room wake no one when used: a wake
 * per completion would run the loop of every queue of the guest for
 * nothing. */
START_TEST(chains_within_the_budget_wake_no_one_when_used)
{
    struct gbudget budget;
    uint64_t woken;

    ck_assert_int_eq(gbudget_init(&budget, 2), 0);
    ga.budget = &budget;
    for (unsigned i = 0; i < 4; i++) {
        one_page_chain(i);
        ck_assert_int_eq(vq_pop(&vq, &chain), 1);
        vq_push(&vq, &chain, 0);
    }
    ck_assert_int_eq(read(budget.wake_fd, &woken, sizeof(woken)), -1);
    ck_assert_uint_eq(budget.mapped, 0);
    vq_reset(&vq);
    gbudget_fini(&budget);
}
END_TEST

/* A budget of two pages, one held by chain 0: chain 1, a readable page
 * and a writable one, waits with nothing mapped, and its wait is not
 * signalled until a page really comes back. Were part of it mapped and
 * given back, that give would wake it at once, to fail the same way: a
 * loop spinning on map and unmap calls for as long as chain 0 is held. */
START_TEST(a_waiting_chain_is_not_woken_by_its_own_pages)
{
    struct iovec iov2[4];
    struct xvdm_chain c2 = {.iov = iov2, .iov_cap = 4};
    struct gbudget budget;
    uint64_t woken;

    ck_assert_int_eq(gbudget_init(&budget, 2), 0);
    ga.budget = &budget;
    one_page_chain(0);
    ck_assert_int_eq(vq_pop(&vq, &chain), 1);
    *guest_ring_desc(&ring, 1) = (struct virtq_desc){
        htole64(grant(gbase + 0x30000, 4096, true)), htole32(4096),
        htole16(VIRTQ_DESC_F_NEXT), htole16(2)};
    set_desc(2, grant(gbase + 0x31000, 4096, false), 4096, 0, 0);
    guest_ring_publish(&ring, 1);
    ck_assert_int_eq(vq_pop(&vq, &c2), -EAGAIN);
    ck_assert_uint_eq(sim_grants_mapped(gsim), 4); /* 3 rings, chain 0 */
    ck_assert_int_eq(read(budget.wake_fd, &woken, sizeof(woken)), -1);
    vq_push(&vq, &chain, 0);
    ck_assert_int_eq(read(budget.wake_fd, &woken, sizeof(woken)),
                     sizeof(woken));
    ck_assert_int_eq(vq_pop(&vq, &c2), 1);
    ck_assert_uint_eq(c2.head, 1);
    vq_push(&vq, &c2, 0);
    ck_assert_uint_eq(budget.mapped, 0);
    vq_reset(&vq);
    gbudget_fini(&budget);
}
END_TEST

/* A chain whose readable page is granted but whose writable one is not:
 * a fault, and every page it took from the budget comes back, the
 * readable part's mapping undone. */
START_TEST(a_chain_that_cannot_be_mapped_gives_its_pages_back)
{
    struct gbudget budget;

    ck_assert_int_eq(gbudget_init(&budget, 4), 0);
    ga.budget = &budget;
    *guest_ring_desc(&ring, 0) = (struct virtq_desc){
        htole64(grant(gbase + 0x20000, 4096, true)), htole32(4096),
        htole16(VIRTQ_DESC_F_NEXT), htole16(1)};
    set_desc(1, SIM_GRANT_ADDR(SIM_GRANTS_MAX - 1, 0), 4096, 0, 0);
    guest_ring_publish(&ring, 0);
    ck_assert_int_eq(vq_pop(&vq, &chain), -EIO);
    ck_assert_uint_eq(faults, 1);
    ck_assert_uint_eq(budget.mapped, 0);
    ck_assert_uint_eq(sim_grants_mapped(gsim), 3); /* the rings only */
    vq_reset(&vq);
    gbudget_fini(&budget);
}
END_TEST

/* Chain 0, published, with a budget of one page: completed unused at
 * once, and nothing left counted against the budget. */
static void pop_skipped(void)
{
    ck_assert_int_eq(vq_pop(&vq, &chain), VQ_SKIPPED);
}

/* ... and says why: the pages, not the buffers. */
static void expect_completed_unused_with_one_page(void)
{
    struct gbudget budget;
    uint32_t id, len;

    ck_assert_int_eq(gbudget_init(&budget, 1), 0);
    ga.budget = &budget;
    guest_ring_publish(&ring, 0);
    ck_assert_uint_eq(log_lines_during(pop_skipped, "granted pages"), 1);
    ck_assert(guest_ring_get_used(&ring, &id, &len));
    ck_assert_uint_eq(id, 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(budget.mapped, 0);
    vq_reset(&vq);
    gbudget_fini(&budget);
}

/* A chain that takes more pages than the whole budget could never be
 * mapped: it is completed unused, as one past a mapping's size is. */
START_TEST(a_chain_larger_than_the_budget_is_completed_unused)
{
    set_desc(0, grant(gbase + 0x20000, 8192, false), 8192, 0, 0);
    expect_completed_unused_with_one_page();
}
END_TEST

/* A chain whose readable and writable buffers each fit the budget but
 * together do not could never be mapped either: completed unused, not
 * left waiting for pages that can never be enough (each retry would map
 * its readable part, fail on the rest and wake itself again). */
START_TEST(a_chain_larger_than_the_budget_in_two_directions_is_completed_unused)
{
    *guest_ring_desc(&ring, 0) = (struct virtq_desc){
        htole64(grant(gbase + 0x20000, 4096, true)), htole32(4096),
        htole16(VIRTQ_DESC_F_NEXT), htole16(1)};
    set_desc(1, grant(gbase + 0x21000, 4096, false), 4096, 0, 0);
    expect_completed_unused_with_one_page();
}
END_TEST

/* Fifty chains of one granted page, each taken and completed. */
static void fifty_chains_used(void)
{
    uint64_t buf = grant(gbase + 0x20000, 4096, false);

    for (unsigned i = 0; i < 50; i++) {
        set_desc(0, buf, 4096, 0, 0);
        guest_ring_publish(&ring, 0);
        ck_assert_int_eq(vq_pop(&vq, &chain), 1);
        vq_push(&vq, &chain, 0);
    }
}

/* When dom0 cannot unmap what a guest granted, it says so, but a guest
 * that keeps the device busy does not turn that into a flood. */
START_TEST(unmap_failures_are_logged_rate_limited)
{
    unsigned lines;

    sim_fail_grant_unmap(gsim, -EIO);
    lines = log_lines_during(fifty_chains_used, "cannot unmap");
    ck_assert_uint_ge(lines, 1);
    ck_assert_msg(lines <= RATELIMIT_BURST + 1, "%u log lines", lines);
}
END_TEST

/* QueueNum rewritten while the queue is not ready (QueueReady 0), then the
 * device reset: what was mapped for the old size is all unmapped, whether
 * the new size is larger or smaller, and the guest can end its grants. */
START_TEST(a_queue_size_rewritten_before_reset_unmaps_what_was_mapped)
{
    uint16_t sizes[] = {2, 256};

    for (unsigned i = 0; i < 2; i++) {
        uint64_t buf;

        if (i)
            setup_grants();
        buf = grant(gbase + 0x20000, 4096, false);
        set_desc(5, buf, 4096, 0, 0);
        guest_ring_publish(&ring, 5);
        ck_assert_int_eq(vq_pop(&vq, &chain), 1);
        vq.ready = false;
        vq.num = sizes[i];
        vq_reset(&vq);
        ck_assert_uint_eq(sim_grants_mapped(gsim), 0);
        ck_assert_int_eq(sim_revoke(gsim, buf, 4096), 0);
        if (!i)
            teardown_grants();
    }
}
END_TEST

static Suite *virtqueue_suite(void)
{
    Suite *s = suite_create("virtqueue");
    TCase *tc = tcase_create("split");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, simple_chain_becomes_iovecs_into_guest_ram);
    tcase_add_test(tc, push_publishes_head_and_clamps_written_to_in_len);
    tcase_add_test(tc, push_batch_publishes_all_elements_with_one_index_move);
    tcase_add_test(tc, indirect_chain_is_walked_when_negotiated);
    tcase_add_test(tc, indirect_table_at_an_unaligned_address_is_read);
    tcase_add_test(tc, indirect_without_negotiation_faults);
    tcase_add_test(tc, nested_indirect_faults);
    tcase_add_test(tc, indirect_with_next_faults);
    tcase_add_test(tc, indirect_table_of_bad_length_faults);
    tcase_add_test(tc, chain_over_4_gib_faults);
    tcase_add_test(tc, descriptor_loop_faults_and_returns);
    tcase_add_test(tc, buffer_past_ram_faults);
    tcase_add_test(tc, buffer_address_plus_length_overflow_faults);
    tcase_add_test(tc, readable_after_writable_faults);
    tcase_add_test(tc, head_index_past_queue_faults);
    tcase_add_test(tc, avail_idx_jump_faults_and_queue_stays_broken);
    tcase_add_test(tc, broken_queue_touches_nothing_until_reset);
    tcase_add_test(tc,
                   chain_longer_than_iov_cap_is_completed_empty_and_skipped);
    tcase_add_test(tc, indices_wrap_around_16_bits);
    tcase_add_test(tc, event_idx_signals_only_when_used_event_is_crossed);
    tcase_add_test(tc, no_interrupt_flag_suppresses_signal_without_event_idx);
    tcase_add_test(tc, kick_suppression_uses_flags_without_event_idx);
    tcase_add_test(tc, kick_suppression_uses_avail_event_with_event_idx);
    tcase_add_test(tc, used_ring_on_the_drivers_parts_is_refused);
    tcase_add_test(tc, avail_index_moved_by_a_device_write_is_checked);
    tcase_add_test(tc, zero_length_buffers_are_left_out);
    tcase_add_test(tc, indirect_table_on_the_descriptor_table_cannot_nest);
    tcase_add_test(tc, more_chains_in_use_than_the_queue_size_faults);
    tcase_add_test(tc, a_held_head_published_again_as_an_overlong_chain_faults);
    tcase_add_test(tc, unusable_ring_setups_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("grants");
    tcase_add_checked_fixture(tc, setup_grants, teardown_grants);
    tcase_add_test(tc, a_chain_past_the_guests_budget_waits_for_pages);
    tcase_add_test(tc, a_waiting_chain_is_not_woken_by_its_own_pages);
    tcase_add_test(tc, a_chain_that_cannot_be_mapped_gives_its_pages_back);
    tcase_add_test(tc, a_chain_larger_than_the_budget_is_completed_unused);
    tcase_add_test(tc, chains_within_the_budget_wake_no_one_when_used);
    tcase_add_test(
        tc, a_chain_larger_than_the_budget_in_two_directions_is_completed_unused);
    tcase_add_test(tc,
                   a_held_chain_stays_mapped_when_its_head_is_published_again);
    tcase_add_test(tc,
                   a_held_empty_chain_cannot_be_published_again_with_a_buffer);
    tcase_add_test(tc,
                   a_queue_size_rewritten_before_reset_unmaps_what_was_mapped);
    tcase_add_test(tc, unmap_failures_are_logged_rate_limited);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(virtqueue_suite());
}
