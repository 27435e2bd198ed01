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

/* Aborts (a finding for the fuzzer) when the two buffers differ. */
static void fuzz_same(const sl_buf *a, const sl_buf *b, const char *what)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        fprintf(stderr, "%s: a second round trip gave other bytes\n", what);
        abort();
    }
}

#endif
