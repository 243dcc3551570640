/*
 * exec.c - runs a command for the `exec` kind.
 *
 * Runs in a worker process, which is single-threaded, so fork() here is safe.
 * The child reports a failed execvp through a close-on-exec pipe, so "no such
 * command" is a clear task error rather than exit code 127 from nowhere.
 * stdin, stdout and stderr are pumped by one poll loop so that a command that
 * writes a lot to both streams, or reads stdin slowly, can never deadlock us.
 */
#include "exec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kinds.h"
#include "proc.h"
#include "utf8.h"

#define EXEC_ARGV_MAX 4096

/* What the child was doing when it gave up, reported with errno before exec. */
enum exec_step { EXEC_STEP_NONE = 0, EXEC_STEP_SETUP, EXEC_STEP_CWD, EXEC_STEP_ENV, EXEC_STEP_EXEC };
struct exec_failure { int step; int err; };

int exec_validate(const cJSON *args, char *msg, size_t size)
{
    static const char *const fields[] = { "argv", "stdin", "env", "cwd", NULL };
    const cJSON *argv, *f;
    int i = 0;

    if (!cJSON_IsObject(args)) {
        snprintf(msg, size, "field 'args' must be an object");
        return -1;
    }
    if (kind_only_fields(args, fields, "args.", msg, size) < 0)
        return -1;
    argv = cJSON_GetObjectItemCaseSensitive(args, "argv");
    if (!cJSON_IsArray(argv) || cJSON_GetArraySize(argv) == 0) {
        snprintf(msg, size, "field 'args.argv' must be a non-empty array of strings");
        return -1;
    }
    if (cJSON_GetArraySize(argv) > EXEC_ARGV_MAX) {
        snprintf(msg, size, "field 'args.argv' has %d strings: at most %d",
                 cJSON_GetArraySize(argv), EXEC_ARGV_MAX);
        return -1;
    }
    cJSON_ArrayForEach(f, argv) {
        if (!cJSON_IsString(f) || (i == 0 && f->valuestring[0] == '\0')) {
            snprintf(msg, size, "field 'args.argv[%d]' must be a%s string", i,
                     i == 0 ? " non-empty" : "");
            return -1;
        }
        i++;
    }
    f = cJSON_GetObjectItemCaseSensitive(args, "stdin");
    if (f != NULL && !cJSON_IsString(f)) {
        snprintf(msg, size, "field 'args.stdin' must be a string");
        return -1;
    }
    f = cJSON_GetObjectItemCaseSensitive(args, "cwd");
    if (f != NULL && (!cJSON_IsString(f) || f->valuestring[0] == '\0')) {
        snprintf(msg, size, "field 'args.cwd' must be a non-empty string");
        return -1;
    }
    f = cJSON_GetObjectItemCaseSensitive(args, "env");
    if (f != NULL) {
        const cJSON *v;
        if (!cJSON_IsObject(f)) {
            snprintf(msg, size, "field 'args.env' must be an object of strings");
            return -1;
        }
        cJSON_ArrayForEach(v, f) {
            if (!cJSON_IsString(v) || v->string[0] == '\0' || strchr(v->string, '=') != NULL) {
                snprintf(msg, size, "field 'args.env.%.64s' must be a string with a name "
                         "without '='", v->string);
                return -1;
            }
            /* TASKPOOL_DB marks what taskpool started (see proc_kill_marked). */
            if (strncmp(v->string, "TASKPOOL_", 9) == 0) {
                snprintf(msg, size, "field 'args.env.%.64s': names starting with TASKPOOL_ are "
                         "taskpool's own", v->string);
                return -1;
            }
        }
    }
    return 0;
}

/* Captured output of one stream. */
struct exec_stream {
    int    fd;
    char  *buf;
    size_t len;
    size_t cap;                    /* the limit: bytes beyond it are read and dropped */
    bool   truncated;
};

/* Reads what is there.  Returns 1 while open, 0 at EOF. */
static int exec_stream_read(struct exec_stream *s)
{
    char tmp[65536];
    ssize_t n = read(s->fd, tmp, sizeof tmp);

    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (n == 0)
        return 0;
    size_t keep = (size_t)n;
    if (s->len + keep > s->cap) {
        keep = s->cap - s->len;
        s->truncated = true;
    }
    memcpy(s->buf + s->len, tmp, keep);
    s->len += keep;
    return 1;
}

/* In the child: wire the pipes, apply cwd and env, exec.  Never returns. */
static void exec_child(char **argv, const cJSON *env, const char *cwd, int in, int out,
                       int err, int report, pid_t worker)
{
    struct exec_failure f = { EXEC_STEP_SETUP, 0 };
    const cJSON *v;

    /* The command dies with its worker even if the worker's end comes too
     * suddenly for anyone to kill it (the daemon, which would, may be gone
     * too).  Its own children are left to the subreapers and, failing those,
     * to the next start of taskpoold (proc_kill_marked). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != worker)
        goto fail;
    /* The worker ignores or catches some signals; the command gets defaults. */
    sigset_t none;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        dup2(err, STDERR_FILENO) < 0)
        goto fail;
    /* Nothing else of the worker may reach the command (its channel least of
     * all).  CLOEXEC rather than close keeps the report pipe until exec. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        goto fail;
    f.step = EXEC_STEP_CWD;
    if (cwd != NULL && chdir(cwd) < 0)
        goto fail;
    f.step = EXEC_STEP_ENV;
    cJSON_ArrayForEach(v, env) {
        if (setenv(v->string, v->valuestring, 1) < 0)
            goto fail;
    }
    f.step = EXEC_STEP_EXEC;
    execvp(argv[0], argv);
fail:
    f.err = errno;
    (void)!write(report, &f, sizeof f);
    _exit(127);
}

/*
 * A task's processes end with the task: whatever the command left running
 * (background jobs, daemons it forked, even with setsid: the worker is a
 * subreaper, so they are still below it) is killed and reaped, waiting at
 * most about 100 ms for the dead; any zombie left is reaped next time.
 */
static void exec_reap_leftovers(void)
{
    struct timespec ms = { 0, 1000000L };
    pid_t pid;

    if (proc_kill_descendants(getpid(), SIGKILL) == 0) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        return;
    }
    for (int i = 0; i < 100; i++) {
        while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
            ;
        if (pid < 0)            /* ECHILD: none left */
            return;
        nanosleep(&ms, NULL);
    }
}

static int exec_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC);
}

/* Fills out with a failure to start the command.  0 / -1 (ENOMEM). */
static int exec_fail(struct kind_outcome *out, const char *what, const char *name, int err)
{
    char msg[400];

    snprintf(msg, sizeof msg, "%s '%.200s': %s", what, name, strerror(err));
    out->ok = false;
    out->error_code = strdup("exec_failed");
    out->error_message = strdup(msg);
    return out->error_code && out->error_message ? 0 : -1;
}

/* The failure the child reported, as exec_fail would word it. */
static int exec_fail_child(struct kind_outcome *out, const struct exec_failure *f,
                           char *const *argv, const char *cwd)
{
    switch (f->step) {
    case EXEC_STEP_CWD:  return exec_fail(out, "cannot change to directory", cwd, f->err);
    case EXEC_STEP_EXEC: return exec_fail(out, "cannot run", argv[0], f->err);
    case EXEC_STEP_ENV:  return exec_fail(out, "cannot set the environment of", argv[0], f->err);
    default:             return exec_fail(out, "cannot prepare the process for", argv[0], f->err);
    }
}

/* The exec result object of a command that ran.  NULL on ENOMEM. */
static cJSON *exec_result(int status, const struct exec_stream *so, const struct exec_stream *se)
{
    cJSON *r = cJSON_CreateObject();
    char *out_text = utf8_sanitize(so->buf, so->len), *err_text = utf8_sanitize(se->buf, se->len);
    bool ok = r != NULL && out_text != NULL && err_text != NULL &&
              (WIFEXITED(status) ? cJSON_AddNumberToObject(r, "exit_code", WEXITSTATUS(status))
                                 : cJSON_AddNullToObject(r, "exit_code")) &&
              (WIFSIGNALED(status) ? cJSON_AddNumberToObject(r, "signal", WTERMSIG(status))
                                   : cJSON_AddNullToObject(r, "signal")) &&
              cJSON_AddStringToObject(r, "stdout", out_text) &&
              cJSON_AddStringToObject(r, "stderr", err_text) &&
              cJSON_AddBoolToObject(r, "truncated", so->truncated || se->truncated);

    free(out_text);
    free(err_text);
    if (!ok) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

int exec_run(const cJSON *args, const struct kind_limits *lim, struct kind_outcome *out)
{
    const cJSON *argv_json = cJSON_GetObjectItemCaseSensitive(args, "argv");
    const cJSON *stdin_json = cJSON_GetObjectItemCaseSensitive(args, "stdin");
    const cJSON *cwd_json = cJSON_GetObjectItemCaseSensitive(args, "cwd");
    const cJSON *env_json = cJSON_GetObjectItemCaseSensitive(args, "env");
    const char *input = cJSON_IsString(stdin_json) ? stdin_json->valuestring : "";
    const char *cwd = cJSON_IsString(cwd_json) ? cwd_json->valuestring : NULL;
    size_t input_len = strlen(input), input_off = 0;
    int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, prep[2] = { -1, -1 };
    struct exec_stream so = { -1, NULL, 0, lim->max_output, false };
    struct exec_stream se = { -1, NULL, 0, lim->max_output, false };
    struct exec_failure failure = { EXEC_STEP_NONE, 0 };
    char **argv = NULL;
    pid_t pid = -1;
    int argc = cJSON_GetArraySize(argv_json), i = 0, status = 0, rc = -1;
    int pidfd = -1;
    struct rusage ru;
    const cJSON *a;
    cJSON *r = NULL;
    char msg[300];

    argv = calloc((size_t)argc + 1, sizeof *argv);
    so.buf = malloc(lim->max_output + 1);
    se.buf = malloc(lim->max_output + 1);
    if (argv == NULL || so.buf == NULL || se.buf == NULL)
        goto done;
    cJSON_ArrayForEach(a, argv_json)
        argv[i++] = a->valuestring;

    pid_t worker = getpid();
    if (exec_pipe(pin) < 0 || exec_pipe(pout) < 0 || exec_pipe(perr) < 0 ||
        exec_pipe(prep) < 0 || (pid = fork()) < 0) {
        rc = exec_fail(out, "cannot start", argv[0], errno);
        goto done;
    }
    if (pid == 0)
        exec_child(argv, env_json, cwd, pin[0], pout[1], perr[1], prep[1], worker);

    close(pin[0]); pin[0] = -1;
    close(pout[1]); pout[1] = -1;
    close(perr[1]); perr[1] = -1;
    close(prep[1]); prep[1] = -1;
    /* Blocks only until exec succeeds (EOF) or fails (what failed, errno). */
    while (read(prep[0], &failure, sizeof failure) < 0 && errno == EINTR)
        ;
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    if (input_len == 0 || failure.err != 0) {
        close(pin[1]);
        pin[1] = -1;
    }
    so.fd = pout[0];
    se.fd = perr[0];
    /* Background jobs of the command inherit its pipes and would hold them
     * open after it exits: watch the command itself too, and when it is gone
     * kill what it left, which closes the pipes. */
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    while (so.fd >= 0 || se.fd >= 0 || pin[1] >= 0) {
        struct pollfd pfd[4] = {
            { so.fd, POLLIN, 0 }, { se.fd, POLLIN, 0 }, { pin[1], POLLOUT, 0 },
            { pidfd, POLLIN, 0 },
        };
        if (poll(pfd, 4, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[3].revents) {
            proc_kill_descendants(getpid(), SIGKILL);   /* the command is a zombie: spared */
            close(pidfd);
            pidfd = -1;
        }
        if (pfd[0].revents && !exec_stream_read(&so)) {
            close(so.fd);
            so.fd = pout[0] = -1;
        }
        if (pfd[1].revents && !exec_stream_read(&se)) {
            close(se.fd);
            se.fd = perr[0] = -1;
        }
        if (pfd[2].revents) {
            ssize_t w = write(pin[1], input + input_off, input_len - input_off);
            if (w > 0)
                input_off += (size_t)w;
            /* EPIPE: the command does not want the rest of its input. */
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || input_off == input_len) {
                close(pin[1]);
                pin[1] = -1;
            }
        }
    }
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            rc = exec_fail(out, "cannot wait for", argv[0], errno);
            goto done;
        }
    }
    out->child_max_rss_kb = ru.ru_maxrss;
    exec_reap_leftovers();
    if (failure.err != 0) {
        rc = exec_fail_child(out, &failure, argv, cwd);
        goto done;
    }
    r = exec_result(status, &so, &se);
    out->result = r != NULL ? cJSON_PrintUnformatted(r) : NULL;
    if (out->result == NULL)
        goto done;
    out->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!out->ok) {
        if (WIFEXITED(status))
            snprintf(msg, sizeof msg, "command exited with code %d", WEXITSTATUS(status));
        else
            snprintf(msg, sizeof msg, "command was killed by signal %d (%s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
        out->error_code = strdup("exit_status");
        out->error_message = strdup(msg);
        if (out->error_code == NULL || out->error_message == NULL)
            goto done;
    }
    rc = 0;

done:
    if (pidfd >= 0)
        close(pidfd);
    for (int k = 0; k < 2; k++) {
        if (pin[k] >= 0) close(pin[k]);
        if (pout[k] >= 0) close(pout[k]);
        if (perr[k] >= 0) close(perr[k]);
        if (prep[k] >= 0) close(prep[k]);
    }
    cJSON_Delete(r);
    free(argv);
    free(so.buf);
    free(se.buf);
    return rc;
}
