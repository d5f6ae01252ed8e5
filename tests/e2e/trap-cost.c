/* SPDX-License-Identifier: MIT */
/*
 * What one trap of the guest into xvdm costs, measured in the rig's peers
 * guest (built statically by tools/rig/make-initramfs):
 *
 *   trap-cost VIRTIO_DEV ROUNDS COUNT
 *
 * Reading a virtio device's sysfs "status" makes virtio_mmio read its
 * Status register: one access that stops the vCPU until xvdm answers.
 * Reading "vendor" costs the same system calls and no access (the
 * vendor is kept from the probe). Each round reads each COUNT times,
 * interleaved; a round's cost of one trap is the difference of their
 * means. Prints "TRAP ROUNDS COUNT MEDIAN_US MIN_US MAX_US". Exits 1 on
 * any error.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS_MAX 64

static uint64_t now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* One read of the attribute at PATH, opened afresh so that sysfs asks the
 * driver again; its time in ns, or 0 on an error (said). */
static uint64_t read_once(const char *path)
{
    char buf[64];
    uint64_t start = now_ns();
    int fd = open(path, O_RDONLY);
    ssize_t n;

    if (fd < 0) {
        perror(path);
        return 0;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n <= 0) {
        fprintf(stderr, "trap-cost: %s: nothing read\n", path);
        return 0;
    }
    return now_ns() - start;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    char status[256], vendor[256];
    double us[ROUNDS_MAX];
    long rounds, count;

    if (argc != 4 || (rounds = atol(argv[2])) < 1 || rounds > ROUNDS_MAX ||
        (count = atol(argv[3])) < 1) {
        fprintf(stderr, "usage: trap-cost VIRTIO_DEV ROUNDS(1..%d) COUNT\n",
                ROUNDS_MAX);
        return 1;
    }
    snprintf(status, sizeof(status), "/sys/bus/virtio/devices/%s/status", argv[1]);
    snprintf(vendor, sizeof(vendor), "/sys/bus/virtio/devices/%s/vendor", argv[1]);
    for (long r = 0; r < rounds; r++) {
        uint64_t with = 0, without = 0, t;

        for (long i = 0; i < count; i++) {
            if (!(t = read_once(status)))
                return 1;
            with += t;
            if (!(t = read_once(vendor)))
                return 1;
            without += t;
        }
        us[r] = ((double)with - (double)without) / (double)count / 1000.0;
    }
    qsort(us, (size_t)rounds, sizeof(us[0]), by_value);
    printf("TRAP %ld %ld %.1f %.1f %.1f\n", rounds, count, us[rounds / 2], us[0],
           us[rounds - 1]);
    return 0;
}
