/* codec.h -- record codecs between bytes and Lua values: JSON, CSV and msgpack.
 *
 * Every decoder takes one framed record (or, for msgpack, a byte stream) and pushes the
 * Lua value it holds; every encoder appends the text or bytes of the Lua value at a stack
 * index to an sl_buf. They touch the Lua stack only as each comment says, and report a
 * malformed record by returning SL_CODEC_BAD with a one-line reason in err (never by
 * raising), so the caller can dead-letter the record and go on with the next one.
 *
 * Conventions shared by all codecs:
 * - A JSON null or msgpack nil inside an object or array decodes to SL_NULL (a light
 *   userdata, exposed to Lua as sl.null); a top-level null decodes to SL_NULL too.
 *   The encoders write SL_NULL as null/nil.
 * - A Lua table whose keys are exactly 1..n (n >= 1) encodes as an array; any other table
 *   encodes as an object/map, with string keys (number keys are written as strings in
 *   JSON). An empty table encodes as an empty object.
 * - Numbers: an integral double with |x| < 1e21 is written as plain digits, without
 *   fraction or exponent ("1700000000000", not "1.7e+12"), as JavaScript prints numbers;
 *   other finite doubles are written with the fewest
 *   digits that read back to the same double (%.15g, %.16g, else %.17g).
 *   NaN and infinities cannot be encoded (SL_CODEC_BAD).
 * - Nesting deeper than SL_CODEC_MAX_DEPTH (and so any cycle) is SL_CODEC_BAD.
 * - Key order (codec_keys.c): every object a decoder builds gets a shape, a metatable
 *   shared by all objects with the same keys in the same order, which holds that order
 *   (mt[1..n] the keys; mt[0] a userdata of the codecs). Every encoder writes an
 *   object's keys in its shape's order, then the other keys sorted (numbers ascending,
 *   then strings bytewise). So a record comes out with its keys as they came in (keys a
 *   script added after them, sorted), a table built in Lua with its keys sorted, and
 *   the same input gives the same bytes on every run.
 * - JSON output is valid UTF-8: in a string that is not, each invalid sequence is
 *   written as U+FFFD (the replacement character). Decoders pass bytes through as
 *   they are.
 */
#ifndef SL_CODEC_H
#define SL_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include "buf.h"

#define SL_CODEC_OK          0
#define SL_CODEC_BAD        -1   /* malformed input or unencodable value; reason in err */
#define SL_CODEC_MORE        1   /* msgpack stream: the object is not complete yet */
#define SL_CODEC_MAX_DEPTH 128
#define SL_CODEC_ERRLEN    160   /* size of the err buffers callers pass */

#define SL_NULL ((void *)0)      /* pushed with lua_pushlightuserdata(L, SL_NULL) */

/* Pushes the array of the string keys of the table at idx in the order the encoders
 * write them (see key order above), with every key of its shape, even one the table
 * lacks: the columns a csv writer takes from its first record. Returns how many.
 * Stack +1. */
int sl_codec_keys(lua_State *L, int idx);

/* Formats a double the way every encoder writes numbers (see above) into out, which
 * must hold 32 bytes; returns the length, or -1 for NaN and infinities. */
int sl_codec_number(double x, char *out);
/* Writes the decimal digits of i (a typed record's i64 field, typed.h) into out, which
 * must hold 21 bytes; returns the length. The same digits as sl_codec_number writes for
 * an integral double of the same value. */
int sl_codec_int(int64_t i, char *out);

/* JSON (RFC 8259). Decodes the single value in s[0, len) (surrounding white space
 * allowed, anything else after the value is an error) and pushes it: stack +1 on OK,
 * unchanged on BAD. Objects become tables with string keys, arrays 1-based tables. */
int sl_json_decode(lua_State *L, const char *s, size_t len, char *err);
/* Appends the JSON text of the value at idx (no newline). Stack unchanged. Strings are
 * written as UTF-8 with ", \ and control characters escaped. */
int sl_json_encode(lua_State *L, int idx, sl_buf *out, char *err);

/* CSV (RFC 4180, comma separated). sl_csv_frame finds the end of the record that starts
 * at s: quoted fields may hold newlines. Returns the record's length without its line
 * end in *rec_len and the bytes to skip past the line end in *used; returns SL_CODEC_MORE
 * when s[0, len) holds no complete record (at end of input the caller passes eof=1 and
 * the rest is one record). */
int sl_csv_frame(const char *s, size_t len, int eof, size_t *rec_len, size_t *used);
/* Decodes one framed record. With keys_idx == 0 pushes an array of fields; otherwise
 * keys_idx is the stack index of an array of column names and pushes a table keyed by
 * them (a record with a different number of fields is BAD). Quoted fields are strings;
 * an unquoted field that is a whole decimal number becomes a number; an unquoted empty
 * field is left out of a keyed record ("" in an array). Stack +1 on OK. */
int sl_csv_decode(lua_State *L, const char *s, size_t len, int keys_idx, char *err);
/* Appends one CSV line (with "\n") for the record at idx: the fields named by the array
 * at keys_idx, in that order (missing ones empty), or the elements of an array record
 * when keys_idx == 0. Strings are quoted when they hold , " CR or LF; tables are written
 * as quoted JSON. Stack unchanged. */
int sl_csv_encode(lua_State *L, int idx, int keys_idx, sl_buf *out, char *err);

/* lines (output only): appends the text of the value at idx without a line end: strings
 * verbatim, numbers as the encoders write them, booleans as text, SL_NULL as "null", a
 * table with __tostring through it, any other table as JSON; functions, userdata and
 * NaN or infinities are BAD. Stack unchanged. */
int sl_line_encode(lua_State *L, int idx, sl_buf *out, char *err);

/* msgpack, with msgpack-c. Decodes the first object of s[0, len): on OK pushes it and
 * sets *used to its size; SL_CODEC_MORE when the object is incomplete (stack unchanged);
 * BAD on malformed bytes, with *used set to 1 so a stream decoder can resynchronise.
 * str and bin both decode to Lua strings; ext is BAD. */
int sl_mpack_decode(lua_State *L, const char *s, size_t len, size_t *used, char *err);

/* The parts of sl_mpack_decode, for a decoder of a protocol over msgpack (forward.c):
 * sl_mpack_measure finds the size of the first object of s[0, len) without building it,
 * as sl_mpack_decode does before handing bytes to msgpack-c (OK and *size; MORE; BAD with
 * *size the bytes to skip), accepting ext types when allow_ext; sl_mpack_push pushes the
 * Lua value of an object msgpack-c unpacked (stack +1 on OK, unchanged on BAD). */
struct msgpack_object;
int sl_mpack_measure(const char *s, size_t len, int allow_ext, size_t *size, char *err);
int sl_mpack_push(lua_State *L, const struct msgpack_object *o, char *err);

/* Frees the calling thread's decoding zone (a worker thread, as it ends). */
void sl_mpack_thread_end(void);
/* Appends the msgpack encoding of the value at idx. Integral doubles in the int64 range
 * are packed as integers, other numbers as float64. Stack unchanged. */
int sl_mpack_encode(lua_State *L, int idx, sl_buf *out, char *err);
/* The same for state rather than records (checkpoints): infinities and NaN are packed as
 * float64 too (a watermark is -inf before the first record). */
int sl_mpack_encode_state(lua_State *L, int idx, sl_buf *out, char *err);

#endif
