/* SPDX-License-Identifier: MIT */
/*
 * A malicious guest against the real stack (sim, loop, ioreq dispatch,
 * transport, virtqueue, rng module). Each case checks the outcome the spec
 * defines, then that xvdm still serves: the same device, reset and probed
 * again, completes a request.
 */
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "harness.h"
#include "scribble.h"
#include "vdriver.h"

#define WAIT_MS 5000
#define FEATURES                                                              \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC))

static struct harness h;
static struct vdriver d;

static void setup(void)
{
    const char *specs[] = {"rng"};

    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 8 << 20);
}

static void teardown(void)
{
    harness_stop(&h);
}

static void bring_up(void)
{
    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 16), 0);
    vdriver_driver_ok(&d);
}

static uint64_t buffer(uint32_t len)
{
    return vdriver_alloc(&d, len, 64);
}

/* The device works: a fresh probe and one request complete. */
static void assert_alive(void)
{
    struct guest_buf b;
    uint32_t id, len;

    vdriver_reset(&d);
    bring_up();
    b = (struct guest_buf){buffer(16), 16, true};
    guest_ring_publish(&d.ring[0], guest_ring_add_chain(&d.ring[0], &b, 1));
    vdriver_kick(&d, 0);
    ck_assert_int_eq(vdriver_wait_irq(&d, WAIT_MS), VIRTIO_MMIO_INT_VRING);
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    ck_assert_uint_eq(len, 16);
    ck_assert_int_eq(d.io_error, 0);
    ck_assert_uint_eq(sim_revokes_refused(h.sim), 0);
}

static bool needs_reset(void)
{
    return vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET;
}

/* Publish a one-descriptor chain at buf/len and kick. */
static void kick_buffer(uint64_t gpa, uint32_t len)
{
    struct guest_buf b = {gpa, len, true};

    guest_ring_publish(&d.ring[0], guest_ring_add_chain(&d.ring[0], &b, 1));
    vdriver_kick(&d, 0);
}

START_TEST(descriptor_loop_sets_needs_reset)
{
    struct guest_buf b[2] = {{buffer(8), 8, true}, {buffer(8), 8, true}};
    uint16_t head;

    bring_up();
    head = guest_ring_add_chain(&d.ring[0], b, 2);
    guest_ring_desc(&d.ring[0], head + 1)->flags =
        htole16(VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE);
    guest_ring_desc(&d.ring[0], head + 1)->next = htole16(head);
    guest_ring_publish(&d.ring[0], head);
    vdriver_kick(&d, 0);
    ck_assert(needs_reset());
    assert_alive();
}
END_TEST

START_TEST(buffer_address_past_ram_sets_needs_reset)
{
    bring_up();
    kick_buffer(sim_ram_base(h.sim) + sim_ram_size(h.sim) - 4, 16);
    ck_assert(needs_reset());
    assert_alive();
}
END_TEST

START_TEST(buffer_length_overflow_sets_needs_reset)
{
    bring_up();
    kick_buffer(0xfffffffffffff000ULL, 0x2000);
    ck_assert(needs_reset());
    assert_alive();
}
END_TEST

START_TEST(needs_reset_raises_config_interrupt)
{
    bring_up();
    kick_buffer(0xfffffffffffff000ULL, 0x2000);
    ck_assert_int_eq(vdriver_wait_irq(&d, WAIT_MS), VIRTIO_MMIO_INT_CONFIG);
    assert_alive();
}
END_TEST

START_TEST(avail_idx_jump_sets_needs_reset)
{
    bring_up();
    guest_ring_avail(&d.ring[0])->idx = htole16(1000);
    vdriver_kick(&d, 0);
    ck_assert(needs_reset());
    /* Further kicks are ignored until the reset. */
    vdriver_kick(&d, 0);
    ck_assert_uint_eq(guest_ring_used(&d.ring[0])->idx, 0);
    assert_alive();
}
END_TEST

/* Queue setup the guest botched: QueueReady reads back 0. */
static void setup_refused(uint32_t num, uint64_t desc)
{
    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, FEATURES), 0);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_NUM, num);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_AVAIL_LOW,
                  (uint32_t)sim_ram_base(h.sim) + 0x1000);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_USED_LOW,
                  (uint32_t)sim_ram_base(h.sim) + 0x2000);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_READY, 1);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_QUEUE_READY), 0);
    assert_alive();
}

START_TEST(queue_size_zero_not_ready)
{
    setup_refused(0, sim_ram_base(h.sim));
}
END_TEST

START_TEST(queue_size_not_power_of_two_not_ready)
{
    setup_refused(12, sim_ram_base(h.sim));
}
END_TEST

START_TEST(queue_size_above_max_not_ready)
{
    setup_refused(512, sim_ram_base(h.sim));
}
END_TEST

START_TEST(ring_outside_ram_not_ready)
{
    setup_refused(16, 0x100000000000ULL);
}
END_TEST

START_TEST(notify_before_driver_ok_ignored)
{
    struct guest_buf b = {buffer(8), 8, true};

    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 16), 0);
    guest_ring_publish(&d.ring[0], guest_ring_add_chain(&d.ring[0], &b, 1));
    vdriver_kick(&d, 0);
    ck_assert_uint_eq(guest_ring_used(&d.ring[0])->idx, 0);
    ck_assert_uint_eq(vdriver_new_edges(&d), 0);
    assert_alive();
}
END_TEST

START_TEST(notify_bad_queue_index_ignored)
{
    bring_up();
    vdriver_kick(&d, 1);
    vdriver_kick(&d, 0xffffffff);
    ck_assert(!needs_reset());
    ck_assert_uint_eq(vdriver_new_edges(&d), 0);
    assert_alive();
}
END_TEST

START_TEST(reset_during_work)
{
    bring_up();
    for (unsigned i = 0; i < 8; i++) {
        struct guest_buf b = {buffer(4096), 4096, true};

        guest_ring_publish(&d.ring[0],
                           guest_ring_add_chain(&d.ring[0], &b, 1));
    }
    vdriver_kick(&d, 0);
    vdriver_write(&d, VIRTIO_MMIO_STATUS, 0);
    ck_assert_uint_eq(vdriver_status(&d), 0);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_alive();
}
END_TEST

START_TEST(config_access_out_of_range)
{
    uint64_t v = 1;

    bring_up();
    for (uint64_t off = 0x100; off < 0x200; off += 0x7c) {
        ck_assert_int_eq(sim_mmio_read(h.sim, 0, d.base + off, 4, &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(sim_mmio_write(h.sim, 0, d.base + off, 4, ~0ULL), 0);
    }
    ck_assert(!needs_reset());
    assert_alive();
}
END_TEST

START_TEST(register_access_sizes)
{
    static const unsigned sizes[] = {1, 2, 8};
    uint32_t status;
    uint64_t v;

    bring_up();
    status = vdriver_status(&d);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(sim_mmio_read(h.sim, 0, d.base, sizes[i], &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(sim_mmio_write(h.sim, 0, d.base + VIRTIO_MMIO_STATUS,
                                        sizes[i], 0), 0);
    }
    ck_assert_uint_eq(vdriver_status(&d), status);
    assert_alive();
}
END_TEST

START_TEST(features_ok_refused_without_version_1)
{
    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, 1ULL << VIRTIO_F_INDIRECT_DESC),
                     -EIO);
    assert_alive();
}
END_TEST

START_TEST(unclaimed_ioreq_types_answered)
{
    struct ioreq reqs[] = {
        {.type = IOREQ_TYPE_INVALIDATE},
        {.type = IOREQ_TYPE_PIO, .addr = 0x3f8, .size = 1, .count = 1},
        {.type = IOREQ_TYPE_COPY, .addr = d.base, .size = 4, .count = 1,
         .data_is_ptr = 1, .dir = IOREQ_READ},
        {.type = IOREQ_TYPE_COPY, .addr = d.base + VIRTIO_MMIO_STATUS,
         .size = 4, .count = 5, .dir = IOREQ_WRITE},
    };

    bring_up();
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_int_eq(sim_ioreq(h.sim, 0, &reqs[i]), 0);
        ck_assert_uint_eq(reqs[i].state, STATE_IORESP_READY);
    }
    ck_assert(vdriver_status(&d) & VIRTIO_STATUS_DRIVER_OK);
    assert_alive();
}
END_TEST

START_TEST(write_to_read_only_register_ignored)
{
    bring_up();
    vdriver_write(&d, VIRTIO_MMIO_MAGIC_VALUE, 0);
    vdriver_write(&d, VIRTIO_MMIO_DEVICE_ID, 1);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_NUM_MAX, 1 << 20);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_MAGIC_VALUE),
                      VIRTIO_MMIO_MAGIC);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
    assert_alive();
}
END_TEST

/* With the used ring's flags on top of the avail index, each of the
 * device's writes would publish work to itself: the queue is refused, and
 * the kick answered. */
START_TEST(used_ring_overlapping_avail_index_is_refused)
{
    uint64_t ram = sim_ram_base(h.sim);

    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, 1ULL << VIRTIO_F_VERSION_1),
                     0);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_NUM, 8);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)ram + 0x1000);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)ram + 0x2002);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)ram + 0x2004);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_READY, 1);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_QUEUE_READY), 0);
    vdriver_driver_ok(&d);
    ck_assert_int_eq(sim_mmio_write(h.sim, 0, d.base + VIRTIO_MMIO_QUEUE_NOTIFY,
                                    4, 0), 0);
    assert_alive();
}
END_TEST

/* ---- grant mode --------------------------------------------------------- */

/* A device in grant mode reaches only what the guest grants, as the guest
 * granted it. Bad grants get the device's defined outcome (NEEDS_RESET,
 * or a chain returned unused), a grant is never left mapped once its
 * chain is used (assert_alive, and the harness at the end), and the
 * device works again after a reset. */
static void setup_grants(void)
{
    const char *specs[] = {"rng,grants=on"};

    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 8 << 20);
    d.grants = true;
}

/* One writable buffer at device address `addr`, published and kicked. */
static void kick_addr(uint64_t addr, uint32_t len)
{
    struct virtq_desc *desc = guest_ring_desc(&d.ring[0], 0);

    *desc = (struct virtq_desc){htole64(addr), htole32(len),
                                htole16(VIRTQ_DESC_F_WRITE), 0};
    guest_ring_publish(&d.ring[0], 0);
    vdriver_kick(&d, 0);
}

START_TEST(a_granted_buffer_is_served_and_unmapped_before_it_is_used)
{
    uint64_t gpa = vdriver_alloc(&d, 3 * 4096, 4096) + 100;
    uint8_t *p = vdriver_ptr(&d, gpa);
    uint64_t addr;
    uint32_t id, len;
    unsigned rings;

    bring_up();
    rings = sim_grants_mapped(h.sim);
    memset(p, 0, 2 * 4096);
    ck_assert_int_eq(sim_grant(h.sim, gpa, 2 * 4096, false, &addr), 0);
    kick_addr(addr, 2 * 4096); /* across three pages */
    ck_assert_int_eq(vdriver_wait_irq(&d, WAIT_MS), VIRTIO_MMIO_INT_VRING);
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    ck_assert_uint_eq(len, 2 * 4096);
    ck_assert(memcmp(p, p + 4096, 4096) != 0); /* random bytes arrived */
    /* Only the rings are still mapped; taking the used chain, the guest
     * ended the buffer's grant (guest_ring_get_used), and could. */
    ck_assert_uint_eq(sim_grants_mapped(h.sim), rings);
    ck_assert_uint_eq(sim_revokes_refused(h.sim), 0);
}
END_TEST

START_TEST(a_reference_never_granted_sets_needs_reset)
{
    bring_up();
    kick_addr((1ULL << 63) | (4000ULL << 12), 64);
    ck_assert(needs_reset());
    assert_alive();
}
END_TEST

START_TEST(a_revoked_grant_sets_needs_reset)
{
    uint64_t gpa = vdriver_alloc(&d, 64, 64), addr;

    bring_up();
    ck_assert_int_eq(sim_grant(h.sim, gpa, 64, false, &addr), 0);
    ck_assert_int_eq(sim_revoke(h.sim, addr, 64), 0);
    kick_addr(addr, 64);
    ck_assert(needs_reset());
    assert_alive();
}
END_TEST

/* The device writes into it: a read-only grant cannot be mapped so. */
START_TEST(a_read_only_grant_for_a_writable_buffer_sets_needs_reset)
{
    uint64_t gpa = vdriver_alloc(&d, 64, 64), addr;
    unsigned rings;

    bring_up();
    rings = sim_grants_mapped(h.sim);
    ck_assert_int_eq(sim_grant(h.sim, gpa, 64, true, &addr), 0);
    kick_addr(addr, 64);
    ck_assert(needs_reset());
    ck_assert_uint_eq(sim_grants_mapped(h.sim), rings);
    assert_alive();
}
END_TEST

/* In grant mode every address is a grant: a guest-physical one is not
 * the device's to use, even one of guest RAM. */
START_TEST(a_plain_address_sets_needs_reset)
{
    bring_up();
    kick_addr(vdriver_alloc(&d, 64, 64), 64);
    ck_assert(needs_reset());
    assert_alive();
}
END_TEST

START_TEST(references_that_wrap_past_2_32_set_needs_reset)
{
    bring_up();
    kick_addr((1ULL << 63) | (0xffffffffULL << 12) | 0xf00, 0x200);
    ck_assert(needs_reset());
    assert_alive();
}
END_TEST

/* More pages than one mapping takes (gntdev caps a request): the chain
 * is returned unused, the device goes on. */
START_TEST(a_chain_of_more_granted_pages_than_a_mapping_takes_is_skipped)
{
    uint64_t gpa = vdriver_alloc(&d, 2 << 20, 4096), addr;
    struct virtq_desc *desc;
    uint32_t id, len;

    bring_up();
    desc = guest_ring_desc(&d.ring[0], 0);
    ck_assert_int_eq(sim_grant(h.sim, gpa, 2 << 20, false, &addr), 0);
    /* 3 x 2 MiB of buffers: 1536 pages; past 4096 with the next ones. */
    for (unsigned i = 0; i < 9; i++)
        desc[i] = (struct virtq_desc){
            htole64(addr), htole32(2 << 20),
            htole16(VIRTQ_DESC_F_WRITE | (i < 8 ? VIRTQ_DESC_F_NEXT : 0)),
            htole16((uint16_t)(i + 1))};
    guest_ring_publish(&d.ring[0], 0);
    vdriver_kick(&d, 0);
    ck_assert(!needs_reset());
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(sim_revokes_refused(h.sim), 0);
}
END_TEST

START_TEST(a_driver_refusing_access_platform_is_refused)
{
    d.grants = false; /* this driver would not use grant DMA */
    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, FEATURES), -EIO);
    d.grants = true;
    assert_alive();
}
END_TEST

/* ---- a second vCPU rewriting the ring ------------------------------------ */


static uint64_t rng_ring; /* where the ring goes at every bring-up */
static uint64_t rng_table, rng_buf;

static void rng_bring_up(void)
{
    vdriver_reset(&d);
    d.alloc_next = rng_ring;
    ck_assert_int_eq(
        vdriver_probe(&d, VIRTIO_ID_RNG, FEATURES | (1ULL << VIRTIO_F_EVENT_IDX)), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 16), 0);
    vdriver_driver_ok(&d);
}

/* 32 bytes asked for in two buffers of an indirect table: 32 given. */
static bool rng_request(unsigned ms)
{
    struct guest_buf b[2] = {{rng_buf, 16, true}, {rng_buf + 16, 16, true}};
    uint16_t head = guest_ring_add_indirect(&d.ring[0], rng_table, b, 2);
    uint32_t len;

    guest_ring_publish(&d.ring[0], head);
    vdriver_kick(&d, 0);
    return scribble_wait_used(&d, 0, &head, 1, ms, &len) && len == 32;
}

/* Another vCPU rewrites descriptors, the avail ring and index and the
 * indirect table, and kicks, while the driver makes requests: xvdm
 * answers every access, touches nothing outside guest RAM, either
 * serves or says NEEDS_RESET, and serves after a reset. */
START_TEST(a_vcpu_rewriting_the_ring_under_requests)
{
    const struct scribble_guest g = {&d, 1, {0}, rng_bring_up, rng_request};
    uint32_t seed = scribble_seed();
    const char *why;

    ck_assert_int_eq(scribble_harness_start(&h, &d, "rng", 8 << 20), 0);
    rng_ring = d.alloc_next;
    rng_bring_up();
    rng_table = vdriver_alloc(&d, 2 * 16, 16);
    rng_buf = vdriver_alloc(&d, 32, 64);
    why = scribble_guest_verdict(&g, seed, rng_table, 2 * 16, WAIT_MS);
    ck_assert_msg(!why, "seed %u: %s", seed, why);
    harness_stop(&h);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("guest");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, descriptor_loop_sets_needs_reset);
    tcase_add_test(tc, buffer_address_past_ram_sets_needs_reset);
    tcase_add_test(tc, buffer_length_overflow_sets_needs_reset);
    tcase_add_test(tc, needs_reset_raises_config_interrupt);
    tcase_add_test(tc, avail_idx_jump_sets_needs_reset);
    tcase_add_test(tc, queue_size_zero_not_ready);
    tcase_add_test(tc, queue_size_not_power_of_two_not_ready);
    tcase_add_test(tc, queue_size_above_max_not_ready);
    tcase_add_test(tc, ring_outside_ram_not_ready);
    tcase_add_test(tc, notify_before_driver_ok_ignored);
    tcase_add_test(tc, notify_bad_queue_index_ignored);
    tcase_add_test(tc, reset_during_work);
    tcase_add_test(tc, config_access_out_of_range);
    tcase_add_test(tc, register_access_sizes);
    tcase_add_test(tc, features_ok_refused_without_version_1);
    tcase_add_test(tc, unclaimed_ioreq_types_answered);
    tcase_add_test(tc, write_to_read_only_register_ignored);
    tcase_add_test(tc, used_ring_overlapping_avail_index_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("grant mode");
    tcase_add_checked_fixture(tc, setup_grants, teardown);
    tcase_add_test(tc,
                   a_granted_buffer_is_served_and_unmapped_before_it_is_used);
    tcase_add_test(tc, a_reference_never_granted_sets_needs_reset);
    tcase_add_test(tc, a_revoked_grant_sets_needs_reset);
    tcase_add_test(tc,
                   a_read_only_grant_for_a_writable_buffer_sets_needs_reset);
    tcase_add_test(tc, a_plain_address_sets_needs_reset);
    tcase_add_test(tc, references_that_wrap_past_2_32_set_needs_reset);
    tcase_add_test(
        tc, a_chain_of_more_granted_pages_than_a_mapping_takes_is_skipped);
    tcase_add_test(tc, a_driver_refusing_access_platform_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrent");
    tcase_add_test(tc, a_vcpu_rewriting_the_ring_under_requests);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(hostile_suite);
}
