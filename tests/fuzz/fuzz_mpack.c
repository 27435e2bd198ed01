/* fuzz_mpack.c -- the input as a msgpack stream: decode objects one after another,
 * skipping a byte at a time over what is malformed, as the reader does; re-encode each,
 * and check that decoding and encoding that again gives the very same bytes (maps in the
 * same order). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_lua();
    char err[SL_CODEC_ERRLEN];
    size_t pos = 0;

    while (pos < size) {
        size_t used = 0;
        int rc = sl_mpack_decode(L, (const char *)data + pos, size - pos, &used, err);
        if (rc == SL_CODEC_MORE)
            break;
        if (rc == SL_CODEC_OK) {
            sl_buf a, b;
            size_t again = 0;
            sl_buf_init(&a);
            sl_buf_init(&b);
            if (sl_mpack_encode(L, -1, &a, err) == SL_CODEC_OK) {
                if (sl_mpack_decode(L, a.data, a.len, &again, err) != SL_CODEC_OK
                    || again != a.len) {
                    fprintf(stderr, "msgpack: cannot decode what the encoder wrote: %s\n", err);
                    abort();
                }
                if (sl_mpack_encode(L, -1, &b, err) != SL_CODEC_OK) {
                    fprintf(stderr, "msgpack: cannot encode again: %s\n", err);
                    abort();
                }
                fuzz_same(&a, &b, "msgpack");
                lua_pop(L, 1);
            }
            sl_buf_free(&a);
            sl_buf_free(&b);
            lua_pop(L, 1);
        }
        pos += used > 0 && used <= size - pos ? used : 1;
    }
    return 0;
}
