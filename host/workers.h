/* workers.h -- the threads of a job run on several workers (sluice run --workers N).
 *
 * Worker 1 is the main thread. core.workers_start makes the exchange (exchange.h) and starts
 * workers 2..N, each a thread with its own loop and Lua state that calls
 * require("sluice.worker").main(me, n, setup) and ends when it returns; core.workers_join
 * waits for them.
 */
#ifndef SL_WORKERS_H
#define SL_WORKERS_H

#include <lua.h>

/* core.workers_start(n, setup) -> true: setup is a string every worker gets as it is. Raises
 * when workers run already, n is out of range or a thread cannot start. */
int sl_workers_start(lua_State *L);

/* From main(), before worker 1 reads its script: when the command line asks for n
 * workers (sluice run --workers n), workers 2..n start now and load their modules, in
 * parallel with worker 1's, then wait; core.workers_start(n, ...) gives them their setup.
 * If the job needs no workers, or another number of them, sl_workers_prestart_cancel (or
 * core.workers_start) ends them unused. libdir: the Lua library (sl_vm_open). */
void sl_workers_prestart(int n, const char *libdir);
void sl_workers_prestart_cancel(void);

/* core.workers_join() -> { {me =, status =, records_in =, dead_letters =, error = msg|nil},
 * ... } for workers 2..N, once each has ended; then the exchange is freed. */
int sl_workers_join(lua_State *L);

/* core.workers_stop(): worker 1 asks the workers to stop (those that exchange nothing poll
 * core.workers_stopping() -> boolean). */
int sl_workers_stop(lua_State *L);
int sl_workers_stopping(lua_State *L);

#endif
