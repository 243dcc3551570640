/*
 * proc.c - kill a process's descendants via /proc (see proc.h).
 *
 * Written for signal handlers: no stdio, no malloc, no locale; /proc is read
 * with open/getdents64/read into buffers on the stack.
 */
#include "proc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PROC_MAX    4096     /* processes considered in one pass */
#define PROC_PASSES 4

struct proc_dirent64 {
    uint64_t       d_ino;
    int64_t        d_off;
    unsigned short d_reclen;
    unsigned char  d_type;
    char           d_name[];
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

/* The parent of pid from /proc/pid/stat; -1 if gone or unreadable, -2 for a zombie. */
static pid_t proc_ppid(pid_t pid)
{
    char path[32] = "/proc/", digits[16], buf[512];
    int n = 0, len = 6, fd;
    ssize_t got;
    char *p = NULL;

    do {
        digits[n++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid > 0);
    while (n > 0)
        path[len++] = digits[--n];
    for (const char *s = "/stat"; *s; s++)
        path[len++] = *s;
    path[len] = '\0';
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0)
        return -1;
    buf[got] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
    for (char *s = buf; *s; s++)
        if (*s == ')')
            p = s;
    if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[3] != ' ')
        return -1;
    if (p[2] == 'Z')
        return -2;   /* dead already: nothing to kill, no children left */
    p += 4;
    long v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    return (pid_t)v;
}

/* One pass: signals the descendants of root seen now, but for the subtrees
 * of the children in keep.  Returns how many, or -1. */
static int proc_pass(pid_t root, const pid_t *keep, int nkeep, int sig)
{
    pid_t pids[PROC_MAX], ppids[PROC_MAX];
    bool mark[PROC_MAX];
    char buf[8192];
    int n = 0, fd, hit = 0;
    long got;
    bool grew;

    fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < got && n < PROC_MAX;) {
            struct proc_dirent64 *d = (struct proc_dirent64 *)(buf + off);
            pid_t pid = proc_parse_pid(d->d_name);
            off += d->d_reclen;
            if (pid <= 0 || pid == root)
                continue;
            pids[n] = pid;
            ppids[n] = proc_ppid(pid);
            mark[n] = false;
            n++;
        }
    }
    close(fd);
    /* Mark the children of root, then their children, until nothing changes. */
    do {
        grew = false;
        for (int i = 0; i < n; i++) {
            if (mark[i])
                continue;
            bool child = ppids[i] == root;
            for (int k = 0; child && k < nkeep; k++)
                child = pids[i] != keep[k];
            for (int k = 0; !child && k < n; k++)
                child = mark[k] && pids[k] == ppids[i];
            if (child) {
                mark[i] = true;
                grew = true;
            }
        }
    } while (grew);
    for (int i = 0; i < n; i++)
        if (mark[i] && kill(pids[i], sig) == 0)
            hit++;
    return hit;
}

int proc_kill_descendants(pid_t root, int sig)
{
    return proc_kill_strays(root, NULL, 0, sig);
}

int proc_kill_strays(pid_t root, const pid_t *keep, int n, int sig)
{
    int total = 0;

    for (int pass = 0; pass < PROC_PASSES; pass++) {
        int hit = proc_pass(root, keep, n, sig);
        if (hit < 0)
            return pass == 0 ? -1 : total;
        if (hit == 0)
            break;
        total += hit;
    }
    return total;
}
