/*
 * pool.c - the prefork worker pool (see pool.h).
 *
 * DESIGN
 * One dispatcher thread owns the worker processes: it spawns them, reads
 * their channels, hands out tasks, enforces timeouts, kills on cancel, reaps
 * and replaces.  It sleeps in epoll_wait on the workers' channels, an
 * eventfd (pool_wake, pool_cancel, pool_stop) and a signalfd for SIGCHLD
 * (blocked in every thread, so only the signalfd sees it).
 * pool.lock guards the scoreboard fields that other threads read
 * (pool_describe, pool_stats_get) and the cancel requests; only the
 * dispatcher writes the scoreboard.  The dispatcher never holds pool.lock
 * while calling the engine, so the two locks never nest.
 *
 * Workers are spawned with posix_spawn (fork+exec of this binary in worker
 * mode), never a bare fork: the daemon is multi-threaded, and a forked copy
 * would inherit whatever locks other threads held at that instant.  Each
 * worker leads its own process group, so kill(-pid) ends the worker and
 * anything it started (exec commands and their children).
 */
#include "pool.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan.h"
#include "engine.h"
#include "journal.h"
#include "proc.h"
#include "log.h"
#include "task.h"

extern char **environ;

#define POOL_EV_WAKE   UINT32_MAX
#define POOL_EV_SIGNAL (UINT32_MAX - 1)
#define POOL_SICK_MS   1000          /* a worker dying younger than this is "sick" */
#define POOL_BACKOFF_MAX_MS 10000
#define POOL_STOP_WAIT_MS   3000     /* after closing channels, before SIGKILL */
#define POOL_SEND_TIMEOUT_S 5        /* a TASK frame a worker does not take in this long */
#define POOL_SLOTS_MAX (2 * POOL_WORKERS_MAX + 4)
#define POOL_JOURNAL_RETRY_MS 1000   /* after the journal refused a write */
#define POOL_RECORD_MS 1000          /* a worker's tasks_done is written this often at most */

enum pool_state { SLOT_FREE = 0, SLOT_STARTING, SLOT_IDLE, SLOT_BUSY, SLOT_EXITING };

struct pool_worker {                 /* one scoreboard slot */
    pid_t              pid;
    pid_t              ppid;         /* as the worker reported it */
    int                fd;           /* channel; -1 once closed */
    enum pool_state    state;
    int64_t            task_id;      /* running task, 0 = none */
    int64_t            deadline;     /* task timeout, task_mono_ms; 0 = none */
    int64_t            started_at;   /* Unix ms, for the record */
    int64_t            started_mono; /* task_mono_ms, for the age */
    int64_t            tasks_done;
    struct chan_cpu    base;         /* its CPU total when the current run began */
    int64_t            recorded_done;   /* tasks_done as last written to the workers table */
    int64_t            recorded_mono;   /* when, task_mono_ms */
    const char        *exit_reason;  /* why we ended it; NULL = it died on its own */
    struct chan_reader rd;
};

struct pool_cancel { pid_t pid; int64_t id; };

static struct {
    pthread_mutex_t      lock;
    const struct config *cfg;
    struct pool_worker  *slots;
    int                  nslots;
    int                  epfd, evfd, sigfd;
    pthread_t            thread;
    bool                 started;
    bool                 stop;           /* set by pool_stop, under lock */
    int64_t              grace_until;
    int64_t              next_spawn_at;
    int64_t              next_dispatch_at;   /* 0, or after a journal failure */
    int                  sick_streak;
    struct pool_cancel  *cancels;        /* requests from other threads, under lock */
    size_t               ncancels, cancels_cap;
    struct pool_stats    stats;
    struct journal      *journal;        /* dispatcher only */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .evfd = -1, .sigfd = -1 };

/* Deadlines, back-off and ages are monotonic; only recorded times use the wall clock. */
static int64_t pool_now(void) { return task_mono_ms(); }

void pool_wake(void)
{
    uint64_t one = 1;
    int fd = __atomic_load_n(&pool.evfd, __ATOMIC_ACQUIRE);

    if (fd >= 0)
        (void)!write(fd, &one, sizeof one);
}

void pool_cancel(pid_t pid, int64_t id)
{
    pthread_mutex_lock(&pool.lock);
    if (pool.ncancels == pool.cancels_cap) {
        size_t ncap = pool.cancels_cap ? pool.cancels_cap * 2 : 64;
        struct pool_cancel *n = realloc(pool.cancels, ncap * sizeof *n);
        if (n == NULL) {
            pthread_mutex_unlock(&pool.lock);
            /* The engine already says cancelled; the worker must not go on. */
            log_error("out of memory queueing a cancel: killing worker %ld directly", (long)pid);
            kill(-pid, SIGKILL);
            engine_task_usage(id, NULL);
            return;
        }
        pool.cancels = n;
        pool.cancels_cap = ncap;
    }
    pool.cancels[pool.ncancels++] = (struct pool_cancel){ pid, id };
    pthread_mutex_unlock(&pool.lock);
    pool_wake();
}

static void pool_set_state(struct pool_worker *w, enum pool_state st, int64_t task_id)
{
    pthread_mutex_lock(&pool.lock);
    w->state = st;
    w->task_id = task_id;
    pthread_mutex_unlock(&pool.lock);
}

static void pool_record(struct pool_worker *w, int64_t exited_at, int code, int sig,
                        const char *reason, bool announce)
{
    struct store_worker rec = {
        .pid = w->pid, .started_at = w->started_at, .exited_at = exited_at,
        .exit_code = code, .exit_signal = sig, .tasks_done = w->tasks_done,
        .exit_reason = reason,
    };
    engine_worker_record(&rec, announce);
    w->recorded_done = w->tasks_done;
}

/*
 * Keeps the workers table's tasks_done close to the truth (a kill -9 of the
 * daemon leaves the last one standing) without a row write per task: a
 * worker's row is rewritten at most once per POOL_RECORD_MS, when it changed.
 */
static void pool_record_progress(int64_t now)
{
    for (int i = 0; i < pool.nslots; i++) {
        struct pool_worker *w = &pool.slots[i];
        if ((w->state == SLOT_IDLE || w->state == SLOT_BUSY) &&
            w->tasks_done != w->recorded_done && now - w->recorded_mono >= POOL_RECORD_MS) {
            pool_record(w, 0, -1, 0, NULL, false);
            w->recorded_mono = now;
        }
    }
}

/* Closes the channel: an idle worker reads EOF and exits. */
static void pool_close_channel(struct pool_worker *w)
{
    if (w->fd < 0)
        return;
    epoll_ctl(pool.epfd, EPOLL_CTL_DEL, w->fd, NULL);
    close(w->fd);
    w->fd = -1;
}

static int64_t pool_since(int64_t now_ms, int64_t base_ms)
{
    return now_ms > base_ms ? now_ms - base_ms : 0;
}

/*
 * What the run on w has used so far, read from /proc just before the pool
 * cuts it short (timeout, cancel, the end of the shutdown grace): the
 * worker's CPU less what it had used before the run, its commands', and the
 * peak memory (the worker resets its high-water mark before each task).
 * usage.set stays false if /proc cannot tell.
 */
static struct task_usage pool_usage_of_run(const struct pool_worker *w)
{
    struct proc_usage pu;
    struct task_usage u = { 0 };

    if (proc_usage_tree(w->pid, &pu) == 0)
        u = (struct task_usage){ true, pool_since(pu.user_ms, w->base.user_ms),
                                 pool_since(pu.sys_ms, w->base.sys_ms), pu.max_rss_kb };
    return u;
}

/*
 * Ends a worker at once, with its process group.  reason says why, for the
 * log and the record.  Its task stays on the slot: whoever settles the task
 * now clears it, otherwise the reap settles it as a death.
 */
static void pool_kill(struct pool_worker *w, const char *reason)
{
    /* Descendants first, while the tree still hangs from the worker: a
     * command may have left the worker's group (setsid). */
    if (w->pid > 0) {
        proc_kill_descendants(w->pid, SIGKILL);
        kill(-w->pid, SIGKILL);
    }
    w->exit_reason = reason;
    pool_close_channel(w);
    pool_set_state(w, SLOT_EXITING, w->task_id);
}



static int pool_spawn(int64_t now)
{
    struct pool_worker *w = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    char parent[32], maxout[32];
    char *argv[] = { (char *)pool.cfg->exe_path, "--worker", "--parent", parent,
                     "--max-output", maxout, pool.cfg->allow_exec ? "--allow-exec" : NULL, NULL };
    int sv[2] = { -1, -1 }, err;
    pid_t pid;

    for (int i = 0; i < pool.nslots; i++) {
        if (pool.slots[i].state == SLOT_FREE) {
            w = &pool.slots[i];
            break;
        }
    }
    if (w == NULL)
        return -1;   /* every slot waits for a reap; try again after it */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_error("socketpair: %s", strerror(errno));
        return -1;
    }
    /* dup2 onto the same number would leave close-on-exec set: keep fd 3 free of it. */
    if (sv[1] == 3) {
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
        close(sv[1]);
        sv[1] = moved;
        if (moved < 0)
            goto fail_errno;
    }
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    snprintf(maxout, sizeof maxout, "%zu", pool.cfg->max_output);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);     /* we block SIGCHLD & co.; it must not */
    posix_spawnattr_setsigdefault(&attr, &all);
    /* /proc/self/exe, not the path: if the file was replaced (an upgrade, a
     * rebuild), new workers must still run the image we are. */
    err = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    sv[1] = -1;
    if (err != 0) {
        errno = err;
        goto fail_errno;
    }
    /* A worker only gets a frame when idle, so a send that cannot finish
     * means a stopped or wedged worker: give up on it rather than freeze the
     * dispatcher (and with it every timeout and cancel). */
    struct timeval send_limit = { POOL_SEND_TIMEOUT_S, 0 };
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof send_limit);
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)(w - pool.slots) };
    if (epoll_ctl(pool.epfd, EPOLL_CTL_ADD, sv[0], &ev) < 0) {
        kill(-pid, SIGKILL);
        goto fail_errno;   /* reaped as an unknown child */
    }
    pthread_mutex_lock(&pool.lock);
    memset(w, 0, sizeof *w);
    w->pid = pid;
    w->fd = sv[0];
    w->state = SLOT_STARTING;
    w->started_at = task_now_ms();
    w->started_mono = now;
    pool.stats.spawned++;
    pthread_mutex_unlock(&pool.lock);
    chan_reader_init(&w->rd, chan_result_max(pool.cfg->max_output));
    pool_record(w, 0, -1, 0, NULL, true);
    w->recorded_mono = now;
    log_info("worker %ld started", (long)pid);
    return 0;

fail_errno:
    log_error("cannot start a worker: %s", strerror(errno));
    if (sv[0] >= 0) close(sv[0]);
    if (sv[1] >= 0) close(sv[1]);
    return -1;
}

/* Handles one frame from worker w.  0, or -1 if the worker broke the protocol. */
static int pool_on_message(struct pool_worker *w, const struct chan_msg *m)
{
    struct chan_hello hello;
    struct chan_result_view r;

    switch (m->type) {
    case CHAN_MSG_HELLO:
        if (w->state != SLOT_STARTING || m->len != sizeof hello)
            return -1;
        memcpy(&hello, m->payload, sizeof hello);
        if (hello.pid != w->pid)
            return -1;
        w->ppid = hello.ppid;
        w->base = hello.total;
        pool_set_state(w, SLOT_IDLE, 0);
        return 0;
    case CHAN_MSG_RESULT:
        if (w->state != SLOT_BUSY || m->task_id != w->task_id || chan_parse_result(m, &r) < 0)
            return -1;
        struct task_usage u = { true, r.fixed.usage.user_ms, r.fixed.usage.sys_ms,
                                r.fixed.usage.max_rss_kb };
        w->base = r.fixed.total;
        /* Counted before the verdict wakes any waiter, so a client that saw the task end
         * finds it in tasks_done; the slot turns idle only after, as the task is no longer
         * running then. */
        pthread_mutex_lock(&pool.lock);
        w->tasks_done++;
        pthread_mutex_unlock(&pool.lock);
        engine_task_finished(m->task_id, w->pid, r.fixed.ok != 0, r.result, r.result_len, r.code,
                             r.code_len, r.message, r.message_len, &u);
        pthread_mutex_lock(&pool.lock);
        w->state = SLOT_IDLE;
        w->task_id = 0;
        w->deadline = 0;
        pthread_mutex_unlock(&pool.lock);
        pool.sick_streak = 0;
        if (pool.cfg->max_tasks_per_worker > 0 && w->tasks_done >= pool.cfg->max_tasks_per_worker) {
            log_info("worker %ld retires after %lld tasks", (long)w->pid, (long long)w->tasks_done);
            w->exit_reason = "retired";
            pool_close_channel(w);
            pool_set_state(w, SLOT_EXITING, 0);
        }
        return 0;
    default:
        return -1;
    }
}

static void pool_on_readable(struct pool_worker *w)
{
    struct chan_msg m;
    ssize_t n;
    int got;

    if (w->fd < 0)
        return;
    n = chan_reader_fill(&w->rd, w->fd);
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        /* The worker is gone or going; the reap tells how. */
        pool_close_channel(w);
        if (w->state != SLOT_EXITING)
            pool_set_state(w, SLOT_EXITING, w->task_id);
        return;
    }
    while ((got = chan_reader_next(&w->rd, &m)) == 1) {
        if (pool_on_message(w, &m) < 0) {
            got = -1;
            break;
        }
    }
    if (got < 0) {
        log_error("worker %ld broke the channel protocol: killed", (long)w->pid);
        pool_kill(w, "killed");   /* its task is settled at the reap, as a death */
    }
}

/*
 * The daemon is a child subreaper: when a worker dies unplanned (killed from
 * outside, crashed), what its commands started, even what left its process
 * group, is reparented to us.  Kill all of it, sparing the workers.
 */
static void pool_kill_strays(void)
{
    pid_t keep[POOL_SLOTS_MAX];
    int n = 0;

    for (int i = 0; i < pool.nslots; i++)
        if (pool.slots[i].state != SLOT_FREE)
            keep[n++] = pool.slots[i].pid;
    int hit = proc_kill_strays(getpid(), keep, n, SIGKILL);
    if (hit > 0)
        log_info("killed %d process(es) left behind by a dead worker", hit);
}

static void pool_describe_exit(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "exited with code %d", WEXITSTATUS(status));
}

static void pool_reap(int64_t now)
{
    siginfo_t info;
    struct rusage ru;
    int status;
    pid_t pid;

    for (;;) {
        struct pool_worker *w = NULL;
        char how[96], msg[160];

        /* Peek first: while the zombie is unreaped its pid (and so its group
         * id) cannot be reused, so killing the group hits only its leftovers. */
        memset(&info, 0, sizeof info);
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 || info.si_pid == 0)
            break;
        pid = info.si_pid;
        kill(-pid, SIGKILL);
        if (wait4(pid, &status, 0, &ru) < 0)
            continue;

        for (int i = 0; i < pool.nslots; i++)
            if (pool.slots[i].state != SLOT_FREE && pool.slots[i].pid == pid)
                w = &pool.slots[i];
        pool_describe_exit(status, how, sizeof how);
        if (w == NULL) {
            /* An orphan we inherited as subreaper: a task's leftover. */
            log_info("reaped process %ld, left behind by a task: it %s", (long)pid, how);
            continue;
        }
        pool_close_channel(w);
        if (w->task_id != 0) {
            /* Its CPU is in the rusage of its death; its memory only as the
             * whole life's peak. */
            struct task_usage u = {
                true,
                pool_since((int64_t)ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000,
                           w->base.user_ms),
                pool_since((int64_t)ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000,
                           w->base.sys_ms),
                ru.ru_maxrss,
            };
            snprintf(msg, sizeof msg, "worker %ld %s", (long)pid, how);
            engine_task_aborted(w->task_id, pid, TASK_FAILED, true, "worker_died", msg, &u);
        }
        if (w->exit_reason == NULL) {
            pthread_mutex_lock(&pool.lock);
            pool.stats.restarts_unplanned++;
            pthread_mutex_unlock(&pool.lock);
            pool_kill_strays();   /* what the dead worker had started is ours now */
            if (now - w->started_mono < POOL_SICK_MS ||
                (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_FATAL)) {
                int64_t delay = 100LL << (pool.sick_streak < 7 ? pool.sick_streak : 7);
                pool.sick_streak++;
                if (delay > POOL_BACKOFF_MAX_MS)
                    delay = POOL_BACKOFF_MAX_MS;
                pool.next_spawn_at = now + delay;
                log_warn("worker %ld %s after %lld ms: next start in %lld ms", (long)pid, how,
                         (long long)(now - w->started_mono), (long long)delay);
            } else {
                log_warn("worker %ld %s", (long)pid, how);
            }
        } else {
            log_info("worker %ld %s (%s)", (long)pid, how, w->exit_reason);
        }
        pool_record(w, task_now_ms(), WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                    w->exit_reason ? w->exit_reason : "died", true);
        chan_reader_free(&w->rd);
        pthread_mutex_lock(&pool.lock);
        w->state = SLOT_FREE;
        w->pid = 0;
        w->task_id = 0;
        pthread_mutex_unlock(&pool.lock);
    }
}

static void pool_do_cancels(void)
{
    struct pool_cancel *reqs;
    size_t n;

    pthread_mutex_lock(&pool.lock);
    reqs = pool.cancels;
    n = pool.ncancels;
    pool.cancels = NULL;
    pool.ncancels = pool.cancels_cap = 0;
    pthread_mutex_unlock(&pool.lock);
    for (size_t i = 0; i < n; i++) {
        struct task_usage u = { 0 };
        bool found = false;
        for (int k = 0; k < pool.nslots && !found; k++) {
            struct pool_worker *w = &pool.slots[k];
            if (w->state != SLOT_BUSY || w->pid != reqs[i].pid || w->task_id != reqs[i].id)
                continue;
            log_info("task %lld cancelled: killing worker %ld", (long long)w->task_id,
                     (long)w->pid);
            u = pool_usage_of_run(w);
            pool_kill(w, "killed");
            pool_set_state(w, SLOT_EXITING, 0);   /* the engine has settled it */
            found = true;
        }
        engine_task_usage(reqs[i].id, found ? &u : NULL);
    }
    free(reqs);
}

static void pool_do_timeouts(int64_t now)
{
    char msg[160];

    for (int i = 0; i < pool.nslots; i++) {
        struct pool_worker *w = &pool.slots[i];
        if (w->state != SLOT_BUSY || w->deadline == 0 || now < w->deadline)
            continue;
        int64_t id = w->task_id;
        log_info("task %lld timed out: killing worker %ld", (long long)id, (long)w->pid);
        snprintf(msg, sizeof msg, "timed out; worker %ld and everything it started were killed",
                 (long)w->pid);
        struct task_usage u = pool_usage_of_run(w);
        pool_kill(w, "killed");
        engine_task_aborted(id, w->pid, TASK_TIMED_OUT, false, "timed_out", msg, &u);
        pool_set_state(w, SLOT_EXITING, 0);
    }
}

static int pool_active(void)
{
    int n = 0;
    for (int i = 0; i < pool.nslots; i++)
        n += pool.slots[i].state != SLOT_FREE && pool.slots[i].state != SLOT_EXITING;
    return n;
}

/*
 * Gives each idle worker the next ready task.  The start is journaled first,
 * so that a crash between sending and committing still counts the run.
 */
static void pool_dispatch(int64_t now)
{
    struct engine_dispatch d;

    if (now < pool.next_dispatch_at)
        return;
    for (int i = 0; i < pool.nslots; i++) {
        struct pool_worker *w = &pool.slots[i];
        if (w->state != SLOT_IDLE)
            continue;
        if (!engine_next_task(w->pid, w->ppid, &d))
            break;
        if (journal_append(pool.journal, d.id, d.attempt, d.seq) < 0) {
            /* A start we cannot record must not happen (a crash would run it
             * again uncounted).  The worker is fine; the disk is not: wait. */
            engine_task_unstart(d.id, w->pid);
            free(d.payload);
            pool.next_dispatch_at = now + POOL_JOURNAL_RETRY_MS;
            break;
        }
        w->deadline = d.timeout_ms > 0 ? now + d.timeout_ms : 0;
        pool_set_state(w, SLOT_BUSY, d.id);
        struct chan_part part = { d.payload, d.payload_len };
        if (chan_send(w->fd, CHAN_MSG_TASK, d.id, &part, 1) < 0) {
            log_warn("worker %ld: cannot start task %lld: %s", (long)w->pid, (long long)d.id,
                     strerror(errno));
            engine_task_unstart(d.id, w->pid);   /* it never ran: the attempt does not count */
            pool_kill(w, NULL);
            pool_set_state(w, SLOT_EXITING, 0);
        }
        free(d.payload);
    }
    journal_committed(pool.journal, engine_committed_seq());
}

/*
 * Milliseconds until the next thing the loop must do by itself.  While
 * stopping nothing is spawned, so a pool below its size is no reason to wake.
 */
static int pool_timeout(int64_t now, bool spawning)
{
    int64_t next = now + 1000;
    bool short_handed = spawning && pool_active() < pool.cfg->workers;

    if (short_handed && now >= pool.next_spawn_at)
        return 0;
    for (int i = 0; i < pool.nslots; i++)
        if (pool.slots[i].state == SLOT_BUSY && pool.slots[i].deadline > 0 &&
            pool.slots[i].deadline < next)
            next = pool.slots[i].deadline;
    if (short_handed && pool.next_spawn_at > now && pool.next_spawn_at < next)
        next = pool.next_spawn_at;
    return next > now ? (int)(next - now) : 0;
}

static void pool_drain_fd(int fd, size_t size)
{
    char buf[sizeof(struct signalfd_siginfo) * 16];
    while (read(fd, buf, size < sizeof buf ? size : sizeof buf) > 0)
        ;
}

/* Waits up to timeout_ms for channels, wake-ups and SIGCHLD, and handles them. */
static void pool_poll(int timeout_ms)
{
    struct epoll_event evs[64];
    int n = epoll_wait(pool.epfd, evs, 64, timeout_ms);

    for (int i = 0; i < n; i++) {
        uint32_t k = evs[i].data.u32;
        if (k == POOL_EV_WAKE)
            pool_drain_fd(pool.evfd, sizeof(uint64_t));
        else if (k == POOL_EV_SIGNAL)
            pool_drain_fd(pool.sigfd, sizeof(struct signalfd_siginfo) * 16);
        else
            pool_on_readable(&pool.slots[k]);
    }
}

/*
 * The graceful stop, run by the dispatcher: running tasks may finish until
 * grace_until (timeouts and cancels still apply), then are killed; idle
 * workers are told to exit.  Returns when every worker is reaped.
 */
static void pool_run_stop(void)
{
    int64_t now, kill_at = 0;

    for (;;) {
        int busy = 0, alive = 0, wait;
        now = pool_now();
        pool_reap(now);
        pool_do_cancels();
        pool_do_timeouts(now);
        for (int i = 0; i < pool.nslots; i++) {
            struct pool_worker *w = &pool.slots[i];
            if (w->state == SLOT_FREE)
                continue;
            alive++;
            if (w->state == SLOT_BUSY) {
                busy++;
                if (now >= pool.grace_until) {
                    int64_t id = w->task_id;
                    log_warn("task %lld still running after the grace period: killing worker %ld",
                             (long long)id, (long)w->pid);
                    struct task_usage u = pool_usage_of_run(w);
                    pool_kill(w, "shutdown");
                    engine_task_aborted(id, w->pid, TASK_FAILED, true, "interrupted",
                                        "taskpoold stopped and the grace period ran out", &u);
                    pool_set_state(w, SLOT_EXITING, 0);
                }
            } else if (w->state != SLOT_EXITING) {
                w->exit_reason = "shutdown";
                pool_close_channel(w);
                pool_set_state(w, SLOT_EXITING, 0);
            }
        }
        if (alive == 0)
            return;
        if (busy == 0 && kill_at == 0)
            kill_at = now + POOL_STOP_WAIT_MS;
        if (kill_at > 0 && now >= kill_at) {
            for (int i = 0; i < pool.nslots; i++)
                if (pool.slots[i].state != SLOT_FREE) {
                    log_warn("worker %ld did not exit: killed", (long)pool.slots[i].pid);
                    kill(-pool.slots[i].pid, SIGKILL);
                }
            kill_at = now + POOL_STOP_WAIT_MS;
        }
        wait = pool_timeout(now, false);
        pool_poll(wait < 50 ? wait : 50);
    }
}

static void *pool_main(void *unused)
{
    (void)unused;
    for (;;) {
        int64_t now = pool_now();
        bool stop;

        pool_poll(pool_timeout(now, true));
        now = pool_now();
        pool_reap(now);
        pool_do_cancels();
        pool_do_timeouts(now);
        pthread_mutex_lock(&pool.lock);
        stop = pool.stop;
        pthread_mutex_unlock(&pool.lock);
        if (stop)
            break;
        while (pool_active() < pool.cfg->workers && now >= pool.next_spawn_at)
            if (pool_spawn(now) < 0) {
                pool.next_spawn_at = now + 1000;
                break;
            }
        pool_dispatch(now);
        pool_record_progress(now);
    }
    pool_run_stop();
    return NULL;
}

int pool_start(const struct config *cfg)
{
    sigset_t chld;
    struct epoll_event ev = { .events = EPOLLIN };

    pool.cfg = cfg;
    pool.journal = journal_open(cfg->db_path);
    if (pool.journal == NULL)
        return -1;
    pool.nslots = cfg->workers * 2 + 4;   /* room for replacements while the dead await reaping */
    if (pool.nslots > POOL_SLOTS_MAX) {
        log_error("%d workers: at most %d", cfg->workers, POOL_WORKERS_MAX);
        goto fail;
    }
    pool.slots = calloc((size_t)pool.nslots, sizeof *pool.slots);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pool.epfd = epoll_create1(EPOLL_CLOEXEC);
    pool.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pool.sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (pool.slots == NULL || pool.epfd < 0 || pool.evfd < 0 || pool.sigfd < 0)
        goto fail_errno;
    ev.data.u32 = POOL_EV_WAKE;
    if (epoll_ctl(pool.epfd, EPOLL_CTL_ADD, pool.evfd, &ev) < 0)
        goto fail_errno;
    ev.data.u32 = POOL_EV_SIGNAL;
    if (epoll_ctl(pool.epfd, EPOLL_CTL_ADD, pool.sigfd, &ev) < 0)
        goto fail_errno;
    if (pthread_create(&pool.thread, NULL, pool_main, NULL) != 0) {
        log_error("cannot start the dispatcher thread");
        goto fail;
    }
    pool.started = true;
    return 0;
fail_errno:
    log_error("cannot set up the pool: %s", strerror(errno));
fail:
    pool_close();
    return -1;
}

void pool_stop(int64_t grace_ms)
{
    if (!pool.started)
        return;
    engine_drain();
    pthread_mutex_lock(&pool.lock);
    pool.stop = true;
    pool.grace_until = pool_now() + grace_ms;
    pthread_mutex_unlock(&pool.lock);
    pool_wake();
    pthread_join(pool.thread, NULL);
    pool.started = false;
}

void pool_close(void)
{
    int evfd = __atomic_exchange_n(&pool.evfd, -1, __ATOMIC_ACQ_REL);

    if (evfd >= 0) close(evfd);
    if (pool.epfd >= 0) close(pool.epfd);
    if (pool.sigfd >= 0) close(pool.sigfd);
    pool.epfd = pool.sigfd = -1;
    journal_close(pool.journal);
    pool.journal = NULL;
    /* HTTP threads may still ask for stats (/metrics) until MHD stops. */
    pthread_mutex_lock(&pool.lock);
    free(pool.slots);
    pool.slots = NULL;
    pool.nslots = 0;
    free(pool.cancels);
    pool.cancels = NULL;
    pool.ncancels = pool.cancels_cap = 0;
    pthread_mutex_unlock(&pool.lock);
}

/* Resident memory of pid in KiB, or -1. */
static long pool_rss_kb(pid_t pid)
{
    char path[64];
    long size, resident = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* What other threads may read of a slot: the fields written under pool.lock. */
struct pool_view {
    pid_t           pid;
    enum pool_state state;
    int64_t         task_id;
    int64_t         started_at;
    int64_t         tasks_done;
};

/* On error obj may hold part of the answer; the caller drops it. */
int pool_describe(cJSON *obj)
{
    struct pool_view copy[POOL_SLOTS_MAX];
    cJSON *list, *p;
    int n = 0, busy = 0;
    char when[40];

    pthread_mutex_lock(&pool.lock);
    for (int i = 0; i < pool.nslots; i++) {
        const struct pool_worker *w = &pool.slots[i];
        if (w->state == SLOT_IDLE || w->state == SLOT_BUSY || w->state == SLOT_STARTING)
            copy[n++] = (struct pool_view){ w->pid, w->state, w->task_id, w->started_at,
                                            w->tasks_done };
    }
    pthread_mutex_unlock(&pool.lock);
    list = cJSON_AddArrayToObject(obj, "workers");
    if (list == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        cJSON *w = cJSON_CreateObject();
        long rss = pool_rss_kb(copy[i].pid);
        if (w == NULL || !cJSON_AddItemToArray(list, w)) {
            cJSON_Delete(w);
            return -1;
        }
        busy += copy[i].state == SLOT_BUSY;
        task_format_time(copy[i].started_at, when, sizeof when);
        if (!cJSON_AddNumberToObject(w, "pid", copy[i].pid) ||
            !cJSON_AddStringToObject(w, "state", copy[i].state == SLOT_BUSY ? "busy" : "idle") ||
            !(copy[i].task_id ? cJSON_AddNumberToObject(w, "task_id", (double)copy[i].task_id)
                              : cJSON_AddNullToObject(w, "task_id")) ||
            !cJSON_AddNumberToObject(w, "tasks_done", (double)copy[i].tasks_done) ||
            !cJSON_AddStringToObject(w, "started_at", when) ||
            !(rss >= 0 ? cJSON_AddNumberToObject(w, "rss_kb", (double)rss)
                       : cJSON_AddNullToObject(w, "rss_kb")))
            return -1;
    }
    p = cJSON_AddObjectToObject(obj, "pool");
    if (p == NULL || !cJSON_AddNumberToObject(p, "size", pool.cfg->workers) ||
        !cJSON_AddNumberToObject(p, "max_tasks_per_worker",
                                 (double)pool.cfg->max_tasks_per_worker) ||
        !cJSON_AddNumberToObject(p, "busy", busy) ||
        !cJSON_AddNumberToObject(p, "idle", n - busy) ||
        !cJSON_AddNumberToObject(p, "cpu_count", (double)sysconf(_SC_NPROCESSORS_ONLN)) ||
        !cJSON_AddNumberToObject(p, "daemon_pid", getpid()))
        return -1;
    return 0;
}

void pool_stats_get(struct pool_stats *out)
{
    pthread_mutex_lock(&pool.lock);
    *out = pool.stats;
    out->total = out->busy = out->idle = 0;
    for (int i = 0; i < pool.nslots; i++) {
        enum pool_state st = pool.slots[i].state;
        out->busy += st == SLOT_BUSY;
        out->idle += st == SLOT_IDLE || st == SLOT_STARTING;
    }
    out->total = out->busy + out->idle;
    pthread_mutex_unlock(&pool.lock);
}
