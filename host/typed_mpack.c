/* typed_mpack.c -- msgpack records of a schema (typed.h): a map decoded straight from its
 * bytes into a record's slots (no msgpack-c, no zone), and a record packed as a map.
 *
 * Decoding is one walk over the object's bytes that fills the record and checks the
 * object as sl_mpack_decode's measure() does, in the same order, so MORE, a malformed
 * object and *used come out exactly as on the table path (which the framer relies on): a
 * truncated object is MORE, 0xc1 or nesting past 32 levels BAD with 1 byte used, wherever
 * they are; an ext, a value of the wrong type or a key the table path refuses is BAD with
 * the whole object used, and so is known only once the walk reaches the object's end.
 * Values take the types the table path gives them (an integer or a float is a number, str
 * and bin both strings); packing follows sl_mpack_encode byte for byte. */
#include "typed.h"
#include "codec.h"
#include "codec_shared.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* As DECODE_DEPTH in codec_mpack.c: msgpack-c's own limit, which the table path keeps. */
#define MAX_NESTING 32

/* ---- Decoding ---------------------------------------------------------------------- */

/* What one msgpack value is, once its header is read. */
enum { NIL, BOOL, UINT, INT, FLOAT, STR, BIN, EXT, ARRAY, MAP };
static const char *const kind_names[] = {
    "nil", "bool", "number", "number", "number", "string", "bin", "ext", "array", "map"
};

typedef struct item {
    int kind;
    uint32_t n;         /* STR, BIN: bytes; ARRAY, MAP: elements, pairs */
    size_t at;          /* where its header starts */
    const char *str;    /* STR, BIN: the bytes */
    union {
        uint64_t u;     /* UINT (every integer >= 0) */
        int64_t i;      /* INT (every integer < 0) */
        double f;       /* FLOAT */
        int b;          /* BOOL */
    } v;
} item;

/* One object being decoded. */
typedef struct dec {
    const unsigned char *b;
    size_t len, pos;    /* its bytes; the next one to read */
    int has_ext;        /* an ext was passed: BAD once the object is whole */
    int wrong;          /* the record is BAD, its reason in err, once the object is whole */
    char *err;
} dec;

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

/* read_item's general case: any value but a positive fixint or a fixstr. */
static __attribute__((noinline)) int read_other(dec *d, item *it)
{
    size_t avail = d->len - d->pos, head = 1;
    uint64_t body = 0;                      /* STR, BIN, EXT: bytes after the header */
    const unsigned char *p = d->b + d->pos;
    if (avail == 0)
        return SL_CODEC_MORE;
    unsigned c = p[0];
    it->at = d->pos;
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
        body = it->n = c & 0x1f;
    } else if (c <= 0xc3) {
        if (c == 0xc1)
            return fail(d->err, "msgpack: invalid type byte 0xc1 at byte %zu", d->pos);
        it->kind = c == 0xc0 ? NIL : BOOL;
        it->v.b = c == 0xc3;
    } else {
        /* The rest carry a fixed body, or a length or count field of 1, 2 or 4 bytes. */
        static const unsigned char need[] = {  /* header bytes, from 0xc4 */
            2, 3, 5, 2, 3, 5, 5, 9, 2, 3, 5, 9, 2, 3, 5, 9,     /* c4..d3 */
            2, 2, 2, 2, 2, 2, 3, 5, 3, 5, 3, 5,                 /* d4..df */
        };
        head = need[c - 0xc4];
        if (avail < head)
            return SL_CODEC_MORE;
        int64_t s;
        switch (c) {
        case 0xc4: case 0xc5: case 0xc6:                    /* bin 8, 16, 32 */
            it->kind = BIN;
            body = it->n = c == 0xc4 ? p[1] : c == 0xc5 ? be16(p + 1) : be32(p + 1);
            break;
        case 0xd9: case 0xda: case 0xdb:                    /* str 8, 16, 32 */
            it->kind = STR;
            body = it->n = c == 0xd9 ? p[1] : c == 0xda ? be16(p + 1) : be32(p + 1);
            break;
        case 0xc7: case 0xc8: case 0xc9:                    /* ext 8, 16, 32 */
            it->kind = EXT;
            body = 1 + (uint64_t)(c == 0xc7 ? p[1] : c == 0xc8 ? be16(p + 1) : be32(p + 1));
            break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:     /* fixext 1..16 */
            it->kind = EXT;
            head = 1;
            body = 1 + ((uint64_t)1 << (c - 0xd4));        /* type + data */
            break;
        case 0xca: {
            uint32_t u = be32(p + 1);
            float x;
            memcpy(&x, &u, 4);
            it->kind = FLOAT;
            it->v.f = x;        /* as msgpack-c widens a float32 */
            break;
        }
        case 0xcb: {
            uint64_t u = be64(p + 1);
            it->kind = FLOAT;
            memcpy(&it->v.f, &u, 8);
            break;
        }
        case 0xcc: it->kind = UINT; it->v.u = p[1]; break;
        case 0xcd: it->kind = UINT; it->v.u = be16(p + 1); break;
        case 0xce: it->kind = UINT; it->v.u = be32(p + 1); break;
        case 0xcf: it->kind = UINT; it->v.u = be64(p + 1); break;
        case 0xd0: s = (int8_t)p[1]; goto sint;
        case 0xd1: s = (int16_t)be16(p + 1); goto sint;
        case 0xd2: s = (int32_t)be32(p + 1); goto sint;
        case 0xd3: s = (int64_t)be64(p + 1); goto sint;
        case 0xdc: it->kind = ARRAY; it->n = be16(p + 1); break;
        case 0xdd: it->kind = ARRAY; it->n = be32(p + 1); break;
        case 0xde: it->kind = MAP; it->n = be16(p + 1); break;
        default: it->kind = MAP; it->n = be32(p + 1); break;    /* 0xdf */
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
    if (avail - head < body)
        return SL_CODEC_MORE;
    it->str = (const char *)p + head;
    d->pos += head + (size_t)body;
    d->has_ext |= it->kind == EXT;
    return SL_CODEC_OK;
}

/* Reads the value at d->pos: a scalar, string or ext whole (d->pos past it), a
 * container's header only (its elements follow). OK; MORE when the bytes end first; BAD
 * for 0xc1 (the one byte msgpack never uses), as measure() says it. The short strings
 * that keys mostly are, and small integers, are read here in line. */
static inline int read_item(dec *d, item *it)
{
    size_t avail = d->len - d->pos;
    const unsigned char *p = d->b + d->pos;
    if (avail > 0 && p[0] <= 0x7f) {
        it->kind = UINT;
        it->v.u = p[0];
        it->at = d->pos++;
        return SL_CODEC_OK;
    }
    if (avail > 0 && (p[0] & 0xe0) == 0xa0 && avail - 1 >= (size_t)(p[0] & 0x1f)) {
        it->kind = STR;
        it->n = p[0] & 0x1f;
        it->str = (const char *)p + 1;
        it->at = d->pos;
        d->pos += 1 + it->n;
        return SL_CODEC_OK;
    }
    return read_other(d, it);
}

/* Records reason as the record's, unless an earlier one was: the first is reported. */
static void wrong(dec *d, const char *reason)
{
    if (!d->wrong)
        snprintf(d->err, SL_CODEC_ERRLEN, "%s", reason);
    d->wrong = 1;
}

/* Whether key is one the table path takes (push_key in codec_mpack.c): a string, bin or
 * number, not NaN; otherwise the record is wrong. */
static inline void check_key(dec *d, const item *key)
{
    if (key->kind == FLOAT ? isnan(key->v.f) : key->kind < UINT || key->kind > BIN)
        wrong(d, key->kind == FLOAT ? "msgpack: map key is NaN"
                                    : "msgpack: map keys must be strings or numbers");
}

/* BAD unless a container at this level (its enclosing containers) is within the 32
 * levels measure() allows. */
static inline int check_level(dec *d, const item *it, int level)
{
    if (level >= MAX_NESTING && (it->kind == ARRAY || it->kind == MAP))
        return fail(d->err, "msgpack: nested deeper than %d levels at byte %zu", MAX_NESTING,
                    it->at);
    return SL_CODEC_OK;
}

/* Passes the elements of a value whose header read_item has read (nested ones included),
 * checking them as measure() and the table path do. Recursion is bounded by the 32
 * levels check_level allows. */
static int skip_rest(dec *d, const item *it, int level)
{
    item sub;
    int rc;
    uint64_t n = it->kind == MAP ? 2 * (uint64_t)it->n : it->kind == ARRAY ? it->n : 0;
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = read_item(d, &sub)) != SL_CODEC_OK
            || (rc = check_level(d, &sub, level + 1)) != SL_CODEC_OK)
            return rc;
        if (it->kind == MAP && i % 2 == 0)
            check_key(d, &sub);
        if (sub.kind >= ARRAY && (rc = skip_rest(d, &sub, level + 1)) != SL_CODEC_OK)
            return rc;
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

/* Makes the record wrong for a value the field's type cannot take: a number is shown
 * ("got 1", "got 1.5", as typed_json.c shows one), any other value by its kind. */
static __attribute__((noinline)) void wrong_value(dec *d, const path *at, const item *it)
{
    char name[SL_CODEC_ERRLEN], got[48];
    if (d->wrong)
        return;
    path_name(at, name, sizeof name);
    if (it->kind == UINT)
        snprintf(got, sizeof got, "%" PRIu64, it->v.u);
    else if (it->kind == INT)
        snprintf(got, sizeof got, "%" PRId64, it->v.i);
    else if (it->kind == FLOAT)
        snprintf(got, sizeof got, "%.17g", it->v.f);
    else
        snprintf(got, sizeof got, "%s", kind_names[it->kind]);
    fail(d->err, "field %s: want %s, got %s", name, sl_typed_type_names[at->f->type], got);
    d->wrong = 1;
}

static int read_map(dec *d, const sl_schema *s, uint32_t pairs, sl_typed_field *rec,
                    const path *up, int level);

/* Reads the value at d->pos (a map's, at level) into the field's slot v (a nested
 * record: its header). OK, MORE or BAD as read_item and check_level say; a value of the
 * wrong type makes the record wrong, and is passed. */
static inline int read_field(dec *d, sl_typed_field *v, const path *at, int level)
{
    const sl_schema_field *f = at->f;
    item it;
    int rc = read_item(d, &it);
    if (rc != SL_CODEC_OK || (rc = check_level(d, &it, level)) != SL_CODEC_OK)
        return rc;
    if (it.kind == NIL) {
        if (f->type == SL_TYPED_RECORD)
            sl_typed_clear(f->record, v);   /* a record given before it goes too */
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
        return read_map(d, f->record, it.n, v, at, level);
    }
    v->present = 1;
    return SL_CODEC_OK;
wrong:
    wrong_value(d, at, &it);
    return skip_rest(d, &it, level);
}

/* Reads pairs key/value pairs of the map at level, at d->pos, into rec, a record of s
 * cleared already. Keys as the table path takes them: str and bin keys name fields
 * (others are passed with their values), numbers are keys no field has, others wrong. */
static int read_map(dec *d, const sl_schema *s, uint32_t pairs, sl_typed_field *rec,
                    const path *up, int level)
{
    int rc;
    for (uint32_t i = 0; i < pairs; i++) {
        item key, val;
        const sl_schema_field *f = NULL;
        if ((rc = read_item(d, &key)) != SL_CODEC_OK
            || (rc = check_level(d, &key, level + 1)) != SL_CODEC_OK)
            return rc;
        if (key.kind == STR || key.kind == BIN) {
            f = sl_schema_find(s, key.str, key.n);
        } else {
            check_key(d, &key);
            if (key.kind >= ARRAY && (rc = skip_rest(d, &key, level + 1)) != SL_CODEC_OK)
                return rc;
        }
        if (f != NULL) {
            path at = { up, f };
            rc = read_field(d, rec + f->slot, &at, level + 1);
        } else if ((rc = read_item(d, &val)) == SL_CODEC_OK
                   && (rc = check_level(d, &val, level + 1)) == SL_CODEC_OK) {
            rc = skip_rest(d, &val, level + 1);
        }
        if (rc != SL_CODEC_OK)
            return rc;
    }
    return SL_CODEC_OK;
}

int sl_typed_mpack_decode(const sl_schema *s, const char *p, size_t len, size_t *used,
                          sl_typed_field *rec, char *err)
{
    dec d = { (const unsigned char *)(p ? p : ""), len, 0, 0, 0, err };
    item top;
    int rc;
    *used = 0;
    sl_typed_clear(s, rec);
    if ((rc = read_item(&d, &top)) == SL_CODEC_OK) {
        if (top.kind == MAP) {
            rc = read_map(&d, s, top.n, rec, NULL, 0);
        } else {
            char reason[64];
            snprintf(reason, sizeof reason, "msgpack: a record must be a map, not %s %s",
                     top.kind == ARRAY ? "an" : top.kind == EXT ? "an" : "a",
                     kind_names[top.kind]);
            wrong(&d, reason);
            rc = skip_rest(&d, &top, 0);
        }
    }
    if (rc == SL_CODEC_MORE)
        return SL_CODEC_MORE;               /* nothing used */
    if (rc != SL_CODEC_OK) {
        *used = 1;                          /* malformed: resynchronise a byte on */
        return SL_CODEC_BAD;
    }
    *used = d.pos;                          /* the whole object, on BAD too */
    if (d.has_ext)
        return fail(err, "msgpack: ext types are not supported");
    return d.wrong ? SL_CODEC_BAD : SL_CODEC_OK;
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
