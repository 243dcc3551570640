/*
 * json.h - where cJSON is lenient or lossy, the strict checks and exact
 * printing taskpool needs: a request body is refused unless it is RFC 8259
 * JSON, and a number goes back out as the same double that came in.
 */
#ifndef TASKPOOL_JSON_H
#define TASKPOOL_JSON_H

#include <stddef.h>

struct cJSON;

#define JSON_DEPTH_MAX 1000        /* cJSON's own nesting limit */

/*
 * Checks that the len bytes at s are exactly one JSON value (RFC 8259),
 * with whitespace around it allowed.  cJSON takes more: 01, 1., -.5, raw
 * control characters in strings, lone surrogate escapes.  On top of the RFC,
 * \u0000 is refused (C strings end there, so echo would answer less than it
 * got).  UTF-8 is not checked here (utf8_valid does).
 * Returns 0, or -1 with why filled ("a number has a leading zero at byte
 * 12").
 */
int json_check(const char *s, size_t len, char *why, size_t size);

/*
 * Compact JSON text of v (caller frees), or NULL when out of memory.
 * Numbers are printed with the fewest significant digits from 15 to 17 that
 * read back as the same double: cJSON prints 15 and calls close numbers equal,
 * so 2^53-1 would come back as 9007199254740990, 0.1+0.2 as 0.3, and the
 * largest double as infinity.
 */
char *json_print(const struct cJSON *v);

/* Writes that text of a finite d into buf (>= 32 bytes); "null" for inf and NaN. */
void json_format_number(double d, char *buf, size_t size);

#endif
