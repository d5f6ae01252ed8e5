/* SPDX-License-Identifier: MIT */
/*
 * The demo for a machine without Xen: xvdm serves a virtio-rng device to a
 * simulated guest, through the same loop, ioreq dispatch, transport,
 * virtqueue and device module it runs on Xen. The guest side probes the
 * device as Linux does and asks it for entropy, printing what it sees.
 */
#include "config.h"

#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev.h"
#include "harness.h"
#include "vdriver.h"

#define REQUESTS 4
#define REQUEST_BYTES 32
#define WANTED DEV_TRANSPORT_FEATURES

static int fail(struct harness *h, const char *what)
{
    fprintf(stderr, "sim-demo: %s\n", what);
    harness_stop(h);
    return EXIT_FAILURE;
}

static void print_probe(struct vdriver *d)
{
    uint32_t magic = vdriver_read(d, VIRTIO_MMIO_MAGIC_VALUE);

    printf("guest: virtio-mmio window 0x%llx, SPI %u\n",
           (unsigned long long)d->base, d->irq);
    printf("guest:   magic \"%.4s\", version %u, device id %u (entropy "
           "source)\n", (const char *)&magic,
           vdriver_read(d, VIRTIO_MMIO_VERSION),
           vdriver_read(d, VIRTIO_MMIO_DEVICE_ID));
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

/* Ask for REQUEST_BYTES of entropy; 0 once the answer and its interrupt
 * came back. */
static int request_entropy(struct vdriver *d, unsigned n)
{
    struct guest_buf b = {vdriver_alloc(d, REQUEST_BYTES, 64),
                          REQUEST_BYTES, true};
    uint32_t id, len;
    int status;

    guest_ring_publish(&d->ring[0], guest_ring_add_chain(&d->ring[0], &b, 1));
    vdriver_kick(d, 0);
    status = vdriver_wait_irq(d, 5000);
    if (status < 0 || !guest_ring_get_used(&d->ring[0], &id, &len))
        return -1;
    guest_ring_enable_cb(&d->ring[0]);
    printf("guest: request %u: %u bytes, interrupt status 0x%x, "
           "interrupts so far %u: ", n, len, status,
           sim_irq_edges(d->sim, d->irq));
    print_hex(vdriver_ptr(d, b.gpa), len);
    return 0;
}

int main(void)
{
    const char *specs[] = {"rng"};
    struct harness h;
    struct vdriver d;

    printf("xvdm on a simulated Xen host: domain 1, 1 vCPU, %llu MiB\n",
           HARNESS_RAM_SIZE >> 20);
    if (harness_start(&h, specs, 1))
        return EXIT_FAILURE;
    vdriver_init(&d, h.sim, h.specs[0].base, h.specs[0].irq,
                 sim_ram_base(h.sim) + (1 << 20), 1 << 20);
    print_probe(&d);
    if (vdriver_probe(&d, VIRTIO_ID_RNG, WANTED))
        return fail(&h, "probe failed");
    printf("guest:   features offered 0x%llx, accepted 0x%llx\n",
           (unsigned long long)d.offered, (unsigned long long)d.features);
    if (vdriver_setup_queue(&d, 0, 64))
        return fail(&h, "queue setup failed");
    vdriver_driver_ok(&d);
    printf("guest:   queue 0: 64 entries, ready; status 0x%x (DRIVER_OK)\n",
           vdriver_status(&d));
    for (unsigned i = 0; i < REQUESTS; i++)
        if (request_entropy(&d, i + 1))
            return fail(&h, "no answer from the device");
    vdriver_reset(&d);
    printf("guest: device reset, status 0x%x\n", vdriver_status(&d));
    if (d.io_error)
        return fail(&h, "a register access failed");
    harness_stop(&h);
    printf("done: the guest's virtio-rng driver got entropy from xvdm\n");
    return EXIT_SUCCESS;
}
