/* SPDX-License-Identifier: MIT */
/* ioreq dispatch on the simulated hypervisor: every ioreq is answered,
 * MMIO goes to the window that holds it, nothing else touches a window. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "check-run.h"
#include "hv.h"
#include "ioreq.h"
#include "loop.h"
#include "sim.h"

#define WIN_A 0x2000000ULL
#define WIN_B 0x2000200ULL
#define VCPUS 4

/* A window that records what it was asked. */
struct window {
    uint64_t last_offset;
    unsigned last_size;
    uint64_t last_value;
    unsigned writes;
    uint64_t tag;
};

static struct sim *sim;
static struct loop *loop;
static struct ioreq_dispatch dispatch;
static struct window win_a = {.tag = 0xa0}, win_b = {.tag = 0xb0};
static pthread_t thread;

static uint64_t window_read(void *opaque, uint64_t offset, unsigned size)
{
    struct window *w = opaque;

    w->last_offset = offset;
    w->last_size = size;
    return w->tag + offset + 0xffffff0000000000ULL;
}

static void window_write(void *opaque, uint64_t offset, unsigned size,
                         uint64_t value)
{
    struct window *w = opaque;

    w->last_offset = offset;
    w->last_size = size;
    w->last_value = value;
    w->writes++;
}

static void on_evtchn(void *arg, uint32_t revents)
{
    ioreq_handle_events(&dispatch);
}

static void *run_loop(void *arg)
{
    loop_run(loop);
    return NULL;
}

static void add_window(uint64_t base, struct window *w)
{
    struct ioreq_range r = {base, 0x200, window_read, window_write, w};

    ck_assert_int_eq(ioreq_add_range(&dispatch, &r), 0);
}

static void setup(void)
{
    struct sim_config cfg = {.domid = 1, .nr_vcpus = VCPUS,
                             .ram_size = 1 << 20};
    struct hv *hv;

    sim = sim_create(&cfg);
    loop = loop_create();
    hv = sim_hv(sim);
    ck_assert_int_eq(hv_ioreq_server_create(hv), 0);
    ioreq_dispatch_init(&dispatch, hv);
    add_window(WIN_A, &win_a);
    add_window(WIN_B, &win_b);
    ck_assert_int_eq(loop_watch(loop, hv_evtchn_fd(hv), EPOLLIN, on_evtchn,
                                NULL), 0);
    ck_assert_int_eq(hv_set_server_state(hv, true), 0);
    ck_assert_int_eq(pthread_create(&thread, NULL, run_loop, NULL), 0);
}

static void teardown(void)
{
    loop_stop(loop);
    pthread_join(thread, NULL);
    ioreq_dispatch_fini(&dispatch);
    ck_assert(!sim_mmio_mapped(sim, WIN_A));
    hv_close(sim_hv(sim));
    loop_destroy(loop);
    sim_destroy(sim);
}

START_TEST(read_goes_to_the_window_that_holds_it)
{
    uint64_t v;

    ck_assert_int_eq(sim_mmio_read(sim, 0, WIN_B + 0x70, 4, &v), 0);
    ck_assert_uint_eq(v, 0xb0 + 0x70); /* truncated to 4 bytes */
    ck_assert_uint_eq(win_b.last_offset, 0x70);
    ck_assert_uint_eq(win_b.last_size, 4);
    ck_assert_uint_eq(dispatch.stats.mmio, 1);
}
END_TEST

START_TEST(write_carries_only_the_bytes_of_its_size)
{
    ck_assert_int_eq(sim_mmio_write(sim, 1, WIN_A + 0x100, 2,
                                    0x1234567812345678ULL), 0);
    ck_assert_uint_eq(win_a.writes, 1);
    ck_assert_uint_eq(win_a.last_value, 0x5678);
    ck_assert_uint_eq(win_a.last_offset, 0x100);
}
END_TEST

START_TEST(access_straddling_a_window_end_reads_all_ones)
{
    uint64_t v;

    ck_assert_int_eq(sim_mmio_read(sim, 0, WIN_B + 0x1fc, 8, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_uint_eq(dispatch.stats.unclaimed, 1);
    ck_assert_int_eq(sim_mmio_write(sim, 0, WIN_B + 0x1fe, 4, 1), 0);
    ck_assert_uint_eq(win_b.writes, 0);
}
END_TEST

static struct ioreq answered(struct ioreq req)
{
    ck_assert_int_eq(sim_ioreq(sim, 2, &req), 0);
    ck_assert_uint_eq(req.state, STATE_IORESP_READY);
    return req;
}

START_TEST(invalidate_and_other_types_are_answered)
{
    answered((struct ioreq){.type = IOREQ_TYPE_INVALIDATE});
    answered((struct ioreq){.type = IOREQ_TYPE_PIO, .addr = 0x60, .size = 1,
                            .count = 1, .dir = IOREQ_READ});
    answered((struct ioreq){.type = IOREQ_TYPE_PCI_CONFIG, .size = 4});
    ck_assert_uint_eq(dispatch.stats.invalidate, 1);
    ck_assert_uint_eq(dispatch.stats.other, 2);
    ck_assert_uint_eq(dispatch.stats.mmio, 0);
}
END_TEST

START_TEST(pointer_and_repeated_accesses_are_refused_with_all_ones)
{
    struct ioreq r;

    r = answered((struct ioreq){.type = IOREQ_TYPE_COPY, .addr = WIN_A,
                                .size = 4, .count = 1, .data_is_ptr = 1,
                                .dir = IOREQ_READ, .data = 0x40000000});
    ck_assert_uint_eq(r.data, UINT64_MAX);
    r = answered((struct ioreq){.type = IOREQ_TYPE_COPY, .addr = WIN_A,
                                .size = 4, .count = 5, .dir = IOREQ_WRITE});
    r = answered((struct ioreq){.type = IOREQ_TYPE_COPY, .addr = WIN_A,
                                .size = 3, .count = 1, .dir = IOREQ_WRITE});
    ck_assert_uint_eq(dispatch.stats.refused, 3);
    ck_assert_uint_eq(win_a.writes, 0);
}
END_TEST

START_TEST(overlapping_window_is_refused)
{
    struct ioreq_range r = {WIN_A + 0x100, 0x200, window_read, window_write,
                            &win_a};

    ck_assert_int_eq(ioreq_add_range(&dispatch, &r), -EEXIST);
}
END_TEST

static void *vcpu_reads(void *arg)
{
    unsigned vcpu = (unsigned)(uintptr_t)arg;

    for (unsigned i = 0; i < 500; i++) {
        uint64_t v, offset = (vcpu * 8 + i % 8) * 4;

        if (sim_mmio_read(sim, vcpu, WIN_A + offset, 4, &v) ||
            v != 0xa0 + offset)
            return (void *)1;
    }
    return NULL;
}

START_TEST(concurrent_vcpus_each_get_their_own_answer)
{
    pthread_t t[VCPUS];
    void *bad;

    for (uintptr_t i = 0; i < VCPUS; i++)
        pthread_create(&t[i], NULL, vcpu_reads, (void *)i);
    for (unsigned i = 0; i < VCPUS; i++) {
        pthread_join(t[i], &bad);
        ck_assert_ptr_null(bad);
    }
    ck_assert_uint_eq(dispatch.stats.mmio, VCPUS * 500);
}
END_TEST

static Suite *ioreq_suite(void)
{
    Suite *s = suite_create("ioreq");
    TCase *tc = tcase_create("dispatch");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, read_goes_to_the_window_that_holds_it);
    tcase_add_test(tc, write_carries_only_the_bytes_of_its_size);
    tcase_add_test(tc, access_straddling_a_window_end_reads_all_ones);
    tcase_add_test(tc, invalidate_and_other_types_are_answered);
    tcase_add_test(tc, pointer_and_repeated_accesses_are_refused_with_all_ones);
    tcase_add_test(tc, overlapping_window_is_refused);
    tcase_add_test(tc, concurrent_vcpus_each_get_their_own_answer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(ioreq_suite());
}
