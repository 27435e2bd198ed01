/* http_server.c -- core.http_listen: the HTTP source's listener and connections on the
 * job's loop. http_request.c parses each connection's requests one at a time; a POST to
 * the source's path has its body framed and decoded here (framing.c) into batches, handed
 * to Lua with one call per batch (on_batch), and is answered after Lua took them: 200
 * {"accepted":N}, or 400 listing the bad lines, which were dead-lettered (on_bad) while
 * the good ones went on. Another path is answered 404, another method 405, any request
 * while the job's sources are paused (back-pressure) 503 with Retry-After.
 *
 * C owns the server and its connections; the userdata holds a pointer. Each connection is
 * freed in its close callback, the server once its last handle is closed. Replies are
 * written in order (a pipeline is answered request by request); a connection that ends
 * is closed only after its replies are written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "buf.h"
#include "framing.h"
#include "http_request.h"
#include "http_server.h"
#include "loop.h"
#include "net.h"
#include "typed_lua.h"
#include "vm.h"

typedef struct conn conn;

typedef struct server {
    uv_tcp_t tcp;           /* the listening socket, until drain() or close() */
    uv_timer_t kick;        /* zero-delay timer: on_end() from the loop once drained */
    char *what;             /* "http 127.0.0.1:8080", for messages */
    char *path;             /* the path records are POSTed to */
    size_t path_len;
    int format;             /* SL_FRAMER_* */
    size_t max_body;        /* longest body, in bytes */
    int batch_max;          /* most records per on_batch */
    const sl_schema *schema;    /* schema=: records are typed (framing.c decodes them into
                                   slots, handed to on_batch), else NULL */
    int schema_ref;             /* keeps the schema's userdata */

    int on_batch, on_bad, on_end;   /* registry refs, LUA_NOREF once closed */
    int batch_ref;          /* the batch table, reused for every batch */
    int filled;             /* batch[1..filled] may hold values of earlier batches */

    conn *conns;            /* the open connections, a doubly linked list */
    int nconns;
    int handles;            /* handles not yet through their close callback */
    int listening;          /* tcp is open */
    int paused;             /* pause(): requests are answered 503 */
    int draining;           /* drain(): no new connection, no new request */
    int closed;             /* close(): no callback any more */
    int buf_busy;           /* a read's bytes in buf are being answered */
    char buf[SL_HTTP_READ_CHUNK];   /* what each read of any connection fills: a read is
                                       answered whole before the loop reads again, and the
                                       loop never runs inside a callback (loop.c), so one
                                       buffer serves every connection */
} server;

struct conn {
    uv_tcp_t tcp;
    server *srv;
    conn *prev, *next;
    sl_http_request req;    /* the request being read */
    char peer[80];          /* "ip:port" */
    unsigned long nreq;     /* requests answered or refused, for messages */
    int writes;             /* replies queued and not written yet */
    int reading;            /* uv_read_start is in effect */
    int held;               /* not reading while the peer leaves replies unread */
    int closing;            /* answered its last request: close once the replies are out */
    int closed;             /* uv_close was called */
};

/* A reply being written: the request and the bytes it owns. */
typedef struct write_req {
    uv_write_t req;
    conn *c;
    char data[];
} write_req;

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: http source: out of memory\n");
    abort();
}

/* ---- lifetime ----------------------------------------------------------------------- */

static void maybe_free(server *s)
{
    if (!s->closed || s->handles > 0)
        return;
    free(s->what);
    free(s->path);
    free(s);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    server *s = h->data;

    s->handles--;
    maybe_free(s);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    server *s = c->srv;

    sl_http_request_free(&c->req);
    free(c);
    s->handles--;
    maybe_free(s);
}

static void stop_listening(server *s)
{
    if (s->listening) {
        s->listening = 0;
        uv_close((uv_handle_t *)&s->tcp, on_server_handle_closed);
    }
}

static void on_drained(uv_timer_t *t)
{
    server *s = t->data;
    lua_State *L = sl_loop_lua();

    if (s->closed || L == NULL || s->on_end == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_end);       /* fn */
    sl_loop_call(L, 0);                                 /* -- */
}

/* Closes c at once (a reply not yet written is dropped). When the server drains and this
 * was its last connection, on_end() follows from the loop. */
static void close_now(conn *c)
{
    server *s = c->srv;

    if (c->closed)
        return;
    c->closed = 1;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    if (s->draining && !s->closed && s->nconns == 0)
        uv_timer_start(&s->kick, on_drained, 0, 0);
}

/* c answered its last request: it reads no more and closes once its replies are out. */
static void close_after_replies(conn *c)
{
    if (c->closed)
        return;
    c->closing = 1;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    if (c->writes == 0)
        close_now(c);
}

/* ---- replies ------------------------------------------------------------------------ */

static void on_read(uv_stream_t *stream, ssize_t got, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);

static void read_on(conn *c)
{
    if (!c->reading && !c->closing && !c->closed
        && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

static void on_written(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    conn *c = w->c;

    free(w);
    c->writes--;
    if (c->closed)
        return;
    if (status < 0 || (c->closing && c->writes == 0)) {
        close_now(c);
    } else if (c->held && c->tcp.write_queue_size <= SL_HTTP_WRITE_HIGH / 2) {
        c->held = 0;
        read_on(c);
    }
}

/* Queues the bytes of b on c (copied). */
static void send_bytes(conn *c, const char *data, size_t len)
{
    write_req *w;
    uv_buf_t ub;

    if (c->closed)
        return;
    if ((w = malloc(sizeof *w + len)) == NULL)
        out_of_memory();
    memcpy(w->data, data, len);
    w->c = c;
    ub = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &ub, 1, on_written) != 0) {
        free(w);
        close_now(c);
        return;
    }
    c->writes++;
}

/* Appends s[0, len) to b as a JSON string. */
static void json_string(sl_buf *b, const char *s, size_t len)
{
    sl_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            sl_buf_putc(b, '\\');
            sl_buf_putc(b, (char)ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            sl_buf_printf(b, "\\u%04x", ch);
        } else {
            sl_buf_putc(b, (char)ch);
        }
    }
    sl_buf_putc(b, '"');
}

/* Sends the reply `status` with the JSON body (or {"error": msg} when body is NULL) and
 * extra headers (each ending in \r\n, or ""). last: the connection closes after it. */
static void reply(conn *c, int status, const char *extra, const sl_buf *body, const char *msg,
                  int last)
{
    static const struct { int status; const char *text; } texts[] = {
        {100, "Continue"}, {200, "OK"}, {400, "Bad Request"}, {404, "Not Found"},
        {405, "Method Not Allowed"}, {413, "Payload Too Large"},
        {503, "Service Unavailable"}, {0, "Unknown"}
    };
    sl_buf err, out;
    const char *text;
    size_t i;

    for (i = 0; texts[i].status != 0 && texts[i].status != status; i++)
        ;
    text = texts[i].text;
    sl_buf_init(&err);
    if (body == NULL) {
        sl_buf_append(&err, "{\"error\":", 9);
        json_string(&err, msg, strlen(msg));
        sl_buf_append(&err, "}\n", 2);
        body = &err;
    }
    sl_buf_init(&out);
    sl_buf_printf(&out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\n%s%s\r\n", status, text, body->len, extra,
                  last ? "Connection: close\r\n" : "");
    sl_buf_append(&out, body->data, body->len);
    send_bytes(c, out.data, out.len);
    sl_buf_free(&out);
    sl_buf_free(&err);
    if (last)
        close_after_replies(c);
    else if (c->tcp.write_queue_size > SL_HTTP_WRITE_HIGH && c->reading) {
        /* the peer sends requests and does not read the replies: wait for it */
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
        c->held = 1;
    }
}

/* ---- callbacks into Lua ------------------------------------------------------------- */

/* Calls on_bad{line=, offset=, reason="http ADDR from PEER, request N: why", raw=}.
 * Stack unchanged. Returns whether the server is still open. */
static int report_bad(lua_State *L, conn *c, int64_t line, int64_t off, const char *why,
                      const char *raw, size_t rawlen)
{
    server *s = c->srv;

    if (s->closed || s->on_bad == LUA_NOREF)
        return !s->closed;
    if (rawlen > SL_HTTP_RAW_MAX)
        rawlen = SL_HTTP_RAW_MAX;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_bad);       /* fn */
    lua_createtable(L, 0, 4);                           /* fn info */
    lua_pushnumber(L, (lua_Number)line);
    lua_setfield(L, -2, "line");
    lua_pushnumber(L, (lua_Number)off);
    lua_setfield(L, -2, "offset");
    lua_pushfstring(L, "%s from %s, request %d: %s", s->what, c->peer, (int)c->nreq, why);
    lua_setfield(L, -2, "reason");
    lua_pushlstring(L, raw != NULL ? raw : "", rawlen);
    lua_setfield(L, -2, "raw");                         /* fn info */
    return sl_loop_call(L, 1) == 0 && !s->closed;       /* -- */
}

/* Calls on_batch(batch, n) with the batch table at bi; entries past n left from a longer
 * batch are cleared first. Typed (slots not NULL): on_batch(batch, n, slots), the records
 * in the framer's slots, valid while the request's framer is. Returns whether the server
 * is still open. */
static int deliver(lua_State *L, server *s, int bi, int n, sl_typed_field *slots)
{
    for (int i = n + 1; i <= s->filled; i++) {
        lua_pushnil(L);
        lua_rawseti(L, bi, i);
    }
    s->filled = n;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_batch);     /* fn */
    lua_pushvalue(L, bi);                               /* fn batch */
    lua_pushinteger(L, n);                              /* fn batch n */
    if (slots != NULL)
        lua_pushlightuserdata(L, slots);                /* fn batch n slots */
    return sl_loop_call(L, slots != NULL ? 3 : 2) == 0 && !s->closed;   /* -- */
}

/* ---- requests ----------------------------------------------------------------------- */

/* A POST to the path: frames and decodes the body, hands its records to Lua a batch at a
 * time and its bad records to on_bad, then answers 200 or 400. Returns 0 when the server
 * closed or Lua failed meanwhile (no reply then: the job is ending). */
static int take(conn *c)
{
    server *s = c->srv;
    sl_http_request *r = &c->req;
    lua_State *L = sl_loop_lua();
    sl_framer fr;
    sl_frame first, bad;
    sl_buf errs, body;
    long accepted = 0, rejected = 0;
    int top, bi, ki, n = 0, ok = 1;

    if (L == NULL || !lua_checkstack(L, 16))
        return 0;
    top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->batch_ref);    /* batch */
    lua_pushnil(L);                                     /* batch nil (no csv header) */
    bi = top + 1;
    ki = top + 2;
    sl_framer_init(&fr, s->format, s->max_body);
    if (s->schema != NULL) {
        /* no record of this body is longer than it, nor are its rewritten strings: the
           framer's arena is sized by max_record, so the body's length, not max_body */
        fr.max_record = r->body_len > 0 ? r->body_len : 1;
        sl_framer_set_schema(&fr, s->schema);
    }
    if (r->body_len > 0)
        sl_framer_append(&fr, r->body, r->body_len);
    sl_buf_init(&errs);
    while (ok) {
        int rc = sl_framer_fill(&fr, L, ki, 1, bi, &n, s->batch_max, &first, &bad);

        if (rc == SL_FRAME_RECORD || (rc == SL_FRAME_WAIT && n > 0)) {
            accepted += n;
            ok = deliver(L, s, bi, n, s->schema != NULL ? fr.slots : NULL);
            n = 0;
        }
        if (rc == SL_FRAME_WAIT)
            break;
        if (rc == SL_FRAME_HEADER) {
            lua_pop(L, 1);
        } else if (rc == SL_FRAME_BAD && ok) {
            if (++rejected <= SL_HTTP_REPLY_ERRORS) {
                sl_buf_printf(&errs, "%s{\"line\":%lld,\"error\":", rejected > 1 ? "," : "",
                              (long long)bad.line);
                json_string(&errs, bad.reason, strlen(bad.reason));
                sl_buf_putc(&errs, '}');
            }
            ok = report_bad(L, c, bad.line, bad.off, bad.reason, bad.raw, bad.rawlen);
        }
    }
    sl_framer_free(&fr);
    lua_settop(L, top);                                 /* -- */
    if (ok && !c->closed) {
        int last = !r->keep_alive || s->draining;
        sl_buf_init(&body);
        if (rejected == 0) {
            sl_buf_printf(&body, "{\"accepted\":%ld}\n", accepted);
            reply(c, 200, "", &body, NULL, last);
        } else {
            sl_buf_printf(&body, "{\"accepted\":%ld,\"rejected\":%ld,\"errors\":[", accepted,
                          rejected);
            sl_buf_append(&body, errs.data, errs.len);
            sl_buf_append(&body, "]}\n", 3);
            reply(c, 400, "", &body, NULL, last);
        }
        sl_buf_free(&body);
    }
    sl_buf_free(&errs);
    return ok;
}

/* Answers the complete request of c. Returns 0 when the server closed meanwhile. */
static int answer(conn *c)
{
    server *s = c->srv;
    sl_http_request *r = &c->req;
    int last = !r->keep_alive || s->draining;
    char msg[SL_HTTP_MAX_TARGET + 128];

    c->nreq++;
    if (r->path_len != s->path_len || memcmp(r->target, s->path, s->path_len) != 0) {
        snprintf(msg, sizeof msg, "no such path: %.*s (records are POSTed to %s)",
                 (int)r->path_len, r->target, s->path);
        reply(c, 404, "", NULL, msg, last);
    } else if (r->method != HTTP_POST) {
        snprintf(msg, sizeof msg, "method %s not allowed on %s (POST records to it)",
                 sl_http_request_method(r), s->path);
        reply(c, 405, "Allow: POST\r\n", NULL, msg, last);
    } else if (s->paused) {
        reply(c, 503, "Retry-After: 1\r\n", NULL,
              "the job is holding its sources back (its sinks are behind): retry", last);
    } else {
        return take(c);
    }
    return 1;
}

/* The head of a request is in: a body that will be refused is not kept, and a client that
 * waits for 100 Continue is told to send it (every body is read, kept or not, so that the
 * connection stays in step for the next request). */
static void on_head(sl_http_request *r, void *arg)
{
    conn *c = arg;
    server *s = c->srv;

    if (r->path_len != s->path_len || memcmp(r->target, s->path, s->path_len) != 0
        || r->method != HTTP_POST)
        r->discard = 1;
    if (r->expect_continue)
        send_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

/* The request could not be read (malformed, or its body over max_body): dead-lettered
 * with what it was, answered (400 or 413) and the connection closed. */
static void refuse(conn *c, int rc, const char *data, size_t len)
{
    lua_State *L = sl_loop_lua();
    sl_http_request *r = &c->req;
    char head[SL_HTTP_RAW_MAX];
    int n;

    c->nreq++;
    if (rc == SL_HTTP_TOO_LARGE) {
        n = snprintf(head, sizeof head, "%s %s", sl_http_request_method(r), r->target);
        if (L != NULL && !report_bad(L, c, 0, 0, r->err, head,
                                     n < 0 ? 0 : (size_t)n < sizeof head ? (size_t)n
                                                                          : sizeof head - 1))
            return;
        reply(c, 413, "", NULL, r->err, 1);
    } else {
        if (L != NULL && !report_bad(L, c, 0, 0, r->err, data, len))
            return;
        reply(c, 400, "", NULL, r->err, 1);
    }
}

/* Parses data[0, len) (len 0: the peer closed) and answers each request it completes, in
 * order, until the bytes are used or the connection is to close. */
static void feed(conn *c, const char *data, size_t len)
{
    server *s = c->srv;
    size_t off = 0, used;

    for (;;) {
        int rc = sl_http_request_parse(&c->req, data + off, len - off, &used);

        if (rc == SL_HTTP_WAIT)
            break;
        if (rc != SL_HTTP_DONE) {
            refuse(c, rc, data + off, len - off);
            return;
        }
        off += used;
        if (!answer(c) || c->closed || c->closing)
            return;
        sl_http_request_next(&c->req);
        if (off == len)
            break;
    }
    /* draining: a connection between requests has nothing in flight */
    if (s->draining && !sl_http_request_busy(&c->req))
        close_after_replies(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    conn *c = h->data;
    server *s = c->srv;

    /* (busy would take a loop run inside a callback: that read fails with ENOBUFS) */
    *b = s->buf_busy ? uv_buf_init(NULL, 0) : uv_buf_init(s->buf, sizeof s->buf);
}

static void on_read(uv_stream_t *stream, ssize_t got, const uv_buf_t *b)
{
    conn *c = stream->data;

    if (got == 0 || c->closed)
        return;
    if (got > 0) {
        c->srv->buf_busy = 1;
        feed(c, b->base, (size_t)got);
        c->srv->buf_busy = 0;
        return;
    }
    uv_read_stop(stream);
    c->reading = 0;
    if (got == UV_EOF) {
        feed(c, "", 0);         /* a request cut short is malformed */
    } else if (sl_http_request_busy(&c->req)) {
        lua_State *L = sl_loop_lua();
        char why[SL_HTTP_ERRLEN];

        c->nreq++;
        snprintf(why, sizeof why, "read: %s in the middle of a request", uv_strerror((int)got));
        if (L != NULL)
            report_bad(L, c, 0, 0, why, "", 0);
    }
    if (!c->closed)
        close_after_replies(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    server *s = listener->data;
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    conn *c;

    if (status < 0 || s->closed || s->draining)
        return;
    if ((c = calloc(1, sizeof *c)) == NULL)
        out_of_memory();
    c->srv = s;
    uv_tcp_init(sl_loop_get(), &c->tcp);
    c->tcp.data = c;
    s->handles++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->closed = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0)
        sl_net_name((struct sockaddr *)&ss, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "?");
    sl_http_request_init(&c->req, s->max_body, on_head, c);
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    read_on(c);
}

/* ---- Lua methods -------------------------------------------------------------------- */

static server *check_server(lua_State *L)
{
    return *(server **)luaL_checkudata(L, 1, SL_HTTP_SERVER_MT);
}

static int opt_int(lua_State *L, const char *field, lua_Integer dflt)
{
    lua_Integer v;

    lua_getfield(L, 1, field);
    v = lua_isnumber(L, -1) ? lua_tointeger(L, -1) : dflt;
    lua_pop(L, 1);
    return (int)v;
}

/* A registry ref of the function opts[field] (checked by the caller), or LUA_NOREF. */
static int ref_function(lua_State *L, const char *field)
{
    lua_getfield(L, 1, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Binds and listens on address: a libuv TCP handle whose socket is made first, so that
 * SO_REUSEPORT (shared: every worker listens on the port) is set before the bind.
 * Returns 0, or a libuv error with the step that failed in *step. */
static int listen_on(server *s, const struct sockaddr_storage *ss, int shared,
                     const char **step)
{
    uv_os_fd_t fd;
    int rc, one = 1;

    *step = "socket";
    if ((rc = uv_tcp_init_ex(sl_loop_get(), &s->tcp, ss->ss_family)) != 0)
        return rc;
    s->tcp.data = s;
    s->listening = 1;
    s->handles++;
    if (shared) {
        *step = "SO_REUSEPORT";
        if (uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0
            || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            return UV_EINVAL;
    }
    *step = "bind";
    if ((rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)ss, 0)) != 0)
        return rc;
    *step = "listen";
    return uv_listen((uv_stream_t *)&s->tcp, SOMAXCONN, on_connection);
}

int sl_http_server_new(lua_State *L)
{
    char err[SL_NET_ERRLEN];
    struct sockaddr_storage ss;
    socklen_t sslen;
    const char *address, *path, *what, *fmt, *step;
    server **ud, *s;
    int format = -1, rc;
    lua_Number max_body;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "address");
    address = lua_tostring(L, -1);
    lua_getfield(L, 1, "path");
    path = luaL_optstring(L, -1, "/");
    lua_getfield(L, 1, "what");
    what = lua_tostring(L, -1);
    lua_getfield(L, 1, "format");
    fmt = luaL_optstring(L, -1, "json");
    lua_getfield(L, 1, "max_body");
    max_body = luaL_optnumber(L, -1, 16 * 1024 * 1024);
    lua_getfield(L, 1, "shared");                       /* opts addr path what fmt max sh */
    if (address == NULL)
        return luaL_error(L, "core.http_listen: address must be a string");
    for (int i = 0; i < 3; i++) {       /* checked before listening: no error after it */
        static const char *const fns[] = { "on_batch", "on_bad", "on_end" };
        lua_getfield(L, 1, fns[i]);
        if (!lua_isfunction(L, -1) && (i == 0 || !lua_isnil(L, -1)))
            return luaL_error(L, "core.http_listen: %s must be a function", fns[i]);
        lua_pop(L, 1);
    }
    for (int i = 0; sl_framer_formats[i] != NULL; i++)
        if (strcmp(fmt, sl_framer_formats[i]) == 0)
            format = i;
    if (format < 0)
        return luaL_error(L, "core.http_listen: unknown format \"%s\"", fmt);
    lua_getfield(L, 1, "schema");                       /* ... schema|nil */
    if (!lua_isnil(L, -1)) {
        sl_schema_check(L, -1);
        if (format != SL_FRAMER_JSON && format != SL_FRAMER_MSGPACK)
            return luaL_error(L, "core.http_listen: schema needs format json or msgpack");
    }
    lua_pop(L, 1);
    if (max_body < 0 || max_body > 1024.0 * 1024 * 1024)
        return luaL_error(L, "core.http_listen: max_body out of range");
    if (what == NULL)
        what = lua_pushfstring(L, "http %s", address);
    if (sl_net_resolve(address, &ss, &sslen, err) != 0)
        return luaL_error(L, "%s: %s", what, err);

    ud = lua_newuserdata(L, sizeof *ud);                /* ... ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_HTTP_SERVER_MT);
    lua_setmetatable(L, -2);
    if ((s = calloc(1, sizeof *s)) == NULL)
        out_of_memory();
    s->on_batch = s->on_bad = s->on_end = s->batch_ref = s->schema_ref = LUA_NOREF;
    s->what = strdup(what);
    s->path = strdup(path);
    if (s->what == NULL || s->path == NULL)
        out_of_memory();
    s->path_len = strlen(path);
    s->format = format;
    s->max_body = (size_t)max_body;
    s->batch_max = opt_int(L, "batch", 1024);
    if (s->batch_max < 1)
        s->batch_max = 1;
    uv_timer_init(sl_loop_get(), &s->kick);
    s->kick.data = s;
    s->handles++;
    rc = listen_on(s, &ss, lua_toboolean(L, 7), &step);
    if (rc != 0) {
        s->closed = 1;
        stop_listening(s);
        uv_close((uv_handle_t *)&s->kick, on_server_handle_closed);
        return luaL_error(L, "%s: %s: %s", what, step, uv_strerror(rc));
    }
    s->on_batch = ref_function(L, "on_batch");
    s->on_bad = ref_function(L, "on_bad");
    s->on_end = ref_function(L, "on_end");
    lua_newtable(L);
    s->batch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, 1, "schema");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
    } else {
        s->schema = sl_schema_check(L, -1);
        s->schema_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    *ud = s;
    return 1;                                           /* ud */
}

/* server:pause() / server:resume(): while paused, each request that completes is answered
 * 503 with Retry-After (connections are still accepted and read, so that clients hear it
 * at once rather than waiting on a full socket). */
static int server_pause(lua_State *L)
{
    server *s = check_server(L);

    if (s != NULL)
        s->paused = 1;
    return 0;
}

static int server_resume(lua_State *L)
{
    server *s = check_server(L);

    if (s != NULL)
        s->paused = 0;
    return 0;
}

/* server:drain(): stops accepting; a connection between requests is closed, one in the
 * middle of a request closes after answering it. on_end() follows, from the loop, once the
 * last connection is closed. */
static int server_drain(lua_State *L)
{
    server *s = check_server(L);
    conn *c, *next;

    if (s == NULL || s->draining)
        return 0;
    s->draining = 1;
    stop_listening(s);
    for (c = s->conns; c != NULL; c = next) {
        next = c->next;
        if (!sl_http_request_busy(&c->req))
            close_after_replies(c);
    }
    if (s->nconns == 0)
        uv_timer_start(&s->kick, on_drained, 0, 0);
    return 0;
}

/* server:connections() -> the open connections. */
static int server_connections(lua_State *L)
{
    server *s = check_server(L);

    lua_pushinteger(L, s != NULL ? s->nconns : 0);
    return 1;
}

/* server:close() and __gc: closes the listener and every connection at once; no callback
 * after it. Idempotent; safe from inside the server's own callbacks. */
static int server_close(lua_State *L)
{
    server **ud = luaL_checkudata(L, 1, SL_HTTP_SERVER_MT);
    server *s = *ud;

    if (s == NULL)
        return 0;
    *ud = NULL;
    s->closed = 1;
    luaL_unref(L, LUA_REGISTRYINDEX, s->on_batch);
    luaL_unref(L, LUA_REGISTRYINDEX, s->on_bad);
    luaL_unref(L, LUA_REGISTRYINDEX, s->on_end);
    luaL_unref(L, LUA_REGISTRYINDEX, s->batch_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->schema_ref);
    s->on_batch = s->on_bad = s->on_end = s->batch_ref = s->schema_ref = LUA_NOREF;
    stop_listening(s);
    while (s->conns != NULL)
        close_now(s->conns);
    uv_close((uv_handle_t *)&s->kick, on_server_handle_closed);
    return 0;
}

void sl_http_server_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"pause", server_pause},
        {"resume", server_resume},
        {"drain", server_drain},
        {"connections", server_connections},
        {"close", server_close},
        {NULL, NULL}
    };

    sl_vm_class(L, SL_HTTP_SERVER_MT, methods, server_close, NULL);
}
