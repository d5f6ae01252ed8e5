/* SPDX-License-Identifier: MIT */
/* Fuzz side: the fuzzer as a guest of xvdm (see fuzz-guest.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-guest.h"
#include "fuzz-peer.h"
#include "guest-layout.h"
#include "harness.h"
#include "transport-mmio.h"

/* The part of guest RAM the fuzzer writes: enough for rings and buffers,
 * small enough to clear on every input. */
#define FUZZ_RAM_SPAN 0x10000
/* And the first and last FUZZ_EDGE_SPAN bytes of every RAM region, where
 * a buffer meets a hole or a guard page (tests/fuzz/mmio.dict names
 * their addresses, for the fuzzer to put in descriptors). */
#define FUZZ_EDGE_SPAN 0x1000

/* Grant mode: the guest grants FUZZ_RAM_SPAN page by page at start, so
 * page i is reference i + 1 and an input writes (1 << 63) | (ram offset +
 * 0x1000) to reach it (tests/fuzz/make-seeds). The last pages are granted
 * read-only, as Linux's grant DMA grants a DMA_TO_DEVICE buffer
 * (drivers/xen/grant-dma-ops.c): a device-writable buffer there is one
 * xvdm must refuse. */
#define FUZZ_PAGE 0x1000
#define FUZZ_GRANT_PAGES (FUZZ_RAM_SPAN / FUZZ_PAGE)
#define FUZZ_GRANT_READONLY_FROM 12

static struct harness h;

/* Each page's grant address, 0 while the guest has it revoked. */
static uint64_t grant_addr[FUZZ_GRANT_PAGES];
/* For the line at exit: what the grants saw. */
static struct {
    unsigned long inputs_mapped; /* inputs during which xvdm held a grant */
    unsigned long revoked, refused; /* mid-run revokes done, refused */
} grant_stats;
static bool input_mapped;

static void grant_page(unsigned i)
{
    uint64_t gpa = sim_ram_base(h.sim) + (uint64_t)i * FUZZ_PAGE;

    if (sim_grant(h.sim, gpa, FUZZ_PAGE, i >= FUZZ_GRANT_READONLY_FROM,
                  &grant_addr[i]))
        abort();
}

static void grant_report(void)
{
    fprintf(stderr,
            "fuzz-guest: grants: %u mapped at most, %lu inputs had some "
            "mapped, %lu revoked mid-run, %lu refused (still mapped)\n",
            sim_grants_mapped_peak(h.sim), grant_stats.inputs_mapped,
            grant_stats.revoked, grant_stats.refused);
}

static void grant_start(void)
{
    for (unsigned i = 0; i < FUZZ_GRANT_PAGES; i++)
        grant_page(i);
    atexit(grant_report);
}

void fuzz_guest_start(unsigned nr_vcpus)
{
    const char *spec = getenv("XVDM_FUZZ_DEVICE");
    const char *specs[] = {fuzz_peer_setup(spec && *spec ? spec : "rng")};

    if (!specs[0] || harness_start_vcpus(&h, specs, 1, nr_vcpus) ||
        fuzz_peer_connect())
        abort();
    if (h.specs[0].grants)
        grant_start();
}

static uint64_t take(struct fuzz_input *in, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n && in->left; i++, in->left--)
        v |= (uint64_t)*in->p++ << (8 * i);
    return v;
}

void fuzz_guest_ram_write(struct fuzz_input *in)
{
    uint64_t off = take(in, 2) % FUZZ_RAM_SPAN;
    unsigned len = (unsigned)take(in, 1) % 64;
    uint8_t *ram = sim_guest_ptr(h.sim, sim_ram_base(h.sim), FUZZ_RAM_SPAN);

    if (len > FUZZ_RAM_SPAN - off)
        len = (unsigned)(FUZZ_RAM_SPAN - off);
    for (unsigned i = 0; i < len; i++)
        __atomic_store_n(&ram[off + i], (uint8_t)take(in, 1), __ATOMIC_RELAXED);
}

/* The edge window of region (which % regions), at its end or its start. */
static uint64_t edge_window(unsigned which, bool at_end)
{
    struct sim_ram_region r =
        sim_ram_region(h.sim, which % sim_ram_regions(h.sim));

    return at_end ? r.gpa + r.size - FUZZ_EDGE_SPAN : r.gpa;
}

/* A write of up to 63 bytes in one region's edge window, never past it. */
static void edge_write(struct fuzz_input *in, unsigned op)
{
    uint64_t window = edge_window(op >> 4, op & 8);
    uint64_t off = take(in, 2) % FUZZ_EDGE_SPAN;
    unsigned len = (unsigned)take(in, 1) % 64;
    uint8_t *p = sim_guest_ptr(h.sim, window, FUZZ_EDGE_SPAN);

    if (len > FUZZ_EDGE_SPAN - off)
        len = (unsigned)(FUZZ_EDGE_SPAN - off);
    for (unsigned i = 0; i < len; i++)
        __atomic_store_n(&p[off + i], (uint8_t)take(in, 1), __ATOMIC_RELAXED);
}

static void peer_send(struct fuzz_input *in)
{
    uint8_t buf[256];
    unsigned len = (unsigned)take(in, 1);

    for (unsigned i = 0; i < len; i++)
        buf[i] = (uint8_t)take(in, 1);
    fuzz_peer_send(buf, len);
}

/* Revoke the pages of a range when its first is granted, else grant the
 * revoked ones again (each taking the lowest free reference, which may be
 * one another page had), while chains may still name them. A revoke xvdm
 * refuses (it maps the page now) is the guest's problem: Linux would say
 * "Grant still in use" and leak the page. */
static void grant_toggle(struct fuzz_input *in)
{
    unsigned sel = (unsigned)take(in, 1), first = sel % FUZZ_GRANT_PAGES;
    unsigned end = first + (sel >> 4) + 1;
    bool revoke = grant_addr[first] != 0;

    if (end > FUZZ_GRANT_PAGES)
        end = FUZZ_GRANT_PAGES;
    for (unsigned i = first; i < end; i++) {
        if (!revoke && !grant_addr[i]) {
            grant_page(i);
        } else if (revoke && grant_addr[i]) {
            int ret = sim_revoke(h.sim, grant_addr[i], FUZZ_PAGE);

            if (ret && ret != -EBUSY)
                abort();
            grant_stats.refused += ret == -EBUSY;
            grant_stats.revoked += ret == 0;
            if (ret == 0)
                grant_addr[i] = 0;
        }
    }
}

/* After the reset: a device reset frees its buffers and rings (virtio
 * 1.2, 2.4), so the guest may end every grant, and one xvdm still maps is
 * a page it keeps past the reset. Then grant them all again in order, so
 * the next input starts from the same references. */
static void grant_reset(void)
{
    for (unsigned i = 0; i < FUZZ_GRANT_PAGES; i++) {
        if (grant_addr[i] && sim_revoke(h.sim, grant_addr[i], FUZZ_PAGE)) {
            fprintf(stderr, "fuzz-guest: page %u still mapped after a reset\n",
                    i);
            abort();
        }
        grant_addr[i] = 0;
    }
    for (unsigned i = 0; i < FUZZ_GRANT_PAGES; i++)
        grant_page(i);
    grant_stats.inputs_mapped += input_mapped;
    input_mapped = false;
}

/* An access xvdm did not answer in time is a hang, and one refused
 * because xvdm left the slot in a state other than NONE would crash the
 * domain on Xen ("device model set bad IO state"): report either as a
 * crash. */
static void check(int ret)
{
    if (ret == -ETIMEDOUT || ret == -EIO)
        abort();
}

void fuzz_guest_op(struct fuzz_input *in)
{
    static const unsigned sizes[] = {4, 1, 2, 8};
    uint64_t base = h.specs[0].base;
    unsigned op = (unsigned)take(in, 1);
    uint64_t offset = take(in, 2) % VIRTIO_MMIO_WINDOW_SIZE, v;
    unsigned size = sizes[(op >> 2) & 3];

    switch (op & 3) {
    case 0:
        check(sim_mmio_write(h.sim, 0, base + offset, size, take(in, size)));
        break;
    case 1:
        check(sim_mmio_read(h.sim, 0, base + offset, size, &v));
        break;
    case 2:
        if (op & 4)
            edge_write(in, op);
        else
            fuzz_guest_ram_write(in);
        break;
    default:
        if (op & 0x10) {
            peer_send(in);
            break;
        }
        if ((op & 0x20) && h.specs[0].grants) {
            grant_toggle(in);
            break;
        }
        check(sim_mmio_read(h.sim, 0, base + VIRTIO_MMIO_INTERRUPT_STATUS, 4,
                            &v));
        check(sim_mmio_write(h.sim, 0, base + VIRTIO_MMIO_INTERRUPT_ACK, 4, v));
        break;
    }
    if (h.specs[0].grants && !input_mapped)
        input_mapped = sim_grants_mapped(h.sim) > 0;
}

void fuzz_guest_begin(void)
{
    memset(sim_guest_ptr(h.sim, sim_ram_base(h.sim), FUZZ_RAM_SPAN), 0,
           FUZZ_RAM_SPAN);
    for (unsigned i = 0; i < sim_ram_regions(h.sim); i++)
        for (int end = 0; end < 2; end++)
            memset(sim_guest_ptr(h.sim, edge_window(i, end), FUZZ_EDGE_SPAN),
                   0, FUZZ_EDGE_SPAN);
    fuzz_peer_drain();
}

/* A reset waits for the device's I/O in flight and frees its jobs:
 * without it, a job whose only pointer is in io_uring's rings (which
 * LeakSanitizer does not scan) reads as a leak when libFuzzer checks
 * after this input. */
void fuzz_guest_end(void)
{
    check(sim_mmio_write(h.sim, 0, h.specs[0].base + VIRTIO_MMIO_STATUS, 4, 0));
    if (h.specs[0].grants)
        grant_reset();
}
