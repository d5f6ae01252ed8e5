/* SPDX-License-Identifier: MIT */
/* The guest's half of virtio-gpu's queues, without Check (gpu-guest.h). */
#include <errno.h>
#include <linux/virtio_config.h>
#include <stdio.h>
#include <string.h>

#include "dev.h"
#include "gpu-guest.h"

int gpu_guest_start(struct harness *h, struct vdriver *d, const char *opts)
{
    char spec[160];
    const char *specs[] = {spec};
    int ret;

    snprintf(spec, sizeof(spec), "gpu%s", opts);
    ret = harness_start(h, specs, 1);
    if (ret)
        return ret;
    vdriver_init(d, h->sim, h->specs[0].base, h->specs[0].irq,
                 sim_ram_base(h->sim) + (1 << 20), 32 << 20);
    ret = vdriver_probe(d, GPU_GUEST_ID,
                        DEV_TRANSPORT_FEATURES | 1ULL << VIRTIO_GPU_F_EDID);
    for (unsigned q = GPU_QUEUE_CONTROL; ret == 0 && q <= GPU_QUEUE_CURSOR; q++)
        ret = vdriver_setup_queue(d, q, GPU_QUEUE_SIZE);
    if (ret == 0)
        vdriver_driver_ok(d);
    ret = ret ? ret : d->io_error;
    if (ret)
        harness_stop(h);
    return ret;
}

int gpu_guest_dma(struct sim *sim, uint64_t gpa, uint64_t len, uint64_t *addr)
{
    *addr = gpa;
    return vdriver_grants() ? sim_grant(sim, gpa, len, true, addr) : 0;
}

uint16_t gpu_guest_post(struct vdriver *d, unsigned q, const void *req,
                        uint32_t req_len, const void *data, uint32_t data_len,
                        uint32_t resp_len, uint64_t *rs)
{
    struct guest_buf b[2 + GPU_GUEST_DATA_PAGES];
    unsigned n = 0;
    uint64_t gpa = vdriver_alloc(d, req_len, 8);
    uint16_t head;

    memcpy(vdriver_ptr(d, gpa), req, req_len);
    b[n++] = (struct guest_buf){gpa, req_len, false};
    for (uint32_t at = 0; at < data_len; at += 4096) {
        uint32_t len = data_len - at < 4096 ? data_len - at : 4096;

        gpa = vdriver_alloc(d, len, 8);
        memcpy(vdriver_ptr(d, gpa), (const uint8_t *)data + at, len);
        b[n++] = (struct guest_buf){gpa, len, false};
    }
    if (resp_len) {
        *rs = vdriver_alloc(d, resp_len + GPU_GUEST_GUARD, 8);
        memset(vdriver_ptr(d, *rs), 0xa5, resp_len + GPU_GUEST_GUARD);
        b[n++] = (struct guest_buf){*rs, resp_len, true};
    }
    head = guest_ring_add_chain(&d->ring[q], b, n);
    guest_ring_publish(&d->ring[q], head);
    return head;
}

int gpu_guest_collect(struct vdriver *d, unsigned q, uint16_t head, uint64_t rs,
                      void *resp, uint32_t resp_len, uint32_t *len)
{
    const uint8_t *p;
    uint32_t id;

    if (vdriver_next_used(d, q, &id, len, 5000))
        return -ETIMEDOUT;
    if (id != head)
        return -EPROTO;
    if (!resp_len)
        return 0;
    p = vdriver_ptr(d, rs);
    memcpy(resp, p, resp_len);
    for (unsigned k = 0; k < GPU_GUEST_GUARD; k++)
        if (p[resp_len + k] != 0xa5)
            return -EFAULT;
    return 0;
}

int gpu_guest_send(struct vdriver *d, unsigned q, const void *req,
                   uint32_t req_len, const void *data, uint32_t data_len,
                   void *resp, uint32_t resp_len, uint32_t *len)
{
    uint64_t rs = 0;
    uint16_t head =
        gpu_guest_post(d, q, req, req_len, data, data_len, resp_len, &rs);

    vdriver_kick(d, q);
    return gpu_guest_collect(d, q, head, rs, resp, resp_len, len);
}
