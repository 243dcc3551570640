"""GET /metrics: Prometheus text exposition format 0.0.4, checked by the strict
parser below (names, labels, escapes, values, one # TYPE per family before its
samples, grouping, no duplicate series, histogram invariants), and values that
move as the pool works: tasks by status, finished tasks by kind and status,
queue depth, workers by state, worker restarts, the run-time and queue-wait
histograms, HTTP responses by status; no token needed even with --token.

The family names are the daemon's (server/stats.c); the issue names what they
measure, not what they are called."""
import math
import os
import re
import signal
import time

from harness import SHARED_WORKERS, STATUSES, TERMINAL, Fail, check, check_error, eq, wait_until

TASKS = "taskpool_tasks"                        # gauge {kind, status}
QUEUE = "taskpool_queue_depth"                  # gauge
WORKERS = "taskpool_workers"                    # gauge {state}
RESTARTS = "taskpool_worker_restarts_total"     # counter
FINISHED = "taskpool_tasks_finished_total"      # counter {kind, status}
RUN = "taskpool_task_run_seconds"               # histogram
QWAIT = "taskpool_task_queue_seconds"           # histogram
HTTP = "taskpool_http_responses_total"          # counter {code}
FAMILIES = {TASKS: "gauge", QUEUE: "gauge", WORKERS: "gauge", RESTARTS: "counter",
            FINISHED: "counter", RUN: "histogram", QWAIT: "histogram", HTTP: "counter"}
KINDS = {"echo", "sleep", "square", "cube", "cpu", "fail", "exec"}
TOKEN = "metr1cs-t0ken"

# ---------------------------------------------------------------- the parser

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
VALUE_RE = re.compile(r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)\Z")
TS_RE = re.compile(r"-?\d+\Z")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


class Exposition:
    """A parsed exposition: types {family: type}, helps {family: text},
    samples [(name, labels dict, value float)] in order."""

    def __init__(self, types, helps, samples, text):
        self.types, self.helps, self.samples, self.text = types, helps, samples, text

    def series(self, name):
        return [(labels, v) for n, labels, v in self.samples if n == name]

    def value(self, name, **labels):
        """The value of the one series name{labels} (exact label set), or None."""
        for n, ls, v in self.samples:
            if n == name and ls == labels:
                return v
        return None

    def need(self, name, **labels):
        v = self.value(name, **labels)
        if v is None:
            raise Fail("/metrics has no sample %s%s" % (name, fmt_labels(labels)))
        return v

    def by(self, name, label):
        """{label value: value} of a family with exactly that one label."""
        out = {}
        for ls, v in self.series(name):
            check(set(ls) == {label}, "%s series with labels %s, expected only %r" % (name, ls, label))
            out[ls[label]] = v
        return out

    def hist(self, name):
        """A histogram summed over its series: ({le: cumulative count}, count, sum)."""
        check(self.types.get(name) == "histogram", "%s is not a histogram family" % name)
        buckets, count, total = {}, 0.0, 0.0
        for ls, v in self.series(name + "_bucket"):
            le = float(ls["le"])
            buckets[le] = buckets.get(le, 0.0) + v
        for _, v in self.series(name + "_count"):
            count += v
        for _, v in self.series(name + "_sum"):
            total += v
        check(buckets, "histogram %s has no buckets" % name)
        return buckets, count, total


def fmt_labels(labels):
    if not labels:
        return ""
    return "{%s}" % ",".join('%s="%s"' % (k, labels[k]) for k in sorted(labels))


def _parse_value(s, where):
    if not VALUE_RE.match(s):
        raise Fail("%s: value %r is not a float, +Inf, -Inf or NaN" % (where, s))
    return float(s)


def _parse_labels(line, i, where):
    """Parses {a="x",b="y"} starting at line[i] == '{'; returns (labels, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = LABEL_RE.match(line, i)
        if not m:
            raise Fail("%s: bad label name at column %d" % (where, i + 1))
        name = m.group(0)
        check(not name.startswith("__"), "%s: reserved label name %r" % (where, name))
        check(name not in labels, "%s: label %r twice" % (where, name))
        i = m.end()
        check(line[i:i + 2] == '="', "%s: expected =\" after label %r" % (where, name))
        i += 2
        val = []
        while True:
            if i >= len(line):
                raise Fail("%s: unterminated value of label %r" % (where, name))
            c = line[i]
            if c == "\\":
                e = line[i + 1:i + 2]
                if e not in ("\\", '"', "n"):
                    raise Fail("%s: bad escape \\%s in label %r" % (where, e, name))
                val.append("\n" if e == "n" else e)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                val.append(c)
                i += 1
        labels[name] = "".join(val)
        if i < len(line) and line[i] == ",":
            i += 1
        elif not (i < len(line) and line[i] == "}"):
            raise Fail("%s: expected , or } after label %r" % (where, name))


def parse_exposition(text):
    """Parses text strictly as exposition format 0.0.4 (canonical layout: '\\n' line
    ends, no leading or trailing blanks) and checks the invariants; returns an
    Exposition or raises Fail naming the line."""
    check(text.endswith("\n"), "exposition does not end with a newline")
    check("\r" not in text, "exposition contains CR")
    types, helps, samples = {}, {}, []
    seen = set()
    current, closed = None, set()
    derived = {}                      # histogram/summary sample name -> family

    def enter(family, where):
        nonlocal current
        if family == current:
            return
        check(family not in closed, "%s: lines of family %s are not one group" % (where, family))
        if current is not None:
            closed.add(current)
        current = family

    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d %r" % (n, line[:120])
        if line == "":
            continue
        check(line == line.strip(" \t"), "%s: leading or trailing blanks" % where)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
                fam = parts[2]
                check(NAME_RE.fullmatch(fam), "%s: bad metric name %r" % (where, fam))
                if parts[1] == "HELP":
                    doc = parts[3] if len(parts) == 4 else ""
                    for m in re.finditer(r"\\(.?)", doc):
                        check(m.group(1) in ("\\", "n"), "%s: bad escape in HELP" % where)
                    check(fam not in helps, "%s: second HELP for %s" % (where, fam))
                    enter(fam, where)
                    helps[fam] = doc
                else:
                    check(len(parts) == 4 and parts[3] in TYPES, "%s: bad TYPE line" % where)
                    check(fam not in types, "%s: second TYPE for %s" % (where, fam))
                    check(fam not in derived, "%s: %s is already a sample of %s" % (where, fam, derived.get(fam)))
                    check(not any(s[0] == fam for s in samples), "%s: TYPE after samples of %s" % (where, fam))
                    enter(fam, where)
                    types[fam] = parts[3]
                    for suf in SUFFIXES.get(parts[3], ()):
                        check(fam + suf not in types, "%s: %s%s has its own TYPE" % (where, fam, suf))
                        derived[fam + suf] = fam
            continue                          # any other comment
        m = NAME_RE.match(line)
        check(m, "%s: does not start with a metric name" % where)
        name, i = m.group(0), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, where)
        rest = line[i:]
        check(rest[:1] in (" ", "\t"), "%s: no blank before the value" % where)
        toks = rest.split()
        check(1 <= len(toks) <= 2, "%s: expected value [timestamp], got %r" % (where, rest))
        value = _parse_value(toks[0], where)
        if len(toks) == 2:
            check(TS_RE.match(toks[1]), "%s: timestamp %r is not an integer" % (where, toks[1]))
        if name in types:
            family = name
            check(types[name] != "histogram", "%s: bare sample of histogram %s" % (where, name))
        elif name in derived:
            family = derived[name]
        else:
            raise Fail("%s: sample of %s without a # TYPE line before it" % (where, name))
        enter(family, where)
        key = (name, frozenset(labels.items()))
        check(key not in seen, "%s: duplicate sample %s%s" % (where, name, fmt_labels(labels)))
        seen.add(key)
        t = types[family]
        is_count = name != family and name.endswith(("_count", "_bucket"))
        if t == "counter" or is_count:
            check(value >= 0 and not math.isnan(value), "%s: %s value %r is negative or NaN" % (where, t, value))
        if is_count:
            check(value != math.inf and value == int(value), "%s: count %r is not an integer" % (where, value))
        if name.endswith("_bucket") and t == "histogram":
            check("le" in labels, "%s: bucket without le" % where)
            _parse_value(labels["le"], where + " le")
        samples.append((name, labels, value))
    for fam, t in types.items():
        if t == "histogram":
            _check_histogram(fam, samples)
    return Exposition(types, helps, samples, text)


def _check_histogram(fam, samples):
    groups = {}
    for name, labels, v in samples:
        if name.startswith(fam + "_"):
            rest = frozenset((k, x) for k, x in labels.items() if k != "le")
            g = groups.setdefault(rest, {"le": [], "count": None, "sum": None})
            if name == fam + "_bucket":
                g["le"].append((labels["le"], v))
            elif name == fam + "_count":
                g["count"] = v
            elif name == fam + "_sum":
                g["sum"] = v
    for key, g in groups.items():
        what = "histogram %s%s" % (fam, fmt_labels(dict(key)))
        check(g["le"], "%s: no _bucket samples" % what)
        les = [float(le) for le, _ in g["le"]]
        check(all(a < b for a, b in zip(les, les[1:])), "%s: le not increasing: %s" % (what, [x for x, _ in g["le"]]))
        eq(g["le"][-1][0], "+Inf", "%s: last bucket's le" % what)
        counts = [v for _, v in g["le"]]
        check(all(a <= b for a, b in zip(counts, counts[1:])), "%s: bucket counts not cumulative: %s" % (what, counts))
        check(g["sum"] is not None, "%s: no _sum" % what)
        check(g["count"] is not None, "%s: no _count" % what)
        eq(g["count"], counts[-1], "%s: _count vs _bucket{le=\"+Inf\"}" % what)


# ---------------------------------------------------------------- helpers

def check_content_type(ct):
    parts = [p.strip() for p in (ct or "").split(";")]
    eq(parts[0].lower(), "text/plain", "media type of /metrics (Content-Type %r)" % ct)
    params = {}
    for p in parts[1:]:
        k, sep, v = p.partition("=")
        check(sep and k.strip(), "bad Content-Type parameter %r in %r" % (p, ct))
        params[k.strip().lower()] = v.strip().strip('"')
    eq(params.get("version"), "0.0.4", "version parameter of Content-Type %r" % ct)
    if "charset" in params:
        eq(params["charset"].lower(), "utf-8", "charset of Content-Type %r" % ct)


def scrape(d, headers=None):
    """GET /metrics without a token; checks 200, Content-Type and format; returns the Exposition."""
    r = d.request("GET", "/metrics", auth=None, headers=headers, check_ct=False)
    check(r.status == 200, "GET /metrics: expected 200, got %r" % r)
    check_content_type(r.header("Content-Type"))
    try:
        text = r.body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Fail("/metrics body is not UTF-8: %s" % e)
    m = parse_exposition(text)
    for fam, t in FAMILIES.items():
        eq(m.types.get(fam), t, "# TYPE of %s" % fam)
    return m


def scrape_until(d, pred, seconds, what):
    """Scrapes until pred(m) holds (bounded); returns that scrape.  The last scrape is in the failure."""
    last = {}

    def f():
        last["m"] = scrape(d)
        return last["m"] if pred(last["m"]) else None
    try:
        return wait_until(f, seconds, what, interval=0.05)
    except Fail as e:
        if not str(e).startswith("timed out"):
            raise                               # the scrape itself was wrong
        raise Fail("%s; last scrape: %s" % (e, summary(last.get("m"))))


def summary(m):
    if m is None:
        return "none"
    keep = (TASKS, QUEUE, WORKERS, RESTARTS, FINISHED, RUN + "_count", QWAIT + "_count", HTTP)
    return "; ".join("%s%s %g" % (n, fmt_labels(ls), v) for n, ls, v in m.samples
                     if n in keep and (v or n in (QUEUE, RESTARTS, WORKERS)))


def tasks(m):
    """{(kind, status): value} of the tasks gauge: every known kind and status, exactly once."""
    out = {}
    for ls, v in m.series(TASKS):
        eq(set(ls), {"kind", "status"}, "labels of %s" % TASKS)
        check((ls["kind"], ls["status"]) not in out, "%s%s twice" % (TASKS, fmt_labels(ls)))
        out[(ls["kind"], ls["status"])] = v
    eq(set(out), {(k, s) for k in KINDS for s in STATUSES}, "series of %s" % TASKS)
    return out


def tasks_by_status(m):
    """{status: value} of the tasks gauge, summed over kinds."""
    out = dict.fromkeys(STATUSES, 0)
    for (_, st), v in tasks(m).items():
        out[st] += v
    return out


def finished(m):
    """{(kind, status): value} of the finished-tasks counter."""
    out = {}
    for ls, v in m.series(FINISHED):
        eq(set(ls), {"kind", "status"}, "labels of %s" % FINISHED)
        out[(ls["kind"], ls["status"])] = v
    return out


def workers_by_state(m):
    st = m.by(WORKERS, "state")
    check({"busy", "idle"} <= set(st), "%s lacks busy/idle: %s" % (WORKERS, st))
    return st


# ---------------------------------------------------------------- tests

def test_metrics_parser_rejects_malformed_exposition(ctx):
    """The parser the other tests rely on accepts valid text and refuses each defect."""
    good = ('# HELP a_total Things, with a \\\\ and a \\n.\n# TYPE a_total counter\n'
            'a_total{x="q\\"\\\\\\n",y="\u00e9"} 3\na_total 1e3 1700000000000\n\n# a comment\n'
            '# TYPE g gauge\ng -Inf\ng{s="1"} NaN\ng{s="2"} +Inf\ng{s="3"} .5\n'
            '# TYPE h histogram\nh_bucket{le="0.1"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
            'h_sum 0.3\nh_count 2\nh_bucket{k="b",le="0.5"} 0\nh_bucket{k="b",le="+Inf"} 0\n'
            'h_sum{k="b"} 0\nh_count{k="b"} 0\n')
    m = parse_exposition(good)
    eq(m.value("a_total", x='q"\\\n', y="\u00e9"), 3.0, "escaped label value")
    eq(m.value("a_total"), 1000.0, "sample with a timestamp")
    eq(m.hist("h"), ({0.1: 1, 1.0: 1, 0.5: 0, float("inf"): 2}, 2, 0.3), "summed histogram")
    G = "# TYPE a gauge\n"
    H = "# TYPE h histogram\n"
    bad = {
        "no TYPE": "a 1\n",
        "TYPE after the sample": "a 1\n# TYPE a gauge\n",
        "two TYPEs": G + G + "a 1\n",
        "unknown type": "# TYPE a weird\na 1\n",
        "TYPE without type": "# TYPE a\na 1\n",
        "bad metric name": "# TYPE 1a gauge\n1a 1\n",
        "bad name in HELP": "# HELP a-b x\n",
        "two HELPs": "# HELP a x\n# HELP a y\n" + G + "a 1\n",
        "bad HELP escape": "# HELP a x\\ty\n" + G + "a 1\n",
        "bad label name": G + 'a{1x="1"} 1\n',
        "reserved label": G + 'a{__x="1"} 1\n',
        "unquoted label": G + "a{x=1} 1\n",
        "stray quote": G + 'a{x="a"b"} 1\n',
        "bad label escape": G + 'a{x="a\\tb"} 1\n',
        "unterminated labels": G + 'a{x="1" 1\n',
        "label twice": G + 'a{x="1",x="2"} 1\n',
        "no value": G + "a\n",
        "no blank before value": G + 'a{x="1"}1\n',
        "comma decimal": G + "a 1,5\n",
        "lower-case inf": G + "a inf\n",
        "hex value": G + "a 0x10\n",
        "underscore value": G + "a 1_000\n",
        "float timestamp": G + "a 1 1.5\n",
        "extra token": G + "a 1 2 3\n",
        "duplicate series": G + 'a{x="1"} 1\na{x="1"} 2\n',
        "duplicate, labels reordered": G + 'a{x="1",y="2"} 1\na{y="2",x="1"} 2\n',
        "family split in two": G + "a 1\n# TYPE b gauge\nb 1\na{x=\"2\"} 1\n",
        "HELP after the family": G + "a 1\n# TYPE b gauge\nb 1\n# HELP a late\n",
        "negative counter": "# TYPE c counter\nc -1\n",
        "no final newline": G + "a 1",
        "CR line ends": G.replace("\n", "\r\n") + "a 1\r\n",
        "trailing blank": G + "a 1 \n",
        "bare histogram sample": H + 'h 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        "bucket without le": H + 'h_bucket 1\nh_sum 1\nh_count 1\n',
        "bad le": H + 'h_bucket{le="x"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        "le not increasing": H + 'h_bucket{le="1"} 0\nh_bucket{le="0.5"} 0\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        "no +Inf bucket": H + 'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
        "counts decrease": H + 'h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        "count != +Inf": H + 'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
        "no _sum": H + 'h_bucket{le="+Inf"} 1\nh_count 1\n',
        "no _count": H + 'h_bucket{le="+Inf"} 1\nh_sum 1\n',
        "fractional count": H + 'h_bucket{le="+Inf"} 1.5\nh_sum 1\nh_count 1.5\n',
        "TYPE clashing with a histogram": H + "# TYPE h_count gauge\n",
    }
    accepted = []
    for what, text in bad.items():
        try:
            parse_exposition(text)
        except Fail:
            continue
        accepted.append(what)
    check(not accepted, "the parser accepted malformed text: %s" % accepted)


def test_metrics_exposition_is_valid_and_complete(ctx):
    d = ctx.shared()
    for i in range(3):
        eq(d.submit({"kind": "echo", "args": {"i": i}}, wait=10)["status"], "succeeded", "echo")
    eq(d.submit({"kind": "fail", "args": {"message": 'a "quoted"\nmessage'}}, wait=10)["status"],
       "failed", "fail")
    eq(d.submit({"kind": "sleep", "args": {"seconds": 0.01}}, wait=10)["status"], "succeeded", "sleep")
    d.wait_pool(SHARED_WORKERS)
    # (the figures may trail a ?wait answer by a moment: scrape until the 5 tasks are in)
    m = scrape_until(d, lambda m: m.hist(RUN)[1] >= 5 and m.hist(QWAIT)[1] >= 5, 3,
                     "the run and queue histograms to count 5 finished tasks")
    for fam in FAMILIES:
        check(fam in m.helps and m.helps[fam].strip(), "no # HELP text for %s" % fam)
    st = tasks_by_status(m)
    check(st["succeeded"] >= 4 and st["failed"] >= 1,
          "tasks by status after 4 successes and 1 failure: %s" % st)
    check(m.need(QUEUE) >= 0, "queue depth")
    ws = workers_by_state(m)
    eq(sum(ws.values()), SHARED_WORKERS, "workers by state summed (pool of %d): %s" % (SHARED_WORKERS, ws))
    fin = finished(m)
    check({k for k, _ in fin} <= KINDS, "kinds in %s: %s" % (FINISHED, sorted({k for k, _ in fin})))
    check({s for _, s in fin} <= set(TERMINAL), "statuses in %s: %s" % (FINISHED, sorted({s for _, s in fin})))
    check(fin.get(("echo", "succeeded"), 0) >= 3 and fin.get(("fail", "failed"), 0) >= 1,
          "finished by kind and status: %s" % fin)
    for h in (RUN, QWAIT):
        _, count, total = m.hist(h)
        check(count >= 5 and total >= 0, "%s: count %s sum %s after 5 tasks" % (h, count, total))
    codes = m.by(HTTP, "code")
    check(all(re.fullmatch(r"[1-5]\d\d", c) for c in codes), "codes of %s: %s" % (HTTP, sorted(codes)))
    check(codes.get("201", 0) >= 5 and codes.get("200", 0) >= 1, "HTTP responses by code: %s" % codes)
    # a second scrape: same families, and no counter went down or vanished
    m2 = scrape(d)
    for name, ls, v in m.samples:
        fam = name if name in m.types else name.rsplit("_", 1)[0]
        if m.types.get(fam) in ("counter", "histogram") and not name.endswith("_sum"):
            v2 = m2.value(name, **ls)
            check(v2 is not None and v2 >= v, "%s%s went from %s to %s between scrapes"
                  % (name, fmt_labels(ls), v, v2))
    # HEAD gets the headers and no body
    r = d.request("HEAD", "/metrics", auth=None, check_ct=False)
    eq(r.status, 200, "HEAD /metrics status")
    check_content_type(r.header("Content-Type"))
    eq(r.body, b"", "HEAD /metrics body")


def test_metrics_tasks_by_status_and_kind_exactly(ctx):
    d = ctx.daemon(workers=2)
    m = scrape(d)
    eq({k: v for k, v in tasks(m).items() if v}, {}, "%s on a fresh daemon" % TASKS)
    eq({k: v for k, v in finished(m).items() if v}, {}, "%s on a fresh daemon" % FINISHED)
    eq(m.hist(RUN)[1:], (0, 0), "%s count and sum on a fresh daemon" % RUN)
    eq(m.hist(QWAIT)[1], 0, "%s count on a fresh daemon" % QWAIT)
    eq(m.need(QUEUE), 0, "%s on a fresh daemon" % QUEUE)
    n = 5
    for i in range(n):
        eq(d.submit({"kind": "echo", "args": {"i": i}}, wait=10)["status"], "succeeded", "echo %d" % i)
    eq(d.submit({"kind": "fail", "args": {"message": "boom"}}, wait=10)["status"], "failed", "fail")
    want = {("echo", "succeeded"): n, ("fail", "failed"): 1}
    m = scrape_until(d, lambda m: {k: v for k, v in finished(m).items() if v} == want, 3,
                     "%s to show %s" % (FINISHED, want))
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(succeeded=n, failed=1)
    eq(tasks_by_status(m), counts, "%s after %d echo + 1 fail, by status" % (TASKS, n))
    eq({k: v for k, v in tasks(m).items() if v}, want, "%s after %d echo + 1 fail" % (TASKS, n))
    for h in (RUN, QWAIT):
        buckets, count, _ = m.hist(h)
        eq(count, n + 1, "%s count after %d finished tasks" % (h, n + 1))
        eq(buckets[float("inf")], n + 1, "%s +Inf bucket" % h)
    eq(m.need(QUEUE), 0, "%s with nothing queued" % QUEUE)
    s = d.request("GET", "/api/v1/stats").json
    eq(s["counts"], counts, "/api/v1/stats counts vs %s" % TASKS)

    # a 0.3 s sleep lands in the buckets at and above its run time, and only those
    b0, c0, s0 = m.hist(RUN)
    t = d.submit({"kind": "sleep", "args": {"seconds": 0.3}}, wait=10)
    eq(t["status"], "succeeded", "sleep 0.3")
    run_s = t["run_ms"] / 1000.0
    check(run_s >= 0.3, "sleep 0.3 ran %.3fs" % run_s)
    m = scrape_until(d, lambda m: m.hist(RUN)[1] == c0 + 1, 3, "%s count %d" % (RUN, c0 + 1))
    b1, _, s1 = m.hist(RUN)
    eq(sorted(b1), sorted(b0), "%s bucket bounds" % RUN)
    moved = {le: b1[le] - b0[le] for le in b1}
    want_moved = {le: (1 if le >= run_s else 0) for le in b1}
    eq(moved, want_moved, "%s bucket increments for one task of %.3fs" % (RUN, run_s))
    check(abs((s1 - s0) - run_s) < 0.005, "%s sum grew by %.4f for one task of %.3fs" % (RUN, s1 - s0, run_s))
    if run_s < 0.5:
        eq(moved.get(0.25), 0, "le=0.25 bucket for a 0.3 s task")
        eq(moved.get(0.5), 1, "le=0.5 bucket for a 0.3 s task")
    eq(m.hist(QWAIT)[1], n + 2, "%s count" % QWAIT)
    eq(finished(m).get(("sleep", "succeeded")), 1, "%s{kind=sleep,status=succeeded}" % FINISHED)
    eq(tasks_by_status(m)["succeeded"], n + 1, "%s{status=succeeded}" % TASKS)


def test_metrics_queue_depth_and_workers_while_busy(ctx):
    d = ctx.daemon(workers=2)
    m = scrape(d)
    eq((m.need(WORKERS, state="busy"), m.need(WORKERS, state="idle")), (0, 2), "busy/idle of an idle pool")
    eq(sum(workers_by_state(m).values()), 2, "workers by state summed")
    sleeps = [d.submit({"kind": "sleep", "args": {"seconds": 1}})["id"] for _ in range(2)]
    for tid in sleeps:
        d.wait_status(tid, "running", 3)
    queued = [d.submit({"kind": "echo", "args": {"q": i}})["id"] for i in range(3)]
    m = scrape(d)
    for tid in sleeps:                      # still inside the 1 s window?
        check(d.task(tid)["status"] == "running", "sleep %d ended before the scrape was checked" % tid)
    eq(m.need(QUEUE), 3, "%s with 2 workers busy and 3 tasks queued" % QUEUE)
    busy = {k: v for k, v in tasks(m).items() if v and k[1] in ("queued", "running")}
    eq(busy, {("echo", "queued"): 3, ("sleep", "running"): 2}, "%s queued and running, by kind" % TASKS)
    ws = workers_by_state(m)
    eq((ws["busy"], ws["idle"]), (2, 0), "busy/idle with 2 sleeps running")
    eq(sum(ws.values()), 2, "workers by state summed while busy")
    for tid in sleeps + queued:
        eq(d.wait_terminal(tid, 10)["status"], "succeeded", "task %d" % tid)
    m = scrape_until(d, lambda m: m.need(QUEUE) == 0 and m.need(WORKERS, state="idle") == 2, 3,
                     "queue 0 and 2 idle workers after the work")
    eq(m.need(WORKERS, state="busy"), 0, "busy workers after the work")
    eq(tasks_by_status(m)["succeeded"], 5, "%s{status=succeeded}" % TASKS)
    eq((tasks_by_status(m)["queued"], tasks_by_status(m)["running"]), (0, 0), "queued/running after")


def test_metrics_worker_restart_counted_once_and_pool_refills(ctx):
    d = ctx.daemon(workers=2)
    m = scrape(d)
    r0 = m.need(RESTARTS)
    eq(r0, 0, "%s on a fresh daemon" % RESTARTS)
    victim = d.workers()["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)
    d.wait_pool(2, gone={victim})
    m = scrape_until(d, lambda m: m.need(RESTARTS) >= r0 + 1 and sum(workers_by_state(m).values()) == 2,
                     5, "%s to count the killed worker %d" % (RESTARTS, victim))
    eq(m.need(RESTARTS), r0 + 1, "%s after one SIGKILL" % RESTARTS)
    time.sleep(0.2)
    m = scrape_until(d, lambda m: m.need(WORKERS, state="idle") == 2, 3, "2 idle workers after the refill")
    eq(m.need(RESTARTS), r0 + 1, "%s a moment later (counted once)" % RESTARTS)
    eq(m.need(WORKERS, state="busy"), 0, "busy workers after the refill")
    # the new worker works
    eq(d.submit({"kind": "echo"}, wait=10)["status"], "succeeded", "echo after the restart")


def test_metrics_http_responses_by_status_code(ctx):
    d = ctx.daemon(workers=1)
    before = scrape(d).by(HTTP, "code")
    r = d.request("GET", "/api/v1/no-such-thing")
    check_error(r, 404, "not_found")
    r = d.post("{not json")
    check_error(r, 400, "invalid_json")
    # the dashboard's files are answers too
    check_error(d.request("GET", "/no-such-file.css"), 404, "not_found")
    r = d.request("GET", "/index.html", check_ct=False)
    eq(r.status, 200, "GET /index.html")
    etag = r.header("ETag")
    eq(d.request("GET", "/index.html", headers={"If-None-Match": etag}, check_ct=False).status, 304, "revalidation")
    after = scrape(d).by(HTTP, "code")
    delta = {c: after.get(c, 0) - before.get(c, 0) for c in set(before) | set(after)}
    eq(delta.get("404"), 2, "%s{code=404} increase after two 404s (before %s, after %s)" % (HTTP, before, after))
    eq(delta.get("400"), 1, "%s{code=400} increase after one 400" % HTTP)
    eq(delta.get("304"), 1, "%s{code=304} increase after one 304" % HTTP)
    # the first scrape's own 200 is counted either in it or in the second one
    eq(delta.get("200", 0), 2, "%s{code=200} increase with one file and one scrape between" % HTTP)
    others = {c: v for c, v in delta.items() if c not in ("200", "304", "400", "404") and v}
    eq(others, {}, "other codes that moved")


def test_metrics_needs_no_token_when_token_is_set(ctx):
    d = ctx.daemon("--token", TOKEN, workers=1, token=TOKEN)
    check("--token" in d.argv() and TOKEN in d.argv(), "daemon not started with --token: %s" % d.argv())
    check_error(d.request("GET", "/api/v1/workers", auth=None), 401, "unauthorized")
    check_error(d.request("GET", "/api/v1/stats", auth=None), 401, "unauthorized")
    m = scrape(d)                                          # no Authorization header
    scrape(d, headers={"Authorization": "Bearer wrong"})   # a wrong one is not refused either
    eq(m.by(HTTP, "code").get("401"), 2, "%s{code=401} after two refused requests" % HTTP)
    eq(d.submit({"kind": "echo", "args": "with token"}, wait=10)["status"], "succeeded", "echo")
    m = scrape_until(d, lambda m: finished(m).get(("echo", "succeeded")) == 1, 3,
                     "the task in %s{kind=echo,status=succeeded}" % FINISHED)
    eq(tasks_by_status(m)["succeeded"], 1, "%s{status=succeeded}" % TASKS)
    eq(sum(workers_by_state(m).values()), 1, "workers by state summed (pool of 1)")


def test_metrics_tasks_by_kind_survive_a_restart(ctx):
    d = ctx.daemon(workers=1)
    for body in ({"kind": "echo"}, {"kind": "echo"}, {"kind": "fail", "args": {"message": "x"}}):
        d.submit(body, wait=5)
    q = d.submit({"kind": "sleep", "args": {"seconds": 0}, "priority": -1})
    rc, forced = d.stop()
    eq((rc, forced), (0, False), "SIGTERM")
    d2 = ctx.daemon(workers=1, db=d.db, name="restarted daemon")
    d2.wait_terminal(q["id"], 5)
    want = {("echo", "succeeded"): 2, ("fail", "failed"): 1, ("sleep", "succeeded"): 1}
    m = scrape_until(d2, lambda m: {k: v for k, v in tasks(m).items() if v} == want, 3,
                     "%s after the restart to show %s" % (TASKS, want))
    eq(tasks_by_status(m), dict(dict.fromkeys(STATUSES, 0), succeeded=3, failed=1), "by status after the restart")


def test_metrics_a_cancelled_run_is_counted_once(ctx):
    # The cancel is written twice (the second time with the run's usage): counted once.
    d = ctx.daemon(workers=1)
    t = d.wait_status(d.submit({"kind": "sleep", "args": {"seconds": 30}})["id"], "running")
    time.sleep(0.1)
    eq(d.cancel(t["id"]).status, 200, "cancel")
    wait_until(lambda: d.task(t["id"])["usage"] is not None, 5, "the usage of the cancelled run")
    d.submit({"kind": "echo"}, wait=5)   # written after both rows of the cancel
    m = scrape_until(d, lambda m: finished(m).get(("echo", "succeeded")) == 1, 3, "the echo in %s" % FINISHED)
    eq({k: v for k, v in finished(m).items() if v}, {("sleep", "cancelled"): 1, ("echo", "succeeded"): 1},
       "%s after one cancelled sleep and one echo" % FINISHED)
    eq(m.hist(RUN)[1], 2, "%s count" % RUN)
    bars = d.request("GET", "/api/v1/timeline").json["bars"]
    eq([b[0] for b in bars if b[0] == t["id"]], [t["id"]], "bars of the cancelled run in the timeline")
