/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpio on the simulated hypervisor, its chip the stand-in of
 * gpio-stub.h, with a driver sending requests and posting interrupt
 * buffers as Linux's gpio-virtio does: names from the chip, directions
 * and values reaching the chip's lines, edge and level interrupts,
 * masking and disabling, a reset giving every line back, hostile
 * requests, and the options a user can get wrong.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <linux/gpio.h>
#include <linux/virtio_gpio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "dev.h"
#include "gpio-stub.h"
#include "harness.h"
#include "log-lines.h"
#include "refused-spec.h"
#include "vdriver.h"

#define GPIO_ID 41
#define RING 64
#define WAIT_MS 5000
/* Long enough for the loop to see an edge it must not pass on. */
#define QUIET_MS 50
#define FEATURES (DEV_TRANSPORT_FEATURES | 1ULL << VIRTIO_GPIO_F_IRQ)
#define REQ_LEN ((uint32_t)sizeof(struct virtio_gpio_request))
#define ERR VIRTIO_GPIO_STATUS_ERR
#define OK VIRTIO_GPIO_STATUS_OK
#define IN VIRTIO_GPIO_DIRECTION_IN
#define OUT VIRTIO_GPIO_DIRECTION_OUT
#define NONE VIRTIO_GPIO_DIRECTION_NONE
#define VALID VIRTIO_GPIO_IRQ_STATUS_VALID
#define INVALID VIRTIO_GPIO_IRQ_STATUS_INVALID
/* Used length of an eventq buffer the device still holds. */
#define HELD 0xffffffffu

/* The chip's lines: 0..7 named as below, 10 lines in all. */
#define CHIP_LINES 10
static const char *const chip_names[CHIP_LINES] = {
    "MMC-CD", NULL,          "Red LED Vdd", "ethernet reset",
    "MMC-CD", "caf\xc3\xa9", "BTN",
};
/* The guest's lines 0..4 are chip lines 6, 0, 1, 2, 3. */
#define LINES_OPT "6:0-3"
#define G_BTN 0 /* chip line 6 */
#define G_CD 1  /* chip line 0 */
#define NR_LINES 5

static struct harness h;
static struct vdriver d;
static const char *chip;

static void start_with(const char *lines, uint64_t features)
{
    char spec[160];
    const char *specs[] = {spec};

    chip = gpio_stub_start(CHIP_LINES, chip_names);
    snprintf(spec, sizeof(spec), "gpio,chip=%s,lines=%s", chip, lines);
    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 16 << 20);
    ck_assert_int_eq(vdriver_probe(&d, GPIO_ID, features), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, RING), 0);
    if (features & (1ULL << VIRTIO_GPIO_F_IRQ))
        ck_assert_int_eq(vdriver_setup_queue(&d, 1, RING), 0);
    vdriver_driver_ok(&d);
    ck_assert_int_eq(d.io_error, 0);
}

static void start(void)
{
    start_with(LINES_OPT, FEATURES);
}

static void finish(void)
{
    harness_stop(&h);
    gpio_stub_stop();
}

/* Wait for the next used element of queue q, as Linux's driver does. */
static void next_used(unsigned q, uint32_t *id, uint32_t *len)
{
    while (!guest_ring_get_used(&d.ring[q], id, len)) {
        guest_ring_enable_cb(&d.ring[q]);
        if (guest_ring_get_used(&d.ring[q], id, len))
            return;
        ck_assert_int_ge(vdriver_wait_irq(&d, WAIT_MS), 0);
    }
}

/* Post a chain of bufs on queue q, kick, wait for it back; its used
 * length. */
static uint32_t round_trip(unsigned q, const struct guest_buf *b, unsigned n)
{
    uint16_t head = guest_ring_add_chain(&d.ring[q], b, n);
    uint32_t id, len;

    guest_ring_publish(&d.ring[q], head);
    vdriver_kick(&d, q);
    next_used(q, &id, &len);
    ck_assert_uint_eq(id, head);
    return len;
}

static struct guest_buf buf_of(uint32_t len, bool write)
{
    struct guest_buf b = {vdriver_alloc(&d, len, 8), len, write};

    memset(vdriver_ptr(&d, b.gpa), 0xee, len);
    return b;
}

static struct guest_buf request_buf(uint16_t type, uint16_t gpio,
                                    uint32_t value)
{
    struct guest_buf b = buf_of(REQ_LEN, false);
    struct virtio_gpio_request r = {htole16(type), htole16(gpio),
                                    htole32(value)};

    memcpy(vdriver_ptr(&d, b.gpa), &r, sizeof(r));
    return b;
}

/* A request as Linux's driver sends it: its status, its value into
 * *value (when not NULL). An OK answer is 2 bytes long. */
static uint8_t request(uint16_t type, uint16_t gpio, uint32_t value,
                       uint8_t *out)
{
    struct guest_buf b[2] = {request_buf(type, gpio, value), buf_of(2, true)};
    uint32_t len = round_trip(0, b, 2);
    const uint8_t *res = vdriver_ptr(&d, b[1].gpa);

    if (res[0] == OK)
        ck_assert_uint_eq(len, 2);
    if (out)
        *out = res[1];
    return res[0];
}

static void set_direction(uint16_t gpio, uint8_t dir)
{
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_SET_DIRECTION, gpio, dir, NULL),
                      OK);
}

static uint8_t get(uint16_t type, uint16_t gpio)
{
    uint8_t v = 0xee;

    ck_assert_uint_eq(request(type, gpio, 0, &v), OK);
    return v;
}

static void set_irq_type(uint16_t gpio, uint8_t type)
{
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_IRQ_TYPE, gpio, type, NULL), OK);
}

/* An interrupt buffer posted for gpio (unmasking it). */
struct irq {
    uint16_t head;
    uint64_t status;
};

static struct irq irq_post_raw(uint32_t req_len, uint16_t gpio,
                               uint32_t status_len)
{
    struct guest_buf b[2] = {buf_of(req_len, false), buf_of(status_len, true)};
    uint16_t g = htole16(gpio);
    struct irq irq;

    memcpy(vdriver_ptr(&d, b[0].gpa), &g, req_len < 2 ? req_len : 2);
    irq.status = b[1].gpa;
    irq.head = guest_ring_add_chain(&d.ring[1], b, status_len ? 2 : 1);
    guest_ring_publish(&d.ring[1], irq.head);
    vdriver_kick(&d, 1);
    return irq;
}

static struct irq irq_post(uint16_t gpio)
{
    return irq_post_raw(2, gpio, 1);
}

/* The buffer's status once the device gave it back, or HELD when it has
 * not within QUIET_MS after a request round trip (so after the loop saw
 * what came before). */
static uint32_t irq_status(const struct irq *irq)
{
    uint32_t id, len;

    usleep(QUIET_MS * 1000);
    get(VIRTIO_GPIO_MSG_GET_DIRECTION, 0);
    if (!guest_ring_get_used(&d.ring[1], &id, &len))
        return HELD;
    ck_assert_uint_eq(id, irq->head);
    ck_assert_uint_eq(len, 1);
    return *(uint8_t *)vdriver_ptr(&d, irq->status);
}

/* Wait for the buffer back (the loop sees an edge in its own time). */
static uint8_t irq_wait(const struct irq *irq)
{
    uint32_t id, len;

    next_used(1, &id, &len);
    ck_assert_uint_eq(id, irq->head);
    ck_assert_uint_eq(len, 1);
    return *(uint8_t *)vdriver_ptr(&d, irq->status);
}

/* ---- names, directions, values --------------------------------------------
 */

START_TEST(names_come_from_the_chip_in_the_guests_order)
{
    /* Line 4 repeats line 0's name and line 5's is not 7-bit ASCII: both
     * empty; line 1 has none. */
    static const char want[] = "BTN\0MMC-CD\0\0Red LED Vdd\0ethernet reset";
    struct virtio_gpio_config c;
    struct guest_buf b[2];
    uint32_t size;

    start_with("6:0-5", FEATURES);
    for (unsigned i = 0; i < sizeof(c); i++)
        ((uint8_t *)&c)[i] = (uint8_t)vdriver_read(&d, 0x100 + i);
    ck_assert_uint_eq(le16toh(c.ngpio), 7);
    size = le32toh(c.gpio_names_size);
    ck_assert_uint_eq(size, sizeof(want) + 2);
    b[0] = request_buf(VIRTIO_GPIO_MSG_GET_NAMES, 0, 0);
    b[1] = buf_of(1 + size, true);
    ck_assert_uint_eq(round_trip(0, b, 2), 1 + size);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, b[1].gpa), OK);
    ck_assert_mem_eq((uint8_t *)vdriver_ptr(&d, b[1].gpa) + 1, want,
                     sizeof(want));
    ck_assert_mem_eq((uint8_t *)vdriver_ptr(&d, b[1].gpa) + 1 + sizeof(want),
                     "\0\0", 2);
    finish();
}
END_TEST

START_TEST(directions_the_guest_sets_are_line_requests_on_the_chip)
{
    start();
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_DIRECTION, 2), NONE);
    ck_assert_uint_eq(gpio_stub_requests_held(), 0);
    set_direction(2, IN); /* chip line 1 */
    ck_assert_uint_eq(gpio_stub_flags(1), GPIO_V2_LINE_FLAG_INPUT);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_DIRECTION, 2), IN);
    set_direction(2, OUT);
    ck_assert_uint_eq(gpio_stub_flags(1), GPIO_V2_LINE_FLAG_OUTPUT);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_DIRECTION, 2), OUT);
    ck_assert_uint_eq(gpio_stub_requests_made(), 1);
    set_direction(2, NONE);
    ck_assert_uint_eq(gpio_stub_flags(1), 0);
    ck_assert_uint_eq(gpio_stub_requests_held(), 0);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_DIRECTION, 2), NONE);
    finish();
}
END_TEST

START_TEST(values_reach_the_chip_and_come_back_from_it)
{
    start();
    /* Linux sets the value, then the direction: the line starts high. */
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_SET_VALUE, 4, 1, NULL), OK);
    set_direction(4, OUT); /* chip line 3 */
    ck_assert_int_eq(gpio_stub_level(3), 1);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_VALUE, 4), 1);
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_SET_VALUE, 4, 0, NULL), OK);
    ck_assert_int_eq(gpio_stub_level(3), 0);
    /* An input reads what drives it. */
    set_direction(G_BTN, IN);
    gpio_stub_drive(6, 1);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_VALUE, G_BTN), 1);
    gpio_stub_drive(6, 0);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_VALUE, G_BTN), 0);
    finish();
}
END_TEST

/* ---- interrupts ------------------------------------------------------------
 */

START_TEST(an_edge_interrupt_fires_when_unmasked_and_is_latched_when_masked)
{
    struct irq irq;

    start();
    set_direction(G_BTN, IN);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    ck_assert_uint_eq(gpio_stub_flags(6),
                      GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING);
    irq = irq_post(G_BTN);
    ck_assert_uint_eq(irq_status(&irq), HELD);
    gpio_stub_drive(6, 1);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    /* Masked now: a rising edge is kept for the next unmask. */
    gpio_stub_drive(6, 0);
    gpio_stub_drive(6, 1);
    usleep(QUIET_MS * 1000);
    irq = irq_post(G_BTN);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    /* A falling edge is not the rising one asked for. */
    irq = irq_post(G_BTN);
    gpio_stub_drive(6, 0);
    ck_assert_uint_eq(irq_status(&irq), HELD);
    finish();
}
END_TEST

START_TEST(a_level_interrupt_fires_at_once_while_the_line_is_at_its_level)
{
    struct irq irq;

    start();
    set_direction(G_CD, IN);
    gpio_stub_drive(0, 1);
    set_irq_type(G_CD, VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH);
    irq = irq_post(G_CD);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    /* Still high when the handler unmasks it again: again. */
    irq = irq_post(G_CD);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    /* Low, then high while masked: a level is not latched. */
    gpio_stub_drive(0, 0);
    usleep(QUIET_MS * 1000);
    irq = irq_post(G_CD);
    ck_assert_uint_eq(irq_status(&irq), HELD);
    gpio_stub_drive(0, 1);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    finish();
}
END_TEST

START_TEST(a_level_low_interrupt_waits_for_the_line_to_go_low)
{
    struct irq irq;

    start();
    set_direction(G_CD, IN);
    gpio_stub_drive(0, 1);
    set_irq_type(G_CD, VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW);
    irq = irq_post(G_CD);
    ck_assert_uint_eq(irq_status(&irq), HELD);
    gpio_stub_drive(0, 0);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    finish();
}
END_TEST

START_TEST(disabling_an_interrupt_returns_its_buffer_invalid)
{
    struct irq irq;

    start();
    set_direction(G_BTN, IN);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
    irq = irq_post(G_BTN);
    ck_assert_uint_eq(irq_status(&irq), HELD);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_NONE);
    ck_assert_uint_eq(irq_wait(&irq), INVALID);
    ck_assert_uint_eq(gpio_stub_flags(6), GPIO_V2_LINE_FLAG_INPUT);
    /* Unmasked while not enabled: back at once. */
    irq = irq_post(G_BTN);
    ck_assert_uint_eq(irq_wait(&irq), INVALID);
    /* An edge latched while enabled is forgotten when it is disabled. */
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
    gpio_stub_drive(6, 1);
    usleep(QUIET_MS * 1000);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_NONE);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
    irq = irq_post(G_BTN);
    ck_assert_uint_eq(irq_status(&irq), HELD);
    gpio_stub_drive(6, 0);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    finish();
}
END_TEST

/* An edge dom0's kernel queued before the guest changed the interrupt's
 * type, read by xvdm only after, is not one of the new type's. */
START_TEST(an_edge_from_before_the_type_changed_does_not_fire)
{
    struct irq irq;

    start();
    set_direction(G_BTN, IN);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
    gpio_stub_late_events(true);
    gpio_stub_drive(6, 1);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_NONE);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
    gpio_stub_late_events(false);
    usleep(QUIET_MS * 1000);
    irq = irq_post(G_BTN);
    ck_assert_uint_eq(irq_status(&irq), HELD);
    /* An edge after the change still fires. */
    gpio_stub_drive(6, 0);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    finish();
}
END_TEST

/* A request that changes nothing in dom0's detection leaves the
 * kernel's queue alone: an edge it queued before is one of the type the
 * guest still has, for an edge type and for a level one alike. */
static void expect_edge_kept_across_direction_in(uint8_t type)
{
    struct irq irq;

    start();
    set_direction(G_BTN, IN);
    set_irq_type(G_BTN, type);
    irq = irq_post(G_BTN);
    ck_assert_uint_eq(irq_status(&irq), HELD);
    gpio_stub_late_events(true);
    gpio_stub_drive(6, 1);
    set_direction(G_BTN, IN);
    gpio_stub_late_events(false);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    finish();
}

START_TEST(an_edge_queued_before_a_request_that_changes_no_edge_fires)
{
    expect_edge_kept_across_direction_in(VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    expect_edge_kept_across_direction_in(VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH);
}
END_TEST

/* Linux's gpiod_put(): direction none drops the line and its interrupt. */
START_TEST(direction_none_gives_the_line_back_and_returns_its_buffer)
{
    struct irq irq;

    start();
    set_direction(G_BTN, IN);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    irq = irq_post(G_BTN);
    set_direction(G_BTN, NONE);
    ck_assert_uint_eq(irq_wait(&irq), INVALID);
    ck_assert_uint_eq(gpio_stub_requests_held(), 0);
    finish();
}
END_TEST

/* An interrupt user alone (a DT interrupts = <&gpio N ...>) sends no
 * direction: the line is requested as an input for its edges. */
START_TEST(an_interrupt_on_a_line_without_direction_requests_it_as_input)
{
    struct irq irq;

    start();
    set_irq_type(G_CD, VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING);
    ck_assert_uint_eq(gpio_stub_flags(0),
                      GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_FALLING);
    gpio_stub_drive(0, 1);
    irq = irq_post(G_CD);
    gpio_stub_drive(0, 0);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
    set_irq_type(G_CD, VIRTIO_GPIO_IRQ_TYPE_NONE);
    ck_assert_uint_eq(gpio_stub_requests_held(), 0);
    finish();
}
END_TEST

START_TEST(a_reset_gives_every_line_back_and_forgets_held_buffers)
{
    start();
    set_direction(2, OUT);
    set_direction(G_BTN, IN);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    irq_post(G_BTN);
    ck_assert_uint_eq(gpio_stub_requests_held(), 2);
    vdriver_reset(&d);
    ck_assert_uint_eq(gpio_stub_requests_held(), 0);
    /* Nothing of the old rings is touched by an edge now. */
    gpio_stub_drive(6, 1);
    ck_assert_int_eq(vdriver_probe(&d, GPIO_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, RING), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 1, RING), 0);
    vdriver_driver_ok(&d);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_DIRECTION, 2), NONE);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_DIRECTION, G_BTN), NONE);
    finish();
}
END_TEST

static void set_held_line_input(void)
{
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_SET_DIRECTION, 4, IN, NULL), ERR);
}

START_TEST(a_line_dom0_holds_gets_err_and_a_line_naming_why)
{
    start();
    gpio_stub_hold(3, true);
    ck_assert_uint_ge(log_lines_during(set_held_line_input, "busy"), 1);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_DIRECTION, 4), NONE);
    gpio_stub_hold(3, false);
    set_direction(4, IN);
    finish();
}
END_TEST

START_TEST(without_the_irq_feature_interrupt_types_are_refused)
{
    start_with(LINES_OPT, DEV_TRANSPORT_FEATURES);
    set_direction(G_BTN, IN);
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_IRQ_TYPE, G_BTN,
                              VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING, NULL),
                      ERR);
    ck_assert_uint_eq(gpio_stub_flags(6), GPIO_V2_LINE_FLAG_INPUT);
    finish();
}
END_TEST

/* ---- hostile requests
 * -------------------------------------------------------- */

static void hostile_requests(void)
{
    static const struct {
        uint16_t type, gpio;
        uint32_t value;
    } bad[] = {
        {VIRTIO_GPIO_MSG_GET_DIRECTION, NR_LINES, 0},
        {VIRTIO_GPIO_MSG_SET_VALUE, 0xffff, 1},
        {VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 1},
        {VIRTIO_GPIO_MSG_SET_DIRECTION, 0, 3},
        {VIRTIO_GPIO_MSG_SET_VALUE, 0, 2},
        {VIRTIO_GPIO_MSG_GET_VALUE, 0, 0}, /* no direction yet */
        {VIRTIO_GPIO_MSG_IRQ_TYPE, 0, 5},
        {VIRTIO_GPIO_MSG_IRQ_TYPE, 0, 0x10},
        {0, 0, 0},
        {7, 0, 0},
        {0x8001, 0, 0},
    };

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(request(bad[i].type, bad[i].gpio, bad[i].value, NULL) ==
                          ERR,
                      "bad request %u not refused", i);
    /* An interrupt on an output, an output with an interrupt. */
    set_direction(2, OUT);
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_IRQ_TYPE, 2,
                              VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING, NULL),
                      ERR);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_SET_DIRECTION, G_BTN, OUT, NULL),
                      ERR);
}

/* Chains that are not requests as the spec lays them out. */
static void hostile_chains(void)
{
    struct guest_buf b[2];

    /* A request of 4 bytes (type and gpio of a good one); of 12 (a good
     * one and 4 bytes more). */
    b[0] = request_buf(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0);
    b[0].len = 4;
    b[1] = buf_of(2, true);
    ck_assert_uint_eq(round_trip(0, b, 2), 2);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, b[1].gpa), ERR);
    b[0] = buf_of(12, false);
    memcpy(
        vdriver_ptr(&d, b[0].gpa),
        vdriver_ptr(&d, request_buf(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0).gpa),
        REQ_LEN);
    ck_assert_uint_eq(round_trip(0, b, 2), 2);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, b[1].gpa), ERR);
    /* A response of 1 byte: its status alone. */
    b[0] = request_buf(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0);
    b[1] = buf_of(1, true);
    ck_assert_uint_eq(round_trip(0, b, 2), 1);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, b[1].gpa), ERR);
    /* Names of "line 1", or with a value: the spec has both 0. */
    b[0] = request_buf(VIRTIO_GPIO_MSG_GET_NAMES, 1, 0);
    b[1] = buf_of(256, true);
    round_trip(0, b, 2);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, b[1].gpa), ERR);
    b[0] = request_buf(VIRTIO_GPIO_MSG_GET_NAMES, 0, 1);
    round_trip(0, b, 2);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, b[1].gpa), ERR);
    /* Names into less room than they take. */
    b[0] = request_buf(VIRTIO_GPIO_MSG_GET_NAMES, 0, 0);
    b[1] = buf_of(8, true);
    round_trip(0, b, 2);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, b[1].gpa), ERR);
    /* No response at all: back with nothing written. */
    b[0] = request_buf(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0);
    ck_assert_uint_eq(round_trip(0, b, 1), 0);
}

static void hostile_irq_buffers(void)
{
    struct irq irq, second;
    uint32_t id, len;

    /* For no line. */
    irq = irq_post(NR_LINES);
    ck_assert_uint_eq(irq_wait(&irq), INVALID);
    /* For a line whose interrupt is enabled, but with a request of 1 or
     * 3 bytes, or no byte for the status: back at once. */
    set_direction(G_BTN, IN);
    set_irq_type(G_BTN, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
    irq = irq_post_raw(1, G_BTN, 1);
    ck_assert_uint_eq(irq_wait(&irq), INVALID);
    irq = irq_post_raw(3, G_BTN, 1);
    ck_assert_uint_eq(irq_wait(&irq), INVALID);
    irq = irq_post_raw(2, G_BTN, 0);
    next_used(1, &id, &len);
    ck_assert_uint_eq(id, irq.head);
    ck_assert_uint_eq(len, 0);
    /* A second buffer for a line that has one. */
    irq = irq_post(G_BTN);
    second = irq_post(G_BTN);
    ck_assert_uint_eq(irq_wait(&second), INVALID);
    gpio_stub_drive(6, 1);
    ck_assert_uint_eq(irq_wait(&irq), VALID);
}

/* fn's requests log at least `lines` lines, and the device serves
 * after them. */
static void refused_with_lines(void (*fn)(void), unsigned lines)
{
    start();
    ck_assert_uint_ge(log_lines_during(fn, "gpio0"), lines);
    set_direction(3, IN);
    ck_assert_uint_eq(get(VIRTIO_GPIO_MSG_GET_DIRECTION, 3), IN);
    finish();
}

START_TEST(hostile_requests_get_err_and_a_line)
{
    refused_with_lines(hostile_requests, 10);
}
END_TEST

START_TEST(chains_not_laid_out_as_requests_get_err_and_a_line)
{
    refused_with_lines(hostile_chains, 7);
}
END_TEST

START_TEST(bad_interrupt_buffers_come_back_invalid_with_a_line)
{
    refused_with_lines(hostile_irq_buffers, 5);
}
END_TEST

/* ---- options
 * ------------------------------------------------------------------ */

static void expect_refused(const char *opts, const char *value)
{
    expect_refused_spec(&h, "gpio", opts, chip, value);
}

START_TEST(bad_options_are_refused_naming_the_value)
{
    chip = gpio_stub_start(GPIO_STUB_LINES_MAX, NULL);
    expect_refused("lines=0", "chip=");
    expect_refused("chip=/nonexistent/gpiochip9,lines=0",
                   "chip=/nonexistent/gpiochip9");
    expect_refused("chip=/dev/null,lines=0", "chip=/dev/null");
    expect_refused("chip=%s", "lines=");
    expect_refused("chip=%s,lines=", "lines=");
    expect_refused("chip=%s,lines=0-3:80", "'80'");
    expect_refused("chip=%s,lines=2:0-3", "'0-3'");
    expect_refused("chip=%s,lines=0-64", "more than 64");
    expect_refused("chip=%s,lines=0:x", "'x'");
    expect_refused("chip=%s,lines=0x1", "'0x1'");
    expect_refused("chip=%s,lines=5-2", "'5-2'");
    expect_refused("chip=%s,lines=-1", "'-1'");
    expect_refused("chip=%s,lines=1::2", "empty");
    /* ',' ends the option: the next line is taken for a key. */
    expect_refused("chip=%s,lines=0,1", "1");
    gpio_stub_stop();
}
END_TEST

START_TEST(sixty_four_lines_are_served)
{
    char spec[160];
    const char *specs[] = {spec};

    chip = gpio_stub_start(GPIO_STUB_LINES_MAX, NULL);
    snprintf(spec, sizeof(spec), "gpio,chip=%s,lines=16-79", chip);
    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 16 << 20);
    ck_assert_int_eq(vdriver_probe(&d, GPIO_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, RING), 0);
    vdriver_driver_ok(&d);
    set_direction(63, IN);
    ck_assert_uint_eq(gpio_stub_flags(79), GPIO_V2_LINE_FLAG_INPUT);
    ck_assert_uint_eq(request(VIRTIO_GPIO_MSG_GET_DIRECTION, 64, 0, NULL), ERR);
    finish();
}
END_TEST

static Suite *gpio_suite(void)
{
    Suite *s = suite_create("gpio");
    TCase *tc = tcase_create("lines");

    tcase_add_test(tc, names_come_from_the_chip_in_the_guests_order);
    tcase_add_test(tc, directions_the_guest_sets_are_line_requests_on_the_chip);
    tcase_add_test(tc, values_reach_the_chip_and_come_back_from_it);
    tcase_add_test(tc, a_reset_gives_every_line_back_and_forgets_held_buffers);
    tcase_add_test(tc, a_line_dom0_holds_gets_err_and_a_line_naming_why);
    tcase_add_test(tc, bad_options_are_refused_naming_the_value);
    tcase_add_test(tc, sixty_four_lines_are_served);
    suite_add_tcase(s, tc);
    tc = tcase_create("interrupts");
    tcase_add_test(
        tc, an_edge_interrupt_fires_when_unmasked_and_is_latched_when_masked);
    tcase_add_test(tc, an_edge_from_before_the_type_changed_does_not_fire);
    tcase_add_test(tc,
                   an_edge_queued_before_a_request_that_changes_no_edge_fires);
    tcase_add_test(
        tc, a_level_interrupt_fires_at_once_while_the_line_is_at_its_level);
    tcase_add_test(tc, a_level_low_interrupt_waits_for_the_line_to_go_low);
    tcase_add_test(tc, disabling_an_interrupt_returns_its_buffer_invalid);
    tcase_add_test(tc,
                   direction_none_gives_the_line_back_and_returns_its_buffer);
    tcase_add_test(
        tc, an_interrupt_on_a_line_without_direction_requests_it_as_input);
    tcase_add_test(tc, without_the_irq_feature_interrupt_types_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc, hostile_requests_get_err_and_a_line);
    tcase_add_test(tc, chains_not_laid_out_as_requests_get_err_and_a_line);
    tcase_add_test(tc, bad_interrupt_buffers_come_back_invalid_with_a_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(gpio_suite);
}
