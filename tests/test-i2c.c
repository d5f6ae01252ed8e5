/* SPDX-License-Identifier: MIT */
/*
 * virtio-i2c on the simulated hypervisor, its adapter the stand-in of
 * i2c-stub.h, with a driver sending requests as Linux's i2c-virtio does
 * (a transfer's messages as requests chained with FAIL_NEXT, the last
 * without): data written and read back through a chip's register
 * pointer, a write-then-read as one I2C_RDWR, SMBus quick, addresses
 * outside addrs= and chips that do not answer, hostile chains, and the
 * options a user can get wrong.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <linux/i2c.h>
#include <linux/virtio_i2c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "dev.h"
#include "harness.h"
#include "i2c-stub.h"
#include "log-lines.h"
#include "log.h"
#include "refused-spec.h"
#include "vdriver.h"

#define I2C_ID 34
#define RING 128
#define WAIT_MS 5000
#define HDR ((uint32_t)sizeof(struct virtio_i2c_out_hdr))
#define LEN_MAX 8192
#define MSGS_MAX 42
#define FEATURES                                                               \
    (DEV_TRANSPORT_FEATURES | 1ULL << VIRTIO_I2C_F_ZERO_LENGTH_REQUEST)
/* Chips at 0x50 and 0x68; addrs= also lists 0x51, where none answers. */
#define CHIP 0x50
#define CHIP2 0x68
#define ABSENT 0x51

static struct harness h;
static struct vdriver d;
static const char *bus;

/* One message of a transfer, as Linux's struct i2c_msg. */
struct msg {
    uint16_t addr;
    bool read;
    uint8_t *buf;
    uint16_t len;
};

/* A request as the guest lays it out: its header, data and status. */
struct req {
    uint64_t hdr, data, status;
    uint16_t head;
};

static void start_with(const char *addrs, unsigned long funcs)
{
    static const uint16_t chips[] = {CHIP, CHIP2};
    char spec[160];
    const char *specs[] = {spec};

    bus = i2c_stub_start(funcs, chips, 2);
    snprintf(spec, sizeof(spec), "i2c,bus=%s,addrs=%s", bus, addrs);
    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 16 << 20);
}

static void start_addrs(const char *addrs)
{
    start_with(addrs, I2C_FUNC_I2C | I2C_FUNC_SMBUS_QUICK);
    ck_assert_int_eq(vdriver_probe(&d, I2C_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, RING), 0);
    vdriver_driver_ok(&d);
    ck_assert_int_eq(d.io_error, 0);
}

static void start(void)
{
    start_addrs("0x50-0x51:0x68");
}

static void finish(void)
{
    harness_stop(&h);
    i2c_stub_stop();
}

/* Lay out one request: header (addr as the spec has it, A6..A0 in bits
 * 7..1), data, status byte 0xff; publish it. */
static struct req post_raw(uint16_t addr_field, uint32_t flags,
                           const struct guest_buf *data, unsigned ndata)
{
    struct virtio_i2c_out_hdr hh = {.addr = htole16(addr_field),
                                    .flags = htole32(flags)};
    struct guest_buf b[4];
    struct req r;
    unsigned n = 0;

    r.hdr = vdriver_alloc(&d, HDR, 8);
    r.status = vdriver_alloc(&d, 1, 1);
    r.data = ndata ? data[0].gpa : 0;
    memcpy(vdriver_ptr(&d, r.hdr), &hh, HDR);
    *(uint8_t *)vdriver_ptr(&d, r.status) = 0xff;
    b[n++] = (struct guest_buf){r.hdr, HDR, false};
    for (unsigned i = 0; i < ndata; i++)
        b[n++] = data[i];
    b[n++] = (struct guest_buf){r.status, 1, true};
    r.head = guest_ring_add_chain(&d.ring[0], b, n);
    guest_ring_publish(&d.ring[0], r.head);
    return r;
}

/* A message as Linux's driver sends it. */
static struct req post_msg(const struct msg *m, bool fail_next)
{
    struct guest_buf b = {0, m->len, m->read};
    uint32_t flags = (m->read ? VIRTIO_I2C_FLAGS_M_RD : 0) |
                     (fail_next ? VIRTIO_I2C_FLAGS_FAIL_NEXT : 0);

    if (m->len) {
        b.gpa = vdriver_alloc(&d, m->len, 8);
        if (!m->read)
            memcpy(vdriver_ptr(&d, b.gpa), m->buf, m->len);
    }
    return post_raw((uint16_t)(m->addr << 1), flags, &b, m->len ? 1 : 0);
}

/* Wait for the used element of each of reqs[0..n), in order; their
 * used lengths into len[]. */
static void wait_used(const struct req *reqs, unsigned n, uint32_t *len)
{
    for (unsigned i = 0; i < n; i++) {
        uint32_t id;

        ck_assert_int_eq(vdriver_next_used(&d, 0, &id, &len[i], WAIT_MS), 0);
        ck_assert_uint_eq(id, reqs[i].head);
    }
}

static uint8_t status_of(const struct req *r)
{
    return *(uint8_t *)vdriver_ptr(&d, r->status);
}

/* Linux's i2c_transfer(): the messages as one group, one kick; each
 * message's status into st[] (NULL: all must be OK); read data copied
 * back into the messages' buffers where OK. */
static void transfer(const struct msg *m, unsigned n, uint8_t *st)
{
    struct req reqs[64];
    uint32_t len[64];

    ck_assert_uint_le(n, 64);
    for (unsigned i = 0; i < n; i++)
        reqs[i] = post_msg(&m[i], i + 1 < n);
    vdriver_kick(&d, 0);
    wait_used(reqs, n, len);
    for (unsigned i = 0; i < n; i++) {
        uint8_t s = status_of(&reqs[i]);

        if (st)
            st[i] = s;
        else
            ck_assert_msg(s == VIRTIO_I2C_MSG_OK, "message %u: status %u", i,
                          s);
        if (s == VIRTIO_I2C_MSG_OK && m[i].read) {
            ck_assert_uint_eq(len[i], m[i].len + 1u);
            if (m[i].len)
                memcpy(m[i].buf, vdriver_ptr(&d, reqs[i].data), m[i].len);
        }
    }
}

/* One request on its own; its status. */
static uint8_t transfer_one(const struct msg *m)
{
    uint8_t st;

    transfer(m, 1, &st);
    return st;
}

/* Registers of `chip` from `reg` on, as a guest reads them: a write of
 * the register number, then a read, in one transfer. */
static void read_regs(uint16_t chip, uint8_t reg, uint8_t *out, uint16_t len)
{
    struct msg m[2] = {{chip, false, &reg, 1}, {chip, true, out, len}};

    transfer(m, 2, NULL);
}

/* ---- transfers -------------------------------------------------------- */

START_TEST(bytes_written_at_a_register_read_back_the_same)
{
    uint8_t w[1 + 200], r[200], regs[256];
    struct msg m = {CHIP, false, w, sizeof(w)};

    start();
    w[0] = 0x20;
    for (unsigned i = 1; i < sizeof(w); i++)
        w[i] = (uint8_t)(i * 7 + 3);
    ck_assert_uint_eq(transfer_one(&m), VIRTIO_I2C_MSG_OK);
    i2c_stub_regs(CHIP, regs);
    ck_assert_mem_eq(regs + 0x20, w + 1, sizeof(r));
    read_regs(CHIP, 0x20, r, sizeof(r));
    ck_assert_mem_eq(r, w + 1, sizeof(r));
    /* The other chip's registers are its own. */
    i2c_stub_regs(CHIP2, regs);
    ck_assert_uint_eq(regs[0x20], 0);
    finish();
}
END_TEST

START_TEST(a_write_then_read_goes_to_the_adapter_as_one_i2c_rdwr)
{
    uint8_t w[] = {0x10, 0xde, 0xad}, r[2];
    struct msg set = {CHIP2, false, w, sizeof(w)};

    start();
    ck_assert_uint_eq(transfer_one(&set), VIRTIO_I2C_MSG_OK);
    ck_assert_uint_eq(i2c_stub_transfers(), 1);
    ck_assert_uint_eq(i2c_stub_last_nmsgs(), 1);
    read_regs(CHIP2, 0x10, r, sizeof(r));
    ck_assert_uint_eq(i2c_stub_transfers(), 2);
    ck_assert_uint_eq(i2c_stub_last_nmsgs(), 2);
    ck_assert_uint_eq(r[0], 0xde);
    ck_assert_uint_eq(r[1], 0xad);
    finish();
}
END_TEST

START_TEST(forty_two_messages_are_one_transaction)
{
    uint8_t reg[MSGS_MAX / 2], r[MSGS_MAX / 2];
    struct msg m[MSGS_MAX];

    start();
    for (unsigned i = 0; i < MSGS_MAX / 2; i++) {
        reg[i] = (uint8_t)i;
        m[2 * i] = (struct msg){CHIP, false, &reg[i], 1};
        m[2 * i + 1] = (struct msg){CHIP, true, &r[i], 1};
    }
    transfer(m, MSGS_MAX, NULL);
    ck_assert_uint_eq(i2c_stub_transfers(), 1);
    ck_assert_uint_eq(i2c_stub_last_nmsgs(), MSGS_MAX);
    finish();
}
END_TEST

/* In grant mode with a budget of 5 pages, a transfer of 42 messages
 * cannot be taken whole at once: it is one transaction or none, never
 * carried out in parts, and the next transfer is its own. */
START_TEST(a_transfer_the_grant_budget_cuts_is_never_carried_out_in_parts)
{
    uint8_t reg = 0, r;
    struct msg m[MSGS_MAX], quick = {CHIP, false, NULL, 0};
    uint8_t st[MSGS_MAX];
    unsigned ok = 0;

    /* The test runs in a process of its own (Check's fork). */
    setenv("XVDM_TEST_GRANTS", "1", 1);
    setenv("XVDM_TEST_GRANT_PAGES", "5", 1);
    start();
    for (unsigned i = 0; i < MSGS_MAX; i++)
        m[i] = i % 2 ? (struct msg){CHIP, true, &r, 1}
                     : (struct msg){CHIP, false, &reg, 1};
    transfer(m, MSGS_MAX, st);
    for (unsigned i = 0; i < MSGS_MAX; i++)
        ok += st[i] == VIRTIO_I2C_MSG_OK;
    ck_assert_msg(ok == 0 || ok == MSGS_MAX, "%u of %u messages OK", ok,
                  MSGS_MAX);
    ck_assert_uint_le(i2c_stub_transfers(), 1);
    ck_assert_uint_eq(transfer_one(&quick), VIRTIO_I2C_MSG_OK);
    finish();
}
END_TEST

START_TEST(zero_length_request_is_an_smbus_quick_a_chip_acknowledges)
{
    struct msg quick = {CHIP, false, NULL, 0};
    struct msg quick_read = {CHIP2, true, NULL, 0};
    struct msg nobody = {ABSENT, false, NULL, 0};

    start();
    ck_assert_uint_ne(d.features & 1ULL << VIRTIO_I2C_F_ZERO_LENGTH_REQUEST, 0);
    ck_assert_uint_eq(transfer_one(&quick), VIRTIO_I2C_MSG_OK);
    ck_assert_uint_eq(transfer_one(&quick_read), VIRTIO_I2C_MSG_OK);
    ck_assert_uint_eq(transfer_one(&nobody), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(i2c_stub_transfers(), 3);
    finish();
}
END_TEST

START_TEST(a_chip_that_does_not_answer_fails_the_whole_transfer)
{
    uint8_t reg = 0x00, r[4] = {0};
    struct msg m[2] = {{CHIP, false, &reg, 1}, {ABSENT, true, r, 4}};
    uint8_t st[2];

    start();
    transfer(m, 2, st);
    ck_assert_uint_eq(st[0], VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(st[1], VIRTIO_I2C_MSG_ERR);
    /* The device goes on. */
    read_regs(CHIP, 0, r, 4);
    finish();
}
END_TEST

/* A guest probing the bus, as i2cdetect does: most addresses do not
 * answer. With debug lines on, it gets a line a second, not one each. */
static void probe_absent_chips(void)
{
    struct msg quick = {ABSENT, false, NULL, 0};

    for (unsigned i = 0; i < 50; i++)
        ck_assert_uint_eq(transfer_one(&quick), VIRTIO_I2C_MSG_ERR);
}

START_TEST(failed_transfers_log_a_debug_line_a_second_at_most)
{
    unsigned lines;

    start();
    log_init(LOG_LVL_DEBUG, false, -1);
    /* 50 transfers take well under 2 s: within 3 distinct seconds. */
    lines = log_lines_during(probe_absent_chips, "a transfer of");
    ck_assert_uint_ge(lines, 1);
    ck_assert_uint_le(lines, 3);
    /* A second later, the next line counts those that had none. */
    sleep(1);
    ck_assert_uint_ge(log_lines_during(probe_absent_chips, "more failed since"),
                      1);
    log_init(LOG_LVL_INFO, false, -1);
    finish();
}
END_TEST

/* ---- an SMBus-only adapter ------------------------------------------- */

/* Linux's i2c-stub's functionality. */
#define STUB_SMBUS                                                             \
    (I2C_FUNC_SMBUS_QUICK | I2C_FUNC_SMBUS_BYTE | I2C_FUNC_SMBUS_BYTE_DATA |   \
     I2C_FUNC_SMBUS_WORD_DATA | I2C_FUNC_SMBUS_BLOCK_DATA |                    \
     I2C_FUNC_SMBUS_I2C_BLOCK)

static void start_smbus(unsigned long funcs)
{
    start_with("0x50-0x51:0x68", funcs);
    ck_assert_int_eq(vdriver_probe(&d, I2C_ID, FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, RING), 0);
    vdriver_driver_ok(&d);
}

/* What i2cset, i2cget, i2cdetect and chip drivers send, as Linux's i2c
 * core writes SMBus commands in I2C messages, each carried out as the
 * command it is. */
START_TEST(an_smbus_only_adapter_carries_the_smbus_commands_guests_send)
{
    uint8_t byte[] = {0x10, 0xab}, word[] = {0x20, 0x34, 0x12},
            block[] = {0x30, 1, 2, 3, 4}, ptr = 0x40, r[4], regs[256];
    struct msg quick = {CHIP, false, NULL, 0}, absent = {ABSENT, true, NULL, 0},
               set_ptr = {CHIP, false, &ptr, 1}, get = {CHIP, true, r, 1};

    start_smbus(STUB_SMBUS);
    ck_assert_uint_eq(transfer_one(&(struct msg){CHIP, false, byte, 2}), 0);
    ck_assert_uint_eq(transfer_one(&(struct msg){CHIP, false, word, 3}), 0);
    ck_assert_uint_eq(transfer_one(&(struct msg){CHIP, false, block, 5}), 0);
    i2c_stub_regs(CHIP, regs);
    ck_assert_uint_eq(regs[0x10], 0xab);
    ck_assert(memcmp(&regs[0x20], "\x34\x12", 2) == 0);
    ck_assert(memcmp(&regs[0x30], "\x01\x02\x03\x04", 4) == 0);
    read_regs(CHIP, 0x10, r, 1); /* read byte data */
    ck_assert_uint_eq(r[0], 0xab);
    read_regs(CHIP, 0x20, r, 2); /* read word data */
    ck_assert(memcmp(r, "\x34\x12", 2) == 0);
    read_regs(CHIP, 0x30, r, 4); /* read I2C block */
    ck_assert(memcmp(r, "\x01\x02\x03\x04", 4) == 0);
    ck_assert_uint_eq(transfer_one(&set_ptr), 0); /* write byte */
    ck_assert_uint_eq(transfer_one(&get), 0);     /* read byte */
    ck_assert_uint_eq(r[0], regs[0x40]);
    ck_assert_uint_eq(transfer_one(&quick), VIRTIO_I2C_MSG_OK);
    ck_assert_uint_eq(transfer_one(&absent), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(i2c_stub_smbus_calls(), 10);
    ck_assert_uint_eq(i2c_stub_transfers(), 0);
    finish();
}
END_TEST

/* SMBus's block write, [command, count, data]: on an adapter that has
 * it, 32 data bytes (one more than an I2C block write carries), and any
 * length where the adapter has no I2C block write. */
START_TEST(an_smbus_block_write_goes_as_one_where_the_adapter_has_it)
{
    uint8_t w[2 + 32], regs[256];
    struct msg block = {CHIP, false, w, sizeof(w)};
    struct msg short_block = {CHIP, false, w, 2 + 4};

    w[0] = 0x40;
    w[1] = 32;
    for (unsigned i = 0; i < 32; i++)
        w[2 + i] = (uint8_t)(0xc0 + i);
    start_smbus(STUB_SMBUS);
    ck_assert_uint_eq(transfer_one(&block), VIRTIO_I2C_MSG_OK);
    i2c_stub_regs(CHIP, regs);
    ck_assert_uint_eq(regs[0x40], 32);
    ck_assert(memcmp(&regs[0x41], &w[2], 32) == 0);
    finish();
    start_smbus(I2C_FUNC_SMBUS_QUICK | I2C_FUNC_SMBUS_WRITE_BLOCK_DATA);
    w[1] = 4;
    ck_assert_uint_eq(transfer_one(&short_block), VIRTIO_I2C_MSG_OK);
    i2c_stub_regs(CHIP, regs);
    ck_assert(memcmp(&regs[0x40], &w[1], 5) == 0);
    ck_assert_uint_eq(i2c_stub_smbus_calls(), 1);
    finish();
}
END_TEST

static void send_what_smbus_cannot_say(void)
{
    static uint8_t reg, r[40];
    struct msg three[3] = {{CHIP, false, &reg, 1}, {CHIP, true, r, 1},
                           {CHIP, true, r, 1}};
    struct msg two_chips[2] = {{CHIP, false, &reg, 1}, {CHIP2, true, r, 1}};
    struct msg long_read[2] = {{CHIP, false, &reg, 1}, {CHIP, true, r, 33}};
    struct msg bare_read = {CHIP, true, r, 2};
    uint8_t st[3];

    transfer(three, 3, st);
    ck_assert_uint_eq(st[0] | st[1] | st[2], VIRTIO_I2C_MSG_ERR);
    transfer(two_chips, 2, st);
    ck_assert_uint_eq(st[0] & st[1], VIRTIO_I2C_MSG_ERR);
    transfer(long_read, 2, st);
    ck_assert_uint_eq(st[0] & st[1], VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(transfer_one(&bare_read), VIRTIO_I2C_MSG_ERR);
}

static void read_a_block(void)
{
    uint8_t reg = 0, r[4];
    struct msg m[2] = {{CHIP, false, &reg, 1}, {CHIP, true, r, 4}};
    uint8_t st[2];

    transfer(m, 2, st);
    ck_assert_uint_eq(st[0] & st[1], VIRTIO_I2C_MSG_ERR);
}

/* A transfer that is no SMBus command, or one the adapter lacks, gets ERR
 * and a line, and never reaches the adapter. */
START_TEST(on_an_smbus_only_adapter_other_transfers_get_err_and_a_line)
{
    uint8_t r;

    start_smbus(STUB_SMBUS);
    ck_assert_uint_eq(log_lines_during(send_what_smbus_cannot_say,
                                       "no SMBus command there is"),
                      4);
    ck_assert_uint_eq(i2c_stub_smbus_calls(), 0);
    read_regs(CHIP, 0, &r, 1); /* the device goes on */
    finish();
    start_smbus(I2C_FUNC_SMBUS_QUICK | I2C_FUNC_SMBUS_BYTE_DATA);
    ck_assert_uint_eq(
        log_lines_during(read_a_block, "no SMBus command this adapter has"),
        1);
    ck_assert_uint_eq(i2c_stub_smbus_calls(), 0);
    finish();
}
END_TEST

/* ---- addrs= ------------------------------------------------------------ */

static uint8_t unlisted_status[2];

static void send_to_unlisted(void)
{
    uint8_t w[] = {0x40, 0x99}, r;
    struct msg alone = {0x52, false, w, 2};
    /* A write to a listed chip grouped with a read from an unlisted one:
     * neither happens. */
    struct msg m[2] = {{CHIP, false, w, 2}, {0x53, true, &r, 1}};

    unlisted_status[0] = transfer_one(&alone);
    transfer(m, 2, unlisted_status);
}

START_TEST(an_address_outside_addrs_gets_err_a_line_and_no_transfer)
{
    uint8_t regs[256];

    start();
    ck_assert_uint_ge(log_lines_during(send_to_unlisted, "0x53"), 1);
    ck_assert_uint_eq(unlisted_status[0], VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(unlisted_status[1], VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(i2c_stub_transfers(), 0);
    i2c_stub_regs(CHIP, regs);
    ck_assert_uint_eq(regs[0x40], 0);
    finish();
}
END_TEST

/* ---- hostile chains ------------------------------------------------------ */

/* A request that must come back ERR without reaching the adapter: its
 * status, or 0xff when it had none to write. */
static uint8_t hostile(uint16_t addr_field, uint32_t flags,
                       const struct guest_buf *data, unsigned ndata)
{
    unsigned before = i2c_stub_transfers();
    struct req r = post_raw(addr_field, flags, data, ndata);
    uint32_t len;

    vdriver_kick(&d, 0);
    wait_used(&r, 1, &len);
    ck_assert_uint_eq(i2c_stub_transfers(), before);
    return status_of(&r);
}

static struct guest_buf buf_of(uint32_t len, bool write)
{
    return (struct guest_buf){vdriver_alloc(&d, len, 8), len, write};
}

static void hostile_chains(void)
{
    struct guest_buf data[2];
    uint16_t a = CHIP << 1;

    /* Reserved flags. */
    data[0] = buf_of(1, false);
    ck_assert_uint_eq(hostile(a, 1U << 2, data, 1), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(hostile(a, 1U << 31, NULL, 0), VIRTIO_I2C_MSG_ERR);
    /* A read with data for the device; a write with room to write. */
    ck_assert_uint_eq(hostile(a, VIRTIO_I2C_FLAGS_M_RD, data, 1),
                      VIRTIO_I2C_MSG_ERR);
    data[0] = buf_of(4, true);
    ck_assert_uint_eq(hostile(a, 0, data, 1), VIRTIO_I2C_MSG_ERR);
    /* Longer than a message may be, either way. */
    data[0] = buf_of(LEN_MAX + 1, false);
    ck_assert_uint_eq(hostile(a, 0, data, 1), VIRTIO_I2C_MSG_ERR);
    data[0] = buf_of(LEN_MAX + 1, true);
    ck_assert_uint_eq(hostile(a, VIRTIO_I2C_FLAGS_M_RD, data, 1),
                      VIRTIO_I2C_MSG_ERR);
    /* 10-bit address 0x150 (11110 01 0, then A7..A0); a 7-bit one with
     * bit 0 set; bits above A6. */
    ck_assert_uint_eq(hostile(0x50f2, 0, NULL, 0), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(hostile(a | 1, 0, NULL, 0), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(hostile(a | 0x100, 0, NULL, 0), VIRTIO_I2C_MSG_ERR);
}

/* Chains that are not requests at all. */
static void broken_chains(void)
{
    struct guest_buf b[2];
    uint64_t st = vdriver_alloc(&d, 1, 1);
    uint16_t head;
    uint32_t id, len;

    /* No status byte: returned with nothing written. */
    b[0] = buf_of(HDR, false);
    memset(vdriver_ptr(&d, b[0].gpa), 0, HDR);
    head = guest_ring_add_chain(&d.ring[0], b, 1);
    guest_ring_publish(&d.ring[0], head);
    /* A header of 4 bytes. */
    b[1] = buf_of(4, false);
    *(uint8_t *)vdriver_ptr(&d, st) = 0xff;
    b[0] = (struct guest_buf){b[1].gpa, 4, false};
    b[1] = (struct guest_buf){st, 1, true};
    guest_ring_publish(&d.ring[0], guest_ring_add_chain(&d.ring[0], b, 2));
    vdriver_kick(&d, 0);
    ck_assert_int_eq(vdriver_next_used(&d, 0, &id, &len, WAIT_MS), 0);
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(vdriver_next_used(&d, 0, &id, &len, WAIT_MS), 0);
    ck_assert_uint_eq(*(uint8_t *)vdriver_ptr(&d, st), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(i2c_stub_transfers(), 0);
}

/* fn's requests log at least `lines` lines, and the device serves
 * after them. */
static void refused_with_lines(void (*fn)(void), unsigned lines)
{
    uint8_t r[4];

    start();
    ck_assert_uint_ge(log_lines_during(fn, "i2c0"), lines);
    read_regs(CHIP, 0, r, sizeof(r));
    finish();
}

START_TEST(hostile_requests_get_err_a_line_and_never_reach_the_adapter)
{
    refused_with_lines(hostile_chains, 9);
}
END_TEST

START_TEST(chains_without_header_or_status_are_refused_with_a_line)
{
    refused_with_lines(broken_chains, 2);
}
END_TEST

/* One bad request fails its group; the group's other requests are not
 * carried out either. */
START_TEST(a_hostile_request_fails_its_whole_group)
{
    uint8_t regs[256];
    struct req reqs[2];
    struct guest_buf w;
    uint32_t len[2];

    start();
    w = buf_of(2, false);
    memcpy(vdriver_ptr(&d, w.gpa), "\x30\x77", 2);
    reqs[0] = post_raw(CHIP << 1, VIRTIO_I2C_FLAGS_FAIL_NEXT, &w, 1);
    reqs[1] = post_raw(CHIP << 1, 1U << 7, NULL, 0);
    vdriver_kick(&d, 0);
    wait_used(reqs, 2, len);
    ck_assert_uint_eq(status_of(&reqs[0]), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(status_of(&reqs[1]), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(i2c_stub_transfers(), 0);
    i2c_stub_regs(CHIP, regs);
    ck_assert_uint_eq(regs[0x30], 0);
    finish();
}
END_TEST

/* Linux's driver, its queue full, sends what fits with FAIL_NEXT on the
 * last: a group past 42 messages ends where the queue does, and the
 * guest's next transfer is its own. */
START_TEST(a_failed_over_long_group_ends_where_the_queue_does)
{
    struct msg quick = {CHIP, false, NULL, 0};
    struct req reqs[MSGS_MAX + 1];
    uint32_t len[MSGS_MAX + 1];

    start();
    for (unsigned i = 0; i < MSGS_MAX + 1; i++)
        reqs[i] = post_msg(&quick, true);
    vdriver_kick(&d, 0);
    wait_used(reqs, MSGS_MAX + 1, len);
    for (unsigned i = 0; i < MSGS_MAX + 1; i++)
        ck_assert_uint_eq(status_of(&reqs[i]), VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(transfer_one(&quick), VIRTIO_I2C_MSG_OK);
    finish();
}
END_TEST

static void over_long_group(void)
{
    struct msg m[MSGS_MAX + 2];
    uint8_t st[MSGS_MAX + 2];

    for (unsigned i = 0; i < MSGS_MAX + 2; i++)
        m[i] = (struct msg){CHIP, false, NULL, 0};
    transfer(m, MSGS_MAX + 2, st);
    for (unsigned i = 0; i < MSGS_MAX + 2; i++)
        ck_assert_msg(st[i] == VIRTIO_I2C_MSG_ERR, "message %u: status %u", i,
                      st[i]);
}

START_TEST(a_transfer_of_more_than_42_messages_fails_all_of_it)
{
    struct msg quick = {CHIP, false, NULL, 0};

    start();
    ck_assert_uint_ge(log_lines_during(over_long_group, "more than 42"), 1);
    ck_assert_uint_eq(i2c_stub_transfers(), 0);
    /* The next transfer is one of its own. */
    ck_assert_uint_eq(transfer_one(&quick), VIRTIO_I2C_MSG_OK);
    finish();
}
END_TEST

/* A register write and an 8 KiB read: one byte more than a transaction
 * may move (the loop, and dom0's bus, wait while it does). */
static uint8_t long_status[2];

static void over_long_transaction(void)
{
    static uint8_t reg, r[8192];
    struct msg m[2] = {{CHIP, false, &reg, 1}, {CHIP, true, r, sizeof(r)}};

    transfer(m, 2, long_status);
}

START_TEST(a_transaction_of_more_than_8192_bytes_fails_all_of_it)
{
    start();
    ck_assert_uint_eq(log_lines_during(over_long_transaction, "8193 bytes"), 1);
    ck_assert_uint_eq(long_status[0], VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(long_status[1], VIRTIO_I2C_MSG_ERR);
    ck_assert_uint_eq(i2c_stub_transfers(), 0);
    finish();
}
END_TEST

/* addrs= in hex as i2cdetect prints it: "50" is chip 0x50, not 0x32. */
START_TEST(addrs_are_hex_as_i2cdetect_shows_them)
{
    uint8_t w[] = {0x20, 0x5a}, r;
    struct msg set = {CHIP, false, w, sizeof(w)};

    start_addrs("50-51:68");
    ck_assert_uint_eq(transfer_one(&set), VIRTIO_I2C_MSG_OK);
    read_regs(CHIP, 0x20, &r, 1);
    ck_assert_uint_eq(r, 0x5a);
    finish();
}
END_TEST

START_TEST(a_driver_without_zero_length_request_is_refused)
{
    start_with("0x50", I2C_FUNC_I2C);
    ck_assert_int_eq(vdriver_probe(&d, I2C_ID, DEV_TRANSPORT_FEATURES), -EIO);
    ck_assert_int_eq(vdriver_probe(&d, I2C_ID, FEATURES), 0);
    finish();
}
END_TEST

/* ---- options ----------------------------------------------------------- */

static void expect_refused(const char *opts, const char *value)
{
    expect_refused_spec(&h, "i2c", opts, bus, value);
}

START_TEST(bad_options_are_refused_naming_the_value)
{
    static const uint16_t chips[] = {CHIP};
    char named[96];

    bus = i2c_stub_start(I2C_FUNC_I2C, chips, 1);
    expect_refused("addrs=0x50", "bus=");
    expect_refused("bus=/nonexistent/i2c-9,addrs=0x50",
                   "bus=/nonexistent/i2c-9");
    expect_refused("bus=/dev/null,addrs=0x50", "bus=/dev/null");
    expect_refused("bus=%s", "addrs=");
    /* ',' ends the option: the next address is taken for a key. */
    expect_refused("bus=%s,addrs=0x50,0x51", "0x51");
    expect_refused("bus=%s,addrs=0x50:zz", "'zz'");
    expect_refused("bus=%s,addrs=0x05", "'0x05'");
    expect_refused("bus=%s,addrs=0x78", "'0x78'");
    expect_refused("bus=%s,addrs=0x57-0x50", "'0x57-0x50'");
    expect_refused("bus=%s,addrs=0x50-", "'0x50-'");
    expect_refused("bus=%s,addrs=0x50::0x51", "empty");
    /* A chip a dom0 driver has (an RTC, say) is not the guest's too. */
    i2c_stub_bind_driver(0x51);
    expect_refused("bus=%s,addrs=0x50-0x52", "chip 0x51");
    expect_refused("bus=%s,addrs=0x50-0x52", "driver in dom0");
    i2c_stub_stop();
    /* An adapter with neither I2C transfers nor SMBus commands. */
    bus = i2c_stub_start(I2C_FUNC_10BIT_ADDR, chips, 1);
    snprintf(named, sizeof(named), "bus=%s", bus);
    expect_refused("bus=%s,addrs=0x50", named);
    expect_refused("bus=%s,addrs=0x50", "I2C_FUNC_I2C");
    i2c_stub_stop();
}
END_TEST

static Suite *i2c_suite(void)
{
    Suite *s = suite_create("i2c");
    TCase *tc = tcase_create("transfers");

    tcase_add_test(tc, bytes_written_at_a_register_read_back_the_same);
    tcase_add_test(tc, a_write_then_read_goes_to_the_adapter_as_one_i2c_rdwr);
    tcase_add_test(tc, forty_two_messages_are_one_transaction);
    tcase_add_test(tc,
                   zero_length_request_is_an_smbus_quick_a_chip_acknowledges);
    tcase_add_test(tc, a_chip_that_does_not_answer_fails_the_whole_transfer);
    tcase_add_test(tc, failed_transfers_log_a_debug_line_a_second_at_most);
    tcase_add_test(tc,
                   an_smbus_only_adapter_carries_the_smbus_commands_guests_send);
    tcase_add_test(tc,
                   on_an_smbus_only_adapter_other_transfers_get_err_and_a_line);
    tcase_add_test(tc,
                   an_smbus_block_write_goes_as_one_where_the_adapter_has_it);
    tcase_add_test(tc,
                   an_address_outside_addrs_gets_err_a_line_and_no_transfer);
    tcase_add_test(tc, a_driver_without_zero_length_request_is_refused);
    tcase_add_test(tc, bad_options_are_refused_naming_the_value);
    tcase_add_test(tc, addrs_are_hex_as_i2cdetect_shows_them);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc,
                   hostile_requests_get_err_a_line_and_never_reach_the_adapter);
    tcase_add_test(tc, chains_without_header_or_status_are_refused_with_a_line);
    tcase_add_test(tc, a_hostile_request_fails_its_whole_group);
    tcase_add_test(tc, a_transfer_of_more_than_42_messages_fails_all_of_it);
    tcase_add_test(tc, a_failed_over_long_group_ends_where_the_queue_does);
    tcase_add_test(
        tc, a_transfer_the_grant_budget_cuts_is_never_carried_out_in_parts);
    tcase_add_test(tc, a_transaction_of_more_than_8192_bytes_fails_all_of_it);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(i2c_suite);
}
