/* SPDX-License-Identifier: MIT */
/* Test side: a GPIO chip behind its character device (see gpio-stub.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gpio-stub.h"
#include "node-stub.h"

#define STUB_FLAGS_KNOWN                                                       \
    (GPIO_V2_LINE_FLAG_ACTIVE_LOW | GPIO_V2_LINE_FLAG_INPUT |                  \
     GPIO_V2_LINE_FLAG_OUTPUT | GPIO_V2_LINE_FLAG_EDGE_RISING |                \
     GPIO_V2_LINE_FLAG_EDGE_FALLING | GPIO_V2_LINE_FLAG_OPEN_DRAIN |           \
     GPIO_V2_LINE_FLAG_OPEN_SOURCE | GPIO_V2_LINE_FLAG_BIAS_PULL_UP |          \
     GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN | GPIO_V2_LINE_FLAG_BIAS_DISABLED)
#define STUB_EDGES                                                             \
    (GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING)

static node_stub_ioctl_fn gpio_stub_ioctl;

struct stub_line {
    char name[GPIO_MAX_NAME_SIZE];
    bool held; /* by a consumer in dom0 */
    int wfd;   /* its request's pipe, write end; -1: not requested */
    dev_t dev; /* the pipe, as the module's fd fstat()s */
    ino_t ino;
    uint64_t flags;
    int driven, out; /* out: the logical value, inverted when active-low */
    unsigned seqno;
    struct gpio_v2_line_event late[16]; /* see gpio_stub_late_events() */
    unsigned nr_late;
    unsigned times_at[2]; /* the output went to physical level 0, 1 */
};

/* The module calls ioctl() from xvdm's loop thread, the test drives
 * lines from its own. */
static pthread_mutex_t stub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool on;
    struct node_stub node;
    unsigned n;
    struct stub_line lines[GPIO_STUB_LINES_MAX];
    unsigned made;
    bool late;
} stub;

const char *gpio_stub_start(unsigned n, const char *const *names)
{
    node_stub_require(n <= GPIO_STUB_LINES_MAX);
    pthread_mutex_lock(&stub_lock);
    memset(&stub, 0, sizeof(stub));
    node_stub_make(&stub.node, "xvdm-gpiochip-");
    node_stub_answer(gpio_stub_ioctl);
    stub.n = n;
    for (unsigned i = 0; i < GPIO_STUB_LINES_MAX; i++) {
        stub.lines[i].wfd = -1;
        if (names && i < n && names[i])
            strncpy(stub.lines[i].name, names[i], GPIO_MAX_NAME_SIZE - 1);
    }
    stub.on = true;
    pthread_mutex_unlock(&stub_lock);
    return stub.node.path;
}

/* Requests whose fd the module closed end, as the kernel's do. */
static void stub_reap(void)
{
    for (unsigned i = 0; i < stub.n; i++) {
        struct stub_line *l = &stub.lines[i];
        struct pollfd p = {.fd = l->wfd, .events = POLLOUT};

        if (l->wfd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLERR)) {
            close(l->wfd);
            l->wfd = -1;
            l->flags = 0;
        }
    }
}

void gpio_stub_stop(void)
{
    pthread_mutex_lock(&stub_lock);
    unlink(stub.node.path);
    for (unsigned i = 0; i < stub.n; i++)
        if (stub.lines[i].wfd >= 0)
            close(stub.lines[i].wfd);
    stub.on = false;
    pthread_mutex_unlock(&stub_lock);
}

void gpio_stub_hold(unsigned line, bool held)
{
    pthread_mutex_lock(&stub_lock);
    stub.lines[line].held = held;
    pthread_mutex_unlock(&stub_lock);
}

static void stub_write_event(struct stub_line *l,
                             const struct gpio_v2_line_event *ev)
{
    /* The kernel's event fifo drops what it cannot hold: so does the
     * pipe (non-blocking), rather than block the driving thread. */
    if (write(l->wfd, ev, sizeof(*ev)) != (ssize_t)sizeof(*ev))
        node_stub_require(errno == EAGAIN);
}

static void stub_event(struct stub_line *l, unsigned offset, uint32_t id)
{
    struct gpio_v2_line_event ev = {.id = id, .offset = offset};
    struct timespec now;

    /* The kernel's default event clock. */
    clock_gettime(CLOCK_MONOTONIC, &now);
    ev.timestamp_ns = (uint64_t)now.tv_sec * 1000000000u + now.tv_nsec;
    ev.seqno = ev.line_seqno = ++l->seqno;
    if (!stub.late)
        stub_write_event(l, &ev);
    else if (l->nr_late < sizeof(l->late) / sizeof(l->late[0]))
        l->late[l->nr_late++] = ev;
}

void gpio_stub_late_events(bool late)
{
    pthread_mutex_lock(&stub_lock);
    stub.late = late;
    for (unsigned i = 0; !late && i < stub.n; i++) {
        struct stub_line *l = &stub.lines[i];

        for (unsigned j = 0; l->wfd >= 0 && j < l->nr_late; j++)
            stub_write_event(l, &l->late[j]);
        l->nr_late = 0;
    }
    pthread_mutex_unlock(&stub_lock);
}

void gpio_stub_drive(unsigned line, int level)
{
    struct stub_line *l = &stub.lines[line];

    pthread_mutex_lock(&stub_lock);
    stub_reap();
    if (l->wfd >= 0 && (l->flags & GPIO_V2_LINE_FLAG_INPUT) &&
        level != l->driven) {
        if (level && (l->flags & GPIO_V2_LINE_FLAG_EDGE_RISING))
            stub_event(l, line, GPIO_V2_LINE_EVENT_RISING_EDGE);
        if (!level && (l->flags & GPIO_V2_LINE_FLAG_EDGE_FALLING))
            stub_event(l, line, GPIO_V2_LINE_EVENT_FALLING_EDGE);
    }
    l->driven = level;
    pthread_mutex_unlock(&stub_lock);
}

uint64_t gpio_stub_flags(unsigned line)
{
    uint64_t flags;

    pthread_mutex_lock(&stub_lock);
    stub_reap();
    flags = stub.lines[line].flags;
    pthread_mutex_unlock(&stub_lock);
    return flags;
}

/* The physical level: an output's value, inverted when active-low. */
static int stub_level_of(const struct stub_line *l)
{
    if (!(l->flags & GPIO_V2_LINE_FLAG_OUTPUT))
        return l->driven;
    return l->out ^ !!(l->flags & GPIO_V2_LINE_FLAG_ACTIVE_LOW);
}

/* The line's request now has flags and output value out: count the
 * level it goes to if it changes. */
static void stub_output(struct stub_line *l, uint64_t flags, int out)
{
    int before = stub_level_of(l), after;

    l->flags = flags;
    l->out = out;
    after = stub_level_of(l);
    if ((flags & GPIO_V2_LINE_FLAG_OUTPUT) && after != before)
        l->times_at[after]++;
}

int gpio_stub_level(unsigned line)
{
    int level;

    pthread_mutex_lock(&stub_lock);
    stub_reap();
    level = stub_level_of(&stub.lines[line]);
    pthread_mutex_unlock(&stub_lock);
    return level;
}

unsigned gpio_stub_times_at(unsigned line, int level)
{
    unsigned n;

    pthread_mutex_lock(&stub_lock);
    n = stub.lines[line].times_at[level];
    pthread_mutex_unlock(&stub_lock);
    return n;
}

unsigned gpio_stub_requests_held(void)
{
    unsigned n = 0;

    pthread_mutex_lock(&stub_lock);
    stub_reap();
    for (unsigned i = 0; i < stub.n; i++)
        n += stub.lines[i].wfd >= 0;
    pthread_mutex_unlock(&stub_lock);
    return n;
}

unsigned gpio_stub_requests_made(void)
{
    unsigned n;

    pthread_mutex_lock(&stub_lock);
    n = stub.made;
    pthread_mutex_unlock(&stub_lock);
    return n;
}

static bool stub_zero(const uint32_t *words, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (words[i])
            return false;
    return true;
}

/* gpiolib-cdev's checks of a line config; the output value it sets into
 * *out. */
static int stub_config(const struct gpio_v2_line_config *c, int *out)
{
    uint64_t f = c->flags;

    if (!stub_zero(c->padding, 5) || c->num_attrs > GPIO_V2_LINE_NUM_ATTRS_MAX)
        return -EINVAL;
    if ((f & ~STUB_FLAGS_KNOWN) ||
        ((f & GPIO_V2_LINE_FLAG_INPUT) && (f & GPIO_V2_LINE_FLAG_OUTPUT)) ||
        ((f & STUB_EDGES) && !(f & GPIO_V2_LINE_FLAG_INPUT)) ||
        !(f & (GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_OUTPUT)))
        return -EINVAL;
    for (unsigned i = 0; i < c->num_attrs; i++) {
        const struct gpio_v2_line_config_attribute *a = &c->attrs[i];

        if (a->attr.id == GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES && (a->mask & 1))
            *out = (int)(a->attr.values & 1);
    }
    return 0;
}

static int stub_lineinfo(struct gpio_v2_line_info *info)
{
    struct stub_line *l;

    if (info->offset >= stub.n || !stub_zero(info->padding, 4))
        return -EINVAL;
    l = &stub.lines[info->offset];
    memcpy(info->name, l->name, sizeof(info->name));
    memset(info->consumer, 0, sizeof(info->consumer));
    info->flags = l->flags;
    if (l->held || l->wfd >= 0) {
        info->flags |= GPIO_V2_LINE_FLAG_USED;
        strcpy(info->consumer, l->held ? "dom0-user" : "requested");
    }
    return 0;
}

static int stub_get_line(struct gpio_v2_line_request *req)
{
    struct stub_line *l;
    struct stat st;
    int p[2], out, ret;

    if (req->num_lines != 1 || !stub_zero(req->padding, 5) ||
        req->offsets[0] >= stub.n)
        return -EINVAL;
    l = &stub.lines[req->offsets[0]];
    if (l->held || l->wfd >= 0)
        return -EBUSY;
    out = l->out;
    ret = stub_config(&req->config, &out);
    if (ret)
        return ret;
    node_stub_require(pipe2(p, O_CLOEXEC) == 0);
    node_stub_require(fstat(p[0], &st) == 0);
    node_stub_require(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
    l->wfd = p[1];
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    stub_output(l, req->config.flags, out);
    req->fd = p[0];
    stub.made++;
    return 0;
}

/* The line whose request fd is fd, or NULL. */
static struct stub_line *stub_line_of(int fd)
{
    struct stat st;

    if (fstat(fd, &st))
        return NULL;
    for (unsigned i = 0; i < stub.n; i++)
        if (stub.lines[i].wfd >= 0 && stub.lines[i].dev == st.st_dev &&
            stub.lines[i].ino == st.st_ino)
            return &stub.lines[i];
    return NULL;
}

static int stub_line_ioctl(struct stub_line *l, unsigned long request,
                           void *arg)
{
    struct gpio_v2_line_values *v = arg;
    int out = l->out, ret;

    switch (request) {
    case GPIO_V2_LINE_SET_CONFIG_IOCTL:
        ret = stub_config(arg, &out);
        if (ret == 0)
            stub_output(l, ((struct gpio_v2_line_config *)arg)->flags, out);
        return ret;
    case GPIO_V2_LINE_GET_VALUES_IOCTL:
        if (!v->mask)
            return -EINVAL;
        v->bits = (uint64_t)(stub_level_of(l) ^
                             !!(l->flags & GPIO_V2_LINE_FLAG_ACTIVE_LOW)) &
                  v->mask;
        return 0;
    case GPIO_V2_LINE_SET_VALUES_IOCTL:
        if (!v->mask)
            return -EINVAL;
        if (!(l->flags & GPIO_V2_LINE_FLAG_OUTPUT))
            return -EPERM;
        stub_output(l, l->flags, (int)(v->bits & 1));
        return 0;
    default:
        return -ENOTTY;
    }
}

static int stub_chip_ioctl(unsigned long request, void *arg)
{
    struct gpiochip_info *info = arg;

    switch (request) {
    case GPIO_GET_CHIPINFO_IOCTL:
        memset(info, 0, sizeof(*info));
        strcpy(info->name, "gpiochip9");
        strcpy(info->label, "xvdm-gpio-stub");
        info->lines = stub.n;
        return 0;
    case GPIO_V2_GET_LINEINFO_IOCTL:
        return stub_lineinfo(arg);
    case GPIO_V2_GET_LINE_IOCTL:
        return stub_get_line(arg);
    default:
        return -ENOTTY;
    }
}

static int stub_ioctl(int fd, unsigned long request, void *arg)
{
    struct stub_line *l;

    if (!stub.on)
        return NODE_STUB_PASS;
    if (node_stub_is(&stub.node, fd))
        return stub_chip_ioctl(request, arg);
    stub_reap();
    l = stub_line_of(fd);
    return l ? stub_line_ioctl(l, request, arg) : NODE_STUB_PASS;
}

static int gpio_stub_ioctl(int fd, unsigned long request, void *arg)
{
    int ret;

    pthread_mutex_lock(&stub_lock);
    ret = stub_ioctl(fd, request, arg);
    pthread_mutex_unlock(&stub_lock);
    return ret;
}
