/* SPDX-License-Identifier: MIT */
/*
 * file=: the guest's output appended to a file that never grows past its
 * cap (max-size=), so that a guest cannot fill dom0's disk. When the next
 * write would pass it, the newest part of the file (half the cap, at most
 * CON_FILE_KEEP_MAX) moves to its start behind a line saying how much
 * older output was dropped. All of it on the file already open: after
 * --chroot and --user nothing could be opened or renamed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console-backend-private.h"

#define CON_FILE_CHUNK (64 * 1024)
#define CON_FILE_MARKER_MAX 96
/* The move is copied on the loop thread, when the guest's output decides:
 * bounded as blk bounds what it copies there per drain, whatever the cap
 * (max-size=1T would otherwise copy 512 GiB in one go). */
#define CON_FILE_KEEP_MAX (1024 * 1024)

int con_file_open(struct con_backend *b, const char *path, uint64_t cap)
{
    /* Appended to, never truncated at start: earlier boots' output stays.
     * Read too, to move its newest part. 0600: a console shows passwords
     * typed at it. */
    int fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
    int ret;

    if (fd < 0) {
        ret = -errno;
        xvdm_dev_log(b->dev, XVDM_LOG_ERROR, "cannot open file='%s': %s", path,
                     strerror(errno));
        return ret;
    }
    b->file_cap = cap;
    ret = con_attach(b, -1, fd);
    if (ret)
        close(fd);
    return ret;
}

/* [from, from + len) to [to, ...), to < from, in chunks. */
static int con_file_move(int fd, uint64_t from, uint64_t to, uint64_t len)
{
    static uint8_t chunk[CON_FILE_CHUNK];

    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < sizeof(chunk) ? len - done : sizeof(chunk);
        ssize_t r = pread(fd, chunk, n, (off_t)(from + done));

        if (r <= 0 || pwrite(fd, chunk, (size_t)r, (off_t)(to + done)) != r)
            return r < 0 ? -errno : -EIO;
        done += (uint64_t)r;
    }
    return 0;
}

/* Keep the newest half of the cap (at most CON_FILE_KEEP_MAX), behind a
 * marker line: the new size. */
static int con_file_rotate(struct con_backend *b, int fd, uint64_t size,
                           uint64_t *new_size)
{
    uint64_t half = b->file_cap / 2, keep;
    char marker[CON_FILE_MARKER_MAX];
    ssize_t w;
    int m, ret;

    keep = (half < CON_FILE_KEEP_MAX ? half : CON_FILE_KEEP_MAX) -
           CON_FILE_MARKER_MAX;

    if (keep > size)
        keep = size;
    m = snprintf(marker, sizeof(marker),
                 "[xvdm: %" PRIu64 " bytes of older output dropped, "
                 "max-size=%" PRIu64 "]\n",
                 size - keep, b->file_cap);
    ret = con_file_move(fd, size - keep, (uint64_t)m, keep);
    if (ret == 0) {
        w = pwrite(fd, marker, (size_t)m, 0);
        if (w != m)
            ret = w < 0 ? -errno : -EIO; /* short: errno says nothing */
    }
    if (ret == 0 && ftruncate(fd, (off_t)(m + keep)))
        ret = -errno;
    if (ret == 0 && !b->file_rotated)
        xvdm_dev_log(b->dev, XVDM_LOG_INFO,
                     "console file reached max-size=%" PRIu64 ": keeping its "
                     "newest %" PRIu64 " bytes from now on", b->file_cap,
                     keep);
    b->file_rotated = true;
    *new_size = (uint64_t)m + keep;
    return ret;
}

/* At the file's end as it is now (someone may have truncated it, as
 * logrotate's copytruncate does), within the cap. As writev(2): bytes
 * written, or -1 with errno set. */
ssize_t con_file_write(struct con_backend *b, const struct iovec *iov,
                       unsigned n)
{
    int fd = b->out.fd;
    uint64_t size, len = 0;
    struct stat st;
    int ret;

    for (unsigned i = 0; i < n; i++)
        len += iov[i].iov_len;
    if (fstat(fd, &st))
        return -1;
    size = (uint64_t)st.st_size;
    if (size + len > b->file_cap) {
        ret = con_file_rotate(b, fd, size, &size);
        if (ret) {
            errno = -ret;
            return -1;
        }
    }
    return pwritev(fd, iov, (int)n, (off_t)size);
}
