/*
 * log.c - one line per event on stderr.  Each line is formatted into a local
 * buffer and written with a single write(2), so lines from threads and from
 * worker processes sharing the same stderr never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_min = LOG_INFO;
static const char *log_name = "taskpoold";

static const char *const log_level_names[] = { "debug", "info", "warn", "error" };

void log_set_level(enum log_level lvl) { log_min = lvl; }

void log_set_name(const char *name) { log_name = name; }

void log_write(enum log_level lvl, const char *func, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n, m;

    if (lvl < log_min)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s: %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000, log_name, (long)getpid(),
                 log_level_names[lvl], func);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;  /* truncated: still one whole line */
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, (size_t)n);
}
