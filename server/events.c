/*
 * events.c - the live event stream (GET /api/v1/events, Server-Sent Events).
 *
 * DESIGN
 *
 * Data.  One ring holds the most recent events, already formatted as SSE
 * text ("id: N\nevent: T\ndata: J\n\n"), at most max_events entries and
 * max_bytes of text; publishing into a full ring drops the oldest.  Ids are
 * consecutive, so the slot of id N is found by arithmetic.  A subscriber is a
 * cursor (the next id to send, and how many bytes of it went out) plus a few
 * bytes for a pending comment or resync: memory does not grow with a slow
 * reader.  A reader whose next id has left the ring gets a `resync` event and
 * jumps to the newest event.
 *
 * Threads.
 *   - The publisher (the engine's syncer, after each fsync) calls
 *     events_publish: lock, append, maybe signal the timer, unlock.  They
 *     never wait for a subscriber.
 *   - MHD I/O threads run events_read (the response's content reader) and
 *     events_free (its free callback).  The reader copies what the cursor has
 *     not sent yet; with nothing to send it suspends its own connection
 *     (MHD_suspend_connection from the content reader is the documented way)
 *     and returns 0, so no thread spins on an idle stream.
 *   - One timer thread (events_timer_main) resumes the suspended subscribers:
 *     when events arrived, at most once per EVENTS_BATCH_MS, so a burst of
 *     30,000 events/s costs each subscriber ~20 wake-ups/s, not 30,000; and
 *     every EVENTS_PING_MS for the `: ping` comment.  It sleeps on a condition
 *     variable the rest of the time.
 *
 * Lock.  One mutex, ev.lock, guards everything in `ev` and every subscriber.
 * MHD_suspend_connection (reader) and MHD_resume_connection (timer, shutdown)
 * are both called with ev.lock held, which is what makes "resume only a
 * connection that is really suspended" hold: s->suspended is true exactly
 * between the two.  That nests MHD's internal cleanup mutex inside ev.lock;
 * MHD never calls our callbacks while holding that mutex (checked against
 * 0.9.75: the reader runs under the response's own mutex only, the free
 * callback under none), so the order is acyclic.  The lock is held for a
 * memcpy of at most one MHD write buffer and non-blocking calls (a MSG_PEEK,
 * MHD's eventfd write on resume), never across blocking I/O.  Who may block:
 * nobody waits for a subscriber; the timer waits on its condition variable.
 *
 * Big events.  An event larger than MHD's write buffer (~16-32 KiB) goes out
 * in pieces; if the ring drops it before the last piece, the stream is
 * closed (the client discards the fragment, reconnects with its last whole
 * id and is told to resync).  Ordinary events are never split.
 *
 * Lifetime.  A subscriber is created by events_serve and freed by the
 * response's free callback, which MHD calls when the connection ends.  MHD
 * does not watch a suspended connection, so the reader peeks at the socket
 * before it suspends: a client that left is let go the next time the stream
 * wakes (within EVENTS_BATCH_MS of the next event, or at the next ping).
 * A suspended connection cannot be closed by MHD, so s->conn is valid
 * whenever s->suspended is true.
 * events_shutdown sets ev.closed and resumes every suspended subscriber;
 * their readers then return END_OF_STREAM, so MHD_stop_daemon (called after
 * it) finds no suspended connection.  The mutex is static and never
 * destroyed, because free callbacks still run inside MHD_stop_daemon.
 */
#include "events.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"
#include "log.h"

/* Resumes of suspended subscribers are batched to at most one per this. */
#ifndef EVENTS_BATCH_MS
#define EVENTS_BATCH_MS 50
#endif
/* Events are rendered while a subscriber is connected or left less than this
 * ago (a dashboard reloading, a client reconnecting); after it, nobody is
 * listening and publishing stops costing anything. */
#ifndef EVENTS_IDLE_MS
#define EVENTS_IDLE_MS 60000
#endif
/* A `: ping` comment this often keeps proxies from closing idle streams. */
#ifndef EVENTS_PING_MS
#define EVENTS_PING_MS 15000
#endif
/* Buffer MHD allocates per response; used only for HTTP/1.0 clients (1.1
 * streams are chunked straight into the connection's write buffer). */
#define EVENTS_BLOCK_SIZE 4096

struct event {
    int64_t id;
    char   *text;                  /* SSE block, len bytes, not terminated */
    size_t  len;
};

struct subscriber {
    struct subscriber     *prev, *next;
    struct MHD_Connection *conn;
    int64_t  next_id;              /* first event not completely sent */
    size_t   sent;                 /* bytes of next_id already sent */
    uint64_t ping_seq;             /* last ping round this stream has seen */
    bool     suspended;            /* between our suspend and our resume */
    bool     resuming_client;      /* its Last-Event-ID was not buffered */
    size_t   note_len, note_off;   /* pending comment or resync in note */
    char     note[160];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t  wake;          /* timer: events to deliver, or closing */
    bool            ready;         /* between events_init and shutdown */
    bool            closed;        /* streams end; publish refuses */
    struct event   *ring;
    size_t          cap, head, count;   /* head: slot of the oldest */
    size_t          bytes, max_bytes;
    int64_t         last_id;       /* newest id; oldest is last_id-count+1 */
    struct subscriber *subs;
    size_t          nsubs, nsuspended;
    bool            wake_pending;  /* events arrived since the last resume */
    uint64_t        ping_seq;
    pthread_t       timer;
    int64_t         last_sub_seen; /* monotonic ms a subscriber was last connected */
    bool            dormant;       /* ring emptied for want of subscribers */
} ev = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

static int64_t events_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Resumes every suspended subscriber.  Called with ev.lock held. */
static void events_resume_all(void)
{
    struct subscriber *s;

    for (s = ev.subs; s != NULL && ev.nsuspended > 0; s = s->next) {
        if (!s->suspended)
            continue;
        s->suspended = false;
        ev.nsuspended--;
        MHD_resume_connection(s->conn);
    }
}

/* The timer thread: batches resumes and rings the ping.  See DESIGN. */
static void *events_timer_main(void *arg)
{
    int64_t now, next_ping, last_resume = 0, deadline;
    struct timespec ts;

    (void)arg;
    pthread_mutex_lock(&ev.lock);
    next_ping = events_now_ms() + EVENTS_PING_MS;
    while (!ev.closed) {
        now = events_now_ms();
        if (now >= next_ping) {
            ev.ping_seq++;
            next_ping = now + EVENTS_PING_MS;
            ev.wake_pending = false;
            events_resume_all();
            last_resume = now;
            continue;
        }
        if (ev.wake_pending && now >= last_resume + EVENTS_BATCH_MS) {
            ev.wake_pending = false;
            events_resume_all();
            last_resume = now;
            continue;
        }
        deadline = ev.wake_pending ? last_resume + EVENTS_BATCH_MS : next_ping;
        ts.tv_sec = deadline / 1000;
        ts.tv_nsec = (deadline % 1000) * 1000000;
        pthread_cond_timedwait(&ev.wake, &ev.lock, &ts);
    }
    pthread_mutex_unlock(&ev.lock);
    return NULL;
}

int events_init(size_t max_events, size_t max_bytes)
{
    pthread_condattr_t attr;
    struct event *ring = NULL;
    bool cond_made = false;
    int err;

    if (max_events == 0 || max_bytes == 0) {
        log_error("max_events and max_bytes must be > 0");
        return -1;
    }
    ring = calloc(max_events, sizeof(*ring));
    if (ring == NULL) {
        log_error("cannot allocate %zu events", max_events);
        goto fail;
    }
    pthread_mutex_lock(&ev.lock);
    if (ev.ready) {
        pthread_mutex_unlock(&ev.lock);
        log_error("already initialised");
        goto fail;
    }
    /* CLOCK_MONOTONIC: a wall-clock step must not stall the timer. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ev.wake, &attr);
    pthread_condattr_destroy(&attr);
    cond_made = true;
    ev.ring = ring;
    ev.cap = max_events;
    ev.head = ev.count = ev.bytes = 0;
    ev.max_bytes = max_bytes;
    /* Ids start at the wall clock in microseconds, so the ids of this run
     * are above those of any earlier run that published fewer than a million
     * events per second; a Last-Event-ID from before a restart then reads as
     * "too old" (resync) rather than as a position in this run's stream.
     * 2^53 (exact in JavaScript) is reached in the year 2255. */
    ev.last_id = (int64_t)time(NULL) * 1000000;
    ev.wake_pending = false;
    ev.closed = false;
    ev.ready = true;
    err = pthread_create(&ev.timer, NULL, events_timer_main, NULL);
    if (err != 0) {
        ev.ready = false;
        ev.ring = NULL;
        pthread_mutex_unlock(&ev.lock);
        log_error("cannot start the timer thread: %s", strerror(err));
        goto fail;
    }
    pthread_mutex_unlock(&ev.lock);
    return 0;

fail:
    if (cond_made)
        pthread_cond_destroy(&ev.wake);
    free(ring);
    return -1;
}

/* True if type is a short lower-case word (it goes into an SSE field). */
static bool events_type_ok(const char *type)
{
    size_t i;

    for (i = 0; type[i] != '\0'; i++)
        if ((type[i] < 'a' || type[i] > 'z') && type[i] != '_')
            return false;
    return i > 0 && i <= 32;
}

int64_t events_publish(const char *type, const char *data)
{
    struct event *e;
    char *text;
    size_t size, len;
    int64_t id;
    int n;

    if (type == NULL || data == NULL || !events_type_ok(type) ||
        strpbrk(data, "\r\n") != NULL) {
        /* A newline would end the SSE data field early and corrupt the
         * stream for every subscriber. */
        log_warn("refusing a malformed event of type %s",
                 type != NULL ? type : "(null)");
        return -1;
    }
    size = sizeof("id: \nevent: \ndata: \n\n") + 20 + strlen(type) + strlen(data);
    text = malloc(size);
    if (text == NULL) {
        log_error("out of memory for a %zu-byte event", size);
        return -1;
    }

    pthread_mutex_lock(&ev.lock);
    if (!ev.ready || ev.closed) {
        pthread_mutex_unlock(&ev.lock);
        free(text);
        return -1;
    }
    id = ev.last_id + 1;
    n = snprintf(text, size, "id: %" PRId64 "\nevent: %s\ndata: %s\n\n",
                 id, type, data);
    len = (size_t)n;
    if (n < 0 || len >= size || len > ev.max_bytes) {
        pthread_mutex_unlock(&ev.lock);
        log_warn("event of %zu bytes does not fit a ring of %zu bytes",
                 len, ev.max_bytes);
        free(text);
        return -1;
    }
    /* Make room: the oldest go first.  Their readers resync. */
    while (ev.count == ev.cap || ev.bytes + len > ev.max_bytes) {
        e = &ev.ring[ev.head];
        ev.bytes -= e->len;
        free(e->text);
        e->text = NULL;
        ev.head = (ev.head + 1) % ev.cap;
        ev.count--;
    }
    e = &ev.ring[(ev.head + ev.count) % ev.cap];
    e->id = id;
    e->text = text;
    e->len = len;
    ev.count++;
    ev.bytes += len;
    ev.last_id = id;
    /* Only the first event after a resume round wakes the timer, so the
     * cost of a signal is paid at most once per batch. */
    if (ev.nsuspended > 0 && !ev.wake_pending) {
        ev.wake_pending = true;
        pthread_cond_signal(&ev.wake);
    }
    pthread_mutex_unlock(&ev.lock);
    return id;
}

/* Sets the subscriber's pending note.  Called with ev.lock held. */
static void events_note(struct subscriber *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void events_note(struct subscriber *s, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(s->note, sizeof(s->note), fmt, ap);
    va_end(ap);
    s->note_len = n < 0 ? 0 : (size_t)n < sizeof(s->note) ? (size_t)n
                                                          : sizeof(s->note) - 1;
    s->note_off = 0;
}

/* True if the client closed or reset the connection.  A client of an
 * event stream sends nothing after its request, so readable EOF means gone. */
static bool events_peer_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;
    ssize_t r;
    char c;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return false;
    r = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                      errno != EINTR);
}

/* The content reader: copies what s has not sent yet into buf, whole events
 * where they fit.  With nothing to send it suspends the connection (the
 * timer resumes it) and returns 0.  Runs on an MHD I/O thread. */
static ssize_t events_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct subscriber *s = cls;
    const struct event *e;
    size_t n = 0, want, room;
    int64_t oldest;

    (void)pos;
    pthread_mutex_lock(&ev.lock);
    if (ev.closed || !ev.ready) {
        pthread_mutex_unlock(&ev.lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    for (;;) {
        room = max - n;
        if (room == 0)
            break;
        if (s->note_off < s->note_len) {
            want = s->note_len - s->note_off;
            if (want > room)
                want = room;
            memcpy(buf + n, s->note + s->note_off, want);
            n += want;
            s->note_off += want;
            if (s->note_off < s->note_len)
                break;
            s->note_len = s->note_off = 0;
            continue;
        }
        oldest = ev.last_id - (int64_t)ev.count + 1;
        if (s->next_id < oldest) {
            if (s->sent > 0) {
                /* Half an event went out and the rest is gone: close, so
                 * the client drops the fragment and reconnects with the
                 * last complete id (then resyncs). */
                pthread_mutex_unlock(&ev.lock);
                return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_WITH_ERROR;
            }
            /* The resync carries the newest id: a reconnect after it
             * resumes from the state the client is about to refetch. */
            events_note(s, "id: %" PRId64 "\nevent: resync\n"
                        "data: {\"reason\":\"%s\"}\n\n", ev.last_id,
                        s->resuming_client ? "last_event_id_not_buffered"
                                           : "fell_behind");
            s->next_id = ev.last_id + 1;
            s->resuming_client = false;
            continue;
        }
        if (s->ping_seq != ev.ping_seq && s->sent == 0) {
            s->ping_seq = ev.ping_seq;
            events_note(s, ": ping\n\n");
            continue;
        }
        if (s->next_id > ev.last_id)
            break;
        e = &ev.ring[(ev.head + (size_t)(s->next_id - oldest)) % ev.cap];
        want = e->len - s->sent;
        if (want > room) {
            /* Only an event bigger than MHD's whole buffer is split. */
            if (n > 0)
                break;
            want = room;
        }
        memcpy(buf + n, e->text + s->sent, want);
        n += want;
        s->sent += want;
        if (s->sent == e->len) {
            s->sent = 0;
            s->next_id++;
        }
    }
    if (n == 0) {
        if (events_peer_gone(s->conn)) {
            /* A suspended connection is blind to its client (MHD polls
             * it no more), so look before sleeping: a client that left
             * is let go now rather than after two more failed writes. */
            pthread_mutex_unlock(&ev.lock);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        s->suspended = true;
        ev.nsuspended++;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&ev.lock);
    return (ssize_t)n;
}

/* The response's free callback: the stream is over, forget the cursor. */
static void events_free(void *cls)
{
    struct subscriber *s = cls;

    pthread_mutex_lock(&ev.lock);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        ev.subs = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    ev.nsubs--;
    if (s->suspended)
        ev.nsuspended--;
    ev.last_sub_seen = events_now_ms();
    pthread_mutex_unlock(&ev.lock);
    free(s);
}

bool events_wanted(void)
{
    int64_t now = events_now_ms();
    bool wanted;

    pthread_mutex_lock(&ev.lock);
    if (ev.nsubs > 0)
        ev.last_sub_seen = now;
    wanted = ev.nsubs > 0 || (ev.last_sub_seen > 0 && now - ev.last_sub_seen < EVENTS_IDLE_MS);
    if (!wanted && !ev.dormant && ev.ready) {
        /* Changes from now on are not kept.  Empty the ring and skip an id, so
         * a client returning with any Last-Event-ID gets a resync rather than
         * a replay with a silent hole in it. */
        while (ev.count > 0) {
            struct event *e = &ev.ring[ev.head];
            free(e->text);
            e->text = NULL;
            ev.head = (ev.head + 1) % ev.cap;
            ev.count--;
        }
        ev.bytes = 0;
        ev.last_id++;
        ev.dormant = true;
    } else if (wanted) {
        ev.dormant = false;
    }
    pthread_mutex_unlock(&ev.lock);
    return wanted;
}

/* Parses a Last-Event-ID value.  Returns 0 and *id, or -1 if malformed. */
static int events_parse_id(const char *v, int64_t *id)
{
    char *end;
    long long x;

    if (v[0] < '0' || v[0] > '9')
        return -1;
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *id = (int64_t)x;
    return 0;
}

enum MHD_Result events_serve(struct MHD_Connection *conn)
{
    struct subscriber *s;
    struct MHD_Response *resp;
    const char *last;
    int64_t after = 0;
    bool has_last = false, bad_last = false;

    last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (last != NULL && last[0] != '\0') {
        has_last = true;
        bad_last = events_parse_id(last, &after) != 0;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        log_error("out of memory for a subscriber");
        return MHD_NO;
    }
    s->conn = conn;
    /* A comment first, so the headers and a first byte reach the client
     * (EventSource fires "open") before any event exists. */
    events_note(s, ": connected\n\n");

    pthread_mutex_lock(&ev.lock);
    if (!ev.ready || ev.closed) {
        pthread_mutex_unlock(&ev.lock);
        free(s);
        return http_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting_down",
                          "the event stream is closed");
    }
    if (!has_last) {
        s->next_id = ev.last_id + 1;
    } else if (bad_last || after > ev.last_id ||
               after + 1 < ev.last_id - (int64_t)ev.count + 1) {
        /* Not an id of this run, or its successors are gone: the first
         * read sends the resync (next_id 0 is below any buffered id). */
        s->next_id = 0;
        s->resuming_client = true;
    } else {
        s->next_id = after + 1;
    }
    s->ping_seq = ev.ping_seq;
    s->next = ev.subs;
    if (ev.subs != NULL)
        ev.subs->prev = s;
    ev.subs = s;
    ev.nsubs++;
    pthread_mutex_unlock(&ev.lock);

    /* From here events_free owns s: it runs when resp is destroyed. */
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
                                             EVENTS_BLOCK_SIZE, events_read,
                                             s, events_free);
    if (resp == NULL) {
        log_error("cannot create the event stream response");
        events_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return http_queue(conn, MHD_HTTP_OK, resp);
}

void events_shutdown(void)
{
    size_t i;

    pthread_mutex_lock(&ev.lock);
    if (!ev.ready) {
        pthread_mutex_unlock(&ev.lock);
        return;
    }
    ev.closed = true;
    events_resume_all();
    pthread_cond_signal(&ev.wake);
    pthread_mutex_unlock(&ev.lock);

    pthread_join(ev.timer, NULL);

    pthread_mutex_lock(&ev.lock);
    for (i = 0; i < ev.count; i++)
        free(ev.ring[(ev.head + i) % ev.cap].text);
    free(ev.ring);
    ev.ring = NULL;
    ev.cap = ev.head = ev.count = ev.bytes = 0;
    ev.ready = false;
    pthread_cond_destroy(&ev.wake);
    pthread_mutex_unlock(&ev.lock);
}

size_t events_subscribers(void)
{
    size_t n;

    pthread_mutex_lock(&ev.lock);
    n = ev.nsubs;
    pthread_mutex_unlock(&ev.lock);
    return n;
}
