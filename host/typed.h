/* typed.h -- typed records: a source's JSON, CSV or msgpack records decoded by C straight
 * into fixed slots that Lua reads in place (sl.schema{...}, lua/sluice/schema.lua).
 *
 * A schema lists fields by name, each of a type: i64, f64, bool, string, or a nested
 * schema. A record of a schema is an array of sl_typed_field, its slots: slot 0 is the
 * record's header, then one slot per field in the schema's order, a nested record taking
 * its own header and fields inline (so a record's size is fixed, and a nested record is a
 * record of its own schema at its header's slot). Strings are (pointer, length) into the
 * bytes the record was decoded from, or into an arena when the decoder had to rewrite them
 * (JSON escapes, CSV's doubled quotes): valid while the batch the record is in is, which is
 * as long as a typed record lives (typed.lua makes the table form of whatever is kept).
 *
 * Everything a decoder reports it reports as codec.h does: SL_CODEC_BAD with a one-line
 * reason in err (SL_CODEC_ERRLEN bytes), which names the field for a value of the wrong
 * type ("field price: want f64, got string"; nested: "field user.age: ..."), never
 * raising; a record decoded BAD may have been written partly and is not to be read.
 *
 * The structs below are plain C that lua/sluice/host.lua pastes into its ffi.cdef;
 * tests/unit/host_spec.lua holds the two to each other.
 */
#ifndef SL_TYPED_H
#define SL_TYPED_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SL_TYPED_FULL        2      /* the arena cannot hold this record's strings */
#define SL_TYPED_MAX_SLOTS 4096     /* most slots of a record, nested records' included */
#define SL_TYPED_MAX_DEPTH   16     /* most nesting of schemas */

/* The field types; sl_typed_type_names[type] their names in sl.schema ("i64", ...). */
enum { SL_TYPED_I64 = 1, SL_TYPED_F64 = 2, SL_TYPED_BOOL = 3, SL_TYPED_STRING = 4,
       SL_TYPED_RECORD = 5 };
extern const char *const sl_typed_type_names[];

struct sl_schema;

/* One slot: a field's value, or a record's header. */
typedef struct sl_typed_field {
    union {
        double f64;
        int64_t i64;
        int64_t b;                      /* bool: 0 or 1 */
        const char *str;                /* string: its bytes, not NUL-terminated */
        const struct sl_schema *schema; /* header: the record's schema */
    } v;
    uint32_t len;       /* string: its length in bytes; header: the record's slots */
    uint32_t present;   /* 0: the field is absent (nil); header: 0 when a nested record
                           is absent, else 1 */
} sl_typed_field;

/* A field of a schema. */
typedef struct sl_schema_field {
    const char *name;               /* NUL-terminated */
    uint32_t namelen;
    int type;                       /* SL_TYPED_* */
    int slot;                       /* its slot, counted from the record's header (0) */
    const struct sl_schema *record; /* SL_TYPED_RECORD: the nested schema; its header is
                                       at slot */
} sl_schema_field;

/* A schema: its fields sorted by name (bytewise), which is also the order encoders write
 * them in; nslots the slots of one record (1 + each field's 1, a nested record's nslots). */
typedef struct sl_schema {
    int nfields;
    int nslots;
    int depth;                      /* 1, or 1 + the deepest nested schema's */
    sl_schema_field *fields;
    uint8_t *index;                 /* sl_schema_find's table (schema.c's own) */
    uint32_t index_mask;
} sl_schema;

/* Strings decoders rewrote, for one batch. The caller owns the memory and resets used to
 * 0 when a new batch starts; a decoder that needs more than cap - used returns
 * SL_TYPED_FULL having kept nothing, and the caller delivers the batch, resets the arena
 * and decodes the record again (an arena of at least twice the longest record always has
 * room for one record alone). */
typedef struct sl_typed_arena {
    char *base;
    size_t cap, used;
} sl_typed_arena;

/* ---- schemas (schema.c) --------------------------------------------------------------- */

/* A new schema of n fields, copied from fields[0, n) (any order; names are copied; nested
 * schemas are referenced, not copied, and must outlive it); slots are computed here. NULL
 * with a reason in err (SL_CODEC_ERRLEN bytes) for a duplicate or empty name, an unknown
 * type, too many slots, nesting deeper than SL_TYPED_MAX_DEPTH. */
sl_schema *sl_schema_new(const sl_schema_field *fields, int n, char *err);
void sl_schema_free(sl_schema *s);

/* The field named name[0, len), or NULL. A hashed lookup: what decoders do per key. */
const sl_schema_field *sl_schema_find(const sl_schema *s, const char *name, size_t len);

/* Sets up rec (s->nslots slots) as an empty record of s: the header (schema, nslots,
 * present 1) and every field absent, nested records' headers absent too. */
void sl_typed_clear(const sl_schema *s, sl_typed_field *rec);

/* ---- decoders: one record into rec (s->nslots slots), cleared first -------------------- */

/* JSON: the one object in p[0, len) (surrounding white space allowed). Keys not in the
 * schema are skipped (their values still checked to be JSON); null is absent; a field of
 * the wrong type, or a top-level value that is not an object, is BAD. i64 takes a number
 * with an integral value in the int64 range, f64 any number, bool true/false, string a
 * string, a nested schema an object. OK, BAD or SL_TYPED_FULL. */
int sl_typed_json_decode(const sl_schema *s, const char *p, size_t len, sl_typed_field *rec,
                         sl_typed_arena *a, char *err);

/* CSV: one framed record (sl_csv_frame) whose column c is field col_field[c] of s (an
 * index into s->fields, or -1: not in the schema). A record with another number of
 * columns than ncols is BAD. An unquoted empty cell is absent; i64 and f64 cells are
 * numbers as sl_csv_decode reads them, bool cells true or false. Nested schemas cannot be
 * CSV columns (BAD). OK, BAD or SL_TYPED_FULL. */
int sl_typed_csv_decode(const sl_schema *s, const int *col_field, int ncols, const char *p,
                        size_t len, sl_typed_field *rec, sl_typed_arena *a, char *err);

/* msgpack: the first object of p[0, len), a map; *used its size. Unknown keys skipped,
 * nil absent, types as for JSON (an i64 field takes an integer or an integral float). OK,
 * SL_CODEC_MORE (incomplete; nothing used), BAD (with *used as sl_mpack_decode sets it). */
int sl_typed_mpack_decode(const sl_schema *s, const char *p, size_t len, size_t *used,
                          sl_typed_field *rec, char *err);

/* ---- encoders: the record rec (its header says its schema) appended to out ------------- */

/* JSON: an object of the present fields in the schema's order (no newline), numbers and
 * strings written as codec.h's JSON encoder writes them. */
int sl_typed_json_encode(const sl_typed_field *rec, sl_buf *out, char *err);
/* CSV: one line (with "\n") of the fields named by col_field[0, ncols) (indexes into the
 * record's schema's fields; -1 an empty cell), as sl_csv_encode writes cells; a nested
 * record's cell is its JSON, quoted. */
int sl_typed_csv_encode(const sl_typed_field *rec, const int *col_field, int ncols,
                        sl_buf *out, char *err);
/* msgpack: a map of the present fields, i64 as integers, f64 as sl_mpack_encode packs
 * numbers. */
int sl_typed_mpack_encode(const sl_typed_field *rec, sl_buf *out, char *err);

#endif
