/* SPDX-License-Identifier: MIT */
/* Device specs: what --device accepts, what it refuses and how it says so,
 * and the guest layout every device gets. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "devspec.h"
#include "guest-layout.h"

static char err[256];

static void parse_ok(const char *text, struct devspec *s)
{
    ck_assert_msg(devspec_parse(text, s, err, sizeof(err)) == 0, "%s: %s",
                  text, err);
}

static void parse_fails(const char *text, const char *message)
{
    struct devspec s;

    ck_assert_int_eq(devspec_parse(text, &s, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, message), "'%s' gave '%s', wanted '%s'", text,
                  err, message);
}

START_TEST(type_and_options_are_split)
{
    struct devspec s;

    parse_ok("blk,path=/dev/vg/disk,ro=on,base=0x2000400,irq=35", &s);
    ck_assert_str_eq(s.type, "blk");
    ck_assert_uint_eq(s.opts.nr, 2);
    ck_assert_str_eq(xvdm_opt_get(&s.opts, "path"), "/dev/vg/disk");
    ck_assert_str_eq(xvdm_opt_get(&s.opts, "ro"), "on");
    ck_assert(s.base_given && s.irq_given);
    ck_assert_uint_eq(s.base, 0x2000400);
    ck_assert_uint_eq(s.irq, 35);
    ck_assert_ptr_null(xvdm_opt_get(&s.opts, "base"));
    devspec_free(&s);
}
END_TEST

START_TEST(malformed_specs_are_refused_naming_the_bad_part)
{
    parse_fails("", "device type ''");
    parse_fails(",path=x", "device type");
    parse_fails("Blk", "'Blk'");
    parse_fails("rng,=x", "bad option name ''");
    parse_fails("rng,a=1,a=2", "option 'a' given twice");
    parse_fails("rng,irq=33,irq=34", "option 'irq' given twice");
    parse_fails("rng,base=zero", "base='zero'");
    parse_fails("rng,irq=-1", "irq='-1'");
}
END_TEST

START_TEST(default_layout_follows_libxl)
{
    struct devspec s[3];

    parse_ok("rng", &s[0]);
    parse_ok("rng", &s[1]);
    parse_ok("rng", &s[2]);
    ck_assert_int_eq(devspec_assign_layout(s, 3, err, sizeof(err)), 0);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_uint_eq(s[i].base, GUEST_LAYOUT_VIRTIO_MMIO_BASE + 0x200 * i);
        ck_assert_uint_eq(s[i].irq, GUEST_LAYOUT_VIRTIO_MMIO_SPI_FIRST + i);
        devspec_free(&s[i]);
    }
}
END_TEST

/* Devices placed with base= keep their window (and its SPI); the others
 * take the first windows left free, as they would next to libxl's. */
START_TEST(defaults_fill_the_windows_explicit_devices_leave)
{
    struct devspec s[3];

    parse_ok("rng", &s[0]);
    parse_ok("rng,base=0x2000000", &s[1]);
    parse_ok("rng", &s[2]);
    ck_assert_int_eq(devspec_assign_layout(s, 3, err, sizeof(err)), 0);
    ck_assert_uint_eq(s[0].base, 0x2000200);
    ck_assert_uint_eq(s[0].irq, 34);
    ck_assert_uint_eq(s[1].irq, 33);
    ck_assert_uint_eq(s[2].base, 0x2000400);
    ck_assert_uint_eq(s[2].irq, 35);
    for (unsigned i = 0; i < 3; i++)
        devspec_free(&s[i]);
}
END_TEST

static void layout_fails(const char *a, const char *b, const char *message)
{
    struct devspec s[2];

    parse_ok(a, &s[0]);
    parse_ok(b, &s[1]);
    ck_assert_int_eq(devspec_assign_layout(s, 2, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, message), "'%s' wanted '%s'", err, message);
    devspec_free(&s[0]);
    devspec_free(&s[1]);
}

START_TEST(layout_conflicts_are_refused_naming_both_devices)
{
    layout_fails("rng,base=0x2000400", "rng,base=0x2000400",
                 "'rng,base=0x2000400' and 'rng,base=0x2000400' both use");
    layout_fails("rng", "rng,base=0x2000100", "is not 0x200-aligned");
    layout_fails("rng", "rng,base=0x40000000,irq=40", "lies in guest RAM");
    layout_fails("rng", "rng,base=0x3000000",
                 "no default SPI for window 0x3000000: give irq=");
    layout_fails("rng", "rng,irq=31", "irq=31 is not an SPI");
    layout_fails("rng", "rng,irq=1020", "irq=1020 is not an SPI");
}
END_TEST

START_TEST(devices_may_share_an_spi)
{
    struct devspec s[2];

    parse_ok("rng,irq=40", &s[0]);
    parse_ok("rng,irq=40", &s[1]);
    ck_assert_int_eq(devspec_assign_layout(s, 2, err, sizeof(err)), 0);
    devspec_free(&s[0]);
    devspec_free(&s[1]);
}
END_TEST

START_TEST(default_spis_run_out_after_libxls_range)
{
    struct devspec s[12];
    unsigned n = GUEST_LAYOUT_VIRTIO_MMIO_SPI_LAST -
                 GUEST_LAYOUT_VIRTIO_MMIO_SPI_FIRST + 2;

    for (unsigned i = 0; i < n; i++)
        parse_ok("rng", &s[i]);
    ck_assert_int_eq(devspec_assign_layout(s, n, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "give irq="), "%s", err);
    for (unsigned i = 0; i < n; i++)
        devspec_free(&s[i]);
}
END_TEST

static Suite *devspec_suite(void)
{
    Suite *s = suite_create("devspec");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, type_and_options_are_split);
    tcase_add_test(tc, malformed_specs_are_refused_naming_the_bad_part);
    tcase_add_test(tc, default_layout_follows_libxl);
    tcase_add_test(tc, defaults_fill_the_windows_explicit_devices_leave);
    tcase_add_test(tc, layout_conflicts_are_refused_naming_both_devices);
    tcase_add_test(tc, devices_may_share_an_spi);
    tcase_add_test(tc, default_spis_run_out_after_libxls_range);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(devspec_suite());
}
