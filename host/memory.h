/* memory.h -- --memory-limit: the Lua heap counted at every allocation, and the resident
 * size of the process (the contract of core.memory_limit and core.memory is in sl_api.h).
 */
#ifndef SL_MEMORY_H
#define SL_MEMORY_H

#include <stddef.h>
#include <lua.h>

#define SL_MEMORY_STATUS 1      /* exit status when an allocation passes the limit */

/* core.memory_limit(bytes | nil [, heap_bytes]): from the first call on, every
 * allocation of the Lua state goes through a counter; past heap_bytes (default bytes),
 * the process ends (sl_guard_exit). nil or 0: no limit (the counter stays). */
int sl_memory_limit(lua_State *L);

/* core.memory() -> {heap=, rss=, limit=} (see sl_api.h). */
int sl_memory_stats(lua_State *L);

/* The resident size of the process in bytes (/proc/self/statm), or 0 when unknown. Reads
 * with open/read/close only, so it may run anywhere. */
size_t sl_memory_rss(void);

/* In a forked child (core.child): no limit; the child's work is not the job's. */
void sl_memory_forked(void);

/* Gives the state its own allocator back, so that closing it frees its arena. Call just
 * before lua_close (sl_vm_close does). */
void sl_memory_unwrap(lua_State *L);

#endif
