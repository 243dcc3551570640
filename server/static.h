/*
 * static.h - the dashboard's files, served read-only from one web root.
 *
 * Nothing outside the root is ever opened: paths with "..", ".", empty or
 * hidden segments, backslashes or symlinks anywhere are answered 404, and the
 * file is opened beneath the root's directory fd (openat2 RESOLVE_BENEATH, or
 * an O_NOFOLLOW walk where openat2 is missing).
 */
#ifndef TASKPOOL_STATIC_H
#define TASKPOOL_STATIC_H

#include <microhttpd.h>

/* Resolves the web root once (realpath); 0 / -1 after logging. */
int static_open(const char *root);

/* Forgets the web root; static_serve answers 404 afterwards. */
void static_close(void);

/* Answers GET/HEAD for url (already percent-decoded by MHD): 200 with the
 * file (or its precompressed FILE.gz sibling when the client accepts gzip),
 * 304 on a matching If-None-Match, 404 / 405 with a JSON error body.
 * Returns an MHD_Result from MHD_queue_response. */
enum MHD_Result static_serve(struct MHD_Connection *conn, const char *method,
                             const char *url);

#endif
