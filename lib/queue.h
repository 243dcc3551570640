/*
 * queue.h - the ready queue: a binary heap of tasks, highest priority first,
 * lowest id first within a priority (FIFO, since ids grow with submission).
 * Not thread-safe: the engine's lock protects it.
 */
#ifndef TASKPOOL_QUEUE_H
#define TASKPOOL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct queue_item {
    int      priority;
    int64_t  id;
    void    *data;
};

struct queue {
    struct queue_item *items;
    size_t             len;
    size_t             cap;
};

void   queue_init(struct queue *q);
void   queue_free(struct queue *q);       /* frees the array, not the data */

/* Adds an item.  Returns 0, or -1 on allocation failure (queue unchanged). */
int    queue_push(struct queue *q, int priority, int64_t id, void *data);

/* Removes the first item into *out.  Returns 0, or -1 if empty. */
int    queue_pop(struct queue *q, struct queue_item *out);

/* Removes the item with this id.  Returns 0, or -1 if absent.  O(n). */
int    queue_remove(struct queue *q, int64_t id);

static inline size_t queue_len(const struct queue *q) { return q->len; }

#endif
