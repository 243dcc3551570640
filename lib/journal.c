/*
 * journal.c - the dispatch journal (see journal.h).
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define JOURNAL_MAGIC      0x4a504b54u       /* "TKPJ": marks a whole record */
#define JOURNAL_ROTATE_AT  (1024 * 1024)     /* bytes before switching files */

struct journal_record {
    int64_t  id;
    int32_t  attempt;
    uint32_t magic;
};

struct journal {
    int      fd[2];
    int      cur;                  /* file being appended to */
    off_t    size;                 /* of the current file */
    uint64_t last_seq[2];          /* newest op seq recorded in each file */
    char     path[2][PATH_MAX];
};

static int journal_path(const char *db_path, int n, char *buf, size_t size)
{
    int len = snprintf(buf, size, "%s-dispatch-%d", db_path, n);
    return len > 0 && (size_t)len < size ? 0 : -1;
}

struct journal *journal_open(const char *db_path)
{
    struct journal *j = calloc(1, sizeof *j);

    if (j == NULL) {
        log_error("out of memory");
        return NULL;
    }
    j->fd[0] = j->fd[1] = -1;
    for (int n = 0; n < 2; n++) {
        if (journal_path(db_path, n, j->path[n], sizeof j->path[n]) < 0) {
            log_error("%s: path too long", db_path);
            goto fail;
        }
        j->fd[n] = open(j->path[n], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (j->fd[n] < 0) {
            log_error("%s: %s", j->path[n], strerror(errno));
            goto fail;
        }
    }
    j->size = lseek(j->fd[0], 0, SEEK_END);
    return j;
fail:
    journal_close(j);
    return NULL;
}

void journal_close(struct journal *j)
{
    if (j == NULL)
        return;
    for (int n = 0; n < 2; n++)
        if (j->fd[n] >= 0)
            close(j->fd[n]);
    free(j);
}

int journal_append(struct journal *j, int64_t id, int32_t attempt, uint64_t seq)
{
    struct journal_record r = { id, attempt, JOURNAL_MAGIC };
    ssize_t n;

    do {
        n = write(j->fd[j->cur], &r, sizeof r);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof r) {
        log_error("%s: %s", j->path[j->cur], n < 0 ? strerror(errno) : "short write");
        /* Records are read back 16 bytes at a time: a torn one must not
         * shift every later one out of step. */
        if (n > 0 && ftruncate(j->fd[j->cur], j->size) < 0)
            log_error("%s: %s", j->path[j->cur], strerror(errno));
        return -1;
    }
    j->size += n;
    j->last_seq[j->cur] = seq;
    return 0;
}

void journal_committed(struct journal *j, uint64_t seq)
{
    int other = 1 - j->cur;

    if (j->size < JOURNAL_ROTATE_AT)
        return;
    /* Switch only onto an empty file: the other one is emptied first, and
     * only when every start it recorded is committed. */
    if (j->last_seq[other] > seq)
        return;
    if (ftruncate(j->fd[other], 0) < 0) {
        log_error("%s: %s", j->path[other], strerror(errno));
        return;
    }
    j->last_seq[other] = 0;
    j->cur = other;
    j->size = 0;
}

int journal_reset(struct journal *j)
{
    for (int n = 0; n < 2; n++) {
        if (ftruncate(j->fd[n], 0) < 0) {
            log_error("%s: %s", j->path[n], strerror(errno));
            return -1;
        }
        j->last_seq[n] = 0;
    }
    j->cur = 0;
    j->size = 0;
    return 0;
}

int journal_replay(const char *db_path, int (*fn)(int64_t id, int32_t attempt, void *arg),
                   void *arg)
{
    char path[PATH_MAX];
    struct journal_record r;

    for (int n = 0; n < 2; n++) {
        FILE *f;
        if (journal_path(db_path, n, path, sizeof path) < 0)
            return -1;
        f = fopen(path, "rbe");
        if (f == NULL) {
            if (errno == ENOENT)
                continue;
            log_error("%s: %s", path, strerror(errno));
            return -1;
        }
        while (fread(&r, sizeof r, 1, f) == 1) {
            if (r.magic != JOURNAL_MAGIC || r.id <= 0 || r.attempt <= 0)
                continue;   /* torn by a power cut, or not ours */
            if (fn(r.id, r.attempt, arg) < 0) {
                fclose(f);
                return -1;
            }
        }
        fclose(f);
    }
    return 0;
}
