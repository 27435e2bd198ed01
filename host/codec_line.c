/* codec_line.c -- the `lines` output format: one Lua value as one line of text, for the
 * file and stdout sinks (writer.c, which adds the newline) and Kafka messages.
 */
#include <stdio.h>
#include <lauxlib.h>

#include "codec.h"

/* See codec.h. */
int sl_line_encode(lua_State *L, int idx, sl_buf *out, char *err)
{
    char num[32];
    int k;

    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        sl_buf_append(out, s, len);
        break;
    }
    case LUA_TNUMBER:
        k = sl_codec_number(lua_tonumber(L, idx), num);
        if (k < 0) {
            snprintf(err, SL_CODEC_ERRLEN, "lines: cannot write nan or infinity");
            return SL_CODEC_BAD;
        }
        sl_buf_append(out, num, (size_t)k);
        break;
    case LUA_TBOOLEAN:
        sl_buf_append(out, lua_toboolean(L, idx) ? "true" : "false",
                      lua_toboolean(L, idx) ? 4 : 5);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) != SL_NULL)
            goto unwritable;
        sl_buf_append(out, "null", 4);
        break;
    case LUA_TTABLE:
        if (luaL_getmetafield(L, idx, "__tostring")) {  /* tostring */
            size_t len;
            const char *s;
            lua_pushvalue(L, idx);                      /* tostring rec */
            if (lua_pcall(L, 1, 1, 0) != 0) {           /* str|msg */
                snprintf(err, SL_CODEC_ERRLEN, "lines: __tostring failed: %s",
                         lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
                lua_pop(L, 1);                          /* -- */
                return SL_CODEC_BAD;
            }
            s = lua_tolstring(L, -1, &len);
            if (lua_type(L, -1) != LUA_TSTRING) {
                snprintf(err, SL_CODEC_ERRLEN, "lines: __tostring returned a %s",
                         luaL_typename(L, -1));
                lua_pop(L, 1);                          /* -- */
                return SL_CODEC_BAD;
            }
            sl_buf_append(out, s, len);
            lua_pop(L, 1);                              /* -- */
            break;
        }
        if (sl_json_encode(L, idx, out, err) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        break;
    default:
    unwritable:
        snprintf(err, SL_CODEC_ERRLEN, "lines: cannot write a %s value", luaL_typename(L, idx));
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}

