/* SPDX-License-Identifier: MIT */
/* Logging: level names, and the rate limit that keeps a hostile guest from
 * flooding dom0's log. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "log.h"

START_TEST(level_names_parse_and_unknown_ones_are_refused)
{
    enum log_level level;

    ck_assert_int_eq(log_level_parse("debug", &level), 0);
    ck_assert_int_eq(level, LOG_LVL_DEBUG);
    ck_assert_int_eq(log_level_parse("WARN", &level), 0);
    ck_assert_int_eq(level, LOG_LVL_WARN);
    ck_assert_int_eq(log_level_parse("loud", &level), -EINVAL);
}
END_TEST

START_TEST(burst_is_allowed_then_lines_are_suppressed_and_counted)
{
    struct ratelimit rl = {0};
    unsigned suppressed;

    for (int i = 0; i < RATELIMIT_BURST; i++)
        ck_assert(ratelimit_allow(&rl, &suppressed));
    for (int i = 0; i < 1000; i++)
        ck_assert(!ratelimit_allow(&rl, &suppressed));
    /* A new window opens: the first line reports what was dropped. */
    rl.window_start_ns -= (RATELIMIT_INTERVAL_S + 1) * 1000000000ULL;
    ck_assert(ratelimit_allow(&rl, &suppressed));
    ck_assert_uint_eq(suppressed, 1000);
    ck_assert(ratelimit_allow(&rl, &suppressed));
    ck_assert_uint_eq(suppressed, 0);
}
END_TEST

/* Capture what log functions write to stderr. */
static char *capture_stderr(void (*fn)(void))
{
    static char buf[65536];
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return buf;
}

static void flood(void)
{
    struct ratelimit rl = {0};

    log_init(LOG_LVL_INFO, false, 7);
    for (int i = 0; i < 10000; i++)
        log_ratelimited(&rl, "rng0: ", "bad descriptor %d", i);
}

START_TEST(a_flood_of_guest_errors_prints_one_burst_with_domain_prefix)
{
    char *out = capture_stderr(flood);
    unsigned lines = 0;

    for (char *p = out; (p = strchr(p, '\n')); p++)
        lines++;
    ck_assert_uint_eq(lines, RATELIMIT_BURST);
    ck_assert_ptr_nonnull(strstr(out, "xvdm: dom7: rng0: bad descriptor 0\n"));
}
END_TEST

static void debug_when_info(void)
{
    log_init(LOG_LVL_INFO, false, -1);
    log_debug("hidden");
    log_info("shown");
}

START_TEST(lines_above_the_level_are_dropped)
{
    ck_assert_str_eq(capture_stderr(debug_when_info), "xvdm: shown\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");

    tcase_add_test(tc, level_names_parse_and_unknown_ones_are_refused);
    tcase_add_test(tc, burst_is_allowed_then_lines_are_suppressed_and_counted);
    tcase_add_test(tc,
                   a_flood_of_guest_errors_prints_one_burst_with_domain_prefix);
    tcase_add_test(tc, lines_above_the_level_are_dropped);
    suite_add_tcase(s, tc);
    return check_run(s);
}
