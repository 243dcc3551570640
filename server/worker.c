/*
 * worker.c - a worker process: reads TASK frames from its channel (fd 3),
 * runs each with the kind's handler, answers with a RESULT frame.
 *
 * The daemon spawns us with fork+exec, so we start single-threaded and clean.
 * We lead our own process group, and we are a child subreaper: whatever a
 * command starts stays below us even if it leaves our group (setsid) or its
 * parent dies, so proc_kill_descendants(worker) finds all of a task's work.
 * We must not outlive the daemon: the channel's EOF ends us between tasks,
 * and PR_SET_PDEATHSIG delivers SIGTERM mid-task, whose handler kills every
 * descendant and our group at once.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "chan.h"
#include "kinds.h"
#include "log.h"
#include "pool.h"
#include "proc.h"

#define WORKER_FD 3

static volatile sig_atomic_t worker_parent;   /* the daemon: its pid, once we know it */

/*
 * SIGTERM: from PR_SET_PDEATHSIG (the daemon is gone) or from outside.
 * Everything below us goes first (we are a subreaper, so even what left our
 * process group is below us).  If the daemon is gone, nobody will kill our
 * group after us, and a process forked while the walk ran may have escaped
 * it: we kill the group, ourselves included.  Otherwise we die of the
 * signal itself, so the daemon reports the signal it was.  The daemon's
 * death can send several SIGTERMs (one each time its dying threads hand us
 * on), and an early one must not end us halfway through the killing: the
 * signal stays blocked while we run, and the handler stays installed until
 * the end.  SA_RESETHAND would not do: it restores the default as the first
 * is taken, before the kernel blocks it for the handler, and a second one
 * landing in between kills us before the handler runs at all.
 */
static void worker_on_term(int sig, siginfo_t *info, void *ctx)
{
    sigset_t term;

    (void)ctx;
    proc_kill_descendants(getpid(), SIGKILL);
    /* Sent by the daemon means PR_SET_PDEATHSIG (it never sends SIGTERM
     * itself).  getppid() alone cannot tell: the signal comes when the
     * thread that spawned us dies, and the daemon's other threads may still
     * be there. */
    if (info->si_pid == worker_parent || getppid() != worker_parent)
        kill(0, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
    sigemptyset(&term);
    sigaddset(&term, sig);
    sigprocmask(SIG_UNBLOCK, &term, NULL);
    _exit(WORKER_EXIT_ORPHAN);
}

static int64_t worker_tv_ms(const struct timeval *tv)
{
    return (int64_t)tv->tv_sec * 1000 + tv->tv_usec / 1000;
}

/*
 * CPU used so far by us and the children we reaped (see struct chan_cpu);
 * max_rss_kb, if not NULL, gets our own peak (our whole life's).
 */
static struct chan_cpu worker_cpu_total(long *max_rss_kb)
{
    struct rusage self, kids;

    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    if (max_rss_kb != NULL)
        *max_rss_kb = self.ru_maxrss;
    return (struct chan_cpu){ worker_tv_ms(&self.ru_utime) + worker_tv_ms(&kids.ru_utime),
                              worker_tv_ms(&self.ru_stime) + worker_tv_ms(&kids.ru_stime) };
}

struct worker_opts {
    struct kind_limits lim;
    bool               allow_exec;   /* the daemon's --allow-exec, checked again here */
    int                clear_refs;   /* /proc/self/clear_refs, to reset the RSS peak; -1 = none */
    int                status;       /* /proc/self/status, to read it */
    long               base_rss_kb;  /* peak of an idle worker: above it, a task grew the heap */
};

/*
 * Peak RSS is per process, and ru_maxrss even carries the daemon's peak over
 * the exec that made us.  Resetting the high-water mark before each task and
 * reading VmHWM after gives the task's own peak.
 */
static void worker_rss_reset(const struct worker_opts *opt)
{
    if (opt->clear_refs >= 0)
        (void)!pwrite(opt->clear_refs, "5", 1, 0);
}

/* The peak RSS since the last reset, in KiB; -1 if it cannot be read. */
static long worker_rss_peak_kb(const struct worker_opts *opt)
{
    char buf[4096], *p;
    ssize_t n;

    if (opt->clear_refs < 0 || opt->status < 0)
        return -1;
    n = pread(opt->status, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    p = strstr(buf, "\nVmHWM:");
    return p != NULL ? strtol(p + 7, NULL, 10) : -1;
}

/* Runs one TASK frame and sends its RESULT.  0, or -1 if the channel is broken. */
static int worker_run(const struct chan_msg *msg, struct worker_opts *opt)
{
    const char *kind_name = msg->payload, *nul = memchr(msg->payload, '\0', msg->len);
    struct kind_outcome out = { 0 };
    struct chan_cpu before, after;
    long life_peak;
    const struct kind *k;
    cJSON *args = NULL;
    int rc;

    if (nul == NULL)
        return -1;
    k = kind_find(kind_name);
    args = cJSON_ParseWithLength(nul + 1, msg->len - (size_t)(nul + 1 - msg->payload));
    worker_rss_reset(opt);
    before = worker_cpu_total(NULL);
    if (k == NULL || args == NULL) {
        out.ok = false;
        out.error_code = strdup("internal");
        out.error_message = strdup(k == NULL ? "the worker does not know this kind"
                                             : "the worker could not parse the args");
    } else if (k->needs_exec && !opt->allow_exec) {
        out.ok = false;
        out.error_code = strdup("exec_disabled");
        out.error_message = strdup("kind 'exec' is disabled: start taskpoold with --allow-exec");
    } else if (k->run(args, &opt->lim, &out) < 0) {
        kind_outcome_clear(&out);
        out.error_code = strdup("internal");
        out.error_message = strdup("the worker ran out of memory");
    }
    if (out.result != NULL && strlen(out.result) > chan_result_max(opt->lim.max_output) - 64 * 1024) {
        /* The daemon would take an oversized frame for a broken worker. */
        kind_outcome_clear(&out);
        out.error_code = strdup("result_too_large");
        out.error_message = strdup("the result is larger than taskpoold accepts");
    }
    after = worker_cpu_total(&life_peak);
    long peak = worker_rss_peak_kb(opt);
    struct chan_usage used = {
        after.user_ms - before.user_ms,
        after.sys_ms - before.sys_ms,
        out.child_max_rss_kb > 0 ? out.child_max_rss_kb : peak >= 0 ? peak : life_peak,
    };
    rc = chan_send_result(WORKER_FD, msg->task_id, out.ok, &used, &after, out.result,
                          out.error_code,
                          out.error_message ? out.error_message : (out.ok ? NULL : "failed"));
    kind_outcome_clear(&out);
    cJSON_Delete(args);
    /* Give a big task's memory back, or the next task's peak starts from it. */
    if (peak > opt->base_rss_kb + 1024)
        malloc_trim(0);
    return rc;
}

int worker_main(int argc, char **argv)
{
    struct worker_opts opt = { .lim = { .max_output = 1024 * 1024 } };

    opt.clear_refs = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    opt.status = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    struct chan_reader rd;
    struct chan_hello hello;
    struct sigaction sa;
    pid_t parent = 0;
    int code = WORKER_EXIT_FATAL;

    log_set_name("worker");
    /* Spawned through /proc/self/exe, we would show as "exe" in ps and top. */
    prctl(PR_SET_NAME, "taskpool-worker");
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--parent") == 0)
            parent = (pid_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--max-output") == 0)
            opt.lim.max_output = (size_t)strtoull(argv[++i], NULL, 10);
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--allow-exec") == 0)
            opt.allow_exec = true;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = worker_on_term;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);     /* a command closing its stdin must not kill us */
    signal(SIGINT, SIG_IGN);      /* the daemon decides when we stop */
    /* As a subreaper we inherit whatever a command orphans (double forks,
     * setsid), so it stays below us, where proc_kill_descendants finds it. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 ||
        parent <= 0) {
        log_error("cannot arrange to die with the daemon");
        return WORKER_EXIT_FATAL;
    }
    if (getppid() != parent)      /* the daemon died before prctl took effect */
        return WORKER_EXIT_ORPHAN;
    worker_parent = parent;
    /* Commands we run must not inherit the channel: they could forge results. */
    if (fcntl(WORKER_FD, F_SETFD, FD_CLOEXEC) < 0) {
        log_error("channel fd %d: %s", WORKER_FD, strerror(errno));
        return WORKER_EXIT_FATAL;
    }

    hello.pid = (int32_t)getpid();
    hello.ppid = (int32_t)getppid();
    hello.total = worker_cpu_total(NULL);
    struct chan_part part = { &hello, sizeof hello };
    if (chan_send(WORKER_FD, CHAN_MSG_HELLO, 0, &part, 1) < 0) {
        log_error("cannot greet the daemon: %s", strerror(errno));
        return WORKER_EXIT_FATAL;
    }

    /* Frames from the daemon are bounded by its 1 MiB body limit; leave room. */
    chan_reader_init(&rd, 4 * 1024 * 1024);
    for (;;) {
        struct chan_msg msg;
        int got = chan_reader_next(&rd, &msg);
        if (got < 0) {
            log_error("malformed frame from the daemon");
            break;
        }
        if (got == 0) {
            ssize_t n = chan_reader_fill(&rd, WORKER_FD);
            if (n == 0) {
                code = WORKER_EXIT_OK;
                break;
            }
            if (n < 0) {
                log_error("channel: %s", strerror(errno));
                break;
            }
            continue;
        }
        if (opt.base_rss_kb == 0) {
            worker_rss_reset(&opt);
            opt.base_rss_kb = worker_rss_peak_kb(&opt);
        }
        if (msg.type != CHAN_MSG_TASK || worker_run(&msg, &opt) < 0) {
            log_error("channel broken (frame type %u)", msg.type);
            break;
        }
    }
    chan_reader_free(&rd);
    return code;
}
