/*
 * utf8.c - UTF-8 well-formedness (see utf8.h), per RFC 3629.
 */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0], cp;
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;

    if (n == 0 || avail < n || c == 0)
        return 0;
    if (n == 1)
        return 1;
    cp = n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    /* Refuse overlong forms, surrogates and values past U+10FFFF. */
    if ((n == 2 && cp < 0x80) || (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        size_t n = utf8_seq_len(p, (size_t)(end - p));
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

char *utf8_sanitize(const char *s, size_t len)
{
    /* Worst case every byte becomes the 3-byte U+FFFD. */
    char *out = malloc(len * 3 + 1), *o = out;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    if (out == NULL)
        return NULL;
    while (p < end) {
        size_t n = utf8_seq_len(p, (size_t)(end - p));
        if (n > 0) {
            memcpy(o, p, n);
            o += n;
            p += n;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            p++;
        }
    }
    *o = '\0';
    return out;
}
