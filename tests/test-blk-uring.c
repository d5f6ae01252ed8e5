/* SPDX-License-Identifier: MIT */
/*
 * blk's io_uring engine, from the inside: the ring takes only what blk
 * submits. --seccomp lets io_uring_enter through, so an unrestricted ring
 * would open and read files for whoever drives it; this one refuses any
 * other operation with EACCES. (The engine's file is compiled in, for its
 * ring.)
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../devices/blk/blk-uring.c"
#include "check-run.h"

static struct blk_uring *u;
static char path[] = "/tmp/xvdm-uring-XXXXXX";
static int fd;

static void setup(void)
{
    static const char text[] = "the backing's bytes";

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, sizeof(text)), (ssize_t)sizeof(text));
    ck_assert_int_eq(blk_uring_create(&u, fd, 8, false), 0);
}

static void teardown(void)
{
    blk_uring_destroy(u);
    close(fd);
    unlink(path);
}

/* Submit one SQE as prep() made it, wait for its completion: its res. */
static int run(void (*prep)(struct io_uring_sqe *sqe, void *arg), void *arg)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    struct io_uring_cqe *cqe;
    int res;

    ck_assert_ptr_nonnull(sqe);
    prep(sqe, arg);
    ck_assert_int_eq(io_uring_submit(&u->ring), 1);
    ck_assert_int_eq(io_uring_wait_cqe(&u->ring, &cqe), 0);
    res = cqe->res;
    io_uring_cqe_seen(&u->ring, cqe);
    return res;
}

static void prep_openat(struct io_uring_sqe *sqe, void *arg)
{
    io_uring_prep_openat(sqe, AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
}

static void prep_read(struct io_uring_sqe *sqe, void *buf)
{
    io_uring_prep_read(sqe, fd, buf, 8, 0);
}

static void prep_readv(struct io_uring_sqe *sqe, void *iov)
{
    io_uring_prep_readv(sqe, fd, iov, 1, 0);
}

static void prep_readv_linked(struct io_uring_sqe *sqe, void *iov)
{
    io_uring_prep_readv(sqe, fd, iov, 1, 0);
    io_uring_sqe_set_flags(sqe, IOSQE_IO_DRAIN);
}

START_TEST(the_ring_opens_no_file)
{
    ck_assert_int_eq(run(prep_openat, NULL), -EACCES);
}
END_TEST

START_TEST(the_ring_takes_no_operation_blk_does_not_submit)
{
    char buf[8];
    struct iovec iov = {buf, sizeof(buf)};

    ck_assert_int_eq(run(prep_read, buf), -EACCES);
    ck_assert_int_eq(run(prep_readv_linked, &iov), -EACCES); /* a flag */
    ck_assert_int_eq(run(prep_readv, &iov), sizeof(buf));
    ck_assert(memcmp(buf, "the back", sizeof(buf)) == 0);
}
END_TEST

static Suite *blk_uring_suite(void)
{
    Suite *s = suite_create("blk-uring");
    TCase *tc = tcase_create("restrictions");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_ring_opens_no_file);
    tcase_add_test(tc, the_ring_takes_no_operation_blk_does_not_submit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(blk_uring_suite());
}
