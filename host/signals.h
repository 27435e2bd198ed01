/* signals.h -- core.signal: a Lua function called on a POSIX signal, from the loop
 * (the contract is in sl_api.h).
 */
#ifndef SL_SIGNALS_H
#define SL_SIGNALS_H

#include <lua.h>

#define SL_SIGNAL_MT  "sluice.signal"   /* metatable of signal handle userdata */

/* Creates the signal metatable. Stack unchanged. */
void sl_signal_register(lua_State *L);

/* core.signal(name, fn) -> handle. Started at once; unreferenced, so it never keeps
 * the loop alive by itself. */
int sl_signal_new(lua_State *L);

#endif
