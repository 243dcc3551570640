/*
 * engine.h - the life of a task inside the daemon: submission, the ready
 * queue, state changes reported by the pool, cancel, long-poll waits, and the
 * writer thread that group-commits every change to SQLite before anyone is
 * told about it.
 */
#ifndef TASKPOOL_ENGINE_H
#define TASKPOOL_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "kinds.h"
#include "store.h"
#include "task.h"

struct cJSON;

/*
 * Called once, without engine locks held, when an asynchronous request is
 * answered: from the syncer once the change is on disk, from the writer when
 * a wait times out or a write failed (ok=false), or at engine_stop.
 */
typedef void (*engine_done_fn)(void *arg, bool ok);

enum engine_result { ENGINE_OK = 0, ENGINE_PENDING, ENGINE_NOT_FOUND, ENGINE_CONFLICT,
                     ENGINE_ERROR };

/* Opens the store, recovers from a crash, loads the queue, starts the writer.  0 / -1. */
int  engine_start(const struct config *cfg);

/* Flushes every pending write, answers every waiter, stops the writer.  No more writes after. */
void engine_stop(void);

/* Closes the store and frees every task.  After engine_stop and once HTTP is stopped. */
void engine_close(void);

/* From now on no task is handed to a worker (graceful shutdown). */
void engine_drain(void);

/*
 * Accepts a new task (takes ownership).  done is called once the row is
 * committed; with wait_until > 0 (task_mono_ms) only once the task is terminal or
 * that time has come, whichever is first.  Returns the task id (> 0), or -1
 * (the task is freed and done is never called).
 */
int64_t engine_submit(struct task *t, int64_t wait_until, engine_done_fn done, void *arg);

/*
 * Long-poll: ENGINE_OK if the task is terminal already, ENGINE_NOT_FOUND, or
 * ENGINE_PENDING: done will be called when it is terminal or at wait_until.
 */
enum engine_result engine_wait(int64_t id, int64_t wait_until, engine_done_fn done, void *arg);

/*
 * Cancels a task: ENGINE_PENDING (done is called once the cancel is
 * committed; a running task's worker is killed), ENGINE_NOT_FOUND,
 * ENGINE_CONFLICT (already terminal), or ENGINE_ERROR.
 */
enum engine_result engine_cancel(int64_t id, engine_done_fn done, void *arg);

/*
 * The task's API object as last committed (what a list shows too).  NULL with
 * *found=false if absent.
 */
struct cJSON *engine_task_json(int64_t id, bool with_payload, bool *found);

/*
 * Fills a list response's "tasks" array (newest first) with task objects
 * without args and result, and returns the id to
 * pass as before= for the next page, 0 if this is the last one, -1 on error.
 */
int64_t engine_list(const struct store_filter *f, struct cJSON *array);

/* Pool side.  The pool refers to tasks by id and never holds a task pointer. */

struct engine_dispatch {
    int64_t id;
    int     attempt;               /* which run this is (1 = first) */
    uint64_t seq;                  /* of the op that commits the start: for the journal */
    int64_t timeout_ms;            /* 0 = none */
    char   *payload;               /* "kind\0args": the TASK frame, malloc'd */
    size_t  payload_len;
};

/*
 * Takes the next ready task for worker pid and marks it running.  1 = got one,
 * 0 = none.  The pool journals the start (journal.h) before sending it.
 */
int  engine_next_task(pid_t pid, pid_t ppid, struct engine_dispatch *out);

/* Every op up to this sequence number is committed. */
uint64_t engine_committed_seq(void);

/* The task never reached its worker: back to the queue, the attempt not counted. */
void engine_task_unstart(int64_t id, pid_t pid);

/* The worker finished the task.  Ignored if the task was cancelled meanwhile. */
void engine_task_finished(int64_t id, pid_t pid, bool ok, const char *result, size_t result_len,
                          const char *code, size_t code_len, const char *message,
                          size_t message_len, const struct task_usage *usage);

/*
 * The task's run ended without a result: status is TASK_TIMED_OUT (final),
 * or TASK_FAILED, in which case it is queued again if attempts remain
 * (retry=true) and otherwise fails with code and message.  usage is what
 * the run used as far as the pool could tell; it is kept if the run was the
 * last (usage->set false: unknown).
 */
void engine_task_aborted(int64_t id, pid_t pid, enum task_status status, bool retry,
                         const char *code, const char *message, const struct task_usage *usage);

/*
 * The pool's answer to pool_cancel(pid, id): what the cancelled run had used
 * when its worker was killed, or NULL if it was not running there any more.
 * Called exactly once per pool_cancel.
 */
void engine_task_usage(int64_t id, const struct task_usage *usage);

/*
 * Records a worker's row: its start or end (announce: an event says so too),
 * or how many tasks it has done so far (announce=false).
 */
void engine_worker_record(const struct store_worker *w, bool announce);

/* False while writes to the database fail (new tasks are refused meanwhile). */
bool engine_writing(void);

/* Counters for /api/v1/stats and /metrics. */
struct engine_stats {
    int64_t counts[TASK_STATUS_COUNT];   /* every task ever, by status */
    int64_t by_kind[KIND_MAX][TASK_STATUS_COUNT];   /* the same, by index in kind_table() */
    int64_t queue_depth;                 /* ready to run */
    int64_t submitted;                   /* since start */
    int64_t write_batches;
    int64_t write_rows;
};
void engine_stats_get(struct engine_stats *out);

#endif
