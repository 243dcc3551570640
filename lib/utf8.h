/*
 * utf8.h - UTF-8 checks: refuse invalid text coming in (request bodies),
 * repair it going out (a command's output), so every JSON we emit is valid.
 */
#ifndef TASKPOOL_UTF8_H
#define TASKPOOL_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Length of the well-formed UTF-8 sequence at s (1 to 4), or 0 if the bytes
 * there are not one: truncated, overlong, a surrogate, past U+10FFFF, or NUL.
 */
size_t utf8_seq_len(const unsigned char *s, size_t avail);

/* True if all len bytes are well-formed UTF-8 without NUL. */
bool utf8_valid(const char *s, size_t len);

/*
 * Copies len bytes into a NUL-terminated string that is valid UTF-8: invalid
 * sequences and NUL bytes become U+FFFD.  Returns it (caller frees) or NULL.
 */
char *utf8_sanitize(const char *s, size_t len);

#endif
