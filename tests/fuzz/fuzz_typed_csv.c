/* fuzz_typed_csv.c -- the input as a CSV stream (sl_csv_frame), each record decoded into a
 * fixed schema's record (every type, and a column no field has). A record the table path
 * finds malformed must be BAD here too; a record decoded OK is encoded, decoded again and
 * encoded again, which must give the very same line. */
#include "fuzz_common.h"
#include "typed.h"

static const sl_schema *fuzz_schema(int *cols)
{
    static sl_schema *s;
    static const sl_schema_field fields[] = {
        { "a", 0, SL_TYPED_I64, 0, NULL }, { "b", 0, SL_TYPED_F64, 0, NULL },
        { "c", 0, SL_TYPED_BOOL, 0, NULL }, { "d", 0, SL_TYPED_STRING, 0, NULL },
        { "e", 0, SL_TYPED_STRING, 0, NULL },
    };
    char err[SL_CODEC_ERRLEN];
    if (s == NULL && (s = sl_schema_new(fields, 5, err)) == NULL)
        abort();
    /* Columns a b c d - e: the schema's fields are sorted by name, so index = letter. */
    static const int order[] = { 0, 1, 2, 3, -1, 4 };
    memcpy(cols, order, sizeof order);
    return s;
}

#define NCOLS 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char arena_mem[2 * 4096 + 64];   /* twice the longest input: room for one record */
    static sl_typed_field rec[8], back[8];
    lua_State *L = fuzz_lua();
    int cols[NCOLS];
    const sl_schema *s = fuzz_schema(cols);
    const char *in = (const char *)data;
    char err[SL_CODEC_ERRLEN];
    size_t pos = 0;

    luaL_dostring(L, "return {'a', 'b', 'c', 'd', 'x', 'e'}");     /* the header: 1 */
    while (pos < size) {
        size_t len = 0, used = 0;
        if (size > 4096)
            break;
        int rc = sl_csv_frame(in + pos, size - pos, 1, &len, &used);
        if (rc == SL_CODEC_MORE || used == 0 || used > size - pos || len > used)
            break;
        sl_typed_arena a = { arena_mem, sizeof arena_mem, 0 };
        int trc = sl_typed_csv_decode(s, cols, NCOLS, in + pos, len, rec, &a, err);
        if (trc == SL_TYPED_FULL || a.used > len) {
            fprintf(stderr, "typed csv: arena of twice the record: rc %d, used %zu\n", trc,
                    a.used);
            abort();
        }
        int table = sl_csv_decode(L, in + pos, len, 1, err);
        if (table == SL_CODEC_OK)
            lua_pop(L, 1);
        else if (trc == SL_CODEC_OK) {
            fprintf(stderr, "typed csv: accepted what the table path did not: %s\n", err);
            abort();
        }
        if (trc == SL_CODEC_OK) {
            sl_buf x, y;
            size_t xlen, xused;
            sl_buf_init(&x);
            sl_buf_init(&y);
            if (sl_typed_csv_encode(rec, cols, NCOLS, &x, err) != SL_CODEC_OK) {
                fprintf(stderr, "typed csv: cannot encode: %s\n", err);
                abort();
            }
            sl_typed_arena b = { arena_mem + a.used, sizeof arena_mem - a.used, 0 };
            if (sl_csv_frame(x.data, x.len, 0, &xlen, &xused) != SL_CODEC_OK || xused != x.len
                || sl_typed_csv_decode(s, cols, NCOLS, x.data, xlen, back, &b, err)
                   != SL_CODEC_OK
                || sl_typed_csv_encode(back, cols, NCOLS, &y, err) != SL_CODEC_OK) {
                fprintf(stderr, "typed csv: cannot read back [%.*s]: %s\n", (int)x.len, x.data,
                        err);
                abort();
            }
            fuzz_same(&x, &y, "typed csv");
            sl_buf_free(&x);
            sl_buf_free(&y);
        }
        pos += used;
    }
    return 0;
}
