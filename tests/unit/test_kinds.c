/*
 * test_kinds.c - the kind table and each builtin kind's work, run in this
 * process through kind_find(name)->run as a worker would run it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "exec.h"
#include "utf8.h"
#include "kinds.h"

#define MIB (1024 * 1024)

static const char *const builtin_kinds[] = {
    "echo", "sleep", "square", "cube", "cpu", "fail", "exec",
};
#define BUILTIN_COUNT (sizeof builtin_kinds / sizeof builtin_kinds[0])

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/*
 * Validates args_json with the kind's own validate (a worker only ever runs
 * validated args), then runs it.  Guards against a hang with alarm() (the
 * default action ends the test binary, which fails the run visibly), and checks
 * that the run leaves no child process and no file descriptor behind.
 */
static void run_kind_at(const char *name, const char *args_json, size_t max_output,
                        struct kind_outcome *out, const char *file, int line)
{
    const struct kind *k = kind_find(name);
    if (k == NULL) {
        print_error("no kind %s\n", name);
        _fail(file, line);
        return;
    }
    cJSON *args = cJSON_Parse(args_json);
    assert_non_null(args);
    char msg[256] = "";
    if (k->validate != NULL && k->validate(args, msg, sizeof msg) != 0) {
        print_error("%s refused %s: %s\n", name, args_json, msg);
        cJSON_Delete(args);
        _fail(file, line);
        return;
    }
    struct kind_limits lim = { .max_output = max_output };
    memset(out, 0, sizeof *out);
    int fds = count_open_fds();
    alarm(60);
    int rc = k->run(args, &lim, out);
    alarm(0);
    cJSON_Delete(args);
    if (rc != 0) {
        print_error("%s run(%s) returned %d\n", name, args_json, rc);
        _fail(file, line);
    }
    if (count_open_fds() != fds) {
        print_error("%s run(%s) leaked file descriptors: %d before, %d after\n", name, args_json,
                    fds, count_open_fds());
        _fail(file, line);
    }
    errno = 0;
    pid_t left = waitpid(-1, NULL, WNOHANG);
    if (left != -1 || errno != ECHILD) {
        print_error("%s run(%s) left a child process (waitpid gave %d)\n", name, args_json, (int)left);
        _fail(file, line);
    }
}
#define run_kind(name, args, max_output, out) \
    run_kind_at((name), (args), (max_output), (out), __FILE__, __LINE__)

static void assert_json_text_at(const char *got, const char *want, const char *file, int line)
{
    if (got == NULL) {
        print_error("result is NULL, expected %s\n", want);
        _fail(file, line);
        return;
    }
    cJSON *g = cJSON_Parse(got);
    cJSON *w = cJSON_Parse(want);
    assert_non_null(w);
    bool same = g != NULL && cJSON_Compare(g, w, true);
    cJSON_Delete(g);
    cJSON_Delete(w);
    if (!same) {
        print_error("result %s, expected %s\n", got, want);
        _fail(file, line);
    }
}
#define assert_json_text(got, want) assert_json_text_at((got), (want), __FILE__, __LINE__)

static void assert_succeeded_at(const struct kind_outcome *out, const char *file, int line)
{
    if (!out->ok || out->error_code != NULL) {
        print_error("ok=%d code=%s message=%s result=%s\n", out->ok,
                    out->error_code ? out->error_code : "(null)",
                    out->error_message ? out->error_message : "(null)",
                    out->result ? out->result : "(null)");
        _fail(file, line);
    }
}
#define assert_succeeded(out) assert_succeeded_at((out), __FILE__, __LINE__)

static void assert_failed_at(const struct kind_outcome *out, const char *file, int line)
{
    if (out->ok || out->error_code == NULL || out->error_code[0] == '\0') {
        print_error("ok=%d code=%s result=%s\n", out->ok,
                    out->error_code ? out->error_code : "(null)", out->result ? out->result : "(null)");
        _fail(file, line);
    }
}
#define assert_failed(out) assert_failed_at((out), __FILE__, __LINE__)

/* Parses an exec result and checks its shape: exactly the five documented keys. */
static cJSON *exec_result(const struct kind_outcome *out)
{
    assert_non_null(out->result);
    cJSON *r = cJSON_Parse(out->result);
    assert_non_null(r);
    static const char *const keys[] = { "exit_code", "signal", "stdout", "stderr", "truncated" };
    for (size_t i = 0; i < 5; i++)
        if (cJSON_GetObjectItemCaseSensitive(r, keys[i]) == NULL)
            fail_msg("exec result has no \"%s\": %.200s", keys[i], out->result);
    assert_int_equal(cJSON_GetArraySize(r), 5);
    return r;
}

static const char *str_field(const cJSON *r, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(r, key);
    if (!cJSON_IsString(it))
        fail_msg("\"%s\" is not a string", key);
    return it->valuestring;
}

static void assert_exit_code(const cJSON *r, int code)
{
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(r, "exit_code");
    assert_true(cJSON_IsNumber(ec));
    assert_int_equal(ec->valueint, code);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "signal")));
}

static bool all_bytes_are(const char *s, char c, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] != c)
            return false;
    return true;
}

/* ---- the table --------------------------------------------------------- */

static void test_table_lists_exactly_the_builtin_kinds(void **state)
{
    (void)state;
    const struct kind *t = kind_table();
    assert_non_null(t);
    size_t n = 0;
    for (; t[n].name != NULL; n++) {
        bool known = false;
        for (size_t i = 0; i < BUILTIN_COUNT; i++)
            known = known || strcmp(t[n].name, builtin_kinds[i]) == 0;
        if (!known)
            fail_msg("unexpected kind \"%s\"", t[n].name);
        assert_true(strlen(t[n].name) <= 32);
        assert_ptr_equal(kind_find(t[n].name), &t[n]);
    }
    assert_int_equal(n, BUILTIN_COUNT);
}

static void test_find_returns_each_kind_and_null_for_others(void **state)
{
    (void)state;
    for (size_t i = 0; i < BUILTIN_COUNT; i++) {
        const struct kind *k = kind_find(builtin_kinds[i]);
        assert_non_null(k);
        assert_string_equal(k->name, builtin_kinds[i]);
        assert_non_null(k->run);
        /* a NULL validate means any args (echo); every other kind checks its args */
        if (strcmp(k->name, "echo") != 0)
            assert_non_null(k->validate);
    }
    assert_null(kind_find("nope"));
    assert_null(kind_find(""));
    assert_null(kind_find("Echo"));
    assert_null(kind_find("echo "));
    assert_null(kind_find("exe"));
}

static void test_only_exec_needs_exec(void **state)
{
    (void)state;
    for (size_t i = 0; i < BUILTIN_COUNT; i++)
        assert_int_equal(kind_find(builtin_kinds[i])->needs_exec, strcmp(builtin_kinds[i], "exec") == 0);
}

static void test_every_example_is_json_its_kind_accepts(void **state)
{
    (void)state;
    for (const struct kind *k = kind_table(); k->name != NULL; k++) {
        if (k->example == NULL)
            fail_msg("%s has no example", k->name);
        cJSON *args = cJSON_Parse(k->example);
        if (args == NULL)
            fail_msg("%s example is not JSON: %s", k->name, k->example);
        char msg[256] = "";
        if (k->validate != NULL && k->validate(args, msg, sizeof msg) != 0)
            fail_msg("%s refuses its example %s: %s", k->name, k->example, msg);
        cJSON_Delete(args);
    }
}

static void test_validate_message_fits_a_small_buffer(void **state)
{
    (void)state;
    static const struct { const char *kind, *args; } bad[] = {
        { "sleep", "{\"seconds\":-1}" }, { "square", "{\"numbers\":\"x\"}" },
        { "cube", "{}" }, { "cpu", "{\"n\":1}" }, { "fail", "{\"message\":1}" },
        { "exec", "{\"argv\":[]}" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *args = cJSON_Parse(bad[i].args);
        assert_non_null(args);
        char msg[16];
        memset(msg, 'X', sizeof msg);
        assert_int_equal(kind_find(bad[i].kind)->validate(args, msg, 8), -1);
        assert_true(strnlen(msg, 8) < 8);
        assert_int_equal(msg[8], 'X');
        cJSON_Delete(args);
    }
}

static void test_outcome_clear_frees_and_zeroes(void **state)
{
    (void)state;
    struct kind_outcome out = {
        .ok = true, .result = strdup("{}"), .error_code = strdup("x"), .error_message = strdup("y"),
    };
    kind_outcome_clear(&out);
    assert_false(out.ok);
    assert_null(out.result);
    assert_null(out.error_code);
    assert_null(out.error_message);
    kind_outcome_clear(&out);
}

/* ---- builtins ---------------------------------------------------------- */

static void test_echo_returns_its_args_exactly(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "{\"a\":[1,2.5,\"x\",null,true,false],\"b\":{},\"c\":{\"d\":\"\\\"q\\\"\\n\\u00e9\"}}",
        "{}", "[]", "[1,[2,[3]]]", "\"text\"", "-12.75", "null", "true",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kind_outcome out;
        run_kind("echo", cases[i], MIB, &out);
        assert_succeeded(&out);
        cJSON *args = cJSON_Parse(cases[i]);
        char *compact = cJSON_PrintUnformatted(args);
        assert_string_equal(out.result, compact);
        free(compact);
        cJSON_Delete(args);
        kind_outcome_clear(&out);
    }
}

static void test_square_squares_each_number_in_order(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("square", "{\"numbers\":[2,3,8,9]}", MIB, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"results\":[4,9,64,81]}");
    kind_outcome_clear(&out);

    run_kind("square", "{\"numbers\":[-3,1.5,0,100000]}", MIB, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"results\":[9,2.25,0,10000000000]}");
    kind_outcome_clear(&out);
}

static void test_cube_cubes_each_number_in_order(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("cube", "{\"numbers\":[2,3,8,9]}", MIB, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"results\":[8,27,512,729]}");
    kind_outcome_clear(&out);

    run_kind("cube", "{\"numbers\":[-3,1.5,0]}", MIB, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"results\":[-27,3.375,0]}");
    kind_outcome_clear(&out);
}

static void test_cpu_counts_primes_below_n(void **state)
{
    (void)state;
    static const struct { const char *args; const char *want; } cases[] = {
        { "{\"n\":2}", "{\"primes\":0}" },           /* nothing below 2 */
        { "{\"n\":3}", "{\"primes\":1}" },           /* 2 */
        { "{\"n\":4}", "{\"primes\":2}" },           /* 2 3 */
        { "{\"n\":100}", "{\"primes\":25}" },
        { "{\"n\":101}", "{\"primes\":25}" },        /* 101 is not below 101 */
        { "{\"n\":102}", "{\"primes\":26}" },
        { "{\"n\":10000}", "{\"primes\":1229}" },
        { "{\"n\":1000000}", "{\"primes\":78498}" },
        { "{\"n\":1048576}", "{\"primes\":82025}" },   /* across several sieve segments */
        { "{\"n\":100000000}", "{\"primes\":5761455}" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kind_outcome out;
        run_kind("cpu", cases[i].args, MIB, &out);
        assert_succeeded(&out);
        assert_json_text(out.result, cases[i].want);
        kind_outcome_clear(&out);
    }
}

static void test_fail_fails_with_its_message(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("fail", "{\"message\":\"boom: it broke\"}", MIB, &out);
    assert_failed(&out);
    assert_non_null(out.error_message);
    assert_string_equal(out.error_message, "boom: it broke");
    kind_outcome_clear(&out);
}

static void test_sleep_zero_is_allowed(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("sleep", "{\"seconds\":0}", MIB, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"slept\":0}");
    kind_outcome_clear(&out);
}

static void test_sleep_fraction_sleeps_that_long(void **state)
{
    (void)state;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct kind_outcome out;
    run_kind("sleep", "{\"seconds\":0.15}", MIB, &out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"slept\":0.15}");
    kind_outcome_clear(&out);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs >= 0.15);   /* it really sleeps; how much longer is the machine's business */
}

/* ---- exec -------------------------------------------------------------- */

static void test_exec_echo_succeeds_with_its_output(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/echo\",\"hello\",\"world\"]}", MIB, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"exit_code\":0,\"signal\":null,\"stdout\":\"hello world\\n\","
                                 "\"stderr\":\"\",\"truncated\":false}");
    kind_outcome_clear(&out);
}

static void test_exec_runs_without_a_shell(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/echo\",\"$HOME\",\"*\",\"a;b\",\"`id`\"]}", MIB, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_string_equal(str_field(r, "stdout"), "$HOME * a;b `id`\n");
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

static void test_exec_finds_the_program_on_path(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"echo\",\"found\"]}", MIB, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_string_equal(str_field(r, "stdout"), "found\n");
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

static void test_exec_nonzero_exit_fails_with_that_code(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/sh\",\"-c\",\"echo partial; echo oops >&2; exit 3\"]}", MIB, &out);
    assert_failed(&out);
    assert_string_equal(out.error_code, "exit_status");
    assert_json_text(out.result, "{\"exit_code\":3,\"signal\":null,\"stdout\":\"partial\\n\","
                                 "\"stderr\":\"oops\\n\",\"truncated\":false}");
    kind_outcome_clear(&out);
}

static void test_exec_killed_by_signal_reports_the_signal(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/sh\",\"-c\",\"kill -TERM $$\"]}", MIB, &out);
    assert_failed(&out);
    assert_string_equal(out.error_code, "exit_status");
    assert_json_text(out.result, "{\"exit_code\":null,\"signal\":15,\"stdout\":\"\","
                                 "\"stderr\":\"\",\"truncated\":false}");
    kind_outcome_clear(&out);
}

static void test_exec_of_missing_program_fails(void **state)
{
    (void)state;
    struct kind_outcome out;
    pid_t self = getpid();
    run_kind("exec", "{\"argv\":[\"/nonexistent/taskpool-test-program\"]}", MIB, &out);
    assert_int_equal(getpid(), self);  /* a failed exec's child must _exit, not return here */
    assert_failed(&out);
    assert_string_equal(out.error_code, "exec_failed");
    kind_outcome_clear(&out);
}

static void test_exec_passes_stdin_to_the_command(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/cat\"],\"stdin\":\"line 1\\nline 2\\n\\u00e9\"}", MIB, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_exit_code(r, 0);
    assert_string_equal(str_field(r, "stdout"), "line 1\nline 2\n\xc3\xa9");
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

static void test_exec_without_stdin_gives_the_command_empty_input(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/cat\"]}", MIB, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_exit_code(r, 0);
    assert_string_equal(str_field(r, "stdout"), "");
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

/* 2 MiB through cat: stdin must be written while stdout is read, or both block. */
static void test_exec_large_stdin_passes_through_without_deadlock(void **state)
{
    (void)state;
    size_t n = 2 * MIB;
    char *in = malloc(n + 1);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    in[n] = '\0';
    cJSON *args = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(args, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString("/bin/cat"));
    cJSON_AddStringToObject(args, "stdin", in);
    char *text = cJSON_PrintUnformatted(args);
    cJSON_Delete(args);

    struct kind_outcome out;
    run_kind("exec", text, 4 * MIB, &out);
    free(text);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_exit_code(r, 0);
    const char *got = str_field(r, "stdout");
    assert_int_equal(strlen(got), n);
    assert_memory_equal(got, in, n);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r, "truncated")));
    cJSON_Delete(r);
    kind_outcome_clear(&out);
    free(in);
}

/* A command that exits without reading its stdin must not take the caller down (EPIPE). */
static void test_exec_stdin_the_command_does_not_read_is_dropped(void **state)
{
    (void)state;
    size_t n = MIB;
    char *in = malloc(n + 1);
    assert_non_null(in);
    memset(in, 'x', n);
    in[n] = '\0';
    cJSON *args = cJSON_CreateObject();
    cJSON *argv = cJSON_AddArrayToObject(args, "argv");
    cJSON_AddItemToArray(argv, cJSON_CreateString("/bin/true"));
    cJSON_AddStringToObject(args, "stdin", in);
    char *text = cJSON_PrintUnformatted(args);
    cJSON_Delete(args);
    free(in);

    struct kind_outcome out;
    run_kind("exec", text, MIB, &out);
    free(text);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_exit_code(r, 0);
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

static void test_exec_env_reaches_the_command(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/usr/bin/env\"],\"env\":{\"TP_TEST_T1\":\"v 1\",\"TP_TEST_T2\":\"\"}}",
             MIB, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    const char *env = str_field(r, "stdout");
    if (strstr(env, "TP_TEST_T1=v 1\n") == NULL || strstr(env, "TP_TEST_T2=\n") == NULL)
        fail_msg("env output lacks the variables:\n%s", env);
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

static void test_exec_cwd_is_the_working_directory(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/pwd\"],\"cwd\":\"/\"}", MIB, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_string_equal(str_field(r, "stdout"), "/\n");
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

static void test_exec_with_missing_cwd_fails(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/pwd\"],\"cwd\":\"/nonexistent/taskpool-test-dir\"}", MIB, &out);
    assert_failed(&out);
    assert_string_equal(out.error_code, "exec_failed");
    kind_outcome_clear(&out);
}

static void test_exec_output_over_max_output_is_truncated(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/usr/bin/printf\",\"0123456789abcdef\"]}", 10, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"exit_code\":0,\"signal\":null,\"stdout\":\"0123456789\","
                                 "\"stderr\":\"\",\"truncated\":true}");
    kind_outcome_clear(&out);

    run_kind("exec", "{\"argv\":[\"/bin/sh\",\"-c\",\"printf 0123456789abcdef >&2\"]}", 10, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"exit_code\":0,\"signal\":null,\"stdout\":\"\","
                                 "\"stderr\":\"0123456789\",\"truncated\":true}");
    kind_outcome_clear(&out);
}

static void test_exec_output_of_exactly_max_output_is_not_truncated(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/usr/bin/printf\",\"0123456789\"]}", 10, &out);
    assert_succeeded(&out);
    assert_json_text(out.result, "{\"exit_code\":0,\"signal\":null,\"stdout\":\"0123456789\","
                                 "\"stderr\":\"\",\"truncated\":false}");
    kind_outcome_clear(&out);
}

/*
 * 1 MiB on stderr first, then 1 MiB on stdout: reading either stream to EOF
 * before the other blocks the command on a full pipe.
 */
static void test_exec_large_output_on_both_streams_does_not_deadlock(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/sh\",\"-c\","
                     "\"head -c 1048576 /dev/zero | tr '\\\\0' e >&2; "
                     "head -c 1048576 /dev/zero | tr '\\\\0' o\"]}", 2 * MIB, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_exit_code(r, 0);
    assert_true(all_bytes_are(str_field(r, "stdout"), 'o', MIB));
    assert_true(all_bytes_are(str_field(r, "stderr"), 'e', MIB));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r, "truncated")));
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

/* Past the cap the output is still drained, so the command runs to its normal end. */
static void test_exec_output_past_the_cap_is_drained_and_command_exits_normally(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/bin/sh\",\"-c\","
                     "\"head -c 4194304 /dev/zero | tr '\\\\0' e >&2; "
                     "head -c 4194304 /dev/zero | tr '\\\\0' o; exit 0\"]}", 1000, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_exit_code(r, 0);
    assert_true(all_bytes_are(str_field(r, "stdout"), 'o', 1000));
    assert_true(all_bytes_are(str_field(r, "stderr"), 'e', 1000));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "truncated")));
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

/* Non-UTF-8 output still makes a JSON string: bad bytes and NULs become U+FFFD. */
static void test_exec_binary_output_becomes_valid_text(void **state)
{
    (void)state;
    struct kind_outcome out;
    run_kind("exec", "{\"argv\":[\"/usr/bin/printf\",\"a\\\\377b\\\\000c\"]}", MIB, &out);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_string_equal(str_field(r, "stdout"), "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c");
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

/*
 * The command gets stdin, stdout and stderr and nothing else of its caller: a
 * worker's channel to the daemon (fd 3, not close-on-exec since it came through
 * exec) must not reach the command, which could read or forge frames on it.
 */
static void test_exec_command_inherits_no_other_descriptor(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY);        /* no O_CLOEXEC, like the worker's fd 3 */
    assert_true(fd >= 0);
    char args[256];
    snprintf(args, sizeof args,
             "{\"argv\":[\"/bin/sh\",\"-c\",\"if [ -e /proc/self/fd/%d ]; then echo leaked; "
             "else echo closed; fi\"]}", fd);
    struct kind_outcome out;
    run_kind("exec", args, MIB, &out);
    close(fd);
    assert_succeeded(&out);
    cJSON *r = exec_result(&out);
    assert_string_equal(str_field(r, "stdout"), "closed\n");
    cJSON_Delete(r);
    kind_outcome_clear(&out);
}

/* ---- utf8_sanitize ------------------------------------------------- */

static void assert_sanitized_at(const char *in, size_t len, const char *want, const char *file, int line)
{
    char *got = utf8_sanitize(in, len);
    if (got == NULL || strcmp(got, want) != 0) {
        print_error("sanitize gave \"%s\", expected \"%s\"\n", got ? got : "(null)", want);
        free(got);
        _fail(file, line);
        return;
    }
    free(got);
}
#define assert_sanitized(in, want) assert_sanitized_at((in), sizeof(in) - 1, (want), __FILE__, __LINE__)
#define FFFD "\xef\xbf\xbd"

static void test_utf8_sanitize_keeps_valid_text(void **state)
{
    (void)state;
    assert_sanitized("", "");
    assert_sanitized("plain ascii\n\t~", "plain ascii\n\t~");
    assert_sanitized("\xc3\xa9", "\xc3\xa9");                       /* U+00E9 */
    assert_sanitized("\xe2\x82\xac", "\xe2\x82\xac");               /* U+20AC */
    assert_sanitized("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");       /* U+1F600 */
    assert_sanitized("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");       /* U+10FFFF */
    assert_sanitized("\xef\xbf\xbd", "\xef\xbf\xbd");               /* U+FFFD itself */
}

static void test_utf8_sanitize_replaces_each_bad_byte(void **state)
{
    (void)state;
    assert_sanitized("a\0b", "a" FFFD "b");                         /* NUL */
    assert_sanitized("\xff", FFFD);
    assert_sanitized("\x80x", FFFD "x");                            /* lone continuation */
    assert_sanitized("\xc0\xaf", FFFD FFFD);                        /* overlong '/' */
    assert_sanitized("\xe0\x80\xaf", FFFD FFFD FFFD);               /* overlong, 3 bytes */
    assert_sanitized("\xed\xa0\x80", FFFD FFFD FFFD);               /* surrogate U+D800 */
    assert_sanitized("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);      /* past U+10FFFF */
    assert_sanitized("ok\xe2\x82", "ok" FFFD FFFD);                 /* cut at the end */
    assert_sanitized("\xe2\x82x", FFFD FFFD "x");                   /* cut in the middle */
    assert_sanitized("\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD); /* 5-byte form */
}

/* Reads exactly len bytes: a cut at max_output need not end on a NUL. */
static void test_utf8_sanitize_reads_only_len_bytes(void **state)
{
    (void)state;
    char *buf = malloc(3);
    assert_non_null(buf);
    memcpy(buf, "ab\xe2", 3);
    char *got = utf8_sanitize(buf, 3);
    assert_non_null(got);
    assert_string_equal(got, "ab" FFFD);
    free(got);
    free(buf);
}

int main(void)
{
    /* As the worker does (server/worker.c): a command that closes its stdin early
     * must give EPIPE, not kill the process that feeds it. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_lists_exactly_the_builtin_kinds),
        cmocka_unit_test(test_find_returns_each_kind_and_null_for_others),
        cmocka_unit_test(test_only_exec_needs_exec),
        cmocka_unit_test(test_every_example_is_json_its_kind_accepts),
        cmocka_unit_test(test_validate_message_fits_a_small_buffer),
        cmocka_unit_test(test_outcome_clear_frees_and_zeroes),
        cmocka_unit_test(test_echo_returns_its_args_exactly),
        cmocka_unit_test(test_square_squares_each_number_in_order),
        cmocka_unit_test(test_cube_cubes_each_number_in_order),
        cmocka_unit_test(test_cpu_counts_primes_below_n),
        cmocka_unit_test(test_fail_fails_with_its_message),
        cmocka_unit_test(test_sleep_zero_is_allowed),
        cmocka_unit_test(test_sleep_fraction_sleeps_that_long),
        cmocka_unit_test(test_exec_echo_succeeds_with_its_output),
        cmocka_unit_test(test_exec_runs_without_a_shell),
        cmocka_unit_test(test_exec_finds_the_program_on_path),
        cmocka_unit_test(test_exec_nonzero_exit_fails_with_that_code),
        cmocka_unit_test(test_exec_killed_by_signal_reports_the_signal),
        cmocka_unit_test(test_exec_of_missing_program_fails),
        cmocka_unit_test(test_exec_passes_stdin_to_the_command),
        cmocka_unit_test(test_exec_without_stdin_gives_the_command_empty_input),
        cmocka_unit_test(test_exec_large_stdin_passes_through_without_deadlock),
        cmocka_unit_test(test_exec_stdin_the_command_does_not_read_is_dropped),
        cmocka_unit_test(test_exec_env_reaches_the_command),
        cmocka_unit_test(test_exec_cwd_is_the_working_directory),
        cmocka_unit_test(test_exec_with_missing_cwd_fails),
        cmocka_unit_test(test_exec_output_over_max_output_is_truncated),
        cmocka_unit_test(test_exec_output_of_exactly_max_output_is_not_truncated),
        cmocka_unit_test(test_exec_large_output_on_both_streams_does_not_deadlock),
        cmocka_unit_test(test_exec_output_past_the_cap_is_drained_and_command_exits_normally),
        cmocka_unit_test(test_exec_binary_output_becomes_valid_text),
        cmocka_unit_test(test_exec_command_inherits_no_other_descriptor),
        cmocka_unit_test(test_utf8_sanitize_keeps_valid_text),
        cmocka_unit_test(test_utf8_sanitize_replaces_each_bad_byte),
        cmocka_unit_test(test_utf8_sanitize_reads_only_len_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
