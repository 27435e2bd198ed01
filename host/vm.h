/* vm.h -- the LuaJIT state: created with the sluice library on its path and
 * "sluice.core" preloaded, protected calls that add a traceback, and closing.
 */
#ifndef SL_VM_H
#define SL_VM_H

#include <lua.h>
#include <lauxlib.h>

#define SL_VM_LIBDIR_KEY "sluice.libdir"   /* registry field: the Lua library dir */

/* Creates a state with the standard libraries, package.preload["sluice.core"], and
 * "<libdir>/?.lua;<libdir>/?/init.lua;" in front of the default package.path.
 * Returns NULL (after printing why to stderr) when the state cannot be set up. */
lua_State *sl_vm_open(const char *libdir);

/* The libdir given to sl_vm_open (owned by the state), or NULL. Stack unchanged. */
const char *sl_vm_libdir(lua_State *L);

/* Message handler for lua_pcall: turns the error object into a string and appends a
 * traceback. */
int sl_vm_traceback(lua_State *L);

/* lua_pcall with sl_vm_traceback as the handler: the function and its nargs arguments
 * are on the stack. Returns 0 with nresults pushed, or the pcall status with the message
 * (traceback included) pushed. */
int sl_vm_pcall(lua_State *L, int nargs, int nresults);

/* Registers the metatable `name` of a userdata class: methods (NULL-terminated) as its
 * __index, and gc and tostring (each may be NULL) as __gc and __tostring. Stack unchanged. */
void sl_vm_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                 lua_CFunction tostring);

/* Reads option `name` of the options table at index 1 for `who` ("core.reader"): pushes
 * it and returns 1 when it is of type t, returns 0 (nothing pushed) when it is nil, and
 * raises "who: name must be a T, not a U" otherwise. */
int sl_vm_opt(lua_State *L, const char *who, const char *name, int t);

/* Closes the state; every userdata is collected, so handles start closing. Call
 * sl_loop_close afterwards to let their close callbacks run. */
void sl_vm_close(lua_State *L);

#endif
