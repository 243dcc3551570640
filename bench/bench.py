#!/usr/bin/env python3
"""bench/bench.py: the `make bench` benchmark of taskpoold's HTTP task path.

What it measures, per run:
  * starts TASKPOOLD (env, default <repo>/bin/taskpoold) on 127.0.0.1:0 with a
    fresh database in a temporary directory, default --workers (one per CPU)
    and the default durability (SQLite synchronous=FULL); `--sync normal`
    for the optional second run;
  * drives it with `wrk -t2 -c32 -d10s --latency -s bench/post.lua`, every
    keep-alive connection POSTing {"kind":"echo","args":{"i":1}} to
    /api/v1/tasks; post.lua counts the 201s and collects the task ids;
  * waits (bounded) until no task is queued or running;
  * reads the daemon's and the workers' peak RSS (VmHWM), stops the daemon
    with SIGTERM (SIGKILL after 15 s) and checks it exits 0;
  * reads the database read-only for exact figures: tasks recorded, all
    succeeded?, every acknowledged id present, end-to-end throughput =
    N / (max(finished_at) - min(created_at)), and queue->done percentiles.

Exits non-zero when the daemon fails (does not start, dies, answers anything
but 201, does not drain, does not stop cleanly) or a task is lost (a 201 whose
task is missing from the database, or a task that did not succeed).

Environment: TASKPOOLD, BENCH_DURATION (e.g. 10s, 30, 1m), BENCH_CONNECTIONS,
BENCH_THREADS, BENCH_WORKERS, BENCH_SYNC (full|normal|both),
BENCH_DRAIN_TIMEOUT (seconds).  Flags override the environment; see --help.
Python 3 standard library only.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LUA = os.path.join(HERE, "post.lua")
TARGET_TPS = 10000          # the floor, end to end, synchronous=FULL
LISTEN_RE = re.compile(r"listening on [0-9.]+:(\d+)")
START_TIMEOUT = 10.0        # seconds to wait for the "listening on" line
STOP_GRACE = 15.0           # seconds between SIGTERM and SIGKILL


class BenchError(Exception):
    """A failure of the daemon or of the bench setup; ends the run."""


# --- small helpers -----------------------------------------------------------

def duration_arg(s):
    """'10' -> '10s'; accepts wrk's forms 10s / 2m / 1h.  Returns (text, secs)."""
    s = str(s).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", s)
    if not m:
        raise argparse.ArgumentTypeError("duration must look like 10, 10s, 2m or 1h")
    num, unit = float(m.group(1)), m.group(2) or "s"
    secs = num * {"s": 1, "m": 60, "h": 3600}[unit]
    if secs < 1:
        raise argparse.ArgumentTypeError("duration must be at least 1 second")
    text = m.group(1) + unit
    return text, secs


def positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % s)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1: %r" % s)
    return v


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list (None if empty)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def fmt_ms(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return "%.0f ms" % v
    if v >= 10:
        return "%.1f ms" % v
    return "%.2f ms" % v


def fmt_mib(kb):
    return "n/a" if kb is None else "%.1f MiB" % (kb / 1024.0)


def proc_status_kb(pid, field):
    """A kB field of /proc/PID/status (VmHWM, VmRSS), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def children_of(ppid):
    """PIDs whose parent is ppid (scan of /proc/*/stat)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # field 2 (comm) may hold spaces and parentheses: split after the last ')'
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) > 1 and rest[1] == str(ppid):
            kids.append(int(name))
    return kids


def log_tail(path, n=25):
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return "(no daemon log)"
    return "".join("    | " + l for l in lines[-n:]).rstrip("\n") or "(daemon log empty)"


# --- the daemon ----------------------------------------------------------------

class Daemon:
    def __init__(self, binary, tmpdir, sync, workers):
        self.db = os.path.join(tmpdir, "bench.db")
        self.log = os.path.join(tmpdir, "taskpoold.log")
        cmd = [binary, "--listen", "127.0.0.1:0", "--db", self.db]
        if sync == "normal":
            cmd += ["--sync", "normal"]          # default is full: pass nothing
        if workers:
            cmd += ["--workers", str(workers)]
        env = dict(os.environ)
        env.pop("TASKPOOL_TOKEN", None)          # our daemon runs without a token
        self.cmd = cmd
        # stderr goes to a file, never a pipe: a chatty daemon must not block on us
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=env)
        self.pid = self.proc.pid
        self.port = None

    def wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with open(self.log, errors="replace") as f:
                    m = LISTEN_RE.search(f.read())
            except OSError:
                m = None
            if m:
                self.port = int(m.group(1))
                return self.port
            if self.proc.poll() is not None:
                raise BenchError("taskpoold exited with status %s before listening"
                                 % (self.proc.returncode))
            time.sleep(0.02)
        raise BenchError("taskpoold did not log 'listening on' within %.0f s"
                         % (START_TIMEOUT))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_GRACE.  Returns (returncode, killed, secs)."""
        if self.proc.poll() is not None:
            return self.proc.returncode, False, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_GRACE)
            return rc, False, time.monotonic() - t0
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            return rc, True, time.monotonic() - t0

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


class Client:
    """A keep-alive JSON client for the drain polls (reconnects on error)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, path):
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                return r.status, json.loads(body) if body else None
            except (OSError, http.client.HTTPException, ValueError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()


# --- one run ---------------------------------------------------------------------

def run_wrk(port, opts, ids_file):
    url = "http://127.0.0.1:%d" % port
    cmd = [opts.wrk, "-t%d" % opts.threads, "-c%d" % opts.connections,
           "-d%s" % opts.duration[0], "--latency", "-s", LUA, url]
    env = dict(os.environ, BENCH_IDS_FILE=ids_file)
    env.pop("BENCH_TOKEN", None)
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env,
                           timeout=opts.duration[1] + 120, universal_newlines=True)
    except subprocess.TimeoutExpired:
        raise BenchError("wrk did not finish within %.0f s" % (opts.duration[1] + 120))
    out = p.stdout
    m = re.search(r"^BENCH_RESULT (.*)$", out, re.M)
    if p.returncode != 0 or not m:
        raise BenchError("wrk failed (exit %d):\n%s" % (p.returncode, out))
    res = {}
    for kv in m.group(1).split():
        k, _, v = kv.partition("=")
        if k == "statuses":
            res[k] = {} if v == "-" else {int(a): int(b) for a, b in
                                          (x.split(":") for x in v.split(","))}
        else:
            res[k] = float(v) if "." in v else int(v)
    res["raw"] = out[:m.start()].rstrip()
    return res


def drain(client, daemon, timeout):
    """Wait until no task is queued or running.  Returns seconds waited."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        if not daemon.alive():
            raise BenchError("taskpoold died while draining (status %s)"
                             % (daemon.proc.returncode))
        pending = 0
        for status in ("queued", "running"):
            code, body = client.get("/api/v1/tasks?status=%s&limit=1" % status)
            if code != 200 or not isinstance(body, dict) or "tasks" not in body:
                raise BenchError("GET /api/v1/tasks?status=%s answered %s: %r"
                                 % (status, code, body))
            pending += len(body["tasks"])
        if pending == 0:
            return time.monotonic() - t0
        if time.monotonic() > deadline:
            raise BenchError("tasks still queued or running after %.0f s" % timeout)
        time.sleep(0.05)


def read_db(path):
    uri = "file:%s?mode=ro" % path
    con = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        statuses = dict(con.execute("SELECT status, count(*) FROM tasks GROUP BY status"))
        n, first_created, last_finished = con.execute(
            "SELECT count(*), min(created_at), max(finished_at) FROM tasks").fetchone()
        q2d = [r[0] for r in con.execute(
            "SELECT finished_at - created_at FROM tasks "
            "WHERE finished_at IS NOT NULL ORDER BY 1")]
        wait = [r[0] for r in con.execute(
            "SELECT started_at - created_at FROM tasks "
            "WHERE started_at IS NOT NULL ORDER BY 1")]
        ids = set(r[0] for r in con.execute("SELECT id FROM tasks WHERE status = 'succeeded'"))
        all_ids = set(r[0] for r in con.execute("SELECT id FROM tasks"))
        pids = con.execute("SELECT count(DISTINCT worker_pid) FROM tasks").fetchone()[0]
    finally:
        con.close()
    return {"n": n, "statuses": statuses, "first_created": first_created,
            "last_finished": last_finished, "q2d": q2d, "wait": wait,
            "succeeded_ids": ids, "all_ids": all_ids, "worker_pids": pids}


def one_run(opts, sync):
    r = {"sync": sync, "failures": []}
    tmpdir = tempfile.mkdtemp(prefix="taskpool-bench-")
    r["tmpdir"] = tmpdir
    daemon = None
    client = None
    try:
        daemon = Daemon(opts.taskpoold, tmpdir, sync, opts.workers)
        port = daemon.wait_listening()
        client = Client(port)
        code, body = client.get("/healthz")
        if code != 200:
            raise BenchError("/healthz answered %s: %r" % (code, body))
        try:
            code, body = client.get("/api/v1/workers")
            r["pool_size"] = len(body.get("workers", [])) if code == 200 else None
        except Exception:
            r["pool_size"] = None

        ids_file = os.path.join(tmpdir, "acked-ids")
        w = run_wrk(port, opts, ids_file)
        r["wrk"] = w
        if not daemon.alive():
            raise BenchError("taskpoold died under load (status %s)"
                             % (daemon.proc.returncode))

        r["drain_s"] = drain(client, daemon, opts.drain_timeout)
        client.close()

        # peak memory, read right before stopping
        r["daemon_hwm_kb"] = proc_status_kb(daemon.pid, "VmHWM")
        workers = children_of(daemon.pid)
        hwms = [h for h in (proc_status_kb(p, "VmHWM") for p in workers) if h is not None]
        r["worker_hwm_kb"] = max(hwms) if hwms else None
        r["workers_alive"] = len(workers)

        rc, killed, stop_s = daemon.stop()
        r["stop"] = (rc, killed, stop_s)
        if killed:
            r["failures"].append("taskpoold ignored SIGTERM for %.0f s and was killed" % STOP_GRACE)
        elif rc != 0:
            r["failures"].append("taskpoold exited with status %s after SIGTERM" % rc)

        db = read_db(daemon.db)
        r["db"] = db

        try:
            with open(ids_file) as f:
                acked = [int(line) for line in f if line.strip()]
        except OSError:
            acked = None
        r["acked_ids"] = len(acked) if acked is not None else None

        # --- verdicts ---------------------------------------------------------
        created = w["created"]
        errors = (w["other"] + w["err_connect"] + w["err_read"] + w["err_write"]
                  + w["err_timeout"])
        r["errors"] = errors
        if w["other"]:
            r["failures"].append("non-201 answers: %s" % ", ".join(
                "%d x %d" % (n, s) for s, n in sorted(w["statuses"].items())))
        sock = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]
        if sock:
            r["failures"].append("socket errors: connect %d, read %d, write %d, timeout %d"
                                 % (w["err_connect"], w["err_read"], w["err_write"],
                                    w["err_timeout"]))
        if created == 0:
            r["failures"].append("no task was accepted")

        # Loss: every 201 must have its row, succeeded.  A request that wrk had
        # sent but not seen answered when its clock ran out (at most one per
        # connection, plus one per timed-out or broken request) may be recorded
        # without a 201 having been counted: those are extra rows, not loss.
        if acked is not None and w["noid"] == 0 and len(acked) == created:
            missing = [i for i in acked if i not in db["all_ids"]]
            unsucc = [i for i in acked if i in db["all_ids"] and i not in db["succeeded_ids"]]
            if len(set(acked)) != len(acked):
                r["failures"].append("the daemon gave the same id to two tasks")
            if missing:
                r["failures"].append("LOST: %d acknowledged tasks are not in the database "
                                     "(e.g. ids %s)" % (len(missing), missing[:5]))
            if unsucc:
                r["failures"].append("%d acknowledged tasks did not succeed (e.g. ids %s)"
                                     % (len(unsucc), unsucc[:5]))
        elif db["n"] < created:
            r["failures"].append("LOST: %d tasks answered 201 but only %d rows in the database"
                                 % (created, db["n"]))
        extra = db["n"] - created
        r["unanswered"] = extra
        slack = opts.connections + w["err_timeout"] + w["err_read"] + w["err_write"]
        if extra > slack:
            r["failures"].append("%d rows more than 201 answers (at most %d expected in flight)"
                                 % (extra, slack))
        not_ok = {s: n for s, n in db["statuses"].items() if s != "succeeded"}
        if not_ok:
            r["failures"].append("tasks not succeeded: %s" % ", ".join(
                "%d %s" % (n, s) for s, n in sorted(not_ok.items())))
        r["all_succeeded"] = (not not_ok and db["n"] > 0 and db["n"] >= created
                              and not any("LOST" in f or "did not succeed" in f
                                          for f in r["failures"]))
        span_ms = (db["last_finished"] or 0) - (db["first_created"] or 0)
        r["span_s"] = span_ms / 1000.0
        r["tps"] = db["n"] / r["span_s"] if span_ms > 0 else None
        r["submit_rate"] = created / (w["duration_us"] / 1e6) if w["duration_us"] else None
    except BenchError as e:
        r["failures"].append(str(e))
        r["fatal"] = True
    finally:
        if client is not None:
            client.close()
        if daemon is not None:
            daemon.close()
            if r.get("fatal") or opts.verbose:
                r["log_tail"] = log_tail(daemon.log)
        if opts.keep:
            r["kept"] = tmpdir
        else:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return r


# --- report ------------------------------------------------------------------------

def report(opts, r):
    sync = "FULL" if r["sync"] == "full" else "NORMAL"
    d = opts.duration[0]
    print("taskpool bench: echo over HTTP, wrk -t%d -c%d -d%s, synchronous=%s"
          % (opts.threads, opts.connections, d, sync))
    w, db = r.get("wrk"), r.get("db")
    if opts.verbose and w:
        print("\n".join("    " + l for l in w["raw"].splitlines()))
    if w and db:
        print("submitted %d tasks (201), errors %d, all succeeded: %s"
              % (w["created"], r["errors"], "yes" if r["all_succeeded"] else "NO"))
        if r["unanswered"] >= 0:
            note = "%d sent but unanswered when wrk stopped" % r["unanswered"]
        else:
            note = "%d FEWER than the 201s" % -r["unanswered"]
        print("recorded  %d tasks in the db (%s), %d worker PIDs"
              % (db["n"], note, db["worker_pids"] or 0))
        tps = "n/a" if r["tps"] is None else "%.0f" % r["tps"]
        print("end-to-end  %s tasks/s  (created of first -> finished of last, %.2f s)"
              % (tps, r["span_s"]))
        if r["submit_rate"]:
            print("submit rate %.0f tasks/s  (201s / wrk duration)" % r["submit_rate"])
        print("submit      p50 %s   p99 %s   p99.9 %s   max %s"
              % (fmt_ms(w["lat_p50_us"] / 1000), fmt_ms(w["lat_p99_us"] / 1000),
                 fmt_ms(w["lat_p999_us"] / 1000), fmt_ms(w["lat_max_us"] / 1000)))
        print("queue->done p50 %s   p99 %s   (finished_at - created_at)"
              % (fmt_ms(percentile(db["q2d"], 50)), fmt_ms(percentile(db["q2d"], 99))))
        print("queue wait  p50 %s   p99 %s   (started_at - created_at)"
              % (fmt_ms(percentile(db["wait"], 50)), fmt_ms(percentile(db["wait"], 99))))
        print("daemon peak RSS %s, worker peak RSS %s (max of %d workers)"
              % (fmt_mib(r["daemon_hwm_kb"]), fmt_mib(r["worker_hwm_kb"]),
                 r["workers_alive"]))
        rc, killed, stop_s = r["stop"]
        print("drained in %.2f s after wrk; SIGTERM -> exit %s in %.2f s%s"
              % (r["drain_s"], rc, stop_s, " (SIGKILLed)" if killed else ""))
        if r["sync"] == "full" and r["tps"] is not None:
            print("target      >= %d tasks/s end to end with synchronous=FULL: %s"
                  % (TARGET_TPS, "met" if r["tps"] >= TARGET_TPS else "NOT MET"))
    for f in r["failures"]:
        print("FAIL: " + f)
    if r.get("log_tail") and (r["failures"] or opts.verbose):
        print("daemon log (tail):\n" + r["log_tail"])
    if r.get("kept"):
        print("kept: " + r["kept"])
    print("result: %s" % ("FAIL" if r["failures"] else "ok"))
    sys.stdout.flush()


def summary_json(opts, r):
    w, db = r.get("wrk") or {}, r.get("db") or {}
    return {
        "sync": r["sync"], "threads": opts.threads, "connections": opts.connections,
        "duration": opts.duration[0], "submitted_201": w.get("created"),
        "errors": r.get("errors"), "db_tasks": db.get("n"),
        "all_succeeded": r.get("all_succeeded"), "tasks_per_s": r.get("tps"),
        "submit_p50_ms": w.get("lat_p50_us", 0) / 1000 if w else None,
        "submit_p99_ms": w.get("lat_p99_us", 0) / 1000 if w else None,
        "queue_to_done_p50_ms": percentile(db.get("q2d", []), 50),
        "queue_to_done_p99_ms": percentile(db.get("q2d", []), 99),
        "daemon_peak_rss_kb": r.get("daemon_hwm_kb"),
        "worker_peak_rss_kb": r.get("worker_hwm_kb"),
        "failures": r["failures"],
    }


def env_default(conv, name, default):
    """Parses an environment default with conv, exiting cleanly if it is bad."""
    raw = os.environ.get(name, default)
    if raw is None or raw == "":
        return None
    try:
        return conv(raw)
    except (argparse.ArgumentTypeError, ValueError) as e:
        sys.exit("bench: bad %s=%r: %s" % (name, raw, e))


def main():
    env = os.environ
    ap = argparse.ArgumentParser(description="Benchmark taskpoold: echo tasks over HTTP "
                                 "with wrk, checked against the SQLite records.")
    ap.add_argument("--taskpoold", default=env.get("TASKPOOLD") or
                    os.path.join(REPO, "bin", "taskpoold"),
                    help="daemon binary (env TASKPOOLD; default <repo>/bin/taskpoold)")
    ap.add_argument("--duration", type=duration_arg,
                    default=env_default(duration_arg, "BENCH_DURATION", "10s"),
                    help="wrk duration, e.g. 10s, 30, 1m (env BENCH_DURATION; 10s)")
    ap.add_argument("--connections", type=positive_int,
                    default=env_default(positive_int, "BENCH_CONNECTIONS", "32"),
                    help="wrk connections (env BENCH_CONNECTIONS; 32)")
    ap.add_argument("--threads", type=positive_int,
                    default=env_default(positive_int, "BENCH_THREADS", "2"),
                    help="wrk threads (env BENCH_THREADS; 2)")
    ap.add_argument("--workers", type=positive_int,
                    default=env_default(positive_int, "BENCH_WORKERS", None),
                    help="taskpoold --workers (env BENCH_WORKERS; default: the daemon's, "
                    "one per CPU)")
    ap.add_argument("--sync", choices=("full", "normal", "both"),
                    default=env.get("BENCH_SYNC", "full"),
                    help="durability of the run(s) (env BENCH_SYNC; full)")
    ap.add_argument("--sync-normal", action="store_true",
                    help="also run with --sync normal (same as --sync both)")
    ap.add_argument("--drain-timeout", type=float,
                    default=env_default(float, "BENCH_DRAIN_TIMEOUT", "120"),
                    help="seconds to wait for every task to finish (120)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary db and log")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="show wrk's own output and the daemon log tail")
    opts = ap.parse_args()
    if opts.sync not in ("full", "normal", "both"):
        ap.error("BENCH_SYNC must be full, normal or both")
    if opts.threads > opts.connections:
        opts.threads = opts.connections          # wrk needs connections >= threads

    opts.taskpoold = os.path.abspath(opts.taskpoold)
    if not os.access(opts.taskpoold, os.X_OK):
        print("bench: %s is not an executable (build it with `make`)" % opts.taskpoold,
              file=sys.stderr)
        return 2
    opts.wrk = shutil.which("wrk")
    if not opts.wrk:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    syncs = {"full": ["full"], "normal": ["normal"], "both": ["full", "normal"]}[opts.sync]
    if opts.sync_normal and "normal" not in syncs:
        syncs.append("normal")

    print("taskpoold %s, %d CPUs, workers %s" % (opts.taskpoold, os.cpu_count() or 0,
          opts.workers or "default"))
    results = []
    for i, s in enumerate(syncs):
        if i:
            print()
        r = one_run(opts, s)
        report(opts, r)
        results.append(r)

    if len(results) > 1:
        print()
        print("%-8s %12s %12s %10s %10s %12s" % ("sync", "tasks/s", "submitted", "p50",
                                                  "p99", "daemon RSS"))
        for r in results:
            w = r.get("wrk") or {}
            print("%-8s %12s %12s %10s %10s %12s" % (
                r["sync"], "%.0f" % r["tps"] if r.get("tps") else "n/a",
                w.get("created", "n/a"),
                fmt_ms(w["lat_p50_us"] / 1000) if w else "n/a",
                fmt_ms(w["lat_p99_us"] / 1000) if w else "n/a",
                fmt_mib(r.get("daemon_hwm_kb"))))

    if opts.json:
        with open(opts.json, "w") as f:
            json.dump([summary_json(opts, r) for r in results], f, indent=2)
            f.write("\n")
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
