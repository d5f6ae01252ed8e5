/* SPDX-License-Identifier: MIT */
/* The guest's watcher: it says the guest has gone as soon as xenstored
 * fires @releaseDomain (or, without xenstored, at its next look), and
 * ends when xvdm no longer listens. Xen's side is a fake state here; the
 * rig's `manual` scenario shows the real one. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "check-run.h"
#include "guest-watch.h"
#include "store-sim.h"
#include "store.h"

#define DOMID 5
#define WAIT_MS 5000

static enum hv_guest_state state; /* what the fake Xen says */
static struct store *st;
static int fds[2];
static unsigned poll_ms;
static int ret;
static pthread_t thread;

static enum hv_guest_state fake_state(void *ctx, uint32_t domid)
{
    ck_assert_uint_eq(domid, DOMID);
    return __atomic_load_n(&state, __ATOMIC_ACQUIRE);
}

static void *watcher(void *arg)
{
    ret = guest_watch_run(st, fake_state, NULL, DOMID, fds[1], poll_ms);
    return NULL;
}

static void start(struct store *store, unsigned ms)
{
    state = HV_GUEST_RUNNING;
    st = store;
    poll_ms = ms;
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(pthread_create(&thread, NULL, watcher, NULL), 0);
}

/* What the watcher wrote, or -1 when nothing came within WAIT_MS. */
static int told(void)
{
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    uint8_t byte;

    if (poll(&p, 1, WAIT_MS) != 1 || read(fds[0], &byte, 1) != 1)
        return -1;
    return byte;
}

static void finish(void)
{
    pthread_join(thread, NULL);
    close(fds[0]);
    close(fds[1]);
}

/* With a poll interval longer than the test, only the watch can wake it. */
START_TEST(a_shutdown_is_told_when_xenstored_fires_release_domain)
{
    start(store_sim_create(), 600000);
    usleep(50000);
    __atomic_store_n(&state, HV_GUEST_SHUT_DOWN, __ATOMIC_RELEASE);
    store_sim_domain_shutdown(st);
    ck_assert_int_eq(told(), HV_GUEST_SHUT_DOWN);
    finish();
    ck_assert_int_eq(ret, 0);
    store_close(st);
}
END_TEST

START_TEST(without_xenstored_the_state_is_looked_at_every_interval)
{
    start(NULL, 20);
    usleep(50000);
    __atomic_store_n(&state, HV_GUEST_DYING, __ATOMIC_RELEASE);
    ck_assert_int_eq(told(), HV_GUEST_DYING);
    finish();
    ck_assert_int_eq(ret, 0);
}
END_TEST

/* xvdm stopped for another reason: the watcher ends too. */
START_TEST(the_watcher_ends_when_xvdm_stops_listening)
{
    start(NULL, 600000);
    close(fds[0]);
    pthread_join(thread, NULL);
    ck_assert_int_eq(ret, -EPIPE);
    close(fds[1]);
}
END_TEST

static Suite *guest_watch_suite(void)
{
    Suite *s = suite_create("guest-watch");
    TCase *tc = tcase_create("watch");

    tcase_add_test(tc, a_shutdown_is_told_when_xenstored_fires_release_domain);
    tcase_add_test(tc, without_xenstored_the_state_is_looked_at_every_interval);
    tcase_add_test(tc, the_watcher_ends_when_xvdm_stops_listening);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(guest_watch_suite());
}
