/* SPDX-License-Identifier: MIT */
/*
 * cursorq (VIRTIO 1.2 §5.7.6.10): UPDATE_CURSOR and MOVE_CURSOR, kept as
 * the cursor's state for a host consumer; the requests are completed
 * with no answer, as Linux's driver expects.
 */
#include <endian.h>
#include <string.h>

#include "../common/iov-copy.h"
#include "gpu.h"

/* The request, whole and for an output the device has. */
static bool gpu_cursor_read(struct gpu *g, const struct xvdm_chain *ch,
                            struct virtio_gpu_update_cursor *c)
{
    if (iov_copy(ch->iov, ch->out_num, 0, c, sizeof(*c), false) < sizeof(*c)) {
        xvdm_dev_guest_error(g->dev, "cursorq: request of %u bytes, %zu needed",
                             ch->out_len, sizeof(*c));
        return false;
    }
    if (le32toh(c->pos.scanout_id) < g->outputs)
        return true;
    xvdm_dev_guest_error(g->dev, "cursorq: no scanout %u",
                         le32toh(c->pos.scanout_id));
    return false;
}

/* The image: res's top-left pixels, as many of GPU_CURSOR_SIDE x
 * GPU_CURSOR_SIDE as it has; none (zeros) without res. */
static void gpu_cursor_copy(struct gpu_cursor *cur,
                            const struct gpu_resource *res)
{
    const uint32_t line = GPU_CURSOR_SIDE * GPU_BYTES_PER_PIXEL;
    uint32_t w, h;

    memset(cur->image, 0, sizeof(cur->image));
    cur->format = res ? res->format : 0;
    if (!res)
        return;
    w = res->width < GPU_CURSOR_SIDE ? res->width : GPU_CURSOR_SIDE;
    h = res->height < GPU_CURSOR_SIDE ? res->height : GPU_CURSOR_SIDE;
    for (uint32_t y = 0; y < h; y++)
        memcpy(cur->image + y * line,
               res->pixels + (uint64_t)y * res->width * GPU_BYTES_PER_PIXEL,
               w * GPU_BYTES_PER_PIXEL);
}

/* A new image (resource_id 0: none, the cursor hidden); false, and the
 * request ignored, for a resource the device does not have. */
static bool gpu_cursor_update(struct gpu *g,
                              const struct virtio_gpu_update_cursor *c)
{
    uint32_t id = le32toh(c->resource_id);
    const struct gpu_resource *res = id ? gpu_resource_find(g, id) : NULL;

    if (id && !res) {
        xvdm_dev_guest_error(g->dev, "UPDATE_CURSOR: no resource %u", id);
        return false;
    }
    gpu_cursor_copy(&g->cursor, res);
    g->cursor.resource_id = id;
    g->cursor.hot_x = le32toh(c->hot_x);
    g->cursor.hot_y = le32toh(c->hot_y);
    return true;
}

/* Where it is, from either command. */
static void gpu_cursor_move(struct gpu *g,
                            const struct virtio_gpu_update_cursor *c)
{
    g->cursor.scanout = le32toh(c->pos.scanout_id);
    g->cursor.x = le32toh(c->pos.x);
    g->cursor.y = le32toh(c->pos.y);
}

uint32_t gpu_cursor_serve(struct gpu *g, const struct xvdm_chain *ch)
{
    struct virtio_gpu_update_cursor c;
    uint32_t type;

    if (!gpu_cursor_read(g, ch, &c))
        return 0;
    type = le32toh(c.hdr.type);
    if (type == VIRTIO_GPU_CMD_MOVE_CURSOR ||
        (type == VIRTIO_GPU_CMD_UPDATE_CURSOR && gpu_cursor_update(g, &c)))
        gpu_cursor_move(g, &c);
    else if (type != VIRTIO_GPU_CMD_UPDATE_CURSOR)
        xvdm_dev_guest_error(g->dev, "cursorq: command 0x%x not served", type);
    return 0;
}
