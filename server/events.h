/*
 * events.h - the live event stream (GET /api/v1/events, Server-Sent Events).
 *
 * Publishers append pre-formatted events to one bounded ring; each subscriber
 * is only a cursor into it, so memory is bounded whatever the number of
 * subscribers.  Ids are increasing integers that also increase across daemon
 * restarts (the first id is seeded from the clock), so a client's
 * Last-Event-ID from an earlier daemon is never mistaken for a current one.
 */
#ifndef TASKPOOL_EVENTS_H
#define TASKPOOL_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

/* Bounded ring of the most recent events: at most max_events entries and
 * max_bytes of data.  Starts the resume timer thread.  0 / -1. */
int events_init(size_t max_events, size_t max_bytes);

/* Publishes an event (type "task"|"worker", data = one-line JSON).
 * Thread-safe, never blocks on a subscriber.  Returns its id (> 0) or -1
 * (not initialised, shut down, bad arguments, out of memory).
 * Publish every change while events_wanted() says so: a client that
 * reconnects with Last-Event-ID is replayed the ring, and a change left out of
 * it is a change that client never hears of. */
int64_t events_publish(const char *type, const char *data);

/* True while a subscriber is connected or left less than a minute ago, so
 * publishers may skip rendering events nobody will read.  When it turns
 * false the ring is emptied and an id skipped: a client that comes back later
 * with Last-Event-ID is told to resync instead of missing changes silently. */
bool events_wanted(void);

/* Starts an SSE response on conn (GET /api/v1/events); honours the
 * Last-Event-ID header.  Returns MHD_queue_response's result. */
enum MHD_Result events_serve(struct MHD_Connection *conn);

/* Ends every stream (so MHD_stop_daemon finds no suspended connection) and
 * frees the ring.  Call it before MHD_stop_daemon. */
void events_shutdown(void);

/* Number of connected subscribers (for /metrics). */
size_t events_subscribers(void);

#endif
