/* fuzz_typed_mpack.c -- the input as a msgpack stream decoded into a fixed schema's
 * records (every type and a nested record), skipping what is malformed as the reader
 * does. The stream contract must match the table path's: MORE exactly when it says MORE,
 * and BAD with the same bytes used whenever it says BAD. A record decoded OK is encoded,
 * decoded again and encoded again, which must give the very same bytes. */
#include "fuzz_common.h"
#include "typed.h"

static const sl_schema *fuzz_schema(void)
{
    static sl_schema *s, *inner;
    static const sl_schema_field in_fields[] = {
        { "x", 0, SL_TYPED_I64, 0, NULL }, { "y", 0, SL_TYPED_STRING, 0, NULL },
    };
    char err[SL_CODEC_ERRLEN];
    if (s == NULL) {
        if ((inner = sl_schema_new(in_fields, 2, err)) == NULL)
            abort();
        sl_schema_field fields[] = {
            { "a", 0, SL_TYPED_I64, 0, NULL }, { "b", 0, SL_TYPED_F64, 0, NULL },
            { "c", 0, SL_TYPED_BOOL, 0, NULL }, { "d", 0, SL_TYPED_STRING, 0, NULL },
            { "e", 0, SL_TYPED_RECORD, 0, inner },
        };
        if ((s = sl_schema_new(fields, 5, err)) == NULL)
            abort();
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_typed_field rec[16], back[16];
    lua_State *L = fuzz_lua();
    const sl_schema *s = fuzz_schema();
    const char *in = (const char *)data;
    char err[SL_CODEC_ERRLEN];
    size_t pos = 0;

    while (pos < size) {
        size_t used = 0, tused = 0;
        int rc = sl_typed_mpack_decode(s, in + pos, size - pos, &used, rec, err);
        int table = sl_mpack_decode(L, in + pos, size - pos, &tused, err);
        if (table == SL_CODEC_OK)
            lua_pop(L, 1);
        if ((rc == SL_CODEC_MORE) != (table == SL_CODEC_MORE)
            || (table == SL_CODEC_BAD && (rc != SL_CODEC_BAD || used != tused))
            || (rc != SL_CODEC_MORE && used != tused)) {
            fprintf(stderr, "typed msgpack: rc %d used %zu, table path rc %d used %zu\n", rc,
                    used, table, tused);
            abort();
        }
        if (rc == SL_CODEC_MORE)
            break;
        if (rc == SL_CODEC_OK) {
            sl_buf x, y;
            size_t again = 0;
            sl_buf_init(&x);
            sl_buf_init(&y);
            /* NaN and infinities, which a float may hold, cannot be packed. */
            if (sl_typed_mpack_encode(rec, &x, err) == SL_CODEC_OK) {
                if (sl_typed_mpack_decode(s, x.data, x.len, &again, back, err) != SL_CODEC_OK
                    || again != x.len || sl_typed_mpack_encode(back, &y, err) != SL_CODEC_OK) {
                    fprintf(stderr, "typed msgpack: cannot read back what it wrote: %s\n", err);
                    abort();
                }
                fuzz_same(&x, &y, "typed msgpack");
            } else if (x.len != 0) {
                abort();
            }
            sl_buf_free(&x);
            sl_buf_free(&y);
        }
        pos += used > 0 && used <= size - pos ? used : 1;
    }
    return 0;
}
