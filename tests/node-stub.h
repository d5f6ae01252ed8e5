/* SPDX-License-Identifier: MIT */
/*
 * Test side: what the stand-ins for dom0's device nodes (i2c-stub.c,
 * gpio-stub.c) share. A node is a temporary file the module opens as it
 * would the device; the test program defines ioctl() (node-stub.c) and
 * exports it (-Wl,--export-dynamic-symbol=ioctl), so the module,
 * dlopen()ed, calls it: the stand-ins' functions (node_stub_answer())
 * answer the calls on their files and every other fd goes on to libc.
 */
#ifndef XVDM_TEST_NODE_STUB_H
#define XVDM_TEST_NODE_STUB_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* Check's assertions are not used here: the fuzz targets link the
 * stand-ins too. A misuse aborts, which fails a Check test and stops a
 * fuzzer. */
#define node_stub_require(cond)                                                \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s: %s\n", __FILE__, #cond);                      \
            abort();                                                           \
        }                                                                      \
    } while (0)

struct node_stub {
    char path[64];
    dev_t dev;
    ino_t ino;
};

/* Make the node: /tmp/<prefix>XXXXXX. */
void node_stub_make(struct node_stub *n, const char *prefix);
/* Is fd the node (a file with its device and inode)? */
bool node_stub_is(const struct node_stub *n, int fd);

/* What a stand-in answers: NODE_STUB_PASS for an fd not its own, else
 * the call's value (I2C_RDWR's is its number of messages) or a negative
 * errno. Each stand-in adds its own once (a program may link several,
 * as the fuzz targets do); ioctl() asks each in turn. */
#define NODE_STUB_PASS INT_MIN
typedef int node_stub_ioctl_fn(int fd, unsigned long request, void *arg);
void node_stub_answer(node_stub_ioctl_fn *fn);

#endif
