/*
 * text.c - a growable text buffer (see text.h).
 */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void text_init(struct text *t, size_t size)
{
    t->len = 0;
    t->cap = size > 0 ? size : 64;
    t->buf = malloc(t->cap);
    t->failed = t->buf == NULL;
    if (t->buf != NULL)
        t->buf[0] = '\0';
}

void text_printf(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t ncap = (t->cap + (size_t)n + 1) * 2;
        char *nb = realloc(t->buf, ncap);
        if (nb == NULL) {
            t->failed = true;
            return;
        }
        t->buf = nb;
        t->cap = ncap;
    }
}

char *text_take(struct text *t)
{
    char *s = t->buf;

    if (t->failed) {
        free(s);
        s = NULL;
    }
    t->buf = NULL;
    t->len = t->cap = 0;
    return s;
}
