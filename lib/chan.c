/*
 * chan.c - framing of the daemon <-> worker channel (see chan.h).
 */
#include "chan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHAN_HEADER_SIZE ((size_t)sizeof(struct chan_header))
#define CHAN_READ_CHUNK  ((size_t)64 * 1024)

void chan_reader_init(struct chan_reader *r, size_t max_payload)
{
    r->buf = NULL;
    r->off = r->len = r->cap = 0;
    r->max_payload = max_payload;
}

void chan_reader_free(struct chan_reader *r)
{
    free(r->buf);
    chan_reader_init(r, r->max_payload);
}

ssize_t chan_reader_fill(struct chan_reader *r, int fd)
{
    ssize_t n;

    /* Drop what was returned already, so the buffer holds at most one frame plus a chunk. */
    if (r->off > 0) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    if (r->cap - r->len < CHAN_READ_CHUNK) {
        size_t ncap = r->cap ? r->cap * 2 : 2 * CHAN_READ_CHUNK;
        char *nb;
        if (ncap > CHAN_HEADER_SIZE + r->max_payload + CHAN_READ_CHUNK)
            ncap = CHAN_HEADER_SIZE + r->max_payload + CHAN_READ_CHUNK;
        if (ncap < r->len + 1)
            ncap = r->len + 1;
        if (ncap != r->cap) {
            nb = realloc(r->buf, ncap);
            if (nb == NULL) {
                errno = ENOMEM;
                return -1;
            }
            r->buf = nb;
            r->cap = ncap;
        }
    }
    do {
        n = read(fd, r->buf + r->len, r->cap - r->len);
    } while (n < 0 && errno == EINTR);
    if (n > 0)
        r->len += (size_t)n;
    return n;
}

int chan_reader_next(struct chan_reader *r, struct chan_msg *msg)
{
    struct chan_header h;
    size_t avail = r->len - r->off;

    if (avail < CHAN_HEADER_SIZE)
        return 0;
    memcpy(&h, r->buf + r->off, sizeof h);
    if (h.type == 0 || h.type >= CHAN_MSG_TYPE_MAX || h.len > r->max_payload)
        return -1;
    if (avail < CHAN_HEADER_SIZE + h.len)
        return 0;
    msg->type = h.type;
    msg->task_id = h.task_id;
    msg->len = h.len;
    msg->payload = r->buf + r->off + CHAN_HEADER_SIZE;
    r->off += CHAN_HEADER_SIZE + h.len;
    return 1;
}

int chan_send(int fd, uint32_t type, int64_t task_id, const struct chan_part *parts, size_t n)
{
    struct iovec iov[CHAN_PARTS_MAX + 1];
    struct chan_header h = { .type = type, .len = 0, .task_id = task_id };
    size_t total = 0, niov = 0, i;

    if (n + 1 > sizeof iov / sizeof iov[0]) {
        errno = EINVAL;
        return -1;
    }
    for (i = 0; i < n; i++)
        total += parts[i].len;
    if (total > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    h.len = (uint32_t)total;
    iov[niov++] = (struct iovec){ &h, sizeof h };
    for (i = 0; i < n; i++)
        if (parts[i].len > 0)
            iov[niov++] = (struct iovec){ (void *)parts[i].data, parts[i].len };

    /* writev may stop short on a full socket buffer; resume where it stopped. */
    i = 0;
    while (i < niov) {
        ssize_t w = writev(fd, iov + i, (int)(niov - i));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (i < niov && (size_t)w >= iov[i].iov_len) {
            w -= (ssize_t)iov[i].iov_len;
            i++;
        }
        if (i < niov) {
            iov[i].iov_base = (char *)iov[i].iov_base + w;
            iov[i].iov_len -= (size_t)w;
        }
    }
    return 0;
}

int chan_send_result(int fd, int64_t task_id, int ok, const struct chan_usage *usage,
                     const struct chan_cpu *total, const char *result, const char *code,
                     const char *message)
{
    struct chan_result fx;
    size_t rl = result ? strlen(result) : 0;
    size_t cl = code ? strlen(code) : 0;
    size_t ml = message ? strlen(message) : 0;

    if (rl > UINT32_MAX || cl > UINT32_MAX || ml > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    memset(&fx, 0, sizeof fx);
    fx.ok = ok;
    fx.usage = *usage;
    fx.total = *total;
    fx.result_len = (uint32_t)rl;
    fx.code_len = (uint32_t)cl;
    fx.message_len = (uint32_t)ml;
    struct chan_part parts[4] = {
        { &fx, sizeof fx }, { result, rl }, { code, cl }, { message, ml },
    };
    return chan_send(fd, CHAN_MSG_RESULT, task_id, parts, 4);
}

int chan_parse_result(const struct chan_msg *msg, struct chan_result_view *out)
{
    uint64_t need;

    if (msg->type != CHAN_MSG_RESULT || msg->len < sizeof out->fixed)
        return -1;
    memcpy(&out->fixed, msg->payload, sizeof out->fixed);
    need = (uint64_t)sizeof out->fixed + out->fixed.result_len + out->fixed.code_len +
           out->fixed.message_len;
    if (need != msg->len)
        return -1;
    out->result = msg->payload + sizeof out->fixed;
    out->result_len = out->fixed.result_len;
    out->code = out->result + out->result_len;
    out->code_len = out->fixed.code_len;
    out->message = out->code + out->code_len;
    out->message_len = out->fixed.message_len;
    return 0;
}
