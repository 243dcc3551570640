/*
 * stats.h - live figures for the dashboard (/api/v1/stats) and Prometheus
 * (/metrics): throughput, run/queue time percentiles and histograms, a
 * per-second history, tasks by kind and status, HTTP responses by status.
 */
#ifndef TASKPOOL_STATS_H
#define TASKPOOL_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct task;
struct cJSON;
struct engine_stats;
struct pool_stats;

/* A task row became durable; insert says it is the task's first write.  Any thread. */
void stats_observe_task(const struct task *t, bool insert);

/* Closes finished seconds of the history; queue_depth is sampled for them.  Any thread. */
void stats_tick(int64_t now_ms, int64_t queue_depth);

/* An HTTP response was sent with this status.  Any thread. */
void stats_http(unsigned status);

/* Adds the /api/v1/stats members to obj.  0 / -1. */
int stats_json(struct cJSON *obj, const struct engine_stats *es, const struct pool_stats *ps);

/* Renders the Prometheus text exposition.  Returns a malloc'd string or NULL. */
char *stats_prometheus(const struct engine_stats *es, const struct pool_stats *ps,
                       size_t subscribers);

#endif
