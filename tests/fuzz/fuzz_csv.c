/* fuzz_csv.c -- the CSV framer over the whole input as a stream (sl_csv_frame), each
 * record decoded as an array and, with the first record's fields as keys, as a table. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_lua();
    const char *s = (const char *)data;
    char err[SL_CODEC_ERRLEN];
    size_t pos = 0;
    int keys = 0;

    while (pos < size) {
        size_t len = 0, used = 0;
        int rc = sl_csv_frame(s + pos, size - pos, 1, &len, &used);
        if (rc == SL_CODEC_MORE || used == 0 || used > size - pos || len > used)
            break;
        if (sl_csv_decode(L, s + pos, len, 0, err) == SL_CODEC_OK) {
            if (keys == 0)
                keys = lua_gettop(L);   /* the first record names the columns */
            else
                lua_pop(L, 1);
        }
        if (keys != 0 && sl_csv_decode(L, s + pos, len, keys, err) == SL_CODEC_OK)
            lua_pop(L, 1);
        pos += used;
    }
    return 0;
}
