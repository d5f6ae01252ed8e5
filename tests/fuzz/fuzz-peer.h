/* SPDX-License-Identifier: MIT */
/*
 * Fuzz side: the host end of the device fuzz-mmio serves, so that the
 * fuzzer also plays the world outside the guest. "net" gets a tap of its
 * own in a private network namespace, the peer sending frames into it;
 * "console" a unix socket, the peer its client; "vsock" uds= in a
 * temporary folder, the peer the dom0 service listening on the guest's
 * port FUZZ_VSOCK_PORT; "i2c" the adapter of tests/i2c-stub.h, with its
 * chips ("i2c-smbus": the same adapter, SMBus-only); "gpio" the chip of
 * tests/gpio-stub.h, whose lines the peer's bytes drive; "scmi" two fixed
 * sensors and a hwmon= one on a file whose value the peer's bytes set;
 * "input" the keyboard of tests/evdev-stub.h, the peer's bytes its
 * events (fuzz-peer.c). Any other spec
 * (rng, "blk,path=F") is served as given, with no peer.
 */
#ifndef XVDM_FUZZ_PEER_H
#define XVDM_FUZZ_PEER_H

#include <stddef.h>

/* The vsock port the seeds' guest connects to (tests/fuzz/make-seeds). */
#define FUZZ_VSOCK_PORT 1234

/* Prepare the host end for `name` (a --device spec, or "net", "console",
 * "vsock", "i2c", "i2c-smbus", "gpio", "scmi", "input") and return the
 * spec to serve.
 * NULL after a line saying what failed. */
const char *fuzz_peer_setup(const char *name);
/* After xvdm serves the device: connect to it (console). 0 or -errno. */
int fuzz_peer_connect(void);
/* Send bytes from the host end towards the guest (a frame into the tap,
 * bytes on the socket, on vsock's newest connection); never blocks, and
 * is nothing without a peer. */
void fuzz_peer_send(const void *buf, size_t len);
/* Take whatever the device sent the host end, so it never stalls on a
 * full socket; connect again if xvdm let the console's client go. */
void fuzz_peer_drain(void);

#endif
