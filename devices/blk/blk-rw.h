/* SPDX-License-Identifier: MIT */
/*
 * Reading and writing the backing on a worker thread: straight on the
 * guest's buffers, or through a buffer of the thread's own. The second is
 * for O_DIRECT where dom0's kernel cannot pin the guest's memory: Xen's
 * foreign mappings of a guest's RAM (privcmd's: VM_IO | VM_PFNMAP) fail
 * direct I/O with EFAULT while copying in and out of them works. The
 * buffer is BLK_RW_BOUNCE bytes, one per worker thread that needed one:
 * a request larger than that goes through it in pieces.
 */
#ifndef XVDM_BLK_RW_H
#define XVDM_BLK_RW_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#define BLK_RW_BOUNCE (256 * 1024)

/* The worker threads' bounce buffers (a thread's is freed as it ends). */
struct blk_rw_bounce {
    pthread_key_t key;
};

int blk_rw_bounce_init(struct blk_rw_bounce *bb);
/* After the threads that used it have ended. */
void blk_rw_bounce_fini(struct blk_rw_bounce *bb);

/* All of iov[0..n) (`len` bytes) at `off`, in pieces if the kernel
 * returns short; EIO at end of file. A durable write is on stable storage
 * when this returns (RWF_DSYNC). 0 or -errno; iov is left as it was.
 * Bounced through the calling thread's buffer when `bb` is not NULL. */
int blk_rw(int fd, const struct iovec *iov, unsigned n, uint64_t off,
           uint64_t len, bool write, bool durable, struct blk_rw_bounce *bb);

#endif
