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

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

/* Bounded ring of the most recent events: at most max_events entries and
 * max_bytes of data.  Starts the resume timer thread.  0 / -1. */
int events_init(size_t max_events, size_t max_bytes);

/* Publishes an event (type "task"|"worker", data = one-line JSON).
 * Thread-safe, never blocks on a subscriber.  Returns its id (> 0) or -1
 * (not initialised, shut down, bad arguments, out of memory). */
int64_t events_publish(const char *type, const char *data);

/* Starts an SSE response on conn (GET /api/v1/events); honours the
 * Last-Event-ID header.  Returns MHD_queue_response's result. */
enum MHD_Result events_serve(struct MHD_Connection *conn);

/* Ends every stream (so MHD_stop_daemon finds no suspended connection) and
 * frees the ring.  Call it before MHD_stop_daemon. */
void events_shutdown(void);

/* Number of connected subscribers (for /metrics). */
size_t events_subscribers(void);

#endif
