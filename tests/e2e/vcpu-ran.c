/* SPDX-License-Identifier: MIT */
/*
 * vcpu-ran DOMID: how long vCPU 0 of domain DOMID has run so far, in ns,
 * as Xen accounts it (its running state only: not while it is blocked,
 * waiting for an ioreq's answer or halted, nor while it waits for a pCPU).
 * The peers scenario samples it around each fio run on xvdm's disk: what
 * the guest counted as busy beyond it is time its vCPU was stopped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>

int main(int argc, char **argv)
{
    xc_vcpuinfo_t info;
    xc_interface *xc;
    char *end = NULL;
    unsigned long domid = argc == 2 ? strtoul(argv[1], &end, 10) : 0;
    int ret;

    if (argc != 2 || end == argv[1] || *end || domid >= DOMID_FIRST_RESERVED) {
        fprintf(stderr, "usage: vcpu-ran DOMID\n");
        return 2;
    }
    xc = xc_interface_open(NULL, NULL, 0);
    if (!xc) {
        fprintf(stderr, "vcpu-ran: cannot open Xen's control interface: %s\n",
                strerror(errno));
        return 1;
    }
    ret = xc_vcpu_getinfo(xc, (uint32_t)domid, 0, &info);
    if (ret < 0)
        fprintf(stderr, "vcpu-ran: vCPU 0 of domain %lu: %s\n", domid,
                strerror(errno));
    else
        printf("%" PRIu64 "\n", (uint64_t)info.cpu_time);
    xc_interface_close(xc);
    return ret < 0 ? 1 : 0;
}
