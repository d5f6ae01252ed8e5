/* SPDX-License-Identifier: MIT */
/*
 * Running tools/vnc-screenshot from a test: the tool is built beside
 * xvdm ($XVDM_BINARY's directory).
 */
#ifndef XVDM_TESTS_VNC_SCREENSHOT_RUN_H
#define XVDM_TESTS_VNC_SCREENSHOT_RUN_H

#include <check.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* tools/vnc-screenshot run on ARGS (its arguments, NULL-ended); its exit
 * status. */
static int vnc_screenshot_run(char *const args[])
{
    char tool[4096], *dir = strdup(getenv("XVDM_BINARY"));
    char *argv[8] = {tool};
    pid_t pid;
    int status;

    snprintf(tool, sizeof(tool), "%s/tools/vnc-screenshot", dirname(dir));
    free(dir);
    for (int i = 0; args[i]; i++) {
        ck_assert_int_lt(i + 1, 7);
        argv[i + 1] = args[i];
    }
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execv(tool, argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#endif
