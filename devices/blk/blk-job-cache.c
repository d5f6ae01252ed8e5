/* SPDX-License-Identifier: MIT */
/* A bounded free list of virtio-blk jobs (see blk-job-cache.h). */
#include <stdlib.h>

#include "blk-job-cache.h"

void blk_job_cache_init(struct blk_job_cache *c, unsigned max)
{
    *c = (struct blk_job_cache){.max = max};
}

struct blk_job *blk_job_get(struct blk_job_cache *c)
{
    struct blk_job *job = c->free;

    if (!job)
        return malloc(sizeof(*job));
    c->free = job->next;
    c->count--;
    return job;
}

void blk_job_put(struct blk_job_cache *c, struct blk_job *job)
{
    if (c->count == c->max) {
        free(job);
        return;
    }
    job->next = c->free;
    c->free = job;
    c->count++;
}

void blk_job_put_list(struct blk_job_cache *c, struct blk_job *list)
{
    struct blk_job *next;

    for (; list; list = next) {
        next = list->next;
        blk_job_put(c, list);
    }
}

void blk_job_cache_drain(struct blk_job_cache *c)
{
    struct blk_job *job;

    while ((job = c->free)) {
        c->free = job->next;
        free(job);
    }
    c->count = 0;
}
