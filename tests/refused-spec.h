/* SPDX-License-Identifier: MIT */
/* Test side: device specs xvdm must refuse to start with, saying why. */
#ifndef XVDM_TEST_REFUSED_SPEC_H
#define XVDM_TEST_REFUSED_SPEC_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "log-lines.h"

static struct harness *refused_harness;
static char refused_spec[256];

static inline void refused_start(void)
{
    const char *specs[] = {refused_spec};

    ck_assert_int_ne(harness_start(refused_harness, specs, 1), 0);
}

/* xvdm does not start with "<type>,<opts>" ("%s" in opts: path, the
 * stand-in's node), and says why naming `value`. */
static inline void expect_refused_spec(struct harness *h, const char *type,
                                       const char *opts, const char *path,
                                       const char *value)
{
    const char *at = strstr(opts, "%s");

    refused_harness = h;
    if (at)
        snprintf(refused_spec, sizeof(refused_spec), "%s,%.*s%s%s", type,
                 (int)(at - opts), opts, path, at + 2);
    else
        snprintf(refused_spec, sizeof(refused_spec), "%s,%s", type, opts);
    ck_assert_msg(log_lines_during(refused_start, value) >= 1,
                  "'%s': '%s' not named", refused_spec, value);
}

#endif
