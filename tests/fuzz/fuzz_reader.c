/* fuzz_reader.c -- the reader's framing (framing.c) over a stream that arrives in pieces,
 * as reader.c drives it. The first byte picks the format (lines, json, csv, csv with
 * header, msgpack), whether a partial last record is bad (as on a socket), the size of the
 * pieces the rest arrives in (1, 7, 64 bytes, or all at once), a small max_record and the
 * batch size (3 or 1024), so the overlong-record skipping, BOM, CRLF, quoting and msgpack
 * resynchronisation paths all run, across every boundary between reads and batches.
 *
 * Besides memory errors it checks what framing.h promises: every record has a value, every
 * bad record a reason, the position never moves back, batches start in order, and at the
 * end of input everything is framed but an overlong msgpack object still being skipped. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "framing.h"

#define FAIL(...) do { fprintf(stderr, "fuzz_reader: " __VA_ARGS__); abort(); } while (0)

/* Frames all that f holds into batches of at most max at batch, as reader.c's frame()
 * does; the column names are at keys. */
static void frame_all(sl_framer *f, lua_State *L, int keys, int batch, int max, int eof,
                      int64_t *last_off, int64_t *pos_off, int64_t *pos_line)
{
    sl_frame first, fr;
    int64_t off, line;
    int n = 0;

    for (;;) {
        int before = n, rc = sl_framer_fill(f, L, keys, eof, batch, &n, max, &first, &fr);
        if (n < before || n > max)
            FAIL("%d records in a batch of %d after %d\n", n, max, before);
        for (int i = before + 1; i <= n; i++) {
            lua_rawgeti(L, batch, i);
            if (lua_isnil(L, -1))
                FAIL("a record without a value\n");
            lua_pop(L, 1);
        }
        if (before == 0 && n > 0) {
            if (first.off < *last_off)
                FAIL("batch at %lld after one at %lld\n", (long long)first.off,
                     (long long)*last_off);
            *last_off = first.off;
        }
        if (rc == SL_FRAME_HEADER) {
            if (!lua_istable(L, -1))
                FAIL("a header that is not a table\n");
            lua_replace(L, keys);
        } else if (rc == SL_FRAME_BAD) {
            if (fr.reason == NULL || fr.reason[0] == '\0' || (fr.rawlen > 0 && fr.raw == NULL))
                FAIL("a bad record without a reason or bytes\n");
        } else if (rc == SL_FRAME_RECORD) {
            if (n != max)
                FAIL("a full batch of %d of %d\n", n, max);
            n = 0;                                      /* delivered */
        } else if (rc != SL_FRAME_WAIT) {
            FAIL("answer %d\n", rc);
        }
        if (lua_gettop(L) != batch)
            FAIL("stack at %d after answer %d\n", lua_gettop(L), rc);
        sl_framer_position(f, &off, &line);
        if (off < *pos_off || line < *pos_line || off > f->base + (int64_t)f->len)
            FAIL("position %lld:%lld after %lld:%lld\n", (long long)off, (long long)line,
                 (long long)*pos_off, (long long)*pos_line);
        *pos_off = off;
        *pos_line = line;
        if (rc == SL_FRAME_WAIT)
            break;
    }
    if (eof && f->pos != f->len && !(f->skipping && f->format == SL_FRAMER_MSGPACK))
        FAIL("%zu bytes left unframed at the end\n", f->len - f->pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int formats[] = {SL_FRAMER_LINES, SL_FRAMER_JSON, SL_FRAMER_CSV,
                                  SL_FRAMER_CSV, SL_FRAMER_MSGPACK};
    static const size_t pieces[] = {1, 7, 64, 60000};
    lua_State *L = fuzz_lua();
    sl_framer f;
    size_t at = 1, piece;
    int64_t last_off = 0, pos_off = 0, pos_line = 1;
    int sel, keys, batch, max;

    if (size < 1 || size > 60000)
        return 0;
    sel = data[0];
    sl_framer_init(&f, formats[(sel & 7) % 5], (sel & 64) ? 16 : 1024);
    f.partial_bad = (sel & 8) != 0;
    f.keyed = f.want_header = (sel & 7) == 3;
    piece = pieces[(sel >> 4) & 3];
    max = (sel & 128) ? 3 : 1024;
    lua_pushnil(L);                                     /* keys */
    keys = lua_gettop(L);
    lua_createtable(L, max < 64 ? max : 64, 0);         /* keys batch */
    batch = lua_gettop(L);
    while (at < size) {
        size_t k = size - at < piece ? size - at : piece;
        sl_framer_append(&f, (const char *)data + at, k);
        at += k;
        frame_all(&f, L, keys, batch, max, 0, &last_off, &pos_off, &pos_line);
    }
    frame_all(&f, L, keys, batch, max, 1, &last_off, &pos_off, &pos_line);
    sl_framer_free(&f);
    return 0;
}
