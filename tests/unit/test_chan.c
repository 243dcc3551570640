/*
 * test_chan.c - the framed channel between daemon and worker, over a real
 * socketpair: round trips, frames split and batched, malformed frames, EOF.
 * The reading end is non-blocking, so a reader that loses bytes fails a test
 * (EAGAIN) instead of hanging it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"

#define MAX_PAYLOAD 4096

struct pair {
    int w;                          /* the writing end, blocking */
    int r;                          /* the reading end, non-blocking */
    struct chan_reader reader;
};

static int pair_setup(void **state)
{
    struct pair *p = calloc(1, sizeof *p);
    int sv[2];
    if (p == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    p->w = sv[0];
    p->r = sv[1];
    if (fcntl(p->r, F_SETFL, fcntl(p->r, F_GETFL) | O_NONBLOCK) != 0)
        return -1;
    chan_reader_init(&p->reader, MAX_PAYLOAD);
    *state = p;
    return 0;
}

static int pair_teardown(void **state)
{
    struct pair *p = *state;
    chan_reader_free(&p->reader);
    if (p->w >= 0)
        close(p->w);
    close(p->r);
    free(p);
    return 0;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *s = buf;
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

/* A raw frame as the header documents it: 16-byte header in host order, then payload. */
static size_t raw_frame(char *buf, uint32_t type, uint32_t len, int64_t id,
                        const void *payload, size_t plen)
{
    struct chan_header h;
    memset(&h, 0, sizeof h);
    h.type = type;
    h.len = len;
    h.task_id = id;
    memcpy(buf, &h, sizeof h);
    if (plen > 0)
        memcpy(buf + sizeof h, payload, plen);
    return sizeof h + plen;
}

enum { GOT_FRAME = 1, NEED_MORE = 0, MALFORMED = -1, GOT_EOF = -2, READ_ERROR = -3 };

/*
 * The next frame: takes one out of what was read, reading more while the fd
 * has bytes.  NEED_MORE when the fd is drained without a whole frame.
 */
static int next_frame(struct chan_reader *r, int fd, struct chan_msg *m)
{
    for (;;) {
        int rc = chan_reader_next(r, m);
        if (rc != 0)
            return rc;
        ssize_t n = chan_reader_fill(r, fd);
        if (n == 0)
            return GOT_EOF;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? NEED_MORE : READ_ERROR;
    }
}

/* ---- round trips ------------------------------------------------------- */

static void test_header_is_16_bytes_in_host_order(void **state)
{
    struct pair *p = *state;
    assert_int_equal(sizeof(struct chan_header), 16);
    struct chan_hello hello = { .pid = 4321, .ppid = 1 };
    struct chan_part part = { &hello, sizeof hello };
    assert_int_equal(chan_send(p->w, CHAN_MSG_HELLO, 77, &part, 1), 0);

    char want[64], got[64];
    size_t wlen = raw_frame(want, CHAN_MSG_HELLO, sizeof hello, 77, &hello, sizeof hello);
    ssize_t n = read(p->r, got, sizeof got);
    assert_int_equal(n, wlen);
    assert_memory_equal(got, want, wlen);
}

static void test_hello_round_trips(void **state)
{
    struct pair *p = *state;
    struct chan_hello hello = { .pid = 123456, .ppid = 98765 };
    struct chan_part part = { &hello, sizeof hello };
    assert_int_equal(chan_send(p->w, CHAN_MSG_HELLO, 0, &part, 1), 0);

    struct chan_msg m;
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.type, CHAN_MSG_HELLO);
    assert_int_equal(m.task_id, 0);
    assert_int_equal(m.len, sizeof hello);
    struct chan_hello got;
    memcpy(&got, m.payload, sizeof got);
    assert_int_equal(got.pid, 123456);
    assert_int_equal(got.ppid, 98765);
    assert_int_equal(next_frame(&p->reader, p->r, &m), NEED_MORE);
}

static void test_task_round_trips_as_concatenated_parts(void **state)
{
    struct pair *p = *state;
    const char *args = "{\"numbers\":[2,3,8,9]}";
    struct chan_part parts[3] = {
        { "square", 6 }, { "", 1 }, { args, strlen(args) },
    };
    int64_t id = ((int64_t)1 << 40) + 5;
    assert_int_equal(chan_send(p->w, CHAN_MSG_TASK, id, parts, 3), 0);

    struct chan_msg m;
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.type, CHAN_MSG_TASK);
    assert_int_equal(m.task_id, id);
    assert_int_equal(m.len, 7 + strlen(args));
    assert_memory_equal(m.payload, "square\0{\"numbers\":[2,3,8,9]}", m.len);
}

static void test_empty_payload_round_trips(void **state)
{
    struct pair *p = *state;
    assert_int_equal(chan_send(p->w, CHAN_MSG_TASK, -3, NULL, 0), 0);
    struct chan_msg m;
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.type, CHAN_MSG_TASK);
    assert_int_equal(m.task_id, -3);
    assert_int_equal(m.len, 0);
}

static void test_success_result_round_trips(void **state)
{
    struct pair *p = *state;
    const char *result = "{\"results\":[4,9]}";
    struct chan_usage u = { 12, 3, 4567 };
    struct chan_cpu total = { 1200, 300 };
    assert_int_equal(chan_send_result(p->w, 9, 1, &u, &total, result, NULL, NULL), 0);

    struct chan_msg m;
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.type, CHAN_MSG_RESULT);
    assert_int_equal(m.task_id, 9);
    assert_int_equal(m.len, sizeof(struct chan_result) + strlen(result));
    struct chan_result_view v;
    assert_int_equal(chan_parse_result(&m, &v), 0);
    assert_int_equal(v.fixed.ok, 1);
    assert_int_equal(v.fixed.usage.user_ms, 12);
    assert_int_equal(v.fixed.usage.sys_ms, 3);
    assert_int_equal(v.fixed.usage.max_rss_kb, 4567);
    assert_int_equal(v.fixed.total.user_ms, 1200);
    assert_int_equal(v.fixed.total.sys_ms, 300);
    assert_int_equal(v.result_len, strlen(result));
    assert_memory_equal(v.result, result, v.result_len);
    assert_int_equal(v.code_len, 0);
    assert_int_equal(v.message_len, 0);
}

static void test_failure_result_round_trips(void **state)
{
    struct pair *p = *state;
    struct chan_usage u = { 0, 0, 0 };
    struct chan_cpu total = { 0, 0 };
    assert_int_equal(chan_send_result(p->w, 1234567890123LL, 0, &u, &total, NULL, "failed",
                                      "boom: it broke"), 0);
    struct chan_msg m;
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.type, CHAN_MSG_RESULT);
    assert_int_equal(m.task_id, 1234567890123LL);
    struct chan_result_view v;
    assert_int_equal(chan_parse_result(&m, &v), 0);
    assert_int_equal(v.fixed.ok, 0);
    assert_int_equal(v.result_len, 0);
    assert_int_equal(v.code_len, 6);
    assert_memory_equal(v.code, "failed", 6);
    assert_int_equal(v.message_len, 14);
    assert_memory_equal(v.message, "boom: it broke", 14);
    assert_int_equal(v.fixed.result_len, 0);
    assert_int_equal(v.fixed.code_len, 6);
    assert_int_equal(v.fixed.message_len, 14);
}

/* ---- splitting and batching -------------------------------------------- */

/* Three frames as chan_send writes them, captured from a socketpair. */
static size_t capture_three_frames(char *buf, size_t cap, size_t ends[3])
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct chan_hello hello = { .pid = 10, .ppid = 11 };
    struct chan_part hp = { &hello, sizeof hello };
    char big[301];
    memset(big, 'b', sizeof big);
    struct chan_part tp = { big, sizeof big };         /* odd length: the next frame is unaligned */
    assert_int_equal(chan_send(sv[0], CHAN_MSG_HELLO, 1, &hp, 1), 0);
    assert_int_equal(chan_send(sv[0], CHAN_MSG_TASK, 2, &tp, 1), 0);
    struct chan_usage u = { 5, 6, 7 };
    struct chan_cpu total = { 50, 60 };
    assert_int_equal(chan_send_result(sv[0], 3, 1, &u, &total, "[1]", NULL, NULL), 0);
    close(sv[0]);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(sv[1], buf + len, cap - len);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(sv[1]);
    ends[0] = 16 + sizeof hello;
    ends[1] = ends[0] + 16 + sizeof big;
    ends[2] = ends[1] + 16 + sizeof(struct chan_result) + 3;
    assert_int_equal(len, ends[2]);
    return len;
}

static void check_frame(const struct chan_msg *m, int which)
{
    switch (which) {
    case 0:
        assert_int_equal(m->type, CHAN_MSG_HELLO);
        assert_int_equal(m->task_id, 1);
        assert_int_equal(m->len, sizeof(struct chan_hello));
        break;
    case 1:
        assert_int_equal(m->type, CHAN_MSG_TASK);
        assert_int_equal(m->task_id, 2);
        assert_int_equal(m->len, 301);
        for (size_t i = 0; i < 301; i++)
            assert_int_equal(m->payload[i], 'b');
        break;
    default: {
        assert_int_equal(m->type, CHAN_MSG_RESULT);
        assert_int_equal(m->task_id, 3);
        struct chan_result_view v;
        assert_int_equal(chan_parse_result(m, &v), 0);
        assert_int_equal(v.fixed.ok, 1);
        assert_int_equal(v.fixed.usage.user_ms, 5);
        assert_int_equal(v.fixed.usage.sys_ms, 6);
        assert_int_equal(v.fixed.usage.max_rss_kb, 7);
        assert_int_equal(v.fixed.total.user_ms, 50);
        assert_int_equal(v.fixed.total.sys_ms, 60);
        assert_int_equal(v.result_len, 3);
        assert_memory_equal(v.result, "[1]", 3);
        break;
    }
    }
}

static void test_frames_split_into_single_bytes_come_out_whole(void **state)
{
    struct pair *p = *state;
    char buf[2048];
    size_t ends[3];
    size_t len = capture_three_frames(buf, sizeof buf, ends);
    int got = 0;
    for (size_t i = 0; i < len; i++) {
        write_all(p->w, buf + i, 1);
        struct chan_msg m;
        int rc = next_frame(&p->reader, p->r, &m);
        if (i + 1 == ends[got]) {
            if (rc != GOT_FRAME)
                fail_msg("no frame after byte %zu (rc %d)", i + 1, rc);
            check_frame(&m, got);
            got++;
            assert_int_equal(next_frame(&p->reader, p->r, &m), NEED_MORE);
        } else if (rc != NEED_MORE) {
            fail_msg("rc %d after byte %zu of %zu", rc, i + 1, len);
        }
    }
    assert_int_equal(got, 3);
}

static void test_several_frames_in_one_write_all_come_out(void **state)
{
    struct pair *p = *state;
    char buf[2048];
    size_t ends[3];
    size_t len = capture_three_frames(buf, sizeof buf, ends);
    write_all(p->w, buf, len);
    struct chan_msg m;
    for (int i = 0; i < 3; i++) {
        int rc = next_frame(&p->reader, p->r, &m);
        if (rc != GOT_FRAME)
            fail_msg("frame %d: rc %d", i, rc);
        check_frame(&m, i);
    }
    assert_int_equal(next_frame(&p->reader, p->r, &m), NEED_MORE);
}

static void test_truncated_frame_needs_more_then_completes(void **state)
{
    struct pair *p = *state;
    char buf[128];
    size_t len = raw_frame(buf, CHAN_MSG_TASK, 20, 8, "abcdefghijklmnopqrst", 20);
    struct chan_msg m;

    write_all(p->w, buf, 7);                    /* part of the header */
    assert_int_equal(next_frame(&p->reader, p->r, &m), NEED_MORE);
    write_all(p->w, buf + 7, 9);                /* the whole header */
    assert_int_equal(next_frame(&p->reader, p->r, &m), NEED_MORE);
    write_all(p->w, buf + 16, 5);               /* part of the payload */
    assert_int_equal(next_frame(&p->reader, p->r, &m), NEED_MORE);
    assert_int_equal(chan_reader_next(&p->reader, &m), 0);
    write_all(p->w, buf + 21, len - 21);
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.type, CHAN_MSG_TASK);
    assert_int_equal(m.task_id, 8);
    assert_int_equal(m.len, 20);
    assert_memory_equal(m.payload, "abcdefghijklmnopqrst", 20);
}

/* ---- malformed frames -------------------------------------------------- */

static void test_payload_at_the_limit_is_accepted(void **state)
{
    struct pair *p = *state;
    char *payload = malloc(MAX_PAYLOAD);
    assert_non_null(payload);
    for (size_t i = 0; i < MAX_PAYLOAD; i++)
        payload[i] = (char)i;
    struct chan_part part = { payload, MAX_PAYLOAD };
    assert_int_equal(chan_send(p->w, CHAN_MSG_TASK, 4, &part, 1), 0);
    struct chan_msg m;
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.len, MAX_PAYLOAD);
    assert_memory_equal(m.payload, payload, MAX_PAYLOAD);
    free(payload);
}

/* Refused from the header alone: the reader must not wait for (or buffer) the payload. */
static void test_oversized_length_is_malformed(void **state)
{
    static const uint32_t lens[] = { MAX_PAYLOAD + 1, 1u << 30, UINT32_MAX };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct pair *p = NULL;
        void *st = NULL;
        assert_int_equal(pair_setup(&st), 0);
        p = st;
        char buf[64];
        size_t len = raw_frame(buf, CHAN_MSG_RESULT, lens[i], 1, NULL, 0);
        write_all(p->w, buf, len);
        struct chan_msg m;
        int rc = next_frame(&p->reader, p->r, &m);
        pair_teardown(&st);
        if (rc != MALFORMED)
            fail_msg("length %u: rc %d", lens[i], rc);
    }
    (void)state;
}

static void test_unknown_type_is_malformed(void **state)
{
    static const uint32_t types[] = { 0, CHAN_MSG_TYPE_MAX, CHAN_MSG_TYPE_MAX + 1, 1000, UINT32_MAX };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        void *st = NULL;
        assert_int_equal(pair_setup(&st), 0);
        struct pair *p = st;
        char buf[64];
        size_t len = raw_frame(buf, types[i], 4, 1, "abcd", 4);
        write_all(p->w, buf, len);
        struct chan_msg m;
        int rc = next_frame(&p->reader, p->r, &m);
        pair_teardown(&st);
        if (rc != MALFORMED)
            fail_msg("type %u: rc %d", types[i], rc);
    }
    (void)state;
}

/* A good frame before a bad one still comes out; then the bad one is refused. */
static void test_good_frame_before_malformed_one_is_delivered(void **state)
{
    struct pair *p = *state;
    char buf[128];
    size_t len = raw_frame(buf, CHAN_MSG_TASK, 3, 5, "abc", 3);
    len += raw_frame(buf + len, 77, 0, 6, NULL, 0);
    write_all(p->w, buf, len);
    struct chan_msg m;
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.task_id, 5);
    assert_int_equal(next_frame(&p->reader, p->r, &m), MALFORMED);
}

/* A RESULT payload built by hand at an odd address (nothing promises alignment). */
static struct chan_msg result_msg(char *storage, const struct chan_result *fixed,
                                  const char *tail, size_t tail_len)
{
    char *payload = storage + 1;
    memcpy(payload, fixed, sizeof *fixed);
    if (tail_len > 0)
        memcpy(payload + sizeof *fixed, tail, tail_len);
    struct chan_msg m = {
        .type = CHAN_MSG_RESULT, .task_id = 1, .payload = payload,
        .len = (uint32_t)(sizeof *fixed + tail_len),
    };
    return m;
}

static void test_parse_result_splits_consistent_lengths(void **state)
{
    (void)state;
    char storage[256];
    struct chan_result fixed = { .ok = 1, .usage = { 2, 3, 4 }, .result_len = 3, .code_len = 4,
                                 .message_len = 5 };
    struct chan_msg m = result_msg(storage, &fixed, "[1]codemesg!", 12);
    struct chan_result_view v;
    assert_int_equal(chan_parse_result(&m, &v), 0);
    assert_int_equal(v.fixed.ok, 1);
    assert_int_equal(v.fixed.usage.user_ms, 2);
    assert_int_equal(v.fixed.usage.sys_ms, 3);
    assert_int_equal(v.fixed.usage.max_rss_kb, 4);
    assert_ptr_equal(v.result, m.payload + sizeof fixed);
    assert_int_equal(v.result_len, 3);
    assert_ptr_equal(v.code, m.payload + sizeof fixed + 3);
    assert_int_equal(v.code_len, 4);
    assert_ptr_equal(v.message, m.payload + sizeof fixed + 7);
    assert_int_equal(v.message_len, 5);
}

static void test_parse_result_refuses_inconsistent_lengths(void **state)
{
    (void)state;
    char storage[256];
    struct chan_result_view v;
    static const struct { uint32_t r, c, m; size_t tail; } bad[] = {
        { 5, 0, 0, 3 },                            /* strings longer than the payload */
        { 0, 0, 1, 0 },
        { 1, 1, 1, 2 },
        { 1, 0, 0, 3 },                            /* bytes left over */
        { 0, 0, 0, 1 },
        { UINT32_MAX, 4, 0, 3 },                   /* lengths whose 32-bit sum wraps to 3 */
        { UINT32_MAX, UINT32_MAX, 5, 3 },
        { 0x80000000u, 0x80000000u, 3, 3 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct chan_result fixed = { .ok = 1, .result_len = bad[i].r, .code_len = bad[i].c,
                                     .message_len = bad[i].m };
        struct chan_msg m = result_msg(storage, &fixed, "xyz", bad[i].tail);
        if (chan_parse_result(&m, &v) != -1)
            fail_msg("case %zu accepted", i);
    }
}

static void test_parse_result_refuses_payload_shorter_than_fixed_part(void **state)
{
    (void)state;
    char storage[256];
    struct chan_result fixed = { .ok = 1 };
    struct chan_msg m = result_msg(storage, &fixed, NULL, 0);
    struct chan_result_view v;
    for (uint32_t len = 0; len < sizeof fixed; len += 7) {
        m.len = len;
        if (chan_parse_result(&m, &v) != -1)
            fail_msg("length %u accepted", len);
    }
}

/* ---- end of stream and errors ------------------------------------------ */

static void test_eof_is_reported_as_zero(void **state)
{
    struct pair *p = *state;
    close(p->w);
    p->w = -1;
    assert_int_equal(chan_reader_fill(&p->reader, p->r), 0);
}

static void test_eof_inside_a_frame_leaves_it_incomplete(void **state)
{
    struct pair *p = *state;
    char buf[64];
    raw_frame(buf, CHAN_MSG_TASK, 20, 8, "abcdefghijklmnopqrst", 20);
    write_all(p->w, buf, 25);
    close(p->w);
    p->w = -1;
    struct chan_msg m;
    size_t have = 0;
    ssize_t n;
    while ((n = chan_reader_fill(&p->reader, p->r)) > 0) {
        have += (size_t)n;
        assert_int_equal(chan_reader_next(&p->reader, &m), 0);
    }
    assert_int_equal(n, 0);
    assert_int_equal(have, 25);
    assert_int_equal(chan_reader_next(&p->reader, &m), 0);
}

static void test_fill_on_empty_nonblocking_fd_is_eagain(void **state)
{
    struct pair *p = *state;
    errno = 0;
    assert_int_equal(chan_reader_fill(&p->reader, p->r), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/*
 * The daemon and the worker ignore SIGPIPE (a dead peer must not kill them);
 * this test does the same so that it checks the return value and errno.
 */
static void test_send_to_closed_peer_fails_with_epipe(void **state)
{
    struct pair *p = *state;
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    sigaction(SIGPIPE, &ign, &old);
    close(p->r);
    p->r = open("/dev/null", O_RDONLY);          /* so teardown closes something */
    struct chan_hello hello = { 1, 2, { 0, 0 } };
    struct chan_part part = { &hello, sizeof hello };
    errno = 0;
    int rc = chan_send(p->w, CHAN_MSG_HELLO, 0, &part, 1);
    int saved = errno;
    sigaction(SIGPIPE, &old, NULL);
    assert_int_equal(rc, -1);
    assert_int_equal(saved, EPIPE);
}

/* ---- large frames: short writes on a blocking socket ------------------- */

struct big_send {
    int fd;
    const char *data;
    size_t len;
    int rc;
};

static void *send_big(void *arg)
{
    struct big_send *b = arg;
    size_t third = b->len / 3;
    struct chan_part parts[3] = {
        { b->data, third }, { b->data + third, third }, { b->data + 2 * third, b->len - 2 * third },
    };
    b->rc = chan_send(b->fd, CHAN_MSG_TASK, 99, parts, 3);
    return NULL;
}

static void test_large_frame_survives_short_writes(void **state)
{
    struct pair *p = *state;
    size_t len = 3 * 1024 * 1024 + 1;
    char *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 7 + i / 251);
    struct chan_reader r;
    chan_reader_init(&r, 4 * 1024 * 1024);
    struct big_send b = { p->w, data, len, -2 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, send_big, &b), 0);

    struct chan_msg m;
    int rc, waits = 0;
    for (;;) {
        rc = chan_reader_next(&r, &m);
        if (rc != 0)
            break;
        ssize_t n = chan_reader_fill(&r, p->r);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waits++ < 10000) {
            usleep(1000);   /* 10 s at most */
            continue;
        }
        if (n <= 0) {
            rc = -9;
            break;
        }
    }
    pthread_join(th, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(rc, 1);
    assert_int_equal(m.type, CHAN_MSG_TASK);
    assert_int_equal(m.task_id, 99);
    assert_int_equal(m.len, len);
    assert_memory_equal(m.payload, data, len);
    chan_reader_free(&r);
    free(data);
}

/* A caller may fill several times before taking frames out: 0 must still mean EOF only. */
static void test_fill_without_next_never_reports_a_false_eof(void **state)
{
    struct pair *p = *state;
    struct chan_reader r;
    chan_reader_init(&r, 64);
    fcntl(p->w, F_SETFL, fcntl(p->w, F_GETFL) | O_NONBLOCK);
    enum { FLEN = 16 + 64, BATCH = 100 };
    char payload[64], *batch = malloc(FLEN * BATCH);
    assert_non_null(batch);
    memset(payload, 'p', sizeof payload);
    for (int i = 0; i < BATCH; i++)
        raw_frame(batch + i * FLEN, CHAN_MSG_TASK, 64, 1, payload, sizeof payload);
    size_t total = 0;
    while (total < 200000) {                     /* more than one read chunk (64 KiB) */
        ssize_t n = write(p->w, batch, FLEN * BATCH);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        assert_true(n > 0);
        total += (size_t)n;
        if (n < FLEN * BATCH)
            break;                               /* a partial frame ends the stream */
    }
    free(batch);
    size_t frames = total / FLEN;
    assert_true(total > 70000);
    for (int i = 0; i < 8; i++) {
        errno = 0;
        ssize_t n = chan_reader_fill(&r, p->r);
        if (n == 0)
            fail_msg("fill %d returned 0 (EOF) with the peer open", i);
        if (n < 0)
            break;
    }
    size_t got = 0;
    struct chan_msg m;
    int rc;
    while ((rc = next_frame(&r, p->r, &m)) == GOT_FRAME) {
        assert_int_equal(m.len, 64);
        got++;
    }
    assert_int_equal(rc, NEED_MORE);
    assert_int_equal(got, frames);
    chan_reader_free(&r);
}

/* chan.h puts no bound on the number of parts. */
static void test_send_concatenates_up_to_parts_max(void **state)
{
    struct pair *p = *state;
    static const char digits[] = "0123456789abcdef";
    struct chan_part parts[CHAN_PARTS_MAX];
    for (size_t i = 0; i < CHAN_PARTS_MAX; i++)
        parts[i] = (struct chan_part){ digits + i, 1 };
    assert_int_equal(chan_send(p->w, CHAN_MSG_TASK, 12, parts, CHAN_PARTS_MAX), 0);
    struct chan_msg m;
    assert_int_equal(next_frame(&p->reader, p->r, &m), GOT_FRAME);
    assert_int_equal(m.len, CHAN_PARTS_MAX);
    assert_memory_equal(m.payload, digits, CHAN_PARTS_MAX);
}

static void test_send_refuses_more_than_parts_max(void **state)
{
    struct pair *p = *state;
    static const char digits[] = "0123456789abcdef";
    struct chan_part parts[CHAN_PARTS_MAX + 1];
    for (size_t i = 0; i < CHAN_PARTS_MAX + 1; i++)
        parts[i] = (struct chan_part){ digits + i, 1 };
    errno = 0;
    assert_int_equal(chan_send(p->w, CHAN_MSG_TASK, 12, parts, CHAN_PARTS_MAX + 1), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_reader_free_of_unused_reader_is_fine(void **state)
{
    (void)state;
    struct chan_reader r;
    chan_reader_init(&r, 16);
    chan_reader_free(&r);
}

#define T(f) cmocka_unit_test_setup_teardown(f, pair_setup, pair_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_header_is_16_bytes_in_host_order),
        T(test_hello_round_trips),
        T(test_task_round_trips_as_concatenated_parts),
        T(test_empty_payload_round_trips),
        T(test_success_result_round_trips),
        T(test_failure_result_round_trips),
        T(test_frames_split_into_single_bytes_come_out_whole),
        T(test_several_frames_in_one_write_all_come_out),
        T(test_truncated_frame_needs_more_then_completes),
        T(test_payload_at_the_limit_is_accepted),
        cmocka_unit_test(test_oversized_length_is_malformed),
        cmocka_unit_test(test_unknown_type_is_malformed),
        T(test_good_frame_before_malformed_one_is_delivered),
        cmocka_unit_test(test_parse_result_splits_consistent_lengths),
        cmocka_unit_test(test_parse_result_refuses_inconsistent_lengths),
        cmocka_unit_test(test_parse_result_refuses_payload_shorter_than_fixed_part),
        T(test_eof_is_reported_as_zero),
        T(test_eof_inside_a_frame_leaves_it_incomplete),
        T(test_fill_on_empty_nonblocking_fd_is_eagain),
        T(test_send_to_closed_peer_fails_with_epipe),
        T(test_large_frame_survives_short_writes),
        T(test_fill_without_next_never_reports_a_false_eof),
        T(test_send_concatenates_up_to_parts_max),
        T(test_send_refuses_more_than_parts_max),
        cmocka_unit_test(test_reader_free_of_unused_reader_is_fine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
