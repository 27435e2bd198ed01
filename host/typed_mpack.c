/* typed_mpack.c -- msgpack records of a schema (typed.h): a map decoded straight from its
 * bytes into a record's slots (no msgpack-c, no zone), and a record packed as a map.
 *
 * Decoding is two walks over the object's bytes: sl_mpack_measure first, the very walk
 * sl_mpack_decode makes, so MORE, a malformed object and *used come out exactly as on the
 * table path (which the framer relies on); then the fill, which knows the object is whole
 * and well formed and so reads it without bounds checks. Values take the types the table
 * path gives them (an integer or a float is a number, str and bin both strings); packing
 * follows sl_mpack_encode byte for byte. */
#include "typed.h"
#include "codec.h"
#include "codec_shared.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- Decoding ---------------------------------------------------------------------- */

/* What one msgpack value is, once its header is read. */
enum { NIL, BOOL, UINT, INT, FLOAT, STR, BIN, ARRAY, MAP };
static const char *const kind_names[] = {
    "nil", "bool", "number", "number", "number", "string", "bin", "array", "map"
};

typedef struct item {
    int kind;
    uint32_t n;         /* STR, BIN: bytes; ARRAY, MAP: elements, pairs */
    const char *str;    /* STR, BIN: the bytes */
    union {
        uint64_t u;     /* UINT (every integer >= 0) */
        int64_t i;      /* INT (every integer < 0) */
        double f;       /* FLOAT */
        int b;          /* BOOL */
    } v;
} item;

/* A field being read and the fields it is nested in, for the dotted name a reason gives
 * ("user.age"). */
typedef struct path {
    const struct path *up;
    const sl_schema_field *f;
} path;

static inline uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Reads the value at b[*pos]: a scalar whole (*pos past it), a string's header (*pos past
 * its bytes too), a container's header only (*pos past the header: its elements follow).
 * The object was measured, so every byte is there and 0xc1 and ext do not occur. */
static inline void read_item(const unsigned char *b, size_t *pos, item *it)
{
    const unsigned char *p = b + *pos;
    unsigned c = p[0];
    size_t head = 1;
    if (c <= 0x7f) {
        it->kind = UINT;
        it->v.u = c;
    } else if (c >= 0xe0) {
        it->kind = INT;
        it->v.i = (int8_t)c;
    } else if (c <= 0x8f) {
        it->kind = MAP;
        it->n = c & 0x0f;
    } else if (c <= 0x9f) {
        it->kind = ARRAY;
        it->n = c & 0x0f;
    } else if (c <= 0xbf) {
        it->kind = STR;
        it->n = c & 0x1f;
    } else {
        int64_t s = 0;
        switch (c) {
        case 0xc0: it->kind = NIL; break;
        case 0xc2: case 0xc3: it->kind = BOOL; it->v.b = c == 0xc3; break;
        case 0xc4: it->kind = BIN; it->n = p[1]; head = 2; break;
        case 0xc5: it->kind = BIN; it->n = be16(p + 1); head = 3; break;
        case 0xc6: it->kind = BIN; it->n = be32(p + 1); head = 5; break;
        case 0xd9: it->kind = STR; it->n = p[1]; head = 2; break;
        case 0xda: it->kind = STR; it->n = be16(p + 1); head = 3; break;
        case 0xdb: it->kind = STR; it->n = be32(p + 1); head = 5; break;
        case 0xca: {
            uint32_t u = be32(p + 1);
            float x;
            memcpy(&x, &u, 4);
            it->kind = FLOAT;
            it->v.f = x;        /* as msgpack-c widens a float32 */
            head = 5;
            break;
        }
        case 0xcb: {
            uint64_t u = be64(p + 1);
            it->kind = FLOAT;
            memcpy(&it->v.f, &u, 8);
            head = 9;
            break;
        }
        case 0xcc: it->kind = UINT; it->v.u = p[1]; head = 2; break;
        case 0xcd: it->kind = UINT; it->v.u = be16(p + 1); head = 3; break;
        case 0xce: it->kind = UINT; it->v.u = be32(p + 1); head = 5; break;
        case 0xcf: it->kind = UINT; it->v.u = be64(p + 1); head = 9; break;
        case 0xd0: s = (int8_t)p[1]; head = 2; goto sint;
        case 0xd1: s = (int16_t)be16(p + 1); head = 3; goto sint;
        case 0xd2: s = (int32_t)be32(p + 1); head = 5; goto sint;
        case 0xd3: s = (int64_t)be64(p + 1); head = 9; goto sint;
        case 0xdc: it->kind = ARRAY; it->n = be16(p + 1); head = 3; break;
        case 0xdd: it->kind = ARRAY; it->n = be32(p + 1); head = 5; break;
        case 0xde: it->kind = MAP; it->n = be16(p + 1); head = 3; break;
        default: it->kind = MAP; it->n = be32(p + 1); head = 5; break;    /* 0xdf */
        sint:
            /* A signed format holding a value >= 0 is a positive integer, as msgpack-c
             * reads it. */
            if (s >= 0) {
                it->kind = UINT;
                it->v.u = (uint64_t)s;
            } else {
                it->kind = INT;
                it->v.i = s;
            }
            break;
        }
    }
    *pos += head;
    if (it->kind == STR || it->kind == BIN) {
        it->str = (const char *)b + *pos;
        *pos += it->n;
    }
}

/* Whether key is one the table path takes (push_key in codec_mpack.c): a string, bin or
 * number, not NaN. BAD otherwise, with its reason. */
static inline int check_key(const item *key, char *err)
{
    if (key->kind == STR || key->kind == BIN || key->kind == UINT || key->kind == INT)
        return SL_CODEC_OK;
    if (key->kind != FLOAT)
        return fail(err, "msgpack: map keys must be strings or numbers");
    if (isnan(key->v.f))
        return fail(err, "msgpack: map key is NaN");
    return SL_CODEC_OK;
}

/* Moves *pos past the rest of a value whose header read_item has read: the elements of a
 * container, nested ones included, checking map keys as the table path does (a skipped
 * value is BAD where the table path would refuse it). Recursion is bounded by the 32
 * levels sl_mpack_measure allows. */
static int skip_rest(const unsigned char *b, size_t *pos, const item *it, char *err)
{
    item sub;
    if (it->kind == ARRAY) {
        for (uint32_t i = 0; i < it->n; i++) {
            read_item(b, pos, &sub);
            if (skip_rest(b, pos, &sub, err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
        }
    } else if (it->kind == MAP) {
        for (uint32_t i = 0; i < it->n; i++) {
            read_item(b, pos, &sub);
            if (check_key(&sub, err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            read_item(b, pos, &sub);
            if (skip_rest(b, pos, &sub, err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
        }
    }
    return SL_CODEC_OK;
}

/* Writes the dotted name of the field at p ("user.age") into out (cap bytes). */
static void path_name(const path *p, char *out, size_t cap)
{
    const sl_schema_field *chain[SL_TYPED_MAX_DEPTH + 1];
    int n = 0;
    size_t len = 0;
    for (; p != NULL && n <= SL_TYPED_MAX_DEPTH; p = p->up)
        chain[n++] = p->f;
    out[0] = '\0';
    while (n-- > 0 && len < cap)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "." : "", chain[n]->name);
}

/* Returns BAD for a value the field's type cannot take: a number out of an i64's reach is
 * shown, any other value by its kind. */
static __attribute__((noinline)) int wrong_value(char *err, const path *at, const item *it)
{
    char name[SL_CODEC_ERRLEN], got[48];
    path_name(at, name, sizeof name);
    if (at->f->type == SL_TYPED_I64 && it->kind == UINT)
        snprintf(got, sizeof got, "%" PRIu64, it->v.u);
    else if (at->f->type == SL_TYPED_I64 && it->kind == FLOAT)
        snprintf(got, sizeof got, "%.17g", it->v.f);
    else
        snprintf(got, sizeof got, "%s", kind_names[it->kind]);
    return fail(err, "field %s: want %s, got %s", name, sl_typed_type_names[at->f->type], got);
}

static int read_map(const sl_schema *s, const unsigned char *b, size_t *pos, uint32_t pairs,
                    sl_typed_field *rec, const path *up, char *err);

/* Reads the value at b[*pos] into the field's slot v (a nested record: its header). */
static inline int read_field(const unsigned char *b, size_t *pos, sl_typed_field *v,
                             const path *at, char *err)
{
    const sl_schema_field *f = at->f;
    item it;
    read_item(b, pos, &it);
    if (it.kind == NIL) {
        v->present = 0;         /* absent; the last of duplicate keys wins */
        return SL_CODEC_OK;
    }
    switch (f->type) {
    case SL_TYPED_I64:
        if (it.kind == UINT && it.v.u <= INT64_MAX) {
            v->v.i64 = (int64_t)it.v.u;
        } else if (it.kind == INT) {
            v->v.i64 = it.v.i;
        } else if (it.kind == FLOAT && it.v.f >= -9223372036854775808.0
                   && it.v.f < 9223372036854775808.0
                   && (double)(int64_t)it.v.f == it.v.f) {
            v->v.i64 = (int64_t)it.v.f;     /* an integral float (range tested first) */
        } else {
            goto wrong;
        }
        break;
    case SL_TYPED_F64:
        /* The double the table path pushes for the same integer or float. */
        if (it.kind == FLOAT)
            v->v.f64 = it.v.f;
        else if (it.kind == UINT)
            v->v.f64 = (double)it.v.u;
        else if (it.kind == INT)
            v->v.f64 = (double)it.v.i;
        else
            goto wrong;
        break;
    case SL_TYPED_BOOL:
        if (it.kind != BOOL)
            goto wrong;
        v->v.b = it.v.b;
        break;
    case SL_TYPED_STRING:
        if (it.kind != STR && it.kind != BIN)   /* both are Lua strings on the table path */
            goto wrong;
        v->v.str = it.str;
        v->len = it.n;
        break;
    default:                                    /* SL_TYPED_RECORD */
        if (it.kind != MAP)
            goto wrong;
        /* Cleared again: of duplicate keys the last map wins whole, as on the table path. */
        sl_typed_clear(f->record, v);
        return read_map(f->record, b, pos, it.n, v, at, err);
    }
    v->present = 1;
    return SL_CODEC_OK;
wrong:
    return wrong_value(err, at, &it);
}

/* Reads pairs key/value pairs at b[*pos] into rec, a record of s cleared already. Keys as
 * the table path takes them: str and bin keys name fields (others are skipped with their
 * values), numbers are keys no field has, any other key is BAD. */
static int read_map(const sl_schema *s, const unsigned char *b, size_t *pos, uint32_t pairs,
                    sl_typed_field *rec, const path *up, char *err)
{
    for (uint32_t i = 0; i < pairs; i++) {
        item key, val;
        const sl_schema_field *f = NULL;
        read_item(b, pos, &key);
        if (key.kind == STR || key.kind == BIN)
            f = sl_schema_find(s, key.str, key.n);
        else if (check_key(&key, err) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        if (f == NULL) {
            read_item(b, pos, &val);
            if (skip_rest(b, pos, &val, err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            continue;
        }
        path at = { up, f };
        if (read_field(b, pos, rec + f->slot, &at, err) != SL_CODEC_OK)
            return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}

int sl_typed_mpack_decode(const sl_schema *s, const char *p, size_t len, size_t *used,
                          sl_typed_field *rec, char *err)
{
    size_t size = 0, pos = 0;
    const unsigned char *b = (const unsigned char *)(p ? p : "");
    item top;
    *used = 0;
    int rc = sl_mpack_measure((const char *)b, len, 0, &size, err);
    if (rc == SL_CODEC_MORE)
        return SL_CODEC_MORE;
    *used = size;           /* on BAD too: measure's bytes to skip, or the whole object */
    if (rc != SL_CODEC_OK)
        return SL_CODEC_BAD;
    sl_typed_clear(s, rec);
    read_item(b, &pos, &top);
    if (top.kind != MAP)
        return fail(err, "msgpack: a record must be a map, not %s %s",
                    top.kind == ARRAY ? "an" : "a", kind_names[top.kind]);
    return read_map(s, b, &pos, top.n, rec, NULL, err);
}

/* ---- Encoding ---------------------------------------------------------------------- */

/* Writes the type byte c and the n low bytes of x big-endian; returns the bytes written. */
static inline size_t put_be(char *o, unsigned c, uint64_t x, int n)
{
    o[0] = (char)c;
    for (int i = 0; i < n; i++)
        o[1 + i] = (char)(x >> (8 * (n - 1 - i)));
    return 1 + (size_t)n;
}

/* An integer in the smallest form, as msgpack-c's msgpack_pack_uint64/int64 choose it
 * (sl_mpack_encode packs integers >= 0 as unsigned, the rest as signed). */
static inline void put_int(sl_buf *out, int64_t i)
{
    char *o = room(out, 9);
    size_t n;
    if (i >= 0) {
        uint64_t u = (uint64_t)i;
        if (u < 128)
            o[0] = (char)u, n = 1;
        else if (u < 256)
            n = put_be(o, 0xcc, u, 1);
        else if (u < 65536)
            n = put_be(o, 0xcd, u, 2);
        else if (u < (UINT64_C(1) << 32))
            n = put_be(o, 0xce, u, 4);
        else
            n = put_be(o, 0xcf, u, 8);
    } else if (i >= -32) {
        o[0] = (char)(int8_t)i, n = 1;
    } else if (i >= -128) {
        n = put_be(o, 0xd0, (uint64_t)i, 1);
    } else if (i >= -32768) {
        n = put_be(o, 0xd1, (uint64_t)i, 2);
    } else if (i >= -(INT64_C(1) << 31)) {
        n = put_be(o, 0xd2, (uint64_t)i, 4);
    } else {
        n = put_be(o, 0xd3, (uint64_t)i, 8);
    }
    out->len += n;
}

/* A str header and its bytes, in the smallest form (msgpack_pack_str). */
static inline void put_str(sl_buf *out, const char *s, size_t len)
{
    char *o = room(out, len + 5);
    size_t n;
    if (len < 32)
        o[0] = (char)(0xa0 | len), n = 1;
    else if (len < 256)
        n = put_be(o, 0xd9, len, 1);
    else if (len < 65536)
        n = put_be(o, 0xda, len, 2);
    else
        n = put_be(o, 0xdb, len, 4);
    memcpy(o + n, s, len);
    out->len += n + len;
}

/* A double as sl_mpack_encode packs a number: integral values in the int64 range as
 * integers, the rest as float64. 0 for NaN and infinities. */
static inline int put_number(sl_buf *out, double x)
{
    if (!isfinite(x))
        return 0;
    /* The range test first: converting an out-of-range double to int64 is UB. */
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0
        && (double)(int64_t)x == x) {
        put_int(out, (int64_t)x);
        return 1;
    }
    uint64_t u;
    memcpy(&u, &x, 8);
    out->len += put_be(room(out, 9), 0xcb, u, 8);
    return 1;
}

/* Appends the record rec (its header says its schema) as a map. */
static int put_record(const sl_typed_field *rec, sl_buf *out, const path *up, char *err)
{
    const sl_schema *s = rec[0].v.schema;
    uint32_t count = 0;
    for (int i = 0; i < s->nfields; i++)
        count += rec[s->fields[i].slot].present != 0;
    char *o = room(out, 5);
    if (count < 16)
        o[0] = (char)(0x80 | count), out->len++;
    else
        out->len += put_be(o, count < 65536 ? 0xde : 0xdf, count, count < 65536 ? 2 : 4);
    for (int i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];
        const sl_typed_field *v = rec + f->slot;
        if (!v->present)
            continue;
        put_str(out, f->name, f->namelen);
        switch (f->type) {
        case SL_TYPED_I64:
            put_int(out, v->v.i64);
            break;
        case SL_TYPED_F64:
            if (!put_number(out, v->v.f64)) {
                char name[SL_CODEC_ERRLEN];
                path at = { up, f };
                path_name(&at, name, sizeof name);
                return fail(err, "msgpack: field %s: cannot encode NaN/inf", name);
            }
            break;
        case SL_TYPED_BOOL:
            *room(out, 1) = v->v.b ? (char)0xc3 : (char)0xc2;
            out->len++;
            break;
        case SL_TYPED_STRING:
            put_str(out, v->v.str, v->len);
            break;
        default: {                      /* SL_TYPED_RECORD */
            path at = { up, f };
            if (put_record(v, out, &at, err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            break;
        }
        }
    }
    return SL_CODEC_OK;
}

int sl_typed_mpack_encode(const sl_typed_field *rec, sl_buf *out, char *err)
{
    size_t len0 = out->len;
    if (put_record(rec, out, NULL, err) != SL_CODEC_OK) {
        out->len = len0;    /* no partial output */
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}
