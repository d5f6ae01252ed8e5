/* SPDX-License-Identifier: MIT */
/* Logging: one prefix per line ("xvdm[dom5]: "), stderr or syslog, and a
 * token bucket per source of guest-caused messages. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static enum log_level log_level = LOG_LVL_INFO;
static bool log_to_syslog;
/* "dom5: " for syslog, whose ident is "xvdm" already; empty without a domid. */
static char log_dom[32];

static const char *const level_names[] = {
    [LOG_LVL_ERROR] = "error",
    [LOG_LVL_WARN] = "warn",
    [LOG_LVL_INFO] = "info",
    [LOG_LVL_DEBUG] = "debug",
};

void log_init(enum log_level level, bool to_syslog, int64_t domid)
{
    log_level = level;
    if (domid >= 0)
        snprintf(log_dom, sizeof(log_dom), "dom%lld: ", (long long)domid);
    else
        log_dom[0] = '\0';
    if (to_syslog && !log_to_syslog)
        openlog("xvdm", LOG_PID | LOG_NDELAY, LOG_DAEMON); /* before chroot */
    log_to_syslog = to_syslog;
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
         i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int syslog_priority(enum log_level level)
{
    switch (level) {
    case LOG_LVL_ERROR:
        return LOG_ERR;
    case LOG_LVL_WARN:
        return LOG_WARNING;
    case LOG_LVL_INFO:
        return LOG_INFO;
    default:
        return LOG_DEBUG;
    }
}

void log_vmsg(enum log_level level, const char *prefix, const char *fmt,
              va_list ap)
{
    char msg[1024];

    if (level > log_level)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (log_to_syslog)
        syslog(syslog_priority(level), "%s%s%s", log_dom, prefix ? prefix : "",
               msg);
    else
        fprintf(stderr, "xvdm: %s%s%s\n", log_dom, prefix ? prefix : "", msg);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, NULL, fmt, ap);
    va_end(ap);
}

uint64_t monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

bool ratelimit_allow(struct ratelimit *rl, unsigned *suppressed_before)
{
    uint64_t now = monotonic_ns();

    *suppressed_before = 0;
    if (rl->window_start_ns == 0 ||
        now - rl->window_start_ns >= RATELIMIT_INTERVAL_S * 1000000000ULL) {
        rl->window_start_ns = now;
        rl->printed = 0;
    }
    if (rl->printed >= RATELIMIT_BURST) {
        rl->suppressed++;
        return false;
    }
    rl->printed++;
    *suppressed_before = rl->suppressed;
    rl->suppressed = 0;
    return true;
}

void log_vratelimited(struct ratelimit *rl, const char *prefix,
                      const char *fmt, va_list ap)
{
    unsigned suppressed;

    if (LOG_LVL_WARN > log_level || !ratelimit_allow(rl, &suppressed))
        return;
    if (suppressed)
        log_msg(LOG_LVL_WARN, "%s%u similar messages suppressed",
                prefix ? prefix : "", suppressed);
    log_vmsg(LOG_LVL_WARN, prefix, fmt, ap);
}

void log_ratelimited(struct ratelimit *rl, const char *prefix,
                     const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vratelimited(rl, prefix, fmt, ap);
    va_end(ap);
}

int errbuf_printf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}
