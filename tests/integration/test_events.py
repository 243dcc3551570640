"""The event stream (GET /api/v1/events, Server-Sent Events): headers, task and
worker events in order with consecutive ids, resume with Last-Event-ID, resync
when the id is no longer buffered, a stalled reader that must not slow the
pool, vanished readers that must be released, and shutdown with open streams.

The client below speaks HTTP/1.1 on a raw socket (chunked decoding included) so
a test can stall it, size its receive buffer, or drop it without a goodbye."""
import json
import os
import signal
import socket
import threading
import time

from harness import SLOW, TASK_FIELDS, TERMINAL, Fail, check, eq, parse_time, wait_until

EVENT_TASK_FIELDS = TASK_FIELDS - {"args", "result"}
WORKER_FIELDS = {"event", "pid", "started_at", "exited_at", "tasks_done", "exit_code", "exit_signal", "reason"}
RANK = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2, "timed_out": 2}


class Stream:
    """One SSE subscriber.  next() returns one block as a dict: 'id', 'event',
    'data' (parsed JSON) for events, 'comment' for comment-only blocks."""

    def __init__(self, d, last_id=None, rcvbuf=None, read_headers=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # before connect, so the advertised window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10 * SLOW)
        self.sock.connect(("127.0.0.1", d.port))
        req = "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if d.token:
            req += "Authorization: Bearer %s\r\n" % d.token
        if last_id is not None:
            req += "Last-Event-ID: %s\r\n" % last_id
        self.sock.sendall((req + "\r\n").encode())
        self.raw = b""       # undecoded bytes from the socket
        self.body = b""      # de-chunked body not yet split into blocks
        self.ended = False   # saw the terminating chunk or EOF
        self.status = None
        self.headers = {}
        if read_headers:
            self.read_headers()

    def read_headers(self):
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        check(self.headers.get("transfer-encoding") == "chunked",
              "event stream is not chunked: %s" % self.headers)

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            self.ended = True
            raise EOFError("stream closed by the daemon")
        self.raw += data

    def _dechunk(self):
        while not self.ended:
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            n = int(self.raw[:i].split(b";")[0], 16)
            if n == 0:
                self.ended = True
                return
            if len(self.raw) < i + 2 + n + 2:
                return
            self.body += self.raw[i + 2:i + 2 + n]
            self.raw = self.raw[i + 2 + n + 2:]

    def next(self, seconds=5):
        """The next block within seconds*SLOW (Fail if none, EOFError at the end)."""
        end = time.monotonic() + seconds * SLOW
        while True:
            self._dechunk()
            if b"\n\n" in self.body:
                blk, self.body = self.body.split(b"\n\n", 1)
                return parse_block(blk.decode("utf-8"))
            if self.ended:
                raise EOFError("stream ended")
            left = end - time.monotonic()
            if left <= 0:
                raise Fail("no SSE block within %.1fs" % (seconds * SLOW))
            self.sock.settimeout(left)
            try:
                self._recv()
            except socket.timeout:
                raise Fail("no SSE block within %.1fs" % (seconds * SLOW))

    def next_event(self, seconds=5):
        """The next block that is an event (comments skipped)."""
        end = time.monotonic() + seconds * SLOW
        while True:
            b = self.next(max(0.01, (end - time.monotonic()) / SLOW))
            if "event" in b:
                return b

    def until(self, pred, seconds=10, what="an event"):
        """Events up to and including the first for which pred is true."""
        out = []
        end = time.monotonic() + seconds * SLOW
        while True:
            left = (end - time.monotonic()) / SLOW
            if left <= 0:
                raise Fail("timed out waiting for %s; got %d events, last %s"
                           % (what, len(out), out[-3:]))
            try:
                e = self.next_event(left)
            except Fail:
                raise Fail("timed out waiting for %s; got %d events, last %s"
                           % (what, len(out), out[-3:]))
            out.append(e)
            if pred(e):
                return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_block(text):
    ev = {}
    data = []
    for line in text.split("\n"):
        if line.startswith(":"):
            ev.setdefault("comment", line[1:].strip())
            continue
        k, _, v = line.partition(":")
        v = v[1:] if v.startswith(" ") else v
        if k == "data":
            data.append(v)
        elif k in ("id", "event", "retry"):
            ev[k] = v
        else:
            raise Fail("unknown SSE field in block %r" % text)
    if data:
        check(len(data) == 1, "event data spans %d lines: %r" % (len(data), text))
        try:
            ev["data"] = json.loads(data[0])
        except ValueError:
            raise Fail("event data is not JSON: %r" % data[0])
    if "event" in ev:
        check("id" in ev and ev["id"].isdigit(), "event without a numeric id: %r" % text)
        ev["id"] = int(ev["id"])
        check("data" in ev, "event without data: %r" % text)
    return ev


def is_terminal_of(tid):
    return lambda e: e["event"] == "task" and e["data"]["id"] == tid and e["data"]["status"] in TERMINAL


def task_statuses(events, tid):
    return [e["data"]["status"] for e in events if e["event"] == "task" and e["data"]["id"] == tid]


def check_consecutive(events, what):
    ids = [e["id"] for e in events]
    for a, b in zip(ids, ids[1:]):
        if b != a + 1:
            raise Fail("%s: ids not consecutive at %d -> %d (%s)" % (what, a, b, ids[:20]))


def check_task_event(e):
    eq(set(e["data"]), EVENT_TASK_FIELDS, "fields of a task event (task object less args/result)")


def daemon_fds(d):
    return len(os.listdir("/proc/%d/fd" % d.pid))


# ---------------------------------------------------------------- tests

def test_events_headers_and_a_first_comment_at_once(ctx):
    d = ctx.shared()
    t0 = time.monotonic()
    s = Stream(d)
    try:
        eq(s.status, 200, "status")
        eq(s.headers.get("content-type"), "text/event-stream", "Content-Type")
        eq(s.headers.get("cache-control"), "no-cache", "Cache-Control")
        eq(s.headers.get("x-accel-buffering"), "no", "X-Accel-Buffering")
        first = s.next(2)
        check("comment" in first and "event" not in first, "first block is not a comment: %r" % first)
        check(time.monotonic() - t0 < 2 * SLOW, "first bytes took %.2fs" % (time.monotonic() - t0))
    finally:
        s.close()


def test_events_task_lifecycle_in_order_with_consecutive_ids(ctx):
    d = ctx.shared()
    s = Stream(d)
    try:
        ids = [d.submit({"kind": "sleep", "args": {"seconds": 0.2}})["id"] for _ in range(3)]
        quick = [d.submit({"kind": "echo", "args": {"n": i}})["id"] for i in range(5)]
        pending = set(ids + quick)

        def all_done(e):
            if e["event"] == "task" and e["data"]["status"] in TERMINAL:
                pending.discard(e["data"]["id"])
            return not pending
        events = s.until(all_done, 20, "terminal events of all 8 tasks")
        check(all(e["event"] in ("task", "worker") for e in events),
              "unexpected event types: %s" % sorted({e["event"] for e in events}))
        check_consecutive(events, "one stream")
        for e in events:
            if e["event"] == "task":
                check_task_event(e)
        for tid in ids:
            # a 0.2 s task is committed queued, running and finished apart
            eq(task_statuses(events, tid), ["queued", "running", "succeeded"], "statuses of sleep task %d" % tid)
        for tid in quick:
            # even when all three land in one write batch, each change is an event
            eq(task_statuses(events, tid), ["queued", "running", "succeeded"], "statuses of echo task %d" % tid)
        # the terminal event carries the row as stored
        for tid in ids + quick:
            last = [e for e in events if e["event"] == "task" and e["data"]["id"] == tid][-1]["data"]
            t = d.task(tid)
            for k in EVENT_TASK_FIELDS:
                eq(last[k], t[k], "task %d field %s in the event vs GET" % (tid, k))
        # submission order is event order for the first sighting of each task
        firsts = []
        for e in events:
            if e["event"] == "task" and e["data"]["id"] in ids + quick and e["data"]["id"] not in firsts:
                firsts.append(e["data"]["id"])
        eq(firsts, ids + quick, "order in which the tasks first appear")
    finally:
        s.close()


def test_events_resume_with_last_event_id_replays_what_was_missed(ctx):
    d = ctx.daemon(workers=1)
    d.wait_pool(1)
    a = Stream(d)
    t1 = d.submit({"kind": "echo", "args": {"first": True}})["id"]
    seen = a.until(is_terminal_of(t1), 10, "task %d terminal" % t1)
    last = seen[-1]["id"]
    a.close()
    # While nobody listens, a task runs from start to finish.  Its events
    # must still enter the ring: the daemon publishes every change whether or
    # not a subscriber is connected, or this client never hears of them.
    t2 = d.submit({"kind": "sleep", "args": {"seconds": 0.2}})["id"]
    eq(d.wait_terminal(t2)["status"], "succeeded", "task %d" % t2)
    b = Stream(d, last_id=last)
    try:
        got = b.until(is_terminal_of(t2), 5, "the missed events of task %d" % t2)
        eq(got[0]["id"], last + 1, "first id after Last-Event-ID %d" % last)
        check(all(e["event"] != "resync" for e in got), "resync although %d is buffered: %s" % (last, got[:3]))
        check_consecutive(got, "resumed stream")
        eq(task_statuses(got, t2), ["queued", "running", "succeeded"], "replayed statuses of task %d" % t2)
        eq(task_statuses(got, t1), [], "events of task %d (read before the reconnect) replayed" % t1)
        # and the stream goes on live
        t3 = d.submit({"kind": "echo"})["id"]
        more = b.until(is_terminal_of(t3), 10, "task %d live after the replay" % t3)
        check_consecutive(got + more, "replay then live")
    finally:
        b.close()


def test_events_unknown_last_event_id_gets_resync_first(ctx):
    d = ctx.shared()
    probe = Stream(d)
    t0 = d.submit({"kind": "echo"})["id"]
    newest = probe.until(is_terminal_of(t0), 10, "task %d terminal" % t0)[-1]["id"]
    probe.close()
    for last in ("1", "0", str(newest + 10 ** 9), "abc", "-5"):
        s = Stream(d, last_id=last)
        try:
            first = s.next_event(5)
            eq(first["event"], "resync", "first event after Last-Event-ID %s" % last)
            check(isinstance(first["data"], dict) and isinstance(first["data"].get("reason"), str)
                  and first["data"]["reason"], "resync data lacks a reason: %r" % first)
            check(first["id"] >= newest, "resync id %d below the newest id %d" % (first["id"], newest))
            tid = d.submit({"kind": "echo"})["id"]
            after = s.until(is_terminal_of(tid), 10, "task %d after the resync" % tid)
            check_consecutive([first] + after, "resync then live (Last-Event-ID %s)" % last)
        finally:
            s.close()


def test_events_stalled_reader_does_not_slow_the_pool(ctx):
    # 600 tasks that fail with a 60 KB message: ~36 MB of events, more than the
    # kernel buffers a stalled socket (so its MHD connection blocks on write)
    # and more than the daemon's ring (so the stalled reader is overtaken).
    d = ctx.daemon(workers=2)
    d.wait_pool(2)
    stalled = Stream(d, rcvbuf=4096)           # reads its headers, then nothing more
    live = Stream(d)
    n, msg = 600, "m" * 60000
    done = set()
    errors = []

    def read_live():
        try:
            while len(done) < n:
                e = live.next_event(30)
                check(e["event"] != "resync", "the live reader was told to resync")
                if e["event"] == "task" and e["data"]["status"] in TERMINAL:
                    eq(e["data"]["error"]["message"], msg, "error.message in the event")
                    done.add(e["data"]["id"])
        except BaseException as ex:  # noqa: B902 - reported below
            errors.append(ex)

    reader = threading.Thread(target=read_live, daemon=True)
    reader.start()
    t0 = time.monotonic()
    ids = []
    lock = threading.Lock()

    def submit_many(k):
        for _ in range(k):
            t = d.submit({"kind": "fail", "args": {"message": msg}})
            with lock:
                ids.append(t["id"])

    subs = [threading.Thread(target=submit_many, args=(n // 4,)) for _ in range(4)]
    for t in subs:
        t.start()
    for t in subs:
        t.join(120 * SLOW)
    eq(len(ids), n, "tasks submitted")
    wait_until(lambda: d.list("status=queued&limit=1")["tasks"] == [] and
               d.list("status=running&limit=1")["tasks"] == [], 30, "the queue to drain")
    elapsed = time.monotonic() - t0
    check(elapsed < 40 * SLOW, "%d tasks took %.1fs with a stalled subscriber" % (n, elapsed))
    reader.join(30 * SLOW)
    check(not errors, "live reader: %s" % errors)
    check(done >= set(ids), "live reader missed %d terminal events" % len(set(ids) - done))
    eq(d.task(max(ids))["status"], "failed", "status of the last task")
    # The stalled reader, read at last: consecutive ids as far as it goes; where
    # it was overtaken it is told so, in the stream (resync) or, if half an
    # event was already out, by the end of the stream and a resync when it
    # comes back with the last complete id.
    evs = []
    told = False
    try:
        while True:
            e = stalled.next_event(3)
            if e["event"] == "resync":
                told = True
                break
            if evs:
                eq(e["id"], evs[-1]["id"] + 1, "next id on the stalled stream")
            evs.append(e)
    except EOFError:
        check(evs, "the stalled stream ended before its first event")
        again = Stream(d, last_id=evs[-1]["id"])
        try:
            eq(again.next_event(5)["event"], "resync", "first event when the overtaken reader returns")
            told = True
        finally:
            again.close()
    except Fail:
        pass                                        # quiet: it has read everything
    if not told:
        terminal = {e["data"]["id"] for e in evs if e["event"] == "task"
                    and e["data"]["status"] in TERMINAL}
        check(terminal >= set(ids), "the stalled reader lost %d terminal events and was not told"
              % len(set(ids) - terminal))
    stalled.close()
    live.close()


def test_events_vanished_subscribers_are_released(ctx):
    d = ctx.daemon(workers=1)
    d.wait_pool(1)
    warm = Stream(d)
    warm.next(5)
    warm.close()
    d.submit({"kind": "echo"}, wait=5)
    time.sleep(0.2)
    base = daemon_fds(d)
    streams = [Stream(d) for _ in range(30)]
    for s in streams:
        s.next(5)
    check(daemon_fds(d) >= base + 30, "30 streams but %d fds (base %d)" % (daemon_fds(d), base))
    for s in streams[:20]:
        s.close()                                   # vanish without a word
    for s in streams[20:]:
        s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()                                   # vanish with a reset
    # One event wakes every stream; each then finds its client gone.
    d.submit({"kind": "echo"}, wait=5)
    wait_until(lambda: daemon_fds(d) <= base + 2, 5,
               "the daemon to close the 30 vanished streams (fds %d, base %d)" % (daemon_fds(d), base))
    # and it still streams to a newcomer
    s = Stream(d)
    try:
        tid = d.submit({"kind": "echo"})["id"]
        s.until(is_terminal_of(tid), 10, "task %d for a newcomer" % tid)
    finally:
        s.close()


def test_events_worker_exit_and_respawn_when_killed(ctx):
    d = ctx.daemon(workers=1)
    (old,) = d.wait_pool(1)
    s = Stream(d)
    try:
        s.next(5)
        os.kill(old, signal.SIGKILL)
        seen = {"exited": False, "spawned": False}

        def both(e):
            if e["event"] == "worker":
                w = e["data"]
                if w["event"] == "exited" and w["pid"] == old:
                    seen["exited"] = True
                if w["event"] == "spawned" and w["pid"] != old:
                    seen["spawned"] = True
            return seen["exited"] and seen["spawned"]
        evs = s.until(both, 10, "worker %d exited and a new one spawned" % old)
        ws = [e["data"] for e in evs if e["event"] == "worker"]
        for w in ws:
            eq(set(w), WORKER_FIELDS, "fields of a worker event")
            parse_time(w["started_at"])
            if w["event"] == "exited":
                parse_time(w["exited_at"])
            else:
                eq(w["exited_at"], None, "exited_at of a spawned event")
        exited = [w for w in ws if w["event"] == "exited"]
        eq([w["pid"] for w in exited], [old], "exited pids")
        eq((exited[0]["exit_signal"], exited[0]["exit_code"]), (9, None), "exit signal / code")
        check(exited[0]["reason"] in ("died", "killed"), "reason of an outside SIGKILL: %r" % exited[0]["reason"])
        spawned = [w["pid"] for w in ws if w["event"] == "spawned" and w["pid"] != old]
        eq(len(spawned), 1, "workers spawned after the kill")
        eq(d.wait_pool(1, gone={old}), {spawned[0]}, "the pool after the kill vs the spawned event")
    finally:
        s.close()


def test_events_sigterm_ends_open_streams_and_exits_0(ctx):
    d = ctx.daemon(workers=1)
    d.wait_pool(1)
    idle = [Stream(d) for _ in range(3)]
    for s in idle:
        s.next(5)                                   # now suspended, waiting for events
    stalled = Stream(d, rcvbuf=4096)
    for i in range(20):
        d.submit({"kind": "echo", "args": {"pad": "y" * 2000, "i": i}})
    t0 = time.monotonic()
    rc, forced = d.stop(grace=15)
    check(not forced, "daemon with open streams did not exit within %.0fs of SIGTERM" % (15 * SLOW))
    eq(rc, 0, "exit status after SIGTERM with open streams")
    check(time.monotonic() - t0 < 10 * SLOW, "shutdown took %.1fs" % (time.monotonic() - t0))
    for s in idle:
        try:
            while True:
                s.next(5)
        except EOFError:
            pass
        check(s.ended, "an idle stream did not end")
        s.close()
    stalled.close()
