/*
 * task.c - the task model: validation of a submitted task and its JSON form.
 */
#include "task.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "kinds.h"
#include "utf8.h"

static const char *const task_status_names[TASK_STATUS_COUNT] = {
    "queued", "running", "succeeded", "failed", "cancelled", "timed_out",
};

const char *task_status_name(enum task_status st)
{
    if ((unsigned)st >= TASK_STATUS_COUNT)
        return "unknown";
    return task_status_names[st];
}

int task_status_parse(const char *name, enum task_status *st)
{
    for (int i = 0; i < TASK_STATUS_COUNT; i++) {
        if (strcmp(name, task_status_names[i]) == 0) {
            *st = (enum task_status)i;
            return 0;
        }
    }
    return -1;
}

int64_t task_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t task_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void task_format_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void task_error_set(struct task_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void task_error_set(struct task_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;

    snprintf(err->code, sizeof err->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/*
 * Reads an optional integer field within [lo, hi] (null counts as absent
 * when allow_null).  Integers only: 1.5 and "1" are refused.  Every bound
 * used is far below 2^53, so the double cJSON gives is exact.
 * Returns 0 (leaving *out alone when absent) or -1 with err filled.
 */
static int task_int_field(const cJSON *body, const char *name, int64_t lo, int64_t hi,
                          bool allow_null, int64_t *out, struct task_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    double d;

    if (v == NULL || (allow_null && cJSON_IsNull(v)))
        return 0;
    if (!cJSON_IsNumber(v)) {
        task_error_set(err, "invalid_field", "field '%s' must be an integer", name);
        return -1;
    }
    d = v->valuedouble;
    if (d != floor(d) || d < (double)lo || d > (double)hi) {
        task_error_set(err, "invalid_field",
                       "field '%s' must be an integer from %lld to %lld", name,
                       (long long)lo, (long long)hi);
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

/* True if every number in v is finite: 1e999 parses as infinity and would print as null. */
static bool task_numbers_finite(const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsNumber(v))
        return isfinite(v->valuedouble);
    cJSON_ArrayForEach(c, v)
        if (!task_numbers_finite(c))
            return false;
    return true;
}

struct task *task_from_request(const char *body, size_t len, bool allow_exec,
                               struct task_error *err)
{
    cJSON *root = NULL;
    const cJSON *kind_json, *args;
    const struct kind *k;
    struct task *t = NULL;
    char msg[200], why[120];
    int64_t priority = 0, timeout_ms = 0, max_attempts = 1;
    static const char *const known[] = { "kind", "args", "priority", "timeout_ms",
                                         "max_attempts", NULL };

    /* cJSON is lenient (01, 1., raw control characters) and ignores what
     * follows the first value: check the text strictly first. */
    if (!utf8_valid(body, len)) {
        task_error_set(err, "invalid_json", "request body is not valid UTF-8");
        goto fail;
    }
    if (json_check(body, len, why, sizeof why) < 0) {
        task_error_set(err, "invalid_json", "request body is not valid JSON: %s", why);
        goto fail;
    }
    root = cJSON_ParseWithLength(body, len);
    if (root == NULL) {
        task_error_set(err, "invalid_json", "request body is not valid JSON");
        goto fail;
    }
    if (!task_numbers_finite(root)) {
        task_error_set(err, "invalid_json", "a number is too large for a double (e.g. 1e999)");
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        task_error_set(err, "invalid_json", "request body must be a JSON object");
        goto fail;
    }
    /* An unknown field is most often a typo ("timeout" for "timeout_ms"): say so. */
    if (kind_only_fields(root, known, "", msg, sizeof msg) < 0) {
        task_error_set(err, "invalid_field", "%s", msg);
        goto fail;
    }
    kind_json = cJSON_GetObjectItemCaseSensitive(root, "kind");
    if (kind_json == NULL) {
        task_error_set(err, "invalid_field", "field 'kind' is required");
        goto fail;
    }
    if (!cJSON_IsString(kind_json)) {
        task_error_set(err, "invalid_field", "field 'kind' must be a string");
        goto fail;
    }
    k = kind_find(kind_json->valuestring);
    if (k == NULL) {
        task_error_set(err, "unknown_kind", "field 'kind': unknown kind '%.64s'",
                       kind_json->valuestring);
        goto fail;
    }
    if (task_int_field(root, "priority", TASK_PRIORITY_MIN, TASK_PRIORITY_MAX, false, &priority,
                       err) < 0 ||
        task_int_field(root, "timeout_ms", 1, TASK_TIMEOUT_MAX_MS, true, &timeout_ms, err) < 0 ||
        task_int_field(root, "max_attempts", 1, TASK_ATTEMPTS_MAX, false, &max_attempts, err) < 0)
        goto fail;
    /* A disabled kind is refused before its args are looked at: 403 says more than 400. */
    if (k->needs_exec && !allow_exec) {
        task_error_set(err, "exec_disabled",
                       "kind '%s' is disabled: start taskpoold with --allow-exec", k->name);
        goto fail;
    }
    args = cJSON_GetObjectItemCaseSensitive(root, "args");
    if (k->validate != NULL) {
        cJSON empty = { 0 };
        empty.type = cJSON_Object;
        if (k->validate(args != NULL ? args : &empty, msg, sizeof msg) < 0) {
            task_error_set(err, "invalid_args", "%s", msg);
            goto fail;
        }
    }
    t = calloc(1, sizeof *t);
    if (t == NULL)
        goto oom;
    snprintf(t->kind, sizeof t->kind, "%s", k->name);
    t->args = args != NULL ? json_print(args) : strdup("{}");
    if (t->args == NULL)
        goto oom;
    t->status = TASK_QUEUED;
    t->priority = (int)priority;
    t->timeout_ms = timeout_ms;
    t->max_attempts = (int)max_attempts;
    cJSON_Delete(root);
    return t;

oom:
    task_error_set(err, "out_of_memory", "out of memory");
fail:
    task_free(t);
    cJSON_Delete(root);
    return NULL;
}

void task_free(struct task *t)
{
    if (t == NULL)
        return;
    free(t->args);
    free(t->result);
    free(t->error_code);
    free(t->error_message);
    free(t);
}

int task_set_error(struct task *t, const char *code, const char *message)
{
    char *c = strdup(code), *m = strdup(message);

    if (c == NULL || m == NULL) {
        free(c);
        free(m);
        return -1;
    }
    free(t->error_code);
    free(t->error_message);
    t->error_code = c;
    t->error_message = m;
    return 0;
}

/* Adds a time field: RFC 3339 text, or null for 0. */
static cJSON *task_json_time(cJSON *obj, const char *name, int64_t ms)
{
    char buf[40];

    if (ms == 0)
        return cJSON_AddNullToObject(obj, name);
    task_format_time(ms, buf, sizeof buf);
    return cJSON_AddStringToObject(obj, name, buf);
}

/* Adds raw JSON text (stored compact and valid), or null. */
static cJSON *task_json_raw(cJSON *obj, const char *name, const char *json)
{
    if (json == NULL)
        return cJSON_AddNullToObject(obj, name);
    return cJSON_AddRawToObject(obj, name, json);
}

static cJSON *task_json_number_or_null(cJSON *obj, const char *name, bool present, double v)
{
    return present ? cJSON_AddNumberToObject(obj, name, v) : cJSON_AddNullToObject(obj, name);
}

cJSON *task_to_json(const struct task *t, bool with_payload)
{
    cJSON *o = cJSON_CreateObject(), *e, *u;
    bool ok;

    if (o == NULL)
        return NULL;
    ok = cJSON_AddNumberToObject(o, "id", (double)t->id) &&
         cJSON_AddStringToObject(o, "kind", t->kind) &&
         (!with_payload || task_json_raw(o, "args", t->args)) &&
         cJSON_AddStringToObject(o, "status", task_status_name(t->status)) &&
         cJSON_AddNumberToObject(o, "priority", t->priority) &&
         task_json_number_or_null(o, "timeout_ms", t->timeout_ms > 0, (double)t->timeout_ms) &&
         cJSON_AddNumberToObject(o, "max_attempts", t->max_attempts) &&
         cJSON_AddNumberToObject(o, "attempts", t->attempts) &&
         (!with_payload || task_json_raw(o, "result", t->result));
    if (!ok)
        goto fail;
    if (t->error_code != NULL) {
        e = cJSON_AddObjectToObject(o, "error");
        if (e == NULL || !cJSON_AddStringToObject(e, "code", t->error_code) ||
            !cJSON_AddStringToObject(e, "message", t->error_message ? t->error_message : ""))
            goto fail;
    } else if (!cJSON_AddNullToObject(o, "error")) {
        goto fail;
    }
    ok = task_json_number_or_null(o, "worker_pid", t->worker_pid > 0, t->worker_pid) &&
         task_json_number_or_null(o, "worker_ppid", t->worker_ppid > 0, t->worker_ppid) &&
         task_json_time(o, "created_at", t->created_at) &&
         task_json_time(o, "started_at", t->started_at) &&
         task_json_time(o, "finished_at", t->finished_at) &&
         task_json_number_or_null(o, "queue_ms", t->started_at > 0,
                                  (double)(t->started_at - t->created_at)) &&
         task_json_number_or_null(o, "run_ms", t->started_at > 0 && t->finished_at > 0,
                                  (double)(t->finished_at - t->started_at));
    if (!ok)
        goto fail;
    if (t->usage.set) {
        u = cJSON_AddObjectToObject(o, "usage");
        if (u == NULL || !cJSON_AddNumberToObject(u, "user_ms", (double)t->usage.user_ms) ||
            !cJSON_AddNumberToObject(u, "sys_ms", (double)t->usage.sys_ms) ||
            !cJSON_AddNumberToObject(u, "max_rss_kb", (double)t->usage.max_rss_kb))
            goto fail;
    } else if (!cJSON_AddNullToObject(o, "usage")) {
        goto fail;
    }
    return o;

fail:
    cJSON_Delete(o);
    return NULL;
}
