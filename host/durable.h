/* durable.h -- core.durable: files that survive a crash (checkpoints and the file sinks
 * they commit) (the contract is in sl_api.h).
 */
#ifndef SL_DURABLE_H
#define SL_DURABLE_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#define SL_DURABLE_ERRLEN 512      /* room for "what PATH: reason" */

/* Writes len bytes of data to path + ".tmp", fsyncs it, renames it to path and fsyncs
 * the directory, so that after a crash path holds either its old content or all of the
 * new. Returns 0, or -1 with err saying which step failed on which path. Never touches
 * the event loop: safe in a forked child. */
int sl_durable_replace(const char *path, const char *data, size_t len, char *err);

/* fsyncs the file at path (its data reaches the disk whoever wrote it). 0 or -1, err. */
int sl_durable_sync(const char *path, char *err);

/* CRC-32 (the polynomial of zlib and PNG) of len bytes, continuing from crc (0 to start). */
uint32_t sl_durable_crc32(uint32_t crc, const void *data, size_t len);

/* Pushes the core.durable table. */
void sl_durable_push(lua_State *L);

#endif
