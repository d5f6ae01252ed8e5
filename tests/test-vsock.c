/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock on the simulated hypervisor against real Unix sockets in a
 * temporary directory, with a small vsock driver playing the guest (its
 * sockets, credit and packets as Linux's virtio_transport keeps them):
 * connections both ways, bulk data with checksums, credit stalls and
 * resumes, half-close, reset mid-transfer, many connections, the bound on
 * them, and hostile packets, each answered as the spec says.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check-run.h"
#include "harness.h"
#include "host-path.h"
#include "log-lines.h"
#include "refused-spec.h"
#include "vsock-guest.h"

#define RXQ VSOCK_GUEST_RXQ
#define TXQ VSOCK_GUEST_TXQ
#define EVQ VSOCK_GUEST_EVQ
#define HDR VSOCK_GUEST_HDR
#define RX_BUF (HDR + 4096)
#define PKT_MAX (64 * 1024)
#define HOST_BUF_ALLOC (256 * 1024)
#define GUEST_BUF_ALLOC (256 * 1024)
#define WAIT_MS 5000
#define CONNS 320

static struct harness h;
static struct vsock_guest g;
static char dir[64], uds[96];
static unsigned events_seen;
/* Receive buffers that came back unused (the guest's post g.rx_len). */
static unsigned rx_unused;

/* A guest socket, as Linux's virtio_vsock_sock keeps it. */
struct gsock {
    struct vsock_guest_sock sk;
    bool used, requested;
    bool hold_credit; /* a reader that stopped: no credit updates */
    uint64_t rx_bytes, rx_sum;
};
static struct gsock gs[CONNS];
/* REQUESTs to guest port `listen_port` are accepted (RESPONSE) when
 * guest_accepts, refused (RST) otherwise, or left unanswered. */
static uint32_t listen_port;
static enum { ACCEPT, REFUSE, IGNORE } guest_accepts;
/* Packets of no guest socket: how many, and the last one's header. */
static unsigned stray;
static struct virtio_vsock_hdr stray_hdr;

/* ---- checksums ---------------------------------------------------------- */

static uint64_t sum_add(uint64_t s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s = (s ^ p[i]) * 0x100000001b3ULL;
    return s;
}

#define SUM_INIT 0xcbf29ce484222325ULL

/* Byte i of stream `seed`. */
static uint8_t stream_byte(unsigned seed, uint64_t i)
{
    return (uint8_t)((i * 2654435761U + seed * 97 + (i >> 13)) >> 3);
}

static void stream_fill(uint8_t *p, size_t n, unsigned seed, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        p[i] = stream_byte(seed, off + i);
}

/* ---- the guest's driver ------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* One packet of n bytes (header included) in `pieces` descriptors. */
static void tx_raw(const void *pkt, uint32_t n, unsigned pieces, bool kick)
{
    int slot = vsock_guest_tx_slot(&g, WAIT_MS);

    ck_assert_msg(slot >= 0, "tx queue never drained");
    memcpy(vdriver_ptr(&g.d, g.tx_gpa[slot]), pkt, n);
    vsock_guest_tx_publish(&g, slot, n, pieces);
    if (kick)
        vdriver_kick(&g.d, TXQ);
}

static struct virtio_vsock_hdr hdr_of(uint32_t src, uint32_t dst, uint16_t op,
                                      uint32_t len)
{
    return vsock_guest_hdr(&g, src, dst, op, len);
}

static void send_pkt(struct virtio_vsock_hdr *hh, const void *data,
                     uint32_t len, bool kick)
{
    static uint8_t pkt[HDR + PKT_MAX];

    memcpy(pkt, hh, HDR);
    if (len)
        memcpy(pkt + HDR, data, len);
    tx_raw(pkt, HDR + len, len ? 2 : 1, kick);
}

/* A packet of socket s, with its credit. */
static void gs_send(struct gsock *s, uint16_t op, uint32_t flags,
                    const void *data, uint32_t len, bool kick)
{
    struct virtio_vsock_hdr hh = vsock_guest_sock_hdr(&g, &s->sk, op, len);

    hh.flags = htole32(flags);
    send_pkt(&hh, data, len, kick);
}

static struct gsock *gs_find(uint32_t lport, uint32_t rport)
{
    for (unsigned i = 0; i < CONNS; i++)
        if (gs[i].used && gs[i].sk.lport == lport && gs[i].sk.rport == rport)
            return &gs[i];
    return NULL;
}

static struct gsock *gs_new(uint32_t lport, uint32_t rport)
{
    for (unsigned i = 0; i < CONNS; i++) {
        if (gs[i].used)
            continue;
        gs[i] = (struct gsock){.used = true,
                               .sk = {.lport = lport,
                                      .rport = rport,
                                      .buf_alloc = GUEST_BUF_ALLOC},
                               .rx_sum = SUM_INIT};
        return &gs[i];
    }
    ck_abort_msg("out of guest sockets");
    return NULL;
}

static uint32_t gs_credit(const struct gsock *s)
{
    return vsock_guest_sock_credit(&s->sk);
}

static void guest_request(uint32_t lport, uint32_t rport)
{
    struct virtio_vsock_hdr hh = hdr_of(lport, rport, VIRTIO_VSOCK_OP_REQUEST,
                                        0);

    hh.buf_alloc = htole32(GUEST_BUF_ALLOC);
    send_pkt(&hh, NULL, 0, true);
}

static void on_request(const struct virtio_vsock_hdr *hh)
{
    uint32_t dst = le32toh(hh->dst_port), src = le32toh(hh->src_port);
    struct gsock *s;

    if (dst != listen_port || guest_accepts == IGNORE) {
        stray++;
        stray_hdr = *hh;
        return;
    }
    s = gs_new(dst, src);
    s->requested = true;
    s->sk.peer_buf_alloc = le32toh(hh->buf_alloc);
    if (guest_accepts == ACCEPT) {
        s->sk.connected = true;
        gs_send(s, VIRTIO_VSOCK_OP_RESPONSE, 0, NULL, 0, true);
    } else {
        gs_send(s, VIRTIO_VSOCK_OP_RST, 0, NULL, 0, true);
        s->used = false;
    }
}

static void on_data(struct gsock *s, const uint8_t *p, uint32_t len)
{
    ck_assert_msg(s->sk.connected, "data on a socket not connected");
    ck_assert_uint_le(s->sk.fwd_cnt + len - s->sk.fwd_told, s->sk.buf_alloc);
    s->rx_sum = sum_add(s->rx_sum, p, len);
    s->rx_bytes += len;
    if (s->hold_credit)
        return;
    s->sk.fwd_cnt += len;
    if (s->sk.fwd_cnt - s->sk.fwd_told >= s->sk.buf_alloc / 4)
        gs_send(s, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, true);
}

static void on_packet(void *arg, const uint8_t *p, uint32_t len)
{
    const struct virtio_vsock_hdr *hh = (const void *)p;
    uint16_t op = le16toh(hh->op);
    struct gsock *s;

    if (len == 0) {
        rx_unused++;
        return;
    }
    ck_assert_uint_ge(len, HDR);
    ck_assert_uint_eq(le64toh(hh->src_cid), 2);
    ck_assert_uint_eq(le64toh(hh->dst_cid), g.cid);
    ck_assert_uint_eq(le16toh(hh->type), VIRTIO_VSOCK_TYPE_STREAM);
    ck_assert_uint_eq(len, HDR + le32toh(hh->len));
    if (op == VIRTIO_VSOCK_OP_REQUEST) {
        on_request(hh);
        return;
    }
    s = gs_find(le32toh(hh->dst_port), le32toh(hh->src_port));
    if (!s) {
        stray++;
        stray_hdr = *hh;
        return;
    }
    vsock_guest_sock_take(&s->sk, hh);
    if (op == VIRTIO_VSOCK_OP_RW)
        on_data(s, p + HDR, len - HDR);
}

/* Take what the device put in the receive and event queues, repost the
 * buffers; wait for an interrupt up to ms when nothing was there. */
static void guest_poll(unsigned ms)
{
    uint32_t id, len;
    bool any = vsock_guest_rx_drain(&g, on_packet, NULL) > 0;

    while (guest_ring_get_used(&g.d.ring[EVQ], &id, &len)) {
        uint32_t ev;

        ck_assert_uint_eq(len, 4);
        memcpy(&ev, vdriver_ptr(&g.d, g.ev_gpa[id]), 4);
        ck_assert_uint_eq(le32toh(ev), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
        events_seen++;
        vsock_guest_post(&g, EVQ, g.ev_gpa[id], 8, g.ev_gpa);
        any = true;
    }
    vsock_guest_reap_tx(&g);
    if (any) {
        vdriver_kick(&g.d, RXQ);
        vdriver_kick(&g.d, EVQ);
    } else if (ms) {
        vdriver_wait_irq(&g.d, ms);
    }
}

/* guest_poll until cond() holds; false after ms. */
static bool poll_until(bool (*cond)(void), unsigned ms)
{
    uint64_t t0 = now_ms();

    while (!cond()) {
        if (now_ms() - t0 > ms)
            return false;
        guest_poll(10);
    }
    return true;
}

static void setup_guest(void)
{
    ck_assert_int_eq(vsock_guest_setup(&g), 0);
    ck_assert_uint_eq(g.d.offered & (1ULL << VIRTIO_VSOCK_F_SEQPACKET), 0);
}

/* xvdm with a vsock device of uds=<temp dir>/v plus `extra`. */
/* vsock,uds=DIR/v<extra>; with a console (console,socket=DIR/con) beside
 * it when `console` is set. */
static void start_with(const char *extra, bool console)
{
    char spec[256], con[256];
    const char *specs[] = {spec, con};

    snprintf(dir, sizeof(dir), "/tmp/xvdm-vsock-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(uds, sizeof(uds), "%s/v", dir);
    snprintf(spec, sizeof(spec), "vsock,uds=%s%s", uds, extra);
    snprintf(con, sizeof(con), "console,socket=%s/con", dir);
    memset(gs, 0, sizeof(gs));
    stray = events_seen = rx_unused = 0;
    listen_port = 0;
    ck_assert_int_eq(harness_start(&h, specs, console ? 2 : 1), 0);
    vsock_guest_init(&g, &h, RX_BUF, HDR + PKT_MAX);
    setup_guest();
}

static void start(const char *extra)
{
    start_with(extra, false);
}

/* Stop xvdm and remove the temporary directory with dom0's sockets. */
static void finish(void)
{
    DIR *dp;
    struct dirent *e;
    char path[sizeof(dir) + sizeof(e->d_name) + 1];

    harness_stop(&h);
    dp = opendir(dir);
    ck_assert_ptr_nonnull(dp);
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(dp);
    ck_assert_int_eq(rmdir(dir), 0);
}

static void expect_healthy(void)
{
    ck_assert(!(vdriver_status(&g.d) & VIRTIO_STATUS_NEEDS_RESET));
}

/* ---- dom0's side ---------------------------------------------------------- */

static int host_listen(uint32_t port)
{
    int fd = vsock_dom0_listen(uds, port);

    ck_assert_int_ge(fd, 0);
    return fd;
}

static int host_accept(int lfd)
{
    uint64_t t0 = now_ms();
    int fd;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
        ck_assert_msg(now_ms() - t0 < WAIT_MS, "no connection to accept");
        guest_poll(10);
    }
    return fd;
}

/* A line from fd, guest polled meanwhile; "" at EOF. */
static void host_line(int fd, char *line, size_t cap)
{
    size_t n = 0;
    uint64_t t0 = now_ms();

    while (n + 1 < cap) {
        ssize_t r = read(fd, line + n, 1);

        if (r == 0)
            break;
        if (r < 0) {
            ck_assert_msg(errno == EAGAIN, "read: %s", strerror(errno));
            ck_assert_msg(now_ms() - t0 < WAIT_MS, "no line");
            guest_poll(10);
            continue;
        }
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
}

static int host_connect_raw(void)
{
    int fd = vsock_dom0_connect_raw(uds, true);

    ck_assert_int_ge(fd, 0);
    return fd;
}

static int host_connect(uint32_t port)
{
    int fd = vsock_dom0_connect(uds, port, true);

    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Read until EOF or an error from dom0's side; true when it came within
 * ms: the socket was closed by xvdm. */
static bool host_sees_close(int fd, unsigned ms)
{
    uint64_t t0 = now_ms();
    char buf[4096];

    while (now_ms() - t0 < ms) {
        ssize_t r = read(fd, buf, sizeof(buf));

        if (r == 0 || (r < 0 && errno != EAGAIN))
            return true;
        if (r < 0)
            guest_poll(10);
    }
    return false;
}

/* ---- connections ---------------------------------------------------------- */

static struct gsock *waiting;

static bool waiting_answered(void)
{
    return waiting->sk.connected || waiting->sk.rst;
}

/* The guest connects from lport to host port rport: its socket, answered
 * (connected or reset). */
static struct gsock *guest_connect(uint32_t lport, uint32_t rport)
{
    waiting = gs_new(lport, rport);
    guest_request(lport, rport);
    ck_assert_msg(poll_until(waiting_answered, WAIT_MS),
                  "REQUEST %u -> %u unanswered", lport, rport);
    return waiting;
}

/* dom0 connects to guest port `port`, the guest accepts: dom0's fd (past
 * its OK line) and the guest's socket. */
static int host_to_guest(uint32_t port, struct gsock **s)
{
    char line[64];
    unsigned local;
    int fd;

    listen_port = port;
    guest_accepts = ACCEPT;
    fd = host_connect(port);
    host_line(fd, line, sizeof(line));
    ck_assert_msg(sscanf(line, "OK %u\n", &local) == 1, "got '%s'", line);
    ck_assert_uint_ge(local, 1U << 30);
    *s = gs_find(port, local);
    ck_assert_ptr_nonnull(*s);
    return fd;
}

/* Poll until s has received n bytes (or WAIT_MS passed). */
static void wait_rx(struct gsock *s, uint64_t n)
{
    for (uint64_t t0 = now_ms(); s->rx_bytes < n && now_ms() - t0 < WAIT_MS;)
        guest_poll(10);
    ck_assert_uint_eq(s->rx_bytes, n);
}

/* xvdm started; dom0 listens on `port` (*lfd), the guest connects to it
 * from lport and dom0 accepts (*fd): the guest's socket. */
static struct gsock *start_connected(uint32_t port, uint32_t lport, int *lfd,
                                     int *fd)
{
    struct gsock *s;

    start("");
    *lfd = host_listen(port);
    s = guest_connect(lport, port);
    ck_assert(s->sk.connected && !s->sk.rst);
    *fd = host_accept(*lfd);
    return s;
}

/* ---- configuration -------------------------------------------------------- */

START_TEST(guest_cid_defaults_to_domid_plus_3_and_cid_sets_it)
{
    start("");
    ck_assert_uint_eq(g.cid, 1 + 3);
    finish();
    start(",cid=4294967294");
    ck_assert_uint_eq(g.cid, 4294967294ULL);
    finish();
}
END_TEST

/* xvdm does not start with `spec`, and says why naming `value`. */
static void expect_refused(const char *spec, const char *value)
{
    expect_spec_refused(spec, value);
}

START_TEST(reserved_cids_bad_uds_and_max_conns_are_refused_by_name)
{
    expect_refused("vsock,uds=/tmp/xvdm-vsock-x,cid=0", "cid=0");
    expect_refused("vsock,uds=/tmp/xvdm-vsock-x,cid=1", "cid=1");
    expect_refused("vsock,uds=/tmp/xvdm-vsock-x,cid=2", "cid=2");
    expect_refused("vsock,uds=/tmp/xvdm-vsock-x,cid=4294967295",
                   "cid=4294967295");
    expect_refused("vsock,cid=5", "uds=''");
    expect_refused("vsock,uds=/tmp/xvdm-vsock-x,max-conns=0", "max-conns");
}
END_TEST

/* Under --chroot DIR the instance connects to dom0's sockets once inside
 * DIR: a uds= outside DIR (or leaving it by "..") is refused naming it,
 * one inside still reaches the guest's PATH_P after the chroot. (The test
 * chroots into /tmp, where start() makes the socket directory, and
 * escapes back to clean up.) */
START_TEST(under_chroot_a_uds_inside_the_directory_still_reaches_path_p)
{
    char buf[8];
    struct gsock *s;
    int root_fd, lfd, fd;

    host_path_set_root("/srv/xvdm-jail");
    expect_refused("vsock,uds=/tmp/xvdm-vsock-x", "uds='/tmp/xvdm-vsock-x'");
    expect_refused("vsock,uds=/srv/xvdm-jail/../../tmp/xvdm-vsock-x",
                   "uds='/srv/xvdm-jail/../../tmp/xvdm-vsock-x' is outside");
    host_path_set_root("/tmp");
    start("");
    lfd = host_listen(1234);
    root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(root_fd, 0);
    ck_assert_int_eq(chroot("/tmp"), 0);
    ck_assert_int_eq(chdir("/"), 0);
    host_path_root_entered();
    s = guest_connect(40000, 1234);
    ck_assert_msg(s->sk.connected && !s->sk.rst, "the guest's connect was reset");
    fd = host_accept(lfd);
    gs_send(s, VIRTIO_VSOCK_OP_RW, 0, "jail", 4, true);
    host_line(fd, buf, 5);
    ck_assert_str_eq(buf, "jail");
    close(fd);
    close(lfd);
    ck_assert_int_eq(fchdir(root_fd), 0);
    ck_assert_int_eq(chroot("."), 0);
    close(root_fd);
    host_path_set_root(NULL);
    finish();
}
END_TEST

/* ---- both ways ------------------------------------------------------------ */

static bool stray_seen(void)
{
    return stray > 0;
}

START_TEST(guest_connects_to_port_p_through_uds_p_and_data_flows)
{
    char buf[16];
    struct gsock *s;
    int lfd, fd;

    s = start_connected(1234, 40000, &lfd, &fd);
    ck_assert_uint_eq(s->sk.peer_buf_alloc, HOST_BUF_ALLOC);
    gs_send(s, VIRTIO_VSOCK_OP_RW, 0, "hello", 5, true);
    host_line(fd, buf, 6);
    ck_assert_str_eq(buf, "hello");
    ck_assert_int_eq(write(fd, "world", 5), 5);
    wait_rx(s, 5);
    ck_assert_uint_eq(s->rx_sum, sum_add(SUM_INIT, (const uint8_t *)"world", 5));
    /* No one listens on port 99: RST. */
    s = guest_connect(40001, 99);
    ck_assert(s->sk.rst && !s->sk.connected);
    expect_healthy();
    close(fd);
    close(lfd);
    finish();
}
END_TEST

START_TEST(dom0_connect_line_reaches_the_guest_port_and_gets_ok)
{
    char buf[16];
    struct gsock *s;
    int fd = -1;

    start("");
    fd = host_to_guest(5000, &s);
    ck_assert(s->sk.connected);
    ck_assert_int_eq(write(fd, "ping", 4), 4);
    wait_rx(s, 4);
    ck_assert_uint_eq(s->rx_sum, sum_add(SUM_INIT, (const uint8_t *)"ping", 4));
    gs_send(s, VIRTIO_VSOCK_OP_RW, 0, "pong\n", 5, true);
    host_line(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "pong\n");
    close(fd);
    finish();
}
END_TEST

START_TEST(dom0_connect_refused_garbage_or_unanswered_gets_error_and_close)
{
    char line[64];
    int fd;

    start("");
    listen_port = 6000;
    guest_accepts = REFUSE;
    fd = host_connect(6000);
    host_line(fd, line, sizeof(line));
    ck_assert_msg(!strncmp(line, "ERROR", 5), "got '%s'", line);
    ck_assert(host_sees_close(fd, WAIT_MS));
    close(fd);

    fd = host_connect_raw();
    ck_assert_int_eq(write(fd, "HELLO 6000\n", 11), 11);
    host_line(fd, line, sizeof(line));
    ck_assert_msg(!strncmp(line, "ERROR", 5), "got '%s'", line);
    ck_assert(host_sees_close(fd, WAIT_MS));
    close(fd);

    /* The guest never answers: after 2 s an error, and the guest's REQUEST
     * is reset. */
    guest_accepts = IGNORE;
    stray = 0;
    fd = host_connect(6001);
    host_line(fd, line, sizeof(line));
    ck_assert_msg(!strncmp(line, "ERROR", 5), "got '%s'", line);
    ck_assert(host_sees_close(fd, WAIT_MS));
    ck_assert(poll_until(stray_seen, WAIT_MS));
    close(fd);
    expect_healthy();
    finish();
}
END_TEST

/* ---- bulk and credit ------------------------------------------------------ */

#define BULK (4u << 20)

/* The guest sends `total` bytes of stream `seed` on s as credit allows;
 * dom0 reads them from fd, and writes `total` bytes of stream seed + 1
 * that the guest receives; both checksums are compared. */
static void bulk_both_ways(struct gsock *s, int fd, uint32_t total,
                           unsigned seed)
{
    static uint8_t chunk[PKT_MAX], rbuf[65536];
    uint64_t sent = 0, got = 0, wrote = 0, t0 = now_ms();
    uint64_t host_sum = SUM_INIT, want = SUM_INIT;

    while (got < total || s->rx_bytes < total) {
        uint32_t n = gs_credit(s);
        ssize_t r;

        ck_assert_msg(now_ms() - t0 < 60000, "stuck: sent %llu got %llu "
                      "rx %llu", (unsigned long long)sent,
                      (unsigned long long)got,
                      (unsigned long long)s->rx_bytes);
        if (n > PKT_MAX)
            n = PKT_MAX;
        if (n > total - sent)
            n = (uint32_t)(total - sent);
        if (n) {
            stream_fill(chunk, n, seed, sent);
            s->sk.tx_cnt += n;
            gs_send(s, VIRTIO_VSOCK_OP_RW, 0, chunk, n, true);
            sent += n;
        }
        while ((r = read(fd, rbuf, sizeof(rbuf))) > 0) {
            host_sum = sum_add(host_sum, rbuf, (size_t)r);
            got += (uint64_t)r;
        }
        if (wrote < total) {
            size_t m = total - wrote < sizeof(rbuf) ? total - wrote
                                                    : sizeof(rbuf);

            stream_fill(rbuf, m, seed + 1, wrote);
            r = write(fd, rbuf, m);
            if (r > 0)
                wrote += (uint64_t)r;
        }
        guest_poll(n ? 0 : 5);
    }
    for (uint64_t i = 0; i < total; i++) {
        uint8_t b = stream_byte(seed, i);

        want = sum_add(want, &b, 1);
    }
    ck_assert_uint_eq(got, total);
    ck_assert_uint_eq(host_sum, want);
    want = SUM_INIT;
    for (uint64_t i = 0; i < total; i++) {
        uint8_t b = stream_byte(seed + 1, i);

        want = sum_add(want, &b, 1);
    }
    ck_assert_uint_eq(s->rx_bytes, total);
    ck_assert_uint_eq(s->rx_sum, want);
}

START_TEST(four_mib_each_way_arrive_with_matching_checksums)
{
    struct gsock *s;
    int lfd, fd;

    s = start_connected(7000, 41000, &lfd, &fd);
    bulk_both_ways(s, fd, BULK, 1);
    close(fd);
    fd = host_to_guest(7001, &s);
    bulk_both_ways(s, fd, BULK, 3);
    expect_healthy();
    close(fd);
    close(lfd);
    finish();
}
END_TEST

static struct gsock *watched;

static bool watched_has_credit(void)
{
    return gs_credit(watched) > 0;
}

/* The guest sends while it has credit; dom0 does not read. */
static uint64_t send_until_stalled(struct gsock *s, unsigned seed,
                                   uint64_t sent)
{
    static uint8_t chunk[PKT_MAX];
    uint64_t quiet = now_ms();

    while (now_ms() - quiet < 300) {
        uint32_t n = gs_credit(s);

        /* What xvdm holds for us is never more than it gave. */
        ck_assert_uint_le(s->sk.tx_cnt - s->sk.peer_fwd_cnt, HOST_BUF_ALLOC);
        if (n > PKT_MAX)
            n = PKT_MAX;
        if (n == 0) {
            guest_poll(10);
            continue;
        }
        stream_fill(chunk, n, seed, sent);
        s->sk.tx_cnt += n;
        gs_send(s, VIRTIO_VSOCK_OP_RW, 0, chunk, n, true);
        sent += n;
        quiet = now_ms();
    }
    return sent;
}

START_TEST(credit_stalls_a_writer_whose_reader_stops_and_resumes_after)
{
    static uint8_t buf[65536];
    uint64_t sent, got = 0, sum = SUM_INIT, want = SUM_INIT, t0;
    struct gsock *s;
    int lfd, fd;
    ssize_t r;

    s = start_connected(7100, 41100, &lfd, &fd);
    /* guest -> dom0: the socket's buffer, then buf_alloc, then stall. */
    sent = send_until_stalled(s, 5, 0);
    ck_assert_uint_eq(gs_credit(s), 0);
    ck_assert_uint_lt(sent, 8u << 20);
    for (t0 = now_ms(); got < sent && now_ms() - t0 < WAIT_MS;) {
        while ((r = read(fd, buf, sizeof(buf))) > 0) {
            sum = sum_add(sum, buf, (size_t)r);
            got += (uint64_t)r;
        }
        guest_poll(5);
    }
    ck_assert_uint_eq(got, sent);
    /* The reader came back: credit does too. */
    watched = s;
    ck_assert(poll_until(watched_has_credit, WAIT_MS));
    for (uint64_t i = 0; i < sent; i++) {
        uint8_t b = stream_byte(5, i);

        want = sum_add(want, &b, 1);
    }
    ck_assert_uint_eq(sum, want);

    /* dom0 -> guest: a guest that stops reading gets its buf_alloc and
     * no byte more, and the rest once it gives credit again. */
    s->hold_credit = true;
    s->sk.buf_alloc = 6000; /* one packet and part of the next */
    gs_send(s, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, true);
    stream_fill(buf, 65536, 6, 0);
    ck_assert_int_eq(write(fd, buf, 65536), 65536);
    for (t0 = now_ms(); now_ms() - t0 < 300;)
        guest_poll(10);
    ck_assert_uint_eq(s->rx_bytes, 6000);
    s->hold_credit = false;
    s->sk.fwd_cnt += 6000;
    s->sk.buf_alloc = GUEST_BUF_ALLOC;
    gs_send(s, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, true);
    wait_rx(s, 65536);
    ck_assert_uint_eq(s->rx_sum, sum_add(SUM_INIT, buf, 65536));
    expect_healthy();
    close(fd);
    close(lfd);
    finish();
}
END_TEST

/* ---- shutdown, reset, many ------------------------------------------------ */

static bool watched_shut(void)
{
    return watched->sk.shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND;
}

static bool watched_rst(void)
{
    return watched->sk.rst;
}

START_TEST(shutdown_send_half_closes_and_both_ways_ends_with_rst)
{
    char buf[16];
    struct gsock *s;
    int lfd, fd;

    s = start_connected(7200, 41200, &lfd, &fd);
    s->sk.tx_cnt += 3;
    gs_send(s, VIRTIO_VSOCK_OP_RW, 0, "abc", 3, false);
    gs_send(s, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND, NULL, 0,
            true);
    /* dom0 reads the data, then EOF; and may still write. */
    host_line(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "abc");
    ck_assert_int_eq(write(fd, "xyz", 3), 3);
    wait_rx(s, 3);
    /* dom0 shuts its side: the guest gets SHUTDOWN(SEND) after the data. */
    ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
    watched = s;
    ck_assert(poll_until(watched_shut, WAIT_MS));
    ck_assert(!s->sk.rst);
    /* The guest closes: the RST that ends it, and dom0's socket closed. */
    gs_send(s, VIRTIO_VSOCK_OP_SHUTDOWN,
            VIRTIO_VSOCK_SHUTDOWN_SEND | VIRTIO_VSOCK_SHUTDOWN_RCV, NULL, 0,
            true);
    ck_assert(poll_until(watched_rst, WAIT_MS));
    expect_healthy();
    close(fd);
    close(lfd);
    finish();
}
END_TEST

static bool transport_reset_seen(void)
{
    return events_seen > 0;
}

START_TEST(reset_mid_transfer_closes_dom0_sockets_and_announces_it)
{
    static uint8_t chunk[PKT_MAX];
    struct gsock *s, *t;
    int lfd, fd, fd2;

    start("");
    lfd = host_listen(7300);
    s = guest_connect(41300, 7300);
    fd = host_accept(lfd);
    fd2 = host_to_guest(7301, &t);
    stream_fill(chunk, PKT_MAX, 7, 0);
    s->sk.tx_cnt += PKT_MAX;
    gs_send(s, VIRTIO_VSOCK_OP_RW, 0, chunk, PKT_MAX, true);
    ck_assert_int_eq(write(fd2, chunk, 1000), 1000);
    vdriver_reset(&g.d);
    ck_assert(host_sees_close(fd, WAIT_MS));
    ck_assert(host_sees_close(fd2, WAIT_MS));
    ck_assert_uint_eq(events_seen, 0);
    memset(gs, 0, sizeof(gs));
    setup_guest();
    ck_assert(poll_until(transport_reset_seen, WAIT_MS));
    ck_assert_uint_eq(events_seen, 1);
    /* And it serves again. */
    s = guest_connect(41301, 7300);
    ck_assert(s->sk.connected);
    expect_healthy();
    close(fd);
    close(fd2);
    close(lfd);
    finish();
}
END_TEST

START_TEST(sixty_four_connections_at_once_each_carry_their_own_data)
{
    static uint8_t buf[4096];
    struct gsock *s[64];
    int fd[64], lfd;

    start("");
    lfd = host_listen(7400);
    for (unsigned i = 0; i < 64; i++) {
        s[i] = gs_new(42000 + i, 7400);
        guest_request(42000 + i, 7400);
    }
    for (unsigned i = 0; i < 64; i++) {
        waiting = s[i];
        ck_assert(poll_until(waiting_answered, WAIT_MS));
        ck_assert(s[i]->sk.connected);
        fd[i] = host_accept(lfd);
    }
    /* Each guest socket sends its port; dom0 answers each on the socket
     * that brought it with 4 KiB of a stream of its own. */
    for (unsigned i = 0; i < 64; i++) {
        char port[8];

        snprintf(port, sizeof(port), "%05u\n", s[i]->sk.lport);
        s[i]->sk.tx_cnt += 6;
        gs_send(s[i], VIRTIO_VSOCK_OP_RW, 0, port, 6, i == 63);
    }
    for (unsigned i = 0; i < 64; i++) {
        char line[8];
        unsigned port;

        host_line(fd[i], line, sizeof(line));
        ck_assert_int_eq(sscanf(line, "%u", &port), 1);
        stream_fill(buf, sizeof(buf), port, 0);
        ck_assert_int_eq(write(fd[i], buf, sizeof(buf)), (ssize_t)sizeof(buf));
    }
    for (unsigned i = 0; i < 64; i++) {
        wait_rx(s[i], sizeof(buf));
        stream_fill(buf, sizeof(buf), s[i]->sk.lport, 0);
        ck_assert_uint_eq(s[i]->rx_sum, sum_add(SUM_INIT, buf, sizeof(buf)));
    }
    for (unsigned i = 0; i < 64; i++)
        close(fd[i]);
    expect_healthy();
    close(lfd);
    finish();
}
END_TEST

static int flood_lfd;

static void flood_requests(void)
{
    for (unsigned i = 0; i < 4; i++) {
        struct gsock *s = guest_connect(43000 + i, 7500);

        ck_assert(s->sk.connected);
        close(host_accept(flood_lfd));
    }
    for (unsigned i = 4; i < 8; i++) {
        struct gsock *s = guest_connect(43000 + i, 7500);

        ck_assert(s->sk.rst && !s->sk.connected);
    }
}

START_TEST(requests_past_max_conns_get_rst_and_a_log_line)
{
    start(",max-conns=4");
    flood_lfd = host_listen(7500);
    ck_assert_uint_ge(log_lines_during(flood_requests, "max-conns"), 1);
    expect_healthy();
    close(flood_lfd);
    finish();
}
END_TEST

/* ---- hostile packets ------------------------------------------------------ */

/* A hostile packet, then the device still connects. */
static void expect_device_works(uint32_t lport)
{
    int lfd = host_listen(lport);
    struct gsock *s = guest_connect(lport, lport);

    ck_assert(s->sk.connected);
    close(lfd);
    expect_healthy();
}

static bool rst_to(uint32_t port)
{
    return stray && le16toh(stray_hdr.op) == VIRTIO_VSOCK_OP_RST &&
           le32toh(stray_hdr.dst_port) == port;
}

static uint32_t hostile_port;

static bool hostile_rst_seen(void)
{
    return rst_to(hostile_port);
}

/* Send hh (+ len bytes, the chain holding chain_len of them); expect an
 * RST to its source port, or silence. */
static void hostile(struct virtio_vsock_hdr hh, int chain_len, bool rst)
{
    static uint8_t pkt[HDR + PKT_MAX + 16];

    stray = 0;
    hostile_port = le32toh(hh.src_port);
    memcpy(pkt, &hh, HDR);
    tx_raw(pkt, (uint32_t)((int)HDR + chain_len), 1, true);
    if (rst) {
        ck_assert_msg(poll_until(hostile_rst_seen, WAIT_MS),
                      "no RST for op %u", le16toh(hh.op));
    } else {
        for (uint64_t t0 = now_ms(); now_ms() - t0 < 100;)
            guest_poll(10);
        ck_assert_uint_eq(stray, 0);
    }
}

static void hostile_packets(void)
{
    struct virtio_vsock_hdr hh;

    hh = hdr_of(50000, 9000, VIRTIO_VSOCK_OP_REQUEST, 0);
    hh.src_cid = htole64(g.cid + 1);
    hostile(hh, 0, false);
    hh = hdr_of(50001, 9000, VIRTIO_VSOCK_OP_REQUEST, 0);
    hh.dst_cid = htole64(7);
    hostile(hh, 0, false);
    /* len beyond the chain; len past a packet's largest. */
    hostile(hdr_of(50002, 9000, VIRTIO_VSOCK_OP_RW, 100), 50, true);
    hostile(hdr_of(50003, 9000, VIRTIO_VSOCK_OP_RW, PKT_MAX + 1), PKT_MAX + 1,
            true);
    hostile(hdr_of(50004, 9000, 99, 0), 0, true);
    hh = hdr_of(50005, 9000, VIRTIO_VSOCK_OP_REQUEST, 0);
    hh.type = htole16(VIRTIO_VSOCK_TYPE_SEQPACKET);
    hostile(hh, 0, true);
    /* Data before connect. */
    hostile(hdr_of(50006, 9000, VIRTIO_VSOCK_OP_RW, 10), 10, true);
    /* An RST of no connection gets no answer. */
    hostile(hdr_of(50007, 9000, VIRTIO_VSOCK_OP_RST, 0), 0, false);
    /* Shorter than a header. */
    hostile(hdr_of(50008, 9000, VIRTIO_VSOCK_OP_REQUEST, 0), -20, false);
}

START_TEST(hostile_packets_get_rst_or_are_dropped_with_a_log_line)
{
    start("");
    ck_assert_uint_ge(log_lines_during(hostile_packets, "vsock0"), 1);
    expect_device_works(9100);
    finish();
}
END_TEST

START_TEST(credit_overflow_and_data_past_credit_reset_the_connection)
{
    static uint8_t chunk[PKT_MAX];
    struct gsock *s;
    int lfd, fd;

    start("");
    lfd = host_listen(9200);
    /* fwd_cnt claiming bytes never sent. */
    s = guest_connect(51000, 9200);
    fd = host_accept(lfd);
    s->sk.fwd_cnt = 0;
    s->sk.fwd_told = 0;
    {
        struct virtio_vsock_hdr hh =
            hdr_of(51000, 9200, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);

        hh.buf_alloc = htole32(GUEST_BUF_ALLOC);
        hh.fwd_cnt = htole32(1000); /* xvdm sent 0 bytes */
        send_pkt(&hh, NULL, 0, true);
    }
    watched = s;
    ck_assert(poll_until(watched_rst, WAIT_MS));
    ck_assert(host_sees_close(fd, WAIT_MS));
    close(fd);
    /* One packet of 64 KiB past the credit given, in one kick: RST. */
    s = guest_connect(51001, 9200);
    fd = host_accept(lfd);
    s->sk.tx_cnt += (HOST_BUF_ALLOC / PKT_MAX + 1) * PKT_MAX;
    for (unsigned i = 0; i <= HOST_BUF_ALLOC / PKT_MAX; i++)
        gs_send(s, VIRTIO_VSOCK_OP_RW, 0, chunk, PKT_MAX,
                i == HOST_BUF_ALLOC / PKT_MAX);
    watched = s;
    ck_assert(poll_until(watched_rst, WAIT_MS));
    ck_assert(host_sees_close(fd, WAIT_MS));
    close(fd);
    expect_device_works(9201);
    close(lfd);
    finish();
}
END_TEST

/* dom0 clients whose line holds a NUL byte: an error line and a close,
 * and the listener goes on serving. */
START_TEST(dom0_lines_with_a_nul_byte_get_error_and_close)
{
    static const char *const lines[] = {"\0\n", "CONNECT 5\0\n",
                                        "CON\0NECT 5\n"};
    static const size_t lens[] = {2, 11, 11};
    char line[64];
    struct gsock *s;
    int fd;

    start("");
    for (unsigned i = 0; i < 3; i++) {
        fd = host_connect_raw();
        ck_assert_int_eq(write(fd, lines[i], lens[i]), (ssize_t)lens[i]);
        host_line(fd, line, sizeof(line));
        ck_assert_msg(!strncmp(line, "ERROR", 5), "got '%s'", line);
        ck_assert(host_sees_close(fd, WAIT_MS));
        close(fd);
    }
    fd = host_to_guest(9300, &s);
    ck_assert(s->sk.connected);
    expect_healthy();
    close(fd);
    finish();
}
END_TEST

/* Receive buffers with room for a header only: such a buffer cannot take
 * dom0's data, and the stream must not end for it (a read of 0 bytes is
 * not dom0's EOF). Once the guest posts real buffers again, all of it
 * arrives. */
START_TEST(header_only_receive_buffers_do_not_end_the_stream)
{
    static uint8_t buf[65536];
    const uint64_t total = 1u << 20;
    uint64_t wrote = 0, t0;
    struct gsock *s;
    int lfd, fd;

    s = start_connected(9400, 52000, &lfd, &fd);
    stream_fill(buf, sizeof(buf), 9, 0);
    g.rx_len = HDR; /* from now on, as each real buffer is used */
    for (t0 = now_ms(); !s->sk.shutdown && !rx_unused && wrote < total &&
                        now_ms() - t0 < WAIT_MS;) {
        ssize_t r = write(fd, buf, sizeof(buf));

        wrote += r > 0 ? (uint64_t)r : 0;
        guest_poll(5);
    }
    ck_assert_msg(!s->sk.shutdown, "a header-only buffer ended the stream");
    ck_assert_uint_gt(rx_unused, 0);
    g.rx_len = RX_BUF;
    for (t0 = now_ms(); s->rx_bytes < total && now_ms() - t0 < WAIT_MS;) {
        ssize_t r = wrote < total ? write(fd, buf, total - wrote < sizeof(buf)
                                                       ? total - wrote
                                                       : sizeof(buf))
                                  : 0;

        wrote += r > 0 ? (uint64_t)r : 0;
        guest_poll(5);
    }
    ck_assert_uint_eq(s->rx_bytes, total);
    ck_assert(!s->sk.shutdown && !s->sk.rst);
    expect_healthy();
    close(fd);
    close(lfd);
    finish();
}
END_TEST

/* max-conns=300: more connections than the instance's loop can watch
 * sockets for (256, shared with its other fds). Each connection the
 * guest is given carries dom0's data; one that cannot be watched is
 * refused with RST, not left connected and deaf. */
START_TEST(connections_past_what_the_loop_watches_are_refused_not_deaf)
{
    static int fd[300];
    unsigned connected = 0, refused = 0;
    struct gsock *s[300];
    int lfd;

    start(",max-conns=300");
    lfd = host_listen(9500);
    for (unsigned i = 0; i < 300; i++) {
        s[i] = guest_connect(53000 + i, 9500);
        fd[i] = s[i]->sk.connected ? host_accept(lfd) : -1;
        connected += s[i]->sk.connected;
        refused += s[i]->sk.rst;
    }
    ck_assert_uint_eq(connected + refused, 300);
    ck_assert_uint_gt(connected, 200);
    for (unsigned i = 0; i < 300; i++)
        if (fd[i] >= 0)
            ck_assert_int_eq(write(fd[i], "x", 1), 1);
    for (unsigned i = 0; i < 300; i++) {
        if (fd[i] < 0)
            continue;
        for (uint64_t t0 = now_ms(); !s[i]->rx_bytes && now_ms() - t0 < 2000;)
            guest_poll(5);
        ck_assert_msg(s[i]->rx_bytes == 1, "connection %u of %u is deaf",
                      i + 1, connected);
    }
    /* A dom0 client meanwhile is closed; once a connection ends, the next
     * one is served. */
    fd[0] = host_connect_raw();
    ck_assert(host_sees_close(fd[0], WAIT_MS));
    close(fd[0]);
    gs_send(s[0], VIRTIO_VSOCK_OP_RST, 0, NULL, 0, true);
    fd[0] = host_to_guest(9501, &s[0]);
    for (unsigned i = 0; i < 300; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    expect_healthy();
    close(lfd);
    finish();
}
END_TEST

/* A guest opening connections until the loop refuses more leaves its
 * other devices their watches: the console's next client is served, not
 * dropped for want of one. */
START_TEST(connections_filling_the_loop_leave_sibling_devices_their_watches)
{
    static int fd[300];
    char con[sizeof(dir) + 8];
    unsigned refused = 0;
    struct gsock *s;
    int lfd, cfd;

    start_with(",max-conns=300", true);
    lfd = host_listen(9500);
    for (unsigned i = 0; i < 300; i++) {
        s = guest_connect(53000 + i, 9500);
        fd[i] = s->sk.connected ? host_accept(lfd) : -1;
        refused += s->sk.rst;
    }
    ck_assert_uint_gt(refused, 0);
    snprintf(con, sizeof(con), "%s/con", dir);
    cfd = vsock_dom0_connect_raw(con, true);
    ck_assert_int_ge(cfd, 0);
    ck_assert_msg(!host_sees_close(cfd, 500),
                  "the console's client was dropped");
    close(cfd);
    for (unsigned i = 0; i < 300; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    close(lfd);
    finish();
}
END_TEST

static Suite *vsock_suite(void)
{
    Suite *s = suite_create("vsock");
    TCase *tc = tcase_create("vsock");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, guest_cid_defaults_to_domid_plus_3_and_cid_sets_it);
    tcase_add_test(tc, reserved_cids_bad_uds_and_max_conns_are_refused_by_name);
    tcase_add_test(tc,
                   under_chroot_a_uds_inside_the_directory_still_reaches_path_p);
    tcase_add_test(tc, guest_connects_to_port_p_through_uds_p_and_data_flows);
    tcase_add_test(tc, dom0_connect_line_reaches_the_guest_port_and_gets_ok);
    tcase_add_test(
        tc, dom0_connect_refused_garbage_or_unanswered_gets_error_and_close);
    tcase_add_test(tc, four_mib_each_way_arrive_with_matching_checksums);
    tcase_add_test(tc,
                   credit_stalls_a_writer_whose_reader_stops_and_resumes_after);
    tcase_add_test(tc, shutdown_send_half_closes_and_both_ways_ends_with_rst);
    tcase_add_test(tc, reset_mid_transfer_closes_dom0_sockets_and_announces_it);
    tcase_add_test(tc, sixty_four_connections_at_once_each_carry_their_own_data);
    tcase_add_test(tc, requests_past_max_conns_get_rst_and_a_log_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hostile_packets_get_rst_or_are_dropped_with_a_log_line);
    tcase_add_test(tc,
                   credit_overflow_and_data_past_credit_reset_the_connection);
    tcase_add_test(tc, dom0_lines_with_a_nul_byte_get_error_and_close);
    tcase_add_test(tc, header_only_receive_buffers_do_not_end_the_stream);
    tcase_add_test(tc,
                   connections_past_what_the_loop_watches_are_refused_not_deaf);
    tcase_add_test(
        tc, connections_filling_the_loop_leave_sibling_devices_their_watches);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(vsock_suite);
}
