/*
 * timeline.c - the recent history of the pool, for the Gantt chart (see
 * timeline.h).
 *
 * DESIGN
 * Three rings, each overwriting its oldest entry when full, so memory is
 * fixed (about 5 MB) whatever the load: lanes (one per worker process, in
 * spawn order), bars (tasks long enough to draw one by one) and buckets
 * (counts of short tasks per worker and TIMELINE_BUCKET_MS, which at
 * thousands of tasks a second is what can be drawn anyway).  A ring entry is
 * named by its sequence number; entry seq lives at seq % size while it is
 * among the newest `size`.  A lane is found from its pid through an idmap of
 * pid -> lane seq + 1; a lane remembers its running task and its newest
 * bucket, since a worker runs one task at a time and finishes them in order.
 *
 * Threads.  The engine's syncer feeds it (timeline_task, timeline_worker)
 * with every durable change, in order; HTTP threads render.  One mutex,
 * tl.lock, guards everything; rendering copies what the window holds under
 * it and formats the text after, so the syncer waits for a memcpy at most.
 */
#include "timeline.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "store.h"
#include "task.h"
#include "text.h"

#define TL_LANES   4096
#define TL_BARS    16384
#define TL_BUCKETS 65536

struct tl_lane {
    pid_t    pid;
    int64_t  started_at, exited_at;        /* 0 = unknown / alive */
    int      exit_code, exit_signal;       /* -1 / 0 = none */
    const char *reason;                    /* a literal from the pool, or NULL */
    int64_t  task_id, task_started;        /* its running task; 0 = idle */
    char     task_kind[TASK_KIND_MAX + 1];
    uint64_t last_bucket;                  /* seq + 1 of its newest bucket; 0 = none */
};

struct tl_bar {
    int64_t id, s, e;
    pid_t   pid;
    enum task_status status;
    char    kind[TASK_KIND_MAX + 1];
};

enum { TL_SUCCEEDED, TL_FAILED, TL_TIMED_OUT, TL_CANCELLED, TL_OUTCOMES };

struct tl_bucket {
    pid_t   pid;
    int32_t n, counts[TL_OUTCOMES];
    int64_t k;                             /* start time / TIMELINE_BUCKET_MS */
    int64_t s, e, newest_id;
    enum task_status newest_status;        /* the newest task's, for the tooltip */
    char    newest_kind[TASK_KIND_MAX + 1];
};

static struct {
    pthread_mutex_t  lock;
    struct tl_lane   lanes[TL_LANES];
    struct tl_bar    bars[TL_BARS];
    struct tl_bucket buckets[TL_BUCKETS];
    uint64_t         nlanes, nbars, nbuckets;   /* entries ever added */
    struct idmap     by_pid;                    /* pid -> lane seq + 1 */
} tl = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The lane of pid, or NULL.  Locked. */
static struct tl_lane *tl_lane_of(pid_t pid)
{
    uintptr_t ref = (uintptr_t)idmap_get(&tl.by_pid, pid);
    uint64_t seq;

    if (ref == 0)
        return NULL;
    seq = ref - 1;
    if (tl.nlanes - seq > TL_LANES || tl.lanes[seq % TL_LANES].pid != pid)
        return NULL;                       /* overwritten since */
    return &tl.lanes[seq % TL_LANES];
}

/* A new lane for pid (a pid may come back: the new process gets a new lane).  Locked. */
static struct tl_lane *tl_lane_new(pid_t pid, int64_t started_at)
{
    uint64_t seq = tl.nlanes;
    struct tl_lane *l = &tl.lanes[seq % TL_LANES];

    if (seq >= TL_LANES && tl_lane_of(l->pid) == l)
        idmap_del(&tl.by_pid, l->pid);     /* the lane this one overwrites */
    if (idmap_put(&tl.by_pid, pid, (void *)(uintptr_t)(seq + 1)) < 0)
        return NULL;
    memset(l, 0, sizeof *l);
    l->pid = pid;
    l->started_at = started_at;
    l->exit_code = -1;
    tl.nlanes++;
    return l;
}

static int tl_outcome(enum task_status st)
{
    switch (st) {
    case TASK_SUCCEEDED: return TL_SUCCEEDED;
    case TASK_TIMED_OUT: return TL_TIMED_OUT;
    case TASK_CANCELLED: return TL_CANCELLED;
    default:             return TL_FAILED;
    }
}

/* Records a run that ended on lane l.  Locked. */
static void tl_add_run(struct tl_lane *l, int64_t id, const char *kind, int64_t s, int64_t e,
                       enum task_status st)
{
    if (e - s >= TIMELINE_BUCKET_MS) {
        struct tl_bar *b = &tl.bars[tl.nbars++ % TL_BARS];
        *b = (struct tl_bar){ id, s, e, l->pid, st, "" };
        snprintf(b->kind, sizeof b->kind, "%s", kind);
        return;
    }
    int64_t k = s / TIMELINE_BUCKET_MS;
    struct tl_bucket *u = NULL;
    if (l->last_bucket != 0 && tl.nbuckets - (l->last_bucket - 1) <= TL_BUCKETS) {
        u = &tl.buckets[(l->last_bucket - 1) % TL_BUCKETS];
        if (u->pid != l->pid || u->k != k)
            u = NULL;
    }
    if (u == NULL) {
        l->last_bucket = tl.nbuckets + 1;
        u = &tl.buckets[tl.nbuckets++ % TL_BUCKETS];
        *u = (struct tl_bucket){ .pid = l->pid, .k = k, .s = s, .e = e };
    }
    u->n++;
    u->counts[tl_outcome(st)]++;
    if (s < u->s) u->s = s;
    if (e > u->e) u->e = e;
    if (id > u->newest_id) {
        u->newest_id = id;
        u->newest_status = st;
        snprintf(u->newest_kind, sizeof u->newest_kind, "%s", kind);
    }
}

void timeline_task(const struct task *t)
{
    struct tl_lane *l;

    pthread_mutex_lock(&tl.lock);
    if (t->status == TASK_RUNNING && t->worker_pid > 0) {
        l = tl_lane_of(t->worker_pid);
        if (l == NULL)
            l = tl_lane_new(t->worker_pid, 0);
        if (l != NULL) {
            l->task_id = t->id;
            l->task_started = t->started_at;
            snprintf(l->task_kind, sizeof l->task_kind, "%s", t->kind);
        }
    } else if (task_status_terminal(t->status) && t->worker_pid > 0 && t->started_at > 0) {
        l = tl_lane_of(t->worker_pid);
        if (l != NULL) {
            if (l->task_id == t->id)
                l->task_id = 0;
            tl_add_run(l, t->id, t->kind, t->started_at,
                       t->finished_at > t->started_at ? t->finished_at : t->started_at, t->status);
        }
    }
    pthread_mutex_unlock(&tl.lock);
}

void timeline_worker(const struct store_worker *w)
{
    struct tl_lane *l;

    pthread_mutex_lock(&tl.lock);
    l = tl_lane_of(w->pid);
    if (w->exited_at == 0) {
        if (l == NULL || l->started_at != w->started_at)
            tl_lane_new(w->pid, w->started_at);
    } else if (l != NULL) {
        l->exited_at = w->exited_at;
        l->exit_code = w->exit_code;
        l->exit_signal = w->exit_signal;
        l->reason = w->exit_reason;
        /* A task still on it did not end by itself (its end would have come
         * first): it went back to the queue when the worker died.  That run
         * failed. */
        if (l->task_id != 0) {
            tl_add_run(l, l->task_id, l->task_kind, l->task_started, w->exited_at, TASK_FAILED);
            l->task_id = 0;
        }
    }
    pthread_mutex_unlock(&tl.lock);
}

/* --- rendering --------------------------------------------------------- */

/* Appends ,"name":v, or ,"name":null when v is not known. */
static void tl_num(struct text *x, const char *name, bool known, int64_t v)
{
    if (known)
        text_printf(x, ",\"%s\":%lld", name, (long long)v);
    else
        text_printf(x, ",\"%s\":null", name);
}

/* The sequence number of the oldest entry still in a ring of size slots. */
static uint64_t tl_first(uint64_t added, uint64_t size)
{
    return added > size ? added - size : 0;
}

char *timeline_render(int64_t now_ms, int seconds)
{
    struct text x = { 0 };
    struct tl_lane *lanes = malloc(sizeof tl.lanes);
    struct tl_bar *bars = malloc(sizeof tl.bars);
    struct tl_bucket *buckets = malloc(sizeof tl.buckets);
    size_t nl = 0, nb = 0, nu = 0;
    int64_t t0 = now_ms - (int64_t)seconds * 1000;

    if (lanes == NULL || bars == NULL || buckets == NULL)
        goto out;
    pthread_mutex_lock(&tl.lock);
    for (uint64_t seq = tl_first(tl.nlanes, TL_LANES); seq < tl.nlanes; seq++) {
        const struct tl_lane *l = &tl.lanes[seq % TL_LANES];
        if (l->exited_at == 0 || l->exited_at >= t0)
            lanes[nl++] = *l;
    }
    for (uint64_t seq = tl_first(tl.nbars, TL_BARS); seq < tl.nbars; seq++)
        if (tl.bars[seq % TL_BARS].e >= t0)
            bars[nb++] = tl.bars[seq % TL_BARS];
    for (uint64_t seq = tl_first(tl.nbuckets, TL_BUCKETS); seq < tl.nbuckets; seq++)
        if (tl.buckets[seq % TL_BUCKETS].e >= t0)
            buckets[nu++] = tl.buckets[seq % TL_BUCKETS];
    pthread_mutex_unlock(&tl.lock);

    text_init(&x, 4096 + nl * 200 + nb * 80 + nu * 80);
    text_printf(&x, "{\"now\":%lld,\"seconds\":%d,\"bucket_ms\":%d,\"workers\":[",
                (long long)now_ms, seconds, TIMELINE_BUCKET_MS);
    for (size_t i = 0; i < nl; i++) {
        const struct tl_lane *l = &lanes[i];
        text_printf(&x, "%s{\"pid\":%d", i ? "," : "", (int)l->pid);
        tl_num(&x, "started_at", l->started_at > 0, l->started_at);
        tl_num(&x, "exited_at", l->exited_at > 0, l->exited_at);
        if (l->reason != NULL)
            text_printf(&x, ",\"reason\":\"%s\"", l->reason);
        else
            text_printf(&x, ",\"reason\":null");
        tl_num(&x, "exit_code", l->exited_at > 0 && l->exit_code >= 0, l->exit_code);
        tl_num(&x, "exit_signal", l->exit_signal > 0, l->exit_signal);
        if (l->task_id > 0 && l->exited_at == 0)
            text_printf(&x, ",\"task\":{\"id\":%lld,\"kind\":\"%s\",\"started_at\":%lld}}",
                        (long long)l->task_id, l->task_kind, (long long)l->task_started);
        else
            text_printf(&x, ",\"task\":null}");
    }
    text_printf(&x, "],\"bars\":[");
    for (size_t i = 0; i < nb; i++)
        text_printf(&x, "%s[%lld,%d,%lld,%lld,\"%s\",\"%s\"]", i ? "," : "", (long long)bars[i].id,
                    (int)bars[i].pid, (long long)bars[i].s, (long long)bars[i].e,
                    task_status_name(bars[i].status), bars[i].kind);
    text_printf(&x, "],\"buckets\":[");
    for (size_t i = 0; i < nu; i++) {
        const struct tl_bucket *u = &buckets[i];
        text_printf(&x, "%s[%d,%lld,%lld,%d,%d,%d,%d,%d,%lld,\"%s\",\"%s\"]", i ? "," : "",
                    (int)u->pid, (long long)u->s, (long long)u->e, u->n, u->counts[TL_SUCCEEDED],
                    u->counts[TL_FAILED], u->counts[TL_TIMED_OUT], u->counts[TL_CANCELLED],
                    (long long)u->newest_id, u->newest_kind, task_status_name(u->newest_status));
    }
    text_printf(&x, "]}");
out:
    free(lanes);
    free(bars);
    free(buckets);
    return text_take(&x);
}
