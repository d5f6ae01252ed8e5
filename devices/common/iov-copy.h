/* SPDX-License-Identifier: MIT */
/*
 * Copying between a chain's buffer list and plain memory, for the modules
 * that read headers out of chains or write answers into them. Compiled
 * into each of them: a module links nothing but the device ABI.
 */
#ifndef XVDM_IOV_COPY_H
#define XVDM_IOV_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Copy between the list iov[0..n) and buf, from byte `off` of the list,
 * as much of `len` as the list holds: into the list when to_iov, out of
 * it otherwise. The bytes copied. */
__attribute__((visibility("hidden"))) size_t
iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf,
         size_t len, bool to_iov);

#endif
