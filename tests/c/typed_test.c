/* typed_test.c -- standalone checks of the typed JSON codec (host/typed_json.c) over
 * schemas of host/schema.c, against the table codec (codec_json.c) where both apply: the
 * same verdict and message on malformed lines, the same values, the same output bytes.
 *
 * Built by `make ctests` with the sanitizers (build/typed_test); every input is copied
 * into an exact-size heap block, so AddressSanitizer catches any read past len. */
#include "buf.h"
#include "codec.h"
#include "typed.h"
#include "typed_check.h"
#include "check.h"

#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lua_State *L;
static char err[SL_CODEC_ERRLEN];

/* The schemas: addr {city string, zip i64}; user {addr, age i64, name string};
 * every {flag bool, id i64, name string, price f64, user}. */
static sl_schema *addr_s, *user_s, *every;

static sl_schema *schema(const sl_schema_field *f, int n)
{
    sl_schema *s = sl_schema_new(f, n, err);
    if (s == NULL) {
        fprintf(stderr, "sl_schema_new: %s\n", err);
        exit(2);
    }
    return s;
}

static void make_schemas(void)
{
    sl_schema_field a[] = { { "zip", 0, SL_TYPED_I64, 0, NULL },
                            { "city", 0, SL_TYPED_STRING, 0, NULL } };
    addr_s = schema(a, 2);
    sl_schema_field u[] = { { "name", 0, SL_TYPED_STRING, 0, NULL },
                            { "age", 0, SL_TYPED_I64, 0, NULL },
                            { "addr", 0, SL_TYPED_RECORD, 0, addr_s } };
    user_s = schema(u, 3);
    sl_schema_field e[] = { { "price", 0, SL_TYPED_F64, 0, NULL },
                            { "id", 0, SL_TYPED_I64, 0, NULL },
                            { "user", 0, SL_TYPED_RECORD, 0, user_s },
                            { "name", 0, SL_TYPED_STRING, 0, NULL },
                            { "flag", 0, SL_TYPED_BOOL, 0, NULL } };
    every = schema(e, 5);
}

static sl_typed_field rec[SL_TYPED_MAX_SLOTS];
static char arena_mem[4096];
static sl_typed_arena arena = { arena_mem, sizeof arena_mem, 0 };
static char *line;          /* the exact-size copy of the last line decoded */
static size_t line_len;

/* Decodes text with schema s into rec (the arena reset first), from an exact-size copy
 * that stays alive until the next call, since strings point into it. */
static int decode_len(const sl_schema *s, const char *text, size_t len)
{
    free(line);
    line = malloc(len ? len : 1);
    memcpy(line, text, len);
    line_len = len;
    arena.used = 0;
    err[0] = '\0';
    return sl_typed_json_decode(s, line, len, rec, &arena, err);
}

static int decode(const sl_schema *s, const char *text)
{
    return decode_len(s, text, strlen(text));
}

/* The slot of field name (a dotted path: "user.addr.zip") of the record r of s. */
static const sl_typed_field *field(const sl_schema *s, const sl_typed_field *r,
                                   const char *name)
{
    const char *dot = strchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    const sl_schema_field *f = sl_schema_find(s, name, n);
    if (f == NULL) {
        fprintf(stderr, "no field %s\n", name);
        exit(2);
    }
    return dot ? field(f->record, r + f->slot, dot + 1) : r + f->slot;
}

static const sl_typed_field *get(const char *name)
{
    return field(every, rec, name);
}

/* Whether field name holds the string want (NUL-terminated). */
static int has_str(const char *name, const char *want)
{
    const sl_typed_field *v = get(name);
    return v->present && v->len == strlen(want) && memcmp(v->v.str, want, v->len) == 0;
}

/* Whether the string of field name points into the line (zero copy) / into the arena. */
static int in_line(const char *name)
{
    const sl_typed_field *v = get(name);
    return v->v.str >= line && v->v.str + v->len <= line + line_len;
}

static int in_arena(const char *name)
{
    const sl_typed_field *v = get(name);
    return v->v.str >= arena.base && v->v.str + v->len <= arena.base + arena.used;
}

static void test_types(void)
{
    CHECK(decode(every, "{\"id\":42,\"price\":1.5,\"flag\":true,\"name\":\"bob\","
                        "\"user\":{\"age\":7,\"name\":\"al\",\"addr\":{\"zip\":12345,"
                        "\"city\":\"x\"}}}") == SL_CODEC_OK, "%s", err);
    CHECK(rec[0].present == 1 && rec[0].v.schema == every && rec[0].len == 11, "header");
    CHECK(get("id")->present && get("id")->v.i64 == 42, "id");
    CHECK(get("price")->present && get("price")->v.f64 == 1.5, "price");
    CHECK(get("flag")->present && get("flag")->v.b == 1, "flag");
    CHECK(has_str("name", "bob") && in_line("name"), "name, zero copy");
    CHECK(get("user")->present == 1 && get("user")->v.schema == user_s, "user header");
    CHECK(get("user.age")->v.i64 == 7 && has_str("user.name", "al"), "user fields");
    CHECK(get("user.addr")->present && get("user.addr.zip")->v.i64 == 12345, "zip");
    CHECK(has_str("user.addr.city", "x"), "city");
    CHECK(arena.used == 0, "nothing in the arena: %zu", arena.used);

    CHECK(decode(every, " \t\r\n{ \"flag\" : false , \"price\" : -2e-3 , \"id\" : -5 }\n ")
          == SL_CODEC_OK, "white space: %s", err);
    CHECK(get("flag")->present && get("flag")->v.b == 0, "false");
    CHECK(get("price")->v.f64 == -2e-3 && get("id")->v.i64 == -5, "numbers");
    CHECK(!get("name")->present && !get("user")->present, "others absent");

    /* The very same doubles as the table path, for numbers of every form. */
    static const char *const numbers[] = {
        "0", "-0", "0.1", "1e21", "1E-7", "123.456", "5e-324", "1.7976931348623157e308",
        "2.2250738585072014e-308", "9007199254740993", "12345678901234567890123",
        "0.30000000000000004", "1700000000000", "-1.5e+300", "3.14159265358979323846",
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char text[96];
        snprintf(text, sizeof text, "{\"price\":%s}", numbers[i]);
        CHECK(decode(every, text) == SL_CODEC_OK, "%s: %s", text, err);
        CHECK(sl_json_decode(L, text, strlen(text), err) == SL_CODEC_OK, "%s", text);
        lua_getfield(L, -1, "price");
        double want = lua_tonumber(L, -1);
        lua_pop(L, 2);
        CHECK(memcmp(&want, &get("price")->v.f64, sizeof want) == 0, "%s: %.17g, want %.17g",
              text, get("price")->v.f64, want);
    }
}

/* Numbers of every length (json_digits takes up to 8 digits a word, then the rest) read
 * as strtod and strtoll read them, followed by each byte that may end them. */
static void test_digits(void)
{
    unsigned seed = 7;
    static const char *const after[] = { "}", ",\"x\":1}", " }", "\n}" };
    for (int len = 1; len <= 24; len++) {
        for (int t = 0; t < 40; t++) {
            char digits[32], text[96];
            for (int i = 0; i < len; i++) {
                seed = seed * 1103515245u + 12345u;
                digits[i] = (char)('0' + (seed >> 16) % 10);
            }
            if (digits[0] == '0')
                digits[0] = '1' + (char)(t % 9);
            digits[len] = '\0';
            int frac = t % 3 == 1 ? len / 2 : 0;      /* a point inside, sometimes */
            char num[40];
            if (frac > 0)
                snprintf(num, sizeof num, "%s%.*s.%s", t % 2 ? "-" : "", len - frac, digits,
                         digits + len - frac);
            else
                snprintf(num, sizeof num, "%s%s", t % 2 ? "-" : "", digits);
            snprintf(text, sizeof text, "{\"price\":%s,\"id\":%s%s", num, num, after[t % 4]);
            int rc = decode(every, text);
            if (frac == 0 && len <= 18)
                CHECK(rc == SL_CODEC_OK, "%s: %s", text, err);
            if (rc == SL_CODEC_OK && frac == 0)
                CHECK(get("id")->v.i64 == strtoll(num, NULL, 10), "%s", text);
            else if (rc == SL_CODEC_OK)     /* a fraction of zeros: integral */
                CHECK(get("id")->v.i64 == (int64_t)strtod(num, NULL), "%s", text);
            snprintf(text, sizeof text, "{\"price\":%s%s", num, after[t % 4]);
            CHECK(decode(every, text) == SL_CODEC_OK, "%s: %s", text, err);
            CHECK(get("price")->v.f64 == strtod(num, NULL), "%s: %.17g", text,
                  get("price")->v.f64);
        }
    }
}

/* The decoder guesses each key's field from the record before (per schema and place):
 * a wrong guess must only cost a lookup. Keys in changing orders, two schemas in turn,
 * and schemas freed and made again (maybe at the same address, with other fields). */
static void test_guesses(void)
{
    static const char *const orders[] = {
        "{\"id\":1,\"name\":\"a\",\"price\":2.5,\"flag\":true}",
        "{\"flag\":false,\"price\":3.5,\"name\":\"b\",\"id\":2}",
        "{\"x\":0,\"id\":3,\"name\":\"c\"}",
        "{\"name\":\"d\",\"nam\":9,\"id\":4,\"i\":5}",
    };
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++) {
            CHECK(decode(every, orders[i]) == SL_CODEC_OK, "%s: %s", orders[i], err);
            CHECK(get("id")->v.i64 == i + 1 && get("name")->len == 1
                  && get("name")->v.str[0] == 'a' + i, "%s", orders[i]);
            CHECK(decode(user_s, "{\"name\":\"u\",\"age\":7}") == SL_CODEC_OK
                  && rec[field(user_s, rec, "age") - rec].v.i64 == 7, "the other schema");
        }
    }
    for (int round = 0; round < 20; round++) {
        /* A schema of fields named like every's but of other types, at whatever address
         * malloc gives (often the last one's). */
        sl_schema_field f[] = { { round % 2 ? "id" : "name", 0, SL_TYPED_STRING, 0, NULL },
                                { round % 2 ? "name" : "id", 0, SL_TYPED_I64, 0, NULL } };
        sl_schema *t = schema(f, 2);
        const char *text = round % 2 ? "{\"id\":\"s\",\"name\":3}" : "{\"id\":3,\"name\":\"s\"}";
        CHECK(decode(t, text) == SL_CODEC_OK, "%s: %s", text, err);
        const sl_typed_field *str = field(t, rec, round % 2 ? "id" : "name");
        const sl_typed_field *num = field(t, rec, round % 2 ? "name" : "id");
        CHECK(str->present && str->len == 1 && str->v.str[0] == 's' && num->v.i64 == 3,
              "round %d", round);
        sl_schema_free(t);
    }
}

static void test_absent(void)
{
    CHECK(decode(every, "{}") == SL_CODEC_OK, "%s", err);
    CHECK(rec[0].present == 1, "an empty record is present");
    static const char *const names[] = { "id", "price", "flag", "name", "user" };
    for (int i = 0; i < 5; i++)
        CHECK(!get(names[i])->present, "{}: %s absent", names[i]);
    CHECK(decode(every, "{\"id\":null,\"price\":null,\"flag\":null,\"name\":null,"
                        "\"user\":null}") == SL_CODEC_OK, "%s", err);
    for (int i = 0; i < 5; i++)
        CHECK(!get(names[i])->present, "null: %s absent", names[i]);
    CHECK(get("user")->v.schema == user_s && get("user")->len == (uint32_t)user_s->nslots,
          "an absent record's header still says its schema");
    CHECK(decode(every, "{\"user\":{}}") == SL_CODEC_OK, "%s", err);
    CHECK(get("user")->present && !get("user.age")->present && !get("user.addr")->present,
          "an empty nested record is present, its fields absent");
    CHECK(decode(every, "{\"user\":{\"addr\":null,\"age\":1}}") == SL_CODEC_OK, "%s", err);
    CHECK(!get("user.addr")->present && get("user.age")->v.i64 == 1, "nested null");
    /* A record decoded before leaves nothing behind. */
    CHECK(decode(every, "{\"id\":1,\"user\":{\"age\":2}}") == SL_CODEC_OK, "%s", err);
    CHECK(decode(every, "{\"name\":\"x\"}") == SL_CODEC_OK, "%s", err);
    CHECK(!get("id")->present && !get("user")->present && !get("user.age")->present,
          "cleared first");
}

static void test_skipped(void)
{
    CHECK(decode(every, "{\"x\":{\"a\":[1,2,{\"b\":\"c\\n\\u00e9\\ud83d\\ude00\"}],\"n\":null},"
                        "\"id\":7,\"y\":[],\"z\":\"q\\\"\\\\\",\"w\":-1.5e3,\"v\":true,"
                        "\"u\":null,\"t\":{},\"s\":[[[[]]]],\"name\":\"n\",\"nam\":1,"
                        "\"namex\":2,\"\":3,\"r\":false}") == SL_CODEC_OK, "%s", err);
    CHECK(get("id")->v.i64 == 7 && has_str("name", "n"), "the known fields");
    CHECK(!get("price")->present && !get("user")->present, "no others");
    CHECK(arena.used == 0, "skipped strings take no arena: %zu", arena.used);
    /* Unknown keys inside nested records too. */
    CHECK(decode(every, "{\"user\":{\"zz\":[{\"age\":\"no\"}],\"age\":3,\"addr\":{\"q\":{},"
                        "\"zip\":9}}}") == SL_CODEC_OK, "%s", err);
    CHECK(get("user.age")->v.i64 == 3 && get("user.addr.zip")->v.i64 == 9, "nested");
    /* A key unknown to this schema but a field's name in another is still skipped. */
    CHECK(decode(every, "{\"age\":\"not an i64 here\",\"zip\":[]}") == SL_CODEC_OK, "%s", err);
}

static void test_escapes(void)
{
    CHECK(decode(every, "{\"name\":\"a\\nb\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\r\\t\"}")
          == SL_CODEC_OK, "%s", err);
    CHECK(has_str("name", "a\nb\xc3\xa9\xf0\x9f\x98\x80\"\\/\b\f\r\t"), "unescaped");
    CHECK(in_arena("name") && arena.used == get("name")->len, "in the arena, used %zu",
          arena.used);
    CHECK(decode(every, "{\"name\":\"\\u0041\\u00e9\\u20ac\\uFFFF\"}") == SL_CODEC_OK,
          "%s", err);
    CHECK(has_str("name", "A\xc3\xa9\xe2\x82\xac\xef\xbf\xbf"), "1, 2, 3 byte code points");
    /* Several strings: each after the one before. */
    CHECK(decode(every, "{\"name\":\"x\\ty\",\"user\":{\"name\":\"\\\"q\\\"\"}}")
          == SL_CODEC_OK, "%s", err);
    CHECK(has_str("name", "x\ty") && has_str("user.name", "\"q\"") && arena.used == 6,
          "two escaped strings, used %zu", arena.used);
    /* Escaped keys are the same keys. */
    CHECK(decode(every, "{\"n\\u0061me\":\"k\",\"\\u0069d\":5}") == SL_CODEC_OK, "%s", err);
    CHECK(has_str("name", "k") && in_line("name") && get("id")->v.i64 == 5, "escaped keys");
    /* A key longer than the decoder's own buffer, escaped. */
    char longname[301], text[700];
    memset(longname, 'k', 300);
    longname[300] = '\0';
    sl_schema_field lf[] = { { longname, 0, SL_TYPED_I64, 0, NULL } };
    sl_schema *ls = schema(lf, 1);
    snprintf(text, sizeof text, "{\"\\u006b%s\":11,\"%s\\n\":{}}", longname + 1, longname);
    CHECK(sl_typed_json_decode(ls, text, strlen(text), rec, &arena, err) == SL_CODEC_OK,
          "%s", err);
    CHECK(rec[1].present && rec[1].v.i64 == 11, "long escaped key");
    sl_schema_free(ls);
    /* Bytes >= 0x80 pass through, as sl_json_decode passes them. */
    CHECK(decode(every, "{\"name\":\"\xff\xfe\xc3\xa9\"}") == SL_CODEC_OK, "%s", err);
    CHECK(has_str("name", "\xff\xfe\xc3\xa9") && in_line("name"), "raw bytes");
}

static void test_full(void)
{
    char small[8];
    sl_typed_arena a = { small, sizeof small, 0 };
    const char *text = "{\"name\":\"0123456789\\n\"}";
    CHECK(sl_typed_json_decode(every, text, strlen(text), rec, &a, err) == SL_TYPED_FULL,
          "11 bytes into 8");
    CHECK(a.used == 0, "nothing kept: %zu", a.used);
    /* A second string that does not fit gives back the first's room too. */
    const char *two = "{\"name\":\"a\\nb\",\"user\":{\"name\":\"cdefg\\n\"}}";
    CHECK(sl_typed_json_decode(every, two, strlen(two), rec, &a, err) == SL_TYPED_FULL,
          "3 + 6 bytes into 8");
    CHECK(a.used == 0, "nothing kept: %zu", a.used);
    /* With room left by earlier records: FULL keeps theirs. */
    a.used = 5;
    const char *three = "{\"name\":\"a\\n\"}";
    CHECK(sl_typed_json_decode(every, three, strlen(three), rec, &a, err) == SL_CODEC_OK,
          "2 bytes into 3: %s", err);
    CHECK(a.used == 7 && memcmp(small + 5, "a\n", 2) == 0, "used %zu", a.used);
    CHECK(sl_typed_json_decode(every, two, strlen(two), rec, &a, err) == SL_TYPED_FULL, "full");
    CHECK(a.used == 7, "earlier strings kept: %zu", a.used);
    /* The caller delivers the batch, resets the arena, decodes again. */
    char big[64];
    sl_typed_arena b = { big, sizeof big, 0 };
    CHECK(sl_typed_json_decode(every, two, strlen(two), rec, &b, err) == SL_CODEC_OK, "%s", err);
    CHECK(b.used == 9 && get("name")->len == 3 && get("user.name")->len == 6, "retried");
    /* No arena at all: only strings without escapes. */
    CHECK(sl_typed_json_decode(every, text, strlen(text), rec, NULL, err) == SL_TYPED_FULL,
          "no arena");
    CHECK(sl_typed_json_decode(every, "{\"name\":\"q\"}", 12, rec, NULL, err) == SL_CODEC_OK,
          "no arena needed");
    /* BAD after an escaped string gives its room back too. */
    b.used = 0;
    const char *bad = "{\"name\":\"a\\nb\",\"id\":\"x\"}";
    CHECK(sl_typed_json_decode(every, bad, strlen(bad), rec, &b, err) == SL_CODEC_BAD, "bad");
    CHECK(b.used == 0, "nothing kept on BAD: %zu", b.used);
}

/* Decodes text, expecting BAD with exactly the message want. */
static void bad(const sl_schema *s, const char *text, const char *want)
{
    int rc = decode(s, text);
    CHECK(rc == SL_CODEC_BAD, "%s: rc %d", text, rc);
    CHECK(strcmp(err, want) == 0, "%s: \"%s\", want \"%s\"", text, err, want);
}

static void test_wrong_types(void)
{
    bad(every, "{\"id\":\"1\"}", "field id: want i64, got string");
    bad(every, "{\"id\":1.5}", "field id: want i64, got 1.5");
    bad(every, "{\"id\":true}", "field id: want i64, got bool");
    bad(every, "{\"id\":[1]}", "field id: want i64, got array");
    bad(every, "{\"id\":{}}", "field id: want i64, got object");
    bad(every, "{\"price\":\"1.5\"}", "field price: want f64, got string");
    bad(every, "{\"price\":false}", "field price: want f64, got bool");
    bad(every, "{\"flag\":1}", "field flag: want bool, got 1");
    bad(every, "{\"flag\":\"true\"}", "field flag: want bool, got string");
    bad(every, "{\"flag\":-0.5e-3}", "field flag: want bool, got -0.5e-3");
    /* A malformed number is malformed before it is of the wrong type. */
    bad(every, "{\"flag\":1.}", "json: unexpected character '}' at byte 10");
    bad(every, "{\"name\":12}", "field name: want string, got 12");
    bad(every, "{\"name\":{\"a\":1}}", "field name: want string, got object");
    bad(every, "{\"name\":[]}", "field name: want string, got array");
    bad(every, "{\"user\":5}", "field user: want record, got 5");
    bad(every, "{\"user\":\"bob\"}", "field user: want record, got string");
    bad(every, "{\"user\":[]}", "field user: want record, got array");
    bad(every, "{\"user\":{\"age\":\"x\"}}", "field user.age: want i64, got string");
    bad(every, "{\"user\":{\"age\":1.25}}", "field user.age: want i64, got 1.25");
    bad(every, "{\"user\":{\"addr\":{\"zip\":\"02134\"}}}",
        "field user.addr.zip: want i64, got string");
    bad(every, "{\"user\":{\"addr\":[]}}", "field user.addr: want record, got array");
    bad(every, "{\"id\":1,\"user\":{\"addr\":{\"city\":1}},\"name\":2}",
        "field user.addr.city: want string, got 1");
    /* A long number is cut in the message. */
    bad(every, "{\"id\":1.50000000000000000000000000000000000000000000001}",
        "field id: want i64, got 1.50000000000000000000000000000000000000");
    /* One whose double is integral is taken, as 1e3 and 2.0 are. */
    CHECK(decode(every, "{\"id\":1.00000000000000000000000000000000000000000000001}")
          == SL_CODEC_OK && get("id")->v.i64 == 1, "%s", err);
}

static void test_malformed(void)
{
    /* The very message of the table path for each: the same rules. */
    static const char *const lines[] = {
        "", "   ", "{", "{\"id\":1", "{\"id\":1,}", "{\"id\" 1}", "{\"id\":}", "{,}",
        "{\"name\":\"abc", "{\"name\":\"a\\x\"}", "{\"name\":\"\\ud800\"}",
        "{\"name\":\"\\udc00x\"}", "{\"name\":\"\\ud800\\u0041\"}", "{\"name\":\"\\u12\"}",
        "{\"name\":\"\\u12g4\"}", "{\"name\":\"a\tb\"}", "{\"zz\":\"a\x01\"}",
        "{\"zz\":\"a\\x01\"}", "{\"zz\":tru}", "{\"flag\":tru}", "{\"flag\":nul}",
        "{\"zz\":fals}", "{\"zz\":01}", "{\"id\":01}", "{\"zz\":-}", "{\"id\":-}",
        "{\"zz\":1.}", "{\"price\":1.e5}", "{\"zz\":1e}", "{\"zz\":1e+}", "{\"zz\":1e999}",
        "{\"id\":1e999}", "{\"price\":-1e999}", "{\"x\":[1,2}", "{\"x\":[1,2,]}",
        "{\"x\":{\"a\"}}", "{\"x\":{\"a\":1,}}", "{\"a\":1} x", "{\"id\":1}}", "{} {}",
        "{\"na", "{\"name\":\"\\", "{\"name\":\"a\\", "{\"x\":+1}", "{\"x\":.5}",
        "{\"x\":NaN}", "{\"x\":'a'}", "{\"user\":{\"age\":1}", "{\"user\":{\"age\":1,}}",
        "{\"zz\":\"\\ud83d\\ude0\"}", "{a:1}", "{\"x\":\x80}", "{\"id\":1 2}",
        "{\"user\":{\"addr\":{\"zip\":1}}, \"x\":[{\"y\":[1, {\"z\": tru}]}]}",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char want[SL_CODEC_ERRLEN];
        size_t len = strlen(lines[i]);
        int table = sl_json_decode(L, lines[i], len, want);
        CHECK(table == SL_CODEC_BAD, "the table path takes %s", lines[i]);
        if (table == SL_CODEC_OK)
            lua_pop(L, 1);
        bad(every, lines[i], want);
    }
    /* Nesting deeper than the table path allows, in a skipped value. */
    char deep[400];
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"x\":");
    for (int i = 0; i < 140; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    bad(every, deep, "json: nested too deep at byte 132");
    /* Values that are not objects. */
    bad(every, "[1,2]", "json: not a JSON object: an array at byte 0");
    bad(every, " \"s\"", "json: not a JSON object: a string at byte 1");
    bad(every, "12", "json: not a JSON object: a number at byte 0");
    bad(every, "-1", "json: not a JSON object: a number at byte 0");
    bad(every, "null", "json: not a JSON object: null at byte 0");
    bad(every, "true", "json: not a JSON object: a bool at byte 0");
    bad(every, "not json", "json: bad literal at byte 0 (expected null)");
    bad(every, "tru", "json: bad literal at byte 0 (expected true)");
    bad(every, "x", "json: unexpected character 'x' at byte 0");
}

static void test_duplicates(void)
{
    CHECK(decode(every, "{\"id\":1,\"id\":2}") == SL_CODEC_OK && get("id")->v.i64 == 2,
          "the last wins");
    CHECK(decode(every, "{\"name\":\"a\",\"name\":null}") == SL_CODEC_OK
          && !get("name")->present, "a later null");
    CHECK(decode(every, "{\"name\":null,\"name\":\"b\\n\"}") == SL_CODEC_OK
          && has_str("name", "b\n"), "a later value");
    CHECK(decode(every, "{\"user\":{\"age\":1,\"name\":\"x\"},\"user\":{\"name\":\"y\"}}")
          == SL_CODEC_OK, "%s", err);
    CHECK(!get("user.age")->present && has_str("user.name", "y"),
          "a later record replaces the whole record");
    CHECK(decode(every, "{\"user\":{\"age\":1},\"user\":null}") == SL_CODEC_OK
          && !get("user")->present && !get("user.age")->present, "a later null record");
    /* Both values are checked, as the table path checks both. */
    bad(every, "{\"id\":\"x\",\"id\":2}", "field id: want i64, got string");
}

static void test_i64(void)
{
    static const struct { const char *text; int64_t want; } good[] = {
        { "9223372036854775807", INT64_MAX }, { "-9223372036854775808", INT64_MIN },
        { "0", 0 }, { "-0", 0 }, { "-0.0", 0 }, { "1e3", 1000 }, { "2.0", 2 },
        { "1700000000000", INT64_C(1700000000000) }, { "9.2e18", INT64_C(9200000000000000000) },
        { "-9223372036854775807", -INT64_MAX },
        { "1234567890123456789", INT64_C(1234567890123456789) },
        { "9007199254740993", INT64_C(9007199254740993) }, { "12.5e1", 125 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"id\":%s}", good[i].text);
        CHECK(decode(every, text) == SL_CODEC_OK, "%s: %s", text, err);
        CHECK(get("id")->present && get("id")->v.i64 == good[i].want, "%s: %lld", text,
              (long long)get("id")->v.i64);
    }
    static const char *const over[] = {
        "9223372036854775808", "-9223372036854775809", "18446744073709551616",
        "12345678901234567890123", "1e19", "-1e19", "9.3e18", "1.5", "-0.5", "1e-1",
    };
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        char text[64], want[96];
        snprintf(text, sizeof text, "{\"id\":%s}", over[i]);
        snprintf(want, sizeof want, "field id: want i64, got %s", over[i]);
        bad(every, text, want);
    }
}

/* Decodes text both ways and encodes both: the same bytes, and values equal field by
 * field. The schema must list every key of text, in its order. */
static void same_as_table(const char *text)
{
    char terr[SL_CODEC_ERRLEN];
    sl_buf a, b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    CHECK(decode(every, text) == SL_CODEC_OK, "%s: %s", text, err);
    CHECK(sl_json_decode(L, text, strlen(text), terr) == SL_CODEC_OK, "%s: %s", text, terr);
    CHECK(typed_matches_table(L, rec, -1), "%s: values differ", text);
    CHECK(sl_json_encode(L, -1, &b, terr) == SL_CODEC_OK, "%s", terr);
    lua_pop(L, 1);
    CHECK(sl_typed_json_encode(rec, &a, err) == SL_CODEC_OK, "%s", err);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "%s:\n  typed %.*s\n  table %.*s",
          text, (int)a.len, a.data, (int)b.len, b.data);
    sl_buf_free(&a);
    sl_buf_free(&b);
}

static void test_round_trips(void)
{
    static const char *const lines[] = {
        "{}",
        "{\"flag\":true,\"id\":1,\"name\":\"x\",\"price\":0.1}",
        "{\"flag\":false,\"id\":-1,\"name\":\"\",\"price\":1e21}",
        "{\"id\":0,\"price\":-0}",
        "{\"id\":-0,\"price\":0}",
        "{\"id\":1700000000000,\"price\":1700000000000.5}",
        "{\"id\":9007199254740991,\"price\":9007199254740993}",
        "{\"price\":1e-7}",
        "{\"price\":123.456}",
        "{\"price\":5e-324}",
        "{\"price\":1.7976931348623157e308}",
        "{\"price\":0.30000000000000004}",
        "{\"price\":1E+2}",
        "{\"price\":-2.5e-3}",
        "{\"price\":100000000000000000000}",
        "{\"price\":123456789012345678901234567890}",
        "{\"id\":1e3,\"price\":2.50}",
        "{\"name\":\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80\"}",
        "{\"name\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}",
        "{\"name\":\"\\u0001\\u001f\\u007f\\b\\f\\n\\r\\t\"}",
        "{\"name\":\"quote \\\" backslash \\\\ slash \\/\"}",
        "{\"name\":\"\xff bad \xc3( \xed\xa0\x80 end\"}",
        "{\"name\":\"a long string of more than thirty-two bytes, to copy in runs\"}",
        "{\"user\":{}}",
        "{\"user\":{\"age\":30,\"name\":\"al\"}}",
        "{\"user\":{\"addr\":{\"city\":\"Z\\u00fcrich\",\"zip\":8001},\"age\":30}}",
        "{\"user\":{\"addr\":{},\"name\":\"\\t\"}}",
        ("{\"flag\":true,\"id\":42,\"name\":\"bid\",\"price\":19.99,\"user\":{\"addr\":"
         "{\"city\":\"Oslo\",\"zip\":150},\"age\":41,\"name\":\"kari\"}}"),
        " { \"flag\" : false , \"id\" : 7 } ",
        "{\"id\":-9007199254740991}",
        "{\"price\":-1.5e+300}",
        "{\"price\":2.2250738585072014e-308}",
        "{\"price\":4.35}",
        "{\"price\":0.000001}",
        "{\"price\":1e15}",
        "{\"price\":1.5e15}",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        same_as_table(lines[i]);

    /* Field names that need escaping, or are not ASCII, written as the table path writes
     * the same keys. */
    sl_schema_field odd[] = { { "a\"b", 0, SL_TYPED_I64, 0, NULL },
                              { "tab\t", 0, SL_TYPED_I64, 0, NULL },
                              { "\xc3\xa9", 0, SL_TYPED_I64, 0, NULL },
                              { "plain", 0, SL_TYPED_I64, 0, NULL } };
    sl_schema *os = schema(odd, 4);
    const char *oddline = "{\"a\\\"b\":1,\"plain\":4,\"tab\\t\":2,\"\\u00e9\":3}";
    sl_buf ta, tb;
    sl_buf_init(&ta);
    sl_buf_init(&tb);
    CHECK(decode(os, oddline) == SL_CODEC_OK, "%s: %s", oddline, err);
    CHECK(sl_typed_json_encode(rec, &ta, err) == SL_CODEC_OK, "%s", err);
    CHECK(sl_json_decode(L, oddline, strlen(oddline), err) == SL_CODEC_OK, "%s", err);
    CHECK(sl_json_encode(L, -1, &tb, err) == SL_CODEC_OK, "%s", err);
    lua_pop(L, 1);
    CHECK(ta.len == tb.len && memcmp(ta.data, tb.data, ta.len) == 0, "typed %.*s, table %.*s",
          (int)ta.len, ta.data, (int)tb.len, tb.data);
    sl_buf_free(&ta);
    sl_buf_free(&tb);
    sl_schema_free(os);

    /* What only typed records hold. */
    sl_buf out;
    sl_buf_init(&out);
    sl_typed_clear(every, rec);
    CHECK(sl_typed_json_encode(rec, &out, err) == SL_CODEC_OK && out.len == 2
          && memcmp(out.data, "{}", 2) == 0, "empty: %.*s", (int)out.len, out.data);
    out.len = 0;
    sl_typed_field *id = (sl_typed_field *)get("id"), *price = (sl_typed_field *)get("price");
    id->present = 1;
    id->v.i64 = INT64_MIN;
    CHECK(sl_typed_json_encode(rec, &out, err) == SL_CODEC_OK, "%s", err);
    CHECK(out.len == 27 && memcmp(out.data, "{\"id\":-9223372036854775808}", 27) == 0,
          "INT64_MIN: %.*s", (int)out.len, out.data);
    out.len = 0;
    id->v.i64 = INT64_MAX;
    CHECK(sl_typed_json_encode(rec, &out, err) == SL_CODEC_OK, "%s", err);
    CHECK(out.len == 26 && memcmp(out.data, "{\"id\":9223372036854775807}", 26) == 0,
          "INT64_MAX: %.*s", (int)out.len, out.data);
    /* NaN and infinities: BAD, nothing written. */
    sl_buf_append(&out, "kept", 4);
    size_t before = out.len;
    price->present = 1;
    price->v.f64 = NAN;
    CHECK(sl_typed_json_encode(rec, &out, err) == SL_CODEC_BAD && out.len == before, "NaN");
    CHECK(strcmp(err, "json: cannot encode NaN/inf (field price)") == 0, "%s", err);
    price->v.f64 = -INFINITY;
    CHECK(sl_typed_json_encode(rec, &out, err) == SL_CODEC_BAD && out.len == before, "-inf");
    /* A string slot with no bytes; a bool slot other than 0 or 1 is true. */
    price->present = 0;
    id->present = 0;
    sl_typed_field *name = (sl_typed_field *)get("name"), *flag = (sl_typed_field *)get("flag");
    name->present = 1;
    name->v.str = NULL;
    name->len = 0;
    flag->present = 1;
    flag->v.b = 7;
    out.len = 0;
    CHECK(sl_typed_json_encode(rec, &out, err) == SL_CODEC_OK, "%s", err);
    CHECK(out.len == 23 && memcmp(out.data, "{\"flag\":true,\"name\":\"\"}", 23) == 0,
          "%.*s", (int)out.len, out.data);
    /* A record without its schema. */
    sl_typed_field blank[4] = { { .v.schema = NULL } };
    CHECK(sl_typed_json_encode(blank, &out, err) == SL_CODEC_BAD, "no schema");
    sl_buf_free(&out);
}

/* Mutations of valid lines: whatever the bytes, the table path's verdict on malformed
 * JSON holds (typed OK only when the table path is OK, with the same values), and a
 * record decoded OK encodes and decodes again to the same values. */
static void test_mutations(void)
{
    static const char *const seeds[] = {
        ("{\"flag\":true,\"id\":42,\"name\":\"b\\u00e9d\",\"price\":19.99,\"user\":{\"addr\":"
         "{\"city\":\"Oslo\",\"zip\":150},\"age\":41,\"name\":\"kari\"},\"x\":[1,{\"y\":null}]}"),
        "{\"id\":-9223372036854775808,\"price\":1e-300,\"name\":\"\\\"\\\\\\n\",\"u\":[]}",
        "{\"user\":{\"addr\":null,\"age\":1e3},\"flag\":false,\"zz\":\"\\ud83d\\ude00\"}",
    };
    unsigned seed = 12345;
    sl_buf a, b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    static sl_typed_field rec2[SL_TYPED_MAX_SLOTS];
    static char mem2[4096];
    int ok_count = 0;
    for (int it = 0; it < 30000; it++) {
        char text[512];
        const char *s = seeds[it % 3];
        size_t len = strlen(s);
        memcpy(text, s, len);
        int muts = 1 + (int)((seed >> 16) % 3);
        for (int m = 0; m < muts; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            static const char bytes[] = "{}[]\",:\\0123456789.-+eEtrufalsn \x01\x80";
            seed = seed * 1103515245u + 12345u;
            int op = (int)((seed >> 16) % 3);
            char c = bytes[(seed >> 20) % (sizeof bytes - 1)];
            if (op == 0)
                text[at] = c;
            else if (op == 1 && len > 2) {
                memmove(text + at, text + at + 1, len - at - 1);
                len--;
            } else if (len < sizeof text - 1) {
                memmove(text + at + 1, text + at, len - at);
                text[at] = c;
                len++;
            }
        }
        char terr[SL_CODEC_ERRLEN];
        int typed = decode_len(every, text, len);
        int table = sl_json_decode(L, line, len, terr);
        if (table == SL_CODEC_BAD) {
            CHECK(typed == SL_CODEC_BAD, "typed takes what the table path rejects: %.*s",
                  (int)len, text);
            continue;
        }
        if (typed == SL_CODEC_OK) {
            ok_count++;
            CHECK(lua_type(L, -1) == LUA_TTABLE && typed_matches_table(L, rec, -1),
                  "values differ: %.*s", (int)len, text);
            a.len = 0;
            CHECK(sl_typed_json_encode(rec, &a, err) == SL_CODEC_OK, "%s", err);
            sl_typed_arena a2 = { mem2, sizeof mem2, 0 };
            CHECK(sl_typed_json_decode(every, a.data, a.len, rec2, &a2, err) == SL_CODEC_OK,
                  "%.*s: %s", (int)a.len, a.data, err);
            CHECK(typed_same(rec, rec2) || strchr(text, '\x80'), "round trip: %.*s", (int)len,
                  text);
            b.len = 0;
            CHECK(sl_typed_json_encode(rec2, &b, err) == SL_CODEC_OK, "%s", err);
            CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "encode twice");
        }
        lua_pop(L, 1);
    }
    CHECK(ok_count > 1000, "too few mutations decoded OK to tell: %d", ok_count);
    sl_buf_free(&a);
    sl_buf_free(&b);
}

int main(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    make_schemas();
    static const check_group groups[] = {
        { "types", test_types }, { "digits", test_digits }, { "guesses", test_guesses },
        { "absent", test_absent }, { "skipped", test_skipped },
        { "escapes", test_escapes }, { "full", test_full }, { "wrong", test_wrong_types },
        { "malformed", test_malformed }, { "duplicates", test_duplicates },
        { "i64", test_i64 }, { "encode", test_round_trips }, { "mutations", test_mutations },
    };
    int passed = 0, failed = 0;
    run_groups("typed json", 10, groups, sizeof groups / sizeof groups[0], &passed, &failed);
    CHECK(lua_gettop(L) == 0, "stack left at %d", lua_gettop(L));
    free(line);
    sl_schema_free(every);
    sl_schema_free(user_s);
    sl_schema_free(addr_s);
    lua_close(L);
    return check_summary(passed, failed);
}
