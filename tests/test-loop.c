/* SPDX-License-Identifier: MIT */
/* The event loop's polling (--poll-us): events found while looking are
 * dispatched like those it sleeps for, stopping is prompt, and a loop
 * with nothing to do goes back to sleep instead of keeping a CPU busy. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "check-run.h"
#include "loop.h"

static struct loop *loop;
static pthread_t thread;
static clockid_t loop_cpu; /* the loop thread's CPU-time clock */
static int efd;
static unsigned seen; /* events dispatched */

static void on_event(void *arg, uint32_t revents)
{
    uint64_t n;

    if (read(efd, &n, sizeof(n)) == sizeof(n))
        __atomic_add_fetch(&seen, (unsigned)n, __ATOMIC_RELAXED);
}

static void *run_loop(void *arg)
{
    loop_run(loop);
    return NULL;
}

static void start(uint64_t poll_ns)
{
    loop = loop_create();
    ck_assert_ptr_nonnull(loop);
    loop_set_poll(loop, poll_ns);
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ck_assert_int_eq(loop_watch(loop, efd, EPOLLIN, on_event, NULL), 0);
    ck_assert_int_eq(pthread_create(&thread, NULL, run_loop, NULL), 0);
    ck_assert_int_eq(pthread_getcpuclockid(thread, &loop_cpu), 0);
}

static void stop(void)
{
    loop_stop(loop);
    pthread_join(thread, NULL);
    close(efd);
    loop_destroy(loop);
}

static double seconds(clockid_t clock)
{
    struct timespec t;

    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void signal_and_wait(unsigned want)
{
    uint64_t one = 1;
    double end = seconds(CLOCK_MONOTONIC) + 5;

    ck_assert_int_eq(write(efd, &one, sizeof(one)), sizeof(one));
    while (__atomic_load_n(&seen, __ATOMIC_RELAXED) < want)
        ck_assert(seconds(CLOCK_MONOTONIC) < end);
}

/* Events 20 us apart, then 2 ms apart: all are dispatched, whether they
 * came while the loop looked or while it slept. */
START_TEST(events_are_dispatched_while_polling_and_after)
{
    start(1000 * 1000);
    for (unsigned i = 1; i <= 2000; i++) {
        signal_and_wait(i);
        usleep(i <= 1000 ? 20 : 0);
        if (i > 1000 && i % 100 == 0)
            usleep(2000);
    }
    stop();
}
END_TEST

/* After a burst the guest goes quiet: within a second the loop sleeps,
 * so it burns at most a small part of the CPU a spinning loop would. */
START_TEST(a_quiet_loop_goes_back_to_sleep)
{
    double cpu, wall;

    start(1000 * 1000); /* the most: 1 ms */
    for (unsigned i = 1; i <= 500; i++)
        signal_and_wait(i);
    usleep(100 * 1000);
    cpu = seconds(loop_cpu);
    wall = seconds(CLOCK_MONOTONIC);
    usleep(500 * 1000);
    cpu = seconds(loop_cpu) - cpu;
    wall = seconds(CLOCK_MONOTONIC) - wall;
    ck_assert_msg(cpu < 0.1 * wall, "the loop used %.3f s of CPU in %.3f s",
                  cpu, wall);
    stop();
}
END_TEST

/* loop_stop() from another thread ends a loop that is busy looking. */
START_TEST(stop_ends_a_polling_loop)
{
    start(1000 * 1000);
    for (unsigned i = 1; i <= 100; i++)
        signal_and_wait(i);
    stop();
}
END_TEST

/* Two watched fds are ready in one batch; the first callback unwatches
 * the other and watches a new fd, which takes the freed entry. The other
 * fd's event of that batch is stale: it must not reach the new watch (a
 * vsock connection opened as another closed would take its peer's
 * hang-up for its own). */
static int pair[2], fresh;
static unsigned swaps, fresh_calls;

static void on_fresh(void *arg, uint32_t revents)
{
    __atomic_add_fetch(&fresh_calls, 1, __ATOMIC_RELAXED);
}

static void on_pair(void *arg, uint32_t revents)
{
    int other = pair[(intptr_t)arg == 0];

    if (swaps++)
        return;
    ck_assert_int_eq(loop_unwatch(loop, other), 0);
    ck_assert_int_eq(loop_watch(loop, fresh, EPOLLIN, on_fresh, NULL), 0);
}

START_TEST(a_stale_event_of_a_batch_skips_a_watch_that_reused_its_entry)
{
    uint64_t one = 1;

    loop = loop_create();
    ck_assert_ptr_nonnull(loop);
    fresh = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* never ready */
    for (intptr_t i = 0; i < 2; i++) {
        pair[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ck_assert_int_eq(write(pair[i], &one, sizeof(one)), sizeof(one));
        ck_assert_int_eq(loop_watch(loop, pair[i], EPOLLIN, on_pair,
                                    (void *)i),
                         0);
    }
    ck_assert_int_eq(pthread_create(&thread, NULL, run_loop, NULL), 0);
    usleep(200 * 1000);
    loop_stop(loop);
    pthread_join(thread, NULL);
    ck_assert_uint_ge(swaps, 1);
    ck_assert_uint_eq(fresh_calls, 0);
    for (unsigned i = 0; i < 2; i++)
        close(pair[i]);
    close(fresh);
    loop_destroy(loop);
}
END_TEST

static void on_nothing(void *arg, uint32_t revents)
{
    (void)arg;
    (void)revents;
}

/* Owner a takes every watch it may: all but the 8 kept for b, which b
 * then gets; an fd watched already is -EEXIST, not -ENOSPC, past a's
 * reserve too; and one a gives back is a's to take again. */
START_TEST(an_owner_takes_all_but_the_watches_kept_for_the_others)
{
    static int fds[300];
    struct loop_owner a, b;
    unsigned n = 0, nb = 0;
    int ret, extra;

    loop = loop_create();
    ck_assert_ptr_nonnull(loop);
    loop_owner_add(loop, &a);
    loop_owner_add(loop, &b);
    do {
        fds[n] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ret = loop_watch_owned(loop, &a, fds[n], EPOLLIN, on_nothing, NULL);
        n += ret == 0;
    } while (ret == 0 && n < 300);
    ck_assert_int_eq(ret, -ENOSPC);
    ck_assert_uint_eq(n, 256 - LOOP_OWNER_RESERVE);
    ck_assert_int_eq(loop_watch_owned(loop, &a, fds[0], EPOLLIN, on_nothing,
                                      NULL),
                     -EEXIST);
    for (; nb < LOOP_OWNER_RESERVE; nb++) {
        extra = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ck_assert_int_eq(
            loop_watch_owned(loop, &b, extra, EPOLLIN, on_nothing, NULL), 0);
    }
    ck_assert_int_eq(loop_unwatch(loop, fds[1]), 0);
    ck_assert_int_eq(
        loop_watch_owned(loop, &a, fds[1], EPOLLIN, on_nothing, NULL), 0);
    loop_owner_remove(loop, &b);
    loop_owner_remove(loop, &a);
    loop_destroy(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("poll");

    tcase_add_test(tc, events_are_dispatched_while_polling_and_after);
    tcase_add_test(tc, a_quiet_loop_goes_back_to_sleep);
    tcase_add_test(tc, stop_ends_a_polling_loop);
    tcase_add_test(tc,
                   a_stale_event_of_a_batch_skips_a_watch_that_reused_its_entry);
    tcase_add_test(tc, an_owner_takes_all_but_the_watches_kept_for_the_others);
    suite_add_tcase(s, tc);
    return check_run(s);
}
