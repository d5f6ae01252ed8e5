/* SPDX-License-Identifier: MIT */
/*
 * The virtio-blk io_uring engine: reads, writes and flushes submitted
 * straight on the guest's buffers, many in flight, completions signalled
 * on an eventfd the loop watches. Everything runs on the loop thread.
 * Discard and write-zeroes stay on the thread pool (block devices have no
 * io_uring operation for them).
 */
#ifndef XVDM_BLK_URING_H
#define XVDM_BLK_URING_H

#include <stdbool.h>

#include "blk-pool.h"

struct blk_uring;

/* A ring for backing fd (opened O_DIRECT when `direct`), restricted to
 * the operations blk submits (IORING_REGISTER_RESTRICTIONS: readv,
 * writev, fsync, and no flag but IOSQE_ASYNC), so that it opens no file
 * and reads none but the backing, whatever --seccomp allows io_uring.
 * -ENOSYS and friends when the kernel refuses io_uring or its
 * restrictions (seccomp, old kernel, disabled by sysctl): the caller
 * falls back to threads. */
int blk_uring_create(struct blk_uring **out, int fd, unsigned entries,
                     bool direct);
void blk_uring_destroy(struct blk_uring *u);

/* Queue a read, write or flush; blk_uring_flush() submits them. A job
 * through the page cache without inline_ok goes to io_uring's workers
 * (IOSQE_ASYNC) rather than being copied inside the submitting call. When the
 * kernel refuses a submission for good, the jobs it did not take, and
 * every later one, complete with VIRTIO_BLK_S_IOERR (reaped as usual)
 * and the call that saw the refusal returns its negative errno, once. */
int blk_uring_submit(struct blk_uring *u, struct blk_job *job);
/* Submit, and keep what completed meanwhile for blk_uring_take(). */
int blk_uring_flush(struct blk_uring *u);
/* The jobs blk_uring_flush() saw complete (as blk_uring_reap() returns
 * them), without a system call. */
struct blk_job *blk_uring_take(struct blk_uring *u);
int blk_uring_fd(const struct blk_uring *u);
/* Completed jobs, status set; a short transfer, or an O_DIRECT one on
 * memory the kernel could not pin, is returned with `on_thread` set for
 * the caller to finish another way. */
struct blk_job *blk_uring_reap(struct blk_uring *u);
/* Block until nothing is in flight (completions kept for reap). */
void blk_uring_wait_idle(struct blk_uring *u);

#endif
