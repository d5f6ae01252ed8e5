/* SPDX-License-Identifier: MIT */
/*
 * virtio-input on the simulated hypervisor, fed by the evdev stand-in
 * of evdev-stub.h, with a driver that asks the config space and posts
 * event buffers as Linux's virtio_input does: the device's identity and
 * capabilities byte for byte, events end to end, LEDs back to the
 * device, no reading ahead of the guest's buffers, hostile selects,
 * buffers and status events, and the options a user can get wrong.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <endian.h>
#include <linux/input.h>
#include <linux/virtio_config.h>
#include <linux/virtio_input.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "dev.h"
#include "evdev-stub.h"
#include "harness.h"
#include "log-lines.h"
#include "refused-spec.h"
/* Last: its guest, h and d, would shadow the names of the helpers above. */
#include "input-guest.h"

static const char *node;

static void start_with(enum evdev_stub_kind kind, const char *opts)
{
    char spec[160];
    const char *specs[] = {spec};

    node = evdev_stub_start(kind);
    snprintf(spec, sizeof(spec), "input,evdev=%s%s", node, opts);
    input_guest_start(specs, 1, 0);
}

static void start(enum evdev_stub_kind kind)
{
    start_with(kind, "");
}

static void finish(void)
{
    harness_stop(&h);
    evdev_stub_stop();
}

START_TEST(a_keyboard_answers_its_identity_and_codes_byte_for_byte)
{
    /* bustype, vendor, product, version: le16 each. */
    const uint8_t ids[] = {0x03, 0, 0x6d, 0x04, 0x1c, 0xc3, 0x11, 0x01};
    /* KEY_ESC (1) .. KEY_Z (44), KEY_CAPSLOCK (58). */
    const uint8_t keys[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0x1f, 0, 0x04};
    const uint8_t leds[] = {0x07}, msc[] = {0x10};

    start(EVDEV_STUB_KEYBOARD);
    expect_answer(VIRTIO_INPUT_CFG_ID_NAME, 0, "xvdm test keyboard", 18);
    expect_answer(VIRTIO_INPUT_CFG_ID_SERIAL, 0, "kbd-0001", 8);
    expect_answer(VIRTIO_INPUT_CFG_ID_DEVIDS, 0, ids, sizeof(ids));
    expect_none(VIRTIO_INPUT_CFG_PROP_BITS, 0);
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, keys, sizeof(keys));
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_LED, leds, sizeof(leds));
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_MSC, msc, sizeof(msc));
    /* Types it lacks, and EV_REP, which evdev has no bitmap for. */
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_REL);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_ABS);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_REP);
    expect_none(VIRTIO_INPUT_CFG_ABS_INFO, ABS_X);
    ck_assert(evdev_stub_grabbed());
    finish();
}
END_TEST

START_TEST(a_tablet_answers_its_axes_byte_for_byte)
{
    const uint8_t ids[] = {0x06, 0, 0, 0, 0, 0, 0x01, 0};
    const uint8_t x[] = {0, 0, 0, 0, 0xff, 0x7f, 0, 0, 0, 0,
                         0, 0, 0, 0, 0,    0,    0, 0, 0, 0};
    const uint8_t y[] = {0, 0, 0, 0, 0xff, 0x7f, 0,  0, 4, 0,
                         0, 0, 8, 0, 0,    0,    12, 0, 0, 0};
    const uint8_t props[] = {1 << INPUT_PROP_DIRECT};
    /* ABS_X, ABS_Y, ABS_PRESSURE (0x18). */
    const uint8_t axes[] = {0x03, 0, 0, 0x01};
    uint8_t touch[BTN_TOUCH / 8 + 1] = {0};

    touch[BTN_TOUCH / 8] = 1 << (BTN_TOUCH % 8);
    start(EVDEV_STUB_TABLET);
    expect_answer(VIRTIO_INPUT_CFG_ID_NAME, 0, "xvdm test tablet", 16);
    expect_none(VIRTIO_INPUT_CFG_ID_SERIAL, 0);
    expect_answer(VIRTIO_INPUT_CFG_ID_DEVIDS, 0, ids, sizeof(ids));
    expect_answer(VIRTIO_INPUT_CFG_PROP_BITS, 0, props, sizeof(props));
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_ABS, axes, sizeof(axes));
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, touch, sizeof(touch));
    expect_answer(VIRTIO_INPUT_CFG_ABS_INFO, ABS_X, x, sizeof(x));
    expect_answer(VIRTIO_INPUT_CFG_ABS_INFO, ABS_Y, y, sizeof(y));
    expect_none(VIRTIO_INPUT_CFG_ABS_INFO, ABS_Z);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_LED);
    finish();
}
END_TEST

/* ---- eventq ----------------------------------------------------------- */

START_TEST(key_presses_reach_the_guest_in_order)
{

    start(EVDEV_STUB_KEYBOARD);
    post_buffers(8, EVENT_LEN);
    evdev_stub_event(EV_MSC, MSC_SCAN, 0x70004);
    evdev_stub_event(EV_KEY, KEY_A, 1);
    evdev_stub_event(EV_SYN, SYN_REPORT, 0);
    evdev_stub_event(EV_KEY, KEY_A, 0);
    evdev_stub_event(EV_SYN, SYN_REPORT, 0);
    expect_event(next_event(), EV_MSC, MSC_SCAN, 0x70004);
    expect_event(next_event(), EV_KEY, KEY_A, 1);
    expect_event(next_event(), EV_SYN, SYN_REPORT, 0);
    expect_event(next_event(), EV_KEY, KEY_A, 0);
    expect_event(next_event(), EV_SYN, SYN_REPORT, 0);
    expect_quiet();
    finish();
}
END_TEST

START_TEST(negative_axis_values_reach_the_guest_as_le32)
{

    start(EVDEV_STUB_TABLET);
    post_buffers(2, EVENT_LEN);
    evdev_stub_event(EV_ABS, ABS_X, -5);
    evdev_stub_event(EV_ABS, ABS_Y, 32767);
    expect_event(next_event(), EV_ABS, ABS_X, 0xfffffffbu);
    expect_event(next_event(), EV_ABS, ABS_Y, 32767);
    finish();
}
END_TEST

/* The next event, its buffer given back at once, as Linux's
 * virtinput_recv_events() does: the guest takes more events than its
 * queue holds. */
static struct got next_event_reposting(void)
{
    struct got g = next_event();

    post_buffers(1, EVENT_LEN);
    return g;
}

/* Without buffers the device is not read: events wait in the kernel's
 * buffer, which drops what it holds when full and says so with
 * SYN_DROPPED, and the guest gets what evdev kept once it posts
 * buffers. The first events are in the node before the rest come (the
 * stand-in moves them there while the module has read all it had); the
 * 184 after them overflow its buffer three times, which keeps
 * SYN_DROPPED and the newest 59. */
START_TEST(without_buffers_nothing_is_read_and_evdev_drops_the_rest)
{
    const unsigned first = 8, sent = 3 * EVDEV_STUB_BUFFER, kept = 59;
    unsigned v, waited = 0;

    start(EVDEV_STUB_KEYBOARD);
    for (v = 1; v <= first; v++)
        evdev_stub_event(EV_MSC, MSC_SCAN, v);
    while (evdev_stub_in_node() < first && waited++ < WAIT_MS)
        usleep(1000);
    ck_assert_uint_eq(evdev_stub_in_node(), first);
    for (; v <= sent; v++)
        evdev_stub_event(EV_MSC, MSC_SCAN, v);
    usleep(QUIET_MS * 1000);
    /* The module took nothing: what the node holds and what evdev kept. */
    ck_assert_uint_eq(evdev_stub_in_node(), first);
    ck_assert_uint_eq(evdev_stub_unread(), first + 1 + kept);
    post_buffers(RING, EVENT_LEN);
    for (v = 1; v <= first; v++)
        expect_event(next_event_reposting(), EV_MSC, MSC_SCAN, v);
    expect_event(next_event_reposting(), EV_SYN, SYN_DROPPED, 0);
    for (v = sent - kept + 1; v <= sent; v++)
        expect_event(next_event_reposting(), EV_MSC, MSC_SCAN, v);
    expect_quiet();
    ck_assert_uint_eq(evdev_stub_unread(), 0);
    finish();
}
END_TEST

/* Reading stops when the buffers run out and starts again with new
 * ones: no event is lost in between while evdev has room. */
START_TEST(reading_stops_with_the_buffers_and_resumes_with_new_ones)
{

    start(EVDEV_STUB_KEYBOARD);
    post_buffers(2, EVENT_LEN);
    for (unsigned v = 1; v <= 4; v++)
        evdev_stub_event(EV_MSC, MSC_SCAN, v);
    expect_event(next_event(), EV_MSC, MSC_SCAN, 1);
    expect_event(next_event(), EV_MSC, MSC_SCAN, 2);
    expect_quiet();
    ck_assert_uint_eq(evdev_stub_unread(), 2);
    post_buffers(2, EVENT_LEN);
    expect_event(next_event(), EV_MSC, MSC_SCAN, 3);
    expect_event(next_event(), EV_MSC, MSC_SCAN, 4);
    finish();
}
END_TEST

/* With every buffer of a full eventq held, the device still asks for
 * kicks: the buffers a driver posts again as events use them up are
 * heard of, and events keep coming past the queue's first fill. */
START_TEST(a_full_eventq_still_hears_the_buffers_posted_again)
{
    start(EVDEV_STUB_KEYBOARD);
    post_buffers(RING, EVENT_LEN);
    for (unsigned round = 0; round < 3 * RING / 8; round++) {
        for (unsigned k = 0; k < 8; k++)
            evdev_stub_event(EV_MSC, MSC_SCAN, round * 8 + k);
        for (unsigned k = 0; k < 8; k++)
            expect_event(next_event(), EV_MSC, MSC_SCAN, round * 8 + k);
        post_buffers(8, EVENT_LEN);
    }
    finish();
}
END_TEST

/* A reset gives the held buffers back to the driver, which forgets
 * them: the events that come meanwhile wait in evdev for the buffers of
 * the next probe. */
START_TEST(a_reset_forgets_held_buffers_and_stops_reading)
{
    start(EVDEV_STUB_KEYBOARD);
    post_buffers(4, EVENT_LEN);
    vdriver_reset(&d);
    evdev_stub_event(EV_KEY, KEY_E, 1);
    evdev_stub_event(EV_SYN, SYN_REPORT, 0);
    usleep(QUIET_MS * 1000);
    ck_assert_uint_eq(evdev_stub_unread(), 2);
    ck_assert_int_eq(vdriver_probe(&d, INPUT_ID, DEV_TRANSPORT_FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, EVQ, RING), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, STQ, RING), 0);
    vdriver_driver_ok(&d);
    post_buffers(2, EVENT_LEN);
    expect_event(next_event(), EV_KEY, KEY_E, 1);
    expect_event(next_event(), EV_SYN, SYN_REPORT, 0);
    finish();
}
END_TEST

/* A node that returns part of an event (evdev never does; a pty may)
 * keeps the rest for the next read: the events after it are not
 * shifted into garbage. */
START_TEST(an_event_split_across_reads_reaches_the_guest_whole)
{
    struct input_event ev[2] = {
        {.type = EV_KEY, .code = KEY_F, .value = 1},
        {.type = EV_SYN, .code = SYN_REPORT},
    };
    const uint8_t *b = (const uint8_t *)ev;

    start(EVDEV_STUB_KEYBOARD);
    post_buffers(2, EVENT_LEN);
    evdev_stub_raw(b, 10);
    expect_quiet();
    evdev_stub_raw(b + 10, sizeof(ev) - 10);
    expect_event(next_event(), EV_KEY, KEY_F, 1);
    expect_event(next_event(), EV_SYN, SYN_REPORT, 0);
    finish();
}
END_TEST

static void unplug_and_wait(void)
{
    evdev_stub_unplug();
    usleep(QUIET_MS * 1000);
}

/* One line says so, whether or not the device was being read; the
 * guest keeps a device that has no more events. */
START_TEST(an_unplugged_device_is_said_once_and_the_guest_goes_on)
{
    uint8_t u[128];

    start(EVDEV_STUB_KEYBOARD);
    ck_assert_uint_eq(
        log_lines_during(unplug_and_wait, "no more of its events"), 1);
    post_buffers(2, EVENT_LEN);
    expect_quiet();
    /* Config accesses are still answered (what evdev says of a device
     * that is gone: nothing). */
    cfg_select(VIRTIO_INPUT_CFG_ID_SERIAL, 0, u);
    ck_assert_uint_eq(vdriver_status(&d) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    finish();
}
END_TEST

/* ---- statusq ---------------------------------------------------------- */

/* A status event in a readable buffer of len bytes; its used length. */
static uint32_t send_status_len(uint16_t type, uint16_t code, uint32_t value,
                                uint32_t len)
{
    struct guest_buf b = {vdriver_alloc(&d, len, 8), len, false};
    struct virtio_input_event ve = {htole16(type), htole16(code),
                                    htole32(value)};
    uint16_t head;
    uint32_t id, used;

    memset(vdriver_ptr(&d, b.gpa), 0, len);
    memcpy(vdriver_ptr(&d, b.gpa), &ve, len < sizeof(ve) ? len : sizeof(ve));
    head = guest_ring_add_chain(&d.ring[STQ], &b, 1);
    guest_ring_publish(&d.ring[STQ], head);
    vdriver_kick(&d, STQ);
    ck_assert_int_eq(vdriver_next_used(&d, STQ, &id, &used, WAIT_MS), 0);
    ck_assert_uint_eq(id, head);
    return used;
}

static void send_status(uint16_t type, uint16_t code, uint32_t value)
{
    ck_assert_uint_eq(send_status_len(type, code, value, EVENT_LEN), 0);
}

static void expect_written(uint16_t type, uint16_t code, int32_t value)
{
    struct input_event ev;

    ck_assert_int_eq(evdev_stub_written(&ev, WAIT_MS), 1);
    ck_assert_uint_eq(ev.type, type);
    ck_assert_uint_eq(ev.code, code);
    ck_assert_int_eq(ev.value, value);
}

START_TEST(the_guests_caps_lock_led_reaches_the_keyboard)
{
    struct input_event ev;

    start(EVDEV_STUB_KEYBOARD);
    send_status(EV_LED, LED_CAPSL, 1);
    expect_written(EV_LED, LED_CAPSL, 1);
    expect_written(EV_SYN, SYN_REPORT, 0);
    send_status(EV_LED, LED_CAPSL, 0);
    expect_written(EV_LED, LED_CAPSL, 0);
    expect_written(EV_SYN, SYN_REPORT, 0);
    ck_assert_int_eq(evdev_stub_written(&ev, QUIET_MS), 0);
    finish();
}
END_TEST

/* §5.8.6.1 asks a driver for status buffers of at least one event: a
 * longer one is the event in its first 8 bytes. */
START_TEST(a_status_buffer_longer_than_one_event_is_its_first_event)
{
    start(EVDEV_STUB_KEYBOARD);
    ck_assert_uint_eq(send_status_len(EV_LED, LED_NUML, 1, 16), 0);
    expect_written(EV_LED, LED_NUML, 1);
    expect_written(EV_SYN, SYN_REPORT, 0);
    finish();
}
END_TEST

/* ---- hostile guest ---------------------------------------------------- */

static void hostile_selects(void)
{
    uint8_t u[128];

    expect_none(0x42, 0);
    expect_none(VIRTIO_INPUT_CFG_UNSET, 0);
    expect_none(VIRTIO_INPUT_CFG_ID_NAME, 1);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_SYN);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, 0xff);
    expect_none(VIRTIO_INPUT_CFG_ABS_INFO, 0xff);
    /* Writes past subsel change nothing, and each says so. */
    ck_assert_uint_eq(cfg_select(VIRTIO_INPUT_CFG_ID_SERIAL, 0, u), 8);
    cfg_writeb(offsetof(struct virtio_input_config, size), 0x7f);
    cfg_writeb(offsetof(struct virtio_input_config, u), 'X');
    cfg_writeb(offsetof(struct virtio_input_config, reserved), 1);
    ck_assert_uint_eq(cfg_readb(offsetof(struct virtio_input_config, size)), 8);
    ck_assert_uint_eq(cfg_readb(offsetof(struct virtio_input_config, u)), 'k');
    ck_assert_uint_eq(cfg_readb(offsetof(struct virtio_input_config, reserved)),
                      0);
    /* A 4-byte write takes select and subsel, and says the rest. */
    ck_assert_int_eq(
        sim_mmio_write(h.sim, 0, d.base + CFG, 4,
                       VIRTIO_INPUT_CFG_EV_BITS | EV_LED << 8 | 0xffff0000u),
        0);
    ck_assert_uint_eq(cfg_readb(offsetof(struct virtio_input_config, size)), 1);
}

static void hostile_event_buffers(void)
{
    struct guest_buf b[2];
    uint32_t id, len;
    uint16_t head;

    /* Too short for an event, and device-readable: back with nothing. */
    b[0] = (struct guest_buf){vdriver_alloc(&d, 4, 8), 4, true};
    head = guest_ring_add_chain(&d.ring[EVQ], b, 1);
    guest_ring_publish(&d.ring[EVQ], head);
    b[0] = (struct guest_buf){vdriver_alloc(&d, 8, 8), 8, false};
    guest_ring_publish(&d.ring[EVQ], guest_ring_add_chain(&d.ring[EVQ], b, 1));
    vdriver_kick(&d, EVQ);
    ck_assert_int_eq(vdriver_next_used(&d, EVQ, &id, &len, WAIT_MS), 0);
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(vdriver_next_used(&d, EVQ, &id, &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, 0);
    /* Oversized: one event, 8 bytes. */
    post_buffers(1, 64);
    evdev_stub_event(EV_KEY, KEY_B, 1);
    expect_event(next_event(), EV_KEY, KEY_B, 1);
}

static void hostile_status_events(void)
{
    struct input_event ev;

    /* Short: back with nothing, nothing reaches the device. */
    ck_assert_uint_eq(send_status_len(EV_LED, LED_NUML, 1, 4), 0);
    /* A key press would be input injected into dom0. */
    send_status(EV_KEY, KEY_A, 1);
    /* Types and codes the keyboard lacks. */
    send_status(EV_SND, SND_BELL, 1);
    send_status(EV_LED, LED_MUTE, 1);
    send_status(EV_LED, 0xffff, 1);
    send_status(EV_REP, REP_DELAY, 1);
    send_status(EV_SYN, SYN_REPORT, 0);
    send_status(0xffff, 0, 0);
    ck_assert_int_eq(evdev_stub_written(&ev, QUIET_MS), 0);
    /* What it has still gets through. */
    send_status(EV_LED, LED_SCROLLL, 1);
    expect_written(EV_LED, LED_SCROLLL, 1);
}

/* fn's hostility logs at least `lines` lines, and the device serves
 * after it. */
static void refused_with_lines(void (*fn)(void), unsigned lines)
{

    start(EVDEV_STUB_KEYBOARD);
    ck_assert_uint_ge(log_lines_during(fn, "input0"), lines);
    post_buffers(1, EVENT_LEN);
    evdev_stub_event(EV_KEY, KEY_C, 1);
    expect_event(next_event(), EV_KEY, KEY_C, 1);
    ck_assert_int_eq(d.io_error, 0);
    ck_assert_uint_eq(vdriver_status(&d) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
    finish();
}

START_TEST(hostile_selects_get_size_0_and_writes_past_subsel_a_line)
{
    refused_with_lines(hostile_selects, 4);
}
END_TEST

START_TEST(event_buffers_without_room_come_back_empty_with_a_line)
{
    refused_with_lines(hostile_event_buffers, 2);
}
END_TEST

START_TEST(status_events_the_device_does_not_take_never_reach_it)
{
    refused_with_lines(hostile_status_events, 8);
}
END_TEST

/* ---- options ---------------------------------------------------------- */

static void expect_refused(const char *opts, const char *value)
{
    expect_refused_spec(&h, "input", opts, node, value);
}

START_TEST(bad_options_are_refused_naming_the_value)
{
    node = evdev_stub_start(EVDEV_STUB_KEYBOARD);
    expect_refused("grab=off", "evdev=");
    expect_refused("evdev=", "evdev=");
    expect_refused("evdev=/nonexistent/event9", "evdev=/nonexistent/event9");
    expect_refused("evdev=/dev/null", "evdev=/dev/null");
    expect_refused("evdev=%s,grab=maybe", "maybe");
    expect_refused("evdev=%s,mouse=on", "mouse");
    /* Another dom0 program has it. */
    evdev_stub_grabbed_elsewhere(true);
    expect_refused("evdev=%s", "grab=off");
    evdev_stub_stop();
}
END_TEST

START_TEST(grab_off_leaves_the_device_to_dom0_too)
{

    start_with(EVDEV_STUB_KEYBOARD, ",grab=off");
    ck_assert(!evdev_stub_grabbed());
    post_buffers(1, EVENT_LEN);
    evdev_stub_event(EV_KEY, KEY_D, 1);
    expect_event(next_event(), EV_KEY, KEY_D, 1);
    finish();
}
END_TEST

static Suite *input_suite(void)
{
    Suite *s = suite_create("input");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, a_keyboard_answers_its_identity_and_codes_byte_for_byte);
    tcase_add_test(tc, a_tablet_answers_its_axes_byte_for_byte);
    tcase_add_test(tc, bad_options_are_refused_naming_the_value);
    tcase_add_test(tc, grab_off_leaves_the_device_to_dom0_too);
    suite_add_tcase(s, tc);
    tc = tcase_create("events");
    tcase_add_test(tc, key_presses_reach_the_guest_in_order);
    tcase_add_test(tc, negative_axis_values_reach_the_guest_as_le32);
    tcase_add_test(tc,
                   without_buffers_nothing_is_read_and_evdev_drops_the_rest);
    tcase_add_test(tc,
                   reading_stops_with_the_buffers_and_resumes_with_new_ones);
    tcase_add_test(tc, a_full_eventq_still_hears_the_buffers_posted_again);
    tcase_add_test(tc, a_reset_forgets_held_buffers_and_stops_reading);
    tcase_add_test(tc, an_unplugged_device_is_said_once_and_the_guest_goes_on);
    tcase_add_test(tc, an_event_split_across_reads_reaches_the_guest_whole);
    tcase_add_test(tc, the_guests_caps_lock_led_reaches_the_keyboard);
    tcase_add_test(tc,
                   a_status_buffer_longer_than_one_event_is_its_first_event);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc,
                   hostile_selects_get_size_0_and_writes_past_subsel_a_line);
    tcase_add_test(tc, event_buffers_without_room_come_back_empty_with_a_line);
    tcase_add_test(tc, status_events_the_device_does_not_take_never_reach_it);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(input_suite);
}
