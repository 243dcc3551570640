/*
 * test_queue.c - the ready queue: highest priority first, lowest id first
 * within a priority, removal by id, and a long random run against a model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

static void push(struct queue *q, int priority, int64_t id)
{
    assert_int_equal(queue_push(q, priority, id, (void *)(intptr_t)(id * 10)), 0);
}

/* Pops one item and checks it is (priority, id) with the data pushed with it. */
static void pop_expect_at(struct queue *q, int priority, int64_t id, const char *file, int line)
{
    struct queue_item it;
    memset(&it, 0, sizeof it);
    if (queue_pop(q, &it) != 0) {
        print_error("queue empty, expected id %lld\n", (long long)id);
        _fail(file, line);
    }
    if (it.id != id || it.priority != priority || it.data != (void *)(intptr_t)(id * 10)) {
        print_error("popped id %lld priority %d, expected id %lld priority %d\n",
                    (long long)it.id, it.priority, (long long)id, priority);
        _fail(file, line);
    }
}
#define pop_expect(q, prio, id) pop_expect_at((q), (prio), (id), __FILE__, __LINE__)

static void test_new_queue_is_empty_and_pop_fails(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    assert_int_equal(queue_len(&q), 0);
    struct queue_item it = { .priority = 7, .id = 7, .data = &q };
    assert_int_equal(queue_pop(&q, &it), -1);
    assert_int_equal(queue_len(&q), 0);
    queue_free(&q);
}

static void test_pop_gives_highest_priority_first(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    push(&q, 0, 1);
    push(&q, 5, 2);
    push(&q, -3, 3);
    push(&q, 1000, 4);
    push(&q, -1000, 5);
    push(&q, 10, 6);
    assert_int_equal(queue_len(&q), 6);
    pop_expect(&q, 1000, 4);
    pop_expect(&q, 10, 6);
    pop_expect(&q, 5, 2);
    pop_expect(&q, 0, 1);
    pop_expect(&q, -3, 3);
    pop_expect(&q, -1000, 5);
    assert_int_equal(queue_len(&q), 0);
    struct queue_item it;
    assert_int_equal(queue_pop(&q, &it), -1);
    queue_free(&q);
}

static void test_equal_priorities_pop_lowest_id_first(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    for (int64_t id = 50; id >= 1; id--)         /* pushed in reverse: order comes from ids */
        push(&q, 3, id);
    for (int64_t id = 51; id <= 100; id++)
        push(&q, 3, id);
    for (int64_t id = 1; id <= 100; id++)
        pop_expect(&q, 3, id);
    assert_int_equal(queue_len(&q), 0);
    queue_free(&q);
}

static void test_priority_beats_age(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    push(&q, 0, 1);
    push(&q, 0, 2);
    push(&q, 1, 3);
    push(&q, 0, 4);
    push(&q, 1, 5);
    pop_expect(&q, 1, 3);
    pop_expect(&q, 1, 5);
    pop_expect(&q, 0, 1);
    pop_expect(&q, 0, 2);
    pop_expect(&q, 0, 4);
    queue_free(&q);
}

static void test_pushes_after_pops_keep_the_order(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    push(&q, 1, 1);
    push(&q, 2, 2);
    pop_expect(&q, 2, 2);
    push(&q, 1, 3);
    push(&q, 5, 4);
    pop_expect(&q, 5, 4);
    pop_expect(&q, 1, 1);
    push(&q, 0, 5);
    pop_expect(&q, 1, 3);
    pop_expect(&q, 0, 5);
    queue_free(&q);
}

static void test_remove_takes_out_only_that_id(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    for (int64_t id = 1; id <= 9; id++)
        push(&q, (int)(id % 3), id);             /* priorities 1 2 0 1 2 0 1 2 0 */
    assert_int_equal(queue_remove(&q, 5), 0);    /* an inner item */
    assert_int_equal(queue_len(&q), 8);
    assert_int_equal(queue_remove(&q, 2), 0);    /* the head */
    assert_int_equal(queue_remove(&q, 9), 0);    /* a low one */
    assert_int_equal(queue_len(&q), 6);
    pop_expect(&q, 2, 8);
    pop_expect(&q, 1, 1);
    pop_expect(&q, 1, 4);
    pop_expect(&q, 1, 7);
    pop_expect(&q, 0, 3);
    pop_expect(&q, 0, 6);
    assert_int_equal(queue_len(&q), 0);
    queue_free(&q);
}

static void test_remove_of_absent_id_fails_and_changes_nothing(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    assert_int_equal(queue_remove(&q, 1), -1);
    push(&q, 0, 1);
    push(&q, 0, 2);
    assert_int_equal(queue_remove(&q, 3), -1);
    assert_int_equal(queue_remove(&q, 0), -1);
    assert_int_equal(queue_remove(&q, -1), -1);
    assert_int_equal(queue_len(&q), 2);
    assert_int_equal(queue_remove(&q, 1), 0);
    assert_int_equal(queue_remove(&q, 1), -1);
    pop_expect(&q, 0, 2);
    queue_free(&q);
}

static void test_remove_of_last_item_empties_the_queue(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    push(&q, 4, 42);
    assert_int_equal(queue_remove(&q, 42), 0);
    assert_int_equal(queue_len(&q), 0);
    struct queue_item it;
    assert_int_equal(queue_pop(&q, &it), -1);
    push(&q, 1, 43);
    pop_expect(&q, 1, 43);
    queue_free(&q);
}

static void test_free_of_unused_or_filled_queue_is_fine(void **state)
{
    (void)state;
    struct queue q;
    queue_init(&q);
    queue_free(&q);
    queue_init(&q);
    for (int64_t id = 1; id <= 1000; id++)
        push(&q, 0, id);
    queue_free(&q);
}

static int cmp_items(const void *a, const void *b)
{
    const struct queue_item *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void test_many_items_pop_in_sorted_order(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct queue_item *want = malloc(N * sizeof *want);
    assert_non_null(want);
    struct queue q;
    queue_init(&q);
    srand(12345);
    for (int i = 0; i < N; i++) {
        /* ids unique but pushed out of order; few priorities so ties are common */
        int64_t id = ((int64_t)i * 7919) % N + 1;
        int prio = rand() % 21 - 10;
        want[i] = (struct queue_item){ .priority = prio, .id = id };
        push(&q, prio, id);
    }
    assert_int_equal(queue_len(&q), N);
    qsort(want, N, sizeof *want, cmp_items);
    for (int i = 0; i < N; i++)
        pop_expect(&q, want[i].priority, want[i].id);
    assert_int_equal(queue_len(&q), 0);
    queue_free(&q);
    free(want);
}

/* Random pushes, pops and removes checked step by step against a plain array. */
static void test_random_operations_match_a_simple_model(void **state)
{
    (void)state;
    enum { STEPS = 30000, CAP = 30000 };
    struct queue_item *model = malloc(CAP * sizeof *model);
    assert_non_null(model);
    size_t n = 0;
    int64_t next_id = 1;
    struct queue q;
    queue_init(&q);
    srand(777);
    for (int step = 0; step < STEPS; step++) {
        int op = rand() % 10;
        if (op < 5 || n == 0) {
            int prio = rand() % 7 - 3;
            model[n++] = (struct queue_item){ .priority = prio, .id = next_id };
            push(&q, prio, next_id);
            next_id++;
        } else if (op < 8) {
            size_t best = 0;
            for (size_t i = 1; i < n; i++)
                if (cmp_items(&model[i], &model[best]) < 0)
                    best = i;
            pop_expect(&q, model[best].priority, model[best].id);
            model[best] = model[--n];
        } else {
            size_t victim = (size_t)rand() % n;
            assert_int_equal(queue_remove(&q, model[victim].id), 0);
            model[victim] = model[--n];
        }
        assert_int_equal(queue_len(&q), n);
    }
    qsort(model, n, sizeof *model, cmp_items);
    for (size_t i = 0; i < n; i++)
        pop_expect(&q, model[i].priority, model[i].id);
    queue_free(&q);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_queue_is_empty_and_pop_fails),
        cmocka_unit_test(test_pop_gives_highest_priority_first),
        cmocka_unit_test(test_equal_priorities_pop_lowest_id_first),
        cmocka_unit_test(test_priority_beats_age),
        cmocka_unit_test(test_pushes_after_pops_keep_the_order),
        cmocka_unit_test(test_remove_takes_out_only_that_id),
        cmocka_unit_test(test_remove_of_absent_id_fails_and_changes_nothing),
        cmocka_unit_test(test_remove_of_last_item_empties_the_queue),
        cmocka_unit_test(test_free_of_unused_or_filled_queue_is_fine),
        cmocka_unit_test(test_many_items_pop_in_sorted_order),
        cmocka_unit_test(test_random_operations_match_a_simple_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
