/* SPDX-License-Identifier: MIT */
/* Test side: device specs xvdm must refuse to start with, saying why in
 * a line that names the bad value. */
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

static inline void refused_expect(struct harness *h, const char *value)
{
    refused_harness = h;
    ck_assert_msg(log_lines_during(refused_start, value) >= 1,
                  "'%s': '%s' not named", refused_spec, value);
}

/* xvdm does not start with the one device `spec`, and a line it logs
 * names `value`. */
static inline void expect_spec_refused(const char *spec, const char *value)
{
    static struct harness h;

    snprintf(refused_spec, sizeof(refused_spec), "%s", spec);
    refused_expect(&h, value);
}

/* The same for "<type>,<opts>" ("%s" in opts: path, the stand-in's
 * node), started on h. */
static inline void expect_refused_spec(struct harness *h, const char *type,
                                       const char *opts, const char *path,
                                       const char *value)
{
    const char *at = strstr(opts, "%s");

    if (at)
        snprintf(refused_spec, sizeof(refused_spec), "%s,%.*s%s%s", type,
                 (int)(at - opts), opts, path, at + 2);
    else
        snprintf(refused_spec, sizeof(refused_spec), "%s,%s", type, opts);
    refused_expect(h, value);
}

/* blk with `backing`=`value` on an xvdm built without `library`, which
 * that backing needs: refused, naming the value and the library. */
static inline void expect_backing_refused_built_without(const char *backing,
                                                        const char *value,
                                                        const char *library)
{
    char spec[128], named[192];

    snprintf(spec, sizeof(spec), "blk,%s=%s", backing, value);
    snprintf(named, sizeof(named), "%s='%s': this xvdm was built without %s",
             backing, value, library);
    expect_spec_refused(spec, named);
}

#endif
