/* SPDX-License-Identifier: MIT */
/*
 * Finished virtio-blk jobs kept for the next requests. A job is about 5 KiB
 * (two iovec arrays and the discard ranges); allocating and freeing one per
 * request was a fifth of xvdm's instructions for a 4 KiB read. The cache is
 * bounded, so a guest that once had many requests in flight does not keep
 * that memory pinned, and it belongs to the loop thread: engines hand jobs
 * back there before they are put.
 */
#ifndef XVDM_BLK_JOB_CACHE_H
#define XVDM_BLK_JOB_CACHE_H

#include "blk-pool.h"

struct blk_job_cache {
    struct blk_job *free; /* linked by next */
    unsigned count;
    unsigned max;
};

void blk_job_cache_init(struct blk_job_cache *c, unsigned max);
/* A cached job, or a new one; NULL when out of memory. */
struct blk_job *blk_job_get(struct blk_job_cache *c);
/* Keep the job for reuse, or free it when the cache is full. */
void blk_job_put(struct blk_job_cache *c, struct blk_job *job);
/* Put every job of a list linked by next. */
void blk_job_put_list(struct blk_job_cache *c, struct blk_job *list);
/* Free every cached job. */
void blk_job_cache_drain(struct blk_job_cache *c);

#endif
