/* fuzz_json.c -- sl_json_decode on the whole input, then a round trip through
 * sl_json_encode of what it decoded. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_lua();
    char err[SL_CODEC_ERRLEN];

    if (sl_json_decode(L, (const char *)data, size, err) == SL_CODEC_OK) {
        sl_buf b;
        sl_buf_init(&b);
        sl_json_encode(L, 1, &b, err);
        sl_buf_free(&b);
    }
    return 0;
}
