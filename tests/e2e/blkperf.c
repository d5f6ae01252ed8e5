/* SPDX-License-Identifier: MIT */
/*
 * Guest-side block throughput probe for the rig's peer comparison: the
 * same workload on xvdm's virtio disk and on Xen's PV disk (xen-blkback)
 * of the same guest. busybox has no fio and the guest has no libaio, so
 * queue depth is DEPTH threads doing synchronous O_DIRECT I/O (the page
 * cache would measure the guest, not the backend). Built statically by
 * tools/rig/make-initramfs.
 *
 *   blkperf DEVICE read|write|randread|randwrite BLOCK_BYTES DEPTH SECONDS
 *
 * Prints one line: BLKPERF DEVICE MODE BLOCK_BYTES DEPTH OPS_PER_S MIB_PER_S
 * OPS
 * Exits 1 on any I/O error or short transfer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BLKPERF_MAX_DEPTH 64

struct workload {
    int fd;
    bool write;
    bool random;
    uint64_t block;
    uint64_t blocks;               /* of the device */
    double deadline;               /* CLOCK_MONOTONIC seconds */
    atomic_uint_fast64_t next_seq; /* next sequential block */
    atomic_uint_fast64_t ops;
    atomic_bool failed;
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64: cheap, and each thread gets its own sequence. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static uint64_t next_block(struct workload *w, uint64_t *rng)
{
    if (w->random)
        return next_random(rng) % w->blocks;
    return atomic_fetch_add(&w->next_seq, 1) % w->blocks;
}

static void *run_thread(void *arg)
{
    struct workload *w = arg;
    uint64_t rng = (uint64_t)pthread_self() | 1;
    void *buf;

    if (posix_memalign(&buf, 4096, w->block)) {
        atomic_store(&w->failed, true);
        return NULL;
    }
    memset(buf, 0x5a, w->block);
    while (!atomic_load(&w->failed) && now() < w->deadline) {
        off_t off = (off_t)(next_block(w, &rng) * w->block);
        ssize_t n = w->write ? pwrite(w->fd, buf, w->block, off)
                             : pread(w->fd, buf, w->block, off);

        if (n != (ssize_t)w->block) {
            fprintf(stderr, "blkperf: %s at %jd: %s\n",
                    w->write ? "write" : "read", (intmax_t)off,
                    n < 0 ? strerror(errno) : "short transfer");
            atomic_store(&w->failed, true);
            break;
        }
        atomic_fetch_add(&w->ops, 1);
    }
    free(buf);
    return NULL;
}

static int parse_mode(struct workload *w, const char *mode)
{
    w->write = !strcmp(mode, "write") || !strcmp(mode, "randwrite");
    w->random = !strncmp(mode, "rand", 4);
    if (w->write || w->random || !strcmp(mode, "read"))
        return 0;
    fprintf(stderr,
            "blkperf: mode '%s' is not read, write, randread or "
            "randwrite\n",
            mode);
    return -1;
}

static int open_device(struct workload *w, const char *path)
{
    uint64_t bytes;

    w->fd = open(path, (w->write ? O_RDWR : O_RDONLY) | O_DIRECT);
    if (w->fd < 0 || ioctl(w->fd, BLKGETSIZE64, &bytes) != 0) {
        fprintf(stderr, "blkperf: %s: %s\n", path, strerror(errno));
        return -1;
    }
    w->blocks = bytes / w->block;
    if (w->blocks == 0) {
        fprintf(stderr, "blkperf: %s is smaller than one block\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct workload w;
    pthread_t threads[BLKPERF_MAX_DEPTH];
    unsigned depth, seconds, i;
    double start, elapsed;

    if (argc != 6) {
        fprintf(stderr, "usage: blkperf DEVICE read|write|randread|randwrite "
                        "BLOCK_BYTES DEPTH SECONDS\n");
        return 2;
    }
    w.block = strtoull(argv[3], NULL, 0);
    depth = (unsigned)strtoul(argv[4], NULL, 0);
    seconds = (unsigned)strtoul(argv[5], NULL, 0);
    if (w.block == 0 || w.block % 512 || depth == 0 ||
        depth > BLKPERF_MAX_DEPTH || seconds == 0) {
        fprintf(stderr, "blkperf: bad block size, depth or duration\n");
        return 2;
    }
    if (parse_mode(&w, argv[2]) || open_device(&w, argv[1]))
        return 1;
    start = now();
    w.deadline = start + seconds;
    for (i = 0; i < depth; i++)
        if (pthread_create(&threads[i], NULL, run_thread, &w))
            return 1;
    for (i = 0; i < depth; i++)
        pthread_join(threads[i], NULL);
    elapsed = now() - start;
    if (atomic_load(&w.failed))
        return 1;
    printf("BLKPERF %s %s %" PRIu64 " %u %.0f %.2f %" PRIu64 "\n", argv[1],
           argv[2], w.block, depth, (double)atomic_load(&w.ops) / elapsed,
           (double)atomic_load(&w.ops) * (double)w.block / elapsed /
               (1024.0 * 1024.0),
           (uint64_t)atomic_load(&w.ops));
    return 0;
}
