"""The SQLite record: readable while the daemon runs, the columns the spec lists, integer ms
timestamps, rows committed before the 201, and the workers table."""
import json
import sqlite3
import time

from harness import SHARED_WORKERS, check, eq, parse_time, wait_until, worker_row

TASK_COLUMNS = {"id", "kind", "args", "status", "priority", "attempts", "max_attempts", "timeout_ms",
                "worker_pid", "worker_ppid", "created_at", "started_at", "finished_at", "result", "error"}


def test_sqlite_readable_while_running_with_spec_columns(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "square", "args": {"numbers": [2, 3]}, "priority": 3, "timeout_ms": 9000}, wait=5)
    eq(t["status"], "succeeded", "status")
    eq(d.sql("pragma journal_mode")[0][0], "wal", "journal_mode")
    check(d.sql("pragma user_version")[0][0] >= 1, "PRAGMA user_version not set by the migration")
    cols = {r[1] for r in d.sql("pragma table_xinfo(tasks)")}  # xinfo: generated columns too
    check(TASK_COLUMNS <= cols, "tasks table lacks columns %s" % sorted(TASK_COLUMNS - cols))
    row = d.sql("select kind, args, status, priority, attempts, max_attempts, timeout_ms, worker_pid, "
                "worker_ppid, created_at, started_at, finished_at, result, error, typeof(created_at), "
                "typeof(started_at), typeof(finished_at) from tasks where id = ?", (t["id"],))
    eq(len(row), 1, "rows for task %d" % t["id"])
    (kind, args, status, prio, att, maxatt, tmo, wpid, wppid, c, s, f, result, error, tc, ts, tf) = row[0]
    eq((kind, status, prio, att, maxatt, tmo), ("square", "succeeded", 3, 1, 1, 9000),
       "kind/status/priority/attempts/max_attempts/timeout_ms")
    eq((tc, ts, tf), ("integer", "integer", "integer"), "typeof(created_at, started_at, finished_at)")
    eq((c, s, f), (parse_time(t["created_at"]), parse_time(t["started_at"]), parse_time(t["finished_at"])),
       "timestamps (Unix ms) vs the API")
    check(abs(c - time.time() * 1000) < 60000, "created_at %d is not Unix milliseconds of now" % c)
    eq((wpid, wppid), (t["worker_pid"], t["worker_ppid"]), "worker_pid / worker_ppid")
    eq(json.loads(args), {"numbers": [2, 3]}, "args column")
    eq(json.loads(result), {"results": [4, 9]}, "result column")
    eq(error, None, "error column")
    # a long read transaction does not block the daemon (WAL)
    con = sqlite3.connect("file:%s?mode=ro" % d.db, uri=True, timeout=5, isolation_level=None)
    try:
        con.execute("begin")
        con.execute("select count(*) from tasks").fetchall()
        t2 = d.submit({"kind": "echo", "args": "while reading"}, wait=5)
        eq(t2["status"], "succeeded", "task finished while a reader holds a transaction")
        con.execute("commit")
    finally:
        con.close()
    eq(d.sql("select status from tasks where id = ?", (t2["id"],)), [("succeeded",)], "row of that task")


def test_sqlite_row_committed_before_201(ctx):
    d = ctx.shared()
    con = sqlite3.connect("file:%s?mode=ro" % d.db, uri=True, timeout=5, isolation_level=None)
    try:
        for i in range(25):
            t = d.submit({"kind": "echo", "args": {"n": i}})
            rows = con.execute("select kind, args from tasks where id = ?", (t["id"],)).fetchall()
            check(len(rows) == 1, "task %d answered 201 but is not in SQLite" % t["id"])
            eq((rows[0][0], json.loads(rows[0][1])), ("echo", {"n": i}), "row of task %d" % t["id"])
    finally:
        con.close()
    d.wait_terminal(t["id"])


def test_sqlite_failed_task_records_error(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "fail", "args": {"message": "recorded"}}, wait=5)
    eq(t["status"], "failed", "status")
    (status, error), = d.sql("select status, error from tasks where id = ?", (t["id"],))
    eq(status, "failed", "status column")
    check(error is not None and "recorded" in str(error), "error column lacks the message: %r" % (error,))


def test_sqlite_workers_table_records_workers(ctx):
    d = ctx.shared()
    pids = d.worker_pids()
    eq(len(pids), SHARED_WORKERS, "live workers")
    names = {r[0] for r in d.sql("select name from sqlite_master where type = 'table'")}
    check("workers" in names, "no workers table (tables: %s)" % sorted(names))
    cols = [r[1] for r in d.sql("pragma table_xinfo(workers)")]
    check("pid" in cols, "workers table has no pid column: %s" % cols)
    for want in ("start", "exit", "tasks"):
        check(any(want in c for c in cols), "workers table has no column about %r: %s" % (want, cols))
    recorded = {r[0] for r in d.sql("select pid from workers")}
    check(pids <= recorded, "live workers %s not all recorded in the workers table (%s)"
          % (sorted(pids), sorted(recorded)[:10]))


def test_sqlite_live_workers_tasks_done_follows_within_seconds(ctx):
    d = ctx.daemon(workers=1)
    pid = d.wait_pool(1) and next(iter(d.worker_pids()))
    for i in range(25):
        d.submit({"kind": "echo", "args": i}, wait=5)
    eq(d.workers()["workers"][0]["tasks_done"], 25, "tasks_done in /api/v1/workers")
    # Not only when the worker exits: a kill -9 of the daemon would leave 0 there.
    wait_until(lambda: worker_row(d, pid)["tasks_done"] == 25, 4,
               "the workers row of live worker %d to say 25 tasks done" % pid)
    eq(worker_row(d, pid)["exited_at"], None, "exited_at of the live worker")
