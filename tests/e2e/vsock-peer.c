/* SPDX-License-Identifier: MIT */
/*
 * Both ends of the rig's vsock scenario, and of its comparison with TCP
 * over virtio-net: streams of known bytes, many connections at once,
 * each checked by a checksum the receiver sends back. Built statically
 * for the guest (AF_VSOCK, TCP) and dom0 (Unix sockets, TCP) by
 * tools/rig/make-initramfs.
 *
 *   vsock-peer sink ADDR COUNT
 *       listen on ADDR, take COUNT connections at once, read each to its
 *       end and answer "got BYTES SUM\n", then close it.
 *   vsock-peer source ADDR CONNS BYTES [CONNECT_PORT]
 *       CONNS connections to ADDR at once, each sending BYTES of its own
 *       stream and shutting down its write side; every answer must name
 *       what was sent. With CONNECT_PORT, each first writes
 *       "CONNECT CONNECT_PORT\n" and waits for "OK" (xvdm's dom0 side of a
 *       vsock device); connections refused or answered ERROR are retried
 *       for 180 s (the other end may not be listening yet). Prints
 *       "SOURCE ADDR CONNS BYTES SECONDS MIB_PER_S" from the first connect
 *       to the last answer.
 *   vsock-peer cid
 *       prints the local CID (the guest's vsock config space).
 *
 * ADDR: vsock:CID:PORT or vsock:PORT (listen), unix:PATH, tcp:IP:PORT or
 * tcp:PORT (listen). Exits 1 on any error or mismatch.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PEER_MAX_CONNS 64
#define PEER_CHUNK (64 * 1024)
#define PEER_RETRY_S 180.0

struct peer_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    int family;
};

/* One connection: bytes sent or received so far and their checksum. */
struct conn {
    int fd;
    unsigned seed;
    uint64_t done;
    uint64_t sum_a, sum_b; /* Fletcher-style, order-sensitive */
    char line[64];
    size_t line_len;
    bool finished;
};

static void die(const char *what)
{
    fprintf(stderr, "vsock-peer: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t stream_byte(unsigned seed, uint64_t i)
{
    return (uint8_t)(((i * 2654435761u) >> 7) ^ (seed * 40503u) ^ (i >> 13));
}

static void sum_add(struct conn *c, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        c->sum_a += p[i];
        c->sum_b += c->sum_a;
    }
}

static uint64_t sum_of(const struct conn *c)
{
    return c->sum_a ^ (c->sum_b << 24);
}

static void parse_addr(const char *s, bool listening, struct peer_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (!strncmp(s, "vsock:", 6)) {
        struct sockaddr_vm *vm = (struct sockaddr_vm *)&a->sa;
        unsigned cid = VMADDR_CID_ANY, port;

        if (listening ? sscanf(s + 6, "%u", &port) != 1
                      : sscanf(s + 6, "%u:%u", &cid, &port) != 2)
            goto bad;
        vm->svm_family = AF_VSOCK;
        vm->svm_cid = cid;
        vm->svm_port = port;
        a->len = sizeof(*vm);
    } else if (!strncmp(s, "unix:", 5)) {
        struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;

        if (strlen(s + 5) >= sizeof(un->sun_path))
            goto bad;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, s + 5);
        a->len = sizeof(*un);
    } else if (!strncmp(s, "tcp:", 4)) {
        struct sockaddr_in *in = (struct sockaddr_in *)&a->sa;
        char ip[32] = "0.0.0.0";
        unsigned port;

        if (listening ? sscanf(s + 4, "%u", &port) != 1
                      : sscanf(s + 4, "%31[0-9.]:%u", ip, &port) != 2)
            goto bad;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, ip, &in->sin_addr) != 1)
            goto bad;
        a->len = sizeof(*in);
    } else {
        goto bad;
    }
    a->family = a->sa.ss_family;
    return;
bad:
    fprintf(stderr, "vsock-peer: bad address '%s'\n", s);
    exit(1);
}

static int listen_on(const struct peer_addr *a)
{
    int one = 1, fd = socket(a->family, SOCK_STREAM, 0);

    if (fd < 0)
        die("socket");
    if (a->family == AF_INET)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a->family == AF_UNIX)
        unlink(((const struct sockaddr_un *)&a->sa)->sun_path);
    if (bind(fd, (const struct sockaddr *)&a->sa, a->len))
        die("bind");
    /* xvdm connects as the user it serves as (--user nobody). */
    if (a->family == AF_UNIX &&
        chmod(((const struct sockaddr_un *)&a->sa)->sun_path, 0666))
        die("chmod");
    if (listen(fd, PEER_MAX_CONNS))
        die("listen");
    return fd;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t w = write(fd, c, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read one connection's data; at its end answer with what came. */
static void sink_read(struct conn *c)
{
    uint8_t buf[PEER_CHUNK];
    ssize_t n = read(c->fd, buf, sizeof(buf));
    char line[64];

    if (n < 0 && errno == EINTR)
        return;
    if (n < 0)
        die("read");
    if (n > 0) {
        sum_add(c, buf, (size_t)n);
        c->done += (uint64_t)n;
        return;
    }
    snprintf(line, sizeof(line), "got %" PRIu64 " %016" PRIx64 "\n", c->done,
             sum_of(c));
    if (!write_all(c->fd, line, strlen(line)))
        die("answer");
    close(c->fd);
    c->finished = true;
}

static int sink(const char *addr, unsigned count)
{
    struct conn conns[PEER_MAX_CONNS] = {0};
    struct pollfd pfd[PEER_MAX_CONNS + 1];
    struct peer_addr a;
    unsigned accepted = 0, finished = 0;
    int lfd;

    parse_addr(addr, true, &a);
    lfd = listen_on(&a);
    printf("SINK %s listening for %u\n", addr, count);
    fflush(stdout);
    while (finished < count) {
        unsigned n = 0;

        pfd[n++] = (struct pollfd){.fd = accepted < count ? lfd : -1,
                                   .events = POLLIN};
        for (unsigned i = 0; i < accepted; i++)
            pfd[n++] = (struct pollfd){
                .fd = conns[i].finished ? -1 : conns[i].fd, .events = POLLIN};
        if (poll(pfd, n, -1) < 0 && errno != EINTR)
            die("poll");
        if (pfd[0].revents & POLLIN) {
            conns[accepted].fd = accept(lfd, NULL, NULL);
            if (conns[accepted].fd < 0)
                die("accept");
            accepted++;
        }
        for (unsigned i = 0; i + 1 < n; i++) {
            if (pfd[i + 1].revents) {
                sink_read(&conns[i]);
                finished += conns[i].finished;
            }
        }
    }
    printf("SINK %s: %u connections answered\n", addr, count);
    return 0;
}

/* Why the last attempt to connect failed, said when giving up. */
static char last_error[128];

/* "CONNECT P\n" -> "OK n\n" on xvdm's dom0 socket; false on ERROR. */
static bool connect_line(int fd, unsigned port)
{
    char line[64];
    size_t n = 0;

    snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (!write_all(fd, line, strlen(line)))
        return false;
    while (n + 1 < sizeof(line)) {
        if (read(fd, line + n, 1) != 1)
            return false;
        if (line[n++] == '\n')
            break;
    }
    line[n] = 0;
    if (strncmp(line, "OK ", 3)) {
        snprintf(last_error, sizeof(last_error), "CONNECT %u answered '%s'",
                 port, line);
        return false;
    }
    return true;
}

/* A connection, retried while the other end is not there yet. */
static int connect_retrying(const struct peer_addr *a, unsigned connect_port)
{
    double give_up = now_s() + PEER_RETRY_S;

    for (;;) {
        int fd = socket(a->family, SOCK_STREAM, 0);

        if (fd < 0)
            die("socket");
        if (connect(fd, (const struct sockaddr *)&a->sa, a->len))
            snprintf(last_error, sizeof(last_error), "connect: %s",
                     strerror(errno));
        else if (!connect_port || connect_line(fd, connect_port))
            return fd;
        close(fd);
        if (now_s() > give_up) {
            fprintf(stderr, "vsock-peer: gave up after %.0f s: %s\n",
                    PEER_RETRY_S, last_error);
            exit(1);
        }
        usleep(200 * 1000);
    }
}

/* Send the next chunk of c's stream, or shut its write side at the end. */
static void source_write(struct conn *c, uint64_t bytes)
{
    uint8_t buf[PEER_CHUNK];
    size_t n = (size_t)(bytes - c->done < sizeof(buf) ? bytes - c->done
                                                      : sizeof(buf));
    ssize_t w;

    for (size_t i = 0; i < n; i++)
        buf[i] = stream_byte(c->seed, c->done + i);
    w = write(c->fd, buf, n);
    if (w < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (w <= 0)
        die("write");
    sum_add(c, buf, (size_t)w);
    c->done += (uint64_t)w;
    if (c->done == bytes && shutdown(c->fd, SHUT_WR))
        die("shutdown");
}

/* Read the answer; it must name what c sent. */
static void source_read(struct conn *c, uint64_t bytes)
{
    char want[64];
    ssize_t n = read(c->fd, c->line + c->line_len,
                     sizeof(c->line) - 1 - c->line_len);

    if (n < 0 && errno == EINTR)
        return;
    if (n < 0)
        die("read answer");
    c->line_len += (size_t)n;
    c->line[c->line_len] = 0;
    if (n > 0 && !strchr(c->line, '\n'))
        return;
    snprintf(want, sizeof(want), "got %" PRIu64 " %016" PRIx64 "\n", bytes,
             sum_of(c));
    if (strcmp(c->line, want)) {
        fprintf(stderr, "vsock-peer: stream %u: sent %s but the answer was '%s'\n",
                c->seed, want, c->line);
        exit(1);
    }
    close(c->fd);
    c->finished = true;
}

static int source(const char *addr, unsigned nconns, uint64_t bytes,
                  unsigned connect_port)
{
    struct conn conns[PEER_MAX_CONNS] = {0};
    struct pollfd pfd[PEER_MAX_CONNS];
    struct peer_addr a;
    unsigned finished = 0;
    double t0, dt;

    parse_addr(addr, false, &a);
    /* The first connection waits for the other end; the clock starts
     * once it is there. */
    conns[0].fd = connect_retrying(&a, connect_port);
    t0 = now_s();
    for (unsigned i = 1; i < nconns; i++)
        conns[i].fd = connect_retrying(&a, connect_port);
    for (unsigned i = 0; i < nconns; i++)
        conns[i].seed = i + 1;
    while (finished < nconns) {
        for (unsigned i = 0; i < nconns; i++)
            pfd[i] = (struct pollfd){
                .fd = conns[i].finished ? -1 : conns[i].fd,
                .events = conns[i].done < bytes ? POLLOUT : POLLIN};
        if (poll(pfd, nconns, -1) < 0 && errno != EINTR)
            die("poll");
        for (unsigned i = 0; i < nconns; i++) {
            if (!pfd[i].revents)
                continue;
            if (conns[i].done < bytes)
                source_write(&conns[i], bytes);
            else
                source_read(&conns[i], bytes);
            finished += conns[i].finished;
        }
    }
    dt = now_s() - t0;
    printf("SOURCE %s %u %" PRIu64 " %.3f %.2f\n", addr, nconns, bytes, dt,
           (double)nconns * (double)bytes / dt / (1 << 20));
    return 0;
}

/* The CID the transport read from the device's config space (asked of
 * /dev/vsock: sockets do not answer this ioctl). */
static int local_cid(void)
{
    unsigned cid;
    int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

    if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid))
        die("local CID");
    printf("CID %u\n", cid);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    unsigned n = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : 0;

    if ((argc >= 4) && (n < 1 || n > PEER_MAX_CONNS)) {
        fprintf(stderr, "vsock-peer: COUNT and CONNS must be 1..%d\n",
                PEER_MAX_CONNS);
        return 1;
    }
    if (argc == 4 && !strcmp(argv[1], "sink"))
        return sink(argv[2], n);
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "source"))
        return source(argv[2], n, strtoull(argv[4], NULL, 0),
                      argc == 6 ? (unsigned)strtoul(argv[5], NULL, 0) : 0);
    if (argc == 2 && !strcmp(argv[1], "cid"))
        return local_cid();
    fprintf(stderr, "usage: vsock-peer sink ADDR COUNT | source ADDR CONNS "
                    "BYTES [CONNECT_PORT] | cid\n");
    return 1;
}
