/* reader.h -- core.reader: a file or descriptor read through libuv, framed and decoded
 * in C, and handed to Lua one batch at a time (the contract is in sl_api.h).
 */
#ifndef SL_READER_H
#define SL_READER_H

#include <lua.h>

#define SL_READER_MT          "sluice.reader"  /* metatable of reader userdata */
#define SL_READER_CHUNK       (256 * 1024)     /* bytes asked of each read */
#define SL_READER_BATCH       1024             /* default most records per on_batch */
#define SL_READER_MAX_RECORD  (1024 * 1024)    /* default longest record, in bytes */
#define SL_READER_RAW_MAX     256              /* most bytes of a bad record in on_bad */

typedef struct sl_reader sl_reader;

/* Creates the reader metatable. Stack unchanged. */
void sl_reader_register(lua_State *L);

/* core.reader{...} -> reader. Opens the file at once; the reader starts stopped. */
int sl_reader_new(lua_State *L);

/* Appends one datagram to a reader made with feed=true and frames it from the loop:
 * for lines, json and csv a datagram ends its last line; truncated says the datagram
 * was cut short by the receive buffer (it is then reported bad, not framed). */
void sl_reader_feed(sl_reader *r, const char *data, size_t len, int truncated);

#endif
