/* http_request.h -- HTTP/1.1 requests out of a connection's bytes, on Debian's http-parser:
 * one complete request at a time (method, target, the headers that matter, the body).
 *
 * A parser belongs to one connection. Its owner hands it the bytes as they are read; the
 * parser stops after each complete request (SL_HTTP_DONE) so that the owner answers it
 * before the next one of a pipeline is parsed, then the owner calls sl_http_request_next
 * and hands it the rest. Bodies (Content-Length or chunked) are collected whole up to
 * max_body; over that the request fails as soon as that is known (the Content-Length, or
 * the chunk that passes it), without buffering the rest. No I/O and no loop: the HTTP
 * source (http_server.c) drives it from libuv, tests/fuzz/fuzz_http.c from memory.
 */
#ifndef SL_HTTP_REQUEST_H
#define SL_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <http_parser.h>

/* ---- constants --------------------------------------------------------------------- */

#define SL_HTTP_MAX_TARGET 8192     /* longest request target ("/path?query"), in bytes */
#define SL_HTTP_ERRLEN     256

/* What sl_http_request_parse found. */
enum {
    SL_HTTP_WAIT,           /* every byte was taken and no request is complete yet */
    SL_HTTP_DONE,           /* a request is complete: its fields below are valid */
    SL_HTTP_BAD,            /* malformed HTTP (err says what): the connection is lost */
    SL_HTTP_TOO_LARGE       /* the body is over max_body: the connection is lost */
};

/* ---- types ------------------------------------------------------------------------- */

typedef struct sl_http_request sl_http_request;

/* Called once the head of a request is parsed (method, target and expect_continue are
 * set, the body not yet read), before its body: the owner may set discard to have the
 * body counted and not kept (a request it will refuse), or answer 100 Continue. */
typedef void sl_http_head_cb(sl_http_request *r, void *arg);

struct sl_http_request {
    /* settings */
    size_t max_body;        /* longest body kept or discarded, in bytes */
    sl_http_head_cb *on_head;   /* may be NULL */
    void *arg;              /* passed to on_head */

    /* the request being read; after DONE, the complete request */
    int method;             /* http-parser's enum http_method (HTTP_POST, ...) */
    char target[SL_HTTP_MAX_TARGET + 1];    /* as sent, NUL-terminated */
    size_t target_len;
    size_t path_len;        /* target[0, path_len): the path, without "?query" */
    int expect_continue;    /* the client sent "Expect: 100-continue" */
    int keep_alive;         /* DONE: the connection may carry another request */
    int discard;            /* set by on_head: the body is not kept */
    char *body;             /* the body, body_len bytes (NULL when empty or discarded) */
    size_t body_len;
    uint64_t body_seen;     /* bytes of body read, kept or not */
    uint64_t declared;      /* TOO_LARGE: the Content-Length, or 0 for a chunked body */
    char err[SL_HTTP_ERRLEN];   /* BAD / TOO_LARGE: why, one line */

    /* the parser's own */
    http_parser parser;
    size_t body_cap;
    int started;            /* a byte of the current request has been parsed */
    int done;               /* the current request is complete (parser paused) */
    int failed;             /* BAD or TOO_LARGE was answered: no further parsing */
    int stop;               /* why a callback stopped http-parser (http_request.c) */
    int in_value;           /* the last header callback was a value */
    char field[16];         /* the current header's name, lowercased (cut at 15) */
    size_t field_len;
    char value[32];         /* the current header's value, when it is one we read */
    size_t value_len;
};

/* ---- functions --------------------------------------------------------------------- */

/* A parser at the start of a connection. Allocates nothing. */
void sl_http_request_init(sl_http_request *r, size_t max_body, sl_http_head_cb *on_head,
                          void *arg);

/* Parses data[0, len) from where the connection's bytes stand and sets *used to the bytes
 * taken: all of them for WAIT, up to the end of the request for DONE (the rest belongs to
 * the next request: call sl_http_request_next, then parse it). len 0 says the peer closed
 * the connection. After BAD or TOO_LARGE, every call answers the same. */
int sl_http_request_parse(sl_http_request *r, const char *data, size_t len, size_t *used);

/* After DONE: forgets the request (its body is freed) and readies the next one. */
void sl_http_request_next(sl_http_request *r);

/* Whether a request has started and is not complete: bytes of it were parsed. */
int sl_http_request_busy(const sl_http_request *r);

/* The name of r->method ("POST", ...). */
const char *sl_http_request_method(const sl_http_request *r);

/* Frees the body. The parser may be initialised again. */
void sl_http_request_free(sl_http_request *r);

#endif
