/* SPDX-License-Identifier: MIT */
/*
 * A gpu's VNC viewers typing and pointing into the guest: `gpu,vnc=` and
 * `input,vnc=gpu0.keyboard` (or `.tablet`) on the simulated hypervisor,
 * a libvncclient viewer on the gpu's socket, and the input device driven
 * as Linux's virtio_input drives it. The profiles' config space byte for
 * byte; keys and pointer end to end, as the guest's kernel gets them;
 * what the guest does not take is bounded, dropped and said once; the
 * options a user can get wrong.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <rfb/keysym.h>
#include <rfb/rfbclient.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "log-lines.h"
#include "refused-spec.h"
#include "vnc-screenshot-run.h"
/* Last: its guest, h and d, would shadow the names of the helpers above. */
#include "input-guest.h"

#define XRES 64
#define YRES 48
/* Key reports (two events) a gpu's pipe holds: 64 KiB, and those it
 * takes before it keeps the rest for letting go (128 reports). */
#define REPORT_LEN (2 * sizeof(struct input_event))
#define PIPE_REPORTS (65536 / REPORT_LEN)
#define PRESS_REPORTS ((65536 - 128 * REPORT_LEN) / REPORT_LEN)

static char sock_path[108];
static rfbClient *viewer;

/* gpu0 on a socket of the test's own, and input1 taking gpu0.KIND. */
static void start(const char *kind)
{
    char gpu[160], input[64];
    const char *specs[] = {gpu, input};

    snprintf(sock_path, sizeof(sock_path), "/tmp/xvdm-test-vnc-input-%d.sock",
             (int)getpid());
    snprintf(gpu, sizeof(gpu), "gpu,xres=%d,yres=%d,vnc=unix:%s", XRES, YRES,
             sock_path);
    snprintf(input, sizeof(input), "input,vnc=gpu0.%s", kind);
    input_guest_start(specs, 2, 1);
    viewer = rfbGetClient(8, 3, 4);
    free(viewer->serverHost); /* rfbGetClient()'s "" */
    viewer->serverHost = strdup(sock_path);
    ck_assert(rfbInitClient(viewer, NULL, NULL));
}

static void viewer_close(void)
{
    if (!viewer)
        return;
    free(viewer->frameBuffer);
    rfbClientCleanup(viewer);
    viewer = NULL;
}

static void finish(void)
{
    viewer_close();
    harness_stop(&h);
}

static void quiet(const char *format, ...)
{
}

START_TEST(a_vnc_keyboard_answers_its_profile_byte_for_byte)
{
    /* BUS_VIRTUAL, vendor 0, product 1, version 1: le16 each. */
    const uint8_t ids[] = {0x06, 0, 0, 0, 0x01, 0, 0x01, 0};
    const uint8_t leds[] = {0x07}, rep[] = {0};
    uint8_t keys[16];

    /* KEY_ESC (1) .. KEY_COMPOSE (127). */
    memset(keys, 0xff, sizeof(keys));
    keys[0] = 0xfe;
    start("keyboard");
    expect_answer(VIRTIO_INPUT_CFG_ID_NAME, 0, "xvdm VNC keyboard", 17);
    expect_answer(VIRTIO_INPUT_CFG_ID_SERIAL, 0, "gpu0.keyboard", 13);
    expect_answer(VIRTIO_INPUT_CFG_ID_DEVIDS, 0, ids, sizeof(ids));
    expect_none(VIRTIO_INPUT_CFG_PROP_BITS, 0);
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, keys, sizeof(keys));
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_LED, leds, sizeof(leds));
    /* Linux's driver sets EV_REP when its size is not 0. */
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_REP, rep, sizeof(rep));
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_SYN);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_REL);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_ABS);
    expect_none(VIRTIO_INPUT_CFG_ABS_INFO, ABS_X);
    finish();
}
END_TEST

START_TEST(a_vnc_tablet_answers_its_axes_byte_for_byte)
{
    const uint8_t ids[] = {0x06, 0, 0, 0, 0x02, 0, 0x01, 0};
    /* min, max, fuzz, flat, res: le32 each. */
    const uint8_t axis[] = {0, 0, 0, 0, 0xff, 0x7f, 0, 0, 0, 0,
                            0, 0, 0, 0, 0,    0,    0, 0, 0, 0};
    /* REL_HWHEEL (6), REL_WHEEL (8); ABS_X, ABS_Y. */
    const uint8_t rel[] = {0x40, 0x01}, abs[] = {0x03};
    uint8_t buttons[BTN_MIDDLE / 8 + 1] = {0};

    buttons[BTN_LEFT / 8] = 0x07; /* BTN_LEFT, BTN_RIGHT, BTN_MIDDLE */
    start("tablet");
    expect_answer(VIRTIO_INPUT_CFG_ID_NAME, 0, "xvdm VNC tablet", 15);
    expect_answer(VIRTIO_INPUT_CFG_ID_SERIAL, 0, "gpu0.tablet", 11);
    expect_answer(VIRTIO_INPUT_CFG_ID_DEVIDS, 0, ids, sizeof(ids));
    expect_none(VIRTIO_INPUT_CFG_PROP_BITS, 0);
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_KEY, buttons, sizeof(buttons));
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_REL, rel, sizeof(rel));
    expect_answer(VIRTIO_INPUT_CFG_EV_BITS, EV_ABS, abs, sizeof(abs));
    expect_answer(VIRTIO_INPUT_CFG_ABS_INFO, ABS_X, axis, sizeof(axis));
    expect_answer(VIRTIO_INPUT_CFG_ABS_INFO, ABS_Y, axis, sizeof(axis));
    expect_none(VIRTIO_INPUT_CFG_ABS_INFO, ABS_Z);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_LED);
    expect_none(VIRTIO_INPUT_CFG_EV_BITS, EV_REP);
    finish();
}
END_TEST

static void key(uint32_t keysym, bool down)
{
    ck_assert(SendKeyEvent(viewer, keysym, down));
}

static void expect_key(uint16_t code, uint32_t value)
{
    expect_event(next_event(), EV_KEY, code, value);
    expect_event(next_event(), EV_SYN, SYN_REPORT, 0);
}

/* As a viewer types "a!" and Enter on a US keyboard: each symbol as the
 * key that gives it, Shift being the viewer's own; a symbol no key
 * gives is not sent. */
START_TEST(keys_typed_in_a_viewer_reach_the_guest)
{
    start("keyboard");
    post_buffers(RING, EVENT_LEN);
    key(XK_a, true);
    key(XK_a, false);
    key(XK_Shift_L, true);
    key(XK_exclam, true);
    key(XK_exclam, false);
    key(XK_Shift_L, false);
    key(XK_EuroSign, true);
    key(XK_KP_Enter, true);
    expect_key(KEY_A, 1);
    expect_key(KEY_A, 0);
    expect_key(KEY_LEFTSHIFT, 1);
    expect_key(KEY_1, 1);
    expect_key(KEY_1, 0);
    expect_key(KEY_LEFTSHIFT, 0);
    expect_key(KEY_KPENTER, 1);
    expect_quiet();
    finish();
}
END_TEST

/* vnc-screenshot --type: each character pressed and released, as the
 * key a US keyboard gives it by (a newline is Return), then the
 * screenshot. */
START_TEST(the_screenshot_tool_types_text_first)
{
    char addr[120], ppm[64];
    char *args[] = {"--type", "xv\n", addr, ppm, NULL};
    char *bad[] = {"--type", "\t", addr, ppm, NULL};

    start("keyboard");
    post_buffers(RING, EVENT_LEN);
    snprintf(addr, sizeof(addr), "unix:%s", sock_path);
    snprintf(ppm, sizeof(ppm), "/tmp/xvdm-test-vnc-input-%d.ppm",
             (int)getpid());
    ck_assert_int_eq(vnc_screenshot_run(bad), 2);
    ck_assert_int_eq(vnc_screenshot_run(args), 0);
    expect_key(KEY_X, 1);
    expect_key(KEY_X, 0);
    expect_key(KEY_V, 1);
    expect_key(KEY_V, 0);
    expect_key(KEY_ENTER, 1);
    expect_key(KEY_ENTER, 0);
    expect_quiet();
    finish();
    unlink(ppm);
}
END_TEST

static void point(int x, int y, int buttons)
{
    ck_assert(SendPointerEvent(viewer, x, y, buttons));
}

static void expect_at(uint32_t x, uint32_t y)
{
    expect_event(next_event(), EV_ABS, ABS_X, x);
    expect_event(next_event(), EV_ABS, ABS_Y, y);
}

static void expect_syn(void)
{
    expect_event(next_event(), EV_SYN, SYN_REPORT, 0);
}

/* Where the pointer is, on the tablet's 0 .. 0x7fff whatever the screen
 * (a viewer's coordinates past it are its edge); a button as it goes
 * down and up; a wheel "button" pressed as one notch. */
START_TEST(the_pointer_reaches_the_guest_scaled_with_its_buttons)
{
    start("tablet");
    post_buffers(RING, EVENT_LEN);
    point(0, 0, 0);
    point(XRES / 2, YRES - 1, 1);
    point(9999, 9999, 1 | 4);
    point(9999, 9999, 1 << 3);
    point(9999, 9999, 1 << 5);
    point(9999, 9999, 0);
    expect_at(0, 0);
    expect_syn();
    expect_at(32 * 0x7fff / (XRES - 1), 0x7fff);
    expect_event(next_event(), EV_KEY, BTN_LEFT, 1);
    expect_syn();
    expect_at(0x7fff, 0x7fff);
    expect_event(next_event(), EV_KEY, BTN_RIGHT, 1);
    expect_syn();
    expect_at(0x7fff, 0x7fff);
    expect_event(next_event(), EV_KEY, BTN_LEFT, 0);
    expect_event(next_event(), EV_KEY, BTN_RIGHT, 0);
    expect_event(next_event(), EV_REL, REL_WHEEL, 1);
    expect_syn();
    expect_at(0x7fff, 0x7fff);
    expect_event(next_event(), EV_REL, REL_HWHEEL, (uint32_t)-1);
    expect_syn();
    expect_at(0x7fff, 0x7fff);
    expect_syn();
    expect_quiet();
    finish();
}
END_TEST

/* Until the server has said it takes SetDesktopSize (its first update
 * carries an ExtendedDesktopSize): libvncclient sends none before. */
static void viewer_may_resize(void)
{
    for (unsigned n = 0;
         n < 100 && !SupportsClient2Server(viewer, rfbSetDesktopSize); n++)
        if (WaitForMessage(viewer, 100000) > 0)
            ck_assert(HandleRFBServerMessage(viewer));
    ck_assert(SupportsClient2Server(viewer, rfbSetDesktopSize));
}

/* The tablet's x for a viewer's pointer at (x, y), once the loop has
 * taken what was asked: tried until it is `want`, or a few seconds. */
static uint32_t pointed_x(int x, int y, uint32_t want)
{
    struct got g = {0};

    for (unsigned n = 0; n < 50; n++) {
        point(x, y, 0);
        g = next_event();
        next_event(); /* ABS_Y */
        expect_syn();
        if (g.value == want)
            break;
        usleep(100 * 1000);
    }
    return g.value;
}

/* After a viewer asked for a mode of 32 x 24, its pointer is scaled over
 * that mode (shown at the top left of the screen): the mode's last pixel
 * is the tablet's last, and so is any pixel past it. */
START_TEST(the_pointer_is_scaled_over_the_mode_a_viewer_asked_for)
{
    start("tablet");
    post_buffers(RING, EVENT_LEN);
    viewer_may_resize();
    /* 31 of 0..63 before. */
    ck_assert_uint_eq(pointed_x(31, 23, 31 * 0x7fff / (XRES - 1)),
                      31 * 0x7fff / (XRES - 1));
    ck_assert(SendExtDesktopSize(viewer, 32, 24));
    ck_assert_uint_eq(pointed_x(31, 23, 0x7fff), 0x7fff);
    point(15, 47, 0);
    expect_at(15 * 0x7fff / 31, 0x7fff);
    expect_syn();
    finish();
}
END_TEST

/* A viewer that goes with keys down (its window closed, its link lost)
 * leaves none down in the guest, whose kernel would repeat them. */
START_TEST(keys_a_viewer_leaves_down_are_let_go_when_it_goes)
{
    start("keyboard");
    post_buffers(RING, EVENT_LEN);
    key(XK_a, true);
    key(XK_Control_L, true);
    key(XK_b, true);
    key(XK_b, false);
    expect_key(KEY_A, 1);
    expect_key(KEY_LEFTCTRL, 1);
    expect_key(KEY_B, 1);
    expect_key(KEY_B, 0);
    viewer_close();
    expect_key(KEY_LEFTCTRL, 0);
    expect_key(KEY_A, 0);
    expect_quiet();
    finish();
}
END_TEST

/* A viewer that never typed (anyone who reaches the socket) lets go of
 * nothing when it leaves: only one that typed does. */
START_TEST(a_viewer_that_never_typed_lets_go_of_nothing)
{
    rfbClient *other = rfbGetClient(8, 3, 4);

    start("keyboard");
    post_buffers(RING, EVENT_LEN);
    key(XK_a, true);
    expect_key(KEY_A, 1);
    free(other->serverHost);
    other->serverHost = strdup(sock_path);
    ck_assert(rfbInitClient(other, NULL, NULL));
    free(other->frameBuffer);
    rfbClientCleanup(other);
    expect_quiet();
    viewer_close();
    expect_key(KEY_A, 0);
    finish();
}
END_TEST

/* The same for the tablet's buttons. */
START_TEST(buttons_a_viewer_leaves_down_are_let_go_when_it_goes)
{
    start("tablet");
    post_buffers(RING, EVENT_LEN);
    point(1, 1, 1 | 2);
    expect_at(0x7fff / (XRES - 1), 0x7fff / (YRES - 1));
    expect_event(next_event(), EV_KEY, BTN_LEFT, 1);
    expect_event(next_event(), EV_KEY, BTN_MIDDLE, 1);
    expect_syn();
    viewer_close();
    expect_event(next_event(), EV_KEY, BTN_LEFT, 0);
    expect_event(next_event(), EV_KEY, BTN_MIDDLE, 0);
    expect_syn();
    expect_quiet();
    finish();
}
END_TEST

/* Twice what the pipe holds, while the guest posts no buffer, and time
 * for the viewer's thread to have written them. */
static void type_past_the_pipe(void)
{
    for (unsigned k = 0; k < 2 * PIPE_REPORTS; k++)
        key(XK_b, k % 2 == 0);
    usleep(500 * 1000);
}

/* The reports of KEY_B that waited, taken one report at a time as they
 * come: each the press or release that follows the one before. */
static unsigned take_waiting_keys(void)
{
    struct virtio_input_event ve;
    uint32_t id, len;
    unsigned n = 0;

    for (;; n++) {
        post_buffers(2, EVENT_LEN);
        if (vdriver_next_used(&d, EVQ, &id, &len, QUIET_MS) != 0)
            return n;
        memcpy(&ve, vdriver_ptr(&d, head_gpa[id]), sizeof(ve));
        ck_assert_uint_eq(le16toh(ve.code), KEY_B);
        ck_assert_uint_eq(le32toh(ve.value), n % 2 == 0);
        expect_syn();
    }
}

/* A guest that takes no events makes dom0 hold one pipe's worth (its
 * 16 pages, less what it keeps for letting go): the rest is dropped, said
 * once; once the guest takes what waited, new events come again. */
START_TEST(what_the_guest_does_not_take_is_bounded_and_said_once)
{
    unsigned taken;

    start("keyboard");
    ck_assert_uint_eq(
        log_lines_during(type_past_the_pipe, "gpu0.keyboard is full"), 1);
    taken = take_waiting_keys();
    ck_assert_uint_le(taken, PIPE_REPORTS);
    ck_assert_uint_ge(taken, PRESS_REPORTS - 16);
    key(XK_c, true);
    expect_key(KEY_C, 1);
    finish();
}
END_TEST

/* A key held while the pipe fills is still let go: the pipe keeps room
 * for that, so the guest never keeps a key down that the viewer let go. */
START_TEST(a_key_let_go_while_the_pipe_is_full_still_reaches_the_guest)
{
    struct virtio_input_event ve;
    uint32_t id, len;
    int down = 0;

    start("keyboard");
    key(XK_a, true);
    type_past_the_pipe();
    key(XK_a, false);
    usleep(200 * 1000);
    /* Every press the guest gets has its release, the last being A's. */
    for (;;) {
        post_buffers(1, EVENT_LEN);
        if (vdriver_next_used(&d, EVQ, &id, &len, QUIET_MS) != 0)
            break;
        memcpy(&ve, vdriver_ptr(&d, head_gpa[id]), sizeof(ve));
        if (le16toh(ve.type) == EV_KEY)
            down += le32toh(ve.value) ? 1 : -1;
        if (le16toh(ve.type) == EV_KEY && le16toh(ve.code) == KEY_A &&
            !le32toh(ve.value))
            ck_assert_int_eq(down, 0);
    }
    ck_assert_int_eq(down, 0);
    finish();
}
END_TEST

/* An offer is taken once: two input devices would split its events. */
static void start_two_takers(void)
{
    static struct harness two;
    char gpu[160];
    const char *specs[] = {gpu, "input,vnc=gpu0.keyboard",
                           "input,vnc=gpu0.keyboard"};

    snprintf(sock_path, sizeof(sock_path), "/tmp/xvdm-test-vnc-input-%d.sock",
             (int)getpid());
    snprintf(gpu, sizeof(gpu), "gpu,vnc=unix:%s", sock_path);
    ck_assert_int_ne(harness_start(&two, specs, 3), 0);
}

START_TEST(bad_vnc_input_options_are_refused_naming_the_value)
{
    ck_assert_uint_eq(
        log_lines_during(start_two_takers,
                         "vnc='gpu0.keyboard' is another input device's"),
        1);
    expect_spec_refused("input,vnc=gpu0.mouse", "vnc='gpu0.mouse'");
    expect_spec_refused("input,vnc=keyboard", "vnc='keyboard'");
    expect_spec_refused("input,vnc=gpu0.keyboard", "vnc='gpu0.keyboard'");
    expect_spec_refused("input,vnc=gpu0.tablet,evdev=/dev/null",
                        "evdev='/dev/null' and vnc='gpu0.tablet'");
    expect_spec_refused("input,vnc=gpu0.tablet,grab=off",
                        "grab= is for evdev=, not vnc='gpu0.tablet'");
    expect_spec_refused("input", "evdev= or vnc= is required");
}
END_TEST

static Suite *vnc_input_suite(void)
{
    Suite *s = suite_create("vnc-input");
    TCase *tc = tcase_create("vnc-input");

    tcase_add_test(tc, a_vnc_keyboard_answers_its_profile_byte_for_byte);
    tcase_add_test(tc, a_vnc_tablet_answers_its_axes_byte_for_byte);
    tcase_add_test(tc, keys_typed_in_a_viewer_reach_the_guest);
    tcase_add_test(tc, the_screenshot_tool_types_text_first);
    tcase_add_test(tc, the_pointer_reaches_the_guest_scaled_with_its_buttons);
    tcase_add_test(tc, the_pointer_is_scaled_over_the_mode_a_viewer_asked_for);
    tcase_add_test(tc, keys_a_viewer_leaves_down_are_let_go_when_it_goes);
    tcase_add_test(tc, buttons_a_viewer_leaves_down_are_let_go_when_it_goes);
    tcase_add_test(tc, a_viewer_that_never_typed_lets_go_of_nothing);
    tcase_add_test(tc, what_the_guest_does_not_take_is_bounded_and_said_once);
    tcase_add_test(tc,
                   a_key_let_go_while_the_pipe_is_full_still_reaches_the_guest);
    tcase_add_test(tc, bad_vnc_input_options_are_refused_naming_the_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    rfbClientLog = quiet;
    rfbClientErr = quiet;
    return check_run_all_modes(vnc_input_suite);
}
