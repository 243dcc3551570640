/*
 * test_utf8.c - UTF-8 well-formedness: what a request body may contain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

#define VALID(lit)   assert_true(utf8_valid(lit, sizeof(lit) - 1))
#define INVALID(lit) assert_false(utf8_valid(lit, sizeof(lit) - 1))

static void test_valid_accepts_ascii_and_every_sequence_length(void **state)
{
    (void)state;
    VALID("");
    VALID("plain ascii {\"k\": 1}");
    VALID("caf\xc3\xa9");                    /* 2 bytes */
    VALID("\xe2\x82\xac");                   /* 3 bytes: euro sign */
    VALID("\xf0\x9f\x98\x80");               /* 4 bytes: emoji */
    VALID("\xef\xbf\xbf\xf4\x8f\xbf\xbf");   /* U+FFFF and U+10FFFF, the edges */
}

static void test_valid_refuses_malformed_sequences(void **state)
{
    (void)state;
    INVALID("\xff");                         /* never a lead byte */
    INVALID("\x80");                         /* continuation without lead */
    INVALID("caf\xc3");                      /* truncated at the end */
    INVALID("\xe2\x82x");                    /* bad continuation */
    INVALID("\xc0\xaf");                     /* overlong '/' */
    INVALID("\xe0\x80\xaf");                 /* overlong, 3 bytes */
    INVALID("\xed\xa0\x80");                 /* surrogate U+D800 */
    INVALID("\xf4\x90\x80\x80");             /* past U+10FFFF */
    INVALID("a\0b");                         /* NUL cannot live in a C string */
}

static void test_sanitize_replaces_each_bad_byte_and_keeps_good_text(void **state)
{
    (void)state;
    static const char in[] = "ok\xff\xc3\xa9\xed\xa0\x80!";
    char *s = utf8_sanitize(in, sizeof in - 1);
    assert_non_null(s);
    assert_string_equal(s, "ok\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!");
    assert_true(utf8_valid(s, strlen(s)));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_accepts_ascii_and_every_sequence_length),
        cmocka_unit_test(test_valid_refuses_malformed_sequences),
        cmocka_unit_test(test_sanitize_replaces_each_bad_byte_and_keeps_good_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
