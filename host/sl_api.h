/* sl_api.h -- everything Lua may call in the host, in one place.
 *
 * Two doors, chosen by how often they are used (see STYLE.md):
 * - The FFI door: plain C functions on scalars and pointers, for per-record and per-batch
 *   work that needs no lua_State. lua/sluice/host.lua mirrors these declarations in its
 *   one ffi.cdef. They never call back into Lua.
 * - The Lua C API door: the module "sluice.core", for setup, for objects that own libuv
 *   handles, and for work that builds Lua values (decoding a batch builds its tables).
 *   Its functions are listed below and registered in core.c.
 */
#ifndef SL_API_H
#define SL_API_H

#include <stdint.h>
#include <lua.h>

/* ---- FFI door ---------------------------------------------------------------------- */

double sl_time_now_ms(void);          /* wall clock, ms since the Unix epoch */
uint64_t sl_time_hrtime_ns(void);     /* monotonic clock, ns */

/* ---- Lua C API door: require "sluice.core" ----------------------------------------------
 *
 * core.VERSION                  "x.y.z"
 * core.null                     light userdata SL_NULL (JSON null, msgpack nil)
 * core.libdir                   directory the Lua library was loaded from
 * core.run()                    runs the libuv loop until no handle or request is active or
 *                               core.stop() is called. Returns true; or nil, message when a
 *                               callback raised (the message carries a traceback; the loop
 *                               stops at the first error). Raises if already running.
 * core.stop()                   makes core.run() return after the current callback (does
 *                               nothing outside core.run()).
 *
 * core.idle(fn)     -> handle   calls fn() once per loop iteration; started at once.
 * core.timer(fn)    -> handle   handle:start(timeout_ms [, repeat_ms]) calls fn() then.
 *   handle:start(...), handle:stop(), handle:close() (idempotent; garbage collection
 *   closes a handle too, but a started handle is kept alive until it stops or closes).
 *
 * core.reader{...}  -> reader   frames and decodes a file or descriptor into batches.
 *   path=string | fd=integer    what to read (fd is not closed at the end). Pipes,
 *                               terminals and sockets are read as libuv streams, anything
 *                               else with uv_fs_read in 256 KiB chunks.
 *   format="lines"|"json"|"csv"|"msgpack"
 *                               lines, json, csv: one record per line ("\r\n" too; a
 *                               leading UTF-8 BOM is skipped; csv quoted fields may hold
 *                               newlines). Blank lines are no record in json and csv, an
 *                               empty string in lines. msgpack: a stream of objects.
 *   header=boolean              csv: the first record names the columns (records are
 *                               then tables keyed by them)
 *   batch=integer               most records per on_batch call (default 1024)
 *   max_record=integer          longest record in bytes (default 1 MiB); longer is bad,
 *                               and is skipped as it arrives, never buffered whole
 *   on_batch=function(batch, n) batch[1..n] are the records (batch[n+1] is nil); the table
 *                               is reused, so it is valid only during the call
 *   on_bad=function(info)       optional: a malformed record, info = {line=, offset=,
 *                               reason=, raw=} (line 1-based where the record starts,
 *                               msgpack: the object's ordinal; offset in bytes from the
 *                               start of input; raw at most 256 bytes of it); the reader
 *                               goes on. Without on_bad bad records are dropped.
 *   on_end=function(err)        optional: end of input (err nil) or a read error (err is
 *                               "read PATH: reason"); called once
 *   Opening happens at once: a missing file raises "open PATH: reason". A new reader is
 *   stopped: reader:start() starts or resumes reading (asynchronously: callbacks come only
 *   from core.run()); reader:stop() pauses after the current callback (the rest of the
 *   input read so far waits for start()); reader:close() stops for good and frees the
 *   buffers (idempotent, safe inside the reader's own callbacks; garbage collection
 *   closes an unstarted or stopped reader). A callback that raises stops the reader.
 *
 * core.writer{...}  -> writer   encodes batches and writes them through libuv.
 *   path=string | fd=integer, format="json"|"lines"|"csv"|"msgpack", append=boolean,
 *   columns=array (csv: column order; default the sorted string keys of the first table
 *   record, and array records when it has none),
 *   header=boolean (csv: write the header line, default true)
 *   json and csv write one record per line, msgpack concatenated objects; lines writes
 *   strings verbatim, numbers, booleans and null as text, a table with __tostring
 *   through it, and other tables as JSON.
 *   writer:write(batch [, n]) -> nil, or an array of {index=i, reason=msg} for the records
 *                               it could not encode (they are skipped, the rest written);
 *                               n defaults to #batch
 *   writer:flush(), writer:close()   write errors raise "write PATH: reason" (PATH is
 *                               "<stdout>" for fd 1); a descriptor given as fd is not
 *                               closed. Garbage collection closes a writer without raising
 *                               (a failure is printed on stderr).
 *
 * core.json_encode(v) -> s       core.json_decode(s) -> v      (raise on bad input, with
 * core.msgpack_encode(v) -> s    core.msgpack_decode(s) -> v    the codec's message; s
 *                                                               must hold exactly one value)
 */
int luaopen_sluice_core(lua_State *L);

#endif
