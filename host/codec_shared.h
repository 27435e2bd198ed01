/* codec_shared.h -- what the codec implementations (codec_*.c) share; not part of the
 * interface in codec.h.
 *
 * Each piece is here because two codecs need the very same thing: the error convention
 * of codec.h, room at the end of an output buffer, the array-or-map test of a Lua table
 * that every encoder applies, and the exact conversion of decimal digits to a double that
 * every decoder of text applies once its own grammar has read them. All are static inline
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

#endif
