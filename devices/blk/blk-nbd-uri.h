/* SPDX-License-Identifier: MIT */
/*
 * An nbd= URI read as libnbd reads it, for what xvdm must know of it
 * before libnbd is given it: its Unix socket (socket=), checked at
 * create and given by its path as xvdm_host_path() gives it at every
 * connection, since under --chroot DIR the first connection is made
 * before the chroot and every reconnect inside it.
 */
#ifndef XVDM_BLK_NBD_URI_H
#define XVDM_BLK_NBD_URI_H

/* 0 when `uri` can be served as given, from its first connection to its
 * reconnects inside --chroot; else a negative errno with *why set:
 * -EINVAL when socket= is given more than once, when its socket is
 * outside the --chroot directory, leaves it by "..", or is reached
 * through a symbolic link (the path checked must be the path connected
 * to), when its path is too long, or for TLS (nbds...) under --chroot;
 * -ENOMEM. */
int blk_nbd_uri_check(const char *uri, const char **why);

/* `uri` as libnbd is to be given it now: its query written again with
 * each parameter as read here (so that any libnbd reads those checked),
 * socket= by the path xvdm_host_path() gives. NULL with errno: ENOENT
 * when the socket is outside the --chroot directory, ENAMETOOLONG,
 * ENOMEM. */
char *blk_nbd_uri_now(const char *uri);

#endif
