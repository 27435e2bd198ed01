/* http_client.c -- core.http_client: request bodies encoded in C from batches of Lua
 * values, sent by libcurl's multi-socket interface from the libuv loop.
 *
 * encode() turns a batch into a body the client holds under an id; post(id) sends it
 * (again, for a retry: the body is the same bytes, so a batch is never torn); on_done(id,
 * status, text) tells Lua how it went; drop(id) frees the body. Easy handles go back to a
 * pool when a request completes and are reused, so libcurl keeps its connections alive.
 * wait(ms) drives the transfers without the loop (poll(2) on the same sockets), for a
 * checkpoint's barrier, which must know its batches delivered before the state is taken.
 *
 * C owns the client: the userdata holds a pointer; close() aborts what is in flight and
 * frees everything once libuv has closed the timer and the socket watchers.
 */
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <lauxlib.h>
#include <uv.h>

#include "buf.h"
#include "codec.h"
#include "http_client.h"
#include "loop.h"

enum { FMT_JSON, FMT_LINES, FMT_MSGPACK };
static const char *const formats[] = {"json", "lines", "msgpack", NULL};

typedef struct http_client http_client;

/* One body and the request that carries it. */
typedef struct http_request {
    int id;                     /* what Lua names it by */
    CURL *easy;                 /* while in flight, else NULL */
    sl_buf body;                /* the encoded batch, sent whole on every try */
    size_t *ends;               /* where each record in body ends (records() splits it) */
    int nends;
    sl_buf reply;               /* the first SL_HTTP_REPLY_MAX bytes of the reply */
    char error[CURL_ERROR_SIZE];    /* libcurl's words for a failed transfer */
    struct http_request *next;
} http_request;

/* A socket libcurl asked the loop to watch. */
typedef struct http_socket {
    uv_poll_t poll;
    curl_socket_t fd;
    int events;                 /* UV_READABLE | UV_WRITABLE, as libcurl last asked */
    http_client *client;
    struct http_socket *prev, *next;
} http_socket;

struct http_client {
    CURLM *multi;
    uv_timer_t timer;           /* libcurl's timeout (CURLMOPT_TIMERFUNCTION) */
    double due_ms;              /* when that timeout is due (uv_hrtime ms), or -1 */
    struct curl_slist *headers;
    char *url, *method, *what, *cacert;
    int insecure;
    long timeout_ms, connect_timeout_ms;
    int format;                 /* FMT_* */
    lua_State *L;               /* the state callbacks run on outside core.run() */
    int on_done;                /* registry ref of on_done(id, status, text) */
    http_request *requests;     /* every body held, in flight or not */
    int next_id;
    CURL **pool;                /* idle easy handles, kept for their connections */
    int npool, cap_pool;
    http_socket *sockets;       /* watched sockets (wait() polls them itself) */
    int in_flight;
    double held_bytes;          /* body bytes held */
    int busy;                   /* inside a callback into Lua: close() defers freeing */
    int closed, freed;
    int handles_open;           /* uv handles not closed yet (timer and sockets) */
};

static double now_ms(void)
{
    return (double)uv_hrtime() / 1e6;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- memory ------------------------------------------------------------------------- */

static void free_request(http_request *r)
{
    free(r->ends);
    sl_buf_free(&r->body);
    sl_buf_free(&r->reply);
    free(r);
}

/* Frees the client once nothing refers to it: closed, no call into Lua on the stack,
 * and every uv handle's close callback has run. */
static void maybe_free(http_client *c)
{
    if (!c->closed || c->busy > 0 || c->handles_open > 0 || c->freed)
        return;
    c->freed = 1;
    free(c->url);
    free(c->method);
    free(c->what);
    free(c->cacert);
    free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    http_client *c = h->data;

    if (h->type == UV_POLL) {
        http_socket *s = (http_socket *)h;
        c = s->client;
        free(s);
    }
    c->handles_open--;
    maybe_free(c);
}

static http_request *find(http_client *c, int id)
{
    for (http_request *r = c->requests; r != NULL; r = r->next)
        if (r->id == id)
            return r;
    return NULL;
}

/* ---- libcurl's callbacks ------------------------------------------------------------ */

static size_t on_reply(char *data, size_t size, size_t n, void *arg)
{
    http_request *r = arg;
    size_t len = size * n, room = SL_HTTP_REPLY_MAX - r->reply.len;

    if (room > 0)
        sl_buf_append(&r->reply, data, len < room ? len : room);
    return len;                 /* the rest is read and dropped */
}

static void stop_watching(http_client *c, http_socket *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        c->sockets = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void drain(http_client *c);

static void on_poll(uv_poll_t *h, int status, int events)
{
    http_socket *s = (http_socket *)h;
    http_client *c = s->client;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    drain(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch socket fd for what libcurl wants, or stop. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
    http_client *c = arg;
    http_socket *s = sockp;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(c->multi, fd, NULL);
            stop_watching(c, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL)
            return -1;
        if (uv_poll_init_socket(sl_loop_get(), &s->poll, fd) != 0) {
            fprintf(stderr, "sluice: %s: cannot watch socket %d\n", c->what, (int)fd);
            free(s);
            return -1;
        }
        s->fd = fd;
        s->client = c;
        s->poll.data = c;
        s->next = c->sockets;
        if (c->sockets != NULL)
            c->sockets->prev = s;
        c->sockets = s;
        c->handles_open++;
        curl_multi_assign(c->multi, fd, s);
    }
    s->events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, s->events, on_poll);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    http_client *c = t->data;
    int running;

    c->due_ms = -1;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(c);
}

/* CURLMOPT_TIMERFUNCTION: libcurl wants socket_action(TIMEOUT) in timeout_ms (-1: never). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    http_client *c = arg;

    (void)multi;
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
        c->due_ms = -1;
    } else {
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
        c->due_ms = now_ms() + (double)timeout_ms;
    }
    return 0;
}

/* ---- completions -------------------------------------------------------------------- */

/* Calls on_done(id, status, text) for request r, which has completed: status is the
 * HTTP status with the reply as text, or 0 with libcurl's error (os_errno: the system's,
 * for a connection that could not be made). Stack unchanged. */
static void tell(http_client *c, http_request *r, long status, CURLcode rc, long os_errno)
{
    lua_State *L = sl_loop_lua();

    if (L == NULL)
        L = c->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_done);      /* fn */
    lua_pushinteger(L, r->id);
    if (rc == CURLE_COULDNT_CONNECT && os_errno != 0) {
        /* "connection refused", not libcurl's longer "Failed to connect to ... after 0
         * ms: Couldn't connect to server": the address is in the sink's label already */
        char why[128];
        snprintf(why, sizeof why, "%s", strerror((int)os_errno));
        why[0] = (char)tolower((unsigned char)why[0]);
        lua_pushinteger(L, 0);
        lua_pushstring(L, why);
    } else if (rc != CURLE_OK) {
        lua_pushinteger(L, 0);
        lua_pushstring(L, r->error[0] ? r->error : curl_easy_strerror(rc));
    } else {
        lua_pushinteger(L, status);
        lua_pushlstring(L, r->reply.len ? r->reply.data : "", r->reply.len);
    }
    sl_loop_call(L, 3);                                 /* -- */
}

/* Hands every completed transfer to Lua, one at a time: its easy handle goes back to the
 * pool first, so on_done may post again (a retry, the next body) or drop the body. */
static void drain(http_client *c)
{
    CURLMsg *m;
    int left;

    c->busy++;
    while (!c->closed && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        http_request *r = NULL;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        long status = 0, os_errno = 0;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(c->multi, easy);
        if (c->npool == c->cap_pool) {
            int cap = c->cap_pool ? c->cap_pool * 2 : 8;
            CURL **pool = realloc(c->pool, (size_t)cap * sizeof *pool);
            if (pool == NULL) {
                curl_easy_cleanup(easy);
                easy = NULL;
            } else {
                c->pool = pool;
                c->cap_pool = cap;
            }
        }
        if (easy != NULL)
            c->pool[c->npool++] = easy;
        c->in_flight--;
        if (r == NULL)
            continue;
        r->easy = NULL;
        tell(c, r, status, rc, os_errno);
    }
    c->busy--;
    maybe_free(c);
}

/* ---- Lua methods -------------------------------------------------------------------- */

static http_client *check_client(lua_State *L, const char *method)
{
    http_client **ud = luaL_checkudata(L, 1, SL_HTTP_CLIENT_MT);

    if (*ud == NULL || (*ud)->closed)
        luaL_error(L, "http client:%s(): the client is closed", method);
    return *ud;
}

/* Appends the record at idx to body in the client's format. Stack unchanged. */
static int encode(lua_State *L, http_client *c, int idx, sl_buf *body, char *err)
{
    size_t mark = body->len;
    int rc;

    switch (c->format) {
    case FMT_JSON:
        rc = sl_json_encode(L, idx, body, err);
        break;
    case FMT_LINES:
        rc = sl_line_encode(L, idx, body, err);
        break;
    default:
        rc = sl_mpack_encode(L, idx, body, err);
        break;
    }
    if (rc != SL_CODEC_OK) {
        body->len = mark;       /* drop a half-encoded record */
        return rc;
    }
    if (c->format != FMT_MSGPACK)
        sl_buf_putc(body, '\n');
    return SL_CODEC_OK;
}

/* client:encode(batch, n) -> id | nil, bytes, bad: batch[1..n] as one body the client
 * holds under id (nil when no record could be encoded); bad is nil or an array of
 * {index=, reason=} of the records left out. */
static int client_encode(lua_State *L)
{
    http_client *c = check_client(L, "encode");
    int n = (int)luaL_checkinteger(L, 3), nbad = 0, good = 0;
    char err[SL_CODEC_ERRLEN];
    http_request *r;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    lua_pushnil(L);                                     /* c batch n bad|nil */
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return luaL_error(L, "%s: out of memory", c->what);
    sl_buf_init(&r->body);
    sl_buf_init(&r->reply);
    r->ends = malloc((size_t)(n > 0 ? n : 1) * sizeof *r->ends);
    if (r->ends == NULL) {
        free_request(r);
        return luaL_error(L, "%s: out of memory", c->what);
    }
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);                           /* ... rec */
        err[0] = '\0';
        if (encode(L, c, 5, &r->body, err) == SL_CODEC_OK) {
            r->ends[r->nends++] = r->body.len;
            good++;
        } else {
            if (nbad == 0) {
                lua_newtable(L);                        /* ... rec list */
                lua_replace(L, 4);                      /* ... rec */
            }
            lua_createtable(L, 0, 2);                   /* ... rec info */
            lua_pushinteger(L, i);
            lua_setfield(L, -2, "index");
            lua_pushstring(L, err);
            lua_setfield(L, -2, "reason");
            lua_rawseti(L, 4, ++nbad);                  /* ... rec */
        }
        lua_pop(L, 1);                                  /* c batch n bad|nil */
    }
    if (good == 0) {
        free_request(r);
        lua_pushnil(L);
        lua_pushinteger(L, 0);
    } else {
        r->id = ++c->next_id;
        r->next = c->requests;
        c->requests = r;
        c->held_bytes += (double)r->body.len;
        lua_pushinteger(L, r->id);
        lua_pushnumber(L, (lua_Number)r->body.len);
    }
    lua_pushvalue(L, 4);                                /* ... id bytes bad */
    return 3;
}

/* Sets every option of a request on easy (a reused handle keeps the last ones, so all
 * are set each time). */
static void set_options(http_client *c, http_request *r, CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_URL, c->url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "sluice/" SL_VERSION);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r->body.data);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    if (strcmp(c->method, "POST") != 0)
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_reply);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    if (c->cacert != NULL)
        curl_easy_setopt(easy, CURLOPT_CAINFO, c->cacert);
    if (c->insecure) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* client:post(id): sends the body held under id (once more, after a failure). */
static int client_post(lua_State *L)
{
    http_client *c = check_client(L, "post");
    int id = (int)luaL_checkinteger(L, 2);
    http_request *r = find(c, id);
    CURL *easy;
    CURLMcode mc;

    if (r == NULL)
        return luaL_error(L, "%s: post(%d): no such body", c->what, id);
    if (r->easy != NULL)
        return luaL_error(L, "%s: post(%d): already in flight", c->what, id);
    easy = c->npool > 0 ? c->pool[--c->npool] : curl_easy_init();
    if (easy == NULL)
        return luaL_error(L, "%s: cannot make a request (curl_easy_init)", c->what);
    sl_buf_reset(&r->reply);
    r->error[0] = '\0';
    set_options(c, r, easy);
    mc = curl_multi_add_handle(c->multi, easy);
    if (mc != CURLM_OK) {
        if (c->npool < c->cap_pool)
            c->pool[c->npool++] = easy;
        else
            curl_easy_cleanup(easy);
        return luaL_error(L, "%s: %s", c->what, curl_multi_strerror(mc));
    }
    r->easy = easy;
    c->in_flight++;
    c->L = L;
    return 0;
}

/* client:records(id) -> array of the encoded records in the body held under id, each
 * as its bytes (without the newline of json and lines): what a refused batch
 * dead-letters, so that Lua need not keep every batch's records while it is sent. */
static int client_records(lua_State *L)
{
    http_client *c = check_client(L, "records");
    int id = (int)luaL_checkinteger(L, 2);
    http_request *r = find(c, id);
    size_t start = 0;

    if (r == NULL)
        return luaL_error(L, "%s: records(%d): no such body", c->what, id);
    lua_createtable(L, r->nends, 0);                    /* list */
    for (int i = 0; i < r->nends; i++) {
        size_t end = r->ends[i], len = end - start;
        if (c->format != FMT_MSGPACK && len > 0)
            len--;                                      /* the newline */
        lua_pushlstring(L, r->body.data + start, len);  /* list rec */
        lua_rawseti(L, -2, i + 1);                      /* list */
        start = end;
    }
    return 1;
}

/* client:drop(id): frees the body held under id (delivered, or given up). */
static int client_drop(lua_State *L)
{
    http_client *c = check_client(L, "drop");
    int id = (int)luaL_checkinteger(L, 2);
    http_request **p = &c->requests;

    while (*p != NULL && (*p)->id != id)
        p = &(*p)->next;
    if (*p == NULL)
        return 0;
    if ((*p)->easy != NULL)
        return luaL_error(L, "%s: drop(%d): the request is in flight", c->what, id);
    http_request *r = *p;
    *p = r->next;
    c->held_bytes -= (double)r->body.len;
    free_request(r);
    return 0;
}

/* client:wait(ms) -> requests still in flight: drives the transfers, on_done called for
 * each that completes, until none is in flight or ms have passed, without the loop (its
 * other handles wait). */
static int client_wait(lua_State *L)
{
    http_client *c = check_client(L, "wait");
    double deadline = now_ms() + (double)luaL_checknumber(L, 2);
    struct pollfd *fds = NULL;
    int cap = 0, running;

    c->L = L;
    c->busy++;
    while (!c->closed && c->in_flight > 0) {
        double now = now_ms(), wait = deadline - now;
        int n = 0, ready;

        if (wait <= 0)
            break;
        if (c->due_ms >= 0 && c->due_ms - now < wait)
            wait = c->due_ms > now ? c->due_ms - now : 0;
        for (http_socket *s = c->sockets; s != NULL; s = s->next) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                struct pollfd *more = realloc(fds, (size_t)cap * sizeof *fds);
                if (more == NULL)
                    break;
                fds = more;
            }
            fds[n].fd = s->fd;
            fds[n].events = (short)((s->events & UV_READABLE ? POLLIN : 0)
                                    | (s->events & UV_WRITABLE ? POLLOUT : 0));
            fds[n].revents = 0;
            n++;
        }
        ready = poll(fds, (nfds_t)n, (int)(wait + 0.999));
        for (int i = 0; ready > 0 && i < n && !c->closed; i++) {
            int flags = 0;
            if (fds[i].revents == 0)
                continue;
            if (fds[i].revents & (POLLIN | POLLHUP))
                flags |= CURL_CSELECT_IN;
            if (fds[i].revents & POLLOUT)
                flags |= CURL_CSELECT_OUT;
            if (fds[i].revents & (POLLERR | POLLNVAL))
                flags |= CURL_CSELECT_ERR;
            curl_multi_socket_action(c->multi, fds[i].fd, flags, &running);
        }
        if (!c->closed && c->due_ms >= 0 && c->due_ms <= now_ms()) {
            c->due_ms = -1;
            curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        drain(c);
    }
    free(fds);
    lua_pushinteger(L, c->closed ? 0 : c->in_flight);
    c->busy--;
    maybe_free(c);
    return 1;
}

/* client:stats() -> requests in flight, body bytes held. */
static int client_stats(lua_State *L)
{
    http_client *c = check_client(L, "stats");

    lua_pushinteger(L, c->in_flight);
    lua_pushnumber(L, c->held_bytes);
    return 2;
}

/* client:close(): aborts what is in flight and frees the bodies and handles (the memory
 * itself once libuv has closed the watchers). Idempotent; on_done is not called again. */
static int client_close(lua_State *L)
{
    http_client **ud = luaL_checkudata(L, 1, SL_HTTP_CLIENT_MT);
    http_client *c = *ud;

    if (c == NULL || c->closed)
        return 0;
    *ud = NULL;
    c->closed = 1;
    for (http_request *r = c->requests, *next; r != NULL; r = next) {
        next = r->next;
        if (r->easy != NULL) {
            curl_multi_remove_handle(c->multi, r->easy);
            curl_easy_cleanup(r->easy);
        }
        free_request(r);
    }
    c->requests = NULL;
    for (int i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    free(c->pool);
    c->pool = NULL;
    c->npool = 0;
    curl_multi_cleanup(c->multi);       /* may still tell on_socket to stop watching */
    c->multi = NULL;
    while (c->sockets != NULL)
        stop_watching(c, c->sockets);
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    luaL_unref(L, LUA_REGISTRYINDEX, c->on_done);
    maybe_free(c);
    return 0;
}

/* ---- core.http_client{...} ---------------------------------------------------------- */

static char *opt_strdup(lua_State *L, const char *name)
{
    const char *s;

    lua_getfield(L, 1, name);
    s = lua_tostring(L, -1);
    lua_pop(L, 1);
    return s != NULL ? strdup(s) : NULL;
}

/* core.http_client{what=, url=, method="POST", format="json", headers={"Name: value"},
 * cacert=, insecure=, timeout_ms=, connect_timeout_ms=, on_done=fn} -> client */
int sl_http_client_new(lua_State *L)
{
    http_client *c, **ud;
    const char *what, *fmt;
    int format;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    pthread_once(&global_once, global_init);
    lua_getfield(L, 1, "what");
    what = lua_isstring(L, -1) ? lua_tostring(L, -1) : "sink.http";
    if (global_rc != CURLE_OK)
        return luaL_error(L, "%s: curl_global_init: %s", what, curl_easy_strerror(global_rc));
    lua_getfield(L, 1, "format");
    fmt = lua_isstring(L, -1) ? lua_tostring(L, -1) : "json";
    for (format = 0; formats[format] != NULL && strcmp(formats[format], fmt) != 0; format++)
        ;
    if (formats[format] == NULL)
        return luaL_error(L, "%s: unknown format '%s' (json, lines or msgpack)", what, fmt);
    lua_getfield(L, 1, "url");
    if (!lua_isstring(L, -1))
        return luaL_error(L, "%s: url is required", what);
    lua_getfield(L, 1, "on_done");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "%s: on_done must be a function", what);
    lua_settop(L, 1);

    c = calloc(1, sizeof *c);
    if (c == NULL)
        return luaL_error(L, "%s: out of memory", what);
    c->what = strdup(what);
    c->url = opt_strdup(L, "url");
    c->method = opt_strdup(L, "method");
    if (c->method == NULL)
        c->method = strdup("POST");
    c->cacert = opt_strdup(L, "cacert");
    c->format = format;
    lua_getfield(L, 1, "insecure");
    c->insecure = lua_toboolean(L, -1);
    lua_getfield(L, 1, "timeout_ms");
    c->timeout_ms = (long)luaL_optnumber(L, -1, 30000);
    lua_getfield(L, 1, "connect_timeout_ms");
    c->connect_timeout_ms = (long)luaL_optnumber(L, -1, 10000);
    lua_settop(L, 1);
    lua_getfield(L, 1, "headers");                      /* opts headers */
    if (lua_istable(L, -1)) {
        int n = (int)lua_objlen(L, -1);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);                      /* opts headers h */
            if (lua_isstring(L, -1)) {
                struct curl_slist *more = curl_slist_append(c->headers, lua_tostring(L, -1));
                if (more != NULL)
                    c->headers = more;
            }
            lua_pop(L, 1);                              /* opts headers */
        }
    }
    lua_settop(L, 1);
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        curl_slist_free_all(c->headers);
        free(c->what); free(c->url); free(c->method); free(c->cacert); free(c);
        return luaL_error(L, "%s: curl_multi_init failed", what);
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(sl_loop_get(), &c->timer);
    c->timer.data = c;
    c->handles_open = 1;
    c->due_ms = -1;
    c->L = L;
    lua_getfield(L, 1, "on_done");                      /* opts fn */
    c->on_done = luaL_ref(L, LUA_REGISTRYINDEX);        /* opts */
    ud = lua_newuserdata(L, sizeof *ud);                /* opts ud */
    *ud = c;
    luaL_getmetatable(L, SL_HTTP_CLIENT_MT);
    lua_setmetatable(L, -2);
    return 1;                                           /* ud */
}

static const luaL_Reg client_methods[] = {
    {"encode", client_encode},
    {"post", client_post},
    {"drop", client_drop},
    {"records", client_records},
    {"wait", client_wait},
    {"stats", client_stats},
    {"close", client_close},
    {NULL, NULL}
};

void sl_http_client_register(lua_State *L)
{
    luaL_newmetatable(L, SL_HTTP_CLIENT_MT);            /* mt */
    lua_newtable(L);                                    /* mt methods */
    luaL_setfuncs(L, client_methods, 0);
    lua_setfield(L, -2, "__index");                     /* mt */
    lua_pushcfunction(L, client_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);                                      /* -- */
}
