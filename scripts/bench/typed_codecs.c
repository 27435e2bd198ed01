/* typed_codecs.c -- ns per record of the typed CSV and msgpack codecs (host/typed_csv.c,
 * host/typed_mpack.c) against the table path (sl_csv_decode/encode, sl_mpack_decode/encode)
 * on the same bytes: an 80-byte CSV line of 7 columns and a 5-field msgpack map, each
 * decoded (and its record encoded) N times in a loop on one core. Prints Markdown rows.
 * Built and run by typed_codecs.sh. */
#include "buf.h"
#include "codec.h"
#include "typed.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *only;     /* argv[2]: time only the rows whose label holds it */

static int wanted(const char *what)
{
    return only == NULL || strstr(what, only) != NULL;
}

static void row(const char *what, double secs, long n)
{
    if (wanted(what))
        printf("| %s | %.1f ns | %.2f M/s |\n", what, secs * 1e9 / (double)n, (double)n / secs / 1e6);
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "typed_codecs: %s: %s\n", what, err);
    exit(1);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    only = argc > 2 ? argv[2] : NULL;
    char err[SL_CODEC_ERRLEN];
    static sl_typed_field rec[16];
    static char arena_mem[1 << 16];
    sl_typed_arena arena = { arena_mem, sizeof arena_mem, 0 };
    sl_buf out;
    sl_buf_init(&out);
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);

    /* CSV: 7 columns, 80 bytes with the newline. */
    static const char line[] =
        "1700000000123,48213,3391,1234.5,web,\"https://shop.example.com/item?id=421\",true";
    static const char *const names[] = { "ts", "auction", "bidder", "price", "channel", "url",
                                         "ok" };
    static const int types[] = { SL_TYPED_I64, SL_TYPED_I64, SL_TYPED_I64, SL_TYPED_F64,
                                 SL_TYPED_STRING, SL_TYPED_STRING, SL_TYPED_BOOL };
    sl_schema_field fs[7];
    memset(fs, 0, sizeof fs);
    for (int i = 0; i < 7; i++) {
        fs[i].name = names[i];
        fs[i].type = types[i];
    }
    sl_schema *cs = sl_schema_new(fs, 7, err);
    if (!cs)
        die("schema", err);
    int cols[7];
    for (int i = 0; i < 7; i++)
        cols[i] = (int)(sl_schema_find(cs, names[i], strlen(names[i])) - cs->fields);
    size_t len = sizeof line - 1;
    printf("| codec (%zu-byte CSV line with its newline, 5-field msgpack map) | per record | rate |\n", len + 1);
    printf("|---|---|---|\n");

    double t = now();
    for (long i = 0, m = wanted("typed CSV decode") ? n : 1; i < m; i++) {
        arena.used = 0;
        if (sl_typed_csv_decode(cs, cols, 7, line, len, rec, &arena, err) != SL_CODEC_OK)
            die("csv decode", err);
    }
    row("typed CSV decode", now() - t, n);
    t = now();
    for (long i = 0, m = wanted("typed CSV encode") ? n : 1; i < m; i++) {
        out.len = 0;
        if (sl_typed_csv_encode(rec, cols, 7, &out, err) != SL_CODEC_OK)
            die("csv encode", err);
    }
    row("typed CSV encode", now() - t, n);
    luaL_dostring(L, "return {'ts', 'auction', 'bidder', 'price', 'channel', 'url', 'ok'}");
    t = now();
    for (long i = 0, m = wanted("table CSV decode (sl_csv_decode, keyed)") ? n : 1; i < m; i++) {
        if (sl_csv_decode(L, line, len, 1, err) != SL_CODEC_OK)
            die("table csv decode", err);
        lua_pop(L, 1);
    }
    row("table CSV decode (sl_csv_decode, keyed)", now() - t, n);
    sl_csv_decode(L, line, len, 1, err);
    t = now();
    for (long i = 0, m = wanted("table CSV encode (sl_csv_encode, keyed)") ? n : 1; i < m; i++) {
        out.len = 0;
        if (sl_csv_encode(L, 2, 1, &out, err) != SL_CODEC_OK)
            die("table csv encode", err);
    }
    row("table CSV encode (sl_csv_encode, keyed)", now() - t, n);
    lua_settop(L, 0);

    /* msgpack: a 5-field map, packed by the table path. */
    static const char *const mnames[] = { "auction", "bidder", "channel", "price", "ts" };
    static const int mtypes[] = { SL_TYPED_I64, SL_TYPED_I64, SL_TYPED_STRING, SL_TYPED_F64,
                                  SL_TYPED_I64 };
    for (int i = 0; i < 5; i++) {
        fs[i].name = mnames[i];
        fs[i].type = mtypes[i];
    }
    sl_schema *ms = sl_schema_new(fs, 5, err);
    if (!ms)
        die("schema", err);
    luaL_dostring(L, "return {auction = 1234, bidder = 55, channel = 'web', price = 123.5, "
                     "ts = 1700000000123}");
    sl_buf map;
    sl_buf_init(&map);
    if (sl_mpack_encode(L, 1, &map, err) != SL_CODEC_OK)
        die("pack", err);
    lua_settop(L, 0);
    size_t used;
    t = now();
    for (long i = 0, m = wanted("typed msgpack decode") ? n : 1; i < m; i++)
        if (sl_typed_mpack_decode(ms, map.data, map.len, &used, rec, err) != SL_CODEC_OK)
            die("mpack decode", err);
    row("typed msgpack decode", now() - t, n);
    t = now();
    for (long i = 0, m = wanted("typed msgpack encode") ? n : 1; i < m; i++) {
        out.len = 0;
        if (sl_typed_mpack_encode(rec, &out, err) != SL_CODEC_OK)
            die("mpack encode", err);
    }
    row("typed msgpack encode", now() - t, n);
    t = now();
    for (long i = 0, m = wanted("table msgpack decode (sl_mpack_decode)") ? n : 1; i < m; i++) {
        if (sl_mpack_decode(L, map.data, map.len, &used, err) != SL_CODEC_OK)
            die("table mpack decode", err);
        lua_pop(L, 1);
    }
    row("table msgpack decode (sl_mpack_decode)", now() - t, n);
    sl_mpack_decode(L, map.data, map.len, &used, err);
    t = now();
    for (long i = 0, m = wanted("table msgpack encode (sl_mpack_encode)") ? n : 1; i < m; i++) {
        out.len = 0;
        if (sl_mpack_encode(L, 1, &out, err) != SL_CODEC_OK)
            die("table mpack encode", err);
    }
    row("table msgpack encode (sl_mpack_encode)", now() - t, n);

    sl_buf_free(&map);
    sl_buf_free(&out);
    sl_schema_free(cs);
    sl_schema_free(ms);
    lua_close(L);
    return 0;
}
