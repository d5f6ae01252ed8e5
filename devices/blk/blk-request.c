/* SPDX-License-Identifier: MIT */
/* virtio-blk request parsing and validation (see blk-request.h). */
#include <endian.h>
#include <linux/virtio_blk.h>
#include <stddef.h>
#include <string.h>

#include "blk-request.h"
#include "../common/iov-copy.h"

/* A window [skip, skip + len) of an iovec array, as a new array. false
 * when it does not fit in `cap` entries or the array is too short. */
static bool iov_slice(const struct iovec *iov, unsigned n, uint64_t skip,
                      uint64_t len, struct iovec *out, unsigned cap,
                      unsigned *nout)
{
    unsigned k = 0;

    for (unsigned i = 0; i < n && len; i++) {
        uint64_t l = iov[i].iov_len;

        if (skip >= l) {
            skip -= l;
            continue;
        }
        if (k == cap)
            return false;
        out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
        out[k].iov_len = l - skip < len ? l - skip : len;
        len -= out[k].iov_len;
        skip = 0;
        k++;
    }
    *nout = k;
    return len == 0;
}

/* Copy out `len` bytes at `skip` (headers and segments may straddle
 * buffers: VIRTIO 1.2 §2.6.4, no framing assumptions). */
static bool iov_read(const struct iovec *iov, unsigned n, uint64_t skip,
                     void *buf, uint64_t len)
{
    return iov_copy(iov, n, skip, buf, len, false) == len;
}

static void answer(struct blk_request *req, uint8_t status, const char *why)
{
    req->op = BLK_OP_DONE;
    req->status = status;
    req->why = why;
}

/* sector * 512 + len inside the backing, without overflow. */
static bool in_range(uint64_t sector, uint64_t len, uint64_t sectors)
{
    return sector <= sectors && len / BLK_SECTOR <= sectors - sector;
}

static void parse_rw(const struct xvdm_chain *chain,
                     const struct blk_limits *lim, uint64_t sector,
                     bool write, struct blk_request *req)
{
    const struct iovec *data = write ? chain->iov : chain->iov + chain->out_num;
    unsigned n = write ? chain->out_num : chain->in_num;
    uint64_t skip = write ? 16 : 0;

    req->len = write ? chain->out_len - 16ULL : chain->in_len - 1ULL;
    if (write && lim->read_only)
        return answer(req, VIRTIO_BLK_S_IOERR, "write to a read-only disk");
    if (req->len % BLK_SECTOR)
        return answer(req, VIRTIO_BLK_S_IOERR,
                      "data length not a multiple of 512");
    if (!in_range(sector, req->len, lim->sectors))
        return answer(req, VIRTIO_BLK_S_IOERR, "sectors past the end");
    if (!iov_slice(data, n, skip, req->len, req->iov, BLK_IOV_MAX,
                   &req->niov))
        return answer(req, VIRTIO_BLK_S_IOERR, "too many data segments");
    req->op = write ? BLK_OP_WRITE : BLK_OP_READ;
    req->offset = sector * BLK_SECTOR;
}

static void parse_dwz(const struct xvdm_chain *chain,
                      const struct blk_limits *lim, bool zeroes,
                      struct blk_request *req)
{
    uint64_t payload = chain->out_len - 16ULL;
    struct virtio_blk_discard_write_zeroes seg;

    if (!(zeroes ? lim->write_zeroes : lim->discard))
        return answer(req, VIRTIO_BLK_S_UNSUPP,
                      zeroes ? "write zeroes not offered"
                             : "discard not offered");
    if (lim->read_only)
        return answer(req, VIRTIO_BLK_S_IOERR, "discard on a read-only disk");
    if (payload == 0 || payload % sizeof(seg) ||
        payload / sizeof(seg) > BLK_DWZ_SEG_MAX)
        return answer(req, VIRTIO_BLK_S_UNSUPP, "bad discard segment count");
    req->nranges = (unsigned)(payload / sizeof(seg));
    for (unsigned i = 0; i < req->nranges; i++) {
        uint64_t sector;
        uint32_t num;

        if (!iov_read(chain->iov, chain->out_num, 16 + i * sizeof(seg), &seg,
                      sizeof(seg)))
            return answer(req, VIRTIO_BLK_S_IOERR, "discard segment split");
        sector = le64toh(seg.sector);
        num = le32toh(seg.num_sectors);
        if (num > BLK_DWZ_SECTORS_MAX || !in_range(sector, num * BLK_SECTOR,
                                                    lim->sectors))
            return answer(req, VIRTIO_BLK_S_IOERR, "discard past the end");
        /* Flags other than UNMAP (bit 0) on write zeroes are reserved. */
        if (le32toh(seg.flags) & ~(zeroes ? 1u : 0u))
            return answer(req, VIRTIO_BLK_S_UNSUPP, "reserved discard flags");
        req->range[i] = (struct blk_range){sector * BLK_SECTOR,
                                           num * BLK_SECTOR,
                                           le32toh(seg.flags) & 1};
    }
    req->op = zeroes ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
}

void blk_request_parse(const struct xvdm_chain *chain,
                       const struct blk_limits *lim, struct blk_request *req)
{
    struct virtio_blk_outhdr hdr;
    const struct iovec *last;

    memset(req, 0, offsetof(struct blk_request, iov));
    req->nranges = 0;
    if (chain->in_num == 0 || chain->in_len == 0) {
        req->op = BLK_OP_DROP;
        req->why = "no status byte";
        return;
    }
    /* The status is the last byte of the device-writable part. */
    last = &chain->iov[chain->out_num + chain->in_num - 1];
    req->status_p = (uint8_t *)last->iov_base + last->iov_len - 1;
    if (chain->out_len < sizeof(hdr) ||
        !iov_read(chain->iov, chain->out_num, 0, &hdr, sizeof(hdr)))
        return answer(req, VIRTIO_BLK_S_IOERR, "header shorter than 16 bytes");
    switch (le32toh(hdr.type)) {
    case VIRTIO_BLK_T_IN:
        return parse_rw(chain, lim, le64toh(hdr.sector), false, req);
    case VIRTIO_BLK_T_OUT:
        return parse_rw(chain, lim, le64toh(hdr.sector), true, req);
    case VIRTIO_BLK_T_FLUSH:
        req->op = BLK_OP_FLUSH;
        return;
    case VIRTIO_BLK_T_GET_ID:
        req->op = BLK_OP_GET_ID;
        req->len = chain->in_len - 1ULL;
        iov_slice(chain->iov + chain->out_num, chain->in_num, 0, req->len,
                  req->iov, BLK_IOV_MAX, &req->niov);
        return;
    case VIRTIO_BLK_T_DISCARD:
        return parse_dwz(chain, lim, false, req);
    case VIRTIO_BLK_T_WRITE_ZEROES:
        return parse_dwz(chain, lim, true, req);
    }
    answer(req, VIRTIO_BLK_S_UNSUPP, "unknown request type");
}

bool blk_request_writes(const struct blk_request *req)
{
    return req->op == BLK_OP_WRITE || req->op == BLK_OP_DISCARD ||
           req->op == BLK_OP_WRITE_ZEROES;
}

static bool blk_within(uint64_t off, uint64_t len, uint64_t size)
{
    return len <= size && off <= size - len;
}

bool blk_request_within(const struct blk_request *req, uint64_t size)
{
    if (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE)
        return blk_within(req->offset, req->len, size);
    for (unsigned i = 0; i < req->nranges; i++)
        if (!blk_within(req->range[i].offset, req->range[i].len, size))
            return false;
    return true;
}
