/* SPDX-License-Identifier: MIT */
/* Test side: a device spec xvdm must refuse, saying why in a line that
 * names the bad value. */
#ifndef XVDM_TEST_SPEC_REFUSED_H
#define XVDM_TEST_SPEC_REFUSED_H

#include <check.h>

#include "harness.h"
#include "log-lines.h"

static const char *spec_refused_spec;

static inline void spec_refused_start(void)
{
    struct harness h;
    const char *specs[] = {spec_refused_spec};

    ck_assert_int_ne(harness_start(&h, specs, 1), 0);
}

/* xvdm does not start with the one device `spec`, and a line it logs
 * names `value`. */
static inline void expect_spec_refused(const char *spec, const char *value)
{
    spec_refused_spec = spec;
    ck_assert_msg(log_lines_during(spec_refused_start, value) >= 1,
                  "'%s': '%s' not named", spec, value);
}

#endif
