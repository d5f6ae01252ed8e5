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

START_TEST(event_makes_the_spi_pending_with_one_hypercall)
{
    ck_assert_int_eq(irq_line_event(&line), 0);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 1);
    ck_assert_uint_eq(sim_irq_calls(sim, SPI), 1);
}
END_TEST

/* Device B firing while A's interrupt is pending or being handled: the
 * SPI is made pending again, so B's event is never hidden behind A's. */
START_TEST(every_event_of_every_sharer_is_delivered)
{
    irq_line_event(&line); /* device A */
    irq_line_event(&line); /* device B */
    irq_line_event(&line); /* A again, more work */
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 3);
    ck_assert_uint_eq(sim_irq_calls(sim, SPI), 3);
}
END_TEST

START_TEST(hypervisor_refusal_is_returned)
{
    struct irq_line bad;

    irq_line_init(&bad, sim_hv(sim), 20); /* a PPI, not an SPI */
    ck_assert_int_eq(irq_line_event(&bad), -EINVAL);
}
END_TEST

static Suite *irq_suite(void)
{
    Suite *s = suite_create("irq");
    TCase *tc = tcase_create("line");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, event_makes_the_spi_pending_with_one_hypercall);
    tcase_add_test(tc, every_event_of_every_sharer_is_delivered);
    tcase_add_test(tc, hypervisor_refusal_is_returned);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(irq_suite());
}
