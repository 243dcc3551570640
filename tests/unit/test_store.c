/*
 * test_store.c - the SQLite record: round trips of every task field, upserts,
 * listing and paging, counts, crash recovery, workers, reopening, WAL.
 * Each test gets a fresh database in its own mkdtemp directory under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"
#include "task.h"

struct fixture {
    char dir[64];
    char path[128];
    struct store *st;
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/taskpool-test-store-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/tasks.db", f->dir);
    f->st = store_open(f->path, false);
    if (f->st == NULL)
        return -1;
    *state = f;
    return 0;
}

/* Closes the store and removes the directory with whatever SQLite left in it. */
static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->st);
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* A task as task_from_request makes it, then given id, status and creation time. */
static struct task *new_task(int64_t id, const char *kind, const char *args_json,
                             enum task_status status)
{
    char body[512];
    snprintf(body, sizeof body, "{\"kind\":\"%s\",\"args\":%s}", kind, args_json);
    struct task_error err;
    struct task *t = task_from_request(body, strlen(body), true, &err);
    if (t == NULL)
        fail_msg("task_from_request(%s): %s: %s", body, err.code, err.message);
    t->id = id;
    t->status = status;
    t->created_at = 1700000000000LL + id * 1000;
    return t;
}

static void put(struct store *st, const struct task *t)
{
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_put_task(st, t), 0);
    assert_int_equal(store_commit(st), 0);
}

static void put_new(struct store *st, int64_t id, const char *kind, enum task_status status)
{
    struct task *t = new_task(id, kind, "{}", status);
    put(st, t);
    task_free(t);
}

static struct task *get(struct store *st, int64_t id)
{
    bool found = false;
    struct task *t = store_get_task(st, id, &found);
    if (t == NULL || !found)
        fail_msg("task %lld: got %p, found %d", (long long)id, (void *)t, found);
    return t;
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

/* Every field of two tasks is the same. */
static void assert_same_task(const struct task *a, const struct task *b)
{
    assert_int_equal(a->id, b->id);
    assert_string_equal(a->kind, b->kind);
    assert_string_equal(a->args, b->args);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->max_attempts, b->max_attempts);
    assert_int_equal(a->attempts, b->attempts);
    assert_str_or_null(a->result, b->result);
    assert_str_or_null(a->error_code, b->error_code);
    assert_str_or_null(a->error_message, b->error_message);
    assert_int_equal(a->worker_pid, b->worker_pid);
    assert_int_equal(a->worker_ppid, b->worker_ppid);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->started_at, b->started_at);
    assert_int_equal(a->finished_at, b->finished_at);
    assert_int_equal(a->usage.set, b->usage.set);
    if (a->usage.set) {
        assert_int_equal(a->usage.user_ms, b->usage.user_ms);
        assert_int_equal(a->usage.sys_ms, b->usage.sys_ms);
        assert_int_equal(a->usage.max_rss_kb, b->usage.max_rss_kb);
    }
}

static struct task *full_task(void)
{
    struct task *t = new_task(7, "echo", "{\"numbers\":[2,3.5],\"note\":\"it's \\\"q\\\" \\u00e9\"}",
                              TASK_FAILED);
    t->priority = -5;
    t->timeout_ms = 1500;
    t->max_attempts = 3;
    t->attempts = 2;
    t->result = strdup("{\"results\":[4,12.25]}");
    assert_non_null(t->result);
    assert_int_equal(task_set_error(t, "worker_died", "worker 4321 was killed by signal 9 (Killed)"), 0);
    t->worker_pid = 4321;
    t->worker_ppid = 4000;
    t->created_at = 1700000000000LL;
    t->started_at = 1700000000250LL;
    t->finished_at = 1700000001750LL;
    t->usage = (struct task_usage){ .set = true, .user_ms = 12, .sys_ms = 3, .max_rss_kb = 65536 };
    return t;
}

/* Runs a query on the file with a connection of our own; returns the first column as text. */
static char *query_text(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    char *out = NULL;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        const unsigned char *s = sqlite3_column_text(stmt, 0);
        out = strdup(s ? (const char *)s : "(null)");
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
}

/* How many rows of table have a column whose text equals want (column names aside). */
static int rows_with_value(const char *path, const char *table, const char *want)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT * FROM %s", table);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rows = 0;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(stmt); c++) {
            const unsigned char *s = sqlite3_column_text(stmt, c);
            if (s != NULL && strcmp((const char *)s, want) == 0) {
                rows++;
                break;
            }
        }
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
}

static int count_rows(const char *path, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    char *s = query_text(path, sql);
    assert_non_null(s);
    int n = atoi(s);
    free(s);
    return n;
}

/* ---- opening ----------------------------------------------------------- */

static void test_open_creates_the_file_in_wal_mode(void **state)
{
    struct fixture *f = *state;
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    char *mode = query_text(f->path, "PRAGMA journal_mode");
    assert_non_null(mode);
    assert_string_equal(mode, "wal");
    free(mode);
    char *version = query_text(f->path, "PRAGMA user_version");
    assert_non_null(version);
    assert_true(atoi(version) >= 1);
    free(version);
}

static void test_open_in_missing_directory_fails(void **state)
{
    (void)state;
    assert_null(store_open("/nonexistent/taskpool-test-dir/x.db", false));
    store_close(NULL);
}

static void test_a_second_open_of_the_same_file_is_refused_until_closed(void **state)
{
    struct fixture *f = *state;

    assert_null(store_open(f->path, false));
    store_close(f->st);
    f->st = store_open(f->path, false);
    assert_non_null(f->st);
}

static void test_reopening_keeps_the_data(void **state)
{
    struct fixture *f = *state;
    struct task *t = full_task();
    put(f->st, t);
    put_new(f->st, 9, "echo", TASK_QUEUED);
    store_close(f->st);
    f->st = store_open(f->path, true);
    assert_non_null(f->st);
    struct task *got = get(f->st, 7);
    assert_same_task(got, t);
    task_free(got);
    assert_int_equal(store_max_id(f->st), 9);
    int64_t counts[TASK_STATUS_COUNT];
    assert_int_equal(store_count_by_status(f->st, NULL, counts), 0);
    assert_int_equal(counts[TASK_QUEUED], 1);
    assert_int_equal(counts[TASK_FAILED], 1);
    task_free(t);
}

/* ---- tasks ------------------------------------------------------------- */

static void test_put_get_round_trips_every_field(void **state)
{
    struct fixture *f = *state;
    struct task *t = full_task();
    put(f->st, t);
    struct task *got = get(f->st, 7);
    assert_same_task(got, t);
    task_free(got);
    task_free(t);
}

static void test_put_get_round_trips_nulls_and_zeros(void **state)
{
    struct fixture *f = *state;
    struct task *t = new_task(3, "echo", "[1,null]", TASK_QUEUED);
    assert_null(t->result);
    assert_null(t->error_code);
    assert_false(t->usage.set);
    put(f->st, t);
    struct task *got = get(f->st, 3);
    assert_same_task(got, t);
    assert_null(got->result);
    assert_null(got->error_code);
    assert_null(got->error_message);
    assert_int_equal(got->timeout_ms, 0);
    assert_int_equal(got->worker_pid, 0);
    assert_int_equal(got->started_at, 0);
    assert_int_equal(got->finished_at, 0);
    assert_false(got->usage.set);
    task_free(got);
    task_free(t);
}

static void test_round_trip_keeps_every_status(void **state)
{
    struct fixture *f = *state;
    for (int s = 0; s < TASK_STATUS_COUNT; s++)
        put_new(f->st, s + 1, "echo", (enum task_status)s);
    for (int s = 0; s < TASK_STATUS_COUNT; s++) {
        struct task *got = get(f->st, s + 1);
        assert_int_equal(got->status, s);
        task_free(got);
    }
}

static void test_get_of_absent_task_is_not_found(void **state)
{
    struct fixture *f = *state;
    bool found = true;
    assert_null(store_get_task(f->st, 1, &found));
    assert_false(found);
    put_new(f->st, 1, "echo", TASK_QUEUED);
    found = true;
    assert_null(store_get_task(f->st, 2, &found));
    assert_false(found);
    struct task *t = store_get_task(f->st, 1, &found);
    assert_non_null(t);
    assert_true(found);
    task_free(t);
}

static void test_put_again_updates_the_row_but_keeps_kind_args_created_at(void **state)
{
    struct fixture *f = *state;
    struct task *t = new_task(5, "sleep", "{\"seconds\":1}", TASK_QUEUED);
    put(f->st, t);

    struct task *u = full_task();                 /* other kind, args, creation and everything */
    u->id = 5;
    put(f->st, u);

    struct task *got = get(f->st, 5);
    assert_string_equal(got->kind, "sleep");
    assert_string_equal(got->args, "{\"seconds\":1}");
    assert_int_equal(got->created_at, t->created_at);
    assert_int_equal(got->status, TASK_FAILED);
    assert_int_equal(got->priority, -5);
    assert_int_equal(got->timeout_ms, 1500);
    assert_int_equal(got->max_attempts, 3);
    assert_int_equal(got->attempts, 2);
    assert_string_equal(got->result, u->result);
    assert_string_equal(got->error_code, "worker_died");
    assert_string_equal(got->error_message, u->error_message);
    assert_int_equal(got->worker_pid, 4321);
    assert_int_equal(got->worker_ppid, 4000);
    assert_int_equal(got->started_at, u->started_at);
    assert_int_equal(got->finished_at, u->finished_at);
    assert_true(got->usage.set);
    assert_int_equal(got->usage.max_rss_kb, 65536);
    task_free(got);
    assert_int_equal(count_rows(f->path, "tasks"), 1);
    task_free(u);
    task_free(t);
}

static void test_put_again_can_clear_result_and_error(void **state)
{
    struct fixture *f = *state;
    struct task *t = full_task();
    put(f->st, t);
    free(t->result);
    t->result = NULL;
    free(t->error_code);
    t->error_code = NULL;
    free(t->error_message);
    t->error_message = NULL;
    t->status = TASK_QUEUED;
    t->worker_pid = 0;
    t->worker_ppid = 0;
    t->started_at = 0;
    t->finished_at = 0;
    t->usage.set = false;
    put(f->st, t);
    struct task *got = get(f->st, 7);
    assert_same_task(got, t);
    task_free(got);
    task_free(t);
}

static void test_rollback_discards_the_writes(void **state)
{
    struct fixture *f = *state;
    struct task *t = new_task(1, "echo", "{}", TASK_QUEUED);
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_put_task(f->st, t), 0);
    assert_int_equal(store_rollback(f->st), 0);
    bool found = true;
    assert_null(store_get_task(f->st, 1, &found));
    assert_false(found);
    assert_int_equal(store_max_id(f->st), 0);
    task_free(t);
}

/* Readers see only committed rows, and are not blocked by the open write transaction. */
static void test_open_write_transaction_is_invisible_to_readers(void **state)
{
    struct fixture *f = *state;
    put_new(f->st, 1, "echo", TASK_QUEUED);
    struct task *t = new_task(2, "echo", "{}", TASK_QUEUED);
    assert_int_equal(store_begin(f->st), 0);
    assert_int_equal(store_put_task(f->st, t), 0);
    struct task *one = get(f->st, 1);
    task_free(one);
    bool found = true;
    assert_null(store_get_task(f->st, 2, &found));
    assert_false(found);
    assert_int_equal(store_commit(f->st), 0);
    struct task *two = get(f->st, 2);
    task_free(two);
    task_free(t);
}

static void test_many_rows_in_one_transaction(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_begin(f->st), 0);
    for (int64_t id = 1; id <= 2000; id++) {
        struct task *t = new_task(id, "echo", "{\"i\":1}", id % 2 ? TASK_SUCCEEDED : TASK_QUEUED);
        assert_int_equal(store_put_task(f->st, t), 0);
        task_free(t);
    }
    assert_int_equal(store_commit(f->st), 0);
    int64_t counts[TASK_STATUS_COUNT];
    assert_int_equal(store_count_by_status(f->st, NULL, counts), 0);
    assert_int_equal(counts[TASK_SUCCEEDED], 1000);
    assert_int_equal(counts[TASK_QUEUED], 1000);
    assert_int_equal(store_max_id(f->st), 2000);
}

/* The issue's own sqlite3 query works on the file, with readable status names. */
static void test_tasks_table_answers_the_issue_query(void **state)
{
    struct fixture *f = *state;
    struct task *t = full_task();
    t->status = TASK_SUCCEEDED;
    put(f->st, t);
    task_free(t);
    char *row = query_text(f->path,
                           "SELECT id || '|' || kind || '|' || status || '|' || worker_pid || '|' || "
                           "(finished_at - started_at) FROM tasks");
    assert_non_null(row);
    assert_string_equal(row, "7|echo|succeeded|4321|1500");
    free(row);
    row = query_text(f->path, "SELECT priority || '|' || attempts || '|' || max_attempts || '|' || "
                              "timeout_ms || '|' || worker_ppid || '|' || created_at || '|' || "
                              "typeof(args) || '|' || typeof(result) || '|' || typeof(error) FROM tasks");
    assert_non_null(row);
    assert_string_equal(row, "-5|2|3|1500|4000|1700000000000|text|text|text");
    free(row);
}

/* ---- listing ----------------------------------------------------------- */

struct seen {
    int     n;
    int64_t ids[64];
    int     statuses[64];
    char    kinds[64][TASK_KIND_MAX + 1];
};

static int collect(const struct task *t, void *arg)
{
    struct seen *s = arg;
    if (s->n < 64) {
        s->ids[s->n] = t->id;
        s->statuses[s->n] = (int)t->status;
        strcpy(s->kinds[s->n], t->kind);
    }
    s->n++;
    return 0;
}

static void assert_ids_at(const struct seen *s, const int64_t *want, int n, const char *file, int line)
{
    bool same = s->n == n;
    for (int i = 0; same && i < n; i++)
        same = s->ids[i] == want[i];
    if (!same) {
        print_error("listed %d:", s->n);
        for (int i = 0; i < s->n && i < 64; i++)
            print_error(" %lld", (long long)s->ids[i]);
        print_error("; expected %d:", n);
        for (int i = 0; i < n; i++)
            print_error(" %lld", (long long)want[i]);
        print_error("\n");
        _fail(file, line);
    }
}
#define assert_ids(s, ...) do { \
        const int64_t want_[] = { __VA_ARGS__ }; \
        assert_ids_at((s), want_, (int)(sizeof want_ / sizeof want_[0]), __FILE__, __LINE__); \
    } while (0)

static int list(struct store *st, const struct store_filter *flt, struct seen *s)
{
    memset(s, 0, sizeof *s);
    return store_list_tasks(st, flt, collect, s);
}

/* Ten tasks: ids 1..10, kinds alternate echo/sleep, statuses cycle queued..timed_out. */
static void put_ten(struct store *st)
{
    assert_int_equal(store_begin(st), 0);
    for (int64_t id = 1; id <= 10; id++) {
        struct task *t = new_task(id, id % 2 ? "echo" : "sleep",
                                  id % 2 ? "{}" : "{\"seconds\":0}",
                                  (enum task_status)((id - 1) % TASK_STATUS_COUNT));
        assert_int_equal(store_put_task(st, t), 0);
        task_free(t);
    }
    assert_int_equal(store_commit(st), 0);
}

static void test_list_is_newest_first_with_one_extra_row(void **state)
{
    struct fixture *f = *state;
    put_ten(f->st);
    struct seen s;
    struct store_filter flt = { .limit = 3 };
    assert_int_equal(list(f->st, &flt, &s), 4);
    assert_ids(&s, 10, 9, 8, 7);
    flt.limit = 50;
    assert_int_equal(list(f->st, &flt, &s), 10);
    assert_ids(&s, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
    flt.limit = 10;
    assert_int_equal(list(f->st, &flt, &s), 10);
    flt.limit = 9;
    assert_int_equal(list(f->st, &flt, &s), 10);
}

static void test_list_pages_with_before(void **state)
{
    struct fixture *f = *state;
    put_ten(f->st);
    struct seen s;
    struct store_filter flt = { .limit = 3, .before = 7 };
    assert_int_equal(list(f->st, &flt, &s), 4);
    assert_ids(&s, 6, 5, 4, 3);
    flt.before = 4;
    assert_int_equal(list(f->st, &flt, &s), 3);
    assert_ids(&s, 3, 2, 1);
    flt.before = 1;
    assert_int_equal(list(f->st, &flt, &s), 0);
    assert_int_equal(s.n, 0);
    flt.before = 1000;
    assert_int_equal(list(f->st, &flt, &s), 4);
    assert_ids(&s, 10, 9, 8, 7);
}

static void test_list_filters_by_status(void **state)
{
    struct fixture *f = *state;
    put_ten(f->st);
    struct seen s;
    /* statuses by id: 1 q, 2 r, 3 s, 4 f, 5 c, 6 t, 7 q, 8 r, 9 s, 10 f */
    struct store_filter flt = { .has_status = true, .status = TASK_QUEUED, .limit = 50 };
    assert_int_equal(list(f->st, &flt, &s), 2);
    assert_ids(&s, 7, 1);
    for (int i = 0; i < s.n; i++)
        assert_int_equal(s.statuses[i], TASK_QUEUED);
    flt.status = TASK_TIMED_OUT;
    assert_int_equal(list(f->st, &flt, &s), 1);
    assert_ids(&s, 6);
    flt.status = TASK_FAILED;
    flt.limit = 1;
    assert_int_equal(list(f->st, &flt, &s), 2);
    assert_ids(&s, 10, 4);
    flt.before = 10;
    assert_int_equal(list(f->st, &flt, &s), 1);
    assert_ids(&s, 4);
}

static void test_list_filters_by_kind(void **state)
{
    struct fixture *f = *state;
    put_ten(f->st);
    struct seen s;
    struct store_filter flt = { .kind = "sleep", .limit = 50 };
    assert_int_equal(list(f->st, &flt, &s), 5);
    assert_ids(&s, 10, 8, 6, 4, 2);
    for (int i = 0; i < s.n; i++)
        assert_string_equal(s.kinds[i], "sleep");
    flt.kind = "cpu";
    assert_int_equal(list(f->st, &flt, &s), 0);
    flt.kind = "echo";
    flt.limit = 2;
    flt.before = 9;
    assert_int_equal(list(f->st, &flt, &s), 3);
    assert_ids(&s, 7, 5, 3);
}

static void test_list_filters_by_status_and_kind(void **state)
{
    struct fixture *f = *state;
    put_ten(f->st);
    struct seen s;
    struct store_filter flt = { .has_status = true, .status = TASK_RUNNING, .kind = "sleep", .limit = 50 };
    assert_int_equal(list(f->st, &flt, &s), 2);
    assert_ids(&s, 8, 2);
    flt.kind = "echo";
    assert_int_equal(list(f->st, &flt, &s), 0);
}

static void test_list_of_empty_table_sees_nothing(void **state)
{
    struct fixture *f = *state;
    struct seen s;
    struct store_filter flt = { .limit = 50 };
    assert_int_equal(list(f->st, &flt, &s), 0);
    assert_int_equal(s.n, 0);
}

/* ---- counts and ids ---------------------------------------------------- */

static void test_count_by_status_counts_each_status(void **state)
{
    struct fixture *f = *state;
    int64_t counts[TASK_STATUS_COUNT];
    memset(counts, 0xff, sizeof counts);
    assert_int_equal(store_count_by_status(f->st, NULL, counts), 0);
    for (int s = 0; s < TASK_STATUS_COUNT; s++)
        assert_int_equal(counts[s], 0);
    put_ten(f->st);
    put_new(f->st, 11, "echo", TASK_SUCCEEDED);
    assert_int_equal(store_count_by_status(f->st, NULL, counts), 0);
    assert_int_equal(counts[TASK_QUEUED], 2);
    assert_int_equal(counts[TASK_RUNNING], 2);
    assert_int_equal(counts[TASK_SUCCEEDED], 3);
    assert_int_equal(counts[TASK_FAILED], 2);
    assert_int_equal(counts[TASK_CANCELLED], 1);
    assert_int_equal(counts[TASK_TIMED_OUT], 1);
}

static void test_count_by_status_of_one_kind(void **state)
{
    struct fixture *f = *state;
    int64_t counts[TASK_STATUS_COUNT];
    static const int64_t echo[TASK_STATUS_COUNT] = { 2, 0, 3, 0, 1, 0 };
    static const int64_t sleep[TASK_STATUS_COUNT] = { 0, 2, 0, 2, 0, 1 };

    put_ten(f->st);
    put_new(f->st, 11, "echo", TASK_SUCCEEDED);
    assert_int_equal(store_count_by_status(f->st, "echo", counts), 0);
    assert_memory_equal(counts, echo, sizeof counts);
    assert_int_equal(store_count_by_status(f->st, "sleep", counts), 0);
    assert_memory_equal(counts, sleep, sizeof counts);
    assert_int_equal(store_count_by_status(f->st, "cube", counts), 0);
    for (int s = 0; s < TASK_STATUS_COUNT; s++)
        assert_int_equal(counts[s], 0);
}

static void test_max_id_is_zero_when_empty_then_the_largest(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_max_id(f->st), 0);
    put_new(f->st, 5, "echo", TASK_QUEUED);
    put_new(f->st, 42, "echo", TASK_SUCCEEDED);
    put_new(f->st, 7, "echo", TASK_QUEUED);
    assert_int_equal(store_max_id(f->st), 42);
}

/* ---- recovery ---------------------------------------------------------- */

static void put_running(struct store *st, int64_t id, int attempts, int max_attempts)
{
    struct task *t = new_task(id, "sleep", "{\"seconds\":5}", TASK_RUNNING);
    t->attempts = attempts;
    t->max_attempts = max_attempts;
    t->worker_pid = 900 + (pid_t)id;
    t->worker_ppid = 800;
    t->started_at = t->created_at + 10;
    put(st, t);
    task_free(t);
}

static void test_recover_requeues_running_tasks_with_attempts_left(void **state)
{
    struct fixture *f = *state;
    put_running(f->st, 1, 1, 2);
    put_running(f->st, 2, 2, 3);
    put_new(f->st, 3, "echo", TASK_QUEUED);
    assert_int_equal(store_recover(f->st, 1800000000000LL), 2);
    for (int64_t id = 1; id <= 2; id++) {
        struct task *t = get(f->st, id);
        assert_int_equal(t->status, TASK_QUEUED);
        assert_int_equal(t->attempts, id);       /* runs already made still count */
        assert_null(t->error_code);
        assert_int_equal(t->finished_at, 0);
        task_free(t);
    }
    struct task *t = get(f->st, 3);
    assert_int_equal(t->status, TASK_QUEUED);
    task_free(t);
}

static void test_recover_fails_running_tasks_without_attempts_as_interrupted(void **state)
{
    struct fixture *f = *state;
    put_running(f->st, 1, 1, 1);
    put_running(f->st, 2, 3, 3);
    put_running(f->st, 3, 1, 4);
    assert_int_equal(store_recover(f->st, 1800000000000LL), 1);
    for (int64_t id = 1; id <= 2; id++) {
        struct task *t = get(f->st, id);
        assert_int_equal(t->status, TASK_FAILED);
        assert_non_null(t->error_code);
        assert_string_equal(t->error_code, "interrupted");
        assert_non_null(t->error_message);
        assert_true(t->error_message[0] != '\0');
        assert_int_equal(t->finished_at, 1800000000000LL);
        task_free(t);
    }
    struct task *t = get(f->st, 3);
    assert_int_equal(t->status, TASK_QUEUED);
    task_free(t);
}

static void test_recover_leaves_finished_and_queued_tasks_alone(void **state)
{
    struct fixture *f = *state;
    put_ten(f->st);                               /* includes two running: ids 2 and 8 */
    struct task *before[11] = { NULL };
    for (int64_t id = 1; id <= 10; id++)
        before[id] = get(f->st, id);
    assert_int_equal(store_recover(f->st, 1800000000000LL), 2);
    for (int64_t id = 1; id <= 10; id++) {
        struct task *t = get(f->st, id);
        if (before[id]->status == TASK_RUNNING) {
            assert_int_equal(t->status, TASK_QUEUED);   /* 0 runs of 1 made: one remains */
        } else {
            assert_same_task(t, before[id]);
        }
        task_free(t);
        task_free(before[id]);
    }
}

static void test_recover_of_clean_store_changes_nothing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_recover(f->st, 1800000000000LL), 0);
    put_new(f->st, 1, "echo", TASK_SUCCEEDED);
    assert_int_equal(store_recover(f->st, 1800000000000LL), 0);
    struct task *t = get(f->st, 1);
    assert_int_equal(t->status, TASK_SUCCEEDED);
    task_free(t);
}

/* ---- workers ----------------------------------------------------------- */

static void put_worker(struct store *st, const struct store_worker *w)
{
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_put_worker(st, w), 0);
    assert_int_equal(store_commit(st), 0);
}

static void test_put_worker_upserts_by_pid_and_started_at(void **state)
{
    struct fixture *f = *state;
    struct store_worker w = { .pid = 31337, .started_at = 1700000000000LL, .exit_code = -1 };
    put_worker(f->st, &w);
    assert_int_equal(count_rows(f->path, "workers"), 1);
    assert_int_equal(rows_with_value(f->path, "workers", "31337"), 1);

    w.exited_at = 1700000005000LL;
    w.exit_code = 0;
    w.tasks_done = 250;
    w.exit_reason = "retired";
    put_worker(f->st, &w);
    assert_int_equal(count_rows(f->path, "workers"), 1);
    assert_int_equal(rows_with_value(f->path, "workers", "retired"), 1);
    assert_int_equal(rows_with_value(f->path, "workers", "250"), 1);
    assert_int_equal(rows_with_value(f->path, "workers", "1700000005000"), 1);

    struct store_worker again = { .pid = 31337, .started_at = 1700000009000LL, .exit_code = -1 };
    put_worker(f->st, &again);                    /* the pid reused later: another worker */
    assert_int_equal(count_rows(f->path, "workers"), 2);
}

static void test_recover_closes_workers_left_running_as_lost(void **state)
{
    struct fixture *f = *state;
    struct store_worker open1 = { .pid = 101, .started_at = 1000, .exit_code = -1, .tasks_done = 3 };
    struct store_worker open2 = { .pid = 102, .started_at = 1000, .exit_code = -1 };
    struct store_worker done = { .pid = 103, .started_at = 1000, .exited_at = 2000, .exit_code = -1,
                                 .exit_signal = 9, .exit_reason = "killed" };
    put_worker(f->st, &open1);
    put_worker(f->st, &open2);
    put_worker(f->st, &done);
    assert_int_equal(store_recover(f->st, 1800000000000LL), 0);
    assert_int_equal(count_rows(f->path, "workers"), 3);
    assert_int_equal(rows_with_value(f->path, "workers", "lost"), 2);
    assert_int_equal(rows_with_value(f->path, "workers", "killed"), 1);
    assert_int_equal(rows_with_value(f->path, "workers", "1800000000000"), 2);
}

/* ---- loading the queue ------------------------------------------------- */

struct loaded {
    int     n;
    int64_t ids[16];
    int     priorities[16];
    int     fail_at;                              /* return -1 on this call (1-based), 0 = never */
};

static int load_one(struct task *t, void *arg)
{
    struct loaded *l = arg;
    assert_int_equal(t->status, TASK_QUEUED);
    if (l->n < 16) {
        l->ids[l->n] = t->id;
        l->priorities[l->n] = t->priority;
    }
    l->n++;
    if (t->id == 9)
        assert_string_equal(t->args, "{\"numbers\":[1,2]}");
    task_free(t);                                 /* ours now */
    return l->n == l->fail_at ? -1 : 0;
}

static void test_load_queued_gives_queued_tasks_oldest_first(void **state)
{
    struct fixture *f = *state;
    static const int64_t ids[] = { 5, 2, 9, 3, 4, 1 };
    static const enum task_status sts[] = {
        TASK_QUEUED, TASK_QUEUED, TASK_QUEUED, TASK_RUNNING, TASK_SUCCEEDED, TASK_CANCELLED,
    };
    for (size_t i = 0; i < 6; i++) {
        struct task *t = new_task(ids[i], ids[i] == 9 ? "square" : "echo",
                                  ids[i] == 9 ? "{\"numbers\":[1,2]}" : "{}", sts[i]);
        t->priority = (int)ids[i] * 10;
        put(f->st, t);
        task_free(t);
    }
    struct loaded l = { 0 };
    assert_int_equal(store_load_queued(f->st, load_one, &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.ids[0], 2);
    assert_int_equal(l.ids[1], 5);
    assert_int_equal(l.ids[2], 9);
    assert_int_equal(l.priorities[0], 20);
    assert_int_equal(l.priorities[1], 50);
    assert_int_equal(l.priorities[2], 90);
}

static void test_load_queued_fails_when_the_callback_fails(void **state)
{
    struct fixture *f = *state;
    for (int64_t id = 1; id <= 4; id++)
        put_new(f->st, id, "echo", TASK_QUEUED);
    struct loaded l = { .fail_at = 2 };
    assert_int_equal(store_load_queued(f->st, load_one, &l), -1);
    assert_int_equal(l.n, 2);
}

static void test_load_queued_of_empty_store_calls_nothing(void **state)
{
    struct fixture *f = *state;
    struct loaded l = { 0 };
    assert_int_equal(store_load_queued(f->st, load_one, &l), 0);
    assert_int_equal(l.n, 0);
}

/* ---- threads ----------------------------------------------------------- */

struct reader_arg {
    struct store *st;
    int errors;
};

static int count_only(const struct task *t, void *arg)
{
    (void)t;
    (*(int *)arg)++;
    return 0;
}

static void *read_many(void *p)
{
    struct reader_arg *a = p;
    for (int i = 0; i < 300; i++) {
        bool found = false;
        struct task *t = store_get_task(a->st, 1 + i % 50, &found);
        if (t == NULL || !found || t->id != 1 + i % 50)
            a->errors++;
        task_free(t);
        int n = 0;
        struct store_filter flt = { .limit = 10 };
        if (store_list_tasks(a->st, &flt, count_only, &n) != 11 || n != 11)
            a->errors++;
        int64_t counts[TASK_STATUS_COUNT];
        if (store_count_by_status(a->st, NULL, counts) != 0)
            a->errors++;
    }
    return NULL;
}

/* Reads from several threads at once while the writer keeps committing. */
static void test_reads_from_many_threads_during_writes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_begin(f->st), 0);
    for (int64_t id = 1; id <= 50; id++) {
        struct task *t = new_task(id, "echo", "{}", TASK_QUEUED);
        assert_int_equal(store_put_task(f->st, t), 0);
        task_free(t);
    }
    assert_int_equal(store_commit(f->st), 0);

    enum { THREADS = 6 };
    pthread_t th[THREADS];
    struct reader_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct reader_arg){ f->st, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, read_many, &args[i]), 0);
    }
    for (int64_t id = 51; id <= 250; id++) {
        struct task *t = new_task(id, "echo", "{}", TASK_SUCCEEDED);
        put(f->st, t);
        task_free(t);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].errors, 0);
    }
    assert_int_equal(store_max_id(f->st), 250);
}

/* Runs sql on a fresh file of our own (to build a database as an older taskpoold left it). */
static void make_db(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s", err ? err : "?");
    sqlite3_close(db);
}

/* The schema exactly as version 1 wrote it, with one finished task in it. */
static const char schema_v1_with_a_task[] =
    "CREATE TABLE tasks (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, args TEXT NOT NULL,"
    " status TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL"
    " DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 1, timeout_ms INTEGER, worker_pid INTEGER,"
    " worker_ppid INTEGER, created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,"
    " result TEXT, error_code TEXT, error_message TEXT, user_ms INTEGER, sys_ms INTEGER,"
    " max_rss_kb INTEGER, error TEXT GENERATED ALWAYS AS (CASE WHEN error_code IS NULL THEN NULL"
    " ELSE json_object('code', error_code, 'message', error_message) END) VIRTUAL);"
    "CREATE INDEX tasks_status ON tasks (status, id);"
    "CREATE INDEX tasks_kind ON tasks (kind, id);"
    "CREATE TABLE workers (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, started_at INTEGER NOT"
    " NULL, exited_at INTEGER, exit_code INTEGER, exit_signal INTEGER, exit_reason TEXT,"
    " tasks_done INTEGER NOT NULL DEFAULT 0, UNIQUE (pid, started_at));"
    "INSERT INTO tasks (id, kind, args, status, created_at) VALUES (7, 'echo', '[1]',"
    " 'succeeded', 1700000000000);"
    "PRAGMA user_version = 1;";

static void test_open_migrates_a_version_1_file_and_keeps_its_tasks(void **state)
{
    struct fixture *f = *state;
    char path[192];
    bool found;

    snprintf(path, sizeof path, "%s/v1.db", f->dir);
    make_db(path, schema_v1_with_a_task);
    struct store *st = store_open(path, false);
    assert_non_null(st);
    struct task *t = store_get_task(st, 7, &found);
    assert_true(found);
    assert_non_null(t);
    assert_string_equal(t->args, "[1]");
    assert_int_equal(t->status, TASK_SUCCEEDED);
    task_free(t);
    store_close(st);
    char *version = query_text(path, "PRAGMA user_version");
    assert_string_equal(version, "2");
    free(version);
    char *idx = query_text(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                 " AND name = 'tasks_kind_status'");
    assert_string_equal(idx, "1");
    free(idx);
}

static void test_open_refuses_a_file_from_a_newer_taskpool(void **state)
{
    struct fixture *f = *state;
    char path[192];

    snprintf(path, sizeof path, "%s/future.db", f->dir);
    make_db(path, "CREATE TABLE tasks (id INTEGER PRIMARY KEY); PRAGMA user_version = 99;");
    assert_null(store_open(path, false));
    char *version = query_text(path, "PRAGMA user_version");
    assert_string_equal(version, "99");   /* left as it was */
    free(version);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        T(test_open_creates_the_file_in_wal_mode),
        cmocka_unit_test(test_open_in_missing_directory_fails),
        T(test_open_migrates_a_version_1_file_and_keeps_its_tasks),
        T(test_open_refuses_a_file_from_a_newer_taskpool),
        T(test_a_second_open_of_the_same_file_is_refused_until_closed),
        T(test_reopening_keeps_the_data),
        T(test_put_get_round_trips_every_field),
        T(test_put_get_round_trips_nulls_and_zeros),
        T(test_round_trip_keeps_every_status),
        T(test_get_of_absent_task_is_not_found),
        T(test_put_again_updates_the_row_but_keeps_kind_args_created_at),
        T(test_put_again_can_clear_result_and_error),
        T(test_rollback_discards_the_writes),
        T(test_open_write_transaction_is_invisible_to_readers),
        T(test_many_rows_in_one_transaction),
        T(test_tasks_table_answers_the_issue_query),
        T(test_list_is_newest_first_with_one_extra_row),
        T(test_list_pages_with_before),
        T(test_list_filters_by_status),
        T(test_list_filters_by_kind),
        T(test_list_filters_by_status_and_kind),
        T(test_list_of_empty_table_sees_nothing),
        T(test_count_by_status_counts_each_status),
        T(test_count_by_status_of_one_kind),
        T(test_max_id_is_zero_when_empty_then_the_largest),
        T(test_recover_requeues_running_tasks_with_attempts_left),
        T(test_recover_fails_running_tasks_without_attempts_as_interrupted),
        T(test_recover_leaves_finished_and_queued_tasks_alone),
        T(test_recover_of_clean_store_changes_nothing),
        T(test_put_worker_upserts_by_pid_and_started_at),
        T(test_recover_closes_workers_left_running_as_lost),
        T(test_load_queued_gives_queued_tasks_oldest_first),
        T(test_load_queued_fails_when_the_callback_fails),
        T(test_load_queued_of_empty_store_calls_nothing),
        T(test_reads_from_many_threads_during_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
