/* SPDX-License-Identifier: MIT */
/* The per-guest event loop (see loop.h). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define LOOP_WATCHES_MAX 256
#define LOOP_EVENTS_MAX 32

struct loop_watch {
    int fd; /* -1: free */
    uint32_t gen; /* counts the entry's uses: see loop_data() */
    loop_cb *cb;
    void *arg;
    struct loop_owner *owner; /* NULL: the core's */
};

struct loop {
    int epfd;
    int stop_fd;
    volatile bool stopping;
    int error; /* from loop_fail(): what loop_run() returns */
    uint64_t poll_max_ns; /* see loop_set_poll() */
    uint64_t poll_ns;     /* the window now, adapted to the gaps seen */
    uint64_t turn;        /* see loop_turn() */
    unsigned watched;     /* entries in use */
    struct loop_owner *owners;
    /* epoll carries an index into this table, not a pointer, so an entry
     * freed by a callback is never used by a later event of the batch;
     * and the entry's use with it, so that one a callback took again for
     * another fd does not get the old fd's event either. */
    struct loop_watch watch[LOOP_WATCHES_MAX];
};

static struct loop_watch *loop_find(struct loop *loop, int fd)
{
    for (unsigned i = 0; i < LOOP_WATCHES_MAX; i++)
        if (loop->watch[i].fd == fd)
            return &loop->watch[i];
    return NULL;
}

/* What epoll carries for watch w: its index, and which use of it. */
static uint64_t loop_data(const struct loop *loop, const struct loop_watch *w)
{
    return (uint64_t)(w - loop->watch) | (uint64_t)w->gen << 32;
}

static int loop_ctl(struct loop *loop, int op, int fd, uint32_t events,
                    uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};

    return epoll_ctl(loop->epfd, op, fd, &ev) ? -errno : 0;
}

struct loop *loop_create(void)
{
    struct loop *loop = calloc(1, sizeof(*loop));
    int err;

    if (!loop)
        return NULL;
    for (unsigned i = 0; i < LOOP_WATCHES_MAX; i++)
        loop->watch[i].fd = -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epfd < 0 || loop->stop_fd < 0)
        goto fail;
    err = loop_ctl(loop, EPOLL_CTL_ADD, loop->stop_fd, EPOLLIN, UINT64_MAX);
    if (err) {
        errno = -err;
        goto fail;
    }
    return loop;
fail:
    err = errno;
    loop_destroy(loop);
    errno = err;
    return NULL;
}

void loop_destroy(struct loop *loop)
{
    if (!loop)
        return;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->stop_fd >= 0)
        close(loop->stop_fd);
    free(loop);
}

static int loop_add(struct loop *loop, struct loop_owner *o, int fd,
                    uint32_t events, loop_cb *cb, void *arg)
{
    struct loop_watch *w;
    int ret;

    if (fd < 0)
        return -EBADF;
    if (loop_find(loop, fd))
        return -EEXIST;
    w = loop_find(loop, -1);
    if (!w)
        return -ENOSPC;
    w->gen++;
    ret = loop_ctl(loop, EPOLL_CTL_ADD, fd, events, loop_data(loop, w));
    if (ret)
        return ret;
    *w = (struct loop_watch){
        .fd = fd, .gen = w->gen, .cb = cb, .arg = arg, .owner = o};
    loop->watched++;
    if (o)
        o->watches++;
    return 0;
}

int loop_watch(struct loop *loop, int fd, uint32_t events, loop_cb *cb,
               void *arg)
{
    return loop_add(loop, NULL, fd, events, cb, arg);
}

void loop_owner_add(struct loop *loop, struct loop_owner *o)
{
    o->watches = 0;
    o->next = loop->owners;
    loop->owners = o;
}

void loop_owner_remove(struct loop *loop, struct loop_owner *o)
{
    struct loop_owner **p = &loop->owners;

    while (*p && *p != o)
        p = &(*p)->next;
    if (*p)
        *p = o->next;
    for (unsigned i = 0; i < LOOP_WATCHES_MAX; i++)
        if (loop->watch[i].owner == o)
            loop->watch[i].owner = NULL;
}

/* Watches the other owners' reserves keep free for them. */
static unsigned loop_reserved_for_others(const struct loop *loop,
                                         const struct loop_owner *o)
{
    unsigned n = 0;

    for (const struct loop_owner *p = loop->owners; p; p = p->next)
        if (p != o && p->watches < LOOP_OWNER_RESERVE)
            n += LOOP_OWNER_RESERVE - p->watches;
    return n;
}

int loop_watch_owned(struct loop *loop, struct loop_owner *o, int fd,
                     uint32_t events, loop_cb *cb, void *arg)
{
    if (fd >= 0 && loop_find(loop, fd))
        return -EEXIST;
    if (o->watches >= LOOP_OWNER_RESERVE &&
        LOOP_WATCHES_MAX - loop->watched <=
            loop_reserved_for_others(loop, o))
        return -ENOSPC;
    return loop_add(loop, o, fd, events, cb, arg);
}

int loop_modify(struct loop *loop, int fd, uint32_t events)
{
    struct loop_watch *w = fd < 0 ? NULL : loop_find(loop, fd);

    if (!w)
        return -ENOENT;
    return loop_ctl(loop, EPOLL_CTL_MOD, fd, events, loop_data(loop, w));
}

int loop_unwatch(struct loop *loop, int fd)
{
    struct loop_watch *w = fd < 0 ? NULL : loop_find(loop, fd);

    if (!w)
        return -ENOENT;
    w->fd = -1;
    loop->watched--;
    if (w->owner)
        w->owner->watches--;
    w->owner = NULL;
    return loop_ctl(loop, EPOLL_CTL_DEL, fd, 0, 0);
}

static void loop_dispatch(struct loop *loop, const struct epoll_event *ev)
{
    struct loop_watch *w;

    uint64_t count;

    if ((uint32_t)ev->data.u64 >= LOOP_WATCHES_MAX) {
        /* The stop eventfd: it only wakes epoll_wait(); loop_run() checks
         * the flag. Drained so a later run does not spin on it. */
        if (read(loop->stop_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
            loop->stopping = true;
        return;
    }
    w = &loop->watch[(uint32_t)ev->data.u64];
    if (w->fd >= 0 && w->gen == ev->data.u64 >> 32)
        w->cb(w->arg, ev->events);
}

void loop_set_poll(struct loop *loop, uint64_t ns)
{
    __atomic_store_n(&loop->poll_max_ns, ns, __ATOMIC_RELAXED);
}

/* A sleep of `slept` ns ended with an event. Had the window been that
 * long, looking would have found it: grow the window (from 4 us, doubling)
 * up to the most allowed. Gaps longer than that are not worth a busy CPU:
 * halve it, so a quiet or slow-paced guest soon costs nothing. */
static void loop_adapt_poll(struct loop *loop, uint64_t slept)
{
    uint64_t max = __atomic_load_n(&loop->poll_max_ns, __ATOMIC_RELAXED);

    if (slept <= max)
        loop->poll_ns = loop->poll_ns ? loop->poll_ns * 2 : 4000;
    else
        loop->poll_ns /= 2;
    if (loop->poll_ns > max)
        loop->poll_ns = max;
}

/* Wait for events: first looking for up to the poll window, then
 * sleeping (and adapting the window to how long the sleep was). */
static int loop_wait(struct loop *loop, struct epoll_event *ev)
{
    uint64_t start;
    int n;

    if (loop->poll_ns) {
        uint64_t end = monotonic_ns() + loop->poll_ns;

        do {
            n = epoll_wait(loop->epfd, ev, LOOP_EVENTS_MAX, 0);
            if (n != 0)
                return n;
        } while (monotonic_ns() < end && !loop->stopping);
    }
    if (!__atomic_load_n(&loop->poll_max_ns, __ATOMIC_RELAXED)) {
        loop->poll_ns = 0;
        return epoll_wait(loop->epfd, ev, LOOP_EVENTS_MAX, -1);
    }
    start = monotonic_ns();
    n = epoll_wait(loop->epfd, ev, LOOP_EVENTS_MAX, -1);
    if (n > 0)
        loop_adapt_poll(loop, monotonic_ns() - start);
    return n;
}

int loop_run(struct loop *loop)
{
    struct epoll_event ev[LOOP_EVENTS_MAX];
    int err;

    while (!loop->stopping) {
        int n = loop_wait(loop, ev);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        loop->turn++;
        for (int i = 0; i < n && !loop->stopping; i++)
            loop_dispatch(loop, &ev[i]);
    }
    loop->stopping = false;
    err = loop->error;
    loop->error = 0;
    return err;
}

const uint64_t *loop_turn(const struct loop *loop)
{
    return &loop->turn;
}

void loop_stop(struct loop *loop)
{
    uint64_t one = 1;
    int saved = errno; /* may run in a signal handler */
    ssize_t n;

    loop->stopping = true;
    /* Only a wake-up: an eventfd write fails only when its counter would
     * overflow, and then a wake-up is pending anyway. */
    n = write(loop->stop_fd, &one, sizeof(one));
    (void)n;
    errno = saved;
}

void loop_fail(struct loop *loop, int err)
{
    loop->error = err;
    loop_stop(loop);
}
