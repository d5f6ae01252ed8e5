/* SPDX-License-Identifier: MIT */
/* Where a dom0 path given at setup is reached once serving, under
 * --chroot (see xvdm_host_path() in <xvdm/device.h>). */
#ifndef XVDM_HOST_PATH_H
#define XVDM_HOST_PATH_H

/* The directory the instance will chroot into (NULL: none). Called once,
 * before any device is created; `dir` must outlive the instance. */
void host_path_set_root(const char *dir);
/* The chroot has been entered: paths are now resolved inside it. */
void host_path_root_entered(void);

#endif
