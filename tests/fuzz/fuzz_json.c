/* fuzz_json.c -- sl_json_decode on the whole input, then round trips through
 * sl_json_encode of what it decoded: the text must be valid UTF-8 and decode again; and
 * from the second round on, decoding and encoding must give the very same bytes (keys in
 * the same order). Not from the first: two keys that differ only in their invalid UTF-8
 * come out as the same text (each bad sequence is U+FFFD), which decodes as one key. */
#include "fuzz_common.h"

/* Encodes the value on top of the stack into b (emptied first), checks the text, decodes
 * it and leaves that on top instead. Returns 0 when the value cannot be encoded. */
static int round_trip(lua_State *L, sl_buf *b)
{
    char err[SL_CODEC_ERRLEN];

    b->len = 0;
    if (sl_json_encode(L, -1, b, err) != SL_CODEC_OK)
        return 0;
    if (!fuzz_utf8((const unsigned char *)b->data, b->len)) {
        fprintf(stderr, "json: the encoder wrote invalid UTF-8\n");
        abort();
    }
    if (sl_json_decode(L, b->data, b->len, err) != SL_CODEC_OK) {
        fprintf(stderr, "json: cannot decode what the encoder wrote: %s\n", err);
        abort();
    }
    lua_remove(L, -2);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_lua();
    char err[SL_CODEC_ERRLEN];

    if (sl_json_decode(L, (const char *)data, size, err) == SL_CODEC_OK) {
        sl_buf a, b;
        sl_buf_init(&a);
        sl_buf_init(&b);
        if (round_trip(L, &a) && round_trip(L, &a)) {
            if (!round_trip(L, &b)) {
                fprintf(stderr, "json: cannot encode again\n");
                abort();
            }
            fuzz_same(&a, &b, "json");
        }
        sl_buf_free(&a);
        sl_buf_free(&b);
    }
    return 0;
}
