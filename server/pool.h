/*
 * pool.h - the prefork worker pool: spawns worker processes (fork+exec of
 * this binary), keeps the pool full, hands them tasks over their channels,
 * enforces timeouts, kills on cancel, reaps and replaces.
 */
#ifndef TASKPOOL_POOL_H
#define TASKPOOL_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct cJSON;

#define POOL_WORKERS_MAX 256       /* --workers; the scoreboard has 2x + 4 slots */

/* Named exit codes of a worker process. */
enum worker_exit {
    WORKER_EXIT_OK = 0,            /* channel closed: retired or shutdown */
    WORKER_EXIT_FATAL = 3,         /* cannot work (bad setup, broken channel): back off */
    WORKER_EXIT_ORPHAN = 4,        /* the daemon is gone */
};

/*
 * Starts the dispatcher thread, which spawns cfg->workers workers.
 * SIGCHLD must be blocked in every thread (main does it first).  0 / -1.
 */
int  pool_start(const struct config *cfg);

/*
 * Graceful stop: no new dispatch, running tasks get grace_ms to finish, then
 * their workers are killed and the tasks requeued or failed ("interrupted");
 * then every worker is stopped and reaped.
 */
void pool_stop(int64_t grace_ms);

/* Frees what pool_start made.  After pool_stop, once no thread calls the pool. */
void pool_close(void);

/* New tasks are ready.  Any thread; cheap. */
void pool_wake(void);

/* Kills worker pid if it is still running task id (a cancel).  Any thread. */
void pool_cancel(pid_t pid, int64_t id);

/* Adds {"workers": [...], "pool": {...}} to obj, for GET /api/v1/workers.  0 / -1. */
int  pool_describe(struct cJSON *obj);

/* Counts for /api/v1/stats and /metrics. */
struct pool_stats {
    int     total, busy, idle;
    int64_t spawned, restarts_unplanned;
};
void pool_stats_get(struct pool_stats *out);

/* The worker process's main (taskpoold --worker ...).  Returns its exit code. */
int  worker_main(int argc, char **argv);

#endif
