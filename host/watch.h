/* watch.h -- core.watch: calls a Lua function when files change, for `sluice run --watch`
 * (the contract is in sl_api.h).
 */
#ifndef SL_WATCH_H
#define SL_WATCH_H

#include <lua.h>

#define SL_WATCH_MT  "sluice.watch"     /* metatable of core.watch handles */

/* Creates the watch metatable. Stack unchanged. */
void sl_watch_register(lua_State *L);

/* core.watch{paths=, on_change=, debounce=} -> watcher. Started at once; unreferenced, so
 * it never keeps the loop alive by itself. */
int sl_watch_new(lua_State *L);

#endif
