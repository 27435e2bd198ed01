/* codec_json.c -- JSON (RFC 8259) between bytes and Lua values.
 *
 * A hand-written recursive-descent decoder that builds Lua tables directly, and an
 * encoder that walks a Lua value into an sl_buf. Conventions are in codec.h; byte
 * offsets in error messages count from 0 at the start of the record. */
#include "codec.h"
#include "codec_shared.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Decoder ----------------------------------------------------------------------- */

/* Records in a stream mostly share one shape, so each object or array is created with
 * room for as many entries as the last one decoded at the same depth had: the table
 * then never rehashes while it fills (a table grown one key at a time rehashes at 1, 2,
 * 4, 8... keys). Capped, so that one huge record does not oversize all later ones.
 * Thread-local so that no two threads share it; being only a hint, it needs no more. */
#define HINT_CAP 64
static _Thread_local unsigned char obj_hint[SL_CODEC_MAX_DEPTH + 1];
static _Thread_local unsigned char arr_hint[SL_CODEC_MAX_DEPTH + 1];

static inline void remember(unsigned char *hint, int depth, int n)
{
    hint[depth] = (unsigned char)(n < HINT_CAP ? n : HINT_CAP);
}

typedef struct dec {
    lua_State *L;
    const char *s;      /* start of the record, for error offsets */
    const char *p;      /* next byte to read */
    const char *end;    /* one past the last byte; never read */
    char *err;
    int depth;
    int escaped;        /* the last string read held escapes (parse_escaped sets it) */
    sl_shapes *sh;      /* where objects get their shapes (key order) */
} dec;

static size_t offset(const dec *d, const char *p)
{
    return (size_t)(p - d->s);
}

static int unexpected(dec *d)
{
    return json_unexpected(d->err, d->s, d->p, d->end);
}

static inline void skip_ws(dec *d)
{
    const char *p = d->p, *end = d->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    d->p = p;
}

/* Whether the next byte is c; if so, steps past it. */
static inline int next_is(dec *d, char c)
{
    if (d->p < d->end && *d->p == c) {
        d->p++;
        return 1;
    }
    return 0;
}

/* Reads a number with the JSON grammar (json_number_scan, codec_shared.h); its digits
 * become the correctly rounded double in decimal_value(). */
static int parse_number(dec *d, double *out)
{
    const char *start = d->p;
    json_number n;
    int bad = json_number_scan(start, d->end, &n);
    d->p = n.stop;
    if (bad)
        return unexpected(d);
    if (decimal_value(start, (size_t)(n.stop - start), n.neg, n.mant, n.ndig, n.exp10, out) != 0)
        return fail(d->err, "json: out of memory reading a number at byte %zu", offset(d, start));
    if (isinf(*out))
        return fail(d->err, "json: number out of range at byte %zu", offset(d, start));
    return SL_CODEC_OK;
}

/* The string holds escapes: unescape into a luaL_Buffer (no malloc; it spills onto the
 * Lua stack when long). d->p is at the first backslash, start at the first content byte.
 * Kept out of line so its large buffer is not part of every recursive frame. */
static __attribute__((noinline)) int parse_escaped(dec *d, const char *start)
{
    lua_State *L = d->L;
    const char *p = d->p, *end = d->end;
    luaL_Buffer b;
    d->escaped = 1;
    if (!lua_checkstack(L, LUA_MINSTACK))
        return fail(d->err, "json: nested too deep at byte %zu", offset(d, p));
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, start, (size_t)(p - start));
    for (;;) {
        const char *run = p;
        while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            p++;
        if (p > run)
            luaL_addlstring(&b, run, (size_t)(p - run));
        if (p >= end) {
            d->p = p;
            return fail(d->err, "json: unterminated string at byte %zu", offset(d, start - 1));
        }
        if (*p == '"')
            break;
        if ((unsigned char)*p < 0x20) {
            d->p = p;
            return fail(d->err, "json: control character in string at byte %zu", offset(d, p));
        }
        /* A backslash. */
        const char *esc = p++;
        if (p >= end) {
            d->p = p;
            return fail(d->err, "json: unterminated string at byte %zu", offset(d, start - 1));
        }
        char c = *p++;
        switch (c) {
        case '"': luaL_addchar(&b, '"'); break;
        case '\\': luaL_addchar(&b, '\\'); break;
        case '/': luaL_addchar(&b, '/'); break;
        case 'b': luaL_addchar(&b, '\b'); break;
        case 'f': luaL_addchar(&b, '\f'); break;
        case 'n': luaL_addchar(&b, '\n'); break;
        case 'r': luaL_addchar(&b, '\r'); break;
        case 't': luaL_addchar(&b, '\t'); break;
        case 'u': {
            unsigned cp;
            if (json_u_escape(&p, end, &cp) != 0)
                return fail(d->err, "json: %s at byte %zu", json_u_escape_error(p, end),
                            offset(d, esc));
            char u[4];
            luaL_addlstring(&b, u, (size_t)put_utf8(u, cp));
            break;
        }
        default:
            return fail(d->err, "json: bad escape '\\%c' at byte %zu",
                        (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f ? c : '?',
                        offset(d, esc));
        }
    }
    d->p = p + 1;
    luaL_pushresult(&b);
    return SL_CODEC_OK;
}

/* Pushes the string whose opening quote is at d->p. Strings without escapes (nearly all
 * of them) are pushed straight from the input. Bytes >= 0x80 pass through unchecked. */
static int parse_string(dec *d)
{
    const char *start = d->p + 1, *p = start, *end = d->end;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            lua_pushlstring(d->L, start, (size_t)(p - start));
            d->p = p + 1;
            return SL_CODEC_OK;
        }
        if (c == '\\') {
            d->p = p;
            return parse_escaped(d, start);
        }
        if (c < 0x20) {
            d->p = p;
            return fail(d->err, "json: control character in string at byte %zu", offset(d, p));
        }
        p++;
    }
    d->p = p;
    return fail(d->err, "json: unterminated string at byte %zu", offset(d, start - 1));
}

static int parse_value(dec *d);

static int enter(dec *d)
{
    if (++d->depth > SL_CODEC_MAX_DEPTH || !lua_checkstack(d->L, 4))
        return fail(d->err, "json: nested too deep at byte %zu", offset(d, d->p));
    d->p++;     /* past the [ or { */
    return SL_CODEC_OK;
}

/* Pushes the object at d->p, with the shape of its keys: stack +1 (on BAD the caller
 * restores the stack). */
static int parse_object(dec *d)
{
    lua_State *L = d->L;
    if (enter(d) != SL_CODEC_OK)
        return SL_CODEC_BAD;
    int n = 0, node = 0;
    lua_createtable(L, 0, obj_hint[d->depth]);
    int t = lua_gettop(L);
    skip_ws(d);
    if (!next_is(d, '}')) {
        for (;;) {
            skip_ws(d);
            if (d->p >= d->end || *d->p != '"')
                return unexpected(d);
            /* The key, and the shape of the keys so far: by its bytes in the input, or
             * by the string's own when it held escapes. */
            const char *key = d->p + 1;
            size_t klen;
            d->escaped = 0;
            if (parse_string(d) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            if (d->escaped)
                key = lua_tolstring(L, -1, &klen);
            else
                klen = (size_t)(d->p - 1 - key);
            node = n < SL_SHAPE_MAX_KEYS ? shape_step(L, d->sh, node, key, klen, -1) : -1;
            skip_ws(d);
            if (!next_is(d, ':'))
                return unexpected(d);
            if (parse_value(d) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            lua_rawset(L, t);       /* of duplicate keys, the last wins */
            n++;
            skip_ws(d);
            if (next_is(d, ','))
                continue;
            if (next_is(d, '}'))
                break;
            return unexpected(d);
        }
    }
    sl_shape_set(L, d->sh, node, t);
    remember(obj_hint, d->depth, n);
    d->depth--;
    return SL_CODEC_OK;
}

/* Pushes the array at d->p: stack +1 (on BAD the caller restores the stack). */
static int parse_array(dec *d)
{
    lua_State *L = d->L;
    if (enter(d) != SL_CODEC_OK)
        return SL_CODEC_BAD;
    int n = 0;
    lua_createtable(L, arr_hint[d->depth], 0);
    int t = lua_gettop(L);
    skip_ws(d);
    if (!next_is(d, ']')) {
        for (;;) {
            if (parse_value(d) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            lua_rawseti(L, t, ++n);
            skip_ws(d);
            if (next_is(d, ','))
                continue;
            if (next_is(d, ']'))
                break;
            return unexpected(d);
        }
    }
    remember(arr_hint, d->depth, n);
    d->depth--;
    return SL_CODEC_OK;
}

static int parse_literal(dec *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return fail(d->err, "json: bad literal at byte %zu (expected %s)", offset(d, d->p), word);
    d->p += n;
    return SL_CODEC_OK;
}

/* Pushes the value at d->p (after white space): stack +1 on OK. */
static int parse_value(dec *d)
{
    skip_ws(d);
    if (d->p >= d->end)
        return unexpected(d);
    switch (*d->p) {
    case '{':
        return parse_object(d);
    case '[':
        return parse_array(d);
    case '"':
        return parse_string(d);
    case 't':
        if (parse_literal(d, "true", 4) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        lua_pushboolean(d->L, 1);
        return SL_CODEC_OK;
    case 'f':
        if (parse_literal(d, "false", 5) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        lua_pushboolean(d->L, 0);
        return SL_CODEC_OK;
    case 'n':
        if (parse_literal(d, "null", 4) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        lua_pushlightuserdata(d->L, SL_NULL);
        return SL_CODEC_OK;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': {
        double v = 0;
        if (parse_number(d, &v) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        lua_pushnumber(d->L, v);
        return SL_CODEC_OK;
    }
    default:
        return unexpected(d);
    }
}

int sl_json_decode(lua_State *L, const char *s, size_t len, char *err)
{
    if (!s)
        s = "";     /* no pointer arithmetic on NULL */
    dec d = { L, s, s, s + len, err, 0, 0, NULL };
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 4)) {
        snprintf(err, SL_CODEC_ERRLEN, "json: out of Lua stack");
        return SL_CODEC_BAD;
    }
    d.sh = sl_shapes_get(L);
    if (parse_value(&d) != SL_CODEC_OK) {
        lua_settop(L, top);
        return SL_CODEC_BAD;
    }
    skip_ws(&d);
    if (d.p < d.end) {
        fail(d.err, "json: trailing characters at byte %zu", offset(&d, d.p));
        lua_settop(L, top);
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}

/* ---- Encoder ----------------------------------------------------------------------- */

typedef struct enc {
    lua_State *L;
    sl_buf *out;
    char *err;
} enc;

static inline void put(sl_buf *b, const char *p, size_t n)
{
    memcpy(room(b, n), p, n);
    b->len += n;
}

static int put_number(enc *e, double x)
{
    char *o = room(e->out, 32);
    int n = sl_codec_number(x, o);
    if (n < 0)
        return fail(e->err, "json: cannot encode NaN/inf");
    e->out->len += (size_t)n;
    return SL_CODEC_OK;
}

static int enc_value(enc *e, int idx, int depth);

static int enc_table(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    sl_buf *out = e->out;
    if (depth > SL_CODEC_MAX_DEPTH || !lua_checkstack(L, 4))
        return fail(e->err, "json: nested too deep (a cycle?)");
    /* A border of 0 means t[1] == nil, so the table cannot be an array. */
    size_t n = lua_objlen(L, idx);
    if (n > 0 && is_array(L, idx, n)) {
        *room(out, 1) = '[';
        out->len++;
        for (size_t i = 1; i <= n; i++) {
            if (i > 1) {
                *room(out, 1) = ',';
                out->len++;
            }
            lua_rawgeti(L, idx, (int)i);
            if (enc_value(e, lua_gettop(L), depth + 1) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            lua_pop(L, 1);
        }
        *room(out, 1) = ']';
        out->len++;
        return SL_CODEC_OK;
    }
    /* An object: its entries gathered, then written in order (codec_keys.c). */
    sl_object ob;
    int rc = SL_CODEC_OK, kt = 0;
    sl_object_begin(L, idx, &ob);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if ((kt = sl_object_add(L, &ob)) != 0)
            break;
    }
    if (kt != 0) {
        sl_object_end(L, &ob);
        return fail(e->err, "json: cannot encode a table key of type %s", lua_typename(L, kt));
    }
    sl_object_sort(&ob);
    *room(out, 1) = '{';
    out->len++;
    for (size_t i = 0; i < ob.n && rc == SL_CODEC_OK; i++) {
        const sl_entry *en = sl_object_entry(&ob, i);
        if (i > 0) {
            *room(out, 1) = ',';
            out->len++;
        }
        if (en->s != NULL) {
            put_string(out, en->s, en->len);
        } else {
            char num[32];
            int nn = sl_codec_number(en->num, num);
            if (nn < 0) {
                rc = fail(e->err, "json: cannot encode NaN/inf");
                break;
            }
            char *p = room(out, (size_t)nn + 2);
            p[0] = '"';
            memcpy(p + 1, num, (size_t)nn);
            p[nn + 1] = '"';
            out->len += (size_t)nn + 2;
        }
        *room(out, 1) = ':';
        out->len++;
        int vi = sl_object_value(L, &ob, en);
        rc = enc_value(e, vi, depth + 1);
        if (en->slot == 0)
            lua_settop(L, vi - 1);
    }
    sl_object_end(L, &ob);
    if (rc != SL_CODEC_OK)
        return rc;
    *room(out, 1) = '}';
    out->len++;
    return SL_CODEC_OK;
}

/* Appends the value at the absolute index idx. May leave the stack above idx dirty on
 * BAD; sl_json_encode restores it. */
static int enc_value(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    int t = lua_type(L, idx);
    switch (t) {
    case LUA_TNIL:
        put(e->out, "null", 4);
        return SL_CODEC_OK;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(e->out, "true", 4);
        else
            put(e->out, "false", 5);
        return SL_CODEC_OK;
    case LUA_TNUMBER:
        return put_number(e, lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        put_string(e->out, s, len);
        return SL_CODEC_OK;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == SL_NULL) {
            put(e->out, "null", 4);
            return SL_CODEC_OK;
        }
        break;
    case LUA_TTABLE:
        return enc_table(e, idx, depth);
    default:
        break;
    }
    return fail(e->err, "json: cannot encode a %s", lua_typename(L, t));
}

int sl_json_encode(lua_State *L, int idx, sl_buf *out, char *err)
{
    int top = lua_gettop(L);
    idx = absolute_index(L, idx);
    size_t len0 = out->len;
    enc e = { L, out, err };
    if (enc_value(&e, idx, 1) != SL_CODEC_OK) {
        lua_settop(L, top);
        out->len = len0;    /* no partial output */
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}
