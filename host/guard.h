/* guard.h -- the last resort of a job whose loop cannot answer: which operator runs, and
 * SIGINT/SIGTERM caught in C so that a function that never returns cannot make the job
 * unkillable (the contract of core.guard is in sl_api.h).
 */
#ifndef SL_GUARD_H
#define SL_GUARD_H

#include <lua.h>

#define SL_GUARD_MT         "sluice.guard"  /* metatable of the core.guard handle */
#define SL_GUARD_LABELS     512             /* distinct operator labels kept */
#define SL_GUARD_LABEL_MAX  200             /* bytes of one label, its NUL included */
#define SL_GUARD_STATUS     130             /* exit status of a hard exit after a signal */

/* sl_guard_label and sl_guard_enter, which the runtime calls through the FFI, are declared
 * in sl_api.h. */

/* ---- C side ------------------------------------------------------------------------- */

/* Writes "sluice: <what><the running operator><after>\n" to stderr, removes the open
 * guard's `remove` file (the control socket), and ends the process at once with `status`
 * (_exit: no flush, no atexit). Safe in a signal handler and from any thread. */
_Noreturn void sl_guard_exit(int status, const char *what, const char *after);

/* Creates the guard metatable. Stack unchanged. */
void sl_guard_register(lua_State *L);

/* core.guard{on_signal=fn, grace_ms=5000, remove=path} -> guard (see sl_api.h). */
int sl_guard_new(lua_State *L);

#endif
