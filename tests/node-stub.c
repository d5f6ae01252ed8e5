/* SPDX-License-Identifier: MIT */
/* Test side: device nodes' stand-ins, their common part (node-stub.h). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node-stub.h"

void node_stub_make(struct node_stub *n, const char *prefix)
{
    struct stat st;
    int fd;

    snprintf(n->path, sizeof(n->path), "/tmp/%sXXXXXX", prefix);
    fd = mkstemp(n->path);
    node_stub_require(fd >= 0);
    node_stub_require(fstat(fd, &st) == 0);
    close(fd);
    n->dev = st.st_dev;
    n->ino = st.st_ino;
}

bool node_stub_is(const struct node_stub *n, int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && st.st_dev == n->dev && st.st_ino == n->ino;
}

#define NODE_STUB_KINDS 4
static node_stub_ioctl_fn *answers[NODE_STUB_KINDS];

/* Called before the module runs (from a stand-in's start), so the loop
 * thread only ever reads the table. */
void node_stub_answer(node_stub_ioctl_fn *fn)
{
    unsigned i = 0;

    while (i < NODE_STUB_KINDS && answers[i] && answers[i] != fn)
        i++;
    node_stub_require(i < NODE_STUB_KINDS);
    answers[i] = fn;
}

static int node_stub_ioctl(int fd, unsigned long request, void *arg)
{
    int ret = NODE_STUB_PASS;

    for (unsigned i = 0; i < NODE_STUB_KINDS && answers[i]; i++)
        if ((ret = answers[i](fd, request, arg)) != NODE_STUB_PASS)
            break;
    return ret;
}

int ioctl(int fd, unsigned long request, ...)
{
    static int (*next)(int, unsigned long, ...);
    va_list ap;
    void *arg;
    int ret;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    ret = node_stub_ioctl(fd, request, arg);
    if (ret == NODE_STUB_PASS) {
        if (!next)
            next = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
        return next(fd, request, arg);
    }
    if (ret < 0) {
        errno = -ret;
        return -1;
    }
    return ret;
}
