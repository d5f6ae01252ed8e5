/* SPDX-License-Identifier: MIT */
/* Worker threads for virtio-blk requests (see blk-pool.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk-pool.h"

#define BLK_WORKERS_MAX 64

struct blk_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;  /* a job was queued, or stopping */
    pthread_cond_t idle;  /* busy dropped to 0 */
    struct blk_job *queued, **queued_tail;
    struct blk_job *done;
    unsigned busy; /* queued + running */
    bool stopping;
    int efd;
    blk_exec_fn *exec;
    void *ctx;
    unsigned nworkers;
    pthread_t worker[BLK_WORKERS_MAX];
};

static struct blk_job *pool_next_job(struct blk_pool *p)
{
    struct blk_job *job;

    while (!p->queued && !p->stopping)
        pthread_cond_wait(&p->work, &p->lock);
    job = p->queued;
    if (job) {
        p->queued = job->next;
        if (!p->queued)
            p->queued_tail = &p->queued;
    }
    return job;
}

static void pool_finish(struct blk_pool *p, struct blk_job *job)
{
    uint64_t one = 1;
    bool first = !p->done;

    job->next = p->done;
    p->done = job;
    if (--p->busy == 0)
        pthread_cond_broadcast(&p->idle);
    /* One wake-up per batch: the loop takes the whole list, and clears the
     * eventfd, under the lock. Cannot fail short of counter overflow. */
    if (first && write(p->efd, &one, sizeof(one)) < 0)
        abort();
}

static void *pool_worker(void *arg)
{
    struct blk_pool *p = arg;
    struct blk_job *job;

    pthread_mutex_lock(&p->lock);
    while ((job = pool_next_job(p))) {
        pthread_mutex_unlock(&p->lock);
        p->exec(p->ctx, job);
        pthread_mutex_lock(&p->lock);
        pool_finish(p, job);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int blk_pool_create(struct blk_pool **out, unsigned workers,
                    blk_exec_fn *exec, void *ctx)
{
    struct blk_pool *p;
    int ret;

    if (workers == 0 || workers > BLK_WORKERS_MAX)
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->queued_tail = &p->queued;
    p->exec = exec;
    p->ctx = ctx;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        ret = -errno;
        free(p);
        return ret;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    for (; p->nworkers < workers; p->nworkers++) {
        ret = -pthread_create(&p->worker[p->nworkers], NULL, pool_worker, p);
        if (ret) {
            blk_pool_destroy(p);
            return ret;
        }
    }
    *out = p;
    return 0;
}

void blk_pool_destroy(struct blk_pool *p)
{
    struct blk_job *job;

    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_join(p->worker[i], NULL);
    while ((job = p->queued)) {
        p->queued = job->next;
        free(job);
    }
    while ((job = p->done)) {
        p->done = job->next;
        free(job);
    }
    pthread_cond_destroy(&p->idle);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    close(p->efd);
    free(p);
}

void blk_pool_submit(struct blk_pool *p, struct blk_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->lock);
    *p->queued_tail = job;
    p->queued_tail = &job->next;
    p->busy++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

int blk_pool_fd(const struct blk_pool *p)
{
    return p->efd;
}

struct blk_job *blk_pool_reap(struct blk_pool *p)
{
    struct blk_job *list;
    uint64_t count;

    pthread_mutex_lock(&p->lock);
    list = p->done;
    p->done = NULL;
    /* Drained under the lock: a later completion writes it again. */
    if (read(p->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        abort();
    pthread_mutex_unlock(&p->lock);
    return list;
}

void blk_pool_wait_idle(struct blk_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->busy)
        pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
