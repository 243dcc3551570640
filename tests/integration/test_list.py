"""GET /api/v1/tasks: newest first, status/kind filters, limit, paging via next/before."""
import time

from harness import SLOW, TERMINAL, check, check_error, eq, wait_until


def _populated(ctx):
    """A daemon holding 60 echo (succeeded), 3 fail (failed) and 2 square (succeeded) tasks."""
    d = ctx.daemon(workers=2)
    ids = {"echo": [], "fail": [], "square": []}
    for i in range(65):
        if i % 20 == 7:
            kind, args = "fail", {"message": "f%d" % i}
        elif i % 30 == 11:
            kind, args = "square", {"numbers": [i]}
        else:
            kind, args = "echo", {"i": i}
        ids[kind].append(d.submit({"kind": kind, "args": args})["id"])
    eq([len(ids["echo"]), len(ids["fail"]), len(ids["square"])], [60, 3, 2], "test setup: task counts")
    every = sorted(ids["echo"] + ids["fail"] + ids["square"], reverse=True)
    eq(len(set(every)), 65, "distinct ids")
    wait_until(lambda: all(t["status"] in TERMINAL for t in d.list("limit=500")["tasks"]), 15,
               "all 65 tasks to finish")
    # the filtered lists may lag the live state by a commit (see the test below): let them settle
    wait_until(lambda: len(d.list("status=succeeded&limit=500")["tasks"]) == 62
               and len(d.list("status=failed&limit=500")["tasks"]) == 3, 5, "filtered lists to settle")
    return d, ids, every


def _ids(page):
    return [t["id"] for t in page["tasks"]]


def test_list_newest_first_default_limit_50_then_next(ctx):
    d, ids, every = _populated(ctx)
    p1 = d.list()
    eq(_ids(p1), every[:50], "first page ids (newest first, default limit 50)")
    check(p1["next"] is not None, "next is null although 15 more tasks exist")
    p2 = d.list("before=%s" % p1["next"])
    eq(_ids(p2), every[50:], "second page ids")
    eq(p2["next"], None, "next on the last page")
    for t in p1["tasks"] + p2["tasks"]:
        for k in ("id", "kind", "status", "priority", "created_at", "worker_pid"):
            check(k in t, "listed task lacks %s: %r" % (k, t))
        kind = [k for k, v in ids.items() if t["id"] in v][0]
        eq(t["kind"], kind, "kind of listed task %d" % t["id"])
        eq(t["status"], "failed" if kind == "fail" else "succeeded", "status of listed task %d" % t["id"])
    p = d.list("limit=500")
    eq((_ids(p), p["next"]), (every, None), "limit=500: every task, next null")


def test_list_filters_by_status_and_kind(ctx):
    d, ids, every = _populated(ctx)
    p = d.list("status=failed")
    eq((_ids(p), p["next"]), (sorted(ids["fail"], reverse=True), None), "status=failed")
    p = d.list("kind=square")
    eq((_ids(p), p["next"]), (sorted(ids["square"], reverse=True), None), "kind=square")
    p = d.list("kind=echo&status=succeeded&limit=500")
    eq((_ids(p), p["next"]), (sorted(ids["echo"], reverse=True), None), "kind=echo&status=succeeded")
    p = d.list("kind=fail&status=succeeded")
    eq((_ids(p), p["next"]), ([], None), "kind=fail&status=succeeded")
    for st in ("queued", "running", "cancelled", "timed_out"):
        p = d.list("status=" + st)
        eq((_ids(p), p["next"]), ([], None), "status=" + st)
    p = d.list("status=succeeded&limit=10")
    succ = sorted(ids["echo"] + ids["square"], reverse=True)
    eq(_ids(p), succ[:10], "status=succeeded&limit=10")
    p = d.list("status=succeeded&limit=10&before=%s" % p["next"])
    eq(_ids(p), succ[10:20], "status=succeeded second page")


def test_list_pages_via_next_until_null(ctx):
    d, ids, every = _populated(ctx)
    seen, pages, q = [], 0, "limit=5"
    while True:
        p = d.list(q)
        pages += 1
        check(pages <= 14, "more than 13 pages of 5 for 65 tasks")
        check(p["tasks"], "empty page %d (next of the previous page should have been null)" % pages)
        check(len(p["tasks"]) <= 5, "page of %d tasks with limit=5" % len(p["tasks"]))
        seen += _ids(p)
        if p["next"] is None:
            break
        q = "limit=5&before=%s" % p["next"]
    eq(pages, 13, "pages of 5 for 65 tasks")
    eq(seen, every, "ids collected over all pages")


def test_list_invalid_params_400(ctx):
    d = ctx.shared()
    problems = []
    for q, field in (("limit=0", "limit"), ("limit=-1", "limit"), ("limit=501", "limit"), ("limit=abc", "limit"),
                     ("limit=", "limit"), ("limit=1.5", "limit"), ("status=bogus", "status"),
                     ("before=abc", "before"), ("before=-5", "before")):
        try:
            check_error(d.request("GET", "/api/v1/tasks?" + q), 400, field=field)
        except AssertionError as e:
            problems.append("%s: %s" % (q, e))
    check(not problems, "; ".join(problems))
    eq(len(d.list("limit=500")["tasks"]) <= 500, True, "limit=500 accepted")


def test_list_status_filter_agrees_with_task_status(ctx):
    """A task that GET shows as succeeded is in ?status=succeeded, and a ?status=X list
    only holds tasks whose status is X, also while tasks change state."""
    d = ctx.daemon(workers=2)
    problems = []
    for i in range(20):
        t = d.submit({"kind": "echo", "args": i})
        # observe completion through plain GETs, as a polling client does
        t = wait_until(lambda: (lambda x: x if x["status"] in TERMINAL else None)(d.task(t["id"])), 5,
                       "task to finish", interval=0.001)
        p = d.list("status=succeeded&limit=1")
        if _ids(p) != [t["id"]]:
            problems.append("status=succeeded&limit=1 right after GET showed task %d %s -> %s"
                            % (t["id"], t["status"], [(x["id"], x["status"]) for x in p["tasks"]]))
    ids = [d.submit({"kind": "sleep", "args": {"seconds": 0.01}})["id"] for _ in range(100)]
    end = time.monotonic() + 10 * SLOW
    while time.monotonic() < end:
        for st in ("queued", "running", "succeeded"):
            for x in d.list("status=%s&limit=500" % st)["tasks"]:
                if x["status"] != st:
                    problems.append("status=%s lists task %d whose status is %s" % (st, x["id"], x["status"]))
        if d.task(ids[-1])["status"] in TERMINAL:
            break
    check(not problems, "%d problems: %s" % (len(problems), "; ".join(problems[:4])))
