/* SPDX-License-Identifier: MIT */
/* Guest RAM regions and the one translation from guest address to pointer. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "gmem.h"

/* Last byte of a non-empty range, or false when it wraps past 2^64. */
static bool range_last(uint64_t start, uint64_t len, uint64_t *last)
{
    return !__builtin_add_overflow(start, len - 1, last);
}

/* Does [gpa, ...) at hva start right where r ends, on both sides? */
static bool gmem_continues(const struct gmem_region *r, uint64_t gpa,
                           const void *hva)
{
    return r->gpa + r->size == gpa && r->hva + r->size == (const uint8_t *)hva;
}

int gmem_add(struct gmem *mem, uint64_t gpa, uint64_t size, void *hva)
{
    uint64_t last;
    unsigned pos;

    if (size == 0 || !range_last(gpa, size, &last))
        return -EINVAL;
    for (pos = 0; pos < mem->nr && mem->region[pos].gpa < gpa; pos++)
        ;
    if (pos > 0) {
        const struct gmem_region *prev = &mem->region[pos - 1];
        if (gpa - prev->gpa < prev->size)
            return -EEXIST;
    }
    if (pos < mem->nr && mem->region[pos].gpa <= last)
        return -EEXIST;
    if (pos > 0 && gmem_continues(&mem->region[pos - 1], gpa, hva)) {
        mem->region[pos - 1].size += size;
        return 0;
    }
    if (mem->nr == GMEM_REGIONS_MAX)
        return -ENOSPC;
    memmove(&mem->region[pos + 1], &mem->region[pos],
            (mem->nr - pos) * sizeof(mem->region[0]));
    mem->region[pos] = (struct gmem_region){gpa, size, hva};
    mem->nr++;
    return 0;
}

void *gmem_translate(const struct gmem *mem, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < mem->nr; i++) {
        const struct gmem_region *r = &mem->region[i];
        uint64_t off;

        if (gpa < r->gpa)
            break; /* sorted: no later region can hold gpa */
        off = gpa - r->gpa;
        /* Written so that nothing can overflow, whatever gpa and len. */
        if (off <= r->size && len <= r->size - off)
            return r->hva + off;
    }
    return NULL;
}
