/* SPDX-License-Identifier: MIT */
/* What a gpu's VNC viewers' input carries (devices/gpu/gpu-vnc-input.c)
 * and what an input device that takes it says it has (devices/input/
 * input-vnc.c): both sides of one pipe. */
#ifndef XVDM_VNC_INPUT_H
#define XVDM_VNC_INPUT_H

#include <linux/input-event-codes.h>

/* The offers' keys: "<gpu device>.keyboard", "<gpu device>.tablet". */
#define VNC_INPUT_KEYBOARD "keyboard"
#define VNC_INPUT_TABLET "tablet"
/* Every key code the keyboard sends is in [KEY_ESC, KEY_COMPOSE], the
 * keys of a PC keyboard. */
#define VNC_INPUT_KEY_FIRST KEY_ESC
#define VNC_INPUT_KEY_LAST KEY_COMPOSE
/* The tablet's axes span 0 .. this, whatever the screen's size (as
 * QEMU's virtio tablet). */
#define VNC_INPUT_ABS_MAX 0x7fff

#endif
