"""The built-in kinds: echo, sleep, square, cube, cpu, fail (shared daemon)."""
import json

from harness import check, check_error, eq, parse_time


def _run(d, kind, args, wait=10):
    t = d.submit({"kind": kind, "args": args}, wait=wait)
    check(t["status"] not in ("queued", "running"), "%s %s not finished after ?wait=%s: %s"
          % (kind, json.dumps(args), wait, t["status"]))
    return t


def _bad_args(d, cases):
    before = d.max_id()
    problems = []
    for kind, args, field in cases:
        r = d.post({"kind": kind, "args": args})
        try:
            check_error(r, 400, field=field)
        except AssertionError as e:
            problems.append("%s %s: %s" % (kind, json.dumps(args), e))
    check(not problems, "; ".join(problems))
    eq(d.max_id(), before, "newest task id after bad requests")


def test_echo_returns_args_exactly(ctx):
    d = ctx.shared()
    for args in ({"a": [1, 2.5, "x", None, True, False, {"b": {}}], "u": "\u00fcn\u00efcode \u2603 \U0001F600",
                  "n": -3, "z": 0.1, "big": 123456789012, "esc": "quote\" back\\ nl\n tab\t /"},
                 [1, "two", [3]], "just a string", 42, None, {}, []):
        t = _run(d, "echo", args)
        eq(t["status"], "succeeded", "status of echo %s" % json.dumps(args))
        eq(t["args"], args, "args of echo")
        eq(t["result"], args, "result of echo")
        eq(t["error"], None, "error")
        eq(t["attempts"], 1, "attempts")


def test_echo_returns_numbers_as_the_same_doubles(ctx):
    d = ctx.shared()
    body = ('{"kind":"echo","args":{"max_safe":9007199254740991,"sum":0.30000000000000004,'
            '"max":1.7976931348623157e308,"tiny":5e-324,"neg":-2.5}}')
    r = d.request("POST", "/api/v1/tasks?wait=5", body=body.encode())
    eq(r.status, 201, "POST echo")
    want = json.loads(body)["args"]
    eq(r.json["args"], want, "args as stored")
    eq(r.json["result"], want, "result of echo")
    t = _run(d, "square", {"numbers": [0.1, 3037000499]})
    eq(t["result"], {"results": [0.1 * 0.1, 3037000499.0 * 3037000499.0]}, "square of 0.1 and of 3037000499")


def test_echo_preserves_control_chars_and_refuses_nul(ctx):
    """Echo gives back control characters exactly.  U+0000 cannot survive cJSON's C
    strings, so rather than return less than it got, the daemon refuses it up front."""
    d = ctx.shared()
    args = {"t": "\u0001\u001f\t\n", "u": "\u00e9\U0001F600"}
    t = _run(d, "echo", args)
    eq(t["result"], args, "result of echo with control characters")
    r = d.request("POST", "/api/v1/tasks", json_body={"kind": "echo", "args": {"s": "a\u0000b"}})
    e = check_error(r, 400)
    eq(e["code"], "invalid_json", "code for U+0000 in a string")
    check("\\u0000" in e["message"], "message names \\u0000: %r" % e["message"])


def test_sleep_sleeps_and_reports_seconds(ctx):
    d = ctx.shared()
    t = _run(d, "sleep", {"seconds": 0.25})
    eq(t["status"], "succeeded", "status")
    eq(t["result"], {"slept": 0.25}, "result")
    run = parse_time(t["finished_at"]) - parse_time(t["started_at"])
    check(run >= 245, "sleep 0.25 ran only %d ms" % run)
    t = _run(d, "sleep", {"seconds": 0})
    eq((t["status"], t["result"]), ("succeeded", {"slept": 0}), "sleep 0")


def test_sleep_invalid_args_400(ctx):
    d = ctx.shared()
    _bad_args(d, [("sleep", {}, "seconds"), ("sleep", {"seconds": -1}, "seconds"),
                  ("sleep", {"seconds": 3601}, "seconds"), ("sleep", {"seconds": "1"}, "seconds"),
                  ("sleep", {"seconds": None}, "seconds"), ("sleep", 5, ("args", "seconds"))])


def test_square_and_cube(ctx):
    d = ctx.shared()
    cases = [("square", [2, 3, 8, 9], [4, 9, 64, 81]), ("square", [1.5, -2, 0], [2.25, 4, 0]),
             ("square", [], []), ("cube", [2, 3, -1], [8, 27, -1]), ("cube", [0.5, 10], [0.125, 1000])]
    for kind, nums, want in cases:
        t = _run(d, kind, {"numbers": nums})
        eq(t["status"], "succeeded", "status of %s %s" % (kind, nums))
        eq(t["result"], {"results": want}, "result of %s %s" % (kind, nums))


def test_square_cube_invalid_args_400(ctx):
    d = ctx.shared()
    _bad_args(d, [("square", {}, "numbers"), ("square", {"numbers": "1,2"}, "numbers"),
                  ("square", {"numbers": [1, "2"]}, "numbers"), ("cube", {"numbers": {}}, "numbers"),
                  ("cube", {"numbers": [None]}, "numbers")])


def test_cpu_counts_primes(ctx):
    d = ctx.shared()
    for n, primes in ((100, 25), (2, 0), (3, 1), (10, 4), (1000, 168), (1000000, 78498),
                      (1000000000, 50847534)):
        t = _run(d, "cpu", {"n": n}, wait=60)
        eq(t["status"], "succeeded", "status of cpu %d" % n)
        eq(t["result"], {"primes": primes}, "result of cpu n=%d" % n)


def test_cpu_invalid_args_400(ctx):
    d = ctx.shared()
    _bad_args(d, [("cpu", {}, "n"), ("cpu", {"n": 1}, "n"), ("cpu", {"n": 1000000001}, "n"),
                  ("cpu", {"n": "100"}, "n"), ("cpu", {"n": 100.5}, "n")])


def test_fail_ends_failed_with_message_and_no_retry(ctx):
    d = ctx.shared()
    t = d.submit({"kind": "fail", "args": {"message": "boom: it broke"}, "max_attempts": 3}, wait=10)
    eq(t["status"], "failed", "status")
    check(t["error"] is not None, "error is null")
    eq(t["error"]["message"], "boom: it broke", "error.message")
    check(t["error"]["code"], "error.code empty")
    eq(t["attempts"], 1, "attempts (a failing kind is not retried)")
    check(t["finished_at"] is not None and t["worker_pid"] is not None, "finished_at / worker_pid")


def test_fail_invalid_args_400(ctx):
    d = ctx.shared()
    _bad_args(d, [("fail", {"message": 5}, "message"), ("fail", {"message": ["x"]}, "message")])
