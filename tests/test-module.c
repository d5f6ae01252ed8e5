/* SPDX-License-Identifier: MIT */
/* Device modules: loading by type, refusing what does not fit, listing. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "dev.h"
#include "loop.h"
#include "module.h"

static const char *dir(const char *var)
{
    const char *d = getenv(var);

    ck_assert_msg(d != NULL, "%s must be set (make check sets it)", var);
    return d;
}

START_TEST(rng_module_loads_with_its_ops)
{
    struct module mod;
    char err[512];

    ck_assert_int_eq(module_load(&mod, dir("XVDM_MODULE_DIR"), "rng", err,
                                 sizeof(err)), 0);
    ck_assert_str_eq(mod.ops->name, "rng");
    ck_assert_uint_eq(mod.ops->device_id, 4);
    module_unload(&mod);
}
END_TEST

START_TEST(unknown_type_is_named_with_the_types_available)
{
    struct module mod;
    char err[512];

    ck_assert_int_eq(module_load(&mod, dir("XVDM_MODULE_DIR"), "floppy", err,
                                 sizeof(err)), -ENOENT);
    ck_assert_msg(strstr(err, "'floppy'") && strstr(err, "rng"), "%s", err);
}
END_TEST

START_TEST(type_with_a_path_is_refused)
{
    struct module mod;
    char err[512];

    ck_assert_int_eq(module_load(&mod, "/", "../etc/rng", err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(strstr(err, "../etc/rng"), "%s", err);
}
END_TEST

START_TEST(module_of_another_abi_version_is_refused_naming_both)
{
    struct module mod;
    char err[512], want[64];

    ck_assert_int_eq(module_load(&mod, dir("XVDM_TEST_MODULE_DIR"), "bad-abi",
                                 err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "ABI version %u, this xvdm needs %u",
             XVDM_DEVICE_ABI_VERSION + 1, XVDM_DEVICE_ABI_VERSION);
    ck_assert_msg(strstr(err, want), "%s", err);
    ck_assert_ptr_null(mod.handle);
}
END_TEST

START_TEST(module_of_abi_version_1_loads_and_is_never_asked_to_reload)
{
    struct xvdm_options opts = {0};
    struct loop *loop = loop_create();
    struct xvdm_dev *dev;
    struct module mod;
    char err[512];

    ck_assert_int_eq(module_load(&mod, dir("XVDM_TEST_MODULE_DIR"), "v1-abi",
                                 err, sizeof(err)),
                     0);
    ck_assert_int_eq(dev_create(&dev, mod.ops, &opts, 0, 1, loop, NULL, NULL),
                     0);
    dev_reload(dev); /* reading its reload field would abort */
    dev_destroy(dev);
    module_unload(&mod);
    loop_destroy(loop);
}
END_TEST

START_TEST(list_shows_each_module_with_id_and_summary)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);

    ck_assert_int_ge(module_list(dir("XVDM_MODULE_DIR"), out), 1);
    fclose(out);
    ck_assert_msg(strstr(buf, "rng") && strstr(buf, "virtio id 4"), "%s",
                  buf);
    free(buf);
}
END_TEST

static Suite *module_suite(void)
{
    Suite *s = suite_create("module");
    TCase *tc = tcase_create("load");

    tcase_add_test(tc, rng_module_loads_with_its_ops);
    tcase_add_test(tc, unknown_type_is_named_with_the_types_available);
    tcase_add_test(tc, type_with_a_path_is_refused);
    tcase_add_test(tc, module_of_another_abi_version_is_refused_naming_both);
    tcase_add_test(tc,
                   module_of_abi_version_1_loads_and_is_never_asked_to_reload);
    tcase_add_test(tc, list_shows_each_module_with_id_and_summary);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(module_suite());
}
