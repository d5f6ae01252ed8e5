/* SPDX-License-Identifier: MIT */
/* Reaching a device's guest memory, foreign or by grant (see gaccess.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "gaccess.h"
#include "hv.h"
#include "log.h"

/* The references [*first, *first + *pages) a grant address range uses
 * (len < 2^63, so none of this overflows). false when it is not one:
 * empty, bit 63 clear, or references past 2^32. */
static bool gaccess_grant_refs(uint64_t addr, uint64_t len, uint64_t *first,
                               uint64_t *pages)
{
    if (len == 0 || !(addr & GACCESS_GRANT_BIT))
        return false;
    *first = (addr & ~GACCESS_GRANT_BIT) / GACCESS_PAGE;
    *pages = (addr % GACCESS_PAGE + len + GACCESS_PAGE - 1) / GACCESS_PAGE;
    return *first + *pages - 1 <= UINT32_MAX;
}

static uint64_t gaccess_guest_addr(const struct iovec *v)
{
    return (uint64_t)(uintptr_t)v->iov_base;
}

/* Grant mode: the references every range uses, in order, into refs
 * (unless NULL: only counted). The count, or -EFAULT / -E2BIG. */
static int gaccess_collect_refs(const struct iovec *iov, unsigned n,
                                uint32_t *refs)
{
    uint64_t first, pages, total = 0;

    for (unsigned i = 0; i < n; i++) {
        if (iov[i].iov_len > GACCESS_MAP_PAGES_MAX * GACCESS_PAGE ||
            !gaccess_grant_refs(gaccess_guest_addr(&iov[i]), iov[i].iov_len,
                                &first, &pages))
            return -EFAULT;
        if (pages > GACCESS_MAP_PAGES_MAX - total)
            return -E2BIG;
        for (uint64_t p = 0; refs && p < pages; p++)
            refs[total + p] = (uint32_t)(first + p);
        total += pages;
    }
    return (int)total;
}

/* Foreign mode: translate each range where it is. */
static int gaccess_translate_iov(const struct gmem *ram, struct iovec *iov,
                                 unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base =
            gmem_translate(ram, gaccess_guest_addr(&iov[i]), iov[i].iov_len);
        if (!iov[i].iov_base)
            return -EFAULT;
    }
    return 0;
}

/* ---- the budget ------------------------------------------------------- */

int gbudget_init(struct gbudget *b, uint64_t max)
{
    *b = (struct gbudget){.max = max};
    b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return b->wake_fd < 0 ? -errno : 0;
}

void gbudget_fini(struct gbudget *b)
{
    if (b->wake_fd >= 0)
        close(b->wake_fd);
    b->wake_fd = -1;
}

static bool gbudget_try(struct gbudget *b, uint64_t pages)
{
    uint64_t now = __atomic_load_n(&b->mapped, __ATOMIC_SEQ_CST);

    do {
        if (pages > b->max - now || now > b->max)
            return false;
    } while (!__atomic_compare_exchange_n(&b->mapped, &now, now + pages, false,
                                          __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST));
    return true;
}

/* Room for `pages` more: taken, true; else false, and whoever gives pages
 * back wakes the waiter. Only a take that found no room asks to be woken
 * (a wake per completion would run every queue's loop for nothing); it
 * then looks again, so a give between its two looks is not missed. */
static bool gbudget_take(struct gbudget *b, uint64_t pages)
{
    if (gbudget_try(b, pages))
        return true;
    __atomic_store_n(&b->waiting, true, __ATOMIC_SEQ_CST);
    return gbudget_try(b, pages);
}

/* Any thread: modules may complete chains from their own. */
static void gbudget_give(struct gbudget *b, uint64_t pages)
{
    __atomic_fetch_sub(&b->mapped, pages, __ATOMIC_SEQ_CST);
    if (__atomic_exchange_n(&b->waiting, false, __ATOMIC_SEQ_CST) &&
        eventfd_write(b->wake_fd, 1))
        log_warn("cannot wake the queues that wait for granted pages: %s",
                 strerror(errno));
}

/* ---- mapping ----------------------------------------------------------- */

/* The pages of a whole chain, from the budget where there is one: 0,
 * -E2BIG (more than the whole budget: they could never be had), -EBUSY. */
static int gaccess_take(const struct gaccess *ga, uint64_t pages)
{
    if (!ga->budget)
        return 0;
    if (pages > ga->budget->max)
        return -E2BIG;
    return gbudget_take(ga->budget, pages) ? 0 : -EBUSY;
}

static void gaccess_give(const struct gaccess *ga, uint64_t pages)
{
    if (ga->budget && pages)
        gbudget_give(ga->budget, pages);
}

/* Grant mode: iov's ranges in one mapping, the pages already had. 0,
 * -EFAULT or -E2BIG. */
static int gaccess_grant_map_iov(const struct gaccess *ga, struct iovec *iov,
                                 unsigned n, bool write, bool budgeted,
                                 struct gmap *m)
{
    uint32_t refs[GACCESS_MAP_PAGES_MAX];
    uint8_t *base;
    uint64_t at = 0;
    int total = gaccess_collect_refs(iov, n, refs);

    *m = (struct gmap){0};
    if (total <= 0)
        return total;
    base = hv_grant_map(ga->hv, refs, (unsigned)total, write);
    if (!base)
        return -EFAULT;
    *m = (struct gmap){base, (unsigned)total, budgeted};
    for (unsigned i = 0; i < n; i++) {
        uint64_t addr = gaccess_guest_addr(&iov[i]);
        uint64_t pages = (addr % GACCESS_PAGE + iov[i].iov_len +
                          GACCESS_PAGE - 1) / GACCESS_PAGE;

        iov[i].iov_base = base + at * GACCESS_PAGE + addr % GACCESS_PAGE;
        at += pages;
    }
    return 0;
}

int gaccess_map_chain(const struct gaccess *ga, struct iovec *iov,
                      unsigned out, unsigned in, struct gmap *m_out,
                      struct gmap *m_in)
{
    int out_pages, in_pages, ret;

    *m_out = *m_in = (struct gmap){0};
    if (!gaccess_grants(ga))
        return gaccess_translate_iov(ga->ram, iov, out + in);
    out_pages = gaccess_collect_refs(iov, out, NULL);
    in_pages = gaccess_collect_refs(iov + out, in, NULL);
    if (out_pages < 0 || in_pages < 0)
        return out_pages < 0 ? out_pages : in_pages;
    /* All at once: a chain that held some while it waited for the rest
     * would wake itself each time it gave them back. */
    ret = gaccess_take(ga, (uint64_t)out_pages + (uint64_t)in_pages);
    if (ret)
        return ret;
    ret = gaccess_grant_map_iov(ga, iov, out, false, ga->budget != NULL,
                                m_out);
    if (ret == 0)
        ret = gaccess_grant_map_iov(ga, iov + out, in, true,
                                    ga->budget != NULL, m_in);
    if (ret) {
        /* What was mapped goes back as it is unmapped. */
        gaccess_give(ga, m_out->pages ? (uint64_t)in_pages
                                      : (uint64_t)out_pages + in_pages);
        gaccess_unmap(ga, m_out);
    }
    return ret;
}

void *gaccess_map(const struct gaccess *ga, uint64_t addr, uint64_t len,
                  bool write, struct gmap *m)
{
    struct iovec v = {(void *)(uintptr_t)addr, (size_t)len};

    *m = (struct gmap){0};
    if (len == 0 || len > GACCESS_MAP_PAGES_MAX * GACCESS_PAGE)
        return NULL;
    if (!gaccess_grants(ga))
        return gmem_translate(ga->ram, addr, len);
    return gaccess_grant_map_iov(ga, &v, 1, write, false, m) ? NULL
                                                             : v.iov_base;
}

/* Failing, the grant stays mapped: the guest cannot end it, and Linux
 * then breaks the device ("Grant still in use"). Said, at least, at a rate
 * no guest can turn into a flood (one limit for every device: this is
 * dom0's trouble, not one device's). */
void gaccess_unmap(const struct gaccess *ga, struct gmap *m)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct ratelimit rl;
    int ret = m->pages ? hv_grant_unmap(ga->hv, m->base, m->pages) : 0;

    /* Pages that stay mapped stay counted: they still hold maptrack
     * entries. */
    if (m->budgeted && ret == 0)
        gbudget_give(ga->budget, m->pages);
    if (ret) {
        pthread_mutex_lock(&lock);
        log_ratelimited(&rl, NULL, "cannot unmap %u granted pages: %s",
                        m->pages, strerror(-ret));
        pthread_mutex_unlock(&lock);
    }
    *m = (struct gmap){0};
}

bool gaccess_may_map(const struct gaccess *ga, uint64_t addr, uint64_t len)
{
    uint64_t first, pages;

    if (len == 0 || addr + len < addr)
        return false;
    if (!gaccess_grants(ga))
        return gmem_translate(ga->ram, addr, len) != NULL;
    /* A grant address has bit 63 set: with no wrap, len < 2^63. */
    return gaccess_grant_refs(addr, len, &first, &pages);
}
