/*
 * http.c - the HTTP front (see http.h).
 *
 * DESIGN
 * libmicrohttpd runs its own I/O threads (a thread pool over epoll).  A
 * handler never blocks one: anything that must wait for the writer (a
 * submit is answered only once committed), for a task (?wait=) or for a
 * cancel suspends its connection, hands a callback to the engine, and is
 * called again once the engine resumes it.  Each request's state lives in a
 * struct http_req owned by the connection and freed when MHD says the
 * request is complete; the engine touches it only between suspend and
 * resume, so there is no sharing to lock.  Responses are queued only once
 * the body has been consumed, which keeps keep-alive connections open.
 */
#include "http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "events.h"
#include "kinds.h"
#include "log.h"
#include "pool.h"
#include "static.h"
#include "stats.h"
#include "task.h"
#include "timeline.h"

#define HTTP_BODY_MAX     (1024 * 1024)
#define HTTP_DISCARD_MAX  (16 * 1024 * 1024)   /* read and dropped to answer 413 politely */
#define HTTP_WAIT_MAX_S   300.0
#define HTTP_LIST_DEFAULT 50
#define HTTP_LIST_MAX     500
#define HTTP_STOP_WAIT_MS 2000

enum http_async { HTTP_SYNC = 0, HTTP_SUBMIT, HTTP_WAIT, HTTP_CANCEL };

struct http_req {
    struct MHD_Connection *conn;
    char                  *body;
    size_t                 len, cap;
    enum http_async        async;      /* what a suspended request waits for */
    bool                   suspended;
    bool                   too_large;  /* body over the limit: the rest is discarded */
    size_t                 dropped;    /* bytes discarded so far */
    bool                   ok;         /* set by the engine's callback */
    unsigned               answer;     /* an immediate answer decided while suspended */
    int64_t                task_id;
};

static struct {
    struct MHD_Daemon   *daemon;
    const struct config *cfg;
    int                  shutting_down;  /* atomic */
    int                  inflight;       /* atomic: requests not yet completed */
} http;

/* --- responses --------------------------------------------------------- */

enum MHD_Result http_queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result rc;

    if (resp == NULL)
        return MHD_NO;   /* out of memory: MHD closes the connection */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    stats_http(status);
    return rc;
}

/* Answers with body (malloc'd, consumed) of type; allow and location add their headers. */
static enum MHD_Result http_send_with(struct MHD_Connection *c, unsigned status, char *body,
                                      const char *type, const char *location, const char *allow)
{
    struct MHD_Response *resp;

    if (body == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (location != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    if (allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"taskpool\"");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, "Retry-After", "5");
    return http_queue(c, status, resp);
}

static enum MHD_Result http_send(struct MHD_Connection *c, unsigned status, char *body,
                                 const char *type, const char *location)
{
    return http_send_with(c, status, body, type, location, NULL);
}

/* Sends obj (consumed) as JSON. */
static enum MHD_Result http_json(struct MHD_Connection *c, unsigned status, cJSON *obj,
                                 const char *location)
{
    char *text = obj != NULL ? cJSON_PrintUnformatted(obj) : NULL;

    cJSON_Delete(obj);
    return http_send(c, status, text, "application/json", location);
}

/* The body {"error": {"code", "message"}} (malloc'd), or NULL when out of memory. */
static char *http_error_body(const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject(), *e;
    char *text = NULL;

    e = o != NULL ? cJSON_AddObjectToObject(o, "error") : NULL;
    if (e != NULL && cJSON_AddStringToObject(e, "code", code) &&
        cJSON_AddStringToObject(e, "message", message))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

enum MHD_Result http_error(struct MHD_Connection *c, unsigned status, const char *code,
                           const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return http_send(c, status, http_error_body(code, msg), "application/json", NULL);
}

enum MHD_Result http_method_not_allowed(struct MHD_Connection *c, const char *allow)
{
    char msg[128];

    snprintf(msg, sizeof msg, "this resource allows %s", allow);
    return http_send_with(c, MHD_HTTP_METHOD_NOT_ALLOWED, http_error_body("method_not_allowed", msg),
                          "application/json", NULL, allow);
}

static enum MHD_Result http_task(struct MHD_Connection *c, unsigned status, int64_t id)
{
    bool found;
    char location[64];
    cJSON *j = engine_task_json(id, true, &found);

    if (j == NULL && !found)
        return http_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no task %lld", (long long)id);
    if (j == NULL)
        return http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot read task %lld",
                          (long long)id);
    snprintf(location, sizeof location, "/api/v1/tasks/%lld", (long long)id);
    return http_json(c, status, j, status == MHD_HTTP_CREATED ? location : NULL);
}

/* --- asynchronous answers ---------------------------------------------- */

/* The engine's callback: runs on the writer thread, the connection is suspended. */
static void http_on_done(void *arg, bool ok)
{
    struct http_req *r = arg;

    r->ok = ok;
    MHD_resume_connection(r->conn);
}

/* Suspends r before handing it to the engine, so a fast callback cannot resume it first. */
static void http_suspend(struct http_req *r, enum http_async what, int64_t id)
{
    r->async = what;
    r->task_id = id;
    r->suspended = true;
    r->answer = 0;
    MHD_suspend_connection(r->conn);
}

/* The engine answered at once: resume now and answer with status on re-entry. */
static enum MHD_Result http_answer_soon(struct http_req *r, unsigned status)
{
    r->answer = status;
    MHD_resume_connection(r->conn);
    return MHD_YES;
}

static enum MHD_Result http_resumed(struct http_req *r)
{
    struct MHD_Connection *c = r->conn;
    unsigned answer = r->answer;

    r->suspended = false;
    switch (answer) {
    case 0:
        break;
    case MHD_HTTP_NOT_FOUND:
        return http_error(c, answer, "not_found", "no task %lld", (long long)r->task_id);
    case MHD_HTTP_CONFLICT:
        return http_error(c, answer, "task_terminal",
                          "task %lld has already ended and cannot be cancelled",
                          (long long)r->task_id);
    case MHD_HTTP_SERVICE_UNAVAILABLE:
        return http_error(c, answer, "unavailable",
                          "the task could not be recorded (see GET /healthz); try again");
    default:
        return http_task(c, answer, r->task_id);
    }
    if (!r->ok)
        return http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "storage_failed",
                          "the task could not be written to the database");
    return http_task(c, r->async == HTTP_SUBMIT ? MHD_HTTP_CREATED : MHD_HTTP_OK, r->task_id);
}

/* --- query parsing ----------------------------------------------------- */

/*
 * The value of query parameter key: NULL if absent, "" if given without a
 * value ("?wait" alone), which every parameter here refuses.
 */
static const char *http_query(struct MHD_Connection *c, const char *key)
{
    const char *v = NULL;
    size_t n = 0;

    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v, &n) != MHD_YES)
        return NULL;
    return v != NULL ? v : "";
}

/* True if s is plain decimal seconds: digits, at most one '.', nothing else. */
static bool http_decimal(const char *s)
{
    int digits = 0, dots = 0;

    for (; *s; s++) {
        if (*s >= '0' && *s <= '9')
            digits++;
        else if (*s == '.' && dots++ == 0)
            continue;
        else
            return false;
    }
    return digits > 0;
}

/* Parses ?wait=S into a deadline.  0 = absent; -1 = invalid (answered). */
static int http_wait_until(struct MHD_Connection *c, int64_t *until, enum MHD_Result *rc)
{
    const char *v = http_query(c, "wait");
    double s;

    *until = 0;
    if (v == NULL)
        return 0;
    /* strtod alone would take 0x10, " 1", 1e2 and inf. */
    s = http_decimal(v) ? strtod(v, NULL) : -1;
    if (!(s > 0 && s <= HTTP_WAIT_MAX_S)) {
        *rc = http_error(c, MHD_HTTP_BAD_REQUEST, "invalid_query",
                         "query 'wait' must be a number of seconds, more than 0 and at most 300");
        return -1;
    }
    *until = task_mono_ms() + (int64_t)(s * 1000.0 + 0.5);
    return 0;
}

/* Parses a positive decimal int64 (no sign, no spaces).  0 / -1. */
static int http_parse_id(const char *s, int64_t *out)
{
    int64_t v = 0;

    if (*s == '\0' || *s == '0' || strlen(s) > 18)   /* one spelling per id: no "01" */
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v <= 0)
        return -1;
    *out = v;
    return 0;
}

/* --- routes ------------------------------------------------------------ */

static enum MHD_Result http_submit(struct http_req *r)
{
    struct task_error err;
    struct task *t;
    int64_t until, id;
    enum MHD_Result rc;

    if (http_wait_until(r->conn, &until, &rc) < 0)
        return rc;
    t = task_from_request(r->body ? r->body : "", r->len, http.cfg->allow_exec, &err);
    if (t == NULL) {
        unsigned status = strcmp(err.code, "exec_disabled") == 0 ? MHD_HTTP_FORBIDDEN
                        : strcmp(err.code, "out_of_memory") == 0 ? MHD_HTTP_SERVICE_UNAVAILABLE
                        : MHD_HTTP_BAD_REQUEST;
        return http_error(r->conn, status, err.code, "%s", err.message);
    }
    http_suspend(r, HTTP_SUBMIT, 0);
    id = engine_submit(t, until, http_on_done, r);
    if (id < 0)
        return http_answer_soon(r, MHD_HTTP_SERVICE_UNAVAILABLE);
    r->task_id = id;
    return MHD_YES;
}

static enum MHD_Result http_get_task(struct http_req *r, int64_t id)
{
    int64_t until;
    enum MHD_Result rc;

    if (http_wait_until(r->conn, &until, &rc) < 0)
        return rc;
    if (until == 0)
        return http_task(r->conn, MHD_HTTP_OK, id);
    http_suspend(r, HTTP_WAIT, id);
    switch (engine_wait(id, until, http_on_done, r)) {
    case ENGINE_PENDING:   return MHD_YES;
    case ENGINE_NOT_FOUND: return http_answer_soon(r, MHD_HTTP_NOT_FOUND);
    case ENGINE_ERROR:     return http_answer_soon(r, MHD_HTTP_SERVICE_UNAVAILABLE);
    default:               return http_answer_soon(r, MHD_HTTP_OK);
    }
}

static enum MHD_Result http_cancel(struct http_req *r, int64_t id)
{
    http_suspend(r, HTTP_CANCEL, id);
    switch (engine_cancel(id, http_on_done, r)) {
    case ENGINE_PENDING:   return MHD_YES;
    case ENGINE_NOT_FOUND: return http_answer_soon(r, MHD_HTTP_NOT_FOUND);
    case ENGINE_CONFLICT:  return http_answer_soon(r, MHD_HTTP_CONFLICT);
    default:               return http_answer_soon(r, MHD_HTTP_SERVICE_UNAVAILABLE);
    }
}

static enum MHD_Result http_list(struct MHD_Connection *c)
{
    const char *status = http_query(c, "status"), *kind = http_query(c, "kind");
    const char *limit = http_query(c, "limit"), *before = http_query(c, "before");
    struct store_filter f = { .limit = HTTP_LIST_DEFAULT };
    int64_t v, next;
    cJSON *o, *arr;

    if (status != NULL && *status != '\0') {
        if (task_status_parse(status, &f.status) < 0)
            return http_error(c, MHD_HTTP_BAD_REQUEST, "invalid_query",
                              "query 'status' must be one of queued, running, succeeded, failed, "
                              "cancelled, timed_out");
        f.has_status = true;
    }
    if (kind != NULL && *kind != '\0') {
        if (kind_find(kind) == NULL)
            return http_error(c, MHD_HTTP_BAD_REQUEST, "invalid_query",
                              "query 'kind': unknown kind '%.64s'", kind);
        f.kind = kind;
    }
    if (limit != NULL) {
        if (http_parse_id(limit, &v) < 0 || v > HTTP_LIST_MAX)
            return http_error(c, MHD_HTTP_BAD_REQUEST, "invalid_query",
                              "query 'limit' must be an integer from 1 to %d", HTTP_LIST_MAX);
        f.limit = (int)v;
    }
    if (before != NULL) {
        if (http_parse_id(before, &v) < 0)
            return http_error(c, MHD_HTTP_BAD_REQUEST, "invalid_query",
                              "query 'before' must be a positive task id");
        f.before = v;
    }
    o = cJSON_CreateObject();
    arr = o ? cJSON_AddArrayToObject(o, "tasks") : NULL;
    next = arr ? engine_list(&f, arr) : -1;
    if (next < 0 || !(next > 0 ? cJSON_AddNumberToObject(o, "next", (double)next)
                               : cJSON_AddNullToObject(o, "next"))) {
        cJSON_Delete(o);
        return http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot list tasks");
    }
    return http_json(c, MHD_HTTP_OK, o, NULL);
}

static enum MHD_Result http_workers(struct MHD_Connection *c)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || pool_describe(o) < 0) {
        cJSON_Delete(o);
        return http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot list workers");
    }
    return http_json(c, MHD_HTTP_OK, o, NULL);
}

static enum MHD_Result http_stats(struct MHD_Connection *c)
{
    struct engine_stats es;
    struct pool_stats ps;
    cJSON *o = cJSON_CreateObject();

    engine_stats_get(&es);
    pool_stats_get(&ps);
    if (o == NULL || stats_json(o, &es, &ps) < 0) {
        cJSON_Delete(o);
        return http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot build stats");
    }
    return http_json(c, MHD_HTTP_OK, o, NULL);
}

static enum MHD_Result http_metrics(struct MHD_Connection *c)
{
    struct engine_stats es;
    struct pool_stats ps;

    engine_stats_get(&es);
    pool_stats_get(&ps);
    return http_send(c, MHD_HTTP_OK, stats_prometheus(&es, &ps, events_subscribers()),
                     "text/plain; version=0.0.4; charset=utf-8", NULL);
}

static enum MHD_Result http_timeline(struct MHD_Connection *c)
{
    const char *v = http_query(c, "seconds");
    int64_t seconds = TIMELINE_KEEP_S;

    if (v != NULL && (http_parse_id(v, &seconds) < 0 || seconds > TIMELINE_KEEP_S))
        return http_error(c, MHD_HTTP_BAD_REQUEST, "invalid_query",
                          "query 'seconds' must be an integer from 1 to %d", TIMELINE_KEEP_S);
    char *text = timeline_render(task_now_ms(), (int)seconds);
    if (text == NULL)
        return http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out_of_memory",
                          "cannot render the timeline");
    return http_send(c, MHD_HTTP_OK, text, "application/json", NULL);
}

static enum MHD_Result http_kinds(struct MHD_Connection *c)
{
    cJSON *o = cJSON_CreateObject(), *arr = o ? cJSON_AddArrayToObject(o, "kinds") : NULL;

    if (arr == NULL)
        goto fail;
    for (const struct kind *k = kind_table(); k->name != NULL; k++) {
        cJSON *e = cJSON_CreateObject();
        if (e == NULL || !cJSON_AddItemToArray(arr, e) ||
            !cJSON_AddStringToObject(e, "name", k->name) ||
            !cJSON_AddRawToObject(e, "example", k->example) ||
            !cJSON_AddBoolToObject(e, "enabled", !k->needs_exec || http.cfg->allow_exec))
            goto fail;
    }
    return http_json(c, MHD_HTTP_OK, o, NULL);
fail:
    cJSON_Delete(o);
    return http_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot list kinds");
}

/* Constant-time check of "Authorization: Bearer TOKEN". */
static bool http_authorized(struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *tok = http.cfg->token;
    size_t tl = strlen(tok), hl;
    unsigned char diff = 0;

    /* The scheme is case-insensitive (RFC 7235), one or more spaces follow it. */
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    hl = strlen(h);
    /* Walk the full token whatever the header holds, so time does not tell where they differ. */
    for (size_t i = 0; i < tl; i++)
        diff |= (unsigned char)(tok[i] ^ (i < hl ? h[i] : 0));
    return diff == 0 && hl == tl;
}

static bool http_is(const char *method, const char *m) { return strcmp(method, m) == 0; }

static enum MHD_Result http_route(struct http_req *r, const char *url, const char *method)
{
    struct MHD_Connection *c = r->conn;
    bool get = http_is(method, "GET") || http_is(method, "HEAD");
    int64_t id;

    if (strcmp(url, "/healthz") == 0) {
        if (!get)
            return http_method_not_allowed(c, "GET, HEAD");
        if (__atomic_load_n(&http.shutting_down, __ATOMIC_ACQUIRE))
            return http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                              "taskpoold is shutting down");
        if (!engine_writing())
            return http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "storage_failed",
                              "taskpoold cannot write to its database; new tasks are refused");
        return http_send(c, MHD_HTTP_OK, strdup("{\"status\":\"ok\"}"), "application/json", NULL);
    }
    if (strcmp(url, "/metrics") == 0)
        return get ? http_metrics(c) : http_method_not_allowed(c, "GET, HEAD");
    if (strncmp(url, "/api/", 5) != 0 && strcmp(url, "/api") != 0)
        return static_serve(c, method, url);

    if (http.cfg->token != NULL && !http_authorized(c))
        return http_error(c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                          "send the token as 'Authorization: Bearer TOKEN'");
    if (__atomic_load_n(&http.shutting_down, __ATOMIC_ACQUIRE))
        return http_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                          "taskpoold is shutting down");
    if (strcmp(url, "/api/v1/tasks") == 0) {
        if (http_is(method, "POST"))
            return http_submit(r);
        return get ? http_list(c) : http_method_not_allowed(c, "GET, HEAD, POST");
    }
    if (strncmp(url, "/api/v1/tasks/", 14) == 0) {
        char idbuf[32];
        const char *rest = url + 14, *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (n >= sizeof idbuf)
            n = sizeof idbuf - 1;
        memcpy(idbuf, rest, n);
        idbuf[n] = '\0';
        if (http_parse_id(idbuf, &id) < 0)
            return http_error(c, MHD_HTTP_NOT_FOUND, "not_found",
                              "no such resource: task ids are positive integers");
        if (slash == NULL)
            return get ? http_get_task(r, id) : http_method_not_allowed(c, "GET, HEAD");
        if (strcmp(slash, "/cancel") == 0)
            return http_is(method, "POST") ? http_cancel(r, id)
                                           : http_method_not_allowed(c, "POST");
    } else if (strcmp(url, "/api/v1/workers") == 0) {
        return get ? http_workers(c) : http_method_not_allowed(c, "GET, HEAD");
    } else if (strcmp(url, "/api/v1/stats") == 0) {
        return get ? http_stats(c) : http_method_not_allowed(c, "GET, HEAD");
    } else if (strcmp(url, "/api/v1/timeline") == 0) {
        return get ? http_timeline(c) : http_method_not_allowed(c, "GET, HEAD");
    } else if (strcmp(url, "/api/v1/kinds") == 0) {
        return get ? http_kinds(c) : http_method_not_allowed(c, "GET, HEAD");
    } else if (strcmp(url, "/api/v1/events") == 0) {
        if (!get)
            return http_method_not_allowed(c, "GET");
        return events_serve(c);
    }
    return http_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such resource: %.200s", url);
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    struct http_req *r = *con_cls;

    (void)cls;
    (void)version;
    if (r == NULL) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        r->conn = c;
        *con_cls = r;
        __atomic_fetch_add(&http.inflight, 1, __ATOMIC_RELAXED);
        unsigned long long size = cl != NULL ? strtoull(cl, NULL, 10) : 0;
        if (size > HTTP_BODY_MAX) {
            /* A client that asked "Expect: 100-continue" waits for this
             * verdict, and a huge body is not worth reading: answer now.
             * Others send before they listen, and would only see the
             * connection reset: read the body, drop it, then answer. */
            if (size > HTTP_DISCARD_MAX ||
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT) != NULL)
                return http_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                                  "request body is over 1 MiB");
            r->too_large = true;
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > HTTP_BODY_MAX) {
            /* Answering mid-upload makes MHD drop the connection without a
             * reply: discard the rest and answer 413 once it is read, unless
             * it goes on and on (a chunked body has no length to refuse). */
            r->dropped += n;
            if (r->dropped > HTTP_DISCARD_MAX)
                return MHD_NO;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            r->too_large = true;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t ncap = r->cap ? r->cap : 1024;
            while (ncap < r->len + n)
                ncap *= 2;
            char *nb = realloc(r->body, ncap);
            if (nb == NULL)
                return MHD_NO;
            r->body = nb;
            r->cap = ncap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->suspended)
        return http_resumed(r);
    if (r->too_large)
        return http_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                          "request body is over 1 MiB");
    return http_route(r, url, method);
}

static void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_req *r = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (r == NULL)
        return;
    free(r->body);
    free(r);
    *con_cls = NULL;
    __atomic_fetch_sub(&http.inflight, 1, __ATOMIC_RELAXED);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("libmicrohttpd: %s", msg);
}

int http_start(const struct config *cfg)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
    char port[16], host[INET6_ADDRSTRLEN];
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int rc;

    http.cfg = cfg;
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    rc = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (rc != 0) {
        log_error("cannot resolve %s: %s", cfg->listen_host, gai_strerror(rc));
        return -1;
    }
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    http.daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, http_handle, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(ncpu > 1 ? ncpu : 1),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
        MHD_OPTION_END);
    if (http.daemon == NULL) {
        log_error("cannot listen on %s:%d (in use, or not an address of this machine?)",
                  cfg->listen_host, cfg->listen_port);
        freeaddrinfo(ai);
        return -1;
    }
    bool ai_family_is6 = ai->ai_family == AF_INET6;
    if (ai_family_is6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, host, sizeof host);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, host, sizeof host);
    freeaddrinfo(ai);
    info = MHD_get_daemon_info(http.daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port_no = info ? (unsigned)info->port : (unsigned)cfg->listen_port;
    log_info("listening on %s:%u (dashboard: http://%s%s%s:%u/)", host, port_no,
             ai_family_is6 ? "[" : "", host, ai_family_is6 ? "]" : "", port_no);
    return 0;
}

void http_begin_shutdown(void)
{
    __atomic_store_n(&http.shutting_down, 1, __ATOMIC_RELEASE);
}

void http_stop(void)
{
    struct timespec ts = { 0, 10 * 1000000L };

    if (http.daemon == NULL)
        return;
    /* Resumed requests still have to be written out by the I/O threads. */
    for (int waited = 0; waited < HTTP_STOP_WAIT_MS; waited += 10) {
        if (__atomic_load_n(&http.inflight, __ATOMIC_RELAXED) == 0)
            break;
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(http.daemon);
    http.daemon = NULL;
}
