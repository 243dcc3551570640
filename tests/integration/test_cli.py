"""Command line: --help, --version, unknown flags, bad values, the loopback rule, startup log."""
import os

from harness import Fail, check, eq, run_cli


def _one_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    return len(lines) == 1, lines


def _expect_refused(ctx, args, mention=None, env=None):
    """Returns None if the binary refuses args with a non-zero exit and a one-line message."""
    try:
        rc, out, err = run_cli(ctx.tmp, args, env=env, seconds=2)
    except Fail as e:
        return str(e)
    if rc == 0:
        return "%s: exit status 0, expected non-zero" % " ".join(args)
    if rc < 0:
        return "%s: killed by signal %d" % (" ".join(args), -rc)
    ok, lines = _one_line(err)
    if not ok:
        return "%s: expected a one-line message on stderr, got %d lines: %r" % (" ".join(args), len(lines),
                                                                              lines[:4])
    if mention and mention not in lines[0]:
        return "%s: message does not mention %r: %r" % (" ".join(args), mention, lines[0])
    return None


def test_cli_help_exits_0_and_lists_flags(ctx):
    rc, out, err = run_cli(ctx.tmp, ["--help"])
    eq(rc, 0, "--help exit status")
    text = out + err
    for flag in ("--listen", "--db", "--workers", "--max-tasks-per-worker", "--allow-exec", "--token",
                 "--shutdown-grace", "--max-output", "--sync", "--insecure", "--version"):
        check(flag in text, "--help output does not mention %s: %r" % (flag, text[:300]))
    check(not os.path.exists(os.path.join(ctx.tmp, "taskpool.db")), "--help created ./taskpool.db")


def test_cli_version_exits_0(ctx):
    rc, out, err = run_cli(ctx.tmp, ["--version"])
    eq(rc, 0, "--version exit status")
    text = (out + err).strip()
    check(text and any(c.isdigit() for c in text), "--version printed no version: %r" % text)
    check(len(text.splitlines()) == 1, "--version printed more than one line: %r" % text)


def test_cli_unknown_flag_exits_nonzero_one_line(ctx):
    db = os.path.join(ctx.tmp, "x.db")
    err = _expect_refused(ctx, ["--listen", "127.0.0.1:0", "--db", db, "--bogus-flag"], mention="bogus-flag")
    check(err is None, err)
    err = _expect_refused(ctx, ["--listen", "127.0.0.1:0", "--db", db, "extra-positional"])
    check(err is None, err)


def test_cli_bad_values_exit_nonzero_one_line(ctx):
    db = os.path.join(ctx.tmp, "x.db")
    base = ["--listen", "127.0.0.1:0", "--db", db]
    cases = [
        ["--workers", "abc"], ["--workers", "-1"], ["--workers", "2x"], ["--workers", ""],
        ["--workers"],
        ["--max-tasks-per-worker", "-1"], ["--max-tasks-per-worker", "many"],
        ["--shutdown-grace", "-1"], ["--shutdown-grace", "soon"],
        ["--max-output", "abc"], ["--max-output", "-5"],
        ["--sync", "sometimes"],
        ["--token", ""],
    ]
    listen_cases = [["--listen", "nohostport"], ["--listen", "127.0.0.1:70000"],
                    ["--listen", "127.0.0.1:abc"], ["--listen", "127.0.0.1:"]]
    problems = []
    for c in cases:
        e = _expect_refused(ctx, base + c)
        if e:
            problems.append(e)
    for c in listen_cases:
        e = _expect_refused(ctx, ["--db", db] + c)
        if e:
            problems.append(e)
    check(not problems, "; ".join(problems))


def test_cli_non_loopback_listen_needs_token_or_insecure(ctx):
    db = os.path.join(ctx.tmp, "x.db")
    e = _expect_refused(ctx, ["--listen", "0.0.0.0:0", "--db", db, "--workers", "1"])
    check(e is None, "non-loopback without token: " + str(e))
    # with a token (flag or env) or --insecure it starts and serves on 127.0.0.1 too
    d = ctx.daemon("--token", "tok", listen="0.0.0.0:0", workers=1, token="tok", name="token daemon")
    r = d.request("GET", "/healthz")
    eq(r.status, 200, "healthz on 0.0.0.0 with --token")
    d.close()
    d = ctx.daemon(listen="0.0.0.0:0", workers=1, env={"TASKPOOL_TOKEN": "envtok"}, name="env-token daemon",
                   db=os.path.join(ctx.tmp, "y.db"))
    eq(d.request("GET", "/healthz").status, 200, "healthz on 0.0.0.0 with TASKPOOL_TOKEN")
    d.close()
    d = ctx.daemon("--insecure", listen="0.0.0.0:0", workers=1, name="insecure daemon",
                   db=os.path.join(ctx.tmp, "z.db"))
    eq(d.request("GET", "/healthz").status, 200, "healthz on 0.0.0.0 with --insecure")
    eq(d.request("GET", "/api/v1/workers").status, 200, "/workers without token under --insecure")


def test_cli_startup_log_line_has_daemon_pid(ctx):
    d = ctx.daemon(workers=1)
    lines = [l for l in d.tail(1000) if "listening on" in l]
    check(lines, "no 'listening on' line")
    check("taskpoold[%d]" % d.pid in lines[0],
          "listening line lacks taskpoold[%d]: %r" % (d.pid, lines[0]))
