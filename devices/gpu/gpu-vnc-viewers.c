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
 * libvncserver runs once the device is gone.
 */
#include <errno.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "gpu.h"

/* A viewer's threads end within this of being disconnected (shutdown()
 * of its socket wakes them from any read or write). */
#define GPU_VNC_END_WAIT_S 10

struct gpu_vnc_viewers {
    pthread_mutex_t lock;
    pthread_cond_t ended_cond;
    unsigned taken;  /* viewers given a thread */
    unsigned ended;  /* of them, those whose thread said it ends */
    pthread_t *join; /* ended threads not joined yet */
    size_t nr_join, cap_join;
    void *data; /* gpu_vnc_viewers_data()'s */
};

/* On the viewer's own thread, its last use of the screen done. */
static void gpu_vnc_viewer_gone(rfbClientPtr cl)
{
    struct gpu_vnc_viewers *vw = cl->screen->screenData;
    pthread_t self = pthread_self();

    pthread_mutex_lock(&vw->lock);
    if (vw->nr_join == vw->cap_join) {
        size_t cap = vw->cap_join ? 2 * vw->cap_join : 8;
        pthread_t *join = realloc(vw->join, cap * sizeof(*join));

        /* Without room the thread stays unjoined (its stack kept), but
         * it is still counted as ended. */
        if (join) {
            vw->join = join;
            vw->cap_join = cap;
        }
    }
    if (vw->nr_join < vw->cap_join)
        vw->join[vw->nr_join++] = self;
    vw->ended++;
    pthread_cond_broadcast(&vw->ended_cond);
    pthread_mutex_unlock(&vw->lock);
}

/* The threads that ended so far, joined (each is past its last use of
 * the screen: joining waits at most for its return). */
static void gpu_vnc_viewers_reap(struct gpu_vnc_viewers *vw)
{
    pthread_t *join;
    size_t n;

    pthread_mutex_lock(&vw->lock);
    join = vw->join;
    n = vw->nr_join;
    vw->join = NULL;
    vw->nr_join = vw->cap_join = 0;
    pthread_mutex_unlock(&vw->lock);
    for (size_t i = 0; i < n; i++)
        pthread_join(join[i], NULL);
    free(join);
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
    return RFB_CLIENT_ACCEPT;
}

int gpu_vnc_viewers_watch(rfbScreenInfoPtr s, void *data,
                          struct gpu_vnc_viewers **out)
{
    struct gpu_vnc_viewers *vw = calloc(1, sizeof(*vw));

    if (!vw)
        return -ENOMEM;
    vw->data = data;
    pthread_mutex_init(&vw->lock, NULL);
    pthread_cond_init(&vw->ended_cond, NULL);
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

/* Every viewer still there told to go; the iterator holds the one it is
 * at, so none is freed under it. */
static void gpu_vnc_viewers_disconnect(rfbScreenInfoPtr s)
{
    rfbClientIteratorPtr it = rfbGetClientIterator(s);
    rfbClientPtr cl;

    while ((cl = rfbClientIteratorNext(it))) {
        shutdown(cl->sock, SHUT_RDWR);
        rfbCloseClient(cl);
    }
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

    clock_gettime(CLOCK_REALTIME, &until);
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
