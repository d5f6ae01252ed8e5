/* SPDX-License-Identifier: MIT */
/* The guest's RAM as mapped into xvdm: a few regions, each a contiguous
 * guest-physical range mapped at one host address. The hypervisor seam
 * fills it once at start; the virtqueue layer translates through it. */
#ifndef XVDM_GMEM_H
#define XVDM_GMEM_H

#include <stdbool.h>
#include <stdint.h>

/* Xen on Arm has two RAM banks; only pages the guest never populated
 * split a bank into several regions. */
#define GMEM_REGIONS_MAX 64

struct gmem_region {
    uint64_t gpa;  /* guest-physical start */
    uint64_t size; /* bytes, > 0 */
    uint8_t *hva;  /* where xvdm sees it */
};

struct gmem {
    unsigned nr;
    struct gmem_region region[GMEM_REGIONS_MAX]; /* sorted by gpa, disjoint */
};

/* Add a region; keeps the table sorted. A region that continues the one
 * before it in both guest and host addresses (the next chunk of a bank
 * mapped in pieces) is merged into it, so a buffer across the seam is
 * one range. -EEXIST on overlap, -ENOSPC when full, -EINVAL for size 0 or
 * a range that wraps past 2^64. */
int gmem_add(struct gmem *mem, uint64_t gpa, uint64_t size, void *hva);

/* The host address of [gpa, gpa + len), or NULL unless the whole range lies
 * inside one region (len 0 is allowed and needs gpa inside or at the end of
 * a region). Never overflows, whatever gpa and len are. This is the one
 * place a guest address becomes a pointer. */
void *gmem_translate(const struct gmem *mem, uint64_t gpa, uint64_t len);

#endif
