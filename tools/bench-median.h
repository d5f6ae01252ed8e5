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

#define BENCH_ROUNDS_MAX 16

/* A row of rounds measured in pairs, xvdm (x) and direct (y) one right
 * after the other. The ratio is the median of the pairs' own ratios: the
 * machine drifts over minutes (a VM's disk by half), and a slow stretch
 * weighs on both sides of a pair alike. lo and hi show the pairs' spread,
 * x_lo..x_hi and y_lo..y_hi each side's. */
struct bench_row {
    double x, y, ratio, lo, hi;
    double x_lo, x_hi, y_lo, y_hi;
};

static inline struct bench_row bench_pairs(const double *x, const double *y,
                                           unsigned n)
{
    double a[BENCH_ROUNDS_MAX], b[BENCH_ROUNDS_MAX], r[BENCH_ROUNDS_MAX];
    struct bench_row row;

    for (unsigned i = 0; i < n; i++) {
        a[i] = x[i];
        b[i] = y[i];
        r[i] = x[i] / y[i];
    }
    row.x = bench_median(a, n);
    row.y = bench_median(b, n);
    row.ratio = bench_median(r, n);
    row.lo = r[0];
    row.hi = r[n - 1];
    row.x_lo = a[0];
    row.x_hi = a[n - 1];
    row.y_lo = b[0];
    row.y_hi = b[n - 1];
    return row;
}

#endif
