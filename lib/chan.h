/*
 * chan.h - the framed channel between the daemon and a worker process.
 *
 * Every message is a 16-byte header {type, payload length, task id} followed
 * by the payload.  Both ends run on the same machine from the same binary, so
 * integers travel in host byte order.  A reader refuses a frame with an
 * unknown type or a length over its limit: the peer is then broken and the
 * caller closes the channel (and so kills or loses the worker).
 */
#ifndef TASKPOOL_CHAN_H
#define TASKPOOL_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum chan_msg_type {
    CHAN_MSG_HELLO = 1,            /* worker -> daemon: struct chan_hello */
    CHAN_MSG_TASK,                 /* daemon -> worker: kind NUL args-json */
    CHAN_MSG_RESULT,               /* worker -> daemon: struct chan_result + strings */
    CHAN_MSG_TYPE_MAX
};

struct chan_header {
    uint32_t type;
    uint32_t len;                  /* payload bytes after the header */
    int64_t  task_id;
};

/*
 * CPU a worker has used so far, itself and the children it has reaped.  It
 * comes with HELLO and every RESULT, so that when the daemon cuts a run
 * short (timeout, cancel, death) it can tell what that run used: the
 * worker's total then, less this.
 */
struct chan_cpu {
    int64_t user_ms;
    int64_t sys_ms;
};

struct chan_hello {
    int32_t pid;
    int32_t ppid;                  /* the worker's parent as the worker sees it */
    struct chan_cpu total;
};

/* What a task used, as the worker measured it. */
struct chan_usage {
    int64_t user_ms;
    int64_t sys_ms;
    int64_t max_rss_kb;
};

/* Fixed part of a RESULT; three strings of the given lengths follow, no NULs. */
struct chan_result {
    int32_t  ok;
    int32_t  pad;
    struct chan_usage usage;       /* the task's */
    struct chan_cpu total;         /* the worker's, after it */
    uint32_t result_len;           /* JSON text; 0 = none */
    uint32_t code_len;             /* error code; 0 = none */
    uint32_t message_len;          /* error message */
    uint32_t pad2;
};

/*
 * A frame being read from a non-blocking or blocking fd.  The buffer grows to
 * hold one whole frame, never beyond max_payload.
 */
struct chan_reader {
    char   *buf;
    size_t  off;                   /* start of the bytes not yet returned */
    size_t  len;                   /* end of the bytes held */
    size_t  cap;
    size_t  max_payload;
};

/* A decoded message; payload points into the reader's buffer until the next read. */
struct chan_msg {
    uint32_t    type;
    int64_t     task_id;
    const char *payload;
    uint32_t    len;
};

void chan_reader_init(struct chan_reader *r, size_t max_payload);
void chan_reader_free(struct chan_reader *r);

/*
 * Reads what the fd has (one read call) into the reader.
 * Returns bytes read (> 0), 0 on EOF, -1 on error (errno set; EAGAIN when a
 * non-blocking fd has nothing).
 */
ssize_t chan_reader_fill(struct chan_reader *r, int fd);

/*
 * Takes the next whole frame out of what has been read.
 * Returns 1 with *msg set, 0 if more bytes are needed, -1 if the frame is
 * malformed (unknown type or oversized): the channel must be closed.
 * A message stays valid until the next call to chan_reader_next or _fill.
 */
int chan_reader_next(struct chan_reader *r, struct chan_msg *msg);

/*
 * Writes one frame whose payload is the concatenation of n parts (at most
 * CHAN_PARTS_MAX), retrying short writes and EINTR (on a blocking fd).
 * Returns 0, or -1 with errno set (EINVAL for too many parts).
 */
#define CHAN_PARTS_MAX 7
struct chan_part { const void *data; size_t len; };
int chan_send(int fd, uint32_t type, int64_t task_id,
              const struct chan_part *parts, size_t n);

/*
 * The largest RESULT payload, given the exec output cap: two full streams,
 * each JSON-escaped at up to 6 bytes a byte, with room for the rest of the
 * frame (keys, code, message: the worker keeps 64 KiB of it free), or a
 * built-in's result (a few times its 1 MiB args at most), whichever is
 * larger.  A worker that would send more reports "result_too_large" instead.
 */
static inline size_t chan_result_max(size_t max_output)
{
    size_t exec = 12 * max_output + 128 * 1024, builtin = 16 * 1024 * 1024;
    return exec > builtin ? exec : builtin;
}

/* Builds and sends a RESULT from its parts.  Returns 0 or -1 (errno set). */
int chan_send_result(int fd, int64_t task_id, int ok, const struct chan_usage *usage,
                     const struct chan_cpu *total, const char *result, const char *code,
                     const char *message);

/*
 * Splits a RESULT payload.  Strings are returned as pointers + lengths into
 * the payload.  Returns 0, or -1 if the lengths do not add up.
 */
struct chan_result_view {
    struct chan_result fixed;
    const char *result;  size_t result_len;
    const char *code;    size_t code_len;
    const char *message; size_t message_len;
};
int chan_parse_result(const struct chan_msg *msg, struct chan_result_view *out);

#endif
