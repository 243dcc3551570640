"""The exec kind: argv, stdin, env, cwd, exit status, signals, output capture and caps,
killing the whole process group on timeout/cancel, and 403 without --allow-exec."""
import os
import sys
import uuid

from harness import SHARED_WORKERS, check, check_error, describe, eq
from harness import wait_marked as _marked, wait_marked_gone as _gone


def _exec(d, args, wait=20, **extra):
    body = {"kind": "exec", "args": args}
    body.update(extra)
    t = d.submit(body, wait=wait)
    check(t["status"] not in ("queued", "running"), "exec %s not finished after ?wait=%s" % (args, wait))
    return t


def _result(t, **want):
    r = t["result"]
    check(isinstance(r, dict), "exec result is not an object: %r" % (r,))
    eq(set(r), {"exit_code", "signal", "stdout", "stderr", "truncated"}, "exec result fields")
    for k, v in want.items():
        eq(r[k], v, "result.%s" % k)
    return r


def _fails_to_start(d, args, message):
    """A command that cannot start: the task fails with exec_failed and a message saying why."""
    r = d.post({"kind": "exec", "args": args}, wait=10, timeout=20)
    eq(r.status, 201, "POST exec %s status code" % args)
    eq(r.json["status"], "failed", "status of exec %s" % args)
    eq(r.json["error"], {"code": "exec_failed", "message": message}, "error of exec %s" % args)


def test_exec_disabled_without_allow_exec_403(ctx):
    d = ctx.daemon(workers=1)
    r = d.post({"kind": "exec", "args": {"argv": ["/bin/true"]}})
    check_error(r, 403, "exec_disabled")
    r = d.post({"kind": "exec", "args": {"argv": ["/bin/true"]}}, wait=5)
    check_error(r, 403, "exec_disabled")
    eq(d.list()["tasks"], [], "tasks after refused exec")
    eq(d.submit({"kind": "echo", "args": 1}, wait=5)["status"], "succeeded", "echo on that daemon")


def test_exec_argv_runs_without_shell(ctx):
    d = ctx.shared()
    t = _exec(d, {"argv": ["/bin/echo", "hello", "world"]})
    eq(t["status"], "succeeded", "status")
    _result(t, exit_code=0, signal=None, stdout="hello world\n", stderr="", truncated=False)
    eq(t["error"], None, "error")
    t = _exec(d, {"argv": ["/bin/echo", "$HOME;*", "a b", "`id`"]})
    _result(t, stdout="$HOME;* a b `id`\n", exit_code=0)


def test_exec_stdin_is_fed(ctx):
    d = ctx.shared()
    text = "line one\nline two \u2603\n" + "x" * 100000 + "\n"
    t = _exec(d, {"argv": ["/bin/cat"], "stdin": text})
    eq(t["status"], "succeeded", "status")
    _result(t, stdout=text, exit_code=0, truncated=False)
    t = _exec(d, {"argv": ["/bin/cat"]})
    _result(t, stdout="", exit_code=0)


def test_exec_env_and_cwd(ctx):
    d = ctx.shared()
    t = _exec(d, {"argv": ["/bin/sh", "-c", 'printf "%s|%s" "$FOO" "$BAR"'],
                  "env": {"FOO": "bar baz", "BAR": "=x="}})
    eq(t["status"], "succeeded", "status")
    _result(t, stdout="bar baz|=x=", exit_code=0)
    cwd = os.path.realpath(ctx.tmp)
    t = _exec(d, {"argv": ["/bin/pwd"], "cwd": cwd})
    _result(t, stdout=cwd + "\n", exit_code=0)
    _fails_to_start(d, {"argv": ["/bin/true"], "cwd": "/nonexistent/dir/for/test"},
                    "cannot change to directory '/nonexistent/dir/for/test': No such file or directory")


def test_exec_nonzero_exit_fails_and_captures_both_streams(ctx):
    d = ctx.shared()
    t = _exec(d, {"argv": ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]}, max_attempts=2)
    eq(t["status"], "failed", "status")
    _result(t, exit_code=3, signal=None, stdout="out\n", stderr="err\n", truncated=False)
    check(t["error"] is not None, "error is null for exit code 3")
    eq(t["attempts"], 1, "attempts (a failing command is not retried)")
    t = _exec(d, {"argv": ["/bin/false"]})
    eq(t["status"], "failed", "status of /bin/false")
    _result(t, exit_code=1, signal=None)
    _fails_to_start(d, {"argv": ["/nonexistent/program"]},
                    "cannot run '/nonexistent/program': No such file or directory")


def test_exec_killed_by_signal_reports_signal(ctx):
    d = ctx.shared()
    t = _exec(d, {"argv": ["/bin/sh", "-c", "echo before; kill -TERM $$; echo after"]})
    eq(t["status"], "failed", "status")
    _result(t, exit_code=None, signal=15, stdout="before\n")
    t = _exec(d, {"argv": ["/bin/sh", "-c", "kill -KILL $$"]})
    _result(t, exit_code=None, signal=9)
    eq(t["status"], "failed", "status")
    # the worker itself survived: the pool is intact
    eq(len(d.wait_pool(SHARED_WORKERS)), SHARED_WORKERS, "pool size")


def test_exec_large_output_on_both_streams_no_deadlock(ctx):
    d = ctx.shared()
    # stderr first: a worker that reads stdout to EOF before stderr deadlocks here
    script = ("head -c 300000 /dev/zero | tr '\\0' e >&2; head -c 300000 /dev/zero | tr '\\0' o; "
              "head -c 200000 /dev/zero | tr '\\0' E >&2")
    t = _exec(d, {"argv": ["/bin/sh", "-c", script]}, wait=20, timeout_ms=20000)
    eq(t["status"], "succeeded", "status")
    r = _result(t, exit_code=0, truncated=False)
    eq(len(r["stdout"]), 300000, "stdout length")
    eq(r["stdout"], "o" * 300000, "stdout content")
    eq(r["stderr"], "e" * 300000 + "E" * 200000, "stderr content")


def test_exec_output_capped_at_1mib_by_default(ctx):
    d = ctx.shared()
    script = ("head -c 1500000 /dev/zero | tr '\\0' o; head -c 1200000 /dev/zero | tr '\\0' e >&2; "
              "echo done >&2")
    t = _exec(d, {"argv": ["/bin/sh", "-c", script]}, wait=30, timeout_ms=30000)
    r = _result(t, truncated=True)
    eq(len(r["stdout"]), 1048576, "stdout length (cap 1 MiB)")
    eq(len(r["stderr"]), 1048576, "stderr length (cap 1 MiB)")
    eq(r["stdout"], "o" * 1048576, "stdout content")
    # the command ran to its end: the worker kept draining past the cap
    eq((t["status"], r["exit_code"], r["signal"]), ("succeeded", 0, None), "status / exit_code / signal")


def test_exec_max_output_flag_truncates(ctx):
    d = ctx.daemon("--allow-exec", "--max-output", "1000", workers=1)
    t = _exec(d, {"argv": ["/bin/sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x; echo small >&2"]})
    r = _result(t, truncated=True, stderr="small\n", exit_code=0)
    eq(r["stdout"], "x" * 1000, "stdout capped at --max-output 1000")
    t = _exec(d, {"argv": ["/bin/sh", "-c", "head -c 1000 /dev/zero | tr '\\0' y"]})
    _result(t, truncated=False, stdout="y" * 1000, exit_code=0)


def test_exec_two_full_streams_of_control_bytes_fit_any_max_output(ctx):
    # Each \x01 is 6 bytes once JSON-escaped: the frame must hold 12 x --max-output and the keys.
    n = 1500000
    d = ctx.daemon("--allow-exec", "--max-output", str(n), workers=1)
    script = "head -c %d /dev/zero | tr '\\0' '\\1'; head -c %d /dev/zero | tr '\\0' '\\1' >&2" % (n, n)
    t = _exec(d, {"argv": ["/bin/sh", "-c", script]}, wait=60)
    r = _result(t, truncated=False, exit_code=0)
    eq((r["stdout"], r["stderr"]), ("\x01" * n, "\x01" * n), "both streams, whole")


def test_exec_invalid_args_400(ctx):
    d = ctx.shared()
    before = d.max_id()
    cases = [({}, "argv"), ({"argv": []}, "argv"), ({"argv": "ls"}, "argv"), ({"argv": [1]}, "argv"),
             ({"argv": ["/bin/true"], "stdin": 5}, "stdin"), ({"argv": ["/bin/true"], "env": {"A": 1}}, "env"),
             ({"argv": ["/bin/true"], "env": ["A=1"]}, "env"), ({"argv": ["/bin/true"], "cwd": 5}, "cwd"),
             ({"argv": ["/bin/true"], "env": {"TASKPOOL_DB": "/tmp/x"}}, "TASKPOOL_DB")]
    problems = []
    for args, field in cases:
        try:
            check_error(d.post({"kind": "exec", "args": args}), 400, field=field)
        except AssertionError as e:
            problems.append("%s: %s" % (args, e))
    r = d.post({"kind": "exec", "args": {"argv": ["/bin/true"] * 4097}})
    check_error(r, 400, field="argv")
    check("at most 4096" in r.json["error"]["message"], "message for 4097 argv strings: %r" % r.json)
    check(not problems, "; ".join(problems))
    eq(d.max_id(), before, "newest task id after bad requests")






def test_exec_timeout_kills_whole_process_group(ctx):
    d = ctx.daemon("--allow-exec", workers=2)
    pool = d.wait_pool(2)
    mark = "TP_MARK=%s" % uuid.uuid4().hex
    k, v = mark.split("=")
    t = d.submit({"kind": "exec", "args": {"argv": ["/bin/sh", "-c", "sleep 100 & sleep 100; echo never"],
                                           "env": {k: v}}, "timeout_ms": 1000, "max_attempts": 3})
    t = d.wait_status(t["id"], "running")
    w = t["worker_pid"]
    procs = _marked(mark, 2)
    # the command runs as a child of the worker
    check(any(p["ppid"] == w for p in procs), "no process of the command is a child of worker %d: %s"
          % (w, describe(procs)))
    t = d.wait_terminal(t["id"], 10)
    eq(t["status"], "timed_out", "status")
    eq(t["error"]["code"], "timed_out", "error.code")
    eq(t["attempts"], 1, "attempts (a timeout is final)")
    _gone(mark, "timed-out")
    new = d.wait_pool(2)
    check(pool - {w} <= new, "the other worker was replaced too: %s -> %s" % (pool, new))
    eq(d.submit({"kind": "echo", "args": 2}, wait=5)["status"], "succeeded", "echo after the timeout")


def test_exec_cancel_kills_whole_process_group(ctx):
    d = ctx.daemon("--allow-exec", workers=2)
    d.wait_pool(2)
    mark = "TP_MARK=%s" % uuid.uuid4().hex
    k, v = mark.split("=")
    t = d.submit({"kind": "exec", "args": {"argv": ["/bin/sh", "-c", "sleep 100 & sleep 100"],
                                           "env": {k: v}}, "max_attempts": 2})
    d.wait_status(t["id"], "running")
    _marked(mark, 2)
    r = d.cancel(t["id"])
    eq(r.status, 200, "cancel status code")
    eq(r.json["status"], "cancelled", "status in the cancel answer")
    _gone(mark, "cancelled")
    t = d.wait_terminal(t["id"])
    eq((t["status"], t["error"]["code"], t["attempts"]), ("cancelled", "cancelled", 1),
       "status / error.code / attempts")
    d.wait_pool(2)
    eq(d.submit({"kind": "echo", "args": 3}, wait=5)["status"], "succeeded", "echo after the cancel")


def test_usage_is_per_task_cpu_and_memory_of_the_work(ctx):
    d = ctx.daemon("--allow-exec", workers=1)
    t = d.submit({"kind": "cpu", "args": {"n": 300000000}}, wait=60)
    u = t["usage"]
    cpu = u["user_ms"] + u["sys_ms"]
    check(100 <= cpu <= t["run_ms"] + 50, "cpu n=3e8: user+sys %d ms for run_ms %s" % (cpu, t["run_ms"]))
    e = d.submit({"kind": "echo"}, wait=5)
    check(e["usage"]["user_ms"] + e["usage"]["sys_ms"] <= 20,
          "echo after a cpu task on the same worker reports %r (usage must be per task)" % e["usage"])
    t = _exec(d, {"argv": ["/bin/sh", "-c", "i=0; while [ $i -lt 150000 ]; do i=$((i+1)); done"]})
    eq(t["status"], "succeeded", "status")
    check(t["usage"]["user_ms"] + t["usage"]["sys_ms"] >= 80,
          "exec of a busy loop (%s ms) reports usage %r: the command's usage is missing"
          % (t["run_ms"], t["usage"]))
    t = _exec(d, {"argv": [sys.executable, "-c", "b = bytearray(150 * 1024 * 1024)\nb[::4096] = b'x' * len(b[::4096])"]})
    eq(t["status"], "succeeded", "status of the 150 MiB command")
    check(t["usage"]["max_rss_kb"] >= 140 * 1024, "max_rss_kb of a command holding 150 MiB: %r" % t["usage"])
    t = _exec(d, {"argv": ["/bin/true"]})
    check(t["usage"]["max_rss_kb"] < 50 * 1024, "max_rss_kb of /bin/true after a 150 MiB command: %r "
          "(usage must be per task)" % t["usage"])
