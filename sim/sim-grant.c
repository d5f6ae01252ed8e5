/* SPDX-License-Identifier: MIT */
/*
 * The simulated guest's grant table, and the backend's side of it: xvdm
 * maps granted pages as gntdev does (all of a request or none, read-only
 * where the grant is or where it asked), each mapping a view of its own of
 * the guest's page, so that a page unmapped is gone for xvdm while the
 * guest still has it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim-private.h"

/* The RAM region holding [gpa, gpa + SIM_PAGE), or NULL. */
static const struct sim_ram_map *sim_ram_at(const struct sim *sim,
                                            uint64_t gpa)
{
    for (unsigned i = 0; i < sim->nr_ram; i++) {
        const struct sim_ram_map *m = &sim->ram[i];

        if (gpa >= m->r.gpa && gpa - m->r.gpa < m->r.size)
            return m;
    }
    return NULL;
}

/* n free consecutive references: the first, or -ENOSPC. */
static int sim_grant_find(struct sim *sim, unsigned n)
{
    for (unsigned first = 1, run = 0; first + run < SIM_GRANTS_MAX;) {
        if (sim->grant[first + run].granted) {
            first += run + 1;
            run = 0;
        } else if (++run == n) {
            return (int)first;
        }
    }
    return -ENOSPC;
}

int sim_grant(struct sim *sim, uint64_t gpa, uint64_t len, bool readonly,
              uint64_t *addr)
{
    uint64_t page = gpa & ~(uint64_t)(SIM_PAGE - 1);
    unsigned n = (unsigned)((gpa + len - page + SIM_PAGE - 1) / SIM_PAGE);
    int first;

    for (unsigned i = 0; i < n; i++)
        if (!sim_ram_at(sim, page + (uint64_t)i * SIM_PAGE))
            return -EINVAL;
    pthread_mutex_lock(&sim->lock);
    first = sim_grant_find(sim, n);
    for (unsigned i = 0; first > 0 && i < n; i++)
        sim->grant[first + i] = (struct sim_grant){
            .granted = true, .readonly = readonly,
            .gpa = page + (uint64_t)i * SIM_PAGE};
    pthread_mutex_unlock(&sim->lock);
    if (first < 0)
        return first;
    *addr = SIM_GRANT_ADDR(first, gpa);
    return 0;
}

int sim_revoke(struct sim *sim, uint64_t addr, uint64_t len)
{
    uint64_t first = (addr & ~(1ULL << 63)) >> 12;
    uint64_t n = ((addr & 0xfff) + len + SIM_PAGE - 1) / SIM_PAGE;
    int ret = 0;

    if (first + n > SIM_GRANTS_MAX)
        return -ENOENT;
    pthread_mutex_lock(&sim->lock);
    for (uint64_t i = first; i < first + n && ret == 0; i++)
        if (!sim->grant[i].granted)
            ret = -ENOENT;
        else if (sim->grant[i].maps)
            ret = -EBUSY;
    for (uint64_t i = first; i < first + n && ret == 0; i++)
        sim->grant[i].granted = false;
    sim->revokes_refused += ret == -EBUSY;
    pthread_mutex_unlock(&sim->lock);
    return ret;
}

unsigned sim_revokes_refused(struct sim *sim)
{
    return sim_count(sim, &sim->revokes_refused);
}

uint64_t sim_grant_gpa(struct sim *sim, uint64_t addr)
{
    uint64_t ref = (addr & ~(1ULL << 63)) >> 12, gpa = 0;

    pthread_mutex_lock(&sim->lock);
    if (ref < SIM_GRANTS_MAX && sim->grant[ref].granted)
        gpa = sim->grant[ref].gpa + (addr & 0xfff);
    pthread_mutex_unlock(&sim->lock);
    return gpa;
}

unsigned sim_grants_mapped(struct sim *sim)
{
    return sim_count(sim, &sim->grant_maps);
}

unsigned sim_grants_mapped_peak(struct sim *sim)
{
    return sim_count(sim, &sim->grant_maps_peak);
}

unsigned sim_grant_map_calls(struct sim *sim)
{
    return sim_count(sim, &sim->grant_map_calls);
}

/* May xvdm map ref now (granted, and writable when asked)? */
static bool sim_grant_usable(const struct sim *sim, uint32_t ref,
                             bool writable)
{
    return ref > 0 && ref < SIM_GRANTS_MAX && sim->grant[ref].granted &&
           (!writable || !sim->grant[ref].readonly);
}

/* Each page its own shared view of the RAM's memfd, side by side. */
static void *sim_grant_view(struct sim *sim, const uint32_t *refs, unsigned n,
                            bool writable)
{
    size_t len = (size_t)n * SIM_PAGE;
    uint8_t *at = mmap(NULL, len, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);

    if (at == MAP_FAILED)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        uint64_t gpa = sim->grant[refs[i]].gpa;
        const struct sim_ram_map *m = sim_ram_at(sim, gpa);

        if (mmap(at + (size_t)i * SIM_PAGE, SIM_PAGE, prot,
                 MAP_SHARED | MAP_FIXED, sim->ram_fd,
                 m->offset + (off_t)(gpa - m->r.gpa)) == MAP_FAILED) {
            munmap(at, len);
            return NULL;
        }
    }
    return at;
}

void *sim_grant_map(struct hv *hv, const uint32_t *refs, unsigned n,
                    bool writable)
{
    struct sim *sim = sim_of(hv);
    struct sim_grant_mapping *m = NULL;
    int err = EINVAL;

    if (n == 0 || n > SIM_GRANT_MAP_MAX)
        goto fail;
    m = malloc(sizeof(*m) + n * sizeof(refs[0]));
    err = ENOMEM;
    if (!m)
        goto fail;
    pthread_mutex_lock(&sim->lock);
    err = EINVAL;
    for (unsigned i = 0; i < n; i++)
        if (!sim_grant_usable(sim, refs[i], writable))
            goto unlock;
    err = ENOMEM;
    m->addr = sim_grant_view(sim, refs, n, writable);
    if (!m->addr)
        goto unlock;
    m->n = n;
    memcpy(m->refs, refs, n * sizeof(refs[0]));
    for (unsigned i = 0; i < n; i++)
        sim->grant[refs[i]].maps++;
    sim->grant_maps += n;
    sim->grant_map_calls++;
    if (sim->grant_maps > sim->grant_maps_peak)
        sim->grant_maps_peak = sim->grant_maps;
    m->next = sim->mappings;
    sim->mappings = m;
    pthread_mutex_unlock(&sim->lock);
    return m->addr;
unlock:
    pthread_mutex_unlock(&sim->lock);
fail:
    free(m);
    errno = err;
    return NULL;
}

int sim_grant_unmap(struct hv *hv, void *addr, unsigned n)
{
    struct sim *sim = sim_of(hv);
    struct sim_grant_mapping **p, *m;
    int err;

    pthread_mutex_lock(&sim->lock);
    err = sim->grant_unmap_error;
    for (p = &sim->mappings; (m = *p) && (m->addr != addr || m->n != n);
         p = &m->next)
        ;
    if (m && err) {
        pthread_mutex_unlock(&sim->lock);
        return err;
    }
    if (m) {
        *p = m->next;
        for (unsigned i = 0; i < n; i++)
            sim->grant[m->refs[i]].maps--;
        sim->grant_maps -= n;
    }
    pthread_mutex_unlock(&sim->lock);
    if (!m)
        return -EINVAL;
    munmap(addr, (size_t)n * SIM_PAGE);
    free(m);
    return 0;
}
