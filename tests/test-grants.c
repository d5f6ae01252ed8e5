/* SPDX-License-Identifier: MIT */
/*
 * Grant mode against a hostile guest: a device in grant mode reaches only
 * what the guest grants, as the guest granted it. Bad grants get the
 * device's defined outcome (NEEDS_RESET, or a chain returned unused), a
 * grant is never left mapped once its chain is used, and the device
 * works again after a reset. The rest of the suites run in grant mode
 * too (check_run_both_modes).
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
#include "vdriver.h"

#define WAIT_MS 5000
#define FEATURES                                                              \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC))

static struct harness h;
static struct vdriver d;

static void setup(void)
{
    const char *specs[] = {"rng,grants=on"};

    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 8 << 20);
    d.grants = true;
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

static bool needs_reset(void)
{
    return vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET;
}

/* A good request completes, and its grants end: nothing stays mapped. */
static void assert_alive(void)
{
    struct guest_buf b;
    uint32_t id, len;

    vdriver_reset(&d);
    bring_up();
    b = (struct guest_buf){vdriver_alloc(&d, 64, 64), 64, true};
    guest_ring_publish(&d.ring[0], guest_ring_add_chain(&d.ring[0], &b, 1));
    vdriver_kick(&d, 0);
    ck_assert_int_eq(vdriver_wait_irq(&d, WAIT_MS), VIRTIO_MMIO_INT_VRING);
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    ck_assert_uint_eq(len, 64);
    ck_assert_uint_eq(sim_revokes_refused(h.sim), 0);
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

static Suite *grants_suite(void)
{
    Suite *s = suite_create("grants");
    TCase *tc = tcase_create("grant mode");

    tcase_add_checked_fixture(tc, setup, teardown);
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
    return s;
}

int main(void)
{
    return check_run(grants_suite());
}
