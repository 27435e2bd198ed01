/* typed_json.c -- JSON to and from typed records (typed.h): sl_typed_json_decode fills a
 * record's slots in one pass over a line, sl_typed_json_encode writes one back.
 *
 * The decoder knows the schema's field names: each key is looked up (sl_schema_find,
 * after a guess from the record before) and a field's value goes straight into its slot,
 * strings as pointers into the line unless they hold escapes (then unescaped into the
 * arena); every other value is skipped but checked, so a line is BAD here whenever
 * sl_json_decode would call it malformed, with the same message, and also when a field
 * has a value of the wrong type. Numbers, escapes and string escaping are codec_json.c's
 * own rules (codec_shared.h), so both paths give the same values and bytes for the same
 * input. */
#include "codec.h"
#include "codec_shared.h"
#include "typed.h"

#include <math.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Decoder ----------------------------------------------------------------------- */

typedef struct tdec {
    const char *s;      /* start of the record, for error offsets */
    const char *p;      /* next byte to read */
    const char *end;    /* one past the last byte; never read */
    char *err;
    sl_typed_arena *a;  /* where unescaped strings go (may be NULL: no room) */
    int depth;          /* objects and arrays open, as codec_json.c counts them */
    int nest;           /* nested records open: path[0, nest) their fields */
    const sl_schema_field *path[SL_TYPED_MAX_DEPTH + 1];
} tdec;

static size_t offset(const tdec *d, const char *p)
{
    return (size_t)(p - d->s);
}

/* codec_json.c's message for a byte the grammar does not allow at d->p. */
static int unexpected(tdec *d)
{
    return json_unexpected(d->err, d->s, d->p, d->end);
}

/* A value of the wrong type for field f: "field user.age: want i64, got string", the
 * path of the nested records it is in first. */
static int wrong_type(tdec *d, const sl_schema_field *f, const char *got, int gotlen)
{
    char path[SL_CODEC_ERRLEN];
    size_t n = 0;
    path[0] = '\0';
    for (int i = 0; i < d->nest && n < sizeof path; i++)
        n += (size_t)snprintf(path + n, sizeof path - n, "%s.", d->path[i]->name);
    return fail(d->err, "field %s%s: want %s, got %.*s", path, f->name,
                sl_typed_type_names[f->type], gotlen, got);
}

static __attribute__((noinline)) const char *ws_run(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* White space from p on skipped: the first byte after it. Compact JSON has none, which
 * one comparison tells (every white space byte is below '!'). */
static inline const char *ws(const char *p, const char *end)
{
    if (__builtin_expect(p < end && (unsigned char)*p > ' ', 1))
        return p;
    return ws_run(p, end);
}

/* Whether the byte at *p is c, white space before it stepped over (*p moved past it). */
static inline int is_at(const char **p, const char *end, char c)
{
    if (*p < end && **p == c)
        return 1;
    *p = ws(*p, end);
    return *p < end && **p == c;
}

static inline void skip_ws(tdec *d)
{
    d->p = ws(d->p, d->end);
}

/* Whether the next byte is c; if so, steps past it. */
static inline int next_is(tdec *d, char c)
{
    if (d->p < d->end && *d->p == c) {
        d->p++;
        return 1;
    }
    return 0;
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* The first byte at or after p that ends a run of plain string bytes: a quote, a
 * backslash or a control character (end when there is none). Sixteen bytes at a time
 * with SSE2 (a byte is below 0x20 when its unsigned max with 0x1f is 0x1f), then eight
 * in a word: a byte of the word is flagged when it equals '"' or '\\' or is below 0x20,
 * and the lowest flag is exact (a borrow only runs upwards from a byte that really
 * matched). */
static inline const char *string_stop(const char *p, const char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                  control = _mm_set1_epi8(0x1f);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                _mm_cmpeq_epi8(x, backslash)),
                                   _mm_cmpeq_epi8(_mm_max_epu8(x, control), control));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
        uint64_t hit = ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w);
        hit &= HIGHS;
        if (hit)
            return p + (__builtin_ctzll(hit) >> 3);
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    return p;
}

/* The rest of a string that holds escapes, from the first backslash (d->p) to past the
 * closing quote, checked as codec_json.c checks it; start is its first content byte.
 * With o != NULL the unescaped content is written from o (at most up to oend) and its
 * length put in *olen; SL_TYPED_FULL when it does not fit. Out of line: rare. */
static __attribute__((noinline)) int read_escaped(tdec *d, const char *start, char *o,
                                                  char *oend, size_t *olen)
{
    const char *p = d->p, *end = d->end;
    char *o0 = o;
    if (o) {
        if ((size_t)(oend - o) < (size_t)(p - start))
            return SL_TYPED_FULL;
        memcpy(o, start, (size_t)(p - start));
        o += p - start;
    }
    for (;;) {
        const char *run = p;
        p = string_stop(p, end);
        if (o && p > run) {
            if ((size_t)(oend - o) < (size_t)(p - run))
                return SL_TYPED_FULL;
            memcpy(o, run, (size_t)(p - run));
            o += p - run;
        }
        if (p >= end) {
            d->p = p;
            return fail(d->err, "json: unterminated string at byte %zu", offset(d, start - 1));
        }
        if (*p == '"')
            break;
        if ((unsigned char)*p < 0x20) {
            d->p = p;
            return fail(d->err, "json: control character in string at byte %zu", offset(d, p));
        }
        /* A backslash. */
        const char *esc = p++;
        if (p >= end) {
            d->p = p;
            return fail(d->err, "json: unterminated string at byte %zu", offset(d, start - 1));
        }
        char c = *p++, u[4];
        int n = 1;
        switch (c) {
        case '"': case '\\': case '/': u[0] = c; break;
        case 'b': u[0] = '\b'; break;
        case 'f': u[0] = '\f'; break;
        case 'n': u[0] = '\n'; break;
        case 'r': u[0] = '\r'; break;
        case 't': u[0] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (json_u_escape(&p, end, &cp) != 0)
                return fail(d->err, "json: %s at byte %zu", json_u_escape_error(p, end),
                            offset(d, esc));
            n = put_utf8(u, cp);
            break;
        }
        default:
            return fail(d->err, "json: bad escape '\\%c' at byte %zu",
                        (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f ? c : '?',
                        offset(d, esc));
        }
        if (o) {
            if (oend - o < n)
                return SL_TYPED_FULL;
            memcpy(o, u, (size_t)n);
            o += n;
        }
    }
    d->p = p + 1;
    if (o)
        *olen = (size_t)(o - o0);
    return SL_CODEC_OK;
}

/* The string whose opening quote is at d->p, checked, d->p past it: its content in *str,
 * *len, pointing into the record when it holds no escapes. Otherwise it is unescaped to
 * the arena (at *str, its used grown), or only checked when to_arena is 0 (*str NULL). */
static inline int read_string(tdec *d, int to_arena, const char **str, size_t *len)
{
    const char *start = d->p + 1, *p = string_stop(start, d->end);
    if (p < d->end && *p == '"') {
        *str = start;
        *len = (size_t)(p - start);
        d->p = p + 1;
        return SL_CODEC_OK;
    }
    if (p < d->end && *p == '\\') {
        d->p = p;
        *str = NULL;
        if (!to_arena)
            return read_escaped(d, start, NULL, NULL, NULL);
        if (d->a == NULL)
            return SL_TYPED_FULL;
        char *o = d->a->base + d->a->used;
        int rc = read_escaped(d, start, o, d->a->base + d->a->cap, len);
        if (rc == SL_CODEC_OK) {
            *str = o;
            d->a->used += *len;
        }
        return rc;
    }
    d->p = p;
    if (p < d->end)
        return fail(d->err, "json: control character in string at byte %zu", offset(d, p));
    return fail(d->err, "json: unterminated string at byte %zu", offset(d, start - 1));
}

/* The key whose opening quote is at d->p, unescaped when it must be: into kbuf (ksize
 * bytes) when it fits, else into *heap (malloc'd; the caller frees it). */
static int read_key(tdec *d, char *kbuf, size_t ksize, char **heap, const char **key,
                    size_t *klen)
{
    const char *q = d->p;
    int rc = read_string(d, 0, key, klen);
    if (rc != SL_CODEC_OK || *key != NULL)
        return rc;
    /* It held escapes, and was checked: unescape it again into a buffer of room enough
     * (the unescaped text is never longer than the escaped). */
    const char *after = d->p;
    size_t raw = (size_t)(after - q);
    char *o = kbuf;
    if (raw > ksize) {
        o = *heap = malloc(raw);
        if (o == NULL)
            return fail(d->err, "json: out of memory reading a key at byte %zu", offset(d, q));
    }
    d->p = q + 1;
    while (*d->p != '\\')
        d->p++;
    rc = read_escaped(d, q + 1, o, o + raw, klen);
    *key = o;
    return rc;
}

static int enter(tdec *d)
{
    if (++d->depth > SL_CODEC_MAX_DEPTH)
        return fail(d->err, "json: nested too deep at byte %zu", offset(d, d->p));
    d->p++;     /* past the [ or { */
    return SL_CODEC_OK;
}

static int literal(tdec *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return fail(d->err, "json: bad literal at byte %zu (expected %s)", offset(d, d->p), word);
    d->p += n;
    return SL_CODEC_OK;
}

/* Checks the number at d->p as codec_json.c reads it (a value out of double's range is
 * malformed there too) and steps past it. Its double goes to *v when want_double, and
 * whenever it is needed to tell whether the number is in range: not for digits alone of
 * at most 19 (below 1e19), which integral() reads without it. */
static int read_number(tdec *d, json_number *n, double *v, int want_double)
{
    const char *start = d->p;
    int bad = json_number_scan(start, d->end, n);
    d->p = n->stop;
    if (bad)
        return unexpected(d);
    if (!want_double && n->plain && n->ndig <= 19)
        return SL_CODEC_OK;
    if (decimal_value(start, (size_t)(n->stop - start), n->neg, n->mant, n->ndig, n->exp10, v)
        != 0)
        return fail(d->err, "json: out of memory reading a number at byte %zu", offset(d, start));
    if (isinf(*v))
        return fail(d->err, "json: number out of range at byte %zu", offset(d, start));
    return SL_CODEC_OK;
}

static int skip_value(tdec *d);

/* Skips the object or array at d->p, checking it as sl_json_decode would. */
static int skip_container(tdec *d)
{
    int object = *d->p == '{';
    char close = object ? '}' : ']';
    if (enter(d) != SL_CODEC_OK)
        return SL_CODEC_BAD;
    skip_ws(d);
    if (!next_is(d, close)) {
        for (;;) {
            if (object) {
                const char *key;
                size_t klen;
                skip_ws(d);
                if (d->p >= d->end || *d->p != '"')
                    return unexpected(d);
                if (read_string(d, 0, &key, &klen) != SL_CODEC_OK)
                    return SL_CODEC_BAD;
                skip_ws(d);
                if (!next_is(d, ':'))
                    return unexpected(d);
            }
            if (skip_value(d) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            skip_ws(d);
            if (next_is(d, ','))
                continue;
            if (next_is(d, close))
                break;
            return unexpected(d);
        }
    }
    d->depth--;
    return SL_CODEC_OK;
}

/* Skips the value at d->p (after white space), a value of a key not in the schema. */
static int skip_value(tdec *d)
{
    skip_ws(d);
    if (d->p >= d->end)
        return unexpected(d);
    switch (*d->p) {
    case '{': case '[':
        return skip_container(d);
    case '"': {
        const char *str;
        size_t len;
        return read_string(d, 0, &str, &len);
    }
    case 't':
        return literal(d, "true", 4);
    case 'f':
        return literal(d, "false", 5);
    case 'n':
        return literal(d, "null", 4);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': {
        json_number n;
        double v;
        return read_number(d, &n, &v, 0);
    }
    default:
        return unexpected(d);
    }
}

/* The int64 value of the number just read, when it is integral and in range. Digits
 * alone (most i64 values) are read as an integer, exactly; others by their double v
 * (which read_number computed for them). */
static int integral(const json_number *n, double v, int64_t *out)
{
    if (n->plain && n->ndig <= 19) {
        if (n->neg ? n->mant > (UINT64_C(1) << 63) : n->mant > (uint64_t)INT64_MAX)
            return 0;
        *out = n->neg ? (int64_t)(UINT64_C(0) - n->mant) : (int64_t)n->mant;
        return 1;
    }
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0) || v != floor(v))
        return 0;
    *out = (int64_t)v;
    return 1;
}

/* Records of a stream mostly hold the same keys in the same order, so the field found at
 * key k of an object of schema s is remembered (at (hash of s + k) of a table of this
 * thread), and the next object's key k is compared with that field's name before it is
 * looked up: one inline comparison instead of a hash and a memcmp call. A wrong or stale
 * guess (another schema at the same place, say) only costs the lookup, since it is
 * checked against the name of the field of s that it names. */
#define GUESSES 1024
static _Thread_local uint8_t guess[GUESSES];    /* field index + 1, or 0 */

static inline const sl_schema_field *find_field(const sl_schema *s, unsigned at,
                                                const char *key, size_t klen)
{
    uint8_t *g = &guess[at & (GUESSES - 1)];
    if (*g != 0 && *g <= s->nfields) {
        const sl_schema_field *f = &s->fields[*g - 1];
        if (f->namelen == klen && same_bytes(f->name, key, klen))
            return f;
    }
    const sl_schema_field *f = sl_schema_find(s, key, klen);
    if (f != NULL)
        *g = (uint8_t)(f - s->fields + 1);
    return f;
}

static int decode_object(tdec *d, const sl_schema *s, sl_typed_field *rec);

/* The value at d->p (after white space) of field f, whose slot is *v. */
static int decode_field(tdec *d, const sl_schema_field *f, sl_typed_field *v)
{
    skip_ws(d);
    if (d->p >= d->end)
        return unexpected(d);
    switch (*d->p) {
    case '"': {
        if (f->type != SL_TYPED_STRING)
            return wrong_type(d, f, "string", 6);
        const char *str = NULL;
        size_t len = 0;
        int rc = read_string(d, 1, &str, &len);
        if (rc != SL_CODEC_OK)
            return rc;
        if (len > UINT32_MAX)
            return fail(d->err, "field %s: string of more than 4 GiB", f->name);
        v->v.str = str;
        v->len = (uint32_t)len;
        v->present = 1;
        return SL_CODEC_OK;
    }
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': {
        const char *start = d->p;
        json_number n;
        double x = 0;
        /* A number of the wrong type, or not an int64, is named by its text (cut). */
        if (read_number(d, &n, &x, f->type == SL_TYPED_F64) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        int tlen = (int)(d->p - start);
        if (f->type == SL_TYPED_F64)
            v->v.f64 = x;
        else if (f->type != SL_TYPED_I64 || !integral(&n, x, &v->v.i64))
            return wrong_type(d, f, start, tlen < 40 ? tlen : 40);
        v->present = 1;
        return SL_CODEC_OK;
    }
    case 't': case 'f': {
        int t = *d->p == 't';
        if (literal(d, t ? "true" : "false", t ? 4 : 5) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        if (f->type != SL_TYPED_BOOL)
            return wrong_type(d, f, "bool", 4);
        v->v.b = t;
        v->present = 1;
        return SL_CODEC_OK;
    }
    case 'n':
        if (literal(d, "null", 4) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        if (f->type == SL_TYPED_RECORD)
            sl_typed_clear(f->record, v);   /* a record given before it goes too */
        v->present = 0;
        return SL_CODEC_OK;
    case '{': {
        if (f->type != SL_TYPED_RECORD)
            return wrong_type(d, f, "object", 6);
        if (d->nest >= SL_TYPED_MAX_DEPTH)
            return fail(d->err, "field %s: records nested deeper than %d", f->name,
                        SL_TYPED_MAX_DEPTH);
        sl_typed_clear(f->record, v);
        d->path[d->nest++] = f;
        int rc = decode_object(d, f->record, v);
        d->nest--;
        return rc;
    }
    case '[':
        return wrong_type(d, f, "array", 5);
    default:
        return unexpected(d);
    }
}

/* The value at p of field f, whose slot is v, when it is of the commonest forms: an i64
 * written as at most 18 digits, any f64, a string without escapes. Returns the byte after
 * it, or NULL to leave the value to decode_field (every other form, and every error, so
 * that one place reports them). The forms are those json_number_scan and read_string
 * read, so the values are theirs. */
static inline const char *fast_value(const sl_schema_field *f, sl_typed_field *v,
                                     const char *p, const char *end)
{
    switch (f->type) {
    case SL_TYPED_I64: {
        const char *q = p;
        int neg = q < end && *q == '-';
        q += neg;
        if (q >= end || *q < '1' || *q > '9')
            return NULL;
        uint64_t m = 0;
        int nd = 0;
        q = json_digits(q, end, &m, &nd);
        if (nd > 18 || (q < end && (*q == '.' || *q == 'e' || *q == 'E')))
            return NULL;
        v->v.i64 = neg ? -(int64_t)m : (int64_t)m;
        v->present = 1;
        return q;
    }
    case SL_TYPED_F64: {
        json_number n;
        double x;
        if (p >= end || (*p != '-' && !is_digit(*p)) || json_number_scan(p, end, &n) != 0
            || decimal_value(p, (size_t)(n.stop - p), n.neg, n.mant, n.ndig, n.exp10, &x) != 0
            || isinf(x))
            return NULL;
        v->v.f64 = x;
        v->present = 1;
        return n.stop;
    }
    case SL_TYPED_STRING: {
        if (p >= end || *p != '"')
            return NULL;
        const char *q = string_stop(p + 1, end);
        if (q >= end || *q != '"' || (size_t)(q - p - 1) > UINT32_MAX)
            return NULL;
        v->v.str = p + 1;
        v->len = (uint32_t)(q - p - 1);
        v->present = 1;
        return q + 1;
    }
    default:
        return NULL;
    }
}

/* The object at d->p into rec, a cleared record of s. The loop keeps its place in a
 * local (p) rather than in d, so that it stays in a register across the stores into rec;
 * it hands its place to d for the rare paths and takes it back after them. */
static int decode_object(tdec *d, const sl_schema *s, sl_typed_field *rec)
{
    char kbuf[256];
    unsigned at = ptr_hash(s);  /* where key k's guess is: at + k */
    const char *p, *end = d->end;
    if (enter(d) != SL_CODEC_OK)
        return SL_CODEC_BAD;
    p = ws(d->p, end);
    if (p < end && *p == '}') {
        d->p = p + 1;
        d->depth--;
        return SL_CODEC_OK;
    }
    for (;;) {
        const char *key = NULL, *q;
        size_t klen = 0;
        int rc;
        if (!is_at(&p, end, '"')) {
            d->p = p;
            return unexpected(d);
        }
        const sl_schema_field *f;
        q = string_stop(p + 1, end);
        if (q < end && *q == '"') {
            key = p + 1;
            klen = (size_t)(q - key);
            p = q + 1;
            f = find_field(s, at++, key, klen);
        } else {
            char *heap = NULL;
            d->p = p;
            rc = read_key(d, kbuf, sizeof kbuf, &heap, &key, &klen);
            f = rc == SL_CODEC_OK ? find_field(s, at++, key, klen) : NULL;
            free(heap);
            if (rc != SL_CODEC_OK)
                return rc;
            p = d->p;
        }
        if (!is_at(&p, end, ':')) {
            d->p = p;
            return unexpected(d);
        }
        p = ws(p + 1, end);
        if (f == NULL || (q = fast_value(f, rec + f->slot, p, end)) == NULL) {
            d->p = p;
            rc = f ? decode_field(d, f, rec + f->slot) : skip_value(d);
            if (rc != SL_CODEC_OK)
                return rc;
            q = d->p;
        }
        p = q;
        if (is_at(&p, end, ',')) {
            p++;
            continue;
        }
        if (p < end && *p == '}')
            break;
        d->p = p;
        return unexpected(d);
    }
    d->p = p + 1;
    d->depth--;
    return SL_CODEC_OK;
}

/* Whether the bytes at d->p are all of the literal true, false or null their first
 * letter starts. */
static int whole_literal(const tdec *d)
{
    const char *word = *d->p == 't' ? "true" : *d->p == 'f' ? "false" : "null";
    size_t n = strlen(word);
    return (size_t)(d->end - d->p) >= n && memcmp(d->p, word, n) == 0;
}

int sl_typed_json_decode(const sl_schema *s, const char *p, size_t len, sl_typed_field *rec,
                         sl_typed_arena *a, char *err)
{
    if (!p)
        p = "";     /* no pointer arithmetic on NULL */
    tdec d;             /* not zeroed as a whole: path[] is written before it is read */
    d.s = d.p = p;
    d.end = p + len;
    d.err = err;
    d.a = a;
    d.depth = d.nest = 0;
    size_t used0 = a ? a->used : 0;
    int rc;
    sl_typed_clear(s, rec);
    skip_ws(&d);
    if (d.p < d.end && *d.p == '{') {
        rc = decode_object(&d, s, rec);
        skip_ws(&d);
        if (rc == SL_CODEC_OK && d.p < d.end)
            rc = fail(err, "json: trailing characters at byte %zu", offset(&d, d.p));
    } else if (d.p < d.end && memchr("tfn", *d.p, 3) != NULL && !whole_literal(&d)) {
        /* "not json" is no null: say what the table path says of it */
        const char *word = *d.p == 't' ? "true" : *d.p == 'f' ? "false" : "null";
        rc = fail(err, "json: bad literal at byte %zu (expected %s)", offset(&d, d.p), word);
    } else if (d.p < d.end && memchr("[\"tfn-0123456789", *d.p, 16) != NULL) {
        char c = *d.p;
        rc = fail(err, "json: not a JSON object: %s at byte %zu",
                  c == '[' ? "an array" : c == '"' ? "a string" : c == 't' || c == 'f'
                  ? "a bool" : c == 'n' ? "null" : "a number", offset(&d, d.p));
    } else {
        rc = unexpected(&d);
    }
    if (rc != SL_CODEC_OK && a)
        a->used = used0;    /* BAD or FULL: nothing kept */
    return rc;
}

/* ---- Encoder ----------------------------------------------------------------------- */

static inline void put_byte(sl_buf *b, char c)
{
    *room(b, 1) = c;
    b->len++;
}

/* Appends ,"name": (no comma first) for field f, with room for a number after it. Names
 * are mostly plain ASCII, copied as they are checked; any other goes through put_string,
 * which escapes it as the table path escapes a key. */
static inline void put_key(sl_buf *out, const sl_schema_field *f, int first)
{
    size_t n = f->namelen;
    char *o = room(out, n + 4 + 32), *o0 = o;
    const unsigned char *name = (const unsigned char *)f->name;
    if (!first)
        *o++ = ',';
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (escape_of[name[i]] != 0) {
            out->len += !first;         /* the comma stays; the name starts again */
            put_string(out, f->name, n);
            put_byte(out, ':');
            return;
        }
        *o++ = (char)name[i];
    }
    *o++ = '"';
    *o++ = ':';
    out->len += (size_t)(o - o0);
}

static int encode_record(const sl_typed_field *rec, sl_buf *out, char *err, int depth)
{
    const sl_schema *s = rec[0].v.schema;
    int first = 1;
    if (s == NULL)
        return fail(err, "json: a typed record without its schema");
    if (depth > SL_TYPED_MAX_DEPTH)
        return fail(err, "json: typed records nested deeper than %d", SL_TYPED_MAX_DEPTH);
    put_byte(out, '{');
    for (int i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];
        const sl_typed_field *v = rec + f->slot;
        if (!v->present)
            continue;
        put_key(out, f, first);
        first = 0;
        switch (f->type) {
        case SL_TYPED_I64: {
            char *o = room(out, 24);
            out->len += (size_t)sl_codec_int(v->v.i64, o);
            break;
        }
        case SL_TYPED_F64: {
            char *o = room(out, 32);
            int n = sl_codec_number(v->v.f64, o);
            if (n < 0)
                return fail(err, "json: cannot encode NaN/inf (field %s)", f->name);
            out->len += (size_t)n;
            break;
        }
        case SL_TYPED_BOOL:
            if (v->v.b) {
                memcpy(room(out, 4), "true", 4);
                out->len += 4;
            } else {
                memcpy(room(out, 5), "false", 5);
                out->len += 5;
            }
            break;
        case SL_TYPED_STRING:
            put_string(out, v->v.str ? v->v.str : "", v->v.str ? v->len : 0);
            break;
        case SL_TYPED_RECORD:
            if (encode_record(v, out, err, depth + 1) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            break;
        default:
            return fail(err, "json: field %s has an unknown type", f->name);
        }
    }
    put_byte(out, '}');
    return SL_CODEC_OK;
}

int sl_typed_json_encode(const sl_typed_field *rec, sl_buf *out, char *err)
{
    size_t len0 = out->len;
    if (encode_record(rec, out, err, 0) != SL_CODEC_OK) {
        out->len = len0;    /* no partial output */
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}
