/*
 * exec.h - the `exec` kind: runs a command without a shell, as a child of the
 * worker, feeding stdin and capturing stdout/stderr concurrently with a cap.
 */
#ifndef TASKPOOL_EXEC_H
#define TASKPOOL_EXEC_H

#include <stddef.h>

struct cJSON;
struct kind_limits;
struct kind_outcome;

/* Checks {"argv": [str, ...], "stdin": str, "env": {str: str}, "cwd": str}. 0 / -1 with msg. */
int exec_validate(const struct cJSON *args, char *msg, size_t size);

/*
 * Runs the command and waits for it.  The command stays in the caller's
 * process group.  When it exits, anything it left running is killed: a
 * task's processes end with the task (the caller should be a child
 * subreaper, so that even processes that left the group are found).
 * Exit code 0 -> ok; otherwise failed with code "exit_status", or
 * "exec_failed" if it could not start (the message says which step failed).
 * Returns 0, or -1 on allocation failure.
 */
int exec_run(const struct cJSON *args, const struct kind_limits *lim, struct kind_outcome *out);

#endif
