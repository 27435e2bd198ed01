/* http_request.c -- HTTP/1.1 requests out of a connection's bytes: http-parser's callbacks
 * collect one request (target, Expect, body), and the parser pauses at its end so that the
 * owner answers it before the next request of a pipeline is parsed.
 *
 * The parser owns the body it collects until sl_http_request_next; a body over max_body
 * is refused as soon as that is known and the bytes after it are never kept.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_request.h"

/* Why a callback stopped the parser (http-parser then reports HPE_CB_*). */
enum { STOP_NONE, STOP_TARGET, STOP_TOO_LARGE };

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: http request: out of memory\n");
    abort();
}

static sl_http_request *of(http_parser *p)
{
    return p->data;
}

/* The end of a header (name and value both in): notes the ones that matter. */
static void end_header(sl_http_request *r)
{
    if (r->field_len == 6 && memcmp(r->field, "expect", 6) == 0) {
        size_t a = 0, b = r->value_len;
        while (a < b && (r->value[a] == ' ' || r->value[a] == '\t'))
            a++;
        while (b > a && (r->value[b - 1] == ' ' || r->value[b - 1] == '\t'))
            b--;
        if (b - a == 12 && memcmp(r->value + a, "100-continue", 12) == 0)
            r->expect_continue = 1;
    }
    r->field_len = r->value_len = 0;
    r->in_value = 0;
}

static int on_message_begin(http_parser *p)
{
    sl_http_request *r = of(p);

    r->started = 1;
    r->target_len = r->path_len = 0;
    r->target[0] = '\0';
    r->expect_continue = r->discard = r->keep_alive = 0;
    r->body_len = 0;
    r->body_seen = 0;
    r->field_len = r->value_len = 0;
    r->in_value = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    sl_http_request *r = of(p);

    if (len > SL_HTTP_MAX_TARGET - r->target_len) {
        r->stop = STOP_TARGET;
        return 1;
    }
    memcpy(r->target + r->target_len, at, len);
    r->target_len += len;
    r->target[r->target_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    sl_http_request *r = of(p);

    if (r->in_value)
        end_header(r);
    for (size_t i = 0; i < len; i++) {
        if (r->field_len < sizeof r->field)     /* longer names match nothing we read */
            r->field[r->field_len] = (char)tolower((unsigned char)at[i]);
        if (r->field_len <= sizeof r->field)
            r->field_len++;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    sl_http_request *r = of(p);

    r->in_value = 1;
    if (!(r->field_len == 6 && memcmp(r->field, "expect", 6) == 0))
        return 0;
    for (size_t i = 0; i < len && r->value_len < sizeof r->value; i++)
        r->value[r->value_len++] = (char)tolower((unsigned char)at[i]);
    return 0;
}

/* Room for n more bytes of body: at least `want` in all when it grows. */
static void body_room(sl_http_request *r, size_t n, size_t want)
{
    size_t cap = r->body_cap > 0 ? r->body_cap : 4096;
    char *b;

    if (r->body_cap - r->body_len >= n)
        return;
    while (cap - r->body_len < n)
        cap *= 2;
    if (cap < want)
        cap = want;
    if ((b = realloc(r->body, cap)) == NULL)
        out_of_memory();
    r->body = b;
    r->body_cap = cap;
}

static void too_large(sl_http_request *r, uint64_t declared)
{
    r->declared = declared;
    r->stop = STOP_TOO_LARGE;
    if (declared > 0)
        snprintf(r->err, sizeof r->err, "body of %llu bytes over max_body (%llu bytes)",
                 (unsigned long long)declared, (unsigned long long)r->max_body);
    else
        snprintf(r->err, sizeof r->err, "body over max_body (%llu bytes)",
                 (unsigned long long)r->max_body);
}

static int on_headers_complete(http_parser *p)
{
    sl_http_request *r = of(p);
    const char *q;

    if (r->in_value)
        end_header(r);
    r->method = (int)p->method;
    q = memchr(r->target, '?', r->target_len);
    r->path_len = q != NULL ? (size_t)(q - r->target) : r->target_len;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->max_body) {
        too_large(r, p->content_length);
        return -1;
    }
    if (r->on_head != NULL)
        r->on_head(r, r->arg);
    /* a declared length (within max_body) is allocated at once, not grown by doubling */
    if ((p->flags & F_CONTENTLENGTH) && !r->discard && p->content_length > 0)
        body_room(r, (size_t)p->content_length, (size_t)p->content_length);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    sl_http_request *r = of(p);

    r->body_seen += len;
    if (r->body_seen > r->max_body) {
        too_large(r, 0);
        return 1;
    }
    if (r->discard)
        return 0;
    body_room(r, len, 0);
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    return 0;
}

/* The request is complete: the parser pauses here, so that execute returns with the bytes
 * up to its end taken and the next request's left. */
static int on_message_complete(http_parser *p)
{
    sl_http_request *r = of(p);

    r->done = 1;
    r->keep_alive = http_should_keep_alive(p);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void sl_http_request_init(sl_http_request *r, size_t max_body, sl_http_head_cb *on_head,
                          void *arg)
{
    memset(r, 0, sizeof *r);
    r->max_body = max_body;
    r->on_head = on_head;
    r->arg = arg;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
}

int sl_http_request_parse(sl_http_request *r, const char *data, size_t len, size_t *used)
{
    enum http_errno e;
    size_t n;

    *used = 0;
    if (r->failed)
        return r->failed;
    if (r->done)
        return SL_HTTP_DONE;
    if (len == 0 && !r->started)
        return SL_HTTP_WAIT;            /* closed between requests: a clean end */
    n = http_parser_execute(&r->parser, &settings, data, len);
    *used = n;
    if (r->done) {
        /* an upgrade (WebSocket, CONNECT) leaves HTTP: this was the connection's last */
        if (r->parser.upgrade)
            r->keep_alive = 0;
        return SL_HTTP_DONE;
    }
    e = HTTP_PARSER_ERRNO(&r->parser);
    if (e == HPE_OK && len > 0 && !r->parser.upgrade)
        return SL_HTTP_WAIT;
    switch (r->stop) {
    case STOP_TOO_LARGE:
        r->failed = SL_HTTP_TOO_LARGE;
        return r->failed;
    case STOP_TARGET:
        snprintf(r->err, sizeof r->err, "malformed request: target longer than %d bytes",
                 SL_HTTP_MAX_TARGET);
        break;
    default:
        if (len == 0)
            snprintf(r->err, sizeof r->err, "malformed request: the connection closed in "
                     "the middle of a request");
        else
            snprintf(r->err, sizeof r->err, "malformed request: %s (%s)",
                     http_errno_description(e), http_errno_name(e));
    }
    r->failed = SL_HTTP_BAD;
    return r->failed;
}

void sl_http_request_next(sl_http_request *r)
{
    if (!r->done)
        return;
    r->done = 0;
    r->started = 0;
    r->body_len = 0;
    /* a large body's buffer is not kept for the next, usually small, one */
    if (r->body_cap > 1024 * 1024) {
        free(r->body);
        r->body = NULL;
        r->body_cap = 0;
    }
    http_parser_pause(&r->parser, 0);
}

int sl_http_request_busy(const sl_http_request *r)
{
    return r->started && !r->done && !r->failed;
}

const char *sl_http_request_method(const sl_http_request *r)
{
    return http_method_str((enum http_method)r->method);
}

void sl_http_request_free(sl_http_request *r)
{
    free(r->body);
    r->body = NULL;
    r->body_cap = r->body_len = 0;
}
