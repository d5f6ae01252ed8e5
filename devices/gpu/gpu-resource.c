/* SPDX-License-Identifier: MIT */
/*
 * 2D resources (VIRTIO 1.2 §5.7.6.8): the host's copy of each, the guest
 * pages backing it, and transfers from those pages into the copy. Host
 * memory for resources is bounded by max-memory, their number by
 * GPU_RESOURCES_MAX; every guest rectangle, offset and address is checked
 * here, where it enters.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "../common/iov-copy.h"
#include "gpu.h"

/* Not blocking for the kernel's pool early in boot: the multiplier need
 * only be unknown to the guest, which the clock's nanoseconds then are. */
int gpu_resource_hash_init(struct gpu *g)
{
    struct timespec t;

    if (getrandom(&g->hash_mul, sizeof(g->hash_mul), GRND_NONBLOCK) !=
        sizeof(g->hash_mul)) {
        if (errno != EAGAIN)
            return -errno;
        clock_gettime(CLOCK_MONOTONIC, &t);
        g->hash_mul = (uint64_t)t.tv_nsec * 0x9e3779b97f4a7c15ULL ^
                      (uint64_t)t.tv_sec;
    }
    g->hash_mul |= 1; /* multiply-shift hashing wants it odd */
    return 0;
}

static unsigned gpu_hash(const struct gpu *g, uint32_t id)
{
    return (unsigned)((id * g->hash_mul) >> (64 - GPU_BUCKET_BITS));
}

static struct gpu_resource **gpu_bucket(struct gpu *g, uint32_t id)
{
    return &g->buckets[gpu_hash(g, id)];
}

struct gpu_resource *gpu_resource_find(const struct gpu *g, uint32_t id)
{
    struct gpu_resource *r = g->buckets[gpu_hash(g, id)];

    while (r && r->id != id)
        r = r->next;
    return r;
}

/* The formats Linux's driver creates (virtgpu_plane.c's table). */
static bool gpu_format_known(uint32_t format)
{
    switch (format) {
    case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM:
    case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
    case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM:
    case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
    case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM:
    case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
    case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM:
    case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
        return true;
    }
    return false;
}

/* Take `bytes` of max-memory; false (and a line) when they are not
 * there. */
static bool gpu_mem_take(struct gpu *g, uint64_t bytes, const char *what)
{
    if (bytes <= g->max_memory - g->mem_used) {
        g->mem_used += bytes;
        return true;
    }
    xvdm_dev_guest_error(g->dev,
                         "%s: %llu bytes more than max-memory=%llu allows "
                         "(%llu in use)",
                         what, (unsigned long long)bytes,
                         (unsigned long long)g->max_memory,
                         (unsigned long long)g->mem_used);
    return false;
}

static void gpu_mem_give(struct gpu *g, uint64_t bytes)
{
    g->mem_used -= bytes;
}

/* The pixels' bytes, or 0 when they overflow or could never fit. */
static uint64_t gpu_pixel_bytes(const struct gpu *g, uint32_t w, uint32_t h)
{
    uint64_t pixels = (uint64_t)w * h;

    if (pixels > g->max_memory / GPU_BYTES_PER_PIXEL)
        return 0;
    return pixels * GPU_BYTES_PER_PIXEL;
}

static uint32_t gpu_create_check(struct gpu *g, uint32_t id, uint32_t format,
                                 uint32_t w, uint32_t h)
{
    if (id == 0 || gpu_resource_find(g, id)) {
        xvdm_dev_guest_error(g->dev, "resource %u: id 0 or in use", id);
        return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
    }
    if (!gpu_format_known(format) || w == 0 || h == 0 || w > GPU_SIDE_MAX ||
        h > GPU_SIDE_MAX) {
        xvdm_dev_guest_error(g->dev,
                             "resource %u: format %u, %ux%u (sides 1..%u)",
                             id, format, w, h, GPU_SIDE_MAX);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    if (g->nr_resources >= GPU_RESOURCES_MAX || !gpu_pixel_bytes(g, w, h)) {
        xvdm_dev_guest_error(g->dev,
                             "resource %u: %ux%u, or more than %u resources",
                             id, w, h, GPU_RESOURCES_MAX);
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Pixels of GPU_PIXELS_MAPPED or more come from mmap(), not calloc(): the
 * kernel zeroes each page when it is first touched, by a transfer whose
 * cost is counted, where calloc() may clear the whole resource at create
 * (glibc reuses the heap a large resource freed), at a cost no budget
 * sees. Smaller ones from calloc(), which clears no more than that: a
 * mapping each would take a whole page and one of the process's
 * vm.max_map_count mappings. */
#define GPU_PIXELS_MAPPED (64u << 10)

static uint64_t gpu_pixels_len(const struct gpu_resource *r)
{
    return (uint64_t)r->width * r->height * GPU_BYTES_PER_PIXEL;
}

/* What `bytes` of pixels take: a mapping is whole pages. */
static uint64_t gpu_pixels_cost(uint64_t bytes)
{
    return bytes < GPU_PIXELS_MAPPED ? bytes : (bytes + 4095) & ~4095ULL;
}

static uint8_t *gpu_pixels_alloc(uint64_t bytes)
{
    void *p;

    if (bytes < GPU_PIXELS_MAPPED)
        return calloc(1, bytes);
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void gpu_pixels_free(const struct gpu_resource *r)
{
    if (gpu_pixels_len(r) < GPU_PIXELS_MAPPED)
        free(r->pixels);
    else
        munmap(r->pixels, gpu_pixels_len(r));
}

/* A resource with `pixels` bytes of them, counted against max-memory. */
static struct gpu_resource *gpu_resource_alloc(struct gpu *g, uint64_t pixels)
{
    uint64_t cost = sizeof(struct gpu_resource) + gpu_pixels_cost(pixels);
    struct gpu_resource *r;

    if (!gpu_mem_take(g, cost, "RESOURCE_CREATE_2D"))
        return NULL;
    r = calloc(1, sizeof(*r));
    if (r)
        r->pixels = gpu_pixels_alloc(pixels);
    if (!r || !r->pixels) {
        free(r);
        gpu_mem_give(g, cost);
        xvdm_dev_log(g->dev, XVDM_LOG_ERROR, "resource of %llu bytes: %s",
                     (unsigned long long)cost, strerror(ENOMEM));
        return NULL;
    }
    r->cost = cost;
    return r;
}

uint32_t gpu_resource_create(struct gpu *g, const struct gpu_req *req,
                             const union gpu_cmd *cmd)
{
    const struct virtio_gpu_resource_create_2d *c = &cmd->create;
    uint32_t id = le32toh(c->resource_id), w = le32toh(c->width);
    uint32_t h = le32toh(c->height), format = le32toh(c->format);
    uint32_t ret = gpu_create_check(g, id, format, w, h);
    struct gpu_resource *r, **b;

    if (ret != VIRTIO_GPU_RESP_OK_NODATA)
        return ret;
    r = gpu_resource_alloc(g, gpu_pixel_bytes(g, w, h));
    if (!r)
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    r->id = id;
    r->format = format;
    r->width = w;
    r->height = h;
    b = gpu_bucket(g, id);
    r->next = *b;
    *b = r;
    g->nr_resources++;
    return VIRTIO_GPU_RESP_OK_NODATA;
}

static void gpu_backing_free(struct gpu *g, struct gpu_resource *r)
{
    uint64_t bytes = (uint64_t)r->nr_backing * sizeof(*r->backing);

    free(r->backing);
    r->backing = NULL;
    r->nr_backing = 0;
    r->backing_len = 0;
    r->cost -= bytes;
    gpu_mem_give(g, bytes);
}

static void gpu_resource_free(struct gpu *g, struct gpu_resource *r)
{
    gpu_scanout_forget(g, r);
    gpu_backing_free(g, r);
    gpu_mem_give(g, r->cost);
    g->nr_resources--;
    gpu_pixels_free(r);
    free(r);
}

static uint32_t gpu_unknown(struct gpu *g, const char *what, uint32_t id)
{
    xvdm_dev_guest_error(g->dev, "%s: no resource %u", what, id);
    return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
}

uint32_t gpu_resource_unref(struct gpu *g, const struct gpu_req *req,
                            const union gpu_cmd *c)
{
    uint32_t id = le32toh(c->unref.resource_id);
    struct gpu_resource **p = gpu_bucket(g, id), *r;

    while (*p && (*p)->id != id)
        p = &(*p)->next;
    r = *p;
    if (!r)
        return gpu_unknown(g, "RESOURCE_UNREF", id);
    *p = r->next;
    gpu_resource_free(g, r);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

void gpu_resources_clear(struct gpu *g)
{
    for (unsigned i = 0; i < GPU_BUCKETS; i++) {
        while (g->buckets[i]) {
            struct gpu_resource *r = g->buckets[i];

            g->buckets[i] = r->next;
            gpu_resource_free(g, r);
        }
    }
}

/* Every entry but the last takes a page or more, as Linux's (whole pages,
 * or runs of them) do: a transfer's row then crosses at most one entry
 * per page it copies, and each crossing is a mapping. */
static bool gpu_entry_check(struct gpu *g, uint32_t k, bool last,
                            const struct gpu_entry *e)
{
    if (e->len < (last ? 1u : 4096u)) {
        xvdm_dev_guest_error(g->dev,
                             "ATTACH_BACKING: entry %u of %u bytes (at "
                             "least 4096 but the last, which at least 1)",
                             k, e->len);
        return false;
    }
    /* Checked against the guest's RAM (in grant mode: is a grant address)
     * here, without mapping it; each transfer maps what it reads, and
     * fails if it is no longer the guest's. */
    if (xvdm_dev_guest_read(g->dev, e->addr, NULL, e->len) == 0)
        return true;
    xvdm_dev_guest_error(g->dev,
                         "ATTACH_BACKING: entry %u (0x%llx, %u bytes) is "
                         "not the guest's memory",
                         k, (unsigned long long)e->addr, e->len);
    return false;
}

/* The n entries after the command, read in one copy. At most 16384 of
 * 2^32 - 1 bytes: start and backing_len cannot overflow. */
static uint32_t gpu_backing_read_entries(struct gpu *g,
                                         const struct gpu_req *req,
                                         struct gpu_resource *r, uint32_t n)
{
    const struct xvdm_chain *ch = req->ch;
    size_t len = (size_t)n * sizeof(struct virtio_gpu_mem_entry);
    struct virtio_gpu_mem_entry *me = malloc(len);
    uint32_t ret = VIRTIO_GPU_RESP_OK_NODATA;
    uint64_t start = 0;

    if (!me)
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    g->turn_cost += len;
    if (iov_copy(ch->iov, ch->out_num,
                 sizeof(struct virtio_gpu_resource_attach_backing), me, len,
                 false) < len) {
        xvdm_dev_guest_error(g->dev,
                             "ATTACH_BACKING: %u entries past the request's "
                             "%u bytes",
                             n, ch->out_len);
        ret = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    for (uint32_t k = 0; k < n && ret == VIRTIO_GPU_RESP_OK_NODATA; k++) {
        struct gpu_entry *e = &r->backing[k];

        *e = (struct gpu_entry){le64toh(me[k].addr), start,
                                le32toh(me[k].length)};
        if (!gpu_entry_check(g, k, k == n - 1, e))
            ret = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
        start += e->len;
    }
    free(me);
    r->backing_len = start;
    return ret;
}

static uint32_t gpu_attach_check(struct gpu *g, struct gpu_resource *r,
                                 uint32_t id, uint32_t n)
{
    if (!r)
        return gpu_unknown(g, "ATTACH_BACKING", id);
    if (r->backing || n == 0 || n > GPU_BACKING_ENTRIES_MAX) {
        xvdm_dev_guest_error(g->dev,
                             "ATTACH_BACKING: resource %u, %u entries "
                             "(1..%u, once)",
                             id, n, GPU_BACKING_ENTRIES_MAX);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    return VIRTIO_GPU_RESP_OK_NODATA;
}

uint32_t gpu_resource_attach(struct gpu *g, const struct gpu_req *req,
                             const union gpu_cmd *c)
{
    uint32_t id = le32toh(c->attach.resource_id);
    uint32_t n = le32toh(c->attach.nr_entries);
    struct gpu_resource *r = gpu_resource_find(g, id);
    uint32_t ret = gpu_attach_check(g, r, id, n);
    uint64_t bytes = (uint64_t)n * sizeof(struct gpu_entry);

    if (ret != VIRTIO_GPU_RESP_OK_NODATA)
        return ret;
    if (!gpu_mem_take(g, bytes, "ATTACH_BACKING"))
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    r->backing = calloc(n, sizeof(*r->backing));
    if (!r->backing) {
        gpu_mem_give(g, bytes);
        return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
    }
    r->nr_backing = n;
    r->cost += bytes;
    ret = gpu_backing_read_entries(g, req, r, n);
    if (ret != VIRTIO_GPU_RESP_OK_NODATA)
        gpu_backing_free(g, r);
    return ret;
}

uint32_t gpu_resource_detach(struct gpu *g, const struct gpu_req *req,
                             const union gpu_cmd *c)
{
    uint32_t id = le32toh(c->detach.resource_id);
    struct gpu_resource *r = gpu_resource_find(g, id);

    if (!r)
        return gpu_unknown(g, "DETACH_BACKING", id);
    if (!r->backing) {
        xvdm_dev_guest_error(g->dev, "DETACH_BACKING: resource %u has none",
                             id);
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    }
    gpu_backing_free(g, r);
    return VIRTIO_GPU_RESP_OK_NODATA;
}

bool gpu_rect_inside(const struct gpu_resource *res,
                     const struct virtio_gpu_rect *r)
{
    return r->width && r->height && (uint64_t)r->x + r->width <= res->width &&
           (uint64_t)r->y + r->height <= res->height;
}

struct gpu_resource *gpu_resource_rect(struct gpu *g, const char *what,
                                       uint32_t id,
                                       const struct virtio_gpu_rect *r,
                                       uint32_t *resp)
{
    struct gpu_resource *res = gpu_resource_find(g, id);

    if (!res) {
        *resp = gpu_unknown(g, what, id);
        return NULL;
    }
    if (gpu_rect_inside(res, r))
        return res;
    xvdm_dev_guest_error(g->dev,
                         "%s: %ux%u at %u,%u outside resource %u "
                         "(%ux%u)",
                         what, r->width, r->height, r->x, r->y, id, res->width,
                         res->height);
    *resp = VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    return NULL;
}

/* The entry holding backing byte `off` (< backing_len). */
static uint32_t gpu_entry_at(const struct gpu_resource *r, uint64_t off)
{
    uint32_t lo = 0, hi = r->nr_backing - 1;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;

        if (r->backing[mid].start <= off)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* A transfer's rows in the backing: row y is [first + y * stride, + len),
 * and goes to dst + y * stride (the resource's rows have the backing's
 * stride). `at`: the backing offset of the piece gpu_rows_copy() gets
 * next. */
struct gpu_rows {
    uint64_t first, stride, len;
    uint32_t rows;
    uint8_t *dst;
    uint64_t at;
};

/* The first row that ends past backing offset `off`. */
static uint64_t gpu_row_after(const struct gpu_rows *c, uint64_t off)
{
    uint64_t y = off > c->first ? (off - c->first) / c->stride : 0;

    return c->first + y * c->stride + c->len <= off ? y + 1 : y;
}

/* The bytes of rows inside backing [at, at + n), mapped at p. Each row
 * byte goes to dst + (its offset - first): the row's place. */
static void gpu_rows_copy(void *arg, const void *p, uint64_t n)
{
    struct gpu_rows *c = arg;
    uint64_t lo = c->at, hi = lo + n;

    for (uint64_t y = gpu_row_after(c, lo); y < c->rows; y++) {
        uint64_t s = c->first + y * c->stride, e = s + c->len;

        if (s >= hi)
            break;
        s = s > lo ? s : lo;
        e = e < hi ? e : hi;
        memcpy(c->dst + (s - c->first), (const uint8_t *)p + (s - lo), e - s);
    }
    c->at = hi;
}

/* Narrow backing [*lo, *hi) to where the rows have bytes; false when
 * they have none there (the range is only the gaps between rows). */
static bool gpu_rows_within(const struct gpu_rows *c, uint64_t *lo,
                            uint64_t *hi)
{
    uint64_t y = gpu_row_after(c, *lo), s, z, e;

    if (y >= c->rows || (s = c->first + y * c->stride) >= *hi)
        return false;
    *lo = s > *lo ? s : *lo;
    z = (*hi - 1 - c->first) / c->stride;
    z = z < c->rows ? z : c->rows - 1;
    e = c->first + z * c->stride + c->len;
    *hi = e < *hi ? e : *hi;
    return true;
}

/* §5.7.6.8 TRANSFER_TO_HOST_2D, as Linux lays it out: row y of the
 * rectangle is at offset + y * stride of the backing, stride being the
 * resource's width in bytes. Each backing entry holding bytes of the rows
 * is mapped once (a piece per 16 MiB), however many rows it holds. */
static uint32_t gpu_transfer_rows(struct gpu *g, struct gpu_resource *r,
                                  const struct virtio_gpu_rect *rc,
                                  uint64_t offset)
{
    uint64_t stride = (uint64_t)r->width * GPU_BYTES_PER_PIXEL;
    struct gpu_rows c = {
        offset, stride, (uint64_t)rc->width * GPU_BYTES_PER_PIXEL, rc->height,
        r->pixels + rc->y * stride + (uint64_t)rc->x * GPU_BYTES_PER_PIXEL, 0};
    uint64_t end = offset + (rc->height - 1) * stride + c.len, pos = offset;

    while (pos < end) {
        const struct gpu_entry *e = &r->backing[gpu_entry_at(r, pos)];
        uint64_t lo = pos, hi = e->start + e->len < end ? e->start + e->len : end;

        pos = hi;
        if (!gpu_rows_within(&c, &lo, &hi)) {
            /* Only the gap between two rows: on at the next row. */
            uint64_t y = gpu_row_after(&c, lo);

            pos = y < c.rows ? c.first + y * c.stride : end;
            continue;
        }
        c.at = lo;
        g->turn_cost += hi - lo + GPU_MAP_COST;
        if (xvdm_dev_guest_view(g->dev, e->addr + (lo - e->start), hi - lo,
                                gpu_rows_copy, &c)) {
            xvdm_dev_guest_error(g->dev,
                                 "TRANSFER_TO_HOST_2D: resource %u's "
                                 "backing is no longer the guest's",
                                 r->id);
            return VIRTIO_GPU_RESP_ERR_UNSPEC;
        }
    }
    return VIRTIO_GPU_RESP_OK_NODATA;
}

/* The rectangle inside the resource, and its rows inside the backing.
 * Inside the resource, (height - 1) * stride + row is at most the
 * resource's bytes, which max-memory bounds: no overflow. */
static bool gpu_transfer_fits(const struct gpu_resource *r,
                              const struct virtio_gpu_rect *rc, uint64_t offset)
{
    uint64_t stride = (uint64_t)r->width * GPU_BYTES_PER_PIXEL;
    uint64_t need;

    if (!gpu_rect_inside(r, rc))
        return false;
    need = (uint64_t)(rc->height - 1) * stride +
           (uint64_t)rc->width * GPU_BYTES_PER_PIXEL;
    return offset <= r->backing_len && need <= r->backing_len - offset;
}

struct virtio_gpu_rect gpu_rect_host(const struct virtio_gpu_rect *r)
{
    return (struct virtio_gpu_rect){le32toh(r->x), le32toh(r->y),
                                    le32toh(r->width), le32toh(r->height)};
}

uint32_t gpu_resource_transfer(struct gpu *g, const struct gpu_req *req,
                               const union gpu_cmd *cmd)
{
    const struct virtio_gpu_transfer_to_host_2d *c = &cmd->transfer;
    uint32_t id = le32toh(c->resource_id);
    struct gpu_resource *r = gpu_resource_find(g, id);
    struct virtio_gpu_rect rc = gpu_rect_host(&c->r);
    uint64_t offset = le64toh(c->offset);

    if (!r)
        return gpu_unknown(g, "TRANSFER_TO_HOST_2D", id);
    if (!r->backing) {
        xvdm_dev_guest_error(g->dev,
                             "TRANSFER_TO_HOST_2D: resource %u has no "
                             "backing",
                             id);
        return VIRTIO_GPU_RESP_ERR_UNSPEC;
    }
    if (!gpu_transfer_fits(r, &rc, offset)) {
        xvdm_dev_guest_error(g->dev,
                             "TRANSFER_TO_HOST_2D: %ux%u at %u,%u, offset "
                             "%llu, outside resource %u (%ux%u, %llu bytes "
                             "of backing)",
                             rc.width, rc.height, rc.x, rc.y,
                             (unsigned long long)offset, id, r->width,
                             r->height, (unsigned long long)r->backing_len);
        return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
    }
    return gpu_transfer_rows(g, r, &rc, offset);
}
