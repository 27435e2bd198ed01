/* fuzz_lines.c -- the line framer as the reader uses it: split on '\n', drop a '\r',
 * skip blank lines, decode each line as JSON; a record longer than 1 KiB is skipped. */
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_lua();
    const char *s = (const char *)data, *end = s + size;
    char err[SL_CODEC_ERRLEN];

    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = (size_t)((nl ? nl : end) - s);
        if (len > 0 && s[len - 1] == '\r')
            len--;
        if (len > 0 && len <= 1024 && sl_json_decode(L, s, len, err) == SL_CODEC_OK)
            lua_pop(L, 1);
        s = nl ? nl + 1 : end;
    }
    return 0;
}
