/* writer.h -- core.writer: batches of Lua values encoded in C and written to a file or
 * descriptor through libuv (the contract is in sl_api.h).
 */
#ifndef SL_WRITER_H
#define SL_WRITER_H

#include <lua.h>

#define SL_WRITER_MT     "sluice.writer"   /* metatable of writer userdata */
#define SL_WRITER_FLUSH  (64 * 1024)       /* bytes buffered before write() writes them */

/* Creates the writer metatable. Stack unchanged. */
void sl_writer_register(lua_State *L);

/* core.writer{...} -> writer. Opens (creates, truncates or appends to) the file at once. */
int sl_writer_new(lua_State *L);

#endif
