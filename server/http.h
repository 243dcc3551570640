/*
 * http.h - the HTTP front: libmicrohttpd setup, routes, auth, JSON errors.
 */
#ifndef TASKPOOL_HTTP_H
#define TASKPOOL_HTTP_H

#include <microhttpd.h>

#include "config.h"

/* Starts serving on cfg's address (port 0 picks one) and logs "listening on HOST:PORT".  0 / -1. */
int  http_start(const struct config *cfg);

/*
 * Queues resp (consumed) with status and counts the answer for /metrics.
 * Every answer taskpoold gives, files and event streams too, goes through
 * here.  MHD_YES / MHD_NO as from MHD_queue_response.
 */
enum MHD_Result http_queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp);

/* Answers {"error": {"code": code, "message": ...}} with status. */
enum MHD_Result http_error(struct MHD_Connection *c, unsigned status, const char *code,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Answers 405 method_not_allowed with an Allow header. */
enum MHD_Result http_method_not_allowed(struct MHD_Connection *c, const char *allow);

/* From now on API requests get 503 shutting_down. */
void http_begin_shutdown(void);

/* Waits (bounded) for answered requests to be sent, then stops the server. */
void http_stop(void);

#endif
