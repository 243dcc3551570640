"""
harness.py - start the real bin/taskpoold on an ephemeral port with a
temporary database, talk HTTP to it, inspect its processes in /proc and its
SQLite file, and clean up every process a test caused.

Every wait is bounded by a deadline.  Times that depend on the machine are
multiplied by SLOW (3 for an ASan build, or $TASKPOOL_TEST_SLOW).

A test is a function test_xxx(ctx) in a test_*.py module; it raises Fail (or
any exception) to fail.  ctx.daemon(...) starts a dedicated daemon that is
stopped and checked for leftover processes after the test; ctx.shared()
returns the daemon shared by the read-only / simple tests.
"""
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

BIN = os.environ.get("TASKPOOLD") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "bin", "taskpoold"))
SLOW = float(os.environ.get("TASKPOOL_TEST_SLOW") or (3 if "asan" in BIN else 1))

LISTEN_RE = re.compile(r"listening on [0-9.]+:(\d+)")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                          r"ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer")
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")
STATUSES = ("queued", "running") + TERMINAL
TASK_FIELDS = {"id", "kind", "args", "status", "priority", "timeout_ms", "max_attempts",
               "attempts", "result", "error", "worker_pid", "worker_ppid", "created_at",
               "started_at", "finished_at", "queue_ms", "run_ms", "usage"}
SHARED_WORKERS = 3


class Fail(AssertionError):
    pass


def short(v, n=240):
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        raise Fail("%s: expected %s, got %s" % (what, short(want), short(got)))


def between(v, lo, hi, what):
    if v is None or not (lo <= v <= hi):
        raise Fail("%s: expected %s..%s, got %s" % (what, lo, hi, v))


def deadline(seconds):
    return time.monotonic() + seconds * SLOW


def wait_until(fn, seconds, what, interval=0.02):
    """Calls fn until it returns a truthy value (returned) or seconds*SLOW pass (Fail)."""
    end = deadline(seconds)
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > end:
            raise Fail("timed out after %.1fs waiting for %s" % (seconds * SLOW, what))
        time.sleep(interval)


def parse_time(s):
    """RFC 3339 UTC with milliseconds -> Unix ms (Fail if malformed)."""
    check(isinstance(s, str) and TIME_RE.match(s), "timestamp not RFC 3339 UTC with ms: %r" % (s,))
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(round(dt.timestamp() * 1000))


# ---------------------------------------------------------------- processes

def proc_stat(pid):
    """{pid, comm, state, ppid, pgrp} of a process, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    r = data.rindex(")")
    fields = data[r + 2:].split()
    return {"pid": pid, "comm": data[data.index("(") + 1:r], "state": fields[0],
            "ppid": int(fields[1]), "pgrp": int(fields[2])}


def proc_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st["state"] != "Z"


def all_procs():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                out.append(st)
    return out


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def procs_with_env(marker):
    """Live (non-zombie) processes whose environment contains marker (e.g. 'TP_MARK=xyz')."""
    found = []
    needle = marker.encode()
    me = os.getpid()
    for st in all_procs():
        if st["state"] == "Z" or st["pid"] == me:
            continue
        try:
            with open("/proc/%d/environ" % st["pid"], "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(st)
    return found


def describe(procs):
    return ", ".join("%d(%s,%s,ppid=%d,pgrp=%d)" % (p["pid"], p["comm"], p["state"], p["ppid"],
                                                    p["pgrp"]) for p in procs)


# ---------------------------------------------------------------- HTTP

def db_rows(db, q, params=()):
    """Rows of a query on the daemon's database, with a connection of our own."""
    con = sqlite3.connect(db, timeout=5)
    try:
        return con.execute(q, params).fetchall()
    finally:
        con.close()


def wait_marked(mark, n, seconds=5):
    """Waits for n processes carrying env marker mark; returns them."""
    return wait_until(lambda: len(procs_with_env(mark)) >= n and procs_with_env(mark), seconds,
                      "%d processes of the command to run" % n)


def wait_marked_gone(mark, what, seconds=5):
    """Fails unless every process carrying env marker mark is gone within seconds."""
    end = time.monotonic() + seconds * SLOW
    while procs_with_env(mark) and time.monotonic() < end:
        time.sleep(0.05)
    left = procs_with_env(mark)
    check(not left, "processes of the %s command survive %.0fs later: %s" % (what, seconds * SLOW, describe(left)))


class Resp:
    def __init__(self, method, path, status, headers, body, elapsed):
        self.method, self.path = method, path
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self.elapsed = elapsed
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "%s %s -> %d %s" % (self.method, self.path, self.status, short(self.body, 300))


_NOAUTH = object()


class Daemon:
    """One taskpoold process.  Output (stdout+stderr, workers included) is drained by a thread."""

    def __init__(self, tmpdir, args=(), workers=2, db=None, env=None, token=None,
                 listen="127.0.0.1:0", name="daemon"):
        self.tmpdir = tmpdir
        self.db = db or os.path.join(tmpdir, "taskpool.db")
        self.extra = list(args)
        self.workers_n = workers
        self.env_extra = env or {}
        self.token = token or self.env_extra.get("TASKPOOL_TOKEN")
        self.listen = listen
        self.name = name
        self.proc = None
        self.port = None
        self.pid = None
        self.log = []
        self.log_lock = threading.Lock()
        self.known_pids = set()      # workers (and their groups) ever seen
        self.rc = None

    # -- life cycle
    def argv(self):
        a = [BIN, "--listen", self.listen, "--db", self.db]
        if self.workers_n is not None:
            a += ["--workers", str(self.workers_n)]
        return a + self.extra

    def start(self, timeout=15):
        env = dict(os.environ)
        env.pop("TASKPOOL_TOKEN", None)
        env.update(self.env_extra)
        self.listening = threading.Event()
        self.eof = threading.Event()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=self.tmpdir, env=env,
                                     start_new_session=True)
        self.pid = self.proc.pid
        _ALL_DAEMONS.append(self)
        threading.Thread(target=self._drain, daemon=True).start()
        end = deadline(timeout)
        while not self.listening.wait(0.02):
            if self.proc.poll() is not None and self.eof.wait(0.5):
                raise Fail("%s exited rc=%s before listening: %s" % (self.name, self.proc.returncode,
                                                                     " | ".join(self.tail(5))))
            if time.monotonic() > end:
                raise Fail("%s printed no 'listening on' line within %.0fs" % (self.name, timeout * SLOW))
        self.snapshot()
        return self

    def _drain(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.log_lock:
                if len(self.log) > 200000:
                    del self.log[:100000]
                self.log.append(line)
            if self.port is None:
                m = LISTEN_RE.search(line)
                if m:
                    self.port = int(m.group(1))
                    self.listening.set()
        self.eof.set()

    def tail(self, n=40):
        with self.log_lock:
            return list(self.log[-n:])

    def log_text(self):
        with self.log_lock:
            return "\n".join(self.log)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def snapshot(self):
        """Remembers the daemon's current children (workers) for the leftover check."""
        if self.running():
            for p in all_procs():
                if p["ppid"] == self.pid:
                    self.known_pids.add(p["pid"])

    def signal(self, sig):
        if self.running():
            os.kill(self.pid, sig)

    def wait_exit(self, seconds):
        """Waits for the daemon to exit; returns rc or None if still running after seconds*SLOW."""
        try:
            self.rc = self.proc.wait(seconds * SLOW)
            return self.rc
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=15):
        """SIGTERM, then SIGKILL after grace*SLOW.  Returns (rc, forced)."""
        if not self.running():
            self.rc = self.proc.wait()
            return self.rc, False
        self.snapshot()
        os.kill(self.pid, signal.SIGTERM)
        rc = self.wait_exit(grace)
        if rc is None:
            os.kill(self.pid, signal.SIGKILL)
            self.rc = self.proc.wait(10)
            return self.rc, True
        return rc, False

    def leftovers(self):
        """Live processes that descend from this daemon (by ppid or process group)."""
        groups = set(self.known_pids) | {self.pid}
        me = os.getpid()
        out = []
        for p in all_procs():
            if p["pid"] in (me, self.pid) or p["state"] == "Z":
                continue
            if p["ppid"] == self.pid or p["pgrp"] in groups or p["pid"] in self.known_pids:
                out.append(p)
        return out

    def wait_no_leftovers(self, seconds=5):
        end = deadline(seconds)
        while True:
            left = self.leftovers()
            if not left or time.monotonic() > end:
                return left
            time.sleep(0.05)

    def close(self):
        """Stops the daemon (if running) and returns a list of problems found."""
        if getattr(self, "closed", None) is not None:
            return self.closed
        problems = []
        if self.proc is None:
            return problems
        if self.running():
            rc, forced = self.stop()
            if forced:
                problems.append("%s did not exit within %.0fs of SIGTERM (SIGKILLed)" % (self.name, 15 * SLOW))
        left = self.wait_no_leftovers(5)
        if left:
            problems.append("%s left processes behind: %s" % (self.name, describe(left)))
            for p in left:
                try:
                    os.kill(p["pid"], signal.SIGKILL)
                except OSError:
                    pass
        self.eof.wait(2)
        text = self.log_text()
        m = SANITIZER_RE.search(text)
        if m:
            i = text.rfind("\n", 0, m.start()) + 1
            problems.append("%s sanitizer report: %s" % (self.name, text[i:i + 300].replace("\n", " | ")))
        self.closed = problems
        return problems

    # -- HTTP
    def request(self, method, path, body=None, headers=None, json_body=None, auth=_NOAUTH,
                timeout=10, check_ct=True):
        """One request on a fresh connection.  Checks Content-Type: application/json unless told not to."""
        h = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        tok = self.token if auth is _NOAUTH else auth
        if tok is not None and "Authorization" not in h:
            h["Authorization"] = "Bearer " + tok
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)
        t0 = time.monotonic()
        try:
            try:
                conn.request(method, path, body=body, headers=h)
            except (BrokenPipeError, ConnectionResetError):
                pass             # the server may answer (413) before reading the whole body
            r = conn.getresponse()
            data = r.read()
            hdrs = r.getheaders()
        except (OSError, http.client.HTTPException) as e:
            raise Fail("%s %s: %s: %s" % (method, path, type(e).__name__, e))
        finally:
            conn.close()
        resp = Resp(method, path, r.status, hdrs, data, time.monotonic() - t0)
        if check_ct:
            ct = resp.header("Content-Type") or ""
            check(ct.split(";")[0].strip().lower() == "application/json",
                  "%s %s -> %d: Content-Type %r, expected application/json" % (method, path, resp.status, ct))
            check(resp.json is not None, "%r: body is not JSON" % resp)
        self._note_pids(resp.json)
        return resp

    def _note_pids(self, j):
        if isinstance(j, dict):
            for k in ("worker_pid", "pid"):
                v = j.get(k)
                if isinstance(v, int) and v > 0:
                    self.known_pids.add(v)
            for k in ("workers", "tasks"):
                if isinstance(j.get(k), list):
                    for x in j[k]:
                        self._note_pids(x)

    # -- API helpers
    def post(self, body, wait=None, **kw):
        path = "/api/v1/tasks" + ("" if wait is None else "?wait=%s" % wait)
        if isinstance(body, (dict, list)):
            return self.request("POST", path, json_body=body, **kw)
        return self.request("POST", path, body=body, **kw)

    def submit(self, body, wait=None, timeout=None):
        """POSTs a task, checks 201 + Location + task shape, returns the task object."""
        t = (wait or 0) + 10 if timeout is None else timeout
        r = self.post(body, wait=wait, timeout=t)
        check(r.status == 201, "POST %s -> expected 201, got %r" % (short(body), r))
        t = r.json
        check_task(t)
        eq(r.header("Location"), "/api/v1/tasks/%d" % t["id"], "Location header")
        return t

    def get(self, tid, wait=None, **kw):
        path = "/api/v1/tasks/%s" % tid + ("" if wait is None else "?wait=%s" % wait)
        return self.request("GET", path, timeout=(float(wait) if wait else 0) + 10, **kw)

    def task(self, tid, wait=None):
        r = self.get(tid, wait)
        check(r.status == 200, "expected 200, got %r" % r)
        check_task(r.json)
        return r.json

    def cancel(self, tid, **kw):
        return self.request("POST", "/api/v1/tasks/%s/cancel" % tid, **kw)

    def list(self, query=""):
        r = self.request("GET", "/api/v1/tasks" + (("?" + query) if query else ""))
        check(r.status == 200, "expected 200, got %r" % r)
        check(isinstance(r.json.get("tasks"), list) and "next" in r.json,
              "list body lacks tasks/next: %r" % r)
        return r.json

    def max_id(self):
        ts = self.list("limit=1")["tasks"]
        return ts[0]["id"] if ts else 0

    def wait_terminal(self, tid, seconds=10):
        """Long-polls until the task is terminal; returns it."""
        end = deadline(seconds)
        while True:
            left = end - time.monotonic()
            t = self.task(tid, wait="%.3f" % max(0.05, min(left, 5)))
            if t["status"] in TERMINAL:
                return t
            if time.monotonic() > end:
                raise Fail("task %s not terminal after %.1fs: status %s" % (tid, seconds * SLOW, t["status"]))

    def wait_status(self, tid, status, seconds=5):
        def f():
            t = self.task(tid)
            if t["status"] == status:
                return t
            check(t["status"] not in TERMINAL or status in TERMINAL,
                  "task %s became %s while waiting for %s: %s" % (tid, t["status"], status, short(t)))
            return None
        return wait_until(f, seconds, "task %s to be %s" % (tid, status))

    def workers(self):
        r = self.request("GET", "/api/v1/workers")
        check(r.status == 200, "expected 200, got %r" % r)
        self.snapshot()
        return r.json

    def worker_pids(self):
        return {w["pid"] for w in self.workers()["workers"]}

    def wait_pool(self, n, gone=(), seconds=5):
        """Waits until /workers lists n live children of the daemon, none of them in gone."""
        gone = set(gone)

        def f():
            ws = self.workers()["workers"]
            pids = {w["pid"] for w in ws}
            if len(ws) != n or len(pids) != n or pids & gone:
                return None
            for p in pids:
                st = proc_stat(p)
                if st is None or st["state"] == "Z" or st["ppid"] != self.pid:
                    return None
            return pids
        return wait_until(f, seconds, "a pool of %d live workers without %s" % (n, sorted(gone)))

    def sql(self, query, params=()):
        """Runs a read-only query on the daemon's database (while it runs)."""
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=5)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()


def worker_row(d, pid):
    """The newest row of the workers table for pid, as a dict (None if absent)."""
    con = sqlite3.connect("file:%s?mode=ro" % d.db, uri=True, timeout=5)
    try:
        cur = con.execute("select * from workers where pid = ? order by rowid desc limit 1", (pid,))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row))
    finally:
        con.close()


def pick_col(row, *words):
    """The first column of row whose name contains every word (Fail if none)."""
    for k in row:
        if all(w in k for w in words):
            return k
    raise Fail("workers table has no column with %s in its name: %s" % ("+".join(words), sorted(row)))


def check_task(t):
    """Checks the task object's exact field set and field types."""
    check(isinstance(t, dict), "task is not an object: %s" % short(t))
    keys = set(t)
    check(keys == TASK_FIELDS, "task fields: missing %s, unexpected %s" % (sorted(TASK_FIELDS - keys),
                                                                          sorted(keys - TASK_FIELDS)))
    check(isinstance(t["id"], int) and t["id"] > 0, "id not a positive integer: %r" % t["id"])
    check(t["status"] in STATUSES, "bad status %r" % t["status"])
    check(isinstance(t["priority"], int), "priority not int: %r" % t["priority"])
    check(t["timeout_ms"] is None or isinstance(t["timeout_ms"], int), "timeout_ms: %r" % t["timeout_ms"])
    check(isinstance(t["max_attempts"], int) and isinstance(t["attempts"], int), "attempts not int")
    for k in ("worker_pid", "worker_ppid"):
        check(t[k] is None or (isinstance(t[k], int) and t[k] > 0), "%s: %r" % (k, t[k]))
    parse_time(t["created_at"])
    for k in ("started_at", "finished_at"):
        if t[k] is not None:
            parse_time(t[k])
    for k in ("queue_ms", "run_ms"):
        check(t[k] is None or (isinstance(t[k], (int, float)) and not isinstance(t[k], bool)),
              "%s: %r" % (k, t[k]))
    if t["error"] is not None:
        check(isinstance(t["error"], dict) and set(t["error"]) == {"code", "message"}
              and isinstance(t["error"]["code"], str) and isinstance(t["error"]["message"], str),
              "error is not {code, message}: %r" % (t["error"],))
    if t["usage"] is not None:
        u = t["usage"]
        check(isinstance(u, dict) and set(u) == {"user_ms", "sys_ms", "max_rss_kb"},
              "usage is not {user_ms, sys_ms, max_rss_kb}: %r" % (u,))
        for k in u:
            check(isinstance(u[k], (int, float)) and u[k] >= 0, "usage.%s: %r" % (k, u[k]))
    if t["status"] == "queued":
        check(t["finished_at"] is None, "queued task has finished_at")
    if t["status"] == "running":
        check(t["started_at"] is not None and t["worker_pid"] is not None,
              "running task lacks started_at/worker_pid: %s" % short(t))
    if t["status"] in TERMINAL:
        check(t["finished_at"] is not None, "terminal task lacks finished_at: %s" % short(t))


def check_error(resp, status, code=None, codes=None, field=None):
    """Checks an error answer: status, body {"error": {"code", "message"}}, code, and the field named."""
    check(resp.status == status, "expected %d%s, got %r" % (status, " " + code if code else "", resp))
    j = resp.json
    check(isinstance(j, dict) and set(j) == {"error"} and isinstance(j["error"], dict),
          "error body is not {\"error\": {...}}: %r" % resp)
    e = j["error"]
    check(isinstance(e.get("code"), str) and re.match(r"^[a-z][a-z0-9_]*$", e["code"]),
          "error.code not snake_case: %r" % resp)
    check(isinstance(e.get("message"), str) and e["message"].strip(), "error.message empty: %r" % resp)
    if code is not None:
        check(e["code"] == code, "expected error code %s, got %r" % (code, resp))
    if codes is not None:
        check(e["code"] in codes, "expected error code in %s, got %r" % (codes, resp))
    if field is not None:
        fields = field if isinstance(field, (list, tuple)) else [field]
        check(any(f in e["message"] for f in fields),
              "error message does not name the field %s: %r" % ("/".join(fields), e["message"]))
    return e


# ---------------------------------------------------------------- test context

_ALL_DAEMONS = []
_SHARED = {"d": None, "ctxdir": None}


class Ctx:
    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="tpit-")
        self.daemons = []
        self.used_shared = False

    def daemon(self, *args, workers=2, db=None, env=None, token=None, listen="127.0.0.1:0",
               start=True, name=None):
        d = Daemon(self.tmp, args=args, workers=workers, db=db, env=env, token=token,
                   listen=listen, name=name or "daemon#%d" % (len(self.daemons) + 1))
        self.daemons.append(d)
        if start:
            d.start()
            if workers:
                d.wait_pool(workers)
        return d

    def shared(self):
        self.used_shared = True
        d = _SHARED["d"]
        if d is None or not d.running():
            tmp = tempfile.mkdtemp(prefix="tpit-shared-")
            _SHARED["ctxdir"] = tmp
            d = Daemon(tmp, args=["--allow-exec"], workers=SHARED_WORKERS, name="shared daemon")
            _SHARED["d"] = d
            d.start()
            d.wait_pool(SHARED_WORKERS)
        return d

    def cleanup(self):
        problems = []
        for d in self.daemons:
            try:
                problems += d.close()
            except Exception as e:     # never let cleanup stop the suite
                problems.append("%s cleanup: %s" % (d.name, e))
        if self.used_shared and _SHARED["d"] is not None and not _SHARED["d"].running():
            d = _SHARED["d"]
            problems.append("shared daemon died (rc=%s)" % d.proc.returncode)
            problems += d.close()
            _SHARED["d"] = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        return problems

    def logs(self, n=30):
        out = []
        ds = list(self.daemons)
        if self.used_shared and _SHARED["d"] is not None:
            ds.append(_SHARED["d"])
        for d in ds:
            out.append("--- %s (pid %s) log tail:" % (d.name, d.pid))
            out += ["    " + l for l in d.tail(n)]
        return out


def shared_daemon():
    return _SHARED["d"]


def shared_close():
    d = _SHARED["d"]
    _SHARED["d"] = None
    return d


def kill_everything():
    """Last resort at exit: SIGKILL every daemon this run started and their descendants, by pid."""
    for d in _ALL_DAEMONS:
        try:
            if d.proc and d.proc.poll() is None:
                d.snapshot()
                os.kill(d.pid, signal.SIGKILL)
                d.proc.wait(5)
            for p in d.leftovers():
                os.kill(p["pid"], signal.SIGKILL)
        except Exception:
            pass
    if _SHARED.get("ctxdir"):
        shutil.rmtree(_SHARED["ctxdir"], ignore_errors=True)


def run_cli(tmpdir, args, env=None, seconds=5):
    """Runs the binary with args and expects it to exit by itself.  Returns (rc, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("TASKPOOL_TOKEN", None)
    e.update(env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([BIN] + list(args), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             cwd=tmpdir, env=e, start_new_session=True)
        try:
            p.wait(seconds * SLOW)
        except subprocess.TimeoutExpired:
            kids = [x["pid"] for x in all_procs() if x["ppid"] == p.pid]
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            for k in kids:
                for x in all_procs():
                    if x["pid"] == k or x["pgrp"] == k:
                        try:
                            os.kill(x["pid"], signal.SIGKILL)
                        except OSError:
                            pass
            out.seek(0)
            err.seek(0)
            raise Fail("taskpoold %s did not exit within %.0fs (it kept running; stderr: %s)"
                       % (" ".join(args), seconds * SLOW, short(err.read().decode(errors="replace"))))
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace")
