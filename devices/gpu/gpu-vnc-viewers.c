/* SPDX-License-Identifier: MIT */
/*
 * The threads of vnc='s viewers, joined. libvncserver 0.9.14 starts one
 * for each viewer (which starts a second and joins it) and neither
 * detaches nor joins it when the viewer goes, and its rfbShutdownServer()
 * reads a viewer after that viewer's thread may have freed it. So xvdm
 * counts the viewers as libvncserver takes them, has each thread say when
 * it ends (clientGoneHook, run on that thread once the viewer is off the
 * screen's list), joins ended threads when the next viewer comes, and at
 * the end disconnects every viewer and joins every thread: nothing of
 * libvncserver runs once the device is gone. A viewer past its time for
 * the handshake is disconnected (gpu_vnc_viewers_expire()): one that says
 * nothing would hold its place and two threads for ever.
 */
#include <errno.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/clock-now.h"
#include "gpu.h"

/* A viewer's threads end within this of being disconnected (shutdown()
 * of its socket wakes them from any read or write). */
#define GPU_VNC_END_WAIT_S 10

/* Ended threads not joined yet: a viewer is taken only while fewer than
 * GPU_VNC_VIEWERS_MAX run, just after those that ended were joined, so
 * one more may end between the two; twice that is room to spare. */
#define GPU_VNC_JOIN_MAX (2 * GPU_VNC_VIEWERS_MAX)

struct gpu_vnc_viewers {
    pthread_mutex_t lock;
    pthread_cond_t ended_cond; /* on CLOCK_MONOTONIC */
    unsigned taken;            /* viewers given a thread */
    unsigned ended; /* of them, those whose thread ends and will be joined */
    pthread_t join[GPU_VNC_JOIN_MAX]; /* ended threads not joined yet */
    size_t nr_join;
    void *data; /* gpu_vnc_viewers_data()'s */
};

/* A viewer's clientData (libvncserver never reads it; NULL until the
 * listener's newClientHook sets it): when it came, and whether it sent
 * keys or pointer (so it was past the password). */
#define GPU_VNC_SET 1u
#define GPU_VNC_TYPED 2u
#define GPU_VNC_SINCE_SHIFT 2

static uintptr_t gpu_vnc_viewer_bits(rfbClientPtr cl)
{
    return (uintptr_t)cl->clientData;
}

void gpu_vnc_viewer_typed(rfbClientPtr cl)
{
    cl->clientData = (void *)(gpu_vnc_viewer_bits(cl) | GPU_VNC_TYPED);
}

/* On the viewer's own thread, off the screen's list (libvncserver still
 * reads the screen after this, until the thread returns: what ends the
 * screen joins the thread first). A thread that could not be put down
 * for joining is never counted as ended, so the screen is never freed
 * under it. */
static void gpu_vnc_viewer_gone(rfbClientPtr cl)
{
    struct gpu_vnc_viewers *vw = cl->screen->screenData;

    /* Only one that typed: anyone who reaches the socket could otherwise
     * let go of a person's keys by connecting and leaving. */
    if (gpu_vnc_viewer_bits(cl) & GPU_VNC_TYPED)
        gpu_vnc_input_viewer_gone(vw->data);
    pthread_mutex_lock(&vw->lock);
    if (vw->nr_join < GPU_VNC_JOIN_MAX) {
        vw->join[vw->nr_join++] = pthread_self();
        vw->ended++;
        pthread_cond_broadcast(&vw->ended_cond);
    }
    pthread_mutex_unlock(&vw->lock);
}

/* The threads that ended so far, joined (each is past its last use of
 * the screen: joining waits at most for its return). */
static void gpu_vnc_viewers_reap(struct gpu_vnc_viewers *vw)
{
    pthread_t join[GPU_VNC_JOIN_MAX];
    size_t n;

    pthread_mutex_lock(&vw->lock);
    n = vw->nr_join;
    memcpy(join, vw->join, n * sizeof(join[0]));
    vw->nr_join = 0;
    pthread_mutex_unlock(&vw->lock);
    for (size_t i = 0; i < n; i++)
        pthread_join(join[i], NULL);
}

/* On libvncserver's listener thread: a viewer it will start a thread
 * for, unless GPU_VNC_VIEWERS_MAX are there (it is then disconnected
 * with no thread). */
static enum rfbNewClientAction gpu_vnc_viewer_new(rfbClientPtr cl)
{
    struct gpu_vnc_viewers *vw = cl->screen->screenData;
    bool room;

    gpu_vnc_viewers_reap(vw);
    pthread_mutex_lock(&vw->lock);
    room = vw->taken - vw->ended < GPU_VNC_VIEWERS_MAX;
    vw->taken += room;
    pthread_mutex_unlock(&vw->lock);
    if (!room)
        return RFB_CLIENT_REFUSE;
    cl->clientGoneHook = gpu_vnc_viewer_gone;
    cl->clientData = (void *)(uintptr_t)((clock_now_ms() / 1000) << GPU_VNC_SINCE_SHIFT |
                                         GPU_VNC_SET);
    return RFB_CLIENT_ACCEPT;
}

int gpu_vnc_viewers_watch(rfbScreenInfoPtr s, void *data,
                          struct gpu_vnc_viewers **out)
{
    struct gpu_vnc_viewers *vw = calloc(1, sizeof(*vw));
    pthread_condattr_t attr;

    if (!vw)
        return -ENOMEM;
    vw->data = data;
    pthread_mutex_init(&vw->lock, NULL);
    /* The wait at the end must not be cut short by the wall clock set
     * forward: the screen would be freed under a thread still running. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&vw->ended_cond, &attr);
    pthread_condattr_destroy(&attr);
    s->screenData = vw;
    s->newClientHook = gpu_vnc_viewer_new;
    *out = vw;
    return 0;
}

void *gpu_vnc_viewers_data(rfbClientPtr cl)
{
    struct gpu_vnc_viewers *vw = cl->screen->screenData;

    return vw->data;
}

void gpu_vnc_viewers_expire(rfbScreenInfoPtr s, unsigned after_s)
{
    rfbClientIteratorPtr it = rfbGetClientIterator(s);
    uint64_t now = clock_now_ms() / 1000;
    rfbClientPtr cl;

    /* Only shutdown(): its own thread sees the socket fail and ends the
     * viewer, so no descriptor is closed under that thread. */
    while ((cl = rfbClientIteratorNext(it))) {
        uintptr_t bits = gpu_vnc_viewer_bits(cl);

        /* Not set yet: the listener is just taking it. */
        if ((bits & GPU_VNC_SET) && cl->state != RFB_NORMAL &&
            now - (bits >> GPU_VNC_SINCE_SHIFT) >= after_s)
            shutdown(cl->sock, SHUT_RDWR);
    }
    rfbReleaseClientIterator(it);
}

/* Every viewer still there told to go; the iterator holds the one it is
 * at, so none is freed under it. Only shutdown(): each viewer's own thread
 * sees its socket fail, closes it and ends, so no descriptor is closed
 * (and perhaps reused) under a thread still select()ing on it. */
static void gpu_vnc_viewers_disconnect(rfbScreenInfoPtr s)
{
    rfbClientIteratorPtr it = rfbGetClientIterator(s);
    rfbClientPtr cl;

    while ((cl = rfbClientIteratorNext(it)))
        shutdown(cl->sock, SHUT_RDWR);
    rfbReleaseClientIterator(it);
}

/* Until every viewer's thread said it ends, or GPU_VNC_END_WAIT_S passed
 * (a thread libvncserver could not start never says so): the viewers
 * whose threads did not. */
static unsigned gpu_vnc_viewers_wait(struct gpu_vnc_viewers *vw)
{
    struct timespec until;
    unsigned left;
    int ret = 0;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += GPU_VNC_END_WAIT_S;
    pthread_mutex_lock(&vw->lock);
    while (vw->ended < vw->taken && ret == 0)
        ret = pthread_cond_timedwait(&vw->ended_cond, &vw->lock, &until);
    left = vw->taken - vw->ended;
    pthread_mutex_unlock(&vw->lock);
    return left;
}

unsigned gpu_vnc_viewers_end(rfbScreenInfoPtr s, struct gpu_vnc_viewers *vw)
{
    unsigned left;

    if (!vw)
        return 0;
    gpu_vnc_viewers_disconnect(s);
    left = gpu_vnc_viewers_wait(vw);
    gpu_vnc_viewers_reap(vw);
    if (left) /* their threads may still use vw */
        return left;
    pthread_cond_destroy(&vw->ended_cond);
    pthread_mutex_destroy(&vw->lock);
    free(vw);
    return 0;
}
