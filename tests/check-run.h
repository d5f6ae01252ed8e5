/* SPDX-License-Identifier: MIT */
/* Test side: run one Check suite as a test program's whole job. */
#ifndef XVDM_TEST_CHECK_RUN_H
#define XVDM_TEST_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* A suite `name` of the one test case `case_name`, each of whose tests
 * may take timeout_s (Check's default, 4 s, is short for those waiting
 * on servers and timers): the suite; *tc, its case, for the tests. */
static inline Suite *check_suite_of_one_case(const char *name,
                                             const char *case_name,
                                             double timeout_s, TCase **tc)
{
    Suite *s = suite_create(name);

    *tc = tcase_create(case_name);
    tcase_set_timeout(*tc, timeout_s);
    suite_add_tcase(s, *tc);
    return s;
}

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

/* Run every test of the suite in each way xvdm reaches a guest: with the
 * guest's memory mapped (foreign mode); with the guest granting what it
 * shares and the devices in grant mode ($XVDM_TEST_GRANTS=1: the harness
 * and vdriver read it); and with the host answering kicks and raising
 * interrupts itself, the fast path ($XVDM_TEST_FASTPATH=1: the harness's
 * sim offers ioeventfd and irqfd). */
static inline int check_run_all_modes(Suite *(*make_suite)(void))
{
    int foreign = check_run(make_suite()), grants, fast;

    setenv("XVDM_TEST_GRANTS", "1", 1);
    grants = check_run(make_suite());
    unsetenv("XVDM_TEST_GRANTS");
    setenv("XVDM_TEST_FASTPATH", "1", 1);
    fast = check_run(make_suite());
    unsetenv("XVDM_TEST_FASTPATH");
    if (foreign != EXIT_SUCCESS)
        return foreign;
    return grants == EXIT_SUCCESS ? fast : grants;
}

/* Run fn(arg) in a process of its own, for what must not outlive it in
 * the test's process (a seccomp filter, dropped privileges: Check's own
 * bookkeeping after a test needs more). Passes when fn returned 0; else
 * fails naming `what` and fn's value (which step failed). */
static inline void check_in_child(const char *what, int (*fn)(const void *),
                                  const void *arg)
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn(arg));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s: status 0x%x", what, status);
}

#endif
