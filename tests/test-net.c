/* SPDX-License-Identifier: MIT */
/*
 * virtio-net on the simulated hypervisor against real taps, each test in
 * a network namespace of its own: frames the guest sends come out of the
 * tap byte for byte, frames sent into the tap reach the guest with a valid
 * header (spread over merged buffers when large), nothing is read while
 * the guest has no buffers, partial checksums are completed, and hostile
 * chains are dropped without stopping the device; control commands are
 * answered and take effect, and with queues=N each pair carries the flows
 * the kernel steers to its tap queue. Needs CAP_NET_ADMIN and
 * /dev/net/tun; skipped (exit 77) with a message where they are missing.
 */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_bridge.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
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
#include "scribble.h"
#include "vdriver.h"

#define NET_ID 1
#define TAP "xt0"
#define ETHERTYPE 0x88b5 /* IEEE local experimental: nothing else sends it */
#define HDR_LEN 12
#define RING 256
#define CTRL_RING 64
#define WAIT_MS 3000
/* Header and frame: 64 KiB behind Ethernet and VLAN headers. */
#define FRAME_MAX 65550
#define F(b) (1ULL << (b))
#define BASE_FEATURES                                                          \
    (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX) |                           \
     F(VIRTIO_F_INDIRECT_DESC) | F(VIRTIO_NET_F_MAC) |                         \
     F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MTU))
#define OFFLOADS                                                               \
    (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) |                       \
     F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |                   \
     F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6))
#define CTRL_FEATURES                                                          \
    (F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX) |                       \
     F(VIRTIO_NET_F_CTRL_MAC_ADDR))

static struct harness h;
static struct vdriver d;
/* The receive buffer of each posted head, per queue. */
static uint64_t rx_gpa[VDRIVER_QUEUES_MAX][RING];
static uint8_t guest_mac[6];
static unsigned ctrl_queue; /* after the pairs the driver set up */
static unsigned vcpus = 1;   /* the guest's, as start() makes it */

/* ---- the host side: namespace, interfaces, packet sockets ---------------- */

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    if (fd < 0)
        return; /* no IPv6 in this kernel: nothing to quiet */
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* A namespace of our own; IPv6 off so interfaces going up send nothing
 * (router solicitations, MLD) that a test would have to skip over. */
static void enter_netns(void)
{
    ck_assert_msg(unshare(CLONE_NEWNET) == 0, "unshare: %s", strerror(errno));
    write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
}

static void if_ioctl(unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(s, 0);
    ck_assert_msg(ioctl(s, req, ifr) == 0, "ioctl 0x%lx on %s: %s", req,
                  ifr->ifr_name, strerror(errno));
    close(s);
}

static void if_up(const char *name)
{
    struct ifreq ifr = {0};

    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if_ioctl(SIOCGIFFLAGS, &ifr);
    ifr.ifr_flags |= IFF_UP;
    if_ioctl(SIOCSIFFLAGS, &ifr);
}

/* A tap opened by the test: flags as given, up. The fd. */
static int open_tap(const char *name, short flags)
{
    struct ifreq ifr = {0};
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    ifr.ifr_flags = flags;
    ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
    if_up(name);
    return fd;
}

/* A persistent tap with no queue attached, for tap=; `flags` adds
 * IFF_MULTI_QUEUE or nothing. */
static void make_tap(const char *name, short flags)
{
    int fd = open_tap(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | flags);

    ck_assert_int_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
    close(fd);
}

/* A packet socket that sends on `name` and receives what arrives there
 * with our ethertype. */
static int packet_socket(const char *name)
{
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(ETHERTYPE),
                              .sll_ifindex = (int)if_nametoindex(name)};
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETHERTYPE));

    ck_assert_int_ge(s, 0);
    ck_assert_int_ne(sll.sll_ifindex, 0);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
    return s;
}

/* One frame from fd within ms, or -1. */
static ssize_t recv_within(int fd, void *buf, size_t len, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    if (poll(&p, 1, ms) != 1)
        return -1;
    return read(fd, buf, len);
}

/* ---- frames -----------------------------------------------------------------
 */

/* Broadcast, from src, our ethertype, payload derived from seed. */
static void make_frame(uint8_t *f, size_t len, const uint8_t *src,
                       unsigned seed)
{
    memset(f, 0xff, 6);
    memcpy(f + 6, src, 6);
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    for (size_t i = 14; i < len; i++)
        f[i] = (uint8_t)(seed * 31 + i * 7);
}

static const uint8_t host_mac[6] = {0x02, 0, 0, 0, 0, 0x99};

static void send_frame(int s, size_t len, unsigned seed)
{
    static uint8_t f[65536];

    make_frame(f, len, host_mac, seed);
    ck_assert_int_eq(send(s, f, len, 0), (ssize_t)len);
}

/* ---- the guest side
 * ----------------------------------------------------------- */

static uint64_t config(unsigned offset, unsigned size)
{
    uint64_t v = 0;

    ck_assert_int_eq(sim_mmio_read(h.sim, 0, d.base + 0x100 + offset, size, &v),
                     0);
    return v;
}

/* As Linux's virtnet_find_vqs: every pair the device has (with MQ), then
 * the control queue (with CTRL_VQ); DRIVER_OK. */
static void setup_queues(void)
{
    unsigned pairs =
        d.features & F(VIRTIO_NET_F_MQ) ? (unsigned)config(8, 2) : 1;

    for (unsigned q = 0; q < 2 * pairs; q++)
        ck_assert_int_eq(vdriver_setup_queue(&d, q, RING), 0);
    ctrl_queue = 2 * pairs;
    if (d.features & F(VIRTIO_NET_F_CTRL_VQ))
        ck_assert_int_eq(vdriver_setup_queue(&d, ctrl_queue, CTRL_RING), 0);
    vdriver_driver_ok(&d);
}

/* xvdm with one net device of `options`, probed with `features`. */
static void start(const char *options, uint64_t features)
{
    char spec[256];
    const char *specs[] = {spec};

    snprintf(spec, sizeof(spec), "net,%s", options);
    ck_assert_int_eq(harness_start_vcpus(&h, specs, 1, vcpus), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 48 << 20);
    ck_assert_int_eq(vdriver_probe(&d, NET_ID, features), 0);
    setup_queues();
    for (unsigned i = 0; i < 6; i++)
        guest_mac[i] = (uint8_t)config(i, 1);
}

/* The next used element of queue q, waiting for it. */
static void wait_used(unsigned q, uint32_t *id, uint32_t *len)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        guest_ring_enable_cb(&d.ring[q]);
        if (guest_ring_get_used(&d.ring[q], id, len))
            return;
        vdriver_wait_irq(&d, 50);
        clock_gettime(CLOCK_MONOTONIC, &t);
        ck_assert_msg((t.tv_sec - t0.tv_sec) * 1000 < WAIT_MS,
                      "queue %u: no used element", q);
    }
}

/* n receive chains of one `size`-byte buffer each on queue q. */
static void rx_post(unsigned q, unsigned n, uint32_t size)
{
    for (unsigned i = 0; i < n; i++) {
        struct guest_buf b = {vdriver_alloc(&d, size, 64), size, true};
        uint16_t head = guest_ring_add_chain(&d.ring[q], &b, 1);

        rx_gpa[q][head] = b.gpa;
        guest_ring_publish(&d.ring[q], head);
    }
    vdriver_kick(&d, q);
}

/* One frame as the guest's driver gets it: header, then the frame
 * gathered from num_buffers used chains, all published together. */
/* The rest of a frame whose first used chain, `id` of `len` bytes on
 * queue q, has been taken. */
static size_t rx_gather(unsigned q, uint32_t id, uint32_t len,
                        struct virtio_net_hdr_v1 *hdr, uint8_t *frame)
{
    size_t got;
    unsigned n;

    ck_assert_uint_ge(len, HDR_LEN);
    memcpy(hdr, vdriver_ptr(&d, rx_gpa[q][id]), HDR_LEN);
    got = len - HDR_LEN;
    memcpy(frame, (uint8_t *)vdriver_ptr(&d, rx_gpa[q][id]) + HDR_LEN, got);
    n = le16toh(hdr->num_buffers);
    ck_assert_uint_ge(n, 1);
    for (unsigned i = 1; i < n; i++) {
        ck_assert_msg(guest_ring_get_used(&d.ring[q], &id, &len),
                      "buffer %u of %u not published with the first", i, n);
        memcpy(frame + got, vdriver_ptr(&d, rx_gpa[q][id]), len);
        got += len;
    }
    return got;
}

static size_t rx_receive(struct virtio_net_hdr_v1 *hdr, uint8_t *frame)
{
    uint32_t id, len;

    wait_used(0, &id, &len);
    return rx_gather(0, id, len, hdr, frame);
}

/* Put a transmit chain of these buffers on queue q and kick. */
static void tx_chain(unsigned q, const struct guest_buf *b, unsigned n)
{
    guest_ring_publish(&d.ring[q], guest_ring_add_chain(&d.ring[q], b, n));
    vdriver_kick(&d, q);
}

/* A frame with header `hdr` (zero when NULL), its data in `pieces`
 * descriptors after the header's. */
static void tx_frame(unsigned q, const uint8_t *frame, size_t len,
                     const struct virtio_net_hdr_v1 *hdr, unsigned pieces)
{
    struct guest_buf b[8];
    uint64_t gpa = vdriver_alloc(&d, HDR_LEN + len, 64);
    uint8_t *p = vdriver_ptr(&d, gpa);
    size_t off = 0;

    memset(p, 0, HDR_LEN);
    if (hdr)
        memcpy(p, hdr, HDR_LEN);
    memcpy(p + HDR_LEN, frame, len);
    b[0] = (struct guest_buf){gpa, HDR_LEN, false};
    for (unsigned i = 0; i < pieces; i++) {
        size_t part = i + 1 < pieces ? len / pieces : len - off;

        b[i + 1] =
            (struct guest_buf){gpa + HDR_LEN + off, (uint32_t)part, false};
        off += part;
    }
    tx_chain(q, b, pieces + 1);
}

static void expect_tx_used(unsigned q, uint32_t want_len)
{
    uint32_t id, len;

    wait_used(q, &id, &len);
    ck_assert_uint_eq(len, want_len);
}

static void expect_healthy(void)
{
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
}

/* A namespace with tap TAP (made with `tap_flags`) for the device
 * (tap=TAP plus `extra`), probed with `features`; the packet socket on
 * the tap's host side. */
static int start_on_tap_flags(const char *extra, uint64_t features,
                              short tap_flags)
{
    char options[128];
    int s;

    enter_netns();
    make_tap(TAP, tap_flags);
    s = packet_socket(TAP);
    snprintf(options, sizeof(options), "tap=" TAP "%s", extra);
    start(options, features);
    return s;
}

static int start_on_tap(const char *extra, uint64_t features)
{
    return start_on_tap_flags(extra, features, 0);
}

/* The guest sends a frame on queue q in `pieces` descriptors; the host
 * gets it. */
static void expect_tx(unsigned q, int s, size_t len, unsigned seed,
                      unsigned pieces)
{
    static uint8_t f[65536], got[65536];

    make_frame(f, len, guest_mac, seed);
    tx_frame(q, f, len, NULL, pieces);
    expect_tx_used(q, 0);
    ck_assert_int_eq(recv_within(s, got, sizeof(got), WAIT_MS), (ssize_t)len);
    ck_assert_mem_eq(got, f, len);
}

/* The host sends a frame; the guest gets it, with header *hdr. */
static void expect_rx(int s, size_t len, unsigned seed,
                      struct virtio_net_hdr_v1 *hdr)
{
    static uint8_t f[65536], got[65536];

    send_frame(s, len, seed);
    ck_assert_uint_eq(rx_receive(hdr, got), len);
    make_frame(f, len, host_mac, seed);
    ck_assert_mem_eq(got, f, len);
}

/* ---- configuration ----------------------------------------------------------
 */

START_TEST(probe_offers_default_mac_link_up_mtu_and_offloads)
{
    start_on_tap(",mtu=9000",
                 BASE_FEATURES | OFFLOADS | F(VIRTIO_NET_F_MRG_RXBUF));
    /* Xen's OUI, 0x80 | domid >> 8, domid & 0xff, the device's number. */
    ck_assert_mem_eq(guest_mac,
                     ((uint8_t[]){0x00, 0x16, 0x3e, 0x80, 0x01, 0x00}), 6);
    ck_assert_uint_eq(config(6, 2), VIRTIO_NET_S_LINK_UP);
    ck_assert_uint_eq(config(10, 2), 9000);
    ck_assert_uint_eq(
        d.features & (BASE_FEATURES | OFFLOADS | F(VIRTIO_NET_F_MRG_RXBUF)),
        BASE_FEATURES | OFFLOADS | F(VIRTIO_NET_F_MRG_RXBUF));
    ck_assert_uint_eq(d.offered & CTRL_FEATURES, CTRL_FEATURES);
    ck_assert(!(d.offered & F(VIRTIO_NET_F_MQ))); /* one pair */
    harness_stop(&h);
}
END_TEST

START_TEST(mac_option_is_what_the_guest_reads)
{
    start_on_tap(",mac=52:54:00:ab:cd:ef", BASE_FEATURES);
    ck_assert_mem_eq(guest_mac,
                     ((uint8_t[]){0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}), 6);
    ck_assert(!(d.offered & F(VIRTIO_NET_F_MTU))); /* no mtu= given */
    harness_stop(&h);
}
END_TEST

/* harness_start() of spec fails, and its log names `value`. */
static void expect_refused(const char *spec, const char *value)
{
    char path[] = "/tmp/xvdm-net-log-XXXXXX", log[4096] = "";
    const char *specs[] = {spec};
    int fd = mkstemp(path), saved = dup(2);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    ck_assert_int_ne(harness_start(&h, specs, 1), 0);
    dup2(saved, 2);
    close(saved);
    n = pread(fd, log, sizeof(log) - 1, 0);
    close(fd);
    unlink(path);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(strstr(log, value), "'%s' not named in: %s", value, log);
}

START_TEST(bad_mac_missing_tap_and_bad_mtu_are_refused_by_name)
{
    enter_netns();
    make_tap(TAP, 0);
    expect_refused("net,tap=" TAP ",mac=01:00:5e:00:00:01",
                   "01:00:5e:00:00:01"); /* multicast */
    expect_refused("net,tap=" TAP ",mac=00:16:3e:00:01", "00:16:3e:00:01");
    expect_refused("net,tap=" TAP ",mac=00:00:00:00:00:00",
                   "00:00:00:00:00:00");
    expect_refused("net,tap=nosuchtap", "nosuchtap");
    expect_refused("net,bridge=nosuchbr", "nosuchbr");
    expect_refused("net,tap=" TAP ",mtu=20", "20");
    expect_refused("net", "tap=");
}
END_TEST

/* An ethtool on/off setting of the tap: the kernel's view of what the
 * tap's reader (the device) takes. */
static bool tap_ethtool(uint32_t cmd)
{
    struct ethtool_value ev = {.cmd = cmd};
    struct ifreq ifr = {0};

    snprintf(ifr.ifr_name, IFNAMSIZ, TAP);
    ifr.ifr_data = (char *)&ev;
    if_ioctl(SIOCETHTOOL, &ifr);
    return ev.data != 0;
}

/* What the guest accepts of the receive offloads is what the kernel may
 * hand the tap's reader; the rest it does itself. */
START_TEST(features_ok_gives_the_tap_the_offloads_the_guest_took)
{
    start_on_tap("", BASE_FEATURES | OFFLOADS);
    ck_assert(tap_ethtool(ETHTOOL_GTXCSUM));
    ck_assert(tap_ethtool(ETHTOOL_GTSO));
    vdriver_reset(&d);
    ck_assert_int_eq(vdriver_probe(&d, NET_ID, BASE_FEATURES), 0);
    ck_assert(!tap_ethtool(ETHTOOL_GTXCSUM));
    ck_assert(!tap_ethtool(ETHTOOL_GTSO));
    harness_stop(&h);
}
END_TEST

/* §5.1.3.1: GUEST_TSO4 needs GUEST_CSUM; FEATURES_OK does not stick. */
START_TEST(offload_without_the_feature_it_needs_is_refused)
{
    start_on_tap("", BASE_FEATURES);
    vdriver_reset(&d);
    ck_assert_int_eq(
        vdriver_probe(&d, NET_ID, BASE_FEATURES | F(VIRTIO_NET_F_GUEST_TSO4)),
        -EIO);
    harness_stop(&h);
}
END_TEST

/* ---- transmit
 * ------------------------------------------------------------------ */

START_TEST(guest_frames_of_several_sizes_leave_the_tap_byte_exact)
{
    static const size_t sizes[] = {60, 61, 128, 577, 1000, 1514};
    int s = start_on_tap("", BASE_FEATURES | OFFLOADS);

    for (unsigned i = 0; i < 2 * 6; i++)
        expect_tx(1, s, sizes[i % 6], i, 1 + i % 3);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* ---- receive
 * --------------------------------------------------------------------- */

START_TEST(tap_frames_reach_the_guest_byte_exact_with_a_header)
{
    struct virtio_net_hdr_v1 hdr;
    int s = start_on_tap("", BASE_FEATURES); /* no MRG_RXBUF */

    rx_post(0, 16, HDR_LEN + 1514);
    for (unsigned i = 0; i < 10; i++) {
        expect_rx(s, 60 + i * 145, i, &hdr);
        ck_assert_uint_eq(hdr.flags, 0);
        ck_assert_uint_eq(hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
        ck_assert_uint_eq(le16toh(hdr.num_buffers), 1);
    }
    expect_healthy();
    harness_stop(&h);
}
END_TEST

START_TEST(large_frame_spans_merged_buffers_with_num_buffers)
{
    struct virtio_net_hdr_v1 hdr;
    int s =
        start_on_tap(",mtu=9000", BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));

    rx_post(0, 12, 2048);
    expect_rx(s, 9014, 7, &hdr);
    /* 12 + 9014 bytes in 2048-byte buffers. */
    ck_assert_uint_eq(le16toh(hdr.num_buffers), 5);
    /* The held rest serves the next, small frame in one buffer. */
    expect_rx(s, 100, 8, &hdr);
    ck_assert_uint_eq(le16toh(hdr.num_buffers), 1);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

static uint64_t thread_cpu_ns(pthread_t t)
{
    struct timespec ts;
    clockid_t cid;

    ck_assert_int_eq(pthread_getcpuclockid(t, &cid), 0);
    ck_assert_int_eq(clock_gettime(cid, &ts), 0);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* With no buffers posted, frames stay in the tap's kernel queue and the
 * loop sleeps; buffers and a kick bring them all, in order. */
START_TEST(no_rx_buffers_leaves_frames_queued_and_the_loop_idle)
{
    static uint8_t f[256], got[256];
    struct virtio_net_hdr_v1 hdr;
    int s = start_on_tap("", BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
    uint64_t cpu;

    for (unsigned i = 0; i < 20; i++)
        send_frame(s, 100 + i, i);
    usleep(50 * 1000);
    cpu = thread_cpu_ns(h.thread);
    usleep(300 * 1000);
    /* A loop spinning on the readable tap would use all 300 ms. */
    ck_assert_uint_lt(thread_cpu_ns(h.thread) - cpu, 20 * 1000 * 1000);
    ck_assert(!guest_ring_get_used(&d.ring[0], &(uint32_t){0}, &(uint32_t){0}));
    rx_post(0, 32, 2048);
    for (unsigned i = 0; i < 20; i++) {
        ck_assert_uint_eq(rx_receive(&hdr, got), 100 + i);
        make_frame(f, 100 + i, host_mac, i);
        ck_assert_mem_eq(got, f, 100 + i);
    }
    harness_stop(&h);
}
END_TEST

/* ---- bridge and offloads
 * ------------------------------------------------------- */

static void make_bridge(const char *name)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(s, 0);
    ck_assert_msg(ioctl(s, SIOCBRADDBR, name) == 0, "SIOCBRADDBR: %s",
                  strerror(errno));
    close(s);
    if_up(name);
}

static void bridge_add(const char *bridge, const char *port)
{
    struct ifreq ifr = {0};

    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", bridge);
    ifr.ifr_ifindex = (int)if_nametoindex(port);
    if_ioctl(SIOCBRADDIF, &ifr);
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* A frame of `len` bytes from the guest, 10.0.0.2 to 10.0.0.1, with an
 * IPv4 header for `proto` (checksummed) and the L4 header zeroed (`l4`
 * bytes). The IPv4 header. */
static uint8_t *make_ipv4(uint8_t *f, size_t len, uint8_t proto, size_t l4)
{
    uint8_t *ip = f + 14;

    make_frame(f, len, guest_mac, 3);
    f[12] = 0x08;
    f[13] = 0x00;
    memset(ip, 0, 20 + l4);
    ip[0] = 0x45;
    ip[2] = (uint8_t)((len - 14) >> 8);
    ip[3] = (uint8_t)(len - 14);
    ip[8] = 64;
    ip[9] = proto;
    memcpy(ip + 12, (uint8_t[]){10, 0, 0, 2, 10, 0, 0, 1}, 8);
    ip[10] = (uint8_t)(~fold(sum16(ip, 20, 0)) >> 8);
    ip[11] = (uint8_t)~fold(sum16(ip, 20, 0));
    return ip;
}

/* The sum of the IPv4 pseudo-header of a `len`-byte frame's L4 part. */
static uint32_t pseudo_sum(const uint8_t *f, size_t len, uint8_t proto)
{
    return sum16(f + 26, 8, proto + (uint32_t)(len - 34));
}

/* The pseudo-header sum of a frame's L4 header, its checksum field as
 * Linux leaves it for the device to finish (CHECKSUM_PARTIAL). */
static void set_pseudo_sum(uint8_t *f, size_t len, uint8_t proto,
                           uint8_t *field)
{
    uint32_t pseudo = fold(pseudo_sum(f, len, proto));

    field[0] = (uint8_t)(pseudo >> 8);
    field[1] = (uint8_t)pseudo;
}

/* An Ethernet + IPv4 + UDP frame of `len` bytes from `port`, its checksum
 * left to the device. */
static void make_udp_partial(uint8_t *f, size_t len, uint16_t port)
{
    uint8_t *udp = make_ipv4(f, len, 17, 8) + 20;
    uint16_t ulen = (uint16_t)(len - 34);

    udp[0] = (uint8_t)(port >> 8);
    udp[1] = (uint8_t)port;
    udp[2] = 0x30;
    udp[4] = (uint8_t)(ulen >> 8);
    udp[5] = (uint8_t)ulen;
    set_pseudo_sum(f, len, 17, udp + 6);
}

/* An Ethernet + IPv4 + TCP frame of `len` bytes, as Linux hands the device
 * a TSO super-frame: one TCP header for all of it, checksum left to the
 * device. */
static void make_tcp_gso(uint8_t *f, size_t len)
{
    uint8_t *tcp = make_ipv4(f, len, 6, 20) + 20;

    tcp[0] = 0x30; /* from port 0x3000 to 80, sequence 1 */
    tcp[3] = 80;
    tcp[7] = 1;
    tcp[12] = 0x50; /* 20-byte header */
    tcp[13] = 0x18; /* PSH, ACK */
    tcp[14] = 0xff;
    tcp[15] = 0xff;
    set_pseudo_sum(f, len, 6, tcp + 16);
}

/* The L4 checksum of a frame with a 20-byte IPv4 header adds up. */
static bool l4_checksum_valid(const uint8_t *f, size_t len, uint8_t proto)
{
    return fold(sum16(f + 34, len - 34, pseudo_sum(f, len, proto))) == 0xffff;
}

/* UDP's 0 means "no checksum": not valid here either. */
static bool udp_checksum_valid(const uint8_t *f, size_t len)
{
    return (f[40] | f[41]) && l4_checksum_valid(f, len, 17);
}

/* xvdm's vif on bridge xbr0 with every offload, and a peer port without
 * any (a plain tap): the fd of the peer. */
static int start_on_bridge_with_peer(void)
{
    int peer;

    enter_netns();
    make_bridge("xbr0");
    peer = open_tap("xpeer0", IFF_TAP | IFF_NO_PI);
    bridge_add("xbr0", "xpeer0");
    start("bridge=xbr0", BASE_FEATURES | OFFLOADS);
    return peer;
}

/* bridge= makes vif-virtio1.0 on the bridge; a frame the guest leaves to
 * the device to checksum comes out of another port (a tap without
 * offloads) with a correct checksum; the way back works; the vif goes
 * away with the device. */
START_TEST(bridge_port_carries_frames_and_partial_checksums_are_completed)
{
    static uint8_t f[1024], got[65536];
    struct virtio_net_hdr_v1 hdr = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                    .csum_start = htole16(34),
                                    .csum_offset = htole16(6)};
    ssize_t n;
    int peer;

    peer = start_on_bridge_with_peer();
    ck_assert_uint_ne(if_nametoindex("vif-virtio1.0"), 0);
    make_udp_partial(f, 300, 0x3000);
    ck_assert(!udp_checksum_valid(f, 300));
    tx_frame(1, f, 300, &hdr, 2);
    expect_tx_used(1, 0);
    /* The bridge's own IGMP reports go out of the peer's port too. */
    do
        n = recv_within(peer, got, sizeof(got), WAIT_MS);
    while (n > 0 && memcmp(got + 6, guest_mac, 6) != 0);
    ck_assert_int_eq(n, 300);
    ck_assert(udp_checksum_valid(got, 300));
    f[40] = got[40];
    f[41] = got[41];
    ck_assert_mem_eq(got, f, 300);
    /* Back from the peer's port to the guest. */
    rx_post(0, 4, 2048);
    make_frame(f, 200, host_mac, 9);
    ck_assert_int_eq(write(peer, f, 200), 200);
    while ((n = (ssize_t)rx_receive(&hdr, got)) &&
           (got[12] << 8 | got[13]) != ETHERTYPE)
        ;
    ck_assert_int_eq(n, 200);
    ck_assert_mem_eq(got, f, 200);
    harness_stop(&h);
    ck_assert_uint_eq(if_nametoindex("vif-virtio1.0"), 0);
}
END_TEST

/* A TSO frame the guest hands over (HOST_TSO4) leaves a port without
 * offloads as segments of at most gso_size bytes of data, each with a
 * valid checksum, together carrying the guest's data in order. */
START_TEST(a_tso_frame_from_the_guest_leaves_another_port_segmented)
{
    enum { MSS = 1000, DATA = 4000, HDRS = 54 };
    static uint8_t f[HDRS + DATA], got[65536];
    struct virtio_net_hdr_v1 hdr = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
                                    .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
                                    .hdr_len = htole16(HDRS),
                                    .gso_size = htole16(MSS),
                                    .csum_start = htole16(34),
                                    .csum_offset = htole16(16)};
    size_t have = 0;
    ssize_t n;
    int peer;

    peer = start_on_bridge_with_peer();
    make_tcp_gso(f, sizeof(f));
    tx_frame(1, f, sizeof(f), &hdr, 3);
    expect_tx_used(1, 0);
    while (have < DATA) {
        n = recv_within(peer, got, sizeof(got), WAIT_MS);
        ck_assert_int_gt(n, 12);
        if (memcmp(got + 6, guest_mac, 6) != 0)
            continue; /* the bridge's own IGMP reports */
        ck_assert_int_gt(n, HDRS);
        ck_assert_int_le(n, HDRS + MSS);
        ck_assert(l4_checksum_valid(got, (size_t)n, 6));
        ck_assert_mem_eq(got + HDRS, f + HDRS + have, (size_t)n - HDRS);
        have += (size_t)n - HDRS;
    }
    ck_assert_uint_eq(have, DATA);
    harness_stop(&h);
}
END_TEST

/* ---- a hostile guest
 * ---------------------------------------------------------- */

START_TEST(hostile_tx_chains_are_dropped_and_the_device_keeps_working)
{
    static uint8_t got[2048];
    int s = start_on_tap("", BASE_FEATURES);
    uint64_t buf = vdriver_alloc(&d, 2048, 64);
    uint64_t big = vdriver_alloc(&d, 70000, 64);

    make_frame(vdriver_ptr(&d, buf), 100, guest_mac, 1);
    /* Shorter than the header. */
    tx_chain(1, (struct guest_buf[]){{buf, 6, false}}, 1);
    expect_tx_used(1, 0);
    /* A device-writable buffer in a transmit chain. */
    tx_chain(1, (struct guest_buf[]){{buf, 12, false}, {buf + 12, 100, true}},
             2);
    expect_tx_used(1, 0);
    /* Larger than header + 65550. */
    memset(vdriver_ptr(&d, big), 0, HDR_LEN);
    make_frame((uint8_t *)vdriver_ptr(&d, big) + HDR_LEN, 65551, guest_mac, 2);
    tx_chain(1, (struct guest_buf[]){{big, HDR_LEN + 65551, false}}, 1);
    expect_tx_used(1, 0);
    ck_assert_int_eq(recv_within(s, got, sizeof(got), 200), -1);
    expect_tx(1, s, 100, 3, 1);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

START_TEST(hostile_rx_buffers_too_small_or_readable_are_returned_unused)
{
    struct virtio_net_hdr_v1 hdr;
    int s = start_on_tap("", BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
    uint64_t buf = vdriver_alloc(&d, 4096, 64);
    uint32_t id, len;

    /* 8 bytes: no room for the header. */
    guest_ring_publish(
        &d.ring[0], guest_ring_add_chain(
                        &d.ring[0], (struct guest_buf[]){{buf, 8, true}}, 1));
    /* A device-readable buffer in a receive chain. */
    guest_ring_publish(
        &d.ring[0],
        guest_ring_add_chain(
            &d.ring[0],
            (struct guest_buf[]){{buf, 64, false}, {buf + 64, 2000, true}}, 2));
    vdriver_kick(&d, 0);
    wait_used(0, &id, &len);
    ck_assert_uint_eq(len, 0);
    wait_used(0, &id, &len);
    ck_assert_uint_eq(len, 0);
    rx_post(0, 4, 2048);
    expect_rx(s, 150, 4, &hdr);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* A reset drops the chains the device held; after a new probe the device
 * takes fresh buffers and frames flow again. */
START_TEST(reset_drops_held_buffers_and_the_device_works_after_reprobe)
{
    struct virtio_net_hdr_v1 hdr;
    int s = start_on_tap("", BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));

    rx_post(0, 8, 2048);
    vdriver_reset(&d);
    ck_assert_int_eq(vdriver_probe(&d, NET_ID, BASE_FEATURES), 0);
    setup_queues();
    rx_post(0, 4, 2048);
    expect_rx(s, 120, 5, &hdr);
    expect_tx(1, s, 120, 6, 2);
    harness_stop(&h);
}
END_TEST

/* ---- the control queue
 * -------------------------------------------------------- */

/* A control chain of these buffers; the bytes the device wrote. */
static uint32_t ctrl_chain(const struct guest_buf *b, unsigned n)
{
    uint32_t id, len;

    guest_ring_publish(&d.ring[ctrl_queue],
                       guest_ring_add_chain(&d.ring[ctrl_queue], b, n));
    /* As Linux's virtnet_send_command: no kick unless the device asked. */
    vdriver_kick_if_needed(&d, ctrl_queue);
    wait_used(ctrl_queue, &id, &len);
    return len;
}

/* A command as Linux's virtnet_send_command builds it: header, data (if
 * any), ack byte; the byte after the ack must stay as it was. The ack. */
static uint8_t ctrl_cmd(uint8_t class, uint8_t cmd, const void *data,
                        uint32_t len)
{
    uint64_t gpa = vdriver_alloc(&d, len + 4, 8);
    uint8_t *p = vdriver_ptr(&d, gpa);
    struct guest_buf b[3] = {{gpa, 2, false}};
    unsigned n = 1;

    p[0] = class;
    p[1] = cmd;
    if (len) {
        memcpy(p + 2, data, len);
        b[n++] = (struct guest_buf){gpa + 2, len, false};
    }
    p[2 + len] = 0xa5;
    p[3 + len] = 0x5a;
    b[n++] = (struct guest_buf){gpa + 2 + len, 1, true};
    ck_assert_uint_eq(ctrl_chain(b, n), 1);
    ck_assert_uint_eq(p[3 + len], 0x5a);
    return p[2 + len];
}

/* One MAC table of TABLE_SET: a le32 `count`, then `macs` addresses. Its
 * bytes. */
static uint32_t put_table(uint8_t *p, uint32_t count, unsigned macs)
{
    uint32_t le = htole32(count);

    memcpy(p, &le, sizeof(le));
    for (unsigned i = 0; i < macs; i++)
        memcpy(p + 4 + 6 * i, ((uint8_t[]){0x01, 0, 0x5e, 0, 0, (uint8_t)i}),
               6);
    return 4 + 6 * macs;
}

/* TABLE_SET: the unicast table (count as given, `uni` addresses), the
 * multicast one likewise, and `extra` bytes after them. The ack. */
static uint8_t table_set(uint32_t uni_count, unsigned uni, uint32_t multi_count,
                         unsigned multi, unsigned extra)
{
    uint8_t tables[128] = {0};
    uint32_t len = put_table(tables, uni_count, uni);

    len += put_table(tables + len, multi_count, multi);
    return ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tables,
                    len + extra);
}

static uint8_t vq_pairs_set(uint16_t pairs)
{
    uint16_t le = htole16(pairs);

    return ctrl_cmd(VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &le,
                    sizeof(le));
}

/* What Linux sends on probe and `ip link set`: rx modes, the filter
 * table, a new MAC; all accepted, the MAC shown in config space until a
 * reset brings back the one of the options. */
START_TEST(ctrl_commands_linux_sends_are_accepted_and_addr_set_sets_the_mac)
{
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    struct virtio_net_hdr_v1 hdr;
    uint8_t on = 1, off = 0, first_mac[6];
    int s = start_on_tap("", BASE_FEATURES | CTRL_FEATURES);

    memcpy(first_mac, guest_mac, 6);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
        VIRTIO_NET_OK);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1),
        VIRTIO_NET_OK);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1),
        VIRTIO_NET_OK);
    ck_assert_uint_eq(table_set(1, 1, 2, 2, 0), VIRTIO_NET_OK);
    ck_assert_uint_eq(table_set(0, 0, 0, 0, 0), VIRTIO_NET_OK);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac, 6),
        VIRTIO_NET_OK);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_eq(config(i, 1), mac[i]);
    rx_post(0, 4, 2048);
    expect_rx(s, 100, 1, &hdr);
    expect_tx(1, s, 100, 2, 1);
    vdriver_reset(&d);
    ck_assert_int_eq(vdriver_probe(&d, NET_ID, BASE_FEATURES), 0);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_eq(config(i, 1), first_mac[i]);
    harness_stop(&h);
}
END_TEST

/* Unknown, unoffered and malformed commands get VIRTIO_NET_ERR; a header
 * cut short still gets its ack, a chain without room for one comes back
 * with nothing written, and neither touches a byte outside the chain. */
START_TEST(malformed_ctrl_commands_get_err_and_stay_inside_the_chain)
{
    uint8_t on = 1, two[2] = {1, 1}, *p;
    uint64_t gpa;

    start_on_tap("", BASE_FEATURES | CTRL_FEATURES);
    gpa = vdriver_alloc(&d, 8, 8);
    p = vdriver_ptr(&d, gpa);
    ck_assert_uint_eq(ctrl_cmd(9, 0, NULL, 0), VIRTIO_NET_ERR);
    /* ALLUNI needs CTRL_RX_EXTRA, VLAN needs CTRL_VLAN, MQ needs MQ. */
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLUNI, &on, 1),
        VIRTIO_NET_ERR);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_VLAN, VIRTIO_NET_CTRL_VLAN_ADD, two, 2),
        VIRTIO_NET_ERR);
    ck_assert_uint_eq(vq_pairs_set(1), VIRTIO_NET_ERR);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, two, 2),
        VIRTIO_NET_ERR);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, NULL, 0),
        VIRTIO_NET_ERR);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, two, 2),
        VIRTIO_NET_ERR);
    /* A table that claims more than the data holds, one whose size
     * overflows 32 bits, and bytes after the tables. */
    ck_assert_uint_eq(table_set(1000, 1, 0, 0, 0), VIRTIO_NET_ERR);
    ck_assert_uint_eq(table_set(0xffffffff, 0, 0, 0, 0), VIRTIO_NET_ERR);
    ck_assert_uint_eq(table_set(1, 1, 2, 1, 0), VIRTIO_NET_ERR);
    ck_assert_uint_eq(table_set(0, 0, 0, 0, 1), VIRTIO_NET_ERR);
    /* One byte of header, then the ack; a guard byte after it. */
    memcpy(p, (uint8_t[]){VIRTIO_NET_CTRL_RX, 0xee, 0x77}, 3);
    ck_assert_uint_eq(
        ctrl_chain((struct guest_buf[]){{gpa, 1, false}, {gpa + 1, 1, true}},
                   2),
        1);
    ck_assert_uint_eq(p[1], VIRTIO_NET_ERR);
    ck_assert_uint_eq(p[2], 0x77);
    /* A whole command and no ack byte: answered with 0 bytes. */
    memcpy(p,
           (uint8_t[]){VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 1, 0x77},
           4);
    ck_assert_uint_eq(ctrl_chain((struct guest_buf[]){{gpa, 3, false}}, 1), 0);
    ck_assert_uint_eq(p[3], 0x77);
    ck_assert_uint_eq(
        ctrl_cmd(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1),
        VIRTIO_NET_OK);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* ---- queue pairs
 * -------------------------------------------------------------- */

#define FLOW_PORT 2000
#define FLOW_LEN 100

/* n UDP flows from the host into interface `ifname`, one source port
 * each; *per_queue: how many reached each of the first `pairs` receive
 * queues, every frame once. */
static void rx_flows(const char *ifname, unsigned n, unsigned pairs,
                     unsigned *per_queue)
{
    static uint8_t f[FLOW_LEN], got[2048];
    struct virtio_net_hdr_v1 hdr;
    bool seen[256] = {false};
    struct timespec t0, t;
    unsigned total = 0;
    uint32_t id, len;
    int s = packet_socket(ifname);
    /* The socket's own protocol would hide the ports from the kernel's
     * flow hash: say these are IPv4. */
    struct sockaddr_ll ip = {.sll_family = AF_PACKET,
                             .sll_protocol = htons(ETH_P_IP),
                             .sll_ifindex = (int)if_nametoindex(ifname)};

    for (unsigned i = 0; i < n; i++) {
        make_udp_partial(f, FLOW_LEN, (uint16_t)(FLOW_PORT + i));
        ck_assert_int_eq(
            sendto(s, f, FLOW_LEN, 0, (struct sockaddr *)&ip, sizeof(ip)),
            FLOW_LEN);
    }
    close(s);
    memset(per_queue, 0, pairs * sizeof(*per_queue));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (total < n) {
        unsigned before = total;

        for (unsigned q = 0; q < pairs; q++) {
            while (guest_ring_get_used(&d.ring[2 * q], &id, &len)) {
                unsigned flow;

                /* Not ours: what a bridge sends by itself (IGMP). */
                if (rx_gather(2 * q, id, len, &hdr, got) != FLOW_LEN)
                    continue;
                flow = (unsigned)(got[34] << 8 | got[35]) - FLOW_PORT;
                ck_assert_uint_lt(flow, n);
                ck_assert_msg(!seen[flow], "flow %u arrived twice", flow);
                seen[flow] = true;
                per_queue[q]++;
                total++;
            }
            guest_ring_enable_cb(&d.ring[2 * q]);
        }
        if (total == before)
            vdriver_wait_irq(&d, 50);
        clock_gettime(CLOCK_MONOTONIC, &t);
        ck_assert_msg((t.tv_sec - t0.tv_sec) * 1000 < WAIT_MS,
                      "%u of %u flows arrived", total, n);
    }
}

/* queues=2: both pairs in use once the driver asks; the kernel spreads
 * 32 flows over the two tap queues, so each receive queue gets some, and
 * each transmit queue reaches the tap. */
START_TEST(each_queue_pair_carries_frames_both_ways)
{
    unsigned per_queue[2];
    int s = start_on_tap_flags(
        ",queues=2", BASE_FEATURES | CTRL_FEATURES | F(VIRTIO_NET_F_MQ),
        IFF_MULTI_QUEUE);

    ck_assert(d.features & F(VIRTIO_NET_F_MQ));
    ck_assert_uint_eq(config(8, 2), 2);
    ck_assert_uint_eq(ctrl_queue, 4);
    ck_assert_uint_eq(vq_pairs_set(2), VIRTIO_NET_OK);
    rx_post(0, 64, 2048);
    rx_post(2, 64, 2048);
    rx_flows(TAP, 32, 2, per_queue);
    ck_assert_msg(per_queue[0] && per_queue[1], "flows per queue: %u, %u",
                  per_queue[0], per_queue[1]);
    expect_tx(1, s, 200, 1, 1);
    expect_tx(3, s, 300, 2, 2);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* §5.1.6.5.5: one pair until VQ_PAIRS_SET, then as many as asked: the
 * tap queues of the others are detached, so every flow comes to the
 * pairs in use. Out of range is refused. */
START_TEST(vq_pairs_set_moves_flows_between_one_pair_and_all)
{
    unsigned per_queue[3];

    start_on_tap_flags(",queues=3",
                       BASE_FEATURES | CTRL_FEATURES | F(VIRTIO_NET_F_MQ),
                       IFF_MULTI_QUEUE);
    for (unsigned q = 0; q < 3; q++)
        rx_post(2 * q, 160, 2048);
    rx_flows(TAP, 48, 3, per_queue);
    ck_assert_uint_eq(per_queue[0], 48);
    ck_assert_uint_eq(vq_pairs_set(3), VIRTIO_NET_OK);
    rx_flows(TAP, 48, 3, per_queue);
    ck_assert_msg(per_queue[0] && per_queue[1] && per_queue[2],
                  "flows per queue: %u, %u, %u", per_queue[0], per_queue[1],
                  per_queue[2]);
    ck_assert_uint_eq(vq_pairs_set(0), VIRTIO_NET_ERR);
    ck_assert_uint_eq(vq_pairs_set(4), VIRTIO_NET_ERR);
    ck_assert_uint_eq(vq_pairs_set(1), VIRTIO_NET_OK);
    rx_flows(TAP, 48, 3, per_queue);
    ck_assert_uint_eq(per_queue[0], 48);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* bridge= with queues=2 makes its vif a multi-queue tap: both pairs
 * carry flows from the bridge's side. */
START_TEST(bridge_with_queues_makes_a_multi_queue_vif)
{
    unsigned per_queue[2];

    enter_netns();
    make_bridge("xbr0");
    start("bridge=xbr0,queues=2",
          BASE_FEATURES | CTRL_FEATURES | F(VIRTIO_NET_F_MQ));
    ck_assert_uint_eq(vq_pairs_set(2), VIRTIO_NET_OK);
    rx_post(0, 64, 2048);
    rx_post(2, 64, 2048);
    rx_flows("vif-virtio1.0", 32, 2, per_queue);
    ck_assert_msg(per_queue[0] && per_queue[1], "flows per queue: %u, %u",
                  per_queue[0], per_queue[1]);
    harness_stop(&h);
}
END_TEST

START_TEST(bad_queues_values_are_refused_by_name)
{
    enter_netns();
    make_tap(TAP, 0);
    expect_refused("net,tap=" TAP ",queues=0", "queues='0'");
    expect_refused("net,tap=" TAP ",queues=32", "queues='32'");
    expect_refused("net,tap=" TAP ",queues=two", "queues='two'");
    /* A tap made without multi_queue has one queue only. */
    expect_refused("net,tap=" TAP ",queues=2", "multi_queue");
}
END_TEST

/* ---- hostile chains, queue by queue ------------------------------------- */

/* A hole in guest RAM, between region 0 and the rest of bank 0: an empty
 * buffer may name it, since it holds no byte to reach. */
static uint64_t ram_hole(void)
{
    struct sim_ram_region r0 = sim_ram_region(h.sim, 0);

    return r0.gpa + r0.size;
}

/* The guest's bytes at gpa, to write a header or frame there. */
static uint8_t *guest_at(uint64_t gpa, size_t len)
{
    uint8_t *p = sim_guest_ptr(h.sim, gpa, len);

    ck_assert_ptr_nonnull(p);
    return p;
}

/* Publish head on queue q and kick: it comes back with `want` bytes
 * written, and the guest is interrupted for it (VIRTIO 1.2 §2.7.7.2: the
 * device MUST notify unless the driver suppressed it, which it has not). */
static void expect_used_irq(unsigned q, uint16_t head, uint32_t want)
{
    uint32_t id, len;

    guest_ring_enable_cb(&d.ring[q]);
    vdriver_take_irqs(&d);
    guest_ring_publish(&d.ring[q], head);
    vdriver_kick(&d, q);
    ck_assert_int_ge(vdriver_wait_irq(&d, WAIT_MS), 0);
    ck_assert_msg(guest_ring_get_used(&d.ring[q], &id, &len),
                  "queue %u: an interrupt, but no used element", q);
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(len, want);
}

/* A frame of `len` bytes at gpa behind a zero header at hdr_gpa. */
static void put_tx_frame(uint64_t hdr_gpa, uint64_t gpa, size_t len,
                         unsigned seed)
{
    memset(guest_at(hdr_gpa, HDR_LEN), 0, HDR_LEN);
    make_frame(guest_at(gpa, len), len, guest_mac, seed);
}

/* The chain goes out on the tap as the frame at gpa, then is used with 0
 * bytes written. */
static void expect_sent(int s, const struct guest_buf *b, unsigned n,
                        uint64_t gpa, size_t len)
{
    static uint8_t got[FRAME_MAX];

    tx_chain(1, b, n);
    expect_tx_used(1, 0);
    ck_assert_int_eq(recv_within(s, got, sizeof(got), WAIT_MS), (ssize_t)len);
    ck_assert_mem_eq(got, guest_at(gpa, len), len);
}

/* The chain is used with 0 bytes written and nothing reaches the tap. */
static void expect_dropped(int s, const struct guest_buf *b, unsigned n)
{
    static uint8_t got[FRAME_MAX];

    expect_used_irq(1, guest_ring_add_chain(&d.ring[1], b, n), 0);
    ck_assert_int_eq(recv_within(s, got, sizeof(got), 100), -1);
}

/* Empty buffers hold nothing: first, between the header and the frame,
 * inside the frame, last, even at an address outside RAM, they are left
 * out and the frame leaves whole; alone, the chain is shorter than the
 * header and is dropped. */
START_TEST(tx_empty_buffers_are_left_out_wherever_they_are)
{
    int s = start_on_tap("", BASE_FEATURES);
    uint64_t hdr = vdriver_alloc(&d, HDR_LEN, 64);
    uint64_t f = vdriver_alloc(&d, 200, 64);

    put_tx_frame(hdr, f, 200, 1);
    expect_sent(s,
                (struct guest_buf[]){{f, 0, false},
                                     {hdr, HDR_LEN, false},
                                     {ram_hole(), 0, false},
                                     {f, 80, false},
                                     {f + 80, 0, false},
                                     {f + 80, 120, false},
                                     {ram_hole(), 0, false}},
                7, f, 200);
    expect_dropped(s, (struct guest_buf[]){{ram_hole(), 0, false}}, 1);
    expect_tx(1, s, 100, 2, 1);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* A frame that ends at region 0's last byte behind a header at bank 1's
 * first byte, and one that starts at the tail region's first byte: both
 * ordinary frames. */
START_TEST(tx_buffers_at_region_edges_are_sent)
{
    struct sim_ram_region r0, tail, bank1;
    uint64_t end;
    int s = start_on_tap("", BASE_FEATURES);

    r0 = sim_ram_region(h.sim, 0);
    tail = sim_ram_region(h.sim, 1);
    bank1 = sim_ram_region(h.sim, 2);
    end = r0.gpa + r0.size;
    put_tx_frame(bank1.gpa, end - 300, 300, 3);
    expect_sent(s,
                (struct guest_buf[]){{bank1.gpa, HDR_LEN, false},
                                     {end - 300, 300, false}},
                2, end - 300, 300);
    put_tx_frame(end - HDR_LEN, tail.gpa, 64, 4);
    expect_sent(s,
                (struct guest_buf[]){{end - HDR_LEN, HDR_LEN, false},
                                     {tail.gpa, 64, false}},
                2, tail.gpa, 64);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* A header and a frame in `n` buffers: the frame's 1-byte pieces, the
 * last piece the rest. */
static void tx_pieces(struct guest_buf *b, uint64_t hdr, uint64_t f, size_t len,
                      unsigned n)
{
    b[0] = (struct guest_buf){hdr, HDR_LEN, false};
    for (unsigned i = 1; i < n - 1; i++)
        b[i] = (struct guest_buf){f + i - 1, 1, false};
    b[n - 1] = (struct guest_buf){f + n - 2, (uint32_t)(len - (n - 2)), false};
}

/* 64 buffers are what the device takes (Linux's MAX_SKB_FRAGS + 2 fit):
 * the frame leaves; 65 are one too many: completed unused, nothing sent,
 * and the device goes on. */
START_TEST(tx_chain_longer_than_the_device_takes_is_returned_unused)
{
    struct guest_buf b[65];
    int s = start_on_tap("", BASE_FEATURES);
    uint64_t hdr = vdriver_alloc(&d, HDR_LEN, 64);
    uint64_t f = vdriver_alloc(&d, 500, 64);

    put_tx_frame(hdr, f, 500, 5);
    tx_pieces(b, hdr, f, 500, 64);
    expect_sent(s, b, 64, f, 500);
    tx_pieces(b, hdr, f, 500, 65);
    expect_dropped(s, b, 65);
    expect_tx(1, s, 100, 6, 1);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* The header and 65550 bytes (64 KiB behind Ethernet and VLAN headers) is
 * the largest frame: it leaves the tap. One byte more is dropped. */
START_TEST(tx_frame_of_the_largest_size_is_sent_one_byte_more_dropped)
{
    int s = start_on_tap("", BASE_FEATURES);
    uint64_t hdr = vdriver_alloc(&d, HDR_LEN, 64);
    uint64_t f = vdriver_alloc(&d, FRAME_MAX + 1, 64);

    put_tx_frame(hdr, f, FRAME_MAX + 1, 7);
    expect_sent(
        s, (struct guest_buf[]){{hdr, HDR_LEN, false}, {f, FRAME_MAX, false}},
        2, f, FRAME_MAX);
    expect_dropped(
        s,
        (struct guest_buf[]){{hdr, HDR_LEN, false}, {f, FRAME_MAX + 1, false}},
        2);
    expect_tx(1, s, 100, 8, 1);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* Post one receive chain of these buffers on queue 0, its header expected
 * at hdr_gpa; kick. */
static uint16_t rx_post_chain(const struct guest_buf *b, unsigned n,
                              uint64_t hdr_gpa)
{
    uint16_t head = guest_ring_add_chain(&d.ring[0], b, n);

    rx_gpa[0][head] = hdr_gpa;
    guest_ring_publish(&d.ring[0], head);
    vdriver_kick(&d, 0);
    return head;
}

/* Receive buffers at region edges (ending at region 0's last byte,
 * starting at bank 1's first), and one whose header is spread over 1-byte
 * buffers with empty ones between: each frame arrives whole, with its
 * header, num_buffers included, where the buffers are. */
START_TEST(rx_buffers_at_region_edges_or_in_pieces_get_whole_frames)
{
    struct sim_ram_region r0, bank1;
    struct virtio_net_hdr_v1 hdr;
    struct guest_buf b[32];
    uint64_t end, g;
    unsigned n = 0;
    int s = start_on_tap("", BASE_FEATURES); /* no MRG_RXBUF */

    r0 = sim_ram_region(h.sim, 0);
    bank1 = sim_ram_region(h.sim, 2);
    end = r0.gpa + r0.size;
    rx_post_chain((struct guest_buf[]){{end - 1600, 1600, true}}, 1,
                  end - 1600);
    expect_rx(s, 1514, 9, &hdr);
    ck_assert_uint_eq(le16toh(hdr.num_buffers), 1);
    rx_post_chain((struct guest_buf[]){{bank1.gpa, 1600, true}}, 1, bank1.gpa);
    expect_rx(s, 1000, 10, &hdr);
    g = vdriver_alloc(&d, 2048, 64);
    for (unsigned i = 0; i < HDR_LEN; i++) {
        b[n++] = (struct guest_buf){g + i, 1, true};
        b[n++] = (struct guest_buf){ram_hole(), 0, true};
    }
    b[n++] = (struct guest_buf){g + HDR_LEN, 2048 - HDR_LEN, true};
    rx_post_chain(b, n, g);
    memset(guest_at(g, HDR_LEN), 0xee, HDR_LEN);
    expect_rx(s, 700, 11, &hdr);
    ck_assert_uint_eq(le16toh(hdr.num_buffers), 1);
    ck_assert_uint_eq(hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* 32 buffers are what a receive chain may have (Linux's big packets use
 * MAX_SKB_FRAGS + 2): the frame arrives; 33 are one too many, and the
 * chain comes back unused. */
START_TEST(rx_chain_longer_than_the_device_takes_is_returned_unused)
{
    struct virtio_net_hdr_v1 hdr;
    struct guest_buf b[33];
    uint64_t g;
    int s = start_on_tap(",mtu=9000", BASE_FEATURES);

    g = vdriver_alloc(&d, 33 * 64, 64);
    for (unsigned i = 0; i < 33; i++)
        b[i] = (struct guest_buf){g + 64 * i, 64, true};
    expect_used_irq(0, guest_ring_add_chain(&d.ring[0], b, 33), 0);
    rx_post_chain(b, 32, g);
    expect_rx(s, 32 * 64 - HDR_LEN, 12, &hdr);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* Buffers smaller than the header come back unused. Without MRG_RXBUF a
 * frame larger than the one chain posted is dropped and the chain kept for
 * the next; with it, chains of just the header's 12 bytes each take their
 * share of a frame. */
START_TEST(rx_buffers_of_the_header_size_or_less)
{
    struct virtio_net_hdr_v1 hdr;
    uint32_t id, len;
    uint64_t g;
    int s = start_on_tap("", BASE_FEATURES);

    g = vdriver_alloc(&d, 4096, 64);
    expect_used_irq(
        0,
        guest_ring_add_chain(&d.ring[0],
                             (struct guest_buf[]){{g, HDR_LEN - 1, true}}, 1),
        0);
    rx_post_chain((struct guest_buf[]){{g, HDR_LEN + 64, true}}, 1, g);
    send_frame(s, 100, 13);
    usleep(100 * 1000);
    ck_assert_msg(!guest_ring_get_used(&d.ring[0], &id, &len),
                  "a %u-byte cut of a 112-byte frame reached the guest", len);
    expect_rx(s, 64, 14, &hdr);
    harness_stop(&h);

    s = start_on_tap("", BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
    g = vdriver_alloc(&d, 4096, 64);
    for (unsigned i = 0; i < 4; i++)
        rx_post_chain((struct guest_buf[]){{g + 64 * i, HDR_LEN, true}}, 1,
                      g + 64 * i);
    rx_post(0, 1, 2048);
    expect_rx(s, 100, 15, &hdr);
    /* The header alone in the first, 12 bytes in each of three, 64 in the
     * last. */
    ck_assert_uint_eq(le16toh(hdr.num_buffers), 5);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* Publish a control chain of these buffers and kick; it comes back with
 * `want` bytes written and an interrupt. */
static void ctrl_expect(const struct guest_buf *b, unsigned n, uint32_t want)
{
    expect_used_irq(ctrl_queue, guest_ring_add_chain(&d.ring[ctrl_queue], b, n),
                    want);
}

/* A command's bytes at gpa: class, command, then `len` bytes of data. */
static void put_cmd(uint64_t gpa, uint8_t class, uint8_t cmd, const void *data,
                    uint32_t len)
{
    uint8_t *p = guest_at(gpa, 2 + len);

    p[0] = class;
    p[1] = cmd;
    memcpy(p + 2, data, len);
}

/* TABLE_SET whose unicast count times 6 is 2 modulo 2^32, followed by 2
 * bytes and an empty multicast table: sized in 32 bits it would fill the
 * data exactly. VIRTIO_NET_ERR, as for any count the data does not hold,
 * the largest included; then the device takes good commands. */
START_TEST(ctrl_mac_table_counts_that_overflow_get_err)
{
    static const uint32_t counts[] = {0x2aaaaaab, 0x80000000, 0xffffffff};
    uint8_t t[32];

    start_on_tap("", BASE_FEATURES | CTRL_FEATURES);
    for (unsigned i = 0; i < 3; i++) {
        uint32_t len = put_table(t, counts[i], 0);

        len += 2; /* what 6 * 0x2aaaaaab is in 32 bits */
        len += put_table(t + len, 0, 0);
        ck_assert_uint_eq(ctrl_cmd(VIRTIO_NET_CTRL_MAC,
                                   VIRTIO_NET_CTRL_MAC_TABLE_SET, t, len),
                          VIRTIO_NET_ERR);
        len = put_table(t, 0, 0);
        len += put_table(t + len, counts[i], 1);
        ck_assert_uint_eq(ctrl_cmd(VIRTIO_NET_CTRL_MAC,
                                   VIRTIO_NET_CTRL_MAC_TABLE_SET, t, len),
                          VIRTIO_NET_ERR);
    }
    ck_assert_uint_eq(table_set(1, 1, 1, 1, 0), VIRTIO_NET_OK);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* Data in 1-byte buffers: ADDR_SET as header, six 1-byte buffers and the
 * ack is 8 buffers, what the device takes, and sets the MAC; a TABLE_SET
 * with its counts in 1-byte buffers is 11, one chain too long: returned
 * unused, the ack byte untouched, and the device goes on. */
START_TEST(ctrl_data_in_1_byte_buffers)
{
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x0a, 0x0b, 0x0c};
    struct guest_buf b[11];
    uint64_t g;
    uint8_t *ack;

    start_on_tap("", BASE_FEATURES | CTRL_FEATURES);
    g = vdriver_alloc(&d, 64, 8);
    put_cmd(g, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac, 6);
    ack = guest_at(g + 8, 1);
    *ack = 0xa5;
    b[0] = (struct guest_buf){g, 2, false};
    for (unsigned i = 0; i < 6; i++)
        b[1 + i] = (struct guest_buf){g + 2 + i, 1, false};
    b[7] = (struct guest_buf){g + 8, 1, true};
    ctrl_expect(b, 8, 1);
    ck_assert_uint_eq(*ack, VIRTIO_NET_OK);
    for (unsigned i = 0; i < 6; i++)
        ck_assert_uint_eq(config(i, 1), mac[i]);

    put_cmd(g, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET,
            (uint8_t[8]){0}, 8);
    ack = guest_at(g + 10, 1);
    *ack = 0xa5;
    b[0] = (struct guest_buf){g, 2, false};
    for (unsigned i = 0; i < 8; i++)
        b[1 + i] = (struct guest_buf){g + 2 + i, 1, false};
    b[9] = (struct guest_buf){g + 10, 1, true};
    b[10] = (struct guest_buf){g + 11, 1, true};
    ctrl_expect(b, 11, 0);
    ck_assert_uint_eq(*ack, 0xa5);
    ck_assert_uint_eq(table_set(0, 0, 0, 0, 0), VIRTIO_NET_OK);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* The ack as bank 1's first byte, or region 0's last, behind a command
 * split over the end of region 0 and the start of the tail: answered
 * there, nothing written elsewhere. */
START_TEST(ctrl_buffers_at_region_edges_are_served)
{
    struct sim_ram_region r0, tail, bank1;
    uint8_t on = 1, *p;
    uint64_t end;

    start_on_tap("", BASE_FEATURES | CTRL_FEATURES);
    r0 = sim_ram_region(h.sim, 0);
    tail = sim_ram_region(h.sim, 1);
    bank1 = sim_ram_region(h.sim, 2);
    end = r0.gpa + r0.size;
    put_cmd(end - 3, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1);
    *guest_at(bank1.gpa, 1) = 0xa5;
    *guest_at(bank1.gpa + 1, 1) = 0x5a;
    ctrl_expect((struct guest_buf[]){{end - 3, 3, false}, {bank1.gpa, 1, true}},
                2, 1);
    ck_assert_uint_eq(*guest_at(bank1.gpa, 1), VIRTIO_NET_OK);
    ck_assert_uint_eq(*guest_at(bank1.gpa + 1, 1), 0x5a);
    /* Class at region 0's last byte, the rest at the tail's start; the
     * ack region 0's last byte but one. */
    p = guest_at(end - 2, 2);
    p[1] = VIRTIO_NET_CTRL_RX;
    memcpy(guest_at(tail.gpa, 2), (uint8_t[]){VIRTIO_NET_CTRL_RX_ALLMULTI, 1},
           2);
    p[0] = 0xa5;
    ctrl_expect((struct guest_buf[]){{end - 1, 1, false},
                                     {tail.gpa, 2, false},
                                     {end - 2, 1, true}},
                3, 1);
    ck_assert_uint_eq(p[0], VIRTIO_NET_OK);
    ck_assert_uint_eq(p[1], VIRTIO_NET_CTRL_RX);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* Empty buffers anywhere are left out: the ack goes to the first byte
 * the guest gave room for; with only an empty writable buffer there is no
 * room, and the chain comes back with nothing written. */
START_TEST(ctrl_empty_buffers_are_left_out)
{
    uint8_t on = 1, *p;
    uint64_t g;

    start_on_tap("", BASE_FEATURES | CTRL_FEATURES);
    g = vdriver_alloc(&d, 16, 8);
    put_cmd(g, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &on, 1);
    p = guest_at(g, 6);
    p[3] = 0xa5;
    p[4] = 0x5a;
    ctrl_expect((struct guest_buf[]){{ram_hole(), 0, false},
                                     {g, 2, false},
                                     {g + 2, 0, false},
                                     {g + 2, 1, false},
                                     {ram_hole(), 0, true},
                                     {g + 3, 1, true},
                                     {g + 4, 0, true}},
                7, 1);
    ck_assert_uint_eq(p[3], VIRTIO_NET_OK);
    ck_assert_uint_eq(p[4], 0x5a);
    p[3] = 0xa5;
    ctrl_expect((struct guest_buf[]){{g, 3, false}, {g + 3, 0, true}}, 2, 0);
    ck_assert_uint_eq(p[3], 0xa5);
    ctrl_expect((struct guest_buf[]){{g + 3, 0, true}}, 1, 0);
    ck_assert_uint_eq(p[3], 0xa5);
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* A readable buffer after a writable one breaks the ring's rules (VIRTIO
 * 1.2 §2.7.4.2), on any queue: NEEDS_RESET; after a reset the device
 * serves frames and commands again. */
START_TEST(chains_the_wrong_way_round_need_a_reset)
{
    uint64_t g;
    int s = start_on_tap("", BASE_FEATURES | CTRL_FEATURES);

    for (unsigned q = 0; q < 3; q++) {
        unsigned queue = q < 2 ? q : ctrl_queue;
        struct guest_ring *r = &d.ring[queue];

        g = vdriver_alloc(&d, 2048, 64);
        put_cmd(g + 1024, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC,
                &(uint8_t){1}, 1);
        guest_ring_publish(
            r,
            guest_ring_add_chain(
                r, (struct guest_buf[]){{g, 1024, true}, {g + 1024, 3, false}},
                2));
        vdriver_kick(&d, queue);
        ck_assert_msg(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET,
                      "queue %u", queue);
        vdriver_reset(&d);
        ck_assert_int_eq(
            vdriver_probe(&d, NET_ID, BASE_FEATURES | CTRL_FEATURES), 0);
        setup_queues();
        ck_assert_uint_eq(ctrl_cmd(VIRTIO_NET_CTRL_RX,
                                   VIRTIO_NET_CTRL_RX_PROMISC, &(uint8_t){1},
                                   1),
                          VIRTIO_NET_OK);
        expect_tx(1, s, 100, 16 + q, 1);
    }
    rx_post(0, 2, 2048);
    expect_rx(s, 100, 19, &(struct virtio_net_hdr_v1){0});
    expect_healthy();
    harness_stop(&h);
}
END_TEST

/* ---- a second vCPU rewriting the rings ----------------------------------- */


static uint64_t net_rings; /* where the rings go at every bring-up */
static uint64_t net_table, net_tx, net_rx, net_cmd;
static int net_sock;      /* the tap's host side */
static unsigned net_turn; /* which queue the next request is for */

static void net_bring_up(void)
{
    vdriver_reset(&d);
    d.alloc_next = net_rings;
    ck_assert_int_eq(vdriver_probe(&d, NET_ID,
                                   BASE_FEATURES | CTRL_FEATURES |
                                       F(VIRTIO_NET_F_MRG_RXBUF)),
                     0);
    setup_queues();
}

/* A 100-byte frame through an indirect table: used. */
static bool net_tx_request(unsigned ms)
{
    struct guest_buf b[2] = {{net_tx, HDR_LEN, false},
                             {net_tx + HDR_LEN, 100, false}};
    uint16_t head = guest_ring_add_indirect(&d.ring[1], net_table, b, 2);
    uint32_t len;

    memset(vdriver_ptr(&d, net_tx), 0, HDR_LEN);
    make_frame(vdriver_ptr(&d, net_tx + HDR_LEN), 100, guest_mac, 1);
    guest_ring_publish(&d.ring[1], head);
    vdriver_kick(&d, 1);
    return scribble_wait_used(&d, 1, &head, 1, ms, &len) && len == 0;
}

/* A receive buffer, and frames sent until one lands in it (chains the
 * device took before, the scribbler's, get theirs first): its header and
 * the frame. */
static bool net_rx_request(unsigned ms)
{
    struct guest_buf b = {net_rx, 2048, true};
    uint16_t head = guest_ring_add_chain(&d.ring[0], &b, 1);
    uint32_t len;

    guest_ring_publish(&d.ring[0], head);
    vdriver_kick(&d, 0);
    for (unsigned waited = 0; waited < ms; waited += 10) {
        send_frame(net_sock, 100, 2);
        if (scribble_wait_used(&d, 0, &head, 1, 10, &len))
            return len == HDR_LEN + 100;
    }
    return false;
}

/* PROMISC on: VIRTIO_NET_OK. */
static bool net_ctrl_request(unsigned ms)
{
    uint8_t *p = vdriver_ptr(&d, net_cmd);
    struct guest_buf b[2] = {{net_cmd, 3, false}, {net_cmd + 3, 1, true}};
    uint16_t head = guest_ring_add_chain(&d.ring[ctrl_queue], b, 2);
    uint32_t len;

    memcpy(p,
           (uint8_t[]){VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, 1, 0xff},
           4);
    guest_ring_publish(&d.ring[ctrl_queue], head);
    vdriver_kick(&d, ctrl_queue);
    return scribble_wait_used(&d, ctrl_queue, &head, 1, ms, &len) && len == 1 &&
           p[3] == VIRTIO_NET_OK;
}

/* Transmit, receive and control in turn. */
static bool net_request(unsigned ms)
{
    switch (net_turn++ % 3) {
    case 0:
        return net_tx_request(ms);
    case 1:
        return net_rx_request(ms);
    default:
        return net_ctrl_request(ms);
    }
}

/* Another vCPU rewrites descriptors, avail rings and indices and an
 * indirect table of the transmit, receive and control queues, and kicks,
 * while frames and commands are in flight: xvdm answers every access,
 * touches nothing outside guest RAM, either serves or says NEEDS_RESET,
 * and serves after a reset. */
START_TEST(a_vcpu_rewriting_the_rings_under_requests)
{
    const struct scribble_guest g = {
        &d, 3, {1, 0, 2}, net_bring_up, net_request};
    uint32_t seed = scribble_seed();
    const char *why;

    vcpus = 2; /* the scribbler kicks from the second */
    /* RAM mapped (see scribble.h); read by start(), the test runs in a
     * process of its own. */
    unsetenv("XVDM_TEST_GRANTS");
    net_sock = start_on_tap("", BASE_FEATURES);
    net_rings = sim_ram_base(h.sim) + (1 << 20);
    net_bring_up();
    net_table = vdriver_alloc(&d, 2 * 16, 16);
    net_tx = vdriver_alloc(&d, 2048, 64);
    net_rx = vdriver_alloc(&d, 2048, 64);
    net_cmd = vdriver_alloc(&d, 4, 8);
    why = scribble_guest_verdict(&g, seed, net_table, 2 * 16, WAIT_MS);
    ck_assert_msg(!why, "seed %u: %s", seed, why);
    harness_stop(&h);
}
END_TEST

static Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");

    tcase_add_test(tc, probe_offers_default_mac_link_up_mtu_and_offloads);
    tcase_add_test(tc, mac_option_is_what_the_guest_reads);
    tcase_add_test(tc, bad_mac_missing_tap_and_bad_mtu_are_refused_by_name);
    tcase_add_test(tc, features_ok_gives_the_tap_the_offloads_the_guest_took);
    tcase_add_test(tc, offload_without_the_feature_it_needs_is_refused);
    tcase_add_test(tc, guest_frames_of_several_sizes_leave_the_tap_byte_exact);
    tcase_add_test(tc, tap_frames_reach_the_guest_byte_exact_with_a_header);
    tcase_add_test(tc, large_frame_spans_merged_buffers_with_num_buffers);
    tcase_add_test(tc, no_rx_buffers_leaves_frames_queued_and_the_loop_idle);
    tcase_add_test(
        tc, bridge_port_carries_frames_and_partial_checksums_are_completed);
    tcase_add_test(tc,
                   a_tso_frame_from_the_guest_leaves_another_port_segmented);
    tcase_add_test(tc,
                   hostile_tx_chains_are_dropped_and_the_device_keeps_working);
    tcase_add_test(
        tc, hostile_rx_buffers_too_small_or_readable_are_returned_unused);
    tcase_add_test(tc,
                   reset_drops_held_buffers_and_the_device_works_after_reprobe);
    tcase_add_test(
        tc, ctrl_commands_linux_sends_are_accepted_and_addr_set_sets_the_mac);
    tcase_add_test(tc,
                   malformed_ctrl_commands_get_err_and_stay_inside_the_chain);
    tcase_add_test(tc, each_queue_pair_carries_frames_both_ways);
    tcase_add_test(tc, vq_pairs_set_moves_flows_between_one_pair_and_all);
    tcase_add_test(tc, bridge_with_queues_makes_a_multi_queue_vif);
    tcase_add_test(tc, bad_queues_values_are_refused_by_name);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc, tx_empty_buffers_are_left_out_wherever_they_are);
    tcase_add_test(tc, tx_buffers_at_region_edges_are_sent);
    tcase_add_test(tc,
                   tx_chain_longer_than_the_device_takes_is_returned_unused);
    tcase_add_test(tc,
                   tx_frame_of_the_largest_size_is_sent_one_byte_more_dropped);
    tcase_add_test(tc,
                   rx_buffers_at_region_edges_or_in_pieces_get_whole_frames);
    tcase_add_test(tc,
                   rx_chain_longer_than_the_device_takes_is_returned_unused);
    tcase_add_test(tc, rx_buffers_of_the_header_size_or_less);
    tcase_add_test(tc, ctrl_mac_table_counts_that_overflow_get_err);
    tcase_add_test(tc, ctrl_data_in_1_byte_buffers);
    tcase_add_test(tc, ctrl_buffers_at_region_edges_are_served);
    tcase_add_test(tc, ctrl_empty_buffers_are_left_out);
    tcase_add_test(tc, chains_the_wrong_way_round_need_a_reset);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrent");
    tcase_add_test(tc, a_vcpu_rewriting_the_rings_under_requests);
    suite_add_tcase(s, tc);
    return s;
}

/* Exit 77 is automake's SKIP. */
int main(void)
{
    if (access("/dev/net/tun", R_OK | W_OK) != 0 ||
        unshare(CLONE_NEWNET) != 0) {
        printf("test-net: SKIP: needs /dev/net/tun and CAP_NET_ADMIN "
               "(network namespaces, taps): %s\n",
               strerror(errno));
        return 77;
    }
    return check_run_all_modes(net_suite);
}
