/* SPDX-License-Identifier: MIT */
/* Test side: run one Check suite as a test program's whole job. */
#ifndef XVDM_TEST_CHECK_RUN_H
#define XVDM_TEST_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

/* Run every test of s (each in its own process, Check's default, so one
 * crash fails one test) and give the exit status for make check. */
static inline int check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
