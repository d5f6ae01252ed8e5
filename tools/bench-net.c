/* SPDX-License-Identifier: MIT */
/*
 * virtio-net transmit benchmark: the same frames, in the same run, sent by
 * a sim guest through xvdm (ioreq, transport, virtqueue, net module, one
 * writev per frame into the tap, completion) and written straight into
 * the same tap by one thread with the same header, one writev per frame.
 * Prints each size's median rate over several rounds and the ratio
 * xvdm / direct. Runs in a network namespace of its own (needs root).
 *
 *   tools/bench-net [--rounds N]
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bench-median.h"
#include "harness.h"
#include "vdriver.h"

#define TAP "bench0"
#define HDR_LEN 12
#define RING 256
#define BATCH 128 /* chains per kick, as a busy Linux guest queues them */
#define FRAMES 100000
#define WAIT_MS 10000
#define FEATURES                                                               \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX) |             \
     (1ULL << VIRTIO_NET_F_MAC))

static const unsigned sizes[] = {60, 1514};

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fill_frame(uint8_t *f, unsigned len)
{
    memset(f, 0xff, 6);
    memset(f + 6, 0x02, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    for (unsigned i = 14; i < len; i++)
        f[i] = (uint8_t)i;
}

/* A persistent tap, up, with no queue attached. */
static int make_tap(void)
{
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    snprintf(ifr.ifr_name, IFNAMSIZ, TAP);
    if (fd < 0 || s < 0 || ioctl(fd, TUNSETIFF, &ifr) ||
        ioctl(fd, TUNSETPERSIST, 1) || ioctl(s, SIOCGIFFLAGS, &ifr))
        return -errno;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr))
        return -errno;
    close(s);
    close(fd);
    return 0;
}

/* ---- direct: one writev per frame into the tap ------------------------ */

static int direct_rate(unsigned len, double *rate)
{
    static uint8_t hdr[HDR_LEN], frame[2048];
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
    struct iovec iov[2] = {{hdr, HDR_LEN}, {frame, len}};
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), sz = HDR_LEN;
    double t0;

    snprintf(ifr.ifr_name, IFNAMSIZ, TAP);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETVNETHDRSZ, &sz))
        return -errno;
    fill_frame(frame, len);
    t0 = now();
    for (unsigned i = 0; i < FRAMES; i++)
        if (writev(fd, iov, 2) != (ssize_t)(HDR_LEN + len))
            return -errno;
    *rate = FRAMES / (now() - t0);
    close(fd);
    return 0;
}

/* ---- xvdm: a sim guest keeping the transmit queue busy ------------------ */

/* BATCH chains published, one kick, all completions collected. */
static int guest_batch(struct vdriver *d, const uint64_t *bufs, unsigned len)
{
    struct guest_ring *r = &d->ring[1];
    uint32_t id, used_len;
    unsigned done = 0;

    for (unsigned i = 0; i < BATCH; i++) {
        struct guest_buf b = {bufs[i], HDR_LEN + len, false};

        guest_ring_publish(r, guest_ring_add_chain(r, &b, 1));
    }
    vdriver_kick(d, 1);
    while (done < BATCH) {
        while (guest_ring_get_used(r, &id, &used_len))
            done++;
        guest_ring_enable_cb(r);
        if (done < BATCH && vdriver_wait_irq(d, WAIT_MS) < 0)
            return -ETIMEDOUT;
    }
    return 0;
}

static int xvdm_rate(unsigned len, double *rate)
{
    const char *specs[] = {"net,tap=" TAP};
    uint64_t bufs[BATCH];
    struct harness h;
    struct vdriver d;
    double t0;
    int ret = harness_start(&h, specs, 1);

    if (ret)
        return ret;
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 16 << 20);
    ret = vdriver_probe(&d, 1, FEATURES);
    if (ret == 0)
        ret = vdriver_setup_queue(&d, 0, RING);
    if (ret == 0)
        ret = vdriver_setup_queue(&d, 1, RING);
    vdriver_driver_ok(&d);
    for (unsigned i = 0; i < BATCH && ret == 0; i++) {
        bufs[i] = vdriver_alloc(&d, HDR_LEN + 2048, 64);
        memset(vdriver_ptr(&d, bufs[i]), 0, HDR_LEN);
        fill_frame((uint8_t *)vdriver_ptr(&d, bufs[i]) + HDR_LEN, len);
    }
    t0 = now();
    for (unsigned n = 0; n < FRAMES && ret == 0; n += BATCH)
        ret = guest_batch(&d, bufs, len);
    *rate = FRAMES / (now() - t0);
    harness_stop(&h);
    return ret;
}

int main(int argc, char **argv)
{
    unsigned rounds = argc == 3 && strcmp(argv[1], "--rounds") == 0
                          ? (unsigned)atoi(argv[2])
                          : 5;
    double x[16], y[16];
    int ret;

    if (rounds < 1 || rounds > 16) {
        fprintf(stderr, "bench-net: --rounds takes 1..16\n");
        return 2;
    }
    ret = unshare(CLONE_NEWNET) ? -errno : make_tap();
    if (ret) {
        fprintf(stderr,
                "bench-net: needs root, for a network namespace and "
                "a tap: %s\n",
                strerror(-ret));
        return 1;
    }
    printf("bench-net: %u frames a round, %u rounds, %u chains per kick\n",
           FRAMES, rounds, BATCH);
    printf("%-22s %12s %12s %6s\n", "transmit (median)", "xvdm fr/s",
           "direct fr/s", "ratio");
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        double mx, my;

        for (unsigned r = 0; r < rounds; r++) {
            ret = xvdm_rate(sizes[i], &x[r]);
            if (ret == 0)
                ret = direct_rate(sizes[i], &y[r]);
            if (ret) {
                fprintf(stderr, "bench-net: %s\n", strerror(-ret));
                return 1;
            }
        }
        mx = bench_median(x, rounds);
        my = bench_median(y, rounds);
        printf("%4u-byte frames        %12.0f %12.0f %6.2f\n", sizes[i], mx, my,
               mx / my);
    }
    return 0;
}
