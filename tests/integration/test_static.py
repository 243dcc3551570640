"""Static files of the dashboard: content types, ETag / 304, precompressed gzip,
405 on other methods, and no way out of the web root (.., %2e%2e, //, absolute
paths, backslashes, symlinks, hidden files, FIFOs): each is a JSON 404.

Each test runs its own daemon with --web pointing at a web root it builds in its
temporary directory, next to an "outside" directory holding a secret that no
response may ever contain."""
import gzip
import http.client
import json
import os
import subprocess

from harness import SLOW, check, eq

SECRET = b"TOP-SECRET-0f3c9a"

FILES = {
    "index.html": b"<!doctype html><title>taskpool</title><p>hello</p>\n",
    "app.js": b"export const answer = 42;\n" + b"console.log('padding');\n" * 400,
    "mod.mjs": b"export default 1;\n",
    "style.css": b"body { color: #222; }\n" * 50,
    "logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
    "logo.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "favicon.ico": b"\x00\x00\x01\x00" + bytes(60),
    "data.json": b'{"a": 1}\n',
    "notes.txt": b"plain text\n",
    "app.js.map": b'{"version": 3}\n',
    "font.woff2": b"wOF2" + bytes(100),
    "blob.bin": b"\x00\x01\x02",
    "vendor/chart.js": b"/* vendored */\n" * 100,
    "stale.css": b"/* new source */\n",
    "empty.txt": b"",
}

TYPES = {
    "/": "text/html", "/index.html": "text/html", "/app.js": "text/javascript",
    "/mod.mjs": "text/javascript", "/style.css": "text/css", "/logo.svg": "image/svg+xml",
    "/logo.png": "image/png", "/favicon.ico": "image/x-icon", "/data.json": "application/json",
    "/notes.txt": "text/plain", "/app.js.map": "application/json", "/font.woff2": "font/woff2",
    "/vendor/chart.js": "text/javascript", "/blob.bin": "application/octet-stream",
}


def _web_root(ctx):
    """Builds <tmp>/web (with .gz siblings made as the Makefile makes them) and
    <tmp>/outside/secret.txt, plus the traps: symlinks out, a symlinked
    directory, a hidden file, a FIFO.  Returns the web root."""
    web = os.path.join(ctx.tmp, "web")
    outside = os.path.join(ctx.tmp, "outside")
    os.makedirs(os.path.join(web, "vendor"))
    os.makedirs(outside)
    with open(os.path.join(outside, "secret.txt"), "wb") as f:
        f.write(SECRET)
    for name, data in FILES.items():
        with open(os.path.join(web, name), "wb") as f:
            f.write(data)
    for name in ("app.js", "style.css", "vendor/chart.js"):
        subprocess.run(["gzip", "-9", "-k", "-n", os.path.join(web, name)], check=True)
    # A .gz older than its source (the source was edited after the build):
    with open(os.path.join(web, "stale.css.gz"), "wb") as f:
        f.write(gzip.compress(b"/* OLD compressed */\n"))
    os.utime(os.path.join(web, "stale.css.gz"), (946684800, 946684800))
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(web, "link.txt"))
    os.symlink("../outside/secret.txt", os.path.join(web, "rel-link.txt"))
    os.symlink(outside, os.path.join(web, "outdir"))
    os.symlink("index.html", os.path.join(web, "inside-link.html"))
    with open(os.path.join(web, ".secret"), "wb") as f:
        f.write(SECRET)
    os.mkfifo(os.path.join(web, "pipe.txt"))
    return web


def _daemon(ctx):
    web = _web_root(ctx)
    return ctx.daemon("--web", web, workers=1), web


def _req(d, path, headers=None, method="GET"):
    """One raw request: the path goes out byte for byte and no header is added
    but Host (http.client would add Accept-Encoding: identity otherwise)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10 * SLOW)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def _check_404(d, path, status, h, body):
    eq(status, 404, "status of GET %r" % path)
    eq(h.get("content-type"), "application/json", "Content-Type of the 404 for %r" % path)
    check(SECRET not in body, "the secret leaked through %r" % path)
    j = json.loads(body)
    eq(j["error"]["code"], "not_found", "error.code of GET %r" % path)
    check(isinstance(j["error"]["message"], str) and j["error"]["message"],
          "empty error.message for %r" % path)


def test_static_root_serves_index_html(ctx):
    d, _ = _daemon(ctx)
    s, h, body = _req(d, "/")
    eq(s, 200, "status of GET /")
    eq(body, FILES["index.html"], "body of GET /")
    eq(h.get("content-type"), "text/html; charset=utf-8", "Content-Type of /")
    eq(h.get("cache-control"), "no-cache", "Cache-Control")
    eq(h.get("x-content-type-options"), "nosniff", "X-Content-Type-Options")
    eq(int(h.get("content-length")), len(FILES["index.html"]), "Content-Length")
    s2, h2, _ = _req(d, "/index.html")
    eq((s2, h2.get("etag")), (200, h.get("etag")), "GET /index.html is the same file as /")


def test_static_content_types_by_extension(ctx):
    d, _ = _daemon(ctx)
    for path, want in TYPES.items():
        s, h, body = _req(d, path)
        eq(s, 200, "status of GET %s" % path)
        ct = h.get("content-type", "")
        eq(ct.split(";")[0].strip(), want, "Content-Type of %s" % path)
        if want.startswith("text/"):
            eq(ct, want + "; charset=utf-8", "charset of %s" % path)
        name = "index.html" if path == "/" else path[1:]
        eq(body, FILES[name], "body of %s" % path)
    s, h, body = _req(d, "/empty.txt")
    eq((s, body, h.get("content-length")), (200, b"", "0"), "an empty file")


def test_static_etag_and_304_on_if_none_match(ctx):
    d, web = _daemon(ctx)
    s, h, _ = _req(d, "/style.css")
    etag = h.get("etag")
    check(etag and etag.startswith('"') and etag.endswith('"') and len(etag) > 2,
          "strong, quoted ETag: %r" % etag)
    s, h2, body = _req(d, "/style.css", {"If-None-Match": etag})
    eq((s, body), (304, b""), "status and body with a matching If-None-Match")
    eq(h2.get("etag"), etag, "ETag on the 304")
    eq(h2.get("cache-control"), "no-cache", "Cache-Control on the 304")
    for inm in ['"nope", %s' % etag, "W/" + etag, "*", ' %s ,"x"' % etag]:
        s, _, _ = _req(d, "/style.css", {"If-None-Match": inm})
        eq(s, 304, "status with If-None-Match: %s" % inm)
    for inm in ['"nope"', etag[:-2] + '"', '""']:
        s, _, body = _req(d, "/style.css", {"If-None-Match": inm})
        eq((s, body), (200, FILES["style.css"]), "status/body with If-None-Match: %s" % inm)
    # A changed file gets a new ETag, and the old one no longer matches.
    path = os.path.join(web, "notes.txt")
    s, h, _ = _req(d, "/notes.txt")
    old = h.get("etag")
    with open(path, "wb") as f:
        f.write(b"plain text, edited\n")
    s, h, body = _req(d, "/notes.txt", {"If-None-Match": old})
    eq((s, body), (200, b"plain text, edited\n"), "edited file with the old ETag")
    check(h.get("etag") != old, "ETag unchanged after an edit: %r" % old)


def test_static_gzip_sibling_served_only_when_accepted(ctx):
    d, _ = _daemon(ctx)
    for path in ("/app.js", "/style.css", "/vendor/chart.js"):
        plain = FILES[path[1:]]
        s, h, body = _req(d, path, {"Accept-Encoding": "gzip, deflate, br"})
        eq(s, 200, "status of %s with gzip" % path)
        eq(h.get("content-encoding"), "gzip", "Content-Encoding of %s" % path)
        eq(h.get("vary"), "Accept-Encoding", "Vary of %s (gzip)" % path)
        check(len(body) < len(plain), "gzip body not smaller for %s" % path)
        eq(gzip.decompress(body), plain, "decompressed body of %s" % path)
        eq(int(h.get("content-length")), len(body), "Content-Length of the gzip body")
        gz_etag = h.get("etag")
        s, h, body = _req(d, path)
        eq((s, body), (200, plain), "%s without Accept-Encoding" % path)
        eq(h.get("content-encoding"), None, "Content-Encoding without Accept-Encoding")
        eq(h.get("vary"), "Accept-Encoding", "Vary of %s (identity)" % path)
        check(h.get("etag") != gz_etag, "gzip and identity share ETag %r" % gz_etag)
        # each representation revalidates against its own ETag only
        s, _, _ = _req(d, path, {"Accept-Encoding": "gzip", "If-None-Match": gz_etag})
        eq(s, 304, "gzip ETag revalidated with gzip")
        s, _, body = _req(d, path, {"If-None-Match": gz_etag})
        eq((s, body), (200, plain), "gzip ETag sent without Accept-Encoding")
    for ae, gz in [("gzip", True), ("GZIP;q=0.5", True), ("x-gzip", True), ("*", True),
                   ("identity", False), ("gzip;q=0", False), ("br, deflate", False),
                   ("*;q=0", False), ("gzip;q=0, *", False), ("", False)]:
        s, h, body = _req(d, "/app.js", {"Accept-Encoding": ae})
        eq(s, 200, "status with Accept-Encoding %r" % ae)
        eq(h.get("content-encoding"), "gzip" if gz else None, "Content-Encoding for %r" % ae)
        eq(gzip.decompress(body) if gz else body, FILES["app.js"], "body for %r" % ae)
    # no sibling: plain, and nothing varies
    s, h, body = _req(d, "/index.html", {"Accept-Encoding": "gzip"})
    eq((s, body, h.get("content-encoding"), h.get("vary")), (200, FILES["index.html"], None, None),
       "a file without .gz sibling")


def test_static_gzip_sibling_older_than_source_is_ignored(ctx):
    d, _ = _daemon(ctx)
    s, h, body = _req(d, "/stale.css", {"Accept-Encoding": "gzip"})
    eq((s, body, h.get("content-encoding")), (200, FILES["stale.css"], None),
       "stale.css with a stale .gz sibling")


def test_static_head_sends_headers_without_body(ctx):
    d, _ = _daemon(ctx)
    s, h, body = _req(d, "/app.js", method="HEAD")
    eq((s, body), (200, b""), "HEAD status and body")
    eq(int(h.get("content-length")), len(FILES["app.js"]), "Content-Length of HEAD")
    eq(h.get("content-type"), "text/javascript; charset=utf-8", "Content-Type of HEAD")
    check(h.get("etag"), "no ETag on HEAD")


def test_static_other_methods_405_with_allow(ctx):
    d, _ = _daemon(ctx)
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        s, h, body = _req(d, "/index.html", {"Content-Length": "0"}, method=m)
        eq(s, 405, "status of %s /index.html" % m)
        eq(h.get("allow"), "GET, HEAD", "Allow of the 405")
        eq(h.get("content-type"), "application/json", "Content-Type of the 405")
        eq(json.loads(body)["error"]["code"], "method_not_allowed", "error.code of the 405")


def test_static_traversal_attempts_are_404(ctx):
    d, web = _daemon(ctx)
    outside = os.path.join(ctx.tmp, "outside", "secret.txt")
    paths = [
        "/../outside/secret.txt", "/../../../../etc/passwd", "/vendor/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt", "/%2E%2E/outside/secret.txt", "/%2e%2e%2foutside%2fsecret.txt",
        "/vendor/%2e%2e/index.html", "/..%2f..%2fetc%2fpasswd", "/.%2e/outside/secret.txt",
        "//etc/passwd", "///etc/passwd", "/" + outside, "/" + outside.lstrip("/"),
        "/etc/passwd", "/./index.html", "/vendor/./chart.js", "/vendor//chart.js",
        "/..\\outside\\secret.txt", "/%5c..%5coutside%5csecret.txt", "/vendor\\chart.js",
        "/index.html/", "/%01index.html", "/index.html%0a",
        "http://127.0.0.1/../outside/secret.txt",
    ]
    for p in paths:
        s, h, body = _req(d, p)
        _check_404(d, p, s, h, body)


def test_static_nul_cuts_the_path_and_cannot_smuggle_a_traversal(ctx):
    # MHD percent-decodes the path in place, so %00 ends the C string the
    # daemon sees: what is served is the file named before it, typed by that
    # same name, and never anything beyond.
    d, _ = _daemon(ctx)
    for p in ["/index.html%00.png", "/%00/../outside/secret.txt", "/%00/%2e%2e/outside/secret.txt"]:
        s, h, body = _req(d, p)
        eq((s, body), (200, FILES["index.html"]), "GET %r" % p)
        eq(h.get("content-type"), "text/html; charset=utf-8", "Content-Type of %r" % p)


def test_static_symlinks_hidden_files_dirs_and_fifos_are_404(ctx):
    d, _ = _daemon(ctx)
    for p in ["/link.txt", "/rel-link.txt", "/outdir/secret.txt", "/outdir", "/inside-link.html",
              "/.secret", "/pipe.txt", "/vendor", "/vendor/", "/missing.html", "/vendor/missing.js"]:
        s, h, body = _req(d, p)
        _check_404(d, p, s, h, body)
    # the daemon is still well (the FIFO did not hang an I/O thread)
    s, _, body = _req(d, "/index.html")
    eq((s, body), (200, FILES["index.html"]), "GET /index.html after the traps")


def test_static_default_root_is_the_repo_web_dir(ctx):
    d = ctx.shared()
    repo_index = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web",
                              "index.html")
    with open(repo_index, "rb") as f:
        want = f.read()
    s, h, body = _req(d, "/")
    eq(s, 200, "status of GET / from the default web root")
    eq(h.get("content-type"), "text/html; charset=utf-8", "Content-Type of /")
    eq(body, want, "GET / is web/index.html")
