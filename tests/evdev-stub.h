/* SPDX-License-Identifier: MIT */
/*
 * Test side: a stand-in for one of dom0's evdev devices
 * (/dev/input/eventN), where none can be made: this kernel has neither
 * uinput nor uhid, and a container cannot load them. The node is a
 * pseudo-terminal in raw mode, so the module reads, writes and polls it
 * as it would the evdev node; through node-stub.h's ioctl() it answers
 * EVIOCGVERSION, EVIOCGID, EVIOCGNAME, EVIOCGUNIQ, EVIOCGPROP,
 * EVIOCGBIT, EVIOCGABS and EVIOCGRAB as evdev does (what it copies,
 * what it returns, EINVAL for EVIOCGBIT of a type evdev has no bitmap
 * for, ENOENT for a string the device lacks, EBUSY for a device already
 * grabbed). Events the test injects wait in a client buffer of 64 events
 * that overflows as evdev's does (the oldest dropped, SYN_DROPPED and the
 * newest left), and reach the node only while the module has read
 * everything before them; what the module writes to the node the test
 * reads back as struct input_event.
 */
#ifndef XVDM_TEST_EVDEV_STUB_H
#define XVDM_TEST_EVDEV_STUB_H

#include <linux/input.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kernel's smallest client buffer (EVDEV_MIN_BUFFER_SIZE). */
#define EVDEV_STUB_BUFFER 64

enum evdev_stub_kind {
    /* "xvdm test keyboard", serial "kbd-0001", USB 046d:c31c v0111:
     * EV_KEY (KEY_ESC..KEY_Z and KEY_CAPSLOCK), EV_MSC (MSC_SCAN),
     * EV_LED (NUML, CAPSL, SCROLLL), EV_REP. */
    EVDEV_STUB_KEYBOARD,
    /* "xvdm test tablet", no serial, bus virtual 0000:0000 v0001,
     * INPUT_PROP_DIRECT: EV_KEY (BTN_TOUCH), EV_ABS (X 0..32767, Y
     * 0..32767 fuzz 4 flat 8 res 12, PRESSURE 0..255). */
    EVDEV_STUB_TABLET,
};

/* The device: the path of its node. */
const char *evdev_stub_start(enum evdev_stub_kind kind);
void evdev_stub_stop(void);
/* An event from the device (into the client buffer). */
void evdev_stub_event(uint16_t type, uint16_t code, int32_t value);
/* Bytes straight into the node, past the client buffer: a node that
 * does not keep to evdev's whole events (the module's reads see parts
 * of one). */
void evdev_stub_raw(const void *buf, size_t len);
/* Events the module has not read: in the buffer and in the node. */
unsigned evdev_stub_unread(void);
/* Of those, the ones in the node (already out of the buffer). */
unsigned evdev_stub_in_node(void);
/* The device's grab: held by the module (EVIOCGRAB), or by another dom0
 * program (grabbed_elsewhere(true): the module's EVIOCGRAB gets EBUSY). */
bool evdev_stub_grabbed(void);
void evdev_stub_grabbed_elsewhere(bool held);
/* The device leaves dom0 (unplugged): its node hangs up. */
void evdev_stub_unplug(void);
/* The next event the module wrote to the device: 1, or 0 when none came
 * within ms. */
int evdev_stub_written(struct input_event *ev, unsigned ms);

#endif
