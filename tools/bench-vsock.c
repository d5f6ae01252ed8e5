/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock benchmark: one stream's throughput both ways, each against
 * a Unix socket pair used directly, side by side in the same run:
 *   guest -> dom0: a sim guest connected to CID 2 port P sends B bytes in
 *     packets of S payload bytes (header and payload in two descriptors,
 *     as Linux's virtio_transport queues them) as fast as its credit
 *     allows (xvdm gives 64 KiB), kicking when Linux would; xvdm writes
 *     each payload from guest memory into the Unix socket PATH_P it
 *     connected, where one host thread reads S bytes a read and discards
 *     them. Against: one thread writing the same B bytes, S bytes a
 *     write, into one end of an AF_UNIX SOCK_STREAM socket pair, the same
 *     reader on the other end.
 *   dom0 -> guest: a host thread connected to PATH (CONNECT P, OK) writes
 *     B bytes, S bytes a write; xvdm reads them into the guest's receive
 *     buffers (128 posted, of header + S bytes each); the guest takes
 *     each packet, posts its buffer again, kicks once per batch and, as
 *     Linux does, sends a CREDIT_UPDATE once less than 64 KiB of its
 *     256 KiB buf_alloc is left. Against: the same writer into one end of
 *     a socket pair, one thread reading the other end S bytes a read.
 * The guest neither produces nor looks at the payload: its transmit
 * buffers are filled once, as the direct writer's buffer is, and what it
 * receives is counted. Either side copies each byte twice, into the
 * socket and out of it. The clock starts once the connection is up and
 * stops when the last byte is read. xvdm's side runs three threads (the
 * guest, xvdm's loop, the host's) where the direct side runs two. Prints
 * each size's median rate over several rounds with their range, and the
 * ratio xvdm / direct (the median of the rounds' own ratios); each side
 * goes first in half of the rounds.
 *
 *   tools/bench-vsock [--rounds N] [--bytes N]
 */
#define _GNU_SOURCE
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench-median.h"
#include "harness.h"
#include "vsock-guest.h"

#define HDR VSOCK_GUEST_HDR
#define PORT 5000        /* dom0's port, and the guest's listening one */
#define GUEST_PORT 40000 /* the guest's side of its own connection */
/* Linux's defaults: buffer_size, and VIRTIO_VSOCK_MAX_PKT_BUF_SIZE, the
 * room below which its reader tells the peer its credit. */
#define GUEST_BUF_ALLOC (256 * 1024)
#define CREDIT_LOW (64 * 1024)
#define WAIT_MS 10000

static const uint32_t sizes[] = {4096, 65536};
static uint64_t total = 256ULL << 20;
static char dir[64], uds[96];

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- dom0's side, the same against both ---------------------------------- */

/* Move `total` bytes through fd, `chunk` bytes a read or write. 0, or a
 * negative errno (-EIO: the peer closed early). */
static int pump(int fd, uint32_t chunk, bool out)
{
    uint8_t *buf = malloc(chunk);
    uint64_t done = 0;
    int ret = buf ? 0 : -ENOMEM;

    if (buf)
        memset(buf, 0x5a, chunk);
    while (ret == 0 && done < total) {
        size_t n = total - done < chunk ? (size_t)(total - done) : chunk;
        ssize_t r = out ? write(fd, buf, n) : read(fd, buf, n);

        if (r > 0)
            done += (uint64_t)r;
        else if (r == 0)
            ret = -EIO;
        else if (errno != EINTR)
            ret = -errno;
    }
    free(buf);
    return ret;
}

/* One host thread reading or writing a socket; `end`: when it was done. */
struct host {
    pthread_t thread;
    int fd;
    uint32_t chunk;
    bool out;
    int ret;
    double end;
};

static void *host_run(void *arg)
{
    struct host *h = arg;

    h->ret = pump(h->fd, h->chunk, h->out);
    h->end = now();
    return NULL;
}

static int host_start(struct host *h, int fd, uint32_t chunk, bool out)
{
    *h = (struct host){.fd = fd, .chunk = chunk, .out = out};
    return -pthread_create(&h->thread, NULL, host_run, h);
}

/* Wait for the host thread; when `failed`, first wake it from its socket. */
static int host_join(struct host *h, bool failed)
{
    if (failed)
        shutdown(h->fd, SHUT_RDWR);
    pthread_join(h->thread, NULL);
    return h->ret;
}

/* ---- direct: a socket pair ----------------------------------------------- */

/* out: this thread writes and the host thread reads, else the reverse. */
static int direct_rate(uint32_t chunk, bool out, double *rate)
{
    struct host h;
    int sv[2], ret;
    double t0, t1;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return -errno;
    t0 = now();
    ret = host_start(&h, sv[1], chunk, !out);
    if (ret == 0) {
        int joined;

        ret = pump(sv[0], chunk, out);
        t1 = now();
        joined = host_join(&h, ret != 0);
        ret = ret ? ret : joined;
        /* Done when the reader has the last byte. */
        *rate = (double)total / ((out ? h.end : t1) - t0) / 1e6;
    }
    close(sv[0]);
    close(sv[1]);
    return ret;
}

static int direct_tx(uint32_t chunk, double *rate)
{
    return direct_rate(chunk, true, rate);
}

static int direct_rx(uint32_t chunk, double *rate)
{
    return direct_rate(chunk, false, rate);
}

/* ---- xvdm: a sim guest with one stream socket ----------------------------- */

/* The guest and its one socket. */
struct gsock {
    struct vsock_guest g;
    struct vsock_guest_sock sk;
    bool requested; /* xvdm's REQUEST came (sk's ports set) */
    uint64_t rx_bytes;
};

static void guest_send(struct gsock *s, uint16_t op, uint32_t len)
{
    int slot = vsock_guest_tx_slot(&s->g, WAIT_MS);
    struct virtio_vsock_hdr *hh;

    if (slot < 0)
        return; /* the device stopped: the caller's wait times out */
    hh = vdriver_ptr(&s->g.d, s->g.tx_gpa[slot]);
    *hh = vsock_guest_sock_hdr(&s->g, &s->sk, op, len);
    vsock_guest_tx_publish(&s->g, slot, HDR + len, len ? 2 : 1);
}

static void on_packet(void *arg, const uint8_t *p, uint32_t len)
{
    const struct virtio_vsock_hdr *hh = (const void *)p;
    struct gsock *s = arg;
    uint16_t op = le16toh(hh->op);

    if (op == VIRTIO_VSOCK_OP_REQUEST) {
        s->sk.lport = le32toh(hh->dst_port);
        s->sk.rport = le32toh(hh->src_port);
        s->requested = true;
    }
    vsock_guest_sock_take(&s->sk, hh);
    if (op == VIRTIO_VSOCK_OP_RW) {
        /* The reader takes it at once. */
        s->rx_bytes += len - HDR;
        s->sk.fwd_cnt += len - HDR;
    }
}

/* As Linux's rx work: take what came, post the buffers again and kick,
 * give credit when little is left; with `wait`, when nothing came, wait
 * for an interrupt. 0, or -ETIMEDOUT. */
static int guest_poll(struct gsock *s, bool wait)
{
    unsigned n = vsock_guest_rx_drain(&s->g, on_packet, s);

    if (n)
        vdriver_kick_if_needed(&s->g.d, VSOCK_GUEST_RXQ);
    if (GUEST_BUF_ALLOC - (s->sk.fwd_cnt - s->sk.fwd_told) < CREDIT_LOW) {
        guest_send(s, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
        vdriver_kick_if_needed(&s->g.d, VSOCK_GUEST_TXQ);
    }
    vsock_guest_reap_tx(&s->g);
    if (n || !wait)
        return 0;
    return vdriver_wait_irq(&s->g.d, WAIT_MS) < 0 ? -ETIMEDOUT : 0;
}

/* Poll until *flag or s->rst. */
static int guest_wait_for(struct gsock *s, const bool *flag)
{
    int ret = 0;

    while (ret == 0 && !*flag && !s->sk.rst)
        ret = guest_poll(s, true);
    return ret ? ret : s->sk.rst ? -ECONNRESET : 0;
}

/* xvdm with a vsock device on uds, the guest's buffers of header + chunk,
 * its transmit buffers' payload written once. */
static int guest_start(struct harness *h, struct gsock *s, uint32_t chunk)
{
    char spec[128];
    const char *specs[] = {spec};
    int ret;

    snprintf(spec, sizeof(spec), "vsock,uds=%s", uds);
    ret = harness_start(h, specs, 1);
    if (ret)
        return ret;
    *s = (struct gsock){.sk.buf_alloc = GUEST_BUF_ALLOC};
    vsock_guest_init(&s->g, h, HDR + chunk, HDR + chunk);
    s->g.d.bare_kicks = true; /* as Linux kicks */
    for (unsigned i = 0; i < VSOCK_GUEST_RING; i++)
        memset(vdriver_ptr(&s->g.d, s->g.tx_gpa[i] + HDR), 0x5a, chunk);
    ret = vsock_guest_setup(&s->g);
    if (ret)
        harness_stop(h);
    return ret;
}

/* As much of the rest as the credit allows, one kick for all of it. */
static uint64_t guest_send_burst(struct gsock *s, uint32_t chunk,
                                 uint64_t sent)
{
    uint32_t credit = vsock_guest_sock_credit(&s->sk);

    while (credit && sent < total) {
        uint32_t n = chunk < credit ? chunk : credit;

        if (n > total - sent)
            n = (uint32_t)(total - sent);
        guest_send(s, VIRTIO_VSOCK_OP_RW, n);
        s->sk.tx_cnt += n;
        sent += n;
        credit -= n;
    }
    vdriver_kick_if_needed(&s->g.d, VSOCK_GUEST_TXQ);
    return sent;
}

/* dom0's listener at PATH_P goes with its round. */
static void unlink_listener(void)
{
    char path[sizeof(uds) + 16];

    snprintf(path, sizeof(path), "%s_%u", uds, PORT);
    unlink(path);
}

static int xvdm_tx(uint32_t chunk, double *rate)
{
    static struct gsock s;
    struct harness h;
    struct host reader;
    uint64_t sent = 0;
    int lfd, fd = -1, ret = guest_start(&h, &s, chunk);
    double t0;

    if (ret)
        return ret;
    lfd = vsock_dom0_listen(uds, PORT);
    ret = lfd < 0 ? lfd : 0;
    if (ret == 0) {
        s.sk.lport = GUEST_PORT;
        s.sk.rport = PORT;
        guest_send(&s, VIRTIO_VSOCK_OP_REQUEST, 0);
        vdriver_kick(&s.g.d, VSOCK_GUEST_TXQ);
        ret = guest_wait_for(&s, &s.sk.connected);
    }
    /* xvdm connected before it answered: the connection is queued. */
    if (ret == 0 && (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
        ret = -errno;
    t0 = now();
    if (ret == 0)
        ret = host_start(&reader, fd, chunk, false);
    if (ret == 0) {
        int joined;

        while (ret == 0 && (sent = guest_send_burst(&s, chunk, sent)) < total)
            ret = guest_poll(&s, true);
        joined = host_join(&reader, ret != 0);
        ret = ret ? ret : joined;
        *rate = (double)total / (reader.end - t0) / 1e6;
    }
    harness_stop(&h);
    if (fd >= 0)
        close(fd);
    if (lfd >= 0)
        close(lfd);
    unlink_listener();
    return ret;
}

/* dom0's "OK <port>\n" once the guest accepted. */
static int read_ok(int fd)
{
    char line[32];
    size_t n = 0;

    while (n + 1 < sizeof(line) && read(fd, line + n, 1) == 1)
        if (line[n++] == '\n')
            break;
    line[n] = '\0';
    return strncmp(line, "OK ", 3) ? -ECONNREFUSED : 0;
}

static int xvdm_rx(uint32_t chunk, double *rate)
{
    static struct gsock s;
    struct harness h;
    struct host writer;
    int fd, ret = guest_start(&h, &s, chunk);
    double t0;

    if (ret)
        return ret;
    fd = vsock_dom0_connect(uds, PORT, false);
    ret = fd < 0 ? fd : guest_wait_for(&s, &s.requested);
    if (ret == 0) {
        s.sk.connected = true;
        guest_send(&s, VIRTIO_VSOCK_OP_RESPONSE, 0);
        vdriver_kick(&s.g.d, VSOCK_GUEST_TXQ);
        ret = read_ok(fd);
    }
    if (ret == 0) {
        t0 = now();
        ret = host_start(&writer, fd, chunk, true);
    }
    if (ret == 0) {
        int joined;

        while (ret == 0 && s.rx_bytes < total)
            ret = guest_poll(&s, true);
        *rate = (double)total / (now() - t0) / 1e6;
        joined = host_join(&writer, ret != 0);
        ret = ret ? ret : joined;
    }
    harness_stop(&h);
    if (fd >= 0)
        close(fd);
    return ret;
}

/* ---- the report ----------------------------------------------------------- */

/* Round r: xvdm then direct, or (odd r) the reverse. */
static int bench_round(int (*xvdm)(uint32_t, double *),
                       int (*direct)(uint32_t, double *), uint32_t chunk,
                       unsigned r, double *x, double *y)
{
    int ret = r % 2 ? direct(chunk, y) : xvdm(chunk, x);

    if (ret == 0)
        ret = r % 2 ? xvdm(chunk, x) : direct(chunk, y);
    return ret;
}

static int bench_direction(const char *title, int (*xvdm)(uint32_t, double *),
                           int (*direct)(uint32_t, double *), unsigned rounds)
{
    double x[BENCH_ROUNDS_MAX], y[BENCH_ROUNDS_MAX];

    printf("%-20s %9s %13s %11s %13s %6s %9s\n", title, "xvdm MB/s", "range",
           "direct MB/s", "range", "ratio", "range");
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct bench_row row;

        for (unsigned r = 0; r < rounds; r++) {
            int ret = bench_round(xvdm, direct, sizes[i], r, &x[r], &y[r]);

            if (ret) {
                fprintf(stderr, "bench-vsock: %s: %s\n", title,
                        strerror(-ret));
                return ret;
            }
        }
        row = bench_pairs(x, y, rounds);
        printf("%2u KiB packets       %9.0f %6.0f-%-6.0f %11.0f %6.0f-%-6.0f "
               "%6.2f %4.2f-%.2f\n",
               sizes[i] / 1024, row.x, row.x_lo, row.x_hi, row.y, row.y_lo,
               row.y_hi, row.ratio, row.lo, row.hi);
    }
    return 0;
}


int main(int argc, char **argv)
{
    unsigned rounds = 6;
    int ret;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--bytes") == 0)
            total = strtoull(argv[i + 1], NULL, 0);
    }
    if (rounds < 1 || rounds > BENCH_ROUNDS_MAX || total < 1) {
        fprintf(stderr, "bench-vsock: --rounds takes 1..16, --bytes at "
                        "least 1\n");
        return 2;
    }
    snprintf(dir, sizeof(dir), "/tmp/xvdm-bench-vsock-XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench-vsock: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(uds, sizeof(uds), "%s/v", dir);
    /* A socket closed under a writer is an error to report, not a kill. */
    signal(SIGPIPE, SIG_IGN);
    printf("bench-vsock: %llu bytes a round each way, %u rounds, each side "
           "first in half of them\n",
           (unsigned long long)total, rounds);
    ret = bench_direction("guest -> dom0", xvdm_tx, direct_tx, rounds);
    if (ret == 0)
        ret = bench_direction("dom0 -> guest", xvdm_rx, direct_rx, rounds);
    rmdir(dir); /* xvdm removed PATH at its exit */
    return ret ? 1 : 0;
}
