/* SPDX-License-Identifier: MIT */
/* Test side: count what xvdm logs (to stderr) while something runs, for
 * checks that a guest cannot flood dom0's log. */
#ifndef XVDM_TEST_LOG_LINES_H
#define XVDM_TEST_LOG_LINES_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Lines on stderr containing `containing` while fn runs. */
static inline unsigned log_lines_during(void (*fn)(void),
                                        const char *containing)
{
    char path[] = "/tmp/xvdm-log-XXXXXX", line[512];
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    unsigned n = 0;
    FILE *f;

    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    f = fdopen(fd, "r");
    rewind(f);
    while (fgets(line, sizeof(line), f))
        n += strstr(line, containing) != NULL;
    fclose(f);
    unlink(path);
    return n;
}

#endif
