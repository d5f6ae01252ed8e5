/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock packets (VIRTIO 1.2 §5.10.6): a 44-byte header, then the
 * payload, in one chain. The header of a transmitted chain is copied out
 * once and checked here; everything behind relies on it.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <string.h>

#include "vsock.h"

unsigned vsock_iov_slice(const struct iovec *iov, unsigned n, size_t off,
                         size_t len, struct iovec *out, unsigned cap)
{
    unsigned k = 0;

    for (unsigned i = 0; i < n && len && k < cap; i++) {
        size_t l = iov[i].iov_len;

        if (off >= l) {
            off -= l;
            continue;
        }
        l = l - off < len ? l - off : len;
        out[k++] = (struct iovec){(uint8_t *)iov[i].iov_base + off, l};
        len -= l;
        off = 0;
    }
    return k;
}

/* §5.10.6.1: only VIRTIO_VSOCK_OP_* 1..7 exist. */
static bool pkt_op_known(uint16_t op)
{
    return op >= VIRTIO_VSOCK_OP_REQUEST &&
           op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST;
}

/* Whether the header reached a port of ours: then a refusal is answered
 * with RST (as Linux's virtio_transport_recv_pkt does for an unknown type
 * or a bad packet), else the packet is dropped (vhost-vsock drops what is
 * not from the guest's CID to the host's). */
static const char *pkt_check_header(const struct vsock *v,
                                    const struct virtio_vsock_hdr *hdr,
                                    uint32_t payload, bool *answer_rst)
{
    uint32_t len = le32toh(hdr->len);

    *answer_rst = false;
    if (le64toh(hdr->src_cid) != v->cid)
        return "src_cid is not the guest's CID";
    if (le64toh(hdr->dst_cid) != VSOCK_HOST_CID)
        return "dst_cid is not the host's (2)";
    *answer_rst = le16toh(hdr->op) != VIRTIO_VSOCK_OP_RST;
    if (le16toh(hdr->type) != VIRTIO_VSOCK_TYPE_STREAM)
        return "type is not STREAM";
    if (!pkt_op_known(le16toh(hdr->op)))
        return "op is unknown";
    if (len > VSOCK_PKT_MAX)
        return "len is larger than a packet may be (64 KiB)";
    if (len > payload)
        return "len goes past the chain";
    if (len && le16toh(hdr->op) != VIRTIO_VSOCK_OP_RW)
        return "len is not 0 on a packet other than RW";
    return NULL;
}

const char *vsock_pkt_check(const struct vsock *v, const struct xvdm_chain *c,
                            struct virtio_vsock_hdr *hdr, bool *answer_rst)
{
    *answer_rst = false;
    if (c->in_num)
        return "has device-writable buffers";
    if (c->out_len < VSOCK_HDR_LEN)
        return "is shorter than the packet header";
    iov_copy(c->iov, c->out_num, 0, hdr, sizeof(*hdr), false);
    return pkt_check_header(v, hdr, c->out_len - VSOCK_HDR_LEN, answer_rst);
}
