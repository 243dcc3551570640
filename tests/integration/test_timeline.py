"""GET /api/v1/timeline: the last minutes of which worker ran what, for the dashboard's
Gantt chart to start with its history: bars for tasks of 50 ms or more, counts of shorter
ones per worker and 50 ms, and every worker alive in the window with its running task."""
import os
import signal
import time

from harness import check, check_error, eq, parse_time, wait_until

BAR_FIELDS = ("id", "pid", "started_at", "finished_at", "status", "kind")
BUCKET_FIELDS = ("pid", "first_start", "last_end", "n", "succeeded", "failed", "timed_out", "cancelled",
                 "newest_id", "newest_kind", "newest_status")


def _timeline_when(d, query, ready, what):
    """The timeline once ready(j, bars, buckets) holds: it is fed after the fsync, a moment
    after GET /api/v1/tasks/{id} (which shows committed rows) already tells."""
    got = []

    def f():
        got[:] = [_timeline(d, query)]
        return ready(*got[0])
    wait_until(f, 5, what)
    return got[0]


def _timeline(d, query=""):
    r = d.request("GET", "/api/v1/timeline" + query)
    eq(r.status, 200, "GET /api/v1/timeline%s" % query)
    j = r.json
    eq(set(j), {"now", "seconds", "bucket_ms", "workers", "bars", "buckets"}, "timeline fields")
    eq(j["bucket_ms"], 50, "bucket_ms")
    for w in j["workers"]:
        eq(set(w), {"pid", "started_at", "exited_at", "reason", "exit_code", "exit_signal", "task"},
           "worker fields")
    bars = [dict(zip(BAR_FIELDS, b)) for b in j["bars"]]
    buckets = [dict(zip(BUCKET_FIELDS, b)) for b in j["buckets"]]
    for b in j["bars"]:
        eq(len(b), len(BAR_FIELDS), "items of a bar")
    for u in j["buckets"]:
        eq(len(u), len(BUCKET_FIELDS), "items of a bucket")
        eq(u[3], sum(u[4:8]), "a bucket's count is the sum of its outcomes")
        check(u[10] in ("succeeded", "failed", "timed_out", "cancelled") and u[9], "newest task of a bucket: %s" % u)
    return j, bars, buckets


def test_timeline_bars_buckets_and_running_tasks_match_the_tasks(ctx):
    d = ctx.daemon(workers=2)
    d.wait_pool(2)
    long_ = d.submit({"kind": "sleep", "args": {"seconds": 0.3}}, wait=5)
    failed = d.submit({"kind": "fail", "args": {"message": "no"}}, wait=5)
    quick = [d.submit({"kind": "echo", "args": i}, wait=5) for i in range(20)]
    running = d.wait_status(d.submit({"kind": "sleep", "args": {"seconds": 30}})["id"], "running")
    j, bars, buckets = _timeline_when(d, "", lambda j, b, u: any(w["task"] for w in j["workers"]),
                                      "the running sleep in the timeline")
    check(abs(j["now"] - parse_time(d.task(running["id"])["started_at"])) < 60000, "now is not the server's clock")
    eq(j["seconds"], 300, "default window (s)")
    eq(sorted(w["pid"] for w in j["workers"]), sorted(d.worker_pids()), "workers in the timeline")
    busy = [w for w in j["workers"] if w["task"]]
    eq([(w["pid"], w["task"]["id"], w["task"]["kind"], w["task"]["started_at"]) for w in busy],
       [(running["worker_pid"], running["id"], "sleep", parse_time(running["started_at"]))], "running tasks")
    mine = [b for b in bars if b["id"] == long_["id"]]
    eq(mine, [{"id": long_["id"], "pid": long_["worker_pid"], "started_at": parse_time(long_["started_at"]),
               "finished_at": parse_time(long_["finished_at"]), "status": "succeeded", "kind": "sleep"}],
       "the bar of the 0.3 s sleep")
    # every short task is counted once, on its worker, with its outcome
    short = quick + [failed]
    eq(sum(u["n"] for u in buckets), len(short), "tasks counted in buckets")
    for pid in {t["worker_pid"] for t in short}:
        eq(sum(u["n"] for u in buckets if u["pid"] == pid), sum(1 for t in short if t["worker_pid"] == pid),
           "short tasks counted on worker %d" % pid)
    eq(sum(u["failed"] for u in buckets), 1, "failed short tasks")
    eq(max(u["newest_id"] for u in buckets), max(t["id"] for t in short), "newest id in the buckets")
    newest = {t["id"]: t for t in short}
    for u in buckets:
        t = newest[u["newest_id"]]
        eq((u["newest_kind"], u["newest_status"]), (t["kind"], t["status"]), "kind and status of task %d" % t["id"])
    for u in buckets:
        check(u["last_end"] - u["first_start"] < 2 * 50 + 5, "a bucket spans %d ms" % (u["last_end"] - u["first_start"]))
    d.cancel(running["id"])


def test_timeline_keeps_recycled_and_killed_workers_with_their_runs(ctx):
    d = ctx.daemon("--max-tasks-per-worker", "3", workers=1)
    first = next(iter(d.wait_pool(1)))
    for i in range(3):
        d.submit({"kind": "echo", "args": i}, wait=5)
    second = next(iter(d.wait_pool(1, gone={first})))
    t = d.wait_status(d.submit({"kind": "sleep", "args": {"seconds": 30}, "max_attempts": 2})["id"], "running")
    eq(t["worker_pid"], second, "the sleep runs on the replacement")
    time.sleep(0.1)   # long enough to be a bar of its own
    os.kill(second, signal.SIGKILL)
    third = next(iter(d.wait_pool(1, gone={first, second})))
    t = d.wait_status(t["id"], "running")
    eq(t["worker_pid"], third, "the retried sleep runs on the third worker")
    j, bars, buckets = _timeline_when(d, "?seconds=60", lambda j, b, u: any(w["task"] for w in j["workers"]),
                                      "the retried sleep in the timeline")
    eq(j["seconds"], 60, "window (s)")
    ws = {w["pid"]: w for w in j["workers"]}
    eq(list(ws), [first, second, third], "workers in spawn order")
    eq((ws[first]["reason"], ws[first]["exit_code"], ws[first]["exit_signal"]), ("retired", 0, None), "the retired one")
    eq((ws[second]["exit_signal"], ws[second]["task"]), (9, None), "the killed one")
    check(ws[second]["exited_at"] >= ws[second]["started_at"] > 0, "times of the killed one: %s" % ws[second])
    eq(ws[third]["task"]["id"], t["id"], "the third one runs the retried sleep")
    eq(sum(u["n"] for u in buckets if u["pid"] == first), 3, "echoes counted on the retired worker")
    died = [b for b in bars if b["id"] == t["id"]]
    eq([(b["pid"], b["status"], b["finished_at"]) for b in died], [(second, "failed", ws[second]["exited_at"])],
       "the run cut short by the kill")
    d.cancel(t["id"])


def test_timeline_window_leaves_out_older_runs(ctx):
    d = ctx.daemon(workers=1)
    d.wait_pool(1)
    t = d.submit({"kind": "sleep", "args": {"seconds": 0.1}}, wait=5)
    wait_until(lambda: not [b for b in _timeline(d, "?seconds=1")[1] if b["id"] == t["id"]], 5,
               "the sleep to leave the 1 s window")
    eq([b["id"] for b in _timeline(d, "?seconds=300")[1]], [t["id"]], "bars in the 300 s window")


def test_timeline_invalid_seconds_400(ctx):
    d = ctx.shared()
    for q in ("0", "301", "-1", "abc", "1.5", ""):
        check_error(d.request("GET", "/api/v1/timeline?seconds=" + q), 400, "invalid_query", field="seconds")
    eq(d.request("POST", "/api/v1/timeline", body=b"").status, 405, "POST /api/v1/timeline")
