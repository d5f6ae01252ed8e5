/* SPDX-License-Identifier: MIT */
/*
 * Test side: xvdm on the simulated hypervisor, in-process. Starts the same
 * parts src/daemon/main.c starts on Xen (loop, device specs and layout, vm) on a
 * sim guest, and runs the loop on its own thread, as the daemon does.
 * As xvdm does, it takes SIGHUP from a signalfd in the loop and has every
 * device look at its backing again (so SIGHUP is blocked in the thread that
 * sets up the harness and the threads it starts).
 */
#ifndef XVDM_TEST_HARNESS_H
#define XVDM_TEST_HARNESS_H

#include <pthread.h>
#include <stdbool.h>

#include "devspec.h"
#include "sim.h"

struct store;

#define HARNESS_DEVICES_MAX 16
#define HARNESS_RAM_SIZE (64ULL << 20)

struct harness {
    struct sim *sim;
    struct loop *loop;
    struct vm *vm;
    struct store *store; /* where devices publish (set before setup) */
    unsigned nr_specs;
    struct devspec specs[HARNESS_DEVICES_MAX];
    unsigned nr_vcpus; /* the sim guest's; 1 unless started with more */
    pthread_t thread;
    bool running;
    bool hv_closed;
    int loop_ret;
    bool sighup_watched; /* sighup_fd is in the loop */
    int sighup_fd;       /* SIGHUP reloads the devices, as in xvdm */
};

/* Domain 1, one vCPU, 64 MiB, devices from spec strings ("rng",
 * "rng,irq=33"), modules from $XVDM_MODULE_DIR; with $XVDM_TEST_GRANTS=1
 * every device in grant mode (grants=on, unless the spec says). 0, or a negative errno
 * after one line saying what failed. */
int harness_start(struct harness *h, const char *const *specs, unsigned n);
/* The same with a guest of nr_vcpus vCPUs (1..64), for guests that act
 * from several at once. */
int harness_start_vcpus(struct harness *h, const char *const *specs,
                        unsigned n, unsigned nr_vcpus);
/* The sim the harness makes: domain 1, nr_vcpus vCPUs, HARNESS_RAM_SIZE,
 * the fast path where $XVDM_TEST_FASTPATH=1. */
struct sim_config harness_sim_config(unsigned nr_vcpus);
/* The same as harness_start() on a sim made from cfg. */
int harness_start_sim(struct harness *h, const char *const *specs,
                      unsigned n, const struct sim_config *cfg);
/* The same in two steps, for devices built elsewhere (specs stay the
 * caller's, with their layout): setup makes the sim and loop (unless h,
 * zeroed at first, already has them) and the vm, run starts the loop thread. Both stop h on
 * failure. */
int harness_setup(struct harness *h, const struct devspec *specs, unsigned n);
int harness_run(struct harness *h);
/* Stop the loop thread, destroy the vm and close the hv, as xvdm's
 * teardown does first; the loop and the sim stay for what comes after. */
void harness_halt(struct harness *h);
/* Halt, then free the loop and the sim. A grant the guest could not end
 * because xvdm still mapped it aborts the test. */
void harness_stop(struct harness *h);

#endif
