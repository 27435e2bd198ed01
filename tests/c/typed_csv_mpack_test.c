/* typed_csv_mpack_test.c -- standalone checks of the typed CSV and msgpack codecs
 * (host/typed_csv.c, host/typed_mpack.c): every type, absent and skipped fields, quoting,
 * a full arena, wrong values and their reasons, the msgpack stream contract (MORE on every
 * truncation, *used on BAD), and round trips that must give the very bytes the table path
 * (sl_csv_decode/encode, sl_mpack_decode/encode) gives for the same input.
 *
 * Every input is copied into an exact-size heap block, so AddressSanitizer catches any
 * read past len. Built by `make build/typed_csv_mpack_test` (with the sanitizers). */
#include "buf.h"
#include "codec.h"
#include "typed.h"
#include "check.h"

#include <inttypes.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit) lit, sizeof(lit) - 1

static lua_State *L;
static char err[SL_CODEC_ERRLEN];
static sl_typed_field rec[SL_TYPED_MAX_SLOTS];

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- schemas and records ----------------------------------------------------------- */

/* A schema from "name:type,..." (types i64 f64 bool string rec; rec takes nested). */
static sl_schema *schema(const char *spec, const sl_schema *nested)
{
    sl_schema_field fs[32];
    char names[32][32];
    int n = 0;
    const char *p = spec;
    while (*p) {
        const char *colon = strchr(p, ':'), *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        snprintf(names[n], sizeof names[n], "%.*s", (int)(colon - p), p);
        memset(&fs[n], 0, sizeof fs[n]);
        fs[n].name = names[n];
        const char *t = colon + 1;
        size_t tl = (size_t)(end - t);
        fs[n].type = tl == 3 && !memcmp(t, "i64", 3) ? SL_TYPED_I64
                   : tl == 3 && !memcmp(t, "f64", 3) ? SL_TYPED_F64
                   : tl == 4 && !memcmp(t, "bool", 4) ? SL_TYPED_BOOL
                   : tl == 6 && !memcmp(t, "string", 6) ? SL_TYPED_STRING : SL_TYPED_RECORD;
        if (fs[n].type == SL_TYPED_RECORD)
            fs[n].record = nested;
        n++;
        p = *end ? end + 1 : end;
    }
    sl_schema *s = sl_schema_new(fs, n, err);
    if (!s) {
        fprintf(stderr, "schema %s: %s\n", spec, err);
        exit(2);
    }
    return s;
}

/* The columns "id,-,name" of s: field indexes, -1 for "-". Returns how many. */
static int columns(const sl_schema *s, const char *spec, int *cols)
{
    int n = 0;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const sl_schema_field *f = sl_schema_find(s, p, len);
        cols[n++] = f ? (int)(f - s->fields) : -1;
        if (!end)
            return n;
        p = end + 1;
    }
}

/* A record as text, fields in schema order, absent ones left out: {a=true,id=7,...}. */
static void describe(const sl_typed_field *r, sl_buf *out)
{
    const sl_schema *s = r[0].v.schema;
    int first = 1;
    sl_buf_putc(out, '{');
    for (int i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];
        const sl_typed_field *v = r + f->slot;
        if (!v->present)
            continue;
        sl_buf_printf(out, "%s%s=", first ? "" : ",", f->name);
        first = 0;
        switch (f->type) {
        case SL_TYPED_I64: sl_buf_printf(out, "%" PRId64, v->v.i64); break;
        case SL_TYPED_F64: sl_buf_printf(out, "%.17g", v->v.f64); break;
        case SL_TYPED_BOOL: sl_buf_printf(out, "%s", v->v.b ? "true" : "false"); break;
        case SL_TYPED_STRING: sl_buf_printf(out, "'%.*s'", (int)v->len, v->v.str); break;
        default: describe(v, out); break;
        }
    }
    sl_buf_putc(out, '}');
}

static int same_text(const sl_buf *b, const char *want)
{
    return b->len == strlen(want) && memcmp(b->data, want, b->len) == 0;
}

/* ---- CSV --------------------------------------------------------------------------- */

static char arena_mem[1 << 16];
static sl_typed_arena arena = { arena_mem, sizeof arena_mem, 0 };

static int tcsv(const sl_schema *s, const char *cols, const char *in, size_t len)
{
    int cf[64], n = columns(s, cols, cf);
    char *copy = dup_exact(in, len);
    err[0] = '\0';
    int rc = sl_typed_csv_decode(s, cf, n, copy, len, rec, &arena, err);
    free(copy);     /* strings into it are not read after this */
    return rc;
}

/* Decodes in (columns cols) and expects the record described as want. */
static void csv_ok(const sl_schema *s, const char *cols, const char *in, const char *want)
{
    arena.used = 0;
    sl_buf b;
    sl_buf_init(&b);
    int cf[64], n = columns(s, cols, cf);
    size_t len = strlen(in);
    char *copy = dup_exact(in, len);
    int rc = sl_typed_csv_decode(s, cf, n, copy, len, rec, &arena, err);
    if (rc == SL_CODEC_OK)
        describe(rec, &b);
    free(copy);
    CHECK(rc == SL_CODEC_OK && same_text(&b, want), "csv [%s]: rc %d %s, got %.*s, want %s",
          in, rc, rc ? err : "", (int)b.len, b.data, want);
    sl_buf_free(&b);
}

static void csv_bad(const sl_schema *s, const char *cols, const char *in, const char *want)
{
    arena.used = 0;
    int rc = tcsv(s, cols, in, strlen(in));
    CHECK(rc == SL_CODEC_BAD && strcmp(err, want) == 0 && arena.used == 0,
          "csv [%s]: rc %d, err \"%s\", want \"%s\"", in, rc, err, want);
}

/* The table path's line for in with the header names cols, and the typed path's, which
 * must be the same bytes. */
static void csv_same(const sl_schema *s, const char *cols, const char *in)
{
    int cf[64], n = columns(s, cols, cf);
    size_t len = strlen(in);
    char *copy = dup_exact(in, len);
    sl_buf want, got;
    sl_buf_init(&want);
    sl_buf_init(&got);
    lua_pushstring(L, cols);
    lua_setglobal(L, "cols");
    eval(L, "local t = {} for c in cols:gmatch('[^,]+') do t[#t + 1] = c end return t");
    int top = lua_gettop(L);
    if (sl_csv_decode(L, copy, len, top, err) == SL_CODEC_OK) {
        CHECK(sl_csv_encode(L, -1, top, &want, err) == SL_CODEC_OK, "table encode %s", err);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    arena.used = 0;
    int rc = sl_typed_csv_decode(s, cf, n, copy, len, rec, &arena, err);
    CHECK(rc == SL_CODEC_OK, "typed decode [%s]: %s", in, err);
    if (rc == SL_CODEC_OK)
        CHECK(sl_typed_csv_encode(rec, cf, n, &got, err) == SL_CODEC_OK, "encode: %s", err);
    CHECK(want.len == got.len && memcmp(want.data, got.data, got.len) == 0,
          "round trip of [%s]: table [%.*s], typed [%.*s]", in, (int)want.len, want.data,
          (int)got.len, got.data);
    free(copy);
    sl_buf_free(&want);
    sl_buf_free(&got);
}

static void test_csv_decode(void)
{
    sl_schema *s = schema("id:i64,name:string,price:f64,ok:bool", NULL);
    const char *all = "id,name,price,ok";
    csv_ok(s, all, "7,bob,2.5,true", "{id=7,name='bob',ok=true,price=2.5}");
    csv_ok(s, all, "-7,x y,-1.5E-2,false", "{id=-7,name='x y',ok=false,price=-0.014999999999999999}");
    csv_ok(s, all, "7,,,", "{id=7}");
    csv_ok(s, all, ",,,", "{}");
    csv_ok(s, all, "7,\"\",,", "{id=7,name=''}");
    /* A quoted cell of a number or bool field is read from its content. */
    csv_ok(s, all, "\"12\",\"a,b\",\"0.5\",\"true\"", "{id=12,name='a,b',ok=true,price=0.5}");
    csv_ok(s, all, "1,\"x\ny\",1e3,true", "{id=1,name='x\ny',ok=true,price=1000}");
    /* The order of columns is the caller's; skipped columns are split, not read. */
    csv_ok(s, "price,-,id,-", "2.5,\"a,\"\"b\",3,junk", "{id=3,price=2.5}");
    csv_ok(s, "-,-,-,-", "x,\"y\",,z", "{}");
    /* Strings point into the input, unless quotes were doubled: then into the arena. */
    {
        static const char in[] = "1,plain,,";
        int cf[4], n = columns(s, all, cf);
        char *copy = dup_exact(in, sizeof in - 1);
        arena.used = 0;
        CHECK(sl_typed_csv_decode(s, cf, n, copy, sizeof in - 1, rec, &arena, err) == 0,
              "plain: %s", err);
        const sl_typed_field *v = rec + sl_schema_find(s, S("name"))->slot;
        CHECK(v->v.str == copy + 2 && v->len == 5 && arena.used == 0, "zero copy");
        free(copy);
        static const char q[] = "1,\"say \"\"hi\"\"\",,";
        copy = dup_exact(q, sizeof q - 1);
        arena.used = 3;
        CHECK(sl_typed_csv_decode(s, cf, n, copy, sizeof q - 1, rec, &arena, err) == 0,
              "quoted: %s", err);
        CHECK(v->v.str == arena_mem + 3 && v->len == 8 && memcmp(v->v.str, "say \"hi\"", 8) == 0
              && arena.used == 11, "unescaped into the arena: used %zu", arena.used);
        /* A number read from doubled quotes keeps nothing in the arena. */
        arena.used = 0;
        csv_bad(s, all, "\"1\"\"2\",,,", "field id: want i64, got \"1\"2\"");
        free(copy);
    }
    /* FULL: the arena cannot hold the record's strings; nothing kept; room, then OK. */
    {
        static const char q[] = "1,\"a\"\"b\"\"c\",,";
        char small[6];
        sl_typed_arena a = { small, sizeof small, 2 };
        int cf[4], n = columns(s, all, cf);
        char *copy = dup_exact(q, sizeof q - 1);
        CHECK(sl_typed_csv_decode(s, cf, n, copy, sizeof q - 1, rec, &a, err) == SL_TYPED_FULL
              && a.used == 2, "full: used %zu", a.used);
        a.used = 0;
        CHECK(sl_typed_csv_decode(s, cf, n, copy, sizeof q - 1, rec, &a, err) == SL_CODEC_OK
              && a.used == 5, "after reset: %s", err);
        /* The same with a second quoted string that no longer fits. */
        sl_schema *s2 = schema("a:string,b:string", NULL);
        int cf2[2], n2 = columns(s2, "a,b", cf2);
        static const char q2[] = "\"x\"\"y\",\"z\"\"w\"";
        char *copy2 = dup_exact(q2, sizeof q2 - 1);
        a.used = 0;
        CHECK(sl_typed_csv_decode(s2, cf2, n2, copy2, sizeof q2 - 1, rec, &a, err)
              == SL_TYPED_FULL && a.used == 0, "second string full: used %zu", a.used);
        free(copy2);
        free(copy);
        sl_schema_free(s2);
    }
    /* Wrong values, the field named and the text quoted (cut when long). */
    csv_bad(s, all, "x,bob,2.5,true", "field id: want i64, got \"x\"");
    csv_bad(s, all, "1.5,bob,2.5,true", "field id: want i64, got \"1.5\"");
    csv_bad(s, all, "1,bob,abc,true", "field price: want f64, got \"abc\"");
    csv_bad(s, all, "1,bob,2,yes", "field ok: want bool, got \"yes\"");
    csv_bad(s, all, "1,bob,2,TRUE", "field ok: want bool, got \"TRUE\"");
    csv_bad(s, all, "\"\",bob,2,true", "field id: want i64, got \"\"");
    csv_bad(s, all, "1,bob,\"a\nb\",true", "field price: want f64, got \"a b\"");
    csv_bad(s, all, "1,b,0123456789012345678901234567890123456789abc,true",
            "field price: want f64, got \"0123456789012345678901234567890123456789\"...");
    csv_bad(s, all, "1,b,inf,true", "field price: want f64, got \"inf\"");
    csv_bad(s, all, "1,b,1e400,true", "field price: want f64, got \"1e400\"");
    csv_bad(s, all, "1,b, 5,true", "field price: want f64, got \" 5\"");
    csv_bad(s, all, "+3,b,5,true", "field id: want i64, got \"+3\"");
    csv_bad(s, all, "007,b,5,true", "field id: want i64, got \"007\"");
    /* The first wrong value is the one reported. */
    csv_bad(s, all, "x,b,y,z", "field id: want i64, got \"x\"");
    /* Column counts and quoting, as sl_csv_decode reports them, before any wrong value. */
    csv_bad(s, all, "1,2", "csv: record has 2 fields, header has 4");
    csv_bad(s, all, "x,2", "csv: record has 2 fields, header has 4");
    csv_bad(s, all, "1,b,2,true,", "csv: record has 5 fields, header has 4");
    csv_bad(s, all, "", "csv: record has 1 fields, header has 4");
    csv_bad(s, all, "1,\"abc,2,true", "csv: unterminated quoted field at byte 2");
    csv_bad(s, all, "1,\"a\"\"bc,2,true", "csv: unterminated quoted field at byte 2");
    csv_bad(s, all, "1,\"ab\"c,2,true", "csv: unexpected character after closing quote at byte 6");
    csv_bad(s, "id,-,price,ok", "1,\"ab\"\"\"c,2,true",
            "csv: unexpected character after closing quote at byte 8");
    /* i64 limits: exact whatever the digits, in range, integral. */
    sl_schema *n = schema("i:i64,f:f64", NULL);
    csv_ok(n, "i,f", "9223372036854775807,", "{i=9223372036854775807}");
    csv_ok(n, "i,f", "-9223372036854775808,", "{i=-9223372036854775808}");
    csv_ok(n, "i,f", "-0,-0", "{f=-0,i=0}");
    csv_ok(n, "i,f", "1e3,9007199254740993", "{f=9007199254740992,i=1000}");
    csv_ok(n, "i,f", "1.5e1,1e-320", "{f=9.9998886718268301e-321,i=15}");
    csv_ok(n, "i,f", "9.2e18,", "{i=9200000000000000000}");
    csv_bad(n, "i,f", "9223372036854775808,", "field i: want i64, got \"9223372036854775808\"");
    csv_bad(n, "i,f", "-9223372036854775809,", "field i: want i64, got \"-9223372036854775809\"");
    csv_bad(n, "i,f", "18446744073709551616,", "field i: want i64, got \"18446744073709551616\"");
    csv_bad(n, "i,f", "99999999999999999999,", "field i: want i64, got \"99999999999999999999\"");
    csv_bad(n, "i,f", "9.3e18,", "field i: want i64, got \"9.3e18\"");
    csv_bad(n, "i,f", "1e19,", "field i: want i64, got \"1e19\"");
    csv_bad(n, "i,f", "1.25,", "field i: want i64, got \"1.25\"");
    /* A nested record cannot be a column; a column index past the fields is refused. */
    sl_schema *inner = schema("x:i64", NULL);
    sl_schema *outer = schema("a:i64,u:rec", inner);
    csv_bad(outer, "a,u", "1,", "field u: a nested record cannot be a CSV column");
    {
        int cf[2] = { 0, 7 };
        arena.used = 0;
        CHECK(sl_typed_csv_decode(outer, cf, 2, "1,2", 3, rec, &arena, err) == SL_CODEC_BAD
              && strcmp(err, "csv: column 2 names field 7 of a schema of 2") == 0, "%s", err);
    }
    sl_schema_free(outer);
    sl_schema_free(inner);
    sl_schema_free(n);
    sl_schema_free(s);
}

static void csv_enc(const sl_typed_field *r, const int *cf, int n, const char *want,
                    const char *want_err)
{
    sl_buf b;
    sl_buf_init(&b);
    sl_buf_append(&b, "pre", 3);
    int rc = sl_typed_csv_encode(r, cf, n, &b, err);
    if (want)
        CHECK(rc == SL_CODEC_OK && b.len == 3 + strlen(want) && !memcmp(b.data + 3, want, b.len - 3),
              "encode: [%.*s], want [%s]", (int)b.len - 3, b.data + 3, want);
    else
        CHECK(rc == SL_CODEC_BAD && b.len == 3 && strcmp(err, want_err) == 0,
              "encode: rc %d err %s", rc, err);
    sl_buf_free(&b);
}

static void set(sl_typed_field *r, const char *name, int type, ...);

static void test_csv_encode(void)
{
    sl_schema *inner = schema("n:string,x:i64", NULL);
    sl_schema *s = schema("id:i64,name:string,price:f64,ok:bool,u:rec", inner);
    int cf[6], n = columns(s, "id,name,price,ok,u,-", cf);
    sl_typed_clear(s, rec);
    csv_enc(rec, cf, n, ",,,,,\n", NULL);
    set(rec, "id", SL_TYPED_I64, (int64_t)7);
    set(rec, "name", SL_TYPED_STRING, "bob");
    set(rec, "price", SL_TYPED_F64, 0.1);
    set(rec, "ok", SL_TYPED_BOOL, 0);
    csv_enc(rec, cf, n, "7,bob,0.1,false,,\n", NULL);
    /* Strings quoted as sl_csv_encode quotes them. */
    const char *texts[][2] = {
        { "a,b", "\"a,b\"" }, { "say \"hi\"", "\"say \"\"hi\"\"\"" }, { "x\ny", "\"x\ny\"" },
        { "cr\r", "\"cr\r\"" }, { "", "\"\"" }, { "12", "\"12\"" }, { "-1.5", "\"-1.5\"" },
        { "007", "007" }, { "5\" screen", "\"5\"\" screen\"" },
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char want[64];
        set(rec, "name", SL_TYPED_STRING, texts[i][0]);
        snprintf(want, sizeof want, "7,%s,0.1,false,,\n", texts[i][1]);
        csv_enc(rec, cf, n, want, NULL);
    }
    set(rec, "name", SL_TYPED_STRING, "bob");
    set(rec, "id", SL_TYPED_I64, INT64_MIN);
    set(rec, "price", SL_TYPED_F64, 1e21);
    set(rec, "ok", SL_TYPED_BOOL, 1);
    csv_enc(rec, cf, n, "-9223372036854775808,bob,1e+21,true,,\n", NULL);
    set(rec, "id", SL_TYPED_I64, (int64_t)9007199254740993);
    set(rec, "price", SL_TYPED_F64, -0.0);
    csv_enc(rec, cf, n, "9007199254740993,bob,0,true,,\n", NULL);
    /* A nested record: its JSON, quoted. */
    sl_typed_field *u = rec + sl_schema_find(s, S("u"))->slot;
    u->present = 1;
    set(u, "n", SL_TYPED_STRING, "q\"");
    set(u, "x", SL_TYPED_I64, (int64_t)3);
    csv_enc(rec, cf, n, "9007199254740993,bob,0,true,\"{\"\"n\"\":\"\"q\\\"\"\"\",\"\"x\"\":3}\",\n",
            NULL);
    set(rec, "price", SL_TYPED_F64, NAN);
    csv_enc(rec, cf, n, NULL, "csv: field price: cannot encode NaN/inf");
    set(rec, "price", SL_TYPED_F64, INFINITY);
    csv_enc(rec, cf, n, NULL, "csv: field price: cannot encode NaN/inf");
    sl_schema_free(s);
    sl_schema_free(inner);
}

/* Sets the field name of the record r (any schema) to a value of the type given. */
static void set(sl_typed_field *r, const char *name, int type, ...)
{
    const sl_schema_field *f = sl_schema_find(r[0].v.schema, name, strlen(name));
    sl_typed_field *v = r + f->slot;
    va_list ap;
    va_start(ap, type);
    switch (type) {
    case SL_TYPED_I64: v->v.i64 = va_arg(ap, int64_t); break;
    case SL_TYPED_F64: v->v.f64 = va_arg(ap, double); break;
    case SL_TYPED_BOOL: v->v.b = va_arg(ap, int); break;
    default: v->v.str = va_arg(ap, const char *); v->len = (uint32_t)strlen(v->v.str); break;
    }
    va_end(ap);
    v->present = 1;
}

static void test_csv_round_trip(void)
{
    sl_schema *s = schema("id:i64,name:string,price:f64,ok:bool", NULL);
    const char *all = "id,name,price,ok";
    csv_same(s, all, "7,bob,2.5,true");
    csv_same(s, all, "7,,,");
    csv_same(s, all, "-0,\"\",-0.0,false");
    csv_same(s, all, "1,\"a,b\",1e3,true");
    csv_same(s, all, "1,\"say \"\"hi\"\"\",0.1,true");
    csv_same(s, all, "1,\"x\ny\",123456789012345,false");
    csv_same(s, all, "1,\"12\",1.5E-7,false");
    csv_same(s, all, "1,007,-1e-5,true");
    csv_same(s, all, "1,5\" screen,0.30000000000000004,true");
    /* Random records of the types the table path infers the same way. */
    static const char chars[] = "ab ,\"\n\r1-.e";
    for (int i = 0; i < 3000; i++) {
        char line[256], name[16];
        size_t k = rnd() % 8, o = 0;
        for (size_t j = 0; j < k; j++)
            name[j] = chars[rnd() % (sizeof chars - 1)];
        name[k] = '\0';
        /* The name's cell, quoted as the encoder would: the test is the typed decoder. */
        char cell[40];
        cell[o++] = '"';
        for (size_t j = 0; j < k; j++) {
            if (name[j] == '"')
                cell[o++] = '"';
            cell[o++] = name[j];
        }
        cell[o++] = '"';
        cell[o] = '\0';
        double x = (double)(int64_t)(rnd() % 2000001 - 1000000) / (double)(1 + rnd() % 1000);
        int64_t id = (int64_t)(rnd() % 2000000000000000) - 1000000000000000;
        char num[32];
        sl_codec_number(x, num);
        snprintf(line, sizeof line, "%" PRId64 ",%s,%s,%s", id, cell, num,
                 rnd() % 2 ? "true" : "false");
        csv_same(s, all, line);
    }
    sl_schema_free(s);
}

/* ---- msgpack ----------------------------------------------------------------------- */

/* The msgpack bytes of a Lua expression, as sl_mpack_encode packs it. */
static void packed(const char *code, sl_buf *out)
{
    eval(L, code);
    CHECK(sl_mpack_encode(L, -1, out, err) == SL_CODEC_OK, "pack %s: %s", code, err);
    lua_pop(L, 1);
}

static int tmp(const sl_schema *s, const char *in, size_t len, size_t *used)
{
    char *copy = dup_exact(in, len);
    err[0] = '\0';
    int rc = sl_typed_mpack_decode(s, copy, len, used, rec, err);
    free(copy);
    return rc;
}

/* Decodes in[0, len) and expects the record described as want, all bytes used, and MORE
 * (nothing used) for every shorter prefix. */
static void mp_ok(const sl_schema *s, const char *in, size_t len, const char *want)
{
    size_t used = 99;
    sl_buf b;
    sl_buf_init(&b);
    char *copy = dup_exact(in, len);
    int rc = sl_typed_mpack_decode(s, copy, len, &used, rec, err);
    if (rc == SL_CODEC_OK)
        describe(rec, &b);
    free(copy);
    CHECK(rc == SL_CODEC_OK && used == len && same_text(&b, want),
          "msgpack: rc %d %s used %zu of %zu, got %.*s, want %s", rc, rc ? err : "", used,
          len, (int)b.len, b.data, want);
    for (size_t i = 0; i < len; i++) {
        used = 99;
        rc = tmp(s, in, i, &used);
        CHECK(rc == SL_CODEC_MORE && used == 0, "prefix %zu of %zu: rc %d used %zu", i, len,
              rc, used);
    }
    sl_buf_free(&b);
}

static void mp_lua_ok(const sl_schema *s, const char *code, const char *want)
{
    sl_buf b;
    sl_buf_init(&b);
    packed(code, &b);
    mp_ok(s, b.data, b.len, want);
    sl_buf_free(&b);
}

/* Expects BAD with *used as sl_mpack_decode sets it, and the reason want. */
static void mp_bad(const sl_schema *s, const char *in, size_t len, const char *want)
{
    size_t used = 99, tused = 99;
    int rc = tmp(s, in, len, &used);
    char *copy = dup_exact(in, len);
    char terr[SL_CODEC_ERRLEN];
    int trc = sl_mpack_decode(L, copy, len, &tused, terr);
    if (trc == SL_CODEC_OK)
        lua_pop(L, 1);
    free(copy);
    CHECK(rc == SL_CODEC_BAD && strcmp(err, want) == 0, "msgpack: rc %d err \"%s\", want \"%s\"",
          rc, err, want);
    CHECK(used == (trc == SL_CODEC_BAD ? tused : len), "used %zu (table path %d, %zu)", used,
          trc, tused);
}

static void test_mpack_decode(void)
{
    sl_schema *s = schema("id:i64,name:string,price:f64,ok:bool", NULL);
    mp_lua_ok(s, "return {id = 7, name = 'bob', price = 2.5, ok = true}",
              "{id=7,name='bob',ok=true,price=2.5}");
    mp_lua_ok(s, "return {ok = false, price = -3, id = -300000, name = string.rep('x', 40)}",
              "{id=-300000,name='xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',ok=false,price=-3}");
    mp_lua_ok(s, "return {}", "{}");
    mp_lua_ok(s, "return {id = null, name = null, other = 5}", "{}");
    /* Unknown keys skipped, whatever their values; numbers are keys no field has. */
    mp_lua_ok(s, "return {a = {1, {b = {}}, 'x'}, id = 1, z = {q = {r = 1.5}}, [5] = 'v', "
                 "[1.5] = true, y = null}", "{id=1}");
    mp_lua_ok(s, "local t = {id = 2} for i = 1, 40 do t['k' .. i] = {i, tostring(i)} end return t",
              "{id=2}");
    /* Integers of every width; an i64 from an integral float; f64 from any number. */
    mp_ok(s, S("\x82\xa2id\xcb\x40\x8f\x40\0\0\0\0\0\xa5price\xcf\0\0\0\0\0\0\x01\0"),
          "{id=1000,price=256}");
    mp_ok(s, S("\x82\xa2id\xd3\x80\0\0\0\0\0\0\0\xa5price\xca\x3f\xc0\0\0"),
          "{id=-9223372036854775808,price=1.5}");
    mp_ok(s, S("\x82\xa2id\xcf\x7f\xff\xff\xff\xff\xff\xff\xff\xa5price\xd0\x05"),
          "{id=9223372036854775807,price=5}");
    mp_ok(s, S("\x83\xa2id\xd1\xff\x00\xa5price\xd2\xff\xff\xff\xfe\xa2ok\xc2"),
          "{id=-256,ok=false,price=-2}");
    mp_ok(s, S("\x82\xa2id\xcd\x01\x00\xa5price\xce\x00\x01\x00\x00"), "{id=256,price=65536}");
    mp_ok(s, S("\x82\xa2id\xcc\xff\xa5price\xcb\x43\xe0\0\0\0\0\0\0"),
          "{id=255,price=9.2233720368547758e+18}");
    /* str and bin both strings (bin keys too), as on the table path; strings point into
     * the input. */
    mp_ok(s, S("\x81\xc4\x04name\xc4\x03" "a\0b"), "{name='a'}");
    {
        static const char in[] = "\x81\xa4name\xd9\x03" "abc";
        char *copy = dup_exact(in, sizeof in - 1);
        size_t used;
        CHECK(sl_typed_mpack_decode(s, copy, sizeof in - 1, &used, rec, err) == SL_CODEC_OK,
              "%s", err);
        const sl_typed_field *v = rec + sl_schema_find(s, S("name"))->slot;
        CHECK(v->v.str == copy + 8 && v->len == 3, "zero copy");
        free(copy);
    }
    /* Duplicate keys: the last wins, nil included. */
    mp_ok(s, S("\x83\xa2id\x01\xa2id\x02\xa4name\xa1x"), "{id=2,name='x'}");
    mp_ok(s, S("\x82\xa2id\x01\xa2id\xc0"), "{}");
    /* The next object is not consumed. */
    {
        size_t used = 0;
        CHECK(tmp(s, S("\x81\xa2id\x01\x81"), &used) == SL_CODEC_OK && used == 5, "used %zu", used);
    }
    /* Wrong values. */
    mp_bad(s, S("\x81\xa2id\xa1x"), "field id: want i64, got string");
    mp_bad(s, S("\x81\xa2id\xcb\x3f\xf8\0\0\0\0\0\0"), "field id: want i64, got 1.5");
    mp_bad(s, S("\x81\xa2id\xcf\x80\0\0\0\0\0\0\0"), "field id: want i64, got 9223372036854775808");
    mp_bad(s, S("\x81\xa2id\xcf\xff\xff\xff\xff\xff\xff\xff\xff"),
           "field id: want i64, got 18446744073709551615");
    mp_bad(s, S("\x81\xa2id\xcb\x43\xe0\0\0\0\0\0\0"), "field id: want i64, got 9.2233720368547758e+18");
    mp_bad(s, S("\x81\xa2id\xcb\x7f\xf8\0\0\0\0\0\0"), "field id: want i64, got nan");
    mp_bad(s, S("\x81\xa2id\xc3"), "field id: want i64, got bool");
    mp_bad(s, S("\x81\xa5price\xa1x"), "field price: want f64, got string");
    mp_bad(s, S("\x81\xa5price\x91\x01"), "field price: want f64, got array");
    mp_bad(s, S("\x81\xa2ok\x01"), "field ok: want bool, got 1");
    mp_bad(s, S("\x81\xa2ok\xfd"), "field ok: want bool, got -3");
    mp_bad(s, S("\x81\xa2ok\xcb\x3f\xf8\0\0\0\0\0\0"), "field ok: want bool, got 1.5");
    mp_bad(s, S("\x81\xa4name\x80"), "field name: want string, got map");
    mp_bad(s, S("\x81\xa4name\x01"), "field name: want string, got 1");
    mp_bad(s, S("\x92\x01\x02"), "msgpack: a record must be a map, not an array");
    mp_bad(s, S("\x01"), "msgpack: a record must be a map, not a number");
    mp_bad(s, S("\xa1x"), "msgpack: a record must be a map, not a string");
    mp_bad(s, S("\xc0"), "msgpack: a record must be a map, not a nil");
    /* Bad keys, malformed bytes and ext as the table path reports them. */
    mp_bad(s, S("\x81\x90\x01"), "msgpack: map keys must be strings or numbers");
    mp_bad(s, S("\x81\xc0\x01"), "msgpack: map keys must be strings or numbers");
    mp_bad(s, S("\x81\xcb\x7f\xf8\0\0\0\0\0\0\x01"), "msgpack: map key is NaN");
    /* ... inside a value no field has too: the table path would refuse the record. */
    mp_bad(s, S("\x82\xa1x\x91\x81\x90\x01\xa2id\x01"), "msgpack: map keys must be strings or numbers");
    mp_bad(s, S("\x82\x05\x81\xc3\x01\xa2id\x01"), "msgpack: map keys must be strings or numbers");
    mp_bad(s, S("\x81\xa1x\x81\xcb\x7f\xf8\0\0\0\0\0\0\x01"), "msgpack: map key is NaN");
    mp_bad(s, S("\x82\xa2id\x01\xa1x\xc1"), "msgpack: invalid type byte 0xc1 at byte 7");
    mp_bad(s, S("\xc1"), "msgpack: invalid type byte 0xc1 at byte 0");
    mp_bad(s, S("\x82\xa2id\x01\xa1x\xd4\x01\x02"), "msgpack: ext types are not supported");
    mp_bad(s, S("\x82\xa1x\x92\x01\xc7\x02\x05" "ab\xa2id\x01"), "msgpack: ext types are not supported");
    /* Whatever is wrong, a truncated object is MORE, as for the table path, which
     * measures the object first; an ext is the reason over a wrong value. */
    {
        size_t used = 9;
        CHECK(tmp(s, S("\x82\xa2id\xa1x\xa1y"), &used) == SL_CODEC_MORE && used == 0,
              "wrong value, then truncated: %zu", used);
        CHECK(tmp(s, S("\x82\x90\x01\xa1y\xd4"), &used) == SL_CODEC_MORE && used == 0,
              "bad key, then truncated");
        CHECK(tmp(s, S("\x81\xa1x\xd4\x01"), &used) == SL_CODEC_MORE && used == 0,
              "ext, truncated");
    }
    mp_bad(s, S("\x82\xa2id\xa1x\xa1y\xd4\x01\x02"), "msgpack: ext types are not supported");
    mp_bad(s, S("\xd4\x01\x02"), "msgpack: ext types are not supported");
    /* A malformed byte after a wrong value: the malformed byte is the reason, 1 used. */
    mp_bad(s, S("\x82\xa2id\xa1x\xa1y\xc1"), "msgpack: invalid type byte 0xc1 at byte 8");
    {
        char deep[48];
        memcpy(deep, "\x81\xa1x", 3);
        memset(deep + 3, 0x91, 32);
        deep[35] = 0x01;
        mp_bad(s, deep, 36, "msgpack: nested deeper than 32 levels at byte 34");
        size_t used;
        CHECK(tmp(s, deep, 35, &used) == SL_CODEC_BAD && used == 1, "deep and short");
    }
    /* Huge counts with nothing behind them: MORE, nothing allocated. */
    {
        size_t used = 9;
        CHECK(tmp(s, S("\xdf\xff\xff\xff\xff"), &used) == SL_CODEC_MORE && used == 0, "huge map");
        CHECK(tmp(s, S("\x81\xa2id\xdb\xff\xff\xff\xff"), &used) == SL_CODEC_MORE, "huge str");
        CHECK(tmp(s, "", 0, &used) == SL_CODEC_MORE && used == 0, "empty");
        CHECK(sl_typed_mpack_decode(s, NULL, 0, &used, rec, err) == SL_CODEC_MORE, "NULL");
    }
    /* Nested records. */
    sl_schema *inner = schema("age:i64,name:string", NULL);
    sl_schema *mid = schema("user:rec,n:i64", inner);
    sl_schema *outer = schema("m:rec,id:i64", mid);
    mp_lua_ok(outer, "return {id = 1, m = {n = 2, user = {age = 30, name = 'ann', x = 1}}}",
              "{id=1,m={n=2,user={age=30,name='ann'}}}");
    mp_lua_ok(outer, "return {id = 1, m = {n = 2}}", "{id=1,m={n=2}}");
    mp_lua_ok(outer, "return {id = 1, m = {user = null}}", "{id=1,m={}}");
    mp_lua_ok(outer, "return {id = 1, m = null}", "{id=1}");
    mp_lua_ok(outer, "return {id = 1, m = {}}", "{id=1,m={}}");
    mp_ok(outer, S("\x82\xa1m\x81\xa1n\x01\xa1m\x81\xa4user\x80"), "{m={user={}}}");
    mp_bad(outer, S("\x81\xa1m\x81\xa4user\x81\xa3" "age\xa2xx"),
           "field m.user.age: want i64, got string");
    mp_bad(outer, S("\x81\xa1m\x81\xa4user\x05"), "field m.user: want record, got 5");
    mp_bad(outer, S("\x81\xa1m\x92\x01\x02"), "field m: want record, got array");
    /* A nested record given, then nil: gone whole, its fields too. */
    {
        size_t used;
        CHECK(tmp(outer, S("\x82\xa1m\x81\xa1n\x01\xa1m\xc0"), &used) == SL_CODEC_OK, "%s", err);
        const sl_schema_field *m = sl_schema_find(outer, S("m"));
        const sl_schema_field *n = sl_schema_find(mid, S("n"));
        CHECK(rec[m->slot].present == 0 && rec[m->slot + n->slot].present == 0, "nil after a map");
    }
    /* A nested record absent: its header says so. */
    {
        size_t used;
        CHECK(tmp(outer, S("\x81\xa2id\x01"), &used) == SL_CODEC_OK, "%s", err);
        const sl_schema_field *m = sl_schema_find(outer, S("m"));
        CHECK(rec[m->slot].present == 0 && rec[m->slot].v.schema == mid
              && rec[m->slot].len == (uint32_t)mid->nslots, "absent nested header");
    }
    sl_schema_free(outer);
    sl_schema_free(mid);
    sl_schema_free(inner);
    sl_schema_free(s);
}

/* The table path's bytes for in (decode, encode) and the typed path's (the schema lists
 * every field, the keys are in its order): the same. */
static void mp_same(const sl_schema *s, const char *in, size_t len)
{
    char *copy = dup_exact(in, len);
    sl_buf want, got;
    size_t used;
    sl_buf_init(&want);
    sl_buf_init(&got);
    CHECK(sl_mpack_decode(L, copy, len, &used, err) == SL_CODEC_OK, "table decode: %s", err);
    CHECK(sl_mpack_encode(L, -1, &want, err) == SL_CODEC_OK, "table encode: %s", err);
    lua_pop(L, 1);
    int rc = sl_typed_mpack_decode(s, copy, len, &used, rec, err);
    CHECK(rc == SL_CODEC_OK && used == len, "typed decode: %s", err);
    CHECK(sl_typed_mpack_encode(rec, &got, err) == SL_CODEC_OK, "typed encode: %s", err);
    CHECK(want.len == got.len && memcmp(want.data, got.data, got.len) == 0,
          "msgpack round trip: %zu bytes vs %zu", want.len, got.len);
    free(copy);
    sl_buf_free(&want);
    sl_buf_free(&got);
}

static void mp_lua_same(const sl_schema *s, const char *code)
{
    sl_buf b;
    sl_buf_init(&b);
    packed(code, &b);
    mp_same(s, b.data, b.len);
    sl_buf_free(&b);
}

static void test_mpack_round_trip(void)
{
    sl_schema *s = schema("id:i64,name:string,ok:bool,price:f64", NULL);
    /* Keys as the table path gives them for a table built in Lua: sorted, as the schema. */
    mp_lua_same(s, "return {id = 7, name = 'bob', ok = true, price = 2.5}");
    mp_lua_same(s, "return {id = -7, name = '', ok = false, price = -0.1}");
    mp_lua_same(s, "return {id = 7, price = 1e300}");
    mp_lua_same(s, "return {name = string.rep('y', 300)}");
    mp_lua_same(s, "return {name = string.rep('y', 70000)}");
    mp_lua_same(s, "return {}");
    /* Numbers across every width and both signs, in an i64 and in an f64. */
    static const double xs[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295.0, 4294967296.0, -1, -32, -33,
        -128, -129, -32768, -32769, -2147483648.0, -2147483649.0, 9007199254740992.0,
        -9223372036854775808.0, 9223372036854775807.0, 0.5, -0.0, 1e-300, 1e21, 2.5e-7,
    };
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        char code[128];
        snprintf(code, sizeof code, "return {price = %.17g}", xs[i]);
        mp_lua_same(s, code);
        if (xs[i] == floor(xs[i]) && xs[i] < 9223372036854775807.0 && fabs(xs[i]) <= 9007199254740992.0) {
            snprintf(code, sizeof code, "return {id = %.17g}", xs[i]);
            mp_lua_same(s, code);
        }
    }
    for (int i = 0; i < 2000; i++) {
        int64_t v = (int64_t)(rnd() >> (rnd() % 64)) * (rnd() % 2 ? 1 : -1);
        double d = (double)(int64_t)(rnd() % 2000001 - 1000000) / (double)(1 + rnd() % 1000);
        char code[128];
        if (v > -(INT64_C(1) << 53) && v < INT64_C(1) << 53) {
            snprintf(code, sizeof code, "return {id = %" PRId64 ", price = %.17g}", v, d);
            mp_lua_same(s, code);
        }
        /* Any i64, packed and read back exactly. */
        sl_typed_clear(s, rec);
        set(rec, "id", SL_TYPED_I64, v);
        sl_buf b;
        sl_buf_init(&b);
        CHECK(sl_typed_mpack_encode(rec, &b, err) == SL_CODEC_OK, "encode");
        size_t used;
        CHECK(sl_typed_mpack_decode(s, b.data, b.len, &used, rec, err) == SL_CODEC_OK
              && rec[sl_schema_find(s, S("id"))->slot].v.i64 == v, "i64 %" PRId64, v);
        sl_buf_free(&b);
    }
    /* Nested records, keys in schema order (the table path's for Lua tables too). */
    sl_schema *inner = schema("age:i64,name:string", NULL);
    sl_schema *outer = schema("id:i64,u:rec", inner);
    mp_lua_same(outer, "return {id = 1, u = {age = 30, name = 'ann'}}");
    mp_lua_same(outer, "return {id = 1, u = {}}");
    mp_lua_same(outer, "return {u = {name = 'x'}}");
    /* NaN and infinities cannot be packed; nothing is written. */
    sl_typed_clear(outer, rec);
    sl_typed_field *u = rec + sl_schema_find(outer, S("u"))->slot;
    u->present = 1;
    sl_schema *fl = schema("f:f64", NULL);
    sl_schema *wrap = schema("w:rec", fl);
    sl_typed_clear(wrap, rec);
    rec[1].present = 1;
    set(rec + 1, "f", SL_TYPED_F64, NAN);
    sl_buf b;
    sl_buf_init(&b);
    CHECK(sl_typed_mpack_encode(rec, &b, err) == SL_CODEC_BAD && b.len == 0
          && strcmp(err, "msgpack: field w.f: cannot encode NaN/inf") == 0, "NaN: %s", err);
    sl_buf_free(&b);
    /* Many fields: a map16 header, as msgpack-c writes one. */
    char spec[512];
    size_t o = 0;
    for (int i = 0; i < 20; i++)
        o += (size_t)snprintf(spec + o, sizeof spec - o, "%sk%02d:i64", i ? "," : "", i);
    sl_schema *wide = schema(spec, NULL);
    mp_lua_same(wide, "local t = {} for i = 0, 19 do t[string.format('k%02d', i)] = i * 1000 end "
                      "return t");
    sl_schema_free(wide);
    sl_schema_free(wrap);
    sl_schema_free(fl);
    sl_schema_free(outer);
    sl_schema_free(inner);
    sl_schema_free(s);
}

int main(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushlightuserdata(L, SL_NULL);
    lua_setglobal(L, "null");
    static const check_group groups[] = {
        { "csv decode", test_csv_decode }, { "csv encode", test_csv_encode },
        { "csv round trip", test_csv_round_trip }, { "mpack decode", test_mpack_decode },
        { "mpack round trip", test_mpack_round_trip },
    };
    int passed = 0, failed = 0;
    run_groups("typed", 16, groups, sizeof groups / sizeof groups[0], &passed, &failed);
    CHECK(lua_gettop(L) == 0, "stack left at %d", lua_gettop(L));
    lua_close(L);
    return check_summary(passed, failed);
}
