/*
 * http.h - the HTTP front: libmicrohttpd setup, routes, auth, JSON errors.
 */
#ifndef TASKPOOL_HTTP_H
#define TASKPOOL_HTTP_H

#include "config.h"

/* Starts serving on cfg's address (port 0 picks one) and logs "listening on HOST:PORT".  0 / -1. */
int  http_start(const struct config *cfg);

/* From now on API requests get 503 shutting_down. */
void http_begin_shutdown(void);

/* Waits (bounded) for answered requests to be sent, then stops the server. */
void http_stop(void);

#endif
