/* SPDX-License-Identifier: MIT */
/*
 * The supervisor on the simulated xenstore, spawning real processes: a
 * stand-in for the per-guest xvdm (a shell script that records how it was
 * started, and when it is told to stop) so that the test sees what the
 * supervisor does to its children.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "loop.h"
#include "store-sim.h"
#include "store.h"
#include "supervisor.h"

#define WAIT_MS 5000

/* Writes its pid to pid-DOMID, then (ready for SIGTERM, noted as
 * "term", SIGUSR2, noted as "usr2" and answered with exit status 75 as
 * xvdm does, except in mode "usr2-kills", as before xvdm takes it, and
 * SIGHUP, noted as "hup") appends its arguments to runs-DOMID; exits 3
 * in mode "fail", else waits. */
static const char instance_script[] =
    "#!/bin/sh\n"
    "echo $$ >\"$SV_DIR/pid-$2\"\n"
    "trap 'echo term >>\"$SV_DIR/runs-$2\"; exit 0' TERM\n"
    "[ \"$(cat \"$SV_DIR/mode\" 2>/dev/null)\" = usr2-kills ] ||\n"
    "    trap 'echo usr2 >>\"$SV_DIR/runs-$2\"; exit 75' USR2\n"
    "trap 'echo hup >>\"$SV_DIR/runs-$2\"' HUP\n"
    "echo \"$*\" >>\"$SV_DIR/runs-$2\"\n"
    "[ \"$(cat \"$SV_DIR/mode\" 2>/dev/null)\" = fail ] && exit 3\n"
    "while :; do sleep 0.02; done\n";

static const char *const extra_args[] = {"--log-level", "debug", NULL};
static const struct supervisor_config config = {
    .extra_args = extra_args,
    .backoff_min_ms = 50,
    .backoff_max_ms = 200,
};

static struct store *st;
static struct loop *loop;
static struct supervisor *sv;
static struct supervisor_config cfg;
static pthread_t thread;
static char dir[64], exe[128];
/* What the fake Xen says of guests 0..2, and how many times each is
 * held paused by the supervisor now. */
static enum hv_guest_state guest_states[3];
static int held[3];

static enum hv_guest_state fake_guest_state(void *ctx, uint32_t domid)
{
    return domid < 3 ? guest_states[domid] : HV_GUEST_GONE;
}

static int fake_hold(void *ctx, uint32_t domid, bool hold)
{
    if (domid >= 3)
        return -ESRCH;
    __atomic_add_fetch(&held[domid], hold ? 1 : -1, __ATOMIC_SEQ_CST);
    return 0;
}

static bool wait_held(unsigned domid, int n)
{
    for (unsigned t = 0; t < WAIT_MS; t += 10) {
        if (__atomic_load_n(&held[domid], __ATOMIC_SEQ_CST) == n)
            return true;
        usleep(10000);
    }
    return false;
}

static void *loop_thread(void *arg)
{
    loop_run(arg);
    return NULL;
}

static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/xvdm-sv-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(exe, sizeof(exe), "%s/instance", dir);
    write_file("instance", instance_script, 0755);
    setenv("SV_DIR", dir, 1);
    cfg = config;
    cfg.exe = exe;
    cfg.guest_state = fake_guest_state;
    cfg.hold = fake_hold;
    memset(guest_states, 0, sizeof(guest_states)); /* running */
    memset(held, 0, sizeof(held));
    st = store_sim_create();
    loop = loop_create();
    ck_assert_ptr_nonnull(st);
    ck_assert_ptr_nonnull(loop);
    store_sim_domain_introduce(st, 1);
    store_sim_domain_introduce(st, 2);
}

static void start(void)
{
    ck_assert_int_eq(supervisor_create(&sv, st, loop, &cfg), 0);
    ck_assert_int_eq(pthread_create(&thread, NULL, loop_thread, loop), 0);
}

static void stop(void)
{
    loop_stop(loop);
    pthread_join(thread, NULL);
    supervisor_destroy(sv);
    sv = NULL;
}

static void teardown(void)
{
    char cmd[128];

    if (sv)
        stop();
    loop_destroy(loop);
    store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The nodes libxl 4.17 writes for a guest's virtio disk. */
static void libxl_disk(unsigned domid, const char *state)
{
    char path[256];

    snprintf(path, sizeof(path),
             "/local/domain/0/backend/virtio_disk/%u/51712/state", domid);
    ck_assert_int_eq(store_write(st, path, state), 0);
}

/* The nodes libxl 4.18+ writes for a guest's virtio = [...] device N. */
static void libxl_virtio(unsigned domid, unsigned n, const char *state)
{
    char path[256];

    snprintf(path, sizeof(path), "/local/domain/0/backend/virtio/%u/%u/state",
             domid, n);
    ck_assert_int_eq(store_write(st, path, state), 0);
}

/* Lines of runs-DOMID, the last one into last[]. */
static unsigned runs(unsigned domid, char *last, size_t len)
{
    char path[256], line[256];
    unsigned n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/runs-%u", dir, domid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        n++;
        if (last)
            snprintf(last, len, "%s", strtok(line, "\n"));
    }
    if (f)
        fclose(f);
    return n;
}

/* Line n (from 1) of runs-DOMID, "" past its end. */
static const char *run_line(unsigned domid, unsigned n)
{
    static char line[256];
    char path[256];
    FILE *f;

    line[0] = '\0';
    snprintf(path, sizeof(path), "%s/runs-%u", dir, domid);
    f = fopen(path, "r");
    for (unsigned i = 0; f && i < n; i++)
        if (!fgets(line, sizeof(line), f)) {
            line[0] = '\0';
            break;
        }
    if (f)
        fclose(f);
    line[strcspn(line, "\n")] = '\0';
    return line;
}

static bool wait_runs(unsigned domid, unsigned n, const char *last_is)
{
    char last[256] = "";

    for (unsigned t = 0; t < WAIT_MS; t += 10) {
        if (runs(domid, last, sizeof(last)) >= n &&
            (!last_is || strcmp(last, last_is) == 0))
            return true;
        usleep(10000);
    }
    return false;
}

static pid_t instance_pid(unsigned domid)
{
    char path[256];
    int pid = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/pid-%u", dir, domid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%d", &pid), 1);
    fclose(f);
    return pid;
}

START_TEST(an_instance_starts_when_libxl_writes_a_guests_nodes)
{
    char last[256];

    start();
    ck_assert_uint_eq(runs(1, NULL, 0), 0);
    libxl_disk(1, "1");
    ck_assert(wait_runs(1, 1, NULL));
    runs(1, last, sizeof(last));
    ck_assert_str_eq(last, "--domid 1 --xenstore --foreground --log-level "
                           "debug");
}
END_TEST

START_TEST(guests_already_there_are_served_at_start)
{
    libxl_disk(2, "2");
    start();
    ck_assert(wait_runs(2, 1, NULL));
}
END_TEST

START_TEST(a_failing_instance_is_restarted_with_backoff)
{
    write_file("mode", "fail", 0644);
    start();
    libxl_disk(1, "1");
    ck_assert(wait_runs(1, 4, NULL));
}
END_TEST

/* The supervisor running, with guest 1's instance started. */
static void start_serving_guest_1(void)
{
    start();
    libxl_disk(1, "2");
    ck_assert(wait_runs(1, 1, NULL));
}

/* Guest 1's instance stopped (SIGTERM) and was not started again. */
static void assert_stopped_for_good(void)
{
    ck_assert(wait_runs(1, 2, "term"));
    usleep(300000);
    ck_assert_uint_eq(runs(1, NULL, 0), 2);
}

START_TEST(the_instance_of_a_dead_guest_is_stopped_and_not_restarted)
{
    start_serving_guest_1();
    store_sim_domain_release(st, 1);
    assert_stopped_for_good();
}
END_TEST

/* An instance exits 0 once libxl closed the guest's devices. */
START_TEST(an_instance_that_let_go_of_a_closing_guest_is_not_restarted)
{
    start_serving_guest_1();
    libxl_disk(1, "5");
    kill(instance_pid(1), SIGTERM);
    assert_stopped_for_good();
}
END_TEST

/* The guest shut down (its devices still open: a toolstack that does not
 * close them, or none at all) and its instance let go: not started again,
 * or Xen could not destroy the guest. */
START_TEST(an_instance_that_let_go_of_a_shut_down_guest_is_not_restarted)
{
    start_serving_guest_1();
    guest_states[1] = HV_GUEST_SHUT_DOWN;
    kill(instance_pid(1), SIGTERM);
    assert_stopped_for_good();
}
END_TEST

/* Stopped by hand while its guest still needs it: started again. */
START_TEST(an_instance_stopped_while_needed_is_started_again)
{
    start_serving_guest_1();
    kill(instance_pid(1), SIGTERM);
    ck_assert(wait_runs(1, 3, NULL));
}
END_TEST

/* Started with SIGCHLD ignored (inherited from a shell or init that set
 * it so): exits are still seen. */
START_TEST(exits_are_seen_when_sigchld_was_ignored)
{
    signal(SIGCHLD, SIG_IGN);
    start_serving_guest_1();
    kill(instance_pid(1), SIGTERM);
    ck_assert(wait_runs(1, 3, NULL));
}
END_TEST

START_TEST(stopping_the_supervisor_stops_every_instance)
{
    pid_t pids[2];

    start();
    libxl_disk(1, "2");
    libxl_disk(2, "2");
    ck_assert(wait_runs(1, 1, NULL));
    ck_assert(wait_runs(2, 1, NULL));
    pids[0] = instance_pid(1);
    pids[1] = instance_pid(2);
    stop();
    ck_assert_uint_eq(runs(1, NULL, 0), 2);
    ck_assert_uint_eq(runs(2, NULL, 0), 2);
    ck_assert_int_eq(kill(pids[0], 0), -1); /* reaped, not a zombie */
    ck_assert_int_eq(kill(pids[1], 0), -1);
}
END_TEST

/* What xvdm --supervise does with a SIGHUP it gets, on its loop thread
 * (stopped meanwhile: the instances are that thread's). */
static void sighup_reaches_both_instances(void)
{
    start();
    libxl_disk(1, "2");
    libxl_disk(2, "2");
    ck_assert(wait_runs(1, 1, NULL));
    ck_assert(wait_runs(2, 1, NULL));
    loop_stop(loop);
    pthread_join(thread, NULL);
    supervisor_signal(sv, SIGHUP);
    ck_assert_int_eq(pthread_create(&thread, NULL, loop_thread, loop), 0);
    ck_assert(wait_runs(1, 2, "hup"));
    ck_assert(wait_runs(2, 2, "hup"));
}

START_TEST(a_signal_is_passed_on_to_every_running_instance)
{
    sighup_reaches_both_instances();
}
END_TEST

/* Started ignoring SIGHUP (under nohup, say), which exec would pass on:
 * the instances still get it. The test runs in a process of its own. */
START_TEST(a_signal_reaches_instances_of_a_supervisor_that_ignores_it)
{
    signal(SIGHUP, SIG_IGN);
    sighup_reaches_both_instances();
}
END_TEST

/* A guest's vCPUs must not touch a window before its instance serves it
 * (Xen on Arm gives the guest a data abort): the guest is held paused
 * from the instance's start until every device it declared is in
 * InitWait, which the instance writes once it serves them all. */
START_TEST(a_guest_is_held_paused_until_its_instance_serves_every_device)
{
    start();
    libxl_disk(1, "1");
    ck_assert(wait_runs(1, 1, NULL));
    ck_assert(wait_held(1, 1));
    usleep(200000);
    ck_assert_int_eq(held[1], 1);
    libxl_disk(1, "2"); /* the instance's InitWait */
    ck_assert(wait_held(1, 0));
}
END_TEST

/* libxl writes a guest's virtio = [...] devices after its disks'
 * handshake, so an instance started for the disks does not know them:
 * the supervisor holds the guest, has the instance hand over (SIGUSR2,
 * exit 75, its devices left open) and starts it again with them all. */
START_TEST(a_device_declared_after_the_instance_started_restarts_it)
{
    start_serving_guest_1();
    ck_assert(wait_held(1, 0));
    libxl_virtio(1, 0, "1");
    ck_assert(wait_runs(1, 3, NULL));
    ck_assert_str_eq(run_line(1, 2), "usr2");
    ck_assert_int_eq(held[1], 1);
    libxl_disk(1, "2"); /* the next instance serves them all */
    libxl_virtio(1, 0, "2");
    ck_assert(wait_held(1, 0));
    usleep(200000);
    ck_assert_uint_eq(runs(1, NULL, 0), 3); /* no backoff, no more starts */
}
END_TEST

/* The instance that hands over may have served every device already,
 * the late one too: their InitWait then says nothing of the next
 * instance, which has yet to map its windows (a guest let go then takes
 * a data abort in virtio_mmio_probe). The guest stays held until the next
 * instance writes InitWait itself. */
START_TEST(a_hand_over_holds_the_guest_until_the_next_instance_serves)
{
    start_serving_guest_1();
    ck_assert(wait_held(1, 0));
    libxl_virtio(1, 0, "2"); /* declared, and served by the old instance */
    ck_assert(wait_runs(1, 3, NULL));
    ck_assert_str_eq(run_line(1, 2), "usr2");
    usleep(200000);
    ck_assert_int_eq(held[1], 1);
    libxl_disk(1, "2"); /* the next instance's InitWait */
    libxl_virtio(1, 0, "2");
    ck_assert(wait_held(1, 0));
}
END_TEST

/* SIGUSR2 can reach an instance before xvdm blocks it (right after
 * exec): it dies of it, having done nothing, and is started again at
 * once like one that handed over, not after a failure's backoff. */
START_TEST(an_instance_killed_by_the_hand_over_signal_is_started_at_once)
{
    write_file("mode", "usr2-kills", 0644);
    cfg.backoff_min_ms = cfg.backoff_max_ms = 60000;
    start_serving_guest_1();
    ck_assert(wait_held(1, 0));
    libxl_virtio(1, 0, "1");
    ck_assert(wait_runs(1, 2, NULL));
    ck_assert_int_eq(held[1], 1);
}
END_TEST

/* An instance that never gets ready does not keep its guest paused. */
START_TEST(a_guest_is_let_go_when_its_instance_never_gets_ready)
{
    cfg.hold_max_ms = 300;
    start();
    libxl_disk(1, "1");
    ck_assert(wait_held(1, 1));
    ck_assert(wait_held(1, 0));
}
END_TEST

static Suite *supervisor_suite(void)
{
    Suite *s = suite_create("supervisor");
    TCase *tc = tcase_create("instances");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, an_instance_starts_when_libxl_writes_a_guests_nodes);
    tcase_add_test(tc, guests_already_there_are_served_at_start);
    tcase_add_test(tc, a_failing_instance_is_restarted_with_backoff);
    tcase_add_test(tc,
                   the_instance_of_a_dead_guest_is_stopped_and_not_restarted);
    tcase_add_test(tc,
                   an_instance_that_let_go_of_a_closing_guest_is_not_restarted);
    tcase_add_test(
        tc, an_instance_that_let_go_of_a_shut_down_guest_is_not_restarted);
    tcase_add_test(tc, an_instance_stopped_while_needed_is_started_again);
    tcase_add_test(tc,
                   a_guest_is_held_paused_until_its_instance_serves_every_device);
    tcase_add_test(tc, a_device_declared_after_the_instance_started_restarts_it);
    tcase_add_test(tc,
                   an_instance_killed_by_the_hand_over_signal_is_started_at_once);
    tcase_add_test(tc,
                   a_hand_over_holds_the_guest_until_the_next_instance_serves);
    tcase_add_test(tc, a_guest_is_let_go_when_its_instance_never_gets_ready);
    tcase_add_test(tc, exits_are_seen_when_sigchld_was_ignored);
    tcase_add_test(tc, stopping_the_supervisor_stops_every_instance);
    tcase_add_test(tc, a_signal_is_passed_on_to_every_running_instance);
    tcase_add_test(tc,
                   a_signal_reaches_instances_of_a_supervisor_that_ignores_it);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run(supervisor_suite());
}
