/* lineedit.h -- the terminal, for people: GNU readline (line editing, history, tab
 * completion), the terminal's width, and raw single-key input for full-screen views.
 *
 * Used by `sluice repl`, `sluice attach` and `sluice top`; never on the data path. Each
 * function is a "sluice.core" function (see sl_api.h for what Lua sees).
 */
#ifndef SL_LINEEDIT_H
#define SL_LINEEDIT_H

#include <lua.h>

/* core.readline(prompt) -> line | nil (end of input) | false (Ctrl-C) */
int sl_lineedit_read(lua_State *L);

/* core.history_add(line), core.history_load(path), core.history_save(path, max) */
int sl_lineedit_history_add(lua_State *L);
int sl_lineedit_history_load(lua_State *L);
int sl_lineedit_history_save(lua_State *L);

/* core.completer(fn | nil): fn(word, line) -> array of words that may replace word */
int sl_lineedit_completer(lua_State *L);

/* core.interrupts(on [, on_interrupt]): Ctrl-C sets a flag instead of ending the
 * process (with on_interrupt, also stops the running Lua code);
 * core.interrupted() -> whether it came since the last call */
int sl_lineedit_interrupts(lua_State *L);
int sl_lineedit_interrupted(lua_State *L);

/* core.term_width([fd]) -> columns | nil (fd is not a terminal) */
int sl_term_width(lua_State *L);

/* core.term_raw(on) -> true | nil, message: raw, no-echo input on fd 0, or back again */
int sl_term_raw(lua_State *L);

/* core.read_key(timeout_ms) -> string | nil: bytes available on fd 0 within the time */
int sl_term_read_key(lua_State *L);

#endif
