/*
 * log.h - one line per event on stderr: time, program[pid], level, function.
 */
#ifndef TASKPOOL_LOG_H
#define TASKPOOL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Lines below this level are dropped.  Default LOG_INFO. */
void log_set_level(enum log_level lvl);

/* Names the process in every line ("taskpoold", "worker"). */
void log_set_name(const char *name);

void log_write(enum log_level lvl, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_DEBUG, __func__, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO,  __func__, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN,  __func__, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __func__, __VA_ARGS__)

#endif
