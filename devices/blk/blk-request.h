/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk requests (VIRTIO 1.2 §5.2.6): turning a descriptor chain into
 * a checked operation on the backing, or into the status the spec defines
 * for it. Pure functions over iovecs: no I/O, no xvdm state.
 */
#ifndef XVDM_BLK_REQUEST_H
#define XVDM_BLK_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <xvdm/device.h>

#define BLK_SECTOR 512ULL
/* Data segments a request may have (SEG_MAX), plus header and status. */
#define BLK_SEG_MAX 126
#define BLK_IOV_MAX (BLK_SEG_MAX + 2)
/* Discard / write-zeroes segments per request. */
#define BLK_DWZ_SEG_MAX 32
#define BLK_DWZ_SECTORS_MAX (1u << 22) /* 2 GiB per segment */

/* What the backing offers the guest. */
struct blk_limits {
    uint64_t sectors; /* capacity in 512-byte sectors */
    bool read_only;
    bool discard;      /* DISCARD offered */
    bool write_zeroes; /* WRITE_ZEROES offered */
};

enum blk_op {
    BLK_OP_READ,
    BLK_OP_WRITE,
    BLK_OP_FLUSH,
    BLK_OP_GET_ID,
    BLK_OP_DISCARD,
    BLK_OP_WRITE_ZEROES,
    BLK_OP_DONE, /* answered at once with `status` */
    BLK_OP_DROP, /* no status byte: completed with nothing written */
};

struct blk_range {
    uint64_t offset; /* bytes */
    uint64_t len;
    bool unmap; /* write zeroes: the guest allows deallocating */
};

struct blk_request {
    enum blk_op op;
    uint8_t status;    /* for BLK_OP_DONE */
    uint8_t *status_p; /* the guest's status byte */
    uint64_t offset;   /* read/write: bytes into the backing */
    unsigned niov;     /* read/write/get-id: the data, inside guest RAM */
    struct iovec iov[BLK_IOV_MAX];
    uint64_t len; /* bytes of data */
    unsigned nranges;
    struct blk_range range[BLK_DWZ_SEG_MAX];
    const char *why; /* for the guest-error log when op is DONE/DROP */
};

/* Parse the chain. Never fails: a request the spec does not allow becomes
 * BLK_OP_DONE with the defined status (or BLK_OP_DROP without a status
 * byte), and `why` says what was wrong. */
void blk_request_parse(const struct xvdm_chain *chain,
                       const struct blk_limits *lim, struct blk_request *req);

/* Whether the request changes the backing's data. */
bool blk_request_writes(const struct blk_request *req);
/* Whether every byte the request touches lies within `size` bytes: the
 * request was checked against the capacity the guest was told, but a
 * backing may have shrunk since, before the guest hears of it. */
bool blk_request_within(const struct blk_request *req, uint64_t size);

#endif
