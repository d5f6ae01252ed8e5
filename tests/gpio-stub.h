/* SPDX-License-Identifier: MIT */
/*
 * Test side: a stand-in for one of dom0's GPIO chips as its character
 * device shows it (uAPI v2), where gpio-sim cannot be loaded (a
 * container, CI). Through node-stub.h's ioctl(), on the file
 * gpio_stub_start() makes it answers GPIO_GET_CHIPINFO_IOCTL,
 * GPIO_V2_GET_LINEINFO_IOCTL and GPIO_V2_GET_LINE_IOCTL as the kernel does (its
 * checks of offsets, flags and padding, EBUSY for a line already held); a line
 * request is a pipe, whose read end the module gets as the request's fd and
 * reads edge events from (struct gpio_v2_line_event, written by the stub), and
 * on which SET_CONFIG, GET_VALUES and SET_VALUES are answered. The
 * request ends when the module closes that fd, as in the kernel.
 */
#ifndef XVDM_TEST_GPIO_STUB_H
#define XVDM_TEST_GPIO_STUB_H

#include <stdbool.h>
#include <stdint.h>

#define GPIO_STUB_LINES_MAX 80

/* The chip, with n lines named names[i] (NULL or "": unnamed): the path
 * of its node (a temporary file). */
const char *gpio_stub_start(unsigned n, const char *const *names);
/* Remove the node. */
void gpio_stub_stop(void);
/* Mark a line as held by a consumer in dom0 (its requests get EBUSY). */
void gpio_stub_hold(unsigned line, bool held);
/* Drive an input line from outside: an edge the line's request detects
 * becomes an event on its fd. */
void gpio_stub_drive(unsigned line, int level);
/* While late, the events of drive() wait in the stub, stamped with the
 * time of their edge, and reach the request's fd when it ends: as events
 * the kernel queued that the module has not read yet. */
void gpio_stub_late_events(bool late);
/* The flags of the line's request (GPIO_V2_LINE_FLAG_*), 0 when it has
 * none. */
uint64_t gpio_stub_flags(unsigned line);
/* The (physical) level the line carries: its output value when an
 * output, inverted when its request is active-low, else what
 * gpio_stub_drive() set. */
int gpio_stub_level(unsigned line);
/* Times the line, an output, went to level (0 or 1) since the chip
 * started: what a pulse left behind. */
unsigned gpio_stub_times_at(unsigned line, int level);
/* Line requests held now, and made so far. */
unsigned gpio_stub_requests_held(void);
unsigned gpio_stub_requests_made(void);

#endif
