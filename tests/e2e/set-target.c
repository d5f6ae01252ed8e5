/* SPDX-License-Identifier: MIT */
/*
 * set-target DM_DOMID GUEST_DOMID: make domain DM_DOMID the device model
 * of GUEST_DOMID (XEN_DOMCTL_set_target), the step libxl takes only for a
 * stub domain. Under Xen's default XSM policy, a domain other than dom0
 * may use the device-model operations (an ioreq server, the guest's
 * interrupts, acquiring its ioreq pages) and read the guest's domain
 * info only on its target; a domain has at most one target, for its
 * life. The driver-domain scenario runs this in dom0 before the guest
 * is unpaused; users must do the same (README, "Driver domains").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>

static int parse_domid(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v >= DOMID_FIRST_RESERVED) {
        fprintf(stderr, "set-target: '%s' is not a domain id\n", s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t dm, guest;
    xc_interface *xc;
    int ret;

    if (argc != 3) {
        fprintf(stderr, "usage: set-target DM_DOMID GUEST_DOMID\n");
        return 2;
    }
    if (parse_domid(argv[1], &dm) || parse_domid(argv[2], &guest))
        return 2;
    xc = xc_interface_open(NULL, NULL, 0);
    if (!xc) {
        fprintf(stderr, "set-target: cannot open Xen's control interface: %s\n",
                strerror(errno));
        return 1;
    }
    ret = xc_domain_set_target(xc, dm, guest);
    if (ret < 0)
        fprintf(stderr, "set-target: domain %u as device model of %u: %s\n",
                dm, guest, strerror(errno));
    else
        printf("set-target: domain %u is the device model of domain %u\n", dm,
               guest);
    xc_interface_close(xc);
    return ret < 0 ? 1 : 0;
}
