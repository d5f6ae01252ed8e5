/* SPDX-License-Identifier: MIT */
/* A one-node Ceph cluster for the tests and the benchmark of
 * blk,rbd=POOL/IMAGE: sim/ceph-cluster (named by $XVDM_CEPH_CLUSTER) run
 * in a fresh directory under /tmp, on a port pair of the caller's pid.
 * Nothing here needs librbd: only Ceph's daemons, found on PATH. */
#ifndef XVDM_SIM_CEPH_NODE_H
#define XVDM_SIM_CEPH_NODE_H

struct ceph_node {
    char dir[64];   /* the cluster's directory's parent */
    char conf[128]; /* its ceph.conf; "" when it is not running */
};

/* The cluster started, back when pool "rbd" takes images: 0, or -1 said
 * on stdout (daemons not installed, no $XVDM_CEPH_CLUSTER, the cluster
 * did not start), with c->conf "". */
int ceph_node_start(struct ceph_node *c);

/* The OSD alone killed: the cluster answers no operation after. 0 or -1. */
int ceph_node_kill_osd(const struct ceph_node *c);

/* The daemons killed and the directory removed; said when it cannot be. */
void ceph_node_stop(struct ceph_node *c);

#endif
