/* SPDX-License-Identifier: MIT */
/*
 * virtio-net on the simulated hypervisor against a real tap, in a network
 * namespace of the test's own (each Check test runs in its own process):
 * frames the guest sends come out of the tap byte for byte, frames sent
 * into the tap reach the guest's buffers (merged across small ones), a
 * guest without buffers leaves frames waiting without costing CPU, and
 * hostile chains are dropped while the device goes on.
 */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check-run.h"
#include "harness.h"
#include "vdriver.h"

#define NET_ID 1
#define TAP "xvdmt0"
#define HDR 12
#define ETHERTYPE_TEST 0x88b5 /* local experimental */
#define WAIT_MS 5000
#define FEATURES                                                              \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_NET_F_MAC) |              \
     (1ULL << VIRTIO_NET_F_STATUS) | (1ULL << VIRTIO_NET_F_MRG_RXBUF))

static struct harness h;
static struct vdriver d;
static int wire = -1; /* a packet socket on the tap: the other end */

/* ---- the namespace and the wire ----------------------------------------- */

static void if_up(const char *name)
{
    struct ifreq ifr = {0};
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    char path[128];
    FILE *f;

    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
    /* No IPv6 chatter (router solicitations) among the test's frames. */
    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
             name);
    f = fopen(path, "w");
    if (f) {
        fputs("1", f);
        fclose(f);
    }
}

static void open_wire(const char *name)
{
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(ETH_P_ALL),
                              .sll_ifindex = (int)if_nametoindex(name)};

    wire = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    ck_assert_int_ge(wire, 0);
    ck_assert_int_eq(bind(wire, (struct sockaddr *)&sll, sizeof(sll)), 0);
}

/* A namespace of our own, xvdm serving `spec`, the tap up, the wire open,
 * the driver bound with `features` and both queues set up. */
static void start_with(const char *spec, uint64_t features)
{
    const char *specs[] = {spec};

    ck_assert_msg(unshare(CLONE_NEWNET) == 0,
                  "unshare(CLONE_NEWNET): %s (the net tests need root)",
                  strerror(errno));
    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    if_up(TAP);
    open_wire(TAP);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 16 << 20);
    ck_assert_int_eq(vdriver_probe(&d, NET_ID, features), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 64), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 1, 64), 0);
    vdriver_driver_ok(&d);
}

static void start(void)
{
    start_with("net,tap=" TAP, FEATURES);
}

static void stop(void)
{
    close(wire);
    harness_stop(&h);
}

/* An Ethernet frame of `len` bytes with our ethertype and a pattern. */
static void make_frame(uint8_t *f, size_t len, uint8_t seed)
{
    memset(f, 0xff, 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
    f[12] = ETHERTYPE_TEST >> 8;
    f[13] = ETHERTYPE_TEST & 0xff;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(seed + i);
}

static bool is_test_frame(const uint8_t *f, ssize_t len)
{
    return len >= 14 && f[12] == ETHERTYPE_TEST >> 8 &&
           f[13] == (ETHERTYPE_TEST & 0xff);
}

/* The next test frame seen on the wire within ms, its length or -1. */
static ssize_t wire_recv(uint8_t *buf, size_t cap, unsigned ms)
{
    struct pollfd p = {.fd = wire, .events = POLLIN};

    while (poll(&p, 1, (int)ms) == 1) {
        ssize_t n = recv(wire, buf, cap, 0);

        if (is_test_frame(buf, n))
            return n;
    }
    return -1;
}

static void wire_send(const uint8_t *f, size_t len)
{
    ck_assert_int_eq(send(wire, f, len, 0), (ssize_t)len);
}

/* ---- the guest's side ------------------------------------------------------- */

/* Transmit: a zeroed header, then the frame, in two buffers. */
static uint16_t guest_send(const uint8_t *f, size_t len)
{
    uint64_t hdr = vdriver_alloc(&d, HDR, 16), data = vdriver_alloc(&d, len, 16);
    struct guest_buf b[2] = {{hdr, HDR, false}, {data, (uint32_t)len, false}};
    uint16_t head;

    memset(vdriver_ptr(&d, hdr), 0, HDR);
    memcpy(vdriver_ptr(&d, data), f, len);
    head = guest_ring_add_chain(&d.ring[1], b, 2);
    guest_ring_publish(&d.ring[1], head);
    vdriver_kick(&d, 1);
    return head;
}

/* Post n receive buffers of `size` bytes; their addresses into gpa[]. */
static void guest_post_rx(unsigned n, uint32_t size, uint64_t *gpa)
{
    for (unsigned i = 0; i < n; i++) {
        struct guest_buf b = {vdriver_alloc(&d, size, 16), size, true};

        gpa[i] = b.gpa;
        guest_ring_publish(&d.ring[0], guest_ring_add_chain(&d.ring[0], &b, 1));
    }
    vdriver_kick(&d, 0);
}

/* Wait for the next used entry of queue q. */
static void guest_used(unsigned q, uint32_t *id, uint32_t *len)
{
    for (unsigned t = 0; t < WAIT_MS; t += 10) {
        if (guest_ring_get_used(&d.ring[q], id, len))
            return;
        vdriver_wait_irq(&d, 10);
    }
    ck_abort_msg("queue %u: nothing used in %d ms", q, WAIT_MS);
}

/* ---- tests ---------------------------------------------------------------------- */

START_TEST(config_has_the_default_mac_and_link_up)
{
    start();
    /* 00:16:3e, domain 1 in bytes 3-4, rank 0 */
    ck_assert_uint_eq(vdriver_read(&d, 0x100), 0x003e1600);
    ck_assert_uint_eq(vdriver_read(&d, 0x104), 0x00010001); /* + LINK_UP */
    ck_assert(d.features & (1ULL << VIRTIO_NET_F_MRG_RXBUF));
    stop();
}
END_TEST

START_TEST(mac_option_is_in_config_and_bad_ones_are_refused)
{
    const char *bad[] = {"net,tap=" TAP ",mac=01:00:00:00:00:01",
                         "net,tap=" TAP ",mac=00:16:3e",
                         "net,tap=" TAP ",bridge=br0", "net"};

    start_with("net,tap=" TAP ",mac=52:54:00:12:34:56", FEATURES);
    ck_assert_uint_eq(vdriver_read(&d, 0x100), 0x12005452);
    stop();
    for (unsigned i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        ck_assert_int_eq(harness_start(&h, &bad[i], 1), -EINVAL);
}
END_TEST

START_TEST(frames_the_guest_sends_leave_the_tap_byte_for_byte)
{
    static const size_t sizes[] = {60, 1514, 9000};
    uint8_t f[9000], got[10000];
    uint32_t id, len;

    start();
    for (unsigned i = 0; i < 3; i++) {
        make_frame(f, sizes[i], (uint8_t)i);
        guest_send(f, sizes[i]);
        guest_used(1, &id, &len);
        ck_assert_int_eq(wire_recv(got, sizeof(got), WAIT_MS),
                         (ssize_t)sizes[i]);
        ck_assert(memcmp(got, f, sizes[i]) == 0);
    }
    stop();
}
END_TEST

START_TEST(frames_into_the_tap_reach_the_guest_with_a_header)
{
    uint8_t f[1000];
    uint64_t gpa[4];
    uint32_t id, len;
    uint8_t *buf;

    start();
    guest_post_rx(4, 2048, gpa);
    make_frame(f, sizeof(f), 7);
    wire_send(f, sizeof(f));
    guest_used(0, &id, &len);
    ck_assert_uint_eq(len, HDR + sizeof(f));
    buf = vdriver_ptr(&d, gpa[id]);
    ck_assert_uint_eq(buf[10] | buf[11] << 8, 1); /* num_buffers */
    ck_assert(memcmp(buf + HDR, f, sizeof(f)) == 0);
    stop();
}
END_TEST

START_TEST(a_frame_spans_small_buffers_counted_in_num_buffers)
{
    uint8_t f[600], joined[700];
    uint64_t gpa[8];
    uint32_t id, len, total = 0;
    unsigned n = 0;
    uint8_t *first;

    start();
    guest_post_rx(8, 128, gpa);
    make_frame(f, sizeof(f), 3);
    wire_send(f, sizeof(f));
    do {
        guest_used(0, &id, &len);
        memcpy(joined + total, vdriver_ptr(&d, gpa[id]), len);
        total += len;
        n++;
    } while (total < HDR + sizeof(f));
    ck_assert_uint_eq(n, 5); /* 612 bytes in 128-byte buffers */
    first = joined;
    ck_assert_uint_eq(first[10] | first[11] << 8, 5);
    ck_assert(memcmp(joined + HDR, f, sizeof(f)) == 0);
    stop();
}
END_TEST

static double cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* No buffers: frames wait in the kernel, the loop sleeps; buffers: they
 * all arrive, in order. */
START_TEST(without_buffers_frames_wait_and_the_loop_sleeps)
{
    uint8_t f[200];
    uint64_t gpa[8];
    uint32_t id, len;
    double before;

    start();
    for (uint8_t i = 0; i < 3; i++) {
        make_frame(f, sizeof(f), i);
        wire_send(f, sizeof(f));
    }
    before = cpu_ms();
    usleep(300000);
    ck_assert_msg(cpu_ms() - before < 60, "%.0f ms of CPU in 300 ms idle",
                  cpu_ms() - before);
    ck_assert(!guest_ring_get_used(&d.ring[0], &id, &len));
    guest_post_rx(8, 2048, gpa);
    for (uint8_t i = 0; i < 3; i++) {
        guest_used(0, &id, &len);
        make_frame(f, sizeof(f), i);
        ck_assert(memcmp((uint8_t *)vdriver_ptr(&d, gpa[id]) + HDR, f,
                         sizeof(f)) == 0);
    }
    stop();
}
END_TEST

/* A chain shorter than the header, and one with a buffer the device
 * would have to write: dropped, answered, nothing on the wire; then a
 * good frame goes through. */
START_TEST(hostile_transmit_chains_are_dropped_and_the_device_goes_on)
{
    struct guest_buf shorty, wrong[2];
    uint8_t f[100], got[200];
    uint32_t id, len;

    start();
    shorty = (struct guest_buf){vdriver_alloc(&d, 6, 16), 6, false};
    guest_ring_publish(&d.ring[1], guest_ring_add_chain(&d.ring[1], &shorty, 1));
    vdriver_kick(&d, 1);
    guest_used(1, &id, &len);
    ck_assert_uint_eq(len, 0);
    wrong[0] = (struct guest_buf){vdriver_alloc(&d, 64, 16), 64, false};
    wrong[1] = (struct guest_buf){vdriver_alloc(&d, 64, 16), 64, true};
    guest_ring_publish(&d.ring[1], guest_ring_add_chain(&d.ring[1], wrong, 2));
    vdriver_kick(&d, 1);
    guest_used(1, &id, &len);
    ck_assert_int_eq(wire_recv(got, sizeof(got), 100), -1);
    make_frame(f, sizeof(f), 9);
    guest_send(f, sizeof(f));
    guest_used(1, &id, &len);
    ck_assert_int_eq(wire_recv(got, sizeof(got), WAIT_MS), (ssize_t)sizeof(f));
    stop();
}
END_TEST

/* bridge=: a tap named after the guest, up, and on the bridge. */
START_TEST(bridge_option_puts_a_new_tap_on_the_bridge)
{
    const char *specs[] = {"net,bridge=xvdmbr0"};
    int s;

    ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_int_eq(ioctl(s, SIOCBRADDBR, "xvdmbr0"), 0);
    close(s);
    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    ck_assert_int_eq(system("ip -o link show xvdm1.0 | "
                            "grep -q 'master xvdmbr0'"),
                     0);
    harness_stop(&h);
    /* Not persistent: gone with the device. */
    ck_assert_uint_eq(if_nametoindex("xvdm1.0"), 0);
}
END_TEST

static Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("tap");

    tcase_add_test(tc, config_has_the_default_mac_and_link_up);
    tcase_add_test(tc, mac_option_is_in_config_and_bad_ones_are_refused);
    tcase_add_test(tc, frames_the_guest_sends_leave_the_tap_byte_for_byte);
    tcase_add_test(tc, frames_into_the_tap_reach_the_guest_with_a_header);
    tcase_add_test(tc, a_frame_spans_small_buffers_counted_in_num_buffers);
    tcase_add_test(tc, without_buffers_frames_wait_and_the_loop_sleeps);
    tcase_add_test(tc,
                   hostile_transmit_chains_are_dropped_and_the_device_goes_on);
    tcase_add_test(tc, bridge_option_puts_a_new_tap_on_the_bridge);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(net_suite());
}
