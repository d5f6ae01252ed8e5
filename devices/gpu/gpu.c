/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu, 2D (VIRTIO 1.2 §5.7): a guest's framebuffers kept in dom0,
 * scanout 0 shown over VNC (vnc=, gpu-vnc.c) and read by host consumers
 * (gpu_scanout_snapshot()). This file: options, life cycle, config
 * space, draining the two queues.
 */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"

#define GPU_DEVICE_ID 16
/* An EDID detailed timing holds 12 bits of each (gpu-edid.c). */
#define GPU_MAX_MEMORY_DEFAULT (256ULL << 20)

static const char *const gpu_options[] = {
    "xres=N: width of each output's mode, 16..4095 (default 1024)",
    "yres=N: height of each output's mode, 16..4095 (default 768)",
    "outputs=N: scanouts the guest gets, 1..16 (default 1)",
    "max-memory=SIZE: host memory the guest's resources may take, "
    "1M..16G (default 256M)",
    "vnc=ADDR: show scanout 0 over VNC on unix:PATH (a socket of mode "
    "0600), PORT or HOST:PORT (TCP; HOST 127.0.0.1 unless given); needs "
    "libvncserver",
    "vnc-password-file=FILE: the VNC password is FILE's first line "
    "(default: no password)",
    NULL,
};

static int gpu_parse(struct gpu *g, const struct xvdm_options *opts)
{
    uint64_t xres = 1024, yres = 768, outputs = 1;
    uint64_t mem = GPU_MAX_MEMORY_DEFAULT;
    int ret;

    ret = xvdm_opt_u64(g->dev, opts, "xres", GPU_RES_MIN, GPU_RES_MAX, &xres);
    if (!ret)
        ret =
            xvdm_opt_u64(g->dev, opts, "yres", GPU_RES_MIN, GPU_RES_MAX, &yres);
    if (!ret)
        ret = xvdm_opt_u64(g->dev, opts, "outputs", 1, VIRTIO_GPU_MAX_SCANOUTS,
                           &outputs);
    if (!ret)
        ret = xvdm_opt_u64(g->dev, opts, "max-memory", 1ULL << 20, 16ULL << 30,
                           &mem);
    g->xres = (uint32_t)xres;
    g->yres = (uint32_t)yres;
    g->outputs = (uint32_t)outputs;
    g->max_memory = mem;
    return ret;
}

void gpu_mode_change(struct gpu *g, uint32_t xres, uint32_t yres)
{
    g->xres = xres;
    g->yres = yres;
    g->config.events_read |= VIRTIO_GPU_EVENT_DISPLAY;
    xvdm_dev_config_changed(g->dev);
    xvdm_dev_log(g->dev, XVDM_LOG_DEBUG, "mode now %ux%u", xres, yres);
}

/* vnc= and vnc-password-file=, once the mode is known. */
static int gpu_vnc_start(struct gpu *g, const struct xvdm_options *opts)
{
    const char *addr = xvdm_opt_get(opts, "vnc");
    const char *password_file = xvdm_opt_get(opts, "vnc-password-file");

    if (!addr && password_file) {
        xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                     "vnc-password-file='%s' without vnc=", password_file);
        return -EINVAL;
    }
    if (!addr)
        return 0;
#ifdef GPU_VNC
    return gpu_vnc_create(g, addr, password_file);
#else
    xvdm_dev_log(g->dev, XVDM_LOG_ERROR,
                 "vnc='%s': this xvdm was built without libvncserver "
                 "(install libvncserver-dev and rebuild)",
                 addr);
    return -ENOTSUP;
#endif
}

/* Serve the chains the driver made available, in order, until they or
 * this turn's GPU_TURN_COST run out; then the rest waits for the loop's
 * next turn. */
static void gpu_drain(struct gpu *g, struct xvdm_queue *q,
                      uint32_t (*serve)(struct gpu *g,
                                        const struct xvdm_chain *ch))
{
    struct iovec iov[GPU_IOV_MAX];
    struct xvdm_chain ch = {.iov = iov, .iov_cap = GPU_IOV_MAX};

    g->turn_cost = 0;
    while (g->turn_cost < GPU_TURN_COST && xvdm_queue_next(q, &ch) == 1) {
        xvdm_queue_push(q, &ch, serve(g, &ch));
        ch = (struct xvdm_chain){.iov = iov, .iov_cap = GPU_IOV_MAX};
    }
    if (g->turn_cost >= GPU_TURN_COST)
        xvdm_queue_defer(q);
    xvdm_queue_notify_guest(q);
}

static void gpu_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    gpu_drain(priv, q,
              index == GPU_QUEUE_CONTROL ? gpu_cmd_serve : gpu_cursor_serve);
}

/* §5.7.6: a reset ends every resource and scanout the driver made. */
static void gpu_reset(void *priv)
{
    struct gpu *g = priv;

    gpu_resources_clear(g);
    memset(g->scanout, 0, sizeof(g->scanout));
    memset(&g->cursor, 0, sizeof(g->cursor));
    g->config.events_read = 0;
}

static void gpu_config_read(void *priv, uint32_t offset, void *buf,
                            uint32_t len)
{
    struct gpu *g = priv;

    memcpy(buf, (const uint8_t *)&g->config + offset, len);
}

/* §5.7.4: events_clear is the driver's to write; a bit set there clears
 * it in events_read. Nothing else is writable. */
static void gpu_config_write(void *priv, uint32_t offset, const void *buf,
                             uint32_t len)
{
    const uint32_t at = offsetof(struct virtio_gpu_config, events_clear);
    struct gpu *g = priv;
    uint32_t clear = 0;

    if (offset != at || len != sizeof(clear)) {
        xvdm_dev_guest_error(g->dev,
                             "config write of %u bytes at %u: only "
                             "events_clear is writable",
                             len, offset);
        return;
    }
    memcpy(&clear, buf, sizeof(clear));
    g->config.events_read &= ~clear;
}

static void gpu_destroy(void *priv)
{
    struct gpu *g = priv;

    gpu_vnc_destroy(g);
    gpu_resources_clear(g);
    free(g);
}

static int gpu_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                      struct xvdm_device_setup *setup, void **priv)
{
    struct gpu *g = calloc(1, sizeof(*g));
    int ret;

    if (!g)
        return -ENOMEM;
    g->dev = dev;
    ret = gpu_resource_hash_init(g);
    if (!ret)
        ret = gpu_parse(g, opts);
    if (!ret)
        ret = gpu_vnc_start(g, opts);
    if (ret) {
        gpu_vnc_destroy(g);
        free(g);
        return ret;
    }
    g->config.num_scanouts = htole32(g->outputs);
    xvdm_dev_log(
        dev, XVDM_LOG_INFO, "%u output(s) of %ux%u, resources up to %llu bytes",
        g->outputs, g->xres, g->yres, (unsigned long long)g->max_memory);
    setup->features = 1ULL << VIRTIO_GPU_F_EDID;
    setup->num_queues = 2;
    setup->queue_size_max[GPU_QUEUE_CONTROL] = GPU_QUEUE_SIZE;
    setup->queue_size_max[GPU_QUEUE_CURSOR] = GPU_QUEUE_SIZE;
    setup->config_size = sizeof(g->config);
    *priv = g;
    return 0;
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "gpu",
    .summary = "2D display adapter (virtio-gpu): keeps the guest's "
               "framebuffers in dom0, shows the first over VNC (vnc=)",
    .device_id = GPU_DEVICE_ID,
    .options = gpu_options,
    .create = gpu_create,
    .destroy = gpu_destroy,
    .config_read = gpu_config_read,
    .config_write = gpu_config_write,
    .queue_notify = gpu_queue_notify,
    .reset = gpu_reset,
};
