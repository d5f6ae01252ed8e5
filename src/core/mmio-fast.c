/* SPDX-License-Identifier: MIT */
/* The fast path of one virtio-mmio window (see mmio-fast.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dev.h"
#include "hv.h"
#include "log.h"
#include "loop.h"
#include "mmio-fast.h"

void mmio_fast_init(struct mmio *m)
{
    m->loop = NULL;
    m->kick_vqs = 0;
    for (unsigned i = 0; i < XVDM_QUEUES_MAX; i++)
        m->kick[i] = (struct mmio_kick){.m = m, .vq = i, .fd = -1};
    m->ackfd = -1;
    m->irqfd = -1;
}

/* A queue's eventfd fired: the host answered one or more QueueNotify
 * writes for it, and one drain serves them all. */
static void mmio_fast_on_kick(void *arg, uint32_t revents)
{
    struct mmio_kick *k = arg;
    uint64_t count;

    if (read(k->fd, &count, sizeof(count)) != sizeof(count))
        return;
    k->m->counters.host_kicks += count;
    virtio_queue_kicked(k->m->dev, k->vq);
}

/* The host's ioeventfd test is a 4-byte write at `window` + QueueNotify's
 * offset whose low 16 bits are `vq` (privcmd-eventfd.h). Moving the
 * window makes the same test take the InterruptACK writes of a
 * used-buffer interrupt (1), which a guest makes for nearly every
 * interrupt. Nothing of the device shows the ACK but InterruptStatus, so
 * xvdm reads the eventfd only as the guest reads that: no wake-up of its
 * own. m->ackfd is open only while assigned. */
#define MMIO_FAST_ACK_WINDOW(base)                                             \
    ((base) + VIRTIO_MMIO_INTERRUPT_ACK - VIRTIO_MMIO_QUEUE_NOTIFY)

void mmio_fast_acked(struct mmio *m)
{
    uint64_t count;

    if (m->ackfd < 0 || read(m->ackfd, &count, sizeof(count)) !=
                            sizeof(count))
        return;
    m->counters.host_acks += count;
    virtio_isr_ack(m->dev, VIRTIO_MMIO_INT_VRING);
}

static void mmio_fast_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Undo queue vq's ioeventfd; a failure leaves the host answering kicks
 * into an eventfd nobody reads, which the guest cannot tell from a slow
 * device: said, not fatal. */
static void mmio_fast_unkick(struct mmio *m, unsigned vq)
{
    struct mmio_kick *k = &m->kick[vq];
    int ret;

    if (m->kick_vqs >> vq & 1) {
        m->kick_vqs &= ~(1ULL << vq);
        loop_unwatch(m->loop, k->fd);
        ret = hv_ioeventfd(m->hv, m->base, vq, k->fd, false);
        if (ret)
            log_warn("%scannot undo queue %u's ioeventfd: %s",
                     m->dev->prefix, vq, strerror(-ret));
    }
    mmio_fast_close(&k->fd);
}

/* As mmio_fast_unkick(), for the ACKs; those the host answered are
 * applied first, the guest having made them. */
static void mmio_fast_unack(struct mmio *m)
{
    int ret;

    if (m->ackfd < 0)
        return;
    mmio_fast_acked(m);
    ret = hv_ioeventfd(m->hv, MMIO_FAST_ACK_WINDOW(m->base),
                       VIRTIO_MMIO_INT_VRING, m->ackfd, false);
    if (ret)
        log_warn("%scannot undo the InterruptACK ioeventfd: %s",
                 m->dev->prefix, strerror(-ret));
    mmio_fast_close(&m->ackfd);
}

void mmio_fast_stop(struct mmio *m)
{
    for (unsigned i = 0; i < XVDM_QUEUES_MAX; i++)
        mmio_fast_unkick(m, i);
    mmio_fast_unack(m);
    if (m->irqfd >= 0) {
        int ret = hv_irqfd(m->hv, m->spi, m->irqfd, false);

        if (ret)
            log_warn("%scannot undo the irqfd of SPI %" PRIu32 ": %s",
                     m->dev->prefix, m->spi, strerror(-ret));
    }
    mmio_fast_close(&m->irqfd);
}

static int mmio_fast_kick(struct mmio *m, unsigned vq)
{
    struct mmio_kick *k = &m->kick[vq];
    int ret;

    k->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (k->fd < 0)
        return -errno;
    ret = hv_ioeventfd(m->hv, m->base, vq, k->fd, true);
    if (ret)
        return ret;
    m->kick_vqs |= 1ULL << vq;
    return loop_watch(m->loop, k->fd, EPOLLIN, mmio_fast_on_kick, k);
}

/* The ACKs through the host where it takes them; where it refuses, they
 * stay with xvdm and the rest of the fast path stands. */
static void mmio_fast_ack(struct mmio *m)
{
    int ret;

    m->ackfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ret = m->ackfd < 0 ? -errno
                       : hv_ioeventfd(m->hv, MMIO_FAST_ACK_WINDOW(m->base),
                                      VIRTIO_MMIO_INT_VRING, m->ackfd, true);
    if (ret) {
        mmio_fast_close(&m->ackfd);
        log_warn("%sthe host refused an ioeventfd for InterruptACK (%s): "
                 "ACKs through xvdm", m->dev->prefix, strerror(-ret));
    }
}

static int mmio_fast_irq(struct mmio *m)
{
    m->irqfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m->irqfd < 0)
        return -errno;
    return hv_irqfd(m->hv, m->spi, m->irqfd, true);
}

int mmio_fast_start(struct mmio *m, struct loop *loop)
{
    int ret = 0;

    m->loop = loop;
    if (!m->hv->eventfds) {
        log_info("%skicks and interrupts through xvdm", m->dev->prefix);
        return 0;
    }
    for (unsigned i = 0; i < m->dev->setup.num_queues && ret == 0; i++)
        ret = mmio_fast_kick(m, i);
    if (ret == 0)
        ret = mmio_fast_irq(m);
    if (ret) {
        mmio_fast_stop(m);
        log_warn("%sthe host refused an ioeventfd or irqfd (%s): kicks and "
                 "interrupts through xvdm", m->dev->prefix, strerror(-ret));
        return ret == -ENOMEM || ret == -EMFILE || ret == -ENFILE ? ret : 0;
    }
    mmio_fast_ack(m);
    log_info("%skicks, interrupts%s through the host (ioeventfd, irqfd)",
             m->dev->prefix, m->ackfd >= 0 ? " and their ACKs" : "");
    return 0;
}

bool mmio_fast_takes(const struct mmio *m, const struct ioreq *req)
{
    uint64_t vq = req->data & 0xffff;

    if (req->type != IOREQ_TYPE_COPY || req->dir != IOREQ_WRITE ||
        req->size != 4)
        return false;
    if (req->addr == m->base + VIRTIO_MMIO_INTERRUPT_ACK)
        return m->ackfd >= 0 && vq == VIRTIO_MMIO_INT_VRING;
    return req->addr == m->base + VIRTIO_MMIO_QUEUE_NOTIFY &&
           vq < XVDM_QUEUES_MAX && (m->kick_vqs >> vq & 1);
}

int mmio_fast_interrupt(struct mmio *m)
{
    return eventfd_write(m->irqfd, 1) ? -errno : 0;
}
