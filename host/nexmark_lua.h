/* nexmark_lua.h -- core.nexmark: the Nexmark generator (nexmark.h) as a Lua object that
 * fills batches of events (the contract is in sl_api.h).
 */
#ifndef SL_NEXMARK_LUA_H
#define SL_NEXMARK_LUA_H

#include <lua.h>

/* Creates the generator metatable. Stack unchanged. */
void sl_nexmark_register(lua_State *L);

/* core.nexmark{...} -> generator. */
int sl_nexmark_lua_new(lua_State *L);

#endif
