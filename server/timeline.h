/*
 * timeline.h - which worker ran what in the last minutes, kept in memory so
 * that the dashboard's Gantt chart starts with its history
 * (GET /api/v1/timeline) and the event stream carries it on from there.
 */
#ifndef TASKPOOL_TIMELINE_H
#define TASKPOOL_TIMELINE_H

#include <stdint.h>

struct task;
struct store_worker;

#define TIMELINE_BUCKET_MS 50          /* tasks shorter than this are counted, not drawn */
#define TIMELINE_KEEP_S    300         /* the longest window that can be asked for */

/* A durable snapshot of a task (any status; only running and ended ones matter).  Any thread. */
void timeline_task(const struct task *t);

/* A worker's start or end, as recorded.  Any thread. */
void timeline_worker(const struct store_worker *w);

/*
 * The last `seconds` (1..TIMELINE_KEEP_S) as JSON text (caller frees), or
 * NULL when out of memory:
 *   {"now", "seconds", "bucket_ms",
 *    "workers": [{"pid", "started_at", "exited_at", "reason", "exit_code",
 *                 "exit_signal", "task": {"id", "kind", "started_at"} | null}],
 *    "bars":    [[id, pid, started_at, finished_at, status, kind], ...],
 *    "buckets": [[pid, first_start, last_end, n, succeeded, failed, timed_out,
 *                 cancelled, newest_id, newest_kind, newest_status], ...]}
 * Every worker alive in the window is listed; tasks of TIMELINE_BUCKET_MS or
 * more are bars, shorter ones are counted per worker and TIMELINE_BUCKET_MS.
 * Times are Unix milliseconds (a busy 5 minutes is tens of thousands of
 * entries: numbers keep it small).
 */
char *timeline_render(int64_t now_ms, int seconds);

#endif
