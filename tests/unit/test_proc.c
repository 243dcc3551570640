/*
 * test_proc.c - killing a process's descendants through /proc: children,
 * grandchildren, processes that left the group (setsid), orphans that came
 * to a subreaper, the kept subtrees of proc_kill_strays, and the same again
 * with a table far smaller than the host's process count, so the path for
 * processes beyond the table runs for real.
 *
 * The test process is a child subreaper, as the worker and the daemon are,
 * and forks its own small trees (it is single-threaded, so fork is safe).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

/* The same code with a 4-entry table: every host has more processes than that. */
#define PROC_MAX 4
int small_proc_kill_descendants(pid_t root, int sig);
int small_proc_kill_strays(pid_t root, const pid_t *keep, int n, int sig);
int small_proc_usage_tree(pid_t pid, struct proc_usage *out);
int small_proc_kill_marked(const char *marker, pid_t self, int sig);
#define proc_kill_descendants small_proc_kill_descendants
#define proc_kill_strays small_proc_kill_strays
#define proc_usage_tree small_proc_usage_tree
#define proc_kill_marked small_proc_kill_marked
#include "../../lib/proc.c"
#undef proc_kill_descendants
#undef proc_kill_strays
#undef proc_usage_tree
#undef proc_kill_marked

#define TREE_MAX 8

typedef int (*kill_fn)(pid_t root, const pid_t *keep, int n, int sig);

struct tree_report { int level; pid_t pid; };

static pid_t test_pid;             /* parked processes leave when it is gone */

/* A forked process that reports its level and pid on the pipe, then waits to be killed. */
static void tree_park(int report, int level)
{
    struct tree_report r = { level, getpid() };

    (void)!write(report, &r, sizeof r);
    close(report);
    /* Not PR_SET_PDEATHSIG: a parent's death must not end its child here,
     * since orphans are what some tests are about. */
    for (int i = 0; i < 600 && kill(test_pid, 0) == 0; i++)
        usleep(100 * 1000);
    _exit(0);
}

/*
 * Forks a chain of depth processes below us, each the parent of the next;
 * with detach, the second one calls setsid.  pids[i] is the one at level i.
 */
static void tree_chain(int depth, bool detach, pid_t *pids)
{
    struct tree_report r;
    int fds[2];

    assert_int_equal(pipe(fds), 0);
    pid_t first = fork();
    assert_true(first >= 0);
    if (first == 0) {
        close(fds[0]);
        for (int level = 1; level < depth; level++) {
            pid_t next = fork();
            if (next < 0)
                _exit(1);
            if (next > 0)
                tree_park(fds[1], level - 1);   /* this one waits; its child goes deeper */
            if (detach && level == 1)
                setsid();
        }
        tree_park(fds[1], depth - 1);
    }
    close(fds[1]);
    for (int i = 0; i < depth; i++) {
        assert_int_equal(read(fds[0], &r, sizeof r), (ssize_t)sizeof r);
        assert_in_range(r.level, 0, depth - 1);
        pids[r.level] = r.pid;
    }
    close(fds[0]);
}

/* True once pid is gone or a zombie; reaps whatever of ours has died meanwhile. */
static bool tree_dead(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;

    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p == NULL || p[2] == 'Z';
}

static bool tree_wait_dead(pid_t pid)
{
    for (int i = 0; i < 500; i++) {          /* 5 s at most */
        if (tree_dead(pid))
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static void tree_kill_all(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        tree_wait_dead(pids[i]);
}

static int big_strays(pid_t root, const pid_t *keep, int n, int sig)
{
    return proc_kill_strays(root, keep, n, sig);
}

static int small_strays(pid_t root, const pid_t *keep, int n, int sig)
{
    return small_proc_kill_strays(root, keep, n, sig);
}

static int setup(void **state)
{
    (void)state;
    test_pid = getpid();
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : -1;
}

static void check_kills_children_grandchildren_and_setsid_escapees(kill_fn kill_tree)
{
    pid_t plain[3], detached[3];

    tree_chain(3, false, plain);
    tree_chain(3, true, detached);
    assert_true(getsid(detached[1]) == detached[1]);   /* it really left our session */
    /* A process killed in one pass may still be exiting in the next, and count again. */
    assert_in_range(kill_tree(getpid(), NULL, 0, SIGKILL), 6, 6 * PROC_PASSES);
    for (int i = 0; i < 3; i++) {
        assert_true(tree_wait_dead(plain[i]));
        assert_true(tree_wait_dead(detached[i]));
    }
}

static void test_descendants_all_die_even_after_setsid(void **state)
{
    (void)state;
    check_kills_children_grandchildren_and_setsid_escapees(big_strays);
}

static void test_descendants_all_die_with_a_table_smaller_than_the_host(void **state)
{
    (void)state;
    check_kills_children_grandchildren_and_setsid_escapees(small_strays);
}

static void test_orphans_reparented_to_us_are_found(void **state)
{
    pid_t chain[3];

    (void)state;
    tree_chain(3, true, chain);
    kill(chain[0], SIGKILL);                 /* the middle one's parent dies: it comes to us */
    assert_true(tree_wait_dead(chain[0]));
    for (int i = 0; i < 500 && proc_ppid(chain[1]) != getpid(); i++)
        usleep(10 * 1000);
    assert_int_equal(proc_ppid(chain[1]), getpid());
    assert_in_range(proc_kill_descendants(getpid(), SIGKILL), 2, 2 * PROC_PASSES);
    assert_true(tree_wait_dead(chain[1]));
    assert_true(tree_wait_dead(chain[2]));
}

static void check_kept_subtrees_are_spared(kill_fn kill_tree)
{
    pid_t kept[3], stray[3];

    tree_chain(3, false, kept);
    tree_chain(3, true, stray);
    assert_in_range(kill_tree(getpid(), kept, 1, SIGKILL), 3, 3 * PROC_PASSES);
    for (int i = 0; i < 3; i++)
        assert_true(tree_wait_dead(stray[i]));
    for (int i = 0; i < 3; i++)
        assert_false(tree_dead(kept[i]));
    tree_kill_all(kept, 3);
}

static void test_kill_strays_spares_the_kept_subtrees(void **state)
{
    (void)state;
    check_kept_subtrees_are_spared(big_strays);
}

static void test_kill_strays_spares_the_kept_subtrees_with_a_small_table(void **state)
{
    (void)state;
    check_kept_subtrees_are_spared(small_strays);
}

static void test_nothing_below_means_nothing_signalled(void **state)
{
    (void)state;
    assert_int_equal(proc_kill_descendants(getpid(), SIGKILL), 0);
    assert_int_equal(small_proc_kill_descendants(getpid(), SIGKILL), 0);
}

static void test_only_the_roots_own_descendants_are_signalled(void **state)
{
    pid_t a[2], b[2];

    (void)state;
    tree_chain(2, false, a);
    tree_chain(2, false, b);
    /* Below a[0]: only a[1]; b and a[0] itself are untouched. */
    assert_in_range(proc_kill_descendants(a[0], SIGKILL), 1, PROC_PASSES);
    assert_true(tree_wait_dead(a[1]));
    assert_false(tree_dead(a[0]));
    assert_false(tree_dead(b[0]));
    assert_false(tree_dead(b[1]));
    tree_kill_all(a, 1);
    tree_kill_all(b, 2);
}

/* Burns about ms of CPU time (user), then parks like the others. */
static pid_t burner(int ms, int depth, int report)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        if (depth > 1)
            burner(ms, depth - 1, report);
        struct timespec a, b;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        volatile unsigned long x = 0;
        do {
            for (int i = 0; i < 100000; i++)
                x += (unsigned long)i;
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
        } while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
        tree_park(report, depth);
    }
    return pid;
}

static void check_usage_adds_up_the_tree(int (*usage)(pid_t, struct proc_usage *))
{
    struct tree_report r;
    struct proc_usage u;
    pid_t pids[2];
    int fds[2];

    assert_int_equal(pipe(fds), 0);
    pid_t top = burner(300, 2, fds[1]);   /* top burns 300 ms, and so does its child */
    close(fds[1]);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(read(fds[0], &r, sizeof r), (ssize_t)sizeof r);
        pids[r.level - 1] = r.pid;
    }
    close(fds[0]);
    assert_int_equal(pids[1], top);
    assert_int_equal(usage(top, &u), 0);
    /* Clock ticks are 10 ms: both burned 300 ms at least. */
    assert_in_range(u.user_ms + u.sys_ms, 580, 60000);
    assert_in_range(u.max_rss_kb, 1, 1024 * 1024);
    assert_int_equal(usage(999999999, &u), -1);
    tree_kill_all(pids, 2);
}

static void test_usage_adds_up_the_tree(void **state)
{
    (void)state;
    check_usage_adds_up_the_tree(proc_usage_tree);
}

static void test_usage_adds_up_the_tree_with_a_small_table(void **state)
{
    (void)state;
    check_usage_adds_up_the_tree(small_proc_usage_tree);
}

/* A sleep 30 whose whole environment is entry. */
static pid_t sleeper_with(const char *entry)
{
    char *argv[] = { "sleep", "30", NULL };
    char *envp[] = { (char *)entry, NULL };
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        execve("/bin/sleep", argv, envp);
        _exit(127);
    }
    return pid;
}

static void test_kill_marked_matches_the_whole_entry_only(void **state)
{
    char marker[64];

    (void)state;
    snprintf(marker, sizeof marker, "TP_TEST_MARK=%d", (int)getpid());
    pid_t pids[3];
    char longer[80];
    snprintf(longer, sizeof longer, "%s0", marker);
    pids[0] = sleeper_with(marker);
    pids[1] = sleeper_with(longer);          /* a longer value: not the same mark */
    pids[2] = sleeper_with("OTHER=1");
    /* Each execs: wait until its environment is the new one. */
    for (int i = 0; i < 500 && !(proc_has_entry(pids[0], marker, strlen(marker)) &&
                                 proc_has_entry(pids[1], longer, strlen(longer))); i++)
        usleep(10 * 1000);
    assert_int_equal(proc_kill_marked(marker, getpid(), SIGKILL), 1);
    assert_true(tree_wait_dead(pids[0]));
    assert_false(tree_dead(pids[1]));
    assert_false(tree_dead(pids[2]));
    assert_int_equal(small_proc_kill_marked(longer, pids[1], SIGKILL), 0);   /* self is spared */
    assert_false(tree_dead(pids[1]));
    tree_kill_all(pids + 1, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descendants_all_die_even_after_setsid),
        cmocka_unit_test(test_descendants_all_die_with_a_table_smaller_than_the_host),
        cmocka_unit_test(test_orphans_reparented_to_us_are_found),
        cmocka_unit_test(test_kill_strays_spares_the_kept_subtrees),
        cmocka_unit_test(test_kill_strays_spares_the_kept_subtrees_with_a_small_table),
        cmocka_unit_test(test_nothing_below_means_nothing_signalled),
        cmocka_unit_test(test_only_the_roots_own_descendants_are_signalled),
        cmocka_unit_test(test_usage_adds_up_the_tree),
        cmocka_unit_test(test_usage_adds_up_the_tree_with_a_small_table),
        cmocka_unit_test(test_kill_marked_matches_the_whole_entry_only),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
