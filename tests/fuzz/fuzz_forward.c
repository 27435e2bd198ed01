/* fuzz_forward.c -- the forward protocol's decoder (forward.c) over a stream of entries
 * that arrives in pieces, as forward_conn.c drives it. The first byte picks the size of
 * the pieces (1, 7, 64 bytes, or all at once); the rest is the stream.
 *
 * Besides memory errors it checks what forward.h promises: MORE until an entry is whole,
 * an entry's size within what was given, every event a {tag, time, record} with a string,
 * a number and a table, and no event lost or made up: the events of each entry, packed
 * again (sl_forward_pack), decode to as many events in one whole entry (each one that
 * cannot be packed, such as a NaN, or read back, such as a record {1: x} that a Lua table
 * makes an array, said so). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "forward.h"

#define FAIL(...) do { fprintf(stderr, "fuzz_forward: " __VA_ARGS__); abort(); } while (0)

static int bad_count;

static void on_bad(void *arg, int index, const char *reason)
{
    if (index < 1 || reason == NULL || reason[0] == '\0')
        FAIL("a bad event without a place or a reason\n");
    bad_count++;
}

/* Checks the events batch[1..n] at bi and packs them again into out; returns how many
 * were packed. */
static int check_and_pack(lua_State *L, int bi, int n, sl_buf *out)
{
    lua_createtable(L, n, 0);                           /* recs */
    lua_createtable(L, n, 0);                           /* recs times */
    int recs = lua_gettop(L) - 1, times = recs + 1;
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, bi, i);                          /* ev */
        if (!lua_istable(L, -1))
            FAIL("event %d is not a table\n", i);
        lua_getfield(L, -1, "tag");
        lua_getfield(L, -2, "time");
        lua_getfield(L, -3, "record");                  /* ev tag time rec */
        if (lua_type(L, -3) != LUA_TSTRING || lua_type(L, -2) != LUA_TNUMBER
            || !lua_istable(L, -1))
            FAIL("event %d is not {tag=string, time=number, record=table}\n", i);
        lua_rawseti(L, recs, i);
        lua_rawseti(L, times, i);
        lua_pop(L, 2);                                  /* -- */
    }
    int before = bad_count, packed = 0;
    if (n > 0) {
        lua_rawgeti(L, bi, 1);
        lua_getfield(L, -1, "tag");
        size_t tlen;
        const char *tag = lua_tolstring(L, -1, &tlen);
        packed = sl_forward_pack(L, tag, tlen, recs, times, n, 0, "c", 1, out, on_bad, NULL);
        lua_pop(L, 2);
    }
    if (packed + (bad_count - before) != n)
        FAIL("packing %d events gave %d and %d bad\n", n, packed, bad_count - before);
    lua_pop(L, 2);
    return packed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[] = { 1, 7, 64, (size_t)-1 };
    char err[SL_FORWARD_ERRLEN];
    lua_State *L = fuzz_lua();
    static sl_forward_decoder dec;
    static int dec_ready;
    sl_buf again, in;

    if (size < 1)
        return 0;
    size_t piece = pieces[data[0] & 3], got = 1, pos = 0;
    data++, size--;
    if (!dec_ready && sl_forward_decoder_init(&dec) == 0)
        dec_ready = 1;
    if (!dec_ready)
        FAIL("out of memory\n");
    sl_buf_init(&again);
    sl_buf_init(&in);
    lua_newtable(L);
    int bi = lua_gettop(L);
    int broken = 0;
    got = 0;
    while (!broken && got < size) {
        size_t take = size - got < piece ? size - got : piece;
        sl_buf_append(&in, data + got, take);
        got += take;
        for (;;) {
            sl_forward_entry e;
            int top = lua_gettop(L);
            lua_newtable(L);
            lua_replace(L, bi);
            int rc = sl_forward_decode(L, &dec, in.data + pos, in.len - pos, bi, 0, on_bad,
                                       NULL, &e, err);
            if (lua_gettop(L) != top)
                FAIL("the stack moved by %d\n", lua_gettop(L) - top);
            if (rc == SL_FORWARD_MORE)
                break;
            if (rc == SL_FORWARD_BROKEN) {
                if (err[0] == '\0')
                    FAIL("broken without a reason\n");
                broken = 1;
                break;
            }
            if (e.used == 0 || e.used > in.len - pos)
                FAIL("an entry of %zu bytes in %zu\n", e.used, in.len - pos);
            if (rc == SL_FORWARD_SKIP) {
                if (err[0] == '\0')
                    FAIL("skipped without a reason\n");
                pos += e.used;
                continue;
            }
            if ((int)lua_objlen(L, bi) != e.events)
                FAIL("%d events said, %d in the batch\n", e.events, (int)lua_objlen(L, bi));
            sl_buf_reset(&again);
            int packed = check_and_pack(L, bi, e.events, &again);
            if (packed > 0) {
                sl_forward_entry e2;
                lua_newtable(L);
                lua_replace(L, bi);
                int before = bad_count;
                if (sl_forward_decode(L, &dec, again.data, again.len, bi, 0, on_bad, NULL,
                                      &e2, err) != SL_FORWARD_OK
                    || e2.used != again.len || e2.events + (bad_count - before) != packed
                    || e2.chunk_len != 1)
                    FAIL("%d events packed again do not decode back: %s\n", packed, err);
            }
            pos += e.used;
        }
    }
    lua_settop(L, 0);
    sl_buf_free(&again);
    sl_buf_free(&in);
    return 0;
}
