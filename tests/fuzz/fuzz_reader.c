/* fuzz_reader.c -- the reader's own framing (reader.c) end to end: the input goes through
 * a pipe into a core.reader, read as a libuv stream to EOF. The first byte picks the format
 * (lines, json, csv, csv with header, msgpack), whether a partial last record is bad (as on
 * a socket), the batch size and a small max_record, so the overlong-record skipping, BOM,
 * CRLF, quoting and msgpack resynchronisation paths all run. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>

#include "sl_api.h"

static const char *const script =
    "local core, fd, fmt, header, partial, batch, max = ...\n"
    "local n = 0\n"
    "local r = core.reader { fd = fd, own = true, format = fmt, header = header,\n"
    "  partial_bad = partial, batch = batch, max_record = max,\n"
    "  on_batch = function(b, k) for i = 1, k do assert(b[i] ~= nil) end n = n + k end,\n"
    "  on_bad = function(info) assert(type(info.reason) == 'string') end,\n"
    "  on_end = function() end }\n"
    "r:start()\n"
    "assert(core.run())\n"
    "r:close()\n"
    "return n\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const formats[] = {"lines", "json", "csv", "csv", "msgpack"};
    static lua_State *L;
    static int chunk_ref;
    int fds[2], sel;

    if (size < 1 || size > 60000)
        return 0;
    if (L == NULL) {
        L = luaL_newstate();
        luaL_openlibs(L);
        luaL_loadstring(L, script);
        chunk_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (pipe(fds) != 0)
        return 0;
    if (write(fds[1], data + 1, size - 1) != (ssize_t)(size - 1)) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    close(fds[1]);
    sel = data[0];
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, chunk_ref);
    luaopen_sluice_core(L);
    lua_pushinteger(L, fds[0]);
    lua_pushstring(L, formats[(sel & 7) % 5]);
    lua_pushboolean(L, (sel & 7) == 3);
    lua_pushboolean(L, (sel & 8) != 0);
    lua_pushinteger(L, 1 + ((sel >> 4) & 3) * 5);
    lua_pushinteger(L, (sel & 64) ? 16 : 1024);
    if (lua_pcall(L, 7, 1, 0) != 0) {
        fprintf(stderr, "fuzz_reader: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
