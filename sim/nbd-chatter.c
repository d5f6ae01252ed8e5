/* SPDX-License-Identifier: MIT */
/* Hostile NBD servers for tests (nbd-server.h): one answers every read
 * with structured reply chunks that never end it, as fast as its socket
 * takes them (nbd_server_chatter()); another closes each connection
 * right after its handshake (nbd_server_flapping()). Only what libnbd
 * asks at connect is spoken: the fixed newstyle handshake, structured
 * replies, NBD_OPT_GO (NBD's proto.md). */
#include "config.h"

#include <endian.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nbd-server.h"

#define OPT_REPLY_MAGIC 0x3e889045565a9ULL
#define REQUEST_MAGIC 0x25609513u
#define SIMPLE_REPLY_MAGIC 0x67446698u
#define CHUNK_MAGIC 0x668e33efu
#define OPT_GO 7
#define OPT_STRUCTURED_REPLY 8
#define REP_ACK 1
#define REP_INFO 3
#define REP_ERR_UNSUP 0x80000001u
#define CMD_READ 0
#define CMD_DISC 2
#define REPLY_TYPE_OFFSET_HOLE 2
#define EXPORT_SIZE (1u << 20)

static int put(int fd, const void *buf, size_t len)
{
    for (const char *p = buf; len;) {
        ssize_t n = write(fd, p, len);

        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int get(int fd, void *buf, size_t len)
{
    for (char *p = buf; len;) {
        ssize_t n = read(fd, p, len);

        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int option_reply(int fd, uint32_t opt, uint32_t type, const void *data,
                        uint32_t len)
{
    struct __attribute__((packed)) {
        uint64_t magic;
        uint32_t opt, type, len;
    } r = {htobe64(OPT_REPLY_MAGIC), htobe32(opt), htobe32(type), htobe32(len)};

    return put(fd, &r, sizeof(r)) || put(fd, data, len) ? -1 : 0;
}

/* The export's size and flags (NBD_INFO_EXPORT), then the ACK. */
static int option_go(int fd)
{
    struct __attribute__((packed)) {
        uint16_t type;
        uint64_t size;
        uint16_t flags;
    } info = {0, htobe64(EXPORT_SIZE), htobe16(1) /* NBD_FLAG_HAS_FLAGS */};

    return option_reply(fd, OPT_GO, REP_INFO, &info, sizeof(info)) ||
                   option_reply(fd, OPT_GO, REP_ACK, NULL, 0)
               ? -1
               : 0;
}

/* Up to NBD_OPT_GO; -1 when the client goes first. */
static int handshake(int fd)
{
    static const char hello[] = "NBDMAGICIHAVEOPT\0\3"; /* fixed newstyle, no zeroes */
    uint32_t client_flags;

    if (put(fd, hello, 18) || get(fd, &client_flags, 4))
        return -1;
    for (;;) {
        struct __attribute__((packed)) {
            char magic[8];
            uint32_t opt, len;
        } o;
        char data[4096];
        uint32_t opt;

        if (get(fd, &o, sizeof(o)) || be32toh(o.len) > sizeof(data) ||
            get(fd, data, be32toh(o.len)))
            return -1;
        opt = be32toh(o.opt);
        if (opt == OPT_GO)
            return option_go(fd);
        if (option_reply(fd, opt,
                         opt == OPT_STRUCTURED_REPLY ? REP_ACK : REP_ERR_UNSUP,
                         NULL, 0))
            return -1;
    }
}

/* Hole chunks of the read with `handle`, none of them its last, until
 * the client goes. */
static void chatter(int fd, uint64_t handle, uint64_t offset, uint32_t len)
{
    struct __attribute__((packed)) {
        uint32_t magic;
        uint16_t flags, type;
        uint64_t handle;
        uint32_t len;
        uint64_t offset;
        uint32_t size;
    } c = {htobe32(CHUNK_MAGIC), 0, htobe16(REPLY_TYPE_OFFSET_HOLE), handle,
           htobe32(12), htobe64(offset), htobe32(len)};
    static char buf[sizeof(c) * 2048];
    int size = 1 << 24;

    for (size_t at = 0; at < sizeof(buf); at += sizeof(c))
        memcpy(buf + at, &c, sizeof(c));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    while (put(fd, buf, sizeof(buf)) == 0)
        ;
}

/* Transmission: reads chattered about, everything else answered OK. */
static void serve(int fd)
{
    for (;;) {
        struct __attribute__((packed)) {
            uint32_t magic;
            uint16_t flags, type;
            uint64_t handle, offset;
            uint32_t len;
        } q;
        struct __attribute__((packed)) {
            uint32_t magic, error;
            uint64_t handle;
        } ok = {htobe32(SIMPLE_REPLY_MAGIC), 0, 0};

        if (get(fd, &q, sizeof(q)) || be32toh(q.magic) != REQUEST_MAGIC ||
            be16toh(q.type) == CMD_DISC)
            return;
        if (be16toh(q.type) == CMD_READ) {
            chatter(fd, q.handle, be64toh(q.offset), be32toh(q.len));
            return;
        }
        ok.handle = q.handle;
        if (put(fd, &ok, sizeof(ok)))
            return;
    }
}

/* After the handshake: nothing, the connection closed. */
static void hang_up(int fd)
{
}

/* A server on s->sock, in a child, running `then` on each connection
 * once its handshake is done. */
static int serve_each(struct nbd_server *s, void (*then)(int fd))
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", s->sock);
    unlink(s->sock);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4))
        return -1;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        for (;;) {
            int c = accept(fd, NULL, NULL);

            if (c < 0)
                _exit(1);
            if (handshake(c) == 0)
                then(c);
            close(c);
        }
    }
    close(fd);
    return 0;
}

int nbd_server_chatter(struct nbd_server *s)
{
    return serve_each(s, serve);
}

int nbd_server_flapping(struct nbd_server *s)
{
    return serve_each(s, hang_up);
}
