/* SPDX-License-Identifier: MIT */
/*
 * Least privilege for a running instance: once everything is open (Xen
 * handles restricted to the guest, guest memory mapped, device backings,
 * xenstore and syslog connected), a guest that took over the process
 * should find no filesystem (chroot into an empty directory) and no root
 * (a plain user). What is already open keeps working.
 */
#ifndef XVDM_PRIVILEGE_H
#define XVDM_PRIVILEGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct privilege {
    const char *chroot_dir; /* NULL: keep the filesystem */
    bool drop_user;
    uid_t uid;
    gid_t gid;
    char user[64];
};

/* Check --user and --chroot before anything starts: the user exists, the
 * directory is one. 0, or -EINVAL with err naming the bad value. */
int privilege_check(struct privilege *p, const char *user,
                    const char *chroot_dir, char *err, size_t errlen);

/* Load now what glibc would load from the filesystem later, once it is
 * gone (or forbidden by the syscall filter). 0, or -ENOENT after one line
 * saying what is missing. */
int privilege_preload(void);

/* chroot, then drop supplementary groups, gid and uid, and make sure root
 * cannot be regained. 0, or a negative errno after one line saying what
 * failed. */
int privilege_drop(const struct privilege *p);

#endif
