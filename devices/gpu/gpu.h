/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu, 2D only (VIRTIO 1.2 §5.7): the state the module's files
 * share. gpu.c: options, life cycle, config space, the queues;
 * gpu-cmd.c: controlq requests and their answers; gpu-resource.c:
 * resources and their guest backing; gpu-scanout.c: scanouts, flushes
 * and what a host consumer reads of them; gpu-cursor.c: the cursorq;
 * gpu-edid.c: the EDID block of an output; gpu-vnc.c: scanout 0 over
 * VNC (vnc=, with libvncserver), gpu-vnc-listen.c: where it listens.
 */
#ifndef XVDM_GPU_H
#define XVDM_GPU_H

#include <linux/virtio_gpu.h>
#include <stdbool.h>
#include <stdint.h>

#include <xvdm/device.h>

#define GPU_QUEUE_CONTROL 0
#define GPU_QUEUE_CURSOR 1
#define GPU_QUEUE_SIZE 256
#define GPU_BYTES_PER_PIXEL 4u
/* Width and height of a resource, at most: as QEMU's 16384, and it bounds
 * a transfer's rows, each a mapping of guest memory. */
#define GPU_SIDE_MAX 16384u
/* Resources one device holds at once, whatever their size: bounds the
 * lookup's chains (GPU_BUCKETS) as max-memory bounds their pixels. */
#define GPU_RESOURCES_MAX 16384
#define GPU_BUCKET_BITS 12
#define GPU_BUCKETS (1u << GPU_BUCKET_BITS)
/* Backing entries one resource may have, as QEMU allows. */
#define GPU_BACKING_ENTRIES_MAX 16384
/* Buffers of one request. Linux sends the command, the backing entries
 * and the answer; it puts an entries list it had to vmalloc() in one
 * buffer per page, so the largest takes 16384 * 16 / 4096 = 64 of them.
 * A request with more is skipped by xvdm with a line. */
#define GPU_IOV_MAX                                                            \
    (2 + GPU_BACKING_ENTRIES_MAX * sizeof(struct virtio_gpu_mem_entry) / 4096)
/* What one drain of a queue may spend on guest memory before it yields
 * the loop to the guest's other devices and vCPUs (the rest of the queue
 * waits for the loop's next turn, and the core drains a deferred queue
 * once a turn however often it is kicked): bytes of backing mapped for
 * transfers, each mapping counted as GPU_MAP_COST bytes more (in grant
 * mode a map and an unmap in the hypervisor, costing as much as copying
 * tens of KiB), and backing entries read. One request may take it past
 * this, by at most its resource's bytes (1 GiB) and a mapping per backing
 * entry holding its rows. */
#define GPU_TURN_COST (64ULL << 20)
#define GPU_MAP_COST (64u << 10)
/* A mode's sides (xres=, yres=, and what a VNC viewer may ask for). */
#define GPU_RES_MIN 16u
#define GPU_RES_MAX 4095u
/* vnc='s viewers at once: each takes two threads, and whoever reaches
 * the socket may open more (a person needs one, a script another). */
#define GPU_VNC_VIEWERS_MAX 8
/* The side of the squares a flush marks as changed on the VNC screen
 * (gpu_vnc_mark()): a power of 2. */
#define GPU_VNC_TILE 64u
/* The cursor image Linux's driver sends (virtgpu_plane.c), kept whole. */
#define GPU_CURSOR_SIDE 64u
#define GPU_EDID_SIZE 128

/* One range of guest memory backing a resource; `start` is its offset
 * in the backing as a whole. */
struct gpu_entry {
    uint64_t addr;
    uint64_t start;
    uint32_t len;
};

struct gpu_resource {
    struct gpu_resource *next; /* in its bucket */
    uint32_t id;
    uint32_t format;
    uint32_t width, height;
    uint8_t *pixels; /* width * height * 4, the host's copy */
    struct gpu_entry *backing;
    uint32_t nr_backing;
    uint64_t backing_len;
    uint64_t cost; /* bytes counted against max-memory */
};

struct gpu_scanout {
    struct gpu_resource *res; /* NULL: disabled */
    struct virtio_gpu_rect r; /* host order, inside res */
    uint64_t flushes;         /* flushes that touched r */
};

/* The cursor as its last UPDATE_CURSOR set it: the image is a copy of its
 * resource's top-left 64x64 pixels then (zeros where the resource is
 * smaller), so the resource may change or go without changing it. The
 * position and hot spot are as the guest gave them, unchecked: whatever
 * draws the cursor clamps them. */
struct gpu_cursor {
    uint32_t scanout, x, y;
    uint32_t resource_id, hot_x, hot_y;
    uint32_t format;
    uint8_t image[GPU_CURSOR_SIDE * GPU_CURSOR_SIDE * GPU_BYTES_PER_PIXEL];
};

struct gpu_vnc; /* gpu-vnc.c */

struct gpu {
    struct xvdm_dev *dev;
    uint32_t xres, yres, outputs;
    uint64_t max_memory;
    uint64_t mem_used;
    unsigned nr_resources;
    /* Resources by id, hashed with a multiplier drawn at create(): a
     * guest that cannot know it cannot choose ids that share a chain. */
    uint64_t hash_mul;
    struct gpu_resource *buckets[GPU_BUCKETS];
    struct gpu_scanout scanout[VIRTIO_GPU_MAX_SCANOUTS];
    struct gpu_cursor cursor;
    struct virtio_gpu_config config;
    uint64_t turn_cost;  /* of the drain under way: see GPU_TURN_COST */
    struct gpu_vnc *vnc; /* vnc=: the server showing scanout 0, or NULL */
};

/* A request as gpu-cmd.c serves it: the chain and its header. */
struct gpu_req {
    const struct xvdm_chain *ch;
    struct virtio_gpu_ctrl_hdr hdr; /* as the guest sent it */
};

/* The command, as read from the chain (little-endian, as sent). */
union gpu_cmd {
    struct virtio_gpu_ctrl_hdr hdr;
    struct virtio_gpu_resource_create_2d create;
    struct virtio_gpu_resource_unref unref;
    struct virtio_gpu_set_scanout scanout;
    struct virtio_gpu_resource_flush flush;
    struct virtio_gpu_transfer_to_host_2d transfer;
    struct virtio_gpu_resource_attach_backing attach;
    struct virtio_gpu_resource_detach_backing detach;
    struct virtio_gpu_cmd_get_edid edid;
};

/* A command answered with its header alone: the VIRTIO_GPU_RESP_* type. */
typedef uint32_t gpu_cmd_fn(struct gpu *g, const struct gpu_req *req,
                            const union gpu_cmd *c);

/* ---- gpu-cmd.c ---- */
/* Serve one controlq chain; the bytes written into it. */
uint32_t gpu_cmd_serve(struct gpu *g, const struct xvdm_chain *ch);

/* ---- gpu-resource.c ---- */
struct gpu_resource *gpu_resource_find(const struct gpu *g, uint32_t id);
/* The hash multiplier for a new device: 0, or a negative errno. */
int gpu_resource_hash_init(struct gpu *g);
gpu_cmd_fn gpu_resource_create, gpu_resource_unref, gpu_resource_attach,
    gpu_resource_detach, gpu_resource_transfer;
/* A guest's rectangle in host order. */
struct virtio_gpu_rect gpu_rect_host(const struct virtio_gpu_rect *le);
/* Is r (host order) non-empty and inside res? */
bool gpu_rect_inside(const struct gpu_resource *res,
                     const struct virtio_gpu_rect *r);
/* Resource `id` for command `what`, with r inside it; else NULL, *resp
 * the error and a line said. */
struct gpu_resource *gpu_resource_rect(struct gpu *g, const char *what,
                                       uint32_t id,
                                       const struct virtio_gpu_rect *r,
                                       uint32_t *resp);
/* Every resource gone (device reset, destroy). */
void gpu_resources_clear(struct gpu *g);

/* ---- gpu-scanout.c ---- */
gpu_cmd_fn gpu_scanout_set, gpu_scanout_flush;
/* res is going away: scanouts showing it are disabled. */
void gpu_scanout_forget(struct gpu *g, const struct gpu_resource *res);

/* What a host consumer of the framebuffer sees of scanout `id`: the
 * pixels of its rectangle of its resource, rows packed (width * 4 bytes
 * each), in the resource's VIRTIO_GPU_FORMAT_*, as of now. Exported
 * from the module for that consumer (tests, for now); called on the
 * loop's thread, between requests. 0 with *info
 * filled and the pixels in buf; -ENOENT when the scanout is disabled or
 * not there; -ENOSPC when size is less than width * height * 4 (*info
 * filled, nothing copied). */
struct gpu_snapshot_info {
    uint32_t width, height, format;
    uint64_t flushes; /* RESOURCE_FLUSHes that touched it so far */
};
int gpu_scanout_snapshot(const struct gpu *g, unsigned id, void *buf,
                         size_t size, struct gpu_snapshot_info *info);

/* ---- gpu-cursor.c ---- */
/* Serve one cursorq chain: nothing is written back (§5.7.6.10). */
uint32_t gpu_cursor_serve(struct gpu *g, const struct xvdm_chain *ch);

/* ---- gpu.c ---- */
/* Every output's mode is now xres x yres: the driver is told with
 * VIRTIO_GPU_EVENT_DISPLAY and a config-change interrupt (§5.7.4), and
 * asks for the displays and EDIDs again. */
void gpu_mode_change(struct gpu *g, uint32_t xres, uint32_t yres);

/* ---- gpu-edid.c ---- */
/* The 128-byte EDID 1.4 base block of an output of xres x yres. */
void gpu_edid_build(uint8_t edid[GPU_EDID_SIZE], uint32_t xres, uint32_t yres);

/* ---- gpu-vnc.c, gpu-vnc-listen.c (built with libvncserver: GPU_VNC) ---- */
#ifdef GPU_VNC
/* vnc=ADDR, with vnc-password-file=FILE or NULL: a VNC server of xres x
 * yres showing scanout 0, served from now on by libvncserver's threads.
 * 0, or a negative errno after a line naming the bad value. */
int gpu_vnc_create(struct gpu *g, const char *addr, const char *password_file);
/* Stop the server (its threads joined) and free it; g->vnc NULL. */
void gpu_vnc_destroy(struct gpu *g);
/* Scanout 0 was set, turned off or lost its resource: the whole screen
 * again, black where nothing is shown. */
void gpu_vnc_show(struct gpu *g);
/* A viewer asked for a screen of w x h (checked against
 * gpu_vnc_input_create()'s most): the mode changes to it; the viewers'
 * screen keeps its size, showing the mode at its top left. */
void gpu_vnc_resize(struct gpu *g, uint32_t w, uint32_t h);
/* Rectangle r (host order, inside res) of resource res was flushed. */
void gpu_vnc_flush(struct gpu *g, const struct gpu_resource *res,
                   const struct virtio_gpu_rect *r);
/* The viewers of a VNC screen (libvncserver's struct _rfbScreenInfo) and
 * their threads: counted from now on (the screen's newClientHook and
 * screenData). `data` is what gpu_vnc_viewers_data() gives a viewer's
 * thread. 0, or -ENOMEM. */
struct _rfbScreenInfo;
struct _rfbClientRec;
struct gpu_vnc_viewers;
int gpu_vnc_viewers_watch(struct _rfbScreenInfo *s, void *data,
                          struct gpu_vnc_viewers **vw);
void *gpu_vnc_viewers_data(struct _rfbClientRec *cl);
/* A viewer's thread: it sent keys or pointer (so it is past the
 * password); when it goes, what the guest was told is down is let go. */
void gpu_vnc_viewer_typed(struct _rfbClientRec *cl);
/* Disconnect every viewer that came after_s seconds ago or more and is
 * not past the handshake yet (version, security, password, init). */
void gpu_vnc_viewers_expire(struct _rfbScreenInfo *s, unsigned after_s);
/* Once the screen's listener is stopped: every viewer disconnected, its
 * threads joined and vw freed; or, when some threads did not end, how
 * many (then vw and the screen must stay). vw NULL: 0. */
unsigned gpu_vnc_viewers_end(struct _rfbScreenInfo *s,
                             struct gpu_vnc_viewers *vw);
/* gpu-vnc-guard.c. Before the server is made: 0, or a negative errno
 * after a line (-EBUSY: another device of the process has vnc=). */
int gpu_vnc_guard_start(struct xvdm_dev *dev, const char *addr);
/* Once made, listening: its handshake deadline and password check. */
int gpu_vnc_guard_screen(struct xvdm_dev *dev, struct _rfbScreenInfo *s);
/* After start (when it returned 0): threads_gone, every viewer's thread
 * was joined; else no new server is made in the process. */
void gpu_vnc_guard_stop(struct xvdm_dev *dev, bool threads_gone);
/* The viewers' keys and pointer for the guest (gpu-vnc-input.c): two
 * pipes offered as "<device>.keyboard" and "<device>.tablet", written
 * from the screen's kbdAddEvent and ptrAddEvent. 0, or a negative errno
 * after a line; *in is set either way, for gpu_vnc_input_destroy(). */
struct gpu_vnc_input;
int gpu_vnc_input_create(struct gpu *g, struct _rfbScreenInfo *s,
                         struct gpu_vnc_input **in);
/* A viewer's thread, as the viewer goes: every key and button the guest
 * was told is down is let go. */
void gpu_vnc_input_viewer_gone(struct gpu_vnc_input *in);
/* The mode is now w x h: where the viewers point is scaled over it. */
void gpu_vnc_input_mode(struct gpu_vnc_input *in, uint32_t w, uint32_t h);
/* The device goes while viewer threads are left (in is left to them):
 * nothing is logged through the device, and nothing they ask reaches the
 * loop, from then on. */
void gpu_vnc_input_orphan(struct gpu_vnc_input *in);
/* Once no viewer thread runs. NULL is fine. */
void gpu_vnc_input_destroy(struct gpu_vnc_input *in);
/* The Linux key code of the key that gives X keysym `keysym` on a US
 * keyboard (gpu-vnc-keys.c); 0 for none. */
uint16_t gpu_vnc_key_code(uint32_t keysym);
/* The listening socket of vnc=ADDR: unix:PATH, PORT or HOST:PORT. The
 * fd, *where set to what it listens on ("unix:PATH", "HOST:PORT",
 * malloc()ed); or a negative errno after a line naming addr. */
int gpu_vnc_listen(struct xvdm_dev *dev, const char *addr, char **where);
#else
static inline void gpu_vnc_destroy(struct gpu *g)
{
}
static inline void gpu_vnc_show(struct gpu *g)
{
}
static inline void gpu_vnc_flush(struct gpu *g, const struct gpu_resource *res,
                                 const struct virtio_gpu_rect *r)
{
}
#endif

#endif
