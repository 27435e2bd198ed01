/* loop.h -- the process's libuv loop, core.run/core.stop, and idle and timer handles.
 *
 * There is one loop per thread: the main thread's is uv_default_loop, a worker thread's
 * its own (workers.c). Callbacks into Lua run on the Lua thread that called core.run();
 * the first one that raises stops the loop and core.run() returns nil and its message.
 */
#ifndef SL_LOOP_H
#define SL_LOOP_H

#include <lua.h>
#include <uv.h>

#define SL_IDLE_MT  "sluice.idle"    /* metatable of core.idle handles */
#define SL_TIMER_MT "sluice.timer"   /* metatable of core.timer handles */

/* The loop every host object of this thread runs on: the default loop, or the one a
 * worker thread set with sl_loop_use. */
uv_loop_t *sl_loop_get(void);
void sl_loop_use(uv_loop_t *loop);

/* Creates the idle and timer metatables. Stack unchanged. */
void sl_loop_register(lua_State *L);

/* core.run() -> true | nil, msg and core.stop(). */
int sl_loop_run(lua_State *L);
int sl_loop_stop(lua_State *L);

/* core.idle(fn) -> handle (started) and core.timer(fn) -> handle (stopped). */
int sl_idle_new(lua_State *L);
int sl_timer_new(lua_State *L);

/* The thread inside core.run(), on whose stack callbacks run; NULL outside core.run(). */
lua_State *sl_loop_lua(void);

/* Calls the function below nargs arguments on L in protected mode, for a callback from
 * the loop; pops them. On an error, records its message as the result of core.run() (the
 * first error wins; a traceback is added only when SLUICE_DEBUG is set), stops the loop
 * and returns -1; else returns 0. */
int sl_loop_call(lua_State *L, int nargs);

/* Opens path synchronously through libuv (flags and mode as for open(2)) and returns the
 * descriptor; on failure raises "open PATH: reason" (a relative PATH followed by
 * " (CWD/PATH)"), naming the path and not a line of the library. */
int sl_loop_open(lua_State *L, const char *path, int flags, int mode);

/* At shutdown, after sl_vm_close: lets close callbacks and finished requests run, then
 * closes the loop. Returns 0, or UV_EBUSY when a request is still in flight (a read
 * blocked on a terminal or pipe); the process must then end with _exit, since libuv's
 * exit-time cleanup would wait for that read. */
int sl_loop_close(void);

#endif
