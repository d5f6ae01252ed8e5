/* SPDX-License-Identifier: MIT */
/* The command line of the xvdm daemon. */
#ifndef XVDM_CLI_H
#define XVDM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "devspec.h"
#include "log.h"
#include "privilege.h"

#define CLI_DEVICES_MAX 32

struct cli_options {
    uint32_t domid;
    bool domid_given;
    bool foreground;
    bool to_syslog;
    enum log_level log_level;
    const char *log_level_name; /* as given, for --supervise's instances */
    const char *pidfile;
    const char *module_dir;
    const char *config_dir; /* --config-dir: the guests' own files */
    unsigned poll_us;         /* --poll-us: the loop's most polling */
    const char *poll_us_name; /* as given, for --supervise's instances */
    /* --fast-path: take the host's ioeventfd and irqfd where it has them
     * (auto), never (off), or refuse to run without them (on). */
    enum cli_fast_path {
        CLI_FAST_PATH_AUTO,
        CLI_FAST_PATH_OFF,
        CLI_FAST_PATH_ON
    } fast_path;
    const char *fast_path_name; /* as given, for --supervise's instances */
    uint64_t grant_pages; /* --grant-pages: a guest's mapped grants; 0: default */
    const char *grant_pages_name; /* as given, for --supervise's instances */
    bool list_devices;
    bool help;
    bool version;
    bool xenstore;  /* devices and handshake from xenstore too */
    bool print_dts; /* print device-tree nodes and exit */
    bool supervise; /* one instance per guest, from xenstore */
    const char *user;       /* --user, as given */
    const char *chroot_dir; /* --chroot, as given */
    bool seccomp;
    struct privilege privilege;
    unsigned nr_specs;
    struct devspec specs[CLI_DEVICES_MAX];
};

/* Parse argv. 0, or -EINVAL with err naming the bad argument (the caller
 * prints it and exits 2). Device specs are parsed and given their layout. */
int cli_parse(int argc, char **argv, struct cli_options *o, char *err,
              size_t errlen);
void cli_usage(FILE *out);
void cli_free(struct cli_options *o);

#endif
