/* SPDX-License-Identifier: MIT */
/*
 * The bounds a hostile guest cannot push past (README, threat model),
 * pushed on: each test is the guest trying to exceed a bound, on the real
 * stack over the sim, with what it gets measured (resident memory) rather
 * than assumed.
 */
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "harness.h"
#include "vdriver.h"

#define BLK_ID 2
#define WAIT_MS 5000
#define VERSION_1 (1ULL << VIRTIO_F_VERSION_1)

static struct harness h;
static struct vdriver d;

/* This process's resident memory: xvdm runs in it. */
static uint64_t rss_bytes(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lu %lu", &size, &resident), 2);
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void start(const char *spec, unsigned vcpus, uint32_t id,
                  uint16_t queue_size)
{
    const char *specs[] = {spec};

    ck_assert_int_eq(harness_start_vcpus(&h, specs, 1, vcpus), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 48 << 20);
    ck_assert_int_eq(vdriver_probe(&d, id, VERSION_1), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, queue_size), 0);
    vdriver_driver_ok(&d);
}

/* ---- requests in flight -------------------------------------------------- */

static char disk[64];

/* A cached backing file of `size` bytes. */
static void make_disk(uint64_t size)
{
    static uint8_t buf[1 << 20];
    int fd;

    snprintf(disk, sizeof(disk), "/tmp/xvdm-limits-XXXXXX");
    fd = mkstemp(disk);
    ck_assert_int_ge(fd, 0);
    memset(buf, 0x33, sizeof(buf));
    for (uint64_t done = 0; done < size; done += sizeof(buf))
        ck_assert_int_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    close(fd);
}

/* One read of 8 MiB (16 descriptors on the same 512 KiB buffer): slow
 * enough that a guest kicking again and again outruns the disk. */
static uint16_t slow_read_chain(void)
{
    enum { SEGS = 16, SEG = 512 << 10 };
    struct guest_buf b[SEGS + 2];
    uint64_t hdr = vdriver_alloc(&d, 16, 16);
    uint64_t data = vdriver_alloc(&d, SEG, 4096);
    struct virtio_blk_outhdr *oh = vdriver_ptr(&d, hdr);

    oh->type = htole32(VIRTIO_BLK_T_IN);
    oh->sector = 0;
    memset(vdriver_ptr(&d, data), 0, SEG); /* resident before measuring */
    b[0] = (struct guest_buf){hdr, 16, false};
    for (unsigned i = 0; i < SEGS; i++)
        b[1 + i] = (struct guest_buf){data, SEG, true};
    b[SEGS + 1] = (struct guest_buf){vdriver_alloc(&d, 1, 1), 1, true};
    return guest_ring_add_chain(&d.ring[0], b, SEGS + 2);
}

/* The guest makes the same chain available again and again, a queue's
 * worth per kick, without waiting for it to be used. The device may hold
 * at most a queue's worth: the next one is refused (NEEDS_RESET), and
 * the memory xvdm holds for the guest does not grow with the kicks. */
START_TEST(a_head_published_again_and_again_is_refused_and_memory_bounded)
{
    enum { KICKS = 200, QSIZE = 64 };
    struct guest_ring *r = &d.ring[0];
    uint64_t before, grown;
    uint16_t head;

    make_disk(16 << 20);
    {
        char spec[128];

        snprintf(spec, sizeof(spec), "blk,path=%s,aio=threads,iothreads=1",
                 disk);
        start(spec, 1, BLK_ID, QSIZE);
    }
    head = slow_read_chain();
    before = rss_bytes();
    for (unsigned k = 0; k < KICKS; k++) {
        for (unsigned i = 0; i < QSIZE; i++)
            guest_ring_publish(r, head);
        vdriver_kick(&d, 0);
    }
    grown = rss_bytes() - before;
    ck_assert(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET);
    ck_assert_msg(grown < (8 << 20), "xvdm's memory grew by %llu KiB",
                  (unsigned long long)(grown >> 10));
    vdriver_reset(&d);
    ck_assert_uint_eq(vdriver_status(&d), 0);
    ck_assert_int_eq(d.io_error, 0);
    harness_stop(&h);
    unlink(disk);
}
END_TEST

/* ---- file descriptors ------------------------------------------------------ */

static unsigned open_fds(void)
{
    unsigned n = 0;

    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* Resets, probes, queue setups, kicks, good and broken chains, a hundred
 * times: xvdm opens nothing more for it (whatever a device opens, it
 * opened at setup). */
START_TEST(a_guest_cannot_make_xvdm_open_files)
{
    unsigned before;

    make_disk(1 << 20);
    {
        char spec[128];

        snprintf(spec, sizeof(spec), "blk,path=%s", disk);
        start(spec, 1, BLK_ID, 64);
    }
    before = open_fds();
    for (unsigned round = 0; round < 100; round++) {
        uint16_t head = slow_read_chain();

        guest_ring_publish(&d.ring[0], head);
        if (round % 2)
            guest_ring_avail(&d.ring[0])->idx = htole16(1000); /* broken */
        vdriver_kick(&d, 0);
        vdriver_reset(&d);
        ck_assert_int_eq(vdriver_probe(&d, BLK_ID, VERSION_1), 0);
        ck_assert_int_eq(vdriver_setup_queue(&d, 0, 64), 0);
        vdriver_driver_ok(&d);
        d.alloc_next = sim_ram_base(h.sim) + (1 << 20);
    }
    ck_assert_uint_eq(open_fds(), before);
    harness_stop(&h);
    unlink(disk);
}
END_TEST

static Suite *limits_suite(void)
{
    TCase *tc;
    Suite *s = check_suite_of_one_case("limits", "guest", 60, &tc);

    tcase_add_test(
        tc, a_head_published_again_and_again_is_refused_and_memory_bounded);
    tcase_add_test(tc, a_guest_cannot_make_xvdm_open_files);
    return s;
}

int main(void)
{
    return check_run(limits_suite());
}
