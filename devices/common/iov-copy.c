/* SPDX-License-Identifier: MIT */
/* Copying between buffer lists and memory (see iov-copy.h). */
#include <stdint.h>
#include <string.h>

#include "iov-copy.h"

size_t iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf,
                size_t len, bool to_iov)
{
    uint8_t *p = buf;
    size_t done = 0;

    for (unsigned i = 0; i < n && done < len; i++) {
        size_t l = iov[i].iov_len;

        if (off >= l) {
            off -= l;
            continue;
        }
        l = l - off < len - done ? l - off : len - done;
        if (to_iov)
            memcpy((uint8_t *)iov[i].iov_base + off, p + done, l);
        else
            memcpy(p + done, (uint8_t *)iov[i].iov_base + off, l);
        done += l;
        off = 0;
    }
    return done;
}
