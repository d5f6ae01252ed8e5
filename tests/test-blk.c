/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk on the simulated hypervisor, driven like Linux's virtio_blk:
 * data written through xvdm reads back and is in the backing file after a
 * flush, and on the device when the guest asked for writethrough; every
 * request the spec refuses gets its status; read-only disks, serials,
 * discard and write-zeroes, backing errors, and a resize announced by
 * SIGHUP.
 */
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <time.h>
#ifdef HAVE_LIBSECCOMP
#include <seccomp.h>
#endif
#include <unistd.h>

#include "blk-guest.h"
#include "check-run.h"
#include "log-lines.h"
#include "syscall-filter.h"
#include "harness.h"
#include "log.h"
#include "scribble.h"
#include "vdriver.h"

#define BLK_ID BLK_GUEST_ID
#define DISK_SIZE (1 << 20)
#define SECTORS (DISK_SIZE / 512)
#define WAIT_MS BLK_GUEST_WAIT_MS
#define FEATURES BLK_GUEST_FEATURES

static char disk[64];
static struct harness h;
static struct vdriver d;
static uint16_t queue_size = 64; /* what start() sets up */

/* A backing file of DISK_SIZE bytes, filled with `fill`. */
static void make_disk(const char *dir, uint8_t fill)
{
    static uint8_t buf[DISK_SIZE];
    int fd;

    snprintf(disk, sizeof(disk), "%s/xvdm-blk-XXXXXX", dir);
    fd = mkstemp(disk);
    ck_assert_int_ge(fd, 0);
    memset(buf, fill, sizeof(buf));
    ck_assert_int_eq(write(fd, buf, sizeof(buf)), DISK_SIZE);
    close(fd);
}

static void start_with(const char *extra, unsigned queues, uint64_t features)
{
    char spec[256];

    snprintf(spec, sizeof(spec), "blk,path=%s%s", disk, extra);
    ck_assert_int_eq(blk_guest_start(&h, &d, spec, queues, queue_size,
                                     features), 0);
}

static void start(const char *extra, unsigned queues)
{
    start_with(extra, queues, FEATURES);
}

static void stop(void)
{
    harness_stop(&h);
    unlink(disk);
}

static uint64_t config(unsigned offset, unsigned size)
{
    return blk_guest_config(&d, offset, size);
}

static uint8_t run_one(uint32_t type, uint64_t sector, uint32_t len,
                       bool device_writes, uint8_t **data)
{
    static const unsigned q0[] = {0};
    struct blk_req r =
        blk_guest_submit(&d, 0, type, sector, len, device_writes);

    if (data && r.data && !device_writes)
        memcpy(r.data, *data, len);
    blk_guest_complete(&d, q0, 1, 1);
    if (data && device_writes)
        *data = r.data;
    return *r.status;
}

START_TEST(probe_offers_capacity_and_features)
{
    make_disk("/tmp", 0);
    start("", 1);
    ck_assert_uint_eq(config(0, 8), SECTORS);
    ck_assert_uint_eq(config(12, 4), 126); /* seg_max */
    ck_assert_uint_eq(config(20, 4), 512); /* blk_size */
    ck_assert(d.features & (1ULL << VIRTIO_BLK_F_FLUSH));
    ck_assert(d.features & (1ULL << VIRTIO_BLK_F_DISCARD));
    ck_assert(d.features & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
    ck_assert(!(d.features & (1ULL << VIRTIO_BLK_F_RO)));
    ck_assert(!(d.features & (1ULL << VIRTIO_BLK_F_MQ)));
    stop();
}
END_TEST

/* Each engine, with and without dom0's page cache. */
static const char *const engines[] = {",queues=2",
                                      ",queues=2,aio=threads",
                                      ",queues=2,direct=on",
                                      ",queues=2,aio=threads,direct=on"};

/* Random writes over two queues at once, a flush, then every byte read
 * back through xvdm and, independently, from the file. */
START_TEST(data_written_on_two_queues_reads_back_and_is_in_the_file)
{
    static uint8_t shadow[DISK_SIZE], file[DISK_SIZE];
    unsigned seed = 42;
    int fd;

    make_disk("/var/tmp", 0); /* /tmp may be a tmpfs: no O_DIRECT there */
    memset(shadow, 0, sizeof(shadow));
    start(engines[_i], 2);
    ck_assert(d.features & (1ULL << VIRTIO_BLK_F_MQ));
    ck_assert_uint_eq(config(34, 2), 2);
    blk_guest_random_writes(&d, shadow, SECTORS, &seed);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL),
                      VIRTIO_BLK_S_OK);
    fd = open(disk, O_RDONLY);
    ck_assert_int_eq(pread(fd, file, DISK_SIZE, 0), DISK_SIZE);
    close(fd);
    ck_assert(memcmp(file, shadow, DISK_SIZE) == 0);
    ck_assert(blk_guest_reads_back(&d, shadow, SECTORS));
    stop();
}
END_TEST

/* direct=on where dom0's kernel cannot pin the guest's memory (Xen's
 * foreign mappings; the sim's RAM where the host has memfd_secret): a
 * request larger than an I/O thread's bounce buffer, over several guest
 * buffers, is written and read back whole, byte for byte, and blk says
 * once that it copies. */
static unsigned big_engine;
static bool big_pinnable;

static void big_direct_round(void)
{
    static const uint32_t wparts[] = {12 << 10, 384 << 10, 304 << 10};
    static const uint32_t rparts[] = {300 << 10, 400 << 10};
    static const unsigned q0[] = {0};
    static uint8_t sent[700 << 10], file[700 << 10];
    struct blk_req r;
    int fd;

    make_disk("/var/tmp", 0);
    start(engines[big_engine], 2);
    big_pinnable = sim_ram_pinnable(h.sim);
    r = blk_guest_submit_split(&d, 0, VIRTIO_BLK_T_OUT, 8, wparts, 3, false);
    for (size_t i = 0; i < sizeof(sent); i++)
        sent[i] = r.data[i] = (uint8_t)(i * 7 + i / 4096);
    blk_guest_complete(&d, q0, 1, 1);
    ck_assert_uint_eq(*r.status, VIRTIO_BLK_S_OK);
    r = blk_guest_submit_split(&d, 0, VIRTIO_BLK_T_IN, 8, rparts, 2, true);
    blk_guest_complete(&d, q0, 1, 1);
    ck_assert_uint_eq(*r.status, VIRTIO_BLK_S_OK);
    ck_assert(memcmp(r.data, sent, sizeof(sent)) == 0);
    fd = open(disk, O_RDONLY);
    ck_assert_int_eq(pread(fd, file, sizeof(file), 8 * 512), sizeof(file));
    close(fd);
    ck_assert(memcmp(file, sent, sizeof(sent)) == 0);
    stop();
}

START_TEST(a_direct_request_larger_than_the_bounce_buffer_is_whole)
{
    unsigned said;

    big_engine = 2 + (unsigned)_i; /* direct=on, io_uring then threads */
    said = log_lines_during(big_direct_round, "copying through dom0 buffers");
    if (big_pinnable)
        fprintf(stderr, "test-blk: the sim's RAM is pinnable here (grant "
                        "mode, or no memfd_secret): direct I/O went "
                        "straight, no copy was tested\n");
    else
        ck_assert_uint_eq(said, 1);
}
END_TEST

START_TEST(requests_the_spec_refuses_get_their_status)
{
    static const unsigned q0[] = {0};
    uint64_t hdr;
    struct guest_buf b;
    uint32_t id, len;

    make_disk("/tmp", 0);
    start("", 1);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, SECTORS - 1, 1024, true, NULL),
                      VIRTIO_BLK_S_IOERR); /* runs past the end */
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 1ULL << 60, 512, true, NULL),
                      VIRTIO_BLK_S_IOERR); /* sector * 512 overflows */
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 0, 100, false, NULL),
                      VIRTIO_BLK_S_IOERR); /* not a multiple of 512 */
    ck_assert_uint_eq(run_one(99, 0, 512, true, NULL), VIRTIO_BLK_S_UNSUPP);
    /* No status byte at all: completed with nothing written. */
    hdr = vdriver_alloc(&d, 16, 16);
    b = (struct guest_buf){hdr, 16, false};
    guest_ring_publish(&d.ring[0], guest_ring_add_chain(&d.ring[0], &b, 1));
    blk_guest_complete(&d, q0, 1, 0);
    vdriver_wait_irq(&d, WAIT_MS);
    ck_assert(guest_ring_get_used(&d.ring[0], &id, &len));
    ck_assert_uint_eq(len, 0);
    /* The device still works. */
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 0, 512, true, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
    stop();
}
END_TEST

START_TEST(read_only_disk_refuses_writes_and_keeps_its_data)
{
    static uint8_t zero[512];
    uint8_t *data = zero, *read;
    uint8_t byte;
    int fd;

    make_disk("/tmp", 0x5a);
    start(",ro=on", 1);
    ck_assert(d.offered & (1ULL << VIRTIO_BLK_F_RO));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 0, 512, false, &data),
                      VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 0, 512, true, &read),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(read[0], 0x5a);
    fd = open(disk, O_RDONLY);
    ck_assert_int_eq(pread(fd, &byte, 1, 0), 1);
    close(fd);
    ck_assert_uint_eq(byte, 0x5a);
    stop();
}
END_TEST

START_TEST(get_id_returns_the_serial)
{
    uint8_t *id;
    const char *base;

    make_disk("/tmp", 0);
    start(",serial=disk-42", 1);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES,
                              true, &id), VIRTIO_BLK_S_OK);
    ck_assert(memcmp(id, "disk-42\0", 8) == 0);
    harness_stop(&h);
    start("", 1); /* default: the path's last part */
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES,
                              true, &id), VIRTIO_BLK_S_OK);
    base = strrchr(disk, '/') + 1;
    ck_assert(memcmp(id, base, strlen(base)) == 0);
    stop();
}
END_TEST

static uint8_t range_request(uint32_t type, uint64_t sector, uint32_t num,
                             uint32_t flags)
{
    return blk_guest_range(&d, type, sector, num, flags);
}

static bool disk_reads_zero(uint64_t sector, unsigned sectors)
{
    uint8_t *data;

    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, sector, sectors * 512, true,
                              &data), VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < sectors * 512; i++)
        if (data[i])
            return false;
    return true;
}

START_TEST(discard_and_write_zeroes_read_back_as_zeroes)
{
    make_disk("/tmp", 0x77);
    start("", 1);
    ck_assert(!disk_reads_zero(8, 8));
    ck_assert_uint_eq(range_request(VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert(disk_reads_zero(8, 8));
    ck_assert(!disk_reads_zero(16, 1));
    ck_assert_uint_eq(range_request(VIRTIO_BLK_T_WRITE_ZEROES, 32, 8, 1),
                      VIRTIO_BLK_S_OK); /* may unmap */
    ck_assert(disk_reads_zero(32, 8));
    ck_assert_uint_eq(range_request(VIRTIO_BLK_T_DISCARD, 64, 8, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(range_request(VIRTIO_BLK_T_DISCARD, SECTORS - 4, 8, 0),
                      VIRTIO_BLK_S_IOERR); /* past the end */
    ck_assert_uint_eq(range_request(VIRTIO_BLK_T_DISCARD, 0, 8, 1),
                      VIRTIO_BLK_S_UNSUPP); /* UNMAP is for write zeroes */
    stop();
}
END_TEST

/* A sparse disk (no space used) on a 64 KiB tmpfs mounted on dir, which
 * the kernel fills part way through a larger write: the write is short,
 * then fails ENOSPC. Needs root, to mount. */
static void make_disk_on_small_tmpfs(char *dir)
{
    int fd;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_msg(mount("tmpfs", dir, "tmpfs", 0, "size=64k") == 0,
                  "mounting a small tmpfs needs root: %s", strerror(errno));
    snprintf(disk, sizeof(disk), "%s/sparse", dir);
    fd = open(disk, O_CREAT | O_RDWR, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_SIZE), 0);
    close(fd);
}

static void remove_small_tmpfs(const char *dir)
{
    ck_assert_int_eq(umount(dir), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}

/* A backing on a filesystem that is full: the write that needs space gets
 * IOERR, and the device goes on serving. */
START_TEST(backing_error_fails_only_that_request)
{
    char dir[] = "/tmp/xvdm-full-XXXXXX";
    static uint8_t pattern[64 * 1024];
    uint8_t *data = pattern, *read;

    make_disk_on_small_tmpfs(dir);
    start("", 1);
    memset(pattern, 0xee, sizeof(pattern));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 0, 16 * 1024, false, &data),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 1024, sizeof(pattern), false,
                              &data), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 1500, 512, true, &read),
                      VIRTIO_BLK_S_OK);
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
    harness_stop(&h);
    remove_small_tmpfs(dir);
}
END_TEST

/* io_uring where the kernel has it, and the thread pool. */
static const char *const both_engines[] = {"", ",aio=threads"};

/* Short transfers from the backing, with each engine: a write the full
 * filesystem takes only part of, and a read that crosses the end of a
 * backing someone truncated under xvdm, are both finished by retrying the
 * rest, which fails: IOERR, never OK with fewer bytes. The write
 * acknowledged before is intact, and the device goes on serving. */
START_TEST(short_transfers_fail_with_ioerr_and_lose_no_acknowledged_write)
{
    char dir[] = "/tmp/xvdm-short-XXXXXX";
    static uint8_t pattern[64 * 1024];
    uint8_t *data = pattern, *read;

    make_disk_on_small_tmpfs(dir);
    start(both_engines[_i], 1);
    memset(pattern, 0xa5, sizeof(pattern));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 0, 16 * 1024, false, &data),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(
        run_one(VIRTIO_BLK_T_OUT, 1024, sizeof(pattern), false, &data),
        VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 0, 16 * 1024, true, &read),
                      VIRTIO_BLK_S_OK);
    ck_assert_mem_eq(read, pattern, 16 * 1024);

    ck_assert_int_eq(truncate(disk, 20 * 1024), 0);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 32, 8 * 1024, true, &read),
                      VIRTIO_BLK_S_IOERR); /* 4 KiB there, 4 KiB past it */
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 0, 16 * 1024, true, &read),
                      VIRTIO_BLK_S_OK);
    ck_assert_mem_eq(read, pattern, 16 * 1024);
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
    harness_stop(&h);
    remove_small_tmpfs(dir);
}
END_TEST

#ifdef HAVE_LIBSECCOMP
/* Write, flush, read back and discard under --seccomp's filter, in a
 * process of its own (Check's bookkeeping needs more than xvdm). 0 when
 * everything held, else which step failed. */
static int filtered_round(const void *engine)
{
    static uint8_t pattern[8192];
    uint8_t *in = pattern, *out = NULL;

    start(engine, 1);
    /* As xvdm does, confine only once serving: the engine's threads have
     * started (ASan's own thread start reads /proc, which the filter
     * forbids). */
    if (run_one(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL) != VIRTIO_BLK_S_OK)
        return 6;
    usleep(100000);
    if (syscall_filter_install())
        return 1;
    memset(pattern, 0x5a, sizeof(pattern));
    if (run_one(VIRTIO_BLK_T_OUT, 8, sizeof(pattern), false, &in) !=
            VIRTIO_BLK_S_OK ||
        run_one(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL) != VIRTIO_BLK_S_OK)
        return 2;
    if (run_one(VIRTIO_BLK_T_IN, 8, sizeof(pattern), true, &out) !=
            VIRTIO_BLK_S_OK ||
        memcmp(out, pattern, sizeof(pattern)) != 0)
        return 3;
    if (range_request(VIRTIO_BLK_T_DISCARD, 8, 16, 0) != VIRTIO_BLK_S_OK ||
        !disk_reads_zero(8, 16))
        return 4;
    stop();
    return 0;
}

START_TEST(both_engines_work_under_the_syscall_filter)
{
    static const char *const filtered_engines[] = {",discard=on",
                                                   ",discard=on,aio=threads"};

    make_disk("/tmp", 0);
    check_in_child(filtered_engines[_i], filtered_round, filtered_engines[_i]);
    unlink(disk);
}
END_TEST
#endif

#if defined(HAVE_LIBSECCOMP) && defined(HAVE_LIBURING)
/* io_uring_enter refused from now on (as a seccomp policy or an
 * exhausted kernel would), everything else allowed. */
static int refuse_io_uring(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int ret = ctx ? seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) : -1;

    if (ret == 0)
        ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM),
                               SCMP_SYS(io_uring_enter), 0);
    if (ret == 0)
        ret = seccomp_load(ctx);
    seccomp_release(ctx);
    return ret;
}

/* In a process of its own: 0 when a refused submission failed the
 * request (not hung it), later ones failed too, and the thread engine's
 * discard still worked. */
static int refused_round(const void *unused)
{
    static uint8_t pattern[4096];
    uint8_t *in = pattern;

    start("", 1);
    if (refuse_io_uring())
        return 1;
    if (run_one(VIRTIO_BLK_T_OUT, 8, sizeof(pattern), false, &in) !=
        VIRTIO_BLK_S_IOERR)
        return 2;
    if (run_one(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL) != VIRTIO_BLK_S_IOERR)
        return 3;
    if (range_request(VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 0) != VIRTIO_BLK_S_OK)
        return 4;
    stop();
    return 0;
}
#endif

/* The thread engine reads what dom0 caches on the loop thread, the rest
 * on its threads: both give the file's bytes. */
START_TEST(threads_read_cached_and_uncached_data_alike)
{
    uint8_t *data;
    int fd;

    make_disk("/var/tmp", 0x5a); /* a tmpfs cannot drop its pages */
    fd = open(disk, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fdatasync(fd), 0);
    ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
    start(",aio=threads", 1);
    for (unsigned round = 0; round < 2; round++) {
        ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 8, 4096, true, &data),
                          VIRTIO_BLK_S_OK);
        for (unsigned i = 0; i < 4096; i++)
            ck_assert_uint_eq(data[i], 0x5a);
    }
    stop();
}
END_TEST

/* Sector s of a patterned disk holds bytes (s * 7 + 1) & 0xff. */
static void pattern_disk(void)
{
    static uint8_t buf[DISK_SIZE];
    int fd;

    make_disk("/var/tmp", 0); /* /tmp may be a tmpfs: no O_DIRECT there */
    for (unsigned s = 0; s < SECTORS; s++)
        memset(buf + s * 512, (s * 7 + 1) & 0xff, 512);
    fd = open(disk, O_WRONLY);
    ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), DISK_SIZE);
    close(fd);
}

/* A read in flight: where it reads from, and its request. */
struct read {
    struct blk_req r;
    uint64_t sector;
    uint32_t sectors;
};

/* A random read of 1..8 sectors in slot `slot` of queue q: its chain
 * takes descriptors 3 * slot .. 3 * slot + 2, so requests completing out
 * of order never share one. */
static void submit_read(struct read *rd, unsigned q, unsigned slot,
                        unsigned *seed)
{
    rd->sectors = 1 + rand_r(seed) % 8;
    rd->sector = rand_r(seed) % (SECTORS - rd->sectors);
    d.ring[q].next_desc = (uint16_t)(3 * slot);
    rd->r = blk_guest_submit(&d, q, VIRTIO_BLK_T_IN, rd->sector,
                             rd->sectors * 512, true);
}

static void check_read(const struct read *rd)
{
    ck_assert_uint_eq(*rd->r.status, VIRTIO_BLK_S_OK);
    for (uint32_t k = 0; k < rd->sectors * 512; k++)
        ck_assert_uint_eq(rd->r.data[k],
                          ((rd->sector + k / 512) * 7 + 1) & 0xff);
}

/* The guest kicks only when the device asks (EVENT_IDX's avail_event),
 * as Linux does, and keeps 8 reads in flight on each queue, adding new
 * ones as completions come, while the device may still be draining: the
 * device must publish avail_event whenever it stops taking chains, or a
 * request waits for a kick the guest was never asked for. Each read
 * returns the file's bytes. */
static void kicks_only_when_asked(const char *engine)
{
    enum { QD = 8, TOTAL = 400 };
    static struct read rd[2][QD];
    unsigned seed = 7, issued = 0, done = 0;
    uint32_t id, len;

    pattern_disk();
    start_with(engine, 2, FEATURES | (1ULL << VIRTIO_F_EVENT_IDX));
    for (unsigned q = 0; q < 2; q++) {
        for (unsigned i = 0; i < QD; i++, issued++)
            submit_read(&rd[q][i], q, i, &seed);
        vdriver_kick_if_needed(&d, q);
    }
    while (done < TOTAL) {
        unsigned got = 0;

        for (unsigned q = 0; q < 2; q++) {
            while (guest_ring_get_used(&d.ring[q], &id, &len)) {
                ck_assert_uint_lt(id / 3, QD);
                check_read(&rd[q][id / 3]);
                done++;
                got++;
                if (issued < TOTAL) {
                    submit_read(&rd[q][id / 3], q, id / 3, &seed);
                    issued++;
                }
            }
            vdriver_kick_if_needed(&d, q);
            guest_ring_enable_cb(&d.ring[q]);
        }
        if (!got && done < TOTAL)
            ck_assert_int_ge(vdriver_wait_irq(&d, WAIT_MS), 0);
    }
}

START_TEST(a_guest_that_kicks_only_when_asked_is_never_left_waiting)
{
    kicks_only_when_asked(engines[_i]);
    stop();
}
END_TEST

/* The same in grant mode, with a budget of 6 granted pages for the
 * guest's chains (a read takes 2 to 4): the two queues' 16 reads in
 * flight never map more than that, a chain that finds no room waits for
 * pages another queue's completion gives back, and every read returns
 * the file's bytes. The test runs in a process of its own. */
START_TEST(reads_past_the_grant_budget_wait_and_all_complete)
{
    setenv("XVDM_TEST_GRANTS", "1", 1);
    setenv("XVDM_TEST_GRANT_PAGES", "6", 1);
    kicks_only_when_asked(engines[_i]);
    /* 2 queues, 3 rings each, one page apiece, mapped for their life. */
    ck_assert_uint_le(sim_grants_mapped_peak(h.sim), 6 + 6);
    stop();
}
END_TEST

/* The operator resizes the backing and, with `hup`, sends SIGHUP as to
 * xvdm: a config-change interrupt (after, maybe, the edge of the last
 * request), the new capacity in a new config generation. */
static void resize(uint64_t bytes, bool hup)
{
    uint32_t generation = vdriver_read(&d, VIRTIO_MMIO_CONFIG_GENERATION);
    int status = 0;

    ck_assert_int_eq(truncate(disk, (off_t)bytes), 0);
    if (hup)
        ck_assert_int_eq(kill(getpid(), SIGHUP), 0);
    for (unsigned edges = 0; edges < 2 && !(status & VIRTIO_MMIO_INT_CONFIG);
         edges++) {
        status = vdriver_wait_irq(&d, WAIT_MS);
        ck_assert_int_ge(status, 0);
    }
    ck_assert(status & VIRTIO_MMIO_INT_CONFIG);
    ck_assert_uint_eq(config(0, 8), bytes / 512);
    ck_assert_uint_ne(vdriver_read(&d, VIRTIO_MMIO_CONFIG_GENERATION),
                      generation);
}

/* As xen-blkback notices a resized device by itself, xvdm looks at the
 * backing's size every size-check= seconds (1 by default). */
START_TEST(a_resize_is_noticed_without_sighup)
{
    make_disk("/tmp", 0x5a);
    start("", 1);
    resize(3 * DISK_SIZE, false);
    ck_assert_uint_eq(
        run_one(VIRTIO_BLK_T_IN, 3 * SECTORS - 8, 4096, true, NULL),
        VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

START_TEST(sighup_after_a_resize_announces_the_new_capacity)
{
    uint8_t *data;

    make_disk("/tmp", 0x5a);
    start(",size-check=0", 1);
    resize(2 * DISK_SIZE, true);
    /* The new end reads back as what truncate() added: zeroes. */
    ck_assert_uint_eq(
        run_one(VIRTIO_BLK_T_IN, 2 * SECTORS - 8, 4096, true, &data),
        VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 4096; i++)
        ck_assert_uint_eq(data[i], 0);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, SECTORS - 1, 1024, true, &data),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data[0], 0x5a);
    ck_assert_uint_eq(data[512], 0);
    /* A shrink: what was valid past the new end fails, before it works. */
    resize(DISK_SIZE / 2, true);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, SECTORS - 8, 4096, true, NULL),
                      VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(
        run_one(VIRTIO_BLK_T_OUT, SECTORS / 2 - 1, 1024, false, NULL),
        VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(
        run_one(VIRTIO_BLK_T_IN, SECTORS / 2 - 8, 4096, true, &data),
        VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(data[4095], 0x5a);
    stop();
}
END_TEST

static void set_config8(unsigned offset, uint8_t value)
{
    ck_assert_int_eq(
        sim_mmio_write(h.sim, 0, d.base + 0x100 + offset, 1, value), 0);
}

#define WCE offsetof(struct virtio_blk_config, wce)
#define CONFIG_WCE (1ULL << VIRTIO_BLK_F_CONFIG_WCE)
#define NO_FLUSH (FEATURES & ~(1ULL << VIRTIO_BLK_F_FLUSH))

/* CONFIG_WCE (§5.2.5): writeback for a driver that can flush, which may
 * switch to writethrough and back; a driver without FLUSH gets
 * writethrough and cannot leave it. */
START_TEST(the_guest_chooses_writeback_or_writethrough)
{
    make_disk("/tmp", 0);
    start_with("", 1, FEATURES | CONFIG_WCE);
    ck_assert(d.offered & CONFIG_WCE);
    ck_assert_uint_eq(config(WCE, 1), 1);
    set_config8(WCE, 0);
    ck_assert_uint_eq(config(WCE, 1), 0);
    set_config8(WCE, 1);
    ck_assert_uint_eq(config(WCE, 1), 1);
    harness_stop(&h);
    start_with("", 1, NO_FLUSH | CONFIG_WCE);
    ck_assert_uint_eq(config(WCE, 1), 0);
    set_config8(WCE, 1);
    ck_assert_uint_eq(config(WCE, 1), 0);
    stop();
}
END_TEST

/* `disk` becomes a free loop device over a new image file, whose path goes
 * to `image`: the image holds only what reached the loop device, not what
 * waits in dom0's page cache for it. Needs root. The loop device's fd. */
static int loop_attach(char *image, size_t size)
{
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    int img, fd = -1;

    ck_assert_msg(ctl >= 0, "a loop device needs root: %s", strerror(errno));
    make_disk("/var/tmp", 0);
    snprintf(image, size, "%s", disk);
    img = open(image, O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(img, 0);
    /* Another process may take the free device first: try the next. */
    for (int tries = 0; fd < 0 && tries < 8; tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);

        ck_assert_int_ge(n, 0);
        snprintf(disk, sizeof(disk), "/dev/loop%d", n);
        fd = open(disk, O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        if (ioctl(fd, LOOP_SET_FD, img)) {
            ck_assert_int_eq(errno, EBUSY);
            close(fd);
            fd = -1;
        }
    }
    ck_assert_int_ge(fd, 0);
    close(img);
    close(ctl);
    return fd;
}

static void loop_detach(int fd, const char *image)
{
    ck_assert_int_eq(ioctl(fd, LOOP_CLR_FD, 0), 0);
    close(fd);
    unlink(image);
}

/* The 4 KiB at byte 4096 of the image under the loop device. */
static void read_image(const char *image, uint8_t *buf)
{
    int fd = open(image, O_RDONLY);

    ck_assert_int_eq(pread(fd, buf, 4096, 4096), 4096);
    close(fd);
}

static const struct {
    const char *engine;
    uint64_t features;
    bool writethrough; /* the guest writes 0 to writeback */
    bool durable;      /* on the device when the write completes */
} cache_modes[] = {
    {"", FEATURES | CONFIG_WCE, false, false},
    {",aio=threads", FEATURES | CONFIG_WCE, false, false},
    {"", FEATURES | CONFIG_WCE, true, true},
    {",aio=threads", FEATURES | CONFIG_WCE, true, true},
    {"", NO_FLUSH, false, true},
    {",aio=threads", NO_FLUSH, false, true},
};

/* Where a completed write is, by cache mode, with each engine. Writeback:
 * maybe only in dom0's cache, and on the device after the guest's flush.
 * Writethrough, chosen by the guest or because it cannot flush: on the
 * device as soon as it completes. */
START_TEST(a_completed_write_is_on_the_device_unless_the_guest_can_flush)
{
    static uint8_t pattern[4096], zero[4096];
    uint8_t *data = pattern, on_image[4096];
    char image[64];
    int loop = loop_attach(image, sizeof(image));

    start_with(cache_modes[_i].engine, 1, cache_modes[_i].features);
    if (cache_modes[_i].writethrough)
        set_config8(WCE, 0);
    memset(pattern, 0xc3, sizeof(pattern));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 8, 4096, false, &data),
                      VIRTIO_BLK_S_OK);
    read_image(image, on_image);
    if (!cache_modes[_i].durable) {
        /* Dirty pages wait 30 s (vm.dirty_expire_centisecs) by default. */
        ck_assert(memcmp(on_image, zero, sizeof(zero)) == 0);
        ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL),
                          VIRTIO_BLK_S_OK);
        read_image(image, on_image);
    }
    ck_assert(memcmp(on_image, pattern, sizeof(pattern)) == 0);
    harness_stop(&h);
    loop_detach(loop, image);
}
END_TEST

/* A file on storage of 4096-byte sectors takes O_DIRECT reads and writes
 * on 4096-byte bounds only: with direct=on blk offers the guest that as
 * its logical block (blk_size), which Linux's driver keeps to, and a
 * write and read of a block there complete. Needs root, to mount. */
START_TEST(a_direct_file_on_4k_sector_storage_offers_4k_blocks)
{
    static uint8_t pattern[4096];
    uint8_t *data = pattern;
    char dir[] = "/tmp/xvdm-4kn-XXXXXX", image[64], cmd[128];
    int loop = loop_attach(image, sizeof(image));

    ck_assert_int_eq(truncate(image, 32 << 20), 0);
    ck_assert_int_eq(ioctl(loop, LOOP_SET_CAPACITY, 0), 0);
    ck_assert_int_eq(ioctl(loop, LOOP_SET_BLOCK_SIZE, 4096), 0);
    snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F %s", disk);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(mount(disk, dir, "ext4", 0, NULL), 0);
    make_disk(dir, 0);
    start(",direct=on", 1);
    ck_assert_uint_eq(config(20, 4), 4096); /* blk_size */
    memset(pattern, 0x5a, sizeof(pattern));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 8, 4096, false, &data),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 8, 4096, true, &data),
                      VIRTIO_BLK_S_OK);
    ck_assert(memcmp(data, pattern, sizeof(pattern)) == 0);
    stop();
    ck_assert_int_eq(umount(dir), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    loop_detach(loop, image);
}
END_TEST

/* With direct=on on a block device, a read or write of more than 256
 * pages the kernel cannot pin completes from io_uring as EIO, not EFAULT
 * (a request split over several bios): the first request the guest
 * makes being such a write, it is copied all the same, and reads back. */
START_TEST(a_first_direct_request_of_over_256_pages_on_a_block_device_is_served)
{
    static const unsigned q0[] = {0};
    static uint8_t sent[2 << 20];
    char image[64];
    int loop = loop_attach(image, sizeof(image));
    struct blk_req r;

    ck_assert_int_eq(truncate(image, 4 << 20), 0);
    ck_assert_int_eq(ioctl(loop, LOOP_SET_CAPACITY, 0), 0);
    start(",direct=on", 1);
    r = blk_guest_submit(&d, 0, VIRTIO_BLK_T_OUT, 0, sizeof(sent), false);
    for (size_t i = 0; i < sizeof(sent); i++)
        sent[i] = r.data[i] = (uint8_t)(i * 13 + i / 4096);
    blk_guest_complete(&d, q0, 1, 1);
    ck_assert_uint_eq(*r.status, VIRTIO_BLK_S_OK);
    r = blk_guest_submit(&d, 0, VIRTIO_BLK_T_IN, 0, sizeof(sent), true);
    blk_guest_complete(&d, q0, 1, 1);
    ck_assert_uint_eq(*r.status, VIRTIO_BLK_S_OK);
    ck_assert(memcmp(r.data, sent, sizeof(sent)) == 0);
    harness_stop(&h);
    loop_detach(loop, image);
}
END_TEST

#if defined(HAVE_LIBSECCOMP) && defined(HAVE_LIBURING)
START_TEST(io_uring_refusing_submissions_fails_requests_not_hangs_them)
{
    make_disk("/tmp", 0);
    check_in_child("io_uring refused", refused_round, NULL);
    unlink(disk);
}
END_TEST
#endif

#ifndef HAVE_LIBURING
/* A build without liburing has the thread engine only, and says so to
 * whoever asks for io_uring. */
START_TEST(aio_io_uring_is_refused_without_liburing)
{
    char spec[128];
    const char *specs[] = {spec};

    make_disk("/tmp", 0);
    snprintf(spec, sizeof(spec), "blk,path=%s,aio=io_uring", disk);
    ck_assert_int_ne(harness_start(&h, specs, 1), 0);
    unlink(disk);
}
END_TEST
#endif

/* ---- hostile chains ------------------------------------------------------ */

/* Publish a chain of n buffers on queue 0, kick, wait for its completion;
 * the used length. */
static uint32_t run_chain(const struct guest_buf *b, unsigned n)
{
    uint16_t head = guest_ring_add_chain(&d.ring[0], b, n);
    uint32_t id, len;

    guest_ring_publish(&d.ring[0], head);
    vdriver_kick(&d, 0);
    while (!guest_ring_get_used(&d.ring[0], &id, &len))
        ck_assert_int_ge(vdriver_wait_irq(&d, WAIT_MS), 0);
    ck_assert_uint_eq(id, head);
    return len;
}

static uint64_t put_header(uint32_t type, uint64_t sector)
{
    uint64_t hdr = vdriver_alloc(&d, 16, 16);
    struct virtio_blk_outhdr *oh = vdriver_ptr(&d, hdr);

    oh->type = htole32(type);
    oh->ioprio = 0;
    oh->sector = htole64(sector);
    return hdr;
}

/* The status is the last byte of the writable part. An empty buffer last,
 * at the first byte of a RAM region, holds no byte: the status goes in the
 * buffer before it, never below the region (the sim's guard page would
 * crash the test). */
START_TEST(status_byte_stays_inside_guest_ram)
{
    struct sim_ram_region tail;
    uint64_t status;
    uint8_t *s;

    make_disk("/tmp", 0);
    start("", 1);
    tail = sim_ram_region(h.sim, 1);
    status = vdriver_alloc(&d, 1, 1);
    s = vdriver_ptr(&d, status);
    *s = 0xff;
    {
        struct guest_buf b[] = {{put_header(VIRTIO_BLK_T_FLUSH, 0), 16, false},
                                {status, 1, true},
                                {tail.gpa, 0, true}};

        ck_assert_uint_eq(run_chain(b, 3), 1);
    }
    ck_assert_uint_eq(*s, VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

/* A read whose data ends at the last byte of one region and whose status
 * is the first byte of bank 1 is an ordinary request. */
START_TEST(request_across_region_edges_is_served)
{
    struct sim_ram_region r0, bank1;
    uint8_t *data, *s;

    make_disk("/tmp", 0x5a);
    start("", 1);
    r0 = sim_ram_region(h.sim, 0);
    bank1 = sim_ram_region(h.sim, 2);
    data = sim_guest_ptr(h.sim, r0.gpa + r0.size - 4096, 4096);
    s = sim_guest_ptr(h.sim, bank1.gpa, 1);
    memset(data, 0, 4096);
    *s = 0xff;
    {
        struct guest_buf b[] = {{put_header(VIRTIO_BLK_T_IN, 8), 16, false},
                                {r0.gpa + r0.size - 4096, 4096, true},
                                {bank1.gpa, 1, true}};

        ck_assert_uint_eq(run_chain(b, 3), 4097);
    }
    ck_assert_uint_eq(*s, VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 4096; i++)
        ck_assert_uint_eq(data[i], 0x5a);
    stop();
}
END_TEST

/* More buffers than SEG_MAX + 2 iovecs: completed with nothing written,
 * with an interrupt for it (VIRTIO 1.2 §2.7.7.2: the device MUST notify
 * unless the driver suppressed it), and the device serves the next
 * request. */
START_TEST(chain_longer_than_the_device_takes_is_returned_unused)
{
    enum { N = 160 };
    struct guest_buf b[N];
    unsigned edges;
    uint8_t *s;

    make_disk("/tmp", 0);
    queue_size = 256; /* room for a chain of N descriptors */
    start("", 1);
    b[0] = (struct guest_buf){put_header(VIRTIO_BLK_T_IN, 0), 16, false};
    for (unsigned i = 1; i < N - 1; i++)
        b[i] = (struct guest_buf){vdriver_alloc(&d, 512, 512), 512, true};
    b[N - 1] = (struct guest_buf){vdriver_alloc(&d, 1, 1), 1, true};
    s = vdriver_ptr(&d, b[N - 1].gpa);
    *s = 0xff;
    edges = sim_irq_edges(h.sim, d.irq);
    ck_assert_uint_eq(run_chain(b, N), 0);
    ck_assert_uint_eq(*s, 0xff);
    ck_assert_msg(sim_irq_edges(h.sim, d.irq) != edges ||
                      vdriver_wait_irq(&d, WAIT_MS) >= 0,
                  "the chain was used with no interrupt for it");
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL),
                      VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

/* Each to a page of the backing the full filesystem has no room for. */
static void fifty_writes_to_a_full_backing(void)
{
    static uint8_t page[4096];
    uint8_t *data = page;

    for (unsigned i = 0; i < 50; i++)
        ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 1024 + 8 * i, sizeof(page),
                                  false, &data), VIRTIO_BLK_S_IOERR);
}

/* Each fails with IOERR; dom0's log gets a few lines, not fifty. */
START_TEST(requests_a_guest_makes_fail_are_logged_rate_limited)
{
    char dir[] = "/tmp/xvdm-full-XXXXXX";
    unsigned lines;

    static uint8_t fill[64 * 1024];
    uint8_t *data = fill;

    make_disk_on_small_tmpfs(dir);
    start("", 1);
    run_one(VIRTIO_BLK_T_OUT, 0, sizeof(fill), false, &data); /* fills it */
    lines = log_lines_during(fifty_writes_to_a_full_backing, "failed");
    ck_assert_msg(lines <= RATELIMIT_BURST + 1, "%u log lines", lines);
    harness_stop(&h);
    remove_small_tmpfs(dir);
}
END_TEST

/* ---- one kick's hold on the loop ------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void *kick_queue_0(void *arg)
{
    return (void *)(intptr_t)sim_mmio_write(h.sim, 0,
                                            d.base + VIRTIO_MMIO_QUEUE_NOTIFY,
                                            4, 0);
}

/* vCPU 0 runs access() on a thread of its own; 20 ms in, vCPU 1 reads a
 * register: how long its answer took, in ms, once vCPU 0's access is
 * answered too. */
static uint64_t vcpu1_wait_during(void *(*access)(void *))
{
    pthread_t vcpu0;
    uint64_t v, t0, waited;
    void *ret;

    ck_assert_int_eq(pthread_create(&vcpu0, NULL, access, NULL), 0);
    usleep(20000);
    t0 = now_ms();
    ck_assert_int_eq(sim_mmio_read(h.sim, 1,
                                   d.base + VIRTIO_MMIO_INTERRUPT_STATUS, 4,
                                   &v), 0);
    waited = now_ms() - t0;
    pthread_join(vcpu0, &ret);
    ck_assert_int_eq((intptr_t)ret, 0);
    return waited;
}

/* vCPU 0 kicks a queue of large reads dom0 has cached (which io_uring
 * would copy inside its submitting call, on the loop's thread); vCPU 1
 * then reads a register. The loop answers vCPU 1 while the reads are
 * copied elsewhere, and every read completes with the file's bytes.
 * "At once" is under LIMIT_MS or, on a machine so loaded that it is
 * not, under a quarter of the time the copies took: a loop that did the
 * copying itself answers only near their end. */
START_TEST(a_kick_of_large_cached_reads_does_not_hold_the_loop)
{
    enum { READS = 80, LEN = 32 << 20, LIMIT_MS = 100 };
    static struct blk_req r[READS];
    uint64_t data, waited, t0, took;
    char spec[256];
    const char *specs[] = {spec};
    unsigned done = 0;
    uint32_t id, len;
    int fd;

    snprintf(disk, sizeof(disk), "/tmp/xvdm-blk-XXXXXX");
    fd = mkstemp(disk);
    ck_assert_int_ge(fd, 0);
    for (unsigned i = 0; i < LEN / 4096; i++) {
        static uint8_t page[4096];

        memset(page, (int)(i & 0xff), sizeof(page));
        ck_assert_int_eq(write(fd, page, sizeof(page)), sizeof(page));
    }
    close(fd);
    /* The copying is the point, not how memory is reached: RAM mapped. */
    snprintf(spec, sizeof(spec), "blk,path=%s%s,grants=off", disk,
             engines[_i]);
    ck_assert_int_eq(harness_start_vcpus(&h, specs, 1, 2), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 60 << 20);
    d.grants = false;
    ck_assert_int_eq(vdriver_probe(&d, BLK_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 256), 0);
    vdriver_driver_ok(&d);
    data = vdriver_alloc(&d, LEN, 4096); /* one buffer for every read */
    for (unsigned i = 0; i < READS; i++) {
        struct guest_buf b[3] = {
            {put_header(VIRTIO_BLK_T_IN, 0), 16, false},
            {data, LEN, true},
            {vdriver_alloc(&d, 1, 1), 1, true}};

        r[i].status = vdriver_ptr(&d, b[2].gpa);
        *r[i].status = 0xff;
        guest_ring_publish(&d.ring[0], guest_ring_add_chain(&d.ring[0], b, 3));
    }
    t0 = now_ms();
    waited = vcpu1_wait_during(kick_queue_0);
    while (done < READS) {
        while (guest_ring_get_used(&d.ring[0], &id, &len))
            done++;
        if (done < READS)
            ck_assert_int_ge(vdriver_wait_irq(&d, 30000), 0);
    }
    took = now_ms() - t0;
    for (unsigned i = 0; i < READS; i++)
        ck_assert_uint_eq(*r[i].status, VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(((uint8_t *)vdriver_ptr(&d, data))[LEN - 1],
                      (LEN / 4096 - 1) & 0xff);
    ck_assert_msg(waited < LIMIT_MS || waited * 4 < took,
                  "vCPU 1 waited %llu ms for a register read (limit %d ms, "
                  "or a quarter of the %llu ms the reads took)",
                  (unsigned long long)waited, LIMIT_MS,
                  (unsigned long long)took);
    stop();
}
END_TEST

static void *write_wce_0(void *arg)
{
    return (void *)(intptr_t)sim_mmio_write(h.sim, 0, d.base + 0x100 + WCE,
                                            1, 0);
}

/* The guest switches to writethrough while dom0 holds much of the disk's
 * data unwritten: syncing it takes the backing's time, but not the
 * loop's; vCPU 1's register read is answered meanwhile. */
START_TEST(switching_to_writethrough_does_not_sync_on_the_loop)
{
    enum { DIRTY = 256 << 20, LIMIT_MS = 50 };
    static uint8_t chunk[1 << 20];
    char spec[256];
    const char *specs[] = {spec};
    uint64_t waited;
    int fd;

    snprintf(disk, sizeof(disk), "/var/tmp/xvdm-blk-XXXXXX"); /* a disk */
    fd = mkstemp(disk);
    ck_assert_int_ge(fd, 0);
    snprintf(spec, sizeof(spec), "blk,path=%s", disk);
    ck_assert_int_eq(ftruncate(fd, DIRTY), 0);
    ck_assert_int_eq(harness_start_vcpus(&h, specs, 1, 2), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 8 << 20);
    ck_assert_int_eq(vdriver_probe(&d, BLK_ID, FEATURES | CONFIG_WCE), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 64), 0);
    vdriver_driver_ok(&d);
    memset(chunk, 0x77, sizeof(chunk));
    for (unsigned i = 0; i < DIRTY / sizeof(chunk); i++) /* in dom0's cache */
        ck_assert_int_eq(write(fd, chunk, sizeof(chunk)), sizeof(chunk));
    close(fd);
    waited = vcpu1_wait_during(write_wce_0);
    ck_assert_uint_eq(config(WCE, 1), 0);
    ck_assert_msg(waited < LIMIT_MS,
                  "vCPU 1 waited %llu ms for a register read (limit %d ms)",
                  (unsigned long long)waited, LIMIT_MS);
    stop();
}
END_TEST

/* ---- a second vCPU rewriting the ring ------------------------------------ */

#define SCRIBBLE_READS 4

static uint64_t blk_ring; /* where the ring goes at every bring-up */
static uint64_t blk_table, blk_hdr, blk_data, blk_status;

static void blk_bring_up(void)
{
    vdriver_reset(&d);
    d.alloc_next = blk_ring;
    ck_assert_int_eq(vdriver_probe(&d, BLK_ID,
                                   FEATURES | (1ULL << VIRTIO_F_EVENT_IDX) |
                                       (1ULL << VIRTIO_F_INDIRECT_DESC)),
                     0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 64), 0);
    vdriver_driver_ok(&d);
}

/* Read i of a round: 4 KiB from sector 8 * i, the first through an
 * indirect table; its head. */
static uint16_t blk_submit_read(unsigned i)
{
    struct virtio_blk_outhdr *oh = vdriver_ptr(&d, blk_hdr + 16 * i);
    struct guest_buf b[3] = {{blk_hdr + 16 * i, 16, false},
                             {blk_data + 4096 * i, 4096, true},
                             {blk_status + i, 1, true}};
    uint16_t head;

    oh->type = htole32(VIRTIO_BLK_T_IN);
    oh->ioprio = 0;
    oh->sector = htole64(8 * i);
    *(uint8_t *)vdriver_ptr(&d, blk_status + i) = 0xff;
    head = i == 0 ? guest_ring_add_indirect(&d.ring[0], blk_table, b, 3)
                  : guest_ring_add_chain(&d.ring[0], b, 3);
    guest_ring_publish(&d.ring[0], head);
    return head;
}

/* Reads in flight together: each answered OK with 4 KiB. */
static bool blk_request(unsigned ms)
{
    uint16_t head[SCRIBBLE_READS];
    uint32_t len[SCRIBBLE_READS];

    for (unsigned i = 0; i < SCRIBBLE_READS; i++)
        head[i] = blk_submit_read(i);
    vdriver_kick(&d, 0);
    if (!scribble_wait_used(&d, 0, head, SCRIBBLE_READS, ms, len))
        return false;
    for (unsigned i = 0; i < SCRIBBLE_READS; i++)
        if (len[i] != 4097 ||
            *(uint8_t *)vdriver_ptr(&d, blk_status + i) != VIRTIO_BLK_S_OK)
            return false;
    return true;
}

/* Another vCPU rewrites descriptors, the avail ring and index and an
 * indirect table, and kicks, while reads are in flight, with each
 * engine: xvdm answers every access, touches nothing outside guest RAM,
 * either serves or says NEEDS_RESET, and serves after a reset. */
START_TEST(a_vcpu_rewriting_the_ring_under_requests)
{
    const struct scribble_guest g = {&d, 1, {0}, blk_bring_up, blk_request};
    uint32_t seed = scribble_seed();
    const char *why;
    char spec[128];

    make_disk("/tmp", 0x5a);
    snprintf(spec, sizeof(spec), "blk,path=%s%s", disk, both_engines[_i]);
    ck_assert_int_eq(scribble_harness_start(&h, &d, spec, 32 << 20), 0);
    blk_ring = d.alloc_next;
    blk_bring_up();
    blk_table = vdriver_alloc(&d, 3 * 16, 16);
    blk_hdr = vdriver_alloc(&d, 16 * SCRIBBLE_READS, 16);
    blk_data = vdriver_alloc(&d, 4096 * SCRIBBLE_READS, 4096);
    blk_status = vdriver_alloc(&d, SCRIBBLE_READS, 1);
    why = scribble_guest_verdict(&g, seed, blk_table, 3 * 16, WAIT_MS);
    ck_assert_msg(!why, "seed %u: %s", seed, why);
    stop();
}
END_TEST

static Suite *blk_suite(void)
{
    Suite *s = suite_create("blk");
    TCase *tc = tcase_create("blk");

    tcase_add_test(tc, probe_offers_capacity_and_features);
    tcase_add_loop_test(
        tc, data_written_on_two_queues_reads_back_and_is_in_the_file, 0,
        sizeof(engines) / sizeof(engines[0]));
    tcase_add_test(tc, requests_the_spec_refuses_get_their_status);
    tcase_add_loop_test(tc, a_direct_request_larger_than_the_bounce_buffer_is_whole,
                        0, 2);
    tcase_add_test(tc, read_only_disk_refuses_writes_and_keeps_its_data);
    tcase_add_test(tc, get_id_returns_the_serial);
    tcase_add_test(tc, discard_and_write_zeroes_read_back_as_zeroes);
    tcase_add_test(tc, backing_error_fails_only_that_request);
    tcase_add_loop_test(
        tc, short_transfers_fail_with_ioerr_and_lose_no_acknowledged_write, 0,
        2);
#ifdef HAVE_LIBSECCOMP /* without it, --seccomp is refused: test-cli.sh */
    tcase_add_loop_test(tc, both_engines_work_under_the_syscall_filter, 0, 2);
#endif
#if defined(HAVE_LIBSECCOMP) && defined(HAVE_LIBURING)
    tcase_add_test(tc,
                   io_uring_refusing_submissions_fails_requests_not_hangs_them);
#endif
#ifndef HAVE_LIBURING
    tcase_add_test(tc, aio_io_uring_is_refused_without_liburing);
#endif
    tcase_add_test(tc, the_guest_chooses_writeback_or_writethrough);
    tcase_add_loop_test(
        tc, a_completed_write_is_on_the_device_unless_the_guest_can_flush, 0,
        sizeof(cache_modes) / sizeof(cache_modes[0]));
    tcase_add_test(
        tc, a_first_direct_request_of_over_256_pages_on_a_block_device_is_served);
    tcase_add_test(tc, a_direct_file_on_4k_sector_storage_offers_4k_blocks);
    tcase_add_test(tc, sighup_after_a_resize_announces_the_new_capacity);
    tcase_add_test(tc, a_resize_is_noticed_without_sighup);
    tcase_add_test(tc, threads_read_cached_and_uncached_data_alike);
    tcase_add_loop_test(
        tc, a_guest_that_kicks_only_when_asked_is_never_left_waiting, 0, 4);
    tcase_add_loop_test(tc, reads_past_the_grant_budget_wait_and_all_complete,
                        0, 4);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc, status_byte_stays_inside_guest_ram);
    tcase_add_test(tc, request_across_region_edges_is_served);
    tcase_add_test(tc, chain_longer_than_the_device_takes_is_returned_unused);
    tcase_add_test(tc, requests_a_guest_makes_fail_are_logged_rate_limited);
    tcase_add_loop_test(tc, a_kick_of_large_cached_reads_does_not_hold_the_loop,
                        0, 2); /* page cache: io_uring, threads */
    tcase_add_test(tc, switching_to_writethrough_does_not_sync_on_the_loop);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrent");
    tcase_add_loop_test(tc, a_vcpu_rewriting_the_ring_under_requests, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(blk_suite);
}
