"""The prefork pool: parallelism, priority order, timeouts, cancels, dead workers, retries,
recycling, and load (300 concurrent submissions, hundreds of waiters)."""
import http.client
import json
import os
import signal
import threading
import time
import uuid

from harness import (SLOW, between, check, check_task, describe, eq, parse_time, pick_col, proc_alive,
                     proc_stat, procs_with_env, wait_until, worker_row)


def _reaped(pid, seconds=5):
    """Waits until pid no longer exists at all (killed and reaped by the daemon)."""
    wait_until(lambda: proc_stat(pid) is None, seconds,
               "process %d to be reaped (still %s)" % (pid, (proc_stat(pid) or {}).get("state")))


def test_parallelism_4_sleeps_on_2_workers_take_1s(ctx):
    d = ctx.daemon(workers=2)
    pool = d.wait_pool(2)
    t0 = time.monotonic()
    ids = [d.submit({"kind": "sleep", "args": {"seconds": 0.5}})["id"] for _ in range(4)]
    ts = [d.wait_terminal(i, 10) for i in ids]
    elapsed = time.monotonic() - t0
    eq([t["status"] for t in ts], ["succeeded"] * 4, "statuses")
    between(elapsed, 0.9, 1.6, "wall time of 4 x sleep 0.5 on 2 workers (s)")
    span = max(parse_time(t["finished_at"]) for t in ts) - min(parse_time(t["started_at"]) for t in ts)
    between(span, 900, 1600, "first start to last finish (ms)")
    pids = {t["worker_pid"] for t in ts}
    eq(len(pids), 2, "distinct worker_pid values")
    eq(pids, pool, "worker pids vs the pool listed by /workers")
    for t in ts:
        eq(t["worker_ppid"], d.pid, "worker_ppid of task %d" % t["id"])
    for p in pids:
        st = proc_stat(p)
        check(st is not None, "worker %d is gone" % p)
        eq(st["ppid"], d.pid, "parent of worker %d in /proc" % p)
    # each worker ran two of them, back to back
    for p in pids:
        eq(sum(1 for t in ts if t["worker_pid"] == p), 2, "tasks run by worker %d" % p)


def test_priority_order_and_fifo_within_priority(ctx):
    d = ctx.daemon(workers=1)
    d.wait_pool(1)
    blocker = d.submit({"kind": "sleep", "args": {"seconds": 1.0}})
    d.wait_status(blocker["id"], "running")
    plan = [("a", 0), ("b", 0), ("c", 5), ("d", -5), ("e", 5), ("f", 1000), ("g", -1000), ("h", 0)]
    ids = {}
    for name, prio in plan:
        ids[name] = d.submit({"kind": "sleep", "args": {"seconds": 0.03}, "priority": prio})["id"]
    for name, tid in ids.items():
        t = d.task(tid)
        eq((t["status"], t["started_at"]), ("queued", None), "task %s while the pool is full" % name)
    check(d.task(blocker["id"])["status"] == "running", "test setup: blocker finished before all were queued")
    ts = {name: d.wait_terminal(tid, 10) for name, tid in ids.items()}
    order = sorted(ts, key=lambda n: (parse_time(ts[n]["started_at"]), ts[n]["id"]))
    eq("".join(order), "fceabhdg", "start order (priority desc, FIFO within a priority)")
    starts = sorted(parse_time(t["started_at"]) for t in ts.values())
    check(all(b > a for a, b in zip(starts, starts[1:])), "two tasks started in the same ms on 1 worker")
    check(min(starts) >= parse_time(d.task(blocker["id"])["finished_at"]),
          "a queued task started before the blocker finished")


def test_timeout_kills_worker_and_pool_refills(ctx):
    d = ctx.daemon(workers=2)
    pool = d.wait_pool(2)
    t = d.submit({"kind": "sleep", "args": {"seconds": 10}, "timeout_ms": 300, "max_attempts": 3})
    t = d.wait_terminal(t["id"], 5)
    eq(t["status"], "timed_out", "status")
    eq(t["error"]["code"], "timed_out", "error.code")
    eq(t["attempts"], 1, "attempts (timeouts are final)")
    eq(t["result"], None, "result")
    run = parse_time(t["finished_at"]) - parse_time(t["started_at"])
    between(run, 290, 1500 * SLOW, "finished_at - started_at of a 300 ms timeout (ms)")
    w = t["worker_pid"]
    check(w in pool, "worker_pid %d not one of the pool %s" % (w, pool))
    _reaped(w)
    new = d.wait_pool(2, gone={w})
    eq(len(new - pool), 1, "new workers after the timeout (%s -> %s)" % (pool, new))
    eq(d.workers()["pool"]["size"], 2, "pool.size")
    # The worker is reaped (where a retry would be decided) and the next task's
    # row is committed after anything that decision wrote: no requeue came of it.
    t2 = d.submit({"kind": "sleep", "args": {"seconds": 0.1}}, wait=5)
    eq(t2["status"], "succeeded", "sleep after the timeout")
    g = d.task(t["id"])
    eq((g["status"], g["attempts"]), ("timed_out", 1), "status and attempts later (not re-queued)")


def test_cancel_queued_task_never_starts(ctx):
    d = ctx.daemon(workers=1)
    d.wait_pool(1)
    blocker = d.submit({"kind": "sleep", "args": {"seconds": 0.8}})
    d.wait_status(blocker["id"], "running")
    q = d.submit({"kind": "echo", "args": "never"})
    eq(q["status"], "queued", "status before cancel")
    r = d.cancel(q["id"])
    eq(r.status, 200, "cancel status code")
    c = r.json
    check_task(c)
    eq((c["id"], c["status"], c["error"]["code"] if c["error"] else None), (q["id"], "cancelled", "cancelled"),
       "id / status / error.code in the cancel answer")
    eq((c["started_at"], c["worker_pid"]), (None, None), "started_at / worker_pid of a cancelled queued task")
    check(c["finished_at"] is not None, "finished_at not set on cancel")
    b = d.wait_terminal(blocker["id"], 5)
    eq(b["status"], "succeeded", "blocker status")
    after = d.submit({"kind": "echo", "args": "after"}, wait=5)
    eq(after["status"], "succeeded", "task queued after the cancelled one")
    g = d.task(q["id"])
    eq((g["status"], g["started_at"], g["worker_pid"], g["attempts"], g["result"]),
       ("cancelled", None, None, 0, None), "cancelled task later: status/started_at/worker_pid/attempts/result")
    r = d.cancel(q["id"])
    eq(r.status, 409, "second cancel")


def test_cancel_running_task_kills_worker_and_pool_refills(ctx):
    d = ctx.daemon(workers=2)
    pool = d.wait_pool(2)
    t = d.submit({"kind": "sleep", "args": {"seconds": 30}, "max_attempts": 3})
    t = d.wait_status(t["id"], "running")
    w = t["worker_pid"]
    r = d.cancel(t["id"])
    eq(r.status, 200, "cancel status code")
    check(r.elapsed < 2 * SLOW, "cancel took %.2fs" % r.elapsed)
    eq(r.json["status"], "cancelled", "status in the cancel answer")
    _reaped(w)
    new = d.wait_pool(2, gone={w})
    eq(len(new - pool), 1, "replacement workers (%s -> %s)" % (pool, new))
    g = d.wait_terminal(t["id"])
    eq((g["status"], g["error"]["code"], g["attempts"]), ("cancelled", "cancelled", 1),
       "status / error.code / attempts (a cancel is final)")
    check(g["finished_at"] is not None, "finished_at")
    # As above: committed after whatever the reap of the killed worker wrote.
    eq(d.submit({"kind": "echo", "args": 1}, wait=5)["status"], "succeeded", "echo after the cancel")
    g = d.task(t["id"])
    eq((g["status"], g["attempts"]), ("cancelled", 1), "status and attempts later (not re-queued)")


def test_sigkill_worker_mid_task_fails_with_worker_died(ctx):
    d = ctx.daemon(workers=2)
    pool = d.wait_pool(2)
    t = d.submit({"kind": "sleep", "args": {"seconds": 30}})
    t = d.wait_status(t["id"], "running")
    w = t["worker_pid"]
    os.kill(w, signal.SIGKILL)
    g = d.wait_terminal(t["id"], 5)
    eq(g["status"], "failed", "status")
    eq(g["error"]["code"], "worker_died", "error.code")
    msg = g["error"]["message"]
    check(str(w) in msg and "signal 9" in msg, "error.message should name worker %d and signal 9: %r" % (w, msg))
    eq(g["attempts"], 1, "attempts")
    _reaped(w)
    d.wait_pool(2, gone={w})
    wait_until(lambda: any(str(w) in l and "signal" in l and "9" in l for l in d.tail(200)), 3,
               "a log line about worker %d and signal 9" % w)
    eq(len(pool), 2, "pool")


def test_signals_from_outside_are_named_as_sent(ctx):
    # (not SIGSEGV: under AddressSanitizer the worker would report it and exit 1)
    d = ctx.daemon("--allow-exec", workers=2)
    d.wait_pool(2)
    for sig, name, kind in ((signal.SIGTERM, "Terminated", "sleep"), (signal.SIGABRT, "Aborted", "sleep"),
                            (signal.SIGTERM, "Terminated", "exec")):
        args = {"seconds": 30} if kind == "sleep" else {"argv": ["/bin/sleep", "30"]}
        t = d.wait_status(d.submit({"kind": kind, "args": args})["id"], "running")
        w = t["worker_pid"]
        os.kill(w, sig)
        g = d.wait_terminal(t["id"], 5)
        eq((g["status"], g["error"]["code"]), ("failed", "worker_died"), "%s worker sent signal %d" % (kind, sig))
        want = "worker %d was killed by signal %d (%s)" % (w, sig, name)
        eq(g["error"]["message"], want, "error.message")
        _reaped(w)


def test_sigkill_worker_with_attempts_left_reruns_task(ctx):
    d = ctx.daemon(workers=2)
    d.wait_pool(2)
    t = d.submit({"kind": "sleep", "args": {"seconds": 1}, "max_attempts": 2})
    t = d.wait_status(t["id"], "running")
    w = t["worker_pid"]
    eq(t["attempts"], 1, "attempts while first run")
    os.kill(w, signal.SIGKILL)
    g = d.wait_terminal(t["id"], 10)
    eq(g["status"], "succeeded", "status after a re-run")
    eq(g["attempts"], 2, "attempts")
    eq(g["error"], None, "error")
    eq(g["result"], {"slept": 1}, "result")
    check(g["worker_pid"] != w, "re-run reports the dead worker %d" % w)
    # a second death with no attempts left is final
    t = d.submit({"kind": "sleep", "args": {"seconds": 30}, "max_attempts": 2})
    for attempt in (1, 2):
        t = wait_until(lambda: (lambda x: x if x["status"] == "running" and x["attempts"] == attempt else None)(
            d.task(t["id"])), 5, "run %d" % attempt)
        os.kill(t["worker_pid"], signal.SIGKILL)
    g = d.wait_terminal(t["id"], 5)
    eq((g["status"], g["error"]["code"], g["attempts"]), ("failed", "worker_died", 2),
       "status / error.code / attempts after two deaths")


def test_sigkill_worker_running_exec_kills_its_command(ctx):
    d = ctx.daemon("--allow-exec", workers=2)
    mark = "TP_MARK=%s" % uuid.uuid4().hex
    k, v = mark.split("=")
    t = d.submit({"kind": "exec", "args": {"argv": ["/bin/sh", "-c", "sleep 100 & sleep 100"], "env": {k: v}},
                  "max_attempts": 2})
    t = d.wait_status(t["id"], "running")
    w = t["worker_pid"]
    first = {p["pid"] for p in wait_until(lambda: len(procs_with_env(mark)) >= 2 and procs_with_env(mark), 5,
                                          "the command to run")}
    os.kill(w, signal.SIGKILL)
    # the command must not outlive its worker (it would run twice after the retry)
    end = time.monotonic() + 3 * SLOW
    while time.monotonic() < end and any(proc_alive(p) for p in first):
        time.sleep(0.05)
    left = [p for p in procs_with_env(mark) if p["pid"] in first]
    check(not left, "processes of the first run survive its worker's death: %s" % describe(left))
    t = wait_until(lambda: (lambda x: x if x["attempts"] == 2 and x["status"] == "running" else None)(
        d.task(t["id"])), 5, "the retry to start")
    check(t["worker_pid"] != w, "retry reports the dead worker")
    r = d.cancel(t["id"])
    eq((r.status, r.json["status"]), (200, "cancelled"), "cancel of the retry")
    wait_until(lambda: not procs_with_env(mark), 5, "no process of the command to be left")


def test_idle_worker_killed_is_replaced(ctx):
    d = ctx.daemon(workers=2)
    pool = d.wait_pool(2)
    w = sorted(pool)[0]
    os.kill(w, signal.SIGKILL)
    _reaped(w)
    new = d.wait_pool(2, gone={w})
    eq(len(new - pool), 1, "replacement workers")
    # the workers table records the death: exit time and signal 9
    row = wait_until(lambda: (lambda r: r if r and r[pick_col(r, "exit", "at")] else None)(worker_row(d, w)), 3,
                     "the workers row of %d to record its exit" % w)
    eq(row[pick_col(row, "signal")], 9, "exit signal recorded for worker %d (%s)" % (w, row))
    for i in range(4):
        eq(d.submit({"kind": "echo", "args": i}, wait=5)["status"], "succeeded", "echo %d" % i)


def test_max_tasks_per_worker_recycles_workers(ctx):
    d = ctx.daemon("--max-tasks-per-worker", "2", workers=1)
    j = d.workers()
    eq(j["pool"].get("max_tasks_per_worker"), 2, "pool.max_tasks_per_worker")
    eq(j["pool"].get("size"), 1, "pool.size")
    seen = []
    for gen in range(3):
        (p,) = d.wait_pool(1, gone=set(seen))
        w = d.workers()["workers"][0]
        eq((w["pid"], w["tasks_done"]), (p, 0), "new worker generation %d (pid, tasks_done)" % gen)
        for k in (1, 2):
            t = d.submit({"kind": "echo", "args": [gen, k]}, wait=5)
            eq((t["status"], t["worker_pid"]), ("succeeded", p), "task %d of generation %d" % (k, gen))
            if k == 1:
                ws = wait_until(lambda: [x for x in d.workers()["workers"]
                                         if x["pid"] == p and x["tasks_done"] == 1], 3,
                                "tasks_done 1 on worker %d" % p)
                eq(ws[0]["state"], "idle", "state after one task")
        _reaped(p)
        seen.append(p)
    eq(len(set(seen)), 3, "distinct workers over 6 tasks")
    for s in seen[:2]:
        row = wait_until(lambda: (lambda r: r if r and r[pick_col(r, "exit", "at")] else None)(worker_row(d, s)), 3,
                         "the workers row of retired worker %d to record its exit" % s)
        eq(row[pick_col(row, "tasks")], 2, "tasks done recorded for retired worker %d (%s)" % (s, row))
    for s in seen:
        check(s not in d.worker_pids(), "retired worker %d still listed" % s)


def _post_raw(port, body, timeout):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/api/v1/tasks", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, r.getheader("Location"), data
    finally:
        conn.close()


def test_300_concurrent_submissions_none_lost(ctx):
    d = ctx.daemon(workers=2)
    n = 300
    results = [None] * n
    barrier = threading.Barrier(n, timeout=30)

    def client(i):
        try:
            barrier.wait()
            results[i] = _post_raw(d.port, json.dumps({"kind": "echo", "args": {"i": i}}), 30 * SLOW)
        except Exception as e:  # recorded, checked below
            results[i] = ("error", None, repr(e).encode())

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60 * SLOW)
    check(not any(th.is_alive() for th in threads), "some submissions hung")
    bad = [(i, r) for i, r in enumerate(results) if r is None or r[0] != 201]
    check(not bad, "%d of %d submissions not 201, e.g. %s" % (len(bad), n, bad[:3]))
    by_id = {}
    for i, (status, loc, data) in enumerate(results):
        t = json.loads(data)
        eq(loc, "/api/v1/tasks/%d" % t["id"], "Location")
        eq(t["args"], {"i": i}, "args echoed in the 201")
        by_id[t["id"]] = i
    eq(len(by_id), n, "distinct ids")

    def all_done():
        ts, q = [], "status=succeeded&limit=500"
        p = d.list(q)
        ts += p["tasks"]
        return len(ts) == n and ts
    wait_until(all_done, 30, "all %d tasks to succeed" % n, interval=0.2)
    for tid, i in by_id.items():
        t = d.task(tid)
        eq((t["status"], t["result"]), ("succeeded", {"i": i}), "task %d" % tid)
    rows = d.sql("select count(*), sum(status = 'succeeded') from tasks")
    eq(rows[0], (n, n), "SQLite rows (count, succeeded)")
    ids = sorted(x[0] for x in d.sql("select id from tasks"))
    eq(ids, sorted(by_id), "SQLite ids vs ids answered")


def test_hundreds_of_waiters_do_not_stall_other_requests(ctx):
    d = ctx.daemon(workers=2)
    d.wait_pool(2)
    x = d.submit({"kind": "sleep", "args": {"seconds": 2}})
    n = 200
    out = [None] * n

    def waiter(i):
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=20 * SLOW)
        try:
            conn.request("GET", "/api/v1/tasks/%d?wait=15" % x["id"])
            r = conn.getresponse()
            out[i] = (r.status, json.loads(r.read()), time.time())
        except Exception as e:
            out[i] = ("error", repr(e), time.time())
        finally:
            conn.close()

    threads = [threading.Thread(target=waiter, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    time.sleep(0.5)
    check(d.task(x["id"])["status"] == "running", "test setup: the waited task is not running any more")
    r = d.request("GET", "/healthz")
    check(r.status == 200 and r.elapsed < 0.5 * SLOW, "GET /healthz with %d waiters took %.2fs" % (n, r.elapsed))
    r = d.request("GET", "/api/v1/workers")
    check(r.status == 200 and r.elapsed < 0.5 * SLOW, "GET /workers with %d waiters took %.2fs" % (n, r.elapsed))
    r = d.post({"kind": "echo", "args": "side"}, wait=5)
    check(r.status == 201 and r.json["status"] == "succeeded" and r.elapsed < 1 * SLOW,
          "POST echo ?wait=5 with %d waiters: %r in %.2fs" % (n, r, r.elapsed))
    for th in threads:
        th.join(20 * SLOW)
    check(not any(th.is_alive() for th in threads), "some waiters never returned")
    bad = [o for o in out if o is None or o[0] != 200 or o[1]["status"] != "succeeded"]
    check(not bad, "%d waiters did not get the succeeded task, e.g. %s" % (len(bad), str(bad[:2])[:300]))
    fin = parse_time(out[0][1]["finished_at"]) / 1000.0
    late = max(o[2] for o in out) - fin
    check(late < 1.0 * SLOW, "last waiter answered %.2fs after the task finished" % late)


def test_runs_cut_short_report_what_they_used(ctx):
    """A timeout, a cancel or a worker's death still tells the task's CPU and memory.
    The work spins, so its CPU is most of its run; a fifth of it is asked for, which
    a busy machine (or a sanitizer build) still gives."""
    d = ctx.daemon("--allow-exec", workers=2)
    d.wait_pool(2)
    spin = {"kind": "exec", "args": {"argv": ["/bin/sh", "-c", "while :; do :; done"]}, "timeout_ms": 800}
    busy = {"kind": "cpu", "args": {"n": 1000000000}, "timeout_ms": 800}
    for body, who in ((busy, "the worker"), (spin, "its command")):
        t = d.wait_terminal(d.submit(body)["id"], 10)
        eq(t["status"], "timed_out", "status of a timed-out %s task" % body["kind"])
        u = t["usage"]
        check(u is not None and u["user_ms"] + u["sys_ms"] >= t["run_ms"] / 5 and u["max_rss_kb"] > 0,
              "usage of a %s task that kept %s busy for %d ms: %s" % (body["kind"], who, t["run_ms"], u))
    for how in ("cancel", "kill"):
        t = d.wait_status(d.submit({"kind": "cpu", "args": {"n": 1000000000}})["id"], "running")
        time.sleep(0.6)
        if how == "cancel":
            eq(d.cancel(t["id"]).status, 200, "cancel")
        else:
            os.kill(t["worker_pid"], signal.SIGKILL)
        g = wait_until(lambda: (lambda g: g if g["usage"] else None)(d.task(t["id"])), 5,
                       "the usage of the task ended by a %s" % how)
        eq(g["status"], "cancelled" if how == "cancel" else "failed", "status after the %s" % how)
        run_ms = parse_time(g["finished_at"]) - parse_time(g["started_at"])
        check(g["usage"]["user_ms"] + g["usage"]["sys_ms"] >= run_ms / 5,
              "usage of a cpu task ended by a %s after %d ms: %s" % (how, run_ms, g["usage"]))
