/* codec_csv.c -- CSV (RFC 4180, comma separated) framing, decoding and encoding.
 *
 * A quote opens a quoted field only at the start of a field; elsewhere it is an ordinary
 * byte, so a stray quote cannot swallow the rest of the input. Byte offsets in error
 * messages count from 0 at the start of the record. */
#include "codec.h"
#include "codec_shared.h"
#include "csv_cell.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Framing ----------------------------------------------------------------------- */

static void end_record(const char *s, size_t nl, size_t *rec_len)
{
    *rec_len = nl > 0 && s[nl - 1] == '\r' ? nl - 1 : nl;
}

/* An empty buffer holds no record, even at end of input: that is MORE, not an empty
 * record. A lone CR before the line end (or before the end of input) is stripped. */
int sl_csv_frame(const char *s, size_t len, int eof, size_t *rec_len, size_t *used)
{
    *rec_len = *used = 0;
    if (len == 0)
        return SL_CODEC_MORE;
    /* The usual case: no quote before the first newline, so that newline ends it. */
    const char *nlp = memchr(s, '\n', len);
    size_t upto = nlp ? (size_t)(nlp - s) : len;
    if (!memchr(s, '"', upto)) {
        if (nlp) {
            end_record(s, upto, rec_len);
            *used = upto + 1;
            return SL_CODEC_OK;
        }
    } else {
        /* Track quoting field by field. A quote inside a quoted field either doubles
         * (an escaped quote) or closes it; when the buffer ends right after it, the
         * record cannot be complete anyway. */
        int in_quotes = 0, field_start = 1;
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            if (in_quotes) {
                if (c == '"') {
                    if (i + 1 < len && s[i + 1] == '"')
                        i++;
                    else
                        in_quotes = 0;
                }
            } else if (c == '\n') {
                end_record(s, i, rec_len);
                *used = i + 1;
                return SL_CODEC_OK;
            } else if (c == ',') {
                field_start = 1;
                continue;
            } else if (c == '"' && field_start) {
                in_quotes = 1;
            }
            field_start = 0;
        }
    }
    if (!eof)
        return SL_CODEC_MORE;
    end_record(s, len, rec_len);
    *used = len;
    return SL_CODEC_OK;
}

/* ---- Decoding ---------------------------------------------------------------------- */

/* The slow half of push_quoted, for content with doubled quotes: unescapes through a
 * luaL_Buffer (no malloc). Kept out of line so its buffer is not in every call's frame.
 * Returns the index just past the closing quote, or 0 when there is none. */
static __attribute__((noinline)) size_t push_unescaped(lua_State *L, const char *s,
                                                       size_t len, size_t i)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (;;) {
        const char *q = memchr(s + i, '"', len - i);
        if (!q)
            return 0;
        size_t qi = (size_t)(q - s);
        luaL_addlstring(&b, s + i, qi - i);
        if (qi + 1 < len && s[qi + 1] == '"') {
            luaL_addchar(&b, '"');
            i = qi + 2;
        } else {
            luaL_pushresult(&b);
            return qi + 1;
        }
    }
}

/* Pushes the quoted field whose opening quote is at s[pos] and sets *fend to the index
 * just past its closing quote, which must be followed by a comma or the end. May leave
 * junk on the stack on BAD; the caller restores it. */
static int push_quoted(lua_State *L, const char *s, size_t len, size_t pos, size_t *fend,
                       char *err)
{
    size_t i = pos + 1;
    const char *q = memchr(s + i, '"', len - i);
    if (q && !((size_t)(q - s) + 1 < len && q[1] == '"')) {
        /* No doubled quotes: the content is one slice of the input. */
        lua_pushlstring(L, s + i, (size_t)(q - s) - i);
        i = (size_t)(q - s) + 1;
    } else if (!q || !(i = push_unescaped(L, s, len, i))) {
        return fail(err, "csv: unterminated quoted field at byte %zu", pos);
    }
    if (i < len && s[i] != ',')
        return fail(err, "csv: unexpected character after closing quote at byte %zu", i);
    *fend = i;
    return SL_CODEC_OK;
}

int sl_csv_decode(lua_State *L, const char *s, size_t len, int keys_idx, char *err)
{
    int top = lua_gettop(L);
    keys_idx = absolute_index(L, keys_idx);
    if (!s)
        s = "";     /* an empty record from a caller with no buffer */
    if (!lua_checkstack(L, LUA_MINSTACK))
        return fail(err, "csv: out of Lua stack");
    int nkeys = 0;
    if (keys_idx) {
        nkeys = (int)lua_objlen(L, keys_idx);
        lua_createtable(L, 0, nkeys);
    } else {
        /* Commas bound the field count (quoted commas only make the hint generous). */
        int hint = 1;
        for (const char *c = s; (c = memchr(c, ',', len - (size_t)(c - s))); c++)
            hint++;
        lua_createtable(L, hint, 0);
    }
    int t = top + 1;
    size_t pos = 0;
    int field = 0;
    for (;;) {
        size_t fend = len;
        field++;
        if (pos < len && s[pos] == '"') {
            if (push_quoted(L, s, len, pos, &fend, err) != SL_CODEC_OK) {
                lua_settop(L, top);
                return SL_CODEC_BAD;
            }
        } else {
            const char *c = memchr(s + pos, ',', len - pos);
            fend = c ? (size_t)(c - s) : len;
            size_t n = fend - pos;
            double v;
            if (n == 0) {
                if (keys_idx)
                    goto next;          /* absent, not "" */
                lua_pushlstring(L, "", 0);
            } else if (csv_number(s + pos, n, &v)) {
                lua_pushnumber(L, v);
            } else {
                lua_pushlstring(L, s + pos, n);
            }
        }
        /* Stack: t, value. */
        if (!keys_idx) {
            lua_rawseti(L, t, field);
        } else if (field > nkeys) {
            lua_pop(L, 1);              /* counted, reported below */
        } else {
            lua_rawgeti(L, keys_idx, field);
            if (lua_isnil(L, -1)) {
                lua_settop(L, top);
                return fail(err, "csv: column %d has no name", field);
            }
            lua_insert(L, -2);
            lua_rawset(L, t);
        }
    next:
        if (fend >= len)
            break;
        pos = fend + 1;     /* past the comma; a trailing comma makes one more field */
    }
    if (keys_idx && field != nkeys) {
        lua_settop(L, top);
        return fail(err, "csv: record has %d fields, header has %d", field, nkeys);
    }
    if (keys_idx)
        sl_shape_set_names(L, sl_shapes_get(L), keys_idx, t);  /* the header's order */
    return SL_CODEC_OK;
}

/* ---- Encoding ---------------------------------------------------------------------- */

/* Appends the field at the absolute index idx. */
static int put_field(lua_State *L, int idx, sl_buf *out, char *err)
{
    int t = lua_type(L, idx);
    switch (t) {
    case LUA_TNIL:
        return SL_CODEC_OK;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            sl_buf_append(out, "true", 4);
        else
            sl_buf_append(out, "false", 5);
        return SL_CODEC_OK;
    case LUA_TNUMBER: {
        int n = sl_codec_number(lua_tonumber(L, idx), room(out, 32));
        if (n < 0)
            return fail(err, "csv: cannot encode NaN/inf");
        out->len += (size_t)n;
        return SL_CODEC_OK;
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        csv_put_text(out, s, len);
        return SL_CODEC_OK;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == SL_NULL)
            return SL_CODEC_OK;
        break;
    case LUA_TTABLE: {
        size_t from = out->len;
        if (sl_json_encode(L, idx, out, err) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        csv_quote_tail(out, from);
        return SL_CODEC_OK;
    }
    default:
        break;
    }
    return fail(err, "csv: cannot encode a %s", lua_typename(L, t));
}

int sl_csv_encode(lua_State *L, int idx, int keys_idx, sl_buf *out, char *err)
{
    int top = lua_gettop(L);
    idx = absolute_index(L, idx);
    keys_idx = absolute_index(L, keys_idx);
    if (lua_type(L, idx) != LUA_TTABLE)
        return fail(err, "csv: cannot encode a %s as a record", luaL_typename(L, idx));
    if (!lua_checkstack(L, 4))
        return fail(err, "csv: out of Lua stack");
    size_t len0 = out->len;
    int n = (int)lua_objlen(L, keys_idx ? keys_idx : idx);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            sl_buf_putc(out, ',');
        if (keys_idx) {
            lua_rawgeti(L, keys_idx, i);
            if (lua_isnil(L, -1)) {
                lua_settop(L, top);
                out->len = len0;
                return fail(err, "csv: column %d has no name", i);
            }
            lua_rawget(L, idx);
        } else {
            lua_rawgeti(L, idx, i);
        }
        int rc = put_field(L, lua_gettop(L), out, err);
        lua_settop(L, top);
        if (rc != SL_CODEC_OK) {
            out->len = len0;
            return SL_CODEC_BAD;
        }
    }
    sl_buf_putc(out, '\n');
    return SL_CODEC_OK;
}
