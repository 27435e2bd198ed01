/* redis_sink.c -- core.redis_sink: records appended to a Redis stream with pipelined XADD
 * (see redis.h).
 *
 * write() issues one `XADD stream [MAXLEN ~ n] * field value ...` per record without
 * waiting: many commands are in flight on the connection, and their replies come back in
 * the order they went. Each reply is counted in order (the n-th callback is the n-th
 * XADD), an error reply is kept with its number, and a connection lost with commands in
 * flight marks the first of them lost (hiredis runs their callbacks with NULL). After a
 * loop turn that saw any of this, on_event(answered, errors, lost_from) tells Lua, which
 * keeps the records in flight, dead-letters the refused ones and sends the lost ones
 * again once the server is back.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "buf.h"
#include "codec.h"
#include "loop.h"
#include "redis.h"

#define ARGS_MAX   1024     /* fields of one record, at most (XADD argv) */

typedef struct cmd_error {
    double seq;             /* which XADD (1 = the first this sink issued) */
    char why[SL_REDIS_WHY];
} cmd_error;

typedef struct sl_redis_sink {
    sl_redis_conn conn;     /* first: the connection's callbacks find the sink */
    char *stream;
    char maxlen[24];        /* MAXLEN ~ n, or "" */
    double sent;            /* XADDs issued */
    double answered;        /* their callbacks run, in order: replies and losses */
    double unanswered_bytes;    /* the protocol bytes of the XADDs issued and not answered */
    double lost_from;       /* the first XADD lost with the connection since the last
                               event, or 0 */
    cmd_error *errors;      /* error replies since the last event */
    int nerrors, caperrors;
    int event_due;          /* on_event is due after this turn */
    uv_check_t check;       /* runs on_event once per loop turn that needs it */
    int on_event;           /* registry ref */
    int self_ref;
    int closed;
    sl_buf prefix;          /* XADD stream [MAXLEN ~ n] *, as protocol */
    int prefix_args;        /* the words in it */
    sl_buf args;            /* the fields of the record being written, as protocol */
    sl_buf value;           /* the text of a value that is not a string */
    sl_buf cmd;             /* the whole command */
    struct sl_redis_sink **slot;
} sl_redis_sink;

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: redis: out of memory\n");
    abort();
}

static void on_check(uv_check_t *h);

static void event_due(sl_redis_sink *k)
{
    if (!k->event_due && !k->closed) {
        k->event_due = 1;
        uv_check_start(&k->check, on_check);
    }
}

/* Calls on_event(answered, errors|nil, lost_from|nil) with what changed. */
static void call_event(lua_State *L, sl_redis_sink *k)
{
    k->event_due = 0;
    if (L == NULL || k->closed || k->on_event == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, k->on_event);     /* fn */
    lua_pushnumber(L, k->answered);                     /* fn answered */
    if (k->nerrors > 0) {
        lua_createtable(L, k->nerrors, 0);              /* fn answered errors */
        for (int i = 0; i < k->nerrors; i++) {
            lua_createtable(L, 0, 2);
            lua_pushnumber(L, k->errors[i].seq);
            lua_setfield(L, -2, "seq");
            lua_pushstring(L, k->errors[i].why);
            lua_setfield(L, -2, "reason");
            lua_rawseti(L, -2, i + 1);
        }
        k->nerrors = 0;
    } else {
        lua_pushnil(L);
    }
    if (k->lost_from > 0)
        lua_pushnumber(L, k->lost_from);                /* fn answered errors lost */
    else
        lua_pushnil(L);
    k->lost_from = 0;
    sl_loop_call(L, 3);                                 /* -- */
}

static void on_check(uv_check_t *h)
{
    sl_redis_sink *k = h->data;
    uv_check_stop(h);
    call_event(sl_loop_lua(), k);
}

static void on_xadd(redisAsyncContext *ac, void *r, void *privdata)
{
    sl_redis_sink *k = ac->data;
    redisReply *reply = r;
    double seq;

    k->unanswered_bytes -= (double)(uintptr_t)privdata;     /* the command's length */
    sl_redis_conn_replied(&k->conn);
    seq = ++k->answered;
    if (reply == NULL) {
        if (k->lost_from == 0)
            k->lost_from = seq;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        if (k->nerrors == k->caperrors) {
            k->caperrors = k->caperrors ? 2 * k->caperrors : 16;
            k->errors = realloc(k->errors, (size_t)k->caperrors * sizeof *k->errors);
            if (k->errors == NULL)
                out_of_memory();
        }
        k->errors[k->nerrors].seq = seq;
        snprintf(k->errors[k->nerrors].why, SL_REDIS_WHY, "%s", reply->str);
        k->nerrors++;
    }
    event_due(k);
}

static void on_up(sl_redis_conn *c)
{
    sl_redis_conn_healthy(c);
    event_due((sl_redis_sink *)c);      /* what waits can go now */
}

/* ---- encoding a record --------------------------------------------------------------------- */

/* Appends the text of the value at idx as a field value: strings as they are, numbers as
 * the encoders write them, booleans as true/false, a table as JSON. Returns 0, or -1 with
 * why in err. */
static int value_text(lua_State *L, int idx, sl_buf *out, char *err)
{
    size_t len;
    const char *s;
    char num[32];
    int n;

    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        sl_buf_append(out, s, len);
        return 0;
    case LUA_TNUMBER:
        n = sl_codec_number(lua_tonumber(L, idx), num);
        if (n < 0) {
            snprintf(err, SL_CODEC_ERRLEN, "a number that is NaN or infinite");
            return -1;
        }
        sl_buf_append(out, num, (size_t)n);
        return 0;
    case LUA_TBOOLEAN:
        s = lua_toboolean(L, idx) ? "true" : "false";
        sl_buf_append(out, s, strlen(s));
        return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == SL_NULL) {
            sl_buf_append(out, "null", 4);
            return 0;
        }
        break;
    case LUA_TTABLE:
        return sl_json_encode(L, idx, out, err) == SL_CODEC_OK ? 0 : -1;
    default:
        break;
    }
    snprintf(err, SL_CODEC_ERRLEN, "a %s, not a string, number, boolean or table",
             luaL_typename(L, idx));
    return -1;
}

/* Appends n in decimal. */
static void put_count(sl_buf *b, size_t n)
{
    char digits[24];
    int i = sizeof digits;

    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    sl_buf_append(b, digits + i, sizeof digits - (size_t)i);
}

/* Appends one bulk string of the protocol: $len CRLF bytes CRLF. */
static void put_bulk(sl_buf *b, const char *s, size_t n)
{
    sl_buf_putc(b, '$');
    put_count(b, n);
    sl_buf_append(b, "\r\n", 2);
    sl_buf_append(b, s, n);
    sl_buf_append(b, "\r\n", 2);
}

/* Issues the XADD of the record at ri, written in the protocol here (the command's
 * fixed words once, in k->prefix): hiredis's formatting from an argv was a tenth of the
 * sink's time. Returns 0; -1 with why in err (nothing sent); 1 when the server is down. */
static int write_record(lua_State *L, sl_redis_sink *k, int ri, char *err)
{
    int nkeys, top = lua_gettop(L), ki, fields = 0;

    if (!lua_istable(L, ri)) {
        snprintf(err, SL_CODEC_ERRLEN, "a %s, not a table of fields", luaL_typename(L, ri));
        return -1;
    }
    sl_buf_reset(&k->args);
    nkeys = sl_codec_keys(L, ri);                       /* keys */
    ki = lua_gettop(L);
    for (int i = 1; i <= nkeys; i++) {
        size_t klen, vlen;
        const char *key, *v;
        lua_rawgeti(L, ki, i);                          /* keys key */
        lua_pushvalue(L, -1);
        lua_rawget(L, ri);                              /* keys key value */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 2);
            continue;
        }
        if (fields == ARGS_MAX) {
            snprintf(err, SL_CODEC_ERRLEN, "more than %d fields", ARGS_MAX);
            lua_settop(L, top);
            return -1;
        }
        key = lua_tolstring(L, -2, &klen);
        put_bulk(&k->args, key, klen);
        if (lua_type(L, -1) == LUA_TSTRING) {
            v = lua_tolstring(L, -1, &vlen);
            put_bulk(&k->args, v, vlen);
        } else {
            sl_buf_reset(&k->value);
            if (value_text(L, -1, &k->value, err) != 0) {
                char why[SL_CODEC_ERRLEN];
                snprintf(why, sizeof why, "field %.60s: %.90s", key, err);
                memcpy(err, why, SL_CODEC_ERRLEN);
                lua_settop(L, top);
                return -1;
            }
            put_bulk(&k->args, k->value.len > 0 ? k->value.data : "", k->value.len);
        }
        fields++;
        lua_pop(L, 2);                                  /* keys */
    }
    lua_settop(L, top);                                 /* -- */
    if (fields == 0) {
        snprintf(err, SL_CODEC_ERRLEN, "a table without fields (string keys)");
        return -1;
    }
    sl_buf_reset(&k->cmd);
    sl_buf_putc(&k->cmd, '*');
    put_count(&k->cmd, (size_t)(k->prefix_args + 2 * fields));
    sl_buf_append(&k->cmd, "\r\n", 2);
    sl_buf_append(&k->cmd, k->prefix.data, k->prefix.len);
    sl_buf_append(&k->cmd, k->args.data, k->args.len);
    if (sl_redis_conn_formatted(&k->conn, on_xadd, (void *)(uintptr_t)k->cmd.len, k->cmd.data,
                                k->cmd.len) != 0) {
        snprintf(err, SL_CODEC_ERRLEN, "down");
        return 1;
    }
    k->sent++;
    k->unanswered_bytes += (double)k->cmd.len;
    return 0;
}

/* ---- Lua methods --------------------------------------------------------------------------- */

static sl_redis_sink *check_sink(lua_State *L, const char *method)
{
    sl_redis_sink **ud = luaL_checkudata(L, 1, SL_REDIS_SINK_MT);

    if (*ud == NULL || (*ud)->closed)
        luaL_error(L, "redis sink:%s(): the sink is closed", method);
    return *ud;
}

/* sink:write(batch, n [, from]) -> bad|nil, stopped|nil: issues the XADD of each record
 * batch[from..n]; bad lists {index=, reason=} of records that cannot be entries (none
 * sent); stopped is the index of the first record not sent because the server is down
 * (it and the rest wait in Lua). */
static int sink_write(lua_State *L)
{
    sl_redis_sink *k = check_sink(L, "write");
    int n = (int)luaL_checkinteger(L, 3), from = (int)luaL_optinteger(L, 4, 1), nbad = 0;
    char err[SL_CODEC_ERRLEN];

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 4);
    lua_pushnil(L);                                     /* ... bad|nil (5) */
    for (int i = from; i <= n; i++) {
        int rc;
        lua_rawgeti(L, 2, i);                           /* ... bad rec */
        rc = write_record(L, k, lua_gettop(L), err);
        lua_pop(L, 1);                                  /* ... bad */
        if (rc > 0) {
            lua_pushinteger(L, i);                      /* ... bad stopped */
            return 2;
        }
        if (rc < 0) {
            if (nbad == 0) {
                lua_newtable(L);
                lua_replace(L, 5);
            }
            lua_createtable(L, 0, 2);
            lua_pushinteger(L, i);
            lua_setfield(L, -2, "index");
            lua_pushstring(L, err);
            lua_setfield(L, -2, "reason");
            lua_rawseti(L, 5, ++nbad);
        }
    }
    return 1;
}

/* sink:counts() -> sent, answered, up, bytes: XADDs issued, their callbacks run, connected,
 * the bytes of those not answered yet. */
static int sink_counts(lua_State *L)
{
    sl_redis_sink *k = check_sink(L, "counts");
    lua_pushnumber(L, k->sent);
    lua_pushnumber(L, k->answered);
    lua_pushboolean(L, k->conn.up);
    lua_pushnumber(L, k->unanswered_bytes);
    return 4;
}

/* sink:wait(ms) -> in flight: serves the connection here until every XADD issued has
 * its reply or ms pass, then runs on_event at once with what came. */
static int sink_wait(lua_State *L)
{
    sl_redis_sink *k = check_sink(L, "wait");
    int ms = (int)luaL_checkinteger(L, 2);

    sl_redis_conn_wait(&k->conn, ms);
    if (k->event_due) {
        uv_check_stop(&k->check);
        call_event(L, k);
    }
    lua_pushnumber(L, k->sent - k->answered);
    return 1;
}

static void on_conn_closed(sl_redis_conn *c)
{
    sl_redis_sink *k = (sl_redis_sink *)c;
    free(k->stream);
    free(k->errors);
    sl_buf_free(&k->prefix);
    sl_buf_free(&k->args);
    sl_buf_free(&k->value);
    sl_buf_free(&k->cmd);
    free(k);
}

static void on_check_closed(uv_handle_t *h)
{
    sl_redis_sink *k = h->data;
    sl_redis_conn_close(&k->conn);
}

/* sink:close(): the connection closes; replies still due are not waited for (wait()
 * first). Idempotent. */
static int sink_close(lua_State *L)
{
    sl_redis_sink **ud = luaL_checkudata(L, 1, SL_REDIS_SINK_MT);
    sl_redis_sink *k = *ud;

    if (k == NULL || k->closed)
        return 0;
    k->closed = 1;
    *ud = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, k->on_event);
    luaL_unref(L, LUA_REGISTRYINDEX, k->self_ref);
    k->on_event = k->self_ref = LUA_NOREF;
    uv_close((uv_handle_t *)&k->check, on_check_closed);
    return 0;
}

/* core.redis_sink{host, port, db, password, what, stream, maxlen, on_event(answered,
 * errors, lost_from)} -> sink, connecting at once. */
int sl_redis_sink_new(lua_State *L)
{
    sl_redis_sink *k, **ud;
    const char *stream;
    lua_Number maxlen;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "stream");
    stream = luaL_checkstring(L, -1);
    lua_getfield(L, 1, "maxlen");
    maxlen = luaL_optnumber(L, -1, 0);
    k = calloc(1, sizeof *k);
    if (k == NULL || (k->stream = strdup(stream)) == NULL)
        out_of_memory();
    lua_pop(L, 2);
    if (maxlen > 0)
        snprintf(k->maxlen, sizeof k->maxlen, "%.0f", maxlen);
    sl_buf_init(&k->prefix);
    sl_buf_init(&k->args);
    sl_buf_init(&k->value);
    sl_buf_init(&k->cmd);
    put_bulk(&k->prefix, "XADD", 4);
    put_bulk(&k->prefix, k->stream, strlen(k->stream));
    k->prefix_args = 3;
    if (k->maxlen[0]) {
        put_bulk(&k->prefix, "MAXLEN", 6);
        put_bulk(&k->prefix, "~", 1);
        put_bulk(&k->prefix, k->maxlen, strlen(k->maxlen));
        k->prefix_args += 3;
    }
    put_bulk(&k->prefix, "*", 1);
    lua_getfield(L, 1, "on_event");
    k->on_event = lua_isfunction(L, -1) ? luaL_ref(L, LUA_REGISTRYINDEX)
                                        : (lua_pop(L, 1), LUA_NOREF);
    uv_check_init(sl_loop_get(), &k->check);
    k->check.data = k;

    ud = lua_newuserdata(L, sizeof *ud);                /* ud */
    *ud = k;
    k->slot = ud;
    luaL_getmetatable(L, SL_REDIS_SINK_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    k->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);       /* ud */

    k->conn.owner = k;
    k->conn.on_up = on_up;
    k->conn.on_closed = on_conn_closed;
    sl_redis_conn_open(L, 1, &k->conn);
    return 1;
}

static int sink_gc(lua_State *L)
{
    return sink_close(L);
}

static const luaL_Reg sink_methods[] = {
    {"write", sink_write},
    {"counts", sink_counts},
    {"wait", sink_wait},
    {"close", sink_close},
    {NULL, NULL},
};

void sl_redis_sink_register(lua_State *L)
{
    luaL_newmetatable(L, SL_REDIS_SINK_MT);             /* mt */
    lua_newtable(L);                                    /* mt methods */
    luaL_register(L, NULL, sink_methods);
    lua_setfield(L, -2, "__index");                     /* mt */
    lua_pushcfunction(L, sink_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);                                      /* -- */
}
