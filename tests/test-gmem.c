/* SPDX-License-Identifier: MIT */
/* Guest memory translation: the one place a guest address becomes a
 * pointer must refuse everything not wholly inside one mapped region. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "check-run.h"
#include "gmem.h"

static uint8_t bank0[4096], bank1[8192];

static void two_banks(struct gmem *mem)
{
    *mem = (struct gmem){0};
    ck_assert_int_eq(gmem_add(mem, 0x200000000ULL, sizeof(bank1), bank1), 0);
    ck_assert_int_eq(gmem_add(mem, 0x40000000ULL, sizeof(bank0), bank0), 0);
}

START_TEST(address_inside_a_region_maps_to_its_host_pointer)
{
    struct gmem mem;

    two_banks(&mem);
    ck_assert_ptr_eq(gmem_translate(&mem, 0x40000000ULL, 16), bank0);
    ck_assert_ptr_eq(gmem_translate(&mem, 0x40000010ULL, 4096 - 16),
                     bank0 + 16);
    ck_assert_ptr_eq(gmem_translate(&mem, 0x200000100ULL, 8), bank1 + 0x100);
}
END_TEST

START_TEST(range_crossing_the_end_of_a_region_is_refused)
{
    struct gmem mem;

    two_banks(&mem);
    ck_assert_ptr_null(gmem_translate(&mem, 0x40000000ULL, 4097));
    ck_assert_ptr_null(gmem_translate(&mem, 0x40000ff8ULL, 16));
}
END_TEST

START_TEST(address_outside_every_region_is_refused)
{
    struct gmem mem;

    two_banks(&mem);
    ck_assert_ptr_null(gmem_translate(&mem, 0, 1));
    ck_assert_ptr_null(gmem_translate(&mem, 0x3fffffffULL, 1));
    ck_assert_ptr_null(gmem_translate(&mem, 0x40001000ULL, 1));
    ck_assert_ptr_null(gmem_translate(&mem, 0x200002000ULL, 1));
}
END_TEST

START_TEST(lengths_that_would_wrap_past_2_64_are_refused)
{
    struct gmem mem;

    two_banks(&mem);
    ck_assert_ptr_null(gmem_translate(&mem, 0x40000010ULL, UINT64_MAX));
    ck_assert_ptr_null(gmem_translate(&mem, UINT64_MAX, 2));
    ck_assert_ptr_null(gmem_translate(&mem, 0x40000010ULL, UINT64_MAX - 8));
}
END_TEST

START_TEST(empty_range_at_the_end_of_a_region_is_allowed)
{
    struct gmem mem;

    two_banks(&mem);
    ck_assert_ptr_eq(gmem_translate(&mem, 0x40001000ULL, 0), bank0 + 4096);
}
END_TEST

START_TEST(adjacent_regions_apart_in_host_memory_stay_two)
{
    static uint8_t buf[3 * 4096];
    struct gmem mem = {0};

    ck_assert_int_eq(gmem_add(&mem, 0x1000, 4096, buf), 0);
    ck_assert_int_eq(gmem_add(&mem, 0x2000, 4096, buf + 8192), 0);
    ck_assert_ptr_eq(gmem_translate(&mem, 0x2000, 8), buf + 8192);
    /* The host bytes after the first region are not the guest's: no
     * range may span the two. */
    ck_assert_ptr_null(gmem_translate(&mem, 0x1ff8, 16));
    ck_assert_uint_eq(mem.nr, 2);
}
END_TEST

/* A bank mapped in chunks at consecutive host addresses is one range: a
 * buffer across a chunk's end is served like any other. */
START_TEST(a_region_continuing_the_last_one_merges_with_it)
{
    static uint8_t buf[2 * 4096];
    struct gmem mem = {0};

    ck_assert_int_eq(gmem_add(&mem, 0x1000, 4096, buf), 0);
    ck_assert_int_eq(gmem_add(&mem, 0x2000, 4096, buf + 4096), 0);
    ck_assert_uint_eq(mem.nr, 1);
    ck_assert_ptr_eq(gmem_translate(&mem, 0x1ff8, 16), buf + 0xff8);
    ck_assert_ptr_null(gmem_translate(&mem, 0x1ff8, 0x1009));
}
END_TEST

START_TEST(overlapping_or_empty_regions_are_rejected)
{
    struct gmem mem;

    two_banks(&mem);
    ck_assert_int_eq(gmem_add(&mem, 0x40000800ULL, 4096, bank0), -EEXIST);
    ck_assert_int_eq(gmem_add(&mem, 0x3ffff800ULL, 4096, bank0), -EEXIST);
    ck_assert_int_eq(gmem_add(&mem, 0x50000000ULL, 0, bank0), -EINVAL);
    ck_assert_int_eq(gmem_add(&mem, UINT64_MAX - 10, 4096, bank0), -EINVAL);
}
END_TEST

START_TEST(table_full_is_reported)
{
    static uint8_t page[16];
    struct gmem mem = {0};
    unsigned i;

    for (i = 0; i < GMEM_REGIONS_MAX; i++)
        ck_assert_int_eq(gmem_add(&mem, (uint64_t)i * 0x1000, 16, page), 0);
    ck_assert_int_eq(gmem_add(&mem, (uint64_t)i * 0x1000, 16, page),
                     -ENOSPC);
}
END_TEST

static Suite *gmem_suite(void)
{
    Suite *s = suite_create("gmem");
    TCase *tc = tcase_create("translate");

    tcase_add_test(tc, address_inside_a_region_maps_to_its_host_pointer);
    tcase_add_test(tc, range_crossing_the_end_of_a_region_is_refused);
    tcase_add_test(tc, address_outside_every_region_is_refused);
    tcase_add_test(tc, lengths_that_would_wrap_past_2_64_are_refused);
    tcase_add_test(tc, empty_range_at_the_end_of_a_region_is_allowed);
    tcase_add_test(tc, adjacent_regions_apart_in_host_memory_stay_two);
    tcase_add_test(tc, a_region_continuing_the_last_one_merges_with_it);
    tcase_add_test(tc, overlapping_or_empty_regions_are_rejected);
    tcase_add_test(tc, table_full_is_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(gmem_suite());
}
