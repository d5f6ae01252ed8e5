/* SPDX-License-Identifier: MIT */
/* Shared edge-triggered interrupt lines, observed on the simulated GIC. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "check-run.h"
#include "hv.h"
#include "irq.h"
#include "sim.h"

#define SPI 40

static struct sim *sim;
static struct irq_line line;

static void setup(void)
{
    struct sim_config cfg = {.domid = 1, .nr_vcpus = 1, .ram_size = 1 << 20};

    sim = sim_create(&cfg);
    ck_assert_ptr_nonnull(sim);
    irq_line_init(&line, sim_hv(sim), SPI);
}

static void teardown(void)
{
    hv_close(sim_hv(sim));
    sim_destroy(sim);
}

START_TEST(event_raises_a_rising_edge)
{
    ck_assert_int_eq(irq_line_event(&line, false), 0);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 1);
    ck_assert(sim_irq_level(sim, SPI));
}
END_TEST

START_TEST(second_device_firing_while_line_is_up_gets_its_own_edge)
{
    irq_line_event(&line, false); /* device A */
    irq_line_event(&line, false); /* device B, line still up */
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 2);
    ck_assert(sim_irq_level(sim, SPI));
}
END_TEST

START_TEST(line_drops_only_when_the_last_sharer_acknowledges)
{
    irq_line_event(&line, false);
    irq_line_event(&line, false);
    ck_assert_int_eq(irq_line_clear(&line), 0);
    ck_assert(sim_irq_level(sim, SPI));
    ck_assert_int_eq(irq_line_clear(&line), 0);
    ck_assert(!sim_irq_level(sim, SPI));
}
END_TEST

START_TEST(repeat_event_of_a_pending_device_counts_once)
{
    irq_line_event(&line, false);
    irq_line_event(&line, true); /* same device, more work */
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 2);
    irq_line_clear(&line);
    ck_assert(!sim_irq_level(sim, SPI));
}
END_TEST

START_TEST(hypervisor_refusal_is_returned)
{
    struct irq_line bad;

    irq_line_init(&bad, sim_hv(sim), 20); /* a PPI, not an SPI */
    ck_assert_int_eq(irq_line_event(&bad, false), -EINVAL);
    ck_assert(!bad.level);
}
END_TEST

static Suite *irq_suite(void)
{
    Suite *s = suite_create("irq");
    TCase *tc = tcase_create("line");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, event_raises_a_rising_edge);
    tcase_add_test(tc,
                   second_device_firing_while_line_is_up_gets_its_own_edge);
    tcase_add_test(tc, line_drops_only_when_the_last_sharer_acknowledges);
    tcase_add_test(tc, repeat_event_of_a_pending_device_counts_once);
    tcase_add_test(tc, hypervisor_refusal_is_returned);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(irq_suite());
}
