/*
 * text.h - a growable text buffer, for answers built piece by piece (the
 * Prometheus exposition, the timeline).  An allocation failure is kept and
 * reported once at the end, so building code need not check every piece.
 */
#ifndef TASKPOOL_TEXT_H
#define TASKPOOL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct text {
    char  *buf;
    size_t len, cap;
    bool   failed;                 /* an allocation failed: text_take gives NULL */
};

/* Starts an empty text with room for about size bytes (it grows as needed). */
void text_init(struct text *t, size_t size);

/* Appends printf-style; does nothing once the text has failed. */
void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The NUL-terminated text (the caller frees it), or NULL if anything failed. */
char *text_take(struct text *t);

#endif
