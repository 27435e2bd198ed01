/* typed_check.h -- what tests/c/typed_test.c and tests/fuzz/fuzz_typed_json.c both check of
 * a typed record: that it holds what the table path (sl_json_decode) made of the same
 * line, and that two records hold the same values. */
#ifndef TYPED_CHECK_H
#define TYPED_CHECK_H

#include <lua.h>
#include <string.h>

#include "codec.h"
#include "typed.h"

/* Whether the typed record rec holds what the Lua table at idx (sl_json_decode's object
 * of the same line) holds for each field of rec's schema: a field absent where the table
 * has no value or null, and the same value where it has one (an i64 as the double
 * the table path reads from the same digits). Stack unchanged. */
static int typed_matches_table(lua_State *L, const sl_typed_field *rec, int idx)
{
    const sl_schema *s = rec[0].v.schema;
    int ok = 1;
    if (idx < 0)
        idx = lua_gettop(L) + idx + 1;
    for (int i = 0; i < s->nfields && ok; i++) {
        const sl_schema_field *f = &s->fields[i];
        const sl_typed_field *v = rec + f->slot;
        lua_pushlstring(L, f->name, f->namelen);
        lua_rawget(L, idx);
        int t = lua_type(L, -1);
        int absent = t == LUA_TNIL
                     || (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == SL_NULL);
        if (absent) {
            ok = !v->present;
        } else if (!v->present) {
            ok = 0;
        } else {
            switch (f->type) {
            case SL_TYPED_I64:
                ok = t == LUA_TNUMBER && lua_tonumber(L, -1) == (double)v->v.i64;
                break;
            case SL_TYPED_F64:
                ok = t == LUA_TNUMBER && lua_tonumber(L, -1) == v->v.f64;
                break;
            case SL_TYPED_BOOL:
                ok = t == LUA_TBOOLEAN && lua_toboolean(L, -1) == (int)v->v.b;
                break;
            case SL_TYPED_STRING: {
                size_t n;
                const char *str = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
                ok = str && n == v->len && memcmp(str, v->v.str, n) == 0;
                break;
            }
            case SL_TYPED_RECORD:
                ok = t == LUA_TTABLE && typed_matches_table(L, v, -1);
                break;
            default:
                ok = 0;
            }
        }
        lua_pop(L, 1);
    }
    return ok;
}

/* Whether records a and b (of one schema) hold the same fields with the same values. */
static int typed_same(const sl_typed_field *a, const sl_typed_field *b)
{
    const sl_schema *s = a[0].v.schema;
    if (b[0].v.schema != s || a[0].present != b[0].present)
        return 0;
    for (int i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];
        const sl_typed_field *x = a + f->slot, *y = b + f->slot;
        if (f->type == SL_TYPED_RECORD) {
            if (x->present != y->present || (x->present && !typed_same(x, y)))
                return 0;
            continue;
        }
        if (x->present != y->present)
            return 0;
        if (!x->present)
            continue;
        switch (f->type) {
        case SL_TYPED_I64:
            if (x->v.i64 != y->v.i64)
                return 0;
            break;
        case SL_TYPED_F64:
            if (x->v.f64 != y->v.f64)
                return 0;
            break;
        case SL_TYPED_BOOL:
            if (x->v.b != y->v.b)
                return 0;
            break;
        case SL_TYPED_STRING:
            if (x->len != y->len || (x->len && memcmp(x->v.str, y->v.str, x->len) != 0))
                return 0;
            break;
        }
    }
    return 1;
}

#endif
