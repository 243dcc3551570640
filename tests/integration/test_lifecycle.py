"""Stopping and crashing: graceful SIGTERM/SIGINT, the shutdown grace, kill -9 and restart."""
import os
import signal
import threading
import time
import uuid

from harness import (SLOW, between, check, check_error, describe, eq, proc_alive, procs_with_env,
                     wait_until)
from harness import db_rows as _rows


def test_sigterm_finishes_running_task_503s_new_ones_keeps_queue(ctx):
    d = ctx.daemon("--shutdown-grace", "10", workers=1)
    d.wait_pool(1)
    a = d.submit({"kind": "sleep", "args": {"seconds": 1.5}})
    d.wait_status(a["id"], "running")
    b = d.submit({"kind": "echo", "args": "b"})
    c = d.submit({"kind": "echo", "args": "c"})
    eq((d.task(b["id"])["status"], d.task(c["id"])["status"]), ("queued", "queued"), "b, c before SIGTERM")
    workers = d.worker_pids()
    waiter = {}

    def wait_on_b():   # a long-poll on a queued task must be answered, not cut, by the shutdown
        try:
            waiter["r"] = d.get(b["id"], wait=60)
        except AssertionError as e:
            waiter["r"] = e
    th = threading.Thread(target=wait_on_b, daemon=True)
    th.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    time.sleep(0.25)
    check(d.running(), "daemon exited at once on SIGTERM instead of finishing the running task")
    r = d.post({"kind": "echo", "args": "late"})
    check_error(r, 503, "shutting_down")
    check_error(d.request("GET", "/healthz"), 503, "shutting_down")
    rc = d.wait_exit(10)
    elapsed = time.monotonic() - t0
    check(rc is not None, "daemon still running 10s after SIGTERM")
    eq(rc, 0, "exit status after SIGTERM")
    check(elapsed >= 1.2, "daemon exited %.2fs after SIGTERM, before the 1.5 s task could finish" % elapsed)
    left = d.wait_no_leftovers(3)
    check(not left, "processes left after SIGTERM: %s" % describe(left))
    check(not any(proc_alive(w) for w in workers), "a worker survived: %s" % workers)
    th.join(2)
    w = waiter.get("r")
    check(w is not None, "the GET ?wait=60 waiter got no answer by the time the daemon exited")
    check(not isinstance(w, AssertionError), "the GET ?wait=60 waiter: %s" % w)
    check((w.status == 200 and w.json["status"] == "queued") or w.status == 503,
          "the GET ?wait=60 waiter: expected 200 with the queued task (or 503), got %r" % w)
    rows = _rows(d.db, "select id, status, attempts, started_at from tasks order by id")
    eq(len(rows), 3, "rows in tasks (the 503'd POST must not create one)")
    eq(rows[0][:3], (a["id"], "succeeded", 1), "running task finished within the grace")
    eq([r[:4] for r in rows[1:]], [(b["id"], "queued", 0, None), (c["id"], "queued", 0, None)],
       "queued tasks stay queued")
    wal = d.db + "-wal"
    check(not os.path.exists(wal) or os.path.getsize(wal) == 0,
          "database not closed cleanly: %s has %d bytes" % (wal, os.path.getsize(wal) if os.path.exists(wal) else 0))
    # the next start runs them
    d2 = ctx.daemon(workers=1, db=d.db, name="restarted daemon")
    for t, arg in ((b, "b"), (c, "c")):
        g = d2.wait_terminal(t["id"], 5)
        eq((g["status"], g["result"], g["attempts"]), ("succeeded", arg, 1), "task %s after restart" % arg)
    g = d2.task(a["id"])
    eq((g["status"], g["attempts"], g["result"]), ("succeeded", 1, {"slept": 1.5}), "task a after restart")


def test_sigterm_kills_running_task_after_shutdown_grace(ctx):
    d = ctx.daemon("--shutdown-grace", "1", "--allow-exec", workers=2)
    a = d.submit({"kind": "sleep", "args": {"seconds": 30}})
    a = d.wait_status(a["id"], "running")
    w = a["worker_pid"]
    mark = "TP_MARK=%s" % uuid.uuid4().hex
    k, v = mark.split("=")
    x = d.submit({"kind": "exec", "args": {"argv": ["/bin/sh", "-c", "sleep 100 & sleep 100"], "env": {k: v}}})
    d.wait_status(x["id"], "running")
    wait_until(lambda: len(procs_with_env(mark)) >= 2, 5, "the exec command to run")
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(8)
    elapsed = time.monotonic() - t0
    check(rc is not None, "daemon still running 8s after SIGTERM with --shutdown-grace 1")
    eq(rc, 0, "exit status")
    between(elapsed, 0.9, 4 * SLOW, "seconds from SIGTERM to exit with --shutdown-grace 1")
    wait_until(lambda: not proc_alive(w), 3, "worker %d to die" % w)
    left = d.wait_no_leftovers(3)
    check(not left, "processes left: %s" % describe(left))
    check(not procs_with_env(mark), "the exec command survives the shutdown: %s" % describe(procs_with_env(mark)))
    d2 = ctx.daemon(workers=1, db=d.db, name="restarted daemon")
    for t in (a, x):
        g = d2.wait_terminal(t["id"], 5)
        eq((g["status"], g["attempts"]), ("failed", 1), "%s task killed at shutdown (max_attempts 1) after restart"
           % t["kind"])
        check(g["error"] is not None, "error of the killed task is null")


def test_sigint_stops_like_sigterm(ctx):
    d = ctx.daemon(workers=2)
    d.wait_pool(2)
    eq(d.submit({"kind": "echo"}, wait=5)["status"], "succeeded", "echo")
    d.signal(signal.SIGINT)
    rc = d.wait_exit(5)
    check(rc is not None, "daemon still running 5s after SIGINT")
    eq(rc, 0, "exit status after SIGINT")
    left = d.wait_no_leftovers(3)
    check(not left, "processes left: %s" % describe(left))


def test_kill9_daemon_then_restart_nothing_lost_no_orphans(ctx):
    d = ctx.daemon("--allow-exec", workers=3)
    d.wait_pool(3)
    mark = "TP_MARK=%s" % uuid.uuid4().hex
    k, v = mark.split("=")
    r1 = d.submit({"kind": "sleep", "args": {"seconds": 1.5}, "max_attempts": 2})
    r2 = d.submit({"kind": "sleep", "args": {"seconds": 30}})
    r3 = d.submit({"kind": "exec", "args": {"argv": ["/bin/sh", "-c", "sleep 100 & sleep 100"], "env": {k: v}}})
    for t in (r1, r2, r3):
        d.wait_status(t["id"], "running")
    qs = [d.submit({"kind": "echo", "args": {"q": i}}) for i in range(3)]
    for q in qs:
        eq(d.task(q["id"])["status"], "queued", "queued task before the crash")
    wait_until(lambda: len(procs_with_env(mark)) >= 2, 5, "the exec command to run")
    d.worker_pids()
    workers = set(d.known_pids)
    d.signal(signal.SIGKILL)
    eq(d.wait_exit(5), -9, "daemon status after SIGKILL")
    left = d.wait_no_leftovers(3)
    check(not left, "processes survive kill -9 of the daemon: %s" % describe(left))
    check(not procs_with_env(mark), "the exec command survives kill -9 of the daemon: %s"
          % describe(procs_with_env(mark)))
    check(not any(proc_alive(w) for w in workers), "a worker survives: %s" % sorted(workers))
    d2 = ctx.daemon("--allow-exec", workers=3, db=d.db, name="restarted daemon")
    g = d2.wait_terminal(r1["id"], 8)
    eq((g["status"], g["attempts"], g["result"]), ("succeeded", 2, {"slept": 1.5}),
       "running task with attempts left: re-run")
    for t in (r2, r3):
        g = d2.wait_terminal(t["id"], 5)
        eq((g["status"], g["attempts"], g["error"]["code"] if g["error"] else None), ("failed", 1, "interrupted"),
           "running task %d (%s) without attempts left" % (t["id"], t["kind"]))
    for i, q in enumerate(qs):
        g = d2.wait_terminal(q["id"], 5)
        eq((g["status"], g["result"], g["attempts"]), ("succeeded", {"q": i}, 1), "queued task %d" % i)
    n = d2.submit({"kind": "echo"}, wait=5)
    check(n["id"] > max(q["id"] for q in qs), "id %d reused after restart (max before %d)"
          % (n["id"], max(q["id"] for q in qs)))
    eq(len(d2.list("limit=500")["tasks"]), 7, "tasks after restart")
    check(not procs_with_env(mark), "the exec command is running again after restart")


def test_restart_on_same_db_keeps_history(ctx):
    d = ctx.daemon(workers=1)
    t = d.submit({"kind": "square", "args": {"numbers": [7]}}, wait=5)
    rc, forced = d.stop()
    check(not forced and rc == 0, "SIGTERM: rc=%s forced=%s" % (rc, forced))
    d2 = ctx.daemon(workers=1, db=d.db, name="restarted daemon")
    g = d2.task(t["id"])
    g.pop("usage"), t.pop("usage")
    eq(g, t, "task (without usage) after a restart")
    n = d2.submit({"kind": "echo"}, wait=5)["id"]
    check(n > t["id"], "new id %d after restart is not above %d" % (n, t["id"]))


def _cpu_ticks(pid):
    """utime + stime of pid, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_daemon_idles_while_it_waits_out_the_shutdown_grace(ctx):
    d = ctx.daemon("--shutdown-grace", "30", workers=2)
    d.wait_pool(2)
    a = d.submit({"kind": "sleep", "args": {"seconds": 2.5}})
    d.wait_status(a["id"], "running")
    d.signal(signal.SIGTERM)
    time.sleep(0.3)   # the idle worker is told to exit; the busy one keeps running
    t0, c0 = time.monotonic(), _cpu_ticks(d.proc.pid)
    time.sleep(1.5)
    used = (_cpu_ticks(d.proc.pid) - c0) / os.sysconf("SC_CLK_TCK")
    wall = time.monotonic() - t0
    check(used < 0.1 * wall * SLOW, "the stopping daemon used %.2f s of CPU in %.2f s of grace (a busy loop)"
          % (used, wall))
    eq(d.wait_exit(10), 0, "exit status once the task finished")
    eq(d.sql("select status from tasks where id = ?", (a["id"],)), [("succeeded",)], "the task finished in the grace")


def test_second_daemon_on_the_same_db_is_refused_and_changes_nothing(ctx):
    from harness import run_cli
    d = ctx.daemon(workers=1)
    a = d.submit({"kind": "sleep", "args": {"seconds": 1}})
    d.wait_status(a["id"], "running")
    b = d.submit({"kind": "echo", "args": "b"})
    rc, out, err = run_cli(ctx.tmp, ["--listen", "127.0.0.1:0", "--db", d.db, "--workers", "1"], seconds=5)
    check(rc is not None and rc > 0, "second daemon on %s: exit status %s, expected > 0" % (d.db, rc))
    check("in use by another taskpoold" in err, "second daemon's message: %r" % err[-300:])
    check("recover" not in err and "interrupted" not in err, "the second daemon touched the tasks: %r" % err)
    g = d.wait_terminal(a["id"], 5)
    eq((g["status"], g["attempts"], g["error"]), ("succeeded", 1, None), "the running task of the first daemon")
    g = d.wait_terminal(b["id"], 5)
    eq((g["status"], g["attempts"], g["result"]), ("succeeded", 1, "b"), "the queued task of the first daemon")
    eq(d.sql("select count(*) from workers where exit_reason = 'lost'"), [(0,)], "workers marked lost")
