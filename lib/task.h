/*
 * task.h - the task model: fields, status names, request validation and the
 * JSON form the API returns.  Pure data; no I/O, no threads.
 */
#ifndef TASKPOOL_TASK_H
#define TASKPOOL_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cJSON;

enum task_status {                 /* order matters: >= TASK_SUCCEEDED is terminal */
    TASK_QUEUED = 0,
    TASK_RUNNING,
    TASK_SUCCEEDED,
    TASK_FAILED,
    TASK_CANCELLED,
    TASK_TIMED_OUT,
    TASK_STATUS_COUNT
};

#define TASK_KIND_MAX       32     /* longest kind name, without the NUL */
#define TASK_PRIORITY_MIN   (-1000)
#define TASK_PRIORITY_MAX   1000
#define TASK_TIMEOUT_MAX_MS (7LL * 24 * 3600 * 1000)   /* a week: larger is a typo */
#define TASK_ATTEMPTS_MAX   100

struct task_usage {                /* resources used by the work, as the worker saw them */
    bool    set;                   /* false until the worker has reported */
    int64_t user_ms;
    int64_t sys_ms;
    int64_t max_rss_kb;
};

/*
 * One task.  Strings are owned by the task and never change once set, so a
 * snapshot may borrow them while the task lives (see engine.c).  Times are
 * Unix milliseconds, 0 meaning "not yet".
 */
struct task {
    int64_t          id;
    char             kind[TASK_KIND_MAX + 1];
    char            *args;         /* JSON text, compact */
    enum task_status status;
    int              priority;
    int64_t          timeout_ms;   /* 0 = no limit */
    int              max_attempts;
    int              attempts;     /* runs started so far */
    char            *result;       /* JSON text or NULL */
    char            *error_code;   /* NULL when no error */
    char            *error_message;
    pid_t            worker_pid;   /* 0 = none */
    pid_t            worker_ppid;
    int64_t          created_at;
    int64_t          started_at;
    int64_t          finished_at;
    struct task_usage usage;
};

/* A validation failure: which field and why, ready for a 400 body. */
struct task_error {
    char code[48];                 /* snake_case, e.g. "invalid_field" */
    char message[256];             /* names the field */
};

/* "queued", "running", ...; "unknown" for an out-of-range value. */
const char *task_status_name(enum task_status st);

/* Parses a status name.  Returns 0 and sets *st, or -1 if unknown. */
int task_status_parse(const char *name, enum task_status *st);

static inline bool task_status_terminal(enum task_status st) { return st >= TASK_SUCCEEDED; }

/*
 * Builds a new queued task from a POST body (not NUL-terminated, len bytes).
 * Checks every field and the kind's own args; exec kinds need allow_exec.
 * Returns the task, or NULL with *err filled (err->code "exec_disabled" means
 * the caller should answer 403, any other code 400).  Allocation failure
 * gives code "out_of_memory".
 */
struct task *task_from_request(const char *body, size_t len, bool allow_exec,
                               struct task_error *err);

/* Frees a task and its strings.  NULL is fine. */
void task_free(struct task *t);

/* Sets the terminal error.  Returns 0, or -1 on allocation failure (unchanged). */
int task_set_error(struct task *t, const char *code, const char *message);

/*
 * Renders the API's task object.  with_payload=false leaves out args and
 * result (for event streams and lists of many tasks).
 * Returns a new cJSON object or NULL on allocation failure.
 */
struct cJSON *task_to_json(const struct task *t, bool with_payload);

/* Wall clock in Unix milliseconds: for timestamps that are recorded. */
int64_t task_now_ms(void);

/* Monotonic milliseconds: for deadlines, which a clock step must not move. */
int64_t task_mono_ms(void);

/* Formats ms as RFC 3339 UTC with milliseconds into buf (>= 25 bytes). */
void task_format_time(int64_t ms, char *buf, size_t size);

#endif
