/* json_shape.c -- a JSON writer's memory of the keys of the plain tables it writes, so
 * that a table like the last one is written without gathering, sorting or escaping its
 * keys (json_shape.h says when that holds). */
#include "json_shape.h"
#include "codec.h"
#include "codec_shared.h"

#include <lauxlib.h>
#include <string.h>

/* The bytes before a value ({"key": or ,"key":) are copied PREFIX_COPY at a time when they
 * are no more, which the prefix buffer and the output's room allow for. */
#define PREFIX_COPY 16

void sl_json_shape_init(sl_json_shape *sh)
{
    memset(sh, 0, sizeof *sh);
    sl_buf_init(&sh->prefix);
    sh->keys_ref = LUA_NOREF;
}

void sl_json_shape_free(lua_State *L, sl_json_shape *sh)
{
    luaL_unref(L, LUA_REGISTRYINDEX, sh->keys_ref);
    sl_buf_free(&sh->prefix);
    sh->keys_ref = LUA_NOREF;
    sh->n = 0;
}

/* Walks the table at t against the shape: with no metatable (a shape metatable orders
 * keys its own way), lua_next must give the remembered strings in order and then end.
 * A key is known by its string object (lua_topointer gives LuaJIT's GCstr, the same for
 * equal strings while one is alive, and NULL for a number or boolean key). On success the
 * n values are on the stack, the i-th at top + 2 * i + 1 (a copy of its key above each,
 * which lua_next went on from); on failure the stack is left dirty above top (the caller
 * restores it). */
static int walk(lua_State *L, const sl_json_shape *sh, int t)
{
    if (lua_getmetatable(L, t))                         /* mt */
        return 0;
    lua_pushnil(L);                                     /* nil */
    for (int i = 0; i < sh->n; i++) {
        if (!lua_next(L, t))                            /* (v k)... [k v] */
            return 0;
        if (lua_topointer(L, -2) != sh->key[i])
            return 0;
        lua_pushvalue(L, -2);                           /* (v k)... k v k */
    }
    return lua_next(L, t) == 0;                         /* (v k)... */
}

/* Appends the value at vi: numbers and strings here, anything else as sl_json_encode
 * writes it. */
static int put_value(lua_State *L, int vi, sl_buf *out, char *err)
{
    switch (lua_type(L, vi)) {
    case LUA_TNUMBER: {
        int n = sl_codec_number(lua_tonumber(L, vi), room(out, 32));
        if (n < 0)
            return fail(err, "json: cannot encode NaN/inf");
        out->len += (size_t)n;
        return SL_CODEC_OK;
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, vi, &len);
        put_string(out, s, len);
        return SL_CODEC_OK;
    }
    default:
        return sl_json_encode(L, vi, out, err);
    }
}

/* Whether key a goes before key b: bytewise, a prefix first (codec_keys.c's order for
 * string keys). */
static int key_before(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c < 0 || (c == 0 && alen < blen);
}

/* Remembers the keys of the table at t (written by sl_json_encode just now), if it has
 * no metatable and 1 to SL_JSON_SHAPE_KEYS keys, all strings, and returns 1; otherwise
 * keeps what it had and returns 0. Stack unchanged. */
static int learn(lua_State *L, sl_json_shape *sh, int t)
{
    const char *key[SL_JSON_SHAPE_KEYS];
    const void *id[SL_JSON_SHAPE_KEYS];
    size_t len[SL_JSON_SHAPE_KEYS];
    int n = 0, top = lua_gettop(L);

    if (lua_getmetatable(L, t)) {                       /* mt */
        lua_settop(L, top);
        return 0;
    }
    lua_pushnil(L);                                     /* nil */
    while (lua_next(L, t)) {                            /* k v */
        if (n == SL_JSON_SHAPE_KEYS || lua_type(L, -2) != LUA_TSTRING) {
            lua_settop(L, top);
            return 0;
        }
        key[n] = lua_tolstring(L, -2, &len[n]);
        id[n] = lua_topointer(L, -2);
        if (id[n] == NULL) {            /* (LuaJIT gives every string's; see walk) */
            lua_settop(L, top);
            return 0;
        }
        n++;
        lua_pop(L, 1);                                  /* k */
    }                                                   /* -- */
    if (n == 0)
        return 0;

    /* the key strings, anchored in a table of the writer's own */
    if (sh->keys_ref == LUA_NOREF) {
        lua_createtable(L, SL_JSON_SHAPE_KEYS, 0);      /* keys */
        sh->keys_ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* -- */
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, sh->keys_ref);    /* keys */
    for (int i = 0; i < SL_JSON_SHAPE_KEYS; i++) {
        if (i < n)
            lua_pushlstring(L, key[i], len[i]);         /* keys k (the same string) */
        else
            lua_pushnil(L);                             /* keys nil */
        lua_rawseti(L, -2, i + 1);                      /* keys */
    }
    lua_pop(L, 1);                                      /* -- */

    /* the order they are written in, and the bytes before each value */
    uint8_t order[SL_JSON_SHAPE_KEYS];
    for (int i = 0; i < n; i++) {
        int j = i;
        for (; j > 0 && key_before(key[i], len[i], key[order[j - 1]], len[order[j - 1]]); j--)
            order[j] = order[j - 1];
        order[j] = (uint8_t)i;
    }
    sl_buf_reset(&sh->prefix);
    for (int j = 0; j < n; j++) {
        sh->at[j] = (uint32_t)sh->prefix.len;
        sl_buf_putc(&sh->prefix, j == 0 ? '{' : ',');
        put_string(&sh->prefix, key[order[j]], len[order[j]]);
        sl_buf_putc(&sh->prefix, ':');
    }
    sh->at[n] = (uint32_t)sh->prefix.len;
    sl_buf_reserve(&sh->prefix, PREFIX_COPY);          /* the last one is copied so too */
    memcpy(sh->key, id, (size_t)n * sizeof *id);
    memcpy(sh->order, order, (size_t)n);
    sh->n = n;
    sh->hits = 0;
    return 1;
}

/* A table did not fit the shape and was written the general way: learns its keys, unless
 * tables keep not fitting (two map functions feeding one sink, records with metatables
 * or many keys): each time a shape served fewer than 16 tables before it was replaced, or
 * a table could not be learnt, learning waits for twice as many misses as before (up to
 * 1024), so that a mix of shapes costs little more than no memory at all. */
static void learn_or_wait(lua_State *L, sl_json_shape *sh, int t)
{
    if (++sh->misses <= sh->patience)
        return;
    sh->misses = 0;
    int served = sh->n == 0 || sh->hits >= 16;          /* the shape it replaces */
    if (learn(L, sh, t) && served)
        sh->patience = 0;
    else
        sh->patience = sh->patience < 512 ? sh->patience * 2 + 1 : 1024;
}

int sl_json_shape_encode(lua_State *L, sl_json_shape *sh, int idx, sl_buf *out, char *err)
{
    int top = lua_gettop(L), rc;

    idx = absolute_index(L, idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        return sl_json_encode(L, idx, out, err);
    if (sh->n > 0 && walk(L, sh, idx)) {
        size_t mark = out->len;
        const char *p = sh->prefix.data;

        sh->hits++;
        rc = SL_CODEC_OK;
        for (int j = 0; j < sh->n && rc == SL_CODEC_OK; j++) {
            size_t plen = sh->at[j + 1] - sh->at[j];
            if (plen <= PREFIX_COPY)        /* a copy of a fixed size: a few moves */
                memcpy(room(out, PREFIX_COPY), p + sh->at[j], PREFIX_COPY);
            else
                memcpy(room(out, plen), p + sh->at[j], plen);
            out->len += plen;
            rc = put_value(L, top + 2 + 2 * sh->order[j], out, err);
        }
        lua_settop(L, top);
        if (rc != SL_CODEC_OK) {
            out->len = mark;        /* no partial output */
            return rc;
        }
        *room(out, 1) = '}';
        out->len++;
        return SL_CODEC_OK;
    }
    lua_settop(L, top);
    rc = sl_json_encode(L, idx, out, err);
    if (rc == SL_CODEC_OK)
        learn_or_wait(L, sh, idx);
    return rc;
}
