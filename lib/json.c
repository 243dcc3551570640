/*
 * json.c - strict JSON checking and exact number printing (see json.h).
 */
#include "json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_scan {
    const char *s;
    size_t      len, pos;
    char       *why;
    size_t      size;
};

static int json_fail(struct json_scan *j, const char *what)
{
    snprintf(j->why, j->size, "%s at byte %zu", what, j->pos);
    return -1;
}

static bool json_more(const struct json_scan *j) { return j->pos < j->len; }

static char json_peek(const struct json_scan *j) { return json_more(j) ? j->s[j->pos] : '\0'; }

static bool json_digit(char c) { return c >= '0' && c <= '9'; }

static void json_skip_space(struct json_scan *j)
{
    while (json_more(j) && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                            j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

/* Four hex digits after "\u"; -1 if they are not. */
static long json_hex4(struct json_scan *j)
{
    long v = 0;

    for (int i = 0; i < 4; i++, j->pos++) {
        char c = json_peek(j);
        int d = json_digit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static int json_scan_string(struct json_scan *j)
{
    j->pos++;                              /* the opening quote */
    for (;;) {
        if (!json_more(j))
            return json_fail(j, "a string is not closed");
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c == '"') {
            j->pos++;
            return 0;
        }
        if (c < 0x20)
            return json_fail(j, "a control character in a string must be escaped");
        if (c != '\\') {
            j->pos++;
            continue;
        }
        j->pos++;
        switch (json_peek(j)) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            j->pos++;
            continue;
        case 'u':
            break;
        default:
            return json_fail(j, "a string has an invalid escape");
        }
        size_t escape = j->pos - 1;        /* where "\u" starts, for the message */
        j->pos++;
        long cp = json_hex4(j);
        if (cp < 0)
            return json_fail(j, "a \\u escape needs four hex digits");
        if (cp == 0)
            return json_fail(j, "strings must not contain \\u0000");
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            j->pos = escape;
            return json_fail(j, "a \\u escape is the second half of a surrogate pair alone");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            bool paired = json_peek(j) == '\\' && j->pos + 1 < j->len && j->s[j->pos + 1] == 'u';
            if (paired) {
                j->pos += 2;
                long lo = json_hex4(j);
                paired = lo >= 0xDC00 && lo <= 0xDFFF;
            }
            if (!paired) {
                j->pos = escape;
                return json_fail(j, "a \\u escape is the first half of a surrogate pair alone");
            }
        }
    }
}

static int json_scan_number(struct json_scan *j)
{
    if (json_peek(j) == '-')
        j->pos++;
    if (!json_digit(json_peek(j)))
        return json_fail(j, "a number needs digits");
    if (json_peek(j) == '0') {
        j->pos++;
        if (json_digit(json_peek(j)))
            return json_fail(j, "a number has a leading zero");
    }
    while (json_digit(json_peek(j)))
        j->pos++;
    if (json_peek(j) == '.') {
        j->pos++;
        if (!json_digit(json_peek(j)))
            return json_fail(j, "a number needs digits after its decimal point");
        while (json_digit(json_peek(j)))
            j->pos++;
    }
    if (json_peek(j) == 'e' || json_peek(j) == 'E') {
        j->pos++;
        if (json_peek(j) == '+' || json_peek(j) == '-')
            j->pos++;
        if (!json_digit(json_peek(j)))
            return json_fail(j, "a number needs digits in its exponent");
        while (json_digit(json_peek(j)))
            j->pos++;
    }
    return 0;
}

static int json_scan_word(struct json_scan *j)
{
    static const char *const words[] = { "true", "false", "null" };

    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i]);
        if (j->len - j->pos >= n && memcmp(j->s + j->pos, words[i], n) == 0) {
            j->pos += n;
            return 0;
        }
    }
    return json_fail(j, "expected a value");
}

/*
 * The grammar without recursion: open containers are kept on a stack of
 * '{' and '[' (so a body of a million '[' costs no C stack), and the loop
 * alternates between reading a value and what may follow one.
 */
int json_check(const char *s, size_t len, char *why, size_t size)
{
    struct json_scan j = { s, len, 0, why, size };
    char open[JSON_DEPTH_MAX];
    int depth = 0;

    for (;;) {
        /* A value. */
        json_skip_space(&j);
        char c = json_peek(&j);
        if (c == '{' || c == '[') {
            if (depth == JSON_DEPTH_MAX)
                return json_fail(&j, "values are nested more than 1000 deep");
            open[depth++] = c;
            j.pos++;
            json_skip_space(&j);
            if (json_peek(&j) == (c == '{' ? '}' : ']')) {
                j.pos++;
                depth--;
            } else if (c == '{') {
                goto field_name;
            } else {
                continue;                  /* the first element */
            }
        } else if (c == '"') {
            if (json_scan_string(&j) < 0)
                return -1;
        } else if (c == '-' || json_digit(c)) {
            if (json_scan_number(&j) < 0)
                return -1;
        } else if (!json_more(&j)) {
            return json_fail(&j, "the text ends where a value should be");
        } else if (json_scan_word(&j) < 0) {
            return -1;
        }
        /* What may follow a value: a comma, the end of containers, the end. */
        for (;;) {
            json_skip_space(&j);
            if (depth == 0) {
                if (json_more(&j))
                    return json_fail(&j, "unexpected text after the value");
                return 0;
            }
            c = json_peek(&j);
            char close = open[depth - 1] == '{' ? '}' : ']';
            if (c == close) {
                j.pos++;
                depth--;
                continue;
            }
            if (c != ',')
                return json_fail(&j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
            j.pos++;
            break;
        }
        if (open[depth - 1] == '[')
            continue;
field_name:
        json_skip_space(&j);
        if (json_peek(&j) != '"')
            return json_fail(&j, "expected a field name in double quotes");
        if (json_scan_string(&j) < 0)
            return -1;
        json_skip_space(&j);
        if (json_peek(&j) != ':')
            return json_fail(&j, "expected ':' after a field name");
        j.pos++;
    }
}

void json_format_number(double d, char *buf, size_t size)
{
    if (!isfinite(d)) {
        snprintf(buf, size, "null");       /* what cJSON does; callers refuse these first */
        return;
    }
    /* %g drops trailing zeros, so 0.1 stays "0.1"; 17 digits always read back. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static bool json_has_numbers(const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsNumber(v))
        return true;
    cJSON_ArrayForEach(c, v)
        if (json_has_numbers(c))
            return true;
    return false;
}

/* Turns every number below v into a raw node with its exact text.  0 / -1. */
static int json_exact_numbers(cJSON *v)
{
    char buf[32];
    cJSON *c;

    if (cJSON_IsNumber(v)) {
        json_format_number(v->valuedouble, buf, sizeof buf);
        char *text = strdup(buf);
        if (text == NULL)
            return -1;
        v->type = cJSON_Raw;
        v->valuestring = text;
        return 0;
    }
    cJSON_ArrayForEach(c, v)
        if (json_exact_numbers(c) < 0)
            return -1;
    return 0;
}

char *json_print(const cJSON *v)
{
    cJSON *copy;
    char *text = NULL;

    if (!json_has_numbers(v))
        return cJSON_PrintUnformatted(v);
    /* Raw nodes print verbatim: a copy with exact texts in place of numbers. */
    copy = cJSON_Duplicate(v, true);
    if (copy != NULL && json_exact_numbers(copy) == 0)
        text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    return text;
}
