/*
 * test_idmap.c - the id -> pointer hash map: put/get/del, replacement,
 * growth, and deletion under churn (backward shift) checked against a model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"

#define VAL(id) ((void *)(intptr_t)((id) * 2 + 1))

static void test_empty_map_finds_nothing(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    assert_null(idmap_get(&m, 1));
    assert_null(idmap_del(&m, 1));
    assert_int_equal(m.len, 0);
    idmap_free(&m);
    idmap_free(&m);
}

static void test_put_get_del_one(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    assert_int_equal(idmap_put(&m, 42, VAL(42)), 0);
    assert_int_equal(m.len, 1);
    assert_ptr_equal(idmap_get(&m, 42), VAL(42));
    assert_null(idmap_get(&m, 41));
    assert_ptr_equal(idmap_del(&m, 42), VAL(42));
    assert_int_equal(m.len, 0);
    assert_null(idmap_get(&m, 42));
    assert_null(idmap_del(&m, 42));
    idmap_free(&m);
}

static void test_put_of_existing_id_replaces_the_value(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    assert_int_equal(idmap_put(&m, 7, VAL(7)), 0);
    assert_int_equal(idmap_put(&m, 7, VAL(8)), 0);
    assert_int_equal(m.len, 1);
    assert_ptr_equal(idmap_get(&m, 7), VAL(8));
    idmap_free(&m);
}

/* Ids that are not in the map, 0 and negatives included, find and remove nothing. */
static void test_absent_ids_change_nothing(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    for (int64_t id = 1; id <= 10; id++)
        assert_int_equal(idmap_put(&m, id, VAL(id)), 0);
    static const int64_t absent[] = { 0, -1, 11, 1000, INT64_MAX, INT64_MIN };
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        assert_null(idmap_get(&m, absent[i]));
        assert_null(idmap_del(&m, absent[i]));
        assert_int_equal(m.len, 10);
    }
    for (int64_t id = 1; id <= 10; id++)
        assert_ptr_equal(idmap_get(&m, id), VAL(id));
    idmap_free(&m);
}

static void test_many_ids_survive_growth(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct idmap m;
    idmap_init(&m);
    for (int64_t id = 1; id <= N; id++)
        assert_int_equal(idmap_put(&m, id * 3, VAL(id * 3)), 0);
    assert_int_equal(m.len, N);
    for (int64_t id = 1; id <= N; id++) {
        assert_ptr_equal(idmap_get(&m, id * 3), VAL(id * 3));
        assert_null(idmap_get(&m, id * 3 + 1));
    }
    idmap_free(&m);
}

struct each_sum {
    size_t  n;
    int64_t sum;
    bool    values_ok;
};

static void each_add(int64_t id, void *value, void *arg)
{
    struct each_sum *s = arg;
    s->n++;
    s->sum += id;
    s->values_ok = s->values_ok && value == VAL(id);
}

static void test_each_visits_every_entry_once(void **state)
{
    (void)state;
    struct idmap m;
    idmap_init(&m);
    int64_t want = 0;
    for (int64_t id = 1; id <= 500; id++) {
        assert_int_equal(idmap_put(&m, id, VAL(id)), 0);
        want += id;
    }
    for (int64_t id = 2; id <= 500; id += 2) {
        assert_ptr_equal(idmap_del(&m, id), VAL(id));
        want -= id;
    }
    struct each_sum s = { 0, 0, true };
    idmap_each(&m, each_add, &s);
    assert_int_equal(s.n, 250);
    assert_int_equal(s.sum, want);
    assert_true(s.values_ok);
    idmap_free(&m);
}

/* Random puts and deletes over a small id range (long probe runs) against a plain array. */
static void test_churn_matches_a_simple_model(void **state)
{
    (void)state;
    enum { RANGE = 3000, STEPS = 200000 };
    void **model = calloc(RANGE + 1, sizeof *model);
    assert_non_null(model);
    size_t len = 0;
    struct idmap m;
    idmap_init(&m);
    srand(4242);
    for (int step = 0; step < STEPS; step++) {
        int64_t id = 1 + rand() % RANGE;
        if (rand() % 2) {
            void *v = (void *)(intptr_t)(step * 2 + 1);
            assert_int_equal(idmap_put(&m, id, v), 0);
            if (model[id] == NULL)
                len++;
            model[id] = v;
        } else {
            assert_ptr_equal(idmap_del(&m, id), model[id]);
            if (model[id] != NULL)
                len--;
            model[id] = NULL;
        }
        assert_int_equal(m.len, len);
        if (step % 10000 == 0)
            for (int64_t k = 1; k <= RANGE; k++)
                assert_ptr_equal(idmap_get(&m, k), model[k]);
    }
    for (int64_t k = 1; k <= RANGE; k++)
        assert_ptr_equal(idmap_get(&m, k), model[k]);
    idmap_free(&m);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map_finds_nothing),
        cmocka_unit_test(test_put_get_del_one),
        cmocka_unit_test(test_put_of_existing_id_replaces_the_value),
        cmocka_unit_test(test_absent_ids_change_nothing),
        cmocka_unit_test(test_many_ids_survive_growth),
        cmocka_unit_test(test_each_visits_every_entry_once),
        cmocka_unit_test(test_churn_matches_a_simple_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
