/*
 * static.c - the dashboard's files, served read-only from one web root.
 *
 * The root is resolved once (realpath) and kept open as a directory fd; every
 * file is opened beneath that fd, never by a path string, so a request cannot
 * name anything outside it:
 *   1. the URL path is checked first: no "..", ".", empty or hidden segment,
 *      no backslash or control character (MHD has already percent-decoded it,
 *      so "%2e%2e" arrives here as "..");
 *   2. openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) opens it; where the
 *      kernel or a seccomp filter lacks openat2 we walk the path one component
 *      at a time with O_NOFOLLOW, which refuses a symlink just the same;
 *   3. only a regular file is served: directories, FIFOs and devices are 404.
 * Every failure is 404 (the client learns nothing about the tree), except an
 * error of our own (EMFILE, ENOMEM), which is 500 and logged.
 *
 * Static state is written by static_open / static_close only, before and after
 * the HTTP threads run; static_serve only reads it, from any thread.
 */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

#define STATIC_INDEX "index.html"
#define STATIC_ETAG_MAX 96

static struct {
    char *root;             /* realpath of the web root, for messages */
    int   fd;               /* O_PATH directory fd of the root */
} st = { NULL, -1 };

/* Cleared the first time openat2 answers ENOSYS, so later requests go
 * straight to the component walk.  -DSTATIC_USE_OPENAT2=0 tests the walk. */
#ifndef STATIC_USE_OPENAT2
#define STATIC_USE_OPENAT2 1
#endif
static atomic_bool st_have_openat2 = STATIC_USE_OPENAT2;

static const struct {
    const char *ext;
    const char *type;
} st_types[] = {
    { "html",  "text/html; charset=utf-8" },
    { "js",    "text/javascript; charset=utf-8" },
    { "mjs",   "text/javascript; charset=utf-8" },
    { "css",   "text/css; charset=utf-8" },
    { "svg",   "image/svg+xml" },
    { "png",   "image/png" },
    { "ico",   "image/x-icon" },
    { "json",  "application/json" },
    { "map",   "application/json" },
    { "txt",   "text/plain; charset=utf-8" },
    { "woff2", "font/woff2" },
};

int static_open(const char *root)
{
    char *real = NULL;
    int fd = -1;

    real = realpath(root, NULL);
    if (real == NULL) {
        log_warn("no dashboard: web root %s: %s", root, strerror(errno));
        goto fail;
    }
    fd = open(real, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        log_warn("no dashboard: web root %s: %s", real, strerror(errno));
        goto fail;
    }
    static_close();
    st.root = real;
    st.fd = fd;
    log_info("serving files from %s", real);
    return 0;

fail:
    free(real);
    return -1;
}

void static_close(void)
{
    if (st.fd >= 0)
        close(st.fd);
    st.fd = -1;
    free(st.root);
    st.root = NULL;
}

/* Returns the Content-Type for name's extension; unknown ones are bytes. */
static const char *static_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    size_t i;

    if (dot != NULL && strchr(dot, '/') == NULL) {
        for (i = 0; i < sizeof(st_types) / sizeof(st_types[0]); i++)
            if (strcasecmp(dot + 1, st_types[i].ext) == 0)
                return st_types[i].type;
    }
    return "application/octet-stream";
}

/* True if url is "/" followed by segments a file beneath the root may have:
 * non-empty, not "." or "..", not hidden (".git", ".env"), and free of
 * backslashes and control characters.  Rejecting these here, before any
 * system call, keeps the opener's job to symlinks alone. */
static bool static_path_ok(const char *url)
{
    const char *p;
    size_t seg = 0;

    if (url[0] != '/' || strlen(url) >= PATH_MAX - sizeof(".gz"))
        return false;
    for (p = url + 1; ; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '/' || c == '\0') {
            if (seg == 0)
                return false;             /* "//", trailing "/" */
            if (c == '\0')
                return true;
            seg = 0;
            continue;
        }
        if (c == '\\' || c < 0x20 || c == 0x7f)
            return false;
        if (seg == 0 && c == '.')
            return false;                 /* ".", "..", ".hidden" */
        seg++;
    }
}

/* Opens rel (relative, already checked by static_path_ok) beneath the root
 * with no symlink followed anywhere.  Returns an fd, or -1 with errno set. */
static int static_open_beneath(const char *rel)
{
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW;
    char buf[PATH_MAX];
    char *comp, *slash;
    int dir, fd, tries, saved;

    if (atomic_load(&st_have_openat2)) {
        struct open_how how = {
            .flags = (uint64_t)flags,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                       RESOLVE_NO_MAGICLINKS,
        };

        /* EAGAIN: the kernel saw a concurrent rename and could not prove
         * the walk stayed beneath; it asks the caller to try again. */
        for (tries = 0; tries < 3; tries++) {
            fd = (int)syscall(SYS_openat2, st.fd, rel, &how, sizeof(how));
            if (fd >= 0 || errno != EAGAIN)
                break;
        }
        if (fd >= 0)
            return fd;
        if (errno == ENOSYS)
            atomic_store(&st_have_openat2, false);
        else if (errno != EPERM)      /* EPERM: a seccomp filter said no */
            return -1;
    }

    /* The walk: each directory opened with O_NOFOLLOW | O_DIRECTORY, so a
     * symlinked directory fails with ENOTDIR, and the file with O_NOFOLLOW,
     * so a symlinked file fails with ELOOP. */
    if (strlen(rel) >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, rel);
    dir = st.fd;
    comp = buf;
    for (;;) {
        slash = strchr(comp, '/');
        if (slash == NULL) {
            fd = openat(dir, comp, flags);
            break;
        }
        *slash = '\0';
        fd = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir != st.fd) {
            saved = errno;
            close(dir);
            errno = saved;
        }
        if (fd < 0)
            return -1;
        dir = fd;
        comp = slash + 1;
    }
    if (dir != st.fd) {
        saved = errno;
        close(dir);
        errno = saved;
    }
    return fd;
}

/* Opens rel if it is a regular file.  Returns the fd with *sb filled, or -1:
 * *internal tells a fault of ours (500) from a file that is not there (404). */
static int static_open_file(const char *rel, struct stat *sb, bool *internal)
{
    int fd, saved;

    *internal = false;
    fd = static_open_beneath(rel);
    if (fd < 0) {
        saved = errno;
        if (saved == EMFILE || saved == ENFILE || saved == ENOMEM) {
            *internal = true;
            log_error("open %s/%s: %s", st.root, rel, strerror(saved));
        }
        return -1;
    }
    if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A strong validator of one representation: a new inode (editors and
 * `gzip -k` replace files), a new size or a new mtime each change it. */
static void static_etag(const struct stat *sb, bool gz, char *out, size_t len)
{
    snprintf(out, len, "\"%" PRIxMAX "-%" PRIxMAX "-%" PRIxMAX ".%" PRIxMAX "%s\"",
             (uintmax_t)sb->st_ino, (uintmax_t)sb->st_size,
             (uintmax_t)sb->st_mtim.tv_sec, (uintmax_t)sb->st_mtim.tv_nsec,
             gz ? "-gz" : "");
}

/* Advances past optional whitespace. */
static const char *static_skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* True if the Accept-Encoding header allows gzip: "gzip" or "x-gzip" with a
 * q above 0, or, when gzip is not named, "*" with a q above 0. */
static bool static_accepts_gzip(const char *ae)
{
    double gzip_q = -1, star_q = -1;
    const char *p = ae;

    if (ae == NULL)
        return false;
    while (*p != '\0') {
        const char *tok;
        char *end;
        size_t toklen;
        double q = 1;

        p = static_skip_ws(p);
        tok = p;
        while (*p != '\0' && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        toklen = (size_t)(p - tok);
        /* Parameters: only q matters. */
        while (*p != '\0' && *p != ',') {
            p = static_skip_ws(p);
            if (*p == ';') {
                p = static_skip_ws(p + 1);
                if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                    q = strtod(p + 2, &end);
                    if (end == p + 2)
                        q = 0;          /* "q=" with no number: refuse */
                    p = end;
                    continue;
                }
            }
            if (*p != '\0' && *p != ',')
                p++;
        }
        if ((toklen == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
            (toklen == 6 && strncasecmp(tok, "x-gzip", 6) == 0))
            gzip_q = q > gzip_q ? q : gzip_q;
        else if (toklen == 1 && tok[0] == '*')
            star_q = q;
        if (*p == ',')
            p++;
    }
    return (gzip_q >= 0 ? gzip_q : star_q) > 0;
}

/* True if If-None-Match lists etag or "*".  Comparison is weak (RFC 9110
 * 13.1.2): a W/ prefix on the client's copy is ignored. */
static bool static_etag_matches(const char *inm, const char *etag)
{
    const char *p = inm;
    size_t elen = strlen(etag);

    if (inm == NULL)
        return false;
    while (*p != '\0') {
        const char *tok;
        size_t toklen;

        p = static_skip_ws(p);
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        tok = p;
        while (*p != '\0' && *p != ',')
            p++;
        toklen = (size_t)(p - tok);
        while (toklen > 0 && (tok[toklen - 1] == ' ' || tok[toklen - 1] == '\t'))
            toklen--;
        if ((toklen == 1 && tok[0] == '*') ||
            (toklen == elen && memcmp(tok, etag, elen) == 0))
            return true;
        if (*p == ',')
            p++;
    }
    return false;
}

static enum MHD_Result static_not_found(struct MHD_Connection *conn)
{
    return http_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such file");
}

enum MHD_Result static_serve(struct MHD_Connection *conn, const char *method,
                             const char *url)
{
    char rel[PATH_MAX], etag[STATIC_ETAG_MAX];
    struct stat sb, gzsb;
    struct MHD_Response *resp = NULL;
    bool internal, has_gz = false, use_gz, not_modified;
    int fd = -1, gzfd = -1;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return http_method_not_allowed(conn, "GET, HEAD");
    if (st.fd < 0 || url == NULL)
        return static_not_found(conn);
    if (strcmp(url, "/") == 0)
        url = "/" STATIC_INDEX;
    if (!static_path_ok(url))
        return static_not_found(conn);

    snprintf(rel, sizeof(rel), "%s", url + 1);
    fd = static_open_file(rel, &sb, &internal);
    if (fd < 0)
        goto fail;

    /* The .gz sibling is made at build time by `gzip -9 -k -n`; one older
     * than its source is stale (the source was edited since) and ignored. */
    strcat(rel, ".gz");
    gzfd = static_open_file(rel, &gzsb, &internal);
    internal = false;
    if (gzfd >= 0) {
        has_gz = gzsb.st_mtim.tv_sec > sb.st_mtim.tv_sec ||
                 (gzsb.st_mtim.tv_sec == sb.st_mtim.tv_sec &&
                  gzsb.st_mtim.tv_nsec >= sb.st_mtim.tv_nsec);
        if (!has_gz) {
            close(gzfd);
            gzfd = -1;
        }
    }
    use_gz = has_gz &&
             static_accepts_gzip(MHD_lookup_connection_value(conn,
                 MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    if (use_gz) {
        close(fd);
        fd = gzfd;
        gzfd = -1;
        sb.st_ino = gzsb.st_ino;
        sb.st_size = gzsb.st_size;
        sb.st_mtim = gzsb.st_mtim;
    } else if (gzfd >= 0) {
        close(gzfd);
        gzfd = -1;
    }
    static_etag(&sb, use_gz, etag, sizeof(etag));

    not_modified = static_etag_matches(MHD_lookup_connection_value(conn,
                       MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH), etag);
    if (not_modified) {
        close(fd);
        fd = -1;
        resp = MHD_create_response_from_buffer(0, (void *)"",
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        /* On success the response owns fd and closes it when destroyed. */
        resp = MHD_create_response_from_fd((size_t)sb.st_size, fd);
        if (resp != NULL)
            fd = -1;
    }
    if (resp == NULL) {
        log_error("cannot create a response for %s", url);
        internal = true;
        goto fail;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (has_gz)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (!not_modified) {
        if (use_gz)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
                                    "gzip");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                static_content_type(url));
    }
    return http_queue(conn, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);

fail:
    if (fd >= 0)
        close(fd);
    if (gzfd >= 0)
        close(gzfd);
    if (internal)
        return http_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                          "could not read the file");
    return static_not_found(conn);
}
