/* SPDX-License-Identifier: MIT */
/*
 * xvdm: serve virtio-mmio devices to one Xen guest.
 *
 * SIGHUP makes every device look at its backing again (a disk re-reads its
 * size).
 *
 * SIGUSR1 logs each device's counters (what it did, and the guest's traps
 * per request), which a clean stop logs too, and each vCPU's ioreq slot. The supervisor passes
 * SIGHUP and SIGUSR1 on to its instances.
 *
 * SIGUSR2 (from the supervisor, when the guest declared devices after
 * xvdm started) stops it with its xenstore devices left open, exit status
 * 75, for the next instance to serve them all.
 *
 * Exit status: 0 after a clean stop (SIGTERM/SIGINT); 1 when setting up
 * failed (no Xen, no such domain, a device refused an option's value); 2
 * for a bad command line, unknown device types and option names included;
 * 75 after SIGUSR2.
 * When daemonizing, the parent exits only once the child is serving (0) or
 * has failed (its status), so whoever starts xvdm learns the outcome and
 * sees the error on its stderr; a signal above that arrived before the
 * fork is passed on to the child.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "dev.h"
#include "dts.h"
#include "guest-watch.h"
#include "host-path.h"
#include "hv.h"
#include "log.h"
#include "loop.h"
#include "module.h"
#include "privilege.h"
#include "store.h"
#include "syscall-filter.h"
#include "guest-config.h"
#include "supervisor.h"
#include "vm.h"

/* How long xvdm --xenstore waits for a guest's devices to appear: libxl
 * gives a backend 10 s for its handshake. */
#define DAEMON_DEVICES_WAIT_MS 10000

struct daemon {
    const struct cli_options *opts;
    struct store *store;     /* with --xenstore */
    struct backend *backend; /* with --xenstore */
    struct supervisor *supervisor;
    struct supervisor_config sv_config;
    struct hv_state_probe *sv_probe; /* what Xen says of the guests */
    const char *sv_args[24];
    char exe[4096];
    const struct devspec *specs;
    unsigned nr_specs;
    /* With --xenstore: the command line's devices, then the guest's own
     * file's (file_specs, owned here). */
    struct devspec given[BACKEND_DEVICES_MAX];
    struct devspec file_specs[GUEST_CONFIG_DEVICES_MAX];
    unsigned nr_file_specs;
    struct hv *hv;
    struct loop *loop;
    struct vm *vm;
    int guest_watch_fd; /* readable once the guest has gone (guest-watch.h) */
    pid_t guest_watcher;
    int signal_fd;
    int ready_fd; /* write end of the pipe the parent waits on, or -1 */
    int null_fd;  /* /dev/null, for the daemon's stdio */
    bool pidfile_written;
    bool hand_over; /* SIGUSR2: leave the devices open for the next one */
};

/* ---- daemonizing -------------------------------------------------------- */

static void handled_signals(sigset_t *set);

/* A handled signal that came between main()'s block and the fork is
 * pending in the parent only (fork(2): the child's pending set starts
 * empty), yet it was meant for xvdm, which the child now is: take it
 * from the parent, so that unblocking does not kill the parent with it,
 * and send it on. kill() fails only when the child is gone, and the
 * parent reports that child's status. */
static void daemon_forward_pending(pid_t child)
{
    static const struct timespec now = {0, 0};
    sigset_t handled, pending, one;

    handled_signals(&handled);
    sigpending(&pending);
    for (int sig = 1; sig < NSIG; sig++) {
        if (!sigismember(&handled, sig) || !sigismember(&pending, sig))
            continue;
        sigemptyset(&one);
        sigaddset(&one, sig);
        if (sigtimedwait(&one, NULL, &now) == sig)
            kill(child, sig);
    }
}

/* Fork; the parent waits until the child reports ready or exits, and
 * exits accordingly. Returns in the child only. */
static int daemon_fork(struct daemon *d)
{
    int pipefd[2], status;
    char byte;
    pid_t pid;

    if (pipe2(pipefd, O_CLOEXEC))
        return -errno;
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0) {
        sigset_t none;

        daemon_forward_pending(pid);
        /* Only waiting: Ctrl-C may stop it, as it would any command. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(pipefd[1]);
        if (read(pipefd[0], &byte, 1) == 1)
            exit(EXIT_SUCCESS);
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
            exit(WEXITSTATUS(status));
        exit(EXIT_FAILURE);
    }
    close(pipefd[0]);
    d->ready_fd = pipefd[1];
    /* Opened now: after --chroot there is no /dev/null. */
    d->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (d->null_fd < 0)
        return -errno;
    return setsid() < 0 ? -errno : 0;
}

/* Serving: release the parent, detach from the terminal, log to syslog. */
/* --user, --chroot, --seccomp: give up what serving does not need. */
static int daemon_confine(const struct cli_options *o)
{
    const struct privilege *p = &o->privilege;
    int ret = 0;

    if (p->chroot_dir || p->drop_user || o->seccomp)
        ret = privilege_preload();
    if (ret == 0)
        ret = privilege_drop(p);
    if (ret == 0 && o->seccomp)
        ret = syscall_filter_install();
    return ret;
}

/* Daemonizing: from now on, log to syslog (connected before any chroot). */
static void daemon_log_to_syslog(struct daemon *d)
{
    if (d->ready_fd >= 0)
        log_init(d->opts->log_level, true,
                 d->opts->supervise ? -1 : (int64_t)d->opts->domid);
}

/* Serving: detach from the terminal and release the parent. */
static int daemon_ready(struct daemon *d)
{
    if (d->ready_fd < 0)
        return 0;
    dup2(d->null_fd, STDIN_FILENO);
    dup2(d->null_fd, STDOUT_FILENO);
    dup2(d->null_fd, STDERR_FILENO);
    close(d->null_fd);
    d->null_fd = -1;
    if (write(d->ready_fd, "", 1) != 1)
        return -errno;
    close(d->ready_fd);
    d->ready_fd = -1;
    return 0;
}

static int daemon_write_pidfile(struct daemon *d)
{
    FILE *f = fopen(d->opts->pidfile, "w");

    if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
        log_err("cannot write pidfile '%s': %s", d->opts->pidfile,
                strerror(errno));
        return -errno;
    }
    d->pidfile_written = true;
    return 0;
}

/* ---- signals ------------------------------------------------------------- */

static void daemon_on_signal(void *arg, uint32_t revents)
{
    struct daemon *d = arg;
    struct signalfd_siginfo si;

    if (read(d->signal_fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (si.ssi_signo == SIGUSR2 && d->backend) {
        log_info("SIGUSR2: stopping, the devices left open for the next "
                 "xvdm");
        d->hand_over = true;
        loop_stop(d->loop);
    } else if (si.ssi_signo == SIGUSR2) {
        log_info("SIGUSR2: ignored (it stops an instance serving xenstore "
                 "devices)");
    } else if (si.ssi_signo != SIGHUP && si.ssi_signo != SIGUSR1) {
        log_info("%s: stopping", strsignal((int)si.ssi_signo));
        loop_stop(d->loop);
    } else if (d->supervisor) {
        log_info("%s: passing it on to the instances",
                 strsignal((int)si.ssi_signo));
        supervisor_signal(d->supervisor, (int)si.ssi_signo);
    } else if (si.ssi_signo == SIGUSR1) {
        vm_log_counters(d->vm);
        vm_log_ioreq_slots(d->vm);
    } else {
        log_info("SIGHUP: devices look at their backing again");
        vm_reload(d->vm);
    }
}

/* SIGTERM, SIGINT and SIGHUP arrive on an fd in the loop, so neither a
 * stop nor a reload interrupts an ioreq half-answered. */
static void handled_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
    sigaddset(set, SIGUSR2);
}

/* Blocked first thing, before any thread exists (device modules start
 * I/O threads), so that every thread inherits the mask and none dies of
 * them. Blocked, they reach the signalfd even when inherited as ignored
 * (nohup): Linux discards only ignored signals that are not blocked. */
static int block_handled_signals(void)
{
    sigset_t set;

    handled_signals(&set);
    return sigprocmask(SIG_BLOCK, &set, NULL) ? -errno : 0;
}

static int daemon_watch_signals(struct daemon *d)
{
    sigset_t set;

    handled_signals(&set);
    d->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d->signal_fd < 0)
        return -errno;
    return loop_watch(d->loop, d->signal_fd, EPOLLIN, daemon_on_signal, d);
}

/* ---- life cycle ----------------------------------------------------------- */

/* Device types and option names are checked before Xen is touched, so a
 * typo is reported the same with or without a hypervisor. Each spec's
 * virtio device id into ids[] unless NULL. */
static int check_devices(const struct cli_options *o, const char *module_dir,
                         uint32_t *ids)
{
    char err[512];
    int ret = 0;

    for (unsigned i = 0; i < o->nr_specs && ret == 0; i++) {
        struct module mod;

        ret = module_load(&mod, module_dir, o->specs[i].type, err,
                          sizeof(err));
        if (ret) {
            log_err("--device '%s': %s", o->specs[i].text, err);
            break;
        }
        ret = dev_check_options(mod.ops, &o->specs[i].opts);
        if (ids)
            ids[i] = mod.ops->device_id;
        module_unload(&mod);
    }
    return ret;
}

static void daemon_on_guest_gone(void *arg)
{
    struct daemon *d = arg;

    loop_stop(d->loop);
}

/* The watcher says the guest shut down or died (or, at end of file, that
 * it died itself and can no longer say): let go of the guest now, before
 * a toolstack tries to destroy it. */
static void daemon_on_guest_watch(void *arg, uint32_t revents)
{
    struct daemon *d = arg;
    uint8_t state;

    if (read(d->guest_watch_fd, &state, 1) == 1)
        log_info("domain %u is %s: letting go of it", d->opts->domid,
                 guest_state_name(state));
    else
        log_err("domain %u: its watcher process died: letting go of it, as "
                "its shutdown would go unnoticed", d->opts->domid);
    loop_stop(d->loop);
}

/* Before vm_create(), which starts device threads: the watcher is a fork. */
static int daemon_watch_guest(struct daemon *d)
{
    d->guest_watch_fd = guest_watch_spawn(d->opts->domid, &d->guest_watcher);
    if (d->guest_watch_fd < 0)
        return d->guest_watch_fd;
    return loop_watch(d->loop, d->guest_watch_fd, EPOLLIN,
                      daemon_on_guest_watch, d);
}

/* The watcher exits when its pipe's reader is gone. */
static void daemon_stop_watching_guest(struct daemon *d)
{
    if (d->guest_watch_fd < 0)
        return;
    loop_unwatch(d->loop, d->guest_watch_fd);
    close(d->guest_watch_fd);
    waitpid(d->guest_watcher, NULL, 0);
}

/* The guest's own file: its lines follow the command line's devices. */
static int daemon_read_guest_config(struct daemon *d)
{
    const struct cli_options *o = d->opts;
    const char *dir = o->config_dir ? o->config_dir : GUEST_CONFIG_DIR;
    char path[4096], err[1024];
    int ret;

    ret = guest_config_read(d->store, o->domid, dir, d->file_specs,
                            GUEST_CONFIG_DEVICES_MAX, &d->nr_file_specs, path,
                            sizeof(path), err, sizeof(err));
    if (ret == 0 && d->nr_file_specs)
        log_info("%u device line(s) from %s", d->nr_file_specs, path);
    if (ret == 0)
        ret = guest_config_combine(o->specs, o->nr_specs, d->file_specs,
                                   d->nr_file_specs, path, d->given,
                                   BACKEND_DEVICES_MAX, err, sizeof(err));
    if (ret)
        log_err("%s", err);
    return ret;
}

/* The devices: the command line's, or with --xenstore those the guest's
 * xl config declares combined with them and the guest's own file's. */
static int daemon_find_devices(struct daemon *d, const char *module_dir)
{
    const struct cli_options *o = d->opts;
    int ret;

    d->specs = o->specs;
    d->nr_specs = o->nr_specs;
    if (!o->xenstore)
        return 0;
    d->store = store_xen_open();
    if (!d->store)
        return -errno;
    /* The guest's file backs the xl config's devices: with none on the
     * command line, those are what xvdm waits for. */
    ret = o->nr_specs ? 0
                      : backend_wait_for_devices(d->store, o->domid,
                                                 DAEMON_DEVICES_WAIT_MS);
    if (ret == 0)
        ret = daemon_read_guest_config(d);
    if (ret == 0)
        ret = backend_open(&d->backend, d->store, o->domid, module_dir,
                           d->given, o->nr_specs + d->nr_file_specs);
    if (ret == 0)
        d->specs = backend_specs(d->backend, &d->nr_specs);
    return ret;
}

/* With every device in grant mode, none of the guest's RAM is mapped:
 * xvdm reaches only what the guest grants. */
static bool daemon_maps_ram(const struct daemon *d)
{
    for (unsigned i = 0; i < d->nr_specs; i++)
        if (!d->specs[i].grants)
            return true;
    log_info("every device in grant mode: none of domain %u's RAM mapped",
             d->opts->domid);
    return false;
}

/* The host said whether it has the fast path; the user may forgo it, or
 * insist on it. */
static int daemon_choose_fast_path(struct hv *hv, enum cli_fast_path want)
{
    if (want == CLI_FAST_PATH_OFF && hv->eventfds) {
        hv->eventfds = false;
        log_info("fast path: off (--fast-path off)");
    }
    if (want == CLI_FAST_PATH_ON && !hv->eventfds) {
        log_err("--fast-path on: this host cannot answer kicks and raise "
                "interrupts itself (see the line above)");
        return -EOPNOTSUPP;
    }
    return 0;
}

/* Serve one guest: its devices, the ioreq server, the handshake. */
static int daemon_setup_guest(struct daemon *d, const char *module_dir)
{
    const struct cli_options *o = d->opts;
    int ret;

    ret = daemon_find_devices(d, module_dir);
    if (ret)
        return ret;
    d->hv = hv_xen_open(o->domid);
    if (!d->hv)
        return -errno;
    ret = daemon_choose_fast_path(d->hv, o->fast_path);
    if (ret)
        return ret;
    ret = daemon_watch_guest(d);
    if (ret)
        return ret;
    ret = vm_create(&d->vm, d->hv, d->loop, d->store, d->specs, d->nr_specs,
                    &(struct vm_options){.module_dir = module_dir,
                                         .grant_pages = o->grant_pages});
    if (ret)
        return ret;
    ret = hv_restrict_to_guest(d->hv);
    if (ret) {
        log_err("cannot restrict the Xen handles to domain %u: %s",
                o->domid, strerror(-ret));
        return ret;
    }
    /* The guest stays paused until libxl sees InitWait, and only then
     * touches its devices: so InitWait goes first, and mapping its RAM
     * (the slowest step) does not count against libxl's 10 s. */
    if (d->backend)
        ret = backend_start(d->backend, d->loop, daemon_on_guest_gone, d);
    if (ret || !daemon_maps_ram(d))
        return ret;
    return hv_map_guest_ram(d->hv);
}

/* The instances run this very program, with our log settings. */
static int daemon_setup_supervisor(struct daemon *d, const char *module_dir)
{
    const struct cli_options *o = d->opts;
    ssize_t len = readlink("/proc/self/exe", d->exe, sizeof(d->exe) - 1);
    unsigned n = 0;

    if (len < 0)
        return -errno;
    d->exe[len] = '\0';
    d->sv_args[n++] = "--module-dir";
    d->sv_args[n++] = module_dir;
    if (o->log_level_name) {
        d->sv_args[n++] = "--log-level";
        d->sv_args[n++] = o->log_level_name;
    }
    if (o->to_syslog || !o->foreground)
        d->sv_args[n++] = "--syslog";
    if (o->user) {
        d->sv_args[n++] = "--user";
        d->sv_args[n++] = o->user;
    }
    if (o->chroot_dir) {
        d->sv_args[n++] = "--chroot";
        d->sv_args[n++] = o->chroot_dir;
    }
    if (o->seccomp)
        d->sv_args[n++] = "--seccomp";
    if (o->poll_us_name) {
        d->sv_args[n++] = "--poll-us";
        d->sv_args[n++] = o->poll_us_name;
    }
    if (o->config_dir) {
        d->sv_args[n++] = "--config-dir";
        d->sv_args[n++] = o->config_dir;
    }
    if (o->fast_path_name) {
        d->sv_args[n++] = "--fast-path";
        d->sv_args[n++] = o->fast_path_name;
    }
    if (o->grant_pages_name) {
        d->sv_args[n++] = "--grant-pages";
        d->sv_args[n++] = o->grant_pages_name;
    }
    d->sv_config.exe = d->exe;
    d->sv_config.extra_args = d->sv_args;
    d->sv_probe = hv_xen_state_probe_open();
    if (!d->sv_probe)
        return -errno;
    d->sv_config.guest_state = hv_xen_guest_state;
    d->sv_config.guest_state_ctx = d->sv_probe;
    d->sv_config.hold = hv_xen_hold_guest;
    d->sv_config.hold_ctx = d->sv_probe;
    d->store = store_xen_open();
    if (!d->store)
        return -errno;
    return supervisor_create(&d->supervisor, d->store, d->loop,
                             &d->sv_config);
}

static int daemon_setup(struct daemon *d, const char *module_dir)
{
    const struct cli_options *o = d->opts;
    int ret;

    d->loop = loop_create();
    if (!d->loop) {
        log_err("cannot create the event loop: %s", strerror(errno));
        return -errno;
    }
    /* The supervisor only waits for xenstore and its children. */
    if (!o->supervise)
        loop_set_poll(d->loop, o->poll_us * 1000ULL);
    ret = o->supervise ? daemon_setup_supervisor(d, module_dir)
                       : daemon_setup_guest(d, module_dir);
    if (ret)
        return ret;
    ret = daemon_watch_signals(d);
    if (ret) {
        log_err("cannot watch signals: %s", strerror(-ret));
        return ret;
    }
    return o->pidfile ? daemon_write_pidfile(d) : 0;
}

/* The guest's memory is unmapped (hv_close) before the backend tells
 * libxl the devices are closed: only then can Xen destroy the domain. */
static void daemon_teardown(struct daemon *d)
{
    supervisor_destroy(d->supervisor);
    hv_xen_state_probe_close(d->sv_probe);
    if (d->vm)
        vm_log_counters(d->vm);
    vm_destroy(d->vm);
    hv_close(d->hv);
    daemon_stop_watching_guest(d);
    if (d->hand_over)
        backend_hand_over(d->backend);
    else
        backend_close(d->backend);
    for (unsigned i = 0; i < d->nr_file_specs; i++)
        devspec_free(&d->file_specs[i]);
    store_close(d->store);
    loop_destroy(d->loop);
    if (d->signal_fd >= 0)
        close(d->signal_fd);
    if (d->pidfile_written)
        unlink(d->opts->pidfile);
}

static int daemon_run(const struct cli_options *o, const char *module_dir)
{
    struct daemon d = {.opts = o, .guest_watch_fd = -1, .signal_fd = -1,
                       .ready_fd = -1, .null_fd = -1};
    int ret = 0;

    if (!o->foreground)
        ret = daemon_fork(&d);
    if (ret == 0)
        ret = daemon_setup(&d, module_dir);
    if (ret == 0)
        daemon_log_to_syslog(&d);
    /* The supervisor keeps root to start instances; they drop it. */
    if (ret == 0 && !o->supervise)
        ret = daemon_confine(o);
    if (ret == 0)
        ret = daemon_ready(&d);
    if (ret == 0) {
        if (!o->supervise)
            log_info("serving %u device(s) to domain %u", d.nr_specs,
                     o->domid);
        ret = loop_run(d.loop);
        if (ret)
            log_err("event loop failed: %s", strerror(-ret));
    }
    daemon_teardown(&d);
    if (ret)
        return EXIT_FAILURE;
    return d.hand_over ? XVDM_EXIT_HANDED_OVER : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    struct cli_options o;
    const char *module_dir;
    char err[512];
    int status;

    /* At once: the supervisor may send SIGUSR2 (hand over) as soon as it
     * started us, and its default action would kill us mid-setup. */
    if (block_handled_signals()) {
        fprintf(stderr, "xvdm: cannot block signals: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    if (cli_parse(argc, argv, &o, err, sizeof(err))) {
        fprintf(stderr, "xvdm: %s\nTry 'xvdm --help'.\n", err);
        cli_free(&o);
        return 2;
    }
    module_dir = o.module_dir ? o.module_dir : module_default_dir();
    host_path_set_root(o.chroot_dir);
    if (o.help) {
        cli_usage(stdout);
        status = EXIT_SUCCESS;
    } else if (o.version) {
        printf("xvdm %s\n", PACKAGE_VERSION);
        status = EXIT_SUCCESS;
    } else if (o.list_devices) {
        status = module_list(module_dir, stdout) > 0 ? EXIT_SUCCESS
                                                     : EXIT_FAILURE;
        if (status)
            fprintf(stderr, "xvdm: no device modules in %s\n", module_dir);
    } else if (o.print_dts) {
        uint32_t ids[CLI_DEVICES_MAX];

        status = check_devices(&o, module_dir, ids) ? 2 : EXIT_SUCCESS;
        if (status == EXIT_SUCCESS)
            dts_print(stdout, o.specs, ids, o.nr_specs);
    } else {
        log_init(o.log_level, o.to_syslog, o.supervise ? -1 : (int64_t)o.domid);
        status = check_devices(&o, module_dir, NULL)
                     ? 2
                     : daemon_run(&o, module_dir);
    }
    cli_free(&o);
    return status;
}
