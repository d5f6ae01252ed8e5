/* SPDX-License-Identifier: MIT */
/*
 * virtio-scmi on the simulated hypervisor, with a driver sending commands
 * as Linux's arm_scmi virtio transport does (one chain a command: the
 * request readable, a response buffer of VIRTIO_SCMI_MAX_PDU_SIZE
 * writable): the base protocol's discovery as Linux's base.c makes it,
 * sensors described page by page and read, each byte of each response;
 * reset domains on a stand-in of dom0's GPIO chip (gpio-stub.c), the
 * lines' levels as dom0 sees them; commands a hostile guest makes and
 * the options a user can get wrong.
 */
#define _GNU_SOURCE
#include "config.h"

#include <check.h>
#include <endian.h>
#include <errno.h>
#include <linux/gpio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "dev.h"
#include "gpio-stub.h"
#include "harness.h"
#include "log-lines.h"
#include "refused-spec.h"
#include "vdriver.h"

#define SCMI_ID 32
#define RING 64
#define WAIT_MS 5000
/* Linux's response buffer: 128 bytes of message and 8 of overhead. */
#define PDU 136
#define TOKEN 0x2a5u
#define HDR(proto, msg)                                                        \
    ((uint32_t)(msg) | (uint32_t)(proto) << 10 | TOKEN << 18)
#define BASE 0x10
#define SENSOR 0x15
#define RESET 0x16
#define SUCCESS 0
#define NOT_SUPPORTED (-1)
#define INVALID_PARAMETERS (-2)
#define NOT_FOUND (-4)
#define COMMS_ERROR (-7)
#define HARDWARE_ERROR (-9)
#define PROTOCOL_ERROR (-10)
/* Five sensors: Linux's 136 bytes hold four descriptions. */
#define SENSORS                                                                \
    "soc:temp:45500:board:temp:-12250:vdd-core:voltage:900:"                   \
    "big.current:current:8589934592123:psu_power:power:15000"

static struct harness h;
static struct vdriver d;

/* A response as the guest finds it: the used length, the header, the
 * status and the return values as 32-bit words. */
struct resp {
    uint32_t len, hdr;
    int32_t status;
    uint32_t w[64];
    uint8_t bytes[512];
};

/* Probe as Linux does; with the eventq (VIRTIO_SCMI_F_P2A_CHANNELS), set
 * it up too. */
static void probe(bool eventq)
{
    uint64_t wanted = DEV_TRANSPORT_FEATURES | (eventq ? 1ull << 0 : 0);

    ck_assert_int_eq(vdriver_probe(&d, SCMI_ID, wanted), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, RING), 0);
    if (eventq)
        ck_assert_int_eq(vdriver_setup_queue(&d, 1, RING), 0);
    vdriver_driver_ok(&d);
    ck_assert_int_eq(d.io_error, 0);
}

static void start_probed(const char *opts, bool eventq)
{
    char spec[256];
    const char *specs[] = {spec};

    snprintf(spec, sizeof(spec), "scmi%s%s", *opts ? "," : "", opts);
    ck_assert_int_eq(harness_start(&h, specs, 1), 0);
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 16 << 20);
    probe(eventq);
}

static void start_with(const char *opts)
{
    start_probed(opts, false);
}

static void start(void)
{
    start_with("sensors=" SENSORS);
}

static void finish(void)
{
    harness_stop(&h);
}

/* Send out_len bytes of request (hdr, then params) with a response
 * buffer of in_len bytes (0xee-filled); wait for it. */
static void send_raw(const void *req, uint32_t out_len, uint32_t in_len,
                     struct resp *r)
{
    struct guest_buf b[2];
    unsigned n = 0;
    uint64_t in = vdriver_alloc(&d, in_len ? in_len : 1, 8);
    uint32_t id;
    uint16_t head;

    if (out_len) {
        b[n] =
            (struct guest_buf){vdriver_alloc(&d, out_len, 8), out_len, false};
        memcpy(vdriver_ptr(&d, b[n].gpa), req, out_len);
        n++;
    }
    memset(vdriver_ptr(&d, in), 0xee, in_len ? in_len : 1);
    if (in_len)
        b[n++] = (struct guest_buf){in, in_len, true};
    head = guest_ring_add_chain(&d.ring[0], b, n);
    guest_ring_publish(&d.ring[0], head);
    vdriver_kick(&d, 0);
    ck_assert_int_eq(vdriver_next_used(&d, 0, &id, &r->len, WAIT_MS), 0);
    ck_assert_uint_eq(id, head);
    memset(r->bytes, 0, sizeof(r->bytes));
    memcpy(r->bytes, vdriver_ptr(&d, in), in_len < 512 ? in_len : 512);
    for (unsigned i = 0; i < 64; i++)
        r->w[i] = le32toh(((const uint32_t *)r->bytes)[i + 2]);
    r->hdr = le32toh(((const uint32_t *)r->bytes)[0]);
    r->status = (int32_t)le32toh(((const uint32_t *)r->bytes)[1]);
}

/* A command with nparams 32-bit parameters, as Linux sends it. */
static void send_cmd(uint32_t hdr, const uint32_t *params, unsigned nparams,
                     uint32_t in_len, struct resp *r)
{
    uint32_t req[1 + 40];

    req[0] = htole32(hdr);
    for (unsigned i = 0; i < nparams; i++)
        req[1 + i] = htole32(params[i]);
    send_raw(req, 4 * (1 + nparams), in_len, r);
}

/* A command answered with `status` and nret words of return values,
 * its header echoed. */
static void expect(uint32_t hdr, const uint32_t *params, unsigned nparams,
                   int32_t status, unsigned nret, struct resp *r)
{
    send_cmd(hdr, params, nparams, PDU, r);
    ck_assert_uint_eq(r->hdr, hdr);
    ck_assert_int_eq(r->status, status);
    ck_assert_uint_eq(r->len, 8 + 4 * nret);
}

/* ---- base protocol ----------------------------------------------------- */

START_TEST(base_protocol_answers_linux_s_discovery)
{
    struct resp r;
    uint32_t p;

    start();
    expect(HDR(BASE, 0x0), NULL, 0, SUCCESS, 1, &r);
    ck_assert_uint_eq(r.w[0], 0x20000);
    /* One agent, two protocols besides base. */
    expect(HDR(BASE, 0x1), NULL, 0, SUCCESS, 1, &r);
    ck_assert_uint_eq(r.w[0], 0x0102);
    expect(HDR(BASE, 0x3), NULL, 0, SUCCESS, 4, &r);
    ck_assert_mem_eq(r.bytes + 8, "xvdm\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    expect(HDR(BASE, 0x4), NULL, 0, SUCCESS, 4, &r);
    ck_assert_mem_eq(r.bytes + 8, "xen\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    expect(HDR(BASE, 0x5), NULL, 0, SUCCESS, 1, &r);
    ck_assert_uint_eq(r.w[0], 1);
    p = 0;
    expect(HDR(BASE, 0x6), &p, 1, SUCCESS, 2, &r);
    ck_assert_uint_eq(r.w[0], 2);
    ck_assert_mem_eq(r.bytes + 12, "\x15\x16\0\0", 4);
    p = 1;
    expect(HDR(BASE, 0x6), &p, 1, SUCCESS, 2, &r);
    ck_assert_uint_eq(r.w[0], 1);
    ck_assert_mem_eq(r.bytes + 12, "\x16\0\0\0", 4);
    p = 2;
    expect(HDR(BASE, 0x6), &p, 1, SUCCESS, 1, &r);
    ck_assert_uint_eq(r.w[0], 0);
    p = 0xffffffff;
    expect(HDR(BASE, 0x7), &p, 1, SUCCESS, 5, &r);
    ck_assert_uint_eq(r.w[0], 1);
    ck_assert_mem_eq(r.bytes + 12, "guest\0\0\0\0\0\0\0\0\0\0\0", 16);
    p = 0;
    expect(HDR(BASE, 0x7), &p, 1, SUCCESS, 5, &r);
    ck_assert_uint_eq(r.w[0], 0);
    ck_assert_mem_eq(r.bytes + 12, "platform\0\0\0\0\0\0\0\0", 16);
    finish();
}
END_TEST

START_TEST(message_attributes_find_the_messages_a_protocol_has)
{
    struct resp r;
    uint32_t p;

    start();
    for (p = 0; p <= 7; p++) {
        expect(HDR(BASE, 0x2), &p, 1, SUCCESS, 1, &r);
        ck_assert_uint_eq(r.w[0], 0);
    }
    p = 0x8; /* BASE_NOTIFY_ERRORS */
    expect(HDR(BASE, 0x2), &p, 1, NOT_FOUND, 0, &r);
    p = 0x6;
    expect(HDR(SENSOR, 0x2), &p, 1, SUCCESS, 1, &r);
    for (p = 0x4; p <= 0x5; p++) /* TRIP_POINT_NOTIFY and _CONFIG */
        expect(HDR(SENSOR, 0x2), &p, 1, SUCCESS, 1, &r);
    p = 0x7;
    expect(HDR(SENSOR, 0x2), &p, 1, NOT_FOUND, 0, &r);
    p = 0x4; /* RESET */
    expect(HDR(RESET, 0x2), &p, 1, SUCCESS, 1, &r);
    p = 0x5; /* RESET_NOTIFY */
    expect(HDR(RESET, 0x2), &p, 1, NOT_FOUND, 0, &r);
    p = 0x6; /* RESET_DOMAIN_NAME_GET */
    expect(HDR(RESET, 0x2), &p, 1, NOT_FOUND, 0, &r);
    finish();
}
END_TEST

/* ---- sensors ----------------------------------------------------------- */

/* Description i of a response: id, attributes low and high, name. */
static void expect_desc(const struct resp *r, unsigned i, uint32_t id,
                        uint32_t attr_high, const char *name)
{
    char padded[16] = {0};

    strcpy(padded, name);
    ck_assert_uint_eq(r->w[1 + 7 * i], id);
    /* attributes_low: two trip points, synchronous readings. */
    ck_assert_uint_eq(r->w[2 + 7 * i], 2);
    ck_assert_uint_eq(r->w[3 + 7 * i], attr_high);
    ck_assert_mem_eq(r->bytes + 12 + 28 * i + 12, padded, 16);
}

/* hwmon's units: a scale of -3 (0x1d in bits 15:11) for 2 Celsius, 5
 * Volts, 6 Amps; of -6 (0x1a) for 7 Watts. */
#define MILLI(unit) (0x1dU << 11 | (unit))
#define MICRO(unit) (0x1aU << 11 | (unit))

START_TEST(sensor_descriptions_come_page_by_page_from_the_index)
{
    struct resp r;
    uint32_t p;

    start();
    expect(HDR(SENSOR, 0x0), NULL, 0, SUCCESS, 1, &r);
    ck_assert_uint_eq(r.w[0], 0x20000);
    expect(HDR(SENSOR, 0x1), NULL, 0, SUCCESS, 4, &r);
    ck_assert_uint_eq(r.w[0], 5);
    ck_assert_uint_eq(r.w[1] | r.w[2] | r.w[3], 0);
    /* 136 bytes hold four: one remains. */
    p = 0;
    expect(HDR(SENSOR, 0x3), &p, 1, SUCCESS, 1 + 4 * 7, &r);
    ck_assert_uint_eq(r.w[0], 1u << 16 | 4);
    expect_desc(&r, 0, 0, MILLI(2), "soc");
    expect_desc(&r, 1, 1, MILLI(2), "board");
    expect_desc(&r, 2, 2, MILLI(5), "vdd-core");
    expect_desc(&r, 3, 3, MILLI(6), "big.current");
    p = 4;
    expect(HDR(SENSOR, 0x3), &p, 1, SUCCESS, 1 + 7, &r);
    ck_assert_uint_eq(r.w[0], 1);
    expect_desc(&r, 0, 4, MICRO(7), "psu_power");
    /* From the middle, a buffer for two. */
    p = 1;
    send_cmd(HDR(SENSOR, 0x3), &p, 1, 12 + 2 * 28 + 27, &r);
    ck_assert_int_eq(r.status, SUCCESS);
    ck_assert_uint_eq(r.len, 12 + 2 * 28);
    ck_assert_uint_eq(r.w[0], 2u << 16 | 2);
    expect_desc(&r, 0, 1, MILLI(2), "board");
    expect_desc(&r, 1, 2, MILLI(5), "vdd-core");
    finish();
}
END_TEST

static int64_t reading(uint32_t id)
{
    uint32_t p[2] = {id, 0};
    struct resp r;

    expect(HDR(SENSOR, 0x6), p, 2, SUCCESS, 2, &r);
    return (int64_t)((uint64_t)r.w[1] << 32 | r.w[0]);
}

START_TEST(sensor_readings_are_the_configured_values)
{
    start();
    ck_assert_int_eq(reading(0), 45500);
    ck_assert_int_eq(reading(1), -12250);
    ck_assert_int_eq(reading(2), 900);
    ck_assert_int_eq(reading(3), 8589934592123LL);
    ck_assert_int_eq(reading(4), 15000);
    finish();
}
END_TEST

START_TEST(a_device_without_sensors_has_the_protocol_and_none)
{
    struct resp r;
    uint32_t p[2] = {0, 0};

    start_with("");
    expect(HDR(SENSOR, 0x1), NULL, 0, SUCCESS, 4, &r);
    ck_assert_uint_eq(r.w[0], 0);
    expect(HDR(SENSOR, 0x6), p, 2, NOT_FOUND, 0, &r);
    finish();
}
END_TEST

/* A file standing in for a hwmon attribute; its path. */
static const char *hwmon_file(char *path, const char *text)
{
    FILE *f;

    if (!*path) {
        int fd;

        strcpy(path, "/tmp/xvdm-hwmon-XXXXXX");
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        close(fd);
    }
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void hwmon_fails(void)
{
    uint32_t p[2] = {1, 0};
    struct resp r;

    for (unsigned i = 0; i < 3; i++)
        expect(HDR(SENSOR, 0x6), p, 2, HARDWARE_ERROR, 0, &r);
}

START_TEST(hwmon_sensors_are_read_when_the_guest_asks)
{
    char temp[32] = "", volt[32] = "", opts[160];
    struct resp r;
    uint32_t p = 0;

    hwmon_file(temp, "45500\n");
    hwmon_file(volt, "1200\n");
    snprintf(opts, sizeof(opts),
             "sensors=soc:temp:1,hwmon=cpu:temp:%s:vin:voltage:%s", temp, volt);
    start_with(opts);
    expect(HDR(SENSOR, 0x3), &p, 1, SUCCESS, 1 + 3 * 7, &r);
    ck_assert_uint_eq(r.w[0], 3);
    expect_desc(&r, 0, 0, MILLI(2), "soc");
    expect_desc(&r, 1, 1, MILLI(2), "cpu");
    expect_desc(&r, 2, 2, MILLI(5), "vin");
    ck_assert_int_eq(reading(0), 1);
    ck_assert_int_eq(reading(1), 45500);
    ck_assert_int_eq(reading(2), 1200);
    hwmon_file(temp, "-2000\n");
    ck_assert_int_eq(reading(1), -2000);
    hwmon_file(temp, "ENODATA");
    /* A line when it fails, not one a reading. */
    ck_assert_uint_eq(log_lines_during(hwmon_fails, "HARDWARE_ERROR"), 1);
    hwmon_file(temp, "51000\n");
    ck_assert_int_eq(reading(1), 51000);
    finish();
    unlink(temp);
    unlink(volt);
}
END_TEST

/* ---- reset domains ----------------------------------------------------- */

/* dom0's chip: 8 lines; "nic" on line 2, active-high, "uart" on line 5,
 * active-low. */
#define CHIP_LINES 8
#define NIC_LINE 2
#define UART_LINE 5
/* RESET's flags (DEN0056 §4.8.2.5). */
#define AUTONOMOUS 0x1
#define ASSERT 0x2
#define ASYNC 0x4

static const char *chip;

static void start_resets(void)
{
    char opts[200];

    chip = gpio_stub_start(CHIP_LINES, NULL);
    snprintf(opts, sizeof(opts), "resets=nic:%s:%u:uart:%s:%u:active-low", chip,
             NIC_LINE, chip, UART_LINE);
    start_with(opts);
}

static void finish_resets(void)
{
    finish();
    gpio_stub_stop();
}

static void reset(uint32_t id, uint32_t flags)
{
    uint32_t p[3] = {id, flags, 0};
    struct resp r;

    expect(HDR(RESET, 0x4), p, 3, SUCCESS, 0, &r);
}

START_TEST(reset_domains_are_described_as_linux_asks)
{
    struct resp r;
    uint32_t p;

    start_resets();
    expect(HDR(RESET, 0x0), NULL, 0, SUCCESS, 1, &r);
    ck_assert_uint_eq(r.w[0], 0x30000);
    expect(HDR(RESET, 0x1), NULL, 0, SUCCESS, 1, &r);
    ck_assert_uint_eq(r.w[0], 2);
    /* Synchronous, no notifications, no extended name; an autonomous
     * reset's hold, 100 µs. */
    p = 0;
    expect(HDR(RESET, 0x3), &p, 1, SUCCESS, 2 + 4, &r);
    ck_assert_uint_eq(r.w[0], 0);
    ck_assert_uint_eq(r.w[1], 100);
    ck_assert_mem_eq(r.bytes + 16, "nic\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    p = 1;
    expect(HDR(RESET, 0x3), &p, 1, SUCCESS, 2 + 4, &r);
    ck_assert_mem_eq(r.bytes + 16, "uart\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    finish_resets();
}
END_TEST

START_TEST(lines_are_held_deasserted_from_start)
{
    start_resets();
    ck_assert_uint_eq(gpio_stub_requests_held(), 2);
    ck_assert_uint_eq(gpio_stub_flags(NIC_LINE), GPIO_V2_LINE_FLAG_OUTPUT);
    ck_assert_uint_eq(gpio_stub_flags(UART_LINE),
                      GPIO_V2_LINE_FLAG_OUTPUT | GPIO_V2_LINE_FLAG_ACTIVE_LOW);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 0);
    ck_assert_int_eq(gpio_stub_level(UART_LINE), 1);
    finish_resets();
}
END_TEST

START_TEST(explicit_assert_and_deassert_drive_the_line)
{
    start_resets();
    reset(0, ASSERT);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 1);
    reset(0, 0);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 0);
    /* Active-low: asserted is low. */
    reset(1, ASSERT);
    ck_assert_int_eq(gpio_stub_level(UART_LINE), 0);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 0);
    reset(1, 0);
    ck_assert_int_eq(gpio_stub_level(UART_LINE), 1);
    finish_resets();
}
END_TEST

START_TEST(an_autonomous_reset_pulses_the_line_and_leaves_it_deasserted)
{
    start_resets();
    reset(0, AUTONOMOUS);
    ck_assert_uint_eq(gpio_stub_times_at(NIC_LINE, 1), 1);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 0);
    /* The assert flag is ignored with the autonomous one. */
    reset(1, AUTONOMOUS | ASSERT);
    ck_assert_uint_eq(gpio_stub_times_at(UART_LINE, 0), 1);
    ck_assert_int_eq(gpio_stub_level(UART_LINE), 1);
    finish_resets();
}
END_TEST

START_TEST(a_device_reset_deasserts_every_domain_and_keeps_the_lines)
{
    start_resets();
    reset(0, ASSERT);
    reset(1, ASSERT);
    vdriver_reset(&d);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 0);
    ck_assert_int_eq(gpio_stub_level(UART_LINE), 1);
    ck_assert_uint_eq(gpio_stub_requests_held(), 2);
    /* The guest's driver starts again and resets. */
    ck_assert_int_eq(vdriver_probe(&d, SCMI_ID, DEV_TRANSPORT_FEATURES), 0);
    ck_assert_int_eq(vdriver_setup_queue(&d, 0, RING), 0);
    vdriver_driver_ok(&d);
    reset(0, ASSERT);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 1);
    finish_resets();
}
END_TEST

START_TEST(xvdm_gives_the_lines_back_deasserted_when_it_stops)
{
    start_resets();
    reset(0, ASSERT);
    ck_assert_uint_eq(gpio_stub_times_at(NIC_LINE, 0), 0);
    finish();
    ck_assert_uint_eq(gpio_stub_times_at(NIC_LINE, 0), 1);
    ck_assert_uint_eq(gpio_stub_requests_held(), 0);
    gpio_stub_stop();
}
END_TEST

/* ---- hostile ----------------------------------------------------------- */

/* Each of these gets its status alone, its header echoed, and a line. */
static void expect_refused(uint32_t hdr, const uint32_t *params,
                           unsigned nparams, int32_t status)
{
    struct resp r;

    send_cmd(hdr, params, nparams, PDU, &r);
    ck_assert_uint_eq(r.hdr, hdr);
    ck_assert_int_eq(r.status, status);
    ck_assert_uint_eq(r.len, 8);
    /* Nothing past the status is written. */
    ck_assert_uint_eq(r.w[0], 0xeeeeeeee);
}

static void hostile_commands(void)
{
    uint32_t p[40] = {0};

    /* Protocols and messages that are not there. */
    expect_refused(HDR(0x14, 0x0), NULL, 0, NOT_SUPPORTED);
    expect_refused(HDR(0xff, 0x0), NULL, 0, NOT_SUPPORTED);
    expect_refused(HDR(BASE, 0x8), p, 1, NOT_SUPPORTED);
    expect_refused(HDR(BASE, 0xff), NULL, 0, NOT_SUPPORTED);
    /* Trip point notifications without an eventq to send them on. */
    expect_refused(HDR(SENSOR, 0x4), p, 2, NOT_SUPPORTED);
    p[1] = 1;
    expect_refused(HDR(SENSOR, 0x4), p, 2, NOT_SUPPORTED);
    p[1] = 0;
    /* Parameters short, long, or more than any message has. */
    expect_refused(HDR(BASE, 0x6), NULL, 0, PROTOCOL_ERROR);
    expect_refused(HDR(BASE, 0x0), p, 1, PROTOCOL_ERROR);
    expect_refused(HDR(SENSOR, 0x6), p, 1, PROTOCOL_ERROR);
    expect_refused(HDR(SENSOR, 0x6), p, 3, PROTOCOL_ERROR);
    expect_refused(HDR(SENSOR, 0x6), p, 40, PROTOCOL_ERROR);
    /* Not a command (a delayed response's type, 2). */
    expect_refused(HDR(BASE, 0x0) | 2u << 8, NULL, 0, PROTOCOL_ERROR);
    /* Indexes and ids past the end. */
    p[0] = 3;
    expect_refused(HDR(BASE, 0x6), p, 1, INVALID_PARAMETERS);
    p[0] = 0xffffffff;
    expect_refused(HDR(BASE, 0x6), p, 1, INVALID_PARAMETERS);
    p[0] = 2;
    expect_refused(HDR(BASE, 0x7), p, 1, NOT_FOUND);
    p[0] = 5;
    expect_refused(HDR(SENSOR, 0x3), p, 1, INVALID_PARAMETERS);
    p[0] = 0xffffffff;
    expect_refused(HDR(SENSOR, 0x3), p, 1, INVALID_PARAMETERS);
    expect_refused(HDR(SENSOR, 0x6), p, 2, NOT_FOUND);
    p[0] = 5;
    expect_refused(HDR(SENSOR, 0x6), p, 2, NOT_FOUND);
    /* Asynchronous readings, reserved flags. */
    p[0] = 0;
    p[1] = 1;
    expect_refused(HDR(SENSOR, 0x6), p, 2, NOT_SUPPORTED);
    p[1] = 0x80000000;
    expect_refused(HDR(SENSOR, 0x6), p, 2, INVALID_PARAMETERS);
}

START_TEST(hostile_commands_get_the_spec_s_status_and_a_line)
{
    start();
    ck_assert_uint_ge(log_lines_during(hostile_commands, "SCMI"), 1);
    /* The device goes on. */
    ck_assert_int_eq(reading(0), 45500);
    finish();
}
END_TEST

static void hostile_resets(void)
{
    uint32_t p[3] = {2, 0, 0};

    /* Domains that are not there. */
    expect_refused(HDR(RESET, 0x4), p, 3, NOT_FOUND);
    expect_refused(HDR(RESET, 0x3), p, 1, NOT_FOUND);
    p[0] = 0xffffffff;
    expect_refused(HDR(RESET, 0x4), p, 3, NOT_FOUND);
    expect_refused(HDR(RESET, 0x3), p, 1, NOT_FOUND);
    /* Reserved flags; asynchronous, without and with autonomous. */
    p[0] = 0;
    p[1] = 0x8 | ASSERT;
    expect_refused(HDR(RESET, 0x4), p, 3, INVALID_PARAMETERS);
    p[1] = 0x80000000 | ASSERT;
    expect_refused(HDR(RESET, 0x4), p, 3, INVALID_PARAMETERS);
    p[1] = ASYNC | ASSERT;
    expect_refused(HDR(RESET, 0x4), p, 3, INVALID_PARAMETERS);
    p[1] = ASYNC | AUTONOMOUS;
    expect_refused(HDR(RESET, 0x4), p, 3, NOT_SUPPORTED);
    /* Reset states other than the architectural cold reset. */
    p[1] = ASSERT;
    p[2] = 1;
    expect_refused(HDR(RESET, 0x4), p, 3, INVALID_PARAMETERS);
    p[2] = 0x80000000;
    expect_refused(HDR(RESET, 0x4), p, 3, INVALID_PARAMETERS);
    /* RESET_NOTIFY, RESET_DOMAIN_NAME_GET; parameters short or long. */
    p[2] = 0;
    expect_refused(HDR(RESET, 0x5), p, 2, NOT_SUPPORTED);
    expect_refused(HDR(RESET, 0x6), p, 1, NOT_SUPPORTED);
    expect_refused(HDR(RESET, 0x4), p, 2, PROTOCOL_ERROR);
    expect_refused(HDR(RESET, 0x3), p, 2, PROTOCOL_ERROR);
}

START_TEST(hostile_resets_get_the_spec_s_status_and_leave_the_lines)
{
    start_resets();
    ck_assert_uint_ge(log_lines_during(hostile_resets, "SCMI RESET"), 1);
    ck_assert_uint_eq(gpio_stub_times_at(NIC_LINE, 1), 0);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 0);
    ck_assert_int_eq(gpio_stub_level(UART_LINE), 1);
    reset(0, ASSERT);
    ck_assert_int_eq(gpio_stub_level(NIC_LINE), 1);
    finish_resets();
}
END_TEST

static void short_chains(void)
{
    uint32_t hdr = htole32(HDR(BASE, 0x0));
    struct resp r;

    /* No header; no room for header and status; no response buffer. */
    send_raw(&hdr, 3, PDU, &r);
    ck_assert_uint_eq(r.len, 0);
    ck_assert_uint_eq(r.hdr, 0xeeeeeeee);
    send_raw(&hdr, 4, 7, &r);
    ck_assert_uint_eq(r.len, 0);
    ck_assert_uint_eq(r.hdr, 0xeeeeeeee);
    send_raw(&hdr, 4, 0, &r);
    ck_assert_uint_eq(r.len, 0);
}

START_TEST(chains_without_header_or_room_for_a_status_are_given_back)
{
    start();
    ck_assert_uint_ge(log_lines_during(short_chains, "unanswered"), 1);
    ck_assert_int_eq(reading(0), 45500);
    finish();
}
END_TEST

static void small_responses(void)
{
    uint32_t p = 0;
    struct resp r;

    /* The vendor's 16 bytes in 12; a description in 39. */
    send_cmd(HDR(BASE, 0x3), NULL, 0, 20, &r);
    ck_assert_uint_eq(r.hdr, HDR(BASE, 0x3));
    ck_assert_int_eq(r.status, COMMS_ERROR);
    ck_assert_uint_eq(r.len, 8);
    send_cmd(HDR(SENSOR, 0x3), &p, 1, 12 + 27, &r);
    ck_assert_int_eq(r.status, COMMS_ERROR);
    ck_assert_uint_eq(r.len, 8);
    /* Room for the agent's id, not its name: the id is not sent alone. */
    p = 0xffffffff;
    send_cmd(HDR(BASE, 0x7), &p, 1, 8 + 4 + 15, &r);
    ck_assert_int_eq(r.status, COMMS_ERROR);
    ck_assert_uint_eq(r.len, 8);
    ck_assert_uint_eq(r.w[0], 0xeeeeeeee);
}

START_TEST(a_response_that_does_not_fit_is_comms_error_with_a_line)
{
    start();
    ck_assert_uint_ge(log_lines_during(small_responses, "does not fit"), 3);
    finish();
}
END_TEST

/* ---- notifications ----------------------------------------------------- */

#define NOTIFY 0x4
#define TRIP_CONFIG 0x5
/* SENSOR_TRIP_POINT_CONFIG's event control: trip point id in bits 11:4,
 * which crossings in 1:0 (1 rising, 2 falling, 3 both, 0 none). */
#define TP(id, dir) ((uint32_t)(id) << 4 | (dir))
#define RISING 1
#define FALLING 2
#define BOTH 3
/* A notification's header: message 0 (TRIP_POINT_EVENT), type 3, the
 * sensor protocol, token 0. */
#define TRIP_EVENT_HDR (3u << 8 | SENSOR << 10)
/* Polls a test waits through before it says nothing came. */
#define QUIET_MS 150

static char temp_path[32];

/* One hwmon temperature sensor (id 0) at 40 degrees, polled every
 * poll_ms, the eventq negotiated and set up. */
static void start_events_polled(unsigned poll_ms)
{
    char opts[96];

    temp_path[0] = '\0';
    hwmon_file(temp_path, "40000\n");
    snprintf(opts, sizeof(opts), "hwmon=cpu:temp:%s,poll-ms=%u", temp_path,
             poll_ms);
    start_probed(opts, true);
}

static void start_events(void)
{
    start_events_polled(10);
}

static void finish_events(void)
{
    finish();
    unlink(temp_path);
}

static void set_temp(const char *text)
{
    hwmon_file(temp_path, text);
}

/* Post one device-writable buffer of len bytes on the eventq, 0xee-filled:
 * its address. */
static uint64_t post_event_buf(uint32_t len, uint16_t *head)
{
    struct guest_buf b = {vdriver_alloc(&d, len, 8), len, true};

    memset(vdriver_ptr(&d, b.gpa), 0xee, len);
    *head = guest_ring_add_chain(&d.ring[1], &b, 1);
    guest_ring_publish(&d.ring[1], *head);
    vdriver_kick(&d, 1);
    return b.gpa;
}

/* The eventq buffer at gpa comes back holding TRIP_POINT_EVENT for sensor
 * 0 with trip point descriptor desc, exactly. */
static void expect_trip_event(uint64_t gpa, uint16_t head, uint32_t desc)
{
    const uint32_t *w = vdriver_ptr(&d, gpa);
    uint32_t id, len;

    ck_assert_int_eq(vdriver_next_used(&d, 1, &id, &len, WAIT_MS), 0);
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(len, 16);
    ck_assert_uint_eq(le32toh(w[0]), TRIP_EVENT_HDR);
    ck_assert_uint_eq(le32toh(w[1]), 0); /* agent: the platform */
    ck_assert_uint_eq(le32toh(w[2]), 0); /* sensor 0 */
    ck_assert_uint_eq(le32toh(w[3]), desc);
    ck_assert_uint_eq(le32toh(w[4]), 0xeeeeeeee);
}

static void expect_no_event(void)
{
    uint32_t id, len;

    ck_assert_int_eq(vdriver_next_used(&d, 1, &id, &len, QUIET_MS), -ETIMEDOUT);
}

static void notify(uint32_t sensor, uint32_t control, int32_t status)
{
    uint32_t p[2] = {sensor, control};
    struct resp r;

    expect(HDR(SENSOR, NOTIFY), p, 2, status, 0, &r);
}

static void trip_config(uint32_t sensor, uint32_t control, int64_t value,
                        int32_t status)
{
    uint32_t p[4] = {sensor, control, (uint32_t)value,
                     (uint32_t)((uint64_t)value >> 32)};
    struct resp r;

    expect(HDR(SENSOR, TRIP_CONFIG), p, 4, status, 0, &r);
}

START_TEST(trip_point_events_come_on_crossings_while_notify_is_enabled)
{
    uint16_t head;
    uint64_t buf;

    start_events();
    buf = post_event_buf(PDU, &head);
    trip_config(0, TP(0, RISING), 50000, SUCCESS);
    /* Not enabled yet: a crossing says nothing. */
    set_temp("55000\n");
    expect_no_event();
    set_temp("45000\n");
    expect_no_event();
    notify(0, 1, SUCCESS);
    expect_no_event();
    set_temp("50000\n");
    /* Rising through 50 degrees: trip point 0, bit 16 for rising. */
    expect_trip_event(buf, head, 1u << 16 | 0);
    /* Falling back: trip point 0 only watches rising. */
    buf = post_event_buf(PDU, &head);
    set_temp("30000\n");
    expect_no_event();
    /* Trip point 1, both ways, at -5 degrees (its value's high word). */
    trip_config(0, TP(1, BOTH), -5000, SUCCESS);
    set_temp("-6000\n");
    expect_trip_event(buf, head, 0u << 16 | 1);
    buf = post_event_buf(PDU, &head);
    set_temp("0\n");
    expect_trip_event(buf, head, 1u << 16 | 1);
    /* Disabled: no more. */
    buf = post_event_buf(PDU, &head);
    notify(0, 0, SUCCESS);
    set_temp("-6000\n");
    expect_no_event();
    finish_events();
}
END_TEST

/* A trip point set while the sensor cannot be read has no side yet: the
 * first value read gives it one, and no crossing. */
START_TEST(no_event_for_a_crossing_from_a_value_never_read)
{
    uint16_t head;

    start_events();
    post_event_buf(PDU, &head);
    set_temp("garbage\n");
    trip_config(0, TP(0, RISING), -100000, SUCCESS);
    notify(0, 1, SUCCESS);
    set_temp("40000\n");
    expect_no_event();
    finish_events();
}
END_TEST

/* Setting one trip point leaves the other's side as the last poll saw
 * it: a crossing of that one since is still reported. The first poll
 * comes a second after notify goes on, long after both commands. */
START_TEST(setting_one_trip_point_keeps_the_others_crossing)
{
    uint16_t head;
    uint64_t buf;

    start_events_polled(1000);
    buf = post_event_buf(PDU, &head);
    trip_config(0, TP(0, RISING), 50000, SUCCESS);
    notify(0, 1, SUCCESS);
    set_temp("60000\n");
    trip_config(0, TP(1, FALLING), 0, SUCCESS);
    expect_trip_event(buf, head, 1u << 16 | 0);
    finish_events();
}
END_TEST

static void crossing_without_a_buffer(void)
{
    uint16_t head;
    uint32_t id, len;

    set_temp("60000\n");
    usleep(QUIET_MS * 1000);
    /* A buffer too small for the 16 bytes: given back empty. */
    post_event_buf(15, &head);
    set_temp("40000\n");
    ck_assert_int_eq(vdriver_next_used(&d, 1, &id, &len, WAIT_MS), 0);
    ck_assert_uint_eq(id, head);
    ck_assert_uint_eq(len, 0);
}

START_TEST(events_without_a_buffer_are_dropped_counted_and_the_device_goes_on)
{
    uint16_t head;
    uint64_t buf;

    start_events();
    trip_config(0, TP(0, BOTH), 50000, SUCCESS);
    notify(0, 1, SUCCESS);
    ck_assert_uint_ge(
        log_lines_during(crossing_without_a_buffer, "2 dropped so far"), 1);
    buf = post_event_buf(PDU, &head);
    set_temp("50000\n");
    expect_trip_event(buf, head, 1u << 16 | 0);
    ck_assert_int_eq(reading(0), 50000);
    finish_events();
}
END_TEST

static void hostile_notifications(void)
{
    uint32_t p[4] = {0};

    /* Sensors that are not there. */
    notify(1, 1, NOT_FOUND);
    notify(0xffffffff, 1, NOT_FOUND);
    trip_config(1, TP(0, RISING), 0, NOT_FOUND);
    trip_config(0xffffffff, TP(0, RISING), 0, NOT_FOUND);
    /* Reserved bits of the event controls; trip points past the two. */
    notify(0, 2, INVALID_PARAMETERS);
    notify(0, 0x80000001, INVALID_PARAMETERS);
    trip_config(0, TP(2, RISING), 0, INVALID_PARAMETERS);
    trip_config(0, TP(0xff, BOTH), 0, INVALID_PARAMETERS);
    trip_config(0, TP(0, RISING) | 1u << 2, 0, INVALID_PARAMETERS);
    trip_config(0, TP(0, RISING) | 1u << 12, 0, INVALID_PARAMETERS);
    trip_config(0, TP(0, RISING) | 1u << 31, 0, INVALID_PARAMETERS);
    /* Parameters of another length. */
    expect_refused(HDR(SENSOR, NOTIFY), p, 1, PROTOCOL_ERROR);
    expect_refused(HDR(SENSOR, TRIP_CONFIG), p, 3, PROTOCOL_ERROR);
}

START_TEST(hostile_notify_and_trip_configs_get_the_spec_s_status)
{
    uint16_t head;

    start_events();
    ck_assert_uint_ge(log_lines_during(hostile_notifications, "SCMI"), 1);
    /* None of them enabled anything. */
    post_event_buf(PDU, &head);
    set_temp("90000\n");
    expect_no_event();
    finish_events();
}
END_TEST

START_TEST(reset_clears_notifications_and_trip_points)
{
    uint16_t head;

    start_events();
    trip_config(0, TP(0, BOTH), 50000, SUCCESS);
    notify(0, 1, SUCCESS);
    vdriver_reset(&d);
    probe(true);
    post_event_buf(PDU, &head);
    set_temp("60000\n");
    expect_no_event();
    /* Enabled again, the trip point is gone too. */
    notify(0, 1, SUCCESS);
    set_temp("40000\n");
    expect_no_event();
    finish_events();
}
END_TEST

/* ---- options ----------------------------------------------------------- */

static void expect_option_refused(const char *opts, const char *value)
{
    char spec[256];

    snprintf(spec, sizeof(spec), "scmi,%s", opts);
    expect_spec_refused(spec, value);
}

START_TEST(bad_options_are_refused_naming_the_value)
{
    char path[32] = "", opts[400];

    expect_option_refused("sensors=soc:temp", "'soc'");
    expect_option_refused("sensors=soc:temp:1:gpu", "'gpu'");
    expect_option_refused("sensors=soc:warmth:1", "'soc:warmth:1'");
    expect_option_refused("sensors=soc:temp:hot", "'soc:temp:hot'");
    expect_option_refused("sensors=soc:temp:99999999999999999999",
                          "99999999999999999999");
    expect_option_refused("sensors=:temp:1", "':temp:1'");
    expect_option_refused("sensors=a/b:temp:1", "'a/b:temp:1'");
    expect_option_refused("sensors=sixteen-letters0:temp:1",
                          "sixteen-letters0");
    expect_option_refused("sensors=soc:temp:", "'soc:temp:'");
    /* ',' ends the option: the next sensor is taken for a key. */
    expect_option_refused("sensors=soc:temp:1,gpu:temp:2", "gpu:temp:2");
    expect_option_refused(
        "sensors=a:temp:0:b:temp:0:c:temp:0:d:temp:0:e:temp:0:f:temp:0:"
        "g:temp:0:h:temp:0:i:temp:0:j:temp:0:k:temp:0:l:temp:0:m:temp:0:"
        "n:temp:0:o:temp:0:p:temp:0:q:temp:0",
        "'q:temp:0' is one sensor more than the 16");
    /* hwmon=: files that are not there or hold no value; the 16 in all. */
    expect_option_refused("hwmon=cpu:temp:/nonexistent/temp1_input",
                          "/nonexistent/temp1_input' has a file that cannot");
    hwmon_file(path, "hot\n");
    snprintf(opts, sizeof(opts), "hwmon=cpu:temp:%s", path);
    expect_option_refused(opts, "does not read as a decimal integer");
    expect_option_refused("hwmon=cpu:temp",
                          "'cpu' is not a whole NAME:TYPE:PATH");
    hwmon_file(path, "1\n");
    snprintf(opts, sizeof(opts),
             "sensors=a:temp:0:b:temp:0:c:temp:0:d:temp:0:e:temp:0:f:temp:0:"
             "g:temp:0:h:temp:0:i:temp:0:j:temp:0:k:temp:0:l:temp:0:m:temp:0:"
             "n:temp:0:o:temp:0:p:temp:0,hwmon=q:temp:%s",
             path);
    expect_option_refused(opts, "is one sensor more than the 16");
    unlink(path);
}
END_TEST

/* "scmi,resets=" and items, each "%s" the stand-in chip's path. */
static void expect_resets_refused(const char *items, const char *value)
{
    char opts[400] = "resets=";
    const char *at;

    while ((at = strstr(items, "%s"))) {
        strncat(opts, items, (size_t)(at - items));
        strcat(opts, chip);
        items = at + 2;
    }
    strcat(opts, items);
    expect_option_refused(opts, value);
}

START_TEST(bad_resets_are_refused_naming_the_item)
{
    chip = gpio_stub_start(CHIP_LINES, NULL);
    expect_resets_refused("nic:%s:8", "has a line past the chip's last");
    expect_resets_refused("nic:%s:two", "has a line that is not a decimal");
    expect_resets_refused("nic:%s:-1", "has a line that is not a decimal");
    expect_resets_refused("nic:%s", "'nic' is not a whole NAME:CHIP:LINE");
    expect_resets_refused("nic:%s:1:active-low:uart",
                          "'uart' is not a whole NAME:CHIP:LINE");
    expect_resets_refused("n/c:%s:1", "has a name that is not");
    expect_resets_refused("nic:/nonexistent/gpiochip0:1",
                          "'nic:/nonexistent/gpiochip0:1' has a chip that "
                          "cannot be opened");
    expect_resets_refused("nic:/dev/null:1",
                          "has a chip that is not a GPIO chip");
    /* A line dom0 holds, or another domain. */
    gpio_stub_hold(3, true);
    expect_resets_refused("nic:%s:3", "has a line that is in use in dom0");
    gpio_stub_hold(3, false);
    expect_resets_refused("nic:%s:1:uart:%s:1:active-low",
                          "active-low' has a line that is in use in dom0");
    ck_assert_uint_eq(gpio_stub_requests_held(), 0);
    gpio_stub_stop();
}
END_TEST

START_TEST(a_seventeenth_reset_domain_is_refused_and_the_others_given_back)
{
    /* The chip by a short relative name, for 17 items in one spec. */
    const char *link = "xc";
    char opts[256] = "resets=";

    chip = gpio_stub_start(17, NULL);
    unlink(link);
    ck_assert_int_eq(symlink(chip, link), 0);
    for (unsigned i = 0; i < 17; i++)
        snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
                 "%sr%u:%s:%u", i ? ":" : "", i, link, i);
    expect_option_refused(opts, "'r16:xc:16' is one reset "
                                "domain more than the 16");
    ck_assert_uint_eq(gpio_stub_requests_made(), 16);
    ck_assert_uint_eq(gpio_stub_requests_held(), 0);
    unlink(link);
    gpio_stub_stop();
}
END_TEST

static Suite *scmi_suite(void)
{
    Suite *s = suite_create("scmi");
    TCase *tc = tcase_create("protocols");

    tcase_add_test(tc, base_protocol_answers_linux_s_discovery);
    tcase_add_test(tc, message_attributes_find_the_messages_a_protocol_has);
    tcase_add_test(tc, sensor_descriptions_come_page_by_page_from_the_index);
    tcase_add_test(tc, sensor_readings_are_the_configured_values);
    tcase_add_test(tc, a_device_without_sensors_has_the_protocol_and_none);
    tcase_add_test(tc, hwmon_sensors_are_read_when_the_guest_asks);
    tcase_add_test(tc, bad_options_are_refused_naming_the_value);
    suite_add_tcase(s, tc);
    tc = tcase_create("resets");
    tcase_add_test(tc, reset_domains_are_described_as_linux_asks);
    tcase_add_test(tc, lines_are_held_deasserted_from_start);
    tcase_add_test(tc, explicit_assert_and_deassert_drive_the_line);
    tcase_add_test(
        tc, an_autonomous_reset_pulses_the_line_and_leaves_it_deasserted);
    tcase_add_test(tc,
                   a_device_reset_deasserts_every_domain_and_keeps_the_lines);
    tcase_add_test(tc, xvdm_gives_the_lines_back_deasserted_when_it_stops);
    tcase_add_test(tc, bad_resets_are_refused_naming_the_item);
    tcase_add_test(
        tc, a_seventeenth_reset_domain_is_refused_and_the_others_given_back);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc, hostile_commands_get_the_spec_s_status_and_a_line);
    tcase_add_test(tc,
                   hostile_resets_get_the_spec_s_status_and_leave_the_lines);
    tcase_add_test(tc,
                   chains_without_header_or_room_for_a_status_are_given_back);
    tcase_add_test(tc, a_response_that_does_not_fit_is_comms_error_with_a_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("notifications");
    tcase_add_test(tc,
                   trip_point_events_come_on_crossings_while_notify_is_enabled);
    tcase_add_test(
        tc, events_without_a_buffer_are_dropped_counted_and_the_device_goes_on);
    tcase_add_test(tc, hostile_notify_and_trip_configs_get_the_spec_s_status);
    tcase_add_test(tc, reset_clears_notifications_and_trip_points);
    tcase_add_test(tc, no_event_for_a_crossing_from_a_value_never_read);
    tcase_add_test(tc, setting_one_trip_point_keeps_the_others_crossing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_all_modes(scmi_suite);
}
