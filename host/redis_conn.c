/* redis_conn.c -- one Redis server connection on the loop that comes back after a loss.
 *
 * A hiredis async context is attached to the loop with hiredis's libuv adapter. When the
 * connection cannot be made or is lost, hiredis runs the callbacks of the commands in
 * flight with a NULL reply and frees the context; the owner hears on_down, the loss is
 * said once on stderr, and a timer tries again with backoff (100 ms doubling to 2 s). The
 * first success after a loss is said too, and the owner hears on_up to issue its setup
 * (a source re-creates its group and reads again; a sink resends what was lost).
 *
 * The socket is watched by a uv_poll handle of our own rather than hiredis 0.14's libuv
 * adapter: when the socket errs (a refused connect, a reset), libuv calls the poll
 * callback with a negative status and stops the handle, and that adapter returns without
 * telling hiredis, so the context would wait forever. Here an error status runs the read
 * and write handlers that were wanted, and hiredis finds the socket's error itself.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "loop.h"
#include "redis.h"

#define BACKOFF_FIRST_MS   100
#define BACKOFF_MAX_MS    2000

static void connect_now(sl_redis_conn *c);

/* ---- the socket on the loop (hiredis's event hooks) ---------------------------------------- */

typedef struct watch {
    redisAsyncContext *ac;      /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;                 /* UV_READABLE | UV_WRITABLE wanted */
} watch;

static void on_poll(uv_poll_t *h, int status, int events)
{
    watch *w = h->data;
    int ev = status < 0 ? w->events : events;

    if (w->ac != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(w->ac);
    if (w->ac != NULL && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(w->ac);
}

static void watch_set(watch *w, int events)
{
    w->events = events;
    if (events)
        uv_poll_start(&w->poll, events, on_poll);
    else
        uv_poll_stop(&w->poll);
}

static void add_read(void *p) { watch *w = p; watch_set(w, w->events | UV_READABLE); }
static void del_read(void *p) { watch *w = p; watch_set(w, w->events & ~UV_READABLE); }
static void add_write(void *p) { watch *w = p; watch_set(w, w->events | UV_WRITABLE); }
static void del_write(void *p) { watch *w = p; watch_set(w, w->events & ~UV_WRITABLE); }

static void on_watch_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cleanup(void *p)
{
    watch *w = p;
    w->ac = NULL;
    uv_close((uv_handle_t *)&w->poll, on_watch_closed);
}

/* Watches ac's socket on the loop; 0, or -1 (nothing to undo). */
static int attach(redisAsyncContext *ac)
{
    watch *w = calloc(1, sizeof *w);

    if (w == NULL)
        return -1;
    if (uv_poll_init(sl_loop_get(), &w->poll, ac->c.fd) != 0) {
        free(w);
        return -1;
    }
    w->ac = ac;
    w->poll.data = w;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = w;
    return 0;
}

/* ---- connecting ------------------------------------------------------------------------------ */

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        fprintf(stderr, "sluice: redis: out of memory\n");
        abort();
    }
    return d;
}

/* The connection is down (never made, or lost): say so once, and try again later. */
static void went_down(sl_redis_conn *c, const char *why)
{
    c->ac = NULL;
    c->up = 0;
    c->pending = 0;             /* hiredis ran every pending callback with NULL */
    if (c->closing)
        return;
    if (c->on_down != NULL)
        c->on_down(c);
    if (!c->said_down) {
        fprintf(stderr, "sluice: %s: %s; retrying, records wait\n", c->what, why);
        c->said_down = 1;
    }
    uv_timer_start(&c->retry, on_retry, (uint64_t)c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Connected, and AUTH and SELECT (when asked) accepted: the owner issues its setup. */
static void went_up(sl_redis_conn *c)
{
    c->up = 1;
    if (c->on_up != NULL)
        c->on_up(c);
}

void sl_redis_conn_healthy(sl_redis_conn *c)
{
    c->backoff_ms = BACKOFF_FIRST_MS;
    if (c->said_down) {
        fprintf(stderr, "sluice: %s: connected again\n", c->what);
        c->said_down = 0;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    sl_redis_conn *c = ac->data;

    if (c == NULL)
        return;
    if (status != REDIS_OK) {
        went_down(c, ac->errstr[0] ? ac->errstr : "cannot connect");   /* hiredis frees ac */
        return;
    }
    if (!c->closing && c->setup_left == 0)
        went_up(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    sl_redis_conn *c = ac->data;
    char why[SL_REDIS_WHY];

    if (c == NULL)
        return;
    snprintf(why, sizeof why, "%s", status == REDIS_OK ? "connection closed"
             : ac->errstr[0] ? ac->errstr : "connection lost");
    went_down(c, why);
}

/* Issues a setup command, before the connection is up (counted in pending). */
static void issue(sl_redis_conn *c, redisCallbackFn *fn, void *privdata, int argc,
                  const char **argv)
{
    if (redisAsyncCommandArgv(c->ac, fn, privdata, argc, argv, NULL) == REDIS_OK)
        c->pending++;
}

/* The reply of AUTH or SELECT: an error reply ends this connection (said once). */
static void on_setup(redisAsyncContext *ac, void *r, void *privdata)
{
    sl_redis_conn *c = ac->data;
    redisReply *reply = r;
    char why[SL_REDIS_WHY];

    sl_redis_conn_replied(c);
    if (reply == NULL || c->closing)
        return;
    if (reply->type != REDIS_REPLY_ERROR) {
        if (--c->setup_left == 0)
            went_up(c);
        return;
    }
    snprintf(why, sizeof why, "%s: %s", (const char *)privdata, reply->str);
    sl_redis_conn_fail(c, why);
}

static void connect_now(sl_redis_conn *c)
{
    redisAsyncContext *ac;
    char db[16];

    if (c->closing || c->ac != NULL)
        return;
    ac = redisAsyncConnect(c->host, c->port);
    if (ac == NULL) {
        fprintf(stderr, "sluice: redis: out of memory\n");
        abort();
    }
    if (ac->err) {
        char why[SL_REDIS_WHY];
        snprintf(why, sizeof why, "%s", ac->errstr);
        redisAsyncFree(ac);
        went_down(c, why);
        return;
    }
    ac->data = c;
    sl_redis_arena_use(c->arena, ac);
    if (attach(ac) != 0) {
        redisAsyncFree(ac);
        went_down(c, "cannot watch the socket on the loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->setup_left = (c->password != NULL) + (c->db != 0);
    /* queued until the socket is connected; the owner's commands wait for their replies */
    if (c->password != NULL) {
        /* AUTH user password: an ACL user (Redis 6 and later); else the default user */
        const char *argv[] = {"AUTH", c->user ? c->user : c->password, c->password};
        issue(c, on_setup, "AUTH", c->user ? 3 : 2, argv);
    }
    if (c->db != 0) {
        const char *argv[] = {"SELECT", db};
        snprintf(db, sizeof db, "%d", c->db);
        issue(c, on_setup, "SELECT", 2, argv);
    }
}

void sl_redis_conn_open(lua_State *L, int idx, sl_redis_conn *c)
{
    const char *host, *password, *what;

    lua_getfield(L, idx, "host");
    host = luaL_checkstring(L, -1);
    lua_getfield(L, idx, "port");
    c->port = (int)luaL_checkinteger(L, -1);
    lua_getfield(L, idx, "db");
    c->db = (int)luaL_optinteger(L, -1, 0);
    lua_getfield(L, idx, "password");
    password = luaL_optstring(L, -1, NULL);
    lua_getfield(L, idx, "what");
    what = luaL_optstring(L, -1, "redis");
    lua_getfield(L, idx, "user");
    c->user = lua_isstring(L, -1) ? dup_or_die(lua_tostring(L, -1)) : NULL;
    lua_pop(L, 1);
    c->host = dup_or_die(host);
    c->password = password ? dup_or_die(password) : NULL;
    c->what = dup_or_die(what);
    c->arena = sl_redis_arena_new();
    lua_pop(L, 5);
    c->backoff_ms = BACKOFF_FIRST_MS;
    uv_timer_init(sl_loop_get(), &c->retry);
    c->retry.data = c;
    connect_now(c);
}

int sl_redis_conn_command(sl_redis_conn *c, redisCallbackFn *fn, void *privdata, int argc,
                          const char **argv, const size_t *argvlen)
{
    if (c->ac == NULL || !c->up || c->closing)
        return -1;
    if (redisAsyncCommandArgv(c->ac, fn, privdata, argc, argv, argvlen) != REDIS_OK)
        return -1;
    c->pending++;
    return 0;
}

int sl_redis_conn_formatted(sl_redis_conn *c, redisCallbackFn *fn, void *privdata,
                            const char *cmd, size_t len)
{
    if (c->ac == NULL || !c->up || c->closing)
        return -1;
    if (redisAsyncFormattedCommand(c->ac, fn, privdata, cmd, len) != REDIS_OK)
        return -1;
    c->pending++;
    return 0;
}

void sl_redis_conn_replied(sl_redis_conn *c)
{
    if (c->pending > 0)
        c->pending--;
}

int sl_redis_conn_wait(sl_redis_conn *c, int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;

    while (c->ac != NULL && c->pending > 0) {
        redisAsyncContext *ac = c->ac;
        uint64_t now = uv_hrtime();
        struct pollfd p;
        if (now >= end)
            break;
        p.fd = ac->c.fd;
        p.events = POLLIN | (sdslen(ac->c.obuf) > 0 || !(ac->c.flags & REDIS_CONNECTED)
                             ? POLLOUT : 0);
        p.revents = 0;
        if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) < 0 && errno != EINTR)
            break;
        if (p.revents & (POLLOUT | POLLERR | POLLHUP))
            redisAsyncHandleWrite(ac);
        if (c->ac == ac && (p.revents & (POLLIN | POLLERR | POLLHUP)))
            redisAsyncHandleRead(ac);
    }
    return c->pending;
}

void sl_redis_conn_fail(sl_redis_conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;

    if (ac == NULL || c->closing)
        return;
    /* said here; the disconnect that follows only schedules the next attempt */
    if (!c->said_down) {
        fprintf(stderr, "sluice: %s: %s; retrying, records wait\n", c->what, why);
        c->said_down = 1;
    }
    redisAsyncFree(ac);         /* deferred by hiredis when inside one of its callbacks */
}

static void on_retry_closed(uv_handle_t *h)
{
    sl_redis_conn *c = h->data;

    free(c->host);
    free(c->password);
    free(c->user);
    free(c->what);
    sl_redis_arena_free(c->arena);
    if (c->on_closed != NULL)
        c->on_closed(c);
}

void sl_redis_conn_close(sl_redis_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_timer_stop(&c->retry);
    if (c->ac != NULL) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        c->up = 0;
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)&c->retry, on_retry_closed);
}
