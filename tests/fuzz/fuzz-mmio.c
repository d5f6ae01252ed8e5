/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the fuzzer is the guest of a running xvdm, one vCPU
 * performing a sequence of operations (fuzz-guest.h says which). Each
 * input ends with a device reset, so inputs are independent.
 */
#include "config.h"

#include "fuzz-guest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_guest_start(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};

    fuzz_guest_begin();
    /* Bounded: every op consumes at least one byte. */
    while (in.left)
        fuzz_guest_op(&in);
    fuzz_guest_end();
    return 0;
}
