/*
 * engine.c - the life of a task inside the daemon (see engine.h).
 *
 * DESIGN
 * One mutex, engine.lock, guards every in-memory task: the live table (every
 * task that is not yet terminal-and-committed), the ready queue, the pending
 * write ops, the waiters and the counters.  Critical sections are short and
 * never do I/O.  Four kinds of threads come in:
 *   - HTTP threads submit, cancel, wait and read;
 *   - the pool's dispatcher thread takes ready tasks and reports outcomes;
 *   - the writer thread (here) owns the SQLite write connection;
 *   - the syncer thread (here) makes committed batches survive power loss.
 * Every state change appends an op holding a snapshot of the task row.  The
 * writer takes all ops at once and writes them in one transaction (group
 * commit); the syncer fdatasyncs the WAL once for every batch committed
 * meanwhile and only then acts on them: a new task enters the ready queue, a
 * submitter hears "201", a waiter hears "terminal", events and the timeline
 * are fed.  So no new task is run and nothing is reported that is not on
 * disk.  The one exception is a retry (its worker died): it is queued again
 * at once, because its row is on disk already, and its new start is in the
 * dispatch journal before it runs.  Within one batch only the newest
 * snapshot of a task is written; it holds the whole row, so skipping older
 * ones loses nothing (each is still an event).
 * Snapshots borrow the task's strings, which never change once set; a task
 * is freed only when it is terminal and no op refers to it.
 * Readers (GET, lists) see only committed rows: a live task carries a copy
 * of its last committed row, so a task and a list of tasks never disagree.
 * Callbacks (which resume HTTP connections) run without the lock held.
 */
#include "engine.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "idmap.h"
#include "journal.h"
#include "kinds.h"
#include "log.h"
#include "pool.h"
#include "queue.h"
#include "stats.h"
#include "timeline.h"

struct engine_waiter {
    struct engine_waiter *prev, *next;   /* all waiters, for deadlines */
    struct engine_waiter *task_next;     /* waiters of the same task */
    struct engine_live   *live;
    int64_t               until;
    engine_done_fn        done;
    void                 *arg;
};

/* A task in flight and what the engine knows of it beyond the row. */
struct engine_live {
    struct task          *t;
    const struct kind    *kind;          /* t's, looked up once; NULL for one unknown here */
    uint64_t              op_seq;        /* seq of its newest op */
    int                   pending;       /* ops not yet committed */
    int                   refs;          /* ops not yet freed */
    bool                  removed;       /* out of the live table: freed with its last op */
    bool                  dropped;       /* its first write failed: never accepted */
    bool                  in_queue;      /* in the ready queue */
    bool                  inserted;      /* its row has been committed once */
    bool                  ended;         /* an op of it made it terminal */
    bool                  held;          /* cancelled while running: kept until the pool
                                          * reports the kill (with the run's usage) */
    struct task           shown;         /* the row as last committed: what readers see */
    struct engine_waiter *waiters;
};

enum engine_op_type { ENGINE_OP_TASK, ENGINE_OP_WORKER };

struct engine_op {
    struct engine_op   *next;
    enum engine_op_type type;
    uint64_t            seq;
    bool                skip;            /* a newer op of the same task is in the batch */
    bool                insert;          /* the task's first op */
    bool                ended;           /* the op that made the task terminal */
    struct engine_live *live;
    struct task         snap;            /* borrows live->t's strings */
    struct store_worker worker;
    bool                announce;        /* a worker op the event stream shows */
    engine_done_fn      done;
    void               *arg;
    int64_t             wait_until;      /* insert: then wait for terminal */
};

struct engine_batch {                    /* committed, waiting for the syncer */
    struct engine_batch *next;
    struct engine_op    *ops;
};

struct engine_call {
    engine_done_fn fn;
    void          *arg;
    bool           ok;
};

static struct {
    pthread_mutex_t       lock;
    pthread_cond_t        wake;          /* ops appended, or stop */
    pthread_cond_t        sync_wake;     /* a batch committed, or the writer is done */
    pthread_t             writer, syncer;
    bool                  writer_started, syncer_started;
    bool                  writer_done;
    struct engine_batch  *sync_head, *sync_tail;
    uint64_t              committed_seq; /* atomic: every op up to it is committed */
    bool                  stop;
    bool                  draining;
    struct store         *store;
    const struct config  *cfg;
    struct idmap          live;
    struct queue          ready;
    int64_t               next_id;
    uint64_t              next_seq;
    struct engine_op     *ops_head, *ops_tail;
    struct engine_waiter  waiters;       /* sentinel of the deadline list */
    int64_t               waiters_due;   /* no deadline is before this; 0 = no waiter */
    int                   write_failures;   /* consecutive failed writes; 0 = writing */
    struct engine_stats   stats;
} engine = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .sync_wake = PTHREAD_COND_INITIALIZER,
};

static int64_t engine_now(void)
{
    return task_now_ms();
}

/* Waiter deadlines are monotonic: a clock step must not stretch or cut a wait. */
static int64_t engine_mono(void)
{
    return task_mono_ms();
}

/* --- ops --------------------------------------------------------------- */

/* Gives op the next sequence number and queues it for the writer.  Locked. */
static void engine_op_append(struct engine_op *op)
{
    op->seq = ++engine.next_seq;
    if (engine.ops_tail)
        engine.ops_tail->next = op;
    else
        engine.ops_head = op;
    engine.ops_tail = op;
    pthread_cond_signal(&engine.wake);
}

/* Appends a snapshot of live's task.  Locked.  Returns 0, or -1 on ENOMEM. */
static int engine_op_task(struct engine_live *live, engine_done_fn done, void *arg,
                          int64_t wait_until, bool insert)
{
    struct engine_op *op = calloc(1, sizeof *op);

    if (op == NULL) {
        log_error("out of memory: task %lld not recorded", (long long)live->t->id);
        return -1;
    }
    op->type = ENGINE_OP_TASK;
    op->insert = insert;
    /* Later ops of an ended task (the usage of a cancelled run) change its
     * row, not its count: stats and the timeline take the end once. */
    op->ended = task_status_terminal(live->t->status) && !live->ended;
    live->ended |= op->ended;
    op->live = live;
    op->snap = *live->t;
    op->done = done;
    op->arg = arg;
    op->wait_until = wait_until;
    engine_op_append(op);
    live->op_seq = op->seq;
    live->pending++;
    live->refs++;
    return 0;
}

/* Counts live's task in status st, or (delta -1) no longer.  Locked. */
static void engine_count(const struct engine_live *live, enum task_status st, int delta)
{
    engine.stats.counts[st] += delta;
    if (live->kind != NULL)
        engine.stats.by_kind[live->kind - kind_table()][st] += delta;
}

static void engine_set_status(struct engine_live *live, enum task_status st)
{
    engine_count(live, live->t->status, -1);
    engine_count(live, st, 1);
    live->t->status = st;
}

/* --- waiters ----------------------------------------------------------- */

static void engine_waiter_unlink(struct engine_waiter *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
}

/* Registers a waiter on live.  Locked.  0 / -1. */
static int engine_waiter_add(struct engine_live *live, int64_t until, engine_done_fn done,
                             void *arg)
{
    struct engine_waiter *w = calloc(1, sizeof *w);

    if (w == NULL)
        return -1;
    w->live = live;
    w->until = until;
    w->done = done;
    w->arg = arg;
    w->task_next = live->waiters;
    live->waiters = w;
    if (engine.waiters_due == 0 || until < engine.waiters_due) {
        engine.waiters_due = until;
        pthread_cond_signal(&engine.wake);   /* the writer may be sleeping past it */
    }
    w->next = &engine.waiters;
    w->prev = engine.waiters.prev;
    engine.waiters.prev->next = w;
    engine.waiters.prev = w;
    return 0;
}

/* --- the call list: callbacks gathered under the lock, run after it ----- */

struct engine_calls {
    struct engine_call *v;
    size_t              len, cap;
};

static void engine_calls_add(struct engine_calls *c, engine_done_fn fn, void *arg, bool ok)
{
    if (fn == NULL)
        return;
    if (c->len == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 256;
        struct engine_call *nv = realloc(c->v, ncap * sizeof *nv);
        if (nv == NULL) {
            /* Cannot defer it: answering under the lock beats never answering. */
            fn(arg, ok);
            return;
        }
        c->v = nv;
        c->cap = ncap;
    }
    c->v[c->len++] = (struct engine_call){ fn, arg, ok };
}

static void engine_calls_run(struct engine_calls *c)
{
    for (size_t i = 0; i < c->len; i++)
        c->v[i].fn(c->v[i].arg, c->v[i].ok);
    c->len = 0;
}

/* Answers every waiter of live.  Locked. */
static void engine_waiters_wake(struct engine_live *live, struct engine_calls *calls)
{
    struct engine_waiter *w = live->waiters, *next;

    for (; w != NULL; w = next) {
        next = w->task_next;
        engine_waiter_unlink(w);
        engine_calls_add(calls, w->done, w->arg, true);
        free(w);
    }
    live->waiters = NULL;
}

/*
 * Answers waiters whose time has come; returns the earliest remaining
 * deadline (0 = none).  The list is walked only when a deadline may have
 * passed: the writer calls this once per batch, with any number of waiters.
 */
static int64_t engine_waiters_expire(int64_t now, struct engine_calls *calls)
{
    struct engine_waiter *w = engine.waiters.next, *next;
    int64_t earliest = 0;

    if (engine.waiters_due == 0 || now < engine.waiters_due)
        return engine.waiters_due;

    for (; w != &engine.waiters; w = next) {
        next = w->next;
        if (w->until > now) {
            if (earliest == 0 || w->until < earliest)
                earliest = w->until;
            continue;
        }
        struct engine_waiter **pp = &w->live->waiters;
        while (*pp != w)
            pp = &(*pp)->task_next;
        *pp = w->task_next;
        engine_waiter_unlink(w);
        engine_calls_add(calls, w->done, w->arg, true);
        free(w);
    }
    engine.waiters_due = earliest;
    return earliest;
}

/* --- the live table ---------------------------------------------------- */

static void engine_live_free(struct engine_live *live)
{
    task_free(live->t);
    free(live);
}

/* Pushes a committed queued task into the ready queue.  Locked.  true if pushed. */
static bool engine_enqueue(struct engine_live *live)
{
    if (live->in_queue || live->t->status != TASK_QUEUED || !live->inserted)
        return false;
    if (queue_push(&engine.ready, live->t->priority, live->t->id, live) < 0) {
        log_error("out of memory: task %lld stays queued until restart", (long long)live->t->id);
        return false;
    }
    live->in_queue = true;
    return true;
}

/* --- the writer thread ------------------------------------------------- */

/*
 * Flushes the WAL.  If the disk refuses, whether earlier commits are on it is
 * unknown, and retrying can report success falsely (the kernel may have
 * dropped the dirty pages): acknowledging anything more would be a guess.
 * Stop instead; at the next start, crash recovery works from what is on disk,
 * and nothing unacknowledged was promised.
 */
static void engine_sync_or_die(void)
{
    if (store_sync(engine.store) < 0) {
        log_error("cannot flush %s to disk (fdatasync: %s): stopping before acknowledging "
                  "anything more", engine.cfg->db_path, strerror(errno));
        abort();
    }
}

static int engine_write_batch(struct engine_op *batch, int64_t *rows)
{
    struct engine_op *op;

    *rows = 0;
    if (store_begin(engine.store) < 0)
        return -1;
    for (op = batch; op != NULL; op = op->next) {
        int rc = 0;
        if (op->skip)
            continue;
        if (op->type == ENGINE_OP_TASK)
            rc = store_put_task(engine.store, &op->snap);
        else
            rc = store_put_worker(engine.store, &op->worker);
        if (rc < 0) {
            store_rollback(engine.store);
            return -1;
        }
        (*rows)++;
    }
    if (store_commit(engine.store) < 0) {
        store_rollback(engine.store);
        return -1;
    }
    return 0;
}

/*
 * Publishes what an op made durable, for the stats, the timeline and, when
 * someone may be listening (events_wanted), the event stream.  Unlocked.
 */
static void engine_publish(const struct engine_op *op, bool events)
{
    cJSON *j;
    char *text;

    if (op->type == ENGINE_OP_TASK) {
        if (op->insert || op->ended || !task_status_terminal(op->snap.status)) {
            stats_observe_task(&op->snap, op->insert);
            timeline_task(&op->snap);
        }
        /* Even a snapshot the writer skipped (a newer one of the task was in
         * the batch) is a change someone may watch: created, started, ended. */
        if (!events)
            return;
        j = task_to_json(&op->snap, false);
    } else {
        if (op->announce)
            timeline_worker(&op->worker);
        if (!events || !op->announce)
            return;
        j = cJSON_CreateObject();
        if (j != NULL) {
            const struct store_worker *w = &op->worker;
            char when[40];
            cJSON_AddStringToObject(j, "event", w->exited_at ? "exited" : "spawned");
            cJSON_AddNumberToObject(j, "pid", w->pid);
            task_format_time(w->started_at, when, sizeof when);
            cJSON_AddStringToObject(j, "started_at", when);
            task_format_time(w->exited_at, when, sizeof when);
            if (w->exited_at) cJSON_AddStringToObject(j, "exited_at", when);
            else cJSON_AddNullToObject(j, "exited_at");
            cJSON_AddNumberToObject(j, "tasks_done", (double)w->tasks_done);
            if (w->exit_code >= 0) cJSON_AddNumberToObject(j, "exit_code", w->exit_code);
            else cJSON_AddNullToObject(j, "exit_code");
            if (w->exit_signal > 0) cJSON_AddNumberToObject(j, "exit_signal", w->exit_signal);
            else cJSON_AddNullToObject(j, "exit_signal");
            if (w->exit_reason) cJSON_AddStringToObject(j, "reason", w->exit_reason);
            else cJSON_AddNullToObject(j, "reason");
        }
    }
    if (j == NULL)
        return;
    text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (text != NULL)
        events_publish(op->type == ENGINE_OP_TASK ? "task" : "worker", text);
    free(text);
}

/* Takes a task out of the live table; it is freed with its last op.  Locked. */
static void engine_live_remove(struct engine_live *live, struct engine_calls *calls)
{
    live->removed = true;
    engine_waiters_wake(live, calls);
    if (live->in_queue) {
        queue_remove(&engine.ready, live->t->id);
        live->in_queue = false;
    }
    idmap_del(&engine.live, live->t->id);
}

/* Frees ops, and with its last op each task that left the live table.  Locked. */
static void engine_ops_free(struct engine_op *ops)
{
    while (ops != NULL) {
        struct engine_op *next = ops->next;
        if (ops->type == ENGINE_OP_TASK && --ops->live->refs == 0 && ops->live->removed)
            engine_live_free(ops->live);
        free(ops);
        ops = next;
    }
}

/*
 * The batch is committed: it survives a crash of this process, and readers
 * now see its rows.  Locked.
 */
static void engine_batch_committed(struct engine_op *batch)
{
    uint64_t seq = 0;

    for (struct engine_op *op = batch; op != NULL; op = op->next) {
        seq = op->seq > seq ? op->seq : seq;
        if (op->type != ENGINE_OP_TASK || op->live->dropped)
            continue;
        /* Ops come oldest first, so this leaves the newest committed row. */
        op->live->shown = op->snap;
        op->live->inserted = true;
    }
    /* Ops are taken in sequence order, so no older op is still unwritten. */
    if (seq > engine.committed_seq)
        __atomic_store_n(&engine.committed_seq, seq, __ATOMIC_RELEASE);
}

/*
 * The batch is on stable storage: now it may be acknowledged.  New tasks
 * enter the ready queue, submitters and cancellers are answered, waiters of
 * tasks that ended are woken, and ended tasks leave the live table.
 * Returns true if tasks became ready.  Locked.
 */
static bool engine_batch_synced(struct engine_op *batch, struct engine_calls *calls)
{
    struct engine_op *op;
    bool ready = false;
    int64_t now = engine_mono();

    for (op = batch; op != NULL; op = op->next) {
        struct engine_live *live = op->live;
        if (op->type != ENGINE_OP_TASK)
            continue;
        live->pending--;
        if (op->insert) {
            engine.stats.submitted++;
            ready |= engine_enqueue(live);
        }
        if (op->done == NULL)
            continue;
        if (op->wait_until > now && !task_status_terminal(live->t->status) && !live->dropped &&
            engine_waiter_add(live, op->wait_until, op->done, op->arg) == 0)
            continue;   /* answered when the task ends or at wait_until */
        engine_calls_add(calls, op->done, op->arg, true);
    }
    for (op = batch; op != NULL; op = op->next) {
        struct engine_live *live = op->live;
        if (op->type != ENGINE_OP_TASK || live->pending != 0 || live->removed ||
            !task_status_terminal(live->t->status))
            continue;
        if (live->held)
            engine_waiters_wake(live, calls);
        else
            engine_live_remove(live, calls);
    }
    return ready;
}

/*
 * The batch could not be written.  A new task in it was never acknowledged,
 * so it is forgotten and its submitter hears 503; everything else (starts,
 * results, cancels) goes back to the head of the queue to be written again:
 * dropping it would leave the record behind the truth.  Locked.
 */
static void engine_batch_failed(struct engine_op *batch, struct engine_calls *calls)
{
    struct engine_op *keep = NULL, *keep_last = NULL, *drop = NULL, *op, *next;

    for (op = batch; op != NULL; op = next) {
        struct engine_live *live = op->live;
        next = op->next;
        op->next = NULL;
        if (op->type == ENGINE_OP_TASK && (op->insert || live->dropped)) {
            if (op->insert) {
                live->dropped = true;
                engine_count(live, live->t->status, -1);
            }
            engine_calls_add(calls, op->done, op->arg, false);
            if (--live->pending == 0 && !live->removed)
                engine_live_remove(live, calls);
            op->next = drop;
            drop = op;
            continue;
        }
        if (keep_last != NULL)
            keep_last->next = op;
        else
            keep = op;
        keep_last = op;
    }
    if (keep != NULL) {
        keep_last->next = engine.ops_head;
        if (engine.ops_head == NULL)
            engine.ops_tail = keep_last;
        engine.ops_head = keep;
    }
    engine_ops_free(drop);
}

/*
 * The writer: takes every pending op, writes them in one transaction, hands
 * the batch to the syncer.  Also answers waiters whose time is up.
 */
static void *engine_writer_main(void *unused)
{
    struct engine_calls calls = { 0 };
    struct engine_op *batch, *op;
    int64_t rows;

    (void)unused;
    pthread_mutex_lock(&engine.lock);
    for (;;) {
        int64_t now = engine_mono(), next = engine_waiters_expire(now, &calls);
        stats_tick(engine_now(), (int64_t)queue_len(&engine.ready));
        if (calls.len > 0) {
            pthread_mutex_unlock(&engine.lock);
            engine_calls_run(&calls);
            pthread_mutex_lock(&engine.lock);
            continue;
        }
        /* With writes failing and no op left to retry them with, an empty
         * transaction tells when the database takes writes again: new tasks
         * are refused until one succeeds. */
        if (engine.ops_head == NULL && (engine.write_failures == 0 || engine.stop)) {
            if (engine.stop)
                break;
            struct timespec ts;
            int64_t until = next > 0 && next < now + 1000 ? next : now + 1000;
            ts.tv_sec = (time_t)(until / 1000);
            ts.tv_nsec = (long)(until % 1000) * 1000000L;
            pthread_cond_timedwait(&engine.wake, &engine.lock, &ts);
            continue;
        }
        batch = engine.ops_head;
        engine.ops_head = engine.ops_tail = NULL;
        for (op = batch; op != NULL; op = op->next)
            op->skip = op->type == ENGINE_OP_TASK &&
                       (op->seq != op->live->op_seq || op->live->dropped);
        pthread_mutex_unlock(&engine.lock);

        bool ok = engine_write_batch(batch, &rows) == 0;

        pthread_mutex_lock(&engine.lock);
        if (!ok) {
            int failures = ++engine.write_failures;
            engine_batch_failed(batch, &calls);
            if (engine.stop && failures > 3) {
                /* Stopping with a store that will not take writes: give up on
                 * what is left rather than hang; nothing of it was acknowledged. */
                log_error("giving up on %s at shutdown: the last changes are not recorded",
                          engine.cfg->db_path);
                for (op = engine.ops_head; op != NULL; op = op->next)
                    engine_calls_add(&calls, op->done, op->arg, false);
                engine_ops_free(engine.ops_head);
                engine.ops_head = engine.ops_tail = NULL;
            }
            pthread_mutex_unlock(&engine.lock);
            engine_calls_run(&calls);
            int64_t delay = failures < 6 ? 50LL << failures : 5000;
            log_error("cannot write to %s (failure %d): retrying in %lld ms", engine.cfg->db_path,
                      failures, (long long)delay);
            struct timespec ts = { (time_t)(delay / 1000), (long)(delay % 1000) * 1000000L };
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&engine.lock);
            continue;
        }
        if (engine.write_failures > 0)
            log_info("writing to %s again", engine.cfg->db_path);
        engine.write_failures = 0;
        engine.stats.write_batches++;
        engine.stats.write_rows += rows;
        bool wake_pool = false;
        engine_batch_committed(batch);
        struct engine_batch *b = calloc(1, sizeof *b);
        if (b == NULL) {
            /* Cannot queue it for the syncer: sync and acknowledge it here. */
            pthread_mutex_unlock(&engine.lock);
            engine_sync_or_die();
            pthread_mutex_lock(&engine.lock);
            wake_pool |= engine_batch_synced(batch, &calls);
            engine_ops_free(batch);
        } else {
            b->ops = batch;
            if (engine.sync_tail)
                engine.sync_tail->next = b;
            else
                engine.sync_head = b;
            engine.sync_tail = b;
            pthread_cond_signal(&engine.sync_wake);
        }
        pthread_mutex_unlock(&engine.lock);
        engine_calls_run(&calls);
        if (wake_pool)
            pool_wake();
        pthread_mutex_lock(&engine.lock);
    }
    engine.writer_done = true;
    pthread_cond_signal(&engine.sync_wake);
    pthread_mutex_unlock(&engine.lock);
    free(calls.v);
    return NULL;
}

/*
 * The syncer: makes committed batches survive power loss (one fdatasync for
 * all batches committed meanwhile), then acknowledges them.  Apart from the
 * writer, so that committing the next batch (and so starting tasks) never
 * waits for the disk.
 */
static void *engine_syncer_main(void *unused)
{
    struct engine_calls calls = { 0 };
    struct engine_batch *batches, *b, *next;

    (void)unused;
    pthread_mutex_lock(&engine.lock);
    for (;;) {
        while (engine.sync_head == NULL && !engine.writer_done)
            pthread_cond_wait(&engine.sync_wake, &engine.lock);
        if (engine.sync_head == NULL)
            break;
        batches = engine.sync_head;
        engine.sync_head = engine.sync_tail = NULL;
        pthread_mutex_unlock(&engine.lock);

        engine_sync_or_die();

        pthread_mutex_lock(&engine.lock);
        bool ready = false;
        for (b = batches; b != NULL; b = b->next)
            ready |= engine_batch_synced(b->ops, &calls);
        pthread_mutex_unlock(&engine.lock);
        engine_calls_run(&calls);
        if (ready)
            pool_wake();
        /* Unlocked: the ops still hold their tasks, and snapshots are copies. */
        bool events = events_wanted();
        for (b = batches; b != NULL; b = b->next)
            for (struct engine_op *op = b->ops; op != NULL; op = op->next)
                engine_publish(op, events);
        pthread_mutex_lock(&engine.lock);
        for (b = batches; b != NULL; b = next) {
            next = b->next;
            engine_ops_free(b->ops);
            free(b);
        }
    }
    pthread_mutex_unlock(&engine.lock);
    free(calls.v);
    return NULL;
}

/* --- start and stop ---------------------------------------------------- */

static int engine_replay_one(int64_t id, int32_t attempt, void *arg)
{
    (void)arg;
    return store_mark_dispatched(engine.store, id, attempt);
}

static int engine_load_one(struct task *t, void *arg)
{
    struct engine_live *live = calloc(1, sizeof *live);
    const struct kind *k;

    (void)arg;
    if (live == NULL || idmap_put(&engine.live, t->id, live) < 0) {
        free(live);
        task_free(t);
        log_error("out of memory loading the queue");
        return -1;
    }
    live->t = t;
    live->inserted = true;
    live->shown = *t;
    k = live->kind = kind_find(t->kind);
    if (k == NULL || (k->needs_exec && !engine.cfg->allow_exec)) {
        /* Submitted under other settings: running it now would bypass them. */
        if (task_set_error(t, k == NULL ? "unknown_kind" : "exec_disabled",
                           k == NULL ? "this taskpoold does not know the task's kind"
                                     : "exec is disabled: restart taskpoold with --allow-exec "
                                       "to run it") == 0) {
            engine_set_status(live, TASK_FAILED);
            t->finished_at = engine_now();
            engine_op_task(live, NULL, NULL, 0, false);
            log_warn("task %lld (%s) failed at load: %s", (long long)t->id, t->kind,
                     t->error_message);
        }
        return 0;
    }
    engine_enqueue(live);
    return 0;
}

int engine_start(const struct config *cfg)
{
    int requeued;

    pthread_condattr_t attr;

    engine.cfg = cfg;
    engine.waiters.next = engine.waiters.prev = &engine.waiters;
    /* The writer's timed wait serves waiter deadlines: on the monotonic clock. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&engine.wake, &attr);
    pthread_condattr_destroy(&attr);
    idmap_init(&engine.live);
    queue_init(&engine.ready);
    engine.store = store_open(cfg->db_path, cfg->sync_full);
    if (engine.store == NULL)
        return -1;
    /* Tasks sent to a worker whose start the crash kept from the database:
     * the journal says so, and they count as runs (see journal.h). */
    if (store_begin(engine.store) < 0)
        goto fail;
    if (journal_replay(cfg->db_path, engine_replay_one, NULL) < 0 ||
        store_commit(engine.store) < 0) {
        store_rollback(engine.store);
        goto fail;
    }
    requeued = store_recover(engine.store, engine_now());
    if (requeued < 0)
        goto fail;
    if (store_sync(engine.store) < 0) {
        log_error("cannot flush %s to disk after recovery: %s", cfg->db_path, strerror(errno));
        goto fail;
    }
    /* What the journal said is in the database now: start it afresh. */
    struct journal *j = journal_open(cfg->db_path);
    int rc = j != NULL ? journal_reset(j) : -1;
    journal_close(j);
    if (rc < 0)
        goto fail;
    /* Counts first: loading may fail tasks, and that is counted as a change. */
    if (store_count_by_status(engine.store, NULL, engine.stats.counts) < 0)
        goto fail;
    for (const struct kind *k = kind_table(); k->name != NULL; k++)
        if (store_count_by_status(engine.store, k->name,
                                  engine.stats.by_kind[k - kind_table()]) < 0)
            goto fail;
    if (store_load_queued(engine.store, engine_load_one, NULL) < 0)
        goto fail;
    engine.next_id = store_max_id(engine.store);
    if (engine.next_id < 0)
        goto fail;
    if (queue_len(&engine.ready) > 0)
        log_info("%zu queued task(s) from the last run will run now", queue_len(&engine.ready));
    if (pthread_create(&engine.syncer, NULL, engine_syncer_main, NULL) != 0) {
        log_error("cannot start the syncer thread");
        goto fail;
    }
    engine.syncer_started = true;
    if (pthread_create(&engine.writer, NULL, engine_writer_main, NULL) != 0) {
        log_error("cannot start the writer thread");
        goto fail;
    }
    engine.writer_started = true;
    return 0;
fail:
    engine_stop();
    engine_close();
    return -1;
}

static void engine_free_live(int64_t id, void *value, void *arg)
{
    (void)id;
    (void)arg;
    engine_live_free(value);
}

void engine_stop(void)
{
    struct engine_calls calls = { 0 };

    pthread_mutex_lock(&engine.lock);
    engine.stop = true;
    if (!engine.writer_started)
        engine.writer_done = true;   /* nothing will commit: let the syncer end */
    pthread_cond_signal(&engine.wake);
    pthread_cond_signal(&engine.sync_wake);
    pthread_mutex_unlock(&engine.lock);
    if (engine.writer_started) {
        pthread_join(engine.writer, NULL);   /* it writes every op left first */
        engine.writer_started = false;
    }
    if (engine.syncer_started) {
        pthread_join(engine.syncer, NULL);   /* and this acknowledges them */
        engine.syncer_started = false;
    }
    /* Whoever still waits hears the task as it is now. */
    pthread_mutex_lock(&engine.lock);
    while (engine.waiters.next != &engine.waiters) {
        struct engine_waiter *w = engine.waiters.next;
        engine_waiter_unlink(w);
        w->live->waiters = NULL;
        engine_calls_add(&calls, w->done, w->arg, true);
        free(w);
    }
    pthread_mutex_unlock(&engine.lock);
    engine_calls_run(&calls);
    free(calls.v);
}

void engine_close(void)
{
    idmap_each(&engine.live, engine_free_live, NULL);
    idmap_free(&engine.live);
    queue_free(&engine.ready);
    store_close(engine.store);
    engine.store = NULL;
}

void engine_drain(void)
{
    pthread_mutex_lock(&engine.lock);
    engine.draining = true;
    pthread_mutex_unlock(&engine.lock);
}

/* --- HTTP side --------------------------------------------------------- */

int64_t engine_submit(struct task *t, int64_t wait_until, engine_done_fn done, void *arg)
{
    struct engine_live *live = calloc(1, sizeof *live);
    int64_t id = -1;

    pthread_mutex_lock(&engine.lock);
    /* The writer is gone, or the database refuses writes (disk full, locked
     * by someone else): the task could not be recorded, so say so now
     * rather than after the next retry. */
    if (engine.stop || engine.write_failures > 0)
        goto out;
    if (live == NULL || idmap_put(&engine.live, engine.next_id + 1, live) < 0) {
        log_error("out of memory: task refused");
        goto out;
    }
    t->id = engine.next_id + 1;
    t->created_at = engine_now();
    t->status = TASK_QUEUED;
    live->t = t;
    live->kind = kind_find(t->kind);
    engine_count(live, TASK_QUEUED, 1);
    if (engine_op_task(live, done, arg, wait_until, true) < 0) {
        engine_count(live, TASK_QUEUED, -1);
        idmap_del(&engine.live, t->id);
        goto out;                  /* logged by engine_op_task */
    }
    id = ++engine.next_id;
    live = NULL;                   /* the engine owns both now */
    t = NULL;
out:
    pthread_mutex_unlock(&engine.lock);
    free(live);
    task_free(t);
    return id;
}

/* True if a task absent from the live table exists (so it is terminal). */
static bool engine_exists_on_disk(int64_t id)
{
    bool found;
    task_free(store_get_task(engine.store, id, &found));
    return found;
}

enum engine_result engine_wait(int64_t id, int64_t wait_until, engine_done_fn done, void *arg)
{
    struct engine_live *live;
    enum engine_result r = ENGINE_OK;

    pthread_mutex_lock(&engine.lock);
    live = idmap_get(&engine.live, id);
    if (live != NULL && wait_until > engine_mono() && !engine.stop) {
        if (engine_waiter_add(live, wait_until, done, arg) == 0)
            r = ENGINE_PENDING;
        else
            r = ENGINE_ERROR;
    }
    pthread_mutex_unlock(&engine.lock);
    if (live == NULL && !engine_exists_on_disk(id))
        r = ENGINE_NOT_FOUND;
    return r;
}

enum engine_result engine_cancel(int64_t id, engine_done_fn done, void *arg)
{
    struct engine_live *live;
    struct task *t;
    pid_t kill_pid = 0;
    enum engine_result r;

    pthread_mutex_lock(&engine.lock);
    live = idmap_get(&engine.live, id);
    if (live == NULL) {
        pthread_mutex_unlock(&engine.lock);
        return engine_exists_on_disk(id) ? ENGINE_CONFLICT : ENGINE_NOT_FOUND;
    }
    t = live->t;
    if (task_status_terminal(t->status)) {
        r = ENGINE_CONFLICT;
        goto out;
    }
    if (engine.stop) {
        r = ENGINE_ERROR;
        goto out;
    }
    if (task_set_error(t, "cancelled", t->status == TASK_RUNNING
                                           ? "cancelled while running; its worker was killed"
                                           : "cancelled before it started") < 0) {
        r = ENGINE_ERROR;
        goto out;
    }
    if (t->status == TASK_RUNNING) {
        kill_pid = t->worker_pid;
        live->held = true;         /* until engine_task_usage */
    }
    if (live->in_queue) {
        queue_remove(&engine.ready, id);
        live->in_queue = false;
    }
    engine_set_status(live, TASK_CANCELLED);
    t->finished_at = engine_now();
    r = engine_op_task(live, done, arg, 0, false) == 0 ? ENGINE_PENDING : ENGINE_ERROR;
out:
    pthread_mutex_unlock(&engine.lock);
    if (kill_pid > 0)
        pool_cancel(kill_pid, id);
    return r;
}

cJSON *engine_task_json(int64_t id, bool with_payload, bool *found)
{
    struct engine_live *live;
    struct task *t;
    cJSON *j = NULL;

    /* Readers see committed rows only, so a task and a list never disagree. */
    bool is_live, inserted = false;

    pthread_mutex_lock(&engine.lock);
    live = idmap_get(&engine.live, id);
    is_live = live != NULL;
    if (is_live) {
        inserted = live->inserted;
        if (inserted)
            j = task_to_json(&live->shown, with_payload);
    }
    pthread_mutex_unlock(&engine.lock);
    /* live may be freed from here on: only the copies above are used. */
    if (is_live) {
        *found = inserted;
        return j;
    }
    t = store_get_task(engine.store, id, found);
    if (t == NULL)
        return NULL;
    j = task_to_json(t, with_payload);
    task_free(t);
    return j;
}

struct engine_list_ctx {
    cJSON  *array;
    int     limit;
    int     n;
    int64_t last_id;
    bool    more;
    bool    failed;
};

static int engine_list_one(const struct task *t, void *arg)
{
    struct engine_list_ctx *c = arg;
    cJSON *j;

    if (c->n == c->limit) {
        c->more = true;
        return 0;
    }
    /* Summaries: a page of 500 exec tasks with their output could be a gigabyte. */
    j = task_to_json(t, false);
    if (j == NULL || !cJSON_AddItemToArray(c->array, j)) {
        cJSON_Delete(j);
        c->failed = true;
        return -1;
    }
    c->n++;
    c->last_id = t->id;
    return 0;
}

int64_t engine_list(const struct store_filter *f, cJSON *array)
{
    struct engine_list_ctx c = { array, f->limit, 0, 0, false, false };

    if (store_list_tasks(engine.store, f, engine_list_one, &c) < 0 || c.failed)
        return -1;
    return c.more ? c.last_id : 0;
}

/* --- pool side --------------------------------------------------------- */

int engine_next_task(pid_t pid, pid_t ppid, struct engine_dispatch *out)
{
    struct queue_item item;
    struct engine_live *live;
    struct task *t;
    size_t klen, alen;
    int got = 0;

    pthread_mutex_lock(&engine.lock);
    if (!engine.draining && queue_pop(&engine.ready, &item) == 0) {
        live = item.data;
        live->in_queue = false;
        t = live->t;
        klen = strlen(t->kind);
        alen = strlen(t->args);
        out->payload = malloc(klen + 1 + alen);
        if (out->payload == NULL) {
            log_error("out of memory: task %lld back to the queue", (long long)t->id);
            engine_enqueue(live);
            goto out;
        }
        memcpy(out->payload, t->kind, klen + 1);
        memcpy(out->payload + klen + 1, t->args, alen);
        out->payload_len = klen + 1 + alen;
        out->id = t->id;
        out->timeout_ms = t->timeout_ms;
        out->attempt = t->attempts + 1;
        engine_set_status(live, TASK_RUNNING);
        t->attempts++;
        t->worker_pid = pid;
        t->worker_ppid = ppid;
        t->started_at = engine_now();
        t->finished_at = 0;
        engine_op_task(live, NULL, NULL, 0, false);
        out->seq = live->op_seq;
        got = 1;
    }
out:
    pthread_mutex_unlock(&engine.lock);
    return got;
}

uint64_t engine_committed_seq(void)
{
    return __atomic_load_n(&engine.committed_seq, __ATOMIC_ACQUIRE);
}

/* The live task id if it is running on pid, else NULL.  Locked. */
static struct engine_live *engine_running_on(int64_t id, pid_t pid)
{
    struct engine_live *live = idmap_get(&engine.live, id);

    if (live == NULL || live->t->status != TASK_RUNNING || live->t->worker_pid != pid)
        return NULL;
    return live;
}

static char *engine_strndup_or_null(const char *s, size_t len)
{
    return len > 0 ? strndup(s, len) : NULL;
}

void engine_task_finished(int64_t id, pid_t pid, bool ok, const char *result, size_t result_len,
                          const char *code, size_t code_len, const char *message,
                          size_t message_len, const struct task_usage *usage)
{
    struct engine_live *live;
    struct task *t;

    pthread_mutex_lock(&engine.lock);
    live = engine_running_on(id, pid);
    if (live == NULL)
        goto out;   /* cancelled or timed out meanwhile: that verdict stands */
    t = live->t;
    t->result = engine_strndup_or_null(result, result_len);
    if (!ok) {
        t->error_code = code_len ? strndup(code, code_len) : strdup("task_failed");
        t->error_message = strndup(message, message_len);
    }
    if ((result_len && t->result == NULL) ||
        (!ok && (t->error_code == NULL || t->error_message == NULL))) {
        log_error("out of memory: task %lld result dropped", (long long)id);
        free(t->result);
        t->result = NULL;
        ok = false;
        if (task_set_error(t, "internal", "out of memory storing the result") < 0)
            goto out;
    }
    t->usage = *usage;
    t->usage.set = true;
    t->finished_at = engine_now();
    engine_set_status(live, ok ? TASK_SUCCEEDED : TASK_FAILED);
    engine_op_task(live, NULL, NULL, 0, false);
out:
    pthread_mutex_unlock(&engine.lock);
}

/* Puts a task whose run ended without a verdict back in the ready queue.  Locked.  true if in it. */
static bool engine_requeue(struct engine_live *live)
{
    struct task *t = live->t;

    engine_set_status(live, TASK_QUEUED);
    t->worker_pid = t->worker_ppid = 0;
    t->started_at = 0;
    return engine_enqueue(live);
}

void engine_task_aborted(int64_t id, pid_t pid, enum task_status status, bool retry,
                         const char *code, const char *message, const struct task_usage *usage)
{
    struct engine_live *live;
    struct task *t;
    bool requeued = false;

    pthread_mutex_lock(&engine.lock);
    live = engine_running_on(id, pid);
    if (live == NULL)
        goto out;
    t = live->t;
    if (status == TASK_FAILED && retry && t->attempts < t->max_attempts) {
        log_info("task %lld: %s; running it again (attempt %d of %d)", (long long)id, message,
                 t->attempts + 1, t->max_attempts);
        requeued = engine_requeue(live);
    } else {
        if (task_set_error(t, code, message) < 0)
            log_error("out of memory: task %lld error not recorded", (long long)id);
        t->finished_at = engine_now();
        if (usage->set)
            t->usage = *usage;
        engine_set_status(live, status);
    }
    engine_op_task(live, NULL, NULL, 0, false);
out:
    pthread_mutex_unlock(&engine.lock);
    if (requeued)
        pool_wake();
}

void engine_task_usage(int64_t id, const struct task_usage *usage)
{
    struct engine_calls calls = { 0 };
    struct engine_live *live;

    pthread_mutex_lock(&engine.lock);
    live = idmap_get(&engine.live, id);
    if (live != NULL && live->held) {
        live->held = false;
        if (usage != NULL && usage->set && !live->t->usage.set) {
            live->t->usage = *usage;
            engine_op_task(live, NULL, NULL, 0, false);   /* removed once that is written */
        } else if (live->pending == 0) {
            engine_live_remove(live, &calls);
        }
    }
    pthread_mutex_unlock(&engine.lock);
    engine_calls_run(&calls);
    free(calls.v);
}

void engine_task_unstart(int64_t id, pid_t pid)
{
    struct engine_live *live;
    bool requeued = false;

    pthread_mutex_lock(&engine.lock);
    live = engine_running_on(id, pid);
    if (live != NULL) {
        live->t->attempts--;
        requeued = engine_requeue(live);
        engine_op_task(live, NULL, NULL, 0, false);
    }
    pthread_mutex_unlock(&engine.lock);
    if (requeued)
        pool_wake();
}

void engine_worker_record(const struct store_worker *w, bool announce)
{
    struct engine_op *op = calloc(1, sizeof *op);

    if (op == NULL) {
        log_error("out of memory: worker %d not recorded", (int)w->pid);
        return;
    }
    op->type = ENGINE_OP_WORKER;
    op->worker = *w;
    op->announce = announce;
    pthread_mutex_lock(&engine.lock);
    engine_op_append(op);
    pthread_mutex_unlock(&engine.lock);
}

bool engine_writing(void)
{
    pthread_mutex_lock(&engine.lock);
    bool ok = engine.write_failures == 0;
    pthread_mutex_unlock(&engine.lock);
    return ok;
}

void engine_stats_get(struct engine_stats *out)
{
    pthread_mutex_lock(&engine.lock);
    *out = engine.stats;
    out->queue_depth = (int64_t)queue_len(&engine.ready);
    pthread_mutex_unlock(&engine.lock);
}
