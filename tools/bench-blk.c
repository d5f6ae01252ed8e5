/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk benchmark: the same workload, in the same run, through xvdm
 * (a sim guest driving the whole path: ioreq, transport, virtqueue, blk
 * module, worker threads, completion, interrupt) and directly on the same
 * file with the same engine (a pool of threads doing preadv/pwritev), the
 * same queue depth and the same buffers (the guest's). Prints each row's median
 * rate over several rounds and the ratio xvdm / direct: the median of the
 * rounds' own ratios, with their range. Six rounds by default, so that each
 * side goes first in half of them.
 *
 * Both of xvdm's engines are measured against the same engine used
 * directly: its thread pool against threads doing preadv/pwritev, its
 * io_uring engine against one io_uring keeping the same depth in flight.
 * Each runs twice: through dom0's page cache (xvdm's own cost laid bare:
 * a cached 4 KiB read takes the kernel well under a microsecond) and with
 * O_DIRECT on both sides (direct=on, as a production disk is run).
 *
 * With --nbd the disk is an NBD export instead (blk,nbd=URI: xvdm's loop
 * drives libnbd's async API), from each server started here: nbdkit's
 * memory plugin, and qemu-nbd on the benchmark's file, raw and as a qcow2
 * copy. The direct side is libnbd itself, its async API on connections
 * of its own to the same server: the same requests, at the same depth,
 * in the same buffers, polled as xvdm polls. Each round measures a device
 * with one queue (one connection) against one libnbd connection and a
 * device with two queues (the guest spreading its requests over both, a
 * connection each, as every server here allows multi-conn) against two;
 * a last table divides the two-queue rates by the one-queue ones. Without
 * libnbd at build, --nbd says it is unavailable.
 *
 * With --rbd the disk is a Ceph RBD image (blk,rbd=POOL/IMAGE: librbd's
 * aio API, its completions handed to xvdm's loop through an eventfd), on
 * a one-node cluster started here (sim/ceph-cluster, named by
 * $XVDM_CEPH_CLUSTER). The direct side is librbd itself, its aio API on an
 * image of its own (the same size and features, written whole before, as
 * xvdm's is) with its completions on an eventfd too: the same requests,
 * at the same depth, in the same buffers. Two images, because two clients
 * writing one would pass its exclusive lock back and forth. Without
 * librbd at build, --rbd says it is unavailable.
 *
 * With --grants it compares xvdm with itself instead: every workload with
 * the device in grant mode (the sim guest grants each buffer, xvdm maps
 * and unmaps the grants of every request) against the same device with
 * the guest's RAM mapped, a fresh sim for each run, each mode first in
 * half of the rounds; the ratio is grants / mapped.
 *
 *   tools/bench-blk [--rounds N] [--file PATH] [--poll-us N] [--batch US]
 *                   [--grants|--nbd|--rbd]
 *   tools/bench-blk --requests N   (4 KiB random reads through xvdm only,
 *                                   for valgrind --tool=callgrind)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <pthread.h>
#ifdef HAVE_LIBRBD
#include <rados/librados.h>
#include <rbd/librbd.h>
#endif
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif
#ifdef HAVE_LIBNBD
#include <libnbd.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bench-median.h"
#include "ceph-node.h"
#include "harness.h"
#include "loop.h"
#include "nbd-server.h"
#include "vdriver.h"

#define FILE_SIZE (256ULL << 20)
#define IOTHREADS 4
#define QD_MAX 32
#define WAIT_MS 10000

/* O_DIRECT on both sides (xvdm's direct=on), or dom0's page cache. */
static bool o_direct;
/* xvdm's --poll-us. */
static unsigned poll_us;
/* blk's batch= (--batch US), or its default when negative. */
static int batch_us = -1;
/* Request slot n's data buffer in the sim guest's memory. The direct side
 * does its I/O in these same buffers: O_DIRECT transfers straight into
 * them, and how many physically contiguous runs a buffer has decides how
 * many requests the disk sees (freshly allocated memory has fewer). */
static uint8_t *slot_data[QD_MAX];

struct workload {
    const char *name;
    uint32_t bs;
    unsigned qd;
    bool write;
    bool random;
    unsigned requests;
};

static const struct workload workloads[] = {
    {"4 KiB random read, QD32", 4096, 32, false, true, 20000},
    {"4 KiB random write, QD32", 4096, 32, true, true, 20000},
    {"1 MiB sequential read, QD8", 1 << 20, 8, false, false, 768},
    {"1 MiB sequential write, QD8", 1 << 20, 8, true, false, 768},
};

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The disk's size: the file's, or the RBD images' (--rbd). */
static uint64_t disk_bytes = FILE_SIZE;

/* Offset of the n-th request of a workload. */
static uint64_t offset_of(const struct workload *w, unsigned n, unsigned *seed)
{
    uint64_t blocks = disk_bytes / w->bs;

    return (w->random ? (uint64_t)rand_r(seed) % blocks : n % blocks) * w->bs;
}

/* ---- direct: a thread pool doing the same I/O on the same file --------- */

struct direct {
    const struct workload *w;
    int fd;
    pthread_mutex_t lock;
    unsigned next;
    unsigned seed;
    unsigned workers; /* each takes the next slot's buffer */
};

static void *direct_worker(void *arg)
{
    struct direct *dr = arg;
    struct iovec iov = {.iov_len = dr->w->bs};

    pthread_mutex_lock(&dr->lock);
    iov.iov_base = slot_data[dr->workers++];
    pthread_mutex_unlock(&dr->lock);
    for (;;) {
        uint64_t off;
        ssize_t r;

        pthread_mutex_lock(&dr->lock);
        if (dr->next == dr->w->requests) {
            pthread_mutex_unlock(&dr->lock);
            break;
        }
        off = offset_of(dr->w, dr->next++, &dr->seed);
        pthread_mutex_unlock(&dr->lock);
        r = dr->w->write ? pwritev(dr->fd, &iov, 1, (off_t)off)
                         : preadv(dr->fd, &iov, 1, (off_t)off);
        if (r != (ssize_t)dr->w->bs)
            break;
    }
    return NULL;
}

/* Requests per second with IOTHREADS requests in flight: xvdm's thread
 * engine, at the depth it can reach. */
static double run_direct(const struct workload *w, const char *path)
{
    struct direct dr = {.w = w, .seed = 1};
    pthread_t t[IOTHREADS];
    double start;

    dr.fd = open(path, O_RDWR | (o_direct ? O_DIRECT : 0));
    pthread_mutex_init(&dr.lock, NULL);
    start = now();
    for (unsigned i = 0; i < IOTHREADS; i++)
        pthread_create(&t[i], NULL, direct_worker, &dr);
    for (unsigned i = 0; i < IOTHREADS; i++)
        pthread_join(t[i], NULL);
    close(dr.fd);
    return w->requests / (now() - start);
}

#ifdef HAVE_LIBURING
/* Requests per second with one io_uring keeping w->qd in flight. */
static double run_direct_uring(const struct workload *w, const char *path)
{
    struct io_uring ring;
    struct io_uring_cqe *cqe;
    struct iovec iov[QD_MAX];
    unsigned seed = 1, issued = 0, done = 0;
    int fd = open(path, O_RDWR | (o_direct ? O_DIRECT : 0));
    double start;

    if (fd < 0 || io_uring_queue_init(QD_MAX, &ring, 0))
        return 0;
    for (unsigned i = 0; i < w->qd; i++)
        iov[i] = (struct iovec){slot_data[i], w->bs};
    start = now();
    while (done < w->requests) {
        for (; issued < w->requests && issued - done < w->qd; issued++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            struct iovec *v = &iov[issued % w->qd];
            uint64_t off = offset_of(w, issued, &seed);

            if (w->write)
                io_uring_prep_writev(sqe, fd, v, 1, off);
            else
                io_uring_prep_readv(sqe, fd, v, 1, off);
        }
        io_uring_submit_and_wait(&ring, 1);
        while (io_uring_peek_cqe(&ring, &cqe) == 0) {
            io_uring_cqe_seen(&ring, cqe);
            done++;
        }
    }
    io_uring_queue_exit(&ring);
    close(fd);
    return w->requests / (now() - start);
}
#endif

#if defined(HAVE_LIBNBD) || defined(HAVE_LIBRBD)
/* The slots whose requests a client library has retired, free for the
 * next. Locked: librbd retires them on a thread of its own. */
struct retired {
    pthread_mutex_t lock;
    unsigned free[QD_MAX], nfree;
    unsigned done;
    bool failed;
};

struct retired_slot {
    struct retired *dr;
    unsigned n;
};

static void retired_init(struct retired *dr, struct retired_slot *slot,
                         unsigned qd)
{
    pthread_mutex_init(&dr->lock, NULL);
    dr->nfree = dr->done = 0;
    dr->failed = false;
    for (unsigned i = 0; i < qd; i++) {
        slot[i] = (struct retired_slot){dr, i};
        dr->free[dr->nfree++] = i;
    }
}

static void slot_retired(struct retired_slot *s, bool failed)
{
    pthread_mutex_lock(&s->dr->lock);
    s->dr->free[s->dr->nfree++] = s->n;
    s->dr->done++;
    s->dr->failed |= failed;
    pthread_mutex_unlock(&s->dr->lock);
}

/* A free slot taken, or -1 when there is none (or a request failed). */
static int slot_take(struct retired *dr)
{
    int n = -1;

    pthread_mutex_lock(&dr->lock);
    if (dr->nfree && !dr->failed)
        n = (int)dr->free[--dr->nfree];
    pthread_mutex_unlock(&dr->lock);
    return n;
}

/* Whether the run goes on: requests left to retire, none failed. */
static bool retired_running(struct retired *dr, unsigned requests)
{
    bool on;

    pthread_mutex_lock(&dr->lock);
    on = dr->done < requests && !dr->failed;
    pthread_mutex_unlock(&dr->lock);
    return on;
}
#endif

#ifdef HAVE_LIBNBD
static int nbd_direct_retired(void *user_data, int *error)
{
    slot_retired(user_data, *error != 0);
    return 1;
}

/* The most connections a libnbd run takes. */
#define NBD_CONNS_MAX 2

/* One poll(2) on what each connection's state machine waits for, then,
 * on each that is ready, nbd_aio_notify_read or (with only writing
 * ready) nbd_aio_notify_write: nbd_poll(3) over several connections, as
 * xvdm's loop does on its epoll. 0, or -1. */
static int nbd_poll_all(struct nbd_handle **nbd, unsigned n)
{
    struct pollfd p[NBD_CONNS_MAX];

    for (unsigned i = 0; i < n; i++) {
        unsigned dir = nbd_aio_get_direction(nbd[i]);

        p[i] = (struct pollfd){
            .fd = nbd_aio_get_fd(nbd[i]),
            .events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
                      (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0)};
    }
    if (poll(p, n, -1) < 0)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        unsigned dir = nbd_aio_get_direction(nbd[i]);
        short ev = p[i].revents;
        int r = 0;

        if ((dir & LIBNBD_AIO_DIRECTION_READ) &&
            (ev & (POLLIN | POLLHUP | POLLERR)))
            r = nbd_aio_notify_read(nbd[i]);
        else if ((dir & LIBNBD_AIO_DIRECTION_WRITE) &&
                 (ev & (POLLOUT | POLLHUP | POLLERR)))
            r = nbd_aio_notify_write(nbd[i]);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* `conns` libnbd connections to `uri`, made before the clock starts, as
 * xvdm's are; more than one only where the server allows multi-conn.
 * 0, or -1 with those made in nbd[] (NULL past them). */
static int nbd_direct_connect(struct nbd_handle **nbd, unsigned conns,
                              const char *uri)
{
    for (unsigned i = 0; i < conns; i++) {
        nbd[i] = nbd_create();
        if (!nbd[i] || nbd_connect_uri(nbd[i], uri))
            return -1;
        if (conns > 1 && nbd_can_multi_conn(nbd[i]) != 1) {
            fprintf(stderr, "bench-blk: %s does not allow multi-conn\n", uri);
            return -1;
        }
    }
    return 0;
}

/* Requests per second with `conns` libnbd connections to `uri` keeping
 * w->qd commands in flight between them through the async API (slot n on
 * connection n % conns, as the guest puts it on queue n % queues),
 * polled as xvdm's loop polls (nbd_poll_all()); 0 when a command
 * fails. */
static double run_direct_nbd_conns(const struct workload *w, const char *uri,
                                   unsigned conns)
{
    struct retired dr;
    struct retired_slot slot[QD_MAX];
    struct nbd_handle *nbd[NBD_CONNS_MAX] = {NULL};
    unsigned seed = 1, issued = 0;
    double start, rate = 0;
    int n;

    if (nbd_direct_connect(nbd, conns, uri))
        goto out;
    retired_init(&dr, slot, w->qd);
    start = now();
    while (retired_running(&dr, w->requests)) {
        for (; issued < w->requests && (n = slot_take(&dr)) >= 0; issued++) {
            struct nbd_handle *c = nbd[n % conns];
            nbd_completion_callback cb = {.callback = nbd_direct_retired,
                                          .user_data = &slot[n]};
            uint64_t off = offset_of(w, issued, &seed);

            if ((w->write
                     ? nbd_aio_pwrite(c, slot_data[n], w->bs, off, cb, 0)
                     : nbd_aio_pread(c, slot_data[n], w->bs, off, cb, 0)) < 0)
                goto out;
        }
        if (nbd_poll_all(nbd, conns))
            goto out;
    }
    if (!dr.failed)
        rate = w->requests / (now() - start);
out:
    if (!rate)
        fprintf(stderr, "bench-blk: libnbd on %s: %s\n", uri,
                nbd_get_error() ? nbd_get_error() : "a command failed");
    for (unsigned i = 0; i < conns && nbd[i]; i++)
        nbd_close(nbd[i]);
    return rate;
}
#endif

#ifdef HAVE_LIBRBD
/* The pool of the cluster --rbd started, for the direct side's image. */
static rados_ioctx_t rbd_pool;

/* A retired slot handed back as xvdm's RBD backing hands its requests
 * back: through an eventfd the issuing thread waits on. */
struct rbd_retire {
    struct retired_slot *slot;
    int efd;
};

static void rbd_direct_retired(rbd_completion_t c, void *arg)
{
    struct rbd_retire *r = arg;
    ssize_t ret = rbd_aio_get_return_value(c);

    rbd_aio_release(c);
    slot_retired(r->slot, ret < 0);
    eventfd_write(r->efd, 1);
}

/* Slot n's request at `off` sent on `im`: 0, or -1. */
static int rbd_direct_send(rbd_image_t im, const struct workload *w,
                           struct rbd_retire *r, uint64_t off)
{
    char *buf = (char *)slot_data[r->slot->n];
    rbd_completion_t c;

    if (rbd_aio_create_completion(r, rbd_direct_retired, &c) < 0)
        return -1;
    if ((w->write ? rbd_aio_write(im, off, w->bs, buf, c)
                  : rbd_aio_read(im, off, w->bs, buf, c)) < 0) {
        rbd_aio_release(c);
        return -1;
    }
    return 0;
}

/* Requests per second with librbd's aio keeping w->qd requests in flight
 * on `image` (opened before the clock starts, as xvdm's is), completions
 * waited for on an eventfd; 0 when a request fails. */
static double run_direct_rbd(const struct workload *w, const char *image)
{
    struct retired dr;
    struct retired_slot slot[QD_MAX];
    struct rbd_retire ret[QD_MAX];
    unsigned seed = 1, issued = 0;
    int efd = eventfd(0, EFD_CLOEXEC), n;
    double start, took;
    rbd_image_t im;
    eventfd_t e;

    if (efd < 0 || rbd_open(rbd_pool, image, &im, NULL) < 0) {
        fprintf(stderr, "bench-blk: cannot open rbd/%s\n", image);
        if (efd >= 0)
            close(efd);
        return 0;
    }
    retired_init(&dr, slot, w->qd);
    for (unsigned i = 0; i < w->qd; i++)
        ret[i] = (struct rbd_retire){&slot[i], efd};
    start = now();
    while (retired_running(&dr, w->requests)) {
        for (; issued < w->requests && (n = slot_take(&dr)) >= 0; issued++)
            if (rbd_direct_send(im, w, &ret[n], offset_of(w, issued, &seed)))
                slot_retired(&slot[n], true);
        if (retired_running(&dr, w->requests))
            eventfd_read(efd, &e);
    }
    took = now() - start;
    rbd_close(im); /* waits for the requests in flight */
    close(efd);
    if (dr.failed) {
        fprintf(stderr, "bench-blk: librbd on rbd/%s: a request failed\n",
                image);
        return 0;
    }
    return w->requests / took;
}
#endif

/* ---- through xvdm: a sim guest keeping qd requests in flight ------------ */

/* The sim guest's side of one device: its driver, its buffers, and how
 * many queues it spreads its requests over. */
struct guest {
    struct vdriver d;
    uint64_t bufs;
    unsigned queues;
};

/* Slot n's data buffer, after the headers and status bytes. */
static uint64_t slot_gpa(uint64_t bufs, unsigned slot)
{
    return bufs + (1 << 20) * (slot + 1);
}

/* Request `slot` goes on queue slot % queues (round robin, as blk-mq
 * spreads a guest's requests over the device's queues), in descriptors
 * 3*i .. 3*i+2 of that queue's ring, i = slot / queues, so requests that
 * complete out of order never share descriptors. */
static void guest_submit(struct guest *g, const struct workload *w,
                         unsigned slot, uint64_t off)
{
    struct guest_ring *ring = &g->d.ring[slot % g->queues];
    uint64_t hdr = g->bufs + slot * 64;
    uint64_t status = hdr + 32;
    uint64_t data = slot_gpa(g->bufs, slot);
    struct virtio_blk_outhdr *oh = vdriver_ptr(&g->d, hdr);
    struct guest_buf b[3] = {{hdr, 16, false},
                             {data, w->bs, !w->write},
                             {status, 1, true}};

    oh->type = w->write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    oh->sector = off / 512;
    ring->next_desc = (uint16_t)(3 * (slot / g->queues));
    guest_ring_publish(ring, guest_ring_add_chain(ring, b, 3));
}

/* Every completion in the used rings taken, its slot reused for the next
 * request while there are requests left; how many. */
static unsigned guest_take(struct guest *g, const struct workload *w,
                           unsigned *issued, unsigned *seed)
{
    unsigned got = 0;
    uint32_t id, len;

    for (unsigned q = 0; q < g->queues; q++)
        for (; guest_ring_get_used(&g->d.ring[q], &id, &len); got++)
            if (*issued < w->requests)
                guest_submit(g, w, id / 3 * g->queues + q,
                             offset_of(w, (*issued)++, seed));
    return got;
}

/* Kicks, each queue as Linux's driver decides. */
static unsigned guest_kick(struct guest *g)
{
    unsigned kicks = 0;

    for (unsigned q = 0; q < g->queues; q++)
        kicks += vdriver_kick_if_needed(&g->d, q);
    return kicks;
}

/* The guest keeps w->qd requests in flight as Linux's virtio_blk does
 * with EVENT_IDX. It takes completions only in its interrupt handler, as
 * vm_interrupt() does: InterruptStatus read, InterruptAck written (two
 * traps), then the used rings (one interrupt for every queue); an
 * interrupt raised while the guest was trapped in its kick is taken as
 * soon as the kick returns. The handler asks for an interrupt at the next
 * completion and looks once more (virtqueue_enable_cb()); new requests
 * are then kicked only when the device asks (avail_event). Counts its
 * traps: kicks, and two for each interrupt. */
static int run_guest(struct guest *g, const struct workload *w, double *rate,
                     double *traps_per_req)
{
    unsigned seed = 1, issued = 0, done = 0, kicks = 0, irqs = 0;
    double start = now();

    for (; issued < w->qd && issued < w->requests; issued++)
        guest_submit(g, w, issued, offset_of(w, issued, &seed));
    kicks += guest_kick(g);
    while (done < w->requests) {
        unsigned got;

        if (vdriver_wait_irq(&g->d, WAIT_MS) < 0)
            return -ETIMEDOUT;
        irqs++;
        do {
            done += guest_take(g, w, &issued, &seed);
            for (unsigned q = 0; q < g->queues; q++)
                guest_ring_enable_cb(&g->d.ring[q]);
            got = guest_take(g, w, &issued, &seed);
            done += got;
        } while (got);
        kicks += guest_kick(g);
    }
    *rate = w->requests / (now() - start);
    *traps_per_req = (double)(kicks + 2 * irqs) / w->requests;
    return 0;
}

/* xvdm's device on the file at `path` with engine `aio`. */
static void file_spec(char *spec, size_t len, const char *path,
                      const char *aio)
{
    int n = snprintf(spec, len, "blk,path=%s,iothreads=%d,aio=%s,direct=%s",
                     path, IOTHREADS, aio, o_direct ? "on" : "off");

    if (batch_us >= 0 && n > 0 && (size_t)n < len)
        snprintf(spec + n, len - (size_t)n, ",batch=%d", batch_us);
}

/* The sim guest on h's device `dev`, with `queues` queues, its rings and
 * buffers in guest RAM [ram_gpa, ram_gpa + 60 MiB). */
static int guest_setup(struct harness *h, unsigned dev, struct guest *g,
                       unsigned queues, uint64_t ram_gpa)
{
    struct vdriver *d = &g->d;

    vdriver_init(d, h->sim, h->specs[dev].base, h->specs[dev].irq, ram_gpa,
                 60 << 20);
    d->bare_kicks = true; /* as Linux kicks */
    g->queues = queues;
    /* FLUSH, as Linux takes it: writeback, the guest flushing when it
     * needs durability (without it every write would be synchronous). */
    if (vdriver_probe(d, 2,
                      1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_EVENT_IDX |
                          1ULL << VIRTIO_BLK_F_FLUSH |
                          (queues > 1 ? 1ULL << VIRTIO_BLK_F_MQ : 0)))
        return -1;
    for (unsigned q = 0; q < queues; q++)
        if (vdriver_setup_queue(d, q, 128))
            return -1;
    vdriver_driver_ok(d);
    g->bufs = vdriver_alloc(d, (1 << 20) * (QD_MAX + 1), 4096);
    if (!g->bufs)
        return -1;
    for (unsigned i = 0; i < QD_MAX; i++)
        slot_data[i] = vdriver_ptr(d, slot_gpa(g->bufs, i));
    return 0;
}

static int start_xvdm(struct harness *h, struct guest *g, const char *spec)
{
    const char *specs[] = {spec};

    if (harness_start(h, specs, 1))
        return -1;
    loop_set_poll(h->loop, poll_us * 1000);
    return guest_setup(h, 0, g, 1, sim_ram_base(h->sim) + (1 << 20));
}

/* ---- report ----------------------------------------------------------------- */

static int make_file(const char *path)
{
    static char block[1 << 20];
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);

    if (fd < 0)
        return -1;
    memset(block, 0x5a, sizeof(block));
    for (uint64_t off = 0; off < FILE_SIZE; off += sizeof(block))
        if (write(fd, block, sizeof(block)) != sizeof(block))
            return -1;
    fsync(fd);
    return close(fd);
}

static void print_header(const char *what, const char *x, const char *y)
{
    printf("%-9s %-30s %12s %12s %6s %9s %9s\n", what, "workload (median)", x,
           y, "ratio", "range", "traps/req");
}

/* traps: NULL for a side with none (libnbd against itself). */
static void print_row(const char *label, const struct workload *w,
                      const double *x, const double *y, double *traps,
                      unsigned rounds)
{
    struct bench_row row = bench_pairs(x, y, rounds);

    printf("%-9s %-30s %12.0f %12.0f %6.2f %5.2f-%.2f", label, w->name, row.x,
           row.y, row.ratio, row.lo, row.hi);
    if (traps)
        printf(" %9.2f\n", bench_median(traps, rounds));
    else
        printf(" %9s\n", "-");
}

/* One backing: every workload through xvdm's device on `spec` and
 * directly on `target` (the file), side by side, in a row under
 * `label`. */
static int bench_engine(const char *label, const char *spec,
                        const char *target, unsigned rounds,
                        double (*direct)(const struct workload *,
                                         const char *))
{
    struct harness h;
    struct guest g;
    double x[BENCH_ROUNDS_MAX], y[BENCH_ROUNDS_MAX], k[BENCH_ROUNDS_MAX];

    if (start_xvdm(&h, &g, spec))
        return 1;
    for (unsigned i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
        const struct workload *w = &workloads[i];

        /* Each side goes first in every other round: the second reads
         * what the first just read, which the disk below (a cloud
         * disk's host, a RAID cache) may still hold. */
        for (unsigned r = 0; r < rounds; r++) {
            if (r % 2 && !(y[r] = direct(w, target)))
                return 1;
            if (run_guest(&g, w, &x[r], &k[r]))
                return 1;
            if (r % 2 == 0 && !(y[r] = direct(w, target)))
                return 1;
        }
        print_row(label, w, x, y, k, rounds);
    }
    harness_stop(&h);
    return 0;
}

static int bench_file_engine(const char *path, const char *aio,
                             unsigned rounds,
                             double (*direct)(const struct workload *,
                                              const char *))
{
    char spec[300];

    file_spec(spec, sizeof(spec), path, aio);
    return bench_engine(aio, spec, path, rounds, direct);
}

static int bench(const char *path, unsigned rounds)
{
    print_header("engine", "xvdm req/s", "direct req/s");
    if (bench_file_engine(path, "threads", rounds, run_direct))
        return 1;
#ifdef HAVE_LIBURING
    return bench_file_engine(path, "io_uring", rounds, run_direct_uring);
#else
    return 0;
#endif
}

/* What one trap costs here: the median time of a register read through
 * xvdm (the simulated vCPU's ioreq, the loop waking to answer it, the vCPU
 * woken by the answer). A Linux guest makes three per batch of
 * completions: its kick, then InterruptStatus and InterruptAck. */
static int print_round_trip(const char *path)
{
    struct harness h;
    struct guest g;
    char spec[300];
    double t[1000];

    file_spec(spec, sizeof(spec), path, "threads");
    if (start_xvdm(&h, &g, spec))
        return 1;
    for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        double start = now();

        vdriver_read(&g.d, VIRTIO_MMIO_INTERRUPT_STATUS);
        t[i] = now() - start;
    }
    harness_stop(&h);
    printf("one trap (a register read through xvdm), median: %.1f us\n",
           bench_median(t, sizeof(t) / sizeof(t[0])) * 1e6);
    return 0;
}

/* ---- grant mode against mapped RAM ------------------------------------------ */

/* One run of w through a fresh xvdm, in grant mode or with the guest's
 * RAM mapped (the sim and the test driver read XVDM_TEST_GRANTS). */
static int run_mode(const char *path, const char *aio, bool grants,
                    const struct workload *w, double *rate, double *traps)
{
    struct harness h;
    struct guest g;
    char spec[300];
    int ret;

    setenv("XVDM_TEST_GRANTS", grants ? "1" : "0", 1);
    file_spec(spec, sizeof(spec), path, aio);
    if (start_xvdm(&h, &g, spec))
        return -1;
    ret = run_guest(&g, w, rate, traps);
    harness_stop(&h);
    return ret;
}

static int bench_grants_engine(const char *path, const char *aio,
                               unsigned rounds)
{
    double x[BENCH_ROUNDS_MAX], y[BENCH_ROUNDS_MAX], k[BENCH_ROUNDS_MAX];
    double traps;

    for (unsigned i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
        const struct workload *w = &workloads[i];

        for (unsigned r = 0; r < rounds; r++) {
            if (r % 2 && run_mode(path, aio, false, w, &y[r], &traps))
                return 1;
            if (run_mode(path, aio, true, w, &x[r], &k[r]))
                return 1;
            if (r % 2 == 0 && run_mode(path, aio, false, w, &y[r], &traps))
                return 1;
        }
        print_row(aio, w, x, y, k, rounds);
    }
    return 0;
}

static int bench_grants(const char *path, unsigned rounds)
{
    printf("bench-blk --grants: %s, %llu MiB, %d I/O threads\n", path,
           FILE_SIZE >> 20, IOTHREADS);
    for (int d = 0; d < 2; d++) {
        o_direct = d;
        printf("\n%s\n", o_direct ? "O_DIRECT (xvdm direct=on):"
                                  : "page cache (xvdm direct=off):");
        print_header("engine", "grants req/s", "mapped req/s");
        if (bench_grants_engine(path, "threads", rounds))
            return 1;
#ifdef HAVE_LIBURING
        if (bench_grants_engine(path, "io_uring", rounds))
            return 1;
#endif
    }
    return 0;
}

/* The trap's cost, then the page cache, then O_DIRECT, a table each. */
static int bench_both(const char *path, unsigned rounds)
{
    char batch[16] = "its default";

    if (batch_us >= 0)
        snprintf(batch, sizeof(batch), "%d us", batch_us);
    printf("bench-blk: %s, %llu MiB, %d I/O threads, xvdm --poll-us %u, "
           "blk batch= %s\n",
           path, FILE_SIZE >> 20, IOTHREADS, poll_us, batch);
    if (print_round_trip(path))
        return 1;
    for (int d = 0; d < 2; d++) {
        o_direct = d;
        printf("\n%s\n", o_direct ? "O_DIRECT (xvdm direct=on):"
                                  : "page cache (xvdm direct=off):");
        if (bench(path, rounds))
            return 1;
    }
    return 0;
}

/* ---- an NBD export against libnbd used directly ------------------------------ */

#ifdef HAVE_LIBNBD
/* Clients of a server at once: xvdm's two devices (one connection, two),
 * and libnbd's two connections. qemu-nbd allows multi-conn with more than
 * one (--shared), nbdkit's memory plugin always. */
#define NBD_CLIENTS 5

/* The servers: each started on s for the benchmark's file at `path`
 * (its size, or its contents); 0 or -1. */
static int serve_memory(struct nbd_server *s, const char *path)
{
    char size[32];
    const char *words[] = {"memory", size, NULL};

    (void)path;
    snprintf(size, sizeof(size), "%llu", FILE_SIZE);
    return nbd_server_nbdkit(s, words);
}

static int serve_raw(struct nbd_server *s, const char *path)
{
    return nbd_server_qemu(s, "raw", path, NBD_CLIENTS);
}

static int serve_qcow2(struct nbd_server *s, const char *path)
{
    char img[96], cmd[300];

    snprintf(img, sizeof(img), "%s/disk.qcow2", s->dir);
    snprintf(cmd, sizeof(cmd), "qemu-img convert -f raw -O qcow2 %s %s",
             path, img);
    if (system(cmd))
        return -1;
    return nbd_server_qemu(s, "qcow2", img, NBD_CLIENTS);
}

/* Each server, and the programs it needs (the server first). */
static const struct nbd_backing {
    const char *label, *programs[2];
    int (*serve)(struct nbd_server *, const char *);
} nbd_backings[] = {
    {"nbdkit", {"nbdkit"}, serve_memory},
    {"raw", {"qemu-nbd"}, serve_raw},
    {"qcow2", {"qemu-nbd", "qemu-img"}, serve_qcow2},
};

/* The first of b's programs that is not installed, or NULL. */
static const char *nbd_backing_missing(const struct nbd_backing *b)
{
    for (unsigned i = 0; i < 2 && b->programs[i]; i++)
        if (!nbd_server_installed(b->programs[i]))
            return b->programs[i];
    return NULL;
}

/* One round's figures of a workload on a server: each device through
 * xvdm (x: one queue, its traps k; x2: two queues, k2), libnbd with as
 * many connections (y, y2). */
struct nbd_rounds {
    double x[BENCH_ROUNDS_MAX], y[BENCH_ROUNDS_MAX], k[BENCH_ROUNDS_MAX];
    double x2[BENCH_ROUNDS_MAX], y2[BENCH_ROUNDS_MAX], k2[BENCH_ROUNDS_MAX];
};

#define NBD_BACKINGS (sizeof(nbd_backings) / sizeof(nbd_backings[0]))
#define WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* Two devices on the export at `uri`, in one sim: g[0] with one queue,
 * g[1] with two (a connection each where the server allows multi-conn),
 * each in its own half of a larger guest RAM. */
static int start_nbd_devices(struct harness *h, struct guest g[2],
                             const char *uri)
{
    char one[300], two[300];
    const char *specs[] = {one, two};
    struct sim_config cfg = harness_sim_config(1);
    uint64_t ram;

    cfg.ram_size = 128ULL << 20;
    snprintf(one, sizeof(one), "blk,nbd=%s", uri);
    snprintf(two, sizeof(two), "blk,nbd=%s,queues=2", uri);
    if (harness_start_sim(h, specs, 2, &cfg))
        return -1;
    loop_set_poll(h->loop, poll_us * 1000);
    ram = sim_ram_base(h->sim);
    if (guest_setup(h, 0, &g[0], 1, ram + (1 << 20)) ||
        guest_setup(h, 1, &g[1], 2, ram + (64 << 20)))
        return -1;
    return 0;
}

/* One round of w: xvdm on one queue, libnbd on one connection, xvdm on
 * two queues, libnbd on two, in that order in even rounds and the
 * reverse in odd ones. */
static int nbd_round(struct guest g[2], const struct workload *w,
                     const char *uri, unsigned r, struct nbd_rounds *o)
{
    for (unsigned step = 0; step < 4; step++) {
        switch (r % 2 ? 3 - step : step) {
        case 0:
            if (run_guest(&g[0], w, &o->x[r], &o->k[r]))
                return -1;
            break;
        case 1:
            if (!(o->y[r] = run_direct_nbd_conns(w, uri, 1)))
                return -1;
            break;
        case 2:
            if (run_guest(&g[1], w, &o->x2[r], &o->k2[r]))
                return -1;
            break;
        default:
            if (!(o->y2[r] = run_direct_nbd_conns(w, uri, 2)))
                return -1;
        }
    }
    return 0;
}

/* Every workload on the server at `uri`, its rows printed: one queue
 * against one libnbd connection under `label`, two against two under
 * "label 2q"; the rounds kept in o[] for the multi-conn table. */
static int bench_nbd_server(const char *label, const char *uri, unsigned rounds,
                            struct nbd_rounds *o)
{
    struct harness h;
    struct guest g[2];
    char label2[16];

    if (start_nbd_devices(&h, g, uri))
        return 1;
    snprintf(label2, sizeof(label2), "%s 2q", label);
    for (unsigned i = 0; i < WORKLOADS; i++) {
        for (unsigned r = 0; r < rounds; r++)
            if (nbd_round(g, &workloads[i], uri, r, &o[i]))
                return 1;
        print_row(label, &workloads[i], o[i].x, o[i].y, o[i].k, rounds);
        print_row(label2, &workloads[i], o[i].x2, o[i].y2, o[i].k2, rounds);
    }
    harness_stop(&h);
    return 0;
}

/* What multi-conn buys on each server measured: two queues over one
 * through xvdm, two connections over one through libnbd, from the same
 * rounds. */
static void print_multi_conn(const bool *measured,
                             struct nbd_rounds (*o)[WORKLOADS], unsigned rounds)
{
    printf("\nmulti-conn: 2 queues / 1 queue (xvdm), 2 connections / 1 "
           "(libnbd), the same rounds\n");
    print_header("server", "2 req/s", "1 req/s");
    for (unsigned b = 0; b < NBD_BACKINGS; b++) {
        char xl[16], yl[16];

        if (!measured[b])
            continue;
        snprintf(xl, sizeof(xl), "%s x", nbd_backings[b].label);
        snprintf(yl, sizeof(yl), "%s l", nbd_backings[b].label);
        for (unsigned i = 0; i < WORKLOADS; i++)
            print_row(xl, &workloads[i], o[b][i].x2, o[b][i].x, o[b][i].k2,
                      rounds);
        for (unsigned i = 0; i < WORKLOADS; i++)
            print_row(yl, &workloads[i], o[b][i].y2, o[b][i].y, NULL, rounds);
    }
}
/* Each server in turn, its rows through xvdm and through libnbd, then
 * what multi-conn buys on each; a server not installed is said and
 * skipped. */
static int bench_nbd(const char *path, unsigned rounds)
{
    static struct nbd_rounds o[NBD_BACKINGS][WORKLOADS];
    bool measured[NBD_BACKINGS] = {false};

    printf("bench-blk --nbd: %llu MiB exports over a Unix socket, xvdm "
           "--poll-us %u\n",
           FILE_SIZE >> 20, poll_us);
    printf("nbdkit: nbdkit's memory plugin; raw, qcow2: qemu-nbd on %s and "
           "on a qcow2 copy of it\n",
           path);
    printf("a server's rows: 1 queue against 1 libnbd connection; its 2q "
           "rows: 2 queues (a connection each) against 2\n\n");
    print_header("server", "xvdm req/s", "libnbd req/s");
    for (unsigned i = 0; i < NBD_BACKINGS; i++) {
        const struct nbd_backing *b = &nbd_backings[i];
        const char *missing = nbd_backing_missing(b);
        struct nbd_server s;
        int ret;

        if (missing) {
            printf("%-9s (%s not installed)\n", b->label, missing);
            continue;
        }
        if (nbd_server_dir(&s))
            return 1;
        ret = b->serve(&s, path);
        if (!ret)
            ret = bench_nbd_server(b->label, s.uri, rounds, o[i]);
        nbd_server_kill(&s);
        nbd_server_remove_dir(&s);
        if (ret)
            return 1;
        measured[i] = true;
    }
    print_multi_conn(measured, o, rounds);
    return 0;
}
#else
static int bench_nbd(const char *path, unsigned rounds)
{
    (void)path;
    (void)rounds;
    printf("bench-blk --nbd: unavailable, built without libnbd "
           "(Debian: libnbd-dev, then configure again)\n");
    return 0;
}
#endif

/* ---- an RBD image against librbd used directly ------------------------------ */

#ifdef HAVE_LIBRBD
/* Each side's image: the two fit the cluster's OSD (memstore, 512 MiB). */
#define RBD_IMAGE_BYTES (128ULL << 20)

/* A client of the cluster at `conf` and its pool "rbd" in rbd_pool, with
 * librbd's cache off as xvdm has it (sim/ceph-cluster turns it on). 0,
 * or -1 with nothing left open. */
static int rbd_client(rados_t *client, const char *conf)
{
    if (rados_create(client, NULL) < 0)
        return -1;
    if (rados_conf_read_file(*client, conf) < 0 ||
        rados_conf_set(*client, "rbd_cache", "false") < 0 ||
        rados_connect(*client) < 0 ||
        rados_ioctx_create(*client, "rbd", &rbd_pool) < 0) {
        rados_shutdown(*client);
        return -1;
    }
    return 0;
}

/* Image `name` made with the cluster's default features and written
 * whole: a read of an object never written costs the OSD nothing. */
static int rbd_make_image(const char *name)
{
    static char block[1 << 20];
    int order = 0, ret = 0;
    rbd_image_t im;

    if (rbd_create(rbd_pool, name, RBD_IMAGE_BYTES, &order) < 0 ||
        rbd_open(rbd_pool, name, &im, NULL) < 0) {
        fprintf(stderr, "bench-blk: cannot make rbd/%s\n", name);
        return -1;
    }
    memset(block, 0x5a, sizeof(block));
    for (uint64_t off = 0; off < RBD_IMAGE_BYTES && !ret; off += sizeof(block))
        if (rbd_write(im, off, sizeof(block), block) != sizeof(block))
            ret = -1;
    rbd_close(im);
    return ret;
}

/* xvdm's device on image "xvdm", librbd directly on image "direct". */
static int bench_rbd_images(const char *conf, unsigned rounds)
{
    char spec[300];

    if (rbd_make_image("xvdm") || rbd_make_image("direct"))
        return 1;
    snprintf(spec, sizeof(spec), "blk,rbd=rbd/xvdm,conf=%s", conf);
    print_header("backing", "xvdm req/s", "librbd req/s");
    return bench_engine("rbd", spec, "direct", rounds, run_direct_rbd);
}

/* A one-node cluster started for the run, every workload through xvdm
 * and through librbd, side by side. */
static int bench_rbd(unsigned rounds)
{
    struct ceph_node c;
    rados_t client;
    int ret = 1;

    printf("bench-blk --rbd: two %llu MiB images on a one-node Ceph cluster "
           "(sim/ceph-cluster: one OSD on memstore, pool size 1), xvdm "
           "--poll-us %u\n",
           RBD_IMAGE_BYTES >> 20, poll_us);
    printf("xvdm: blk,rbd= on one image; librbd: its aio API on the other, "
           "the same requests, depth and buffers, completions on an "
           "eventfd\n\n");
    if (ceph_node_start(&c))
        return 1;
    disk_bytes = RBD_IMAGE_BYTES;
    if (rbd_client(&client, c.conf) == 0) {
        ret = bench_rbd_images(c.conf, rounds);
        rados_ioctx_destroy(rbd_pool);
        rados_shutdown(client);
    } else {
        fprintf(stderr, "bench-blk: cannot connect to the cluster (%s)\n",
                c.conf);
    }
    ceph_node_stop(&c);
    return ret;
}
#else
static int bench_rbd(unsigned rounds)
{
    (void)rounds;
    printf("bench-blk --rbd: unavailable, built without librbd "
           "(Debian: librbd-dev, then configure again)\n");
    return 0;
}
#endif

int main(int argc, char **argv)
{
    const char *path = "/var/tmp/xvdm-bench.img";
    unsigned rounds = 6, requests = 0;
    bool grants = false, nbd = false, rbd = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--grants") == 0) {
            grants = true;
            continue;
        }
        if (strcmp(argv[i], "--nbd") == 0) {
            nbd = true;
            continue;
        }
        if (strcmp(argv[i], "--rbd") == 0) {
            rbd = true;
            continue;
        }
        if (i + 1 == argc)
            break;
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--file") == 0)
            path = argv[i + 1];
        else if (strcmp(argv[i], "--requests") == 0)
            requests = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--poll-us") == 0)
            poll_us = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch_us = atoi(argv[i + 1]);
        i++;
    }
    if (rounds < 1 || rounds > BENCH_ROUNDS_MAX || make_file(path)) {
        fprintf(stderr, "bench-blk: bad --rounds or cannot write %s\n", path);
        return 1;
    }
    if (requests) {
        struct workload w = workloads[0];
        struct harness h;
        struct guest g;
        double rate, traps;
        char spec[300];

        w.requests = requests;
        file_spec(spec, sizeof(spec), path, "io_uring");
        if (start_xvdm(&h, &g, spec) || run_guest(&g, &w, &rate, &traps))
            return 1;
        harness_stop(&h);
        printf("%u requests through xvdm\n", requests);
        return 0;
    }
    if (nbd)
        return bench_nbd(path, rounds);
    if (rbd)
        return bench_rbd(rounds);
    return grants ? bench_grants(path, rounds) : bench_both(path, rounds);
}
