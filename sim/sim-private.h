/* SPDX-License-Identifier: MIT */
/* The simulated hypervisor's state, shared by its files (hv-sim.c, the
 * ioreq and RAM side; sim-grant.c, the grant table). */
#ifndef XVDM_SIM_PRIVATE_H
#define XVDM_SIM_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "guest-layout.h"
#include "hv.h"
#include "sim.h"

#define SIM_PAGE 4096
#define SIM_VCPUS_MAX 64
#define SIM_RANGES_MAX 64
#define SIM_SPIS (GUEST_LAYOUT_SPI_MAX + 1)

struct sim_range {
    uint64_t start, size;
};

struct sim_spi {
    unsigned edges; /* level-1 calls: each makes the SPI pending */
    unsigned calls; /* every set_irq_level, level 0 (ignored) included */
    unsigned irqfd_edges; /* of edges, those an irqfd made */
};

/* The fast path's assignments (sim-eventfd.c). */
#define SIM_IOEVENTFDS_MAX 256
#define SIM_IRQFDS_MAX 64

struct sim_ioeventfd {
    bool used;
    uint64_t window;
    uint32_t vq;
    int fd;
};

struct sim_irqfd {
    bool used;
    uint32_t spi;
    int fd;
};

/* A region of guest RAM as mapped here: the bytes, with an inaccessible
 * page on either side. */
struct sim_ram_map {
    struct sim_ram_region r;
    uint8_t *map; /* the whole mapping, guard pages included */
    size_t len;
    off_t offset; /* of its bytes in the RAM's memfd */
};

/* One entry of the guest's grant table (Xen's struct grant_entry_v1, as
 * the guest fills it): a page it lets the backend domain map. */
struct sim_grant {
    bool granted;
    bool readonly;
    uint64_t gpa;   /* the page */
    unsigned maps;  /* live mappings of it by xvdm */
};

/* A mapping xvdm holds, to count its references down when it goes. */
struct sim_grant_mapping {
    struct sim_grant_mapping *next;
    void *addr;
    unsigned n;
    uint32_t refs[];
};

/* gntdev's cap on one request. */
#define SIM_GRANT_MAP_MAX 65536

struct sim {
    struct hv hv; /* what xvdm sees */
    struct sim_config cfg;
    unsigned nr_ram;
    struct sim_ram_map ram[SIM_RAM_REGIONS_MAX];
    int ram_fd; /* memfd: every region's bytes, so grants can map them */
    bool ram_pinnable; /* by the kernel, for direct I/O (sim_config) */
    struct sim_grant grant[SIM_GRANTS_MAX];
    unsigned grant_maps; /* live grant mappings, all grants */
    unsigned grant_maps_peak; /* the most there ever were at once */
    unsigned grant_map_calls; /* mappings made so far, however many pages */
    unsigned revokes_refused;
    struct sim_grant_mapping *mappings;

    pthread_mutex_t lock;
    /* Apart, as in Xen: an interrupt does not resume a vCPU that waits
     * for its ioreq's answer. */
    pthread_cond_t answered; /* a notify, or a server change */
    pthread_cond_t edge;     /* an interrupt line changed */
    bool server_exists;
    bool server_enabled;
    unsigned nr_ranges;
    struct sim_range range[SIM_RANGES_MAX];
    int evtchn_fd;    /* eventfd: readable while any port is pending */
    uint64_t pending; /* vCPU ports pending towards xvdm */
    uint64_t notified; /* vCPU ports xvdm kicked back */
    struct sim_spi spi[SIM_SPIS];
    int irq_error; /* injected: what set_irq_level returns, or 0 */
    int evtchn_error[SIM_EVTCHN_CALLS]; /* injected, likewise */
    int grant_unmap_error;              /* injected, likewise */

    /* The fast path, when cfg.eventfds (sim-eventfd.c). */
    bool server_was_enabled; /* the ports are bound */
    struct sim_ioeventfd ioeventfd[SIM_IOEVENTFDS_MAX];
    struct sim_irqfd irqfd[SIM_IRQFDS_MAX];
    unsigned eventfds_assigned;
    unsigned kernel_answers; /* writes the kernel answered */
    unsigned kernel_missed; /* matching ones it found already taken */
    unsigned kernel_hold_ms; /* sim_kernel_hold() */
    pthread_t late_thread;   /* sim_kernel_look_late()'s */
    bool late_running;
    int irqfd_epoll, irqfd_stop;
    pthread_t irqfd_thread;
    bool irqfd_running;
};

struct sim *sim_of(struct hv *hv);
/* Wait for sim_kernel_look_late()'s thread, if one ran. */
void sim_kernel_late_join(struct sim *sim);
/* *counter, read under the lock. */
unsigned sim_count(struct sim *sim, const unsigned *counter);

/* The hv seam's grant operations (sim-grant.c). */
void *sim_grant_map(struct hv *hv, const uint32_t *refs, unsigned n,
                    bool writable);
int sim_grant_unmap(struct hv *hv, void *addr, unsigned n);

/* The hv seam's fast path (sim-eventfd.c). */
int sim_ioeventfd(struct hv *hv, uint64_t window, uint32_t vq, int fd,
                  bool assign);
int sim_irqfd(struct hv *hv, uint32_t spi, int fd, bool assign);
/* The kernel's thread for irqfds: started by sim_create() when the config
 * has eventfds, stopped by sim_destroy(). */
int sim_irqfd_start(struct sim *sim);
void sim_irqfd_stop(struct sim *sim);
/* Xen's event on vCPU `vcpu`'s port, its ioreq published, lock held: the
 * port made pending towards xvdm, and a matching QueueNotify claimed and
 * answered by the kernel (sim-eventfd.c). */
int sim_kernel_event(struct sim *sim, unsigned vcpu);

#endif
