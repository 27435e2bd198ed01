/* framing.h -- records out of a byte stream: lines, JSON lines, CSV and msgpack objects,
 * framed and decoded into batches from a buffer the caller fills.
 *
 * A framer owns the bytes read and not yet framed. Its caller appends what it reads, then
 * calls sl_framer_fill until it answers WAIT; each call frames records into a Lua array
 * until the array is full, or stops at one bad record, and never calls back. When the
 * input has ended the caller says so (eof), and the unterminated tail is then a last
 * record (or bad, with partial_bad). A record longer than max_record is reported as soon
 * as that is known and skipped as it arrives, never buffered whole. No I/O and no loop:
 * reader.c drives a framer from libuv, tests/fuzz/fuzz_reader.c from memory.
 */
#ifndef SL_FRAMING_H
#define SL_FRAMING_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#include "codec.h"
#include "typed.h"

/* ---- constants --------------------------------------------------------------------- */

#define SL_FRAMER_RAW_MAX 256       /* most bytes kept of a run of bad msgpack bytes */

/* The formats, and sl_framer_formats[format], their names (then NULL). */
enum { SL_FRAMER_LINES, SL_FRAMER_JSON, SL_FRAMER_CSV, SL_FRAMER_MSGPACK };
extern const char *const sl_framer_formats[];

/* Why sl_framer_fill stopped. */
enum {
    SL_FRAME_WAIT,          /* no complete record in the buffer: append more, or end it */
    SL_FRAME_RECORD,        /* the array holds max records */
    SL_FRAME_HEADER,        /* csv, want_header: the column names (an array) are pushed */
    SL_FRAME_BAD            /* a bad record, described in the sl_frame; nothing pushed */
};

/* ---- types ------------------------------------------------------------------------- */

/* Where a record starts; for a bad one also why, and its first bytes. */
typedef struct sl_frame {
    int64_t off;            /* stream offset of its first byte */
    int64_t line;           /* its line, 1-based; msgpack: the object's ordinal */
    const char *reason;     /* BAD: one line, valid until the next sl_framer_fill */
    const char *raw;        /* BAD: its bytes (all of them, or what is buffered of an */
    size_t rawlen;          /* overlong one), valid until the buffer is appended to */
} sl_frame;

/* A framer. The caller sets the settings after sl_framer_init and before the first
 * sl_framer_fill, and may read the stream fields; everything else is the framer's. */
typedef struct sl_framer {
    /* settings */
    int format;             /* SL_FRAMER_* */
    size_t max_record;      /* longest record in bytes */
    int partial_bad;        /* an unterminated record at the end is bad (sockets) */
    int keyed;              /* csv: records are tables keyed by the names at keys_idx */
    int want_header;        /* csv: the next record is the header (SL_FRAME_HEADER) */

    /* the stream: bytes read and not framed yet are buf[pos, len) */
    char *buf;
    size_t cap, len, pos;
    int64_t base;           /* stream offset of buf[0] */
    int64_t line;           /* line of buf[pos], 1-based; msgpack: ordinal of next object */

    /* the framer's own */
    int bom_done;           /* the start of the stream was checked for a UTF-8 BOM */
    int skipping;           /* dropping an overlong record without buffering it */
    int64_t skip_off;       /* skipping: where the overlong record started, and its line */
    int64_t skip_line;
    uint64_t skip_objs;     /* msgpack: objects still to skip */
    uint64_t skip_bytes;    /* msgpack: payload bytes still to skip */
    int run_open;           /* msgpack: collecting a run of undecodable bytes */
    int64_t run_off;        /* where the run started */
    int64_t run_line;
    size_t run_rawlen;      /* bytes in run_raw */
    char run_reason[SL_CODEC_ERRLEN];       /* the decoder's reason at the run's start */
    char run_raw[SL_FRAMER_RAW_MAX];        /* the run's first bytes */
    char err[SL_CODEC_ERRLEN];              /* the reason of the last bad record */

    /* typed records (sl_framer_set_schema): each record is decoded into the slots of
       record *n of the batch rather than pushed; strings point into buf (the caller
       delivers a batch before appending more) or into the arena, reset per batch */
    const sl_schema *schema;
    sl_typed_field *slots;                  /* slots_cap records of schema->nslots */
    int slots_cap;
    sl_typed_arena arena;
    int *col_field;                         /* csv: each column's field (or -1) ... */
    int ncols;                              /* ... once the columns are known, else 0 */
    sl_typed_field *dst;                    /* where next() decodes the record it frames */
} sl_framer;

/* ---- functions --------------------------------------------------------------------- */

/* An empty framer of format at the start of a stream (offset 0, line 1), whose records
 * may be max_record bytes long; no partial_bad, no header. Allocates nothing. */
void sl_framer_init(sl_framer *f, int format, size_t max_record);

/* The stream starts at byte offset of its file, on line (a reader resumed from a
 * checkpoint): offsets and lines count from there, and there is no BOM to skip unless
 * offset is 0. Before anything is appended. */
void sl_framer_start_at(sl_framer *f, int64_t offset, int64_t line);

/* Room for n more bytes at the end of the buffer: moves the unframed bytes to its front
 * and grows it as needed, then returns where the next byte goes. The caller writes up to
 * n bytes there and commits those it wrote. Invalidates the raw of the last sl_frame, so
 * only between framings. Out of memory aborts the process. */
char *sl_framer_reserve(sl_framer *f, size_t n);
void sl_framer_commit(sl_framer *f, size_t n);

/* Copies n bytes to the end of the buffer (reserve, copy, commit). */
void sl_framer_append(sl_framer *f, const char *data, size_t n);

/* Ends the unterminated last line in the buffer with a '\n', so that it is not joined with
 * what is appended next (a file left behind by a rotation, a datagram). Nothing for
 * msgpack, nor when the buffer holds no unframed byte or ends in '\n'. */
void sl_framer_end_line(sl_framer *f);

/* Frames records into the Lua array at batch_idx as its elements *n + 1, *n + 2, ...
 * (raising *n) until it holds max of them, then returns SL_FRAME_RECORD; or stops at the
 * first answer that is not a record and returns it: SL_FRAME_WAIT when the buffer holds
 * no further record, SL_FRAME_BAD with *out describing the bad record, SL_FRAME_HEADER
 * with the column names pushed (stack +1; the caller puts them at keys_idx for the
 * records that follow). When it put element 1, *first says where that record starts.
 * keys_idx is the stack index of the column names for a keyed csv framer (ignored
 * otherwise); eof says the buffer holds the rest of the input. Blank lines (json, csv), a
 * BOM and the bytes of a skipped record are consumed without an answer. Never raises.
 * A call per batch, not per record, so the loop over a batch's records is this file's. */
int sl_framer_fill(sl_framer *f, lua_State *L, int keys_idx, int eof, int batch_idx, int *n,
                   int max, sl_frame *first, sl_frame *out);

/* Where the first record not yet put in an array or reported as bad starts: its stream
 * offset and line. An overlong record being skipped counts from its start. (A run of bad
 * msgpack bytes is always reported before sl_framer_fill returns.) */
void sl_framer_position(const sl_framer *f, int64_t *off, int64_t *line);

/* Makes the framer decode typed records of schema s (which must outlive it) into its
 * slots instead of pushing Lua values: sl_framer_fill then leaves the Lua array alone and
 * the caller reads record i (0-based) of the batch at sl_framer_slots(f) + i * nslots,
 * valid until the next sl_framer_fill with *n == 0 or the next append. A csv framer needs
 * its column names (keyed, with a header or keys_idx). Before the first sl_framer_fill. */
void sl_framer_set_schema(sl_framer *f, const sl_schema *s);
sl_typed_field *sl_framer_slots(sl_framer *f, int max);

/* Frees the buffer. The framer may be initialised again. */
void sl_framer_free(sl_framer *f);

#endif
