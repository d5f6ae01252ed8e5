/* SPDX-License-Identifier: MIT */
/* One logging family for all of xvdm: levels, a domain prefix on every
 * line, stderr or syslog, and rate limiting for guest-caused messages. */
#ifndef XVDM_LOG_H
#define XVDM_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xvdm/device.h>

enum log_level {
    LOG_LVL_ERROR = XVDM_LOG_ERROR,
    LOG_LVL_WARN = XVDM_LOG_WARN,
    LOG_LVL_INFO = XVDM_LOG_INFO,
    LOG_LVL_DEBUG = XVDM_LOG_DEBUG,
};

/* Messages above `level` are dropped. to_syslog: use syslog(3) instead of
 * stderr. domid: printed in every line ("dom5"), or none when < 0. */
void log_init(enum log_level level, bool to_syslog, int64_t domid);
/* "error", "warn", "info", "debug" -> level; -EINVAL for anything else. */
int log_level_parse(const char *name, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *prefix, const char *fmt,
              va_list ap) __attribute__((format(printf, 3, 0)));

#define log_err(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* A token bucket: at most RATELIMIT_BURST lines per RATELIMIT_INTERVAL_S.
 * When lines were dropped, the next allowed line says how many. */
#define RATELIMIT_BURST 10
#define RATELIMIT_INTERVAL_S 5

struct ratelimit {
    uint64_t window_start_ns;
    unsigned printed;
    unsigned suppressed;
};

/* CLOCK_MONOTONIC in nanoseconds: rate limits, the loop's polling, the
 * counters' drain times. */
uint64_t monotonic_ns(void);

/* True when a line may be printed now. *suppressed_before is set to the
 * number of lines dropped since the last allowed one. */
bool ratelimit_allow(struct ratelimit *rl, unsigned *suppressed_before);

/* Log at WARN through `rl`, prefixed with `prefix` (may be NULL). */
void log_ratelimited(struct ratelimit *rl, const char *prefix,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vratelimited(struct ratelimit *rl, const char *prefix,
                      const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* For parsers that hand their error to the caller to print: write one
 * line into err (no newline) and return -EINVAL. */
int errbuf_printf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
