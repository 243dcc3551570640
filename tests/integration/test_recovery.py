"""Recovery and edge paths of stopping and starting: the dispatch journal after kill -9,
queued exec tasks on a restart without --allow-exec, the token kept out of commands'
environment, an oversized chunked body, and timeouts during a graceful stop."""
import json
import os
import signal
import socket
import sqlite3
import struct
import threading
import time

from harness import SLOW, between, check, check_error, describe, eq, proc_alive, short, wait_until
from harness import db_rows as _rows

JOURNAL_MAGIC = 0x4a504b54
JOURNAL_REC = struct.Struct("=qiI")   # int64 id, int32 attempt, uint32 magic; host order, 16 bytes




def _journal(db, n):
    """The records of <db>-dispatch-n as [(id, attempt, magic)], or None if the file is absent."""
    path = "%s-dispatch-%d" % (db, n)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        data = f.read()
    check(len(data) % JOURNAL_REC.size == 0, "%s: %d bytes, not whole records" % (path, len(data)))
    return [JOURNAL_REC.unpack_from(data, i) for i in range(0, len(data), JOURNAL_REC.size)]


def _busy_worker(d):
    """Occupies the only worker with a long sleep; returns that task, running."""
    s = d.submit({"kind": "sleep", "args": {"seconds": 30}})
    return d.wait_status(s["id"], "running")


def _kill9(d):
    """kill -9 of the daemon; checks that no worker (or anything it started) survives."""
    d.worker_pids()
    workers = set(d.known_pids)
    check(workers, "no worker pid known before the kill")
    d.signal(signal.SIGKILL)
    eq(d.wait_exit(5), -9, "daemon status after SIGKILL")
    left = d.wait_no_leftovers(3)
    check(not left, "processes survive kill -9 of the daemon: %s" % describe(left))
    check(not any(proc_alive(w) for w in workers), "a worker survives kill -9: %s" % sorted(workers))


def test_journaled_start_without_committed_row_counts_as_a_run(ctx):
    d = ctx.daemon(workers=1)
    s = _busy_worker(d)
    t1 = d.submit({"kind": "echo", "args": {"t": 1}, "max_attempts": 1})
    t2 = d.submit({"kind": "echo", "args": {"t": 2}, "max_attempts": 2})
    for t in (t1, t2):
        g = d.task(t["id"])
        eq((g["status"], g["attempts"], g["started_at"]), ("queued", 0, None),
           "task %d before the crash" % t["id"])
    # The dispatcher journals every start before sending it: only the sleep's so far.
    eq(_journal(d.db, 0), [(s["id"], 1, JOURNAL_MAGIC)], "%s-dispatch-0 before the crash" % d.db)
    eq(_journal(d.db, 1), [], "%s-dispatch-1 before the crash" % d.db)
    _kill9(d)

    # The crash window: t1 and t2 were sent to a worker (journaled) but their
    # 'running' rows never committed.  Append exactly what lib/journal.c writes.
    with open(d.db + "-dispatch-0", "ab") as f:
        for t in (t1, t2):
            f.write(JOURNAL_REC.pack(t["id"], 1, JOURNAL_MAGIC))
    eq(os.path.getsize(d.db + "-dispatch-0"), 3 * 16, "journal size after appending two records")

    d2 = ctx.daemon(workers=1, db=d.db, name="restarted daemon")
    g = d2.wait_terminal(t1["id"], 5)
    eq((g["status"], g["attempts"], g["error"]["code"] if g["error"] else None),
       ("failed", 1, "interrupted"), "t1 (journaled start, max_attempts 1) after restart")
    # It never ran: recovery marks the attempt but leaves every run field empty.
    eq({k: g[k] for k in ("started_at", "result", "worker_pid", "worker_ppid", "run_ms", "usage")},
       {"started_at": None, "result": None, "worker_pid": None, "worker_ppid": None, "run_ms": None,
        "usage": None}, "run fields of t1")
    check(g["finished_at"] is not None, "t1 has no finished_at")

    g = d2.wait_terminal(t2["id"], 5)
    eq((g["status"], g["attempts"], g["result"], g["error"]), ("succeeded", 2, {"t": 2}, None),
       "t2 (journaled start, max_attempts 2) after restart")
    pool = d2.worker_pids()
    check(g["worker_pid"] in pool, "t2 ran on worker %s, not one of the new pool %s"
          % (g["worker_pid"], sorted(pool)))
    eq(g["worker_ppid"], d2.pid, "t2's worker_ppid")

    g = d2.task(s["id"])
    eq((g["status"], g["attempts"], g["error"]["code"] if g["error"] else None),
       ("failed", 1, "interrupted"), "the sleep running at the crash (max_attempts 1)")
    check(g["started_at"] is not None, "the sleep that did run lost its started_at")

    # The journal was emptied at start: only the new run's start (t2, attempt 2) is in it.
    eq(_journal(d2.db, 0), [(t2["id"], 2, JOURNAL_MAGIC)], "%s-dispatch-0 after restart" % d2.db)
    eq(_journal(d2.db, 1), [], "%s-dispatch-1 after restart" % d2.db)
    eq(d2.sql("select id, status, attempts from tasks order by id"),
       [(s["id"], "failed", 1), (t1["id"], "failed", 1), (t2["id"], "succeeded", 2)],
       "rows after restart")


def test_journaled_retry_of_a_running_row_counts_as_a_run(ctx):
    d = ctx.daemon(workers=1)
    t = d.submit({"kind": "sleep", "args": {"seconds": 30}, "max_attempts": 2})
    g = d.wait_status(t["id"], "running")
    eq(g["attempts"], 1, "attempts of the running task")
    _kill9(d)
    # The crash window of a retry: the worker died, the task was queued again
    # and sent to a new worker for its 2nd run (journaled), but neither the
    # requeue nor the new start was committed: the row still says running, 1.
    with open(d.db + "-dispatch-0", "ab") as f:
        f.write(JOURNAL_REC.pack(t["id"], 2, JOURNAL_MAGIC))
    eq(_rows(d.db, "select status, attempts from tasks where id = ?", (t["id"],)), [("running", 1)],
       "the row before the restart")
    d2 = ctx.daemon(workers=1, db=d.db, name="restarted daemon")
    g = d2.wait_terminal(t["id"], 5)
    eq((g["status"], g["attempts"], g["error"]["code"] if g["error"] else None),
       ("failed", 2, "interrupted"), "a task whose 2nd and last run was journaled, after restart")


def test_queued_exec_task_fails_when_restarted_without_allow_exec(ctx):
    d = ctx.daemon("--allow-exec", "--shutdown-grace", "1", workers=1)
    s = _busy_worker(d)
    marker = os.path.join(ctx.tmp, "exec-ran")
    x = d.submit({"kind": "exec", "args": {"argv": ["/bin/sh", "-c", "echo ran > '%s'" % marker]}})
    eq(d.task(x["id"])["status"], "queued", "exec task before SIGTERM")
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(8)
    check(rc is not None, "daemon still running 8s after SIGTERM with --shutdown-grace 1")
    eq(rc, 0, "exit status after SIGTERM")
    left = d.wait_no_leftovers(3)
    check(not left, "processes left after SIGTERM: %s" % describe(left))
    eq(_rows(d.db, "select id, status, attempts, error_code, started_at is null from tasks order by id"),
       [(s["id"], "failed", 1, "interrupted", 0), (x["id"], "queued", 0, None, 1)],
       "rows after the graceful stop (the sleep killed after the grace, the exec task still queued)")

    d2 = ctx.daemon(workers=1, db=d.db, name="restarted daemon without --allow-exec")
    g = d2.wait_terminal(x["id"], 5)
    eq((g["status"], g["attempts"], g["error"]["code"] if g["error"] else None),
       ("failed", 0, "exec_disabled"), "queued exec task after a restart without --allow-exec")
    check("--allow-exec" in g["error"]["message"], "error message does not say what to do: %r"
          % g["error"]["message"])
    eq({k: g[k] for k in ("started_at", "result", "worker_pid", "worker_ppid", "run_ms", "usage")},
       {"started_at": None, "result": None, "worker_pid": None, "worker_ppid": None, "run_ms": None,
        "usage": None}, "run fields of the exec task that never ran")
    check(g["finished_at"] is not None, "exec task has no finished_at")
    time.sleep(0.2)
    check(not os.path.exists(marker), "the exec command ran on a daemon without --allow-exec")
    eq(d2.sql("select status, attempts, error_code from tasks where id = ?", (x["id"],)),
       [("failed", 0, "exec_disabled")], "exec task's row")
    # and the restarted daemon still works
    eq(d2.submit({"kind": "echo", "args": "ok"}, wait=5)["status"], "succeeded", "echo after restart")


def test_token_is_not_in_commands_environment(ctx):
    d = ctx.daemon("--allow-exec", workers=1, env={"TASKPOOL_TOKEN": "sekrit"})
    eq(d.token, "sekrit", "harness token")
    check_error(d.request("GET", "/api/v1/tasks", auth=None), 401, "unauthorized")
    check_error(d.request("GET", "/api/v1/tasks", auth="wrong"), 401, "unauthorized")
    t = d.submit({"kind": "exec", "args": {"argv": ["env"], "env": {"TP_PROBE": "yes"}}}, wait=10)
    eq((t["status"], t["result"]["exit_code"]), ("succeeded", 0), "exec env")
    out = t["result"]["stdout"]
    lines = out.splitlines()
    check("TP_PROBE=yes" in lines, "exec env printed no TP_PROBE=yes (not the command's env?): %s"
          % short(out))
    check("TASKPOOL_TOKEN" not in out, "TASKPOOL_TOKEN is in the command's environment: %s"
          % [l for l in lines if "TASKPOOL_TOKEN" in l])
    check("sekrit" not in out, "the token's value is in the command's environment")
    for pid in d.worker_pids():
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read().split(b"\0")
        check(not any(e.startswith(b"TASKPOOL_TOKEN=") for e in env),
              "worker %d has TASKPOOL_TOKEN in its environment" % pid)


def _read_response(sock, what):
    """Reads one HTTP/1.1 response with a Content-Length body: (status, headers, body)."""
    buf = b""
    end = time.monotonic() + 10 * SLOW
    while b"\r\n\r\n" not in buf:
        check(time.monotonic() < end, "%s: no complete response head within %.0fs" % (what, 10 * SLOW))
        chunk = sock.recv(65536)
        check(chunk, "%s: connection closed before a response (got %r)" % (what, buf[:200]))
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    check(len(parts) >= 2 and parts[0] == "HTTP/1.1", "%s: bad status line %r" % (what, lines[0]))
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    check("content-length" in headers, "%s: no Content-Length in %s" % (what, headers))
    n = int(headers["content-length"])
    while len(body) < n:
        check(time.monotonic() < end, "%s: body incomplete within %.0fs" % (what, 10 * SLOW))
        chunk = sock.recv(65536)
        check(chunk, "%s: connection closed after %d of %d body bytes" % (what, len(body), n))
        body += chunk
    eq(len(body), n, "%s: body bytes (nothing beyond Content-Length)" % what)
    return int(parts[1]), headers, body


def test_chunked_body_over_1mib_gets_413(ctx):
    d = ctx.daemon(workers=1)
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW)
    try:
        sock.sendall(b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        # A valid JSON document of 1.5 MiB: {"kind":"echo","args":"aaa...a"}
        payload = b'{"kind":"echo","args":"' + b"x" * (3 * 512 * 1024 - 25) + b'"}'
        eq(len(payload), 3 * 512 * 1024, "payload size")
        sent_all = True
        try:
            for i in range(0, len(payload), 65536):
                piece = payload[i:i + 65536]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            sent_all = False     # the server may answer before reading the whole body
        except socket.timeout:
            raise AssertionError("the daemon stopped reading the chunked body without answering")
        status, headers, body = _read_response(sock, "chunked POST of 1.5 MiB")
        eq(status, 413, "status of a chunked POST of 1.5 MiB")
        eq(headers.get("content-type", "").split(";")[0].strip(), "application/json", "Content-Type")
        try:
            j = json.loads(body.decode())
        except ValueError:
            raise AssertionError("413 body is not JSON: %r" % body[:200])
        check(isinstance(j, dict) and set(j) == {"error"} and set(j["error"]) == {"code", "message"},
              "413 body is not {\"error\": {code, message}}: %r" % body[:200])
        eq(j["error"]["code"], "payload_too_large", "error code")
        check(j["error"]["message"].strip(), "empty error message")
        # The connection is still usable unless the daemon said it closes it.
        if sent_all and "close" not in headers.get("connection", "").lower():
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, body = _read_response(sock, "GET /healthz on the same connection after the 413")
            eq((status, json.loads(body.decode())), (200, {"status": "ok"}),
               "GET /healthz on the same connection after the 413")
        else:
            check(sock.recv(1) == b"", "daemon said Connection: close but kept the connection open")
    finally:
        sock.close()
    # The daemon is healthy and created nothing for the refused body.
    eq(d.list()["tasks"], [], "tasks after the 413")
    t = d.submit({"kind": "echo", "args": "after"}, wait=5)
    eq((t["id"], t["status"], t["result"]), (1, "succeeded", "after"), "first task after the 413")


def test_endless_chunked_body_is_cut_off_after_16_mib(ctx):
    # A chunked body has no length to refuse up front: past 16 MiB the daemon stops reading.
    d = ctx.daemon(workers=1)
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW)
    sent = 0
    piece = b"x" * 65536
    try:
        sock.sendall(b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        while sent < 64 * 1048576:
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass
    except socket.timeout:
        raise AssertionError("the daemon neither read on nor closed after %d bytes" % sent)
    finally:
        sock.close()
    between(sent, 16 * 1048576, 40 * 1048576, "bytes taken before the connection was closed (socket buffers hold a few MiB)")
    eq(d.request("GET", "/healthz").status, 200, "healthz after the endless body")
    eq(d.list()["tasks"], [], "tasks after the endless body")


def test_timeout_is_enforced_during_graceful_stop(ctx):
    d = ctx.daemon("--shutdown-grace", "5", workers=1)
    t = d.submit({"kind": "sleep", "args": {"seconds": 30}, "timeout_ms": 1000, "max_attempts": 2})
    d.wait_status(t["id"], "running")
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(8)
    elapsed = time.monotonic() - t0
    check(rc is not None, "daemon still running 8s after SIGTERM (sleep 30 with timeout_ms 1000)")
    eq(rc, 0, "exit status after SIGTERM")
    # The timeout (1 s after the start) ends the task well before the 5 s grace.
    # Not scaled by SLOW: what matters is that the daemon did not wait for the grace.
    between(elapsed, 0.0, 3.0, "seconds from SIGTERM to exit (timeout 1 s, grace 5 s)")
    left = d.wait_no_leftovers(3)
    check(not left, "processes left after SIGTERM: %s" % describe(left))
    rows = _rows(d.db, "select status, attempts, error_code, started_at, finished_at from tasks"
                       " where id = ?", (t["id"],))
    eq(len(rows), 1, "rows of the task")
    status, attempts, code, started, finished = rows[0]
    eq((status, attempts, code), ("timed_out", 1, "timed_out"),
       "sleep 30 with timeout_ms 1000 (max_attempts 2) stopped by SIGTERM")
    check(started is not None and finished is not None, "started_at/finished_at: %s/%s" % (started, finished))
    between(finished - started, 950, 2500, "ms from start to the timeout kill")


def test_a_database_that_refuses_writes_refuses_new_tasks_at_once_and_loses_nothing(ctx):
    d = ctx.daemon(workers=1)
    d.wait_pool(1)
    done = d.submit({"kind": "echo", "args": "before"}, wait=5)
    # Let every write of that settle (the worker's tasks_done row follows within a
    # second), so that nothing is left to retry once the failing write is dropped.
    time.sleep(2)
    # Someone else holds the write lock for longer than taskpoold's 5 s busy timeout.
    con = sqlite3.connect(d.db, timeout=5, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    first = {}
    th = threading.Thread(target=lambda: first.update(r=d.post({"kind": "echo", "args": "during"}, timeout=30)),
                          daemon=True)
    th.start()
    try:
        th.join(15 * SLOW)
        check("r" in first, "no answer to a POST while the database was locked")
        check_error(first["r"], 503, "storage_failed")
        # While the writer keeps failing, new tasks are refused at once, and /healthz says why.
        r = d.post({"kind": "echo", "args": "refused"})
        check_error(r, 503, "unavailable")
        check(r.elapsed < 1 * SLOW, "a POST while writes fail took %.2fs" % r.elapsed)
        check_error(d.request("GET", "/healthz"), 503, "storage_failed")
    finally:
        con.execute("ROLLBACK")
        con.close()
    wait_until(lambda: d.request("GET", "/healthz").status == 200, 15, "/healthz to recover")
    after = d.submit({"kind": "echo", "args": "after"}, wait=5)
    eq(after["status"], "succeeded", "a task after the database took writes again")
    eq(_rows(d.db, "select args from tasks order by id"), [('"before"',), ('"after"',)],
       "rows: the refused tasks were never recorded, the others all were")
    eq(d.task(done["id"])["status"], "succeeded", "the task acknowledged before")
