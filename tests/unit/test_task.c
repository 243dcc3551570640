/*
 * test_task.c - the task model: request validation (every field of a POST
 * body and every kind's args), status names, the API's JSON form and times.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "task.h"

/*
 * Submits body as a POST would: copied into a heap buffer of exactly strlen
 * bytes with no NUL after it (so a parser that reads past len trips ASan),
 * and freed before the task is used (so the task must not borrow from it).
 */
static struct task *submit_len(const char *body, size_t len, bool allow_exec,
                               struct task_error *err)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, body, len);
    memset(err, 0, sizeof *err);
    struct task *t = task_from_request(buf, len, allow_exec, err);
    memset(buf, 'Z', len);
    free(buf);
    return t;
}

static struct task *submit(const char *body, bool allow_exec, struct task_error *err)
{
    return submit_len(body, strlen(body), allow_exec, err);
}

static struct task *accept_at(const char *body, bool allow_exec, const char *file, int line)
{
    struct task_error err;
    struct task *t = submit(body, allow_exec, &err);
    if (t == NULL) {
        print_error("rejected %s: %s: %s\n", body, err.code, err.message);
        _fail(file, line);
    }
    return t;
}

/* The body is refused with this code, and the message names field (if given). */
static void reject_at(const char *body, bool allow_exec, const char *code, const char *field,
                      const char *file, int line)
{
    struct task_error err;
    struct task *t = submit(body, allow_exec, &err);
    if (t != NULL) {
        print_error("accepted %s (args %s)\n", body, t->args ? t->args : "(null)");
        task_free(t);
        _fail(file, line);
        return;
    }
    if (strnlen(err.code, sizeof err.code) == sizeof err.code ||
        strnlen(err.message, sizeof err.message) == sizeof err.message) {
        print_error("error for %s is not NUL-terminated\n", body);
        _fail(file, line);
    }
    if (strcmp(err.code, code) != 0) {
        print_error("%s: code \"%s\", expected \"%s\" (message: %s)\n", body, err.code, code,
                    err.message);
        _fail(file, line);
    }
    if (err.message[0] == '\0') {
        print_error("%s: empty message\n", body);
        _fail(file, line);
    }
    if (field != NULL && strstr(err.message, field) == NULL) {
        print_error("%s: message \"%s\" does not name \"%s\"\n", body, err.message, field);
        _fail(file, line);
    }
}

#define ACCEPT(body)          accept_at((body), false, __FILE__, __LINE__)
#define ACCEPT_EXEC(body)     accept_at((body), true, __FILE__, __LINE__)
#define REJECT(body, code, field) reject_at((body), false, (code), (field), __FILE__, __LINE__)
#define REJECT_EXEC(body, code, field) reject_at((body), true, (code), (field), __FILE__, __LINE__)
/*
 * decisions.md: a bad top-level field is invalid_field (unknown top-level
 * fields too); a bad arg of a kind is invalid_args, its message naming the
 * arg as "args.seconds".
 */
#ifndef ARGS_ERROR_CODE
#define ARGS_ERROR_CODE "invalid_args"
#endif
#define REJECT_FIELD(body, field) REJECT((body), "invalid_field", (field))
#define REJECT_ARG(body, field) REJECT((body), ARGS_ERROR_CODE, (field))
#define REJECT_EXEC_ARG(body, field) REJECT_EXEC((body), ARGS_ERROR_CODE, (field))

/* Accepts a body and checks the stored (compact) args text. */
static void accept_args_at(const char *body, bool allow_exec, const char *args,
                           const char *file, int line)
{
    struct task *t = accept_at(body, allow_exec, file, line);
    if (t->args == NULL || strcmp(t->args, args) != 0) {
        print_error("%s: args %s, expected %s\n", body, t->args ? t->args : "(null)", args);
        task_free(t);
        _fail(file, line);
        return;
    }
    task_free(t);
}
#define ACCEPT_ARGS(body, args) accept_args_at((body), false, (args), __FILE__, __LINE__)
#define ACCEPT_EXEC_ARGS(body, args) accept_args_at((body), true, (args), __FILE__, __LINE__)

/* Builds {"kind":KIND,"args":{FIELD:VALUE}}. */
static char *body_with_arg(const char *kind, const char *field, const char *value)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "{\"kind\":\"%s\",\"args\":{\"%s\":%s}}", kind, field, value);
    return buf;
}

/* Builds {"kind":"echo",FIELD:VALUE}. */
static char *body_with_field(const char *field, const char *value)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "{\"kind\":\"echo\",\"%s\":%s}", field, value);
    return buf;
}

/* ---- the request as a whole -------------------------------------------- */

static void test_request_with_kind_only_gets_defaults(void **state)
{
    (void)state;
    struct task *t = ACCEPT("{\"kind\":\"echo\"}");
    assert_string_equal(t->kind, "echo");
    assert_string_equal(t->args, "{}");
    assert_int_equal(t->status, TASK_QUEUED);
    assert_int_equal(t->priority, 0);
    assert_int_equal(t->timeout_ms, 0);
    assert_int_equal(t->max_attempts, 1);
    assert_int_equal(t->attempts, 0);
    assert_null(t->result);
    assert_null(t->error_code);
    assert_null(t->error_message);
    assert_int_equal(t->worker_pid, 0);
    assert_int_equal(t->worker_ppid, 0);
    assert_int_equal(t->started_at, 0);
    assert_int_equal(t->finished_at, 0);
    assert_false(t->usage.set);
    task_free(t);
}

static void test_request_keeps_every_given_field(void **state)
{
    (void)state;
    struct task *t = ACCEPT("{\"kind\":\"square\",\"args\":{\"numbers\":[2,3.5,-1]},"
                            "\"priority\":-7,\"timeout_ms\":2500,\"max_attempts\":4}");
    assert_string_equal(t->kind, "square");
    assert_string_equal(t->args, "{\"numbers\":[2,3.5,-1]}");
    assert_int_equal(t->status, TASK_QUEUED);
    assert_int_equal(t->priority, -7);
    assert_int_equal(t->timeout_ms, 2500);
    assert_int_equal(t->max_attempts, 4);
    assert_int_equal(t->attempts, 0);
    task_free(t);
}

static void test_request_fields_may_come_in_any_order_with_whitespace(void **state)
{
    (void)state;
    struct task *t = ACCEPT(" \n{ \"max_attempts\" : 2 ,\t\"priority\": 3, \"args\" : "
                            "{ \"a\" : [ 1 , \"x y\" ] } , \"kind\" : \"echo\" }\r\n ");
    assert_string_equal(t->kind, "echo");
    assert_string_equal(t->args, "{\"a\":[1,\"x y\"]}");
    assert_int_equal(t->priority, 3);
    assert_int_equal(t->max_attempts, 2);
    task_free(t);
}

static void test_request_reads_only_len_bytes(void **state)
{
    (void)state;
    struct task_error err;
    const char *body = "{\"kind\":\"echo\"}{\"kind\":\"nope\"}";
    struct task *t = submit_len(body, strlen("{\"kind\":\"echo\"}"), false, &err);
    assert_non_null(t);
    assert_string_equal(t->kind, "echo");
    task_free(t);
}

static void test_request_invalid_json_is_invalid_json(void **state)
{
    (void)state;
    REJECT("", "invalid_json", NULL);
    REJECT("   ", "invalid_json", NULL);
    REJECT("{", "invalid_json", NULL);
    REJECT("nope", "invalid_json", NULL);
    REJECT("{\"kind\":}", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\",}", "invalid_json", NULL);
    REJECT("{kind:\"echo\"}", "invalid_json", NULL);
    REJECT("{'kind':'echo'}", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\"", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\"} trailing", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\"}{\"kind\":\"echo\"}", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\",\"args\":[1,2}", "invalid_json", NULL);
    /* What cJSON alone would take. */
    REJECT("{\"kind\":\"echo\",\"args\":[01]}", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\",\"args\":[1.]}", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\",\"args\":[-.5]}", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\",\"args\":\"tab\there\"}", "invalid_json", NULL);
    REJECT("{\"kind\":\"echo\",\"args\":\"\\uD800\"}", "invalid_json", NULL);
}

static void test_request_keeps_every_number_exactly(void **state)
{
    (void)state;
    ACCEPT_ARGS("{\"kind\":\"echo\",\"args\":[9007199254740991,0.30000000000000004,"
                "1.7976931348623157e308,0.1,-0,1E3]}",
                "[9007199254740991,0.30000000000000004,1.7976931348623157e+308,0.1,-0,1000]");
}

static void test_request_with_nul_byte_inside_is_refused(void **state)
{
    (void)state;
    struct task_error err;
    static const char body[] = "{\"kind\":\"echo\"}\0{\"kind\":\"echo\"}";
    struct task *t = submit_len(body, sizeof body - 1, false, &err);
    if (t != NULL) {
        task_free(t);
        fail_msg("accepted a body with a NUL byte after the object");
    }
    assert_string_equal(err.code, "invalid_json");
}

/* A body that is JSON but not an object is not a task request at all. */
static void test_request_body_that_is_not_an_object_is_refused(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "[]", "[{\"kind\":\"echo\"}]", "\"echo\"", "42", "null", "true",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct task_error err;
        struct task *t = submit(bodies[i], true, &err);
        if (t != NULL) {
            task_free(t);
            fail_msg("accepted %s", bodies[i]);
        }
        if (strcmp(err.code, "invalid_json") != 0)
            fail_msg("%s: code \"%s\"", bodies[i], err.code);
        assert_true(err.message[0] != '\0');
    }
}

/* ---- kind -------------------------------------------------------------- */

static void test_request_with_unknown_top_level_field_is_invalid_field(void **state)
{
    (void)state;
    REJECT_FIELD("{\"kind\":\"echo\",\"timeout\":100}", "timeout");
    REJECT_FIELD("{\"kind\":\"echo\",\"Priority\":1}", "Priority");
}

static void test_request_with_a_field_given_twice_is_invalid_field(void **state)
{
    (void)state;
    REJECT_FIELD("{\"kind\":\"echo\",\"kind\":\"sleep\"}", "kind");
    REJECT_FIELD("{\"kind\":\"echo\",\"priority\":1,\"priority\":2}", "priority");
    REJECT_ARG("{\"kind\":\"sleep\",\"args\":{\"seconds\":1,\"seconds\":2}}", "args.seconds");
}

static void test_request_without_string_kind_is_invalid_field(void **state)
{
    (void)state;
    REJECT_FIELD("{}", "kind");
    REJECT_FIELD("{\"args\":{}}", "kind");
    REJECT_FIELD("{\"kind\":5}", "kind");
    REJECT_FIELD("{\"kind\":null}", "kind");
    REJECT_FIELD("{\"kind\":true}", "kind");
    REJECT_FIELD("{\"kind\":[\"echo\"]}", "kind");
    REJECT_FIELD("{\"kind\":{\"name\":\"echo\"}}", "kind");
}

static void test_request_with_unknown_kind_is_unknown_kind(void **state)
{
    (void)state;
    REJECT("{\"kind\":\"nope\"}", "unknown_kind", "kind");
    REJECT("{\"kind\":\"ECHO\"}", "unknown_kind", "kind");
    REJECT("{\"kind\":\"echo \"}", "unknown_kind", NULL);
    REJECT("{\"kind\":\"\"}", "unknown_kind", NULL);
    /* a name close to exec is just unknown, not disabled */
    REJECT("{\"kind\":\"exec2\",\"args\":{\"argv\":[\"x\"]}}", "unknown_kind", "kind");
}

static void test_request_with_overlong_kind_is_refused_without_overflow(void **state)
{
    (void)state;
    char body[256];
    char kind[TASK_KIND_MAX * 4 + 1];
    memset(kind, 'k', sizeof kind - 1);
    kind[sizeof kind - 1] = '\0';
    snprintf(body, sizeof body, "{\"kind\":\"%s\"}", kind);
    struct task_error err;
    struct task *t = submit(body, true, &err);
    if (t != NULL) {
        task_free(t);
        fail_msg("accepted a %zu-byte kind", strlen(kind));
    }
    assert_string_equal(err.code, "unknown_kind");
}

static void test_request_for_every_builtin_kind_is_accepted(void **state)
{
    (void)state;
    ACCEPT_ARGS("{\"kind\":\"echo\",\"args\":{\"x\":1}}", "{\"x\":1}");
    ACCEPT_ARGS("{\"kind\":\"sleep\",\"args\":{\"seconds\":1}}", "{\"seconds\":1}");
    ACCEPT_ARGS("{\"kind\":\"square\",\"args\":{\"numbers\":[1]}}", "{\"numbers\":[1]}");
    ACCEPT_ARGS("{\"kind\":\"cube\",\"args\":{\"numbers\":[1]}}", "{\"numbers\":[1]}");
    ACCEPT_ARGS("{\"kind\":\"cpu\",\"args\":{\"n\":100}}", "{\"n\":100}");
    ACCEPT_ARGS("{\"kind\":\"fail\",\"args\":{\"message\":\"boom\"}}", "{\"message\":\"boom\"}");
    ACCEPT_EXEC_ARGS("{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/true\"]}}",
                     "{\"argv\":[\"/bin/true\"]}");
}

/* ---- args -------------------------------------------------------------- */

static void test_request_echo_takes_any_json_args(void **state)
{
    (void)state;
    ACCEPT_ARGS("{\"kind\":\"echo\",\"args\":{}}", "{}");
    ACCEPT_ARGS("{\"kind\":\"echo\",\"args\":[1,\"two\",null,true,{\"x\":[]}]}",
                "[1,\"two\",null,true,{\"x\":[]}]");
    ACCEPT_ARGS("{\"kind\":\"echo\",\"args\":\"text\"}", "\"text\"");
    ACCEPT_ARGS("{\"kind\":\"echo\",\"args\":3.25}", "3.25");
    ACCEPT_ARGS("{\"kind\":\"echo\",\"args\":false}", "false");
    ACCEPT_ARGS("{\"kind\":\"echo\",\"args\":{\"q\":\"say \\\"hi\\\"\\n\"}}",
                "{\"q\":\"say \\\"hi\\\"\\n\"}");
}

/* ---- priority ---------------------------------------------------------- */

static void test_request_priority_accepts_integers_in_range(void **state)
{
    (void)state;
    static const struct { const char *json; int want; } ok[] = {
        { "-1000", -1000 }, { "1000", 1000 }, { "0", 0 }, { "17", 17 }, { "-1", -1 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct task *t = ACCEPT(body_with_field("priority", ok[i].json));
        assert_int_equal(t->priority, ok[i].want);
        task_free(t);
    }
}

static void test_request_priority_refuses_out_of_range_fractions_and_other_types(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "-1001", "1001", "1.5", "-0.5", "\"1\"", "null", "true", "[1]", "{}",
        "1e10", "1e300", "-1e300", "2147483648", "-2147483649",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        REJECT_FIELD(body_with_field("priority", bad[i]), "priority");
}

/* ---- timeout_ms -------------------------------------------------------- */

static void test_request_timeout_ms_accepts_positive_integers_up_to_a_week(void **state)
{
    (void)state;
    static const struct { const char *json; int64_t want; } ok[] = {
        { "1", 1 }, { "1500", 1500 }, { "604800000", TASK_TIMEOUT_MAX_MS },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct task *t = ACCEPT(body_with_field("timeout_ms", ok[i].json));
        assert_int_equal(t->timeout_ms, ok[i].want);
        task_free(t);
    }
}

/* "optional": an explicit null is the same as leaving it out (no limit). */
static void test_request_timeout_ms_null_means_no_limit(void **state)
{
    (void)state;
    struct task *t = ACCEPT(body_with_field("timeout_ms", "null"));
    assert_int_equal(t->timeout_ms, 0);
    task_free(t);
}

static void test_request_timeout_ms_refuses_zero_negative_fractions_and_other_types(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0", "-1", "-1000", "1.5", "0.1", "\"100\"", "true", "[100]", "{}",
        "604800001", "1e300", "-1e300", "9223372036854775808",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        REJECT_FIELD(body_with_field("timeout_ms", bad[i]), "timeout_ms");
}

/* ---- max_attempts ------------------------------------------------------ */

static void test_request_max_attempts_accepts_one_to_the_maximum(void **state)
{
    (void)state;
    static const struct { const char *json; int want; } ok[] = {
        { "1", 1 }, { "3", 3 }, { "100", TASK_ATTEMPTS_MAX },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct task *t = ACCEPT(body_with_field("max_attempts", ok[i].json));
        assert_int_equal(t->max_attempts, ok[i].want);
        task_free(t);
    }
}

static void test_request_max_attempts_refuses_zero_too_many_fractions_and_other_types(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0", "-1", "101", "2.5", "\"3\"", "false", "null", "[2]", "1e300", "-1e300",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        REJECT_FIELD(body_with_field("max_attempts", bad[i]), "max_attempts");
}

/* ---- exec -------------------------------------------------------------- */

static void test_request_exec_without_allow_exec_is_exec_disabled(void **state)
{
    (void)state;
    REJECT("{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/echo\",\"hi\"]}}", "exec_disabled", NULL);
    REJECT("{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/true\"],\"stdin\":\"x\","
           "\"env\":{\"A\":\"1\"},\"cwd\":\"/\"}}", "exec_disabled", NULL);
}

/* Disabled is disabled: 403 whatever the args, never a 400 about them. */
static void test_request_exec_without_allow_exec_is_disabled_even_with_bad_args(void **state)
{
    (void)state;
    REJECT("{\"kind\":\"exec\"}", "exec_disabled", NULL);
    REJECT("{\"kind\":\"exec\",\"args\":{\"argv\":[]}}", "exec_disabled", NULL);
    REJECT("{\"kind\":\"exec\",\"args\":\"ls\"}", "exec_disabled", NULL);
}

static void test_request_exec_with_allow_exec_keeps_every_arg(void **state)
{
    (void)state;
    ACCEPT_EXEC_ARGS("{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/echo\",\"hi\"]}}",
                     "{\"argv\":[\"/bin/echo\",\"hi\"]}");
    ACCEPT_EXEC_ARGS("{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/cat\"],\"stdin\":\"in\","
                     "\"env\":{\"A\":\"1\",\"B\":\"\"},\"cwd\":\"/tmp\"}}",
                     "{\"argv\":[\"/bin/cat\"],\"stdin\":\"in\",\"env\":{\"A\":\"1\",\"B\":\"\"},"
                     "\"cwd\":\"/tmp\"}");
    ACCEPT_EXEC_ARGS("{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/true\"],\"env\":{}}}",
                     "{\"argv\":[\"/bin/true\"],\"env\":{}}");
}

static void test_request_exec_argv_must_be_non_empty_array_of_strings(void **state)
{
    (void)state;
    REJECT_EXEC_ARG("{\"kind\":\"exec\"}", "args.argv");
    REJECT_EXEC_ARG("{\"kind\":\"exec\",\"args\":{}}", "args.argv");
    static const char *const bad[] = {
        "[]", "\"/bin/ls\"", "[1]", "[\"/bin/ls\",null]", "[\"/bin/ls\",2]",
        "[[\"/bin/ls\"]]", "{\"0\":\"/bin/ls\"}", "null", "true",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        REJECT_EXEC_ARG(body_with_arg("exec", "argv", bad[i]), "args.argv");
}

static void test_request_exec_stdin_env_cwd_have_their_types(void **state)
{
    (void)state;
    static const char *const bad_stdin[] = { "5", "[\"x\"]", "{}", "true" };
    static const char *const bad_env[] = {
        "[]", "\"A=1\"", "{\"A\":1}", "{\"A\":null}", "{\"A\":[\"1\"]}", "{\"A\":\"1\",\"B\":true}", "5",
        "{\"TASKPOOL_DB\":\"/x\"}", "{\"A\":\"1\",\"TASKPOOL_ANYTHING\":\"\"}",
    };
    static const char *const bad_cwd[] = { "5", "[\"/\"]", "{}", "false" };
    char body[512];
    for (size_t i = 0; i < sizeof bad_stdin / sizeof bad_stdin[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/cat\"],\"stdin\":%s}}", bad_stdin[i]);
        REJECT_EXEC_ARG(body, "args.stdin");
    }
    for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/env\"],\"env\":%s}}", bad_env[i]);
        REJECT_EXEC_ARG(body, "args.env");
    }
    for (size_t i = 0; i < sizeof bad_cwd / sizeof bad_cwd[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"kind\":\"exec\",\"args\":{\"argv\":[\"/bin/pwd\"],\"cwd\":%s}}", bad_cwd[i]);
        REJECT_EXEC_ARG(body, "args.cwd");
    }
}

static void test_request_exec_args_must_be_an_object(void **state)
{
    (void)state;
    REJECT_EXEC_ARG("{\"kind\":\"exec\",\"args\":[\"/bin/true\"]}", "args");
    REJECT_EXEC_ARG("{\"kind\":\"exec\",\"args\":\"/bin/true\"}", "args");
}

/* ---- sleep ------------------------------------------------------------- */

static void test_request_sleep_seconds_accepts_0_to_3600(void **state)
{
    (void)state;
    ACCEPT_ARGS(body_with_arg("sleep", "seconds", "0"), "{\"seconds\":0}");
    ACCEPT_ARGS(body_with_arg("sleep", "seconds", "0.5"), "{\"seconds\":0.5}");
    ACCEPT_ARGS(body_with_arg("sleep", "seconds", "3600"), "{\"seconds\":3600}");
}

static void test_request_sleep_seconds_refuses_out_of_range_and_other_types(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "-1", "-0.001", "3600.001", "3601", "1e300", "\"1\"", "null", "true", "[1]", "{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        REJECT_ARG(body_with_arg("sleep", "seconds", bad[i]), "args.seconds");
    REJECT_ARG("{\"kind\":\"sleep\"}", "args.seconds");
    REJECT_ARG("{\"kind\":\"sleep\",\"args\":{}}", "args.seconds");
    REJECT_ARG("{\"kind\":\"sleep\",\"args\":[1]}", "args");
}

/* ---- square / cube ----------------------------------------------------- */

static void test_request_square_and_cube_take_an_array_of_numbers(void **state)
{
    (void)state;
    ACCEPT_ARGS(body_with_arg("square", "numbers", "[2,3,8,9]"), "{\"numbers\":[2,3,8,9]}");
    ACCEPT_ARGS(body_with_arg("square", "numbers", "[-2.5,0,1e3]"), "{\"numbers\":[-2.5,0,1000]}");
    ACCEPT_ARGS(body_with_arg("cube", "numbers", "[2,3,8,9]"), "{\"numbers\":[2,3,8,9]}");
    ACCEPT_ARGS(body_with_arg("cube", "numbers", "[-0.5]"), "{\"numbers\":[-0.5]}");
}

static void test_request_square_and_cube_refuse_anything_but_numbers(void **state)
{
    (void)state;
    static const char *const kinds[] = { "square", "cube" };
    static const char *const bad[] = {
        "\"1,2\"", "[1,\"2\"]", "[null]", "[[1]]", "[{}]", "[true]", "{}", "5", "null",
    };
    char body[256];
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            REJECT_ARG(body_with_arg(kinds[k], "numbers", bad[i]), "args.numbers");
        snprintf(body, sizeof body, "{\"kind\":\"%s\"}", kinds[k]);
        REJECT_ARG(body, "args.numbers");
        snprintf(body, sizeof body, "{\"kind\":\"%s\",\"args\":{\"number\":[1]}}", kinds[k]);
        REJECT_ARG(body, "args.number");             /* a typo: numbers missing, number unknown */
        snprintf(body, sizeof body, "{\"kind\":\"%s\",\"args\":[1,2]}", kinds[k]);
        REJECT_ARG(body, "args");
    }
}

/* ---- cpu --------------------------------------------------------------- */

static void test_request_cpu_n_accepts_integers_2_to_1e9(void **state)
{
    (void)state;
    ACCEPT_ARGS(body_with_arg("cpu", "n", "2"), "{\"n\":2}");
    ACCEPT_ARGS(body_with_arg("cpu", "n", "100"), "{\"n\":100}");
    ACCEPT_ARGS(body_with_arg("cpu", "n", "1000000000"), "{\"n\":1000000000}");
}

static void test_request_cpu_n_refuses_out_of_range_fractions_and_other_types(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "1", "0", "-5", "1000000001", "2.5", "1e300", "\"100\"", "null", "[100]", "true",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        REJECT_ARG(body_with_arg("cpu", "n", bad[i]), "args.n");
    REJECT_ARG("{\"kind\":\"cpu\",\"args\":{}}", "args.n");
    REJECT_ARG("{\"kind\":\"cpu\",\"args\":[100]}", "args");
}

/* ---- fail -------------------------------------------------------------- */

static void test_request_fail_message_must_be_a_string(void **state)
{
    (void)state;
    ACCEPT_ARGS(body_with_arg("fail", "message", "\"boom\""), "{\"message\":\"boom\"}");
    ACCEPT_ARGS(body_with_arg("fail", "message", "\"\""), "{\"message\":\"\"}");
    static const char *const bad[] = { "5", "null", "[\"boom\"]", "{}", "true" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        REJECT_ARG(body_with_arg("fail", "message", bad[i]), "args.message");
    REJECT_ARG("{\"kind\":\"fail\",\"args\":\"boom\"}", "args");
}

/* ---- status names ------------------------------------------------------ */

static const char *const status_names[TASK_STATUS_COUNT] = {
    "queued", "running", "succeeded", "failed", "cancelled", "timed_out",
};

static void test_status_names_are_the_api_names(void **state)
{
    (void)state;
    for (int s = 0; s < TASK_STATUS_COUNT; s++)
        assert_string_equal(task_status_name((enum task_status)s), status_names[s]);
    assert_string_equal(task_status_name(TASK_STATUS_COUNT), "unknown");
    assert_string_equal(task_status_name((enum task_status)99), "unknown");
}

static void test_status_parse_round_trips_every_name(void **state)
{
    (void)state;
    for (int s = 0; s < TASK_STATUS_COUNT; s++) {
        enum task_status st = TASK_STATUS_COUNT;
        assert_int_equal(task_status_parse(status_names[s], &st), 0);
        assert_int_equal(st, s);
        assert_int_equal(task_status_parse(task_status_name(st), &st), 0);
        assert_int_equal(st, s);
    }
}

static void test_status_parse_refuses_unknown_names(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "unknown", "Queued", "QUEUED", "queued ", "done", "timed-out", "timedout", "cancel",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum task_status st = TASK_RUNNING;
        if (task_status_parse(bad[i], &st) != -1)
            fail_msg("parsed \"%s\"", bad[i]);
    }
}

static void test_status_terminal_from_succeeded_on(void **state)
{
    (void)state;
    assert_false(task_status_terminal(TASK_QUEUED));
    assert_false(task_status_terminal(TASK_RUNNING));
    assert_true(task_status_terminal(TASK_SUCCEEDED));
    assert_true(task_status_terminal(TASK_FAILED));
    assert_true(task_status_terminal(TASK_CANCELLED));
    assert_true(task_status_terminal(TASK_TIMED_OUT));
}

/* ---- errors ------------------------------------------------------------ */

static void test_set_error_sets_and_replaces_code_and_message(void **state)
{
    (void)state;
    struct task *t = ACCEPT("{\"kind\":\"echo\"}");
    assert_int_equal(task_set_error(t, "worker_died", "worker 1234 was killed by signal 9 (Killed)"), 0);
    assert_string_equal(t->error_code, "worker_died");
    assert_string_equal(t->error_message, "worker 1234 was killed by signal 9 (Killed)");
    assert_int_equal(task_set_error(t, "timed_out", "ran longer than 100 ms"), 0);
    assert_string_equal(t->error_code, "timed_out");
    assert_string_equal(t->error_message, "ran longer than 100 ms");
    task_free(t);
}

static void test_free_accepts_null(void **state)
{
    (void)state;
    task_free(NULL);
}

/* ---- JSON -------------------------------------------------------------- */

static const char *const all_keys[] = {
    "id", "kind", "args", "status", "priority", "timeout_ms", "max_attempts", "attempts",
    "result", "error", "worker_pid", "worker_ppid", "created_at", "started_at", "finished_at",
    "queue_ms", "run_ms", "usage",
};
#define ALL_KEYS (sizeof all_keys / sizeof all_keys[0])

/* The object has exactly these keys (ignoring args and result unless with_payload). */
static void assert_keys(const cJSON *o, bool with_payload)
{
    assert_true(cJSON_IsObject(o));
    size_t want = 0;
    for (size_t i = 0; i < ALL_KEYS; i++) {
        bool payload = strcmp(all_keys[i], "args") == 0 || strcmp(all_keys[i], "result") == 0;
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, all_keys[i]);
        if (payload && !with_payload) {
            if (item != NULL)
                fail_msg("\"%s\" present without payload", all_keys[i]);
            continue;
        }
        if (item == NULL)
            fail_msg("\"%s\" missing", all_keys[i]);
        want++;
    }
    assert_int_equal(cJSON_GetArraySize(o), want);
}

static const cJSON *item(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (it == NULL)
        fail_msg("no \"%s\"", key);
    return it;
}

static void assert_json_int_at(const cJSON *o, const char *key, double want, const char *file, int line)
{
    const cJSON *it = item(o, key);
    if (!cJSON_IsNumber(it) || it->valuedouble != want) {
        char *s = cJSON_PrintUnformatted(it);
        print_error("\"%s\" is %s, expected %.17g\n", key, s ? s : "?", want);
        free(s);
        _fail(file, line);
    }
}
static void assert_json_str_at(const cJSON *o, const char *key, const char *want, const char *file, int line)
{
    const cJSON *it = item(o, key);
    if (!cJSON_IsString(it) || strcmp(it->valuestring, want) != 0) {
        char *s = cJSON_PrintUnformatted(it);
        print_error("\"%s\" is %s, expected \"%s\"\n", key, s ? s : "?", want);
        free(s);
        _fail(file, line);
    }
}
static void assert_json_null_at(const cJSON *o, const char *key, const char *file, int line)
{
    const cJSON *it = item(o, key);
    if (!cJSON_IsNull(it)) {
        char *s = cJSON_PrintUnformatted(it);
        print_error("\"%s\" is %s, expected null\n", key, s ? s : "?");
        free(s);
        _fail(file, line);
    }
}
static void assert_json_equal_at(const cJSON *o, const char *key, const char *want, const char *file, int line)
{
    const cJSON *it = item(o, key);
    cJSON *w = cJSON_Parse(want);
    assert_non_null(w);
    if (!cJSON_Compare(it, w, true)) {
        char *s = cJSON_PrintUnformatted(it);
        print_error("\"%s\" is %s, expected %s\n", key, s ? s : "?", want);
        free(s);
        cJSON_Delete(w);
        _fail(file, line);
    }
    cJSON_Delete(w);
}
#define assert_json_int(o, k, v)   assert_json_int_at((o), (k), (double)(v), __FILE__, __LINE__)
#define assert_json_str(o, k, v)   assert_json_str_at((o), (k), (v), __FILE__, __LINE__)
#define assert_json_null(o, k)     assert_json_null_at((o), (k), __FILE__, __LINE__)
#define assert_json_equal(o, k, v) assert_json_equal_at((o), (k), (v), __FILE__, __LINE__)

static struct task *finished_square_task(void)
{
    struct task *t = ACCEPT("{\"kind\":\"square\",\"args\":{\"numbers\":[2,3]},\"priority\":5,"
                            "\"timeout_ms\":3000,\"max_attempts\":2}");
    t->id = 42;
    t->status = TASK_SUCCEEDED;
    t->attempts = 1;
    t->result = strdup("{\"results\":[4,9]}");
    assert_non_null(t->result);
    t->worker_pid = 1234;
    t->worker_ppid = 1200;
    t->created_at = 1700000000000LL;
    t->started_at = 1700000000250LL;
    t->finished_at = 1700000001750LL;
    t->usage = (struct task_usage){ .set = true, .user_ms = 3, .sys_ms = 1, .max_rss_kb = 2048 };
    return t;
}

/* What the API sends: the object printed and parsed back. */
static cJSON *rendered(const struct task *t, bool with_payload)
{
    cJSON *o = task_to_json(t, with_payload);
    assert_non_null(o);
    char *text = cJSON_PrintUnformatted(o);
    assert_non_null(text);
    cJSON_Delete(o);
    cJSON *back = cJSON_Parse(text);
    if (back == NULL)
        fail_msg("task_to_json printed invalid JSON: %s", text);
    free(text);
    return back;
}

static void test_to_json_of_finished_task_has_every_field(void **state)
{
    (void)state;
    struct task *t = finished_square_task();
    cJSON *o = rendered(t, true);
    assert_keys(o, true);
    assert_json_int(o, "id", 42);
    assert_json_str(o, "kind", "square");
    assert_json_equal(o, "args", "{\"numbers\":[2,3]}");
    assert_json_str(o, "status", "succeeded");
    assert_json_int(o, "priority", 5);
    assert_json_int(o, "timeout_ms", 3000);
    assert_json_int(o, "max_attempts", 2);
    assert_json_int(o, "attempts", 1);
    assert_json_equal(o, "result", "{\"results\":[4,9]}");
    assert_json_null(o, "error");
    assert_json_int(o, "worker_pid", 1234);
    assert_json_int(o, "worker_ppid", 1200);
    assert_json_str(o, "created_at", "2023-11-14T22:13:20.000Z");
    assert_json_str(o, "started_at", "2023-11-14T22:13:20.250Z");
    assert_json_str(o, "finished_at", "2023-11-14T22:13:21.750Z");
    assert_json_int(o, "queue_ms", 250);
    assert_json_int(o, "run_ms", 1500);
    assert_json_equal(o, "usage", "{\"user_ms\":3,\"sys_ms\":1,\"max_rss_kb\":2048}");
    cJSON_Delete(o);
    task_free(t);
}

static void test_to_json_of_new_task_has_nulls_for_what_has_not_happened(void **state)
{
    (void)state;
    struct task *t = ACCEPT("{\"kind\":\"echo\",\"args\":[1,\"a\"]}");
    t->id = 7;
    t->created_at = 86399999;
    cJSON *o = rendered(t, true);
    assert_keys(o, true);
    assert_json_int(o, "id", 7);
    assert_json_equal(o, "args", "[1,\"a\"]");
    assert_json_str(o, "status", "queued");
    assert_json_int(o, "priority", 0);
    assert_json_null(o, "timeout_ms");
    assert_json_int(o, "max_attempts", 1);
    assert_json_int(o, "attempts", 0);
    assert_json_null(o, "result");
    assert_json_null(o, "error");
    assert_json_null(o, "worker_pid");
    assert_json_null(o, "worker_ppid");
    assert_json_str(o, "created_at", "1970-01-01T23:59:59.999Z");
    assert_json_null(o, "started_at");
    assert_json_null(o, "finished_at");
    assert_json_null(o, "queue_ms");
    assert_json_null(o, "run_ms");
    assert_json_null(o, "usage");
    cJSON_Delete(o);
    task_free(t);
}

static void test_to_json_of_running_task_has_queue_ms_but_no_run_ms(void **state)
{
    (void)state;
    struct task *t = finished_square_task();
    t->status = TASK_RUNNING;
    t->finished_at = 0;
    free(t->result);
    t->result = NULL;
    t->usage.set = false;
    cJSON *o = rendered(t, true);
    assert_keys(o, true);
    assert_json_str(o, "status", "running");
    assert_json_str(o, "started_at", "2023-11-14T22:13:20.250Z");
    assert_json_null(o, "finished_at");
    assert_json_int(o, "queue_ms", 250);
    assert_json_null(o, "run_ms");
    assert_json_null(o, "result");
    assert_json_null(o, "usage");
    cJSON_Delete(o);
    task_free(t);
}

static void test_to_json_error_is_code_and_message(void **state)
{
    (void)state;
    struct task *t = finished_square_task();
    t->status = TASK_FAILED;
    free(t->result);
    t->result = NULL;
    assert_int_equal(task_set_error(t, "worker_died", "worker 1234 exited with code 3"), 0);
    cJSON *o = rendered(t, true);
    assert_json_str(o, "status", "failed");
    assert_json_equal(o, "error", "{\"code\":\"worker_died\",\"message\":\"worker 1234 exited with code 3\"}");
    assert_int_equal(cJSON_GetArraySize(item(o, "error")), 2);
    assert_json_null(o, "result");
    cJSON_Delete(o);
    task_free(t);
}

static void test_to_json_without_payload_leaves_out_args_and_result(void **state)
{
    (void)state;
    struct task *t = finished_square_task();
    cJSON *o = rendered(t, false);
    assert_keys(o, false);
    assert_json_int(o, "id", 42);
    assert_json_str(o, "status", "succeeded");
    assert_json_int(o, "run_ms", 1500);
    cJSON_Delete(o);
    task_free(t);
}

static void test_to_json_prints_every_status_name(void **state)
{
    (void)state;
    struct task *t = ACCEPT("{\"kind\":\"echo\"}");
    for (int s = 0; s < TASK_STATUS_COUNT; s++) {
        t->status = (enum task_status)s;
        cJSON *o = rendered(t, false);
        assert_json_str(o, "status", status_names[s]);
        cJSON_Delete(o);
    }
    task_free(t);
}

/* ---- time -------------------------------------------------------------- */

static void test_format_time_is_rfc3339_utc_with_milliseconds(void **state)
{
    (void)state;
    static const struct { int64_t ms; const char *want; } cases[] = {
        { 0, "1970-01-01T00:00:00.000Z" },
        { 1, "1970-01-01T00:00:00.001Z" },
        { 86399999, "1970-01-01T23:59:59.999Z" },
        { 951782400999LL, "2000-02-29T00:00:00.999Z" },
        { 1700000000123LL, "2023-11-14T22:13:20.123Z" },
        { 4102444799999LL, "2099-12-31T23:59:59.999Z" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[25];
        memset(buf, 'X', sizeof buf);
        task_format_time(cases[i].ms, buf, sizeof buf);
        assert_string_equal(buf, cases[i].want);
    }
}

static void test_now_ms_is_the_wall_clock(void **state)
{
    (void)state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t now = task_now_ms();
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_true(now >= before && now <= after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_with_kind_only_gets_defaults),
        cmocka_unit_test(test_request_keeps_every_given_field),
        cmocka_unit_test(test_request_fields_may_come_in_any_order_with_whitespace),
        cmocka_unit_test(test_request_reads_only_len_bytes),
        cmocka_unit_test(test_request_invalid_json_is_invalid_json),
        cmocka_unit_test(test_request_with_nul_byte_inside_is_refused),
        cmocka_unit_test(test_request_body_that_is_not_an_object_is_refused),
        cmocka_unit_test(test_request_with_unknown_top_level_field_is_invalid_field),
        cmocka_unit_test(test_request_with_a_field_given_twice_is_invalid_field),
        cmocka_unit_test(test_request_keeps_every_number_exactly),
        cmocka_unit_test(test_request_without_string_kind_is_invalid_field),
        cmocka_unit_test(test_request_with_unknown_kind_is_unknown_kind),
        cmocka_unit_test(test_request_with_overlong_kind_is_refused_without_overflow),
        cmocka_unit_test(test_request_for_every_builtin_kind_is_accepted),
        cmocka_unit_test(test_request_echo_takes_any_json_args),
        cmocka_unit_test(test_request_priority_accepts_integers_in_range),
        cmocka_unit_test(test_request_priority_refuses_out_of_range_fractions_and_other_types),
        cmocka_unit_test(test_request_timeout_ms_accepts_positive_integers_up_to_a_week),
        cmocka_unit_test(test_request_timeout_ms_null_means_no_limit),
        cmocka_unit_test(test_request_timeout_ms_refuses_zero_negative_fractions_and_other_types),
        cmocka_unit_test(test_request_max_attempts_accepts_one_to_the_maximum),
        cmocka_unit_test(test_request_max_attempts_refuses_zero_too_many_fractions_and_other_types),
        cmocka_unit_test(test_request_exec_without_allow_exec_is_exec_disabled),
        cmocka_unit_test(test_request_exec_without_allow_exec_is_disabled_even_with_bad_args),
        cmocka_unit_test(test_request_exec_with_allow_exec_keeps_every_arg),
        cmocka_unit_test(test_request_exec_argv_must_be_non_empty_array_of_strings),
        cmocka_unit_test(test_request_exec_stdin_env_cwd_have_their_types),
        cmocka_unit_test(test_request_exec_args_must_be_an_object),
        cmocka_unit_test(test_request_sleep_seconds_accepts_0_to_3600),
        cmocka_unit_test(test_request_sleep_seconds_refuses_out_of_range_and_other_types),
        cmocka_unit_test(test_request_square_and_cube_take_an_array_of_numbers),
        cmocka_unit_test(test_request_square_and_cube_refuse_anything_but_numbers),
        cmocka_unit_test(test_request_cpu_n_accepts_integers_2_to_1e9),
        cmocka_unit_test(test_request_cpu_n_refuses_out_of_range_fractions_and_other_types),
        cmocka_unit_test(test_request_fail_message_must_be_a_string),
        cmocka_unit_test(test_status_names_are_the_api_names),
        cmocka_unit_test(test_status_parse_round_trips_every_name),
        cmocka_unit_test(test_status_parse_refuses_unknown_names),
        cmocka_unit_test(test_status_terminal_from_succeeded_on),
        cmocka_unit_test(test_set_error_sets_and_replaces_code_and_message),
        cmocka_unit_test(test_free_accepts_null),
        cmocka_unit_test(test_to_json_of_finished_task_has_every_field),
        cmocka_unit_test(test_to_json_of_new_task_has_nulls_for_what_has_not_happened),
        cmocka_unit_test(test_to_json_of_running_task_has_queue_ms_but_no_run_ms),
        cmocka_unit_test(test_to_json_error_is_code_and_message),
        cmocka_unit_test(test_to_json_without_payload_leaves_out_args_and_result),
        cmocka_unit_test(test_to_json_prints_every_status_name),
        cmocka_unit_test(test_format_time_is_rfc3339_utc_with_milliseconds),
        cmocka_unit_test(test_now_ms_is_the_wall_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
