/*
 * kinds.c - the built-in task kinds and the table that names them.
 * To add a kind: write its validate and run functions, add one line to
 * kind_list below.
 */
#include "kinds.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec.h"
#include "json.h"

/* Sets a successful outcome from a cJSON value (consumed).  0 / -1 (ENOMEM). */
static int kind_succeed(struct kind_outcome *out, cJSON *result)
{
    if (result == NULL)
        return -1;
    out->ok = true;
    out->result = json_print(result);
    cJSON_Delete(result);
    return out->result != NULL ? 0 : -1;
}

static const cJSON *kind_arg(const cJSON *args, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(args, name);
}

static int kind_require_object(const cJSON *args, char *msg, size_t size)
{
    if (!cJSON_IsObject(args)) {
        snprintf(msg, size, "field 'args' must be an object");
        return -1;
    }
    return 0;
}

int kind_only_fields(const cJSON *obj, const char *const *names, const char *prefix, char *msg,
                     size_t size)
{
    const cJSON *f;
    uint32_t seen = 0;             /* names[i] seen: bit i (lists are short) */

    cJSON_ArrayForEach(f, obj) {
        int i;
        for (i = 0; names[i] != NULL; i++)
            if (strcmp(f->string, names[i]) == 0)
                break;
        if (names[i] == NULL) {
            snprintf(msg, size, "field '%s%.64s' is not known", prefix, f->string);
            return -1;
        }
        /* cJSON keeps both and we would read the first: refuse rather than guess. */
        if (i < 32 && (seen & (1u << i))) {
            snprintf(msg, size, "field '%s%s' appears more than once", prefix, names[i]);
            return -1;
        }
        seen |= i < 32 ? 1u << i : 0;
    }
    return 0;
}

/* echo: any JSON; the result is the args, exactly. */

static int kind_echo_run(const cJSON *args, const struct kind_limits *lim, struct kind_outcome *out)
{
    (void)lim;
    out->ok = true;
    out->result = json_print(args);
    return out->result != NULL ? 0 : -1;
}

/* sleep {"seconds": 0..3600} */

static int kind_sleep_validate(const cJSON *args, char *msg, size_t size)
{
    static const char *const fields[] = { "seconds", NULL };
    const cJSON *s;

    if (kind_require_object(args, msg, size) < 0 || kind_only_fields(args, fields, "args.", msg, size) < 0)
        return -1;
    s = kind_arg(args, "seconds");
    if (!cJSON_IsNumber(s) || !(s->valuedouble >= 0 && s->valuedouble <= 3600)) {
        snprintf(msg, size, "field 'args.seconds' must be a number from 0 to 3600");
        return -1;
    }
    return 0;
}

static int kind_sleep_run(const cJSON *args, const struct kind_limits *lim,
                          struct kind_outcome *out)
{
    double secs = kind_arg(args, "seconds")->valuedouble;
    struct timespec ts = { (time_t)secs, (long)((secs - floor(secs)) * 1e9) };
    cJSON *r;

    (void)lim;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    r = cJSON_CreateObject();
    if (r != NULL && cJSON_AddNumberToObject(r, "slept", secs) == NULL) {
        cJSON_Delete(r);
        r = NULL;
    }
    return kind_succeed(out, r);
}

/* square / cube {"numbers": [n, ...]} */

static int kind_numbers_validate(const cJSON *args, char *msg, size_t size)
{
    static const char *const fields[] = { "numbers", NULL };
    const cJSON *nums, *n;
    int i = 0;

    if (kind_require_object(args, msg, size) < 0 || kind_only_fields(args, fields, "args.", msg, size) < 0)
        return -1;
    nums = kind_arg(args, "numbers");
    if (!cJSON_IsArray(nums)) {
        snprintf(msg, size, "field 'args.numbers' must be an array of numbers");
        return -1;
    }
    cJSON_ArrayForEach(n, nums) {
        if (!cJSON_IsNumber(n)) {
            snprintf(msg, size, "field 'args.numbers[%d]' must be a number", i);
            return -1;
        }
        i++;
    }
    return 0;
}

static int kind_power_run(const cJSON *args, struct kind_outcome *out, int power)
{
    const cJSON *n;
    cJSON *r = cJSON_CreateObject(), *list;

    list = r != NULL ? cJSON_AddArrayToObject(r, "results") : NULL;
    if (list == NULL)
        goto fail;
    int i = 0;
    cJSON_ArrayForEach(n, kind_arg(args, "numbers")) {
        double v = n->valuedouble, p = power == 2 ? v * v : v * v * v;
        cJSON *item;
        if (!isfinite(p)) {
            char msg[128];
            snprintf(msg, sizeof msg, "args.numbers[%d] to the power %d overflows a double", i,
                     power);
            cJSON_Delete(r);
            out->ok = false;
            out->error_code = strdup("overflow");
            out->error_message = strdup(msg);
            return out->error_code && out->error_message ? 0 : -1;
        }
        i++;
        item = cJSON_CreateNumber(p);
        if (item == NULL || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            goto fail;
        }
    }
    return kind_succeed(out, r);
fail:
    cJSON_Delete(r);
    return -1;
}

static int kind_square_run(const cJSON *args, const struct kind_limits *lim,
                           struct kind_outcome *out)
{
    (void)lim;
    return kind_power_run(args, out, 2);
}

static int kind_cube_run(const cJSON *args, const struct kind_limits *lim, struct kind_outcome *out)
{
    (void)lim;
    return kind_power_run(args, out, 3);
}

/* cpu {"n": 2..1e9}: primes below n, by a segmented sieve over odd numbers. */

#define CPU_N_MAX 1000000000.0

static int kind_cpu_validate(const cJSON *args, char *msg, size_t size)
{
    static const char *const fields[] = { "n", NULL };
    const cJSON *n;

    if (kind_require_object(args, msg, size) < 0 || kind_only_fields(args, fields, "args.", msg, size) < 0)
        return -1;
    n = kind_arg(args, "n");
    if (!cJSON_IsNumber(n) || n->valuedouble != floor(n->valuedouble) ||
        n->valuedouble < 2 || n->valuedouble > CPU_N_MAX) {
        snprintf(msg, size, "field 'args.n' must be an integer from 2 to 1000000000");
        return -1;
    }
    return 0;
}

/*
 * Number of primes p < n, by a segmented sieve: memory is O(sqrt n), a
 * 32 KiB segment on the stack plus a sieve of and room for the primes up to
 * sqrt n, about 190 KiB in all for n = 1e9.
 */
static int64_t kind_cpu_count_primes(int64_t n)
{
    enum { SEG = 32768 };
    int64_t root, count, lo, i;
    unsigned char *small = NULL, seg[SEG];
    int64_t *primes = NULL, np = 0;

    if (n <= 2)
        return 0;
    root = (int64_t)sqrt((double)n) + 1;
    small = calloc((size_t)root + 1, 1);
    primes = malloc(sizeof *primes * ((size_t)root / 2 + 2));
    if (small == NULL || primes == NULL) {
        count = -1;
        goto out;
    }
    for (i = 3; i <= root; i += 2) {
        if (small[i])
            continue;
        primes[np++] = i;
        for (int64_t j = i * i; j <= root; j += 2 * i)
            small[j] = 1;
    }
    count = 1;                                  /* the prime 2 */
    /* seg[k] stands for the odd number lo + 2k. */
    for (lo = 3; lo < n; lo += 2 * SEG) {
        int64_t hi = lo + 2 * SEG;              /* exclusive */
        if (hi > n)
            hi = n;
        memset(seg, 0, sizeof seg);
        for (int64_t p = 0; p < np; p++) {
            int64_t q = primes[p], start = q * q;
            if (start >= hi)
                break;
            if (start < lo) {
                start = (lo + q - 1) / q * q;
                if (start % 2 == 0)
                    start += q;
            }
            for (int64_t j = start; j < hi; j += 2 * q)
                seg[(j - lo) / 2] = 1;
        }
        for (int64_t k = 0; lo + 2 * k < hi; k++)
            count += !seg[k];
    }
out:
    free(small);
    free(primes);
    return count;
}

static int kind_cpu_run(const cJSON *args, const struct kind_limits *lim, struct kind_outcome *out)
{
    int64_t count = kind_cpu_count_primes((int64_t)kind_arg(args, "n")->valuedouble);
    cJSON *r;

    (void)lim;
    if (count < 0)
        return -1;
    r = cJSON_CreateObject();
    if (r != NULL && cJSON_AddNumberToObject(r, "primes", (double)count) == NULL) {
        cJSON_Delete(r);
        r = NULL;
    }
    return kind_succeed(out, r);
}

/* fail {"message": str}: ends failed, on purpose. */

static int kind_fail_validate(const cJSON *args, char *msg, size_t size)
{
    static const char *const fields[] = { "message", NULL };
    const cJSON *m;

    if (kind_require_object(args, msg, size) < 0 || kind_only_fields(args, fields, "args.", msg, size) < 0)
        return -1;
    m = kind_arg(args, "message");
    if (m != NULL && !cJSON_IsString(m)) {
        snprintf(msg, size, "field 'args.message' must be a string");
        return -1;
    }
    return 0;
}

static int kind_fail_run(const cJSON *args, const struct kind_limits *lim, struct kind_outcome *out)
{
    const cJSON *m = kind_arg(args, "message");

    (void)lim;
    out->ok = false;
    out->error_code = strdup("task_failed");
    out->error_message = strdup(cJSON_IsString(m) ? m->valuestring : "failed on request");
    return out->error_code != NULL && out->error_message != NULL ? 0 : -1;
}

static const struct kind kind_list[] = {
    { "echo",   false, NULL,                  kind_echo_run,   "{\"hello\":\"world\"}" },
    { "sleep",  false, kind_sleep_validate,   kind_sleep_run,  "{\"seconds\":1}" },
    { "square", false, kind_numbers_validate, kind_square_run, "{\"numbers\":[2,3,8,9]}" },
    { "cube",   false, kind_numbers_validate, kind_cube_run,   "{\"numbers\":[2,3,8,9]}" },
    { "cpu",    false, kind_cpu_validate,     kind_cpu_run,    "{\"n\":10000000}" },
    { "fail",   false, kind_fail_validate,    kind_fail_run,
      "{\"message\":\"something went wrong\"}" },
    { "exec",   true,  exec_validate,         exec_run,
      "{\"argv\":[\"sh\",\"-c\",\"echo hello from $$; uname -a\"]}" },
    { NULL, false, NULL, NULL, NULL },
};

_Static_assert(sizeof kind_list / sizeof kind_list[0] - 1 <= KIND_MAX, "raise KIND_MAX");

const struct kind *kind_find(const char *name)
{
    for (const struct kind *k = kind_list; k->name != NULL; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

const struct kind *kind_table(void)
{
    return kind_list;
}

void kind_outcome_clear(struct kind_outcome *out)
{
    free(out->result);
    free(out->error_code);
    free(out->error_message);
    memset(out, 0, sizeof *out);
}
