/* SPDX-License-Identifier: MIT */
/*
 * xvdm device-module ABI.
 *
 * A device module implements one virtio device type (rng, blk, net, ...).
 * It is a shared object that exports one symbol, XVDM_DEVICE_SYMBOL, of type
 * `const struct xvdm_device_ops`. xvdm loads it with dlopen(), refuses it
 * when its abi_version is newer than the one xvdm was built with or older
 * than XVDM_DEVICE_ABI_VERSION_MIN, and then drives it through the ops
 * table, reading only the fields the module's version has.
 *
 * A module never sees Xen, ioreqs, MMIO or guest physical addresses: the
 * transport and the virtqueue layer have checked every guest value before a
 * module gets it. What a module gets is:
 *   - its options (key=value pairs from the command line or xenstore),
 *   - descriptor chains as iovecs pointing straight into guest memory,
 *   - calls to complete chains and to signal the guest,
 *   - a way to watch its own file descriptors in xvdm's event loop.
 *
 * Threading: every callback runs on the guest's event-loop thread, and every
 * xvdm_* function below must be called from that thread.
 */
#ifndef XVDM_DEVICE_H
#define XVDM_DEVICE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any change to this header: 2 added xvdm_device_ops.reload and
 * xvdm_dev_publish(); 3 added xvdm_queue_next(); 4 xvdm_host_path(); 5
 * xvdm_queue_held_back(); 6 xvdm_dev_batch(); 7 xvdm_dev_guest_read() and
 * xvdm_dev_guest_view(); 8 xvdm_dev_offer_fd() and xvdm_dev_take_fd(). */
#define XVDM_DEVICE_ABI_VERSION 8
/* The oldest version xvdm still loads: later versions only added fields at
 * the end of the ops table, which xvdm does not read from older modules. */
#define XVDM_DEVICE_ABI_VERSION_MIN 1

/* The symbol every module exports: const struct xvdm_device_ops. */
#define XVDM_DEVICE_SYMBOL "xvdm_device_module"

/* Most queues one device may have. */
#define XVDM_QUEUES_MAX 64

/* Largest queue a device may offer (VIRTIO 1.2 §2.7: 32768 for split). */
#define XVDM_QUEUE_SIZE_MAX 32768

/* Largest config space (virtio-mmio: 0x100 .. end of a 0x200 window). */
#define XVDM_CONFIG_SIZE_MAX 0x100

/* Log levels for xvdm_dev_log(). */
enum xvdm_log_level {
    XVDM_LOG_ERROR = 0,
    XVDM_LOG_WARN = 1,
    XVDM_LOG_INFO = 2,
    XVDM_LOG_DEBUG = 3,
};

struct xvdm_dev;     /* one device instance, owned by xvdm */
struct xvdm_queue;   /* one virtqueue of a device, owned by xvdm */
struct xvdm_options; /* the key=value options a device was given */

/*
 * One descriptor chain popped from a queue. The caller provides the iovec
 * storage (iov, iov_cap); xvdm fills the rest. Device-readable buffers come
 * first, then device-writable ones:
 *   iov[0 .. out_num)                  driver -> device ("out")
 *   iov[out_num .. out_num + in_num)   device -> driver ("in")
 * Every iovec lies inside the guest's mapped RAM; out_len and in_len are the
 * byte totals of each part (they cannot overflow: xvdm bounds them).
 */
struct xvdm_chain {
    struct iovec *iov;
    uint16_t iov_cap;
    uint16_t out_num;
    uint16_t in_num;
    uint16_t head; /* which chain this is; pass the chain back to push */
    uint32_t out_len;
    uint32_t in_len;
};

/* What create() tells xvdm about the device. */
struct xvdm_device_setup {
    /* Device-specific feature bits offered to the driver. xvdm adds the
     * transport's own (VERSION_1, INDIRECT_DESC, EVENT_IDX). */
    uint64_t features;
    /* Number of virtqueues, 1..XVDM_QUEUES_MAX, and the largest size each
     * may have (a power of two, 1..XVDM_QUEUE_SIZE_MAX). */
    uint16_t num_queues;
    uint16_t queue_size_max[XVDM_QUEUES_MAX];
    /* Bytes of device config space, 0..XVDM_CONFIG_SIZE_MAX. */
    uint32_t config_size;
};

struct xvdm_device_ops {
    uint32_t abi_version;   /* XVDM_DEVICE_ABI_VERSION */
    const char *name;       /* type name used in --device NAME,... */
    const char *summary;    /* one line for --list-devices */
    uint32_t device_id;     /* VIRTIO device id (VIRTIO 1.2 §5) */
    /* NULL-terminated list of option keys the device accepts, with a short
     * help text for each, as "key=VALUE: what it does". xvdm rejects any
     * other key before create() is called. May be NULL: no options. */
    const char *const *options;

    /* Set the device up from its options. Fill *setup; keep the state in
     * *priv. Return 0, or a negative errno after logging one line that names
     * the bad value (e.g. with xvdm_dev_log()). Required. */
    int (*create)(struct xvdm_dev *dev, const struct xvdm_options *opts,
                  struct xvdm_device_setup *setup, void **priv);
    /* Release everything create() took. Required. */
    void (*destroy)(void *priv);

    /* Read or write config space. xvdm guarantees
     * offset + len <= setup.config_size. config_write may be NULL (the
     * device's config is read-only; writes are ignored). */
    void (*config_read)(void *priv, uint32_t offset, void *buf, uint32_t len);
    void (*config_write)(void *priv, uint32_t offset, const void *buf,
                         uint32_t len);

    /* The driver set FEATURES_OK with these features (a subset of what was
     * offered). Return 0 to accept, negative errno to refuse. May be NULL. */
    int (*features_ok)(void *priv, uint64_t features);
    /* The driver set DRIVER_OK: queues that are ready may be used. May be
     * NULL. */
    void (*start)(void *priv);
    /* The driver kicked queue `index`. Required. */
    void (*queue_notify)(void *priv, struct xvdm_queue *q, unsigned index);
    /* Device reset (driver wrote Status = 0, or xvdm is shutting down).
     * On return the device must hold no chain and touch no guest memory:
     * xvdm forgets every queue right after. Required. */
    void (*reset)(void *priv);

    /* ---- from ABI version 2 on ---- */

    /* The operator asked for the backing to be looked at again (SIGHUP to
     * xvdm): e.g. a disk re-reads its size and, if it changed, updates its
     * config space and calls xvdm_dev_config_changed(). Called whatever
     * the driver's state. May be NULL. */
    void (*reload)(void *priv);
};

/* ---- options ---------------------------------------------------------- */

/* The value of `key`, or NULL when not given. */
const char *xvdm_opt_get(const struct xvdm_options *opts, const char *key);
/* Parse `key` as on/off (also yes/no, true/false, 1/0). Returns 0 and sets
 * *out (left as is when the key is absent), or -EINVAL after logging one
 * line naming the bad value. */
int xvdm_opt_bool(struct xvdm_dev *dev, const struct xvdm_options *opts,
                  const char *key, bool *out);
/* Parse `key` as an unsigned integer in [min, max] (decimal, 0x hex, and
 * k/M/G binary suffixes). Same return convention as xvdm_opt_bool(). */
int xvdm_opt_u64(struct xvdm_dev *dev, const struct xvdm_options *opts,
                 const char *key, uint64_t min, uint64_t max, uint64_t *out);

/* ---- device ----------------------------------------------------------- */

uint32_t xvdm_dev_domid(const struct xvdm_dev *dev);
/* "rng0", "blk1": the device's name in logs. */
const char *xvdm_dev_name(const struct xvdm_dev *dev);
/* Features the driver accepted (valid from features_ok() on). */
uint64_t xvdm_dev_features(const struct xvdm_dev *dev);
struct xvdm_queue *xvdm_dev_queue(struct xvdm_dev *dev, unsigned index);

/* Log a line prefixed with the domain and device name. */
void xvdm_dev_log(struct xvdm_dev *dev, enum xvdm_log_level level,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Log a guest misbehaviour at WARN, rate-limited per device, so a hostile
 * guest cannot flood dom0's log. */
void xvdm_dev_guest_error(struct xvdm_dev *dev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The guest broke the device's contract: set DEVICE_NEEDS_RESET and raise
 * a config-change interrupt (VIRTIO 1.2 §2.1.2). Queues stop until reset. */
void xvdm_dev_needs_reset(struct xvdm_dev *dev);
/* Config space changed: bump ConfigGeneration and interrupt the guest. */
void xvdm_dev_config_changed(struct xvdm_dev *dev);

/* Say something about the device where tools look for it, such as the
 * path of the pty a console is on. With --xenstore, `value` is written to
 * the node `key` of the device's xenstore directory: the backend
 * directory libxl made for it (/local/domain/0/backend/virtio/<domid>/
 * <devid>, or virtio_disk/... on Xen 4.17), or for a device of the
 * command line /local/domain/<backend domid>/device-model/<domid>/xvdm/
 * <name> (<name> as xvdm_dev_name()). The node is removed when the device
 * is destroyed. Without xenstore nothing is written and 0 is returned.
 * key: 1 to 64 letters, digits, '-' or '_'; a device may publish up to 8
 * keys (publishing one again overwrites it). 0, or a negative errno after
 * a logged line (-EINVAL: a bad key, -ENOSPC: too many keys, or the
 * store's error). */
int xvdm_dev_publish(struct xvdm_dev *dev, const char *key, const char *value);

/* The name by which the instance reaches dom0's file `path` now, for a
 * path it opens or connects to while serving (a Unix socket dom0 listens
 * on, say). Under --chroot DIR only paths inside DIR stay reachable: this
 * is `path` until the chroot is entered and the rest of it after DIR from
 * then on. NULL when `path` will not be reachable once serving (outside
 * DIR, or with a ".." component, which may leave DIR): check in create()
 * and refuse it naming --chroot. */
const char *xvdm_host_path(const char *path);

/* From ABI version 7 on: copy `len` bytes of the guest's memory at `addr`
 * into buf, for a
 * device whose requests carry guest addresses of their own, such as
 * virtio-gpu's backing pages (VIRTIO 1.2 §5.7.6). `addr` is what the
 * driver gave, as a descriptor holds it (a grant address in grant mode);
 * nothing of it stays mapped after the call. 0, or -EFAULT when any of it
 * is not the guest's to give (outside its RAM, not granted, no transport
 * yet). The bytes may change under a running guest: a copy, never a
 * view. buf NULL: nothing is mapped, only whether the range may be the
 * guest's is checked (inside one RAM region; in grant mode, a grant
 * address), at no cost per byte; whether it was granted is only known
 * when it is read. */
int xvdm_dev_guest_read(struct xvdm_dev *dev, uint64_t addr, void *buf,
                        uint64_t len);
/* From ABI version 7 on: guest [addr, addr + len), as xvdm_dev_guest_read()
 * reaches it, handed to fn piece by piece while each is mapped (a piece
 * per 16 MiB: each a mapping, which in grant mode is a hypercall), for a
 * device that copies out many parts of one range (virtio-gpu's rows) at
 * the cost of one mapping. fn must copy what it needs and keep nothing:
 * p is gone when it returns, and the guest may change the bytes under
 * it. 0, or -EFAULT (fn may have had the pieces before the bad one). */
typedef void xvdm_guest_piece_fn(void *arg, const void *p, uint64_t n);
int xvdm_dev_guest_view(struct xvdm_dev *dev, uint64_t addr, uint64_t len,
                        xvdm_guest_piece_fn *fn, void *arg);

/* From ABI version 8 on: one device of the instance handing a descriptor
 * to another, such as the keyboard events of a gpu's VNC viewers to an
 * input device. offer: `fd` is known as "<this device's name>.<key>"
 * ("gpu0.keyboard"; key: 1 to 16 of a-z and '-') until the device is
 * destroyed; the device keeps it open until then. 0, or a negative errno
 * after a logged line (-EEXIST, -ENOSPC: 16 offers per instance at
 * most). take: a descriptor of the caller's own (close-on-exec) for what
 * was offered as `name`; -ENOENT when nothing was (yet: devices are
 * created in the order given, so the offering one must come first),
 * -EBUSY when another device took it: an offer is taken once. */
int xvdm_dev_offer_fd(struct xvdm_dev *dev, const char *key, int fd);
int xvdm_dev_take_fd(struct xvdm_dev *dev, const char *name);

/* Watch `fd` in the event loop; cb(arg, revents) runs on readiness.
 * events are EPOLLIN/EPOLLOUT bits. Returns 0 or negative errno. */
int xvdm_dev_watch_fd(struct xvdm_dev *dev, int fd, uint32_t events,
                      void (*cb)(void *arg, uint32_t revents), void *arg);
/* Change the events watched on fd (e.g. stop reading while the guest has
 * no buffers). 0 events keeps the fd registered but idle. */
int xvdm_dev_modify_fd(struct xvdm_dev *dev, int fd, uint32_t events);
int xvdm_dev_unwatch_fd(struct xvdm_dev *dev, int fd);

/* ---- queues ----------------------------------------------------------- */

/*
 * Take the next available chain. Returns 1 and fills *chain, 0 when the
 * queue is empty (or not ready), or a negative errno when the guest broke
 * the queue (the device is then NEEDS_RESET; stop using the queue).
 * A chain with more buffers than chain->iov_cap is completed with 0 bytes
 * and skipped, with a rate-limited log line.
 */
int xvdm_queue_pop(struct xvdm_queue *q, struct xvdm_chain *chain);
/* Give a chain back to the driver, `written` bytes having been written into
 * its device-writable part (clamped to chain->in_len). */
void xvdm_queue_push(struct xvdm_queue *q, const struct xvdm_chain *chain,
                     uint32_t written);
/* Give n chains back at once: like n calls of xvdm_queue_push(), but the
 * driver sees all n used elements together (one used->idx update). For a
 * device that spreads one message over several chains, such as
 * virtio-net's merged receive buffers (VIRTIO 1.2 §5.1.6.4): a driver
 * that finds the first one must find the rest. */
void xvdm_queue_push_batch(struct xvdm_queue *q,
                           const struct xvdm_chain *const *chains,
                           const uint32_t *written, unsigned n);
/* After one or more pushes: interrupt the guest unless it asked not to be
 * (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). Nothing
 * pushed since the last interrupt: nothing to tell, no interrupt. */
void xvdm_queue_notify_guest(struct xvdm_queue *q);
/* Ask the driver not to kick while the device is busy draining, and to kick
 * again afterwards. xvdm_queue_enable_kicks() returns true when new chains
 * arrived meanwhile (pop again before sleeping). */
void xvdm_queue_disable_kicks(struct xvdm_queue *q);
bool xvdm_queue_enable_kicks(struct xvdm_queue *q);
/*
 * From ABI version 3 on: the next chain to serve from q, with everything
 * a device needs around it. Returns 1 and fills *chain, 0 when there is
 * nothing more to do now, or a negative errno when the guest broke the
 * queue (the device is NEEDS_RESET). From the first call on, the driver is
 * asked not to kick; before 0 is returned it is asked to kick again, and
 * chains it added meanwhile are returned first. At most a queue's worth
 * of chains is taken per turn of the event loop: then 0 is returned and
 * queue_notify() called again from the loop's next turn. A device whose
 * backend cannot take more stops calling it and calls it again when it
 * can. Complete the chains with xvdm_queue_push() and then call
 * xvdm_queue_notify_guest() once:
 *
 *     while (xvdm_queue_next(q, &chain) == 1)
 *         xvdm_queue_push(q, &chain, serve(&chain));
 *     xvdm_queue_notify_guest(q);
 */
int xvdm_queue_next(struct xvdm_queue *q, struct xvdm_chain *chain);
/* From ABI version 5 on, after xvdm_queue_next() returned 0: true when
 * chains may be left that this turn's share or the guest's grant budget
 * held back (queue_notify() is called again when they can be taken),
 * false when the driver had made no more available. For a device whose
 * requests come in groups (virtio-i2c's transactions): a group that ends
 * where the queue is empty is the driver's whole group; one that ends
 * where the queue was held back may not be. */
bool xvdm_queue_held_back(const struct xvdm_queue *q);
/* Call queue_notify() for this queue again soon, from the event loop, as
 * if the driver had kicked. A device drains a bounded number of chains per
 * call and defers the rest, so that a guest adding chains as fast as they
 * are taken (from another vCPU, or by DMA into its own ring) cannot keep
 * the loop, and every other device and vCPU, waiting. */
void xvdm_queue_defer(struct xvdm_queue *q);
/*
 * From ABI version 6 on, for a device that drains with xvdm_queue_next()
 * and completes from the loop's thread (in its fd callbacks): while it
 * has chains of a queue in flight (taken, not yet pushed), the driver is
 * not asked to kick that queue (chains it adds are taken as chains
 * complete: queue_notify() is called) and xvdm_queue_notify_guest()
 * raises the interrupt only once as many chains are done as are still in
 * flight; nothing waits longer than max_us. On Xen each kick and
 * each interrupt stops a guest vCPU for a round trip through dom0, so a
 * device whose requests finish close together (a disk) trades up to
 * max_us of latency for far fewer of them. 0 turns it off (the default).
 * Call it from create(). 0, or a negative errno (no timer).
 */
int xvdm_dev_batch(struct xvdm_dev *dev, uint32_t max_us);

#ifdef __cplusplus
}
#endif

#endif /* XVDM_DEVICE_H */
