"""The HTTP API: routes, task object, ?wait=, error statuses, content types (shared daemon)."""
import http.client
import json
import socket
import time

from harness import (SHARED_WORKERS, SLOW, between, check, check_error, eq, parse_time, proc_stat,
                     wait_until)


def test_healthz_returns_status_ok(ctx):
    d = ctx.shared()
    r = d.request("GET", "/healthz")
    eq(r.status, 200, "GET /healthz status")
    eq(r.json, {"status": "ok"}, "GET /healthz body")


def test_post_returns_201_location_and_full_task_object(ctx):
    d = ctx.shared()
    body = {"kind": "echo", "args": {"x": 1}, "priority": 7, "timeout_ms": 5000, "max_attempts": 3}
    t = d.submit(body)
    eq(t["kind"], "echo", "kind")
    eq(t["args"], {"x": 1}, "args")
    eq(t["priority"], 7, "priority")
    eq(t["timeout_ms"], 5000, "timeout_ms")
    eq(t["max_attempts"], 3, "max_attempts")
    check(t["status"] in ("queued", "running", "succeeded"), "status at creation: %s" % t["status"])
    created = parse_time(t["created_at"])
    between(created, time.time() * 1000 - 5000, time.time() * 1000 + 1000, "created_at vs now (ms)")
    g = d.wait_terminal(t["id"])
    eq(g["status"], "succeeded", "status")
    eq(g["id"], t["id"], "id from GET")
    eq(g["created_at"], t["created_at"], "created_at from GET")
    eq(g["result"], {"x": 1}, "result")
    eq(g["error"], None, "error")
    eq(g["attempts"], 1, "attempts")
    eq((g["priority"], g["timeout_ms"], g["max_attempts"]), (7, 5000, 3), "priority/timeout/max_attempts")


def test_post_defaults_args_priority_timeout_attempts(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "echo"}, wait=5)
    eq(t["args"], {}, "default args")
    eq(t["priority"], 0, "default priority")
    eq(t["timeout_ms"], None, "default timeout_ms")
    eq(t["max_attempts"], 1, "default max_attempts")
    eq(t["status"], "succeeded", "status")
    eq(t["result"], {}, "result of echo with default args")


def test_task_object_timings_pids_and_usage(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "sleep", "args": {"seconds": 0.2}}, wait=5)
    eq(t["status"], "succeeded", "status")
    c, s, f = parse_time(t["created_at"]), parse_time(t["started_at"]), parse_time(t["finished_at"])
    check(c <= s <= f, "created_at <= started_at <= finished_at: %s" % [c, s, f])
    between(f - s, 195, 2000 * SLOW, "finished_at - started_at of sleep 0.2 (ms)")
    between(t["queue_ms"], s - c - 1, s - c + 1, "queue_ms vs started_at - created_at")
    between(t["run_ms"], f - s - 1, f - s + 1, "run_ms vs finished_at - started_at")
    check(t["usage"] is not None, "usage is null after the task ran")
    check(t["usage"]["max_rss_kb"] > 0, "usage.max_rss_kb not positive: %r" % t["usage"])
    eq(t["worker_ppid"], d.pid, "worker_ppid (daemon pid)")
    wp = t["worker_pid"]
    check(wp != d.pid, "worker_pid is the daemon's pid")
    check(wp in d.worker_pids(), "worker_pid %d not listed in /workers" % wp)
    st = proc_stat(wp)
    check(st is not None and st["ppid"] == d.pid, "worker %d is not a child of the daemon: %r" % (wp, st))


def test_get_task_matches_post(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "square", "args": {"numbers": [3]}}, wait=5)
    g = d.task(t["id"])
    eq(g, t, "GET of a finished task vs the POST ?wait answer")


def test_json_body_accepted_whatever_content_type(ctx):
    d = ctx.shared()
    args = {"q": "a+b=c&d%20e f", "plus": "+", "amp": "&x=1"}
    raw = json.dumps({"kind": "echo", "args": args})
    for ct in ("application/x-www-form-urlencoded", "text/plain", None):
        h = {"Content-Type": ct} if ct else {}
        r = d.request("POST", "/api/v1/tasks?wait=5", body=raw, headers=h, timeout=15)
        check(r.status == 201, "Content-Type %s: expected 201, got %r" % (ct, r))
        eq(r.json["status"], "succeeded", "status (Content-Type %s)" % ct)
        eq(r.json["result"], args, "echo result (Content-Type %s)" % ct)


def test_content_type_is_json_on_every_response(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "echo"}, wait=5)
    probes = [("GET", "/healthz", None), ("GET", "/api/v1/tasks", None), ("GET", "/api/v1/workers", None),
              ("GET", "/api/v1/tasks/%d" % t["id"], None), ("GET", "/api/v1/nope", None),
              ("DELETE", "/api/v1/tasks", None), ("POST", "/api/v1/tasks", "{"),
              ("POST", "/api/v1/tasks/%d/cancel" % t["id"], None),
              ("GET", "/api/v1/tasks/999999999", None)]
    for m, p, b in probes:
        r = d.request(m, p, body=b, check_ct=False)
        ct = (r.header("Content-Type") or "").split(";")[0].strip()
        eq(ct, "application/json", "Content-Type of %s %s (status %d)" % (m, p, r.status))
        check(r.json is not None, "%r: body is not JSON" % r)


def test_malformed_json_400_invalid_json(ctx):
    d = ctx.shared()
    before = d.max_id()
    for body in (b'{"kind":', b"not json", b"", b'{"kind":"echo",}', b"{'kind':'echo'}",
                 b'{"kind":"echo" "args":{}}', b"\xff\xfe{}"):
        r = d.post(body)
        check_error(r, 400, "invalid_json")
    eq(d.max_id(), before, "newest task id after bad requests (nothing may be created)")


def test_trailing_garbage_after_json_400(ctx):
    d = ctx.shared()
    before = d.max_id()
    for body in (b'{"kind":"echo"} x', b'{"kind":"echo"}{"kind":"echo"}'):
        r = d.post(body)
        check_error(r, 400, "invalid_json")
    eq(d.max_id(), before, "newest task id after bad requests")


def test_invalid_utf8_in_body_400(ctx):
    """JSON text is UTF-8 (RFC 8259): a string with invalid bytes is malformed, and echoing it
    would make the answer itself invalid JSON.  (A dedicated daemon: if it accepts these, its
    lists are no longer valid JSON.)"""
    d = ctx.daemon(workers=1)
    before = d.max_id()
    problems = []
    for body in (b'{"kind":"echo","args":"\xff\xfe"}', b'{"kind":"echo","args":{"s":"a\xc3"}}',
                 b'{"kind":"echo","args":"\xed\xa0\x80"}', b'{"kind":"echo","args":"\xc0\xaf"}'):
        r = d.request("POST", "/api/v1/tasks", body=body, check_ct=False)
        try:
            check_error(r, 400, "invalid_json")
        except AssertionError as e:
            problems.append("%r: %s" % (body, e))
    check(not problems, "; ".join(problems))
    eq(d.max_id(), before, "newest task id after bad requests")


def test_non_object_body_400(ctx):
    d = ctx.shared()
    before = d.max_id()
    for body in (b"[]", b'"echo"', b"42", b"null", b'[{"kind":"echo"}]'):
        r = d.post(body)
        check_error(r, 400, codes=("invalid_json", "invalid_field"))
    eq(d.max_id(), before, "newest task id after bad requests")


def test_wrong_types_400_message_names_field(ctx):
    d = ctx.shared()
    before = d.max_id()
    cases = [
        ({"args": {}}, "kind"), ({"kind": 5}, "kind"), ({"kind": None}, "kind"), ({"kind": ["echo"]}, "kind"),
        ({"kind": "echo", "priority": "high"}, "priority"), ({"kind": "echo", "priority": 1.5}, "priority"),
        ({"kind": "echo", "priority": 1001}, "priority"), ({"kind": "echo", "priority": -1001}, "priority"),
        ({"kind": "echo", "priority": True}, "priority"),
        ({"kind": "echo", "timeout_ms": 0}, "timeout_ms"), ({"kind": "echo", "timeout_ms": -1}, "timeout_ms"),
        ({"kind": "echo", "timeout_ms": "5"}, "timeout_ms"), ({"kind": "echo", "timeout_ms": 1.5}, "timeout_ms"),
        ({"kind": "echo", "max_attempts": 0}, "max_attempts"),
        ({"kind": "echo", "max_attempts": "2"}, "max_attempts"),
        ({"kind": "echo", "max_attempts": True}, "max_attempts"),
        ({"kind": "echo", "max_attempts": 1.5}, "max_attempts"),
    ]
    problems = []
    for body, field in cases:
        r = d.post(body)
        try:
            check_error(r, 400, "invalid_field", field=field)
        except AssertionError as e:
            problems.append("%s: %s" % (json.dumps(body), e))
    check(not problems, "; ".join(problems))
    eq(d.max_id(), before, "newest task id after bad requests")


def test_boundary_values_accepted(ctx):
    d = ctx.shared()
    for body in ({"kind": "echo", "priority": 1000}, {"kind": "echo", "priority": -1000},
                 {"kind": "echo", "timeout_ms": 600000, "max_attempts": 1},
                 {"kind": "echo", "max_attempts": 5}):
        t = d.submit(body, wait=5)
        for k in ("priority", "timeout_ms", "max_attempts"):
            if k in body:
                eq(t[k], body[k], k)
        eq(t["status"], "succeeded", "status of %s" % json.dumps(body))


def test_unknown_kind_400(ctx):
    d = ctx.shared()
    before = d.max_id()
    r = d.post({"kind": "no_such_kind", "args": {}})
    check_error(r, 400, "unknown_kind", field=("no_such_kind", "kind"))
    r = d.post({"kind": ""})
    check_error(r, 400, codes=("unknown_kind", "invalid_field"), field="kind")
    eq(d.max_id(), before, "newest task id after bad requests")


def test_unknown_route_404(ctx):
    d = ctx.shared()
    for m, p in (("GET", "/api/v1/nope"), ("GET", "/api/v2/tasks"), ("GET", "/api/v1/tasks/1/nope"),
                 ("POST", "/api/v1/nope"), ("GET", "/api/v1/workers/1"), ("GET", "/api/v1")):
        check_error(d.request(m, p), 404, "not_found")


def test_unknown_task_404(ctx):
    d = ctx.shared()
    check_error(d.request("GET", "/api/v1/tasks/999999999"), 404, "not_found")
    check_error(d.request("GET", "/api/v1/tasks/999999999?wait=5"), 404, "not_found")
    check_error(d.cancel(999999999), 404, "not_found")
    for p in ("/api/v1/tasks/abc", "/api/v1/tasks/-1", "/api/v1/tasks/0",
              "/api/v1/tasks/99999999999999999999999", "/api/v1/tasks/1x"):
        r = d.request("GET", p)
        check(r.status in (400, 404), "GET %s: expected 404 (or 400), got %r" % (p, r))
        check_error(r, r.status)


def test_wrong_method_405(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "echo"}, wait=5)
    tid = t["id"]
    for m, p in (("DELETE", "/api/v1/tasks"), ("PUT", "/api/v1/tasks"), ("DELETE", "/api/v1/tasks/%d" % tid),
                 ("PATCH", "/api/v1/tasks/%d" % tid), ("PUT", "/api/v1/tasks/%d" % tid),
                 ("GET", "/api/v1/tasks/%d/cancel" % tid), ("DELETE", "/api/v1/tasks/%d/cancel" % tid),
                 ("POST", "/api/v1/workers"), ("POST", "/healthz")):
        body = '{"kind":"echo"}' if m in ("PUT", "PATCH") else None
        check_error(d.request(m, p, body=body), 405, "method_not_allowed")
    eq(d.task(tid), t, "task after wrong-method requests")


def test_cancel_terminal_task_409(ctx):
    d = ctx.shared()
    ok = d.submit({"kind": "echo", "args": [1]}, wait=5)
    bad = d.submit({"kind": "fail", "args": {"message": "no"}}, wait=5)
    eq((ok["status"], bad["status"]), ("succeeded", "failed"), "statuses")
    for t in (ok, bad):
        check_error(d.cancel(t["id"]), 409, "task_terminal")
        eq(d.task(t["id"]), t, "task after refused cancel")


def _big_body(total):
    head, tail = '{"kind":"echo","args":{"pad":"', '"}}'
    return (head + "p" * (total - len(head) - len(tail)) + tail).encode()


def test_body_over_1mib_413(ctx):
    d = ctx.shared()
    before = d.max_id()
    for size in (1048577, 2 * 1048576):
        r = d.request("POST", "/api/v1/tasks", body=_big_body(size), timeout=20)
        check_error(r, 413, "payload_too_large")
    eq(d.max_id(), before, "newest task id after 413s")
    eq(d.request("GET", "/healthz").status, 200, "healthz after 413s")


def test_body_over_1mib_sent_without_waiting_gets_413_not_a_reset(ctx):
    # No "Expect: 100-continue": the client sends it all before it reads, as most do.
    d = ctx.shared()
    body = _big_body(2 * 1048576)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW)
    try:
        s.sendall(b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        s.sendall(body)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 413"), "answer to a 2 MiB body: %r" % data[:200])
    eq(json.loads(rest)["error"]["code"], "payload_too_large", "error code")


def test_body_of_exactly_1mib_accepted(ctx):
    d = ctx.shared()
    body = _big_body(1048576)
    r = d.request("POST", "/api/v1/tasks?wait=10", body=body, timeout=30)
    check(r.status == 201, "1 MiB body: expected 201, got %r" % r)
    eq(r.json["status"], "succeeded", "status")
    eq(r.json["result"], json.loads(body)["args"], "echo of the 1 MiB body")


def test_post_wait_returns_terminal_task(ctx):
    d = ctx.shared()
    r = d.post({"kind": "sleep", "args": {"seconds": 0.3}}, wait=5, timeout=15)
    eq(r.status, 201, "status code")
    eq(r.json["status"], "succeeded", "task status")
    between(r.elapsed, 0.29, 3 * SLOW, "POST ?wait=5 response time for sleep 0.3 (s)")
    eq(r.json["result"], {"slept": 0.3}, "result")


def test_post_and_get_wait_return_task_as_is_after_s(ctx):
    d = ctx.shared()
    r = d.post({"kind": "sleep", "args": {"seconds": 1.5}}, wait=0.3, timeout=10)
    eq(r.status, 201, "status code")
    check(r.json["status"] in ("queued", "running"), "status after ?wait=0.3 of a 1.5 s sleep: %s" % r.json["status"])
    between(r.elapsed, 0.28, 1.2 * SLOW, "POST ?wait=0.3 response time (s)")
    tid = r.json["id"]
    g = d.get(tid, wait=0.3)
    eq(g.status, 200, "GET status code")
    eq(g.json["status"], "running", "status after GET ?wait=0.3")
    between(g.elapsed, 0.28, 1.2 * SLOW, "GET ?wait=0.3 response time (s)")
    g = d.get(tid, wait=10)
    eq(g.json["status"], "succeeded", "status after GET ?wait=10")
    check(g.elapsed < 3 * SLOW, "GET ?wait=10 did not return at completion (took %.2fs)" % g.elapsed)


def test_get_wait_on_terminal_task_returns_at_once(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "echo"}, wait=5)
    g = d.get(t["id"], wait=300)
    eq(g.status, 200, "status code")
    check(g.elapsed < 1 * SLOW, "GET ?wait=300 of a finished task took %.2fs" % g.elapsed)
    r = d.post({"kind": "echo"}, wait=300, timeout=30)
    eq(r.status, 201, "POST ?wait=300")
    eq(r.json["status"], "succeeded", "status")
    check(r.elapsed < 2 * SLOW, "POST ?wait=300 of an echo took %.2fs" % r.elapsed)


def test_invalid_wait_400(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "echo"}, wait=5)
    before = d.max_id()
    problems = []
    for w in ("=0", "=-1", "=301", "=300.5", "=abc", "=", "=1e9", "=nan", "=inf", "=5s", "=0x10", "=%201",
              "=1e1", "=+1", "=1.2.3", "=.", ""):
        for what, r in (("POST", d.request("POST", "/api/v1/tasks?wait" + w, json_body={"kind": "echo"})),
                        ("GET", d.request("GET", "/api/v1/tasks/%d?wait%s" % (t["id"], w)))):
            try:
                check_error(r, 400, field="wait")
            except AssertionError as e:
                problems.append("%s ?wait%s: %s" % (what, w, e))
    check(not problems, "; ".join(problems))
    eq(d.max_id(), before, "newest task id after POSTs with a bad ?wait")


def test_workers_endpoint_lists_the_pool(ctx):
    d = ctx.shared()
    j = d.workers()
    ws = j["workers"]
    eq(len(ws), SHARED_WORKERS, "number of workers")
    check(isinstance(j.get("pool"), dict), "pool object missing: %r" % j)
    eq(j["pool"].get("size"), SHARED_WORKERS, "pool.size")
    eq(j["pool"].get("max_tasks_per_worker"), 0, "pool.max_tasks_per_worker default")
    pids = set()
    for w in ws:
        for k in ("pid", "state", "task_id", "tasks_done", "started_at"):
            check(k in w, "worker lacks %s: %r" % (k, w))
        check(w["state"] in ("idle", "busy"), "worker state %r" % w["state"])
        if w["state"] == "idle":
            eq(w["task_id"], None, "task_id of an idle worker")
        check(isinstance(w["tasks_done"], int) and w["tasks_done"] >= 0, "tasks_done %r" % w["tasks_done"])
        parse_time(w["started_at"])
        st = proc_stat(w["pid"])
        check(st is not None and st["state"] != "Z", "worker %d is not a live process" % w["pid"])
        eq(st["ppid"], d.pid, "parent of worker %d" % w["pid"])
        eq(st["pgrp"], w["pid"], "process group of worker %d (own group leader)" % w["pid"])
        pids.add(w["pid"])
    eq(len(pids), SHARED_WORKERS, "distinct worker pids")
    check(d.pid not in pids, "the daemon lists itself as a worker")


def test_workers_shows_busy_worker_and_counts_tasks_done(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "sleep", "args": {"seconds": 1}})
    t = d.wait_status(t["id"], "running")
    ws = d.workers()["workers"]
    busy = [w for w in ws if w["state"] == "busy"]
    eq([(w["pid"], w["task_id"]) for w in busy], [(t["worker_pid"], t["id"])], "busy workers (pid, task_id)")
    done_before = busy[0]["tasks_done"]
    for w in ws:
        if w["state"] == "idle":
            eq(w["task_id"], None, "task_id of idle worker %d" % w["pid"])
    t = d.wait_terminal(t["id"])
    eq(t["status"], "succeeded", "status")

    def after():
        for w in d.workers()["workers"]:
            if w["pid"] == t["worker_pid"] and w["state"] == "idle":
                return w
    w = wait_until(after, 3, "worker to be idle again")
    eq(w["tasks_done"], done_before + 1, "tasks_done after one more task")
    eq(w["task_id"], None, "task_id when idle")


def test_400_error_codes_are_the_decided_ones(ctx):
    """The README's codes: invalid_json (body), invalid_field (a top-level field), unknown_kind,
    invalid_args (a kind's args), invalid_query (a query parameter)."""
    d = ctx.shared()
    t = d.submit({"kind": "echo"}, wait=5)
    cases = [
        ("POST", "/api/v1/tasks", b'{"kind":', "invalid_json"),
        ("POST", "/api/v1/tasks", {"kind": "echo", "priority": "x"}, "invalid_field"),
        ("POST", "/api/v1/tasks", {"kind": "nope"}, "unknown_kind"),
        ("POST", "/api/v1/tasks", {"kind": "sleep", "args": {"seconds": -1}}, "invalid_args"),
        ("POST", "/api/v1/tasks", {"kind": "square", "args": {"numbers": "x"}}, "invalid_args"),
        ("POST", "/api/v1/tasks", {"kind": "cube", "args": {}}, "invalid_args"),
        ("POST", "/api/v1/tasks", {"kind": "cpu", "args": {"n": 1}}, "invalid_args"),
        ("POST", "/api/v1/tasks", {"kind": "fail", "args": {"message": 1}}, "invalid_args"),
        ("POST", "/api/v1/tasks", {"kind": "exec", "args": {"argv": []}}, "invalid_args"),
        ("POST", "/api/v1/tasks?wait=0", {"kind": "echo"}, "invalid_query"),
        ("GET", "/api/v1/tasks/%d?wait=abc" % t["id"], None, "invalid_query"),
        ("GET", "/api/v1/tasks?limit=0", None, "invalid_query"),
        ("GET", "/api/v1/tasks?status=bogus", None, "invalid_query"),
        ("GET", "/api/v1/tasks?before=abc", None, "invalid_query"),
    ]
    wrong = []
    for m, p, body, code in cases:
        if isinstance(body, dict):
            r = d.request(m, p, json_body=body)
        else:
            r = d.request(m, p, body=body)
        e = check_error(r, 400)
        if e["code"] != code:
            wrong.append("%s %s %s -> %s (expected %s)" % (m, p, body if isinstance(body, dict) else "", e["code"],
                                                           code))
    check(not wrong, "; ".join(wrong))


def test_keep_alive_connection_serves_many_requests(ctx):
    """One HTTP/1.1 connection carries successive requests, errors included (curl, wrk, browsers)."""
    d = ctx.shared()
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10 * SLOW)
    try:
        seq = [("POST", "/api/v1/tasks?wait=5", '{"kind":"echo","args":"k1"}', 201),
               ("GET", "/healthz", None, 200), ("POST", "/api/v1/tasks", "{bad", 400),
               ("GET", "/api/v1/nope", None, 404), ("DELETE", "/api/v1/tasks", None, 405),
               ("POST", "/api/v1/tasks?wait=abc", '{"kind":"echo"}', 400),
               ("POST", "/api/v1/tasks?wait=5", '{"kind":"echo","args":"k2"}', 201), ("GET", "/api/v1/workers", None, 200)]
        for m, p, b, want in seq:
            try:
                conn.request(m, p, body=b)
                r = conn.getresponse()
                body = json.loads(r.read())
            except (OSError, http.client.HTTPException, ValueError) as e:
                raise AssertionError("%s %s on a kept-alive connection: %s: %s" % (m, p, type(e).__name__, e))
            eq(r.status, want, "%s %s on a kept-alive connection" % (m, p))
            if want == 201:
                eq(body["status"], "succeeded", "status")
    finally:
        conn.close()


def test_short_waits_end_when_their_time_is_up(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "sleep", "args": {"seconds": 3}})
    d.wait_status(t["id"], "running")
    # Nothing else happens meanwhile: the deadline itself must end each wait.
    for i in range(3):
        g = d.get(t["id"], wait=0.2)
        eq((g.status, g.json["status"]), (200, "running"), "GET ?wait=0.2 #%d" % i)
        between(g.elapsed, 0.19, 0.2 + 0.15 * SLOW, "GET ?wait=0.2 #%d response time (s)" % i)
        time.sleep(0.37)
    r = d.post({"kind": "sleep", "args": {"seconds": 3}}, wait=0.2, timeout=10)
    eq(r.status, 201, "POST ?wait=0.2")
    between(r.elapsed, 0.19, 0.2 + 0.15 * SLOW, "POST ?wait=0.2 response time (s)")
    for tid in (t["id"], r.json["id"]):
        eq(d.cancel(tid).status, 200, "cancel of sleep %d" % tid)
