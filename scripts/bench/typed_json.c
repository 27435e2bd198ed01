/* typed_json.c (bench) -- nanoseconds per line of the typed JSON codec (host/typed_json.c)
 * on lines of the JSON benchmarks' shape (make_json.lua: 5 fields, about 80 bytes), beside
 * the table path (sl_json_decode/sl_json_encode into Lua tables) on the same lines.
 *
 * Built and run by typed_json.sh: prints one Markdown row per measurement. */
#include "buf.h"
#include "codec.h"
#include "typed.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINES 200000
#define BATCH 1024

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);   /* CPU time: a busy machine does not count */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void row(const char *what, double seconds, long n, size_t bytes)
{
    printf("| %s | %.1f ns | %.2f M/s | %.0f MB/s |\n", what, seconds * 1e9 / (double)n,
           (double)n / seconds / 1e6, (double)bytes / seconds / 1e6);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    static const char *const channels[] = { "web", "ios", "android", "partner" };
    char err[SL_CODEC_ERRLEN];
    sl_buf text;
    size_t *start = malloc((LINES + 1) * sizeof *start);
    sl_buf_init(&text);
    for (long i = 0; i < LINES; i++) {
        start[i] = text.len;
        sl_buf_printf(&text, "{\"auction\":%ld,\"bidder\":%ld,\"channel\":\"%s\",\"price\":%g,"
                      "\"ts\":%ld}", 1000 + i % 10007, 5000 + i % 7919, channels[i % 4],
                      (double)(i * 37 % 20000) / 100, 1700000000000L + i * 3);
    }
    start[LINES] = text.len;

    sl_schema_field f[] = { { "auction", 0, SL_TYPED_I64, 0, NULL },
                            { "bidder", 0, SL_TYPED_I64, 0, NULL },
                            { "channel", 0, SL_TYPED_STRING, 0, NULL },
                            { "price", 0, SL_TYPED_F64, 0, NULL },
                            { "ts", 0, SL_TYPED_I64, 0, NULL } };
    sl_schema *s = sl_schema_new(f, 5, err);
    sl_typed_field *recs = malloc((size_t)LINES * (size_t)s->nslots * sizeof *recs);
    char *mem = malloc(1 << 20);
    sl_typed_arena arena = { mem, 1 << 20, 0 };
    long n = (long)LINES * rounds;
    printf("%ld lines of %.1f bytes on average, %d rounds\n\n", (long)LINES,
           (double)text.len / LINES, rounds);
    printf("| what | per line | rate | bytes |\n|---|---|---|---|\n");

    /* Into a batch of BATCH records, reused, as a source fills one batch after another. */
    double t0 = now();
    for (int r = 0; r < rounds; r++)
        for (long i = 0; i < LINES; i++)
            if (sl_typed_json_decode(s, text.data + start[i], start[i + 1] - start[i],
                                     recs + (i % BATCH) * s->nslots, &arena, err)
                != SL_CODEC_OK) {
                fprintf(stderr, "line %ld: %s\n", i, err);
                return 1;
            }
    row("typed decode (sl_typed_json_decode)", now() - t0, n, text.len * (size_t)rounds);
    if (argc > 2 && strcmp(argv[2], "decode") == 0)
        return 0;       /* decode alone, for perf stat */
    for (long i = 0; i < LINES; i++)
        sl_typed_json_decode(s, text.data + start[i], start[i + 1] - start[i],
                             recs + i * s->nslots, &arena, err);

    sl_buf out;
    sl_buf_init(&out);
    t0 = now();
    for (int r = 0; r < rounds; r++) {
        out.len = 0;
        for (long i = 0; i < LINES; i++) {
            sl_typed_json_encode(recs + i * s->nslots, &out, err);
            sl_buf_putc(&out, '\n');
        }
    }
    row("typed encode (sl_typed_json_encode)", now() - t0, n, out.len * (size_t)rounds);
    if (out.len != text.len + LINES || memcmp(out.data, text.data, start[1]) != 0) {
        fprintf(stderr, "the encoder wrote other bytes than it read\n");
        return 1;
    }

    /* The table path on the same lines, for scale (fewer rounds: it is slower). */
    lua_State *L = luaL_newstate();
    int trounds = rounds / 4 > 0 ? rounds / 4 : 1;
    t0 = now();
    for (int r = 0; r < trounds; r++)
        for (long i = 0; i < LINES; i++) {
            sl_json_decode(L, text.data + start[i], start[i + 1] - start[i], err);
            lua_settop(L, 0);
        }
    row("table decode (sl_json_decode)", now() - t0, (long)LINES * trounds,
        text.len * (size_t)trounds);
    lua_close(L);
    sl_buf_free(&out);
    sl_buf_free(&text);
    sl_schema_free(s);
    free(recs);
    free(mem);
    free(start);
    return 0;
}
