/*
 * main.c - taskpoold: command line, start-up order, signals, graceful stop.
 *
 * The same binary is the worker: the pool runs it as `taskpoold --worker`.
 * Start-up: block the signals every thread must not take (SIGCHLD goes to
 * the pool's signalfd, SIGTERM/SIGINT to sigwait here), then start the
 * engine (database), the pool (workers), and HTTP last, so nothing is
 * accepted before it can be recorded and run.  Stop is the reverse.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "proc.h"
#include "static.h"

#define TASKPOOL_VERSION "1.0.0"

static const char usage_text[] =
    "usage: taskpoold [options]\n"
    "\n"
    "Runs tasks submitted over HTTP in a pool of worker processes and records\n"
    "them in SQLite.  API under /api/v1, dashboard at /.\n"
    "\n"
    "  --listen HOST:PORT          address to serve (default 127.0.0.1:8080; port 0 picks one)\n"
    "  --db PATH                   SQLite database (default ./taskpool.db)\n"
    "  --workers N                 worker processes, 1 to 256 (default: number of CPUs)\n"
    "  --max-tasks-per-worker N    retire a worker after N tasks (default 0 = never)\n"
    "  --allow-exec                enable the 'exec' kind (runs commands as this user)\n"
    "  --token TOKEN               require 'Authorization: Bearer TOKEN' on /api/\n"
    "                              (or set TASKPOOL_TOKEN)\n"
    "  --insecure                  allow a non-loopback --listen without a token\n"
    "  --shutdown-grace S          seconds running tasks get on SIGTERM (default 10)\n"
    "  --max-output BYTES          exec output kept per stream (default 1048576)\n"
    "  --sync full|normal          full: a 201 survives power loss (default);\n"
    "                              normal: faster, may lose the last commits on power loss\n"
    "  --web DIR                   dashboard files (default: web/ beside bin/)\n"
    "  --verbose                   log debug lines\n"
    "  --help, --version\n";

static int main_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints one line about a bad command line; returns the exit code for it. */
static int main_usage_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "taskpoold: %s (see taskpoold --help)\n", msg);
    return 2;
}

/* Parses a decimal integer within [lo, hi].  0 / -1. */
static int main_parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int main_parse_listen(const char *s, struct config *cfg)
{
    const char *colon = strrchr(s, ':');
    long long port;
    size_t hl;

    if (colon == NULL || main_parse_int(colon + 1, 0, 65535, &port) < 0)
        return -1;
    hl = (size_t)(colon - s);
    if (hl > 1 && s[0] == '[' && s[hl - 1] == ']') {   /* [::1]:8080 */
        s++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof cfg->listen_host)
        return -1;
    memcpy(cfg->listen_host, s, hl);
    cfg->listen_host[hl] = '\0';
    cfg->listen_port = (int)port;
    return 0;
}

/* 1 if every address host resolves to is a loopback one, 0 if not, -1 if it does not resolve. */
static int main_is_loopback(const char *host)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *p;
    int lo = 1;

    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        return -1;
    for (p = ai; p != NULL; p = p->ai_next) {
        if (p->ai_family == AF_INET)
            lo &= (ntohl(((struct sockaddr_in *)p->ai_addr)->sin_addr.s_addr) >> 24) == IN_LOOPBACKNET;
        else if (p->ai_family == AF_INET6)
            lo &= IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr);
        else
            lo = 0;
    }
    freeaddrinfo(ai);
    return lo;
}

static char *main_default_web_root(const char *exe)
{
    char buf[PATH_MAX], *slash;

    snprintf(buf, sizeof buf, "%s", exe);
    slash = strrchr(buf, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';                         /* .../bin */
    slash = strrchr(buf, '/');
    if (slash == NULL)
        return NULL;
    snprintf(slash, sizeof buf - (size_t)(slash - buf), "/web");
    return strdup(buf);
}

/*
 * Returns a copy of the token and overwrites the original in place.  The
 * original is argv or environment text, which /proc/PID/cmdline and
 * /proc/PID/environ show to other processes of this user (every exec
 * command among them) for as long as we run; unsetenv does not touch it.
 */
static char *main_hide_token(char *text)
{
    char *copy = strdup(text);

    if (copy != NULL)
        memset(text, 'x', strlen(text));
    return copy;
}

enum { OPT_LISTEN = 256, OPT_DB, OPT_WORKERS, OPT_MAX_TASKS, OPT_ALLOW_EXEC, OPT_TOKEN,
       OPT_INSECURE, OPT_GRACE, OPT_MAX_OUTPUT, OPT_SYNC, OPT_WEB, OPT_VERBOSE, OPT_HELP,
       OPT_VERSION };

static const struct option long_options[] = {
    { "listen", required_argument, NULL, OPT_LISTEN },
    { "db", required_argument, NULL, OPT_DB },
    { "workers", required_argument, NULL, OPT_WORKERS },
    { "max-tasks-per-worker", required_argument, NULL, OPT_MAX_TASKS },
    { "allow-exec", no_argument, NULL, OPT_ALLOW_EXEC },
    { "token", required_argument, NULL, OPT_TOKEN },
    { "insecure", no_argument, NULL, OPT_INSECURE },
    { "shutdown-grace", required_argument, NULL, OPT_GRACE },
    { "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
    { "sync", required_argument, NULL, OPT_SYNC },
    { "web", required_argument, NULL, OPT_WEB },
    { "verbose", no_argument, NULL, OPT_VERBOSE },
    { "help", no_argument, NULL, OPT_HELP },
    { "version", no_argument, NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

/* Fills cfg from argv.  Returns -1 to go on, else the exit code. */
static int main_parse_args(int argc, char **argv, struct config *cfg)
{
    long long v;
    char *end;
    double d;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN:
            if (main_parse_listen(optarg, cfg) < 0)
                return main_usage_error("--listen wants HOST:PORT, got '%s'", optarg);
            break;
        case OPT_DB:
            if (*optarg == '\0')
                return main_usage_error("--db wants a path");
            cfg->db_path = optarg;
            break;
        case OPT_WORKERS:
            if (main_parse_int(optarg, 1, POOL_WORKERS_MAX, &v) < 0)
                return main_usage_error("--workers wants an integer from 1 to %d, got '%s'",
                                        POOL_WORKERS_MAX, optarg);
            cfg->workers = (int)v;
            break;
        case OPT_MAX_TASKS:
            if (main_parse_int(optarg, 0, LLONG_MAX, &v) < 0)
                return main_usage_error("--max-tasks-per-worker wants an integer >= 0, got '%s'",
                                        optarg);
            cfg->max_tasks_per_worker = v;
            break;
        case OPT_ALLOW_EXEC:
            cfg->allow_exec = true;
            break;
        case OPT_TOKEN:
            if (*optarg == '\0')
                return main_usage_error("--token must not be empty");
            free(cfg->token);
            cfg->token = main_hide_token(optarg);
            if (cfg->token == NULL)
                return main_usage_error("out of memory");
            break;
        case OPT_INSECURE:
            cfg->insecure = true;
            break;
        case OPT_GRACE:
            errno = 0;
            d = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || errno != 0 || !(d >= 0 && d <= 86400))
                return main_usage_error("--shutdown-grace wants seconds from 0 to 86400, got '%s'",
                                        optarg);
            cfg->shutdown_grace = d;
            break;
        case OPT_MAX_OUTPUT:
            if (main_parse_int(optarg, 1, 64LL * 1024 * 1024, &v) < 0)
                return main_usage_error("--max-output wants bytes from 1 to 67108864, got '%s'",
                                        optarg);
            cfg->max_output = (size_t)v;
            break;
        case OPT_SYNC:
            if (strcmp(optarg, "full") == 0)
                cfg->sync_full = true;
            else if (strcmp(optarg, "normal") == 0)
                cfg->sync_full = false;
            else
                return main_usage_error("--sync wants full or normal, got '%s'", optarg);
            break;
        case OPT_WEB:
            cfg->web_root = optarg;
            break;
        case OPT_VERBOSE:
            log_set_level(LOG_DEBUG);
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 0;
        case OPT_VERSION:
            printf("taskpoold %s\n", TASKPOOL_VERSION);
            return 0;
        case ':':
            return main_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return main_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return main_usage_error("unexpected argument '%s'", argv[optind]);
    char *env = getenv("TASKPOOL_TOKEN");
    if (env != NULL && *env != '\0') {
        char *copy = main_hide_token(env);
        if (copy == NULL)
            return main_usage_error("out of memory");
        if (cfg->token == NULL)
            cfg->token = copy;
        else
            free(copy);
    }
    /* Commands run by exec inherit our environment: the token must not be in it. */
    unsetenv("TASKPOOL_TOKEN");
    if (cfg->token == NULL && !cfg->insecure) {
        int lo = main_is_loopback(cfg->listen_host);
        if (lo < 0)
            return main_usage_error("--listen: cannot resolve '%s'", cfg->listen_host);
        if (lo == 0)
            return main_usage_error("refusing to listen on '%s' without --token (or --insecure)",
                                    cfg->listen_host);
    }
    return -1;
}

/*
 * Everything our workers start carries TASKPOOL_DB=<this database> in its
 * environment.  If a worker and then the daemon die too close together for
 * the daemon to end the worker's leftovers, those outlive both; we hold the
 * database's lock now, so whatever carries its mark is from an earlier run:
 * kill it.  0 / -1.
 */
static int main_mark_our_processes(const char *db_path)
{
    char path[PATH_MAX], marker[PATH_MAX + 16];
    int n;

    if (realpath(db_path, path) == NULL || setenv("TASKPOOL_DB", path, 1) < 0) {
        log_error("%s: %s", db_path, strerror(errno));
        return -1;
    }
    snprintf(marker, sizeof marker, "TASKPOOL_DB=%s", path);
    n = proc_kill_marked(marker, getpid(), SIGKILL);
    if (n > 0)
        log_warn("killed %d process(es) an earlier run on %s left running", n, db_path);
    return 0;
}

/* Lets one process hold many connections; the soft limit is often 1024. */
static void main_raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    static char exe[PATH_MAX];
    struct config cfg = {
        .listen_host = "127.0.0.1", .listen_port = 8080, .db_path = "./taskpool.db",
        .sync_full = true, .shutdown_grace = 10, .max_output = 1024 * 1024,
    };
    char *web_default = NULL;
    sigset_t sigs;
    int sig, rc;
    ssize_t n;

    if (argc > 1 && strcmp(argv[1], "--worker") == 0)
        return worker_main(argc, argv);

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.workers = ncpu < 1 ? 1 : ncpu > POOL_WORKERS_MAX ? POOL_WORKERS_MAX : (int)ncpu;
    rc = main_parse_args(argc, argv, &cfg);
    if (rc >= 0) {
        free(cfg.token);
        return rc;
    }
    rc = 1;
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        log_error("cannot find my own binary: %s", strerror(errno));
        goto out;
    }
    exe[n] = '\0';
    cfg.exe_path = exe;
    if (cfg.web_root == NULL)
        cfg.web_root = web_default = main_default_web_root(exe);

    /* Before any thread exists, so every thread inherits the mask.  SIGCHLD is
     * blocked for the pool's signalfd but not waited for here: two takers
     * would race for it. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    main_raise_fd_limit();
    /* Orphans of our workers' commands come to us, not to init, so the pool
     * can end them when a worker dies (see pool_kill_strays). */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn("cannot become a child subreaper: %s", strerror(errno));

    log_info("taskpoold %s starting: db %s, %d workers%s%s", TASKPOOL_VERSION, cfg.db_path,
             cfg.workers, cfg.allow_exec ? ", exec allowed" : "",
             cfg.token ? ", token required" : "");
    rc = 1;
    if (events_init(65536, 32 * 1024 * 1024) < 0)
        goto out;
    if (cfg.web_root == NULL)
        log_warn("no dashboard: cannot tell where web/ is beside %s", exe);
    else
        static_open(cfg.web_root);   /* logs why not; the API works without it */
    if (engine_start(&cfg) < 0)
        goto out_events;
    if (main_mark_our_processes(cfg.db_path) < 0)
        goto out_engine;
    if (pool_start(&cfg) < 0)
        goto out_engine;
    if (http_start(&cfg) < 0)
        goto out_pool;

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            log_info("SIGHUP ignored: restart to change settings");
    }
    log_info("%s: stopping (grace %.1f s)", strsignal(sig), cfg.shutdown_grace);
    http_begin_shutdown();
    rc = 0;
out_pool:
    pool_stop((int64_t)(cfg.shutdown_grace * 1000));
out_engine:
    engine_stop();       /* writes what is left, answers every waiter */
    events_shutdown();
    http_stop();
    engine_close();
    pool_close();
    if (rc == 0)
        log_info("stopped");
out_events:
    static_close();
out:
    free(web_default);
    free(cfg.token);
    return rc;
}
