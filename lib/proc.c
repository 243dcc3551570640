/*
 * proc.c - kill a process's descendants via /proc, or add up what they used
 * (see proc.h).
 *
 * The killing is written for signal handlers: no stdio, no malloc, no
 * locale; /proc is read with open/getdents64/read into buffers on the stack.
 *
 * One pass reads every process's parent into a table sorted by pid, then
 * decides for each process whether root is among its ancestors by walking
 * the parent links through the table (binary search), remembering each
 * verdict so that every link is followed once: O(n log n) for n processes
 * on the host, which matters because a pass runs after every exec task.
 * Processes beyond the table's size (a host with more than PROC_MAX) are not
 * skipped: their ancestry is read from /proc link by link, slower but whole.
 */
#include "proc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PROC_MAX              /* tests make it small, to exercise the overflow */
#define PROC_MAX    16384    /* processes one pass keeps in its table (~150 KiB of stack) */
#endif
#define PROC_DEPTH  256      /* ancestors followed before giving up on a chain */
#define PROC_PASSES 4

enum { PROC_UNKNOWN = 0, PROC_BELOW, PROC_OUTSIDE };

struct proc_dirent64 {
    uint64_t       d_ino;
    int64_t        d_off;
    unsigned short d_reclen;
    unsigned char  d_type;
    char           d_name[];
};

struct proc_table {
    int           n;
    pid_t         pid[PROC_MAX];
    pid_t         ppid[PROC_MAX];      /* -1 gone or unreadable, -2 zombie */
    unsigned char verdict[PROC_MAX];
};

/* What one pass is about: root's descendants, but for the subtrees in keep. */
struct proc_scope {
    pid_t        root;
    const pid_t *keep;
    int          nkeep;
};

/* A decimal pid, or -1 if s is not one. */
static pid_t proc_parse_pid(const char *s)
{
    long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 1L << 30)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return (pid_t)v;
}

/* The pids in /proc, read through a buffer on the stack. */
struct proc_dir {
    int  fd;
    long got, off;
    char buf[8192];
};

static int proc_dir_open(struct proc_dir *d)
{
    d->got = d->off = 0;
    d->fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return d->fd < 0 ? -1 : 0;
}

static void proc_dir_rewind(struct proc_dir *d)
{
    d->got = d->off = 0;
    lseek(d->fd, 0, SEEK_SET);
}

/* The next pid in /proc, or 0 at the end. */
static pid_t proc_dir_next(struct proc_dir *d)
{
    for (;;) {
        if (d->off >= d->got) {
            d->got = syscall(SYS_getdents64, d->fd, d->buf, sizeof d->buf);
            d->off = 0;
            if (d->got <= 0)
                return 0;
        }
        struct proc_dirent64 *e = (struct proc_dirent64 *)(d->buf + d->off);
        d->off += e->d_reclen;
        pid_t pid = proc_parse_pid(e->d_name);
        if (pid > 0)
            return pid;
    }
}

/* Reads /proc/pid/name into buf (NUL-terminated).  Bytes read, or -1. */
static ssize_t proc_read(pid_t pid, const char *name, char *buf, size_t size)
{
    char path[64] = "/proc/", digits[16];
    int n = 0, len = 6, fd;
    ssize_t got;

    do {
        digits[n++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid > 0);
    while (n > 0)
        path[len++] = digits[--n];
    path[len++] = '/';
    for (const char *s = name; *s && len < (int)sizeof path - 1; s++)
        path[len++] = *s;
    path[len] = '\0';
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    got = read(fd, buf, size - 1);
    close(fd);
    if (got <= 0)
        return -1;
    buf[got] = '\0';
    return got;
}

/* The fields after "pid (comm) " in a stat line: comm may hold spaces and ')'. */
static char *proc_stat_fields(char *buf)
{
    char *p = NULL;

    for (char *s = buf; *s; s++)
        if (*s == ')')
            p = s;
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return NULL;
    return p + 2;
}

/* The parent of pid from /proc/pid/stat; -1 if gone or unreadable, -2 for a zombie. */
static pid_t proc_ppid(pid_t pid)
{
    char buf[512], *p;

    if (proc_read(pid, "stat", buf, sizeof buf) < 0 || (p = proc_stat_fields(buf)) == NULL ||
        p[1] != ' ')
        return -1;
    if (p[0] == 'Z')
        return -2;   /* dead already: nothing to kill, no children left */
    p += 2;
    long v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    return (pid_t)v;
}

static bool proc_kept(const struct proc_scope *sc, pid_t pid)
{
    for (int k = 0; k < sc->nkeep; k++)
        if (sc->keep[k] == pid)
            return true;
    return false;
}

/* Index of pid in the sorted table, or -1. */
static int proc_find(const struct proc_table *t, pid_t pid)
{
    int lo = 0, hi = t->n - 1;

    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (t->pid[mid] == pid)
            return mid;
        if (t->pid[mid] < pid)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static void proc_swap(struct proc_table *t, int a, int b)
{
    pid_t p = t->pid[a], pp = t->ppid[a];

    t->pid[a] = t->pid[b];
    t->ppid[a] = t->ppid[b];
    t->pid[b] = p;
    t->ppid[b] = pp;
}

static void proc_sift(struct proc_table *t, int i, int n)
{
    for (;;) {
        int big = i, l = 2 * i + 1, r = l + 1;
        if (l < n && t->pid[l] > t->pid[big])
            big = l;
        if (r < n && t->pid[r] > t->pid[big])
            big = r;
        if (big == i)
            return;
        proc_swap(t, i, big);
        i = big;
    }
}

/* Heapsort by pid: /proc usually lists pids in order, but nothing promises it. */
static void proc_sort(struct proc_table *t)
{
    bool sorted = true;

    for (int i = 1; i < t->n && sorted; i++)
        sorted = t->pid[i - 1] < t->pid[i];
    if (sorted)
        return;
    for (int i = t->n / 2 - 1; i >= 0; i--)
        proc_sift(t, i, t->n);
    for (int end = t->n - 1; end > 0; end--) {
        proc_swap(t, 0, end);
        proc_sift(t, 0, end);
    }
}

/* Like proc_below for a process not in the table: the links are read from /proc. */
static bool proc_below_untabled(const struct proc_table *t, const struct proc_scope *sc,
                                pid_t pid)
{
    for (int depth = 0; depth < PROC_DEPTH; depth++) {
        pid_t parent = proc_ppid(pid);
        if (parent == sc->root)
            return !proc_kept(sc, pid);
        if (parent <= 1)
            return false;
        int at = proc_find(t, parent);
        if (at >= 0 && t->verdict[at] != PROC_UNKNOWN)
            return t->verdict[at] == PROC_BELOW;
        pid = parent;
    }
    return false;
}

/*
 * Whether the process at index i is below root (outside the kept
 * subtrees), following parent links through the table and recording the
 * verdict on every process of the chain.
 */
static bool proc_below(struct proc_table *t, const struct proc_scope *sc, int i)
{
    int chain[PROC_DEPTH], len = 0, at = i;
    unsigned char v = PROC_OUTSIDE;

    while (at >= 0 && len < PROC_DEPTH) {
        if (t->verdict[at] != PROC_UNKNOWN) {
            v = t->verdict[at];
            break;
        }
        chain[len++] = at;
        pid_t parent = t->ppid[at];
        if (parent == sc->root) {
            v = proc_kept(sc, t->pid[at]) ? PROC_OUTSIDE : PROC_BELOW;
            break;
        }
        if (parent <= 1)
            break;                 /* init, the kernel, a zombie, or gone */
        at = proc_find(t, parent);
        if (at < 0 && t->n == PROC_MAX) {
            /* A full table: the parent may be one that did not fit (after
             * pids wrap, a child's pid can be lower than its parent's). */
            v = proc_below_untabled(t, sc, parent) ? PROC_BELOW : PROC_OUTSIDE;
            break;
        }
    }
    while (len > 0)
        t->verdict[chain[--len]] = v;
    return v == PROC_BELOW;
}

/*
 * One pass: calls visit for each descendant of sc->root seen now.  Returns
 * how many visits returned true, or -1.
 */
static int proc_pass(const struct proc_scope *sc, bool (*visit)(pid_t pid, void *arg), void *arg)
{
    struct proc_table t;
    struct proc_dir d;
    int hit = 0;
    pid_t pid;

    t.n = 0;
    if (proc_dir_open(&d) < 0)
        return -1;
    while (t.n < PROC_MAX && (pid = proc_dir_next(&d)) > 0) {
        if (pid == sc->root)
            continue;
        t.pid[t.n] = pid;
        t.ppid[t.n] = proc_ppid(pid);
        t.verdict[t.n] = PROC_UNKNOWN;
        t.n++;
    }
    proc_sort(&t);
    for (int i = 0; i < t.n; i++)
        if (proc_below(&t, sc, i) && visit(t.pid[i], arg))
            hit++;
    /* Whatever did not fit: read the directory again, skipping what is in the table. */
    if (t.n == PROC_MAX) {
        proc_dir_rewind(&d);
        while ((pid = proc_dir_next(&d)) > 0)
            if (pid != sc->root && proc_find(&t, pid) < 0 && proc_below_untabled(&t, sc, pid) &&
                visit(pid, arg))
                hit++;
    }
    close(d.fd);
    return hit;
}

static bool proc_signal(pid_t pid, void *arg)
{
    return kill(pid, *(const int *)arg) == 0;
}

int proc_kill_descendants(pid_t root, int sig)
{
    return proc_kill_strays(root, NULL, 0, sig);
}

int proc_kill_strays(pid_t root, const pid_t *keep, int n, int sig)
{
    struct proc_scope sc = { root, keep, n };
    int total = 0;

    for (int pass = 0; pass < PROC_PASSES; pass++) {
        int hit = proc_pass(&sc, proc_signal, &sig);
        if (hit < 0)
            return pass == 0 ? -1 : total;
        if (hit == 0)
            break;
        total += hit;
    }
    return total;
}

/* The n-th (from 1) space-separated field of a stat line's tail, as a number. */
static int64_t proc_stat_field(const char *fields, int n)
{
    int64_t v = 0;

    for (int i = 1; i < n && *fields; fields++)
        if (*fields == ' ')
            i++;
    while (*fields >= '0' && *fields <= '9')
        v = v * 10 + (*fields++ - '0');
    return v;
}

/* Adds pid's CPU and peak to u.  False if pid cannot be read. */
static bool proc_add_usage(pid_t pid, void *arg)
{
    struct proc_usage *u = arg;
    static long tick_ms;
    char buf[2048], *f;

    if (tick_ms == 0)
        tick_ms = 1000 / sysconf(_SC_CLK_TCK);
    if (proc_read(pid, "stat", buf, sizeof buf) < 0 || (f = proc_stat_fields(buf)) == NULL)
        return false;
    /* After "(comm) ": state is 1, utime 12, stime 13, cutime 14, cstime 15. */
    u->user_ms += (proc_stat_field(f, 12) + proc_stat_field(f, 14)) * tick_ms;
    u->sys_ms += (proc_stat_field(f, 13) + proc_stat_field(f, 15)) * tick_ms;
    if (proc_read(pid, "status", buf, sizeof buf) > 0 && (f = strstr(buf, "\nVmHWM:")) != NULL) {
        int64_t kb = strtoll(f + 7, NULL, 10);
        if (kb > u->max_rss_kb)
            u->max_rss_kb = kb;
    }
    return true;
}

int proc_usage_tree(pid_t pid, struct proc_usage *out)
{
    struct proc_scope sc = { pid, NULL, 0 };

    memset(out, 0, sizeof *out);
    if (!proc_add_usage(pid, out))
        return -1;
    return proc_pass(&sc, proc_add_usage, out) < 0 ? -1 : 0;
}

/* True if pid's environment holds the entry marker (len bytes, no NUL). */
static bool proc_has_entry(pid_t pid, const char *marker, size_t len)
{
    static char env[256 * 1024];   /* enough for any ordinary environment */
    ssize_t n = proc_read(pid, "environ", env, sizeof env);

    for (ssize_t at = 0; n > 0 && at < n;) {
        const char *entry = env + at;
        size_t elen = strnlen(entry, (size_t)(n - at));
        if (elen == len && memcmp(entry, marker, len) == 0)
            return true;
        at += (ssize_t)elen + 1;
    }
    return false;
}

int proc_kill_marked(const char *marker, pid_t self, int sig)
{
    struct proc_dir d;
    size_t len = strlen(marker);
    int hit = 0;
    pid_t pid;

    if (proc_dir_open(&d) < 0)
        return -1;
    while ((pid = proc_dir_next(&d)) > 0)
        if (pid != self && proc_has_entry(pid, marker, len) && kill(pid, sig) == 0)
            hit++;
    close(d.fd);
    return hit;
}
