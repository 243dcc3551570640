/*
 * config.h - the daemon's settings, filled from the command line by main.c
 * and read (never written) by every other module after start.
 */
#ifndef TASKPOOL_CONFIG_H
#define TASKPOOL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config {
    char        listen_host[256];
    int         listen_port;
    const char *db_path;
    const char *web_root;
    char       *token;             /* NULL = no auth; owned (the flag's or TASKPOOL_TOKEN's
                                    * text is overwritten, see main_hide_token) */
    const char *exe_path;          /* this binary, for spawning workers */
    int         workers;
    int64_t     max_tasks_per_worker;   /* 0 = never retire */
    bool        allow_exec;
    bool        insecure;
    bool        sync_full;
    double      shutdown_grace;    /* seconds */
    size_t      max_output;        /* bytes per exec stream */
};

#endif
