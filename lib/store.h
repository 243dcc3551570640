/*
 * store.h - the SQLite record of tasks and workers.
 *
 * One write connection, used by a single thread (the engine's writer), which
 * batches many row writes into one transaction (group commit).  Reads go
 * through a small pool of read connections and may be called from any thread;
 * WAL mode lets them run while a write transaction is open.
 * Times are stored as integer Unix milliseconds.
 */
#ifndef TASKPOOL_STORE_H
#define TASKPOOL_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "task.h"

struct store;

/* A worker process as recorded in the workers table. */
struct store_worker {
    pid_t   pid;
    int64_t started_at;
    int64_t exited_at;             /* 0 = still running */
    int     exit_code;             /* -1 = none */
    int     exit_signal;           /* 0 = none */
    int64_t tasks_done;
    const char *exit_reason;       /* "retired", "died", "killed", "shutdown", or NULL */
};

struct store_filter {
    bool             has_status;
    enum task_status status;
    const char      *kind;         /* NULL = any */
    int64_t          before;       /* 0 = from the newest; else ids < before */
    int              limit;
};

/*
 * Opens (creating or migrating) the database at path.  Commits use
 * synchronous=NORMAL: once store_commit returns, the transaction survives a
 * crash of this process, not yet a power cut.  store_sync makes every commit
 * so far survive power loss too; with sync_full false it does nothing
 * (--sync normal).  Returns the store, or NULL after logging why.
 */
struct store *store_open(const char *path, bool sync_full);

/*
 * Flushes the WAL to stable storage, so every transaction committed before
 * the call survives power loss (what synchronous=FULL does at each commit,
 * done once for many).  Any thread: it uses a descriptor of its own.  0, or
 * -1 with errno set (not logged: what a failure means is the caller's to say).
 */
int store_sync(struct store *st);

/* Closes every connection (checkpointing the WAL).  NULL is fine. */
void store_close(struct store *st);

/* Writer side: one thread only.  Each returns 0, or -1 after logging. */
int store_begin(struct store *st);
int store_commit(struct store *st);
int store_rollback(struct store *st);

/* Inserts or updates the whole row of t (kind/args/created_at only on insert). */
int store_put_task(struct store *st, const struct task *t);

/* Inserts or updates a worker row, keyed by (pid, started_at). */
int store_put_worker(struct store *st, const struct store_worker *w);

/*
 * Crash recovery, run once at start before anything else writes:
 * tasks left running go back to queued if attempts remain, else become failed
 * with code "interrupted"; workers left without an exit are closed as "lost".
 * Returns the number of tasks requeued (>= 0), or -1 after logging.
 */
int store_recover(struct store *st, int64_t now_ms);

/*
 * Recovery, before store_recover: task id was sent to a worker for its
 * attempt-th run (the dispatch journal says so).  If its row does not show
 * that yet, it is marked running with that attempt, so that store_recover
 * counts the run.  Run inside store_begin/store_commit.  0 / -1.
 */
int store_mark_dispatched(struct store *st, int64_t id, int attempt);

/*
 * Calls fn for every queued task, oldest first; fn takes ownership of the task.
 * Returns 0, or -1 after logging (or if fn returned -1).
 */
int store_load_queued(struct store *st, int (*fn)(struct task *t, void *arg), void *arg);

/* The largest task id ever used, 0 for an empty table; -1 on error. */
int64_t store_max_id(struct store *st);

/* Reader side: any thread. */

/* Loads one task.  Returns it (caller frees), or NULL if absent or on error (*found tells). */
struct task *store_get_task(struct store *st, int64_t id, bool *found);

/*
 * Calls fn for each task matching f, newest first, at most f->limit + 1 of
 * them (the extra one tells the caller that another page exists).  fn does not
 * own the task.  Returns the number of rows seen, or -1 after logging.
 */
int store_list_tasks(struct store *st, const struct store_filter *f,
                     int (*fn)(const struct task *t, void *arg), void *arg);

/*
 * Fills counts[TASK_STATUS_COUNT] with the number of tasks in each status,
 * of one kind or (kind NULL) of all.  0 / -1.
 */
int store_count_by_status(struct store *st, const char *kind, int64_t counts[TASK_STATUS_COUNT]);

#endif
