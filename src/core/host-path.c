/* SPDX-License-Identifier: MIT */
/* Paths in dom0 that a device reaches after --chroot DIR: only those
 * inside DIR (by name: no ".." component), by the rest of their name. A
 * module checks its paths at create() (NULL: refused), and asks again
 * each time it uses one, since the chroot is entered between the two. */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "host-path.h"
#include "xvdm/device.h"

static const char *root;
static size_t root_len;
static bool root_entered;

void host_path_set_root(const char *dir)
{
    root = dir;
    root_len = dir ? strlen(dir) : 0;
    /* "/srv/x/" and "/srv/x" are the same directory; "/" stays "/". */
    while (root_len > 1 && dir[root_len - 1] == '/')
        root_len--;
}

void host_path_root_entered(void)
{
    root_entered = true;
}

/* A ".." component: the path's name may start with DIR while the path
 * leaves it, and inside the chroot the same name leads elsewhere. */
static bool host_path_climbs(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")); p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return true;
    return false;
}

const char *xvdm_host_path(const char *path)
{
    const char *rest;

    if (!root)
        return path;
    if (host_path_climbs(path))
        return NULL;
    if (root_len == 1 && root[0] == '/')
        return path[0] == '/' ? path : NULL;
    if (strncmp(path, root, root_len) != 0 || path[root_len] != '/')
        return NULL;
    rest = path + root_len;
    return root_entered ? rest : path;
}
