/* typed_lua.h -- core.schema (typed_lua.c): schemas of typed records made from Lua, and
 * how other host modules take one as an option. */
#ifndef SL_TYPED_LUA_H
#define SL_TYPED_LUA_H

#include <lua.h>
#include "typed.h"

#define SL_SCHEMA_MT "sluice.schema"   /* metatable of schema userdata */

/* Creates the schema metatable. Stack unchanged. */
void sl_schema_register(lua_State *L);

/* core.schema{...} -> schema (see typed_lua.c). */
int sl_schema_lua_new(lua_State *L);

/* The field of s each name of the array at idx names: a new array of lua_objlen(idx)
 * indexes into s->fields (-1: no such field, or neither a string nor a number), its length in *n; the
 * caller frees it. The columns of a csv record of s. Out of memory aborts. Stack
 * unchanged. */
int *sl_schema_columns(lua_State *L, int idx, const sl_schema *s, int *n);

/* The schema at idx (raises when it is none), or NULL when idx holds nil. The userdata
 * must be kept referenced for as long as the schema is used. */
const sl_schema *sl_schema_check(lua_State *L, int idx);
const sl_schema *sl_schema_opt(lua_State *L, int idx);

/* Whether the value at idx is a cdata (a typed record), or a table holding one among its
 * values, 8 tables deep (as typed.lua's plain_fields looks); depth: 0. Stack unchanged. */
int sl_holds_cdata(lua_State *L, int idx, int depth);

/* core.holds_cdata(v) -> boolean (see typed_lua.c). */
int sl_holds_cdata_lua(lua_State *L);

#endif
