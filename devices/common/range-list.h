/* SPDX-License-Identifier: MIT */
/*
 * Options that list numbers: "A:B-C:D", items separated by ':' because
 * ',' already separates a device's options (on the command line, in a
 * guest's file and in xl's virtio = [...]), each a number or a range A-B.
 * Compiled into the modules that take one (i2c's addrs=, gpio's lines=).
 */
#ifndef XVDM_RANGE_LIST_H
#define XVDM_RANGE_LIST_H

#include <xvdm/device.h>

/* What a module does with one item, first <= last: 0, or a negative
 * errno after a line naming the item (which the walk then ends with). */
typedef int range_list_fn(void *arg, unsigned long first, unsigned long last,
                          const char *item);

/* Call fn for each item of key=list, in order, numbers read in `base`
 * (16: hex with or without 0x; 10). 0, or fn's error, or -EINVAL after a
 * line naming key= and the item that is not a number or range A-B with
 * A <= B, or saying there is an empty item. */
__attribute__((visibility("hidden"))) int
range_list_walk(struct xvdm_dev *dev, const char *key, const char *list,
                int base, range_list_fn *fn, void *arg);

#endif
