/* SPDX-License-Identifier: MIT */
/* The seccomp allowlist of a running instance (see syscall-filter.h). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "syscall-filter.h"

#ifdef HAVE_LIBSECCOMP
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>

/* What serving needs once everything is open. Names missing on an
 * architecture (e.g. epoll_wait on arm64) are skipped. */
static const char *const allowed[] = {
    /* the loop, eventfds, timerfds, signalfd */
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll", "ppoll",
    "read", "write", "readv", "writev", "timerfd_settime", "timerfd_gettime",
    "eventfd2", "close", "fcntl", "dup2", "dup3",
    /* Xen's device-model, event-channel and privcmd interfaces */
    "ioctl",
    /* device backings: files, io_uring, console sockets and ptys */
    "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "fdatasync", "fsync", "fallocate", "fstat", "newfstatat", "lseek",
    "ftruncate", /* a console file= at its max-size */
    "io_uring_enter", "accept4", "shutdown", "recvfrom", "sendto",
    "sendmsg", "recvmsg", "getrandom",
    /* memory, threads, time, signals */
    "mmap", "munmap", "mprotect", "madvise", "brk", "mremap", "futex",
    "nanosleep", "clock_nanosleep", "clock_gettime", "gettimeofday",
    "sched_yield", "getpid", "gettid", "tgkill", "rt_sigprocmask",
    "rt_sigreturn", "rt_sigaction", "sigaltstack", "restart_syscall",
    "set_robust_list",
    "rseq", "exit", "exit_group",
    /* reaping the guest's watcher process at the end */
    "wait4", "waitid",
    /* glibc's syslog() reconnecting to /dev/log (which fails in a chroot),
     * blk,nbd= reconnecting to its server (libnbd connects without
     * blocking and reads SO_ERROR once the socket is writable); socket()
     * is allowed for AF_UNIX only, below */
    "connect", "getsockopt",
    /* gpu,vnc=: libvncserver's threads wait in select(), take a viewer
     * with accept(), look at its socket and start two threads for it
     * (clone, below) that a pipe wakes */
    "select", "pselect6", "accept", "getpeername", "setsockopt", "pipe2",
    "pipe",
};

bool syscall_filter_available(void)
{
    return true;
}

/* New threads (gpu,vnc='s, one pair a viewer), never new processes:
 * clone() only with CLONE_THREAD, and none of the namespaces the kernel
 * would still give a thread (new user and pid ones it refuses itself).
 * clone3() passes its flags in memory, where a filter cannot look: it
 * fails with ENOSYS, on which glibc's pthread_create() falls back to
 * clone(). */
#define FILTER_CLONE_CHECKED                                                   \
    (CLONE_THREAD | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | \
     CLONE_NEWCGROUP)

static int filter_threads(scmp_filter_ctx ctx)
{
    const struct scmp_arg_cmp thread = {.arg = 0,
                                        .op = SCMP_CMP_MASKED_EQ,
                                        .datum_a = FILTER_CLONE_CHECKED,
                                        .datum_b = CLONE_THREAD};
    int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                               thread);

    if (ret == 0)
        ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
                               0);
    return ret;
}

static int filter_build(scmp_filter_ctx ctx)
{
    /* (spelled out: clang warns about SCMP_A0's missing fields) */
    const struct scmp_arg_cmp unix_only = {
        .arg = 0, .op = SCMP_CMP_EQ, .datum_a = AF_UNIX, .datum_b = 0};
    int ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);

    for (size_t i = 0; ret == 0 && i < sizeof(allowed) / sizeof(*allowed);
         i++) {
        int nr = seccomp_syscall_resolve_name(allowed[i]);

        if (nr != __NR_SCMP_ERROR)
            ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    if (ret == 0)
        ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                               unix_only);
    if (ret == 0)
        ret = filter_threads(ctx);
    return ret;
}

int syscall_filter_install(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    int ret;

    if (!ctx) {
        log_err("cannot set up the seccomp filter");
        return -ENOMEM;
    }
    ret = filter_build(ctx);
    if (ret == 0)
        ret = seccomp_load(ctx);
    seccomp_release(ctx);
    if (ret) {
        log_err("cannot install the seccomp filter: %s", strerror(-ret));
        return ret;
    }
    log_info("system calls limited to what serving needs (seccomp)");
    return 0;
}

#else

bool syscall_filter_available(void)
{
    return false;
}

int syscall_filter_install(void)
{
    log_err("--seccomp: this xvdm was built without libseccomp");
    return -ENOSYS;
}

#endif
