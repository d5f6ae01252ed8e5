/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk with rbd=POOL/IMAGE on the simulated hypervisor, against a
 * one-node Ceph cluster started for the run (sim/ceph-cluster: a monitor
 * and an OSD on memstore, under a fresh directory, gone after): data
 * written on two queues reads back through xvdm and through a second
 * librbd client; writes are in the cluster when done, whatever the
 * configuration says of librbd's cache; discard and write-zeroes; a
 * request of no data completes as on a file; a snapshot and ro=on are read-only; a
 * resize by another client is noticed; pools, images and snapshots that
 * do not exist are refused naming them; with the OSD killed, requests
 * fail and the device stops within the operation timeout. Not in `make
 * check` (it takes minutes): `make check-ceph` runs it, and fails where
 * there is no cluster. test-blk-rbd-spec has the checks that need none.
 */
#include "config.h"

#include <check.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include "blk-guest.h"
#include "check-run.h"
#include "ceph-node.h"
#include "harness.h"
#include "refused-spec.h"
#include "vdriver.h"

#define DISK_SIZE (1 << 20)
#define SECTORS (DISK_SIZE / 512)
#define WAIT_MS 5000
/* After how long an operation the cluster does not answer fails
 * (RBD_OP_TIMEOUT_S in blk-rbd.c, as the README says), and what a test
 * allows on top for the loop and a loaded machine. */
#define OP_TIMEOUT_S 30
#define SLACK_S 10

static struct harness h;
static struct vdriver d;
/* The cluster; its conf is "" when it is not running (not installed, or
 * it did not start: said once, and every test fails). */
static struct ceph_node cluster;
/* The test's own image, and a librbd client of the cluster's. */
static char image[64];
static rados_t client;
static rados_ioctx_t pool;

/* ---- the second client ------------------------------------------------------ */

/* A client of the cluster, and an image of `size` bytes named for this
 * test's process (each test runs in its own). */
static void new_image(uint64_t size)
{
    int order = 0;

    ck_assert_msg(cluster.conf[0], "no Ceph cluster (see above)");
    ck_assert_int_eq(rados_create(&client, NULL), 0);
    ck_assert_int_eq(rados_conf_read_file(client, cluster.conf), 0);
    ck_assert_int_eq(rados_connect(client), 0);
    ck_assert_int_eq(rados_ioctx_create(client, "rbd", &pool), 0);
    snprintf(image, sizeof(image), "img-%d", (int)getpid());
    ck_assert_int_eq(rbd_create(pool, image, size, &order), 0);
}

/* `len` bytes at `off` of the image (or its snapshot `snap`), as another
 * client reads them from the cluster. */
static void second_client_read(const char *snap, void *buf, size_t len,
                               uint64_t off)
{
    rbd_image_t im;

    ck_assert_int_eq(rbd_open_read_only(pool, image, &im, snap), 0);
    ck_assert_int_eq(rbd_read(im, off, len, buf), (ssize_t)len);
    ck_assert_int_eq(rbd_close(im), 0);
}

static void second_client_write(uint64_t off, size_t len, int fill)
{
    char buf[4096];
    rbd_image_t im;

    ck_assert_uint_le(len, sizeof(buf));
    memset(buf, fill, len);
    ck_assert_int_eq(rbd_open(pool, image, &im, NULL), 0);
    ck_assert_int_eq(rbd_write(im, off, len, buf), (ssize_t)len);
    ck_assert_int_eq(rbd_close(im), 0);
}

/* Whether `len` bytes at `off` of the image read as `byte` to another
 * client. */
static bool cluster_has(uint64_t off, size_t len, uint8_t byte)
{
    static uint8_t buf[DISK_SIZE];

    ck_assert_uint_le(len, sizeof(buf));
    second_client_read(NULL, buf, len, off);
    for (size_t i = 0; i < len; i++)
        if (buf[i] != byte)
            return false;
    return true;
}

/* ---- the guest's side ------------------------------------------------------- */

/* The device on the test's image (or its snapshot `snap`), with the
 * options `extra`, probed with `features`: what harness_start() said. */
static int start_on(const char *snap, const char *extra, unsigned queues,
                    uint64_t features)
{
    char spec[256];

    snprintf(spec, sizeof(spec), "blk,rbd=rbd/%s%s%s,conf=%s%s", image,
             snap ? "@" : "", snap ? snap : "", cluster.conf, extra);
    return blk_guest_start(&h, &d, spec, queues, 64, features);
}

static void start(const char *extra, unsigned queues)
{
    ck_assert_int_eq(start_on(NULL, extra, queues, BLK_GUEST_FEATURES), 0);
}

static void stop(void)
{
    harness_stop(&h);
    rados_ioctx_destroy(pool);
    rados_shutdown(client);
}

static uint8_t run_one(uint32_t type, uint64_t sector, uint32_t len, int fill,
                       uint8_t **out)
{
    return blk_guest_run(&d, type, sector, len, fill, out);
}

static bool reads_as(uint64_t sector, unsigned sectors, uint8_t byte)
{
    return blk_guest_reads_as(&d, sector, sectors, byte);
}

/* ---- tests ------------------------------------------------------------------ */

/* Random writes over two queues at once, a flush, then every byte read
 * back through xvdm and, independently, through a second client. */
START_TEST(data_written_on_two_queues_reads_back_and_is_in_the_image)
{
    static uint8_t shadow[DISK_SIZE], seen[DISK_SIZE];
    unsigned seed = 7;

    new_image(DISK_SIZE);
    memset(shadow, 0, sizeof(shadow));
    start(",queues=2", 2);
    ck_assert_uint_eq(blk_guest_config(&d, 0, 8), SECTORS);
    ck_assert(d.features & (1ULL << VIRTIO_BLK_F_FLUSH));
    ck_assert(!(d.offered & (1ULL << VIRTIO_BLK_F_RO)));
    blk_guest_random_writes(&d, shadow, SECTORS, &seed);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    second_client_read(NULL, seen, DISK_SIZE, 0);
    ck_assert(memcmp(seen, shadow, DISK_SIZE) == 0);
    ck_assert(blk_guest_reads_back(&d, shadow, SECTORS));
    stop();
}
END_TEST

/* The cluster's clients cache writes until a flush (sim/ceph-cluster),
 * but not xvdm's: a write is in the cluster when it completes (a cached
 * one would be lost with xvdm, and with the cluster gone its flush was
 * not answered within 40 s), and a flush still succeeds. */
START_TEST(a_write_is_in_the_cluster_when_done_whatever_conf_says_of_caching)
{
    new_image(DISK_SIZE);
    start("", 1);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 8, 4096, 0x5a, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(cluster_has(8 * 512, 4096, 0x5a));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(8, 8, 0x5a));
    stop();
}
END_TEST

/* A guest that cannot flush gets writethrough: each write is in the
 * cluster when it completes. */
START_TEST(a_writethrough_guests_writes_are_in_the_cluster_when_done)
{
    new_image(DISK_SIZE);
    ck_assert_int_eq(start_on(NULL, "", 1,
                              BLK_GUEST_FEATURES &
                                  ~(1ULL << VIRTIO_BLK_F_FLUSH)),
                     0);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 8, 4096, 0x3c, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(cluster_has(8 * 512, 4096, 0x3c));
    stop();
}
END_TEST

/* WRITE_ZEROES (with and without unmap) reads back as zeroes, to the
 * guest and to another client, and touches nothing around it. DISCARD
 * succeeds and touches nothing around it; what it leaves is librbd's
 * choice (a hint: it skips parts of objects, rbd_skip_partial_discard). */
START_TEST(discard_and_write_zeroes_reach_the_image)
{
    new_image(DISK_SIZE);
    start("", 1);
    blk_guest_discards_and_zeroes(&d, SECTORS);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    for (unsigned s = 8; s < 40; s += 16) {
        ck_assert(reads_as(s, 8, 0));
        ck_assert(cluster_has(s * 512, 8 * 512, 0));
    }
    for (unsigned s = 0; s < 64; s += 16) {
        ck_assert(reads_as(s, 8, 0x77));
        ck_assert(cluster_has(s * 512, 8 * 512, 0x77));
    }
    stop();
}
END_TEST

/* A read-only disk: the guest still reads `seen` and the image holds
 * `image_byte`. */
static void read_only_and_refuses_writes(uint8_t seen, uint8_t image_byte)
{
    blk_guest_is_read_only(&d, 8, seen);
    ck_assert(cluster_has(0, 4096, image_byte));
}

/* A read or write of no data (only its header) completes as on a file:
 * librbd refuses an empty vector, which is no fault of the guest's. */
START_TEST(a_request_of_no_data_completes_as_on_a_file)
{
    new_image(DISK_SIZE);
    start("", 1);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 1, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 1, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

/* A snapshot is read-only; reads see the image as it was when the
 * snapshot was taken. */
START_TEST(a_snapshot_is_offered_read_only_and_refuses_writes)
{
    rbd_image_t im;

    new_image(DISK_SIZE);
    second_client_write(0, 4096, 0x11);
    ck_assert_int_eq(rbd_open(pool, image, &im, NULL), 0);
    ck_assert_int_eq(rbd_snap_create(im, "s1"), 0);
    ck_assert_int_eq(rbd_close(im), 0);
    second_client_write(0, 4096, 0x22);
    ck_assert_int_eq(start_on("s1", "", 1, BLK_GUEST_FEATURES), 0);
    read_only_and_refuses_writes(0x11, 0x22);
    stop();
}
END_TEST

/* ro=on opens the image read-only. */
START_TEST(ro_on_opens_the_image_read_only)
{
    new_image(DISK_SIZE);
    second_client_write(0, 4096, 0x33);
    start(",ro=on", 1);
    read_only_and_refuses_writes(0x33, 0x33);
    stop();
}
END_TEST

/* Another client grows the image, then shrinks it: the guest hears of
 * each (size-check=, 1 s by default) as of a file's size change. */
static void resized_to(uint64_t bytes)
{
    uint32_t generation = vdriver_read(&d, VIRTIO_MMIO_CONFIG_GENERATION);
    rbd_image_t im;
    int status = 0;

    ck_assert_int_eq(rbd_open(pool, image, &im, NULL), 0);
    ck_assert_int_eq(rbd_resize(im, bytes), 0);
    ck_assert_int_eq(rbd_close(im), 0);
    for (unsigned edges = 0; edges < 2 && !(status & VIRTIO_MMIO_INT_CONFIG);
         edges++) {
        status = vdriver_wait_irq(&d, WAIT_MS);
        ck_assert_int_ge(status, 0);
    }
    ck_assert(status & VIRTIO_MMIO_INT_CONFIG);
    ck_assert_uint_eq(blk_guest_config(&d, 0, 8), bytes / 512);
    ck_assert_uint_ne(vdriver_read(&d, VIRTIO_MMIO_CONFIG_GENERATION),
                      generation);
}

START_TEST(a_resize_by_another_client_is_noticed)
{
    new_image(DISK_SIZE);
    start("", 1);
    resized_to(2 * DISK_SIZE);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 2 * SECTORS - 8, 4096, 0x44,
                              NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(2 * SECTORS - 8, 8, 0x44));
    resized_to(DISK_SIZE / 2);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, SECTORS - 8, 4096, 0, NULL),
                      VIRTIO_BLK_S_IOERR);
    stop();
}
END_TEST

/* LeakSanitizer's suppressions, read when it first reports: in the
 * process of a test that had xvdm leave an image open (the close took
 * too long), what librbd allocated for it, which it holds where the
 * leak checker cannot follow. xvdm's own memory it keeps is marked in
 * blk-rbd.c. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return getenv("XVDM_TEST_RBD_LEFT_OPEN") ? "leak:librbd.so\n" : "";
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) +
           (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The OSD dies under a running guest: a write and a read fail, each
 * within xvdm's operation timeout, and the device then stops within it
 * too (with librbd's cache it waited for ever to write back). Runs
 * last, and once: the cluster has no OSD after. */
START_TEST(with_the_osd_gone_requests_fail_and_the_device_stops_in_bounds)
{
    struct blk_req write, read;
    struct timespec t0;
    double took;

    new_image(DISK_SIZE);
    /* In the cluster, not in xvdm's cache: its read goes to the OSD. */
    second_client_write(1024 * 512, 4096, 0x66);
    start("", 1);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 8, 4096, 0x5a, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_int_eq(ceph_node_kill_osd(&cluster), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    write = blk_guest_submit(&d, 0, VIRTIO_BLK_T_OUT, 16, 4096, false);
    read = blk_guest_submit(&d, 0, VIRTIO_BLK_T_IN, 1024, 4096, true);
    vdriver_kick(&d, 0);
    for (unsigned got = 0; got < 2;) {
        uint32_t id, len;

        while (guest_ring_get_used(&d.ring[0], &id, &len))
            got++;
        ck_assert_msg(seconds_since(&t0) < OP_TIMEOUT_S + SLACK_S,
                      "%u of 2 requests back after %.0f s (write %#x, "
                      "read %#x)",
                      got, seconds_since(&t0), *write.status, *read.status);
        if (got < 2)
            vdriver_wait_irq(&d, 1000);
    }
    printf("write and read back after %.1f s\n", seconds_since(&t0));
    ck_assert_uint_eq(*write.status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(*read.status, VIRTIO_BLK_S_IOERR);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    harness_stop(&h);
    took = seconds_since(&t0);
    printf("the device stopped after %.1f s\n", took);
    fflush(stdout);
    ck_assert_double_lt(took, OP_TIMEOUT_S + SLACK_S);
    setenv("XVDM_TEST_RBD_LEFT_OPEN", "1", 1);
    rados_ioctx_destroy(pool);
    rados_shutdown(client);
}
END_TEST

START_TEST(pools_images_and_snapshots_that_do_not_exist_are_refused_naming_them)
{
    char spec[256], named[256];

    new_image(DISK_SIZE);
    snprintf(spec, sizeof(spec), "blk,rbd=nopool/%s,conf=%s", image,
             cluster.conf);
    snprintf(named, sizeof(named),
             "cannot connect to rbd='nopool/%s': no such pool", image);
    expect_spec_refused(spec, named);
    snprintf(spec, sizeof(spec), "blk,rbd=rbd/noimage,conf=%s", cluster.conf);
    expect_spec_refused(spec,
                   "cannot connect to rbd='rbd/noimage': cannot open the image");
    snprintf(spec, sizeof(spec), "blk,rbd=rbd/%s@nosnap,conf=%s", image,
             cluster.conf);
    snprintf(named, sizeof(named), "cannot connect to rbd='rbd/%s@nosnap'",
             image);
    expect_spec_refused(spec, named);
    rados_ioctx_destroy(pool);
    rados_shutdown(client);
}
END_TEST

static Suite *blk_rbd_suite(void)
{
    TCase *tc;
    Suite *s = check_suite_of_one_case("blk-rbd", "rbd", 60, &tc);

    tcase_add_test(tc,
                   data_written_on_two_queues_reads_back_and_is_in_the_image);
    tcase_add_test(
        tc, a_write_is_in_the_cluster_when_done_whatever_conf_says_of_caching);
    tcase_add_test(tc,
                   a_writethrough_guests_writes_are_in_the_cluster_when_done);
    tcase_add_test(tc, discard_and_write_zeroes_reach_the_image);
    tcase_add_test(tc, a_request_of_no_data_completes_as_on_a_file);
    tcase_add_test(tc, a_snapshot_is_offered_read_only_and_refuses_writes);
    tcase_add_test(tc, ro_on_opens_the_image_read_only);
    tcase_add_test(tc, a_resize_by_another_client_is_noticed);
    tcase_add_test(
        tc,
        pools_images_and_snapshots_that_do_not_exist_are_refused_naming_them);
    return s;
}

/* The OSD killed: once, in one mode (how the guest is reached does not
 * matter to librbd's timeout), after everything else. */
static Suite *blk_rbd_osd_gone_suite(void)
{
    TCase *tc;
    Suite *s = check_suite_of_one_case("blk-rbd-osd-gone", "osd-gone",
                                       3 * (OP_TIMEOUT_S + SLACK_S), &tc);

    tcase_add_test(
        tc, with_the_osd_gone_requests_fail_and_the_device_stops_in_bounds);
    return s;
}

/* One cluster for the whole run (starting one takes seconds), each test
 * on an image of its own. */
int main(void)
{
    bool up = ceph_node_start(&cluster) == 0;
    int ret = check_run_all_modes(blk_rbd_suite);
    int gone = check_run(blk_rbd_osd_gone_suite());

    if (up)
        ceph_node_stop(&cluster);
    return ret == EXIT_SUCCESS ? gone : ret;
}
