/* SPDX-License-Identifier: MIT */
/*
 * The simulated xenstore: the store seam (store.h) in memory, with
 * xenstored's semantics where xvdm can observe them (parents created on
 * write, watches firing on registration and on any change at or below
 * their path, removal firing watches inside the removed subtree, the
 * special watches @releaseDomain and @introduceDomain). Tests play libxl
 * and xenstored with it (store_rm() is libxl's removal on destroy). Every call
 * is thread-safe.
 */
#ifndef XVDM_STORE_SIM_H
#define XVDM_STORE_SIM_H

#include <stdint.h>

struct store;

/* An empty store that knows domain 0 only. NULL + errno. Freed by
 * store_close(). */
struct store *store_sim_create(void);

/* Domain `domid` comes into being (fires @introduceDomain) or dies
 * (fires @releaseDomain; store_domain_exists() is false from then on). */
void store_sim_domain_introduce(struct store *st, uint32_t domid);
void store_sim_domain_release(struct store *st, uint32_t domid);
/* A domain shut down: xenstored fires @releaseDomain, but still knows it
 * until it is destroyed. */
void store_sim_domain_shutdown(struct store *st);
/* Write n nodes at once, as a xenstored transaction commits (libxl
 * writes each device's nodes in one): readers see all of them or none,
 * and the watches fire after. 0, or a negative errno. */
int store_sim_write_all(struct store *st, const char *const *paths,
                        const char *const *values, unsigned n);
/* Reading `path` fails with EACCES from now on, as xenstored answers a
 * domain the node's permissions leave out (a driver domain reading its
 * guest's own nodes). The node need not exist. 0, or a negative errno. */
int store_sim_deny_read(struct store *st, const char *path);
/* From now on the store treats xvdm as an unprivileged domain's
 * connection (a driver domain's): asking whether a domain exists is
 * refused, as xenstored refuses XS_IS_DOMAIN_INTRODUCED. */
void store_sim_unprivileged(struct store *st);
/* Wait until `path` reads `value`. 0, or -ETIMEDOUT. */
int store_sim_wait_value(struct store *st, const char *path,
                         const char *value, unsigned timeout_ms);

#endif
