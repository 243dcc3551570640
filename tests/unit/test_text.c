/*
 * test_text.c - the growable text buffer: appends, growth past the first
 * size, and the empty text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "text.h"

static void test_appends_in_order(void **state)
{
    struct text t;

    (void)state;
    text_init(&t, 64);
    text_printf(&t, "%s=%d", "a", 1);
    text_printf(&t, ",%s", "b");
    char *s = text_take(&t);
    assert_string_equal(s, "a=1,b");
    free(s);
    assert_null(t.buf);
}

static void test_grows_far_past_its_first_size(void **state)
{
    struct text t;
    char want[10001];

    (void)state;
    text_init(&t, 1);
    for (int i = 0; i < 10000; i++) {
        text_printf(&t, "%c", 'a' + i % 26);
        want[i] = (char)('a' + i % 26);
    }
    want[10000] = '\0';
    text_printf(&t, "%s", "");
    char *s = text_take(&t);
    assert_int_equal(strlen(s), 10000);
    assert_string_equal(s, want);
    free(s);
}

static void test_one_piece_bigger_than_the_buffer(void **state)
{
    struct text t;
    char big[5000];

    (void)state;
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    text_init(&t, 16);
    text_printf(&t, "[%s]", big);
    char *s = text_take(&t);
    assert_int_equal(strlen(s), sizeof big + 1);
    assert_int_equal(s[0], '[');
    assert_int_equal(s[sizeof big], ']');
    free(s);
}

static void test_an_empty_text_is_the_empty_string(void **state)
{
    struct text t;

    (void)state;
    text_init(&t, 0);
    char *s = text_take(&t);
    assert_string_equal(s, "");
    free(s);
}

static void test_a_failed_text_gives_null(void **state)
{
    struct text t;

    (void)state;
    text_init(&t, 8);
    t.failed = true;               /* as after a failed allocation */
    text_printf(&t, "ignored");
    assert_null(text_take(&t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_in_order),
        cmocka_unit_test(test_grows_far_past_its_first_size),
        cmocka_unit_test(test_one_piece_bigger_than_the_buffer),
        cmocka_unit_test(test_an_empty_text_is_the_empty_string),
        cmocka_unit_test(test_a_failed_text_gives_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
