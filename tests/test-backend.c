/* SPDX-License-Identifier: MIT */
/*
 * xvdm as libxl's backend, on the simulated xenstore: the test writes the
 * nodes libxl writes for a guest's xl config (Xen 4.17 virtio disks, Xen
 * 4.18+ virtio devices) and plays libxl's side of the handshake; a
 * simulated guest uses the devices through the real dispatch code.
 */
#include "config.h"

#include <check.h>
#include <endian.h>
#include <linux/virtio_blk.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "check-run.h"
#include "log-lines.h"
#include "guest-config.h"
#include "harness.h"
#include "loop.h"
#include "module.h"
#include "store-sim.h"
#include "store.h"
#include "vdriver.h"
#include "xl-devices.h"

#define DOMID 1 /* the harness's guest */
#define WAIT_MS 5000
#define DISK_BYTES (1 << 20)
#define BLK_CONFIG_CAPACITY 0x100

static struct store *st;
static char disk[64];
static char err[512];

static void setup(void)
{
    int fd;

    st = store_sim_create();
    ck_assert_ptr_nonnull(st);
    store_sim_domain_introduce(st, DOMID);
    snprintf(disk, sizeof(disk), "/tmp/xvdm-backend-XXXXXX");
    fd = mkstemp(disk);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, DISK_BYTES), 0);
    close(fd);
}

static void teardown(void)
{
    store_close(st);
    unlink(disk);
}

static void node(const char *dir, const char *name, const char *value)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(store_write(st, path, value), 0);
}

static char *read_node(const char *dir, const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return store_read(st, path);
}

static void wait_node(const char *dir, const char *name, const char *want)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(store_sim_wait_value(st, path, want, WAIT_MS), 0);
}

static void assert_node(const char *dir, const char *name, const char *want)
{
    char *value = read_node(dir, name);

    ck_assert_ptr_nonnull(value);
    ck_assert_str_eq(value, want);
    free(value);
}

/* The nodes libxl writes for every virtio device: slot n of its
 * allocator, the base in hex (4.18+) or decimal (4.17). */
static void libxl_common(const char *dir, unsigned slot, bool hex)
{
    unsigned base = 0x2000000 + 0x200 * slot;
    char value[64];

    node(dir, "frontend-id", "1");
    node(dir, "online", "1");
    node(dir, "state", "1");
    node(dir, "transport", "mmio");
    if (hex)
        snprintf(value, sizeof(value), "%#x", base);
    else
        snprintf(value, sizeof(value), "%u", base);
    node(dir, "base", value);
    snprintf(value, sizeof(value), "%u", 33 + slot);
    node(dir, "irq", value);
}

/* What libxl 4.17 writes for `disk = ['PARAMS,raw,xvdX,MODE,
 * specification=virtio,backendtype=standalone']`. */
static void libxl_disk(char *dir, size_t len, unsigned devid,
                       const char *params, const char *mode, unsigned slot)
{
    snprintf(dir, len, "/local/domain/0/backend/virtio_disk/%u/%u", DOMID,
             devid);
    libxl_common(dir, slot, false);
    node(dir, "params", params);
    node(dir, "type", "standalone");
    node(dir, "mode", mode);
    node(dir, "device-type", "disk");
    node(dir, "discard-enable", "1");
    node(dir, "specification", "virtio");
}

/* What libxl 4.18+ writes for `virtio = ["type=TYPE,transport=mmio"]`. */
static void libxl_virtio(char *dir, size_t len, unsigned devid,
                         const char *type, unsigned slot)
{
    snprintf(dir, len, "/local/domain/0/backend/virtio/%u/%u", DOMID, devid);
    libxl_common(dir, slot, true);
    node(dir, "type", type);
    node(dir, "grant_usage", "0");
}

/* ---- the simulated store keeps xenstored's watch semantics --------------- */

/* Take the next watch event; its path, or "" when none is queued. */
static const char *next_event(char *buf, size_t len)
{
    char **block;

    buf[0] = '\0';
    if (store_next_event(st, &block) == 1) {
        snprintf(buf, len, "%s", block[STORE_EVENT_PATH]);
        free(block);
    }
    return buf;
}

START_TEST(watches_fire_when_set_and_on_changes_at_or_below_them)
{
    char buf[256];

    ck_assert_int_eq(store_watch(st, "/a/b", "t"), 0);
    ck_assert_str_eq(next_event(buf, sizeof(buf)), "/a/b");
    ck_assert_int_eq(store_write(st, "/a/b/c", "1"), 0);
    ck_assert_str_eq(next_event(buf, sizeof(buf)), "/a/b/c");
    ck_assert_int_eq(store_write(st, "/a/x", "1"), 0);
    ck_assert_str_eq(next_event(buf, sizeof(buf)), "");
    ck_assert_int_eq(store_rm(st, "/a"), 0);
    ck_assert_str_eq(next_event(buf, sizeof(buf)), "/a/b");
    ck_assert_ptr_null(store_read(st, "/a/b/c"));
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(writes_create_parents_that_list_their_children)
{
    unsigned n;
    char **names;

    ck_assert_int_eq(store_write(st, "/d/1/x", "a"), 0);
    ck_assert_int_eq(store_write(st, "/d/2/y", "b"), 0);
    names = store_list(st, "/d", &n);
    ck_assert_ptr_nonnull(names);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(names[0], "1");
    ck_assert_str_eq(names[1], "2");
    free(names);
    ck_assert_ptr_null(store_list(st, "/nothing", &n));
}
END_TEST

/* ---- reading what libxl declared ---------------------------------------------- */

static unsigned read_devices(struct xl_device *out, unsigned max)
{
    unsigned n;

    ck_assert_msg(xl_devices_read(st, 0, DOMID, module_default_dir(), out,
                                  max, &n, err, sizeof(err)) == 0,
                  "%s", err);
    return n;
}

static void free_devices(struct xl_device *d, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        devspec_free(&d[i].spec);
}

START_TEST(a_xen_4_17_virtio_disk_becomes_a_blk_device)
{
    struct xl_device d[4];
    char dir[256];

    libxl_disk(dir, sizeof(dir), 51712, "/dev/loop0", "r", 0);
    ck_assert_uint_eq(read_devices(d, 4), 1);
    ck_assert_str_eq(d[0].spec.type, "blk");
    ck_assert_str_eq(d[0].spec.text, dir);
    ck_assert_str_eq(xvdm_opt_get(&d[0].spec.opts, "path"), "/dev/loop0");
    ck_assert_str_eq(xvdm_opt_get(&d[0].spec.opts, "ro"), "on");
    ck_assert_str_eq(xvdm_opt_get(&d[0].spec.opts, "discard"), "on");
    ck_assert_ptr_null(xvdm_opt_get(&d[0].spec.opts, "direct"));
    ck_assert_uint_eq(d[0].spec.base, 0x2000000);
    ck_assert_uint_eq(d[0].spec.irq, 33);
    free_devices(d, 1);
}
END_TEST

/* xl's `direct-io-safe` disk flag: libxl writes the node as 1. */
START_TEST(a_disk_declared_direct_io_safe_bypasses_dom0s_page_cache)
{
    struct xl_device d[4];
    char dir[256];

    libxl_disk(dir, sizeof(dir), 51712, "/dev/loop0", "w", 0);
    node(dir, "direct-io-safe", "1");
    ck_assert_uint_eq(read_devices(d, 4), 1);
    ck_assert_str_eq(xvdm_opt_get(&d[0].spec.opts, "direct"), "on");
    free_devices(d, 1);
}
END_TEST

START_TEST(xen_4_18_virtio_devices_get_the_module_of_their_id)
{
    struct xl_device d[4];
    char dir[256];

    libxl_virtio(dir, sizeof(dir), 1, "virtio,device2", 2);
    libxl_virtio(dir, sizeof(dir), 0, "virtio,device4", 1);
    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    ck_assert_uint_eq(read_devices(d, 4), 3);
    ck_assert_str_eq(d[0].spec.type, "blk");
    ck_assert_str_eq(xvdm_opt_get(&d[0].spec.opts, "ro"), "off");
    ck_assert_str_eq(d[1].spec.type, "rng"); /* devid 0 */
    ck_assert_uint_eq(d[1].spec.base, 0x2000200);
    ck_assert_uint_eq(d[1].spec.irq, 34);
    ck_assert_str_eq(d[2].spec.type, "blk");
    ck_assert_ptr_null(xvdm_opt_get(&d[2].spec.opts, "path"));
    free_devices(d, 3);
}
END_TEST

/* grant_usage=1 (libxl's default for a backend that is not dom0): the
 * device is served through the guest's grants only. */
START_TEST(grant_usage_1_serves_the_device_through_grants)
{
    struct xl_device d[4];
    char dir[256];

    libxl_virtio(dir, sizeof(dir), 0, "virtio,device4", 0);
    node(dir, "grant_usage", "1");
    libxl_virtio(dir, sizeof(dir), 1, "virtio,device4", 1);
    ck_assert_uint_eq(read_devices(d, 4), 2);
    ck_assert(d[0].spec.grants);
    ck_assert(!d[1].spec.grants);
    free_devices(d, 2);
}
END_TEST

START_TEST(devices_the_toolstack_is_closing_are_left_out)
{
    struct xl_device d[4];
    char dir[256];

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    node(dir, "state", "5");
    ck_assert_uint_eq(read_devices(d, 4), 0);
}
END_TEST

static void read_fails(const char *name, const char *value, const char *want)
{
    struct xl_device d[4];
    char dir[256];
    unsigned n = 99;

    if (strcmp(name, "type") == 0 || strcmp(name, "grant_usage") == 0)
        libxl_virtio(dir, sizeof(dir), 0, "virtio,device4", 0);
    else
        libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    if (value)
        node(dir, name, value);
    else
        ck_assert_int_eq(store_rm(st, strcat(strcat(dir, "/"), name)), 0);
    ck_assert_int_eq(xl_devices_read(st, 0, DOMID, module_default_dir(), d,
                                     4, &n, err, sizeof(err)),
                     -EINVAL);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(err, want), "'%s' wanted '%s'", err, want);
    teardown();
    setup();
}

START_TEST(bad_nodes_are_refused_naming_the_node_and_its_value)
{
    read_fails("mode", "rw", "/51712/mode' is 'rw', not w or r");
    read_fails("params", NULL, "/51712' has no 'params' node");
    read_fails("base", "lowish", "base='lowish' is not an address");
    read_fails("irq", NULL, "has no 'irq' node");
    read_fails("transport", "pci", "transport' is 'pci': xvdm serves "
                                   "virtio-mmio only");
    read_fails("type", "virtio,devicezz", "type' is 'virtio,devicezz', not "
                                          "virtio,device<hex id>");
    read_fails("type", "virtio,device1f", "implements virtio device 31");
    read_fails("grant_usage", "2", "grants='2' is not on or off");
}
END_TEST

/* ---- combining them with the command line ------------------------------------ */

static void parse(struct devspec *s, const char *text)
{
    ck_assert_int_eq(devspec_parse(text, s, err, sizeof(err)), 0);
}

START_TEST(a_generic_device_takes_its_options_from_the_command_line)
{
    const struct devspec *specs;
    struct devspec cli[2];
    struct backend *b;
    char dir[256], text[128];
    unsigned n;

    libxl_virtio(dir, sizeof(dir), 0, "virtio,device2", 0);
    snprintf(text, sizeof(text), "blk,path=%s,ro=on", disk);
    parse(&cli[0], "rng,irq=33"); /* an extra device sharing the SPI */
    parse(&cli[1], text);
    ck_assert_int_eq(backend_open(&b, st, DOMID, module_default_dir(), cli,
                                  2),
                     0);
    specs = backend_specs(b, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(specs[0].text, dir);
    ck_assert_str_eq(xvdm_opt_get(&specs[0].opts, "path"), disk);
    ck_assert_str_eq(xvdm_opt_get(&specs[0].opts, "ro"), "on");
    ck_assert_str_eq(specs[1].type, "rng");
    ck_assert_uint_eq(specs[1].base, 0x2000200); /* the first free window */
    ck_assert_uint_eq(specs[1].irq, 33);
    backend_close(b);
    devspec_free(&cli[0]);
    devspec_free(&cli[1]);
}
END_TEST

/* b serves one device, the disk libxl declared in xenstore directory dir,
 * with the test's file and key=value among its options. */
static void assert_one_disk(struct backend *b, const char *dir,
                            const char *key, const char *value)
{
    const struct devspec *specs;
    unsigned n;

    specs = backend_specs(b, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(specs[0].text, dir);
    ck_assert_str_eq(xvdm_opt_get(&specs[0].opts, "path"), disk);
    ck_assert_str_eq(xvdm_opt_get(&specs[0].opts, key), value);
}

/* Tried as a new user would: --device blk,queues=2 beside an xl
 * config's 4.17 disk tunes that disk; it is not a second one (which
 * failed for want of path=). */
START_TEST(a_command_line_device_without_a_window_tunes_a_declared_disk)
{
    struct devspec cli;
    struct backend *b;
    char dir[256];

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    parse(&cli, "blk,queues=2");
    ck_assert_int_eq(backend_open(&b, st, DOMID, module_default_dir(), &cli,
                                  1),
                     0);
    assert_one_disk(b, dir, "queues", "2");
    backend_close(b);
    devspec_free(&cli);
}
END_TEST

/* The disk's file is the xl config's: a second path= is an error that
 * says so. */
START_TEST(a_second_path_for_a_declared_disk_is_refused)
{
    struct devspec cli;
    struct backend *b;

    libxl_disk(err, sizeof(err), 51712, disk, "w", 0);
    parse(&cli, "blk,path=/dev/null");
    ck_assert_int_eq(backend_open(&b, st, DOMID, module_default_dir(), &cli,
                                  1),
                     -EINVAL);
    devspec_free(&cli);
}
END_TEST

/* Beside a virtio = [...] disk, the same path= backs that one instead. */
START_TEST(a_path_goes_to_the_declared_disk_that_has_none)
{
    const struct devspec *specs;
    struct devspec cli;
    struct backend *b;
    char vdir[256];
    unsigned n;

    libxl_disk(err, sizeof(err), 51712, disk, "w", 0);
    libxl_virtio(vdir, sizeof(vdir), 0, "virtio,device2", 1);
    parse(&cli, "blk,path=/dev/null");
    ck_assert_int_eq(backend_open(&b, st, DOMID, module_default_dir(), &cli,
                                  1),
                     0);
    specs = backend_specs(b, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(specs[1].text, vdir);
    ck_assert_str_eq(xvdm_opt_get(&specs[1].opts, "path"), "/dev/null");
    backend_close(b);
    devspec_free(&cli);
}
END_TEST

/* backend_open() with one command-line spec, `lend`, as log_lines_during()
 * runs it. */
static struct devspec lend;
static struct backend *lent;
static int lend_ret;

static void open_with_lend(void)
{
    lend_ret = backend_open(&lent, st, DOMID, module_default_dir(), &lend, 1);
}

/* The toolstack's grant_usage=0 made the guest's device tree without
 * xen,grant-dma: its driver gives guest addresses, not grants, so
 * grants=on for that device is a mistake to name, not to serve. */
START_TEST(grants_that_disagree_with_the_declared_grant_usage_are_refused)
{
    char dir[256], line[512];

    libxl_virtio(dir, sizeof(dir), 0, "virtio,device4", 0);
    parse(&lend, "rng,grants=on");
    snprintf(line, sizeof(line),
             "'rng,grants=on': grants=on, but '%s' has grant_usage=0", dir);
    ck_assert_uint_eq(log_lines_during(open_with_lend, line), 1);
    ck_assert_int_eq(lend_ret, -EINVAL);
    devspec_free(&lend);
}
END_TEST

/* Of two declared rngs, the one in grant mode takes the line that asks
 * for it. */
START_TEST(a_grants_line_backs_the_declared_device_in_that_mode)
{
    const struct devspec *specs;
    char dir0[256], dir1[256], line[512];
    unsigned n;

    libxl_virtio(dir0, sizeof(dir0), 0, "virtio,device4", 0);
    libxl_virtio(dir1, sizeof(dir1), 1, "virtio,device4", 1);
    node(dir1, "grant_usage", "1");
    parse(&lend, "rng,grants=on");
    snprintf(line, sizeof(line), "'%s': rng with the options of "
             "'rng,grants=on'", dir1);
    ck_assert_uint_eq(log_lines_during(open_with_lend, line), 1);
    ck_assert_int_eq(lend_ret, 0);
    specs = backend_specs(lent, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert(!specs[0].grants);
    ck_assert(specs[1].grants);
    backend_close(lent);
    devspec_free(&lend);
}
END_TEST

/* libxl writes a 4.18 rng's nodes in one transaction, 200 ms late. */
static void *libxl_writes_late(void *arg)
{
    static const char *const values[] = {"1", "1", "1", "mmio", "0x2000000",
                                         "33", "virtio,device4", "0"};
    static const char *const keys[] = {"frontend-id", "online", "state",
                                       "transport", "base", "irq", "type",
                                       "grant_usage"};
    char paths[8][256];
    const char *p[8];

    for (unsigned i = 0; i < 8; i++) {
        snprintf(paths[i], sizeof(paths[i]),
                 "/local/domain/0/backend/virtio/%u/0/%s", DOMID, keys[i]);
        p[i] = paths[i];
    }
    usleep(200000);
    ck_assert_int_eq(store_sim_write_all(st, p, values, 8), 0);
    return arg;
}

static void *domain_dies_late(void *arg)
{
    usleep(200000);
    store_sim_domain_release(st, DOMID);
    return arg;
}

static unsigned elapsed_ms(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned)((now.tv_sec - since->tv_sec) * 1000 +
                      (now.tv_nsec - since->tv_nsec) / 1000000);
}

/* Started beside xl create, xvdm may read xenstore before libxl wrote
 * the guest's virtio = [...] devices: it waits for them. */
START_TEST(devices_written_after_xvdm_started_are_waited_for)
{
    struct backend *b;
    pthread_t t;
    unsigned n;

    ck_assert_int_eq(pthread_create(&t, NULL, libxl_writes_late, NULL), 0);
    ck_assert_int_eq(backend_wait_for_devices(st, DOMID, 5000), 0);
    ck_assert_int_eq(
        backend_open(&b, st, DOMID, module_default_dir(), NULL, 0), 0);
    backend_specs(b, &n);
    ck_assert_uint_eq(n, 1);
    backend_close(b);
    pthread_join(t, NULL);
}
END_TEST

START_TEST(the_wait_for_devices_is_bounded)
{
    struct timespec start;
    struct backend *b;

    clock_gettime(CLOCK_MONOTONIC, &start);
    ck_assert_int_eq(backend_wait_for_devices(st, DOMID, 300), 0);
    ck_assert_int_eq(
        backend_open(&b, st, DOMID, module_default_dir(), NULL, 0), -ENOENT);
    ck_assert_uint_ge(elapsed_ms(&start), 300);
    ck_assert_uint_lt(elapsed_ms(&start), 2000);
}
END_TEST

START_TEST(the_wait_for_devices_ends_when_the_domain_dies)
{
    struct timespec start;
    pthread_t t;

    clock_gettime(CLOCK_MONOTONIC, &start);
    ck_assert_int_eq(pthread_create(&t, NULL, domain_dies_late, NULL), 0);
    ck_assert_int_eq(backend_wait_for_devices(st, DOMID, 10000), -ESRCH);
    ck_assert_uint_lt(elapsed_ms(&start), 2000);
    pthread_join(t, NULL);
}
END_TEST

/* ---- the guest's own file ---------------------------------------------------- */

static char conf_dir[64];
static struct devspec conf[GUEST_CONFIG_DEVICES_MAX];
static unsigned nr_conf;
static char conf_path[512];

static void conf_setup(void)
{
    setup();
    snprintf(conf_dir, sizeof(conf_dir), "/tmp/xvdm-conf-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(conf_dir));
    node("/local/domain/1", "name", "guest1");
}

static void conf_teardown(void)
{
    char cmd[128];

    for (unsigned i = 0; i < nr_conf; i++)
        devspec_free(&conf[i]);
    nr_conf = 0;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", conf_dir);
    ck_assert_int_eq(system(cmd), 0);
    teardown();
}

static void write_conf(const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/guest1.conf", conf_dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int read_conf(void)
{
    return guest_config_read(st, DOMID, conf_dir, conf,
                             GUEST_CONFIG_DEVICES_MAX, &nr_conf, conf_path,
                             sizeof(conf_path), err, sizeof(err));
}

/* The backend of what the store declares, backed by a guest's file
 * holding text. */
static struct backend *open_with_conf(const char *text)
{
    struct backend *b;

    write_conf(text);
    ck_assert_int_eq(read_conf(), 0);
    ck_assert_int_eq(
        backend_open(&b, st, DOMID, module_default_dir(), conf, nr_conf), 0);
    return b;
}

/* A virtio = [...] disk gets its file from the guest's own file, as it
 * would from --device (under the supervisor there is no --device). */
START_TEST(a_guests_file_backs_its_declared_devices)
{
    struct backend *b;
    char dir[256], text[256];

    libxl_virtio(dir, sizeof(dir), 0, "virtio,device2", 0);
    snprintf(text, sizeof(text),
             "# guest1's disk\n\n  blk,path=%s,ro=on  # read-only\n", disk);
    write_conf(text);
    ck_assert_int_eq(read_conf(), 0);
    ck_assert_uint_eq(nr_conf, 1);
    ck_assert(strstr(conf_path, "/guest1.conf"));
    ck_assert_int_eq(
        backend_open(&b, st, DOMID, module_default_dir(), conf, nr_conf), 0);
    assert_one_disk(b, dir, "ro", "on");
    backend_close(b);
}
END_TEST

/* The cycle scenario's guest on Xen 4.20: a 4.17 disk = [...] disk (its
 * path the xl config's) and a virtio = [...] disk, which libxl declares
 * later. The file's path= backs the virtio disk; before libxl declares
 * it, the line waits, and the instance serves the 4.17 disk alone rather
 * than refusing path= as given twice. */
START_TEST(a_files_path_backs_the_disk_that_has_none)
{
    const struct devspec *specs;
    struct backend *b;
    char dir[256], vdir[256];
    unsigned n;

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    b = open_with_conf("blk,path=/srv/second.img\n");
    specs = backend_specs(b, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(xvdm_opt_get(&specs[0].opts, "path"), disk);
    backend_close(b);

    libxl_virtio(vdir, sizeof(vdir), 0, "virtio,device2", 1);
    ck_assert_int_eq(
        backend_open(&b, st, DOMID, module_default_dir(), conf, nr_conf), 0);
    specs = backend_specs(b, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(specs[0].text, dir);
    ck_assert_str_eq(xvdm_opt_get(&specs[0].opts, "path"), disk);
    ck_assert_str_eq(specs[1].text, vdir);
    ck_assert_str_eq(xvdm_opt_get(&specs[1].opts, "path"), "/srv/second.img");
    backend_close(b);
}
END_TEST

START_TEST(a_guest_without_a_file_has_no_devices_from_it)
{
    ck_assert_int_eq(read_conf(), 0);
    ck_assert_uint_eq(nr_conf, 0);
}
END_TEST

START_TEST(a_bad_line_is_refused_naming_the_file_the_line_and_the_value)
{
    write_conf("rng\n# fine so far\nrng,irq=banana\n");
    ck_assert_int_eq(read_conf(), -EINVAL);
    ck_assert_uint_eq(nr_conf, 0);
    ck_assert_msg(strstr(err, "guest1.conf:3:") && strstr(err, "banana"),
                  "%s", err);
}
END_TEST

START_TEST(a_file_too_large_is_refused)
{
    char *text = malloc(GUEST_CONFIG_BYTES_MAX + 2);

    ck_assert_ptr_nonnull(text);
    memset(text, '#', GUEST_CONFIG_BYTES_MAX + 1);
    text[GUEST_CONFIG_BYTES_MAX + 1] = '\0';
    write_conf(text);
    free(text);
    ck_assert_int_eq(read_conf(), -EINVAL);
    ck_assert_msg(strstr(err, "guest1.conf is larger than"), "%s", err);
}
END_TEST

static int read_conf_ret;

static void read_conf_quietly(void)
{
    read_conf_ret = read_conf();
}

/* The name comes from xenstore: it must not lead out of the directory.
 * Such a guest has no file, with a line saying so, and its devices are
 * served without one. */
START_TEST(a_name_that_is_no_file_name_reads_no_file)
{
    write_conf("rng\n");
    node("/local/domain/1", "name", "../../etc/passwd");
    ck_assert_uint_eq(log_lines_during(read_conf_quietly,
                                       "'../../etc/passwd' cannot name a "
                                       "file: no device file read"),
                      1);
    ck_assert_int_eq(read_conf_ret, 0);
    ck_assert_uint_eq(nr_conf, 0);
}
END_TEST

/* xenstored lets a driver domain read a guest's backend nodes but not
 * the guest's name: that guest has no file, with a line saying why, and
 * the devices its backend nodes declare are served without one. */
START_TEST(a_name_the_backend_may_not_read_reads_no_file)
{
    write_conf("rng\n");
    store_sim_deny_read(st, "/local/domain/1/name");
    ck_assert_int_eq(log_lines_during(read_conf_quietly,
                                      "may not read its name "
                                      "(/local/domain/1/name): no device "
                                      "file read"),
                     1);
    ck_assert_int_eq(read_conf_ret, 0);
    ck_assert_uint_eq(nr_conf, 0);
}
END_TEST

/* Each source within its own bound, but together more than a guest's
 * devices: one line says where they came from and how many. */
START_TEST(a_file_and_command_line_with_too_many_devices_are_refused)
{
    struct devspec cli[5], given[BACKEND_DEVICES_MAX];
    char text[30 * 4 + 1] = "";

    for (unsigned i = 0; i < 30; i++)
        strcat(text, "rng\n");
    write_conf(text);
    ck_assert_int_eq(read_conf(), 0);
    ck_assert_uint_eq(nr_conf, 30);
    for (unsigned i = 0; i < 5; i++)
        parse(&cli[i], "rng");
    err[0] = '\0';
    ck_assert_int_eq(guest_config_combine(cli, 5, conf, nr_conf, conf_path,
                                          given, BACKEND_DEVICES_MAX, err,
                                          sizeof(err)),
                     -E2BIG);
    ck_assert_msg(strstr(err, "guest1.conf': 30 device line(s) plus 5 from "
                              "the command line: more than 32"),
                  "'%s'", err);
    for (unsigned i = 0; i < 5; i++)
        devspec_free(&cli[i]);
}
END_TEST

/* A Xen 4.17 disk has no grant_usage node: the guest's file says the
 * guest grants the disk's memory (a backend outside dom0), and xvdm
 * serves it in grant mode. */
START_TEST(a_files_grants_on_puts_the_declared_disk_in_grant_mode)
{
    const struct devspec *specs;
    struct backend *b;
    char dir[256];
    unsigned n;

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    b = open_with_conf("blk,grants=on\n");
    specs = backend_specs(b, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(specs[0].text, dir);
    ck_assert(specs[0].grants);
    backend_close(b);
}
END_TEST

START_TEST(a_command_line_device_in_a_declared_window_is_refused)
{
    struct devspec cli;
    struct backend *b;
    char dir[256];

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    parse(&cli, "rng,base=0x2000000,irq=40");
    ck_assert_int_eq(backend_open(&b, st, DOMID, module_default_dir(), &cli,
                                  1),
                     -EINVAL);
    devspec_free(&cli);
}
END_TEST

/* ---- the handshake, with a guest using the devices ---------------------------- */

static struct harness h;
static struct backend *b;
static atomic_bool gone;

static void on_gone(void *arg)
{
    atomic_store(&gone, true);
    loop_stop(arg);
}

/* xvdm serving what the store declares and the command line's `cli`, as
 * `xvdm --xenstore` does. */
static void serve_with(const struct devspec *cli, unsigned nr_cli)
{
    const struct devspec *specs;
    unsigned n;

    atomic_store(&gone, false);
    memset(&h, 0, sizeof(h));
    h.store = st;
    ck_assert_int_eq(
        backend_open(&b, st, DOMID, module_default_dir(), cli, nr_cli), 0);
    specs = backend_specs(b, &n);
    ck_assert_int_eq(harness_setup(&h, specs, n), 0);
    ck_assert_int_eq(backend_start(b, h.loop, on_gone, h.loop), 0);
    ck_assert_int_eq(harness_run(&h), 0);
}

static void serve(void)
{
    serve_with(NULL, 0);
}

/* Setting up what the store declares fails. */
static void setup_fails(void)
{
    const struct devspec *specs;
    unsigned n;

    memset(&h, 0, sizeof(h));
    h.store = st;
    ck_assert_int_eq(
        backend_open(&b, st, DOMID, module_default_dir(), NULL, 0), 0);
    specs = backend_specs(b, &n);
    ck_assert_int_lt(harness_setup(&h, specs, n), 0);
    backend_close(b);
    b = NULL;
}

/* A virtio = [...] disk nobody gave a file: the error names the guest's
 * device as libxl declared it, and what is missing. */
START_TEST(a_virtio_disk_without_a_backing_is_named_in_the_error)
{
    char dir[256], line[400];

    libxl_virtio(dir, sizeof(dir), 0, "virtio,device2", 0);
    snprintf(line, sizeof(line), "'%s': blk device not set up (0 option(s) "
             "given)", dir);
    ck_assert_uint_eq(log_lines_during(setup_fails, line), 1);
}
END_TEST

/* As xvdm's teardown: devices and guest memory first, then Closed; the
 * sim (the guest's RAM) stays for the test to look at. */
static void stop_serving_memory_kept(void)
{
    harness_halt(&h);
    backend_close(b);
}

static void stop_serving(void)
{
    stop_serving_memory_kept();
    harness_stop(&h);
}

static bool wait_gone(unsigned ms)
{
    for (unsigned t = 0; t < ms && !atomic_load(&gone); t += 5)
        usleep(5000);
    return atomic_load(&gone);
}

static void probe_disk(struct vdriver *d, unsigned slot)
{
    vdriver_init(d, h.sim, 0x2000000 + 0x200 * slot, 33 + slot,
                 sim_ram_base(h.sim) + (1 << 20), 8 << 20);
    ck_assert_uint_eq(vdriver_read(d, VIRTIO_MMIO_DEVICE_ID), 2);
    ck_assert_int_eq(vdriver_probe(d, 2, 1ULL << 32), 0);
    ck_assert_uint_eq(vdriver_read(d, BLK_CONFIG_CAPACITY), DISK_BYTES / 512);
}

START_TEST(a_disk_from_xl_is_served_then_closed_when_libxl_closes_it)
{
    struct vdriver d;
    char dir[256];

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    serve();
    wait_node(dir, "state", "2");
    probe_disk(&d, 0);
    node(dir, "online", "0"); /* libxl's removal */
    node(dir, "state", "5");
    ck_assert(wait_gone(WAIT_MS));
    assert_node(dir, "state", "5"); /* not Closed while still mapped */
    stop_serving();
    assert_node(dir, "state", "6");
}
END_TEST

/* The supervisor restarts an instance when the guest declares devices
 * after it started (SIGUSR2): the instance leaves its devices open, and
 * the next one serves them. */
START_TEST(a_disk_handed_over_is_served_by_the_next_instance)
{
    struct vdriver d;
    char dir[256];

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    serve();
    wait_node(dir, "state", "2");
    harness_halt(&h);
    backend_hand_over(b);
    harness_stop(&h);
    assert_node(dir, "state", "2");
    serve();
    probe_disk(&d, 0);
    stop_serving();
    assert_node(dir, "state", "6");
}
END_TEST

START_TEST(one_device_closing_while_another_stays_keeps_both_served)
{
    struct vdriver d;
    char dir0[256], dir1[256];

    libxl_disk(dir0, sizeof(dir0), 51712, disk, "w", 0);
    libxl_disk(dir1, sizeof(dir1), 51728, disk, "r", 1);
    serve();
    assert_node(dir1, "state", "2");
    node(dir0, "state", "5"); /* xl block-detach */
    ck_assert(!wait_gone(200));
    probe_disk(&d, 0);
    node(dir1, "state", "5");
    ck_assert(wait_gone(WAIT_MS));
    stop_serving();
    assert_node(dir0, "state", "6");
    assert_node(dir1, "state", "6");
}
END_TEST

START_TEST(the_domain_dying_lets_go_of_it)
{
    char dir[256];

    libxl_virtio(dir, sizeof(dir), 0, "virtio,device4", 0);
    serve();
    assert_node(dir, "state", "2");
    store_sim_domain_release(st, 7); /* another domain: nothing to do */
    ck_assert(!wait_gone(100));
    store_sim_domain_release(st, DOMID);
    ck_assert(wait_gone(WAIT_MS));
    stop_serving();
}
END_TEST

/* xenstored answers "is this domain introduced?" for privileged callers
 * only (XSA-115), and sends them alone @releaseDomain: a backend in a
 * driver domain that is refused must go on serving, and let go when
 * libxl removes its nodes. */
START_TEST(a_driver_domain_refused_the_domains_state_keeps_serving)
{
    char dir[256];

    libxl_virtio(dir, sizeof(dir), 0, "virtio,device4", 0);
    store_sim_unprivileged(st);
    serve();
    assert_node(dir, "state", "2");
    store_sim_domain_release(st, 7);
    ck_assert(!wait_gone(200));
    ck_assert_int_eq(store_rm(st, dir), 0);
    ck_assert(wait_gone(WAIT_MS));
    stop_serving();
}
END_TEST

START_TEST(removed_nodes_count_as_closed_and_are_not_written_back)
{
    char dir[256];
    char *state;

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    serve();
    ck_assert_int_eq(store_rm(st, dir), 0);
    ck_assert(wait_gone(WAIT_MS));
    stop_serving();
    state = read_node(dir, "state");
    ck_assert_ptr_null(state);
}
END_TEST

/* Queue `n` reads of `len` bytes each into buffers of 0xee, without
 * waiting; their status bytes (0xff until answered) into status[]. */
static void queue_reads(struct vdriver *d, unsigned n, uint32_t len,
                        uint8_t **status, uint64_t *first, uint64_t *last)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t hdr = vdriver_alloc(d, 16, 16);
        uint64_t data = vdriver_alloc(d, len, 512);
        uint64_t sts = vdriver_alloc(d, 1, 1);
        struct virtio_blk_outhdr *oh = vdriver_ptr(d, hdr);
        struct guest_buf bufs[3] = {
            {hdr, 16, false}, {data, len, true}, {sts, 1, true}};

        oh->type = htole32(VIRTIO_BLK_T_IN);
        oh->ioprio = 0;
        oh->sector = htole64((uint64_t)i * (len / 512) % (DISK_BYTES / 512));
        memset(vdriver_ptr(d, data), 0xee, len);
        status[i] = vdriver_ptr(d, sts);
        *status[i] = 0xff;
        if (i == 0)
            *first = hdr;
        *last = sts + 1;
        guest_ring_publish(&d->ring[0],
                           guest_ring_add_chain(&d->ring[0], bufs, 3));
    }
    vdriver_kick(d, 0);
}

/* The guest dies with reads in flight: xvdm notices, finishes or drops
 * them, lets go, and from then on never writes its memory again. */
START_TEST(a_guest_dying_mid_io_is_let_go_and_its_memory_left_alone)
{
    enum { N = 32, LEN = 16384 };
    uint8_t *status[N], *before;
    uint64_t first, last;
    struct vdriver d;
    char dir[256];

    libxl_disk(dir, sizeof(dir), 51712, disk, "w", 0);
    serve();
    probe_disk(&d, 0);
    /* Room for all N chains of 3 descriptors: none reuses another's. */
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, 128), 0);
    vdriver_driver_ok(&d);
    queue_reads(&d, N, LEN, status, &first, &last);
    store_sim_domain_release(st, DOMID);
    ck_assert(wait_gone(WAIT_MS));
    stop_serving_memory_kept();
    before = malloc(last - first);
    memcpy(before, vdriver_ptr(&d, first), last - first);
    usleep(200000);
    ck_assert(memcmp(before, vdriver_ptr(&d, first), last - first) == 0);
    for (unsigned i = 0; i < N; i++)
        ck_assert_msg(*status[i] == 0xff || *status[i] == VIRTIO_BLK_S_OK,
                      "request %u: status %u", i, *status[i]);
    free(before);
    harness_stop(&h);
}
END_TEST

/* ---- what devices publish ------------------------------------------ */

/* The node `pty` of dir names a terminal a tool can open. */
static void assert_pty_node(const char *dir)
{
    char *path = read_node(dir, "pty");
    int fd;

    ck_assert_ptr_nonnull(path);
    fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    ck_assert(isatty(fd));
    close(fd);
    free(path);
}

START_TEST(a_console_from_xl_publishes_its_pty_in_its_backend_directory)
{
    struct devspec cli;
    char dir[256];

    libxl_virtio(dir, sizeof(dir), 0, "virtio,device3", 0);
    parse(&cli, "console,pty");
    serve_with(&cli, 1);
    assert_pty_node(dir);
    stop_serving();
    ck_assert_ptr_null(read_node(dir, "pty"));
    assert_node(dir, "state", "6");
    devspec_free(&cli);
}
END_TEST

/* A device libxl knows nothing of publishes under the device model's
 * directory, named like the device; the directory goes with xvdm. */
START_TEST(a_command_line_console_publishes_under_the_device_model_directory)
{
    const char *dm = "/local/domain/0/device-model/1/xvdm";
    struct devspec cli[2];
    char dir[256];

    parse(&cli[0], "console,file=/dev/null");
    parse(&cli[1], "console,pty");
    serve_with(cli, 2);
    snprintf(dir, sizeof(dir), "%s/console1", dm);
    assert_pty_node(dir);
    ck_assert_ptr_null(read_node(dm, "console0/pty"));
    stop_serving();
    ck_assert_ptr_null(store_read(st, dm));
    devspec_free(&cli[0]);
    devspec_free(&cli[1]);
}
END_TEST

static Suite *backend_suite(void)
{
    Suite *s = suite_create("backend");
    TCase *store = tcase_create("store");
    TCase *xl = tcase_create("xl-devices");
    TCase *hs = tcase_create("handshake");
    TCase *conf_tc = tcase_create("guest-config");

    tcase_add_checked_fixture(store, setup, teardown);
    tcase_add_test(store, watches_fire_when_set_and_on_changes_at_or_below_them);
    tcase_add_test(store, writes_create_parents_that_list_their_children);
    suite_add_tcase(s, store);
    tcase_add_checked_fixture(xl, setup, teardown);
    tcase_add_test(xl, a_xen_4_17_virtio_disk_becomes_a_blk_device);
    tcase_add_test(xl, a_disk_declared_direct_io_safe_bypasses_dom0s_page_cache);
    tcase_add_test(xl, xen_4_18_virtio_devices_get_the_module_of_their_id);
    tcase_add_test(xl, grant_usage_1_serves_the_device_through_grants);
    tcase_add_test(xl, devices_the_toolstack_is_closing_are_left_out);
    tcase_add_test(xl, bad_nodes_are_refused_naming_the_node_and_its_value);
    tcase_add_test(xl, a_generic_device_takes_its_options_from_the_command_line);
    tcase_add_test(xl, a_command_line_device_without_a_window_tunes_a_declared_disk);
    tcase_add_test(xl, a_second_path_for_a_declared_disk_is_refused);
    tcase_add_test(xl, a_path_goes_to_the_declared_disk_that_has_none);
    tcase_add_test(xl,
                   grants_that_disagree_with_the_declared_grant_usage_are_refused);
    tcase_add_test(xl, a_grants_line_backs_the_declared_device_in_that_mode);
    tcase_add_test(xl, a_command_line_device_in_a_declared_window_is_refused);
    tcase_add_test(xl, devices_written_after_xvdm_started_are_waited_for);
    tcase_add_test(xl, the_wait_for_devices_is_bounded);
    tcase_add_test(xl, the_wait_for_devices_ends_when_the_domain_dies);
    suite_add_tcase(s, xl);
    tcase_add_checked_fixture(conf_tc, conf_setup, conf_teardown);
    tcase_add_test(conf_tc, a_guests_file_backs_its_declared_devices);
    tcase_add_test(conf_tc, a_guest_without_a_file_has_no_devices_from_it);
    tcase_add_test(conf_tc, a_files_path_backs_the_disk_that_has_none);
    tcase_add_test(conf_tc,
                   a_bad_line_is_refused_naming_the_file_the_line_and_the_value);
    tcase_add_test(conf_tc, a_file_too_large_is_refused);
    tcase_add_test(conf_tc, a_name_that_is_no_file_name_reads_no_file);
    tcase_add_test(conf_tc, a_name_the_backend_may_not_read_reads_no_file);
    tcase_add_test(conf_tc,
                   a_file_and_command_line_with_too_many_devices_are_refused);
    tcase_add_test(conf_tc, a_files_grants_on_puts_the_declared_disk_in_grant_mode);
    suite_add_tcase(s, conf_tc);
    tcase_add_checked_fixture(hs, setup, teardown);
    tcase_add_test(hs, a_disk_from_xl_is_served_then_closed_when_libxl_closes_it);
    tcase_add_test(hs, a_virtio_disk_without_a_backing_is_named_in_the_error);
    tcase_add_test(hs, a_disk_handed_over_is_served_by_the_next_instance);
    tcase_add_test(hs, one_device_closing_while_another_stays_keeps_both_served);
    tcase_add_test(hs, the_domain_dying_lets_go_of_it);
    tcase_add_test(hs, removed_nodes_count_as_closed_and_are_not_written_back);
    tcase_add_test(hs, a_driver_domain_refused_the_domains_state_keeps_serving);
    tcase_add_test(hs, a_guest_dying_mid_io_is_let_go_and_its_memory_left_alone);
    tcase_add_test(hs,
                   a_console_from_xl_publishes_its_pty_in_its_backend_directory);
    tcase_add_test(
        hs, a_command_line_console_publishes_under_the_device_model_directory);
    tcase_set_timeout(hs, 30);
    suite_add_tcase(s, hs);
    return s;
}

int main(void)
{
    return check_run(backend_suite());
}
