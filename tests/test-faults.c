/* SPDX-License-Identifier: MIT */
/* Bad days: a device module that cannot start, interrupt delivery and the
 * event channel failing under a running device. Each ends in the defined
 * outcome, with nothing lost and nothing leaked (the sanitizer build
 * checks leaks). */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>

#include "check-run.h"
#include "harness.h"
#include "vdriver.h"

#define FEATURES (1ULL << VIRTIO_F_VERSION_1)

START_TEST(module_whose_create_fails_stops_setup_cleanly)
{
    const char *specs[] = {"fail-create"};
    struct harness h;

    /* Test-only modules are built in their own directory. */
    ck_assert_int_eq(setenv("XVDM_MODULE_DIR", getenv("XVDM_TEST_MODULE_DIR"),
                            1), 0);
    ck_assert_int_eq(harness_start(&h, specs, 1), -EIO);
}
END_TEST

static void submit(struct vdriver *d, uint32_t len)
{
    struct guest_buf b = {vdriver_alloc(d, len, 64), len, true};

    guest_ring_publish(&d->ring[0], guest_ring_add_chain(&d->ring[0], &b, 1));
    vdriver_kick(d, 0);
}

START_TEST(interrupt_failure_loses_no_completion)
{
    const char *specs[] = {"rng"};
    struct harness h;
    struct vdriver d;
    uint32_t id, len;

    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 1 << 20);
    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 8), 0);
    vdriver_driver_ok(&d);

    sim_fail_irq(h.sim, -EIO);
    submit(&d, 16);
    /* The interrupt could not be raised, but the work is done and says so. */
    ck_assert_uint_eq(vdriver_new_edges(&d), 0);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_INTERRUPT_STATUS),
                      VIRTIO_MMIO_INT_VRING);
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    ck_assert_uint_eq(len, 16);

    /* Once Xen takes interrupts again, the next event is delivered. */
    sim_fail_irq(h.sim, 0);
    submit(&d, 16);
    ck_assert_int_eq(vdriver_wait_irq(&d, 5000), VIRTIO_MMIO_INT_VRING);
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    /* Only raises were asked of Xen, never a (useless) lowering. */
    ck_assert_uint_eq(sim_irq_calls(h.sim, d.irq), sim_irq_edges(h.sim, d.irq));
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
    harness_stop(&h);
}
END_TEST

/* With `call` failing, a vCPU's access can never be answered (its port
 * stays masked, or is never kicked) and spinning on the readable fd would
 * burn a core: xvdm stops its loop with the error, and tears down cleanly.
 * The guest's access waits for the sim's 5 s ioreq timeout. */
static void expect_loop_stops_when_evtchn_fails(enum sim_evtchn_call call)
{
    const char *specs[] = {"rng"};
    struct harness h;
    uint64_t v;

    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    ck_assert_int_eq(sim_mmio_read(h.sim, 0, h.specs[0].base, 4, &v), 0);
    sim_fail_evtchn(h.sim, call, -EIO);
    ck_assert_int_eq(sim_mmio_read(h.sim, 0, h.specs[0].base, 4, &v),
                     -ETIMEDOUT);
    harness_halt(&h);
    ck_assert_int_eq(h.loop_ret, -EIO);
    harness_stop(&h);
}

START_TEST(evtchn_pending_failure_stops_the_loop)
{
    expect_loop_stops_when_evtchn_fails(SIM_EVTCHN_PENDING);
}
END_TEST

START_TEST(evtchn_unmask_failure_stops_the_loop)
{
    expect_loop_stops_when_evtchn_fails(SIM_EVTCHN_UNMASK);
}
END_TEST

START_TEST(evtchn_notify_failure_stops_the_loop)
{
    expect_loop_stops_when_evtchn_fails(SIM_EVTCHN_NOTIFY);
}
END_TEST

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");

    tcase_add_test(tc, module_whose_create_fails_stops_setup_cleanly);
    tcase_add_test(tc, interrupt_failure_loses_no_completion);
    tcase_add_test(tc, evtchn_pending_failure_stops_the_loop);
    tcase_add_test(tc, evtchn_unmask_failure_stops_the_loop);
    tcase_add_test(tc, evtchn_notify_failure_stops_the_loop);
    /* Each event-channel test waits out one ioreq timeout (5 s). */
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(faults_suite());
}
