/* SPDX-License-Identifier: MIT */
/* Reading and writing the backing on a worker thread (see blk-rw.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk-request.h"
#include "blk-rw.h"
#include "../common/iov-copy.h"

/* Straight on the buffers, looping over short transfers. */
static int blk_rw_straight(int fd, const struct iovec *in, unsigned n,
                           uint64_t off, bool write, bool durable)
{
    struct iovec copy[BLK_IOV_MAX], *iov = copy;

    if (n > BLK_IOV_MAX)
        return -EINVAL;
    memcpy(copy, in, n * sizeof(*in));
    while (n) {
        ssize_t r = write ? pwritev2(fd, iov, (int)n, (off_t)off,
                                     durable ? RWF_DSYNC : 0)
                          : preadv(fd, iov, (int)n, (off_t)off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        off += (uint64_t)r;
        while (n && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n) {
            iov->iov_base = (uint8_t *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

static void blk_rw_bounce_free(void *buf)
{
    free(buf);
}

int blk_rw_bounce_init(struct blk_rw_bounce *bb)
{
    return -pthread_key_create(&bb->key, blk_rw_bounce_free);
}

void blk_rw_bounce_fini(struct blk_rw_bounce *bb)
{
    pthread_key_delete(bb->key);
}

/* The calling thread's buffer, page-aligned as O_DIRECT wants; NULL when
 * out of memory. */
static uint8_t *blk_rw_bounce_buffer(struct blk_rw_bounce *bb)
{
    void *buf = pthread_getspecific(bb->key);

    if (!buf && posix_memalign(&buf, 4096, BLK_RW_BOUNCE) == 0 &&
        pthread_setspecific(bb->key, buf) != 0) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

/* Piece by piece through the thread's buffer: each piece is a whole number
 * of the buffer's bytes, so its offset stays as aligned as the request's.
 * A durable write is synced once, after its last piece. */
static int blk_rw_bounced(int fd, const struct iovec *iov, unsigned n,
                          uint64_t off, uint64_t len, bool write,
                          bool durable, struct blk_rw_bounce *bb)
{
    uint8_t *buf = blk_rw_bounce_buffer(bb);
    int ret = buf ? 0 : -ENOMEM;

    for (uint64_t done = 0; ret == 0 && done < len;) {
        size_t piece = len - done < BLK_RW_BOUNCE ? (size_t)(len - done)
                                                  : BLK_RW_BOUNCE;
        struct iovec one = {buf, piece};

        /* Never write what the buffer held before: the list holds `len`
         * bytes by construction, so a short copy is a bug, not I/O. */
        if (write && iov_copy(iov, n, (size_t)done, buf, piece, false) != piece)
            return -EIO;
        ret = blk_rw_straight(fd, &one, 1, off + done, write, false);
        if (ret == 0 && !write)
            iov_copy(iov, n, (size_t)done, buf, piece, true);
        done += piece;
    }
    if (ret == 0 && write && durable && fdatasync(fd))
        ret = -errno;
    return ret;
}

int blk_rw(int fd, const struct iovec *iov, unsigned n, uint64_t off,
           uint64_t len, bool write, bool durable, struct blk_rw_bounce *bb)
{
    if (bb)
        return blk_rw_bounced(fd, iov, n, off, len, write, durable, bb);
    return blk_rw_straight(fd, iov, n, off, write, durable);
}
