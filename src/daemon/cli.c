/* SPDX-License-Identifier: MIT */
/* The command line of the xvdm daemon (see cli.h). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "privilege.h"
#include "syscall-filter.h"

enum {
    OPT_PIDFILE = 256,
    OPT_LOG_LEVEL,
    OPT_SYSLOG,
    OPT_MODULE_DIR,
    OPT_CONFIG_DIR,
    OPT_LIST_DEVICES,
    OPT_VERSION,
    OPT_XENSTORE,
    OPT_PRINT_DTS,
    OPT_SUPERVISE,
    OPT_USER,
    OPT_CHROOT,
    OPT_SECCOMP,
    OPT_POLL_US,
    OPT_FAST_PATH,
    OPT_GRANT_PAGES
};

static const struct option cli_longopts[] = {
    {"domid", required_argument, NULL, 'd'},
    {"device", required_argument, NULL, 'D'},
    {"foreground", no_argument, NULL, 'F'},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"syslog", no_argument, NULL, OPT_SYSLOG},
    {"module-dir", required_argument, NULL, OPT_MODULE_DIR},
    {"config-dir", required_argument, NULL, OPT_CONFIG_DIR},
    {"list-devices", no_argument, NULL, OPT_LIST_DEVICES},
    {"xenstore", no_argument, NULL, OPT_XENSTORE},
    {"print-dts", no_argument, NULL, OPT_PRINT_DTS},
    {"supervise", no_argument, NULL, OPT_SUPERVISE},
    {"user", required_argument, NULL, OPT_USER},
    {"chroot", required_argument, NULL, OPT_CHROOT},
    {"seccomp", no_argument, NULL, OPT_SECCOMP},
    {"poll-us", required_argument, NULL, OPT_POLL_US},
    {"fast-path", required_argument, NULL, OPT_FAST_PATH},
    {"grant-pages", required_argument, NULL, OPT_GRANT_PAGES},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

void cli_usage(FILE *out)
{
    fputs("Usage: xvdm --domid DOMID [--xenstore] [--device SPEC ...] "
          "[OPTION...]\n"
          "       xvdm --print-dts --device SPEC [--device SPEC ...]\n"
          "       xvdm --supervise [OPTION...]\n"
          "Serve virtio-mmio devices to one Xen guest.\n\n"
          "  -d, --domid DOMID      the guest to serve\n"
          "  -D, --device SPEC      TYPE[,base=ADDR][,irq=SPI][,KEY=VALUE...]\n"
          "                         one per device, in the guest's order\n"
          "      --xenstore         also serve the virtio devices the guest's\n"
          "                         xl config declares, and answer libxl's\n"
          "                         backend handshake\n"
          "      --print-dts        print device-tree nodes for the devices\n"
          "                         (for xl's device_tree= or dom0less)\n"
          "      --supervise        run one 'xvdm --domid D --xenstore' per\n"
          "                         guest whose xl config declares virtio\n"
          "                         devices, as long as the guest lives\n"
          "  -F, --foreground       do not daemonize; log to stderr\n"
          "      --pidfile FILE     write the daemon's pid to FILE\n"
          "      --user USER        once serving, run as USER (not root)\n"
          "      --chroot DIR       once serving, chroot into DIR (empty)\n"
          "      --seccomp          once serving, allow only the system\n"
          "                         calls serving needs\n"
          "      --poll-us N        after an event, look for the next for up\n"
          "                         to N microseconds (0..1000) before\n"
          "                         sleeping, adapted to the guest's pace;\n"
          "                         0 (default): sleep at once\n"
          "      --fast-path WHEN   auto (default): let dom0's kernel answer\n"
          "                         kicks and raise interrupts (privcmd\n"
          "                         ioeventfd and irqfd) where it can; off;\n"
          "                         on: fail where it cannot\n"
          "      --grant-pages N    granted pages a guest's requests may hold\n"
          "                         mapped at once, all its devices in grant\n"
          "                         mode together (8192..4194304; default\n"
          "                         16384); the rest wait\n"
          "      --log-level LEVEL  error, warn, info (default) or debug\n"
          "      --syslog           log to syslog even in the foreground\n"
          "      --module-dir DIR   load device modules from DIR\n"
          "      --config-dir DIR   with --xenstore, devices also from\n"
          "                         DIR/NAME.conf, NAME the guest's name\n"
          "                         (default " GUEST_CONFIG_DIR ")\n"
          "      --list-devices     list the device types and their options\n"
          "  -h, --help             this help\n"
          "      --version          print the version\n\n"
          "Without base=, a device gets the first free slot n (from 0) of\n"
          "libxl's layout: window 0x2000000 + n * 0x200 and, without irq=,\n"
          "SPI 33 + n.\n",
          out);
}

/* arg as a plain decimal number in min..max, into *n. */
static bool cli_decimal(const char *arg, unsigned long min, unsigned long max,
                        unsigned long *n)
{
    char *end;

    errno = 0;
    *n = strtoul(arg, &end, 10);
    return !errno && end != arg && !*end && arg[0] != '-' && *n >= min &&
           *n <= max;
}

static int cli_poll_us(const char *arg, struct cli_options *o, char *err,
                       size_t errlen)
{
    unsigned long n;

    if (!cli_decimal(arg, 0, 1000, &n))
        return errbuf_printf(err, errlen,
                             "--poll-us '%s' is not a number of "
                             "microseconds (0..1000)",
                             arg);
    o->poll_us = (unsigned)n;
    o->poll_us_name = arg;
    return 0;
}

static int cli_fast_path(const char *arg, struct cli_options *o, char *err,
                         size_t errlen)
{
    static const char *const names[] = {"auto", "off", "on"};

    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(arg, names[i]) == 0) {
            o->fast_path = (enum cli_fast_path)i;
            o->fast_path_name = arg;
            return 0;
        }
    }
    return errbuf_printf(err, errlen, "--fast-path '%s' is not one of auto, "
                                      "off, on", arg);
}

/* At least what one chain may take (4096 pages each way), so that every
 * chain xvdm accepts can be mapped once the others are done. */
static int cli_grant_pages(const char *arg, struct cli_options *o,
                           char *err, size_t errlen)
{
    unsigned long n;

    if (!cli_decimal(arg, 8192, 4194304, &n))
        return errbuf_printf(err, errlen,
                             "--grant-pages '%s' is not a number of pages "
                             "(8192..4194304)", arg);
    o->grant_pages = n;
    o->grant_pages_name = arg;
    return 0;
}

static int cli_domid(const char *arg, struct cli_options *o, char *err,
                     size_t errlen)
{
    unsigned long n;

    /* DOMID_FIRST_RESERVED is 0x7ff0; domain 0 serves itself no devices. */
    if (!cli_decimal(arg, 1, 0x7fef, &n))
        return errbuf_printf(err, errlen,
                             "--domid '%s' is not a guest domain "
                             "id (1..32751)",
                             arg);
    o->domid = (uint32_t)n;
    o->domid_given = true;
    return 0;
}

static int cli_device(const char *arg, struct cli_options *o, char *err,
                      size_t errlen)
{
    int ret;

    if (o->nr_specs == CLI_DEVICES_MAX)
        return errbuf_printf(err, errlen, "more than %d --device options",
                             CLI_DEVICES_MAX);
    ret = devspec_parse(arg, &o->specs[o->nr_specs], err, errlen);
    if (ret == 0)
        o->nr_specs++;
    return ret;
}

static int cli_option(int c, const char *arg, struct cli_options *o, char *err,
                      size_t errlen)
{
    switch (c) {
    case 'd':
        return cli_domid(arg, o, err, errlen);
    case 'D':
        return cli_device(arg, o, err, errlen);
    case 'F':
        o->foreground = true;
        return 0;
    case OPT_PIDFILE:
        o->pidfile = arg;
        return 0;
    case OPT_LOG_LEVEL:
        if (log_level_parse(arg, &o->log_level))
            return errbuf_printf(err, errlen,
                                 "--log-level '%s' is not one of "
                                 "error, warn, info, debug",
                                 arg);
        o->log_level_name = arg;
        return 0;
    case OPT_SYSLOG:
        o->to_syslog = true;
        return 0;
    case OPT_MODULE_DIR:
        o->module_dir = arg;
        return 0;
    case OPT_CONFIG_DIR:
        o->config_dir = arg;
        return 0;
    case OPT_LIST_DEVICES:
        o->list_devices = true;
        return 0;
    case 'h':
        o->help = true;
        return 0;
    case OPT_VERSION:
        o->version = true;
        return 0;
    case OPT_XENSTORE:
        o->xenstore = true;
        return 0;
    case OPT_PRINT_DTS:
        o->print_dts = true;
        return 0;
    case OPT_SUPERVISE:
        o->supervise = true;
        return 0;
    case OPT_USER:
        o->user = arg;
        return 0;
    case OPT_CHROOT:
        o->chroot_dir = arg;
        return 0;
    case OPT_POLL_US:
        return cli_poll_us(arg, o, err, errlen);
    case OPT_FAST_PATH:
        return cli_fast_path(arg, o, err, errlen);
    case OPT_GRANT_PAGES:
        return cli_grant_pages(arg, o, err, errlen);
    case OPT_SECCOMP:
        if (!syscall_filter_available())
            return errbuf_printf(err, errlen, "--seccomp: this xvdm was "
                                              "built without libseccomp");
        o->seccomp = true;
        return 0;
    }
    return errbuf_printf(err, errlen, "unknown or incomplete option");
}

/* What a run needs beyond well-formed options. */
static int cli_check(struct cli_options *o, char *err, size_t errlen)
{
    if (o->help || o->version || o->list_devices)
        return 0;
    if (privilege_check(&o->privilege, o->user, o->chroot_dir, err, errlen))
        return -EINVAL;
    if (o->supervise && (o->domid_given || o->nr_specs || o->xenstore ||
                         o->print_dts))
        return errbuf_printf(err, errlen,
                             "--supervise serves every guest from xenstore: "
                             "it takes no --domid, --device, --xenstore or "
                             "--print-dts");
    if (o->supervise)
        return 0;
    if (!o->domid_given && !o->print_dts)
        return errbuf_printf(err, errlen, "--domid is required");
    if (o->nr_specs == 0 && !o->xenstore)
        return errbuf_printf(err, errlen, "at least one --device is required");
    if (o->xenstore && o->print_dts)
        return errbuf_printf(err, errlen,
                             "--print-dts prints the --device devices; "
                             "xl declares those of --xenstore itself");
    /* With --xenstore, the layout is assigned with xl's devices. */
    return o->xenstore ? 0
                       : devspec_assign_layout(o->specs, o->nr_specs, err,
                                               errlen);
}

int cli_parse(int argc, char **argv, struct cli_options *o, char *err,
              size_t errlen)
{
    int c, ret;

    memset(o, 0, sizeof(*o));
    o->log_level = LOG_LVL_INFO;
    opterr = 0; /* our messages name the bad argument */
    optind = 1;
    while ((c = getopt_long(argc, argv, ":d:D:Fh", cli_longopts, NULL)) != -1) {
        if (c == '?' || c == ':')
            return errbuf_printf(err, errlen, "%s '%s'",
                                 c == '?' ? "unknown option"
                                          : "missing value for",
                                 argv[optind - 1]);
        ret = cli_option(c, optarg, o, err, errlen);
        if (ret)
            return ret;
    }
    if (optind < argc)
        return errbuf_printf(err, errlen, "unexpected argument '%s'",
                             argv[optind]);
    return cli_check(o, err, errlen);
}

void cli_free(struct cli_options *o)
{
    for (unsigned i = 0; i < o->nr_specs; i++)
        devspec_free(&o->specs[i]);
    o->nr_specs = 0;
}
