/* SPDX-License-Identifier: MIT */
/* The virtio-mmio register file and status state machine, as a driver sees
 * them, with a recording device behind it. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "dev.h"
#include "guest-ring.h"
#include "hv.h"
#include "loop.h"
#include "sim.h"
#include "transport-mmio.h"

#define SPI 35
#define DEV_FEATURE_BIT 5
#define RING_GPA 0x40001000ULL

/* What the device behind the transport was asked. */
static struct {
    unsigned notified, resets, starts;
    unsigned last_queue;
    uint64_t features_seen;
    int features_verdict;
    uint8_t config[8];
} rec;

static int fake_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                       struct xvdm_device_setup *setup, void **priv)
{
    setup->features = 1ULL << DEV_FEATURE_BIT;
    setup->num_queues = 2;
    setup->queue_size_max[0] = 16;
    setup->queue_size_max[1] = 8;
    setup->config_size = sizeof(rec.config);
    return 0;
}

static void fake_destroy(void *priv)
{
}

static void fake_config_read(void *priv, uint32_t off, void *buf,
                             uint32_t len)
{
    memcpy(buf, rec.config + off, len);
}

static void fake_config_write(void *priv, uint32_t off, const void *buf,
                              uint32_t len)
{
    memcpy(rec.config + off, buf, len);
}

static int fake_features_ok(void *priv, uint64_t features)
{
    rec.features_seen = features;
    return rec.features_verdict;
}

static void fake_start(void *priv)
{
    rec.starts++;
}

static struct loop *loop;

static void fake_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    rec.notified++;
    rec.last_queue = index;
    loop_stop(loop); /* one turn is enough where a test runs the loop */
}

static void fake_reset(void *priv)
{
    rec.resets++;
}

static const struct xvdm_device_ops fake_ops = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "fake",
    .device_id = 42,
    .create = fake_create,
    .destroy = fake_destroy,
    .config_read = fake_config_read,
    .config_write = fake_config_write,
    .features_ok = fake_features_ok,
    .start = fake_start,
    .queue_notify = fake_notify,
    .reset = fake_reset,
};

static struct sim *sim;
static struct gaccess ram; /* the guest's RAM, mapped */
static struct xvdm_dev *dev;
static struct mmio m;

static void setup(void)
{
    struct sim_config cfg = {.domid = 1, .nr_vcpus = 1, .ram_size = 1 << 20};
    struct xvdm_options none = {0};

    memset(&rec, 0, sizeof(rec));
    sim = sim_create(&cfg);
    ram = (struct gaccess){.ram = &sim_hv(sim)->mem};
    loop = loop_create();
    ck_assert_ptr_nonnull(loop);
    ck_assert_int_eq(dev_create(&dev, &fake_ops, &none, 0, 1, loop, NULL, NULL),
                     0);
    mmio_init(&m, dev, &ram, sim_hv(sim), SPI, 0x2000000);
}

static void teardown(void)
{
    dev_destroy(dev);
    loop_destroy(loop);
    hv_close(sim_hv(sim));
    sim_destroy(sim);
}

static uint32_t rd(uint64_t off)
{
    return (uint32_t)mmio_read(&m, off, 4);
}

/* A guest's write, answered: then the kicks it made are drained, as
 * ioreq.c does. */
static void wr(uint64_t off, uint32_t v)
{
    mmio_write(&m, off, 4, v);
    mmio_run_kicks(&m);
}

static void accept_features(uint64_t f)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_FEATURES_OK);
}

#define GOOD_FEATURES ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << DEV_FEATURE_BIT))

/* A queue laid out in the sim's RAM, made ready: 0 or -1. */
static struct guest_ring rings[2];

static int make_ready(unsigned q, uint32_t num)
{
    struct guest_ring r;

    guest_ring_init(&r, sim_guest_ptr(sim, sim_ram_base(sim), 1),
                    sim_ram_base(sim), sim_ram_size(sim), RING_GPA + q * 0x1000,
                    (uint16_t)(num ? num : 1));
    wr(VIRTIO_MMIO_QUEUE_SEL, q);
    wr(VIRTIO_MMIO_QUEUE_NUM, num);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)r.desc_gpa);
    wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)r.avail_gpa);
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)r.used_gpa);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
    rings[q] = r;
    return rd(VIRTIO_MMIO_QUEUE_READY) == 1 ? 0 : -1;
}

START_TEST(identification_registers_read_as_the_spec_says)
{
    ck_assert_uint_eq(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_VERSION), 2);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_ID), 42);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
    wr(VIRTIO_MMIO_MAGIC_VALUE, 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
}
END_TEST

/* No shared memory regions: whichever the driver selects has length -1
 * (absent), as Linux's virtio_mmio reads it (its virtio_gpu asks). */
START_TEST(every_shared_memory_region_is_absent)
{
    for (uint32_t id = 0; id < 3; id++) {
        wr(VIRTIO_MMIO_SHM_SEL, id);
        ck_assert_uint_eq(rd(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
        ck_assert_uint_eq(rd(VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
        ck_assert_uint_eq(rd(VIRTIO_MMIO_SHM_BASE_LOW), 0xffffffff);
        ck_assert_uint_eq(rd(VIRTIO_MMIO_SHM_BASE_HIGH), 0xffffffff);
    }
}
END_TEST

START_TEST(device_features_are_offered_in_two_halves)
{
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES),
                      (1u << DEV_FEATURE_BIT) |
                          (1u << VIRTIO_F_INDIRECT_DESC) |
                          (1u << VIRTIO_F_EVENT_IDX));
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 */
    wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0);
}
END_TEST

START_TEST(features_ok_sticks_for_an_offered_subset_with_version_1)
{
    accept_features(GOOD_FEATURES);
    ck_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    ck_assert_uint_eq(rec.features_seen, GOOD_FEATURES);
    ck_assert_uint_eq(xvdm_dev_features(dev), GOOD_FEATURES);
    /* Features are frozen from here on. */
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, 0);
    ck_assert_uint_eq(dev->driver_features, GOOD_FEATURES);
}
END_TEST

START_TEST(features_ok_is_refused_without_version_1)
{
    accept_features(1ULL << DEV_FEATURE_BIT);
    ck_assert(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK));
}
END_TEST

START_TEST(features_ok_is_refused_for_bits_not_offered)
{
    accept_features(GOOD_FEATURES | (1ULL << 7));
    ck_assert(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK));
}
END_TEST

START_TEST(features_ok_is_refused_when_the_device_says_no)
{
    rec.features_verdict = -22;
    accept_features(GOOD_FEATURES);
    ck_assert(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK));
}
END_TEST

START_TEST(queue_limits_are_per_queue_and_checked_at_ready)
{
    accept_features(GOOD_FEATURES);
    wr(VIRTIO_MMIO_QUEUE_SEL, 1);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 8);
    wr(VIRTIO_MMIO_QUEUE_SEL, 2);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    ck_assert_int_eq(make_ready(1, 16), -1); /* above its max of 8 */
    ck_assert_int_eq(make_ready(1, 0), -1);
    ck_assert_int_eq(make_ready(1, 6), -1);
    ck_assert_int_eq(make_ready(1, 0x10008), -1); /* not truncated to 8 */
    ck_assert_int_eq(make_ready(1, 8), 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_DESC_LOW), RING_GPA + 0x1000);
}
END_TEST

START_TEST(queue_layout_is_frozen_while_ready)
{
    accept_features(GOOD_FEATURES);
    ck_assert_int_eq(make_ready(0, 16), 0);
    wr(VIRTIO_MMIO_QUEUE_NUM, 4);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x100);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_NUM), 16);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_DESC_LOW), RING_GPA);
    wr(VIRTIO_MMIO_QUEUE_READY, 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
}
END_TEST

START_TEST(queue_cannot_be_made_ready_before_features_ok)
{
    ck_assert_int_eq(make_ready(0, 16), -1);
}
END_TEST

START_TEST(notify_reaches_the_device_only_after_driver_ok)
{
    accept_features(GOOD_FEATURES);
    ck_assert_int_eq(make_ready(1, 8), 0);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    ck_assert_uint_eq(rec.notified, 0);
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    ck_assert_uint_eq(rec.starts, 1);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    ck_assert_uint_eq(rec.notified, 1);
    ck_assert_uint_eq(rec.last_queue, 1);
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);     /* not ready */
    wr(VIRTIO_MMIO_QUEUE_NOTIFY, 70000); /* no such queue */
    ck_assert_uint_eq(rec.notified, 1);
}
END_TEST

START_TEST(driver_ok_without_features_ok_is_refused)
{
    wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                               VIRTIO_STATUS_DRIVER_OK);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS),
                      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    ck_assert_uint_eq(rec.starts, 0);
}
END_TEST

START_TEST(status_bits_cannot_be_cleared_without_reset)
{
    accept_features(GOOD_FEATURES);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    ck_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
}
END_TEST

START_TEST(interrupt_status_is_raised_and_acknowledged)
{
    virtio_signal_used(dev);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
    virtio_config_changed(dev);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS),
                      VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_CONFIG_GENERATION), 1);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 2);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS),
                      VIRTIO_MMIO_INT_CONFIG);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    /* Xen ignores a lowered edge SPI: the ACKs cost no hypercall. */
    ck_assert_uint_eq(sim_irq_calls(sim, SPI), 2);
}
END_TEST

/* Linux's handler reads InterruptStatus, writes it back as the ACK, then
 * looks at its queues. An event raised between the read and the ACK has
 * its own interrupt on the way: its bit survives the ACK, so the handler
 * finds it when that interrupt comes (not an interrupt with nothing to
 * say, which Linux counts against the line). */
START_TEST(an_event_raised_after_the_guests_read_survives_its_ack)
{
    virtio_signal_used(dev);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
    virtio_signal_used(dev);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
    wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 2);
}
END_TEST

/* Each event the guest has read of makes the SPI pending again with one
 * hypercall, whatever the guest's handling of the last one; devices
 * sharing the SPI each get theirs through (Xen's vGICs take every level-1
 * call as an edge). */
START_TEST(every_event_of_every_device_on_an_spi_is_delivered)
{
    struct xvdm_options none = {0};
    struct xvdm_dev *other;
    struct mmio m2;

    ck_assert_int_eq(dev_create(&other, &fake_ops, &none, 1, 1, loop, NULL,
                                NULL), 0);
    mmio_init(&m2, other, &ram, sim_hv(sim), SPI, 0x2000200);
    virtio_signal_used(dev);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 1);
    ck_assert_uint_eq(sim_irq_calls(sim, SPI), 1);
    virtio_signal_used(other); /* while the first is pending */
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
    virtio_signal_used(dev); /* more work on the first, once read */
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 3);
    ck_assert_uint_eq(sim_irq_calls(sim, SPI), 3);
    dev_destroy(other);
}
END_TEST

/* Until the guest reads InterruptStatus, its handler is still to come
 * and will look at every queue: a second event rides on the interrupt
 * already on its way, instead of costing the guest one more (and two
 * traps, its read and ACK, for nothing). A config change is an event of
 * its own kind. */
START_TEST(an_event_before_the_guest_reads_rides_on_the_interrupt_on_its_way)
{
    virtio_signal_used(dev);
    virtio_signal_used(dev);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 1);
    virtio_config_changed(dev);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 2);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS),
                      VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
    virtio_signal_used(dev);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 3);
}
END_TEST

START_TEST(config_space_is_little_endian_and_bounded)
{
    memcpy(rec.config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    ck_assert_uint_eq(mmio_read(&m, 0x100, 4), 0x04030201);
    ck_assert_uint_eq(mmio_read(&m, 0x106, 2), 0x0807);
    ck_assert_uint_eq(mmio_read(&m, 0x100, 8), 0x0807060504030201ULL);
    ck_assert_uint_eq(mmio_read(&m, 0x106, 4), 0); /* runs past 8 bytes */
    ck_assert_uint_eq(mmio_read(&m, 0x1ff, 1), 0);
    mmio_write(&m, 0x101, 2, 0xbbaa);
    ck_assert_uint_eq(rec.config[1], 0xaa);
    ck_assert_uint_eq(rec.config[2], 0xbb);
    mmio_write(&m, 0x107, 2, 0xffff);
    ck_assert_uint_eq(rec.config[7], 0x08);
}
END_TEST

START_TEST(registers_take_only_aligned_32_bit_accesses)
{
    accept_features(GOOD_FEATURES);
    ck_assert_uint_eq(mmio_read(&m, VIRTIO_MMIO_MAGIC_VALUE, 1), 0);
    ck_assert_uint_eq(mmio_read(&m, VIRTIO_MMIO_MAGIC_VALUE, 8), 0);
    ck_assert_uint_eq(mmio_read(&m, VIRTIO_MMIO_VERSION + 1, 4), 0);
    mmio_write(&m, VIRTIO_MMIO_STATUS, 1, 0);
    mmio_write(&m, VIRTIO_MMIO_STATUS, 2, 0);
    mmio_write(&m, VIRTIO_MMIO_STATUS, 8, 0);
    ck_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    ck_assert_uint_eq(rec.resets, 0);
}
END_TEST

START_TEST(reset_quiesces_device_queues_and_interrupts)
{
    accept_features(GOOD_FEATURES);
    ck_assert_int_eq(make_ready(0, 16), 0);
    virtio_signal_used(dev);
    wr(VIRTIO_MMIO_STATUS, 0);
    ck_assert_uint_eq(rec.resets, 1);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    ck_assert_uint_eq(sim_irq_calls(sim, SPI), 1); /* nothing lowered */
    wr(VIRTIO_MMIO_QUEUE_SEL, 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_NUM), 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
    ck_assert_uint_eq(xvdm_dev_features(dev), 0);
}
END_TEST

START_TEST(needs_reset_sets_status_and_a_config_interrupt_once)
{
    accept_features(GOOD_FEATURES);
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    virtio_needs_reset(dev);
    virtio_needs_reset(dev);
    ck_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
    ck_assert_uint_eq(sim_irq_edges(sim, SPI), 1);
    /* The driver cannot clear it but by a reset. */
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) & ~64u);
    ck_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    wr(VIRTIO_MMIO_STATUS, 0);
    ck_assert_uint_eq(rd(VIRTIO_MMIO_STATUS), 0);
}
END_TEST

/* However fast the guest makes chains available again (a second vCPU
 * republishing each one as it is used), a queue hands out at most its
 * size per turn of the loop: then it has no more for now, asks for no
 * kick, and is drained again from the loop's next turn. */
START_TEST(a_queue_hands_out_at_most_its_size_per_loop_turn)
{
    struct xvdm_queue *q = xvdm_dev_queue(dev, 0);
    struct guest_buf b = {RING_GPA + 0x8000, 16, true};
    struct iovec iov[2];
    struct xvdm_chain c = {.iov = iov, .iov_cap = 2};
    uint16_t head;

    accept_features(GOOD_FEATURES);
    ck_assert_int_eq(make_ready(0, 16), 0);
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    head = guest_ring_add_chain(&rings[0], &b, 1);
    guest_ring_publish(&rings[0], head);
    for (unsigned i = 0; i < 16; i++) {
        ck_assert_int_eq(xvdm_queue_pop(q, &c), 1);
        xvdm_queue_push(q, &c, 0);
        guest_ring_publish(&rings[0], head);
    }
    ck_assert_int_eq(xvdm_queue_pop(q, &c), 0);
    ck_assert(!xvdm_queue_enable_kicks(q));
    ck_assert_uint_eq(rec.notified, 0);
    ck_assert_int_eq(loop_run(loop), 0); /* the deferred notify stops it */
    ck_assert_uint_eq(rec.notified, 1);
    ck_assert_int_eq(xvdm_queue_pop(q, &c), 1);
}
END_TEST

static Suite *transport_suite(void)
{
    Suite *s = suite_create("transport-mmio");
    TCase *tc = tcase_create("registers");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, identification_registers_read_as_the_spec_says);
    tcase_add_test(tc, every_shared_memory_region_is_absent);
    tcase_add_test(tc, device_features_are_offered_in_two_halves);
    tcase_add_test(tc, features_ok_sticks_for_an_offered_subset_with_version_1);
    tcase_add_test(tc, features_ok_is_refused_without_version_1);
    tcase_add_test(tc, features_ok_is_refused_for_bits_not_offered);
    tcase_add_test(tc, features_ok_is_refused_when_the_device_says_no);
    tcase_add_test(tc, queue_limits_are_per_queue_and_checked_at_ready);
    tcase_add_test(tc, queue_layout_is_frozen_while_ready);
    tcase_add_test(tc, queue_cannot_be_made_ready_before_features_ok);
    tcase_add_test(tc, notify_reaches_the_device_only_after_driver_ok);
    tcase_add_test(tc, driver_ok_without_features_ok_is_refused);
    tcase_add_test(tc, status_bits_cannot_be_cleared_without_reset);
    tcase_add_test(tc, interrupt_status_is_raised_and_acknowledged);
    tcase_add_test(tc, an_event_raised_after_the_guests_read_survives_its_ack);
    tcase_add_test(tc, config_space_is_little_endian_and_bounded);
    tcase_add_test(tc, registers_take_only_aligned_32_bit_accesses);
    tcase_add_test(tc, reset_quiesces_device_queues_and_interrupts);
    tcase_add_test(tc, needs_reset_sets_status_and_a_config_interrupt_once);
    tcase_add_test(tc, a_queue_hands_out_at_most_its_size_per_loop_turn);
    tcase_add_test(tc, every_event_of_every_device_on_an_spi_is_delivered);
    tcase_add_test(tc,
                   an_event_before_the_guest_reads_rides_on_the_interrupt_on_its_way);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(transport_suite());
}
