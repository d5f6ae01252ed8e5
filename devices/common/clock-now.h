/* SPDX-License-Identifier: MIT */
/* The monotonic clock as one number, for the modules' deadlines and rate
 * limits: header-only, since a module links nothing but the device ABI. */
#ifndef XVDM_CLOCK_NOW_H
#define XVDM_CLOCK_NOW_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline uint64_t clock_now_ms(void)
{
    return clock_now_ns() / 1000000u;
}

#endif
