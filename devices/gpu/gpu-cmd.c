/* SPDX-License-Identifier: MIT */
/*
 * controlq requests (VIRTIO 1.2 §5.7.6.7, §5.7.6.8): the command read
 * from the chain's readable part, served, and the answer written into
 * its writable part, never past it. Requests are completed in order, so
 * a fenced one's fence is done when it is answered: its fence_id and
 * ctx_id go back with FLAG_FENCE.
 */
#include <endian.h>
#include <stddef.h>
#include <string.h>

#include "../common/iov-copy.h"
#include "gpu.h"

union gpu_resp {
    struct virtio_gpu_ctrl_hdr hdr;
    struct virtio_gpu_resp_display_info display;
    struct virtio_gpu_resp_edid edid;
};

/* A command whose answer carries more than the header: fills resp
 * past it, returns the type and the answer's bytes in *len. */
typedef uint32_t gpu_query_fn(struct gpu *g, const union gpu_cmd *c,
                              union gpu_resp *resp, size_t *len);

/* §5.7.6.8 GET_DISPLAY_INFO: every output enabled at xres x yres. */
static uint32_t cmd_display_info(struct gpu *g, const union gpu_cmd *c,
                                 union gpu_resp *resp, size_t *len)
{
    for (uint32_t i = 0; i < g->outputs; i++) {
        struct virtio_gpu_display_one *m = &resp->display.pmodes[i];

        m->r.width = htole32(g->xres);
        m->r.height = htole32(g->yres);
        m->enabled = htole32(1);
    }
    *len = sizeof(resp->display);
    return VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
}

/* GET_EDID is the driver's only with VIRTIO_GPU_F_EDID (§5.7.3). */
static uint32_t cmd_edid(struct gpu *g, const union gpu_cmd *c,
                         union gpu_resp *resp, size_t *len)
{
    if (!(xvdm_dev_features(g->dev) & (1ULL << VIRTIO_GPU_F_EDID)))
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    if (le32toh(c->edid.scanout) >= g->outputs)
        return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
    gpu_edid_build(resp->edid.edid, g->xres, g->yres);
    resp->edid.size = htole32(GPU_EDID_SIZE);
    *len = sizeof(resp->edid);
    return VIRTIO_GPU_RESP_OK_EDID;
}

/* Each command served: its bytes (header included), and one of serve
 * (answered with the header alone) or query. */
static const struct gpu_cmd_kind {
    uint32_t type;
    size_t len;
    gpu_cmd_fn *serve;
    gpu_query_fn *query;
} gpu_cmds[] = {
    {VIRTIO_GPU_CMD_GET_DISPLAY_INFO, sizeof(struct virtio_gpu_ctrl_hdr), NULL,
     cmd_display_info},
    {VIRTIO_GPU_CMD_GET_EDID, sizeof(struct virtio_gpu_cmd_get_edid), NULL,
     cmd_edid},
    {VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
     sizeof(struct virtio_gpu_resource_create_2d), gpu_resource_create, NULL},
    {VIRTIO_GPU_CMD_RESOURCE_UNREF, sizeof(struct virtio_gpu_resource_unref),
     gpu_resource_unref, NULL},
    {VIRTIO_GPU_CMD_SET_SCANOUT, sizeof(struct virtio_gpu_set_scanout),
     gpu_scanout_set, NULL},
    {VIRTIO_GPU_CMD_RESOURCE_FLUSH, sizeof(struct virtio_gpu_resource_flush),
     gpu_scanout_flush, NULL},
    {VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D,
     sizeof(struct virtio_gpu_transfer_to_host_2d), gpu_resource_transfer,
     NULL},
    {VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING,
     sizeof(struct virtio_gpu_resource_attach_backing), gpu_resource_attach,
     NULL},
    {VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING,
     sizeof(struct virtio_gpu_resource_detach_backing), gpu_resource_detach,
     NULL},
};

static const struct gpu_cmd_kind *gpu_cmd_kind(uint32_t type)
{
    for (size_t i = 0; i < sizeof(gpu_cmds) / sizeof(gpu_cmds[0]); i++)
        if (gpu_cmds[i].type == type)
            return &gpu_cmds[i];
    return NULL;
}

/* The command of `len` bytes at the start of the readable part; false
 * (and a line) when the guest sent less. */
static bool gpu_req_read(struct gpu *g, const struct gpu_req *req, void *cmd,
                         size_t len)
{
    const struct xvdm_chain *ch = req->ch;

    if (iov_copy(ch->iov, ch->out_num, 0, cmd, len, false) == len)
        return true;
    xvdm_dev_guest_error(g->dev,
                         "controlq: request 0x%x of %u bytes, %zu needed",
                         le32toh(req->hdr.type), ch->out_len, len);
    return false;
}

/* The answer's type; its bytes in *len when more than the header. */
static uint32_t gpu_cmd_run(struct gpu *g, const struct gpu_req *req,
                            union gpu_resp *resp, size_t *len)
{
    uint32_t type = le32toh(req->hdr.type);
    const struct gpu_cmd_kind *k = gpu_cmd_kind(type);
    union gpu_cmd c;

    if (!k) {
        xvdm_dev_guest_error(g->dev, "controlq: command 0x%x not served", type);
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    }
    if (!gpu_req_read(g, req, &c, k->len))
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    return k->serve ? k->serve(g, req, &c) : k->query(g, &c, resp, len);
}

/* The answer's header: its type, and a fenced request's fence echoed. */
static void gpu_answer_hdr(const struct gpu_req *req, uint32_t type,
                           struct virtio_gpu_ctrl_hdr *hdr)
{
    hdr->type = htole32(type);
    if (!(le32toh(req->hdr.flags) & VIRTIO_GPU_FLAG_FENCE))
        return;
    hdr->flags = htole32(VIRTIO_GPU_FLAG_FENCE);
    hdr->fence_id = req->hdr.fence_id;
    hdr->ctx_id = req->hdr.ctx_id;
}

uint32_t gpu_cmd_serve(struct gpu *g, const struct xvdm_chain *ch)
{
    struct gpu_req req = {.ch = ch};
    size_t len = sizeof(struct virtio_gpu_ctrl_hdr);
    union gpu_resp resp;
    uint32_t type;

    memset(&resp, 0, sizeof(resp));
    if (iov_copy(ch->iov, ch->out_num, 0, &req.hdr, sizeof(req.hdr), false) <
        sizeof(req.hdr)) {
        memset(&req.hdr, 0, sizeof(req.hdr));
        xvdm_dev_guest_error(g->dev,
                             "controlq: request of %u bytes, shorter than "
                             "its header",
                             ch->out_len);
        type = VIRTIO_GPU_RESP_ERR_UNSPEC;
    } else {
        type = gpu_cmd_run(g, &req, &resp, &len);
    }
    gpu_answer_hdr(&req, type, &resp.hdr);
    if (ch->in_len < len)
        xvdm_dev_guest_error(g->dev,
                             "controlq: answer 0x%x of %zu bytes, room for %u",
                             type, len, ch->in_len);
    return (uint32_t)iov_copy(ch->iov + ch->out_num, ch->in_num, 0, &resp, len,
                              true);
}
