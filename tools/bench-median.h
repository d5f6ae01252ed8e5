/* SPDX-License-Identifier: MIT */
/* Benchmarks report the median of their rounds: one slow round (another
 * process, a page-cache flush) must not move the figure. */
#ifndef XVDM_BENCH_MEDIAN_H
#define XVDM_BENCH_MEDIAN_H

#include <stdlib.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Sorts v. */
static inline double bench_median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
