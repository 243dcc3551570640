"""--token / TASKPOOL_TOKEN: every /api/ request needs Authorization: Bearer TOKEN; /healthz does not."""
from harness import check, check_error, eq

TOKEN = "s3cret-T0ken"


def _requests(tid):
    return [("POST", "/api/v1/tasks", '{"kind":"echo"}'), ("GET", "/api/v1/tasks", None),
            ("GET", "/api/v1/tasks/%d" % tid, None), ("GET", "/api/v1/workers", None),
            ("POST", "/api/v1/tasks/%d/cancel" % tid, None), ("GET", "/api/v1/tasks/999999", None),
            ("POST", "/api/v1/tasks?wait=5", '{"kind":"echo"}')]


def _check_token_enforced(d, token):
    t = d.submit({"kind": "echo", "args": "authorized"}, wait=5)
    eq(t["status"], "succeeded", "status of a task posted with the token")
    bad_headers = [None, "Bearer wrong", "Bearer " + token[:-1], "Bearer " + token + "x", "Bearer ",
                   "Basic " + token, token, "Bearer  " + token + " extra"]
    problems = []
    for h in bad_headers:
        for m, p, b in _requests(t["id"]):
            hdr = {"Authorization": h} if h is not None else {}
            r = d.request(m, p, body=b, headers=hdr, auth=None)
            try:
                check_error(r, 401, "unauthorized")
            except AssertionError as e:
                problems.append("%s %s with Authorization %r: %s" % (m, p, h, e))
    check(not problems, "; ".join(problems[:6]) + (" (+%d more)" % (len(problems) - 6) if len(problems) > 6 else ""))
    # nothing was created or cancelled by the refused requests
    ts = d.list()["tasks"]
    eq([x["id"] for x in ts], [t["id"]], "tasks after refused requests")
    eq(ts[0]["status"], "succeeded", "status after refused cancel")
    r = d.request("GET", "/healthz", auth=None)
    eq((r.status, r.json), (200, {"status": "ok"}), "GET /healthz without a token")
    eq(d.request("GET", "/api/v1/workers").status, 200, "GET /workers with the token")
    # The scheme is case-insensitive (RFC 7235) and may be followed by several spaces.
    for h in ("bearer " + token, "BEARER " + token, "Bearer   " + token):
        eq(d.request("GET", "/api/v1/workers", headers={"Authorization": h}, auth=None).status, 200,
           "GET /workers with Authorization %r" % h)


def test_token_flag_requires_bearer_on_api(ctx):
    d = ctx.daemon("--token", TOKEN, workers=1, token=TOKEN)
    _check_token_enforced(d, TOKEN)


def test_token_from_env_requires_bearer_on_api(ctx):
    d = ctx.daemon(workers=1, env={"TASKPOOL_TOKEN": TOKEN + "env"})
    _check_token_enforced(d, TOKEN + "env")


def test_token_cannot_be_read_from_the_daemons_proc_files(ctx):
    flag, env = TOKEN + "flag", TOKEN + "env"
    d = ctx.daemon("--token", flag, workers=1, token=flag, env={"TASKPOOL_TOKEN": env})
    eq(d.request("GET", "/api/v1/workers").status, 200, "the flag's token wins over the environment's")
    for name in ("cmdline", "environ"):
        with open("/proc/%d/%s" % (d.pid, name), "rb") as f:
            text = f.read()
        for tok in (flag, env):
            check(tok.encode() not in text, "the token %r can be read from /proc/%d/%s" % (tok, d.pid, name))
