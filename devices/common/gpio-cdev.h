/* SPDX-License-Identifier: MIT */
/*
 * dom0's GPIO chips through the character device's uAPI v2
 * (<linux/gpio.h>, Linux 5.10 and later), for the modules that drive
 * dom0's lines (gpio's guest lines, scmi's reset domains). Not libgpiod:
 * Debian 12 ships its v1 API and Debian 13 its v2, which are
 * incompatible, while the kernel's uAPI v2 is the same in both.
 */
#ifndef XVDM_GPIO_CDEV_H
#define XVDM_GPIO_CDEV_H

#include <linux/gpio.h>
#include <stdint.h>

/* Open the chip at path and read how many lines it has. Its fd, or a
 * negative errno with *why saying what failed, after the chip's name
 * ("cannot be opened", "is not a GPIO chip's character device ..."). */
__attribute__((visibility("hidden"))) int
gpio_cdev_open_chip(const char *path, unsigned *lines, const char **why);
/* A line config of flags; an output's starts at value (0 or 1, its
 * logical level: the physical one is inverted with
 * GPIO_V2_LINE_FLAG_ACTIVE_LOW). */
__attribute__((visibility("hidden"))) void
gpio_cdev_config(struct gpio_v2_line_config *c, uint64_t flags, int value);
/* Request line offset of chip as c says, consumer naming xvdm's user in
 * dom0's gpioinfo. The request's fd (O_CLOEXEC), or a negative errno
 * (-EBUSY: dom0 holds the line). */
__attribute__((visibility("hidden"))) int
gpio_cdev_request(int chip, unsigned offset, const char *consumer,
                  const struct gpio_v2_line_config *c);
/* Drive a requested output line to its logical value. 0, or a negative
 * errno. */
__attribute__((visibility("hidden"))) int gpio_cdev_set(int line, int value);

#endif
