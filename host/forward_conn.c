/* forward_conn.c -- one accepted connection of sl.source.forward: bytes in, events out to
 * Lua a batch at a time, acks back once the job has a chunk's events.
 *
 * The descriptor comes from core.listen (net.c) and is read as a libuv TCP stream. Bytes
 * wait in a buffer until an entry is whole (entries span reads); forward.c decodes each.
 * on_batch(batch, n) is called when a batch is full and at the end of what was read; the
 * acks of the chunks whose events it held are written after it returns, so an ack means
 * the events are in the job. Events that cannot be taken and entries that are no entries
 * go to on_bad{offset=, reason=, raw=}; malformed msgpack cannot be framed past, so it
 * ends the connection (on_end(reason)), other connections untouched. C owns the
 * connection; the userdata holds a pointer; memory goes when both handles have closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>

#include "forward.h"
#include "loop.h"
#include "vm.h"

#define RAW_MAX 64                  /* bytes of a bad entry given in on_bad's raw */
#define BATCH_DEFAULT 1024

typedef struct fconn {
    uv_tcp_t tcp;
    uv_timer_t kick;                /* resumes decoding from the loop after start() */
    int open_handles;
    char peer[80];
    sl_buf in;                      /* received bytes not decoded yet */
    uint64_t offset;                /* stream offset of in.data[0] */
    sl_forward_decoder dec;         /* its zones and inflating buffer */
    sl_buf acks;                    /* acks to write after the next delivery */
    int batch_size;
    size_t max_entry;               /* bytes an entry may take before it is whole */
    int on_batch, on_bad, on_end;   /* registry refs */
    int self_ref;                   /* the userdata, while the connection is open */
    int wanted;                     /* start() was called and not stop() */
    int reading;                    /* uv_read_start is in effect */
    int decoding;                   /* inside decode_all */
    int eof;                        /* the peer has closed its side */
    int ended;                      /* on_end was called */
    int closed;                     /* close() was called */
} fconn;

/* What a bad event of the entry being decoded is reported with. */
typedef struct bad_ctx {
    lua_State *L;
    int list;                       /* stack index of the array of reasons */
    uint64_t at;                    /* the entry's stream offset */
} bad_ctx;

static void maybe_free(fconn *c)
{
    if (c->open_handles > 0)
        return;
    sl_buf_free(&c->in);
    sl_forward_decoder_free(&c->dec);
    sl_buf_free(&c->acks);
    free(c);
}

static void on_closed(uv_handle_t *h)
{
    fconn *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

static void unref(lua_State *L, int *ref)
{
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    *ref = LUA_NOREF;
}

static void stop_reading(fconn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ---- callbacks into Lua ------------------------------------------------------------- */

/* Collects one bad event (forward.c calls this between events). Stack unchanged. */
static void on_bad_event(void *arg, int index, const char *reason)
{
    bad_ctx *b = arg;
    lua_State *L = b->L;
    char msg[SL_FORWARD_ERRLEN + 64];

    snprintf(msg, sizeof msg, "entry at byte %llu: event %d: %s", (unsigned long long)b->at,
             index, reason);
    lua_pushstring(L, msg);
    lua_rawseti(L, b->list, (int)lua_objlen(L, b->list) + 1);
}

/* Calls on_bad{offset=, reason=, raw=}. Stack unchanged. */
static void report_bad(lua_State *L, fconn *c, uint64_t offset, const char *reason,
                       const char *raw, size_t rawlen)
{
    if (c->on_bad == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_bad);       /* fn */
    lua_createtable(L, 0, 3);                           /* fn info */
    lua_pushnumber(L, (lua_Number)offset);
    lua_setfield(L, -2, "offset");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_pushlstring(L, raw, rawlen < RAW_MAX ? rawlen : RAW_MAX);
    lua_setfield(L, -2, "raw");                         /* fn info */
    sl_loop_call(L, 1);                                 /* -- */
}

/* Reports the bad events collected in the array at idx. Stack unchanged. */
static void report_bad_events(lua_State *L, fconn *c, int idx, uint64_t at)
{
    int n = (int)lua_objlen(L, idx);
    for (int i = 1; i <= n && !c->closed; i++) {
        lua_rawgeti(L, idx, i);                         /* reason */
        report_bad(L, c, at, lua_tostring(L, -1), "", 0);
        lua_pop(L, 1);                                  /* -- */
    }
}

static void on_written(uv_write_t *req, int status)
{
    free(req);
}

/* Writes the acks waiting, if the connection is still open (after the peer's end of
 * sending too: a client may half-close and then wait for its acks). */
static void write_acks(fconn *c)
{
    if (c->acks.len == 0)
        return;
    if (!c->closed) {
        uv_write_t *req = malloc(sizeof *req + c->acks.len);
        if (req != NULL) {
            char *copy = (char *)(req + 1);
            memcpy(copy, c->acks.data, c->acks.len);
            uv_buf_t b = uv_buf_init(copy, (unsigned)c->acks.len);
            if (uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
                free(req);
        }
    }
    sl_buf_reset(&c->acks);
}

/* Calls on_batch(batch, n) with the batch at bi, then writes the acks of the entries it
 * completed. Leaves a fresh batch table at bi. */
static void deliver(lua_State *L, fconn *c, int bi, int n)
{
    if (n > 0 && !c->closed) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_batch);  /* fn */
        lua_pushvalue(L, bi);
        lua_pushinteger(L, n);                          /* fn batch n */
        sl_loop_call(L, 2);                             /* -- */
        lua_createtable(L, c->batch_size, 0);
        lua_replace(L, bi);
    }
    write_acks(c);
}

/* The end of the connection: on_end(nil) or on_end(reason), once. */
static void end_conn(lua_State *L, fconn *c, const char *reason)
{
    stop_reading(c);
    if (c->ended || c->closed)
        return;
    c->ended = 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_end);       /* fn */
    if (reason != NULL)
        lua_pushstring(L, reason);
    else
        lua_pushnil(L);                                 /* fn reason */
    sl_loop_call(L, 1);                                 /* -- */
}

/* ---- decoding ---------------------------------------------------------------------- */

/* Decodes every whole entry buffered while the connection is wanted, delivering a batch
 * whenever it is full and at the end. Keeps what is left (an incomplete entry, or what a
 * stop() left undecoded) for later. After malformed msgpack, or at the peer's end, ends
 * the connection. */
static void decode_all(fconn *c)
{
    lua_State *L = sl_loop_lua();
    char err[SL_FORWARD_ERRLEN], msg[SL_FORWARD_ERRLEN + 160];
    size_t pos = 0;
    int n = 0, broken = 0;

    if (L == NULL || c->decoding || !lua_checkstack(L, 16))
        return;
    c->decoding = 1;
    lua_createtable(L, c->batch_size, 0);               /* batch */
    int bi = lua_gettop(L);
    lua_newtable(L);                                    /* batch bads */
    int li = bi + 1;
    while (c->wanted && !c->closed && pos < c->in.len) {
        sl_forward_entry e;
        bad_ctx b = { L, li, c->offset + pos };
        int rc = sl_forward_decode(L, &c->dec, c->in.data + pos, c->in.len - pos, bi, n,
                                   on_bad_event, &b, &e, err);
        if (rc == SL_FORWARD_MORE) {
            if (c->in.len - pos > c->max_entry) {
                snprintf(msg, sizeof msg, "entry at byte %llu: not whole after %zu bytes, over "
                         "%zu (max_entry); the connection is closed",
                         (unsigned long long)(c->offset + pos), c->in.len - pos, c->max_entry);
                broken = 1;
            }
            break;
        }
        if (rc == SL_FORWARD_BROKEN) {
            snprintf(msg, sizeof msg, "entry at byte %llu: %s; the connection is closed, "
                     "since msgpack cannot be framed past it",
                     (unsigned long long)(c->offset + pos), err);
            broken = 1;
            break;
        }
        if (e.used > c->max_entry) {
            /* whole at once, but as much over the bound as one still arriving */
            for (int i = 1; rc == SL_FORWARD_OK && i <= e.events; i++) {
                lua_pushnil(L);
                lua_rawseti(L, bi, n + i);
            }
            snprintf(msg, sizeof msg, "entry at byte %llu: %zu bytes, over %zu (max_entry); "
                     "the connection is closed", (unsigned long long)(c->offset + pos),
                     e.used, c->max_entry);
            broken = 1;
            break;
        }
        if (rc == SL_FORWARD_SKIP) {
            deliver(L, c, bi, n);                       /* the bad entry after what came before */
            n = 0;
            snprintf(msg, sizeof msg, "entry at byte %llu: %s; the entry is skipped",
                     (unsigned long long)(c->offset + pos), err);
            report_bad(L, c, c->offset + pos, msg, c->in.data + pos, e.used);
            pos += e.used;
            continue;
        }
        n += e.events;
        pos += e.used;
        if (e.bad > 0) {
            report_bad_events(L, c, li, b.at);
            lua_newtable(L);
            lua_replace(L, li);
        }
        if (e.chunk_len > 0)
            sl_forward_pack_ack(e.chunk, e.chunk_len, &c->acks);
        if (n >= c->batch_size) {
            deliver(L, c, bi, n);
            n = 0;
        }
    }
    deliver(L, c, bi, n);
    if (broken && !c->closed) {
        report_bad(L, c, c->offset + pos, msg, c->in.data + pos, c->in.len - pos);
        end_conn(L, c, NULL);
    }
    lua_settop(L, bi - 1);                              /* -- */
    if (!c->closed) {
        if (pos > 0) {
            c->offset += pos;
            memmove(c->in.data, c->in.data + pos, c->in.len - pos);
            c->in.len -= pos;
        }
        if (c->eof && c->wanted && !c->ended) {
            if (c->in.len > 0) {
                snprintf(msg, sizeof msg, "entry at byte %llu: the connection ended inside "
                         "it (%zu bytes)", (unsigned long long)c->offset, c->in.len);
                report_bad(L, c, c->offset, msg, c->in.data, c->in.len);
                c->in.len = 0;
            }
            end_conn(L, c, NULL);
        }
    }
    c->decoding = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    fconn *c = h->data;
    sl_buf_reserve(&c->in, 64 * 1024);
    *b = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *s, ssize_t got, const uv_buf_t *b)
{
    fconn *c = s->data;
    char msg[160];

    if (got > 0) {
        c->in.len += (size_t)got;
        decode_all(c);
    } else if (got == UV_EOF) {
        stop_reading(c);
        c->eof = 1;
        decode_all(c);
    } else if (got < 0) {
        lua_State *L = sl_loop_lua();
        snprintf(msg, sizeof msg, "read from %s: %s", c->peer, uv_strerror((int)got));
        c->eof = 1;
        if (L != NULL)
            end_conn(L, c, msg);
    }
}

static void on_kick(uv_timer_t *t)
{
    fconn *c = t->data;

    decode_all(c);
    if (c->wanted && !c->closed && !c->eof && !c->reading
        && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
}

/* ---- Lua methods -------------------------------------------------------------------- */

static fconn *check_conn(lua_State *L)
{
    return *(fconn **)luaL_checkudata(L, 1, SL_FORWARD_CONN_MT);
}

/* conn:start(): reads and decodes on (from the loop, not inside this call). */
static int conn_start(lua_State *L)
{
    fconn *c = check_conn(L);

    if (c != NULL && !c->wanted) {
        c->wanted = 1;
        uv_timer_start(&c->kick, on_kick, 0, 0);
    }
    return 0;
}

/* conn:stop(): no reading or decoding until start(); what was read waits. */
static int conn_stop(lua_State *L)
{
    fconn *c = check_conn(L);

    if (c != NULL) {
        c->wanted = 0;
        stop_reading(c);
        uv_timer_stop(&c->kick);
    }
    return 0;
}

/* conn:unread() -> bytes received and not decoded. */
static int conn_unread(lua_State *L)
{
    fconn *c = check_conn(L);

    lua_pushnumber(L, c != NULL ? (lua_Number)c->in.len : 0);
    return 1;
}

/* conn:close() and __gc: closes the socket and drops the callbacks at once. Safe inside
 * the connection's own callbacks (decode_all checks closed after each). */
static int conn_close(lua_State *L)
{
    fconn **ud = luaL_checkudata(L, 1, SL_FORWARD_CONN_MT);
    fconn *c = *ud;

    if (c == NULL)
        return 0;
    *ud = NULL;
    c->closed = 1;
    stop_reading(c);
    unref(L, &c->on_batch);
    unref(L, &c->on_bad);
    unref(L, &c->on_end);
    unref(L, &c->self_ref);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->kick, on_closed);
    return 0;
}

static int conn_tostring(lua_State *L)
{
    fconn *c = check_conn(L);

    lua_pushfstring(L, "sluice.forward_conn (%s)", c != NULL ? c->peer : "closed");
    return 1;
}

static int opt_ref(lua_State *L, const char *name)
{
    if (!sl_vm_opt(L, "core.forward_conn", name, LUA_TFUNCTION))
        return luaL_error(L, "core.forward_conn: %s must be a function", name);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

int sl_forward_conn_new(lua_State *L)
{
    int fd, batch = BATCH_DEFAULT;
    lua_Number max_entry = 64.0 * 1024 * 1024;
    const char *peer = "?";

    luaL_checktype(L, 1, LUA_TTABLE);
    if (!sl_vm_opt(L, "core.forward_conn", "fd", LUA_TNUMBER))
        return luaL_error(L, "core.forward_conn: fd must be a descriptor");
    fd = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (sl_vm_opt(L, "core.forward_conn", "peer", LUA_TSTRING)) {
        peer = lua_tostring(L, -1);     /* copied below, before the pop */
    }
    fconn *c = calloc(1, sizeof *c);
    if (c == NULL || sl_forward_decoder_init(&c->dec) != 0) {
        free(c);
        close(fd);
        return luaL_error(L, "core.forward_conn: out of memory");
    }
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    lua_settop(L, 1);
    if (sl_vm_opt(L, "core.forward_conn", "batch", LUA_TNUMBER)) {
        batch = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    if (sl_vm_opt(L, "core.forward_conn", "max_entry", LUA_TNUMBER)) {
        max_entry = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    c->batch_size = batch >= 1 ? batch : BATCH_DEFAULT;
    c->max_entry = max_entry >= 1 ? (size_t)max_entry : 64u << 20;
    c->on_batch = c->on_bad = c->on_end = c->self_ref = LUA_NOREF;
    sl_buf_init(&c->in);
    sl_buf_init(&c->acks);
    c->on_batch = opt_ref(L, "on_batch");
    c->on_bad = opt_ref(L, "on_bad");
    c->on_end = opt_ref(L, "on_end");

    uv_loop_t *loop = sl_loop_get();
    uv_timer_init(loop, &c->kick);
    c->kick.data = c;
    c->open_handles++;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->open_handles++;
    fconn **ud = lua_newuserdata(L, sizeof *ud);        /* opts ud */
    *ud = c;
    luaL_getmetatable(L, SL_FORWARD_CONN_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);       /* opts ud */
    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc == 0)
        uv_tcp_nodelay(&c->tcp, 1);     /* acks are small: Nagle would hold them back */
    if (rc != 0) {
        close(fd);                      /* the handle did not take it */
        lua_pushvalue(L, -1);
        lua_insert(L, 1);
        lua_settop(L, 1);                               /* ud */
        conn_close(L);
        return luaL_error(L, "core.forward_conn: %s: %s", peer, uv_strerror(rc));
    }
    return 1;
}

void sl_forward_conn_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"start", conn_start},
        {"stop", conn_stop},
        {"unread", conn_unread},
        {"close", conn_close},
        {NULL, NULL},
    };
    sl_vm_class(L, SL_FORWARD_CONN_MT, methods, conn_close, conn_tostring);
}
