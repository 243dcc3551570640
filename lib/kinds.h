/*
 * kinds.h - the table of task kinds.  A kind checks its args when a task is
 * submitted (in the daemon) and does the work (in a worker process).  Adding a
 * kind is one function pair plus one line in the table in kinds.c.
 */
#ifndef TASKPOOL_KINDS_H
#define TASKPOOL_KINDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* What running a task produced.  Strings are malloc'd, owned by the caller. */
struct kind_outcome {
    bool  ok;                      /* true: succeeded, false: failed */
    char *result;                  /* JSON text or NULL */
    char *error_code;              /* set when !ok */
    char *error_message;
    int64_t child_max_rss_kb;      /* peak RSS of a command the kind ran; 0 = none */
};

/* Limits a worker applies to the work it runs. */
struct kind_limits {
    size_t max_output;             /* bytes kept per stream of an exec command */
};

struct kind {
    const char *name;
    bool        needs_exec;        /* refused unless the daemon runs with --allow-exec */
    /* Checks args (NULL: any JSON will do).  Returns 0, or -1 with msg naming the field. */
    int  (*validate)(const struct cJSON *args, char *msg, size_t msgsize);
    /* Does the work.  Returns 0 with *out filled, or -1 on allocation failure. */
    int  (*run)(const struct cJSON *args, const struct kind_limits *lim,
                struct kind_outcome *out);
    const char *example;           /* valid args as JSON, for the dashboard's form */
};

/*
 * Refuses any member of obj not named in names (NULL-terminated): an unknown
 * field is most often a typo.  A name given twice is refused too.  prefix
 * names where obj sits ("" or "args.").
 * Returns 0, or -1 with msg filled.
 */
int kind_only_fields(const struct cJSON *obj, const char *const *names, const char *prefix,
                     char *msg, size_t size);

#define KIND_MAX 16                /* entries the table may hold: counters by kind are this big */

/* The kind called name, or NULL. */
const struct kind *kind_find(const char *name);

/* The whole table, terminated by an entry whose name is NULL. */
const struct kind *kind_table(void);

/* Frees the strings of an outcome and zeroes it. */
void kind_outcome_clear(struct kind_outcome *out);

#endif
