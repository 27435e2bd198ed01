/* codec_shared.h -- what the codec implementations (codec_*.c) share; not part of the
 * interface in codec.h.
 *
 * Each piece is here because two codecs need the very same thing: the error convention
 * of codec.h, room at the end of an output buffer, the array-or-map test of a Lua table
 * that every encoder applies, and the exact conversion of decimal digits to a double that
 * every decoder of text applies once its own grammar has read them; and JSON's own text
 * rules, which the table codec (codec_json.c) and the typed one (typed_json.c) must apply
 * alike: the number grammar, \u escapes, string escaping. All are static inline
 * (so unprefixed, like any file's own helpers), so that a hot path compiles as it did when
 * each codec held its own copy. */
#ifndef SL_CODEC_SHARED_H
#define SL_CODEC_SHARED_H

#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"

/* 10^0 .. 10^22, the powers of ten a double holds exactly: the decoders scale digits by
 * them and the number encoder checks a shortest form with them. */
static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Writes the one-line reason for a malformed record or an unencodable value into err
 * (SL_CODEC_ERRLEN bytes) and returns SL_CODEC_BAD, so that a failing path reads
 * `return fail(err, ...)`. */
static inline int fail(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline int fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, SL_CODEC_ERRLEN, fmt, ap);
    va_end(ap);
    return SL_CODEC_BAD;
}

/* Returns room for n more bytes at the end of b; the caller writes them and adds what it
 * wrote to b->len. */
static inline char *room(sl_buf *b, size_t n)
{
    if (b->cap - b->len < n)
        sl_buf_reserve(b, n);
    return b->data + b->len;
}

/* Whether c is a decimal digit. */
static inline int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The index idx as one that stays valid while the stack grows (lua_absindex of Lua 5.2,
 * which LuaJIT lacks): a negative, non-pseudo index counts from the top. */
static inline int absolute_index(lua_State *L, int idx)
{
    return idx < 0 && idx > LUA_REGISTRYINDEX ? lua_gettop(L) + idx + 1 : idx;
}

/* Whether the table at idx, with border n >= 1, has exactly the keys 1..n, and so
 * encodes as an array (codec.h): all keys are integers in [1, n] (so distinct), and
 * there are n of them. Stack unchanged. */
static inline int is_array(lua_State *L, int idx, size_t n)
{
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            lua_pop(L, 1);
            return 0;
        }
        double k = lua_tonumber(L, -1);
        if (!(k >= 1 && k <= (double)n && k == (double)(size_t)k)) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n;
}

/* The value of the decimal number whose text is text[0, n), once a decoder has checked
 * it against its own grammar and read it as a sign (neg), the integer mant of all its
 * digits (ndig of them, leading zeros included: mant has wrapped when ndig > 19) and the
 * power of ten exp10 that scales mant. With at most 19 digits and a power of ten that a
 * double holds exactly, the value is one IEEE multiplication or division of two exact
 * doubles, so correctly rounded, the same as strtod; the rest go to strtod on a
 * NUL-terminated copy, since the text is not NUL-terminated. Returns 0 with the value in
 * *out (an infinity where the number is out of range), or -1 when the copy of a long
 * number cannot be allocated. */
static inline int decimal_value(const char *text, size_t n, int neg, uint64_t mant, int ndig,
                                int exp10, double *out)
{
    if (ndig <= 19) {
        double v = (double)mant;       /* uint64 -> double rounds correctly */
        if (exp10 == 0) {
            *out = neg ? -v : v;
            return 0;
        }
        if (mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
            v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
            *out = neg ? -v : v;
            return 0;
        }
    }
    char small[64], *copy = n < sizeof small ? small : malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, text, n);
    copy[n] = '\0';
    *out = strtod(copy, NULL);
    if (copy != small)
        free(copy);
    return 0;
}

/* ---- JSON text (codec_json.c, typed_json.c) ------------------------------------------- */

/* The message for a byte the grammar does not allow at p, in the text s[0, end): the end
 * of input, a printable character, or another byte, with its offset. */
static inline int json_unexpected(char *err, const char *s, const char *p, const char *end)
{
    size_t at = (size_t)(p - s);

    if (p >= end)
        return fail(err, "json: unexpected end of input at byte %zu", at);
    unsigned char c = (unsigned char)*p;
    if (c >= 0x20 && c < 0x7f)
        return fail(err, "json: unexpected character '%c' at byte %zu", c, at);
    return fail(err, "json: unexpected byte 0x%02x at byte %zu", c, at);
}

/* The parts of a JSON number as json_number_scan reads them, for decimal_value. */
typedef struct json_number {
    uint64_t mant;      /* all its digits (wrapped when ndig > 19) */
    int ndig;           /* digits in mant, leading zeros included (a lone 0 is not one) */
    int exp10;          /* the power of ten that scales mant */
    int neg;            /* a leading minus */
    int plain;          /* no fraction and no exponent: an integer as written */
    const char *stop;   /* one past the number, or where the grammar failed */
} json_number;

/* The digits at p (not past end) appended to *mant (wrapping, as digit by digit would)
 * and counted in *ndig; returns the first byte that is not a digit. Eight bytes at a time
 * while eight are left: a byte is a digit when its high half is 3 and adding 6 does not
 * carry past 9, so the lowest byte that is not tells how many digits lead (k); those,
 * less '0' and shifted up so that zeros lead them, are summed by multiplications that
 * add neighbours pairwise (1 and 10, then 1 and 100, then 1 and 10^4). */
static inline const char *json_digits(const char *p, const char *end, uint64_t *mant, int *ndig)
{
    static const uint64_t pow10_k[9] = { 1, 10, 100, 1000, 10000, 100000, 1000000,
                                         10000000, 100000000 };
    const uint64_t highs = UINT64_C(0xF0F0F0F0F0F0F0F0), threes = UINT64_C(0x3030303030303030);
    uint64_t m = *mant;
    int n = *ndig;
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t bad = ((w & highs) ^ threes)
                       | (((w + UINT64_C(0x0606060606060606)) & highs) ^ threes);
        int k = bad ? __builtin_ctzll(bad) >> 3 : 8;
        if (k == 0)
            break;
        w -= threes;                /* no borrow reaches the k digits, all >= '0' */
        if (k < 8)
            w <<= 8 * (8 - k);
        w = ((w & UINT64_C(0x0F0F0F0F0F0F0F0F)) * 2561) >> 8;
        w = ((w & UINT64_C(0x00FF00FF00FF00FF)) * 6553601) >> 16;
        w = ((w & UINT64_C(0x0000FFFF0000FFFF)) * UINT64_C(42949672960001)) >> 32;
        m = m * pow10_k[k] + (w & 0xFFFFFFFF);
        n += k;
        p += k;
        if (k < 8) {
            *mant = m;
            *ndig = n;
            return p;
        }
    }
    const char *from = p;
    for (; p < end; p++) {
        unsigned digit = (unsigned)(unsigned char)*p - '0';
        if (digit > 9)
            break;
        m = m * 10 + digit;
    }
    *mant = m;
    *ndig = n + (int)(p - from);
    return p;
}

/* Reads the number at p (not past end) with the JSON grammar
 * -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?. Returns 0, or -1 when the text there is not
 * a number; either way n->stop says where reading stopped. */
static inline int json_number_scan(const char *p, const char *end, json_number *n)
{
    uint64_t mant = 0;
    int ndig = 0, exp10 = 0;
    n->neg = 0;
    n->plain = 1;
    if (p < end && *p == '-') {
        n->neg = 1;
        p++;
    }
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && is_digit(*p)) {
        p = json_digits(p, end, &mant, &ndig);
    } else {
        n->stop = p;
        return -1;
    }
    if (p < end && *p == '.') {
        p++;
        n->plain = 0;
        if (p >= end || !is_digit(*p)) {
            n->stop = p;
            return -1;
        }
        int before = ndig;
        p = json_digits(p, end, &mant, &ndig);
        exp10 -= ndig - before;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        n->plain = 0;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p)) {
            n->stop = p;
            return -1;
        }
        int e = 0;
        while (p < end && is_digit(*p)) {
            if (e < 100000)     /* saturate; strtod sees the real digits */
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    n->mant = mant;
    n->ndig = ndig;
    n->exp10 = exp10;
    n->stop = p;
    return 0;
}

/* The value of the four hex digits at p in *out; -1 when one is not a hex digit. */
static inline int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* The code point of the \u escape whose four hex digits start at *p (after the "\u"),
 * and of the escaped low surrogate after it when it is a high one: returns 0 and moves *p
 * past them; -1 when they are no such escape (*p unmoved: json_u_escape_error says what is
 * wrong there). */
static inline int json_u_escape(const char **p, const char *end, unsigned *cp)
{
    const char *q = *p;
    unsigned lo;

    if (end - q < 4 || hex4(q, cp) < 0)
        return -1;
    q += 4;
    if (*cp >= 0xdc00 && *cp <= 0xdfff)
        return -1;
    if (*cp >= 0xd800 && *cp <= 0xdbff) {
        /* A high surrogate must be followed by an escaped low one. */
        if (end - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, &lo) < 0
            || lo < 0xdc00 || lo > 0xdfff)
            return -1;
        q += 6;
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    *p = q;
    return 0;
}

/* What is wrong with the \u escape at p that json_u_escape refused. */
static inline const char *json_u_escape_error(const char *p, const char *end)
{
    unsigned cp;

    return end - p < 4 || hex4(p, &cp) < 0 ? "bad \\u escape" : "lone surrogate in \\u escape";
}

/* Writes the code point cp as UTF-8 at o (room for 4 bytes); returns the bytes written. */
static inline int put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* For each byte: 0 if it is written as is, else the letter of its short escape, 'u' for
 * \u00XX, or '8' for the first byte of a UTF-8 sequence to check (any byte >= 0x80). */
static const char escape_of[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    ['"'] = '"', ['\\'] = '\\', [0x80 ... 0xff] = '8',
};

/* The length of the well-formed UTF-8 sequence at p (Unicode's table 3-7: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0 when there is none; then *bad is the
 * length of the maximal subpart there (at least 1), which becomes one U+FFFD. */
static inline size_t utf8_sequence(const unsigned char *p, const unsigned char *end,
                                   size_t *bad)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;      /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < n && p + i < end; i++) {
        unsigned b = p[i];
        if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
            break;
    }
    if (i == n)
        return n;
    *bad = i;
    return 0;
}

static inline void put_escape(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    o[0] = '\\';
    o[1] = 'u';
    o[2] = '0';
    o[3] = '0';
    o[4] = hex[c >> 4];
    o[5] = hex[c & 15];
}

/* Appends s as a quoted JSON string, valid UTF-8: each ill-formed sequence of s becomes
 * U+FFFD. Short strings (keys, most values) are copied byte by byte as they are checked;
 * longer ones are scanned for runs to copy with memcpy. The first reserve covers the
 * string without escapes; each escape or replacement reserves room for itself and the
 * rest. */
static inline void put_string(sl_buf *out, const char *s, size_t len)
{
    char *o = room(out, len + 2);
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    *o++ = '"';
    while (p < end) {
        if (len < 32) {
            while (p < end && !escape_of[*p])
                *o++ = (char)*p++;
        } else {
            const unsigned char *run = p;
            while (p < end && !escape_of[*p])
                p++;
            memcpy(o, run, (size_t)(p - run));
            o += p - run;
        }
        if (p == end)
            break;
        char c = escape_of[*p];
        if (c == '8') {
            size_t bad, n = utf8_sequence(p, end, &bad);
            if (n > 0) {            /* as long as it was: the reserve still holds */
                memcpy(o, p, n);
                o += n;
                p += n;
                continue;
            }
            out->len = (size_t)(o - out->data);
            o = room(out, 3 + (size_t)(end - p) + 1);
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            p += bad;
            continue;
        }
        out->len = (size_t)(o - out->data);
        o = room(out, 6 + (size_t)(end - p) + 1);
        if (c == 'u') {
            put_escape(o, *p);
            o += 6;
        } else {
            o[0] = '\\';
            o[1] = c;
            o += 2;
        }
        p++;
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
}

/* ---- key order (codec_keys.c) -------------------------------------------------------- */

/* An object of more keys than this is a map (keyed by ids, say) rather than a record: it
 * gets no shape, so it is written sorted, and a checkpoint writes such a table as it
 * comes (sl_mpack_encode_state). */
#define SL_SHAPE_MAX_KEYS 1024

/* One node of the trie of key sequences: a key after its parent's sequence. */
typedef struct shape_node {
    const char *key;    /* the key's bytes, in the interned Lua string key_ref anchors */
    size_t len;         /* their length */
    int parent;         /* the node of the sequence without this key */
    int depth;          /* keys from the root to here */
    int key_ref;        /* registry ref of the key string */
    int meta_ref;       /* registry ref of the metatable of root..here, or LUA_NOREF */
    int last;           /* the child followed last: where the next record likely goes */
} shape_node;

/* The shapes of one Lua state: a cache made on first use, kept in its registry. */
typedef struct sl_shapes {
    shape_node *nodes;  /* nodes[0] is the root, which has no key */
    int n, cap;         /* nodes in use, allocated */
    int *slots;         /* (parent, key bytes) -> node id by open addressing; 0: empty */
    size_t mask;        /* slots - 1 (slots is a power of two) */
    const void *names;  /* csv: the column names whose shape is names_node */
    int names_ref;      /* registry ref keeping those names alive, or LUA_NOREF */
    int names_node;     /* their node, or -1 (not all strings: no shape) */
} sl_shapes;

/* Whether a[0, n) and b[0, n) hold the same bytes: short keys, compared in line, a word
 * at a time (the last word of a key overlaps the one before it rather than going byte by
 * byte). */
static inline int same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    uint32_t u, v;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y)
                return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v)
            return 0;
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return u == v;
    }
    for (; n > 0; n--)
        if (*a++ != *b++)
            return 0;
    return 1;
}

/* The shape cache of L's state; it starts afresh here when it has grown past its bound,
 * so a decoder calls this once per record, never while an object is half built. Stack
 * unchanged. */
sl_shapes *sl_shapes_get(lua_State *L);
/* shape_step's slow path: finds or makes the child of node for the key. */
int sl_shape_step_slow(lua_State *L, sl_shapes *sh, int node, const char *key, size_t len,
                       int kidx);

/* The node of the key sequence `node` (0: no key yet) followed by the key whose bytes are
 * key[0, len), the Lua string at stack index kidx; -1 when node is -1 or the key is not a
 * string (such an object gets no shape). Stack unchanged. */
static inline int shape_step(lua_State *L, sl_shapes *sh, int node, const char *key,
                             size_t len, int kidx)
{
    if (node < 0)
        return -1;
    int last = sh->nodes[node].last;
    if (last != 0 && sh->nodes[last].len == len && same_bytes(sh->nodes[last].key, key, len))
        return last;
    return sl_shape_step_slow(L, sh, node, key, len, kidx);
}

/* Whether the table at idx has a shape. Stack unchanged. */
int sl_shaped(lua_State *L, int idx);

/* Gives the table at tidx the shape of the sequence `node` (nothing for 0 or -1). Stack
 * unchanged. */
void sl_shape_set(lua_State *L, sl_shapes *sh, int node, int tidx);
/* Gives the table at tidx the shape of the array of names at names_idx (a csv header;
 * remembered, so records with the same names cost one comparison). Stack unchanged. */
void sl_shape_set_names(lua_State *L, sl_shapes *sh, int names_idx, int tidx);

/* mt[0] of a shape metatable: its keys' addresses and the place of each. One block: this
 * header, then keys[n], then slots[mask + 1]. */
typedef struct shape_info {
    uint64_t magic;         /* SHAPE_MAGIC */
    int n;                  /* keys */
    unsigned mask;          /* slots - 1 */
    const char **keys;      /* keys[i]: the bytes of key i (anchored by mt[i + 1]) */
    int *slots;             /* by address: i + 1, or 0 when empty */
} shape_info;

static inline unsigned ptr_hash(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * UINT64_C(0x9E3779B97F4A7C15);
    return (unsigned)(h >> 32);
}

/* The place of the key whose interned bytes are at s in the shape, or -1. */
static inline int shape_place(const shape_info *si, const char *s)
{
    for (unsigned i = ptr_hash(s) & si->mask;; i = (i + 1) & si->mask) {
        int k = si->slots[i];
        if (k == 0)
            return -1;
        if (si->keys[k - 1] == s)
            return k - 1;
    }
}

/* One entry of a table being encoded: its key, and where its value is. */
typedef struct sl_entry {
    const char *s;      /* a string key's interned bytes, or NULL for a number key */
    size_t len;         /* their length */
    double num;         /* a number key */
    int rank;           /* its place in the table's shape, or -1 */
    int slot;           /* stack index of its value, or 0: sl_object_value fetches it */
} sl_entry;

#define SL_OBJECT_SMALL 16

/* The entries of a table being encoded as an object, gathered with lua_next and then put
 * in order: sl_object_begin, sl_object_add for each entry, sl_object_sort, then
 * sl_object_entry/sl_object_value for each, and sl_object_end. Each value waits on the
 * Lua stack (while there is room), so nothing is looked up twice. */
typedef struct sl_object {
    const shape_info *shape;    /* the table's shape, or NULL */
    int t;              /* the table (absolute index) */
    int top;            /* the stack top at the start, restored at the end */
    int base;           /* where the key lua_next pushes next lands */
    int extras;         /* entries whose key is not in the shape */
    int room;           /* stack slots known to be free for more entries */
    size_t n, cap;      /* entries, room */
    sl_entry *e;        /* small, or allocated when there are more */
    uint32_t *order;    /* after sl_object_sort: the entries' indices in order */
    sl_entry small[SL_OBJECT_SMALL];
    uint32_t small_order[SL_OBJECT_SMALL];
} sl_object;

/* Starts on the table at idx (its shape is looked up). */
void sl_object_begin(lua_State *L, int idx, sl_object *ob);
sl_entry *sl_object_grow(sl_object *ob);

int sl_object_room(lua_State *L, sl_object *ob);

/* Takes the entry lua_next just pushed (key value): keeps the value, with a copy of the
 * key above it for lua_next to go on from. Returns 0, or the type of a key that is
 * neither a string nor a number (then key and value are popped). */
static inline int sl_object_add(lua_State *L, sl_object *ob)
{
    int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
        lua_pop(L, 2);
        return kt;
    }
    sl_entry *en = ob->n < ob->cap ? &ob->e[ob->n++] : sl_object_grow(ob);
    if (kt == LUA_TSTRING) {
        en->s = lua_tolstring(L, -2, &en->len);     /* a string: no conversion */
        en->rank = ob->shape ? shape_place(ob->shape, en->s) : -1;
    } else {
        en->s = NULL;
        en->num = lua_tonumber(L, -2);
        en->rank = -1;
    }
    ob->extras += en->rank < 0;
    if (ob->room > 0 || sl_object_room(L, ob)) {
        ob->room--;
        lua_pushvalue(L, -2);                       /* key value key */
        en->slot = ob->base + 1;
        ob->base += 2;
    } else {
        lua_pop(L, 1);                              /* key */
        en->slot = 0;
    }
    return 0;
}

/* Puts the entries in order: the keys of the shape by their place, then the others,
 * numbers ascending, then strings bytewise. */
void sl_object_sort(sl_object *ob);

/* The i-th entry in order. */
static inline const sl_entry *sl_object_entry(const sl_object *ob, size_t i)
{
    return &ob->e[ob->order[i]];
}

/* The stack index of the entry's value: its slot, or (pushed: stack +1) the value
 * fetched again when the stack had no room for it. */
int sl_object_fetch(lua_State *L, const sl_object *ob, const sl_entry *en);
static inline int sl_object_value(lua_State *L, const sl_object *ob, const sl_entry *en)
{
    return en->slot ? en->slot : sl_object_fetch(L, ob, en);
}

/* Frees what the object allocated and restores the stack. Always called, whatever
 * happened. */
void sl_object_end(lua_State *L, sl_object *ob);

#endif
