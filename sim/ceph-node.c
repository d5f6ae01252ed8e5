/* SPDX-License-Identifier: MIT */
#include "ceph-node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A port pair (msgr v1 at port, v2 at port + 1) per run, from the pid:
 * two runs side by side do not meet. */
static unsigned ceph_node_port(void)
{
    return 20000 + (unsigned)getpid() % 20000 * 2;
}

/* The script's `cmd` on the cluster: system()'s result, or -1 without
 * $XVDM_CEPH_CLUSTER. */
static int ceph_node_run(const struct ceph_node *c, const char *cmd)
{
    const char *script = getenv("XVDM_CEPH_CLUSTER");
    char line[256];

    if (!script)
        return -1;
    snprintf(line, sizeof(line), "%s %s %s/c", script, cmd, c->dir);
    return system(line);
}

/* The script's `start`, its one line of output (ceph.conf's path) read
 * into c->conf: 0, or -1 with c->conf "". */
static int ceph_node_read_conf(struct ceph_node *c, const char *script)
{
    char cmd[256];
    FILE *out;

    snprintf(cmd, sizeof(cmd), "%s start %s/c %u", script, c->dir,
             ceph_node_port());
    out = popen(cmd, "r");
    if (!out || !fgets(c->conf, sizeof(c->conf), out))
        c->conf[0] = '\0';
    c->conf[strcspn(c->conf, "\n")] = '\0';
    if (!out || pclose(out) != 0 || !c->conf[0]) {
        printf("the Ceph cluster did not start (%s)\n", cmd);
        c->conf[0] = '\0';
        return -1;
    }
    return 0;
}

int ceph_node_start(struct ceph_node *c)
{
    const char *script = getenv("XVDM_CEPH_CLUSTER");

    c->conf[0] = '\0';
    if (system("command -v ceph-mon >/dev/null && "
               "command -v ceph-osd >/dev/null") != 0) {
        printf("ceph-mon or ceph-osd not installed (Debian: ceph-mon, "
               "ceph-osd, ceph-common; tools/install-deps)\n");
        return -1;
    }
    snprintf(c->dir, sizeof(c->dir), "/tmp/xvdm-ceph.XXXXXX");
    if (!script || !mkdtemp(c->dir)) {
        printf("no $XVDM_CEPH_CLUSTER, or no directory for the cluster\n");
        return -1;
    }
    if (ceph_node_read_conf(c, script)) {
        rmdir(c->dir);
        return -1;
    }
    return 0;
}

int ceph_node_kill_osd(const struct ceph_node *c)
{
    return ceph_node_run(c, "kill-osd") == 0 ? 0 : -1;
}

void ceph_node_stop(struct ceph_node *c)
{
    if (ceph_node_run(c, "stop") != 0 || rmdir(c->dir) != 0)
        printf("cannot remove %s\n", c->dir);
    c->conf[0] = '\0';
}
