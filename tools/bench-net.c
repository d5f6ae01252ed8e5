/* SPDX-License-Identifier: MIT */
/*
 * virtio-net benchmark, both directions, each against the tap used
 * directly in the same run:
 *   transmit: frames sent by a sim guest through xvdm (ioreq, transport,
 *     virtqueue, net module, one writev per frame into the tap,
 *     completion), against one thread writing the same frames with the
 *     same header into the tap, one writev per frame;
 *   receive: frames sent into the tap from the host side (a packet
 *     socket, one sendmmsg per batch) and delivered to a sim guest
 *     through xvdm (one readv per frame into the guest's buffers, used
 *     ring, interrupt, the guest reposting its buffers), against the same
 *     frames read from the tap directly, one readv per frame.
 * Both receive sides take a batch as the sender sends it, so the sender's
 * cost is in both; the ratio is that of the whole path. Prints each
 * size's median rate over several rounds and the ratio xvdm / direct.
 * Runs in a network namespace of its own (needs root).
 *
 *   tools/bench-net [--rounds N] [--poll-us N]
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <poll.h>
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
#include "loop.h"
#include "vdriver.h"

#define TAP "bench0"
#define HDR_LEN 12
#define RING 256
#define BATCH 128   /* chains per kick, as a busy Linux guest queues them */
#define RX_BUF 2048 /* a receive buffer, as Linux's without MRG_RXBUF */
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

/* IPv6 off, so the tap going up sends nothing (router solicitations)
 * that a receiver would count. */
static void quiet_ipv6(void)
{
    int fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6",
                  O_WRONLY | O_CLOEXEC);

    if (fd >= 0 && write(fd, "1", 1) != 1)
        fprintf(stderr, "bench-net: cannot disable IPv6: %s\n",
                strerror(errno));
    if (fd >= 0)
        close(fd);
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

/* A queue of the tap with virtio-net headers, as xvdm opens it. */
static int tap_queue(void)
{
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), sz = HDR_LEN;

    snprintf(ifr.ifr_name, IFNAMSIZ, TAP);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETVNETHDRSZ, &sz))
        return -errno;
    return fd;
}

/* ---- direct: one writev per frame into the tap ------------------------ */

static int direct_rate(unsigned len, double *rate)
{
    static uint8_t hdr[HDR_LEN], frame[2048];
    struct iovec iov[2] = {{hdr, HDR_LEN}, {frame, len}};
    int fd = tap_queue();
    double t0;

    if (fd < 0)
        return fd;
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

/* xvdm's --poll-us. */
static unsigned poll_us;

/* xvdm on the tap, a sim guest probed with both queues ready. */
static int guest_start(struct harness *h, struct vdriver *d)
{
    const char *specs[] = {"net,tap=" TAP};
    int ret = harness_start(h, specs, 1);

    if (ret)
        return ret;
    loop_set_poll(h->loop, poll_us * 1000ULL);
    vdriver_init(d, h->sim, h->specs[0].base, h->specs[0].irq,
                 sim_ram_base(h->sim) + (1 << 20), 16 << 20);
    d->bare_kicks = true; /* as Linux kicks */
    ret = vdriver_probe(d, 1, FEATURES);
    if (ret == 0)
        ret = vdriver_setup_queue(d, 0, RING);
    if (ret == 0)
        ret = vdriver_setup_queue(d, 1, RING);
    vdriver_driver_ok(d);
    if (ret)
        harness_stop(h);
    return ret;
}

static int xvdm_rate(unsigned len, double *rate)
{
    uint64_t bufs[BATCH];
    struct harness h;
    struct vdriver d;
    double t0;
    int ret = guest_start(&h, &d);

    if (ret)
        return ret;
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

/* ---- receive: the host sends into the tap ------------------------------ */

/* A packet socket that sends on the tap (and receives nothing). */
static int host_socket(void)
{
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_ifindex = (int)if_nametoindex(TAP)};
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

    if (s < 0)
        return -errno;
    if (bind(s, (struct sockaddr *)&sll, sizeof(sll))) {
        close(s);
        return -errno;
    }
    return s;
}

/* BATCH copies of the frame into the tap, as fast as the host can. */
static int host_send(int s, uint8_t *frame, unsigned len)
{
    struct iovec iov = {frame, len};
    struct mmsghdr m[BATCH];
    unsigned sent = 0;

    for (unsigned i = 0; i < BATCH; i++)
        m[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov, .msg_iovlen = 1}};
    while (sent < BATCH) {
        int r = sendmmsg(s, m + sent, BATCH - sent, 0);

        if (r < 0)
            return -errno;
        sent += (unsigned)r;
    }
    return 0;
}

/* One readv of a whole frame of `len` bytes, waiting for it. */
static int direct_read(int fd, unsigned len)
{
    static uint8_t hdr[HDR_LEN], frame[RX_BUF];
    struct iovec iov[2] = {{hdr, HDR_LEN}, {frame, sizeof(frame)}};
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t r;

    while ((r = readv(fd, iov, 2)) < 0 && errno == EAGAIN)
        if (poll(&p, 1, WAIT_MS) != 1)
            return -ETIMEDOUT;
    if (r < 0)
        return -errno;
    return r == (ssize_t)(HDR_LEN + len) ? 0 : -EIO;
}

/* The batch the sender sends, then all of it taken by the guest: one
 * untimed batch first, while the tap's link comes up. */
static int rx_rate(int (*batch)(void *arg, int s, uint8_t *frame, unsigned len),
                   void *arg, unsigned len, double *rate)
{
    static uint8_t frame[2048];
    int s = host_socket(), ret;
    double t0;

    if (s < 0)
        return s;
    fill_frame(frame, len);
    ret = batch(arg, s, frame, len);
    t0 = now();
    for (unsigned n = 0; n < FRAMES && ret == 0; n += BATCH)
        ret = batch(arg, s, frame, len);
    *rate = FRAMES / (now() - t0);
    close(s);
    return ret;
}

static int direct_rx_step(void *arg, int s, uint8_t *frame, unsigned len)
{
    int ret = host_send(s, frame, len);

    for (unsigned i = 0; i < BATCH && ret == 0; i++)
        ret = direct_read(*(int *)arg, len);
    return ret;
}

static int direct_rx_rate(unsigned len, double *rate)
{
    int fd = tap_queue(), ret;

    if (fd < 0)
        return fd;
    ret = fcntl(fd, F_SETFL, O_NONBLOCK) ? -errno : 0;
    if (ret == 0)
        ret = rx_rate(direct_rx_step, &fd, len, rate);
    close(fd);
    return ret;
}

/* The sim guest's receive queue: the buffer of each posted head. */
struct guest_rx {
    struct vdriver d;
    uint64_t buf[RING];
};

static void guest_rx_post(struct guest_rx *g, uint64_t gpa)
{
    struct guest_ring *r = &g->d.ring[0];
    struct guest_buf b = {gpa, RX_BUF, true};
    uint16_t head = guest_ring_add_chain(r, &b, 1);

    g->buf[head] = gpa;
    guest_ring_publish(r, head);
}

/* As Linux's NAPI poll: take what was received, post the buffers again,
 * kick once. */
static int guest_rx_step(void *arg, int s, uint8_t *frame, unsigned len)
{
    struct guest_rx *g = arg;
    struct guest_ring *r = &g->d.ring[0];
    uint32_t id, used_len;
    unsigned done = 0;
    int ret = host_send(s, frame, len);

    while (ret == 0 && done < BATCH) {
        while (guest_ring_get_used(r, &id, &used_len)) {
            if (used_len != HDR_LEN + len)
                return -EIO;
            guest_rx_post(g, g->buf[id]);
            done++;
        }
        guest_ring_enable_cb(r);
        if (done < BATCH && vdriver_wait_irq(&g->d, WAIT_MS) < 0)
            ret = -ETIMEDOUT;
    }
    vdriver_kick(&g->d, 0);
    return ret;
}

static int xvdm_rx_rate(unsigned len, double *rate)
{
    static struct guest_rx g;
    struct harness h;
    int ret = guest_start(&h, &g.d);

    if (ret)
        return ret;
    for (unsigned i = 0; i < RING; i++)
        guest_rx_post(&g, vdriver_alloc(&g.d, RX_BUF, 64));
    vdriver_kick(&g.d, 0);
    ret = rx_rate(guest_rx_step, &g, len, rate);
    harness_stop(&h);
    return ret;
}

/* ---- the report -------------------------------------------------------- */

/* Each size's median rate both ways and the median of the rounds' ratios. */
static int bench_direction(const char *title, int (*xvdm)(unsigned, double *),
                           int (*direct)(unsigned, double *), unsigned rounds)
{
    double x[BENCH_ROUNDS_MAX], y[BENCH_ROUNDS_MAX];

    printf("%-22s %12s %12s %6s %9s\n", title, "xvdm fr/s", "direct fr/s",
           "ratio", "range");
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct bench_row row;

        for (unsigned r = 0; r < rounds; r++) {
            int ret = xvdm(sizes[i], &x[r]);

            if (ret == 0)
                ret = direct(sizes[i], &y[r]);
            if (ret) {
                fprintf(stderr, "bench-net: %s: %s\n", title, strerror(-ret));
                return ret;
            }
        }
        row = bench_pairs(x, y, rounds);
        printf("%4u-byte frames        %12.0f %12.0f %6.2f %4.2f-%.2f\n",
               sizes[i], row.x, row.y, row.ratio, row.lo, row.hi);
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned rounds = 5;
    int ret;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--poll-us") == 0)
            poll_us = (unsigned)atoi(argv[i + 1]);
    }
    if (rounds < 1 || rounds > BENCH_ROUNDS_MAX || poll_us > 1000) {
        fprintf(stderr, "bench-net: --rounds takes 1..16, --poll-us "
                        "0..1000\n");
        return 2;
    }
    ret = unshare(CLONE_NEWNET) ? -errno : 0;
    if (ret == 0) {
        quiet_ipv6();
        ret = make_tap();
    }
    if (ret) {
        fprintf(stderr,
                "bench-net: needs root, for a network namespace and "
                "a tap: %s\n",
                strerror(-ret));
        return 1;
    }
    printf("bench-net: %u frames a round, %u rounds, %u chains per kick, "
           "xvdm --poll-us %u\n",
           FRAMES, rounds, BATCH, poll_us);
    ret = bench_direction("transmit (median)", xvdm_rate, direct_rate, rounds);
    if (ret == 0)
        ret = bench_direction("receive (median)", xvdm_rx_rate, direct_rx_rate,
                              rounds);
    return ret ? 1 : 0;
}
