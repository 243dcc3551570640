/*
 * journal.h - the dispatch journal: a record, written before a task is sent
 * to its worker, that it is being started.
 *
 * The task's row says "running" only once the writer commits it, a moment
 * after the task was sent.  If the daemon dies in that moment the row still
 * says "queued", and the task would run again however few attempts it had.
 * So the dispatcher first appends {task id, attempt} here with one write(2):
 * no fsync, since what it guards against is a crash of this process, which
 * leaves written data in the kernel.  At start, journal_replay reports every
 * record, and the store marks as running each task whose row does not yet
 * show that attempt; the usual recovery then requeues or fails it.
 *
 * Two files alternate: once the current one is large, records go to the
 * other, and the old one is emptied when every start it recorded has been
 * committed (the caller says when, by op sequence number).
 * Not thread-safe: one thread (the dispatcher) appends.
 */
#ifndef TASKPOOL_JOURNAL_H
#define TASKPOOL_JOURNAL_H

#include <stdint.h>

struct journal;

/* Opens (creating) PATH-dispatch-0 and -1 beside the database.  NULL after logging. */
struct journal *journal_open(const char *db_path);

void journal_close(struct journal *j);

/*
 * Records that task id starts its attempt-th run; seq is the sequence number
 * of the op that will commit that start.  0, or -1 after logging (the caller
 * must not send the task then).
 */
int journal_append(struct journal *j, int64_t id, int32_t attempt, uint64_t seq);

/* Every op up to seq is committed: a file whose records are all older may be emptied. */
void journal_committed(struct journal *j, uint64_t seq);

/*
 * Calls fn for every record in both files (db_path's journal), in no
 * particular order; torn or foreign records are skipped.  0 / -1 (fn's -1 stops).
 */
int journal_replay(const char *db_path, int (*fn)(int64_t id, int32_t attempt, void *arg),
                   void *arg);

/* Empties both files (after a successful recovery).  0 / -1. */
int journal_reset(struct journal *j);

#endif
