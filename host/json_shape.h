/* json_shape.h -- what a JSON writer remembers of the plain tables it writes: the keys of
 * the last one, in the order lua_next gave them, and the bytes that go before each value
 * once they are put in the encoders' order (codec.h: a table without a shape has its keys
 * sorted).
 *
 * A writer's records mostly come from one map function, so from one table constructor,
 * and LuaJIT makes every table of a constructor by copying one template, hash layout
 * included: lua_next gives all of them their keys in one sequence. sl_json_shape_encode
 * checks a table against the remembered sequence while it walks it (the same interned
 * strings, in the same order, and then no more keys) and writes it with no sorting and no
 * escaping; any other value goes to sl_json_encode, and a plain table written so may
 * become the one remembered. The bytes are those sl_json_encode writes, always. */
#ifndef SL_JSON_SHAPE_H
#define SL_JSON_SHAPE_H

#include <stdint.h>
#include <lua.h>
#include "buf.h"

#define SL_JSON_SHAPE_KEYS 16       /* tables with more keys are never remembered */

typedef struct sl_json_shape {
    int n;                                  /* keys remembered; 0: none */
    const void *key[SL_JSON_SHAPE_KEYS];    /* their string objects (lua_topointer) in
                                               lua_next's order; kept alive by keys_ref, so
                                               an address is one key */
    uint8_t order[SL_JSON_SHAPE_KEYS];      /* order[j]: the key written j-th */
    uint32_t at[SL_JSON_SHAPE_KEYS + 1];    /* prefix.data[at[j], at[j + 1]): the bytes
                                               before the j-th value ({"k": or ,"k":) */
    sl_buf prefix;
    int keys_ref;                           /* registry ref of the table anchoring key[] */
    unsigned hits;                          /* tables written from the shape since learnt */
    unsigned misses, patience;              /* learning waits for `patience` misses once
                                               shapes keep changing (see learn_or_wait) */
} sl_json_shape;

/* A shape that remembers nothing yet. */
void sl_json_shape_init(sl_json_shape *sh);

/* Appends the JSON text of the value at idx, as sl_json_encode does (same bytes, same
 * errors, nothing appended on BAD). Stack unchanged; needs 2 * SL_JSON_SHAPE_KEYS + 4
 * free stack slots. */
int sl_json_shape_encode(lua_State *L, sl_json_shape *sh, int idx, sl_buf *out, char *err);

/* Frees what the shape holds (its registry ref and bytes). */
void sl_json_shape_free(lua_State *L, sl_json_shape *sh);

#endif
