/*
 * stats.c - live figures (see stats.h).  One mutex guards everything here;
 * callers may hold the engine lock (never the other way round).
 */
#include "stats.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "kinds.h"
#include "pool.h"
#include "task.h"
#include "text.h"

#define STATS_RING     1000          /* finished tasks kept for percentiles */
#define STATS_PCT_S    60            /* percentiles are of tasks finished this recently */
#define STATS_RATE_S   10            /* throughput is the mean of this many whole seconds */
#define STATS_HISTORY  300           /* seconds of history */
#define STATS_HTTP_MAX 600

static const double stats_buckets[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1, 2.5, 5, 10, 30, 60, 300 };
#define STATS_NBUCKETS (sizeof stats_buckets / sizeof stats_buckets[0])

struct stats_hist {
    uint64_t counts[STATS_NBUCKETS + 1];   /* last one is +Inf */
    double   sum;
    uint64_t n;
};

struct stats_second {
    int64_t t;                             /* Unix ms of the second's start */
    int64_t finished, submitted, queue_depth;
};

static struct {
    pthread_mutex_t     lock;
    double              run_ms[STATS_RING], queue_ms[STATS_RING];
    int64_t             finished_at[STATS_RING];
    size_t              ring_len, ring_next;
    struct stats_hist   run_hist, queue_hist;
    struct stats_second history[STATS_HISTORY];
    size_t              hist_len, hist_next;
    struct stats_second current;
    int64_t             by_kind[KIND_MAX][TASK_STATUS_COUNT];   /* terminal, since start */
    uint64_t            http[STATS_HTTP_MAX];
} stats = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void stats_hist_add(struct stats_hist *h, double secs)
{
    size_t i = 0;
    while (i < STATS_NBUCKETS && secs > stats_buckets[i])
        i++;
    h->counts[i]++;
    h->sum += secs;
    h->n++;
}

/* Rolls the current second into the history when now has moved on.  Locked. */
static void stats_roll(int64_t now_ms, int64_t queue_depth)
{
    int64_t sec = now_ms / 1000 * 1000;

    if (stats.current.t == 0) {
        stats.current.t = sec;
        return;
    }
    while (stats.current.t < sec) {
        stats.current.queue_depth = queue_depth;
        stats.history[stats.hist_next] = stats.current;
        stats.hist_next = (stats.hist_next + 1) % STATS_HISTORY;
        if (stats.hist_len < STATS_HISTORY)
            stats.hist_len++;
        int64_t t = stats.current.t + 1000;
        memset(&stats.current, 0, sizeof stats.current);
        stats.current.t = t;
        if (sec - t > STATS_HISTORY * 1000LL)
            stats.current.t = sec;   /* a long idle gap: skip ahead */
    }
}

void stats_observe_task(const struct task *t, bool insert)
{
    int64_t now = task_now_ms();

    pthread_mutex_lock(&stats.lock);
    stats_roll(now, stats.current.queue_depth);
    if (insert)
        stats.current.submitted++;
    if (task_status_terminal(t->status)) {
        stats.current.finished++;
        const struct kind *table = kind_table(), *k = kind_find(t->kind);
        if (k != NULL)
            stats.by_kind[k - table][t->status]++;
        if (t->started_at > 0) {
            double run = (double)(t->finished_at - t->started_at);
            double wait = (double)(t->started_at - t->created_at);
            stats.run_ms[stats.ring_next] = run;
            stats.queue_ms[stats.ring_next] = wait;
            stats.finished_at[stats.ring_next] = t->finished_at;
            stats.ring_next = (stats.ring_next + 1) % STATS_RING;
            if (stats.ring_len < STATS_RING)
                stats.ring_len++;
            stats_hist_add(&stats.run_hist, run / 1000.0);
            stats_hist_add(&stats.queue_hist, wait / 1000.0);
        }
    }
    pthread_mutex_unlock(&stats.lock);
}

void stats_tick(int64_t now_ms, int64_t queue_depth)
{
    pthread_mutex_lock(&stats.lock);
    stats_roll(now_ms, queue_depth);
    stats.current.queue_depth = queue_depth;
    pthread_mutex_unlock(&stats.lock);
}

void stats_http(unsigned status)
{
    if (status < STATS_HTTP_MAX)
        __atomic_fetch_add(&stats.http[status], 1, __ATOMIC_RELAXED);
}

static int stats_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * Adds {"p50": x, "p95": y} of the values in ring v whose task finished at
 * or after since, nulls when there are none: an idle pool shows no stale
 * figures.  Locked.
 */
static int stats_percentiles(cJSON *obj, const char *name, const double *v, int64_t since)
{
    double sorted[STATS_RING];
    cJSON *o = cJSON_AddObjectToObject(obj, name);
    size_t n = 0;

    if (o == NULL)
        return -1;
    for (size_t i = 0; i < stats.ring_len; i++)
        if (stats.finished_at[i] >= since)
            sorted[n++] = v[i];
    if (n == 0)
        return cJSON_AddNullToObject(o, "p50") && cJSON_AddNullToObject(o, "p95") ? 0 : -1;
    qsort(sorted, n, sizeof *sorted, stats_cmp);
    /* Nearest rank: the smallest value with at least p% of values at or below it. */
    return cJSON_AddNumberToObject(o, "p50", sorted[(n * 50 + 99) / 100 - 1]) &&
           cJSON_AddNumberToObject(o, "p95", sorted[(n * 95 + 99) / 100 - 1]) ? 0 : -1;
}

int stats_json(cJSON *obj, const struct engine_stats *es, const struct pool_stats *ps)
{
    cJSON *counts, *workers, *hist;
    int64_t now = task_now_ms(), recent = 0;
    int rc = -1;

    counts = cJSON_AddObjectToObject(obj, "counts");
    if (counts == NULL)
        return -1;
    for (int i = 0; i < TASK_STATUS_COUNT; i++)
        if (!cJSON_AddNumberToObject(counts, task_status_name((enum task_status)i),
                                     (double)es->counts[i]))
            return -1;
    workers = cJSON_AddObjectToObject(obj, "workers");
    if (!cJSON_AddNumberToObject(obj, "queue_depth", (double)es->queue_depth) || workers == NULL ||
        !cJSON_AddNumberToObject(workers, "total", ps->total) ||
        !cJSON_AddNumberToObject(workers, "busy", ps->busy) ||
        !cJSON_AddNumberToObject(workers, "idle", ps->idle))
        return -1;

    pthread_mutex_lock(&stats.lock);
    stats_roll(now, es->queue_depth);
    for (size_t i = 0; i < stats.hist_len && i < STATS_RATE_S; i++)
        recent += stats.history[(stats.hist_next + STATS_HISTORY - 1 - i) % STATS_HISTORY].finished;
    size_t secs = stats.hist_len < STATS_RATE_S ? stats.hist_len : STATS_RATE_S;
    if (!cJSON_AddNumberToObject(obj, "throughput", secs ? (double)recent / (double)secs : 0) ||
        !cJSON_AddNumberToObject(obj, "throughput_window_s", STATS_RATE_S) ||
        stats_percentiles(obj, "run_ms", stats.run_ms, now - STATS_PCT_S * 1000) < 0 ||
        stats_percentiles(obj, "queue_ms", stats.queue_ms, now - STATS_PCT_S * 1000) < 0 ||
        !cJSON_AddNumberToObject(obj, "percentile_window_s", STATS_PCT_S))
        goto out;
    hist = cJSON_AddArrayToObject(obj, "history");
    if (hist == NULL)
        goto out;
    for (size_t i = 0; i < stats.hist_len; i++) {
        const struct stats_second *s =
            &stats.history[(stats.hist_next + STATS_HISTORY - stats.hist_len + i) % STATS_HISTORY];
        cJSON *e = cJSON_CreateObject();
        if (e == NULL || !cJSON_AddItemToArray(hist, e) ||
            !cJSON_AddNumberToObject(e, "t", (double)s->t) ||
            !cJSON_AddNumberToObject(e, "finished", (double)s->finished) ||
            !cJSON_AddNumberToObject(e, "submitted", (double)s->submitted) ||
            !cJSON_AddNumberToObject(e, "queue_depth", (double)s->queue_depth))
            goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&stats.lock);
    return rc;
}

static void stats_hist_print(struct text *b, const char *name, const char *help,
                             const struct stats_hist *h)
{
    uint64_t cum = 0;

    text_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < STATS_NBUCKETS; i++) {
        cum += h->counts[i];
        text_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, stats_buckets[i],
                    (unsigned long long)cum);
    }
    cum += h->counts[STATS_NBUCKETS];
    text_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->n);
}

char *stats_prometheus(const struct engine_stats *es, const struct pool_stats *ps,
                       size_t subscribers)
{
    struct text b;
    const struct kind *table = kind_table();

    text_init(&b, 8192);
    text_printf(&b, "# HELP taskpool_tasks Tasks in the database by kind and status.\n"
                     "# TYPE taskpool_tasks gauge\n");
    for (const struct kind *k = kind_table(); k->name != NULL; k++)
        for (int i = 0; i < TASK_STATUS_COUNT; i++)
            text_printf(&b, "taskpool_tasks{kind=\"%s\",status=\"%s\"} %lld\n", k->name,
                        task_status_name((enum task_status)i),
                        (long long)es->by_kind[k - kind_table()][i]);
    text_printf(&b, "# HELP taskpool_queue_depth Tasks ready to run, waiting for a worker.\n"
                     "# TYPE taskpool_queue_depth gauge\ntaskpool_queue_depth %lld\n",
                (long long)es->queue_depth);
    text_printf(&b, "# HELP taskpool_workers Worker processes by state.\n"
                     "# TYPE taskpool_workers gauge\n"
                     "taskpool_workers{state=\"busy\"} %d\ntaskpool_workers{state=\"idle\"} %d\n",
                ps->busy, ps->idle);
    text_printf(&b, "# HELP taskpool_worker_spawns_total Worker processes started.\n"
                     "# TYPE taskpool_worker_spawns_total counter\n"
                     "taskpool_worker_spawns_total %lld\n"
                     "# HELP taskpool_worker_restarts_total Workers that died unplanned and were replaced.\n"
                     "# TYPE taskpool_worker_restarts_total counter\n"
                     "taskpool_worker_restarts_total %lld\n",
                (long long)ps->spawned, (long long)ps->restarts_unplanned);
    text_printf(&b, "# HELP taskpool_tasks_submitted_total Tasks accepted since start.\n"
                     "# TYPE taskpool_tasks_submitted_total counter\n"
                     "taskpool_tasks_submitted_total %lld\n",
                (long long)es->submitted);
    text_printf(&b, "# HELP taskpool_store_commits_total Transactions committed (group commit).\n"
                     "# TYPE taskpool_store_commits_total counter\ntaskpool_store_commits_total %lld\n"
                     "# HELP taskpool_store_rows_written_total Task and worker rows written.\n"
                     "# TYPE taskpool_store_rows_written_total counter\n"
                     "taskpool_store_rows_written_total %lld\n",
                (long long)es->write_batches, (long long)es->write_rows);
    text_printf(&b, "# HELP taskpool_event_subscribers Connected event-stream clients.\n"
                     "# TYPE taskpool_event_subscribers gauge\ntaskpool_event_subscribers %zu\n",
                subscribers);
    pthread_mutex_lock(&stats.lock);
    text_printf(&b, "# HELP taskpool_tasks_finished_total Tasks that ended since start, by kind "
                     "and status.\n# TYPE taskpool_tasks_finished_total counter\n");
    for (int k = 0; table[k].name != NULL; k++)
        for (int s = TASK_SUCCEEDED; s < TASK_STATUS_COUNT; s++)
            text_printf(&b, "taskpool_tasks_finished_total{kind=\"%s\",status=\"%s\"} %lld\n",
                        table[k].name, task_status_name((enum task_status)s),
                        (long long)stats.by_kind[k][s]);
    stats_hist_print(&b, "taskpool_task_run_seconds", "Time tasks ran, start to end.",
                     &stats.run_hist);
    stats_hist_print(&b, "taskpool_task_queue_seconds", "Time tasks waited, submit to start.",
                     &stats.queue_hist);
    pthread_mutex_unlock(&stats.lock);
    text_printf(&b, "# HELP taskpool_http_responses_total HTTP responses by status code.\n"
                     "# TYPE taskpool_http_responses_total counter\n");
    for (unsigned code = 100; code < STATS_HTTP_MAX; code++) {
        uint64_t n = __atomic_load_n(&stats.http[code], __ATOMIC_RELAXED);
        if (n > 0)
            text_printf(&b, "taskpool_http_responses_total{code=\"%u\"} %llu\n", code,
                        (unsigned long long)n);
    }
    return text_take(&b);
}
