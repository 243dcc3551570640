/*
 * proc.h - find and kill a process's descendants by the parent links in
 * /proc.  Process groups are not enough: a command can leave its group
 * (setsid, setpgid) and would then survive a kill(-pgid).
 */
#ifndef TASKPOOL_PROC_H
#define TASKPOOL_PROC_H

#include <stdint.h>
#include <sys/types.h>

/*
 * Sends sig to every descendant of root (not to root), walking /proc again
 * until a pass finds none left (up to a few passes), so children forked
 * while we walk are caught too.  Async-signal-safe: raw system calls and
 * stack buffers only, so a signal handler may call it.  Returns the number
 * of processes signalled, or -1 if /proc cannot be read.
 */
int proc_kill_descendants(pid_t root, int sig);

/*
 * Like proc_kill_descendants, but spares the children of root listed in
 * keep (n of them) and their descendants: for a subreaper that inherited
 * strays beside the children it means to keep.  Same return.
 */
int proc_kill_strays(pid_t root, const pid_t *keep, int n, int sig);

/*
 * Sends sig to every process but self whose environment holds the entry
 * marker ("NAME=value") exactly: what an earlier run left behind, found by
 * the mark it gave its workers (their commands inherit it).  Processes of
 * other users are not readable and so not touched.  Not for signal
 * handlers.  Returns how many were signalled, or -1 if /proc cannot be read.
 */
int proc_kill_marked(const char *marker, pid_t self, int sig);

/* What a process tree has used. */
struct proc_usage {
    int64_t user_ms;
    int64_t sys_ms;
    int64_t max_rss_kb;
};

/*
 * Adds up the CPU of pid and of every descendant of it (each one's own and
 * that of the children it reaped) and takes the largest peak resident size
 * (VmHWM) among them: what a run used, read just before the daemon cuts it
 * short.  Not for signal handlers.  Returns 0, or -1 if pid cannot be read.
 */
int proc_usage_tree(pid_t pid, struct proc_usage *out);

#endif
