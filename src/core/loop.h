/* SPDX-License-Identifier: MIT */
/* The per-guest event loop: epoll over the event-channel fd, device fds and
 * a stop eventfd. Level-triggered; callbacks run on the loop's thread. */
#ifndef XVDM_LOOP_H
#define XVDM_LOOP_H

#include <stdint.h>

struct loop;

typedef void loop_cb(void *arg, uint32_t revents);

/* NULL + errno on failure. */
struct loop *loop_create(void);
void loop_destroy(struct loop *loop);

/* Watch fd for `events` (EPOLLIN/EPOLLOUT); -EEXIST if already watched. */
int loop_watch(struct loop *loop, int fd, uint32_t events, loop_cb *cb,
               void *arg);

/* A user of the loop's watches that must not take every one: a device,
 * whose guest decides how many fds it opens (vsock's connections, say).
 * Each owner added is kept LOOP_OWNER_RESERVE watches of its own, which
 * other owners cannot take, so that one device cannot leave its
 * siblings deaf (a console's next client, blk's reconnected server). */
#define LOOP_OWNER_RESERVE 8
struct loop_owner {
    unsigned watches; /* held now */
    struct loop_owner *next;
};
void loop_owner_add(struct loop *loop, struct loop_owner *o);
/* Its fds are then watched for no owner. */
void loop_owner_remove(struct loop *loop, struct loop_owner *o);
/* loop_watch() on o's account: -ENOSPC where it would take a watch that
 * another owner's reserve keeps. */
int loop_watch_owned(struct loop *loop, struct loop_owner *o, int fd,
                     uint32_t events, loop_cb *cb, void *arg);
int loop_modify(struct loop *loop, int fd, uint32_t events);
int loop_unwatch(struct loop *loop, int fd);

/* After handling events, look for more for up to `ns` nanoseconds without
 * sleeping (0, the default: sleep at once); the window within that adapts
 * to the gaps between events (see loop_wait()). A guest's next access usually
 * follows within microseconds (InterruptStatus after the interrupt, ACK,
 * the next kick): found by looking, it is served without the wake-up of a
 * sleeping thread, at the price of a CPU kept busy meanwhile. Any thread. */
void loop_set_poll(struct loop *loop, uint64_t ns);
/* Which turn the loop is in: a number that changes each time the loop
 * wakes with a batch of events. Work bounded "per turn" is bounded between
 * two looks at every other fd. The counter itself, for a hot path to read
 * without a call; loop thread only. */
const uint64_t *loop_turn(const struct loop *loop);
/* Dispatch until loop_stop() or loop_fail(). 0, the error loop_fail()
 * was given, or a negative errno if epoll fails. */
int loop_run(struct loop *loop);
/* Make loop_run() return after the current callback. Safe from any thread
 * and from a signal handler. */
void loop_stop(struct loop *loop);
/* From a callback: what it watches is broken for good, make loop_run()
 * return err (a negative errno) after it. */
void loop_fail(struct loop *loop, int err);

#endif
