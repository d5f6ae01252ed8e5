/* SPDX-License-Identifier: MIT */
/* xvdm on the simulated hypervisor, driven by a Linux-like driver: probe a
 * virtio-rng device, get entropy through the full path (ioreq, transport,
 * virtqueue, module, interrupt), and share an SPI between two devices. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check-run.h"
#include "dev.h"
#include "guest-layout.h"
#include "harness.h"
#include "privilege.h"
#include "syscall-filter.h"
#include "vdriver.h"

#define FILL 0xa5
#define WAIT_MS 5000
#define ALL_FEATURES DEV_TRANSPORT_FEATURES

static struct harness h;
static const char *empty_dir; /* for --chroot */

static void start(const char *const *specs, unsigned n)
{
    ck_assert_int_eq(harness_start(&h, specs, n), 0);
}

static void stop(void)
{
    harness_stop(&h);
}

/* Driver n gets its own 4 MiB of guest RAM. */
static void attach(struct vdriver *d, unsigned n)
{
    vdriver_init(d, h.sim, h.specs[n].base, h.specs[n].irq,
                 sim_ram_base(h.sim) + (4ULL << 20) * (n + 1), 4ULL << 20);
}

static void bring_up(struct vdriver *d, uint64_t features)
{
    ck_assert_int_eq(vdriver_probe(d, VIRTIO_ID_RNG, features), 0);
    ck_assert_int_eq(vdriver_setup_queue(d, 0, 64), 0);
    vdriver_driver_ok(d);
    ck_assert_int_eq(d->io_error, 0);
}

/* One rng device, probed and running. */
static void start_one(struct vdriver *d)
{
    const char *specs[] = {"rng"};

    start(specs, 1);
    attach(d, 0);
    bring_up(d, ALL_FEATURES);
}

/* Make one device-writable buffer available and kick. */
static void submit(struct vdriver *d, const struct guest_buf *b)
{
    guest_ring_publish(&d->ring[0], guest_ring_add_chain(&d->ring[0], b, 1));
    vdriver_kick(d, 0);
}

/* A buffer of len bytes filled with FILL, with FILL guard bytes around. */
static uint64_t guarded_buffer(struct vdriver *d, uint32_t len)
{
    uint64_t gpa = vdriver_alloc(d, len + 64, 64);

    memset(vdriver_ptr(d, gpa), FILL, len + 64);
    return gpa + 32;
}

static bool all_fill(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != FILL)
            return false;
    return true;
}

static void check_random_and_guarded(struct vdriver *d, uint64_t gpa,
                                     uint32_t len)
{
    uint8_t *p = vdriver_ptr(d, gpa);

    ck_assert(!all_fill(p, len));
    ck_assert(all_fill(p - 32, 32));
    ck_assert(all_fill(p + len, 32));
}

static void expect_used(struct vdriver *d, uint16_t head, uint32_t len)
{
    uint32_t id, used_len;

    ck_assert(guest_ring_get_used(&d->ring[0], &id, &used_len));
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(used_len, len);
}

START_TEST(probe_sees_a_version_2_entropy_device)
{
    const char *specs[] = {"rng"};
    struct vdriver d;

    start(specs, 1);
    attach(&d, 0);
    ck_assert_uint_eq(h.specs[0].base, GUEST_LAYOUT_VIRTIO_MMIO_BASE);
    ck_assert_uint_eq(h.specs[0].irq, GUEST_LAYOUT_VIRTIO_MMIO_SPI_FIRST);
    ck_assert(sim_mmio_mapped(h.sim, h.specs[0].base));
    ck_assert(sim_mmio_mapped(h.sim, h.specs[0].base + 0x1ff));
    ck_assert(!sim_mmio_mapped(h.sim, h.specs[0].base + 0x200));
    ck_assert_int_eq(vdriver_probe(&d, VIRTIO_ID_RNG, ALL_FEATURES), 0);
    /* In grant mode the device also offers ACCESS_PLATFORM, which the
     * driver's grant DMA takes. */
    ck_assert_uint_eq(d.features,
                      ALL_FEATURES |
                          (d.grants ? 1ULL << VIRTIO_F_ACCESS_PLATFORM : 0));
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_VENDOR_ID),
                      VIRTIO_MMIO_VENDOR);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
    vdriver_write(&d, VIRTIO_MMIO_QUEUE_SEL, 1);
    ck_assert_uint_eq(vdriver_read(&d, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    ck_assert_int_eq(d.io_error, 0);
    stop();
}
END_TEST

START_TEST(address_outside_every_window_is_not_claimed)
{
    const char *specs[] = {"rng"};
    uint64_t v;

    start(specs, 1);
    ck_assert_int_eq(sim_mmio_read(h.sim, 0, h.specs[0].base + 0x200, 4, &v),
                     -ENXIO);
    stop();
}
END_TEST

START_TEST(buffers_come_back_random_with_an_interrupt)
{
    const char *specs[] = {"rng"};
    struct guest_buf b[3];
    struct vdriver d;
    uint16_t head[3];

    start(specs, 1);
    attach(&d, 0);
    bring_up(&d, ALL_FEATURES);
    /* One buffer, an indirect chain, and a chain of two buffers. */
    b[0] = (struct guest_buf){guarded_buffer(&d, 64), 64, true};
    head[0] = guest_ring_add_chain(&d.ring[0], b, 1);
    b[1] = (struct guest_buf){guarded_buffer(&d, 100), 100, true};
    head[1] = guest_ring_add_indirect(&d.ring[0], vdriver_alloc(&d, 16, 16),
                                      &b[1], 1);
    b[2] = (struct guest_buf){guarded_buffer(&d, 16), 16, true};
    b[0].gpa = guarded_buffer(&d, 48);
    b[0].len = 48;
    head[2] = guest_ring_add_chain(&d.ring[0], (struct guest_buf[]){b[0], b[2]},
                                   2);
    for (unsigned i = 0; i < 3; i++)
        guest_ring_publish(&d.ring[0], head[i]);
    vdriver_kick(&d, 0);
    ck_assert_int_eq(vdriver_wait_irq(&d, WAIT_MS), VIRTIO_MMIO_INT_VRING);
    expect_used(&d, head[0], 64);
    expect_used(&d, head[1], 100);
    expect_used(&d, head[2], 64);
    check_random_and_guarded(&d, b[1].gpa, 100);
    check_random_and_guarded(&d, b[0].gpa, 48);
    check_random_and_guarded(&d, b[2].gpa, 16);
    ck_assert(memcmp(vdriver_ptr(&d, b[0].gpa), vdriver_ptr(&d, b[2].gpa),
                     16) != 0);
    /* One hypercall per interrupt: the ACK lowered nothing. */
    ck_assert_uint_eq(sim_irq_calls(h.sim, d.irq), sim_irq_edges(h.sim, d.irq));
    stop();
}
END_TEST

/* One 64-byte request comes back full of random bytes (checked without
 * ck_assert: for confined rounds in a process of their own). */
static bool entropy_arrives(struct vdriver *d)
{
    struct guest_buf b = {guarded_buffer(d, 64), 64, true};
    uint32_t id, len;

    submit(d, &b);
    return vdriver_wait_irq(d, WAIT_MS) >= 1 &&
           guest_ring_get_used(&d->ring[0], &id, &len) && len == 64 &&
           !all_fill(vdriver_ptr(d, b.gpa), 64);
}

/* In a process of its own: give up root and the filesystem while
 * serving, then check the device goes on working on what it had open. 0
 * when everything held, else which check failed. */
static int unprivileged_round(const void *unused)
{
    struct privilege p;
    struct vdriver d;
    char err[256];

    start_one(&d);
    if (privilege_check(&p, "nobody", empty_dir, err, sizeof(err)) ||
        privilege_drop(&p))
        return 1;
    if (getuid() != p.uid || open("/etc/passwd", O_RDONLY) != -1 ||
        setuid(0) != -1)
        return 2;
    if (!entropy_arrives(&d))
        return 3;
    stop();
    return 0;
}

/* --user and --chroot. */
START_TEST(serving_goes_on_without_root_or_filesystem)
{
    check_in_child("unprivileged round", unprivileged_round, NULL);
}
END_TEST

#ifdef HAVE_LIBSECCOMP
/* One rng request under the filter, in a process of its own: Check's
 * own bookkeeping after a test needs system calls xvdm does not. 0 when
 * everything held, else which check failed. */
static int filtered_round(const void *unused)
{
    char *const argv[] = {"/bin/true", NULL};
    struct vdriver d;

    start_one(&d);
    if (syscall_filter_install())
        return 1;
    if (open("/etc/passwd", O_RDONLY) != -1 || errno != EPERM)
        return 2;
    if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EPERM)
        return 3;
    if (execv(argv[0], argv) != -1 || errno != EPERM)
        return 4;
    if (!entropy_arrives(&d))
        return 5;
    stop();
    return 0;
}

/* --seccomp: once the filter is in, what serving needs still works
 * (including stopping), and opening files, making network sockets and
 * running programs do not. */
START_TEST(serving_goes_on_under_the_syscall_filter)
{
    check_in_child("filtered round", filtered_round, NULL);
}
END_TEST
#endif

START_TEST(large_request_is_bounded_to_64k)
{
    struct guest_buf b;
    struct vdriver d;

    start_one(&d);
    b = (struct guest_buf){guarded_buffer(&d, 100000), 100000, true};
    submit(&d, &b);
    ck_assert_int_ge(vdriver_wait_irq(&d, WAIT_MS), 1);
    expect_used(&d, 0, 65536);
    stop();
}
END_TEST

START_TEST(event_idx_suppresses_unwanted_interrupts)
{
    struct guest_buf b;
    struct vdriver d;

    start_one(&d);
    b = (struct guest_buf){guarded_buffer(&d, 8), 8, true};
    submit(&d, &b);
    ck_assert_int_ge(vdriver_wait_irq(&d, WAIT_MS), 1);
    /* Linux's virtqueue_disable_cb_split with EVENT_IDX: used_event far
     * behind, so completing the next request must not interrupt. */
    *guest_ring_used_event(&d.ring[0]) = 0xffff;
    submit(&d, &b);
    /* The kick's ioreq is answered after the device served the queue, so
     * the used element is there by now. */
    expect_used(&d, 0, 8);
    expect_used(&d, 1, 8);
    ck_assert_uint_eq(vdriver_new_edges(&d), 0);
    stop();
}
END_TEST

START_TEST(two_devices_sharing_an_spi_both_get_served)
{
    const char *specs[] = {"rng,irq=40", "rng,irq=40"};
    struct guest_buf b0, b1;
    struct vdriver d0, d1;
    int status;

    start(specs, 2);
    attach(&d0, 0);
    attach(&d1, 1);
    bring_up(&d0, ALL_FEATURES);
    bring_up(&d1, ALL_FEATURES);
    b0 = (struct guest_buf){guarded_buffer(&d0, 32), 32, true};
    b1 = (struct guest_buf){guarded_buffer(&d1, 32), 32, true};
    /* Device 0 makes the SPI pending; device 1 fires before the guest
     * handled it, and makes it pending again. */
    submit(&d0, &b0);
    submit(&d1, &b1);
    ck_assert_uint_eq(sim_irq_edges(h.sim, 40), 2);
    /* Linux runs every handler on the shared line: both have work. */
    ck_assert_int_eq(vdriver_wait_irq(&d0, WAIT_MS), VIRTIO_MMIO_INT_VRING);
    status = (int)vdriver_read(&d1, VIRTIO_MMIO_INTERRUPT_STATUS);
    ck_assert_int_eq(status, VIRTIO_MMIO_INT_VRING);
    vdriver_write(&d1, VIRTIO_MMIO_INTERRUPT_ACK, (uint32_t)status);
    ck_assert_uint_eq(sim_irq_calls(h.sim, 40), 2);
    expect_used(&d0, 0, 32);
    expect_used(&d1, 0, 32);
    stop();
}
END_TEST

static Suite *sim_rng_suite(void)
{
    Suite *s = suite_create("sim-rng");
    TCase *tc = tcase_create("rng");

    tcase_add_test(tc, probe_sees_a_version_2_entropy_device);
    tcase_add_test(tc, address_outside_every_window_is_not_claimed);
    tcase_add_test(tc, buffers_come_back_random_with_an_interrupt);
    tcase_add_test(tc, serving_goes_on_without_root_or_filesystem);
#ifdef HAVE_LIBSECCOMP /* without it, --seccomp is refused: test-cli.sh */
    tcase_add_test(tc, serving_goes_on_under_the_syscall_filter);
#endif
    tcase_add_test(tc, large_request_is_bounded_to_64k);
    tcase_add_test(tc, event_idx_suppresses_unwanted_interrupts);
    tcase_add_test(tc, two_devices_sharing_an_spi_both_get_served);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    char dir[] = "/tmp/xvdm-chroot-XXXXXX";
    int ret;

    empty_dir = mkdtemp(dir);
    ret = check_run_all_modes(sim_rng_suite);
    rmdir(dir);
    return ret;
}
