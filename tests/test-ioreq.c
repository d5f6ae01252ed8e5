/* SPDX-License-Identifier: MIT */
/* ioreq dispatch on the simulated hypervisor: every ioreq is answered,
 * MMIO goes to the window that holds it, nothing else touches a window. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "check-run.h"
#include "dev.h"
#include "hv.h"
#include "ioreq.h"
#include "log-lines.h"
#include "loop.h"
#include "sim.h"
#include "transport-mmio.h"

#define WIN_A 0x2000000ULL
#define WIN_B 0x2000200ULL
#define VCPUS 4

/* A window's device records what its config space was asked; a read at
 * window offset o answers tag + o in the high bits' company, so that the
 * dispatch's cut to the access size shows. */
struct window {
    struct xvdm_dev *dev;
    struct mmio mmio;
    uint64_t last_offset; /* in the window */
    unsigned last_size;
    uint64_t last_value;
    unsigned writes;
    uint64_t tag;
};

static struct sim *sim;
static struct gaccess ram; /* the guest's RAM, mapped */
static struct loop *loop;
static struct ioreq_dispatch dispatch;
static struct window win_a = {.tag = 0xa0}, win_b = {.tag = 0xb0};
static pthread_t thread;

static int window_create(struct xvdm_dev *dev, const struct xvdm_options *o,
                         struct xvdm_device_setup *setup, void **priv)
{
    setup->num_queues = 1;
    setup->queue_size_max[0] = 16;
    setup->config_size = 0x100;
    *priv = xvdm_dev_name(dev)[6] == '0' ? &win_a : &win_b;
    return 0;
}

static void window_read(void *priv, uint32_t off, void *buf, uint32_t len)
{
    struct window *w = priv;
    uint64_t v = w->tag + 0x100 + off + 0xffffff0000000000ULL;

    w->last_offset = 0x100 + off;
    w->last_size = len;
    for (unsigned i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = (uint8_t)(v >> (8 * i));
}

/* When set, a config write makes the kernel's handler look at the
 * writing vCPU's slot late, from inside xvdm's emulation of it. */
static unsigned late_look_ms, late_vcpu;

static void window_write(void *priv, uint32_t off, const void *buf,
                         uint32_t len)
{
    struct window *w = priv;

    if (late_look_ms)
        ck_assert_int_eq(sim_kernel_look_late(sim, late_vcpu, late_look_ms),
                         0);

    w->last_offset = 0x100 + off;
    w->last_size = len;
    w->last_value = 0;
    for (unsigned i = len; i > 0; i--)
        w->last_value = (w->last_value << 8) | ((const uint8_t *)buf)[i - 1];
    w->writes++;
}

static void window_noop(void *priv)
{
}

static void window_notify(void *priv, struct xvdm_queue *q, unsigned i)
{
}

static const struct xvdm_device_ops window_ops = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "window",
    .device_id = 42,
    .create = window_create,
    .destroy = window_noop,
    .config_read = window_read,
    .config_write = window_write,
    .queue_notify = window_notify,
    .reset = window_noop,
};

static void *run_loop(void *arg)
{
    loop_run(loop);
    return NULL;
}

static void add_window(uint64_t base, struct window *w, unsigned index)
{
    struct xvdm_options none = {0};
    struct ioreq_range r = {base, 0x200, &w->mmio};

    ck_assert_int_eq(dev_create(&w->dev, &window_ops, &none, index, 1, loop,
                                NULL, NULL), 0);
    mmio_init(&w->mmio, w->dev, &ram, sim_hv(sim), 33, base);
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
    ram = (struct gaccess){.ram = &hv->mem};
    ck_assert_int_eq(hv_ioreq_server_create(hv), 0);
    ioreq_dispatch_init(&dispatch, hv);
    add_window(WIN_A, &win_a, 0);
    add_window(WIN_B, &win_b, 1);
    ck_assert_int_eq(ioreq_dispatch_start(&dispatch, loop), 0);
    ck_assert_int_eq(hv_set_server_state(hv, true), 0);
    ck_assert_int_eq(pthread_create(&thread, NULL, run_loop, NULL), 0);
}

static void teardown(void)
{
    loop_stop(loop);
    pthread_join(thread, NULL);
    ioreq_dispatch_fini(&dispatch);
    ck_assert(!sim_mmio_mapped(sim, WIN_A));
    dev_destroy(win_a.dev);
    dev_destroy(win_b.dev);
    hv_close(sim_hv(sim));
    loop_destroy(loop);
    sim_destroy(sim);
}

START_TEST(read_goes_to_the_window_that_holds_it)
{
    uint64_t v;

    ck_assert_int_eq(sim_mmio_read(sim, 0, WIN_B + 0x170, 4, &v), 0);
    ck_assert_uint_eq(v, 0xb0 + 0x170); /* truncated to 4 bytes */
    ck_assert_uint_eq(win_b.last_offset, 0x170);
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
    struct ioreq_range r = {WIN_A + 0x100, 0x200, &win_a.mmio};

    ck_assert_int_eq(ioreq_add_range(&dispatch, &r), -EEXIST);
}
END_TEST

static void *vcpu_reads(void *arg)
{
    unsigned vcpu = (unsigned)(uintptr_t)arg;

    for (unsigned i = 0; i < 500; i++) {
        uint64_t v, offset = 0x100 + (vcpu * 8 + i % 8) * 4;

        if (sim_mmio_read(sim, vcpu, WIN_A + offset, 4, &v) ||
            v != 0xa0 + offset)
            return (void *)1;
    }
    return NULL;
}

/* Linux's ioeventfd handler, on a dom0 with more than one vCPU, may look
 * at a write after xvdm saw it READY, hold it INPROCESS while xvdm
 * answers, and then store READY over xvdm's answer: Xen then finds the
 * slot not NONE at the vCPU's next access and crashes the domain, or
 * the vCPU waits for ever. xvdm must hand its answer back only once the
 * kernel gave the slot back. */
START_TEST(an_answer_waits_for_a_kernel_that_looks_late)
{
    uint64_t v;

    late_look_ms = 20;
    late_vcpu = 1;
    ck_assert_int_eq(sim_mmio_write(sim, 1, WIN_A + 0x104, 4, 7), 0);
    late_look_ms = 0;
    ck_assert_uint_eq(win_a.writes, 1);
    /* The slot must be free for the next one (Xen's ioreq_send()). */
    ck_assert_int_eq(sim_mmio_read(sim, 1, WIN_A + 0x104, 4, &v), 0);
    ck_assert_uint_eq(win_a.writes, 1);
    ck_assert_uint_eq(dispatch.stats.deferred, 1);
}
END_TEST

static void log_slots(void)
{
    ioreq_log_slots(&dispatch);
}

/* What SIGUSR1 tells of a stuck guest: vCPU 1 has an access in its slot
 * that nobody answered (put there with no event, so the loop leaves it),
 * the others have none. */
START_TEST(the_slot_log_names_an_access_left_unanswered)
{
    volatile struct ioreq *slot =
        (struct ioreq *)sim_hv(sim)->iopage + 1;

    slot->type = IOREQ_TYPE_COPY;
    slot->dir = IOREQ_WRITE;
    slot->size = 4;
    slot->addr = WIN_A + 0x64;
    slot->state = STATE_IOREQ_READY;
    ck_assert_uint_eq(log_lines_during(log_slots,
                                       "ioreq slot of vCPU 1: READY (waiting "
                                       "for an answer): type 1, write of 4 "
                                       "bytes at 0x2000064"),
                      1);
    ck_assert_uint_eq(log_lines_during(log_slots, ": empty"), VCPUS - 1);
    slot->state = STATE_IOREQ_NONE;
}
END_TEST

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
    tcase_add_test(tc, the_slot_log_names_an_access_left_unanswered);
    tcase_add_test(tc, an_answer_waits_for_a_kernel_that_looks_late);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(ioreq_suite());
}
