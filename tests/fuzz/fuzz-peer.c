/* SPDX-License-Identifier: MIT */
/* Fuzz side: the host end of the fuzzed device (see fuzz-peer.h). */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/i2c.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../evdev-stub.h"
#include "../gpio-stub.h"
#include "../i2c-stub.h"
#include "fuzz-peer.h"

#define FUZZ_TAP "xfuzz0"

static int peer_fd = -1;
static struct sockaddr_un con_addr = {.sun_family = AF_UNIX};
/* vsock: the dom0 service at uds=PATH's PATH_<FUZZ_VSOCK_PORT>, whose
 * latest accepted connection is peer_fd. */
static int vsock_listen_fd = -1;
static struct sockaddr_un vsock_addr = {.sun_family = AF_UNIX};

static int fail(const char *what)
{
    int err = errno;

    fprintf(stderr, "fuzz-peer: %s: %s\n", what, strerror(err));
    return -err;
}

/* IPv6 off, so the tap going up sends nothing of its own to the guest. */
static void quiet_ipv6(void)
{
    int fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);

    if (fd < 0)
        return; /* no IPv6 in this kernel */
    if (write(fd, "1", 1) != 1)
        fprintf(stderr, "fuzz-peer: cannot turn IPv6 off\n");
    close(fd);
}

/* A persistent tap FUZZ_TAP, up, with no queue attached (for tap=). */
static int make_tap(void)
{
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), s, ret = 0;

    if (fd < 0)
        return fail("/dev/net/tun");
    snprintf(ifr.ifr_name, IFNAMSIZ, FUZZ_TAP);
    if (ioctl(fd, TUNSETIFF, &ifr) || ioctl(fd, TUNSETPERSIST, 1))
        ret = fail("making the tap " FUZZ_TAP);
    close(fd);
    s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (!ret && (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr)))
        ret = fail("reading " FUZZ_TAP "'s flags");
    ifr.ifr_flags |= IFF_UP;
    if (!ret && ioctl(s, SIOCSIFFLAGS, &ifr))
        ret = fail("bringing " FUZZ_TAP " up");
    if (s >= 0)
        close(s);
    return ret;
}

/* A namespace of our own with the tap, and a packet socket that sends on
 * it (protocol 0: it receives nothing). */
static const char *net_setup(void)
{
    struct sockaddr_ll sll = {.sll_family = AF_PACKET};

    if (unshare(CLONE_NEWNET)) {
        fail("unshare(CLONE_NEWNET) (needs CAP_NET_ADMIN)");
        return NULL;
    }
    quiet_ipv6();
    if (make_tap())
        return NULL;
    sll.sll_ifindex = (int)if_nametoindex(FUZZ_TAP);
    peer_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (peer_fd < 0 || bind(peer_fd, (struct sockaddr *)&sll, sizeof(sll))) {
        fail("a packet socket on " FUZZ_TAP);
        return NULL;
    }
    return "net,tap=" FUZZ_TAP;
}

static char con_dir[] = "/tmp/xvdm-fuzz-XXXXXX";

/* libFuzzer exits through exit() after its time or a crash report. */
static void console_cleanup(void)
{
    unlink(con_addr.sun_path);
    unlink(vsock_addr.sun_path);
    rmdir(con_dir);
}

static const char *console_setup(void)
{
    static char spec[sizeof(con_addr.sun_path) + 32];

    if (!mkdtemp(con_dir)) {
        fail("mkdtemp");
        return NULL;
    }
    snprintf(con_addr.sun_path, sizeof(con_addr.sun_path), "%s/console",
             con_dir);
    snprintf(spec, sizeof(spec), "console,socket=%s", con_addr.sun_path);
    return atexit(console_cleanup) ? NULL : spec;
}

/* uds=DIR/vsock, and a listener at DIR/vsock_FUZZ_VSOCK_PORT for the
 * guest's connections (xvdm unlinks its own socket when it stops). */
static const char *vsock_setup(void)
{
    static char spec[sizeof(vsock_addr.sun_path) + 32];

    if (!mkdtemp(con_dir)) {
        fail("mkdtemp");
        return NULL;
    }
    snprintf(vsock_addr.sun_path, sizeof(vsock_addr.sun_path), "%s/vsock_%u",
             con_dir, FUZZ_VSOCK_PORT);
    vsock_listen_fd =
        socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (vsock_listen_fd < 0 ||
        bind(vsock_listen_fd, (struct sockaddr *)&vsock_addr,
             sizeof(vsock_addr)) ||
        listen(vsock_listen_fd, 64)) {
        fail(vsock_addr.sun_path);
        return NULL;
    }
    snprintf(spec, sizeof(spec), "vsock,cid=3,uds=%s/vsock", con_dir);
    return atexit(console_cleanup) ? NULL : spec;
}

/* i2c: dom0's adapter is the stand-in of i2c-stub.h (the binary exports
 * its ioctl()), with chips at 0x50 and 0x68; addrs= also lists 0x51,
 * where none answers, as test-i2c has it. */
static void i2c_cleanup(void)
{
    i2c_stub_stop();
}

static const char *i2c_setup(unsigned long funcs)
{
    static const uint16_t chips[] = {0x50, 0x68};
    static char spec[128];
    const char *bus = i2c_stub_start(funcs, chips, 2);

    snprintf(spec, sizeof(spec), "i2c,bus=%s,addrs=0x50-0x51:0x68", bus);
    return atexit(i2c_cleanup) ? NULL : spec;
}

/* gpio: dom0's chip is the stand-in of gpio-stub.h, four named lines
 * and one unnamed, the guest given the first four; the bytes the fuzzer
 * sends from the host end drive them (fuzz_peer_send()). */
static bool gpio_on;

static void gpio_cleanup(void)
{
    gpio_stub_stop();
}

static const char *gpio_setup(void)
{
    static const char *const names[] = {"in", "out", "irq", "", NULL};
    static char spec[128];
    const char *chip = gpio_stub_start(5, names);

    snprintf(spec, sizeof(spec), "gpio,chip=%s,lines=0-3", chip);
    gpio_on = true;
    return atexit(gpio_cleanup) ? NULL : spec;
}

/* scmi: two fixed sensors (ids 0 and 1, as the seeds expect) and one
 * hwmon= sensor (id 2) on a file standing in for dom0's, polled every
 * 10 ms; the fuzzer's bytes from the host end are its new values. Two
 * reset domains on lines of the stand-in chip, one active-low: the
 * guest's resets drive them. */
static char scmi_hwmon[] = "/tmp/xvdm-fuzz-hwmon-XXXXXX";
static bool scmi_on;

static void scmi_cleanup(void)
{
    unlink(scmi_hwmon);
    gpio_stub_stop();
}

static void scmi_write(const char *text)
{
    int fd = open(scmi_hwmon, O_WRONLY | O_TRUNC | O_CLOEXEC);

    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        abort();
    close(fd);
}

static const char *scmi_setup(void)
{
    static char spec[320];
    const char *chip = gpio_stub_start(2, NULL);
    int fd = mkstemp(scmi_hwmon);

    if (fd < 0) {
        fail(scmi_hwmon);
        return NULL;
    }
    close(fd);
    scmi_write("40000\n");
    snprintf(spec, sizeof(spec),
             "scmi,sensors=soc:temp:45500:vin:voltage:900,"
             "hwmon=cpu:temp:%s,poll-ms=10,"
             "resets=nic:%s:0:uart:%s:1:active-low",
             scmi_hwmon, chip, chip);
    scmi_on = true;
    return atexit(scmi_cleanup) ? NULL : spec;
}

/* scmi: the first two bytes, a signed 16-bit number of degrees, become
 * the hwmon file's value; then wait out a poll, so that the device reads
 * it within the input. */
static void scmi_send(const uint8_t *buf, size_t len)
{
    char text[32];

    if (len < 2)
        return;
    snprintf(text, sizeof(text), "%d\n",
             (int16_t)(buf[0] | buf[1] << 8) * 1000);
    scmi_write(text);
    usleep(12000);
}

/* input: dom0's device is the keyboard of evdev-stub.h, whose LEDs the
 * guest may set; the bytes the fuzzer sends from the host end are its
 * events (fuzz_peer_send()). */
static bool input_on;

static void input_cleanup(void)
{
    evdev_stub_stop();
}

static const char *input_setup(void)
{
    static char spec[128];
    const char *node = evdev_stub_start(EVDEV_STUB_KEYBOARD);

    snprintf(spec, sizeof(spec), "input,evdev=%s", node);
    input_on = true;
    return atexit(input_cleanup) ? NULL : spec;
}

/* input: each 8 bytes are an event from the device (type, code, value;
 * little-endian), overflowing evdev's buffer as the kernel's does; fewer
 * left over go into the node as they are, part of an event, as from a
 * node that is not quite evdev. */
static void input_send(const uint8_t *buf, size_t len)
{
    for (; len >= 8; buf += 8, len -= 8) {
        uint16_t type = (uint16_t)(buf[0] | buf[1] << 8);
        uint16_t code = (uint16_t)(buf[2] | buf[3] << 8);
        uint32_t value =
            buf[4] | buf[5] << 8 | buf[6] << 16 | (uint32_t)buf[7] << 24;

        evdev_stub_event(type, code, (int32_t)value);
    }
    if (len)
        evdev_stub_raw(buf, len);
    /* Give the module the time to read them (while the guest has
     * buffers), so that they reach the guest within the input. */
    for (unsigned tries = 0; tries < 20 && evdev_stub_unread(); tries++)
        usleep(250);
}

const char *fuzz_peer_setup(const char *name)
{
    if (!strcmp(name, "i2c"))
        return i2c_setup(I2C_FUNC_I2C | I2C_FUNC_SMBUS_QUICK);
    /* An SMBus-only adapter: transactions go as SMBus commands. */
    if (!strcmp(name, "i2c-smbus"))
        return i2c_setup(I2C_FUNC_SMBUS_QUICK | I2C_FUNC_SMBUS_BYTE |
                         I2C_FUNC_SMBUS_BYTE_DATA | I2C_FUNC_SMBUS_WORD_DATA |
                         I2C_FUNC_SMBUS_BLOCK_DATA | I2C_FUNC_SMBUS_I2C_BLOCK);
    if (!strcmp(name, "gpio"))
        return gpio_setup();
    if (!strcmp(name, "scmi"))
        return scmi_setup();
    if (!strcmp(name, "input"))
        return input_setup();
    if (!strcmp(name, "net"))
        return net_setup();
    if (!strcmp(name, "console"))
        return console_setup();
    if (!strcmp(name, "vsock"))
        return vsock_setup();
    return name;
}

/* The guest's newest connection to the service becomes peer_fd; older
 * ones are closed, which the guest sees as the service hanging up. */
static void vsock_accept(void)
{
    int fd;

    while ((fd = accept4(vsock_listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (peer_fd >= 0)
            close(peer_fd);
        peer_fd = fd;
    }
}

int fuzz_peer_connect(void)
{
    if (!con_addr.sun_path[0])
        return 0;
    peer_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (peer_fd < 0 ||
        connect(peer_fd, (struct sockaddr *)&con_addr, sizeof(con_addr)))
        return fail(con_addr.sun_path);
    return 0;
}

void fuzz_peer_send(const void *buf, size_t len)
{
    if (vsock_listen_fd >= 0)
        vsock_accept();
    /* A frame the tap refuses or a full socket is the world being
     * unhelpful, which is fine: the guest must cope either way. */
    if (peer_fd >= 0)
        (void)send(peer_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    /* gpio: each byte drives line (bits 0-2, modulo 5) to level (bit 3). */
    for (size_t i = 0; gpio_on && i < len; i++) {
        uint8_t b = ((const uint8_t *)buf)[i];

        gpio_stub_drive((b & 7) % 5, (b >> 3) & 1);
    }
    if (scmi_on)
        scmi_send(buf, len);
    if (input_on)
        input_send(buf, len);
}

void fuzz_peer_drain(void)
{
    struct input_event ev;
    char buf[4096];
    ssize_t n;

    /* input: the status events (LEDs) the guest had written to the
     * device, so that its writes never find the node full. */
    while (input_on && evdev_stub_written(&ev, 0))
        continue;
    if (vsock_listen_fd >= 0)
        vsock_accept();
    if (peer_fd < 0)
        return;
    while ((n = recv(peer_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        continue;
    /* xvdm let the console's client go: be the next one, or every later
     * input would run without a host end. */
    if (n == 0 && con_addr.sun_path[0]) {
        close(peer_fd);
        if (fuzz_peer_connect())
            abort();
    } else if (n == 0 && vsock_listen_fd >= 0) {
        close(peer_fd); /* the device reset dropped the connection */
        peer_fd = -1;
    }
}
