/*
 * idmap.c - int64 -> pointer hash map (see idmap.h).
 */
#include "idmap.h"

#include <stdlib.h>

static size_t idmap_hash(int64_t id, size_t mask)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ULL;   /* Fibonacci hashing spreads sequential ids */
    return (size_t)(x >> 32) & mask;
}

void idmap_init(struct idmap *m)
{
    m->slots = NULL;
    m->mask = 0;
    m->len = 0;
}

void idmap_free(struct idmap *m)
{
    free(m->slots);
    idmap_init(m);
}

static int idmap_grow(struct idmap *m)
{
    size_t ncap = m->slots ? (m->mask + 1) * 2 : 64;
    struct idmap_slot *ns = calloc(ncap, sizeof *ns);

    if (ns == NULL)
        return -1;
    for (size_t i = 0; m->slots && i <= m->mask; i++) {
        if (m->slots[i].id == 0)
            continue;
        size_t j = idmap_hash(m->slots[i].id, ncap - 1);
        while (ns[j].id != 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->mask = ncap - 1;
    return 0;
}

int idmap_put(struct idmap *m, int64_t id, void *value)
{
    size_t i;

    if (id == 0)
        return -1;   /* 0 marks an empty slot */
    /* Keep the load under 1/2 so probes stay short. */
    if ((m->len + 1) * 2 > (m->slots ? m->mask + 1 : 0) && idmap_grow(m) < 0)
        return -1;
    for (i = idmap_hash(id, m->mask); m->slots[i].id != 0; i = (i + 1) & m->mask) {
        if (m->slots[i].id == id) {
            m->slots[i].value = value;
            return 0;
        }
    }
    m->slots[i].id = id;
    m->slots[i].value = value;
    m->len++;
    return 0;
}

void *idmap_get(const struct idmap *m, int64_t id)
{
    if (m->slots == NULL)
        return NULL;
    for (size_t i = idmap_hash(id, m->mask); m->slots[i].id != 0; i = (i + 1) & m->mask)
        if (m->slots[i].id == id)
            return m->slots[i].value;
    return NULL;
}

void *idmap_del(struct idmap *m, int64_t id)
{
    size_t i, j;
    void *value;

    if (m->slots == NULL || id == 0)
        return NULL;
    for (i = idmap_hash(id, m->mask); m->slots[i].id != id; i = (i + 1) & m->mask)
        if (m->slots[i].id == 0)
            return NULL;
    value = m->slots[i].value;
    /* Backward shift: pull later members of the probe run into the hole. */
    for (j = (i + 1) & m->mask; m->slots[j].id != 0; j = (j + 1) & m->mask) {
        size_t home = idmap_hash(m->slots[j].id, m->mask);
        /* Move j into i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].id = 0;
    m->slots[i].value = NULL;
    m->len--;
    return value;
}

void idmap_each(const struct idmap *m, void (*fn)(int64_t id, void *value, void *arg), void *arg)
{
    for (size_t i = 0; m->slots && i <= m->mask; i++)
        if (m->slots[i].id != 0)
            fn(m->slots[i].id, m->slots[i].value, arg);
}
