/*
 * test_journal.c - the dispatch journal: files created beside the database,
 * append then replay, reopening appends, reset, torn and foreign records,
 * rotation between the two files, replay without files.
 * Each test gets its own mkdtemp directory under /tmp.
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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"

#define MAGIC      0x4a504b54u
#define ROTATE_AT  (1024 * 1024)
#define REC_SIZE   16
#define PER_FILE   (ROTATE_AT / REC_SIZE)     /* records that fill a file to the threshold */

/* The record exactly as lib/journal.c writes it. */
struct rec {
    int64_t  id;
    int32_t  attempt;
    uint32_t magic;
};

struct fixture {
    char dir[64];
    char db[128];
    char file[2][160];
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/taskpool-test-journal-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/tasks.db", f->dir);
    for (int n = 0; n < 2; n++)
        snprintf(f->file[n], sizeof f->file[n], "%s-dispatch-%d", f->db, n);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Size of a file, or -1 if it does not exist. */
static long long file_size(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) < 0) {
        if (errno != ENOENT)
            fail_msg("stat %s: %s", path, strerror(errno));
        return -1;
    }
    return (long long)sb.st_size;
}

/* Appends raw bytes to path, as another writer (or a torn write) would leave them. */
static void append_raw(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void append_rec(const char *path, int64_t id, int32_t attempt, uint32_t magic)
{
    struct rec r = { id, attempt, magic };
    assert_int_equal(sizeof r, REC_SIZE);
    append_raw(path, &r, sizeof r);
}

/* --- what replay reports ---------------------------------------------- */

struct seen {
    struct rec *v;
    size_t      n, cap;
    int         fail_after;   /* > 0: the callback returns -1 on that call */
};

static int collect(int64_t id, int32_t attempt, void *arg)
{
    struct seen *s = arg;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (s->v == NULL)
            fail_msg("out of memory");
    }
    s->v[s->n].id = id;
    s->v[s->n].attempt = attempt;
    s->v[s->n].magic = 0;
    s->n++;
    if (s->fail_after > 0 && (int)s->n == s->fail_after)
        return -1;
    return 0;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->attempt < y->attempt ? -1 : x->attempt > y->attempt;
}

/* Replays f's journal and returns what it reported, sorted by (id, attempt). */
static struct seen replay(const struct fixture *f)
{
    struct seen s = { 0 };
    assert_int_equal(journal_replay(f->db, collect, &s), 0);
    if (s.n > 1)
        qsort(s.v, s.n, sizeof *s.v, rec_cmp);
    return s;
}

/* Replay reports exactly the n (id, attempt) pairs of want, in any order. */
static void assert_replays(const struct fixture *f, const struct rec *want, size_t n)
{
    struct seen s = replay(f);
    struct rec *w = malloc((n ? n : 1) * sizeof *w);
    assert_non_null(w);
    if (n > 0) {
        memcpy(w, want, n * sizeof *w);
        qsort(w, n, sizeof *w, rec_cmp);
    }
    if (s.n != n)
        fail_msg("replay reported %zu records, expected %zu", s.n, n);
    for (size_t i = 0; i < n; i++)
        if (s.v[i].id != w[i].id || s.v[i].attempt != w[i].attempt)
            fail_msg("record %zu: got (%lld, %d), expected (%lld, %d)", i, (long long)s.v[i].id,
                     s.v[i].attempt, (long long)w[i].id, w[i].attempt);
    free(w);
    free(s.v);
}

/* The attempt recorded with sequence number seq in the rotation test. */
static int32_t attempt_of(uint64_t seq)
{
    return (int32_t)(seq % 7) + 1;
}

/* Appends records seq = from..to (id = seq) and checks each append. */
static void append_range(struct journal *j, uint64_t from, uint64_t to)
{
    for (uint64_t s = from; s <= to; s++)
        if (journal_append(j, (int64_t)s, attempt_of(s), s) != 0)
            fail_msg("journal_append of seq %llu failed", (unsigned long long)s);
}

/* Replay reports exactly the records seq in [lo1, hi1] and [lo2, hi2] (empty when lo > hi). */
static void assert_replays_ranges(const struct fixture *f, uint64_t lo1, uint64_t hi1,
                                  uint64_t lo2, uint64_t hi2)
{
    size_t n1 = lo1 <= hi1 ? hi1 - lo1 + 1 : 0, n2 = lo2 <= hi2 ? hi2 - lo2 + 1 : 0;
    struct rec *w = malloc((n1 + n2 + 1) * sizeof *w);
    size_t k = 0;
    assert_non_null(w);
    for (uint64_t s = lo1; n1 && s <= hi1; s++)
        w[k++] = (struct rec){ (int64_t)s, attempt_of(s), 0 };
    for (uint64_t s = lo2; n2 && s <= hi2; s++)
        w[k++] = (struct rec){ (int64_t)s, attempt_of(s), 0 };
    assert_replays(f, w, k);
    free(w);
}

/* --- tests ------------------------------------------------------------- */

static void test_open_creates_both_files_empty(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(file_size(f->file[0]), -1);
    assert_int_equal(file_size(f->file[1]), -1);
    struct journal *j = journal_open(f->db);
    assert_non_null(j);
    assert_int_equal(file_size(f->file[0]), 0);
    assert_int_equal(file_size(f->file[1]), 0);
    assert_int_equal(file_size(f->db), -1);   /* the database itself is not the journal's */
    journal_close(j);
    assert_int_equal(file_size(f->file[0]), 0);
    assert_int_equal(file_size(f->file[1]), 0);
}

static void test_open_in_missing_directory_fails(void **state)
{
    struct fixture *f = *state;
    char db[256];
    snprintf(db, sizeof db, "%s/no/such/dir/tasks.db", f->dir);
    assert_null(journal_open(db));
}

static void test_append_then_replay_reports_exactly_the_records(void **state)
{
    struct fixture *f = *state;
    const struct rec want[] = {
        { 1, 1, 0 }, { 2, 1, 0 }, { 3, 2, 0 }, { 1, 2, 0 }, { INT64_MAX, 100, 0 }, { 42, INT32_MAX, 0 },
    };
    const size_t n = sizeof want / sizeof want[0];
    struct journal *j = journal_open(f->db);
    assert_non_null(j);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(journal_append(j, want[i].id, want[i].attempt, i + 1), 0);
    assert_int_equal(file_size(f->file[0]), (long long)(n * REC_SIZE));
    assert_int_equal(file_size(f->file[1]), 0);
    /* visible to replay while the journal is open: no buffering */
    assert_replays(f, want, n);
    journal_close(j);
    assert_replays(f, want, n);
}

static void test_records_are_written_in_the_documented_layout(void **state)
{
    struct fixture *f = *state;
    struct journal *j = journal_open(f->db);
    assert_non_null(j);
    assert_int_equal(journal_append(j, 0x0102030405060708LL, 3, 1), 0);
    journal_close(j);
    struct rec r;
    FILE *fp = fopen(f->file[0], "rb");
    assert_non_null(fp);
    assert_int_equal(fread(&r, 1, sizeof r, fp), REC_SIZE);
    assert_int_equal(fgetc(fp), EOF);
    fclose(fp);
    assert_int_equal(r.id, 0x0102030405060708LL);
    assert_int_equal(r.attempt, 3);
    assert_int_equal(r.magic, MAGIC);
}

static void test_records_survive_close_and_reopen(void **state)
{
    struct fixture *f = *state;
    struct journal *j = journal_open(f->db);
    assert_non_null(j);
    assert_int_equal(journal_append(j, 10, 1, 1), 0);
    assert_int_equal(journal_append(j, 11, 1, 2), 0);
    journal_close(j);
    assert_int_equal(file_size(f->file[0]), 2 * REC_SIZE);

    j = journal_open(f->db);   /* must append, not truncate */
    assert_non_null(j);
    assert_int_equal(file_size(f->file[0]), 2 * REC_SIZE);
    const struct rec two[] = { { 10, 1, 0 }, { 11, 1, 0 } };
    assert_replays(f, two, 2);
    assert_int_equal(journal_append(j, 12, 3, 3), 0);
    journal_close(j);
    assert_int_equal(file_size(f->file[0]), 3 * REC_SIZE);
    const struct rec three[] = { { 10, 1, 0 }, { 11, 1, 0 }, { 12, 3, 0 } };
    assert_replays(f, three, 3);
}

static void test_reset_empties_both_files(void **state)
{
    struct fixture *f = *state;
    struct journal *j = journal_open(f->db);
    assert_non_null(j);
    assert_int_equal(journal_append(j, 5, 1, 1), 0);
    assert_int_equal(journal_append(j, 6, 2, 2), 0);
    append_rec(f->file[1], 7, 1, MAGIC);   /* left in the other file, e.g. by a rotation */
    const struct rec before[] = { { 5, 1, 0 }, { 6, 2, 0 }, { 7, 1, 0 } };
    assert_replays(f, before, 3);

    assert_int_equal(journal_reset(j), 0);
    assert_int_equal(file_size(f->file[0]), 0);
    assert_int_equal(file_size(f->file[1]), 0);
    assert_replays(f, NULL, 0);

    /* appending goes on, from the start of file 0 */
    assert_int_equal(journal_append(j, 8, 1, 3), 0);
    assert_int_equal(file_size(f->file[0]), REC_SIZE);
    assert_int_equal(file_size(f->file[1]), 0);
    const struct rec after[] = { { 8, 1, 0 } };
    assert_replays(f, after, 1);
    journal_close(j);
}

static void test_torn_trailing_record_is_skipped(void **state)
{
    struct fixture *f = *state;
    struct journal *j = journal_open(f->db);
    assert_non_null(j);
    assert_int_equal(journal_append(j, 1, 1, 1), 0);
    assert_int_equal(journal_append(j, 2, 1, 2), 0);
    journal_close(j);
    /* the first 7 bytes of a record {3, 1, MAGIC}: a write cut short */
    struct rec torn = { 3, 1, MAGIC };
    append_raw(f->file[0], &torn, 7);
    append_rec(f->file[1], 4, 2, MAGIC);
    append_raw(f->file[1], &torn, 7);
    assert_int_equal(file_size(f->file[0]), 2 * REC_SIZE + 7);
    assert_int_equal(file_size(f->file[1]), REC_SIZE + 7);
    const struct rec want[] = { { 1, 1, 0 }, { 2, 1, 0 }, { 4, 2, 0 } };
    assert_replays(f, want, 3);
}

static void test_foreign_records_are_skipped(void **state)
{
    struct fixture *f = *state;
    append_rec(f->file[0], 1, 1, MAGIC);
    append_rec(f->file[0], 2, 1, MAGIC ^ 1u);        /* wrong magic */
    append_rec(f->file[0], 3, 1, 0);                 /* no magic */
    append_rec(f->file[0], 4, 1, MAGIC);
    append_rec(f->file[1], 5, 1, 0x544b504au);       /* magic in the other byte order */
    append_rec(f->file[1], 0, 1, MAGIC);             /* id 0 */
    append_rec(f->file[1], -6, 1, MAGIC);            /* negative id */
    append_rec(f->file[1], 7, 0, MAGIC);             /* attempt 0 */
    append_rec(f->file[1], 8, -1, MAGIC);            /* negative attempt */
    append_rec(f->file[1], 9, 2, MAGIC);
    const struct rec want[] = { { 1, 1, 0 }, { 4, 1, 0 }, { 9, 2, 0 } };
    assert_replays(f, want, 3);
}

static void test_replay_without_journal_files_reports_nothing(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    assert_int_equal(journal_replay(f->db, collect, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(file_size(f->file[0]), -1);   /* replay creates nothing */
    assert_int_equal(file_size(f->file[1]), -1);

    /* only one of the two files */
    append_rec(f->file[1], 3, 1, MAGIC);
    const struct rec want[] = { { 3, 1, 0 } };
    assert_replays(f, want, 1);
    assert_int_equal(file_size(f->file[0]), -1);
}

static void test_replay_stops_when_the_callback_fails(void **state)
{
    struct fixture *f = *state;
    for (int64_t id = 1; id <= 3; id++)
        append_rec(f->file[0], id, 1, MAGIC);
    append_rec(f->file[1], 4, 1, MAGIC);
    struct seen s = { .fail_after = 2 };
    assert_int_equal(journal_replay(f->db, collect, &s), -1);
    assert_int_equal(s.n, 2);
    free(s.v);
}

static void test_committed_before_the_threshold_does_not_switch(void **state)
{
    struct fixture *f = *state;
    struct journal *j = journal_open(f->db);
    assert_non_null(j);
    append_range(j, 1, PER_FILE - 1);          /* one record short of 1 MiB */
    journal_committed(j, UINT64_MAX);
    assert_int_equal(journal_append(j, PER_FILE, attempt_of(PER_FILE), PER_FILE), 0);
    assert_int_equal(file_size(f->file[0]), ROTATE_AT);
    assert_int_equal(file_size(f->file[1]), 0);
    journal_close(j);
    assert_replays_ranges(f, 1, PER_FILE, 1, 0);
}

static void test_rotation_switches_only_when_the_other_file_is_committed(void **state)
{
    struct fixture *f = *state;
    struct journal *j = journal_open(f->db);
    assert_non_null(j);

    /* File 0 past the threshold, seqs a1..a2. */
    const uint64_t a1 = 1, a2 = PER_FILE + 1;
    append_range(j, a1, a2);
    assert_int_equal(file_size(f->file[0]), (long long)(a2 * REC_SIZE));
    assert_true(file_size(f->file[0]) > ROTATE_AT);

    /* The other file is empty: nothing to wait for, so the switch happens
     * even though file 0's own records are not committed yet. */
    journal_committed(j, 1);
    const uint64_t b1 = a2 + 1;
    assert_int_equal(journal_append(j, (int64_t)b1, attempt_of(b1), b1), 0);
    assert_int_equal(file_size(f->file[1]), REC_SIZE);
    assert_int_equal(file_size(f->file[0]), (long long)(a2 * REC_SIZE));   /* kept whole */
    assert_replays_ranges(f, a1, a2, b1, b1);

    /* File 1 past the threshold too, seqs b1..b2. */
    const uint64_t b2 = b1 + PER_FILE;
    append_range(j, b1 + 1, b2);
    assert_int_equal(file_size(f->file[1]), (long long)((b2 - b1 + 1) * REC_SIZE));

    /* Seq below file 0's newest record: file 0 must not be emptied, no switch. */
    journal_committed(j, a2 - 1);
    uint64_t c = b2 + 1;
    assert_int_equal(journal_append(j, (int64_t)c, attempt_of(c), c), 0);
    assert_int_equal(file_size(f->file[1]), (long long)((c - b1 + 1) * REC_SIZE));
    assert_int_equal(file_size(f->file[0]), (long long)(a2 * REC_SIZE));
    assert_replays_ranges(f, a1, a2, b1, c);

    /* Seq equal to file 0's newest record (every start it holds committed),
     * though below file 1's: switch to file 0, emptied first. */
    journal_committed(j, a2);
    assert_int_equal(file_size(f->file[0]), 0);
    assert_int_equal(file_size(f->file[1]), (long long)((c - b1 + 1) * REC_SIZE));
    /* file 1's records stay replayable after the switch */
    assert_replays_ranges(f, b1, c, 1, 0);
    const uint64_t d1 = c + 1;
    assert_int_equal(journal_append(j, (int64_t)d1, attempt_of(d1), d1), 0);
    assert_int_equal(file_size(f->file[0]), REC_SIZE);
    assert_int_equal(file_size(f->file[1]), (long long)((c - b1 + 1) * REC_SIZE));
    assert_replays_ranges(f, b1, c, d1, d1);

    /* Below the threshold again: even a seq >= all switches nothing. */
    journal_committed(j, UINT64_MAX);
    assert_int_equal(journal_append(j, (int64_t)d1 + 1, attempt_of(d1 + 1), d1 + 1), 0);
    assert_int_equal(file_size(f->file[0]), 2 * REC_SIZE);
    assert_replays_ranges(f, b1, c, d1, d1 + 1);

    /* File 0 past the threshold, seqs d1..d2; file 1's records (up to c) stay
     * until the next switch, which needs seq >= c. */
    const uint64_t d2 = d1 + PER_FILE;
    append_range(j, d1 + 2, d2);
    journal_committed(j, c - 1);
    assert_int_equal(journal_append(j, (int64_t)d2 + 1, attempt_of(d2 + 1), d2 + 1), 0);
    assert_int_equal(file_size(f->file[0]), (long long)((d2 + 1 - d1 + 1) * REC_SIZE));
    assert_replays_ranges(f, b1, c, d1, d2 + 1);

    /* Seq >= every record: switch to file 1, which is emptied; file 1's old
     * records are gone from replay, file 0's remain. */
    journal_committed(j, d2 + 1);
    assert_int_equal(file_size(f->file[1]), 0);
    assert_int_equal(file_size(f->file[0]), (long long)((d2 + 1 - d1 + 1) * REC_SIZE));
    const uint64_t e = d2 + 2;
    assert_int_equal(journal_append(j, (int64_t)e, attempt_of(e), e), 0);
    assert_int_equal(file_size(f->file[1]), REC_SIZE);
    assert_replays_ranges(f, d1, d2 + 1, e, e);
    journal_close(j);
}

static void test_reset_after_rotation_appends_to_file_0(void **state)
{
    struct fixture *f = *state;
    struct journal *j = journal_open(f->db);
    assert_non_null(j);
    append_range(j, 1, PER_FILE);
    journal_committed(j, PER_FILE);                 /* switch to file 1 */
    assert_int_equal(journal_append(j, 900000, 1, PER_FILE + 1), 0);
    assert_int_equal(file_size(f->file[1]), REC_SIZE);
    assert_int_equal(journal_reset(j), 0);
    assert_int_equal(file_size(f->file[0]), 0);
    assert_int_equal(file_size(f->file[1]), 0);
    assert_int_equal(journal_append(j, 900001, 2, PER_FILE + 2), 0);
    assert_int_equal(file_size(f->file[0]), REC_SIZE);
    assert_int_equal(file_size(f->file[1]), 0);
    const struct rec want[] = { { 900001, 2, 0 } };
    assert_replays(f, want, 1);
    journal_close(j);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        T(test_open_creates_both_files_empty),
        T(test_open_in_missing_directory_fails),
        T(test_append_then_replay_reports_exactly_the_records),
        T(test_records_are_written_in_the_documented_layout),
        T(test_records_survive_close_and_reopen),
        T(test_reset_empties_both_files),
        T(test_torn_trailing_record_is_skipped),
        T(test_foreign_records_are_skipped),
        T(test_replay_without_journal_files_reports_nothing),
        T(test_replay_stops_when_the_callback_fails),
        T(test_committed_before_the_threshold_does_not_switch),
        T(test_rotation_switches_only_when_the_other_file_is_committed),
        T(test_reset_after_rotation_appends_to_file_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
