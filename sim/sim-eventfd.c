/* SPDX-License-Identifier: MIT */
/*
 * The simulated host's fast path, as Linux privcmd's ioeventfd and irqfd
 * behave (src/xen/privcmd-eventfd.h): a QueueNotify that matches an
 * assigned ioeventfd is claimed and answered by "the kernel" as soon as
 * Xen publishes it, while the vCPU's port still fires towards xvdm; an
 * irqfd signal makes its SPI pending from a thread of the kernel's own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sim-private.h"

/* virtio-mmio's QueueNotify register, as the kernel hard-codes it. */
#define SIM_QUEUE_NOTIFY 0x50

static struct sim_ioeventfd *sim_ioeventfd_find(struct sim *sim, int fd)
{
    for (unsigned i = 0; i < SIM_IOEVENTFDS_MAX; i++)
        if (sim->ioeventfd[i].used && sim->ioeventfd[i].fd == fd)
            return &sim->ioeventfd[i];
    return NULL;
}

static int sim_ioeventfd_add(struct sim *sim, uint64_t window, uint32_t vq,
                             int fd)
{
    if (sim_ioeventfd_find(sim, fd))
        return -EBUSY; /* as the kernel refuses one eventfd twice */
    for (unsigned i = 0; i < SIM_IOEVENTFDS_MAX; i++) {
        struct sim_ioeventfd *e = &sim->ioeventfd[i];

        if (!e->used) {
            *e = (struct sim_ioeventfd){true, window, vq, fd};
            sim->eventfds_assigned++;
            return 0;
        }
    }
    return -ENOSPC;
}

int sim_ioeventfd(struct hv *hv, uint64_t window, uint32_t vq, int fd,
                  bool assign)
{
    struct sim *sim = sim_of(hv);
    struct sim_ioeventfd *e;
    int ret = 0;

    if (assign && sim->cfg.before_ioeventfds) {
        sim->cfg.before_ioeventfds(sim, sim->cfg.before_ioeventfds_arg);
        sim->cfg.before_ioeventfds = NULL;
    }
    pthread_mutex_lock(&sim->lock);
    if (!sim->cfg.eventfds)
        ret = -EOPNOTSUPP;
    else if (!sim->server_was_enabled)
        ret = -EINVAL; /* no ports to bind yet */
    else if (assign && sim->cfg.ioeventfd_error)
        ret = sim->cfg.ioeventfd_error;
    else if (assign)
        ret = sim_ioeventfd_add(sim, window, vq, fd);
    else if ((e = sim_ioeventfd_find(sim, fd)) != NULL) {
        e->used = false;
        sim->eventfds_assigned--;
    } else
        ret = -ENODEV;
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

/* The kernel looks at this ioreq (ioeventfd_interrupt()): a COPY write,
 * while it has an ioeventfd bound to the port. */
static bool sim_kernel_looks(struct sim *sim, const volatile struct ioreq *r)
{
    if (r->type != IOREQ_TYPE_COPY || r->dir != IOREQ_WRITE)
        return false;
    for (unsigned i = 0; i < SIM_IOEVENTFDS_MAX; i++)
        if (sim->ioeventfd[i].used)
            return true;
    return false;
}

/* The eventfd of the ioeventfd that takes this ioreq, or -1: the kernel's
 * test (ioeventfd_interrupt()). */
static int sim_ioeventfd_match(struct sim *sim, const volatile struct ioreq *r)
{
    if (!sim_kernel_looks(sim, r) || r->size != 4)
        return -1;
    for (unsigned i = 0; i < SIM_IOEVENTFDS_MAX; i++) {
        const struct sim_ioeventfd *e = &sim->ioeventfd[i];

        if (e->used && r->addr == e->window + SIM_QUEUE_NOTIFY &&
            (r->data & 0xffff) == e->vq)
            return e->fd;
    }
    return -1;
}

/* The kernel's answer, with the lock held and the request its own. */
static void sim_kernel_answer(struct sim *sim, unsigned vcpu, int fd)
{
    volatile struct ioreq *slot = (struct ioreq *)sim->hv.iopage + vcpu;
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) < 0)
        sim->kernel_missed++;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    slot->state = STATE_IORESP_READY;
    sim->notified |= 1ULL << vcpu;
    sim->kernel_answers++;
    pthread_cond_broadcast(&sim->answered);
}

/* The kernel's claim, with the lock held: only a request still READY. */
static void sim_kernel_claim(struct sim *sim, unsigned vcpu, int fd)
{
    volatile struct ioreq *slot = (struct ioreq *)sim->hv.iopage + vcpu;

    if (slot->state != STATE_IOREQ_READY) {
        sim->kernel_missed++;
        return;
    }
    slot->state = STATE_IOREQ_INPROCESS;
    sim_kernel_answer(sim, vcpu, fd);
}

/* Let `ms` pass with the lock released, as a descheduled dom0 vCPU. */
static void sim_kernel_sleep(struct sim *sim, unsigned ms)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += (long)ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    while (pthread_cond_timedwait(&sim->answered, &sim->lock, &t) == 0)
        ;
}

/* The end of ioeventfd_interrupt(), `ms` after it marked the slot
 * INPROCESS, with the lock held: answered when an ioeventfd (fd) matched,
 * else READY again, whatever the slot holds by then. */
static void sim_kernel_decide(struct sim *sim, unsigned vcpu, int fd,
                              unsigned ms)
{
    volatile struct ioreq *slot = (struct ioreq *)sim->hv.iopage + vcpu;

    sim_kernel_sleep(sim, ms);
    if (fd >= 0) {
        sim_kernel_answer(sim, vcpu, fd);
        return;
    }
    slot->state = STATE_IOREQ_READY;
    pthread_cond_broadcast(&sim->answered);
}

/* ioeventfd_interrupt() held for kernel_hold_ms between marking a READY
 * COPY write INPROCESS and deciding, for xvdm to see meanwhile. */
static void sim_kernel_hold_one(struct sim *sim, unsigned vcpu, int fd)
{
    volatile struct ioreq *slot = (struct ioreq *)sim->hv.iopage + vcpu;

    if (slot->state != STATE_IOREQ_READY) {
        sim->kernel_missed += fd >= 0;
        return;
    }
    slot->state = STATE_IOREQ_INPROCESS;
    sim_kernel_decide(sim, vcpu, fd, sim->kernel_hold_ms);
}

/* Xen's event on the vCPU's port runs both handlers: /dev/xen/evtchn's,
 * which queues the port for xvdm, and the kernel's, which claims a
 * matching QueueNotify. With kernel_delay_ms the kernel's comes that long
 * after xvdm could have looked (a dom0 vCPU descheduled between them);
 * with kernel_hold_ms it comes at once but stalls inside. */
int sim_kernel_event(struct sim *sim, unsigned vcpu)
{
    const volatile struct ioreq *slot = (struct ioreq *)sim->hv.iopage + vcpu;
    int fd = sim_ioeventfd_match(sim, slot);
    bool held = sim->kernel_hold_ms && sim_kernel_looks(sim, slot);
    uint64_t one = 1;

    if (fd >= 0 && !sim->cfg.kernel_delay_ms && !held)
        sim_kernel_claim(sim, vcpu, fd);
    sim->pending |= 1ULL << vcpu;
    if (write(sim->evtchn_fd, &one, sizeof(one)) < 0)
        return -errno;
    if (held) {
        sim_kernel_hold_one(sim, vcpu, fd);
    } else if (fd >= 0 && sim->cfg.kernel_delay_ms) {
        sim_kernel_sleep(sim, sim->cfg.kernel_delay_ms);
        sim_kernel_claim(sim, vcpu, fd);
    }
    return 0;
}

struct sim_late_look {
    struct sim *sim;
    unsigned vcpu, ms;
    int fd;
};

/* The rest of a late look, on the sim's thread. */
static void *sim_kernel_finish_late(void *arg)
{
    struct sim_late_look *l = arg;

    pthread_mutex_lock(&l->sim->lock);
    sim_kernel_decide(l->sim, l->vcpu, l->fd, l->ms);
    pthread_mutex_unlock(&l->sim->lock);
    free(l);
    return NULL;
}

int sim_kernel_look_late(struct sim *sim, unsigned vcpu, unsigned ms)
{
    volatile struct ioreq *slot = (struct ioreq *)sim->hv.iopage + vcpu;
    struct sim_late_look *l = malloc(sizeof(*l));
    int ret = -EAGAIN;

    if (!l)
        return -ENOMEM;
    sim_kernel_late_join(sim); /* one look at a time */
    pthread_mutex_lock(&sim->lock);
    if (slot->state == STATE_IOREQ_READY &&
        slot->type == IOREQ_TYPE_COPY && slot->dir == IOREQ_WRITE) {
        *l = (struct sim_late_look){sim, vcpu, ms,
                                    sim_ioeventfd_match(sim, slot)};
        slot->state = STATE_IOREQ_INPROCESS;
        ret = -pthread_create(&sim->late_thread, NULL,
                              sim_kernel_finish_late, l);
        sim->late_running = ret == 0;
        if (ret)
            slot->state = STATE_IOREQ_READY;
    }
    pthread_mutex_unlock(&sim->lock);
    if (ret) /* no thread took it */
        free(l);
    return ret;
}

void sim_kernel_late_join(struct sim *sim)
{
    if (sim->late_running)
        pthread_join(sim->late_thread, NULL);
    sim->late_running = false;
}

void sim_kernel_hold(struct sim *sim, unsigned ms)
{
    pthread_mutex_lock(&sim->lock);
    sim->kernel_hold_ms = ms;
    pthread_mutex_unlock(&sim->lock);
}

/* ---- irqfd ------------------------------------------------------------ */

/* The kernel's side of every irqfd: each wake-up drains the count and
 * makes the SPI pending once, as irqfd_inject() issues one dm_op. */
static void *sim_irqfd_thread(void *arg)
{
    struct sim *sim = arg;
    struct epoll_event ev[8];

    for (;;) {
        int n = epoll_wait(sim->irqfd_epoll, ev, 8, -1);

        for (int i = 0; i < n; i++) {
            struct sim_irqfd *q = ev[i].data.ptr;
            uint64_t count;

            if (!q)
                return NULL; /* the stop fd */
            /* Under the lock: a deassigned fd may be closed and its
             * number reused. */
            pthread_mutex_lock(&sim->lock);
            if (q->used && read(q->fd, &count, sizeof(count)) > 0) {
                sim->spi[q->spi].calls++;
                sim->spi[q->spi].edges++;
                sim->spi[q->spi].irqfd_edges++;
                pthread_cond_broadcast(&sim->edge);
            }
            pthread_mutex_unlock(&sim->lock);
        }
    }
}

int sim_irqfd_start(struct sim *sim)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    sigset_t all, old;
    int ret;

    sim->irqfd_stop = eventfd(0, EFD_CLOEXEC);
    sim->irqfd_epoll = epoll_create1(EPOLL_CLOEXEC);
    if (sim->irqfd_stop < 0 || sim->irqfd_epoll < 0 ||
        epoll_ctl(sim->irqfd_epoll, EPOLL_CTL_ADD, sim->irqfd_stop, &ev))
        return -errno;
    /* The kernel's thread takes no signal of the process's. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = pthread_create(&sim->irqfd_thread, NULL, sim_irqfd_thread, sim);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret)
        return -ret;
    sim->irqfd_running = true;
    return 0;
}

void sim_irqfd_stop(struct sim *sim)
{
    uint64_t one = 1;

    if (sim->irqfd_running && write(sim->irqfd_stop, &one, sizeof(one)) > 0)
        pthread_join(sim->irqfd_thread, NULL);
    sim->irqfd_running = false;
    if (sim->irqfd_epoll >= 0)
        close(sim->irqfd_epoll);
    if (sim->irqfd_stop >= 0)
        close(sim->irqfd_stop);
}

static struct sim_irqfd *sim_irqfd_find(struct sim *sim, int fd)
{
    for (unsigned i = 0; i < SIM_IRQFDS_MAX; i++)
        if (sim->irqfd[i].used && sim->irqfd[i].fd == fd)
            return &sim->irqfd[i];
    return NULL;
}

static int sim_irqfd_add(struct sim *sim, uint32_t spi, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN};

    if (spi < GUEST_LAYOUT_SPI_MIN || spi >= SIM_SPIS)
        return -EINVAL; /* the kernel takes it; Xen refuses each dm_op */
    if (sim_irqfd_find(sim, fd))
        return -EBUSY;
    for (unsigned i = 0; i < SIM_IRQFDS_MAX; i++) {
        struct sim_irqfd *q = &sim->irqfd[i];

        if (q->used)
            continue;
        *q = (struct sim_irqfd){true, spi, fd};
        ev.data.ptr = q;
        /* The kernel's read of the count never blocks; this thread's must
         * not either, with the lock held. */
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
            return -errno;
        if (epoll_ctl(sim->irqfd_epoll, EPOLL_CTL_ADD, fd, &ev)) {
            q->used = false;
            return -errno;
        }
        sim->eventfds_assigned++;
        return 0;
    }
    return -ENOSPC;
}

int sim_irqfd(struct hv *hv, uint32_t spi, int fd, bool assign)
{
    struct sim *sim = sim_of(hv);
    struct sim_irqfd *q;
    int ret = 0;

    pthread_mutex_lock(&sim->lock);
    if (!sim->cfg.eventfds)
        ret = -EOPNOTSUPP;
    else if (assign)
        ret = sim_irqfd_add(sim, spi, fd);
    else if ((q = sim_irqfd_find(sim, fd)) != NULL) {
        epoll_ctl(sim->irqfd_epoll, EPOLL_CTL_DEL, fd, NULL);
        q->used = false;
        sim->eventfds_assigned--;
    }
    /* Deassigning an unknown eventfd succeeds, as in the kernel. */
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

/* ---- settling --------------------------------------------------------- */

/* Up to `max` assigned ioeventfds, with the window of the first. */
static unsigned sim_kick_fds(struct sim *sim, struct pollfd *p, unsigned max,
                             uint64_t *window)
{
    unsigned n = 0;

    pthread_mutex_lock(&sim->lock);
    for (unsigned i = 0; i < SIM_IOEVENTFDS_MAX && n < max; i++) {
        /* A window off the 0x200 grid is xvdm's for InterruptACK
         * (mmio-fast.c), whose eventfd it reads only as the guest reads
         * InterruptStatus. */
        if (!sim->ioeventfd[i].used || sim->ioeventfd[i].window % 0x200)
            continue;
        if (n == 0)
            *window = sim->ioeventfd[i].window;
        p[n++] = (struct pollfd){.fd = sim->ioeventfd[i].fd,
                                 .events = POLLIN};
    }
    pthread_mutex_unlock(&sim->lock);
    return n;
}

/* Has the irqfd thread taken every signal xvdm gave? It reads and raises
 * under the lock, so an irqfd that is not readable under it is done. */
static bool sim_irqfds_taken(struct sim *sim)
{
    bool taken = true;

    pthread_mutex_lock(&sim->lock);
    for (unsigned i = 0; i < SIM_IRQFDS_MAX && taken; i++) {
        struct pollfd p = {.fd = sim->irqfd[i].fd, .events = POLLIN};

        if (sim->irqfd[i].used && poll(&p, 1, 0) > 0)
            taken = false;
    }
    pthread_mutex_unlock(&sim->lock);
    return taken;
}

/* Linux's irqfd issues its dm_op inside the eventfd write that signals it
 * (irqfd_wakeup), so once xvdm has answered, the SPI is raised: wait for
 * the sim's thread to have done the same. */
static int sim_irqfds_settle(struct sim *sim)
{
    for (int tries = 0; tries < 5000; tries++) {
        if (sim_irqfds_taken(sim))
            return 0;
        usleep(1000);
    }
    return -ETIMEDOUT;
}

int sim_settle(struct sim *sim, unsigned vcpu)
{
    struct pollfd p[SIM_IOEVENTFDS_MAX];
    uint64_t window = 0, magic;
    unsigned n = sim_kick_fds(sim, p, SIM_IOEVENTFDS_MAX, &window);

    for (int tries = 0; n && tries < 5000; tries++) {
        int ready = poll(p, n, 0);
        int ret;

        if (ready < 0)
            return -errno;
        if (ready == 0) {
            ret = sim_mmio_read(sim, vcpu, window, 4, &magic);
            return ret ? ret : sim_irqfds_settle(sim);
        }
        usleep(1000);
    }
    return n ? -ETIMEDOUT : 0;
}

/* ---- what the test side sees ------------------------------------------ */

bool sim_ioreq_waiting(struct sim *sim, unsigned vcpu)
{
    volatile struct ioreq *slot = (struct ioreq *)sim->hv.iopage + vcpu;
    bool ready;

    pthread_mutex_lock(&sim->lock);
    ready = vcpu < sim->cfg.nr_vcpus && slot->state == STATE_IOREQ_READY;
    pthread_mutex_unlock(&sim->lock);
    return ready;
}

unsigned sim_kernel_answers(struct sim *sim)
{
    return sim_count(sim, &sim->kernel_answers);
}

unsigned sim_kernel_missed(struct sim *sim)
{
    return sim_count(sim, &sim->kernel_missed);
}

unsigned sim_eventfds_assigned(struct sim *sim)
{
    return sim_count(sim, &sim->eventfds_assigned);
}

unsigned sim_irqfd_edges(struct sim *sim, uint32_t spi)
{
    return spi < SIM_SPIS ? sim_count(sim, &sim->spi[spi].irqfd_edges) : 0;
}
