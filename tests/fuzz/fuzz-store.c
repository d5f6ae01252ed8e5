/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the backend nodes a toolstack writes for a guest, as
 * `xvdm --xenstore` reads them. Each input is a list of node writes under
 * /local/domain/0/backend/{virtio_disk,virtio}/1/N/KEY on a fresh
 * simulated xenstore: any of the keys libxl writes (and a few it does
 * not), with values that are well-formed, in either radix, negative,
 * huge, or garbage. Then backend_open() reads them as xvdm does. It must
 * refuse what is invalid with a message, and what it accepts must be
 * servable: each window aligned, outside guest RAM and apart from the
 * others, each interrupt an SPI.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "devspec.h"
#include "guest-layout.h"
#include "log.h"
#include "module.h"
#include "store-sim.h"
#include "store.h"

#define DOMID 1
#define VALUE_MAX 300

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = {"virtio_disk", "virtio"};
static const char *const keys[] = {
    "params", "base", "irq", "type", "mode", "grant_usage", "transport",
    "state", "specification", "frontend-id", "online", "dev", "device-type",
    "frontend", "discard-enable", "removable", "bootable", "script",
};
/* Values a toolstack writes, and edges of what xvdm parses; the fuzzer
 * also writes its own bytes. */
static const char *const values[] = {
    "0x2000000", "0x2000200", "0x2000400", "0x20ffe00", "33567232", "0", "1", "2", "5",
    "6", "33", "34", "35", "43", "44", "31", "1019", "1020", "4294967297", "-1",
    "0x40000000", "0x200000000", "0xffffffffffffffff", "virtio,device2",
    "virtio,device1", "virtio,device4", "virtio,device3", "virtio,device",
    "virtio,device22", "virtio,devicezz", "mmio", "pci", "w", "r", "virtio",
    "xen", "/dev/null", "", " 33", "0x", "0x2000000 ",
};

static const char *const modules[] = {"rng", "blk", "net", "console"};
static const char *module_dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* Every refusal is logged as an error: expected (tests/fuzz/run keeps
     * such lines out of what it prints). */
    log_init(LOG_LVL_ERROR, false, -1);
    module_dir = getenv("XVDM_MODULE_DIR");
    if (!module_dir)
        module_dir = module_default_dir();
    /* backend_open() loads a module per device and backend_close()
     * unloads it: keep each mapped for the process's life, or libFuzzer
     * would read the coverage counters of an unmapped module. */
    for (unsigned i = 0; i < sizeof(modules) / sizeof(modules[0]); i++) {
        char path[512];

        snprintf(path, sizeof(path), "%s/%s.so", module_dir, modules[i]);
        if (!dlopen(path, RTLD_NOW | RTLD_NODELETE))
            abort();
    }
    return 0;
}

struct input {
    const uint8_t *p;
    size_t left;
};

static unsigned take(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

/* One node write: kind, device number, key, then either a known value
 * or up to VALUE_MAX of the input's bytes (NULs end it). */
static void write_node(struct store *st, struct input *in)
{
    char path[256], value[VALUE_MAX + 1];
    unsigned op = take(in);
    unsigned dev = take(in) % 40;
    const char *kind = kinds[op & 1];
    const char *key = keys[(op >> 1) % (sizeof(keys) / sizeof(keys[0]))];
    unsigned pick = take(in);

    if (pick < 200) {
        snprintf(value, sizeof(value), "%s",
                 values[pick % (sizeof(values) / sizeof(values[0]))]);
    } else {
        unsigned len = (pick - 200) * 8 % (VALUE_MAX + 1);
        unsigned i;

        for (i = 0; i < len && in->left; i++)
            value[i] = (char)(take(in) | 1);
        value[i] = '\0';
    }
    snprintf(path, sizeof(path), "/local/domain/0/backend/%s/%u/%u/%s", kind,
             DOMID, dev, key);
    store_write(st, path, value);
}

static bool windows_overlap(uint64_t a, uint64_t b)
{
    return a < b + VIRTIO_MMIO_WINDOW_SIZE && b < a + VIRTIO_MMIO_WINDOW_SIZE;
}

static bool in_ram(uint64_t base)
{
    return (base < GUEST_LAYOUT_RAM0_BASE + GUEST_LAYOUT_RAM0_SIZE &&
            GUEST_LAYOUT_RAM0_BASE < base + VIRTIO_MMIO_WINDOW_SIZE) ||
           (base < GUEST_LAYOUT_RAM1_BASE + GUEST_LAYOUT_RAM1_SIZE &&
            GUEST_LAYOUT_RAM1_BASE < base + VIRTIO_MMIO_WINDOW_SIZE);
}

/* What xvdm accepted must be servable. */
static void check_accepted(const struct devspec *specs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (specs[i].base % VIRTIO_MMIO_WINDOW_SIZE || in_ram(specs[i].base) ||
            specs[i].irq < GUEST_LAYOUT_SPI_MIN ||
            specs[i].irq > GUEST_LAYOUT_SPI_MAX)
            abort();
        for (unsigned j = 0; j < i; j++)
            if (windows_overlap(specs[i].base, specs[j].base))
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct store *st = store_sim_create();
    struct backend *b;
    const struct devspec *specs;
    unsigned n;

    if (!st)
        abort();
    store_sim_domain_introduce(st, DOMID);
    while (in.left)
        write_node(st, &in);
    if (backend_open(&b, st, DOMID, module_dir, NULL, 0) == 0) {
        specs = backend_specs(b, &n);
        check_accepted(specs, n);
        backend_close(b);
    }
    store_close(st);
    return 0;
}
