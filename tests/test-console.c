/* SPDX-License-Identifier: MIT */
/*
 * virtio-console on the simulated hypervisor, driven like Linux's
 * virtio_console with one port: bytes go both ways byte-exact over a unix
 * socket and a pty; output with no one reading is kept (the newest 64 KiB)
 * for the next reader without holding the guest up; input waits in the
 * backend while the guest has no receive buffers; buffers the wrong way
 * round are refused without harm; bad options are named.
 */
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_console.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "check-run.h"
#include "harness.h"
#include "scribble.h"
#include "vdriver.h"

#define CONSOLE_ID 3
#define RXQ 0
#define TXQ 1
#define WAIT_MS 5000
#define RING_KEPT (64 * 1024)
#define FEATURES                                                               \
    ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_CONSOLE_F_SIZE))

static struct harness h;
static struct vdriver d;
static uint16_t queue_size = 64; /* what start() sets up */
static unsigned vcpus = 1;        /* the guest's, as start() makes it */
static char dir[64], sock_path[96];
static FILE *log_file;

/* ---- xvdm's log, captured to read what it said ----------------------------
 */

static void capture_log(void)
{
    log_file = tmpfile();
    ck_assert_ptr_nonnull(log_file);
    ck_assert_int_ge(dup2(fileno(log_file), STDERR_FILENO), 0);
}

/* Everything logged so far, NUL-terminated (static storage). */
static const char *log_text(void)
{
    static char text[16384];
    ssize_t n = pread(fileno(log_file), text, sizeof(text) - 1, 0);

    ck_assert_int_ge(n, 0);
    text[n] = '\0';
    return text;
}

static unsigned log_count(const char *needle)
{
    unsigned n = 0;

    for (const char *p = log_text(); (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* ---- the device and its driver ------------------------------------------- */

static void start(const char *spec)
{
    const char *specs[] = {spec};

    ck_assert_int_eq(harness_start_vcpus(&h, specs, 1, vcpus), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 16 << 20);
    ck_assert_int_eq(vdriver_probe(&d, CONSOLE_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, RXQ, queue_size), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, TXQ, queue_size), 0);
    vdriver_driver_ok(&d);
    ck_assert_int_eq(d.io_error, 0);
}

/* sock_path: a fresh directory's "sock". */
static void make_sock_path(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xvdm-console-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
}

static void start_socket(void)
{
    char spec[128];

    make_sock_path();
    snprintf(spec, sizeof(spec), "console,socket=%s", sock_path);
    start(spec);
}

static void stop(void)
{
    harness_stop(&h);
    if (sock_path[0])
        ck_assert_int_ne(access(sock_path, F_OK), 0); /* removed */
    if (dir[0])
        rmdir(dir);
}

/* The next used element of queue q, waiting for the interrupt if need be. */
static void wait_used(unsigned q, uint32_t *id, uint32_t *len)
{
    while (!guest_ring_get_used(&d.ring[q], id, len))
        ck_assert_int_ge(vdriver_wait_irq(&d, WAIT_MS), 0);
}

/* A copy of data in guest RAM. */
static uint64_t guest_copy(const void *data, size_t len)
{
    uint64_t gpa = vdriver_alloc(&d, len, 8);

    memcpy(vdriver_ptr(&d, gpa), data, len);
    return gpa;
}

/* Publish len bytes as one chain of nbufs device-readable buffers, and
 * kick; its head. */
static uint16_t guest_send(const void *data, size_t len, unsigned nbufs)
{
    struct guest_buf b[4];
    uint64_t gpa = guest_copy(data, len);
    uint16_t head;

    for (unsigned i = 0; i < nbufs; i++) {
        size_t from = len * i / nbufs, to = len * (i + 1) / nbufs;

        b[i] = (struct guest_buf){gpa + from, (uint32_t)(to - from), false};
    }
    head = guest_ring_add_chain(&d.ring[TXQ], b, nbufs);
    guest_ring_publish(&d.ring[TXQ], head);
    vdriver_kick(&d, TXQ);
    return head;
}

/* Send, and wait for the chain to complete. */
static void guest_write(const void *data, size_t len, unsigned nbufs)
{
    uint16_t head = guest_send(data, len, nbufs);
    uint32_t id, used;

    wait_used(TXQ, &id, &used);
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(used, 0); /* the device wrote nothing into it */
}

/* Receive buffers as virtio_console posts them, one writable buffer each. */
struct rx_bufs {
    uint64_t gpa[64];
    uint16_t head[64];
    unsigned n;
};

static void guest_post_rx(struct rx_bufs *rx, unsigned n, uint32_t size)
{
    for (unsigned i = 0; i < n; i++) {
        struct guest_buf b = {vdriver_alloc(&d, size, 8), size, true};

        rx->gpa[rx->n] = b.gpa;
        rx->head[rx->n] = guest_ring_add_chain(&d.ring[RXQ], &b, 1);
        guest_ring_publish(&d.ring[RXQ], rx->head[rx->n]);
        rx->n++;
    }
    vdriver_kick(&d, RXQ);
}

/* Collect `len` bytes of input from completed receive buffers. */
static void guest_read(const struct rx_bufs *rx, uint8_t *out, size_t len)
{
    size_t got = 0;
    uint32_t id, used;

    while (got < len) {
        unsigned i = 0;

        wait_used(RXQ, &id, &used);
        while (i < rx->n && rx->head[i] != id)
            i++;
        ck_assert_uint_lt(i, rx->n);
        ck_assert_uint_le(got + used, len);
        memcpy(out + got, vdriver_ptr(&d, rx->gpa[i]), used);
        got += used;
    }
}

/* ---- the other end ----------------------------------------------------- */

static int client_connect(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    strcpy(sa.sun_path, sock_path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Read exactly len bytes from fd, failing after WAIT_MS without any. */
static void read_exact(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
        n = read(fd, buf + got, len - got);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
    }
}

/* Nothing more arrives on fd for a while. */
static void expect_quiet(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    ck_assert_int_eq(poll(&p, 1, ms), 0);
}

static void write_all(int fd, const void *buf, size_t len)
{
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
}

/* Bytes that do not repeat within 64 KiB, all 256 values among them. */
static void pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
}

/* out from the guest to the reader on fd, as one chain of nbufs buffers;
 * in from fd to the guest, in 128-byte receive buffers; both byte-exact. */
static void both_ways(int fd, const uint8_t *out, size_t out_len,
                      unsigned nbufs, const uint8_t *in, size_t in_len)
{
    static uint8_t got[4096];
    struct rx_bufs rx = {0};

    ck_assert_uint_le(out_len, sizeof(got));
    ck_assert_uint_le(in_len, sizeof(got));
    guest_write(out, out_len, nbufs);
    read_exact(fd, got, out_len);
    ck_assert(memcmp(got, out, out_len) == 0);
    write_all(fd, in, in_len);
    guest_post_rx(&rx, (unsigned)(in_len + 127) / 128, 128);
    guest_read(&rx, got, in_len);
    ck_assert(memcmp(got, in, in_len) == 0);
}

/* The reader on fd leaves, the guest says something, and the next reader
 * (from reopen()) gets it. */
static void reader_comes_back(int fd, int (*reopen)(void))
{
    uint8_t got[10];

    close(fd);
    usleep(100 * 1000); /* xvdm sees the reader go */
    guest_write("while away", 10, 1);
    fd = reopen();
    read_exact(fd, got, 10);
    ck_assert(memcmp(got, "while away", 10) == 0);
    close(fd);
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(bytes_round_trip_over_the_socket)
{
    static uint8_t out[3000], in[1000];
    int fd;

    start_socket();
    fd = client_connect();
    pattern(out, sizeof(out), 1);
    pattern(in, sizeof(in), 2);
    both_ways(fd, out, sizeof(out), 3, in, sizeof(in));
    reader_comes_back(fd, client_connect);
    stop();
}
END_TEST

START_TEST(output_with_no_client_is_kept_for_the_next_bounded)
{
    static uint8_t out[100 * 1024], got[RING_KEPT];
    int fd;

    capture_log();
    start_socket();
    pattern(out, sizeof(out), 3);
    /* Each chain completes at once: the guest is not held up. */
    for (size_t off = 0; off < sizeof(out); off += 4096)
        guest_write(out + off,
                    4096 < sizeof(out) - off ? 4096 : sizeof(out) - off, 1);
    ck_assert_uint_eq(log_count("no reader: keeping the last"), 1);
    fd = client_connect();
    read_exact(fd, got, sizeof(got));
    ck_assert(memcmp(got, out + sizeof(out) - RING_KEPT, RING_KEPT) == 0);
    expect_quiet(fd, 200);
    ck_assert_uint_eq(log_count("older bytes of output were dropped"), 1);
    /* Then it is a live console again. */
    guest_write("live", 4, 1);
    read_exact(fd, got, 4);
    ck_assert(memcmp(got, "live", 4) == 0);
    close(fd);
    stop();
}
END_TEST

START_TEST(output_waits_for_a_slow_client_and_none_is_dropped)
{
    enum { CHUNK = 16 * 1024, CHUNKS = 48 };
    static uint8_t out[CHUNK * CHUNKS], got[CHUNK * CHUNKS];
    unsigned completed = 0;
    uint32_t id, used;
    int fd;

    start_socket();
    fd = client_connect();
    guest_write("ready", 5, 1);
    read_exact(fd, got, 5);
    pattern(out, sizeof(out), 5);
    /* More than the socket and the device's ring hold: with the client
     * not reading, the last chains wait in the queue. */
    for (unsigned i = 0; i < CHUNKS; i++)
        guest_send(out + i * CHUNK, CHUNK, 1);
    usleep(200 * 1000);
    while (guest_ring_get_used(&d.ring[TXQ], &id, &used))
        completed++;
    ck_assert_uint_lt(completed, CHUNKS);
    read_exact(fd, got, sizeof(got));
    ck_assert(memcmp(got, out, sizeof(out)) == 0);
    while (completed < CHUNKS) {
        wait_used(TXQ, &id, &used);
        completed++;
    }
    close(fd);
    stop();
}
END_TEST

/* The guest's console on xvdm's own stdin and stdout, here two pipes. */
START_TEST(stdio_carries_both_ways)
{
    struct rx_bufs rx = {0};
    int in[2], out[2];
    uint8_t got[8];

    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_ge(dup2(in[0], STDIN_FILENO), 0);
    ck_assert_int_ge(dup2(out[1], STDOUT_FILENO), 0);
    start("console,stdio");
    guest_write("hello", 5, 1);
    read_exact(out[0], got, 5);
    ck_assert(memcmp(got, "hello", 5) == 0);
    write_all(in[1], "typed", 5);
    guest_post_rx(&rx, 1, 8);
    guest_read(&rx, got, 5);
    ck_assert(memcmp(got, "typed", 5) == 0);
    stop();
    /* Blocking again, as the shell that shares them expects. */
    ck_assert_int_eq(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK, 0);
}
END_TEST

static double cpu_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(input_waits_for_receive_buffers_without_spinning)
{
    static uint8_t in[20000], got[20000];
    struct rx_bufs rx = {0};
    uint32_t id, used;
    double cpu;
    int fd;

    start_socket();
    fd = client_connect();
    guest_write("ready", 5, 1); /* the device has the client once this */
    read_exact(fd, got, 5);     /* comes through */
    pattern(in, sizeof(in), 4);
    write_all(fd, in, sizeof(in));
    cpu = cpu_seconds();
    usleep(300 * 1000);
    /* No buffers: nothing taken, and the loop sleeps meanwhile. */
    ck_assert(!guest_ring_get_used(&d.ring[RXQ], &id, &used));
    ck_assert_double_lt(cpu_seconds() - cpu, 0.1);
    /* Fewer buffers than the input needs: the rest waits for more. */
    guest_post_rx(&rx, 4, 1000);
    guest_read(&rx, got, 4000);
    usleep(100 * 1000);
    ck_assert(!guest_ring_get_used(&d.ring[RXQ], &id, &used));
    guest_post_rx(&rx, 40, 1000);
    guest_read(&rx, got + 4000, sizeof(in) - 4000);
    ck_assert(memcmp(got, in, sizeof(in)) == 0);
    close(fd);
    stop();
}
END_TEST

/* The pty's path, from the line xvdm logs for its user. */
static const char *pty_path(void)
{
    static char path[64];
    const char *p = strstr(log_text(), "guest console on /dev/pts/");

    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(sscanf(p, "guest console on %63s", path), 1);
    return path;
}

static int pty_open(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    return fd;
}

static int pty_reopen(void)
{
    return pty_open(pty_path());
}

START_TEST(bytes_round_trip_over_the_pty_raw_and_across_reopening)
{
    static uint8_t all[256];
    int fd;

    capture_log();
    start("console,pty");
    ck_assert(d.offered & (1ULL << VIRTIO_CONSOLE_F_SIZE));
    fd = pty_open(pty_path());
    for (unsigned i = 0; i < 256; i++)
        all[i] = (uint8_t)i; /* raw: \n, \r, ^C, ^S pass as they are */
    both_ways(fd, all, sizeof(all), 2, all, sizeof(all));
    reader_comes_back(fd, pty_reopen);
    stop();
}
END_TEST

static uint16_t config16(unsigned offset)
{
    uint64_t v = 0;

    ck_assert_int_eq(sim_mmio_read(h.sim, 0, d.base + 0x100 + offset, 2, &v),
                     0);
    return (uint16_t)v;
}

START_TEST(pty_size_reaches_the_guest_config)
{
    struct winsize ws = {.ws_row = 25, .ws_col = 80};
    struct rx_bufs rx = {0};
    uint8_t got;
    int fd;

    capture_log();
    start("console,pty");
    fd = pty_open(pty_path());
    ck_assert_int_eq(ioctl(fd, TIOCSWINSZ, &ws), 0);
    /* The size is looked at when the pty has news: a key press. */
    write_all(fd, "k", 1);
    guest_post_rx(&rx, 1, 16);
    guest_read(&rx, &got, 1);
    ck_assert_uint_eq(config16(0), 80);
    ck_assert_uint_eq(config16(2), 25);
    close(fd);
    stop();
}
END_TEST

START_TEST(wrong_way_buffers_are_refused_and_the_device_goes_on)
{
    struct guest_buf b;
    struct rx_bufs rx = {0};
    uint8_t got[8];
    uint32_t id, used;
    uint16_t head;
    int fd;

    start_socket();
    fd = client_connect();
    /* transmitq: a buffer for the device to write. */
    b = (struct guest_buf){vdriver_alloc(&d, 64, 8), 64, true};
    memset(vdriver_ptr(&d, b.gpa), 0xee, 64);
    head = guest_ring_add_chain(&d.ring[TXQ], &b, 1);
    guest_ring_publish(&d.ring[TXQ], head);
    vdriver_kick(&d, TXQ);
    wait_used(TXQ, &id, &used);
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(used, 0);
    /* receiveq: a buffer for the device to read, before a good one. */
    b = (struct guest_buf){guest_copy("secret!!", 8), 8, false};
    head = guest_ring_add_chain(&d.ring[RXQ], &b, 1);
    guest_ring_publish(&d.ring[RXQ], head);
    guest_post_rx(&rx, 1, 8);
    write_all(fd, "input", 5);
    wait_used(RXQ, &id, &used);
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(used, 0);
    ck_assert(memcmp(vdriver_ptr(&d, b.gpa), "secret!!", 8) == 0);
    guest_read(&rx, got, 5);
    ck_assert(memcmp(got, "input", 5) == 0);
    /* Still working, both ways, and not NEEDS_RESET. */
    guest_write("ok", 2, 1);
    read_exact(fd, got, 2); /* nothing of the refused chain came before */
    ck_assert(memcmp(got, "ok", 2) == 0);
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
    close(fd);
    stop();
}
END_TEST

START_TEST(reset_forgets_receive_buffers)
{
    struct rx_bufs old = {0}, rx = {0};
    uint8_t got[4];
    int fd;

    start_socket();
    fd = client_connect();
    guest_write("x", 1, 1);
    read_exact(fd, got, 1);
    guest_post_rx(&old, 2, 16);
    memset(vdriver_ptr(&d, old.gpa[0]), 0x55, 16);
    vdriver_reset(&d);
    /* Input after the reset must not land in the old buffers. */
    write_all(fd, "new", 3);
    usleep(100 * 1000);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, old.gpa[0]), 0x55);
    ck_assert_int_eq(vdriver_probe(&d, CONSOLE_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, RXQ, 64), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, TXQ, 64), 0);
    vdriver_driver_ok(&d);
    guest_post_rx(&rx, 1, 16);
    guest_read(&rx, got, 3);
    ck_assert(memcmp(got, "new", 3) == 0);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, old.gpa[0]), 0x55);
    close(fd);
    stop();
}
END_TEST

/* A reset while transmit chains wait for a slow client: they are
 * forgotten, what the ring holds still goes out, and the device serves the
 * driver that comes next. */
START_TEST(reset_forgets_waiting_transmit_chains)
{
    enum { CHUNK = 16 * 1024, CHUNKS = 48 };
    static uint8_t out[CHUNK], got[CHUNK * CHUNKS + 8];
    size_t total = 0;
    int fd;

    start_socket();
    fd = client_connect();
    guest_write("ready", 5, 1);
    read_exact(fd, got, 5);
    memset(out, 'o', sizeof(out));
    for (unsigned i = 0; i < CHUNKS; i++)
        guest_send(out, CHUNK, 1);
    usleep(100 * 1000);
    vdriver_reset(&d);
    ck_assert_int_eq(vdriver_probe(&d, CONSOLE_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, RXQ, 64), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, TXQ, 64), 0);
    vdriver_driver_ok(&d);
    guest_send("after", 5, 1);
    /* Some of the old output, then the new, and nothing after it. */
    while (total < 5 || memcmp(got + total - 5, "after", 5) != 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        ck_assert_int_eq(poll(&p, 1, WAIT_MS), 1);
        n = read(fd, got + total, sizeof(got) - total);
        ck_assert_int_gt(n, 0);
        total += (size_t)n;
    }
    expect_quiet(fd, 100);
    close(fd);
    stop();
}
END_TEST

START_TEST(file_gets_the_output_appended)
{
    char path[64], spec[96], buf[32];
    int fd;

    snprintf(path, sizeof(path), "/tmp/xvdm-console-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    write_all(fd, "before|", 7);
    snprintf(spec, sizeof(spec), "console,file=%s", path);
    start(spec);
    ck_assert(!(d.offered & (1ULL << VIRTIO_CONSOLE_F_SIZE)));
    guest_write("boot log", 8, 2);
    stop();
    ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 15);
    ck_assert(memcmp(buf, "before|boot log", 15) == 0);
    close(fd);
    unlink(path);
}
END_TEST

/* A console writing to a fresh file under max-size=max: the file. */
static int start_capped_file(char *path, size_t len, const char *max)
{
    char spec[128];
    int fd;

    snprintf(path, len, "/tmp/xvdm-console-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    snprintf(spec, sizeof(spec), "console,file=%s,max-size=%s", path, max);
    start(spec);
    return fd;
}

/* The file's n bytes are a line saying what was dropped, then the last
 * bytes of the stream, in order: how many of those. */
static ssize_t newest_kept(const uint8_t *file, ssize_t n,
                           const uint8_t *stream, size_t total)
{
    const char *nl;

    ck_assert(memcmp(file, "[xvdm: ", 7) == 0);
    nl = memchr(file, '\n', (size_t)n);
    ck_assert_ptr_nonnull(nl);
    n -= nl + 1 - (const char *)file;
    ck_assert(memcmp(nl + 1, stream + total - n, (size_t)n) == 0);
    return n;
}

/* A guest writing eight times max-size: the file never holds more than
 * max-size; it holds a line saying what was dropped, then the newest
 * output, in order. */
START_TEST(file_keeps_within_max_size_and_holds_the_newest_output)
{
    enum { CAP = 128 * 1024, CHUNK = 16 * 1024, TOTAL = 8 * CAP };
    static uint8_t stream[TOTAL], file[2 * CAP];
    char path[64];
    ssize_t n;
    int fd = start_capped_file(path, sizeof(path), "128k");

    pattern(stream, sizeof(stream), 9);
    for (size_t off = 0; off < TOTAL; off += CHUNK) {
        struct stat st;

        guest_write(stream + off, CHUNK, 2);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_le(st.st_size, CAP);
    }
    stop();
    n = pread(fd, file, sizeof(file), 0);
    ck_assert_int_le(n, CAP);
    ck_assert_ptr_nonnull(strstr((const char *)file, "max-size=131072]"));
    ck_assert_int_gt(newest_kept(file, n, stream, TOTAL), CAP / 4);
    close(fd);
    unlink(path);
}
END_TEST

/* With a large max-size, reaching it moves at most the newest 1 MiB to
 * the file's start (the copy is on the loop thread), in order. */
START_TEST(reaching_a_large_max_size_moves_at_most_1_mib)
{
    enum { CAP = 4 << 20, CHUNK = 64 * 1024, TOTAL = CAP + CHUNK };
    static uint8_t stream[TOTAL], file[3 << 20];
    char path[64];
    ssize_t n;
    int fd = start_capped_file(path, sizeof(path), "4M");

    pattern(stream, sizeof(stream), 5);
    for (size_t off = 0; off < TOTAL; off += CHUNK)
        guest_write(stream + off, CHUNK, 2);
    stop();
    n = pread(fd, file, sizeof(file), 0);
    ck_assert_int_le(n, (1 << 20) + CHUNK);
    ck_assert_int_gt(newest_kept(file, n, stream, TOTAL),
                     (1 << 20) - 128 + CHUNK);
    close(fd);
    unlink(path);
}
END_TEST

/* A socket file left by a killed xvdm is taken over; a live one is not. */
START_TEST(stale_socket_file_is_replaced_a_live_one_refused)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char spec[128];
    const char *specs[] = {spec};
    uint8_t got[2];
    int stale, fd;

    capture_log();
    make_sock_path();
    strcpy(sa.sun_path, sock_path);
    stale = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(stale, 1), 0);
    snprintf(spec, sizeof(spec), "console,socket=%s", sock_path);
    ck_assert_int_lt(harness_start(&h, specs, 1), 0);
    ck_assert_ptr_nonnull(strstr(log_text(), "Address already in use"));
    close(stale); /* the file stays, with no one listening */
    ck_assert_int_eq(access(sock_path, F_OK), 0);
    start(spec);
    fd = client_connect();
    guest_write("up", 2, 1);
    read_exact(fd, got, 2);
    close(fd);
    stop();
}
END_TEST

/* Each bad spec, and what the one line about it must name. */
static const char *const bad_specs[][2] = {
    {"console", "no backend"},
    {"console,pty,stdio", "'pty' and 'stdio'"},
    {"console,socket=/tmp/x,file=/tmp/y", "'socket' and 'file'"},
    {"console,speed=9600", "unknown option 'speed'"},
    {"console,pty=yes", "pty='yes'"},
    {"console,file=", "file='': needs a path"},
    {"console,file=/nonexistent/dir/log", "file='/nonexistent/dir/log'"},
    {"console,file=/tmp/x,max-size=64k", "max-size='64k' is out of range"},
    {"console,file=/tmp/x,max-size=lots", "max-size='lots' is not a number"},
    {"console,pty,max-size=1M", "max-size= goes with file= only"},
};

START_TEST(bad_options_are_refused_naming_the_value)
{
    const char *specs[] = {bad_specs[_i][0]};

    capture_log();
    ck_assert_int_lt(harness_start(&h, specs, 1), 0);
    ck_assert_msg(strstr(log_text(), bad_specs[_i][1]), "%s: log was: %s",
                  bad_specs[_i][0], log_text());
}
END_TEST

/* ---- hostile chains ------------------------------------------------------ */

/* Guest RAM at gpa, as the test writes or reads it. */
static uint8_t *guest_at(uint64_t gpa, size_t len)
{
    uint8_t *p = sim_guest_ptr(h.sim, gpa, len);

    ck_assert_ptr_nonnull(p);
    return p;
}

/* The first address past region 0, a hole: an empty buffer may point
 * there, since it holds no byte. */
static uint64_t region0_end(void)
{
    struct sim_ram_region r0 = sim_ram_region(h.sim, 0);

    return r0.gpa + r0.size;
}

/* Publish a chain of these buffers on queue q and kick; its head. */
static uint16_t publish(unsigned q, const struct guest_buf *b, unsigned n)
{
    uint16_t head = guest_ring_add_chain(&d.ring[q], b, n);

    guest_ring_publish(&d.ring[q], head);
    vdriver_kick(&d, q);
    return head;
}

/* The edges so far, the interrupts among them handled as a driver does. */
static unsigned edges_now(void)
{
    vdriver_take_irqs(&d);
    return sim_irq_edges(h.sim, d.irq);
}

/* head is the next used element of queue q, with `want` bytes written,
 * and the guest was interrupted after it had seen `edges` (VIRTIO 1.2
 * §2.7.7.2: nothing suppresses the notification here). */
static void expect_used_irq(unsigned q, uint16_t head, uint32_t want,
                            unsigned edges)
{
    uint32_t id, used;

    ck_assert_int_eq(sim_irq_wait(h.sim, d.irq, edges, WAIT_MS), 0);
    ck_assert(guest_ring_get_used(&d.ring[q], &id, &used));
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(used, want);
}

static void expect_healthy(void)
{
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
}

/* Reset, probe and set the queues up again, as a driver does after
 * NEEDS_RESET. */
static void restart_driver(void)
{
    vdriver_reset(&d);
    ck_assert_int_eq(vdriver_probe(&d, CONSOLE_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, RXQ, queue_size), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, TXQ, queue_size), 0);
    vdriver_driver_ok(&d);
}

/* True once the device says NEEDS_RESET, within WAIT_MS. */
static bool wait_needs_reset(void)
{
    for (unsigned ms = 0; ms < WAIT_MS; ms += 10) {
        if (vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

/* Empty buffers hold nothing: first, between and last in a transmit
 * chain, even outside RAM, they are left out and the bytes go out whole;
 * alone, the chain completes with nothing. An empty receive buffer before
 * a real one is left out likewise; alone, it gives no room and comes back
 * unused. */
START_TEST(empty_buffers_are_left_out_both_ways)
{
    uint64_t g, in;
    uint16_t head, none;
    uint8_t got[6];
    unsigned e;
    int fd;

    start_socket();
    fd = client_connect();
    g = guest_copy("abcdef", 6);
    head = publish(TXQ,
                   (struct guest_buf[]){{region0_end(), 0, false},
                                        {g, 3, false},
                                        {g + 3, 0, false},
                                        {g + 3, 3, false},
                                        {region0_end(), 0, false}},
                   5);
    read_exact(fd, got, 6);
    ck_assert(memcmp(got, "abcdef", 6) == 0);
    wait_used(TXQ, &(uint32_t){0}, &(uint32_t){0});
    e = edges_now();
    head = publish(TXQ, (struct guest_buf[]){{region0_end(), 0, false}}, 1);
    expect_used_irq(TXQ, head, 0, e);
    expect_quiet(fd, 100);

    none = publish(RXQ, (struct guest_buf[]){{region0_end(), 0, true}}, 1);
    in = vdriver_alloc(&d, 8, 8);
    head = publish(
        RXQ, (struct guest_buf[]){{region0_end(), 0, true}, {in, 8, true}}, 2);
    e = edges_now();
    write_all(fd, "hi", 2);
    expect_used_irq(RXQ, none, 0, e);
    wait_used(RXQ, &(uint32_t){0}, &(uint32_t){0});
    ck_assert(memcmp(guest_at(in, 2), "hi", 2) == 0);
    expect_healthy();
    close(fd);
    stop();
}
END_TEST

/* Output from the last bytes of region 0 and the first of bank 1, input
 * into the same places: ordinary buffers, served byte-exact. */
START_TEST(buffers_at_region_edges_are_served_both_ways)
{
    struct sim_ram_region bank1;
    uint64_t end;
    uint8_t got[8];
    uint32_t id, used;
    int fd;

    start_socket();
    fd = client_connect();
    bank1 = sim_ram_region(h.sim, 2);
    end = region0_end();
    memcpy(guest_at(end - 5, 5), "edge:", 5);
    memcpy(guest_at(bank1.gpa, 3), "ok\n", 3);
    publish(TXQ,
            (struct guest_buf[]){{end - 5, 5, false}, {bank1.gpa, 3, false}},
            2);
    read_exact(fd, got, 8);
    ck_assert(memcmp(got, "edge:ok\n", 8) == 0);
    wait_used(TXQ, &id, &used);

    memset(guest_at(end - 4, 4), 0, 4);
    *guest_at(bank1.gpa, 1) = 0;
    publish(RXQ, (struct guest_buf[]){{end - 4, 4, true}, {bank1.gpa, 1, true}},
            2);
    write_all(fd, "12345", 5);
    wait_used(RXQ, &id, &used);
    ck_assert_uint_eq(used, 5);
    ck_assert(memcmp(guest_at(end - 4, 4), "1234", 4) == 0);
    ck_assert_uint_eq(*guest_at(bank1.gpa, 1), '5');
    expect_healthy();
    close(fd);
    stop();
}
END_TEST

/* n 1-byte buffers over guest RAM at gpa, device-writable or not. */
static void one_byte_buffers(struct guest_buf *b, uint64_t gpa, unsigned n,
                             bool write)
{
    for (unsigned i = 0; i < n; i++)
        b[i] = (struct guest_buf){gpa + i, 1, write};
}

/* 64 buffers are what a chain may have here: 64 1-byte buffers carry 64
 * bytes each way. 65 are one too many: completed unused, with an
 * interrupt, nothing written or sent, and the device goes on. */
START_TEST(chain_longer_than_the_device_takes_is_returned_unused)
{
    static uint8_t out[65], got[64];
    struct guest_buf b[65];
    uint16_t head;
    uint64_t g;
    unsigned e;
    int fd;

    queue_size = 128; /* room for a chain of 65 */
    start_socket();
    fd = client_connect();
    pattern(out, sizeof(out), 7);
    g = guest_copy(out, sizeof(out));
    one_byte_buffers(b, g, 64, false);
    publish(TXQ, b, 64);
    read_exact(fd, got, 64);
    ck_assert(memcmp(got, out, 64) == 0);
    wait_used(TXQ, &(uint32_t){0}, &(uint32_t){0});
    e = edges_now();
    one_byte_buffers(b, g, 65, false);
    head = publish(TXQ, b, 65);
    expect_used_irq(TXQ, head, 0, e);
    expect_quiet(fd, 100);

    g = vdriver_alloc(&d, 65, 8);
    memset(guest_at(g, 65), 0xee, 65);
    one_byte_buffers(b, g, 65, true);
    head = publish(RXQ, b, 65);
    e = edges_now();
    write_all(fd, out, 64); /* receive chains are taken for input */
    expect_used_irq(RXQ, head, 0, e);
    ck_assert_uint_eq(*guest_at(g, 1), 0xee);
    one_byte_buffers(b, g, 64, true);
    publish(RXQ, b, 64);
    wait_used(RXQ, &(uint32_t){0}, &(uint32_t){0});
    ck_assert(memcmp(guest_at(g, 64), out, 64) == 0);
    ck_assert_uint_eq(*guest_at(g + 64, 1), 0xee);
    expect_healthy();
    close(fd);
    stop();
}
END_TEST

/* The whole 1 MiB tail region as one transmit buffer, sixteen times the
 * ring's room, reaches a socket's reader byte-exact, and is all in a
 * file= (whose fd epoll cannot watch for room), the chain completed. */
START_TEST(a_buffer_of_a_whole_region_goes_out_whole)
{
    static uint8_t got[SIM_RAM_TAIL_SIZE];
    char path[64] = "", spec[96];
    struct sim_ram_region tail;
    int fd;

    if (_i == 0) {
        start_socket();
        fd = client_connect();
        /* Output before xvdm took the client would go to the ring's
         * newest 64 KiB, as with no reader. */
        guest_write("ready", 5, 1);
        read_exact(fd, got, 5);
    } else {
        snprintf(path, sizeof(path), "/tmp/xvdm-console-XXXXXX");
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        snprintf(spec, sizeof(spec), "console,file=%s", path);
        start(spec);
    }
    tail = sim_ram_region(h.sim, 1);
    pattern(guest_at(tail.gpa, tail.size), tail.size, 8);
    publish(TXQ, (struct guest_buf[]){{tail.gpa, (uint32_t)tail.size, false}},
            1);
    if (_i == 0)
        read_exact(fd, got, sizeof(got));
    wait_used(TXQ, &(uint32_t){0}, &(uint32_t){0});
    if (_i == 1)
        ck_assert_int_eq(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
    ck_assert(memcmp(got, guest_at(tail.gpa, tail.size), sizeof(got)) == 0);
    expect_healthy();
    close(fd);
    stop();
    if (path[0])
        unlink(path);
}
END_TEST

/* With no reader, 63 buffers each over all of region 0 (nearly 4 GiB)
 * complete at once and leave the newest 64 KiB, region 0's last, for the
 * next reader. 64 of them are 4 GiB, more than a chain may hold
 * (lengths are 32-bit): NEEDS_RESET, then a reset brings the device
 * back. With RAM mapped only: in grant mode 63 grants of 64 MiB are far
 * more pages than one mapping takes, and such a chain is skipped before
 * its lengths matter (test-hostile's grant cases show that). */
START_TEST(a_chain_of_nearly_4_gib_keeps_its_newest_bytes)
{
    static uint8_t got[RING_KEPT];
    struct sim_ram_region r0;
    struct guest_buf b[64];
    int fd;

    /* Read by start(); the test runs in a process of its own. */
    unsetenv("XVDM_TEST_GRANTS");
    queue_size = 128; /* room for a chain of 64 */
    start_socket();
    r0 = sim_ram_region(h.sim, 0);
    pattern(guest_at(region0_end() - RING_KEPT, RING_KEPT), RING_KEPT, 9);
    for (unsigned i = 0; i < 64; i++)
        b[i] = (struct guest_buf){r0.gpa, (uint32_t)r0.size, false};
    publish(TXQ, b, 63);
    wait_used(TXQ, &(uint32_t){0}, &(uint32_t){0});
    fd = client_connect();
    read_exact(fd, got, sizeof(got));
    ck_assert(memcmp(got, guest_at(region0_end() - RING_KEPT, RING_KEPT),
                     RING_KEPT) == 0);
    expect_quiet(fd, 100);
    publish(TXQ, b, 64);
    ck_assert(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET);
    expect_quiet(fd, 100);
    restart_driver();
    both_ways(fd, (const uint8_t *)"back", 4, 1, (const uint8_t *)"in", 2);
    close(fd);
    stop();
}
END_TEST

/* A readable buffer after a writable one breaks the ring's rules (VIRTIO
 * 1.2 §2.7.4.2), on either queue: NEEDS_RESET; after a reset the
 * console carries bytes both ways again. */
START_TEST(chains_the_wrong_way_round_need_a_reset)
{
    static const uint8_t out[] = "out", in[] = "in";
    uint64_t g;
    int fd;

    start_socket();
    fd = client_connect();
    for (unsigned q = 0; q < 2; q++) {
        g = vdriver_alloc(&d, 16, 8);
        publish(q, (struct guest_buf[]){{g, 8, true}, {g + 8, 8, false}}, 2);
        if (q == RXQ)
            write_all(fd, "x", 1); /* receive chains are taken for input */
        ck_assert_msg(wait_needs_reset(), "queue %u", q);
        restart_driver();
        if (q == RXQ) {
            struct rx_bufs rx = {0};
            uint8_t got;

            guest_post_rx(&rx, 1, 8);
            guest_read(&rx, &got, 1);
            ck_assert_uint_eq(got, 'x');
        }
        both_ways(fd, out, 3, 1, in, 2);
    }
    close(fd);
    stop();
}
END_TEST

/* ---- a second vCPU rewriting the rings ----------------------------------- */

#define SCRIBBLE_FEATURES                                                      \
    (FEATURES | (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC))

static uint64_t con_rings; /* where the rings go at every bring-up */
static uint64_t con_table, con_out, con_in;
static int con_client;    /* the socket's reader, non-blocking */
static unsigned con_turn; /* which queue the next request is for */

static void con_bring_up(void)
{
    vdriver_reset(&d);
    d.alloc_next = con_rings;
    ck_assert_int_eq(vdriver_probe(&d, CONSOLE_ID, SCRIBBLE_FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, RXQ, queue_size), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, TXQ, queue_size), 0);
    vdriver_driver_ok(&d);
}

/* Take what the device wrote to the reader, ours and the scribbler's;
 * whether there was any. */
static bool con_drain_client(void)
{
    static uint8_t sink[65536];
    bool some = false;

    while (read(con_client, sink, sizeof(sink)) > 0)
        some = true;
    return some;
}

/* Two bytes in two buffers of an indirect table: used. A chain the
 * device took before, the scribbler's, may hold gigabytes of output,
 * which it writes at the reader's pace: output still coming is the device
 * serving, and extends the wait (up to 5 * ms in all). */
static bool con_tx_request(unsigned ms)
{
    struct guest_buf b[2] = {{con_out, 1, false}, {con_out + 1, 1, false}};
    uint16_t head = guest_ring_add_indirect(&d.ring[TXQ], con_table, b, 2);
    uint32_t len;

    memcpy(vdriver_ptr(&d, con_out), "ok", 2);
    guest_ring_publish(&d.ring[TXQ], head);
    vdriver_kick(&d, TXQ);
    for (unsigned waited = 0, spent = 0; waited < ms && spent < 5 * ms;
         waited++, spent++) {
        if (con_drain_client())
            waited = 0;
        if (scribble_wait_used(&d, TXQ, &head, 1, 1, &len))
            return len == 0;
    }
    return false;
}

/* A receive buffer, and input typed until some lands in it (a chain the
 * device took before, the scribbler's, gets it first). */
static bool con_rx_request(unsigned ms)
{
    struct guest_buf b = {con_in, 8, true};
    uint16_t head = guest_ring_add_chain(&d.ring[RXQ], &b, 1);
    uint32_t len;

    guest_ring_publish(&d.ring[RXQ], head);
    vdriver_kick(&d, RXQ);
    for (unsigned waited = 0; waited < ms; waited += 10) {
        /* A full socket already holds input xvdm has not read yet: it
         * reads only into buffers the guest posted, and requests the
         * scribbler broke leave bytes behind (one-byte writes fill a
         * Unix socket's budget after a few hundred). */
        ck_assert(write(con_client, "i", 1) == 1 || errno == EAGAIN);
        con_drain_client();
        if (scribble_wait_used(&d, RXQ, &head, 1, 10, &len))
            return len >= 1 && len <= 8 &&
                   *(uint8_t *)vdriver_ptr(&d, con_in) == 'i';
    }
    return false;
}

static bool con_request(unsigned ms)
{
    return con_turn++ % 2 ? con_rx_request(ms) : con_tx_request(ms);
}

/* Another vCPU rewrites descriptors, avail rings and indices and an
 * indirect table of both queues, and kicks, while output and input are
 * in flight: xvdm answers every access, touches nothing outside guest
 * RAM, either serves or says NEEDS_RESET, and serves after a reset. */
START_TEST(a_vcpu_rewriting_the_rings_under_requests)
{
    const struct scribble_guest g = {
        &d, 2, {TXQ, RXQ}, con_bring_up, con_request};
    uint32_t seed = scribble_seed();
    const char *why;

    vcpus = 2; /* the scribbler kicks from the second */
    /* RAM mapped (see scribble.h); read by start(), the test runs in a
     * process of its own. */
    unsetenv("XVDM_TEST_GRANTS");
    start_socket();
    con_client = client_connect();
    ck_assert_int_eq(fcntl(con_client, F_SETFL, O_NONBLOCK), 0);
    con_rings = sim_ram_base(h.sim) + (1 << 20);
    con_bring_up();
    con_table = vdriver_alloc(&d, 2 * 16, 16);
    con_out = vdriver_alloc(&d, 2, 8);
    con_in = vdriver_alloc(&d, 8, 8);
    why = scribble_guest_verdict(&g, seed, con_table, 2 * 16, WAIT_MS);
    ck_assert_msg(!why, "seed %u: %s", seed, why);
    close(con_client);
    stop();
}
END_TEST

/* In grant mode with a budget of 4 pages, the guest posts 40 receive
 * buffers: at most 4 pages of them are mapped at once, the rest wait for
 * pages to come back, and every byte of input reaches the guest, in
 * order. */
START_TEST(receive_buffers_past_the_grant_budget_wait_and_get_everything)
{
    static uint8_t in[40 * 1000], got[40 * 1000];
    struct rx_bufs rx = {0};
    unsigned rings;
    int fd;

    /* The test runs in a process of its own (Check's fork). */
    setenv("XVDM_TEST_GRANTS", "1", 1);
    setenv("XVDM_TEST_GRANT_PAGES", "4", 1);
    start_socket();
    fd = client_connect();
    rings = sim_grants_mapped(h.sim);
    guest_post_rx(&rx, 40, 1000);
    ck_assert_uint_le(sim_grants_mapped(h.sim) - rings, 4);
    pattern(in, sizeof(in), 7);
    write_all(fd, in, sizeof(in));
    guest_read(&rx, got, sizeof(got));
    ck_assert(memcmp(got, in, sizeof(in)) == 0);
    ck_assert_uint_le(sim_grants_mapped(h.sim) - rings, 4);
    close(fd);
    stop();
}
END_TEST

static Suite *console_suite(void)
{
    Suite *s = suite_create("console");
    TCase *tc = tcase_create("console");

    tcase_add_test(tc, bytes_round_trip_over_the_socket);
    tcase_add_test(tc, output_with_no_client_is_kept_for_the_next_bounded);
    tcase_add_test(tc, output_waits_for_a_slow_client_and_none_is_dropped);
    tcase_add_test(tc, input_waits_for_receive_buffers_without_spinning);
    tcase_add_test(tc, bytes_round_trip_over_the_pty_raw_and_across_reopening);
    tcase_add_test(tc, pty_size_reaches_the_guest_config);
    tcase_add_test(tc, wrong_way_buffers_are_refused_and_the_device_goes_on);
    tcase_add_test(tc, reset_forgets_receive_buffers);
    tcase_add_test(tc, reset_forgets_waiting_transmit_chains);
    tcase_add_test(tc, file_gets_the_output_appended);
    tcase_add_test(tc, file_keeps_within_max_size_and_holds_the_newest_output);
    tcase_add_test(tc, reaching_a_large_max_size_moves_at_most_1_mib);
    tcase_add_test(tc, stdio_carries_both_ways);
    tcase_add_test(tc, stale_socket_file_is_replaced_a_live_one_refused);
    tcase_add_test(tc,
                   receive_buffers_past_the_grant_budget_wait_and_get_everything);
    tcase_add_loop_test(tc, bad_options_are_refused_naming_the_value, 0,
                        sizeof(bad_specs) / sizeof(bad_specs[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc, empty_buffers_are_left_out_both_ways);
    tcase_add_test(tc, buffers_at_region_edges_are_served_both_ways);
    tcase_add_test(tc, chain_longer_than_the_device_takes_is_returned_unused);
    tcase_add_loop_test(tc, a_buffer_of_a_whole_region_goes_out_whole, 0, 2);
    tcase_add_test(tc, a_chain_of_nearly_4_gib_keeps_its_newest_bytes);
    tcase_add_test(tc, chains_the_wrong_way_round_need_a_reset);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrent");
    tcase_add_test(tc, a_vcpu_rewriting_the_rings_under_requests);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(console_suite);
}
