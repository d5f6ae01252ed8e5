/* SPDX-License-Identifier: MIT */
/* Test side: an evdev device behind its node (see evdev-stub.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "evdev-stub.h"
#include "node-stub.h"

#define LONG_BITS (8 * sizeof(unsigned long))
#define LONGS(bits) (((bits) + LONG_BITS - 1) / LONG_BITS)

struct stub_device {
    const char *name, *uniq;
    struct input_id id;
    unsigned long prop[LONGS(INPUT_PROP_CNT)];
    /* Bitmaps evdev answers EVIOCGBIT with: types (0) and each type's
     * codes; evdev has none for the other types (EV_REP, EV_PWR). */
    unsigned long ev[LONGS(EV_CNT)], key[LONGS(KEY_CNT)], rel[LONGS(REL_CNT)],
        abs[LONGS(ABS_CNT)], msc[LONGS(MSC_CNT)], led[LONGS(LED_CNT)],
        snd[LONGS(SND_CNT)], ff[LONGS(FF_CNT)], sw[LONGS(SW_CNT)];
    struct input_absinfo absinfo[ABS_CNT];
};

static node_stub_ioctl_fn evdev_stub_ioctl;

/* The module calls ioctl() and reads from xvdm's loop thread, the test
 * injects events from its own, the feeder moves them to the node. */
static pthread_mutex_t stub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    struct node_stub node;
    struct stub_device d;
    int master, slave; /* the pty: the test's ends */
    struct input_event buf[EVDEV_STUB_BUFFER];
    unsigned head, tail; /* evdev's client buffer: empty when equal */
    bool grabbed, elsewhere;
    bool stop, unplugged;
    pthread_t feeder;
    unsigned char written[sizeof(struct input_event)];
    size_t nr_written;
} stub;

static void set_bit(unsigned long *bits, unsigned n)
{
    bits[n / LONG_BITS] |= 1UL << (n % LONG_BITS);
}

static void describe_keyboard(struct stub_device *d)
{
    d->name = "xvdm test keyboard";
    d->uniq = "kbd-0001";
    d->id = (struct input_id){BUS_USB, 0x046d, 0xc31c, 0x0111};
    set_bit(d->ev, EV_SYN);
    set_bit(d->ev, EV_KEY);
    set_bit(d->ev, EV_MSC);
    set_bit(d->ev, EV_LED);
    set_bit(d->ev, EV_REP);
    for (unsigned k = KEY_ESC; k <= KEY_Z; k++)
        set_bit(d->key, k);
    set_bit(d->key, KEY_CAPSLOCK);
    set_bit(d->msc, MSC_SCAN);
    set_bit(d->led, LED_NUML);
    set_bit(d->led, LED_CAPSL);
    set_bit(d->led, LED_SCROLLL);
}

static void describe_tablet(struct stub_device *d)
{
    d->name = "xvdm test tablet";
    d->id = (struct input_id){BUS_VIRTUAL, 0, 0, 1};
    set_bit(d->prop, INPUT_PROP_DIRECT);
    set_bit(d->ev, EV_SYN);
    set_bit(d->ev, EV_KEY);
    set_bit(d->ev, EV_ABS);
    set_bit(d->key, BTN_TOUCH);
    set_bit(d->abs, ABS_X);
    set_bit(d->abs, ABS_Y);
    set_bit(d->abs, ABS_PRESSURE);
    d->absinfo[ABS_X] = (struct input_absinfo){.maximum = 32767};
    d->absinfo[ABS_Y] = (struct input_absinfo){
        .value = 100, .maximum = 32767, .fuzz = 4, .flat = 8, .resolution = 12};
    d->absinfo[ABS_PRESSURE] = (struct input_absinfo){.maximum = 255};
}

/* Bytes the module has not read from the node yet. What is written to
 * a pty reaches its line discipline later, from a kernel work item, and
 * FIONREAD counts only what has: on a loaded machine that can be well
 * past any fixed wait. poll() of the node, when it finds nothing there,
 * waits for that work, so what FIONREAD then says is all of it. */
static int stub_in_node(void)
{
    struct pollfd p = {.fd = stub.slave, .events = POLLIN};
    int n = 0;

    node_stub_require(poll(&p, 1, 0) >= 0);
    node_stub_require(ioctl(stub.slave, FIONREAD, &n) == 0);
    return n;
}

/* Once the module has read all the node had, the buffer's events go
 * into it, all in one write: a pty passes them whole into a line
 * discipline with room for them. */
static void stub_feed(void)
{
    struct input_event out[EVDEV_STUB_BUFFER];
    unsigned n = 0;

    if (stub_in_node() > 0)
        return;
    while (stub.tail != stub.head) {
        out[n++] = stub.buf[stub.tail];
        stub.tail = (stub.tail + 1) % EVDEV_STUB_BUFFER;
    }
    if (!n)
        return;
    node_stub_require(write(stub.master, out, n * sizeof(out[0])) ==
                      (ssize_t)(n * sizeof(out[0])));
}

static void *stub_feeder(void *arg)
{
    for (;;) {
        pthread_mutex_lock(&stub_lock);
        if (stub.stop) {
            pthread_mutex_unlock(&stub_lock);
            return NULL;
        }
        if (!stub.unplugged)
            stub_feed();
        pthread_mutex_unlock(&stub_lock);
        usleep(1000);
    }
}

const char *evdev_stub_start(enum evdev_stub_kind kind)
{
    struct termios t;
    struct stat st;

    pthread_mutex_lock(&stub_lock);
    memset(&stub, 0, sizeof(stub));
    if (kind == EVDEV_STUB_KEYBOARD)
        describe_keyboard(&stub.d);
    else
        describe_tablet(&stub.d);
    stub.master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    node_stub_require(stub.master >= 0 && grantpt(stub.master) == 0 &&
                      unlockpt(stub.master) == 0);
    node_stub_require(
        ptsname_r(stub.master, stub.node.path, sizeof(stub.node.path)) == 0);
    stub.slave = open(stub.node.path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    node_stub_require(stub.slave >= 0 && tcgetattr(stub.slave, &t) == 0);
    cfmakeraw(&t);
    node_stub_require(tcsetattr(stub.slave, TCSANOW, &t) == 0);
    node_stub_require(fstat(stub.slave, &st) == 0);
    stub.node.dev = st.st_dev;
    stub.node.ino = st.st_ino;
    node_stub_answer(evdev_stub_ioctl);
    node_stub_require(pthread_create(&stub.feeder, NULL, stub_feeder, NULL) ==
                      0);
    pthread_mutex_unlock(&stub_lock);
    return stub.node.path;
}

void evdev_stub_stop(void)
{
    pthread_mutex_lock(&stub_lock);
    stub.stop = true;
    pthread_mutex_unlock(&stub_lock);
    pthread_join(stub.feeder, NULL);
    close(stub.slave);
    if (!stub.unplugged)
        close(stub.master);
}

/* A pty whose master is closed hangs up, as evdev's node does when its
 * device is gone. */
void evdev_stub_unplug(void)
{
    pthread_mutex_lock(&stub_lock);
    stub.unplugged = true;
    close(stub.master);
    pthread_mutex_unlock(&stub_lock);
}

/* evdev's __pass_event(): a full buffer keeps SYN_DROPPED and the
 * newest event, and drops the rest. */
void evdev_stub_event(uint16_t type, uint16_t code, int32_t value)
{
    struct input_event ev = {.type = type, .code = code, .value = value};
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ev.input_event_sec = now.tv_sec;
    ev.input_event_usec = now.tv_nsec / 1000;
    pthread_mutex_lock(&stub_lock);
    stub.buf[stub.head] = ev;
    stub.head = (stub.head + 1) % EVDEV_STUB_BUFFER;
    if (stub.head == stub.tail) {
        stub.tail = (stub.head + EVDEV_STUB_BUFFER - 2) % EVDEV_STUB_BUFFER;
        stub.buf[stub.tail] = (struct input_event){
            .input_event_sec = ev.input_event_sec,
            .input_event_usec = ev.input_event_usec,
            .type = EV_SYN,
            .code = SYN_DROPPED,
        };
    }
    pthread_mutex_unlock(&stub_lock);
}

void evdev_stub_raw(const void *buf, size_t len)
{
    pthread_mutex_lock(&stub_lock);
    node_stub_require(write(stub.master, buf, len) == (ssize_t)len);
    pthread_mutex_unlock(&stub_lock);
}

unsigned evdev_stub_unread(void)
{
    unsigned n;

    pthread_mutex_lock(&stub_lock);
    n = (stub.head + EVDEV_STUB_BUFFER - stub.tail) % EVDEV_STUB_BUFFER +
        (unsigned)stub_in_node() / sizeof(struct input_event);
    pthread_mutex_unlock(&stub_lock);
    return n;
}

unsigned evdev_stub_in_node(void)
{
    unsigned n;

    pthread_mutex_lock(&stub_lock);
    n = (unsigned)stub_in_node() / sizeof(struct input_event);
    pthread_mutex_unlock(&stub_lock);
    return n;
}

bool evdev_stub_grabbed(void)
{
    bool g;

    pthread_mutex_lock(&stub_lock);
    g = stub.grabbed;
    pthread_mutex_unlock(&stub_lock);
    return g;
}

void evdev_stub_grabbed_elsewhere(bool held)
{
    pthread_mutex_lock(&stub_lock);
    stub.elsewhere = held;
    pthread_mutex_unlock(&stub_lock);
}

int evdev_stub_written(struct input_event *ev, unsigned ms)
{
    struct pollfd p = {.fd = stub.master, .events = POLLIN};

    while (stub.nr_written < sizeof(*ev)) {
        ssize_t n;

        if (poll(&p, 1, (int)ms) != 1)
            return 0;
        n = read(stub.master, stub.written + stub.nr_written,
                 sizeof(*ev) - stub.nr_written);
        node_stub_require(n > 0);
        stub.nr_written += (size_t)n;
    }
    memcpy(ev, stub.written, sizeof(*ev));
    stub.nr_written = 0;
    return 1;
}

/* evdev's str_to_user(): the string and its NUL, as much as fits;
 * ENOENT when the device has none. */
static int stub_string(const char *s, void *arg, unsigned size)
{
    unsigned len;

    if (!s)
        return -ENOENT;
    len = (unsigned)strlen(s) + 1;
    if (len > size)
        len = size;
    memcpy(arg, s, len);
    return (int)len;
}

/* evdev's bits_to_user(): whole longs, as many as fit. */
static int stub_bits(const unsigned long *bits, unsigned max, void *arg,
                     unsigned size)
{
    unsigned len = (unsigned)(LONGS(max + 1) * sizeof(long));

    if (len > size)
        len = size;
    memcpy(arg, bits, len);
    return (int)len;
}

static int stub_eviocgbit(unsigned type, void *arg, unsigned size)
{
    const struct stub_device *d = &stub.d;

    switch (type) {
    case 0:
        return stub_bits(d->ev, EV_MAX, arg, size);
    case EV_KEY:
        return stub_bits(d->key, KEY_MAX, arg, size);
    case EV_REL:
        return stub_bits(d->rel, REL_MAX, arg, size);
    case EV_ABS:
        return stub_bits(d->abs, ABS_MAX, arg, size);
    case EV_MSC:
        return stub_bits(d->msc, MSC_MAX, arg, size);
    case EV_LED:
        return stub_bits(d->led, LED_MAX, arg, size);
    case EV_SND:
        return stub_bits(d->snd, SND_MAX, arg, size);
    case EV_FF:
        return stub_bits(d->ff, FF_MAX, arg, size);
    case EV_SW:
        return stub_bits(d->sw, SW_MAX, arg, size);
    default:
        return -EINVAL;
    }
}

static int stub_grab(void *arg)
{
    if (arg) {
        if (stub.grabbed || stub.elsewhere)
            return -EBUSY;
        stub.grabbed = true;
    } else {
        if (!stub.grabbed)
            return -EINVAL;
        stub.grabbed = false;
    }
    return 0;
}

/* evdev_do_ioctl(), for what the stand-in's device has. */
static int stub_answer(unsigned long req, void *arg)
{
    unsigned nr = _IOC_NR(req), size = _IOC_SIZE(req);

    if (req == EVIOCGVERSION) {
        *(int *)arg = EV_VERSION;
        return 0;
    }
    if (req == EVIOCGID) {
        memcpy(arg, &stub.d.id, sizeof(stub.d.id));
        return 0;
    }
    if (req == EVIOCGRAB)
        return stub_grab(arg);
    if (_IOC_DIR(req) != _IOC_READ)
        return -EINVAL;
    if (nr == _IOC_NR(EVIOCGNAME(0)))
        return stub_string(stub.d.name, arg, size);
    if (nr == _IOC_NR(EVIOCGUNIQ(0)))
        return stub_string(stub.d.uniq, arg, size);
    if (nr == _IOC_NR(EVIOCGPROP(0)))
        return stub_bits(stub.d.prop, INPUT_PROP_MAX, arg, size);
    if ((nr & ~EV_MAX) == _IOC_NR(EVIOCGBIT(0, 0)))
        return stub_eviocgbit(nr & EV_MAX, arg, size);
    if ((nr & ~ABS_MAX) == _IOC_NR(EVIOCGABS(0))) {
        memcpy(arg, &stub.d.absinfo[nr & ABS_MAX],
               size < sizeof(struct input_absinfo)
                   ? size
                   : sizeof(struct input_absinfo));
        return 0;
    }
    return -EINVAL;
}

/* Only evdev's requests ('E') are the device's: the test's own terminal
 * requests on its end (FIONREAD) go on to the pty. */
static int evdev_stub_ioctl(int fd, unsigned long req, void *arg)
{
    int ret;

    if (_IOC_TYPE(req) != 'E' || !node_stub_is(&stub.node, fd))
        return NODE_STUB_PASS;
    pthread_mutex_lock(&stub_lock);
    ret = stub_answer(req, arg);
    pthread_mutex_unlock(&stub_lock);
    return ret;
}
