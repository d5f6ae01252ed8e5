/* SPDX-License-Identifier: MIT */
/* The dom0 supervisor: one xvdm instance per guest (see supervisor.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "store.h"
#include "supervisor.h"
#include "xl-devices.h"

#define SV_INSTANCES_MAX 256
#define SV_ARGS_MAX 32
#define SV_STOP_TIMEOUT_MS 10000
#define SV_HOLD_MAX_MS 10000
#define XENBUS_STATE_INIT_WAIT 2
#define XENBUS_STATE_CLOSING 5

/* The two kinds of backend directory libxl writes (xl-devices.h). */
static const char *const sv_kinds[] = {"virtio_disk", "virtio"};

struct instance {
    uint32_t domid;
    pid_t pid;     /* 0 when not running */
    bool stopping; /* SIGTERM sent */
    bool handing_over; /* SIGUSR2 sent: to be started again at once */
    unsigned failures;
    uint64_t restart_at_ms; /* when waiting after a failure, else 0 */
    unsigned devices;       /* the guest's open devices when started */
    uint64_t held_since_ms; /* the guest held paused since, else 0 */
};

struct supervisor {
    struct store *st;
    struct loop *loop;
    const struct supervisor_config *cfg;
    uint32_t self;
    bool store_watched, watching;
    int timer_fd;
    int sigchld_fd;
    unsigned nr;
    struct instance inst[SV_INSTANCES_MAX];
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sv_reconcile(struct supervisor *sv);

/* ---- which guests need a backend ------------------------------------------ */

/* How many devices of guest D the toolstack is not closing, and how many
 * of those are not served yet (a state before InitWait). */
struct sv_devices {
    unsigned open, unserved;
};

/* Every backend state node of guest D's devices of one kind, with its
 * value, to fn. */
static void sv_each_state(struct supervisor *sv, const char *kind,
                          uint32_t domid,
                          void (*fn)(struct supervisor *sv, const char *path,
                                     int state, void *arg),
                          void *arg)
{
    char dir[256], path[512], **devids, *state;
    unsigned n = 0;

    snprintf(dir, sizeof(dir), "/local/domain/%u/backend/%s/%u", sv->self,
             kind, domid);
    devids = store_list(sv->st, dir, &n);
    for (unsigned i = 0; devids && i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s/state", dir, devids[i]);
        state = store_read(sv->st, path);
        fn(sv, path, state ? atoi(state) : 0, arg);
        free(state);
    }
    free(devids);
}

static void sv_count_one(struct supervisor *sv, const char *path, int st,
                         void *arg)
{
    struct sv_devices *c = arg;

    if (st >= XENBUS_STATE_CLOSING)
        return;
    c->open++;
    if (st < XENBUS_STATE_INIT_WAIT)
        c->unserved++;
}

static struct sv_devices sv_count(struct supervisor *sv, uint32_t domid)
{
    struct sv_devices c = {0, 0};

    for (size_t k = 0; k < sizeof(sv_kinds) / sizeof(sv_kinds[0]); k++)
        sv_each_state(sv, sv_kinds[k], domid, sv_count_one, &c);
    return c;
}

/* A device an instance handed over is left in InitWait, which no longer
 * says it is served: the next instance has yet to map its window. Back
 * to Initialising, so the guest stays held until that instance writes
 * InitWait itself. */
static void sv_unserve_one(struct supervisor *sv, const char *path, int st,
                           void *arg)
{
    int ret = st == XENBUS_STATE_INIT_WAIT ? store_write(sv->st, path, "1")
                                           : 0;

    if (ret)
        log_warn("cannot write %s: %s", path, strerror(-ret));
}

static void sv_unserve(struct supervisor *sv, uint32_t domid)
{
    for (size_t k = 0; k < sizeof(sv_kinds) / sizeof(sv_kinds[0]); k++)
        sv_each_state(sv, sv_kinds[k], domid, sv_unserve_one, NULL);
}

static bool sv_guest_needs(struct supervisor *sv, uint32_t domid)
{
    /* A guest that shut down keeps its nodes until the toolstack destroys
     * it, which it cannot while an instance maps its memory. */
    if (!store_domain_exists(sv->st, domid) ||
        sv->cfg->guest_state(sv->cfg->guest_state_ctx, domid) !=
            HV_GUEST_RUNNING)
        return false;
    return sv_count(sv, domid).open > 0;
}

/* ---- holding a guest paused while its devices are not served ------------- */

static uint64_t sv_hold_max_ms(const struct supervisor *sv)
{
    return sv->cfg->hold_max_ms ? sv->cfg->hold_max_ms : SV_HOLD_MAX_MS;
}

static void sv_hold(struct supervisor *sv, struct instance *in)
{
    int ret;

    if (!sv->cfg->hold || in->held_since_ms)
        return;
    ret = sv->cfg->hold(sv->cfg->hold_ctx, in->domid, true);
    if (ret) {
        log_warn("domain %u: cannot pause it while xvdm starts: %s",
                 in->domid, strerror(-ret));
        return;
    }
    in->held_since_ms = now_ms();
    log_info("domain %u: paused until xvdm serves its devices", in->domid);
}

static void sv_release(struct supervisor *sv, struct instance *in,
                       const char *why)
{
    int ret;

    if (!in->held_since_ms)
        return;
    in->held_since_ms = 0;
    ret = sv->cfg->hold(sv->cfg->hold_ctx, in->domid, false);
    if (ret == 0)
        log_info("domain %u: unpaused: %s", in->domid, why);
    else if (ret != -ESRCH)
        log_err("domain %u: cannot unpause it: %s", in->domid,
                strerror(-ret));
}

/* A held guest goes once its instance serves every open device, or when
 * it has waited long enough: an instance that cannot start must not keep
 * its guest paused for good. */
static void sv_check_hold(struct supervisor *sv, struct instance *in,
                          uint64_t now)
{
    if (!in->held_since_ms)
        return;
    if (in->pid && !in->handing_over && sv_count(sv, in->domid).unserved == 0)
        sv_release(sv, in, "xvdm serves all its devices");
    else if (now >= in->held_since_ms + sv_hold_max_ms(sv))
        sv_release(sv, in, "xvdm did not serve all its devices in time");
}

/* libxl writes a guest's virtio = [...] devices after its disks'
 * handshake, which their instance answered without knowing them: hold
 * the guest, and have the instance hand over to one that serves them all
 * (SIGUSR2: it exits XVDM_EXIT_HANDED_OVER, leaving its devices open). */
static void sv_check_new_devices(struct supervisor *sv, struct instance *in)
{
    unsigned open;

    if (!in->pid || in->stopping || in->handing_over)
        return;
    open = sv_count(sv, in->domid).open;
    if (open <= in->devices)
        return;
    log_info("domain %u: %u virtio device(s) declared after its xvdm "
             "started: starting it again with all of them",
             in->domid, open - in->devices);
    sv_hold(sv, in);
    if (kill(in->pid, SIGUSR2) == 0)
        in->handing_over = true;
    else
        log_err("domain %u: cannot signal xvdm (pid %d): %s", in->domid,
                (int)in->pid, strerror(errno));
}

/* ---- instances ---------------------------------------------------------------- */

static struct instance *sv_find(struct supervisor *sv, uint32_t domid)
{
    for (unsigned i = 0; i < sv->nr; i++)
        if (sv->inst[i].domid == domid)
            return &sv->inst[i];
    return NULL;
}

static struct instance *sv_add(struct supervisor *sv, uint32_t domid)
{
    struct instance *in;

    if (sv->nr == SV_INSTANCES_MAX) {
        log_err("domain %u: more than %d guests to serve", domid,
                SV_INSTANCES_MAX);
        return NULL;
    }
    in = &sv->inst[sv->nr++];
    *in = (struct instance){.domid = domid};
    return in;
}

static void sv_forget(struct supervisor *sv, struct instance *in)
{
    *in = sv->inst[--sv->nr];
}

/* The instance's command line: exe --domid D --xenstore --foreground
 * extra_args... */
static void sv_argv(const struct supervisor *sv, const char *domid,
                    const char **argv)
{
    unsigned n = 0;

    argv[n++] = sv->cfg->exe;
    argv[n++] = "--domid";
    argv[n++] = domid;
    argv[n++] = "--xenstore";
    argv[n++] = "--foreground";
    for (const char *const *a = sv->cfg->extra_args;
         a && *a && n < SV_ARGS_MAX - 1; a++)
        argv[n++] = *a;
    argv[n] = NULL;
}

/* Async-signal-safe: also called between fork and exec. */
static int sv_default_action(int signo)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};

    return sigaction(signo, &dfl, NULL) ? -errno : 0;
}

static int sv_spawn(struct supervisor *sv, struct instance *in)
{
    const char *argv[SV_ARGS_MAX];
    char domid[16];
    pid_t pid;

    snprintf(domid, sizeof(domid), "%u", in->domid);
    sv_argv(sv, domid, argv);
    in->devices = sv_count(sv, in->domid).open;
    sv_hold(sv, in);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        sigset_t none;

        /* Signals are blocked here (signalfds); not in the child. And
         * every one at its default: a signal ignored here (nohup), which
         * exec keeps ignored, would never reach the instance when passed
         * on. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* Fails, and need not, for SIGKILL, SIGSTOP and the C library's
         * own signals (glibc's 32 and 33). */
        for (int s = 1; s < NSIG; s++)
            sv_default_action(s);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    log_info("domain %u: started xvdm, pid %d", in->domid, (int)pid);
    in->pid = pid;
    in->restart_at_ms = 0;
    in->stopping = false;
    return 0;
}

/* Arm the timer for the earliest pending restart. */
static void sv_arm_timer(struct supervisor *sv)
{
    struct itimerspec its = {{0, 0}, {0, 0}};
    uint64_t next = 0, now = now_ms();

    for (unsigned i = 0; i < sv->nr; i++) {
        uint64_t at = sv->inst[i].restart_at_ms;
        uint64_t held = sv->inst[i].held_since_ms;

        if (held && (!at || held + sv_hold_max_ms(sv) < at))
            at = held + sv_hold_max_ms(sv);
        if (at && (!next || at < next))
            next = at;
    }
    if (next) {
        uint64_t delay = next > now ? next - now : 1;

        its.it_value.tv_sec = (time_t)(delay / 1000);
        its.it_value.tv_nsec = (long)(delay % 1000) * 1000000;
    }
    timerfd_settime(sv->timer_fd, 0, &its, NULL);
}

static unsigned sv_backoff_ms(const struct supervisor *sv, unsigned failures)
{
    unsigned min = sv->cfg->backoff_min_ms ? sv->cfg->backoff_min_ms : 1000;
    unsigned max = sv->cfg->backoff_max_ms ? sv->cfg->backoff_max_ms : 30000;
    uint64_t ms = (uint64_t)min << (failures > 16 ? 16 : failures - 1);

    return ms > max ? max : (unsigned)ms;
}

/* An instance exited with `status`. One that SIGUSR2 killed before it
 * could take it (between exec and blocking it: nothing done yet) handed
 * over as much as one that exited XVDM_EXIT_HANDED_OVER. */
static void sv_reaped(struct supervisor *sv, struct instance *in, int status)
{
    bool handed_over =
        in->handing_over &&
        ((WIFEXITED(status) && WEXITSTATUS(status) == XVDM_EXIT_HANDED_OVER) ||
         (WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR2));

    in->pid = 0;
    in->handing_over = false;
    if (handed_over) {
        sv_unserve(sv, in->domid);
        in->restart_at_ms = 0;
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        log_info("domain %u: xvdm exited", in->domid);
        in->failures = 0;
        return;
    }
    in->failures++;
    in->restart_at_ms = now_ms() + sv_backoff_ms(sv, in->failures);
    log_warn("domain %u: xvdm failed (%s %d); restarting in %u ms if the "
             "guest still needs it",
             in->domid, WIFSIGNALED(status) ? "signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
             sv_backoff_ms(sv, in->failures));
}

/* SIGCHLD: reap every instance that exited. */
static void sv_on_sigchld(void *arg, uint32_t revents)
{
    struct supervisor *sv = arg;
    struct signalfd_siginfo si;
    int status;

    while (read(sv->sigchld_fd, &si, sizeof(si)) == sizeof(si))
        ;
    for (unsigned i = 0; i < sv->nr; i++) {
        struct instance *in = &sv->inst[i];

        if (in->pid && waitpid(in->pid, &status, WNOHANG) == in->pid)
            sv_reaped(sv, in, status);
    }
    sv_reconcile(sv);
}

/* ---- keeping instances and guests in step ----------------------------------- */

/* Start an instance for `domid` if it needs one and none runs or waits. */
static void sv_serve(struct supervisor *sv, uint32_t domid, uint64_t now)
{
    struct instance *in = sv_find(sv, domid);

    if (in && (in->pid || in->restart_at_ms > now))
        return;
    if (!in && !(in = sv_add(sv, domid)))
        return;
    if (sv_spawn(sv, in))
        log_err("domain %u: cannot start xvdm: %s", domid, strerror(errno));
}

static void sv_scan_kind(struct supervisor *sv, const char *kind, uint64_t now)
{
    char dir[256], **domids;
    unsigned n = 0;

    snprintf(dir, sizeof(dir), "/local/domain/%u/backend/%s", sv->self, kind);
    domids = store_list(sv->st, dir, &n);
    for (unsigned i = 0; domids && i < n; i++) {
        uint32_t domid = (uint32_t)strtoul(domids[i], NULL, 10);

        if (sv_guest_needs(sv, domid))
            sv_serve(sv, domid, now);
    }
    free(domids);
}

/* Instances of guests that are gone are stopped; idle ones forgotten. */
static void sv_retire(struct supervisor *sv)
{
    for (unsigned i = 0; i < sv->nr; i++) {
        struct instance *in = &sv->inst[i];
        bool exists = store_domain_exists(sv->st, in->domid);

        if (in->pid && !exists && !in->stopping) {
            log_info("domain %u is gone: stopping its xvdm", in->domid);
            kill(in->pid, SIGTERM);
            in->stopping = true;
        } else if (!in->pid && (!exists || !sv_guest_needs(sv, in->domid))) {
            sv_forget(sv, in);
            i--; /* the last instance moved here */
        }
    }
}

static void sv_reconcile(struct supervisor *sv)
{
    uint64_t now = now_ms();

    for (size_t k = 0; k < sizeof(sv_kinds) / sizeof(sv_kinds[0]); k++)
        sv_scan_kind(sv, sv_kinds[k], now);
    for (unsigned i = 0; i < sv->nr; i++) {
        sv_check_new_devices(sv, &sv->inst[i]);
        sv_check_hold(sv, &sv->inst[i], now);
    }
    sv_retire(sv);
    sv_arm_timer(sv);
}

static void sv_on_store(void *arg, uint32_t revents)
{
    struct supervisor *sv = arg;
    char **block;

    while (store_next_event(sv->st, &block) == 1) {
        log_debug("xenstore: %s changed", block[STORE_EVENT_PATH]);
        free(block);
    }
    sv_reconcile(sv);
}

static void sv_on_timer(void *arg, uint32_t revents)
{
    struct supervisor *sv = arg;
    uint64_t expirations;

    if (read(sv->timer_fd, &expirations, sizeof(expirations)) < 0)
        expirations = 0;
    sv_reconcile(sv);
}

/* ---- life cycle ------------------------------------------------------------------ */

/* SIGCHLD arrives on an fd in the loop; blocked first, in the thread
 * that creates the others, so that no thread takes it. Its disposition
 * is reset: one inherited as ignored (the rig's shell did that) makes the
 * kernel reap children itself and send no SIGCHLD at all. */
static int sv_watch_children(struct supervisor *sv)
{
    sigset_t set;
    int ret = sv_default_action(SIGCHLD);

    if (ret)
        return ret;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL))
        return -EINVAL;
    sv->sigchld_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sv->sigchld_fd < 0)
        return -errno;
    return loop_watch(sv->loop, sv->sigchld_fd, EPOLLIN, sv_on_sigchld, sv);
}

static int sv_watch(struct supervisor *sv)
{
    char dir[256];
    int ret;

    ret = loop_watch(sv->loop, store_fd(sv->st), EPOLLIN, sv_on_store, sv);
    sv->store_watched = ret == 0;
    if (ret == 0)
        ret = loop_watch(sv->loop, sv->timer_fd, EPOLLIN, sv_on_timer, sv);
    if (ret == 0)
        ret = store_watch(sv->st, "@releaseDomain", "release");
    sv->watching = ret == 0;
    for (size_t k = 0; ret == 0 && k < sizeof(sv_kinds) / sizeof(sv_kinds[0]);
         k++) {
        snprintf(dir, sizeof(dir), "/local/domain/%u/backend/%s", sv->self,
                 sv_kinds[k]);
        ret = store_watch(sv->st, dir, "devices");
    }
    return ret;
}

int supervisor_create(struct supervisor **out, struct store *st,
                      struct loop *loop, const struct supervisor_config *cfg)
{
    struct supervisor *sv = calloc(1, sizeof(*sv));
    int ret;

    if (!sv)
        return -ENOMEM;
    sv->st = st;
    sv->loop = loop;
    sv->cfg = cfg;
    sv->self = xl_backend_domid(st);
    sv->sigchld_fd = -1;
    sv->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    ret = sv->timer_fd < 0 ? -errno : sv_watch_children(sv);
    if (ret == 0)
        ret = sv_watch(sv);
    if (ret) {
        log_err("cannot watch xenstore for guests' devices: %s",
                strerror(-ret));
        supervisor_destroy(sv);
        return ret;
    }
    log_info("supervising virtio backends of domain %u", sv->self);
    *out = sv;
    return 0;
}

/* Stop an instance and reap it, with SIGKILL when it takes too long. */
static void sv_stop_one(struct supervisor *sv, struct instance *in)
{
    int status = 0;

    kill(in->pid, SIGTERM);
    for (unsigned ms = 0; waitpid(in->pid, &status, WNOHANG) == 0; ms += 10) {
        if (ms == SV_STOP_TIMEOUT_MS) {
            log_warn("domain %u: xvdm (pid %d) did not stop; killing it",
                     in->domid, (int)in->pid);
            kill(in->pid, SIGKILL);
        }
        usleep(10000);
    }
    sv_reaped(sv, in, status);
}

void supervisor_signal(struct supervisor *sv, int signo)
{
    for (unsigned i = 0; i < sv->nr; i++) {
        struct instance *in = &sv->inst[i];

        if (in->pid && !in->stopping && kill(in->pid, signo))
            log_warn("domain %u: cannot signal xvdm (pid %d): %s", in->domid,
                     (int)in->pid, strerror(errno));
    }
}

void supervisor_destroy(struct supervisor *sv)
{
    char dir[256];

    if (!sv)
        return;
    for (unsigned i = 0; i < sv->nr; i++)
        if (sv->inst[i].pid)
            sv_stop_one(sv, &sv->inst[i]);
    if (sv->watching) {
        store_unwatch(sv->st, "@releaseDomain", "release");
        for (size_t k = 0; k < sizeof(sv_kinds) / sizeof(sv_kinds[0]); k++) {
            snprintf(dir, sizeof(dir), "/local/domain/%u/backend/%s",
                     sv->self, sv_kinds[k]);
            store_unwatch(sv->st, dir, "devices");
        }
    }
    if (sv->store_watched) {
        loop_unwatch(sv->loop, store_fd(sv->st));
        loop_unwatch(sv->loop, sv->timer_fd);
    }
    if (sv->sigchld_fd >= 0) {
        loop_unwatch(sv->loop, sv->sigchld_fd);
        close(sv->sigchld_fd);
    }
    if (sv->timer_fd >= 0)
        close(sv->timer_fd);
    free(sv);
}
