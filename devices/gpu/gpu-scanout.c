/* SPDX-License-Identifier: MIT */
/*
 * Scanouts (VIRTIO 1.2 §5.7.6.8 SET_SCANOUT, RESOURCE_FLUSH): which
 * rectangle of which resource each output shows, and what a host
 * consumer reads of it (gpu_scanout_snapshot(); vnc=, gpu-vnc.c, is told
 * of each change to scanout 0).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "gpu.h"

uint32_t gpu_scanout_set(struct gpu *g, const struct gpu_req *req,
                         const union gpu_cmd *cmd)
{
    const struct virtio_gpu_set_scanout *c = &cmd->scanout;
    uint32_t sid = le32toh(c->scanout_id), id = le32toh(c->resource_id);
    struct virtio_gpu_rect r = gpu_rect_host(&c->r);
    uint32_t resp = VIRTIO_GPU_RESP_OK_NODATA;
    struct gpu_resource *res;

    if (sid >= g->outputs) {
        xvdm_dev_guest_error(g->dev, "SET_SCANOUT: no scanout %u (of %u)", sid,
                             g->outputs);
        return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
    }
    if (id == 0) { /* the driver turns the output off */
        g->scanout[sid].res = NULL;
    } else {
        res = gpu_resource_rect(g, "SET_SCANOUT", id, &r, &resp);
        if (!res)
            return resp;
        g->scanout[sid].res = res;
        g->scanout[sid].r = r;
    }
    if (sid == 0)
        gpu_vnc_show(g);
    return resp;
}

static bool gpu_rects_meet(const struct virtio_gpu_rect *a,
                           const struct virtio_gpu_rect *b)
{
    return (uint64_t)a->x < (uint64_t)b->x + b->width &&
           (uint64_t)b->x < (uint64_t)a->x + a->width &&
           (uint64_t)a->y < (uint64_t)b->y + b->height &&
           (uint64_t)b->y < (uint64_t)a->y + a->height;
}

uint32_t gpu_scanout_flush(struct gpu *g, const struct gpu_req *req,
                           const union gpu_cmd *cmd)
{
    const struct virtio_gpu_resource_flush *c = &cmd->flush;
    struct virtio_gpu_rect r = gpu_rect_host(&c->r);
    uint32_t resp = VIRTIO_GPU_RESP_OK_NODATA;
    struct gpu_resource *res = gpu_resource_rect(
        g, "RESOURCE_FLUSH", le32toh(c->resource_id), &r, &resp);

    for (uint32_t i = 0; res && i < g->outputs; i++)
        if (g->scanout[i].res == res && gpu_rects_meet(&g->scanout[i].r, &r))
            g->scanout[i].flushes++;
    if (res)
        gpu_vnc_flush(g, res, &r);
    return resp;
}

void gpu_scanout_forget(struct gpu *g, const struct gpu_resource *res)
{
    bool shown = g->scanout[0].res == res;

    for (uint32_t i = 0; i < VIRTIO_GPU_MAX_SCANOUTS; i++)
        if (g->scanout[i].res == res)
            g->scanout[i].res = NULL;
    if (shown)
        gpu_vnc_show(g);
}

int gpu_scanout_snapshot(const struct gpu *g, unsigned id, void *buf,
                         size_t size, struct gpu_snapshot_info *info)
{
    const struct gpu_scanout *s = id < g->outputs ? &g->scanout[id] : NULL;
    uint64_t stride, row;
    uint8_t *to = buf;

    if (!s || !s->res)
        return -ENOENT;
    *info = (struct gpu_snapshot_info){s->r.width, s->r.height, s->res->format,
                                       s->flushes};
    stride = (uint64_t)s->res->width * GPU_BYTES_PER_PIXEL;
    row = (uint64_t)s->r.width * GPU_BYTES_PER_PIXEL;
    if (size < row * s->r.height)
        return -ENOSPC;
    for (uint32_t y = 0; y < s->r.height; y++)
        memcpy(to + y * row,
               s->res->pixels + (s->r.y + y) * stride +
                   (uint64_t)s->r.x * GPU_BYTES_PER_PIXEL,
               row);
    return 0;
}
