/* typed_lua.c -- core.schema: a schema (typed.h) made from Lua, for sl.schema{...}
 * (lua/sluice/schema.lua), which makes the FFI views of its records.
 *
 * The userdata owns its sl_schema and keeps the userdata of its nested schemas (in its
 * environment table), which its fields point to. Sources take it as their `schema` option
 * (reader.c, framing.c), and hand Lua batches of records in its layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "codec.h"
#include "typed.h"
#include "typed_lua.h"

static sl_schema *check_schema_ud(lua_State *L, int idx)
{
    sl_schema **p = luaL_checkudata(L, idx, SL_SCHEMA_MT);

    return *p;
}

const sl_schema *sl_schema_check(lua_State *L, int idx)
{
    return check_schema_ud(L, idx);
}

const sl_schema *sl_schema_opt(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NULL : check_schema_ud(L, idx);
}

/* core.schema{{name=, type="i64"|"f64"|"bool"|"string"|"record", record=schema}, ...}
 * -> schema | raises with the reason (the caller, schema.lua, has checked the names and
 * types at the user's line, so this is a last line of defence). */
static int schema_new(lua_State *L)
{
    sl_schema_field fields[256];
    char err[SL_CODEC_ERRLEN];
    int i, n, t;
    sl_schema **ud;

    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)lua_objlen(L, 1);
    if (n > 254)
        return luaL_error(L, "schema: more than 254 fields");
    lua_settop(L, 1);
    lua_newtable(L);                                    /* list env */
    for (i = 0; i < n; i++) {
        const char *type;

        lua_rawgeti(L, 1, i + 1);                       /* list env f */
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_getfield(L, -1, "name");
        fields[i].name = luaL_checkstring(L, -1);       /* kept alive by list */
        lua_pop(L, 1);
        lua_getfield(L, -1, "type");
        type = luaL_checkstring(L, -1);
        lua_pop(L, 1);
        fields[i].type = 0;
        for (t = SL_TYPED_I64; t <= SL_TYPED_RECORD; t++)
            if (strcmp(type, sl_typed_type_names[t]) == 0)
                fields[i].type = t;
        fields[i].record = NULL;
        if (fields[i].type == SL_TYPED_RECORD) {
            lua_getfield(L, -1, "record");              /* list env f sub */
            fields[i].record = check_schema_ud(L, -1);
            lua_rawseti(L, 2, (int)lua_objlen(L, 2) + 1);   /* list env f */
        }
        lua_pop(L, 1);                                  /* list env */
    }
    ud = lua_newuserdata(L, sizeof *ud);                /* list env ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_SCHEMA_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, 2);
    lua_setfenv(L, -2);                                 /* list env ud */
    *ud = sl_schema_new(fields, n, err);
    if (*ud == NULL)
        return luaL_error(L, "%s", err);
    return 1;
}

/* schema:fields() -> {{name=, type=, slot=}, ...} in the schema's order (slots from the
 * record's header, 0). */
static int schema_fields(lua_State *L)
{
    const sl_schema *s = check_schema_ud(L, 1);
    int i;

    lua_createtable(L, s->nfields, 0);
    for (i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];

        lua_createtable(L, 0, 3);
        lua_pushlstring(L, f->name, f->namelen);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, sl_typed_type_names[f->type]);
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, f->slot);
        lua_setfield(L, -2, "slot");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* schema:nslots() -> the slots of one record */
static int schema_nslots(lua_State *L)
{
    lua_pushinteger(L, check_schema_ud(L, 1)->nslots);
    return 1;
}

/* schema:pointer() -> the sl_schema, as a light userdata (what a header's v.schema is) */
static int schema_pointer(lua_State *L)
{
    lua_pushlightuserdata(L, check_schema_ud(L, 1));
    return 1;
}

static int schema_gc(lua_State *L)
{
    sl_schema **p = luaL_checkudata(L, 1, SL_SCHEMA_MT);

    sl_schema_free(*p);
    *p = NULL;
    return 0;
}

int *sl_schema_columns(lua_State *L, int idx, const sl_schema *s, int *n)
{
    int c, count = (int)lua_objlen(L, idx);
    int *field = malloc((size_t)(count > 0 ? count : 1) * sizeof *field);

    if (field == NULL) {
        fprintf(stderr, "sluice: schema columns: out of memory\n");
        abort();
    }
    for (c = 0; c < count; c++) {
        const sl_schema_field *f = NULL;
        const char *name;
        size_t len;

        lua_rawgeti(L, idx, c + 1);                     /* name */
        name = lua_tolstring(L, -1, &len);
        if (name != NULL)
            f = sl_schema_find(s, name, len);
        field[c] = f != NULL ? (int)(f - s->fields) : -1;
        lua_pop(L, 1);                                  /* -- */
    }
    *n = count;
    return field;
}

void sl_schema_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"fields", schema_fields},
        {"nslots", schema_nslots},
        {"pointer", schema_pointer},
        {NULL, NULL},
    };

    luaL_newmetatable(L, SL_SCHEMA_MT);
    lua_newtable(L);
    luaL_register(L, NULL, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, schema_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

int sl_schema_lua_new(lua_State *L)
{
    return schema_new(L);
}

/* LuaJIT's type number of cdata (lj_obj.h), which lua_type returns for them. */
#define SL_LUA_TCDATA 10

int sl_holds_cdata(lua_State *L, int idx, int depth)
{
    int t = lua_type(L, idx), found = 0;

    if (t == SL_LUA_TCDATA)
        return 1;
    if (t != LUA_TTABLE || depth > 8 || !lua_checkstack(L, 3))
        return 0;
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    lua_pushnil(L);                                     /* nil */
    while (!found && lua_next(L, idx)) {                /* k v */
        found = sl_holds_cdata(L, -1, depth + 1);
        lua_pop(L, 1);                                  /* k */
    }
    if (found)
        lua_pop(L, 1);                                  /* -- */
    return found;
}

/* core.holds_cdata(v) -> whether v is a cdata or a table holding one (typed.lua asks
 * before walking a table in Lua: that walk is never compiled, this one is C). */
int sl_holds_cdata_lua(lua_State *L)
{
    lua_pushboolean(L, sl_holds_cdata(L, 1, 0));
    return 1;
}
