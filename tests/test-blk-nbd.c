/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk with nbd=URI on the simulated hypervisor, against real NBD
 * servers started here (nbdkit, qemu-nbd on a qcow2): data written on two
 * queues reads back through xvdm and through a second NBD client; a flush
 * makes it durable on the server; discard, write-zeroes, FUA for a
 * writethrough guest, a read-only export, a server's errors, a server
 * killed under requests and back, a connection that dies as a request is
 * sent and comes back (also from inside --chroot), requests larger than
 * the server takes, and URIs that cannot work.
 */
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBNBD
#include <libnbd.h>
#endif

#include "blk-guest.h"
#include "check-run.h"
#include "harness.h"
#include "host-path.h"
#include "log-lines.h"
#include "refused-spec.h"
#include "syscall-filter.h"
#include "nbd-server.h"
#include "vdriver.h"

#define DISK_SIZE (1 << 20)
#define SECTORS (DISK_SIZE / 512)

/* Everything up to the refused URIs needs a server xvdm can reach, which
 * only a build with libnbd can. */
#ifdef HAVE_LIBNBD
static struct harness h;
static struct vdriver d;
static struct nbd_server srv = {.pid = -1};

/* ---- the guest's side ------------------------------------------------------ */

static int start_spec(const char *extra, unsigned queues, uint64_t features)
{
    char spec[256];

    snprintf(spec, sizeof(spec), "blk,nbd=%s%s", srv.uri, extra);
    return blk_guest_start(&h, &d, spec, queues, 64, features);
}

static void start(const char *extra, unsigned queues)
{
    ck_assert_int_eq(start_spec(extra, queues, BLK_GUEST_FEATURES), 0);
}

/* Kick queue 0 and collect `n` completions. */
static void complete(unsigned n)
{
    static const unsigned q0[] = {0};

    blk_guest_complete(&d, q0, 1, n);
}

static uint8_t run_split(uint32_t type, uint64_t sector, const uint32_t *part,
                         unsigned nparts, int fill, uint8_t **out)
{
    return blk_guest_run_split(&d, type, sector, part, nparts, fill, out);
}

static uint8_t run_one(uint32_t type, uint64_t sector, uint32_t len, int fill,
                       uint8_t **out)
{
    return blk_guest_run(&d, type, sector, len, fill, out);
}

/* One request on `queue`, kicked and completed: its status; a read's
 * data in *out. */
static uint8_t run_on(unsigned queue, uint32_t type, uint64_t sector,
                      uint32_t len, int fill, uint8_t **out)
{
    struct blk_req r = blk_guest_submit(&d, queue, type, sector, len,
                                        type == VIRTIO_BLK_T_IN);

    if (type == VIRTIO_BLK_T_OUT)
        memset(r.data, fill, len);
    blk_guest_complete(&d, &queue, 1, 1);
    if (out)
        *out = r.data;
    return *r.status;
}

static bool reads_as(uint64_t sector, unsigned sectors, uint8_t byte)
{
    return blk_guest_reads_as(&d, sector, sectors, byte);
}

/* A write of `sectors` sectors of `fill` at `sector` succeeds and reads
 * back. */
static void written_reads_back(uint64_t sector, unsigned sectors,
                               uint8_t fill)
{
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, sector, sectors * 512, fill,
                              NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(sector, sectors, fill));
}

/* ---- servers --------------------------------------------------------------- */

/* A test runs only where its server is installed (tools/install-deps
 * installs it for CI), and says so when it is not. */
static bool need(const char *prog)
{
    if (nbd_server_installed(prog))
        return true;
    printf("SKIP: %s not installed\n", prog);
    return false;
}

/* A fresh directory for the socket and files; the URI of its socket. */
static void server_dir(void)
{
    ck_assert_int_eq(nbd_server_dir(&srv), 0);
}

/* nbdkit serving `plugin` (with its arguments) through `filters`, each a
 * "--filter=..." word, NULL-terminated. */
static void nbdkit(const char *const *words)
{
    ck_assert_int_eq(nbd_server_nbdkit(&srv, words), 0);
}

static void remove_dir(void)
{
    ck_assert_int_eq(nbd_server_remove_dir(&srv), 0);
}

static void stop(void)
{
    harness_stop(&h);
    nbd_server_kill(&srv);
    remove_dir();
}

/* nbdkit with `words` and the device on its export; false (the test
 * skipped) where nbdkit is not installed. */
static bool nbdkit_started(const char *const *words)
{
    if (!need("nbdkit"))
        return false;
    server_dir();
    nbdkit(words);
    start("", 1);
    return true;
}

/* Lines of nbdkit's log filter holding every one of the words. */
static unsigned logged(const char *a, const char *b)
{
    char path[128], line[512];
    unsigned n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/log", srv.dir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f))
        n += strstr(line, a) && (!b || strstr(line, b));
    fclose(f);
    return n;
}

/* The export as another NBD client reads it. */
static void second_client_read(void *buf, size_t len)
{
    struct nbd_handle *nbd = nbd_create();

    ck_assert_ptr_nonnull(nbd);
    ck_assert_msg(nbd_connect_uri(nbd, srv.uri) == 0, "%s", nbd_get_error());
    ck_assert_int_eq(nbd_pread(nbd, buf, len, 0, 0), 0);
    nbd_close(nbd);
}

/* The servers the data tests run against: nbdkit's memory plugin, and
 * qemu-nbd serving a qcow2 image to three clients at once (it allows
 * multi-conn with more than one: xvdm's two queues take two). */
static bool serve(unsigned which)
{
    char img[96], cmd[256];

    server_dir();
    if (which == 0) {
        const char *words[] = {"memory", "1M", NULL};

        if (!need("nbdkit"))
            return false;
        nbdkit(words);
        return true;
    }
    if (!need("qemu-nbd") || !need("qemu-img"))
        return false;
    snprintf(img, sizeof(img), "%s/disk.qcow2", srv.dir);
    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s %d", img,
             DISK_SIZE);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(nbd_server_qemu(&srv, "qcow2", img, 3), 0);
    return true;
}

/* Random writes over two queues at once, a flush, then every byte read
 * back through xvdm and, independently, through a second NBD client. */
START_TEST(data_written_on_two_queues_reads_back_and_is_on_the_server)
{
    static uint8_t shadow[DISK_SIZE], seen[DISK_SIZE];
    unsigned seed = 42;

    if (!serve(_i))
        return;
    memset(shadow, 0, sizeof(shadow));
    start(",queues=2", 2);
    ck_assert_uint_eq(blk_guest_config(&d, 0, 8), SECTORS);
    ck_assert(d.features & (1ULL << VIRTIO_BLK_F_FLUSH));
    blk_guest_random_writes(&d, shadow, SECTORS, &seed);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    second_client_read(seen, DISK_SIZE);
    ck_assert(memcmp(seen, shadow, DISK_SIZE) == 0);
    ck_assert(blk_guest_reads_back(&d, shadow, SECTORS));
    stop();
}
END_TEST

/* qemu-nbd keeps a qcow2's new clusters in its metadata cache until a
 * flush: killed without one, the data is gone. The guest's flush goes to
 * the server, so after it a server killed at once and started again on
 * the image serves what was written. */
START_TEST(a_flush_makes_writes_survive_the_server_being_killed)
{
    static uint8_t seen[DISK_SIZE];
    char img[96];

    if (!serve(1))
        return;
    snprintf(img, sizeof(img), "%s/disk.qcow2", srv.dir);
    start("", 1);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 64, 64 * 1024, 0x5a, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    nbd_server_kill(&srv);
    harness_stop(&h);
    ck_assert_int_eq(nbd_server_qemu(&srv, "qcow2", img, 1), 0);
    second_client_read(seen, DISK_SIZE);
    for (unsigned i = 0; i < 64 * 1024; i++)
        ck_assert_uint_eq(seen[64 * 512 + i], 0x5a);
    ck_assert_uint_eq(seen[64 * 512 - 1], 0);
    nbd_server_kill(&srv);
    remove_dir();
}
END_TEST

/* nbdkit's memory plugin behind its log filter (`log` in the directory). */
static bool serve_logged(const char *plugin_extra)
{
    char logfile[128];
    const char *words[] = {"--filter=log", "memory", "1M", logfile,
                           plugin_extra, NULL};

    if (!need("nbdkit"))
        return false;
    server_dir();
    snprintf(logfile, sizeof(logfile), "logfile=%s/log", srv.dir);
    nbdkit(words);
    return true;
}

/* DISCARD goes as a trim, WRITE_ZEROES as a zero that keeps the
 * allocation unless the guest allowed unmapping; both read back as
 * zeroes. */
START_TEST(discard_and_write_zeroes_reach_the_server)
{
    if (!serve_logged(NULL))
        return;
    start("", 1);
    blk_guest_discards_and_zeroes(&d, SECTORS);
    ck_assert(reads_as(8, 8, 0));
    ck_assert(reads_as(16, 1, 0x77));
    ck_assert(reads_as(24, 8, 0));
    ck_assert_uint_eq(logged(" Zero id=", "offset=0x1000 count=0x1000"), 1);
    ck_assert_uint_eq(logged(" Zero id=", "trim=0"), 1);
    ck_assert_uint_eq(logged(" Zero id=", "trim=1"), 1);
    ck_assert_uint_eq(logged(" Trim id=", "offset=0x5000 count=0x1000"), 1);
    stop();
}
END_TEST

/* The guest's flush is the server's flush; a guest that cannot flush
 * gets writethrough, each write sent with FUA. */
START_TEST(flush_and_writethrough_reach_the_server)
{
    if (!serve_logged(NULL))
        return;
    start("", 1);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 0, 4096, 1, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(logged(" Write id=", "fua=0"), 1);
    ck_assert_uint_eq(logged(" Flush id=", NULL), 1);
    harness_stop(&h);
    ck_assert_int_eq(start_spec("", 1, BLK_GUEST_FEATURES &
                                           ~(1ULL << VIRTIO_BLK_F_FLUSH)),
                     0);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 8, 4096, 2, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(logged(" Write id=", "fua=1"), 1);
    stop();
}
END_TEST

START_TEST(read_only_export_is_offered_read_only_and_refuses_writes)
{
    const char *words[] = {"-r", "memory", "1M", NULL};

    if (!nbdkit_started(words))
        return;
    blk_guest_is_read_only(&d, 1, 0);
    stop();
}
END_TEST

/* nbdkit's error filter fails every write while a file exists: those get
 * IOERR, the device goes on serving, and writes work once it is gone. */
START_TEST(server_errors_fail_only_their_requests)
{
    char trigger[128], file[160];
    const char *words[] = {"--filter=error", "memory", "1M", "error-pwrite-rate=100%",
                           file, NULL};
    int fd;

    if (!need("nbdkit"))
        return;
    server_dir();
    snprintf(trigger, sizeof(trigger), "%s/fail", srv.dir);
    snprintf(file, sizeof(file), "error-pwrite-file=%s", trigger);
    nbdkit(words);
    start("", 1);
    fd = open(trigger, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 0, 4096, 3, NULL),
                      VIRTIO_BLK_S_IOERR);
    ck_assert(reads_as(0, 8, 0));
    unlink(trigger);
    written_reads_back(0, 8, 3);
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
    stop();
}
END_TEST

static uint64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* nbdkit serving a new file of DISK_SIZE bytes, named in `file` (which
 * `words` may hold), and the device on it with `extra` options; false
 * (the test skipped) where nbdkit is not installed. */
static bool file_served(char *file, size_t len, const char *const *words,
                        const char *extra)
{
    int fd;

    if (!need("nbdkit"))
        return false;
    server_dir();
    snprintf(file, len, "%s/disk", srv.dir);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_SIZE), 0);
    close(fd);
    nbdkit(words);
    start(extra, 1);
    return true;
}

/* A write of 4 KiB on `queue`, tried until the server is back (15 s at
 * most): the last status. */
static uint8_t write_back_on(unsigned queue, uint64_t sector, int fill)
{
    uint8_t status = VIRTIO_BLK_S_IOERR;

    for (uint64_t t0 = now_ms();
         status != VIRTIO_BLK_S_OK && now_ms() - t0 < 15000; usleep(50000))
        status = run_on(queue, VIRTIO_BLK_T_OUT, sector, 4096, fill, NULL);
    return status;
}

static uint8_t write_once_back(uint64_t sector, int fill)
{
    return write_back_on(0, sector, fill);
}

/* nbdkit serving a file, every read delayed 3 s. Reads in flight when it
 * is killed fail at once, not after a timeout; so does a request while it
 * is down. Started again, it is reconnected by itself: requests succeed,
 * and the write acknowledged before the kill is there. */
START_TEST(server_killed_under_requests_fails_them_and_is_reconnected)
{
    char file[128];
    const char *words[] = {"--filter=delay", "file", file, "rdelay=3", NULL};
    struct blk_req r[4];
    uint64_t t0;

    if (!file_served(file, sizeof(file), words, ""))
        return;
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 0, 4096, 0x42, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 4; i++)
        r[i] = blk_guest_submit(&d, 0, VIRTIO_BLK_T_IN, 8 * i, 4096, true);
    vdriver_kick(&d, 0);
    usleep(300000);
    t0 = now_ms();
    nbd_server_kill(&srv);
    complete(4);
    ck_assert_uint_lt(now_ms() - t0, 2000);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_uint_eq(*r[i].status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 8, 512, 1, NULL),
                      VIRTIO_BLK_S_IOERR);
    nbdkit(words);
    ck_assert_uint_eq(write_once_back(64, 7), VIRTIO_BLK_S_OK);
    ck_assert(reads_as(0, 8, 0x42));
    ck_assert(reads_as(64, 1, 7));
    stop();
}
END_TEST

/* The guest's flush on queue 0: its status. */
static uint8_t guest_flush(void)
{
    return run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL);
}

/* A flush after a write and no session lost succeeds. A write then
 * acknowledged, the server killed and started again (its memory, and
 * the write, gone) and reconnected to: the guest's next flush fails, as
 * it cannot make that write durable; the flush after it succeeds. */
START_TEST(a_flush_after_a_session_lost_under_unflushed_writes_fails_once)
{
    const char *words[] = {"memory", "1M", NULL};

    if (!nbdkit_started(words))
        return;
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 8, 4096, 0x31, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(guest_flush(), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 16, 4096, 0x32, NULL),
                      VIRTIO_BLK_S_OK);
    nbd_server_kill(&srv);
    nbdkit(words);
    ck_assert_uint_eq(write_once_back(64, 7), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(guest_flush(), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(guest_flush(), VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

/* nbdkit's memory plugin, and the device on it offering to switch its
 * cache (CONFIG_WCE): a write acknowledged, the server killed and started
 * again without it, and the guest's write once back; then the guest
 * switches to writethrough, and the device's flush for it is answered. */
static void a_write_lost_then_writethrough(void)
{
    const char *words[] = {"memory", "1M", NULL};
    uint64_t wce = 0x100 + offsetof(struct virtio_blk_config, wce);

    server_dir();
    nbdkit(words);
    ck_assert_int_eq(start_spec("", 1,
                                BLK_GUEST_FEATURES |
                                    1ULL << VIRTIO_BLK_F_CONFIG_WCE),
                     0);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 16, 4096, 0x32, NULL),
                      VIRTIO_BLK_S_OK);
    nbd_server_kill(&srv);
    nbdkit(words);
    ck_assert_uint_eq(write_once_back(64, 7), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(sim_mmio_write(h.sim, 0, d.base + wce, 1, 0), 0);
    usleep(300 * 1000); /* the device's flush answered, long since */
}

/* The device's own flush, made at the guest's switch to writethrough,
 * tells the guest nothing: a write lost with its session is still for
 * the guest's next flush to fail. */
START_TEST(a_switch_to_writethrough_leaves_a_lost_write_to_the_guests_flush)
{
    if (!need("nbdkit"))
        return;
    a_write_lost_then_writethrough();
    ck_assert_uint_eq(guest_flush(), VIRTIO_BLK_S_IOERR);
    stop();
}
END_TEST

/* As above, but the guest writes through from then on, so it sends no
 * flush: its next write fails instead (not its discard, whose error a
 * guest may ignore), and the write after that succeeds. */
START_TEST(a_guest_writing_through_hears_of_a_lost_write_from_its_next_write)
{
    if (!need("nbdkit"))
        return;
    a_write_lost_then_writethrough();
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_DISCARD, 96, 8, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 72, 4096, 0x33, NULL),
                      VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 72, 4096, 0x34, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(72, 8, 0x34));
    stop();
}
END_TEST

/* ---- a connection that dies as a request is sent ------------------------ */

/* A relay, on a thread, between xvdm and nbdkit: each connection xvdm
 * makes to its socket goes on to a new one to nbdkit. relay_cut() shuts
 * the relay's end of xvdm's connection for reading, which on a Unix
 * socket makes xvdm's next send fail with EPIPE and raises nothing else
 * (only xvdm's writing is shut: no POLLIN, no POLLHUP for its loop to
 * wake on, Linux's unix_shutdown() and unix_poll()). So the connection
 * is found dead inside the send of the next request, in the device's
 * submit, never by the loop handling the socket. */
struct relay {
    char sock[128];
    char uri[192];
    int listen_fd;
    int conn; /* xvdm's connection now, or -1 */
    bool cut;
    pthread_t thread;
};

static struct relay relay;

/* A Unix stream socket connected to `path`, or listening on it: the fd,
 * or -1. */
static int unix_socket(const char *path, bool listening)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ret;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    if (listening)
        ret = bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4);
    else
        ret = connect(fd, (struct sockaddr *)&a, sizeof(a));
    if (fd >= 0 && ret) {
        close(fd);
        return -1;
    }
    return fd;
}

/* What `from` has, written whole to `to`: false at its end or an error. */
static bool relay_copy(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof(buf)), w;

    for (ssize_t done = 0; n > 0 && done < n; done += w) {
        w = write(to, buf + done, (size_t)(n - done));
        if (w <= 0)
            return false;
    }
    return n > 0;
}

/* One connection of xvdm's, relayed until either end closes or it is
 * cut; once cut, kept open (xvdm must learn of it by sending) until xvdm
 * closes it. No assertions on this thread: a failure shows as xvdm's. */
static void relay_serve(int conn)
{
    int up = unix_socket(srv.sock, false);
    struct pollfd p[2] = {{.fd = conn, .events = POLLIN},
                          {.fd = up, .events = POLLIN}};

    while (up >= 0 && poll(p, 2, -1) > 0) {
        if (p[0].revents && !relay_copy(conn, up))
            break;
        if (p[1].revents && !relay_copy(up, conn))
            break;
    }
    if (up >= 0)
        close(up);
    if (__atomic_load_n(&relay.cut, __ATOMIC_SEQ_CST)) {
        p[0].events = 0; /* POLLHUP only: reading is shut, ever readable */
        poll(p, 1, -1);
        __atomic_store_n(&relay.cut, false, __ATOMIC_SEQ_CST);
    }
    __atomic_store_n(&relay.conn, -1, __ATOMIC_SEQ_CST);
    close(conn);
}

static void *relay_run(void *arg)
{
    int conn;

    (void)arg;
    while ((conn = accept4(relay.listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        __atomic_store_n(&relay.conn, conn, __ATOMIC_SEQ_CST);
        relay_serve(conn);
    }
    return NULL;
}

/* nbdkit's memory plugin, for the relay; false (the test skipped) where
 * nbdkit is not installed. */
static bool relay_server_started(void)
{
    const char *words[] = {"memory", "1M", NULL};

    if (!need("nbdkit"))
        return false;
    server_dir();
    nbdkit(words);
    return true;
}

/* The relay to the server, beside its socket. */
static void relay_listen(void)
{
    relay.conn = -1;
    relay.cut = false;
    snprintf(relay.sock, sizeof(relay.sock), "%s/relay", srv.dir);
    snprintf(relay.uri, sizeof(relay.uri), "nbd+unix:///?socket=%s",
             relay.sock);
    relay.listen_fd = unix_socket(relay.sock, true);
    ck_assert_int_ge(relay.listen_fd, 0);
    ck_assert_int_eq(pthread_create(&relay.thread, NULL, relay_run, NULL), 0);
}

static bool relay_started(void)
{
    if (!relay_server_started())
        return false;
    relay_listen();
    return true;
}

static void relay_cut(void)
{
    int conn = __atomic_load_n(&relay.conn, __ATOMIC_SEQ_CST);

    ck_assert_int_ge(conn, 0);
    __atomic_store_n(&relay.cut, true, __ATOMIC_SEQ_CST);
    ck_assert_int_eq(shutdown(conn, SHUT_RD), 0);
}

/* The device stopped first (the relay's connection then ends), then the
 * relay: a shut listening socket ends its accept(). */
static void relay_stop(void)
{
    harness_stop(&h);
    shutdown(relay.listen_fd, SHUT_RDWR);
    pthread_join(relay.thread, NULL);
    close(relay.listen_fd);
    nbd_server_kill(&srv);
    remove_dir();
}

static uint8_t cut_status, back_status;

/* A write into the cut connection, then writes until one succeeds. */
static void write_into_the_cut_then_until_back(void)
{
    cut_status = run_one(VIRTIO_BLK_T_OUT, 8, 4096, 0x66, NULL);
    back_status = write_once_back(16, 7);
}

/* The connection found dead as a write is sent: that write fails, the
 * device reconnects by itself (after its backoff) and later requests
 * succeed, with a few lines said about it, not one per request. */
START_TEST(a_connection_that_dies_as_a_request_is_sent_is_reconnected)
{
    char spec[256];
    unsigned lines;

    if (!relay_started())
        return;
    snprintf(spec, sizeof(spec), "blk,nbd=%s", relay.uri);
    ck_assert_int_eq(blk_guest_start(&h, &d, spec, 1, 64, BLK_GUEST_FEATURES),
                     0);
    written_reads_back(0, 8, 0x42);
    relay_cut();
    lines = log_lines_during(write_into_the_cut_then_until_back, "nbd='");
    ck_assert_uint_eq(cut_status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(back_status, VIRTIO_BLK_S_OK);
    /* Lost, connected again, and at most the refused write's line. */
    ck_assert_uint_le(lines, 3);
    ck_assert(reads_as(0, 8, 0x42));
    ck_assert(reads_as(16, 8, 7));
    relay_stop();
}
END_TEST

#ifdef HAVE_LIBSECCOMP
/* The device on the relay, --seccomp's filter installed once it serves,
 * then the connection cut: the reconnect, made under the filter, must
 * come back. In a process of its own (check_in_child), which starts the
 * relay's thread (a fork has none) and leaves nbdkit to the test. 0 when
 * everything held, else which step failed. */
static int filtered_reconnect(const void *arg)
{
    char spec[256];

    (void)arg;
    relay_listen();
    snprintf(spec, sizeof(spec), "blk,nbd=%s", relay.uri);
    if (blk_guest_start(&h, &d, spec, 1, 64, BLK_GUEST_FEATURES) ||
        run_one(VIRTIO_BLK_T_OUT, 0, 4096, 0x42, NULL) != VIRTIO_BLK_S_OK)
        return 1;
    if (syscall_filter_install())
        return 2;
    relay_cut();
    write_into_the_cut_then_until_back();
    if (cut_status != VIRTIO_BLK_S_IOERR)
        return 3;
    if (back_status != VIRTIO_BLK_S_OK)
        return 4;
    return reads_as(0, 8, 0x42) ? 0 : 5;
}

START_TEST(a_reconnect_under_the_syscall_filter_comes_back)
{
    if (!relay_server_started())
        return;
    check_in_child("reconnect under --seccomp", filtered_reconnect, NULL);
    nbd_server_kill(&srv);
    remove_dir();
}
END_TEST
#endif

/* ---- under --chroot ------------------------------------------------------ */

/* Inside the chroot into srv.dir, nbdkit's socket by its full path too
 * (a link to /sock), for the relay: only xvdm's own path must change. */
static void mirror_server_socket(bool make)
{
    char tmp[96], mirror[160], link[176];

    snprintf(tmp, sizeof(tmp), "%s/tmp", srv.dir);
    snprintf(mirror, sizeof(mirror), "%s%s", srv.dir, srv.dir);
    snprintf(link, sizeof(link), "%s/sock", mirror);
    if (make) {
        ck_assert_int_eq(mkdir(tmp, 0700), 0);
        ck_assert_int_eq(mkdir(mirror, 0700), 0);
        ck_assert_int_eq(symlink("/sock", link), 0);
    } else {
        ck_assert_int_eq(unlink(link) || rmdir(mirror) || rmdir(tmp), 0);
    }
}

/* relay.uri with its socket's path percent-encoded, every '/' as %2F
 * and the rest as it is, as libnbd decodes it. */
static void relay_uri_encoded(char *uri, size_t len)
{
    size_t n = (size_t)snprintf(uri, len, "nbd+unix:///?socket=");

    for (const char *c = relay.sock; *c && n < len; c++)
        n += (size_t)snprintf(uri + n, len - n, *c == '/' ? "%%2F" : "%c", *c);
}

/* Under --chroot DIR the first connection is made before the chroot and
 * every reconnect inside it: a socket outside DIR is refused naming it,
 * one inside is reconnected to by the rest of its path after DIR, also
 * when the URI percent-encodes it (_i 1). (The test chroots into the
 * server's directory and escapes back.) */
START_TEST(under_chroot_a_socket_inside_the_directory_is_reconnected_to)
{
    char spec[256], uri[192];
    int root_fd;

    host_path_set_root("/srv/xvdm-jail");
    expect_spec_refused("blk,nbd=nbd+unix:///?socket=/tmp/x.sock",
                        "its socket is outside the --chroot directory");
    if (!relay_started())
        return;
    mirror_server_socket(true);
    host_path_set_root(srv.dir);
    if (_i)
        relay_uri_encoded(uri, sizeof(uri));
    snprintf(spec, sizeof(spec), "blk,nbd=%s", _i ? uri : relay.uri);
    ck_assert_int_eq(blk_guest_start(&h, &d, spec, 1, 64, BLK_GUEST_FEATURES),
                     0);
    written_reads_back(0, 8, 0x42);
    root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(root_fd, 0);
    ck_assert_int_eq(chroot(srv.dir), 0);
    ck_assert_int_eq(chdir("/"), 0);
    host_path_root_entered();
    relay_cut();
    write_into_the_cut_then_until_back();
    ck_assert_int_eq(fchdir(root_fd), 0);
    ck_assert_int_eq(chroot("."), 0);
    close(root_fd);
    host_path_set_root(NULL);
    ck_assert_uint_eq(cut_status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(back_status, VIRTIO_BLK_S_OK);
    ck_assert(reads_as(0, 8, 0x42));
    ck_assert(reads_as(16, 8, 7));
    mirror_server_socket(false);
    relay_stop();
}
END_TEST

/* The URI `fmt` makes refused at create, by a line naming it and saying
 * `why`. */
static void __attribute__((format(printf, 2, 3)))
expect_uri_refused(const char *why, const char *fmt, ...)
{
    char spec[256], named[384];
    va_list ap;

    snprintf(spec, sizeof(spec), "blk,nbd=");
    va_start(ap, fmt);
    vsnprintf(spec + 8, sizeof(spec) - 8, fmt, ap);
    va_end(ap);
    snprintf(named, sizeof(named), "nbd='%s': %s", spec + 8, why);
    expect_spec_refused(spec, named);
}

/* Under --chroot DIR, URIs whose socket xvdm would check inside DIR while
 * libnbd connects (before the chroot) to one outside it: every reconnect
 * would miss it. Each is refused naming it, while the server outside
 * answers (each would start without the check). TLS is refused too:
 * libnbd reads its certificates at every handshake. */
START_TEST(under_chroot_uris_that_reach_outside_the_directory_are_refused)
{
    const char *const words[] = {"memory", "1M", NULL};
    char jail[96], link[112];

    if (!need("nbdkit"))
        return;
    server_dir();
    nbdkit(words);
    snprintf(jail, sizeof(jail), "%s/jail", srv.dir);
    snprintf(link, sizeof(link), "%s/link", jail);
    ck_assert_int_eq(mkdir(jail, 0700), 0);
    ck_assert_int_eq(symlink(srv.sock, link), 0);
    host_path_set_root(jail);
    expect_uri_refused("socket= is given more than once",
                       "nbd+unix:///?socket=%s/ok.sock&socket=%s", jail,
                       srv.sock);
    expect_uri_refused("socket= is given more than once",
                       "nbd+unix:///?socket=%s/ok.sock;socket=%s", jail,
                       srv.sock);
    expect_uri_refused("its socket is outside the --chroot directory",
                       "nbd+unix:///?%%73ocket=%s", srv.sock);
    expect_uri_refused("its socket is outside the --chroot directory",
                       "nbd+unix:///?socket=%s/../sock", jail);
    expect_uri_refused("its socket's path is not the path it resolves to",
                       "nbd+unix:///?socket=%s", link);
    expect_uri_refused("TLS is not served under --chroot",
                       "nbds+unix:///?socket=%s/ok.sock", jail);
    host_path_set_root(NULL);
    nbd_server_kill(&srv);
    remove_dir();
}
END_TEST

/* A server that takes at most 64 KiB per command: a 256 KiB write and
 * read through xvdm are split into commands it takes. */
START_TEST(requests_larger_than_the_server_takes_are_split)
{
    const char *words[] = {"--filter=blocksize-policy", "memory", "1M",
                           "blocksize-maximum=65536", "blocksize-error-policy=error",
                           NULL};

    if (!nbdkit_started(words))
        return;
    written_reads_back(0, 512, 0x33);
    stop();
}
END_TEST

/* A server whose minimum block is 4 KiB (libnbd then refuses anything
 * smaller or unaligned): the guest is told 4 KiB logical blocks, so a
 * driver keeping to them goes straight to the server; a 512-byte write
 * still works, read-modify-write of its block, leaving the rest. */
START_TEST(a_servers_minimum_block_size_is_the_guests_block_size)
{
    const char *words[] = {"--filter=blocksize-policy", "memory", "1M",
                           "blocksize-minimum=4096", "blocksize-preferred=4096",
                           "blocksize-error-policy=error", NULL};

    if (!nbdkit_started(words))
        return;
    ck_assert(d.offered & (1ULL << VIRTIO_BLK_F_BLK_SIZE));
    ck_assert_uint_eq(blk_guest_config(&d, 20, 4), 4096); /* blk_size */
    written_reads_back(8, 16, 0x5a);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 1, 512, 1, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(0, 1, 0));
    ck_assert(reads_as(1, 1, 1));
    ck_assert(reads_as(2, 6, 0));
    ck_assert(!(vdriver_status(&d) & VIRTIO_STATUS_NEEDS_RESET));
    stop();
}
END_TEST

/* The guest may split a request's data anywhere (VIRTIO 1.2 §2.6.4.2):
 * 4 KiB in buffers of 3584 and 512 bytes, to a server whose minimum block
 * is 4 KiB, is written and read back whole. */
START_TEST(buffers_that_straddle_the_servers_minimum_block_still_work)
{
    const char *words[] = {"--filter=blocksize-policy", "memory", "1M",
                           "blocksize-minimum=4096", "blocksize-preferred=4096",
                           "blocksize-error-policy=error", NULL};
    static const uint32_t split[] = {3584, 512};
    uint8_t *data;

    if (!nbdkit_started(words))
        return;
    ck_assert_uint_eq(run_split(VIRTIO_BLK_T_OUT, 8, split, 2, 0x6b, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(8, 8, 0x6b));
    ck_assert_uint_eq(run_split(VIRTIO_BLK_T_IN, 8, split, 2, 0, &data),
                      VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 4096; i++)
        ck_assert_uint_eq(data[i], 0x6b);
    ck_assert(reads_as(0, 8, 0));
    stop();
}
END_TEST

/* A request through the bounce buffer larger than it (1 MiB): 3 MiB and
 * 1 KiB from sector 1, neither end on the server's 4 KiB block, in
 * buffers that straddle it, goes a piece at a time, the edge blocks read
 * first; it is written around its neighbours and reads back whole. */
START_TEST(a_bounced_request_larger_than_the_bounce_buffer_goes_in_pieces)
{
    const char *words[] = {"--filter=blocksize-policy", "memory", "8M",
                           "blocksize-minimum=4096", "blocksize-preferred=4096",
                           "blocksize-error-policy=error", NULL};
    static const uint32_t split[] = {3584, (3 << 20) + 1024 - 3584};
    const unsigned sectors = ((3 << 20) + 1024) / 512;
    uint8_t *data;

    if (!nbdkit_started(words))
        return;
    written_reads_back(0, sectors + 16, 0xaa);
    ck_assert_uint_eq(run_split(VIRTIO_BLK_T_OUT, 1, split, 2, 0x6c, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(0, 1, 0xaa));
    ck_assert(reads_as(1, sectors, 0x6c));
    ck_assert(reads_as(1 + sectors, 15, 0xaa));
    ck_assert_uint_eq(run_split(VIRTIO_BLK_T_IN, 1, split, 2, 0, &data),
                      VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < sectors * 512; i++)
        ck_assert_uint_eq(data[i], 0x6c);
    stop();
}
END_TEST

/* A writethrough guest (no VIRTIO_BLK_F_FLUSH) against a server with a
 * flush but no FUA and a 4 KiB minimum block: six writes of 1 MiB whose
 * buffers straddle the block go through bounce buffers, more than the
 * device's 4 MiB of them at once, each followed by a flush. All six
 * complete, and read back. */
START_TEST(bounced_writethrough_writes_past_the_bounce_budget_complete)
{
    const char *words[] = {"--filter=blocksize-policy", "--filter=fua",
                           "memory", "8M", /* fua's default: none offered */
                           "blocksize-minimum=4096", "blocksize-preferred=4096",
                           "blocksize-error-policy=error", NULL};
    static const uint32_t split[] = {3584, (1 << 20) - 3584};
    struct blk_req r[6];

    if (!need("nbdkit"))
        return;
    server_dir();
    nbdkit(words);
    ck_assert_int_eq(start_spec("", 1, BLK_GUEST_FEATURES &
                                           ~(1ULL << VIRTIO_BLK_F_FLUSH)),
                     0);
    for (unsigned i = 0; i < 6; i++) {
        r[i] = blk_guest_submit_split(&d, 0, VIRTIO_BLK_T_OUT, i * 2048ULL,
                                      split, 2, false);
        memset(r[i].data, 0x10 + (int)i, 1 << 20);
    }
    complete(6);
    for (unsigned i = 0; i < 6; i++) {
        ck_assert_uint_eq(*r[i].status, VIRTIO_BLK_S_OK);
        ck_assert(reads_as(i * 2048ULL, 2048, 0x10 + i));
    }
    stop();
}
END_TEST

/* nbdkit's memory plugin (8 MiB) with a 4 KiB minimum block, running
 * commands on 16 threads at once, delayed as the delay filter's words
 * delay1 and delay2 (or NULL) say; the device on it. */
static bool served_4k_delayed(const char *delay1, const char *delay2)
{
    const char *words[] = {"-t", "16", "--filter=blocksize-policy",
                           "--filter=delay", "memory", "8M",
                           "blocksize-minimum=4096", "blocksize-preferred=4096",
                           "blocksize-error-policy=error", delay1, delay2,
                           NULL};

    return nbdkit_started(words);
}

/* Three reads and then two writes of 1 MiB, with buffers that straddle
 * the server's 4 KiB block, each through a bounce buffer of 1 MiB: the
 * second write waits for the device's 4 MiB of them, and goes when the
 * first write completes, the slow reads (2 s) then the only commands at
 * the server. It is more than the socket takes at once: the rest goes as
 * the socket has room, not when a read's reply comes, so both writes
 * complete before any read. */
START_TEST(a_write_that_waited_for_bounce_room_is_sent_while_others_wait)
{
    static const uint32_t split[] = {3584, (1 << 20) - 3584};
    struct blk_req r[5];

    if (!served_4k_delayed("rdelay=2", NULL))
        return;
    for (unsigned i = 0; i < 5; i++) {
        r[i] = blk_guest_submit_split(
            &d, 0, i < 3 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, i * 2048ULL,
            split, 2, i < 3);
        if (i >= 3)
            memset(r[i].data, 0x20 + (int)i, 1 << 20);
    }
    complete(2);
    ck_assert_uint_eq(*r[3].status, VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(*r[4].status, VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_uint_eq(*r[i].status, 0xff); /* not yet */
    complete(3);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_uint_eq(*r[i].status, VIRTIO_BLK_S_OK);
    ck_assert(reads_as(4 * 2048, 2048, 0x24));
    stop();
}
END_TEST

/* Write-zeroes whose segments share a server block, one at the block's
 * edge (read, zeroed in part, written back whole), one over all of it (a
 * zero command), on a server that runs commands at once and writes
 * slower than it zeroes: every sector asked for reads back as zeroes
 * (VIRTIO 1.2 §5.2.6.2), none as the block was before, with the edge
 * first (its write must not land after the zeroes) or last (its read
 * must not come before them). */
START_TEST(write_zeroes_segments_sharing_a_block_all_read_back_as_zeroes)
{
    static const unsigned q0[] = {0};
    const uint64_t seg[2][2][2] = {{{1, 1}, {0, 16}}, {{16, 16}, {17, 1}}};

    if (!served_4k_delayed("wdelay=600ms", "delay-zero=300ms"))
        return;
    written_reads_back(0, 32, 0xaa);
    for (unsigned i = 0; i < 2; i++) {
        struct blk_req r = blk_guest_submit_ranges(
            &d, VIRTIO_BLK_T_WRITE_ZEROES, seg[i], 2, 0);

        blk_guest_complete(&d, q0, 1, 1);
        ck_assert_uint_eq(*r.status, VIRTIO_BLK_S_OK);
        ck_assert(reads_as(16 * i, 16, 0));
    }
    stop();
}
END_TEST

/* A write of the whole of a server block of 4 KiB, and beside it a write
 * of no data (only its header) at a sector inside the block: the empty
 * one touches nothing (as on a file), so the block reads back as the
 * other wrote it; a read of no data succeeds too. */
START_TEST(an_empty_write_inside_a_block_leaves_the_block_alone)
{
    struct blk_req empty, whole;

    if (!served_4k_delayed("rdelay=200ms", "wdelay=600ms"))
        return;
    written_reads_back(0, 8, 0xaa);
    whole = blk_guest_submit(&d, 0, VIRTIO_BLK_T_OUT, 0, 4096, false);
    memset(whole.data, 0x55, 4096);
    empty = blk_guest_submit(&d, 0, VIRTIO_BLK_T_OUT, 1, 0, false);
    complete(2);
    ck_assert_uint_eq(*empty.status, VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(*whole.status, VIRTIO_BLK_S_OK);
    ck_assert(reads_as(0, 8, 0x55));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, 1, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

/* The most commands one device has at the server at once (README,
 * threat model). */
#define NBD_INFLIGHT_MAX 64

/* The most commands nbdkit's log filter saw in flight at once: a line
 * " Read id=" (or Write) when one comes in, "...Read id=" when it is
 * answered. */
static unsigned most_in_flight(void)
{
    char path[128], line[512];
    unsigned in = 0, most = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/log", srv.dir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, "...Read id=") || strstr(line, "...Write id="))
            in--;
        else if (strstr(line, " Read id=") || strstr(line, " Write id="))
            in++;
        most = in > most ? in : most;
    }
    fclose(f);
    return most;
}

/* Submit 16 requests of 64 KiB (the whole disk) on queue 0 and complete
 * them: writes of 1, 2, ... 16, or reads that must find them. */
static void whole_disk_in_64k_requests(uint32_t type)
{
    struct blk_req r[16];

    for (unsigned i = 0; i < 16; i++) {
        r[i] = blk_guest_submit(&d, 0, type, i * 128, 65536,
                                type == VIRTIO_BLK_T_IN);
        if (type == VIRTIO_BLK_T_OUT)
            memset(r[i].data, (int)i + 1, 65536);
    }
    complete(16);
    for (unsigned i = 0; i < 16; i++) {
        ck_assert_uint_eq(*r[i].status, VIRTIO_BLK_S_OK);
        for (unsigned j = 0; type == VIRTIO_BLK_T_IN && j < 65536; j++)
            ck_assert_uint_eq(r[i].data[j], i + 1);
    }
}

/* A server that takes 4 KiB per command, each answered late, with the
 * threads to take 256 at once: 16 requests of 64 KiB are 256 commands,
 * of which at most NBD_INFLIGHT_MAX, and more than one, are at the
 * server at a time; all complete with their data. */
START_TEST(commands_in_flight_are_bounded_per_device)
{
    char logfile[128];
    const char *words[] = {"-t", "256", "--filter=blocksize-policy",
                           "--filter=log", "--filter=delay", "memory", "1M",
                           "blocksize-maximum=4096", logfile, "rdelay=20ms",
                           "wdelay=20ms", NULL};

    if (!need("nbdkit"))
        return;
    server_dir();
    snprintf(logfile, sizeof(logfile), "logfile=%s/log", srv.dir);
    nbdkit(words);
    start("", 1);
    whole_disk_in_64k_requests(VIRTIO_BLK_T_OUT);
    whole_disk_in_64k_requests(VIRTIO_BLK_T_IN);
    ck_assert_uint_eq(logged(" Write id=", "count=0x1000"), 256);
    ck_assert_uint_le(most_in_flight(), NBD_INFLIGHT_MAX);
    ck_assert_uint_gt(most_in_flight(), 1); /* still pipelined */
    stop();
}
END_TEST

/* The export comes back from a reconnect as another server says it is:
 * half the size, a 4 KiB minimum block where it was 512 bytes. The guest
 * is told the new capacity at once (a new config generation, with no
 * size-check= to find it) and requests past it fail; 512-byte requests,
 * which the guest was told it may make, still work (read whole blocks,
 * write them back), leaving their neighbours. */
START_TEST(a_reconnect_to_a_smaller_export_with_larger_blocks_is_followed)
{
    char file[128];
    const char *before[] = {"file", file, NULL};
    const char *after[] = {"--filter=blocksize-policy", "--filter=truncate",
                           "file", file, "truncate=524288",
                           "blocksize-minimum=4096",
                           "blocksize-error-policy=error", NULL};
    uint32_t generation;

    if (!file_served(file, sizeof(file), before, ",size-check=0"))
        return;
    ck_assert_uint_eq(blk_guest_config(&d, 20, 4), 512); /* blk_size */
    written_reads_back(8, 8, 0x11);
    generation = vdriver_read(&d, VIRTIO_MMIO_CONFIG_GENERATION);
    nbd_server_kill(&srv);
    nbdkit(after);
    ck_assert_uint_eq(write_once_back(64, 0x33), VIRTIO_BLK_S_OK);
    for (uint64_t t0 = now_ms(); blk_guest_config(&d, 0, 8) != SECTORS / 2 &&
                                 now_ms() - t0 < 5000;
         usleep(50000))
        ;
    ck_assert_uint_eq(blk_guest_config(&d, 0, 8), SECTORS / 2);
    ck_assert_uint_ne(vdriver_read(&d, VIRTIO_MMIO_CONFIG_GENERATION),
                      generation);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, SECTORS / 2, 4096, 0, NULL),
                      VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 9, 512, 0x22, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(8, 1, 0x11));
    ck_assert(reads_as(9, 1, 0x22));
    ck_assert(reads_as(10, 6, 0x11));
    stop();
}
END_TEST

/* The file served again, after a kill, with a 4 KiB minimum block behind
 * nbdkit's log filter; back when a write to `sector` succeeds. */
static void served_again_with_4k_blocks(const char *file, uint64_t sector)
{
    char logfile[128];
    const char *after[] = {"--filter=blocksize-policy", "--filter=log",
                           "file", file, logfile, "blocksize-minimum=4096",
                           "blocksize-error-policy=error", NULL};

    snprintf(logfile, sizeof(logfile), "logfile=%s/log", srv.dir);
    nbd_server_kill(&srv);
    nbdkit(after);
    ck_assert_uint_eq(write_once_back(sector, 0x33), VIRTIO_BLK_S_OK);
}

/* After a reconnect to a server with a 4 KiB minimum block, the guest's
 * 512-byte ranges still work: write-zeroes zeroes exactly its sectors
 * (the blocks at its edges read, zeroed in part, written back), and
 * discard, advisory (VIRTIO 1.2 §5.2.6.2), trims the whole blocks inside
 * its range and leaves the rest. */
START_TEST(unaligned_ranges_after_a_reconnect_to_larger_blocks_work)
{
    char file[128];
    const char *before[] = {"file", file, NULL};

    if (!file_served(file, sizeof(file), before, ""))
        return;
    written_reads_back(0, 32, 0x11);
    written_reads_back(32, 32, 0x22);
    served_again_with_4k_blocks(file, 128);
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_WRITE_ZEROES, 3, 18, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_WRITE_ZEROES, 25, 1, 1),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(0, 3, 0x11));
    ck_assert(reads_as(3, 18, 0));
    ck_assert(reads_as(21, 4, 0x11));
    ck_assert(reads_as(25, 1, 0));
    ck_assert(reads_as(26, 6, 0x11));
    ck_assert_uint_eq(logged(" Zero id=", "offset=0x1000 count=0x1000"), 1);
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_DISCARD, 33, 17, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_DISCARD, 50, 3, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(logged(" Trim id=", NULL), 1);
    ck_assert_uint_eq(logged(" Trim id=", "offset=0x5000 count=0x1000"), 1);
    ck_assert(reads_as(32, 8, 0x22));
    ck_assert(reads_as(48, 16, 0x22));
    stop();
}
END_TEST

static void start_one_queue(void)
{
    start("", 1);
}

/* An export of 1 MiB - 512 bytes with a 4 KiB minimum block: NBD forbids
 * a request past the end or not aligned to the block (the NBD protocol,
 * "Block size constraints"), so the last 3584 bytes cannot be reached.
 * The guest is told a capacity of whole blocks, with a line saying why,
 * and its last sectors can be read and written. */
START_TEST(an_exports_last_partial_block_is_left_out_of_the_capacity)
{
    const char *words[] = {"--filter=blocksize-policy", "--filter=truncate",
                           "memory", "1M", "truncate=1048064",
                           "blocksize-minimum=4096",
                           "blocksize-error-policy=error", NULL};

    if (!need("nbdkit"))
        return;
    server_dir();
    nbdkit(words);
    ck_assert_uint_eq(log_lines_during(start_one_queue, "3584 bytes"), 1);
    ck_assert_uint_eq(blk_guest_config(&d, 0, 8), SECTORS - 8);
    written_reads_back(SECTORS - 9, 1, 0x44);
    ck_assert(reads_as(SECTORS - 16, 7, 0));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, SECTORS - 8, 512, 0, NULL),
                      VIRTIO_BLK_S_IOERR);
    stop();
}
END_TEST

/* Reads tried until the server is back (15 s at most): whether one
 * succeeded. */
static bool read_once_back(void)
{
    uint8_t status = VIRTIO_BLK_S_IOERR;

    for (uint64_t t0 = now_ms();
         status != VIRTIO_BLK_S_OK && now_ms() - t0 < 15000; usleep(50000))
        status = run_one(VIRTIO_BLK_T_IN, 0, 4096, 0, NULL);
    return status == VIRTIO_BLK_S_OK;
}

static uint8_t ro_write_status;

static void write_to_read_only(void)
{
    ro_write_status = run_one(VIRTIO_BLK_T_OUT, 0, 512, 1, NULL);
}

/* Guest errors enough to use up the device's budget of them (10 lines
 * in 5 s, src/core/log.h), as a guest can at will. */
static void guest_errors_use_up_the_budget(void)
{
    for (int i = 0; i < 11; i++)
        ck_assert_uint_eq(run_one(VIRTIO_BLK_T_IN, SECTORS, 512, 0, NULL),
                          VIRTIO_BLK_S_IOERR);
}

/* A server back read-only: the guest was offered a writable disk, which
 * virtio cannot take back, so its writes, discards and write-zeroes fail;
 * the host's state, not the guest's doing, said once on the connection
 * even after the guest used up its budget of error lines (as the reads
 * failed while the server was away can); reads still work. */
START_TEST(a_reconnect_to_a_read_only_export_fails_writes)
{
    char file[128];
    const char *before[] = {"file", file, NULL};
    const char *after[] = {"-r", "file", file, NULL};

    if (!file_served(file, sizeof(file), before, ""))
        return;
    written_reads_back(0, 8, 0x11);
    nbd_server_kill(&srv);
    nbdkit(after);
    ck_assert(read_once_back());
    guest_errors_use_up_the_budget();
    ck_assert_uint_eq(log_lines_during(write_to_read_only, "read-only"), 1);
    ck_assert_uint_eq(ro_write_status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(log_lines_during(write_to_read_only, "read-only"), 0);
    ck_assert_uint_eq(ro_write_status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_DISCARD, 0, 8, 0),
                      VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0),
                      VIRTIO_BLK_S_IOERR);
    ck_assert(reads_as(0, 8, 0x11));
    stop();
}
END_TEST

/* The eval plugin's pread= and pwrite= words, reading and writing `file`
 * (a MiB) with dd. */
static void eval_on_file(const char *file, char *pread, char *pwrite,
                         size_t len)
{
    snprintf(pread, len,
             "pread=dd if=%s skip=$4 count=$3 iflag=skip_bytes,count_bytes "
             "status=none", file);
    snprintf(pwrite, len,
             "pwrite=dd of=%s seek=$4 conv=notrunc oflag=seek_bytes "
             "status=none", file);
}

/* A server back without flush, trim or write-zeroes (nbdkit's eval
 * plugin on the same file, behind its log filter): the guest's flush,
 * with no cache at the server to flush, succeeds without NBD_CMD_FLUSH;
 * its discard, a hint, succeeds without NBD_CMD_TRIM; its write-zeroes,
 * which the server no longer takes, fails; writes still work. */
START_TEST(a_reconnect_to_an_export_without_flush_trim_or_zero_is_followed)
{
    char file[128], logfile[128], pread[256], pwrite[256];
    const char *before[] = {"file", file, NULL};
    const char *after[] = {"--filter=nozero", "--filter=log", "eval",
                           logfile, "get_size=echo 1048576", pread, pwrite,
                           "can_flush=exit 3", "can_trim=exit 3", NULL};

    if (!file_served(file, sizeof(file), before, ""))
        return;
    ck_assert(d.features & (1ULL << VIRTIO_BLK_F_FLUSH));
    ck_assert(d.features & (1ULL << VIRTIO_BLK_F_DISCARD));
    snprintf(logfile, sizeof(logfile), "logfile=%s/log", srv.dir);
    eval_on_file(file, pread, pwrite, sizeof(pread));
    nbd_server_kill(&srv);
    nbdkit(after);
    ck_assert_uint_eq(write_once_back(8, 0x55), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_DISCARD, 8, 8, 0),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(blk_guest_range(&d, VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 0),
                      VIRTIO_BLK_S_IOERR);
    ck_assert(reads_as(8, 8, 0x55));
    ck_assert_uint_eq(logged(" Flush id=", NULL), 0);
    ck_assert_uint_eq(logged(" Trim id=", NULL), 0);
    stop();
}
END_TEST

/* A write lost with its session, and the server back without a flush
 * (the eval plugin on the same file): a flush then completes as it is
 * sent, and the failed flush that tells the guest reaches its ring only
 * at the end of the drain, after the flush behind it was sent. That one,
 * covering the lost write too, fails as well; the next succeeds. */
START_TEST(a_flush_sent_before_the_guests_ring_had_the_failure_fails_too)
{
    char file[128], pread[256], pwrite[256];
    const char *before[] = {"file", file, NULL};
    const char *after[] = {"eval", "get_size=echo 1048576", pread, pwrite,
                           "can_flush=exit 3", NULL};
    struct blk_req f[2];

    if (!file_served(file, sizeof(file), before, ""))
        return;
    eval_on_file(file, pread, pwrite, sizeof(pread));
    ck_assert_uint_eq(run_one(VIRTIO_BLK_T_OUT, 16, 4096, 0x32, NULL),
                      VIRTIO_BLK_S_OK);
    nbd_server_kill(&srv);
    nbdkit(after);
    ck_assert_uint_eq(write_once_back(8, 0x55), VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 2; i++)
        f[i] = blk_guest_submit(&d, 0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
    complete(2);
    ck_assert_uint_eq(*f[0].status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(*f[1].status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(guest_flush(), VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

/* ---- multi-conn: a connection a queue -------------------------------------- */

static void start_two_queues(void)
{
    start(",queues=2", 2);
}

/* nbdkit through its log filter and then `filter` (or none), serving
 * `plugin_words`; the device on it with two queues, saying `said` once. */
static bool served_to_two_queues(const char *filter,
                                 const char *const *plugin_words,
                                 const char *said)
{
    char logfile[128];
    const char *words[12] = {"--filter=log"};
    unsigned n = 1;

    if (!need("nbdkit"))
        return false;
    server_dir();
    snprintf(logfile, sizeof(logfile), "logfile=%s/log", srv.dir);
    if (filter)
        words[n++] = filter;
    for (; *plugin_words; plugin_words++)
        words[n++] = *plugin_words;
    words[n++] = logfile;
    words[n] = NULL;
    nbdkit(words);
    ck_assert_uint_eq(log_lines_during(start_two_queues, said), 1);
    return true;
}

/* 4 KiB written at sector 16 (offset 0x2000) through queue 0 read back
 * through queue 1. */
static void queue_1_reads_what_queue_0_wrote(void)
{
    uint8_t *data;

    ck_assert_uint_eq(run_on(0, VIRTIO_BLK_T_OUT, 16, 4096, 0x3c, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(run_on(1, VIRTIO_BLK_T_IN, 16, 4096, 0, &data),
                      VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 4096; i++)
        ck_assert_uint_eq(data[i], 0x3c);
}

/* nbdkit's memory plugin allows multi-conn: the server sees two
 * connections, queue 0's write goes on the first, queue 1's read on the
 * second, and the read finds the write. */
START_TEST(two_queues_get_a_connection_each_where_the_server_allows_multi_conn)
{
    const char *plugin[] = {"memory", "1M", NULL};

    if (!served_to_two_queues(NULL, plugin, "2 connections (multi-conn)"))
        return;
    queue_1_reads_what_queue_0_wrote();
    ck_assert_uint_eq(logged(" Connect export=", NULL), 2);
    ck_assert_uint_eq(logged("connection=1 Write id=", "offset=0x2000"), 1);
    ck_assert_uint_eq(logged("connection=2 Read id=", "offset=0x2000"), 1);
    stop();
}
END_TEST

/* The server killed, and time for the loop to see each connection's
 * socket hang up. */
static void server_killed(void)
{
    nbd_server_kill(&srv);
    usleep(500 * 1000);
}

/* With two connections, each line about one says which: the second's
 * connect; then, the server killed, the second's loss, and, the server
 * back, the first's (numbered once the second was there). */
START_TEST(each_connections_lines_say_which_connection)
{
    const char *plugin[] = {"memory", "1M", NULL};
    const char *words[] = {"memory", "1M", NULL};

    if (!served_to_two_queues(NULL, plugin, "(connection 2): connected,"))
        return;
    ck_assert_uint_eq(
        log_lines_during(server_killed, "(connection 2): connection lost ("),
        1);
    nbdkit(words);
    ck_assert_uint_eq(write_back_on(0, 16, 0x11), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(
        log_lines_during(server_killed, "(connection 1): connection lost ("),
        1);
    stop();
}
END_TEST

/* Two queues on a vCPU that waits up to 30 s for an answer (a reset
 * that waits on the server may take longer than the usual 5 s). */
/* The device on `queues` queues, on a vCPU that waits 30 s for an
 * answer. */
static void start_patient(unsigned queues)
{
    struct sim_config cfg = harness_sim_config(1);
    char spec[256];

    cfg.ioreq_timeout_ms = 30000;
    snprintf(spec, sizeof(spec), "blk,nbd=%s,queues=%u", srv.uri, queues);
    ck_assert_int_eq(blk_guest_start_sim(&h, &d, spec, queues, 64,
                                         BLK_GUEST_FEATURES, &cfg),
                     0);
}

static void start_two_queues_patient(void)
{
    start_patient(2);
}

/* nbdkit delaying every read 30 s, and a device with two queues on it (a
 * connection each) on a patient vCPU; false (the test skipped) where
 * nbdkit is not installed. */
static bool served_slowly_to_two_queues(void)
{
    const char *words[] = {"--filter=delay", "memory", "1M", "rdelay=30", NULL};

    if (!need("nbdkit"))
        return false;
    server_dir();
    nbdkit(words);
    ck_assert_uint_eq(log_lines_during(start_two_queues_patient,
                                       "2 connections (multi-conn)"),
                      1);
    return true;
}

/* The guest's reset is answered after NBD_IDLE_MS (5 s), give or take:
 * the wait for what its connections have in flight, once. */
static void reset_takes_the_idle_wait(void)
{
    uint64_t t0 = now_ms(), took;

    vdriver_reset(&d);
    took = now_ms() - t0;
    ck_assert_int_eq(d.io_error, 0);
    ck_assert_msg(took >= 4500 && took < 6500, "the reset took %llu ms",
                  (unsigned long long)took);
}

/* The guest resets the device with a read stuck at the server on each
 * queue's connection (nbdkit delays reads 30 s): the reset waits for
 * their replies once, NBD_IDLE_MS (5 s), for both connections together,
 * then drops them; the guest's write of Status 0 is answered after
 * about 5 s, not 10. */
START_TEST(a_reset_waits_once_for_all_the_connections)
{
    if (!served_slowly_to_two_queues())
        return;
    for (unsigned q = 0; q < 2; q++) {
        blk_guest_submit(&d, q, VIRTIO_BLK_T_IN, 8 * q, 4096, true);
        vdriver_kick(&d, q);
    }
    reset_takes_the_idle_wait();
    stop();
}
END_TEST

/* A server answers the guest's read with reply chunks that end nothing,
 * faster than they are read (nbd_server_chatter()): the guest's reset
 * still waits NBD_IDLE_MS (5 s) and drops the connection, not until the
 * server stops. */
START_TEST(a_reset_is_not_held_by_a_server_that_never_ends_a_reply)
{
    server_dir();
    ck_assert_int_eq(nbd_server_chatter(&srv), 0);
    start_patient(1);
    blk_guest_submit(&d, 0, VIRTIO_BLK_T_IN, 0, 4096, true);
    vdriver_kick(&d, 0);
    usleep(100 * 1000); /* the read sent, the chunks coming */
    reset_takes_the_idle_wait();
    stop();
}
END_TEST

/* Three seconds of the device on a server that closes each connection
 * right after its handshake. */
static void three_seconds(void)
{
    usleep(3000 * 1000);
}

/* Such a server is a failure each time, not a success: the reconnects
 * back off (0.1 s, 0.2 s, 0.4 s, ... up to 5 s), so that 3 s see a few
 * of them, not one every 100 ms. */
START_TEST(a_server_that_closes_after_the_handshake_is_backed_off_from)
{
    unsigned connects;

    server_dir();
    ck_assert_int_eq(nbd_server_flapping(&srv), 0);
    start("", 1);
    connects = log_lines_during(three_seconds, ": connected,");
    ck_assert_msg(connects <= 6, "%u connects in 3 s", connects);
    stop();
}
END_TEST

/* The guest's reset, then its probe again, as blk_guest_start() probes. */
static void reset_and_probe(unsigned queues)
{
    vdriver_reset(&d);
    ck_assert_int_eq(d.io_error, 0);
    ck_assert_int_eq(vdriver_probe(&d, BLK_GUEST_ID, BLK_GUEST_FEATURES), 0);
    for (unsigned q = 0; q < queues; q++)
        ck_assert_int_eq(vdriver_setup_queue(&d, q, 64), 0);
    vdriver_driver_ok(&d);
}

/* Queue 0's write, tried until its connection is back. */
static void first_connection_back(void)
{
    ck_assert_uint_eq(write_back_on(0, 16, 0x11), VIRTIO_BLK_S_OK);
}

/* After a write lost with its session (acknowledged, the server killed
 * and started again without it), the server is `words` again; a read on
 * queue 0 is sent, which the server holds 1 s (delay filter), and with
 * noparallel every request after it waits behind it. */
static const char *const held[] = {"--filter=noparallel", "--filter=delay",
                                   "memory", "1M", "rdelay=1", NULL};

static void a_write_lost_then_a_read_held(unsigned queues)
{
    const char *words[] = {"memory", "1M", NULL};

    server_dir();
    nbdkit(words);
    start(queues > 1 ? ",queues=2" : "", queues);
    ck_assert_uint_eq(run_on(0, VIRTIO_BLK_T_OUT, 16, 4096, 0x32, NULL),
                      VIRTIO_BLK_S_OK);
    nbd_server_kill(&srv);
    nbdkit(held);
    ck_assert_uint_eq(write_back_on(0, 64, 7), VIRTIO_BLK_S_OK);
    if (queues > 1)
        ck_assert_uint_eq(write_back_on(1, 72, 8), VIRTIO_BLK_S_OK);
    blk_guest_submit(&d, 0, VIRTIO_BLK_T_IN, 0, 4096, true);
}

/* The guest's flush, sent behind the held read, completes during the
 * guest's reset, which drops it: the guest never hears of the lost
 * write, so its first flush after the reset still fails. */
START_TEST(a_flush_a_reset_drops_leaves_a_lost_write_to_the_next)
{
    if (!need("nbdkit"))
        return;
    a_write_lost_then_a_read_held(1);
    blk_guest_submit(&d, 0, VIRTIO_BLK_T_FLUSH, 0, 0, false);
    vdriver_kick(&d, 0);
    usleep(200 * 1000); /* both sent; the flush's reply comes after 1 s */
    reset_and_probe(1);
    ck_assert_uint_eq(guest_flush(), VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(guest_flush(), VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

/* Two flushes, one per queue, both sent behind the held read, so before
 * the guest heard of the lost write: whichever completes first fails and
 * tells the guest, and the other, which covers the lost write too, fails
 * as well rather than tell it the write is durable. A flush sent after
 * that succeeds. */
START_TEST(flushes_sent_before_the_guest_heard_of_a_lost_write_all_fail)
{
    static const unsigned both[] = {0, 1};
    struct blk_req f[2];

    if (!need("nbdkit"))
        return;
    a_write_lost_then_a_read_held(2);
    for (unsigned q = 0; q < 2; q++)
        f[q] = blk_guest_submit(&d, q, VIRTIO_BLK_T_FLUSH, 0, 0, false);
    blk_guest_complete(&d, both, 2, 3);
    ck_assert_uint_eq(*f[0].status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(*f[1].status, VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(guest_flush(), VIRTIO_BLK_S_OK);
    stop();
}
END_TEST

/* With the device on served_slowly_to_two_queues(): another server,
 * started with `after`, takes the socket's path while the first one still
 * listens at the path it was moved to; then a reset, with a read stuck on
 * `queue`, drops that queue's connection alone. The first server, for
 * old_server_stopped(). */
static pid_t connection_sent_to(const char *const *after, unsigned queue)
{
    pid_t old = srv.pid;
    char aside[128];

    snprintf(aside, sizeof(aside), "%s/sock-before", srv.dir);
    ck_assert_int_eq(rename(srv.sock, aside), 0);
    nbdkit(after);
    blk_guest_submit(&d, queue, VIRTIO_BLK_T_IN, 0, 4096, true);
    vdriver_kick(&d, queue);
    reset_and_probe(2);
    return old;
}

/* connection_sent_to() on queue 0: the first connection is dropped, and
 * reconnects (to the new server) after its backoff. */
static pid_t first_connection_sent_to(const char *const *after)
{
    return connection_sent_to(after, 0);
}

/* The first server, still listening aside, killed; then stop(). */
static void old_server_stopped(pid_t old)
{
    int status;

    kill(old, SIGKILL);
    waitpid(old, &status, 0);
    stop();
}

/* The first connection alone comes back, to a server that does not allow
 * multi-conn, while the second still reaches the one before: the second
 * is dropped, with a line saying why, and what queue 1 writes then goes
 * where queue 0 reads. */
START_TEST(a_first_connection_back_without_multi_conn_drops_the_others)
{
    const char *after[] = {"--filter=multi-conn", "memory", "1M",
                           "multi-conn-mode=disable", NULL};
    pid_t old;

    if (!served_slowly_to_two_queues())
        return;
    old = first_connection_sent_to(after);
    ck_assert_uint_eq(
        log_lines_during(first_connection_back,
                         "(connection 2): connection lost (the first "
                         "connection has a new session)"),
        1);
    ck_assert_uint_eq(run_on(1, VIRTIO_BLK_T_OUT, 24, 4096, 0x22, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(24, 8, 0x22));
    old_server_stopped(old);
}
END_TEST

/* A read stuck on queue 1's connection (the old server delays reads
 * 30 s) when the first connection comes back (its handshake held 1 s by
 * the new server, so that the read goes first): the second connection is
 * dropped, and the guest has the read failed by the time the first
 * request served on the first connection completes, not at the second's
 * reconnect timer (100 ms later). */
START_TEST(a_dropped_connections_requests_fail_as_it_is_dropped)
{
    const char *after[] = {"--filter=multi-conn", "--filter=delay", "memory",
                           "1M", "multi-conn-mode=disable", "delay-open=1",
                           NULL};
    struct blk_req r;
    uint32_t id, len;
    pid_t old;

    if (!served_slowly_to_two_queues())
        return;
    old = first_connection_sent_to(after);
    r = blk_guest_submit(&d, 1, VIRTIO_BLK_T_IN, 8, 4096, true);
    vdriver_kick(&d, 1);
    first_connection_back();
    ck_assert_msg(guest_ring_get_used(&d.ring[1], &id, &len),
                  "queue 1's read not completed as queue 0 was served");
    ck_assert_uint_eq(*r.status, VIRTIO_BLK_S_IOERR);
    old_server_stopped(old);
}
END_TEST

/* Queue 0's write, tried until its connection is back, then time for
 * the second connection's backoff (100 ms) and handshake. */
static void first_connection_back_then_the_others(void)
{
    first_connection_back();
    usleep(500 * 1000);
}

/* The first connection comes back to another server that allows
 * multi-conn, while the second still reaches the one before: the second
 * is re-made, on the new server, and what queue 1 writes lands there,
 * where queue 0 reads, on the second connection the new server saw. */
START_TEST(a_first_connection_back_on_another_server_takes_the_others_there)
{
    char logfile[160];
    const char *after[] = {"--filter=log", "memory", "1M", logfile, NULL};
    unsigned remade;
    pid_t old;

    if (!served_slowly_to_two_queues())
        return;
    snprintf(logfile, sizeof(logfile), "logfile=%s/log", srv.dir);
    old = first_connection_sent_to(after);
    remade = log_lines_during(first_connection_back_then_the_others,
                              "(connection 2): connected,");
    ck_assert_uint_eq(run_on(1, VIRTIO_BLK_T_OUT, 40, 4096, 0x5a, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert(reads_as(40, 8, 0x5a));
    ck_assert_uint_eq(remade, 1);
    ck_assert_uint_eq(logged("connection=2 Write id=", "offset=0x5000"), 1);
    old_server_stopped(old);
}
END_TEST

/* The new server's words, and the first server once it is set aside,
 * for second_connection_sent_aside(). */
static const char *const *new_server;
static pid_t old_server;

/* connection_sent_to() on queue 1, then time past the second
 * connection's backoff (100 ms) and a handshake. */
static void second_connection_sent_aside(void)
{
    old_server = connection_sent_to(new_server, 1);
    usleep(500 * 1000);
}

/* The second connection dropped alone (a read stuck on queue 1 at the
 * reset) while the socket's path reaches another server: it does not
 * reconnect there on its own, but waits for the first's next session,
 * saying so once; meanwhile queue 1's write goes on the first connection,
 * to the first server, and none reaches the new one. */
START_TEST(a_second_connection_lost_alone_waits_for_the_first)
{
    char logfile[160];
    const char *after[] = {"--filter=log", "memory", "1M", logfile, NULL};
    unsigned said;

    if (!served_slowly_to_two_queues())
        return;
    snprintf(logfile, sizeof(logfile), "logfile=%s/log", srv.dir);
    new_server = after;
    said = log_lines_during(second_connection_sent_aside,
                            "(connection 2): waits for the first "
                            "connection's next session");
    ck_assert_uint_eq(run_on(1, VIRTIO_BLK_T_OUT, 48, 4096, 0x77, NULL),
                      VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(logged(" Write id=", NULL), 0);
    ck_assert_uint_eq(logged(" Connect export=", NULL), 0);
    ck_assert_uint_eq(said, 1);
    old_server_stopped(old_server);
}
END_TEST

/* The backing file, read behind the server's back. */
static void file_holds(const char *file, off_t off, size_t len, uint8_t byte,
                       bool want)
{
    uint8_t buf[4096];
    bool all = true;
    int fd = open(file, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    ck_assert_uint_le(len, sizeof(buf));
    ck_assert_int_eq(pread(fd, buf, len, off), (ssize_t)len);
    close(fd);
    for (size_t i = 0; i < len; i++)
        all &= buf[i] == byte;
    ck_assert_msg(all == want, "the file %s the write", want ? "lacks" : "has");
}

/* nbdkit's cache filter, in writeback, keeps writes from the file until a
 * flush, on any connection (it allows multi-conn): queue 0's write is not
 * in the file, queue 1's flush, on the other connection, puts it there. */
START_TEST(a_flush_on_one_queue_covers_a_write_on_the_other)
{
    char file[128];
    const char *plugin[] = {"file", file, "cache=writeback", NULL};
    int fd;

    if (!need("nbdkit"))
        return;
    server_dir();
    snprintf(file, sizeof(file), "%s/disk", srv.dir);
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_SIZE), 0);
    close(fd);
    ck_assert(served_to_two_queues("--filter=cache", plugin,
                                   "2 connections (multi-conn)"));
    ck_assert_uint_eq(run_on(0, VIRTIO_BLK_T_OUT, 32, 4096, 0x6b, NULL),
                      VIRTIO_BLK_S_OK);
    file_holds(file, 32 * 512, 4096, 0x6b, false);
    ck_assert_uint_eq(run_on(1, VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL),
                      VIRTIO_BLK_S_OK);
    file_holds(file, 32 * 512, 4096, 0x6b, true);
    ck_assert_uint_eq(logged("connection=1 Write id=", NULL), 1);
    ck_assert_uint_eq(logged("connection=2 Flush id=", NULL), 1);
    stop();
}
END_TEST

/* A server that does not allow multi-conn gets one connection, which
 * serves both queues. */
START_TEST(one_connection_serves_both_queues_without_multi_conn)
{
    const char *plugin[] = {"memory", "1M", "multi-conn-mode=disable", NULL};

    if (!served_to_two_queues("--filter=multi-conn", plugin,
                              "1 connection for 2 queues"))
        return;
    queue_1_reads_what_queue_0_wrote();
    ck_assert_uint_eq(logged(" Connect export=", NULL), 1);
    ck_assert_uint_eq(logged("connection=1 Read id=", "offset=0x2000"), 1);
    stop();
}
END_TEST

/* The connections nbdkit's log filter saw writes on. */
static unsigned connections_written_on(void)
{
    char path[128], line[512];
    unsigned seen[8] = {0}, n = 0, c;
    const char *at;
    FILE *f;

    snprintf(path, sizeof(path), "%s/log", srv.dir);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        at = strstr(line, "connection=");
        if (!strstr(line, " Write id=") || !at ||
            sscanf(at, "connection=%u", &c) != 1 || c >= 8)
            continue;
        n += !seen[c];
        seen[c] = 1;
    }
    fclose(f);
    return n;
}

/* The server comes back not allowing multi-conn: queue 1's connection,
 * reconnected (its backoff passed), refuses it, and both queues' writes
 * go on the first connection. */
START_TEST(a_connection_back_from_a_server_without_multi_conn_is_left_unused)
{
    const char *plugin[] = {"memory", "1M", NULL};
    char logfile[160], path[128];
    const char *after[] = {"--filter=log", "--filter=multi-conn", "memory",
                           "1M", "multi-conn-mode=disable", logfile, NULL};

    if (!served_to_two_queues(NULL, plugin, "2 connections (multi-conn)"))
        return;
    nbd_server_kill(&srv);
    snprintf(path, sizeof(path), "%s/log", srv.dir);
    ck_assert_int_eq(unlink(path), 0);
    snprintf(logfile, sizeof(logfile), "logfile=%s", path);
    nbdkit(after);
    ck_assert_uint_eq(write_back_on(0, 16, 0x11), VIRTIO_BLK_S_OK);
    usleep(1500 * 1000);
    ck_assert_uint_eq(write_back_on(1, 24, 0x22), VIRTIO_BLK_S_OK);
    ck_assert(reads_as(16, 8, 0x11));
    ck_assert(reads_as(24, 8, 0x22));
    ck_assert_uint_eq(connections_written_on(), 1);
    stop();
}
END_TEST
#endif /* HAVE_LIBNBD */

/* ---- URIs that cannot work -------------------------------------------------- */

#ifdef HAVE_LIBNBD
START_TEST(bad_uris_are_refused_with_a_line_naming_them)
{
    expect_spec_refused("blk,nbd=http://example.invalid/disk",
                   "nbd='http://example.invalid/disk'");
    expect_spec_refused("blk,nbd=nbd+unix:///disk?socket=/nonexistent/sock",
                   "cannot connect to nbd='nbd+unix:///disk?socket=/nonexistent");
    expect_spec_refused("blk,nbd=nbd+unix:///disk", "nbd='nbd+unix:///disk'");
    /* A file a URI names would be read at every handshake, inside
     * --chroot too: xvdm keeps libnbd's default of reading none. */
    expect_spec_refused(
        "blk,nbd=nbd+unix:///?socket=/nonexistent/sock&tls-psk-file=/etc/passwd",
        "local file access (tls-psk-file) is not allowed");
    expect_spec_refused("blk,nbd=nbd://127.0.0.1:1/disk",
                   "cannot connect to nbd='nbd://127.0.0.1:1/disk'");
    expect_spec_refused("blk,path=/dev/null,nbd=nbd://127.0.0.1/x",
                   "give one of them");
    expect_spec_refused("blk,nbd=nbd://127.0.0.1/x,direct=on",
                   "direct= is for path=");
    expect_spec_refused("blk", "path=, nbd= or rbd= is required");
}
END_TEST
#else
START_TEST(nbd_is_refused_naming_libnbd_when_built_without_it)
{
    expect_backing_refused_built_without("nbd", "nbd://127.0.0.1/x", "libnbd");
}
END_TEST
#endif

static Suite *blk_nbd_suite(void)
{
    TCase *tc;
    Suite *s = check_suite_of_one_case("blk-nbd", "nbd", 60, &tc);

#ifdef HAVE_LIBNBD
    tcase_add_loop_test(
        tc, data_written_on_two_queues_reads_back_and_is_on_the_server, 0, 2);
    tcase_add_test(tc, a_flush_makes_writes_survive_the_server_being_killed);
    tcase_add_test(tc, discard_and_write_zeroes_reach_the_server);
    tcase_add_test(tc, flush_and_writethrough_reach_the_server);
    tcase_add_test(tc, read_only_export_is_offered_read_only_and_refuses_writes);
    tcase_add_test(tc, server_errors_fail_only_their_requests);
    tcase_add_test(tc,
                   server_killed_under_requests_fails_them_and_is_reconnected);
    tcase_add_test(
        tc, a_flush_after_a_session_lost_under_unflushed_writes_fails_once);
    tcase_add_test(
        tc, a_switch_to_writethrough_leaves_a_lost_write_to_the_guests_flush);
    tcase_add_test(
        tc, a_guest_writing_through_hears_of_a_lost_write_from_its_next_write);
    tcase_add_test(tc, a_flush_a_reset_drops_leaves_a_lost_write_to_the_next);
    tcase_add_test(tc,
                   flushes_sent_before_the_guest_heard_of_a_lost_write_all_fail);
    tcase_add_test(tc,
                   a_connection_that_dies_as_a_request_is_sent_is_reconnected);
    tcase_add_loop_test(
        tc, under_chroot_a_socket_inside_the_directory_is_reconnected_to, 0, 2);
    tcase_add_test(tc,
                   under_chroot_uris_that_reach_outside_the_directory_are_refused);
#ifdef HAVE_LIBSECCOMP
    tcase_add_test(tc, a_reconnect_under_the_syscall_filter_comes_back);
#endif
    tcase_add_test(tc, requests_larger_than_the_server_takes_are_split);
    tcase_add_test(tc, a_servers_minimum_block_size_is_the_guests_block_size);
    tcase_add_test(tc,
                   buffers_that_straddle_the_servers_minimum_block_still_work);
    tcase_add_test(
        tc, a_bounced_request_larger_than_the_bounce_buffer_goes_in_pieces);
    tcase_add_test(tc,
                   bounced_writethrough_writes_past_the_bounce_budget_complete);
    tcase_add_test(tc,
                   a_write_that_waited_for_bounce_room_is_sent_while_others_wait);
    tcase_add_test(tc,
                   write_zeroes_segments_sharing_a_block_all_read_back_as_zeroes);
    tcase_add_test(tc, an_empty_write_inside_a_block_leaves_the_block_alone);
    tcase_add_test(tc, commands_in_flight_are_bounded_per_device);
    tcase_add_test(tc,
                   a_reconnect_to_a_smaller_export_with_larger_blocks_is_followed);
    tcase_add_test(tc,
                   unaligned_ranges_after_a_reconnect_to_larger_blocks_work);
    tcase_add_test(tc,
                   an_exports_last_partial_block_is_left_out_of_the_capacity);
    tcase_add_test(tc, a_reconnect_to_a_read_only_export_fails_writes);
    tcase_add_test(
        tc, a_reconnect_to_an_export_without_flush_trim_or_zero_is_followed);
    tcase_add_test(
        tc, a_flush_sent_before_the_guests_ring_had_the_failure_fails_too);
    tcase_add_test(
        tc, two_queues_get_a_connection_each_where_the_server_allows_multi_conn);
    tcase_add_test(tc, each_connections_lines_say_which_connection);
    tcase_add_test(tc, a_reset_waits_once_for_all_the_connections);
    tcase_add_test(tc, a_reset_is_not_held_by_a_server_that_never_ends_a_reply);
    tcase_add_test(tc,
                   a_server_that_closes_after_the_handshake_is_backed_off_from);
    tcase_add_test(tc,
                   a_first_connection_back_without_multi_conn_drops_the_others);
    tcase_add_test(tc, a_dropped_connections_requests_fail_as_it_is_dropped);
    tcase_add_test(
        tc, a_first_connection_back_on_another_server_takes_the_others_there);
    tcase_add_test(tc, a_second_connection_lost_alone_waits_for_the_first);
    tcase_add_test(tc, a_flush_on_one_queue_covers_a_write_on_the_other);
    tcase_add_test(tc, one_connection_serves_both_queues_without_multi_conn);
    tcase_add_test(
        tc, a_connection_back_from_a_server_without_multi_conn_is_left_unused);
    tcase_add_test(tc, bad_uris_are_refused_with_a_line_naming_them);
#else
    tcase_add_test(tc, nbd_is_refused_naming_libnbd_when_built_without_it);
#endif
    return s;
}

int main(void)
{
    return check_run_all_modes(blk_nbd_suite);
}
