/* SPDX-License-Identifier: MIT */
/*
 * xvdm as the XenBus backend libxl expects for a guest's virtio devices:
 * the devices it declared in xenstore (xl-devices.h) combined with those
 * of the command line, and the backend state handshake.
 *
 * libxl 4.17 waits about 10 s after writing a virtio disk's nodes for its
 * backend state to reach 2 (InitWait), or `xl create` fails. On shutdown
 * or destroy it writes 5 (Closing) to every device and waits for 6
 * (Closed) before destroying the domain, which on Arm cannot finish while
 * a device model still maps the guest's memory. So xvdm answers Closed
 * only after it has let go of the guest: backend_close() comes after the
 * devices are destroyed and the memory unmapped.
 *
 * virtio-mmio has no hot-unplug: a device the toolstack closes while
 * others stay (xl block-detach) keeps being served, with a warning, and
 * libxl's detach times out; the instance stops when all are closing or the
 * domain is gone.
 */
#ifndef XVDM_BACKEND_H
#define XVDM_BACKEND_H

#include <stdint.h>

/* Devices of one guest: the xenstore ones and the given specs each. */
#define BACKEND_DEVICES_MAX 32

struct backend;
struct devspec;
struct loop;
struct store;

/* The devices to serve guest `domid`: the xenstore ones first, then the
 * command line's. A command-line device with neither base= nor irq= whose
 * type matches a generic (Xen 4.18+) xenstore device gives that device its
 * options, grants= included, instead of becoming one more device; a
 * grants= that contradicts the device's grant_usage is refused. Layout assigned and
 * checked; each spec's node (where the device publishes) set: a xenstore
 * device's backend directory, or for one of the command line
 * /local/domain/<our domid>/device-model/<domid>/xvdm/<type><n>. 0, or a
 * negative errno after one line naming the problem. */
int backend_open(struct backend **out, struct store *st, uint32_t domid,
                 const char *module_dir, const struct devspec *cli,
                 unsigned nr_cli);
/* When xenstore has no device of guest `domid` yet, wait up to wait_ms
 * for the toolstack to write one (libxl 4.18+ writes virtio = [...]
 * devices without waiting for a backend, so an xvdm started beside `xl
 * create` may be early), saying once that it waits. 0 (devices or not:
 * backend_open() says what it finds), or -ESRCH when the domain died. */
int backend_wait_for_devices(struct store *st, uint32_t domid,
                             unsigned wait_ms);
const struct devspec *backend_specs(const struct backend *b, unsigned *n);

/* The devices are served: set every xenstore device to InitWait and
 * watch for teardown. on_gone(arg) runs once, from the loop, when every
 * xenstore device is Closing (or removed) or the domain has died. */
int backend_start(struct backend *b, struct loop *loop,
                  void (*on_gone)(void *arg), void *arg);

/* Stop watching, set every xenstore device still present to Closed,
 * remove the device-model directory of the command line's devices and
 * free b. Call it once the devices are destroyed and the guest's memory
 * is unmapped. NULL is fine. */
void backend_close(struct backend *b);
/* backend_close(), except that the xenstore devices stay as they are
 * (InitWait): for the next instance to serve them, when the supervisor
 * restarts this one with devices the guest declared after it started. */
void backend_hand_over(struct backend *b);

#endif
