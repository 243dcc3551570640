/*
 * store.c - the SQLite record of tasks and workers (see store.h).
 *
 * DESIGN: one write connection, owned by the thread that calls the writer
 * functions (the engine's writer), with every statement prepared once.
 * Readers share STORE_READERS read-only connections, each behind its own
 * mutex; in WAL mode they see the last committed state and never block the
 * writer.  Connections are opened with SQLITE_OPEN_NOMUTEX because these
 * mutexes already serialise each one.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "log.h"

#define STORE_SCHEMA_VERSION 2
#define STORE_READERS        4

struct store_reader {
    pthread_mutex_t lock;
    sqlite3        *db;
    sqlite3_stmt   *get;
};

struct store {
    sqlite3      *db;              /* the writer's connection */
    int           wal_fd;          /* our own descriptor of the -wal file, for store_sync */
    int           lock_fd;         /* the database file, flock'ed: one daemon per file */
    bool          sync_full;
    sqlite3_stmt *begin, *commit, *rollback, *put_task, *put_worker;
    struct store_reader readers[STORE_READERS];
    unsigned      next_reader;     /* round robin, racy on purpose: any reader will do */
};

static const char store_schema_v1[] =
    "CREATE TABLE tasks ("
    "  id            INTEGER PRIMARY KEY,"
    "  kind          TEXT    NOT NULL,"
    "  args          TEXT    NOT NULL,"
    "  status        TEXT    NOT NULL,"
    "  priority      INTEGER NOT NULL DEFAULT 0,"
    "  attempts      INTEGER NOT NULL DEFAULT 0,"
    "  max_attempts  INTEGER NOT NULL DEFAULT 1,"
    "  timeout_ms    INTEGER,"
    "  worker_pid    INTEGER,"
    "  worker_ppid   INTEGER,"
    "  created_at    INTEGER NOT NULL,"          /* Unix ms */
    "  started_at    INTEGER,"
    "  finished_at   INTEGER,"
    "  result        TEXT,"                      /* JSON */
    "  error_code    TEXT,"
    "  error_message TEXT,"
    "  user_ms       INTEGER,"
    "  sys_ms        INTEGER,"
    "  max_rss_kb    INTEGER,"
    "  error TEXT GENERATED ALWAYS AS (CASE WHEN error_code IS NULL THEN NULL"
    "        ELSE json_object('code', error_code, 'message', error_message) END) VIRTUAL"
    ");"
    "CREATE INDEX tasks_status ON tasks (status, id);"
    "CREATE INDEX tasks_kind ON tasks (kind, id);"
    "CREATE TABLE workers ("
    "  id          INTEGER PRIMARY KEY,"
    "  pid         INTEGER NOT NULL,"
    "  started_at  INTEGER NOT NULL,"
    "  exited_at   INTEGER,"
    "  exit_code   INTEGER,"
    "  exit_signal INTEGER,"
    "  exit_reason TEXT,"
    "  tasks_done  INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (pid, started_at)"
    ");";

/* v2: filtering by kind and status together stays O(page) on a big table. */
static const char store_schema_v2[] =
    "CREATE INDEX IF NOT EXISTS tasks_kind_status ON tasks (kind, status, id);";

static const char store_sql_put_task[] =
    "INSERT INTO tasks (id, kind, args, status, priority, attempts, max_attempts, timeout_ms,"
    "  worker_pid, worker_ppid, created_at, started_at, finished_at, result, error_code,"
    "  error_message, user_ms, sys_ms, max_rss_kb)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    " ON CONFLICT (id) DO UPDATE SET status = excluded.status, priority = excluded.priority,"
    "  timeout_ms = excluded.timeout_ms, max_attempts = excluded.max_attempts,"
    "  attempts = excluded.attempts, worker_pid = excluded.worker_pid,"
    "  worker_ppid = excluded.worker_ppid, started_at = excluded.started_at,"
    "  finished_at = excluded.finished_at, result = excluded.result,"
    "  error_code = excluded.error_code, error_message = excluded.error_message,"
    "  user_ms = excluded.user_ms, sys_ms = excluded.sys_ms, max_rss_kb = excluded.max_rss_kb";

static const char store_sql_put_worker[] =
    "INSERT INTO workers (pid, started_at, exited_at, exit_code, exit_signal, exit_reason,"
    "  tasks_done) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (pid, started_at) DO UPDATE SET exited_at = excluded.exited_at,"
    "  exit_code = excluded.exit_code, exit_signal = excluded.exit_signal,"
    "  exit_reason = excluded.exit_reason, tasks_done = excluded.tasks_done";

#define STORE_TASK_COLUMNS \
    "id, kind, args, status, priority, attempts, max_attempts, timeout_ms, worker_pid," \
    " worker_ppid, created_at, started_at, finished_at, result, error_code, error_message," \
    " user_ms, sys_ms, max_rss_kb"

static int store_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("%s: %s", sql, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static int store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL) != SQLITE_OK) {
        log_error("prepare: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* Runs a prepared statement that returns no rows, and resets it. */
static int store_step_done(sqlite3 *db, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);

    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    if (rc != SQLITE_DONE) {
        log_error("%s: %s", what, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static int store_user_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    int v = -1;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Creates or upgrades the schema, all in one transaction. */
static int store_migrate(sqlite3 *db, const char *path)
{
    int v;

    if (store_exec(db, "BEGIN IMMEDIATE") < 0)
        return -1;
    v = store_user_version(db);
    if (v < 0) {
        log_error("%s: cannot read user_version: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    if (v > STORE_SCHEMA_VERSION) {
        log_error("%s: schema version %d is newer than this taskpoold knows (%d)", path, v,
                  STORE_SCHEMA_VERSION);
        goto fail;
    }
    /* Each step takes the schema one version further, so any older file catches up. */
    if (v < 1 && store_exec(db, store_schema_v1) < 0)
        goto fail;
    if (v < 2 && store_exec(db, store_schema_v2) < 0)
        goto fail;
    if (v < STORE_SCHEMA_VERSION) {
        char sql[48];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
        if (store_exec(db, sql) < 0)
            goto fail;
        log_info("%s: schema version %d -> %d", path, v, STORE_SCHEMA_VERSION);
    }
    return store_exec(db, "COMMIT");
fail:
    store_exec(db, "ROLLBACK");
    return -1;
}

static sqlite3 *store_connect(const char *path, int flags)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        log_error("%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    return db;
}

struct store *store_open(const char *path, bool sync_full)
{
    struct store *st = calloc(1, sizeof *st);
    char wal[PATH_MAX + 8];
    int i;

    if (st == NULL) {
        log_error("out of memory");
        return NULL;
    }
    st->wal_fd = st->lock_fd = -1;
    st->sync_full = sync_full;
    for (i = 0; i < STORE_READERS; i++)
        pthread_mutex_init(&st->readers[i].lock, NULL);
    /* A second daemon on the same file would take the first one's running
     * tasks for a crash's leftovers and run them again.  flock, not fcntl:
     * SQLite's own locks are fcntl locks, and the sqlite3 shell must still
     * get in.  Closed only after SQLite's connections (closing a descriptor
     * drops every fcntl lock this process holds on the file). */
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        log_error("%s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        log_error("%s: %s", path, errno == EWOULDBLOCK ? "in use by another taskpoold"
                                                       : strerror(errno));
        goto fail;
    }
    st->db = store_connect(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (st->db == NULL)
        goto fail;
    /* NORMAL: a commit writes the WAL but does not fsync it; store_sync does,
     * apart from the commit, so that committing never waits for the disk. */
    if (store_exec(st->db, "PRAGMA journal_mode = WAL") < 0 ||
        store_exec(st->db, "PRAGMA synchronous = NORMAL") < 0 ||
        store_exec(st->db, "PRAGMA temp_store = MEMORY") < 0 ||
        store_migrate(st->db, path) < 0)
        goto fail;
    /* The -wal file exists from the first write and lives as long as any
     * connection is open; fdatasync on any descriptor flushes the file. */
    snprintf(wal, sizeof wal, "%s-wal", path);
    st->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
    if (st->wal_fd < 0) {
        log_error("%s: %s", wal, strerror(errno));
        goto fail;
    }
    if (store_prepare(st->db, "BEGIN IMMEDIATE", &st->begin) < 0 ||
        store_prepare(st->db, "COMMIT", &st->commit) < 0 ||
        store_prepare(st->db, "ROLLBACK", &st->rollback) < 0 ||
        store_prepare(st->db, store_sql_put_task, &st->put_task) < 0 ||
        store_prepare(st->db, store_sql_put_worker, &st->put_worker) < 0)
        goto fail;
    for (i = 0; i < STORE_READERS; i++) {
        struct store_reader *r = &st->readers[i];
        r->db = store_connect(path, SQLITE_OPEN_READONLY);
        if (r->db == NULL ||
            store_prepare(r->db, "SELECT " STORE_TASK_COLUMNS " FROM tasks WHERE id = ?1",
                          &r->get) < 0)
            goto fail;
    }
    return st;
fail:
    store_close(st);
    return NULL;
}

int store_sync(struct store *st)
{
    if (!st->sync_full)
        return 0;
    return fdatasync(st->wal_fd);
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    if (st->wal_fd >= 0)
        close(st->wal_fd);
    for (int i = 0; i < STORE_READERS; i++) {
        sqlite3_finalize(st->readers[i].get);
        sqlite3_close(st->readers[i].db);
        pthread_mutex_destroy(&st->readers[i].lock);
    }
    sqlite3_finalize(st->begin);
    sqlite3_finalize(st->commit);
    sqlite3_finalize(st->rollback);
    sqlite3_finalize(st->put_task);
    sqlite3_finalize(st->put_worker);
    /* The last connection to close checkpoints and removes the WAL. */
    if (st->db != NULL && sqlite3_close(st->db) != SQLITE_OK)
        log_error("close: %s", sqlite3_errmsg(st->db));
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    free(st);
}

int store_begin(struct store *st)    { return store_step_done(st->db, st->begin, "begin"); }
int store_commit(struct store *st)   { return store_step_done(st->db, st->commit, "commit"); }
int store_rollback(struct store *st)
{
    /* A failed COMMIT may already have rolled back: nothing left to undo. */
    if (sqlite3_get_autocommit(st->db))
        return 0;
    return store_step_done(st->db, st->rollback, "rollback");
}

static void store_bind_opt_int(sqlite3_stmt *s, int i, bool present, int64_t v)
{
    if (present)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static void store_bind_opt_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v != NULL)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

int store_put_task(struct store *st, const struct task *t)
{
    sqlite3_stmt *s = st->put_task;

    sqlite3_bind_int64(s, 1, t->id);
    sqlite3_bind_text(s, 2, t->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, t->args, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, task_status_name(t->status), -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, t->priority);
    sqlite3_bind_int(s, 6, t->attempts);
    sqlite3_bind_int(s, 7, t->max_attempts);
    store_bind_opt_int(s, 8, t->timeout_ms > 0, t->timeout_ms);
    store_bind_opt_int(s, 9, t->worker_pid > 0, t->worker_pid);
    store_bind_opt_int(s, 10, t->worker_ppid > 0, t->worker_ppid);
    sqlite3_bind_int64(s, 11, t->created_at);
    store_bind_opt_int(s, 12, t->started_at > 0, t->started_at);
    store_bind_opt_int(s, 13, t->finished_at > 0, t->finished_at);
    store_bind_opt_text(s, 14, t->result);
    store_bind_opt_text(s, 15, t->error_code);
    store_bind_opt_text(s, 16, t->error_message);
    store_bind_opt_int(s, 17, t->usage.set, t->usage.user_ms);
    store_bind_opt_int(s, 18, t->usage.set, t->usage.sys_ms);
    store_bind_opt_int(s, 19, t->usage.set, t->usage.max_rss_kb);
    return store_step_done(st->db, s, "put task");
}

int store_put_worker(struct store *st, const struct store_worker *w)
{
    sqlite3_stmt *s = st->put_worker;

    sqlite3_bind_int64(s, 1, w->pid);
    sqlite3_bind_int64(s, 2, w->started_at);
    store_bind_opt_int(s, 3, w->exited_at > 0, w->exited_at);
    store_bind_opt_int(s, 4, w->exit_code >= 0, w->exit_code);
    store_bind_opt_int(s, 5, w->exit_signal > 0, w->exit_signal);
    store_bind_opt_text(s, 6, w->exit_reason);
    sqlite3_bind_int64(s, 7, w->tasks_done);
    return store_step_done(st->db, s, "put worker");
}

static char *store_column_strdup(sqlite3_stmt *s, int col)
{
    const unsigned char *v = sqlite3_column_text(s, col);
    return v != NULL ? strdup((const char *)v) : NULL;
}

/* Builds a task from a row in STORE_TASK_COLUMNS order.  NULL on allocation failure. */
static struct task *store_row_task(sqlite3_stmt *s)
{
    struct task *t = calloc(1, sizeof *t);
    const unsigned char *kind = sqlite3_column_text(s, 1);
    const unsigned char *status = sqlite3_column_text(s, 3);

    if (t == NULL)
        return NULL;
    t->id = sqlite3_column_int64(s, 0);
    snprintf(t->kind, sizeof t->kind, "%s", kind ? (const char *)kind : "");
    t->args = store_column_strdup(s, 2);
    if (status == NULL || task_status_parse((const char *)status, &t->status) < 0)
        t->status = TASK_FAILED;
    t->priority = sqlite3_column_int(s, 4);
    t->attempts = sqlite3_column_int(s, 5);
    t->max_attempts = sqlite3_column_int(s, 6);
    t->timeout_ms = sqlite3_column_int64(s, 7);
    t->worker_pid = (pid_t)sqlite3_column_int64(s, 8);
    t->worker_ppid = (pid_t)sqlite3_column_int64(s, 9);
    t->created_at = sqlite3_column_int64(s, 10);
    t->started_at = sqlite3_column_int64(s, 11);
    t->finished_at = sqlite3_column_int64(s, 12);
    t->result = store_column_strdup(s, 13);
    t->error_code = store_column_strdup(s, 14);
    t->error_message = store_column_strdup(s, 15);
    t->usage.set = sqlite3_column_type(s, 17) != SQLITE_NULL;
    t->usage.user_ms = sqlite3_column_int64(s, 16);
    t->usage.sys_ms = sqlite3_column_int64(s, 17);
    t->usage.max_rss_kb = sqlite3_column_int64(s, 18);
    if (t->args == NULL || (sqlite3_column_type(s, 13) != SQLITE_NULL && t->result == NULL) ||
        (sqlite3_column_type(s, 14) != SQLITE_NULL && t->error_code == NULL) ||
        (sqlite3_column_type(s, 15) != SQLITE_NULL && t->error_message == NULL)) {
        task_free(t);
        return NULL;
    }
    return t;
}

int store_mark_dispatched(struct store *st, int64_t id, int attempt)
{
    sqlite3_stmt *s = NULL;
    int rc;

    /* 'running' too: a retry is journaled before its requeue is committed. */
    if (store_prepare(st->db, "UPDATE tasks SET status = 'running', attempts = ?2"
                              " WHERE id = ?1 AND status IN ('queued', 'running')"
                              " AND attempts < ?2", &s) < 0)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int(s, 2, attempt);
    rc = store_step_done(st->db, s, "mark dispatched");
    sqlite3_finalize(s);
    return rc;
}

int store_recover(struct store *st, int64_t now_ms)
{
    sqlite3_stmt *s = NULL;
    int requeued = -1;

    if (store_begin(st) < 0)
        return -1;
    if (store_prepare(st->db,
                      "UPDATE tasks SET status = 'queued', worker_pid = NULL, worker_ppid = NULL,"
                      " started_at = NULL WHERE status = 'running' AND attempts < max_attempts",
                      &s) < 0 ||
        store_step_done(st->db, s, "requeue") < 0)
        goto fail;
    requeued = sqlite3_changes(st->db);
    sqlite3_finalize(s);
    s = NULL;
    if (store_prepare(st->db,
                      "UPDATE tasks SET status = 'failed', finished_at = ?1,"
                      " error_code = 'interrupted', error_message = 'taskpoold stopped while the"
                      " task was running and it has no attempts left' WHERE status = 'running'",
                      &s) < 0)
        goto fail;
    sqlite3_bind_int64(s, 1, now_ms);
    if (store_step_done(st->db, s, "interrupt") < 0)
        goto fail;
    if (sqlite3_changes(st->db) > 0)
        log_warn("%d task(s) were running at the last stop and have no attempts left: failed",
                 sqlite3_changes(st->db));
    sqlite3_finalize(s);
    s = NULL;
    if (store_prepare(st->db, "UPDATE workers SET exited_at = ?1, exit_reason = 'lost'"
                              " WHERE exited_at IS NULL", &s) < 0)
        goto fail;
    sqlite3_bind_int64(s, 1, now_ms);
    if (store_step_done(st->db, s, "close workers") < 0)
        goto fail;
    sqlite3_finalize(s);
    s = NULL;
    if (store_commit(st) < 0)
        goto fail;
    if (requeued > 0)
        log_warn("%d task(s) were running at the last stop: queued again", requeued);
    return requeued;
fail:
    sqlite3_finalize(s);
    store_rollback(st);
    return -1;
}

int store_load_queued(struct store *st, int (*fn)(struct task *t, void *arg), void *arg)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (store_prepare(st->db, "SELECT " STORE_TASK_COLUMNS " FROM tasks WHERE status = 'queued'"
                              " ORDER BY id", &s) < 0)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct task *t = store_row_task(s);
        if (t == NULL) {
            log_error("out of memory");
            goto fail;
        }
        if (fn(t, arg) < 0)
            goto fail;
    }
    if (rc != SQLITE_DONE) {
        log_error("load queued: %s", sqlite3_errmsg(st->db));
        goto fail;
    }
    sqlite3_finalize(s);
    return 0;
fail:
    sqlite3_finalize(s);
    return -1;
}

int64_t store_max_id(struct store *st)
{
    sqlite3_stmt *s = NULL;
    int64_t id = -1;

    if (store_prepare(st->db, "SELECT coalesce(max(id), 0) FROM tasks", &s) < 0)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        id = sqlite3_column_int64(s, 0);
    else
        log_error("max id: %s", sqlite3_errmsg(st->db));
    sqlite3_finalize(s);
    return id;
}

static struct store_reader *store_reader_acquire(struct store *st)
{
    unsigned start = __atomic_fetch_add(&st->next_reader, 1, __ATOMIC_RELAXED);

    for (unsigned i = 0; i < STORE_READERS; i++) {
        struct store_reader *r = &st->readers[(start + i) % STORE_READERS];
        if (pthread_mutex_trylock(&r->lock) == 0)
            return r;
    }
    struct store_reader *r = &st->readers[start % STORE_READERS];
    pthread_mutex_lock(&r->lock);
    return r;
}

static void store_reader_release(struct store_reader *r)
{
    pthread_mutex_unlock(&r->lock);
}

struct task *store_get_task(struct store *st, int64_t id, bool *found)
{
    struct store_reader *r = store_reader_acquire(st);
    struct task *t = NULL;
    int rc;

    *found = false;
    sqlite3_bind_int64(r->get, 1, id);
    rc = sqlite3_step(r->get);
    if (rc == SQLITE_ROW) {
        *found = true;
        t = store_row_task(r->get);
        if (t == NULL)
            log_error("out of memory");
    } else if (rc != SQLITE_DONE) {
        log_error("get task %lld: %s", (long long)id, sqlite3_errmsg(r->db));
    }
    sqlite3_reset(r->get);
    store_reader_release(r);
    return t;
}

int store_list_tasks(struct store *st, const struct store_filter *f,
                     int (*fn)(const struct task *t, void *arg), void *arg)
{
    char sql[512];
    struct store_reader *r;
    sqlite3_stmt *s = NULL;
    int n = 0, rc, i = 1;

    /* Each filter maps onto the (status, id), (kind, id) or (kind, status, id)
     * index, so a page costs O(limit) whatever the size of the table. */
    snprintf(sql, sizeof sql, "SELECT " STORE_TASK_COLUMNS " FROM tasks WHERE 1%s%s%s"
             " ORDER BY id DESC LIMIT ?",
             f->has_status ? " AND status = ?" : "", f->kind ? " AND kind = ?" : "",
             f->before > 0 ? " AND id < ?" : "");
    r = store_reader_acquire(st);
    if (sqlite3_prepare_v2(r->db, sql, -1, &s, NULL) != SQLITE_OK) {
        log_error("list: %s", sqlite3_errmsg(r->db));
        n = -1;
        goto out;
    }
    if (f->has_status)
        sqlite3_bind_text(s, i++, task_status_name(f->status), -1, SQLITE_STATIC);
    if (f->kind)
        sqlite3_bind_text(s, i++, f->kind, -1, SQLITE_STATIC);
    if (f->before > 0)
        sqlite3_bind_int64(s, i++, f->before);
    sqlite3_bind_int(s, i, f->limit + 1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct task *t = store_row_task(s);
        if (t == NULL) {
            log_error("out of memory");
            n = -1;
            goto out;
        }
        rc = fn(t, arg);
        task_free(t);
        if (rc < 0) {
            n = -1;
            goto out;
        }
        n++;
    }
    if (rc != SQLITE_DONE) {
        log_error("list: %s", sqlite3_errmsg(r->db));
        n = -1;
    }
out:
    sqlite3_finalize(s);
    store_reader_release(r);
    return n;
}

int store_count_by_status(struct store *st, const char *kind, int64_t counts[TASK_STATUS_COUNT])
{
    struct store_reader *r = store_reader_acquire(st);
    sqlite3_stmt *s = NULL;
    int rc = -1;

    memset(counts, 0, sizeof(int64_t) * TASK_STATUS_COUNT);
    /* With a kind, the (kind, status, id) index answers without the table. */
    if (sqlite3_prepare_v2(r->db, kind != NULL
                               ? "SELECT status, count(*) FROM tasks WHERE kind = ?1 GROUP BY status"
                               : "SELECT status, count(*) FROM tasks GROUP BY status",
                           -1, &s, NULL) != SQLITE_OK ||
        (kind != NULL && sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC) != SQLITE_OK))
        goto out;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        enum task_status stv;
        const unsigned char *name = sqlite3_column_text(s, 0);
        if (name != NULL && task_status_parse((const char *)name, &stv) == 0)
            counts[stv] = sqlite3_column_int64(s, 1);
    }
    rc = rc == SQLITE_DONE ? 0 : -1;
out:
    if (rc < 0)
        log_error("count: %s", sqlite3_errmsg(r->db));
    sqlite3_finalize(s);
    store_reader_release(r);
    return rc;
}
