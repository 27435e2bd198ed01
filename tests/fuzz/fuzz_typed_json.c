/* fuzz_typed_json.c -- sl_typed_json_decode on the whole input with a fixed schema of every
 * type, nested records included, against the table path on the same bytes: whatever
 * sl_json_decode calls malformed is BAD here too, and a record decoded OK holds what the
 * table holds. Then it round trips: encoded (valid UTF-8) and decoded again, the record is
 * the same (when its strings were valid UTF-8: the encoder writes U+FFFD for bad bytes),
 * and encoding that gives the very same bytes. An arena of a few bytes is tried first, so
 * that SL_TYPED_FULL comes up and must have kept nothing. */
#include "fuzz_common.h"
#include "typed.h"
#include "../c/typed_check.h"

static sl_schema *every;

static sl_schema *schema(const sl_schema_field *f, int n)
{
    char err[SL_CODEC_ERRLEN];
    sl_schema *s = sl_schema_new(f, n, err);
    if (s == NULL) {
        fprintf(stderr, "sl_schema_new: %s\n", err);
        abort();
    }
    return s;
}

/* every {b bool, f f64, i i64, s string, r {i i64, s string, r {f f64, b bool}}} */
static void make_schema(void)
{
    sl_schema_field inner[] = { { "f", 0, SL_TYPED_F64, 0, NULL },
                                { "b", 0, SL_TYPED_BOOL, 0, NULL } };
    sl_schema *in = schema(inner, 2);
    sl_schema_field mid[] = { { "i", 0, SL_TYPED_I64, 0, NULL },
                              { "s", 0, SL_TYPED_STRING, 0, NULL },
                              { "r", 0, SL_TYPED_RECORD, 0, in } };
    sl_schema *m = schema(mid, 3);
    sl_schema_field top[] = { { "b", 0, SL_TYPED_BOOL, 0, NULL },
                              { "f", 0, SL_TYPED_F64, 0, NULL },
                              { "i", 0, SL_TYPED_I64, 0, NULL },
                              { "s", 0, SL_TYPED_STRING, 0, NULL },
                              { "r", 0, SL_TYPED_RECORD, 0, m } };
    every = schema(top, 5);   /* kept for the whole run, with the ones it holds */
}

/* Whether every string of rec is valid UTF-8. */
static int strings_utf8(const sl_typed_field *rec)
{
    const sl_schema *s = rec[0].v.schema;
    for (int i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];
        const sl_typed_field *v = rec + f->slot;
        if (f->type == SL_TYPED_RECORD && v->present && !strings_utf8(v))
            return 0;
        if (f->type == SL_TYPED_STRING && v->present
            && !fuzz_utf8((const unsigned char *)v->v.str, v->len))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_typed_field rec[64], rec2[64];
    static char tiny[4], mem[8192], mem2[8192];
    lua_State *L = fuzz_lua();
    char err[SL_CODEC_ERRLEN], terr[SL_CODEC_ERRLEN];
    const char *text = (const char *)data;

    if (every == NULL)
        make_schema();
    if (size > sizeof mem / 2)
        return 0;
    sl_typed_arena small = { tiny, sizeof tiny, 1 };
    int rc = sl_typed_json_decode(every, text, size, rec, &small, err);
    if (small.used != 1 && (rc != SL_CODEC_OK || small.used > sizeof tiny)) {
        fprintf(stderr, "typed json: the arena was kept on %d (used %zu)\n", rc, small.used);
        abort();
    }
    sl_typed_arena a = { mem, sizeof mem, 0 };
    rc = sl_typed_json_decode(every, text, size, rec, &a, err);
    if (rc == SL_TYPED_FULL) {
        fprintf(stderr, "typed json: FULL with an arena of twice the record\n");
        abort();
    }
    int table = sl_json_decode(L, text, size, terr);
    if (table == SL_CODEC_BAD && rc != SL_CODEC_BAD) {
        fprintf(stderr, "typed json: takes what the table path rejects (%s)\n", terr);
        abort();
    }
    if (rc != SL_CODEC_OK)
        return 0;
    if (lua_type(L, -1) != LUA_TTABLE || !typed_matches_table(L, rec, -1)) {
        fprintf(stderr, "typed json: the record differs from the table\n");
        abort();
    }

    sl_buf out, again;
    sl_buf_init(&out);
    sl_buf_init(&again);
    if (sl_typed_json_encode(rec, &out, err) != SL_CODEC_OK) {
        fprintf(stderr, "typed json: cannot encode what it decoded: %s\n", err);
        abort();
    }
    if (!fuzz_utf8((const unsigned char *)out.data, out.len)) {
        fprintf(stderr, "typed json: the encoder wrote invalid UTF-8\n");
        abort();
    }
    sl_typed_arena a2 = { mem2, sizeof mem2, 0 };
    if (sl_typed_json_decode(every, out.data, out.len, rec2, &a2, err) != SL_CODEC_OK) {
        fprintf(stderr, "typed json: cannot decode what the encoder wrote: %s\n", err);
        abort();
    }
    if (strings_utf8(rec) && !typed_same(rec, rec2)) {
        fprintf(stderr, "typed json: the second decode differs from the first\n");
        abort();
    }
    if (sl_typed_json_encode(rec2, &again, err) != SL_CODEC_OK) {
        fprintf(stderr, "typed json: cannot encode again: %s\n", err);
        abort();
    }
    fuzz_same(&out, &again, "typed json");
    sl_buf_free(&out);
    sl_buf_free(&again);
    return 0;
}
