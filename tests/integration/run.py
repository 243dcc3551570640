#!/usr/bin/env python3
"""
Integration tests for taskpoold: starts the real binary ($TASKPOOLD) on
127.0.0.1 with an ephemeral port and a temporary database, and proves the
behaviour of issue 2 over HTTP, /proc and the SQLite file.

usage: TASKPOOLD=/abs/bin/taskpoold python3 tests/integration/run.py [substring|module ...]
(with arguments, only the tests whose name contains one of them, or that live in a
module named by one of them, e.g. test_pool, are run)

Prints one line per test ("name ok (1.23s)" or "name FAIL: reason") on stdout,
daemon log tails of failing tests on stderr, then one "FAILED name: reason" line per
failure, and ends with "N passed, N failed".
Exit status is 1 if any test failed.
"""
import importlib
import inspect
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

# These run first, in this order; any other test_*.py in this directory follows, by name.
MODULES = ["test_cli", "test_api", "test_kinds", "test_exec", "test_list", "test_auth",
           "test_pool", "test_lifecycle", "test_sqlite"]


def collect():
    tests = []
    others = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py")
                    and f[:-3] not in MODULES)
    for mod_name in [m for m in MODULES if os.path.exists(os.path.join(HERE, m + ".py"))] + others:
        mod = importlib.import_module(mod_name)
        fns = [(inspect.getsourcelines(f)[1], n, f) for n, f in vars(mod).items()
               if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == mod_name]
        tests += [(mod_name, n, f) for _, n, f in sorted(fns)]
    return tests


def reason_of(exc):
    if isinstance(exc, harness.Fail):
        return str(exc).replace("\n", " | ")
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    for fr in reversed(tb):
        if os.path.basename(fr.filename).startswith(("test_", "harness")):
            where = " at %s:%d" % (os.path.basename(fr.filename), fr.lineno)
            break
    return ("%s: %s%s" % (type(exc).__name__, exc, where)).replace("\n", " | ")


def run_one(name, fn):
    ctx = harness.Ctx(name)
    t0 = time.monotonic()
    reason = None
    try:
        fn(ctx)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: B902 - a test may fail any way it likes
        reason = reason_of(e)
    logs = ctx.logs() if reason else []
    problems = ctx.cleanup()
    if problems and reason is None:
        reason = "; ".join(problems)
        logs = ctx.logs()
    elif problems:
        reason += " [cleanup: %s]" % "; ".join(problems)
    return reason, time.monotonic() - t0, logs


def shared_shutdown_test():
    """The shared daemon exits 0 on SIGTERM and leaves nothing behind."""
    d = harness.shared_close()
    rc, forced = d.stop()
    problems = []
    if forced:
        problems.append("did not exit within %.0fs of SIGTERM" % (15 * harness.SLOW))
    elif rc != 0:
        problems.append("exit status %s after SIGTERM, expected 0" % rc)
    problems += d.close()
    return problems, d


def main(argv):
    if not os.access(harness.BIN, os.X_OK):
        print("taskpoold binary not found or not executable: %s (set TASKPOOLD)" % harness.BIN)
        print("0 passed, 1 failed")
        return 1
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    wanted = argv[1:]
    tests = [(n, f) for m, n, f in collect() if not wanted or any(w in n or w == m for w in wanted)]
    passed = failed = 0
    failures = []
    t_start = time.monotonic()
    try:
        for name, fn in tests:
            reason, dur, logs = run_one(name, fn)
            if reason is None:
                passed += 1
                print("%s ok (%.2fs)" % (name, dur), flush=True)
            else:
                failed += 1
                failures.append("%s: %s" % (name, reason))
                print("%s FAIL: %s" % (name, reason), flush=True)
                if logs:
                    print("\n".join(["=== %s" % name] + logs), file=sys.stderr, flush=True)
        if harness.shared_daemon() is not None:
            name = "test_shared_daemon_sigterm_exits_0_and_leaves_nothing"
            t0 = time.monotonic()
            problems, d = shared_shutdown_test()
            if problems:
                failed += 1
                failures.append("%s: %s" % (name, "; ".join(problems)))
                print("%s FAIL: %s" % (name, "; ".join(problems)), flush=True)
                print("\n".join(["=== %s" % name] + ["    " + l for l in d.tail(30)]),
                      file=sys.stderr, flush=True)
            else:
                passed += 1
                print("%s ok (%.2fs)" % (name, time.monotonic() - t0), flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        failed += 1
    finally:
        harness.kill_everything()
    print("total time %.1fs" % (time.monotonic() - t_start), file=sys.stderr)
    # Repeated last on stdout: CI logs are often read from the tail.
    for f in failures:
        print("FAILED %s" % f, flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
