/*
 * idmap.h - a hash map from task id (int64) to pointer, open addressing with
 * linear probing and backward-shift deletion (no tombstones, so lookups stay
 * short under churn).  Not thread-safe.
 */
#ifndef TASKPOOL_IDMAP_H
#define TASKPOOL_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_slot { int64_t id; void *value; };   /* id 0 = empty */

struct idmap {
    struct idmap_slot *slots;
    size_t             mask;       /* capacity - 1; capacity is a power of two */
    size_t             len;
};

void   idmap_init(struct idmap *m);
void   idmap_free(struct idmap *m);                /* the values are the caller's */
/* Adds or replaces; id must be > 0.  Returns 0, or -1 on allocation failure (unchanged). */
int    idmap_put(struct idmap *m, int64_t id, void *value);
void  *idmap_get(const struct idmap *m, int64_t id);   /* NULL if absent */
void  *idmap_del(struct idmap *m, int64_t id);         /* the removed value, or NULL */

/* Calls fn for every entry, in no order.  fn must not change the map. */
void   idmap_each(const struct idmap *m, void (*fn)(int64_t id, void *value, void *arg), void *arg);

#endif
