/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the fuzzer is a guest of a running xvdm with two
 * vCPUs. The input starts with a byte n and n bytes of vCPU 1's script:
 * writes into guest RAM (offset, length, bytes, as operation 2 of
 * fuzz-guest.h), which vCPU 1 replays over and over, on a thread of its
 * own, for as long as vCPU 0 performs the rest of the input's operations
 * (registers, RAM, interrupts, the host end). So descriptors, indices and
 * tables change under the device while it reads them, at whatever moment
 * the threads meet. Each input ends with a device reset.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fuzz-guest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct replay {
    struct fuzz_input script;
    int stop; /* atomic */
};

static void *replay_thread(void *arg)
{
    struct replay *r = arg;

    while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
        struct fuzz_input in = r->script;

        while (in.left)
            fuzz_guest_ram_write(&in);
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_guest_start(2);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t body = size ? size - 1 : 0;
    size_t n = size && data[0] < body ? data[0] : body;
    struct replay r = {.script = {data + (size > 0), n}};
    struct fuzz_input in = {r.script.p + n, body - n};
    pthread_t thread;
    bool replaying;

    fuzz_guest_begin();
    replaying = n && pthread_create(&thread, NULL, replay_thread, &r) == 0;
    /* Bounded: every op consumes at least one byte. */
    while (in.left)
        fuzz_guest_op(&in);
    if (replaying) {
        __atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
        pthread_join(thread, NULL);
    }
    fuzz_guest_end();
    return 0;
}
