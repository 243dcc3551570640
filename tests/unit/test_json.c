/*
 * test_json.c - the strict JSON check (what RFC 8259 allows and cJSON
 * would let through besides) and exact number printing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static void accept_at(const char *text, const char *file, int line)
{
    char why[160] = "";

    if (json_check(text, strlen(text), why, sizeof why) != 0) {
        print_error("refused %s: %s\n", text, why);
        _fail(file, line);
    }
}

/* Refuses text and checks the reason starts with want. */
static void refuse_at(const char *text, size_t len, const char *want, const char *file, int line)
{
    char why[160] = "";

    if (json_check(text, len, why, sizeof why) != -1) {
        print_error("accepted %.*s\n", (int)len, text);
        _fail(file, line);
        return;
    }
    if (strncmp(why, want, strlen(want)) != 0) {
        print_error("%.*s: reason '%s', expected '%s...'\n", (int)len, text, why, want);
        _fail(file, line);
    }
}

#define ACCEPT(text) accept_at((text), __FILE__, __LINE__)
#define REFUSE(text, want) refuse_at((text), strlen(text), (want), __FILE__, __LINE__)

static void test_check_accepts_every_kind_of_value(void **state)
{
    (void)state;
    ACCEPT("{}");
    ACCEPT("[]");
    ACCEPT(" \t\r\n{ \"a\" : [ 1 , -2.5e+3 , 0 , -0 , 0.0 , 1E-7 ] , \"b\" : { } } \n");
    ACCEPT("\"x\"");
    ACCEPT("true");
    ACCEPT("false");
    ACCEPT("null");
    ACCEPT("12345678901234567890");
    ACCEPT("[[[]],{\"\":\"\"},[{}]]");
    ACCEPT("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"");
    ACCEPT("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
}

static void test_check_refuses_numbers_cjson_would_take(void **state)
{
    (void)state;
    REFUSE("[01]", "a number has a leading zero");
    REFUSE("[00]", "a number has a leading zero");
    REFUSE("[-01]", "a number has a leading zero");
    REFUSE("[1.]", "a number needs digits after its decimal point");
    REFUSE("[1.e5]", "a number needs digits after its decimal point");
    REFUSE("[-.5]", "a number needs digits");
    REFUSE("[.5]", "expected a value");
    REFUSE("[+1]", "expected a value");
    REFUSE("[1e]", "a number needs digits in its exponent");
    REFUSE("[1e+]", "a number needs digits in its exponent");
    REFUSE("[0x10]", "expected ',' or ']'");
    REFUSE("[-]", "a number needs digits");
}

static void test_check_refuses_bad_strings(void **state)
{
    (void)state;
    REFUSE("[\"a\tb\"]", "a control character in a string must be escaped");
    REFUSE("[\"a\nb\"]", "a control character in a string must be escaped");
    REFUSE("[\"\x01\"]", "a control character in a string must be escaped");
    REFUSE("[\"\\x41\"]", "a string has an invalid escape");
    REFUSE("[\"\\u12\"]", "a \\u escape needs four hex digits");
    REFUSE("[\"\\u0000\"]", "strings must not contain \\u0000");
    REFUSE("[\"\\uD83D\"]", "a \\u escape is the first half of a surrogate pair alone");
    REFUSE("[\"\\uD83Dx\"]", "a \\u escape is the first half of a surrogate pair alone");
    REFUSE("[\"\\uD83D\\u0041\"]", "a \\u escape is the first half of a surrogate pair alone");
    REFUSE("[\"\\uDE00\"]", "a \\u escape is the second half of a surrogate pair alone");
    REFUSE("[\"abc", "a string is not closed");
    REFUSE("['a']", "expected a value");
}

static void test_check_refuses_bad_structure(void **state)
{
    (void)state;
    REFUSE("", "the text ends where a value should be");
    REFUSE("   ", "the text ends where a value should be");
    REFUSE("[1,]", "expected a value");
    REFUSE("[,1]", "expected a value");
    REFUSE("[1 2]", "expected ',' or ']'");
    REFUSE("{\"a\":1,}", "expected a field name in double quotes");
    REFUSE("{a:1}", "expected a field name in double quotes");
    REFUSE("{\"a\" 1}", "expected ':' after a field name");
    REFUSE("{\"a\":1]", "expected ',' or '}'");
    REFUSE("[1}", "expected ',' or ']'");
    REFUSE("{} {}", "unexpected text after the value");
    REFUSE("{}x", "unexpected text after the value");
    REFUSE("tru", "expected a value");
    REFUSE("nul", "expected a value");
    REFUSE("True", "expected a value");
    REFUSE("[", "the text ends where a value should be");
    REFUSE("{\"a\":", "the text ends where a value should be");
    refuse_at("[1]\0", 4, "unexpected text after the value", __FILE__, __LINE__);
}

static void test_check_reads_only_len_bytes(void **state)
{
    char why[160];

    (void)state;
    assert_int_equal(json_check("[1] trailing", 3, why, sizeof why), 0);
    assert_int_equal(json_check("[1,2]", 3, why, sizeof why), -1);
}

static void test_check_reports_the_byte_where_it_stopped(void **state)
{
    char why[160];

    (void)state;
    assert_int_equal(json_check("{\"kind\": 01}", 12, why, sizeof why), -1);
    assert_string_equal(why, "a number has a leading zero at byte 10");
    assert_int_equal(json_check("[\"\\uD83D\\u0041\"]", 17, why, sizeof why), -1);
    assert_string_equal(why, "a \\u escape is the first half of a surrogate pair alone at byte 2");
    assert_int_equal(json_check("[\"ab\\uDE00\"]", 12, why, sizeof why), -1);
    assert_string_equal(why, "a \\u escape is the second half of a surrogate pair alone at byte 4");
}

/* depth [ then depth ]. */
static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);
    assert_non_null(s);
    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[depth * 2] = '\0';
    return s;
}

static void test_check_nesting_up_to_1000_deep(void **state)
{
    char why[160];
    char *s;

    (void)state;
    s = nested(JSON_DEPTH_MAX);
    assert_int_equal(json_check(s, strlen(s), why, sizeof why), 0);
    free(s);
    s = nested(JSON_DEPTH_MAX + 1);
    assert_int_equal(json_check(s, strlen(s), why, sizeof why), -1);
    assert_string_equal(why, "values are nested more than 1000 deep at byte 1000");
    free(s);
    s = malloc(1000001);
    assert_non_null(s);
    memset(s, '[', 1000000);               /* a million: no recursion, no crash */
    assert_int_equal(json_check(s, 1000000, why, sizeof why), -1);
    free(s);
}

static void check_prints_at(const char *in, const char *want, const char *file, int line)
{
    cJSON *v = cJSON_Parse(in);
    char *got;

    if (v == NULL) {
        print_error("cJSON cannot parse %s\n", in);
        _fail(file, line);
        return;
    }
    got = json_print(v);
    cJSON_Delete(v);
    if (got == NULL || strcmp(got, want) != 0) {
        print_error("%s printed as %s, expected %s\n", in, got ? got : "(null)", want);
        free(got);
        _fail(file, line);
        return;
    }
    free(got);
}

#define PRINTS(in, want) check_prints_at((in), (want), __FILE__, __LINE__)

static void test_print_numbers_read_back_as_the_same_double(void **state)
{
    (void)state;
    PRINTS("[9007199254740991]", "[9007199254740991]");
    PRINTS("[-9007199254740991]", "[-9007199254740991]");
    PRINTS("[0.30000000000000004]", "[0.30000000000000004]");
    PRINTS("[0.1]", "[0.1]");
    PRINTS("[1.7976931348623157e308]", "[1.7976931348623157e+308]");
    PRINTS("[5e-324]", "[4.94065645841247e-324]");   /* subnormal: 15 digits, not 1, but exact */
    PRINTS("[1e21]", "[1e+21]");
    PRINTS("[100]", "[100]");
    PRINTS("[1.0]", "[1]");
    PRINTS("[-0]", "[-0]");
    PRINTS("{\"a\":{\"b\":[2.5,\"x\",true,null]}}", "{\"a\":{\"b\":[2.5,\"x\",true,null]}}");
    PRINTS("\"no numbers\"", "\"no numbers\"");
}

static void test_print_leaves_its_argument_alone(void **state)
{
    cJSON *v = cJSON_Parse("{\"n\":0.30000000000000004}");
    char *text;

    (void)state;
    assert_non_null(v);
    text = json_print(v);
    assert_string_equal(text, "{\"n\":0.30000000000000004}");
    free(text);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(v, "n")));
    assert_true(cJSON_GetObjectItem(v, "n")->valuedouble == 0.1 + 0.2);
    cJSON_Delete(v);
}

static void test_format_number_round_trips_many_doubles(void **state)
{
    char buf[32];
    double x = 1.0;

    (void)state;
    for (int i = 0; i < 20000; i++) {
        x = x * 1.000123456789 + 1e-9 * i;
        double vals[] = { x, -x, 1.0 / x, x * 1e200, x * 1e-300 };
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
            json_format_number(vals[k], buf, sizeof buf);
            assert_true(strtod(buf, NULL) == vals[k]);
        }
    }
    json_format_number(INFINITY, buf, sizeof buf);
    assert_string_equal(buf, "null");
    json_format_number(DBL_MAX, buf, sizeof buf);
    assert_true(strtod(buf, NULL) == DBL_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_accepts_every_kind_of_value),
        cmocka_unit_test(test_check_refuses_numbers_cjson_would_take),
        cmocka_unit_test(test_check_refuses_bad_strings),
        cmocka_unit_test(test_check_refuses_bad_structure),
        cmocka_unit_test(test_check_reads_only_len_bytes),
        cmocka_unit_test(test_check_reports_the_byte_where_it_stopped),
        cmocka_unit_test(test_check_nesting_up_to_1000_deep),
        cmocka_unit_test(test_print_numbers_read_back_as_the_same_double),
        cmocka_unit_test(test_print_leaves_its_argument_alone),
        cmocka_unit_test(test_format_number_round_trips_many_doubles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
