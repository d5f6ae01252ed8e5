/* SPDX-License-Identifier: MIT */
/*
 * blk,rbd= specs refused before any cluster is asked, each naming what
 * is wrong: options for another backing, two backings, and (built with
 * librbd) an image name that is not POOL/IMAGE or a configuration that
 * cannot be read, or (built without) rbd= at all, naming librbd; and
 * that librbd is loaded only for a device with rbd=. The tests against a
 * Ceph cluster are test-blk-rbd (`make check-ceph`).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "refused-spec.h"

START_TEST(options_for_another_backing_or_two_backings_are_refused)
{
    expect_spec_refused("blk,rbd=rbd/x,direct=on",
                        "direct= is for path=, not rbd='rbd/x'");
    expect_spec_refused("blk,path=/dev/null,conf=/etc/ceph/ceph.conf",
                        "conf= is for rbd=, not path='/dev/null'");
    expect_spec_refused("blk,path=/dev/null,rbd=rbd/x", "give one of them");
}
END_TEST

#ifdef HAVE_LIBRBD
START_TEST(a_bad_name_or_configuration_is_refused_naming_it)
{
    expect_spec_refused("blk,rbd=noslash,conf=/dev/null",
                        "rbd='noslash': not POOL/IMAGE");
    expect_spec_refused("blk,rbd=rbd/x@,conf=/dev/null",
                        "rbd='rbd/x@': not POOL/IMAGE");
    expect_spec_refused("blk,rbd=rbd/x,conf=/nonexistent/ceph.conf",
                        "rbd='rbd/x': cannot read the Ceph configuration");
}
END_TEST

/* Is librbd mapped into this process? */
static bool librbd_loaded(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[4096];
    bool found = false;

    ck_assert_ptr_nonnull(maps);
    while (!found && fgets(line, sizeof(line), maps))
        found = strstr(line, "/librbd.so") != NULL;
    fclose(maps);
    return found;
}

/* librbd and the Ceph libraries under it (about 24 MiB) are loaded only
 * for a device with rbd=, not with blk.so for every disk. */
START_TEST(librbd_is_loaded_only_for_an_rbd_device)
{
    char disk[] = "/tmp/xvdm-rbd-spec-XXXXXX", spec[64];
    const char *specs[] = {spec};
    struct harness h;
    int fd = mkstemp(disk);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
    close(fd);
    snprintf(spec, sizeof(spec), "blk,path=%s", disk);
    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    ck_assert(!librbd_loaded());
    harness_stop(&h);
    unlink(disk);
    expect_spec_refused("blk,rbd=rbd/x,conf=/nonexistent/ceph.conf",
                        "cannot read the Ceph configuration");
    ck_assert(librbd_loaded());
}
END_TEST
#else
START_TEST(rbd_is_refused_naming_librbd_when_built_without_it)
{
    expect_backing_refused_built_without("rbd", "rbd/x", "librbd");
}
END_TEST
#endif

static Suite *blk_rbd_spec_suite(void)
{
    Suite *s = suite_create("blk-rbd-spec");
    TCase *tc = tcase_create("spec");

    tcase_add_test(tc, options_for_another_backing_or_two_backings_are_refused);
#ifdef HAVE_LIBRBD
    tcase_add_test(tc, a_bad_name_or_configuration_is_refused_naming_it);
    tcase_add_test(tc, librbd_is_loaded_only_for_an_rbd_device);
#else
    tcase_add_test(tc, rbd_is_refused_naming_librbd_when_built_without_it);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(blk_rbd_spec_suite());
}
