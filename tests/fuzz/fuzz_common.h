/* fuzz_common.h -- what the fuzz targets share: one Lua state for the decoders to push
 * into, reset between inputs by clearing its stack. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <lualib.h>

#include "codec.h"

static lua_State *fuzz_lua(void)
{
    static lua_State *L;

    if (L == NULL)
        L = luaL_newstate();
    lua_settop(L, 0);
    return L;
}

/* Whether s[0, n) is well-formed UTF-8 (Unicode's table 3-7), as JSON output must be. */
static int fuzz_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], lo = 0x80, hi = 0xbf;
        size_t k;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 3;
            lo = c == 0xe0 ? 0xa0 : 0x80;
            hi = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 4;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf;
        } else {
            return 0;
        }
        if (n - i < k || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t j = 2; j < k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf)
                return 0;
        i += k;
    }
    return 1;
}

/* Aborts (a finding for the fuzzer) when the two buffers differ. */
static void fuzz_same(const sl_buf *a, const sl_buf *b, const char *what)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        fprintf(stderr, "%s: a second round trip gave other bytes\n", what);
        abort();
    }
}

#endif
