/* SPDX-License-Identifier: MIT */
/*
 * The fast path (mmio-fast.h) on a simulated host that has Linux privcmd's
 * ioeventfd and irqfd: the host answers a guest's kick, xvdm drains the
 * queue from the kick's eventfd and raises the interrupt through the
 * irqfd; xvdm never claims a kick the host may claim; nothing stays
 * assigned after xvdm stops; a host that refuses gets the path through
 * xvdm.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check-run.h"
#include "dev.h"
#include "harness.h"
#include "log-lines.h"
#include "vdriver.h"
#include "vm.h"

#define WAIT_MS 5000
#define LEN 64

static struct harness h;
static struct vdriver d;

static void start_rng(const struct sim_config *cfg)
{
    const char *specs[] = {"rng"};

    ck_assert_int_eq(harness_start_sim(&h, specs, 1, cfg), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (4ULL << 20), 4ULL << 20);
    /* Without EVENT_IDX: an interrupt for every request. */
    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, DEV_TRANSPORT_FEATURES &
                                                     ~(1ULL << VIRTIO_F_EVENT_IDX)),
                     0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 64), 0);
    vdriver_driver_ok(&d);
    ck_assert_int_eq(d.io_error, 0);
}

static struct sim_config fast_config(void)
{
    struct sim_config cfg = harness_sim_config(1);

    cfg.eventfds = true;
    return cfg;
}

/* A device-writable buffer made available, and the kick written as the
 * guest's vCPU writes it (no settling: the host's answer is the test). */
static uint16_t publish_buffer(void)
{
    struct guest_buf b = {vdriver_alloc(&d, LEN, 64), LEN, true};
    uint16_t head = guest_ring_add_chain(&d.ring[0], &b, 1);

    guest_ring_publish(&d.ring[0], head);
    return head;
}

static void kick(void)
{
    ck_assert_int_eq(sim_mmio_write(h.sim, 0,
                                    d.base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, 0),
                     0);
}

static void expect_served(uint16_t head)
{
    uint32_t id, len;

    ck_assert_int_eq(vdriver_wait_irq(&d, WAIT_MS), VIRTIO_MMIO_INT_VRING);
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(len, LEN);
}

START_TEST(the_host_answers_the_kick_and_xvdm_serves_it)
{
    struct sim_config cfg = fast_config();
    uint16_t head;

    start_rng(&cfg);
    head = publish_buffer();
    kick();
    ck_assert_uint_eq(sim_kernel_answers(h.sim), 1);
    expect_served(head);
    /* The interrupt came through the irqfd, not a set_irq_level call. */
    ck_assert_uint_ge(sim_irqfd_edges(h.sim, d.irq), 1);
    ck_assert_uint_eq(sim_irqfd_edges(h.sim, d.irq),
                      sim_irq_edges(h.sim, d.irq));
    harness_stop(&h);
}
END_TEST

/* On Xen the port's event runs /dev/xen/evtchn's handler before the
 * kernel's ioeventfd handler, and xvdm may look at the slot in between
 * (a dom0 vCPU descheduled there). Were it to claim the kick, both would
 * answer, and the later answer would land on the vCPU's next ioreq. */
START_TEST(xvdm_leaves_the_kick_to_the_host_even_when_it_looks_first)
{
    struct sim_config cfg = fast_config();
    uint16_t head;

    cfg.kernel_delay_ms = 200;
    start_rng(&cfg);
    head = publish_buffer();
    kick();
    ck_assert_uint_eq(sim_kernel_missed(h.sim), 0);
    ck_assert_uint_eq(sim_kernel_answers(h.sim), 1);
    expect_served(head);
    harness_stop(&h);
}
END_TEST

/* The kernel's test ignores data_is_ptr and count (Xen on Arm never sets
 * them for MMIO): an ioreq with them set is still the kernel's to take,
 * and xvdm must leave it too. */
START_TEST(xvdm_leaves_the_kernel_every_request_its_test_takes)
{
    struct sim_config cfg = fast_config();
    struct ioreq req = {
        .addr = 0,
        .data = 0,
        .count = 2,
        .size = 4,
        .dir = IOREQ_WRITE,
        .data_is_ptr = 1,
        .type = IOREQ_TYPE_COPY,
    };

    cfg.kernel_delay_ms = 200;
    start_rng(&cfg);
    req.addr = d.base + VIRTIO_MMIO_QUEUE_NOTIFY;
    ck_assert_int_eq(sim_ioreq(h.sim, 0, &req), 0);
    ck_assert_uint_eq(sim_kernel_missed(h.sim), 0);
    ck_assert_uint_eq(sim_kernel_answers(h.sim), 1);
    harness_stop(&h);
}
END_TEST

/* Linux's ioeventfd handler marks every COPY write it looks at INPROCESS
 * while it searches its ioeventfds, and gives one that matches none back
 * READY, without another event: xvdm, woken by the same port, may look
 * in between (a dom0 vCPU descheduled inside the handler). It must come
 * back for the request, or the vCPU waits for an answer forever. */
START_TEST(a_write_the_kernel_looks_at_and_gives_back_is_served_by_xvdm)
{
    struct sim_config cfg = fast_config();
    uint16_t head;

    start_rng(&cfg);
    sim_kernel_hold(h.sim, 100);
    ck_assert_int_eq(sim_mmio_write(h.sim, 0, d.base + VIRTIO_MMIO_QUEUE_SEL,
                                    4, 0),
                     0);
    head = publish_buffer();
    kick();
    ck_assert_uint_eq(sim_kernel_answers(h.sim), 1);
    expect_served(head);
    ck_assert_uint_eq(sim_kernel_missed(h.sim), 0);
    harness_stop(&h);
}
END_TEST

/* A kick vCPU 1 writes between the server's start and the fast path's,
 * as a guest running on while an instance restarts may: its event came
 * before the host's kernel had an ioeventfd to take it with, so nobody
 * but xvdm will answer it. */
static struct {
    pthread_t thread;
    struct sim *sim;
    int ret;
    unsigned kernel_look_ms; /* the kernel looks at it too, this long */
} early;

static void *write_early_kick(void *arg)
{
    early.ret = sim_mmio_write(early.sim, 1,
                               h.specs[0].base + VIRTIO_MMIO_QUEUE_NOTIFY, 4,
                               0);
    return NULL;
}

static void kick_before_the_fast_path(struct sim *sim, void *arg)
{
    struct timespec tick = {.tv_nsec = 1000000};

    early.sim = sim;
    ck_assert_int_eq(pthread_create(&early.thread, NULL, write_early_kick,
                                    NULL),
                     0);
    for (int ms = 0; ms < WAIT_MS && !sim_ioreq_waiting(sim, 1); ms++)
        nanosleep(&tick, NULL);
    ck_assert(sim_ioreq_waiting(sim, 1));
    if (early.kernel_look_ms)
        ck_assert_int_eq(sim_kernel_look_late(sim, 1, early.kernel_look_ms),
                         0);
}

static void kick_as_the_fast_path_starts(unsigned kernel_look_ms)
{
    struct sim_config cfg = harness_sim_config(2);
    uint16_t head;

    early.kernel_look_ms = kernel_look_ms;
    cfg.eventfds = true;
    cfg.before_ioeventfds = kick_before_the_fast_path;
    start_rng(&cfg);
    pthread_join(early.thread, NULL);
    ck_assert_int_eq(early.ret, 0);
    ck_assert_uint_eq(sim_kernel_missed(h.sim), 0);
    /* Later kicks still go through the host. */
    head = publish_buffer();
    kick();
    ck_assert_uint_eq(sim_kernel_answers(h.sim), 1);
    expect_served(head);
    harness_stop(&h);
}

START_TEST(a_kick_written_as_the_fast_path_starts_is_answered)
{
    kick_as_the_fast_path_starts(0);
}
END_TEST

/* The same kick, which the kernel's handler looks at before it knows the
 * ioeventfd (they are assigned one by one): held INPROCESS while xvdm
 * first looks, then given back READY with no event of its own. */
START_TEST(a_kick_the_kernel_gives_back_as_the_fast_path_starts_is_answered)
{
    kick_as_the_fast_path_starts(100);
}
END_TEST

/* The kernel takes an InterruptACK write by its ioeventfd test alone: 4
 * bytes whose low 16 bits are 1 (a used-buffer interrupt's), whatever the
 * rest; xvdm must leave exactly those to it, answer the others, and have
 * the guest read the effect of either. */
START_TEST(the_host_answers_an_ack_of_a_used_buffer_interrupt_and_xvdm_others)
{
    struct sim_config cfg = fast_config();
    uint32_t id, len;
    uint16_t head;

    cfg.kernel_delay_ms = 50; /* xvdm looks first, and must leave it */
    start_rng(&cfg);
    head = publish_buffer();
    kick();
    ck_assert_int_eq(sim_irq_wait(h.sim, d.irq, 0, WAIT_MS), 0);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_INTERRUPT_STATUS),
                      VIRTIO_MMIO_INT_VRING);
    vdriver_write(&d, VIRTIO_MMIO_INTERRUPT_ACK, 0xffff0001);
    ck_assert_uint_eq(sim_kernel_answers(h.sim), 2);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    vdriver_write(&d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING |
                                                     VIRTIO_MMIO_INT_CONFIG);
    vdriver_write(&d, VIRTIO_MMIO_INTERRUPT_ACK, 0);
    ck_assert_uint_eq(sim_kernel_answers(h.sim), 2);
    ck_assert_uint_eq(sim_kernel_missed(h.sim), 0);
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    ck_assert_uint_eq(id, head);
    harness_stop(&h);
}
END_TEST

START_TEST(nothing_stays_assigned_after_xvdm_stops)
{
    struct sim_config cfg = fast_config();

    start_rng(&cfg);
    /* rng's one queue, its InterruptACK, and its irqfd. */
    ck_assert_uint_eq(sim_eventfds_assigned(h.sim), 3);
    harness_halt(&h);
    ck_assert_uint_eq(sim_eventfds_assigned(h.sim), 0);
    harness_stop(&h);
}
END_TEST

static struct sim_config refused_cfg;

static void start_refused(void)
{
    start_rng(&refused_cfg);
}

START_TEST(a_host_that_refuses_gets_kicks_through_xvdm)
{
    uint16_t head;

    refused_cfg = fast_config();
    refused_cfg.ioeventfd_error = -ENOSPC;
    ck_assert_uint_eq(log_lines_during(start_refused, "kicks and interrupts "
                                                      "through xvdm"), 1);
    ck_assert_uint_eq(sim_eventfds_assigned(h.sim), 0);
    head = publish_buffer();
    kick();
    ck_assert_uint_eq(sim_kernel_answers(h.sim), 0);
    expect_served(head);
    ck_assert_uint_eq(sim_irqfd_edges(h.sim, d.irq), 0);
    harness_stop(&h);
}
END_TEST

static void log_counters(void)
{
    vm_log_counters(h.vm);
}

/* Three requests, each kicked: the counters say how many went each way. */
static unsigned counters_after_three_requests(bool fast, const char *want)
{
    struct sim_config cfg = fast_config();
    unsigned lines;

    cfg.eventfds = fast;
    start_rng(&cfg);
    for (int i = 0; i < 3; i++) {
        uint16_t head = publish_buffer();

        kick();
        expect_served(head);
    }
    /* The guest's next InterruptStatus read comes after the ACKs the host
     * answered, whenever xvdm's loop would have seen them. */
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    lines = log_lines_during(log_counters, want);
    harness_stop(&h);
    return lines;
}

START_TEST(the_counters_say_which_path_the_kicks_took)
{
    ck_assert_uint_eq(counters_after_three_requests(
                          true, "3 requests, 192 bytes to the guest; "),
                      1);
    ck_assert_uint_eq(counters_after_three_requests(
                          true, "kicks: 0 through xvdm, 3 through the host; "
                                "3 interrupts, 3 ACKs through the host; "
                                "ioreqs: 4 InterruptStatus, 0 InterruptACK, "
                                "0 QueueNotify"),
                      1);
    ck_assert_uint_eq(counters_after_three_requests(
                          false, "kicks: 3 through xvdm, 0 through the host; "
                                 "3 interrupts, 0 ACKs through the host; "
                                 "ioreqs: 4 InterruptStatus, 3 InterruptACK, "
                                 "3 QueueNotify"),
                      1);
}
END_TEST

static Suite *fastpath_suite(void)
{
    Suite *s = suite_create("fastpath");
    TCase *tc = tcase_create("fastpath");

    tcase_add_test(tc, the_host_answers_the_kick_and_xvdm_serves_it);
    tcase_add_test(tc, xvdm_leaves_the_kick_to_the_host_even_when_it_looks_first);
    tcase_add_test(tc, xvdm_leaves_the_kernel_every_request_its_test_takes);
    tcase_add_test(tc,
                   a_write_the_kernel_looks_at_and_gives_back_is_served_by_xvdm);
    tcase_add_test(tc, a_kick_written_as_the_fast_path_starts_is_answered);
    tcase_add_test(tc,
                   a_kick_the_kernel_gives_back_as_the_fast_path_starts_is_answered);
    tcase_add_test(
        tc, the_host_answers_an_ack_of_a_used_buffer_interrupt_and_xvdm_others);
    tcase_add_test(tc, nothing_stays_assigned_after_xvdm_stops);
    tcase_add_test(tc, a_host_that_refuses_gets_kicks_through_xvdm);
    tcase_add_test(tc, the_counters_say_which_path_the_kicks_took);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(fastpath_suite());
}
