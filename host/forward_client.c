/* forward_client.c -- the connection of sl.sink.forward to a Fluentd or Fluent Bit (or a
 * sluice forward source), and core.forward_pack, which makes its entries.
 *
 * The client connects (again after a failure, with backoff), writes what Lua sends while
 * connected, and reads the acks back: on_ack(chunk) for each {"ack": chunk}. It keeps no
 * copy of what it wrote: the sink (forward.lua) holds every chunk until its ack comes and
 * sends the unacked ones again after on_connect(), so a chunk is delivered at least once.
 * on_error(msg) says why a connection failed or ended; the client retries by itself. C
 * owns the client; the userdata holds a pointer; memory goes when its handles have closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "codec.h"
#include "forward.h"
#include "loop.h"
#include "net.h"
#include "vm.h"

#define BACKOFF_MIN_MS 50           /* first reconnect delay; doubles per failure */
#define BACKOFF_MAX_MS 2000         /* longest reconnect delay */

enum { DOWN, CONNECTING, UP };

typedef struct fclient {
    uv_tcp_t tcp;                   /* a fresh handle for each attempt */
    uv_connect_t req;
    uv_timer_t retry;
    int tcp_open;                   /* tcp is initialised and not closed */
    int open_handles;
    int state;                      /* DOWN, CONNECTING or UP */
    int backoff_ms;
    int closed;
    char address[128];
    struct sockaddr_storage addr;
    sl_buf in;                      /* reply bytes not decoded yet */
    int on_ack, on_connect, on_error;
} fclient;

static void maybe_free(fclient *c)
{
    if (c->open_handles > 0)
        return;
    sl_buf_free(&c->in);
    free(c);
}

static void on_closed(uv_handle_t *h)
{
    fclient *c = h->data;
    if (h == (uv_handle_t *)&c->tcp)
        c->tcp_open = 0;
    c->open_handles--;
    maybe_free(c);
}

static void connect_now(fclient *c);

static void on_retry(uv_timer_t *t)
{
    fclient *c = t->data;
    if (!c->closed && c->state == DOWN && !c->tcp_open)
        connect_now(c);
    else if (!c->closed && c->state == DOWN)
        uv_timer_start(&c->retry, on_retry, 10, 0);    /* the old handle is closing */
}

/* Calls on_error(msg). Stack unchanged. */
static void tell_error(fclient *c, const char *msg)
{
    lua_State *L = sl_loop_lua();
    if (L == NULL || c->closed || c->on_error == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_error);     /* fn */
    lua_pushstring(L, msg);                             /* fn msg */
    sl_loop_call(L, 1);                                 /* -- */
}

/* Drops the connection (or the attempt) and tries again after the backoff. */
static void go_down(fclient *c, const char *why)
{
    if (c->state != DOWN && c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    c->state = DOWN;
    sl_buf_reset(&c->in);
    if (c->closed)
        return;
    uv_timer_start(&c->retry, on_retry, (uint64_t)c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (why != NULL)
        tell_error(c, why);
}

/* Decodes the replies buffered: on_ack(chunk) for each ack; a HELO (the server wants the
 * shared_key handshake, which is not implemented) is an error. */
static void read_replies(fclient *c)
{
    lua_State *L = sl_loop_lua();
    char err[SL_CODEC_ERRLEN], msg[512];
    size_t pos = 0;

    if (L == NULL || !lua_checkstack(L, 8))
        return;
    while (!c->closed && c->state == UP && pos < c->in.len) {
        size_t used = 0;
        int rc = sl_mpack_decode(L, c->in.data + pos, c->in.len - pos, &used, err);
        if (rc == SL_CODEC_MORE)
            break;
        if (rc != SL_CODEC_OK) {
            snprintf(msg, sizeof msg, "sink.forward %s: a reply that is not msgpack (%s); "
                     "reconnecting", c->address, err);
            go_down(c, msg);
            return;
        }
        pos += used;
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "ack");                 /* reply ack */
            lua_rawgeti(L, -2, 1);                      /* reply ack first */
            if (lua_isstring(L, -2) && c->on_ack != LUA_NOREF) {
                lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_ack);
                lua_pushvalue(L, -3);                   /* reply ack first fn ack */
                sl_loop_call(L, 1);                     /* reply ack first */
            } else if (lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "HELO") == 0) {
                lua_pop(L, 3);
                snprintf(msg, sizeof msg, "sink.forward %s asks for the shared_key handshake "
                         "(HELO), which sluice does not do; turn it off there", c->address);
                go_down(c, msg);
                return;
            }
            lua_pop(L, 2);                              /* reply */
        }
        lua_pop(L, 1);                                  /* -- */
    }
    if (!c->closed && c->state == UP && pos > 0) {
        memmove(c->in.data, c->in.data + pos, c->in.len - pos);
        c->in.len -= pos;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    fclient *c = h->data;
    sl_buf_reserve(&c->in, 4096);
    *b = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *s, ssize_t got, const uv_buf_t *b)
{
    fclient *c = s->data;
    char msg[256];

    if (got > 0) {
        c->in.len += (size_t)got;
        read_replies(c);
    } else if (got < 0) {
        snprintf(msg, sizeof msg, "sink.forward %s: %s; reconnecting", c->address,
                 got == UV_EOF ? "the server closed the connection" : uv_strerror((int)got));
        go_down(c, msg);
    }
}

static void on_connected(uv_connect_t *req, int status)
{
    fclient *c = req->data;
    char msg[256];

    if (c->closed || c->state != CONNECTING)
        return;
    if (status != 0) {
        snprintf(msg, sizeof msg, "sink.forward %s: connect: %s; retrying", c->address,
                 uv_strerror(status));
        go_down(c, msg);
        return;
    }
    c->state = UP;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    lua_State *L = sl_loop_lua();
    if (L != NULL && c->on_connect != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_connect);
        sl_loop_call(L, 0);
    }
}

static void connect_now(fclient *c)
{
    char msg[256];
    int rc;

    uv_tcp_init(sl_loop_get(), &c->tcp);
    c->tcp.data = c;
    c->tcp_open = 1;
    c->open_handles++;
    c->state = CONNECTING;
    c->req.data = c;
    rc = uv_tcp_connect(&c->req, &c->tcp, (struct sockaddr *)&c->addr, on_connected);
    if (rc != 0) {
        snprintf(msg, sizeof msg, "sink.forward %s: connect: %s; retrying", c->address,
                 uv_strerror(rc));
        go_down(c, msg);
    }
}

static void on_written(uv_write_t *req, int status)
{
    fclient *c = req->data;
    char msg[256];

    free(req);
    if (status != 0 && status != UV_ECANCELED && !c->closed && c->state == UP) {
        snprintf(msg, sizeof msg, "sink.forward %s: write: %s; reconnecting", c->address,
                 uv_strerror(status));
        go_down(c, msg);
    }
}

/* ---- Lua methods -------------------------------------------------------------------- */

static fclient *check_client(lua_State *L)
{
    fclient *c = *(fclient **)luaL_checkudata(L, 1, SL_FORWARD_CLIENT_MT);
    if (c == NULL)
        luaL_error(L, "sink.forward: the connection is closed");
    return c;
}

/* client:send(bytes) -> true when written to a connection (false: none is up; send it
 * again after on_connect). */
static int client_send(lua_State *L)
{
    fclient *c = check_client(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);

    if (c->state != UP) {
        lua_pushboolean(L, 0);
        return 1;
    }
    uv_write_t *req = malloc(sizeof *req + len);
    if (req == NULL)
        return luaL_error(L, "sink.forward %s: out of memory", c->address);
    memcpy(req + 1, s, len);
    req->data = c;
    uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)len);
    int rc = uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc != 0) {
        free(req);
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* client:queued() -> bytes written to the connection that the kernel has not taken. */
static int client_queued(lua_State *L)
{
    fclient *c = check_client(L);
    lua_pushnumber(L, c->state == UP ? (lua_Number)c->tcp.write_queue_size : 0);
    return 1;
}

/* client:up() -> whether a connection is up. */
static int client_up(lua_State *L)
{
    lua_pushboolean(L, check_client(L)->state == UP);
    return 1;
}

/* client:reset(why): drops the connection and connects again (an ack that never came). */
static int client_reset(lua_State *L)
{
    fclient *c = check_client(L);
    const char *why = luaL_optstring(L, 2, NULL);
    if (c->state == UP)
        go_down(c, why);
    return 0;
}

/* client:close() and __gc. Idempotent. */
static int client_close(lua_State *L)
{
    fclient **ud = luaL_checkudata(L, 1, SL_FORWARD_CLIENT_MT);
    fclient *c = *ud;

    if (c == NULL)
        return 0;
    *ud = NULL;
    c->closed = 1;
    luaL_unref(L, LUA_REGISTRYINDEX, c->on_ack);
    luaL_unref(L, LUA_REGISTRYINDEX, c->on_connect);
    luaL_unref(L, LUA_REGISTRYINDEX, c->on_error);
    c->on_ack = c->on_connect = c->on_error = LUA_NOREF;
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->retry, on_closed);
    return 0;
}

static int client_tostring(lua_State *L)
{
    fclient *c = *(fclient **)luaL_checkudata(L, 1, SL_FORWARD_CLIENT_MT);
    lua_pushfstring(L, "sluice.forward_client (%s)", c != NULL ? c->address : "closed");
    return 1;
}

static int opt_ref(lua_State *L, const char *name)
{
    if (!sl_vm_opt(L, "core.forward_client", name, LUA_TFUNCTION))
        return LUA_NOREF;
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

int sl_forward_client_new(lua_State *L)
{
    char err[SL_NET_ERRLEN];
    struct sockaddr_storage ss;
    socklen_t sslen;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (!sl_vm_opt(L, "core.forward_client", "connect", LUA_TSTRING))
        return luaL_error(L, "core.forward_client: connect must be a string");
    const char *address = lua_tostring(L, -1);
    if (sl_net_resolve(address, &ss, &sslen, err) != 0)
        return luaL_error(L, "sink.forward %s: %s", address, err);
    fclient *c = calloc(1, sizeof *c);
    if (c == NULL)
        return luaL_error(L, "core.forward_client: out of memory");
    snprintf(c->address, sizeof c->address, "%s", address);
    lua_pop(L, 1);
    memcpy(&c->addr, &ss, sizeof ss);
    sl_buf_init(&c->in);
    c->backoff_ms = BACKOFF_MIN_MS;
    c->on_ack = opt_ref(L, "on_ack");
    c->on_connect = opt_ref(L, "on_connect");
    c->on_error = opt_ref(L, "on_error");
    uv_timer_init(sl_loop_get(), &c->retry);
    c->retry.data = c;
    c->open_handles++;
    fclient **ud = lua_newuserdata(L, sizeof *ud);      /* opts ud */
    *ud = c;
    luaL_getmetatable(L, SL_FORWARD_CLIENT_MT);
    lua_setmetatable(L, -2);
    connect_now(c);
    return 1;
}

/* Collects the records forward_pack leaves out: bad[k] = {index=, reason=} in the table
 * at stack index `list`. Stack unchanged. */
typedef struct pack_bad {
    lua_State *L;
    int list;
    int n;
} pack_bad;

static void on_pack_bad(void *arg, int index, const char *reason)
{
    pack_bad *b = arg;
    lua_State *L = b->L;
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, index);
    lua_setfield(L, -2, "index");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_rawseti(L, b->list, ++b->n);
}

int sl_forward_pack_lua(lua_State *L)
{
    size_t tag_len, chunk_len;
    const char *tag = luaL_checklstring(L, 1, &tag_len);
    const char *chunk = luaL_checklstring(L, 2, &chunk_len);
    luaL_checktype(L, 3, LUA_TTABLE);
    int times = lua_istable(L, 4) ? 4 : 0;
    int n = (int)luaL_checkinteger(L, 5);
    double now = luaL_checknumber(L, 6);
    sl_buf out;
    pack_bad bad = { L, 7, 0 };

    lua_settop(L, 6);
    lua_newtable(L);                                    /* ... bad */
    sl_buf_init(&out);
    int packed = sl_forward_pack(L, tag, tag_len, 3, times, n, now, chunk, chunk_len, &out,
                                 on_pack_bad, &bad);
    if (packed > 0)
        lua_pushlstring(L, out.data, out.len);
    else
        lua_pushnil(L);                                 /* bytes */
    sl_buf_free(&out);
    if (bad.n > 0)
        lua_pushvalue(L, bad.list);
    else
        lua_pushnil(L);                                 /* bytes bad */
    return 2;
}

void sl_forward_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"send", client_send},
        {"queued", client_queued},
        {"up", client_up},
        {"reset", client_reset},
        {"close", client_close},
        {NULL, NULL},
    };
    sl_vm_class(L, SL_FORWARD_CLIENT_MT, methods, client_close, client_tostring);
    sl_forward_conn_register(L);
}
