"""Nothing a task started outlives it, even processes that left the worker's
process group (setsid) or whose parent already exited."""
import os
import signal
import time
import uuid

from harness import SLOW, check, describe, eq, proc_alive, procs_with_env, wait_until
from harness import wait_marked_gone as _gone


def _mark():
    k, v = "TP_MARK", uuid.uuid4().hex
    return "%s=%s" % (k, v), {k: v}


def _escaped(mark, sleeps):
    """Waits until the command's sleeps run, one of them in a process group of its own,
    and returns the command's processes.  Counting processes is not enough: the shell's
    children show up as forks of sh before they exec setsid and sleep."""
    def ready():
        procs = procs_with_env(mark)
        running = [p for p in procs if p["comm"] == "sleep"]
        return len(running) >= sleeps and len({p["pgrp"] for p in procs}) >= 2 and procs
    return wait_until(ready, 5, "%d sleeps of the command to run, one after setsid" % sleeps)


def _escaping_command(env, tail="sleep 100"):
    # setsid puts the first sleep in a session (and process group) of its own
    return {"kind": "exec", "args": {"argv": ["/bin/sh", "-c", "setsid sleep 100 & " + tail],
                                     "env": env}}


def test_setsid_escapee_is_killed_on_timeout(ctx):
    d = ctx.daemon("--allow-exec", workers=1)
    d.wait_pool(1)
    mark, env = _mark()
    body = _escaping_command(env)
    body["timeout_ms"] = 1000
    t = d.submit(body)
    _escaped(mark, 2)
    t = d.wait_terminal(t["id"], 10)
    eq(t["status"], "timed_out", "status")
    _gone(mark, "timed-out")


def test_setsid_escapee_is_killed_on_cancel(ctx):
    d = ctx.daemon("--allow-exec", workers=1)
    d.wait_pool(1)
    mark, env = _mark()
    t = d.submit(_escaping_command(env))
    _escaped(mark, 2)
    r = d.cancel(t["id"])
    eq((r.status, r.json["status"]), (200, "cancelled"), "cancel answer")
    _gone(mark, "cancelled")


def test_finished_command_ends_at_once_and_its_leftovers_die(ctx):
    """Background jobs inherit the command's pipes; the task must not wait for them
    to close, and they must not run on after the task."""
    d = ctx.daemon("--allow-exec", workers=1)
    d.wait_pool(1)
    mark, env = _mark()
    start = time.monotonic()
    t = d.submit(_escaping_command(env, "sleep 100 & echo started"), wait=20)
    took = time.monotonic() - start
    eq(t["status"], "succeeded", "status")
    eq(t["result"]["stdout"], "started\n", "stdout")
    check(took < 3 * SLOW, "the task took %.1fs: it waited for its background jobs" % took)
    _gone(mark, "finished")
    eq(d.submit({"kind": "echo", "args": 1}, wait=5)["status"], "succeeded", "the worker still works")


def test_kill_9_of_the_daemon_kills_setsid_escapees(ctx):
    """Five times over: each of the dying daemon's threads signals the worker, and a
    worker that a second signal could kill before its handler ran (SA_RESETHAND did
    that) left the escapees behind about one kill in twenty-five, one in six under
    load: one round alone would let that slip through."""
    for n in range(5):
        d = ctx.daemon("--allow-exec", workers=1, db=os.path.join(ctx.tmp, "kill9-%d.db" % n))
        mark, env = _mark()
        d.submit(_escaping_command(env))
        _escaped(mark, 2)
        d.signal(signal.SIGKILL)
        d.wait_exit(5)
        _gone(mark, "orphaned (round %d)" % (n + 1))


def test_worker_killed_from_outside_takes_setsid_escapees_along(ctx):
    """The worker dies mid-task (SIGKILL from outside, so no handler runs): what its
    command started, even outside its process group, must not run on."""
    d = ctx.daemon("--allow-exec", workers=1)
    d.wait_pool(1)
    mark, env = _mark()
    body = _escaping_command(env)
    body["max_attempts"] = 1
    t = d.submit(body)
    _escaped(mark, 2)
    t = d.wait_status(t["id"], "running")
    os.kill(t["worker_pid"], signal.SIGKILL)
    t = d.wait_terminal(t["id"], 10)
    eq((t["status"], t["error"]["code"]), ("failed", "worker_died"), "status / error.code")
    _gone(mark, "orphaned")
    d.wait_pool(1)


def test_leftovers_of_a_worker_and_daemon_dying_together_die_at_the_next_start(ctx):
    """The double fault: a worker dies, and the daemon dies before it can end what the
    worker's command left running.  The command itself dies with its worker; its own
    children outlive both, and the next start on the same database kills them."""
    d = ctx.daemon("--allow-exec", workers=1)
    d.wait_pool(1)
    mark, env = _mark()
    try:
        _double_fault(ctx, d, mark, env)
    finally:                             # whatever this test left, should it fail halfway
        for p in procs_with_env(mark):
            try:
                os.kill(p["pid"], signal.SIGKILL)
            except OSError:
                pass


def _double_fault(ctx, d, mark, env):
    t = d.submit(_escaping_command(env, "sleep 100 & sleep 100"))
    procs = _escaped(mark, 3)
    t = d.wait_status(t["id"], "running")
    d.signal(signal.SIGSTOP)             # it cannot reap the worker now
    os.kill(t["worker_pid"], signal.SIGKILL)
    sh = [p for p in procs if p["comm"] == "sh"]
    eq(len(sh), 1, "the command's shell among %s" % describe(procs))
    wait_until(lambda: not proc_alive(sh[0]["pid"]), 3, "the command to die with its worker")
    d.signal(signal.SIGKILL)
    d.wait_exit(5)
    left = [p for p in procs if proc_alive(p["pid"])]
    check(left, "nothing outlived the double fault: the test proves nothing")
    d2 = ctx.daemon("--allow-exec", workers=1, db=d.db, name="restarted daemon")
    _gone(mark, "left by the earlier run")
    check(any("an earlier run" in l for l in d2.tail(200)), "no log line about the leftovers")
