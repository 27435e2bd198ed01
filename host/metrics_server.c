/* metrics_server.c -- core.metrics_listen: the HTTP endpoint of --metrics, on a thread with
 * its own libuv loop, answering from what the job's loop last published.
 *
 * Who owns what: the server struct is C's. The server thread alone touches its loop, the
 * listener and the connections once it runs (they are set up before it starts, which
 * pthread_create orders before its first step). The job's thread touches the heartbeat
 * timer, and publishes through `lock`, which guards `current` and `why` only: the data
 * path never takes it. A published text is reference-counted: the thread takes a
 * reference for each response that writes it, so publish() swaps a pointer and never
 * waits for a slow client. close() wakes the thread, joins it, then closes the timer,
 * whose close callback frees the struct.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <http_parser.h>
#include <lauxlib.h>

#include "loop.h"
#include "memory.h"
#include "metrics_server.h"
#include "net.h"
#include "vm.h"

#define URL_MAX  256            /* longer request targets are cut (they are 404s anyway) */
#define READ_MAX 4096           /* bytes read at once from a connection */

/* A published exposition text; freed when its last reference goes. */
typedef struct text {
    atomic_int refs;
    size_t len;
    char data[];
} text;

typedef struct server {
    uv_loop_t loop;             /* the server thread's */
    uv_tcp_t listener;
    uv_async_t wake;            /* close() sends it: the thread closes everything */
    pthread_t thread;
    int running;                /* the thread was started (and not yet joined) */
    uv_timer_t beat;            /* on the job's loop: stamps `heartbeat` */
    atomic_uint_least64_t heartbeat;    /* uv_hrtime() in ms at the last stamp */
    atomic_int ready;           /* what /readyz says: 1 ready, 0 not (see why) */
    pthread_mutex_t lock;       /* guards current and why */
    text *current;              /* what /metrics answers; NULL before the first publish */
    char why[SL_METRICS_WHY_LEN];   /* why it is not ready */
    char address[128];          /* as given, for messages */
} server;

typedef struct conn {
    uv_tcp_t tcp;               /* tcp.data points here */
    server *s;
    http_parser parser;
    char url[URL_MAX];
    size_t url_len;
    int closing;
    char in[READ_MAX];
} conn;

/* One response: its head, a body of its own (small) or a reference to a published text. */
typedef struct response {
    uv_write_t req;
    conn *c;
    text *body_text;            /* a reference, or NULL when the body is `body` */
    int keep_alive;
    char head[256];
    char body[SL_METRICS_WHY_LEN + 128];
} response;

static void text_unref(text *t)
{
    if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1)
        free(t);
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

/* ---- connections (server thread) ------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h) { free(h->data); }

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    response *r = req->data;

    text_unref(r->body_text);
    if (status < 0 || !r->keep_alive)
        conn_close(r->c);
    free(r);
}

/* Fills r's body for a path other than /metrics; returns the status code. */
static int small_body(server *s, const char *path, response *r)
{
    if (strcmp(path, "/healthz") == 0) {
        uint64_t age = now_ms() - atomic_load(&s->heartbeat);
        if (age > SL_METRICS_STALL_MS) {
            snprintf(r->body, sizeof r->body, "stalled: the job's loop has not turned for "
                     "%llu ms\n", (unsigned long long)age);
            return 503;
        }
        snprintf(r->body, sizeof r->body, "ok\n");
        return 200;
    }
    if (strcmp(path, "/readyz") == 0) {
        if (atomic_load(&s->ready)) {
            snprintf(r->body, sizeof r->body, "ready\n");
            return 200;
        }
        pthread_mutex_lock(&s->lock);
        snprintf(r->body, sizeof r->body, "not ready: %s\n", s->why);
        pthread_mutex_unlock(&s->lock);
        return 503;
    }
    snprintf(r->body, sizeof r->body, "not found: %.*s (this is sluice's --metrics: "
             "/metrics, /healthz, /readyz)\n", URL_MAX, path);
    return 404;
}

static const char *reason(int code)
{
    switch (code) {
    case 200: return "OK";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default:  return "Service Unavailable";
    }
}

/* Answers the request parsed into c (its method and url). */
static void respond(conn *c)
{
    server *s = c->s;
    response *r = calloc(1, sizeof *r);
    const char *type = "text/plain; charset=utf-8";
    const char *body;
    size_t body_len;
    int code, head_only = c->parser.method == HTTP_HEAD;
    uv_buf_t bufs[2];
    char *q;

    if (r == NULL) {
        conn_close(c);
        return;
    }
    r->c = c;
    r->req.data = r;
    r->keep_alive = http_should_keep_alive(&c->parser);
    c->url[c->url_len] = '\0';
    q = strchr(c->url, '?');                /* the query is ignored */
    if (q != NULL)
        *q = '\0';
    if (c->parser.method != HTTP_GET && !head_only) {
        code = 405;
        snprintf(r->body, sizeof r->body, "only GET (and HEAD) here\n");
    } else if (strcmp(c->url, "/metrics") == 0) {
        pthread_mutex_lock(&s->lock);
        r->body_text = s->current;
        if (r->body_text != NULL)
            atomic_fetch_add(&r->body_text->refs, 1);
        pthread_mutex_unlock(&s->lock);
        code = r->body_text != NULL ? 200 : 503;
        if (r->body_text != NULL)
            type = "text/plain; version=0.0.4; charset=utf-8";
        else
            snprintf(r->body, sizeof r->body, "no metrics yet: the job has not started\n");
    } else {
        code = small_body(s, c->url, r);
    }
    body = r->body_text != NULL ? r->body_text->data : r->body;
    body_len = r->body_text != NULL ? r->body_text->len : strlen(r->body);
    bufs[0].base = r->head;
    bufs[0].len = (size_t)snprintf(r->head, sizeof r->head,
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n", code,
        reason(code), type, body_len, code == 405 ? "Allow: GET, HEAD\r\n" : "",
        r->keep_alive ? "" : "Connection: close\r\n");
    bufs[1].base = (char *)body;
    bufs[1].len = head_only ? 0 : body_len;
    if (uv_write(&r->req, (uv_stream_t *)&c->tcp, bufs, 2, on_written) != 0) {
        text_unref(r->body_text);
        free(r);
        conn_close(c);
    }
}

static int on_message_begin(http_parser *p)
{
    ((conn *)p->data)->url_len = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    size_t room = URL_MAX - 1 - c->url_len;

    if (len > room)
        len = room;
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    respond(p->data);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    conn *c = h->data;

    (void)hint;
    buf->base = c->in;
    buf->len = sizeof c->in;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    conn *c = stream->data;

    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0 || c->closing)
        return;
    if (http_parser_execute(&c->parser, &parser_settings, buf->base, (size_t)n) != (size_t)n
        || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)bad, sizeof bad - 1);
        uv_try_write(stream, &b, 1);
        conn_close(c);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    server *s = listener->data;
    conn *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->s = s;
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- the thread --------------------------------------------------------------------- */

/* Closes a handle of the server's loop: a connection frees itself; the listener and the
 * async are the server's. */
static void close_any(uv_handle_t *h, void *arg)
{
    server *s = arg;

    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&s->listener || h == (uv_handle_t *)&s->wake)
        uv_close(h, NULL);
    else
        conn_close(h->data);
}

static void on_wake(uv_async_t *a)
{
    uv_walk(a->loop, close_any, a->data);
}

static void *serve(void *arg)
{
    server *s = arg;

    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    return NULL;
}

/* ---- the job's side ------------------------------------------------------------------ */

static void on_beat(uv_timer_t *t)
{
    server *s = t->data;

    atomic_store(&s->heartbeat, now_ms());
}

static void on_beat_closed(uv_handle_t *h)
{
    server *s = h->data;

    pthread_mutex_destroy(&s->lock);
    text_unref(s->current);
    free(s);
}

/* Stops the thread (it closes its handles and returns) and frees the server once the
 * heartbeat timer has closed. */
static void server_close(server *s)
{
    if (s->running) {
        uv_async_send(&s->wake);
        pthread_join(s->thread, NULL);
        s->running = 0;
    }
    uv_close((uv_handle_t *)&s->beat, on_beat_closed);
}

static server *check_server(lua_State *L, const char *method)
{
    server *s = *(server **)luaL_checkudata(L, 1, SL_METRICS_SERVER_MT);

    if (s == NULL)
        luaL_error(L, "metrics server:%s(): the server is closed", method);
    return s;
}

int sl_metrics_listen(lua_State *L)
{
    const char *address = luaL_checkstring(L, 1);
    struct sockaddr_storage ss;
    socklen_t len;
    char err[SL_NET_ERRLEN];
    server **ud, *s;
    int rc;

    if (sl_net_resolve(address, &ss, &len, err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return luaL_error(L, "core.metrics_listen: out of memory");
    snprintf(s->address, sizeof s->address, "%s", address);
    snprintf(s->why, sizeof s->why, "the job's sources are not open yet");
    pthread_mutex_init(&s->lock, NULL);
    atomic_store(&s->heartbeat, now_ms());
    rc = uv_loop_init(&s->loop);
    if (rc == 0) {
        uv_tcp_init(&s->loop, &s->listener);
        s->listener.data = s;
        rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&s->listener, 64, on_connection);
        if (rc != 0) {
            uv_close((uv_handle_t *)&s->listener, NULL);
            uv_run(&s->loop, UV_RUN_DEFAULT);
            uv_loop_close(&s->loop);
        }
    }
    if (rc != 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        lua_pushnil(L);
        lua_pushfstring(L, "listen on %s: %s", address, uv_strerror(rc));
        return 2;
    }
    uv_async_init(&s->loop, &s->wake, on_wake);
    s->wake.data = s;
    uv_timer_init(sl_loop_get(), &s->beat);
    uv_unref((uv_handle_t *)&s->beat);
    s->beat.data = s;
    uv_timer_start(&s->beat, on_beat, SL_METRICS_BEAT_MS, SL_METRICS_BEAT_MS);
    rc = pthread_create(&s->thread, NULL, serve, s);
    if (rc != 0) {
        uv_walk(&s->loop, close_any, s);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        server_close(s);
        lua_pushnil(L);
        lua_pushfstring(L, "listen on %s: cannot start a thread: %s", address, strerror(rc));
        return 2;
    }
    s->running = 1;
    ud = lua_newuserdata(L, sizeof *ud);                /* ud */
    *ud = s;
    luaL_getmetatable(L, SL_METRICS_SERVER_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* server:publish(text): /metrics answers text from now on. */
static int server_publish(lua_State *L)
{
    server *s = check_server(L, "publish");
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    text *t = malloc(sizeof *t + len + 1), *old;

    if (t == NULL)
        return luaL_error(L, "metrics server:publish(): out of memory (%d bytes)", (int)len);
    atomic_init(&t->refs, 1);
    t->len = len;
    memcpy(t->data, data, len + 1);
    pthread_mutex_lock(&s->lock);
    old = s->current;
    s->current = t;
    pthread_mutex_unlock(&s->lock);
    text_unref(old);
    return 0;
}

/* server:ready(ok [, why]): /readyz says 200, or 503 and why. */
static int server_ready(lua_State *L)
{
    server *s = check_server(L, "ready");
    int ok = lua_toboolean(L, 2);
    const char *why = luaL_optstring(L, 3, "not ready");

    if (!ok) {
        pthread_mutex_lock(&s->lock);
        snprintf(s->why, sizeof s->why, "%s", why);
        pthread_mutex_unlock(&s->lock);
    }
    atomic_store(&s->ready, ok);
    return 0;
}

/* server:close(): idempotent; also what garbage collection does. */
static int server_gc(lua_State *L)
{
    server **ud = luaL_checkudata(L, 1, SL_METRICS_SERVER_MT);

    if (*ud != NULL) {
        server_close(*ud);
        *ud = NULL;
    }
    return 0;
}

static int server_tostring(lua_State *L)
{
    server *s = *(server **)luaL_checkudata(L, 1, SL_METRICS_SERVER_MT);

    if (s == NULL)
        lua_pushliteral(L, "sluice.metrics_server (closed)");
    else
        lua_pushfstring(L, "sluice.metrics_server (%s)", s->address);
    return 1;
}

void sl_metrics_server_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"publish", server_publish},
        {"ready", server_ready},
        {"close", server_gc},
        {NULL, NULL},
    };

    sl_vm_class(L, SL_METRICS_SERVER_MT, methods, server_gc, server_tostring);
}

/* ---- process figures ------------------------------------------------------------------ */

int sl_metrics_usage(lua_State *L)
{
    struct rusage ru;
    double cpu = 0;

    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
            + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    lua_createtable(L, 0, 2);                           /* t */
    lua_pushnumber(L, cpu);
    lua_setfield(L, -2, "cpu");
    lua_pushnumber(L, (lua_Number)sl_memory_rss());
    lua_setfield(L, -2, "rss");
    return 1;
}
