/* SPDX-License-Identifier: MIT */
/* Least privilege for a running instance (see privilege.h). */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host-path.h"
#include "log.h"
#include "privilege.h"

int privilege_check(struct privilege *p, const char *user,
                    const char *chroot_dir, char *err, size_t errlen)
{
    struct passwd *pw;
    struct stat st;

    p->chroot_dir = chroot_dir;
    p->drop_user = user != NULL;
    if (chroot_dir && (stat(chroot_dir, &st) || !S_ISDIR(st.st_mode)))
        return errbuf_printf(err, errlen,
                             "--chroot '%s' is not a directory", chroot_dir);
    if (!user)
        return 0;
    pw = getpwnam(user);
    if (!pw)
        return errbuf_printf(err, errlen, "--user '%s': no such user", user);
    if (pw->pw_uid == 0)
        return errbuf_printf(err, errlen, "--user '%s' is root", user);
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    snprintf(p->user, sizeof(p->user), "%s", user);
    return 0;
}

static int privilege_chroot(const char *dir)
{
    if (chroot(dir) || chdir("/")) {
        log_err("cannot chroot into '%s': %s", dir, strerror(errno));
        return -errno;
    }
    host_path_root_entered();
    return 0;
}

static int privilege_set_user(const struct privilege *p)
{
    if (setgroups(0, NULL) || setgid(p->gid) || setuid(p->uid)) {
        log_err("cannot become user '%s': %s", p->user, strerror(errno));
        return -errno;
    }
    if (setuid(0) == 0) {
        log_err("user '%s' could become root again", p->user);
        return -EPERM;
    }
    return 0;
}

/* glibc loads libgcc_s the first time a thread is cancelled (libxenstore
 * cancels its reader thread when xvdm closes xenstore at exit); in a
 * chroot or under the syscall filter that load fails and glibc aborts.
 * Loaded now, the later load finds it already there. */
int privilege_preload(void)
{
    if (!dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NODELETE)) {
        log_err("cannot load libgcc_s.so.1 (needed at exit): %s", dlerror());
        return -ENOENT;
    }
    return 0;
}

int privilege_drop(const struct privilege *p)
{
    int ret = p->chroot_dir ? privilege_chroot(p->chroot_dir) : 0;

    if (ret == 0 && p->drop_user)
        ret = privilege_set_user(p);
    if (ret == 0 && (p->chroot_dir || p->drop_user))
        log_info("running%s%s%s%s", p->chroot_dir ? " in " : "",
                 p->chroot_dir ? p->chroot_dir : "",
                 p->drop_user ? " as " : "", p->drop_user ? p->user : "");
    return ret;
}
