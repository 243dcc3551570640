/*
 * queue.c - binary min-heap on (-priority, id): the ready queue.
 */
#include "queue.h"

#include <stdlib.h>

/* True if a must come out before b. */
static int queue_before(const struct queue_item *a, const struct queue_item *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->id < b->id;
}

static void queue_swap(struct queue *q, size_t i, size_t j)
{
    struct queue_item tmp = q->items[i];
    q->items[i] = q->items[j];
    q->items[j] = tmp;
}

static void queue_sift_up(struct queue *q, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!queue_before(&q->items[i], &q->items[parent]))
            break;
        queue_swap(q, i, parent);
        i = parent;
    }
}

static void queue_sift_down(struct queue *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < q->len && queue_before(&q->items[l], &q->items[best]))
            best = l;
        if (r < q->len && queue_before(&q->items[r], &q->items[best]))
            best = r;
        if (best == i)
            return;
        queue_swap(q, i, best);
        i = best;
    }
}

void queue_init(struct queue *q)
{
    q->items = NULL;
    q->len = 0;
    q->cap = 0;
}

void queue_free(struct queue *q)
{
    free(q->items);
    queue_init(q);
}

int queue_push(struct queue *q, int priority, int64_t id, void *data)
{
    if (q->len == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 64;
        struct queue_item *n = realloc(q->items, ncap * sizeof *n);
        if (n == NULL)
            return -1;
        q->items = n;
        q->cap = ncap;
    }
    q->items[q->len] = (struct queue_item){ priority, id, data };
    queue_sift_up(q, q->len);
    q->len++;
    return 0;
}

int queue_pop(struct queue *q, struct queue_item *out)
{
    if (q->len == 0)
        return -1;
    *out = q->items[0];
    q->items[0] = q->items[--q->len];
    queue_sift_down(q, 0);
    return 0;
}

int queue_remove(struct queue *q, int64_t id)
{
    for (size_t i = 0; i < q->len; i++) {
        if (q->items[i].id != id)
            continue;
        q->items[i] = q->items[--q->len];
        if (i < q->len) {
            queue_sift_down(q, i);
            queue_sift_up(q, i);
        }
        return 0;
    }
    return -1;
}
