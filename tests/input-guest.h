/* SPDX-License-Identifier: MIT */
/*
 * Test side: the guest's half of virtio-input as Linux's virtio_input
 * drives it (VIRTIO 1.2 §5.8): bring device `index` of the harness up,
 * read the config space a byte at a time, post event buffers and take
 * the events. Shared by test-input (evdev=) and test-vnc-input (vnc=);
 * one guest, h and d, per test program.
 */
#ifndef XVDM_TEST_INPUT_GUEST_H
#define XVDM_TEST_INPUT_GUEST_H

#include <check.h>
#include <endian.h>
#include <linux/input.h>
#include <linux/virtio_input.h>
#include <string.h>
#include <unistd.h>

#include "dev.h"
#include "harness.h"
#include "vdriver.h"

#define INPUT_ID 18
#define RING 64
#define WAIT_MS 5000
/* Long enough for the loop to have done what it would. */
#define QUIET_MS 100
#define EVQ 0
#define STQ 1
#define CFG 0x100
#define EVENT_LEN 8u

static struct harness h;
static struct vdriver d;
/* Where each eventq chain's buffer is, by its head. */
static uint64_t head_gpa[RING];

/* Start the devices of specs, and drive device `index`, an input. */
static inline void input_guest_start(const char **specs, unsigned n,
                                     unsigned index)
{
    ck_assert_int_eq(harness_start(&h, specs, n), 0);
    vdriver_init(&d, h.sim, h.specs[index].base, h.specs[index].irq,
                 sim_ram_base(h.sim) + (1 << 20), 16 << 20);
    ck_assert_int_eq(vdriver_probe(&d, INPUT_ID, DEV_TRANSPORT_FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, EVQ, RING), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, STQ, RING), 0);
    vdriver_driver_ok(&d);
    ck_assert_int_eq(d.io_error, 0);
}

/* ---- config space, as Linux's virtinput_cfg_select() reads it: byte
 * accesses ------------------------------------------------------------- */

static inline uint8_t cfg_readb(unsigned off)
{
    uint64_t v = 0;

    ck_assert_int_eq(sim_mmio_read(h.sim, 0, d.base + CFG + off, 1, &v), 0);
    return (uint8_t)v;
}

static inline void cfg_writeb(unsigned off, uint8_t v)
{
    ck_assert_int_eq(sim_mmio_write(h.sim, 0, d.base + CFG + off, 1, v), 0);
}

/* Select, then the size and the whole union (zeros past the size). */
static inline uint8_t cfg_select(uint8_t select, uint8_t subsel, uint8_t *u)
{
    cfg_writeb(offsetof(struct virtio_input_config, select), select);
    cfg_writeb(offsetof(struct virtio_input_config, subsel), subsel);
    for (unsigned k = 0; k < 128; k++)
        u[k] = cfg_readb(offsetof(struct virtio_input_config, u) + k);
    return cfg_readb(offsetof(struct virtio_input_config, size));
}

static inline void expect_answer(uint8_t select, uint8_t subsel, const void *want,
                          uint8_t size)
{
    uint8_t u[128], zero[128] = {0};

    ck_assert_uint_eq(cfg_select(select, subsel, u), size);
    ck_assert_mem_eq(u, want, size);
    ck_assert_mem_eq(u + size, zero, sizeof(u) - size);
}

static inline void expect_none(uint8_t select, uint8_t subsel)
{
    expect_answer(select, subsel, "", 0);
}

/* Post n event buffers of len bytes each, and kick when the device asks
 * for kicks, as Linux's driver does. */
static inline void post_buffers(unsigned n, uint32_t len)
{
    for (unsigned k = 0; k < n; k++) {
        struct guest_buf b = {vdriver_alloc(&d, len, 8), len, true};
        uint16_t head = guest_ring_add_chain(&d.ring[EVQ], &b, 1);

        memset(vdriver_ptr(&d, b.gpa), 0xee, len);
        head_gpa[head] = b.gpa;
        guest_ring_publish(&d.ring[EVQ], head);
    }
    vdriver_kick_if_needed(&d, EVQ);
}

struct got {
    uint16_t type, code;
    uint32_t value;
};

/* The next event the guest gets, from the next used buffer. */
static inline struct got next_event(void)
{
    struct virtio_input_event ve;
    uint32_t id, len;

    ck_assert_int_eq(vdriver_next_used(&d, EVQ, &id, &len, WAIT_MS), 0);
    ck_assert_uint_eq(len, EVENT_LEN);
    memcpy(&ve, vdriver_ptr(&d, head_gpa[id]), sizeof(ve));
    return (struct got){le16toh(ve.type), le16toh(ve.code), le32toh(ve.value)};
}

static inline void expect_event(struct got g, uint16_t type, uint16_t code,
                         uint32_t value)
{
    ck_assert_uint_eq(g.type, type);
    ck_assert_uint_eq(g.code, code);
    ck_assert_uint_eq(g.value, value);
}

static inline void expect_quiet(void)
{
    uint32_t id, len;

    usleep(QUIET_MS * 1000);
    ck_assert(!guest_ring_get_used(&d.ring[EVQ], &id, &len));
}

#endif
