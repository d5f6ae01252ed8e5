/* SPDX-License-Identifier: MIT */
/*
 * virtio-rng (VIRTIO 1.2 §5.4): one queue of device-writable buffers, each
 * filled with bytes from the host kernel's CSPRNG. Also the smallest
 * complete example of a device module: it includes only <xvdm/device.h>
 * and libc, and builds out of tree against the installed header.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include <xvdm/device.h>

#define RNG_DEVICE_ID 4
#define RNG_QUEUE_SIZE 256
#define RNG_IOV_MAX 64
/* Per request, so one greedy buffer cannot keep the loop busy for long;
 * the driver asks again for more. */
#define RNG_REQUEST_MAX (64 * 1024)

struct rng {
    struct xvdm_dev *dev;
};

static const char *const rng_options[] = {NULL};

static int rng_create(struct xvdm_dev *dev, const struct xvdm_options *opts,
                      struct xvdm_device_setup *setup, void **priv)
{
    struct rng *rng = calloc(1, sizeof(*rng));

    if (!rng)
        return -ENOMEM;
    rng->dev = dev;
    setup->num_queues = 1;
    setup->queue_size_max[0] = RNG_QUEUE_SIZE;
    *priv = rng;
    return 0;
}

static void rng_destroy(void *priv)
{
    free(priv);
}

/* Fill the chain's writable buffers, up to RNG_REQUEST_MAX in total. */
static uint32_t rng_fill(struct rng *rng, const struct xvdm_chain *chain)
{
    uint32_t done = 0;

    for (unsigned i = chain->out_num; i < chain->out_num + chain->in_num;
         i++) {
        size_t want = chain->iov[i].iov_len;
        ssize_t n;

        if (want > RNG_REQUEST_MAX - done)
            want = RNG_REQUEST_MAX - done;
        /* Non-blocking: the loop must never wait for the entropy pool. */
        n = getrandom(chain->iov[i].iov_base, want, GRND_NONBLOCK);
        if (n < 0) {
            /* Before dom0's pool is seeded every request would say it. */
            xvdm_dev_guest_error(rng->dev, "getrandom: errno %d", errno);
            break;
        }
        done += (uint32_t)n;
        if ((size_t)n < chain->iov[i].iov_len || done == RNG_REQUEST_MAX)
            break;
    }
    return done;
}

/* Serve the chains the driver made available, then interrupt once. */
static void rng_queue_notify(void *priv, struct xvdm_queue *q, unsigned index)
{
    struct rng *rng = priv;
    struct iovec iov[RNG_IOV_MAX];
    struct xvdm_chain chain = {.iov = iov, .iov_cap = RNG_IOV_MAX};

    while (xvdm_queue_next(q, &chain) == 1)
        xvdm_queue_push(q, &chain, rng_fill(rng, &chain));
    xvdm_queue_notify_guest(q);
}

/* Requests complete inside queue_notify, so nothing is held across it. */
static void rng_reset(void *priv)
{
}

const struct xvdm_device_ops xvdm_device_module = {
    .abi_version = XVDM_DEVICE_ABI_VERSION,
    .name = "rng",
    .summary = "entropy source (virtio-rng) fed by the host's getrandom()",
    .device_id = RNG_DEVICE_ID,
    .options = rng_options,
    .create = rng_create,
    .destroy = rng_destroy,
    .queue_notify = rng_queue_notify,
    .reset = rng_reset,
};
