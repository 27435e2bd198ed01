/* codec_test.c -- standalone checks of host/buf.c, the codecs and the framing that the
 * reader does with them (host/framing.c) (no loop, no host).
 *
 * Build and run (every input is copied into an exact-size heap block, so AddressSanitizer
 * catches any read past len):
 *   cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -O1 -g -fsanitize=address,undefined \
 *      -I/usr/include/luajit-2.1 -Ihost host/buf.c host/framing.c host/codec_*.c \
 *      tests/c/codec_test.c \
 *      -lluajit-5.1 -lmsgpackc -lm -o /tmp/codec_test && /tmp/codec_test */
#include "buf.h"
#include "codec.h"
#include "framing.h"
#include "check.h"

#include <float.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lua_State *L;
static char err[SL_CODEC_ERRLEN];

/* Structural equality of two Lua values (tables compared key by key). */
static int deep_eq(int a, int b, int depth)
{
    if (a < 0)
        a = lua_gettop(L) + a + 1;
    if (b < 0)
        b = lua_gettop(L) + b + 1;
    if (lua_type(L, a) != lua_type(L, b))
        return 0;
    if (lua_type(L, a) == LUA_TNUMBER) {
        double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
        return x == y || (isnan(x) && isnan(y));
    }
    if (lua_type(L, a) != LUA_TTABLE)
        return lua_rawequal(L, a, b);
    if (depth > 200)
        return 0;
    int na = 0, nb = 0, ok = 1;
    lua_pushnil(L);
    while (ok && lua_next(L, a)) {
        na++;
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        ok = !lua_isnil(L, -1) && deep_eq(-1, -2, depth + 1);
        lua_pop(L, 2);
    }
    if (!ok) {
        lua_pop(L, 1);
        return 0;
    }
    lua_pushnil(L);
    while (lua_next(L, b)) {
        nb++;
        lua_pop(L, 1);
    }
    return na == nb;
}

/* ---- numbers ----------------------------------------------------------------------- */

static void expect_number(double x, const char *want)
{
    char out[32];
    int n = sl_codec_number(x, out);
    if (!want) {
        CHECK(n == -1, "%g gave %d", x, n);
        return;
    }
    CHECK(n == (int)strlen(want) && memcmp(out, want, (size_t)n) == 0,
          "%.17g: got \"%.*s\", want \"%s\"", x, n > 0 ? n : 0, out, want);
}

/* The definition in codec.h, written the slow obvious way. */
static int reference_number(double x, char *out)
{
    if (x == floor(x) && fabs(x) < 1e21) {
        if (x == 0)
            return sprintf(out, "0");
        return sprintf(out, "%.0f", x);
    }
    int n = sprintf(out, "%.15g", x);
    if (strtod(out, NULL) == x)
        return n;
    n = sprintf(out, "%.16g", x);
    if (strtod(out, NULL) == x)
        return n;
    return sprintf(out, "%.17g", x);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_numbers(void)
{
    expect_number(1700000000000.0, "1700000000000");
    expect_number(1700000000123.0, "1700000000123");
    expect_number(0.1, "0.1");
    expect_number(1e300, "1e+300");
    expect_number(-0.5, "-0.5");
    expect_number(9007199254740994.0, "9007199254740994");      /* 2^53 + 2 */
    expect_number(123.5, "123.5");
    expect_number(0.0, "0");
    expect_number(-0.0, "0");
    expect_number(-42, "-42");
    expect_number(1e20, "100000000000000000000");
    expect_number(1e21, "1e+21");
    expect_number(-9223372036854775808.0, "-9223372036854775808");
    expect_number(9223372036854775808.0, "9223372036854775808");
    expect_number(0.0001, "0.0001");
    expect_number(0.00001, "1e-05");
    expect_number(1.0 / 3, "0.3333333333333333");
    expect_number(0.1 + 0.2, "0.30000000000000004");
    expect_number(5e-324, "4.94065645841247e-324");    /* %.15g reads back */
    expect_number(DBL_MAX, "1.7976931348623157e+308");
    expect_number(123456789012.25, "123456789012.25");
    expect_number(-0.000123, "-0.000123");
    expect_number(NAN, NULL);
    expect_number(INFINITY, NULL);
    expect_number(-INFINITY, NULL);

    /* The fast paths must agree with the definition, and everything must read back. */
    int bad = 0;
    for (int i = 0; i < 300000 && bad < 5; i++) {
        double x;
        uint64_t r = rnd();
        switch (i % 6) {
        case 4:     /* products of short decimals, which need 16 or 17 digits */
            x = (double)(int64_t)(r % 2000000) / 100 * 0.92;
            break;
        case 5: {   /* any double of the exact path's range, 1e-3 to 1e14 */
            uint64_t bits = (r & UINT64_C(0x000fffffffffffff))
                            | (uint64_t)(1023 - 10 + (int)(rnd() % 57)) << 52;
            memcpy(&x, &bits, sizeof x);
            break;
        }
        case 0:     /* any finite double */
            memcpy(&x, &r, sizeof x);
            if (!isfinite(x))
                continue;
            break;
        case 1:     /* short decimals: prices, percentages */
            x = (double)(int64_t)(r % 20000000 - 10000000) / pow(10, (double)(rnd() % 8));
            break;
        case 2:     /* integers of every size */
            x = (double)(int64_t)r / pow(2, (double)(rnd() % 64));
            x = floor(x);
            break;
        default:    /* decimals near the fast path's edges */
            x = (double)(r % 1000000000000000u) / pow(10, (double)(rnd() % 20));
            break;
        }
        char got[32], want[64];
        int n = sl_codec_number(x, got);
        int m = reference_number(x, want);
        if (n != m || memcmp(got, want, (size_t)n) != 0 || strtod(got, NULL) != x) {
            bad++;
            CHECK(0, "%.17g: got \"%.*s\", want \"%s\"", x, n, got, want);
        }
    }
    CHECK(bad == 0, "random numbers disagree");
}

/* ---- buf --------------------------------------------------------------------------- */

static void test_buf(void)
{
    sl_buf b;
    sl_buf_init(&b);
    sl_buf_append(&b, NULL, 0);
    CHECK(b.len == 0, "empty append");
    for (int i = 0; i < 1000; i++)
        sl_buf_putc(&b, 'x');
    sl_buf_printf(&b, "%d-%s", 42, "abc");
    CHECK(b.len == 1006 && memcmp(b.data + 1000, "42-abc", 6) == 0, "printf append");
    char big[300];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sl_buf_reset(&b);
    sl_buf_printf(&b, "<%s>", big);
    CHECK(b.len == 301 && strcmp(sl_buf_cstr(&b) + 1, big) > 0, "printf grows");
    CHECK(strlen(sl_buf_cstr(&b)) == 301, "cstr");
    sl_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0, "free");
}

/* ---- JSON -------------------------------------------------------------------------- */

/* Decodes s; on OK leaves the value on the stack. Checks the stack effect. */
static int jdec(const char *s, size_t len)
{
    char *copy = dup_exact(s, len);
    int top = lua_gettop(L);
    err[0] = '\0';
    int rc = sl_json_decode(L, copy, len, err);
    free(copy);
    CHECK(lua_gettop(L) == top + (rc == SL_CODEC_OK), "stack effect %d for %.*s",
          lua_gettop(L) - top, (int)len, s);
    return rc;
}

/* Decodes then encodes, expecting exactly want. */
static void json_rt(const char *in, const char *want)
{
    if (jdec(in, strlen(in)) != SL_CODEC_OK) {
        CHECK(0, "decode %s: %s", in, err);
        return;
    }
    sl_buf b;
    sl_buf_init(&b);
    int top = lua_gettop(L);
    int rc = sl_json_encode(L, -1, &b, err);
    CHECK(lua_gettop(L) == top, "encode moved the stack");
    CHECK(rc == SL_CODEC_OK && b.len == strlen(want) && memcmp(b.data, want, b.len) == 0,
          "%s -> %.*s, want %s (%s)", in, (int)b.len, b.data, want, rc ? err : "");
    lua_pop(L, 1);
    sl_buf_free(&b);
}

static void json_bad(const char *in, size_t len, const char *want_err)
{
    int rc = jdec(in, len);
    CHECK(rc == SL_CODEC_BAD, "accepted %.*s", (int)len, in);
    if (rc == SL_CODEC_OK)
        lua_pop(L, 1);
    else if (want_err)
        CHECK(strcmp(err, want_err) == 0, "error \"%s\", want \"%s\"", err, want_err);
}

static void json_string(const char *in, const char *want, size_t want_len)
{
    if (jdec(in, strlen(in)) != SL_CODEC_OK) {
        CHECK(0, "decode %s: %s", in, err);
        return;
    }
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    CHECK(lua_type(L, -1) == LUA_TSTRING && n == want_len && memcmp(s, want, n) == 0,
          "string %s", in);
    lua_pop(L, 1);
}

static void json_number(const char *in, double want)
{
    if (jdec(in, strlen(in)) != SL_CODEC_OK) {
        CHECK(0, "decode %s: %s", in, err);
        return;
    }
    double v = lua_tonumber(L, -1);
    CHECK(lua_type(L, -1) == LUA_TNUMBER && v == want && signbit(v) == signbit(want),
          "%s -> %.17g, want %.17g", in, v, want);
    lua_pop(L, 1);
}

/* Encodes the value the Lua expression returns: want is the text expected, or with
 * want NULL, want_err the error expected (both NULL: any successful encoding). */
static void json_enc(const char *code, const char *want, const char *want_err)
{
    eval(L, code);
    sl_buf b;
    sl_buf_init(&b);
    sl_buf_append(&b, "prefix", 6);
    int top = lua_gettop(L);
    int rc = sl_json_encode(L, -1, &b, err);
    CHECK(lua_gettop(L) == top, "encode moved the stack: %s", code);
    if (want) {
        CHECK(rc == SL_CODEC_OK && b.len == 6 + strlen(want)
              && memcmp(b.data + 6, want, b.len - 6) == 0,
              "%s -> %.*s, want %s (%s)", code, (int)b.len - 6, b.data + 6, want,
              rc ? err : "");
    } else if (!want_err) {
        CHECK(rc == SL_CODEC_OK, "%s: %s", code, err);
    } else {
        CHECK(rc == SL_CODEC_BAD && b.len == 6, "%s: rc %d, len %zu", code, rc, b.len);
        CHECK(rc == SL_CODEC_OK || strcmp(err, want_err) == 0, "error \"%s\", want \"%s\"",
              err, want_err);
    }
    lua_pop(L, 1);
    sl_buf_free(&b);
}

static void test_json(void)
{
    const char *sample =
        "{\"auction\":1234,\"bidder\":55,\"price\":123.5,\"channel\":\"web\","
        "\"ts\":1700000000123}";
    CHECK(jdec(sample, strlen(sample)) == SL_CODEC_OK, "sample: %s", err);
    lua_getfield(L, -1, "ts");
    CHECK(lua_tonumber(L, -1) == 1700000000123.0, "ts");
    lua_getfield(L, -2, "channel");
    CHECK(strcmp(lua_tostring(L, -1), "web") == 0, "channel");
    lua_pop(L, 3);

    /* Round trips (single-key objects, so the key order is fixed). */
    json_rt("1700000000000", "1700000000000");
    json_rt("1.7e12", "1700000000000");
    json_rt("0.1", "0.1");
    json_rt("1e300", "1e+300");
    json_rt("-0.5", "-0.5");
    json_rt("9007199254740994", "9007199254740994");
    json_rt("  [1, 2.5, \"x\", true, false, null, [], {}]  ",
            "[1,2.5,\"x\",true,false,null,{},{}]");
    json_rt("{\"a\":{\"b\":[{\"c\":null}]}}", "{\"a\":{\"b\":[{\"c\":null}]}}");
    json_rt("null", "null");
    json_rt("\"\\u00e9\\n\\t\\\\\\\"\\/\"", "\"\xc3\xa9\\n\\t\\\\\\\"/\"");
    json_rt("\"\\u0001\\u001f\\b\\f\\r\"", "\"\\u0001\\u001f\\b\\f\\r\"");
    json_rt("{\"k\":1,\"k\":2}", "{\"k\":2}");     /* duplicate keys: the last wins */
    json_rt("[0,-0,1E2,1e-2,2E+2]", "[0,0,100,0.01,200]");

    /* Arrays and objects across the collection chunk sizes. */
    for (int n = 0; n <= 70; n++) {
        sl_buf in, want;
        sl_buf_init(&in);
        sl_buf_init(&want);
        sl_buf_putc(&in, '[');
        sl_buf_putc(&want, '[');
        for (int i = 1; i <= n; i++)
            sl_buf_printf(&in, "%s%d", i > 1 ? " , " : "", i * 3);
        for (int i = 1; i <= n; i++)
            sl_buf_printf(&want, "%s%d", i > 1 ? "," : "", i * 3);
        sl_buf_putc(&in, ']');
        sl_buf_putc(&want, ']');
        json_rt(sl_buf_cstr(&in), n ? sl_buf_cstr(&want) : "{}");
        sl_buf_reset(&in);
        sl_buf_putc(&in, '{');
        for (int i = 1; i <= n; i++)
            sl_buf_printf(&in, "%s\"k%d\":%d", i > 1 ? "," : "", i, i);
        sl_buf_printf(&in, "%s\"k1\":-1}", n ? "," : "");   /* a duplicate at the end */
        if (jdec(in.data, in.len) == SL_CODEC_OK) {
            int count = 0, ok = 1;
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                count++;
                lua_pop(L, 1);
            }
            lua_getfield(L, -1, "k1");
            ok = lua_tonumber(L, -1) == -1;
            lua_pop(L, 1);
            if (n > 1) {
                lua_getfield(L, -1, "k2");
                ok = ok && lua_tonumber(L, -1) == 2;
                lua_pop(L, 1);
            }
            CHECK(ok && count == (n ? n : 1), "object of %d keys: %d", n, count);
            lua_pop(L, 1);
        } else {
            CHECK(0, "object of %d keys: %s", n, err);
        }
        sl_buf_free(&in);
        sl_buf_free(&want);
    }

    /* Strings. */
    json_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
    json_string("\"a\\u0000b\"", "a\0b", 3);
    json_string("\"\\u20AC\"", "\xe2\x82\xac", 3);
    json_string("\"\xe2\x82\xac raw\"", "\xe2\x82\xac raw", 7);
    json_string("\"\"", "", 0);

    /* Numbers. */
    json_number("1700000000000", 1700000000000.0);
    json_number("0.1", 0.1);
    json_number("1e300", 1e300);
    json_number("-0.5", -0.5);
    json_number("-0", -0.0);
    json_number("9007199254740993", 9007199254740992.0);    /* rounds to even */
    json_number("9007199254740995", 9007199254740996.0);
    json_number("123.456e-7", 123.456e-7);
    json_number("1.7976931348623157e308", DBL_MAX);
    json_number("4.9406564584124654e-324", 5e-324);
    json_number("1e-400", 0.0);
    json_number("3.14159265358979323846264338327950288419716939937510", 3.141592653589793);
    json_number("123456789012345678901234567890", 1.2345678901234568e29);
    json_number("0.000000000000000000000000000001", 1e-30);
    json_number("18446744073709551615", 18446744073709551616.0);
    json_number("18446744073709551616", 18446744073709551616.0);
    json_number("99999999999999999999", 1e20);

    /* Errors, with exact messages for the common ones. */
    json_bad("", 0, "json: unexpected end of input at byte 0");
    json_bad("   ", 3, "json: unexpected end of input at byte 3");
    json_bad("{\"a\":x}", 7, "json: unexpected character 'x' at byte 5");
    json_bad("{\"ab", 4, "json: unterminated string at byte 1");
    json_bad("\"ab\\", 4, "json: unterminated string at byte 0");
    json_bad("{\"a\":1} x", 9, "json: trailing characters at byte 8");
    json_bad("[1,]", 4, "json: unexpected character ']' at byte 3");
    json_bad("[1 2]", 5, "json: unexpected character '2' at byte 3");
    json_bad("{\"a\" 1}", 7, NULL);
    json_bad("{1:2}", 5, NULL);
    json_bad("{\"a\":1,}", 8, NULL);
    json_bad("01", 2, "json: trailing characters at byte 1");
    json_bad("-", 1, NULL);
    json_bad("1.", 2, NULL);
    json_bad(".5", 2, NULL);
    json_bad("1e", 2, NULL);
    json_bad("1e+", 3, NULL);
    json_bad("+1", 2, NULL);
    json_bad("1e400", 5, "json: number out of range at byte 0");
    json_bad("-1e400", 6, NULL);
    json_bad("NaN", 3, NULL);
    json_bad("Infinity", 8, NULL);
    json_bad("tru", 3, NULL);
    json_bad("nul", 3, NULL);
    json_bad("truex", 5, NULL);
    json_bad("\"a\nb\"", 5, "json: control character in string at byte 2");
    json_bad("\"\\x\"", 4, "json: bad escape '\\x' at byte 1");
    json_bad("\"\\u12\"", 6, NULL);
    json_bad("\"\\u12", 5, NULL);
    json_bad("\"\\ud83d\"", 8, NULL);
    json_bad("\"\\ud83dx\"", 9, NULL);
    json_bad("\"\\ud83d\\u0041\"", 14, NULL);
    json_bad("\"\\ude00\"", 8, NULL);
    json_bad("[1]\0", 4, NULL);
    json_bad("\x01", 1, "json: unexpected byte 0x01 at byte 0");
    json_bad("[\"a\", \"b\\", 9, NULL);

    /* Nesting: 128 levels decode, 129 do not, in arrays and objects. */
    for (int pass = 0; pass < 2; pass++) {
        for (int depth = 127; depth <= 130; depth++) {
            sl_buf b;
            sl_buf_init(&b);
            for (int i = 0; i < depth; i++)
                sl_buf_append(&b, pass ? "{\"a\":" : "[", pass ? 5 : 1);
            sl_buf_putc(&b, '1');
            for (int i = 0; i < depth; i++)
                sl_buf_putc(&b, pass ? '}' : ']');
            int rc = jdec(b.data, b.len);
            CHECK(rc == (depth <= SL_CODEC_MAX_DEPTH ? SL_CODEC_OK : SL_CODEC_BAD),
                  "depth %d: %s", depth, err);
            if (rc == SL_CODEC_OK) {
                sl_buf out;
                sl_buf_init(&out);
                CHECK(sl_json_encode(L, -1, &out, err) == SL_CODEC_OK
                      && out.len == b.len, "re-encode depth %d: %s", depth, err);
                sl_buf_free(&out);
                lua_pop(L, 1);
            }
            sl_buf_free(&b);
        }
    }

    /* A deep, wide value: the stack budget holds with full chunks at every level. */
    {
        sl_buf b;
        sl_buf_init(&b);
        for (int i = 0; i < SL_CODEC_MAX_DEPTH / 2; i++) {
            sl_buf_putc(&b, '[');
            for (int j = 0; j < 31; j++)
                sl_buf_append(&b, "0,", 2);
            sl_buf_putc(&b, '{');
            for (int j = 0; j < 15; j++)
                sl_buf_printf(&b, "\"k%d\":0,", j);
            sl_buf_append(&b, "\"z\":", 4);
        }
        sl_buf_putc(&b, '1');
        for (int i = 0; i < SL_CODEC_MAX_DEPTH / 2; i++)
            sl_buf_append(&b, "}]", 2);
        if (jdec(b.data, b.len) == SL_CODEC_OK)
            lua_pop(L, 1);
        else
            CHECK(0, "deep and wide: %s", err);
        sl_buf_free(&b);
    }

    /* Encoding. */
    json_enc("return {}", "{}", NULL);
    json_enc("return {1, 2, 3}", "[1,2,3]", NULL);
    json_enc("return {[1] = 'a', [2] = 'b'}", "[\"a\",\"b\"]", NULL);
    json_enc("return {[2] = 'b'}", "{\"2\":\"b\"}", NULL);
    json_enc("return {[1.5] = true}", "{\"1.5\":true}", NULL);
    json_enc("local t = {1, 2, 3}; t[2] = nil; return t", NULL, NULL);
    json_enc("return {x = {y = {}}}", "{\"x\":{\"y\":{}}}", NULL);
    json_enc("return 'tab\\tnl\\nq\"bs\\\\\\1\\127\\128'",
             "\"tab\\tnl\\nq\\\"bs\\\\\\u0001\x7f\xef\xbf\xbd\"", NULL);
    json_enc("return 1700000000000", "1700000000000", NULL);
    json_enc("return -0.0", "0", NULL);
    json_enc("return nil", "null", NULL);
    json_enc("return 0/0", NULL, "json: cannot encode NaN/inf");
    json_enc("return {a = {1, 1/0}}", NULL, "json: cannot encode NaN/inf");
    json_enc("return {[1/0] = 1}", NULL, "json: cannot encode NaN/inf");
    json_enc("return print", NULL, "json: cannot encode a function");
    json_enc("return {f = coroutine.create(print)}", NULL, "json: cannot encode a thread");
    json_enc("return {[true] = 1}", NULL, "json: cannot encode a table key of type boolean");
    json_enc("local t = {}; t.t = t; return t", NULL, "json: nested too deep (a cycle?)");
    json_enc("local t = {}; t[1] = t; return t", NULL, "json: nested too deep (a cycle?)");
    json_enc("local t = {1, x = 2}; return t", NULL, NULL);     /* an object, order free */
    json_enc("return {null, 1, null}", "[null,1,null]", NULL);
    json_enc("local t = {}; for i = 1, 128 do t = {t} end; return t", NULL,
             "json: nested too deep (a cycle?)");
    json_enc("local t = 1; for i = 1, 128 do t = {t} end; return t", NULL, NULL);

    /* Objects with mixed keys encode with every key. */
    eval(L, "return {1, 2, x = 'y', [10] = 3}");
    {
        sl_buf b;
        sl_buf_init(&b);
        CHECK(sl_json_encode(L, -1, &b, err) == SL_CODEC_OK, "mixed: %s", err);
        CHECK(jdec(b.data, b.len) == SL_CODEC_OK, "mixed re-decode: %s", err);
        eval(L, "return {['1'] = 1, ['2'] = 2, x = 'y', ['10'] = 3}");
        CHECK(deep_eq(-1, -2, 0), "mixed keys: %.*s", (int)b.len, b.data);
        lua_pop(L, 3);
        sl_buf_free(&b);
    }
}

/* ---- CSV --------------------------------------------------------------------------- */

static void frame(const char *s, int eof, int want_rc, size_t want_rec, size_t want_used)
{
    size_t len = strlen(s), rec = 99, used = 99;
    char *copy = dup_exact(s, len);
    int rc = sl_csv_frame(copy, len, eof, &rec, &used);
    free(copy);
    CHECK(rc == want_rc && (rc != SL_CODEC_OK || (rec == want_rec && used == want_used)),
          "frame \"%s\" eof=%d: rc %d rec %zu used %zu", s, eof, rc, rec, used);
}

static int cdec(const char *s, int keys_idx)
{
    size_t len = strlen(s);
    char *copy = dup_exact(s, len);
    int top = lua_gettop(L);
    err[0] = '\0';
    int rc = sl_csv_decode(L, copy, len, keys_idx, err);
    free(copy);
    CHECK(lua_gettop(L) == top + (rc == SL_CODEC_OK), "csv stack effect for %s", s);
    return rc;
}

/* Decodes s (keyed by the array `keys` when keyed) and compares with a Lua value. */
static void csv_dec(const char *s, int keyed, const char *want_code)
{
    if (keyed)
        eval(L, "return keys");
    int rc = cdec(s, keyed ? lua_gettop(L) : 0);
    if (rc != SL_CODEC_OK) {
        CHECK(0, "csv decode %s: %s", s, err);
    } else {
        eval(L, want_code);
        CHECK(deep_eq(-1, -2, 0), "csv decode %s vs %s", s, want_code);
        lua_pop(L, 2);
    }
    if (keyed)
        lua_pop(L, 1);
}

static void csv_bad(const char *s, int keyed, const char *want_err)
{
    if (keyed)
        eval(L, "return keys");
    int rc = cdec(s, keyed ? -1 : 0);
    CHECK(rc == SL_CODEC_BAD, "csv accepted %s", s);
    if (rc == SL_CODEC_OK)
        lua_pop(L, 1);
    else if (want_err)
        CHECK(strcmp(err, want_err) == 0, "error \"%s\", want \"%s\"", err, want_err);
    if (keyed)
        lua_pop(L, 1);
}

static void csv_enc(const char *code, int keyed, const char *want, const char *want_err)
{
    if (keyed)
        eval(L, "return keys");
    eval(L, code);
    sl_buf b;
    sl_buf_init(&b);
    int top = lua_gettop(L);
    int rc = sl_csv_encode(L, -1, keyed ? -2 : 0, &b, err);
    CHECK(lua_gettop(L) == top, "csv encode moved the stack");
    if (want)
        CHECK(rc == SL_CODEC_OK && b.len == strlen(want) && memcmp(b.data, want, b.len) == 0,
              "%s -> [%.*s], want [%s] (%s)", code, (int)b.len, b.data, want, rc ? err : "");
    else
        CHECK(rc == SL_CODEC_BAD && b.len == 0 && strcmp(err, want_err) == 0,
              "%s: rc %d, err %s", code, rc, err);
    lua_pop(L, keyed ? 2 : 1);
    sl_buf_free(&b);
}

static void test_csv(void)
{
    frame("a,b\nc", 0, SL_CODEC_OK, 3, 4);
    frame("a,b\r\nc", 0, SL_CODEC_OK, 3, 5);
    frame("a,b", 0, SL_CODEC_MORE, 0, 0);
    frame("a,b", 1, SL_CODEC_OK, 3, 3);
    frame("a,b\r", 1, SL_CODEC_OK, 3, 4);
    frame("", 1, SL_CODEC_MORE, 0, 0);
    frame("\n", 0, SL_CODEC_OK, 0, 1);
    frame("\"a\nb\",c\nd", 0, SL_CODEC_OK, 7, 8);
    frame("\"a\nb\",c", 0, SL_CODEC_MORE, 0, 0);
    frame("\"a\nb", 0, SL_CODEC_MORE, 0, 0);
    frame("\"a\nb", 1, SL_CODEC_OK, 4, 4);
    frame("\"a\"\"\n\"\nx", 0, SL_CODEC_OK, 6, 7);
    frame("x,\"\"\ny", 0, SL_CODEC_OK, 4, 5);
    frame("5\" screen,\"a\nb\"\n", 0, SL_CODEC_OK, 15, 16);   /* a stray quote mid-field */
    frame("ab\"c\nd\"\n", 0, SL_CODEC_OK, 4, 5);
    frame("\"a\"", 0, SL_CODEC_MORE, 0, 0);

    csv_dec("a,b,c", 0, "return {'a', 'b', 'c'}");
    csv_dec("", 0, "return {''}");
    csv_dec(",", 0, "return {'', ''}");
    csv_dec("1,-2,+3,4.5,1e3,-1.5E-2,007", 0, "return {1, -2, '+3', 4.5, 1000, -0.015, '007'}");
    csv_dec("inf,nan,0x10, 5,5 ,1.,.5,-,1e,--1,1e+", 0,
            "return {'inf', 'nan', '0x10', ' 5', '5 ', '1.', '.5', '-', '1e', '--1', '1e+'}");
    csv_dec("\"1\",\"\",\"a,b\",\"say \"\"hi\"\"\",\"x\ny\"", 0,
            "return {'1', '', 'a,b', 'say \"hi\"', 'x\\ny'}");
    csv_dec("5\" screen,a\"b", 0, "return {'5\" screen', 'a\"b'}");
    csv_dec("1e400,9007199254740993", 0, "return {'1e400', '9007199254740993'}");
    csv_dec("\"\"\"\"", 0, "return {'\"'}");

    eval(L, "return {'id', 'name', 'price'}");
    lua_setglobal(L, "keys");
    csv_dec("1,bob,2.5", 1, "return {id = 1, name = 'bob', price = 2.5}");
    csv_dec("1,,2.5", 1, "return {id = 1, price = 2.5}");
    csv_dec("1,\"\",", 1, "return {id = 1, name = ''}");
    csv_bad("1,2", 1, "csv: record has 2 fields, header has 3");
    csv_bad("1,2,3,4", 1, "csv: record has 4 fields, header has 3");
    csv_bad("\"abc", 0, "csv: unterminated quoted field at byte 0");
    csv_bad("a,\"b\"\"", 0, "csv: unterminated quoted field at byte 2");
    csv_bad("\"ab\"c,d", 0, "csv: unexpected character after closing quote at byte 4");
    csv_bad("\"", 0, NULL);

    csv_enc("return {'a', 'b,c', 'say \"hi\"', 'x\\ny', 'cr\\r', 1.5, true, null}", 0,
            "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\",\"cr\r\",1.5,true,\n", NULL);
    csv_enc("return {id = 7, price = 0.1}", 1, "7,,0.1\n", NULL);
    /* strings that would read back as numbers or as a missing value are quoted */
    csv_enc("return {'12', '', '007', '-1.5'}", 0, "\"12\",\"\",007,\"-1.5\"\n", NULL);
    csv_enc("return {id = {1, 'two'}, name = {}}", 1, "\"[1,\"\"two\"\"]\",\"{}\",\n", NULL);
    csv_enc("return {id = 0/0}", 1, NULL, "csv: cannot encode NaN/inf");
    csv_enc("return {id = print}", 1, NULL, "csv: cannot encode a function");
    csv_enc("return {id = {print}}", 1, NULL, "json: cannot encode a function");
    csv_enc("return 5", 0, NULL, "csv: cannot encode a number as a record");
    csv_enc("return {}", 0, "\n", NULL);

    /* Encode then frame and decode gives the record back. */
    eval(L, "return {'plain', 'with,comma', 'with \"quotes\"', 'multi\\nline\\r\\n', 42, -0.25}");
    {
        sl_buf b;
        sl_buf_init(&b);
        CHECK(sl_csv_encode(L, -1, 0, &b, err) == SL_CODEC_OK, "csv rt encode: %s", err);
        size_t rec, used;
        CHECK(sl_csv_frame(b.data, b.len, 0, &rec, &used) == SL_CODEC_OK && used == b.len,
              "csv rt frame");
        char *copy = dup_exact(b.data, rec);
        CHECK(sl_csv_decode(L, copy, rec, 0, err) == SL_CODEC_OK, "csv rt decode: %s", err);
        free(copy);
        CHECK(deep_eq(-1, -2, 0), "csv round trip");
        lua_pop(L, 2);
        sl_buf_free(&b);
    }
}

/* ---- msgpack ----------------------------------------------------------------------- */

static int mdec(const char *s, size_t len, size_t *used)
{
    char *copy = dup_exact(s, len);
    int top = lua_gettop(L);
    err[0] = '\0';
    int rc = sl_mpack_decode(L, copy, len, used, err);
    free(copy);
    CHECK(lua_gettop(L) == top + (rc == SL_CODEC_OK), "msgpack stack effect (rc %d)", rc);
    return rc;
}

/* Encodes the Lua expression's value, checks the bytes if given, checks every strict
 * prefix is MORE, then decodes and compares with the value itself (or with `back`). */
static void mpack_rt(const char *code, const char *want, size_t want_len, const char *back)
{
    eval(L, code);
    sl_buf b;
    sl_buf_init(&b);
    int rc = sl_mpack_encode(L, -1, &b, err);
    CHECK(rc == SL_CODEC_OK, "msgpack encode %s: %s", code, err);
    if (want)
        CHECK(b.len == want_len && memcmp(b.data, want, want_len) == 0,
              "msgpack bytes of %s (%zu bytes)", code, b.len);
    size_t used;
    for (size_t i = 0; i < b.len && i < 4096; i++) {
        size_t n = b.len <= 4096 ? i : i < 64 ? rnd() % b.len : b.len - 1;
        CHECK(mdec(b.data, n, &used) == SL_CODEC_MORE, "prefix %zu of %s", n, code);
        if (b.len > 4096 && i >= 64)
            break;
    }
    sl_buf_append(&b, "\xc0", 1);   /* the next object must not be consumed */
    if (mdec(b.data, b.len, &used) == SL_CODEC_OK) {
        CHECK(used == b.len - 1, "used %zu of %zu", used, b.len - 1);
        if (back)
            eval(L, back);
        CHECK(deep_eq(-1, -2, 0), "msgpack round trip of %s", code);
        lua_pop(L, back ? 2 : 1);
    } else {
        CHECK(0, "msgpack decode of %s: %s", code, err);
    }
    lua_pop(L, 1);
    sl_buf_free(&b);
}

static void mpack_bad(const char *s, size_t len, size_t want_used, const char *want_err)
{
    size_t used = 99;
    int rc = mdec(s, len, &used);
    CHECK(rc == SL_CODEC_BAD && used == want_used, "msgpack bad: rc %d used %zu", rc, used);
    if (rc == SL_CODEC_OK)
        lua_pop(L, 1);
    else if (want_err)
        CHECK(strcmp(err, want_err) == 0, "error \"%s\", want \"%s\"", err, want_err);
}

static void test_mpack(void)
{
    mpack_rt("return 1", "\x01", 1, NULL);
    mpack_rt("return -1", "\xff", 1, NULL);
    mpack_rt("return -33", "\xd0\xdf", 2, NULL);
    mpack_rt("return 255", "\xcc\xff", 2, NULL);
    mpack_rt("return -0.0", "\x00", 1, "return 0");
    mpack_rt("return 0.5", "\xcb\x3f\xe0\0\0\0\0\0\0", 9, NULL);
    mpack_rt("return 2^53 + 2", "\xcf\x00\x20\0\0\0\0\0\x02", 9, NULL);
    mpack_rt("return -2^63", "\xd3\x80\0\0\0\0\0\0\0", 9, NULL);
    mpack_rt("return 2^63", "\xcb\x43\xe0\0\0\0\0\0\0", 9, NULL);
    mpack_rt("return 1e300", NULL, 0, NULL);
    mpack_rt("return 'hi'", "\xa2hi", 3, NULL);
    mpack_rt("return string.rep('x', 40)", NULL, 0, NULL);
    mpack_rt("return string.rep('x', 70000)", NULL, 0, NULL);
    mpack_rt("return true", "\xc3", 1, NULL);
    mpack_rt("return nil", "\xc0", 1, "return null");
    mpack_rt("return {}", "\x80", 1, NULL);
    mpack_rt("return {1, 2, 3}", "\x93\x01\x02\x03", 4, NULL);
    mpack_rt("return {a = 1}", "\x81\xa1" "a" "\x01", 4, NULL);
    mpack_rt("return {[2] = 'b'}", "\x81\x02\xa1" "b", 4, NULL);
    mpack_rt("return {null, 'x', {y = {1.5, {}, {z = null}}}}", NULL, 0, NULL);
    mpack_rt("local t = {} for i = 1, 20 do t['k' .. i] = i end return t", NULL, 0, NULL);
    mpack_rt("local t = {} for i = 1, 70000 do t['k' .. i] = i end return t", NULL, 0, NULL);
    mpack_rt("local t = {} for i = 1, 70000 do t[i] = i end return t", NULL, 0, NULL);
    mpack_rt("return {auction = 1234, bidder = 55, price = 123.5, channel = 'web', "
             "ts = 1700000000123, tags = {'a', 'b'}, meta = {n = null}}", NULL, 0, NULL);
    mpack_rt("local t = 1; for i = 1, 32 do t = {t} end; return t", NULL, 0, NULL);

    /* Decoder inputs msgpack-c would handle badly or we do not support. */
    mpack_bad("\xc1", 1, 1, "msgpack: invalid type byte 0xc1 at byte 0");
    mpack_bad("\x92\x01\xc1", 3, 1, NULL);
    mpack_bad("\xd4\x01\x02", 3, 3, "msgpack: ext types are not supported");
    mpack_bad("\x92\xc7\x02\x05" "ab" "\x01", 7, 7, NULL);
    mpack_bad("\x81\x90\x01", 3, 3, "msgpack: map keys must be strings or numbers");
    mpack_bad("\x81\xc0\x01", 3, 3, NULL);
    mpack_bad("\x81\xcb\x7f\xf8\0\0\0\0\0\0\x01", 11, 11, "msgpack: map key is NaN");
    size_t used;
    /* 2^32 - 1 elements declared, none present: wait for them, allocate nothing. */
    CHECK(mdec("\xdd\xff\xff\xff\xff", 5, &used) == SL_CODEC_MORE, "huge array");
    CHECK(mdec("\xdf\xff\xff\xff\xff\x01", 6, &used) == SL_CODEC_MORE, "huge map");
    CHECK(mdec("\xdb\xff\xff\xff\xff", 5, &used) == SL_CODEC_MORE, "huge str");
    CHECK(mdec("", 0, &used) == SL_CODEC_MORE, "empty");
    {
        char deep[40];
        memset(deep, 0x91, 33);
        deep[33] = 0x01;
        mpack_bad(deep, 34, 1, "msgpack: nested deeper than 32 levels at byte 32");
    }

    eval(L, "return {f = print}");
    sl_buf b;
    sl_buf_init(&b);
    CHECK(sl_mpack_encode(L, -1, &b, err) == SL_CODEC_BAD && b.len == 0
          && strcmp(err, "msgpack: cannot encode a function") == 0, "encode function");
    lua_pop(L, 1);
    eval(L, "local t = {}; t.t = t; return t");
    CHECK(sl_mpack_encode(L, -1, &b, err) == SL_CODEC_BAD && b.len == 0
          && strcmp(err, "msgpack: nested too deep (a cycle?)") == 0, "encode cycle");
    lua_pop(L, 1);
    eval(L, "return {1, 0/0}");
    CHECK(sl_mpack_encode(L, -1, &b, err) == SL_CODEC_BAD && b.len == 0,
          "encode NaN");
    lua_pop(L, 1);
    sl_buf_free(&b);
}

/* ---- key order (codec_keys.c) ------------------------------------------------------ */

/* Decodes the JSON text, encodes it again and expects the very same text. */
static void json_same(const char *text)
{
    if (jdec(text, strlen(text)) != SL_CODEC_OK) {
        CHECK(0, "decode %s: %s", text, err);
        return;
    }
    sl_buf b;
    sl_buf_init(&b);
    CHECK(sl_json_encode(L, -1, &b, err) == SL_CODEC_OK, "encode %s: %s", text, err);
    CHECK(b.len == strlen(text) && memcmp(b.data, text, b.len) == 0, "%s -> %.*s", text,
          (int)b.len, b.data);
    lua_pop(L, 1);
    sl_buf_free(&b);
}

/* Encodes the Lua value of `code` (which may use the global t) as JSON: want exactly. */
static void json_is(const char *code, const char *want)
{
    eval(L, code);
    sl_buf b;
    sl_buf_init(&b);
    int rc = sl_json_encode(L, -1, &b, err);
    CHECK(rc == SL_CODEC_OK && b.len == strlen(want) && memcmp(b.data, want, b.len) == 0,
          "%s -> %.*s, want %s (%s)", code, (int)b.len, b.data, want, rc ? err : "");
    lua_pop(L, 1);
    sl_buf_free(&b);
}

/* Encodes the Lua value of `code` as JSON: want the string the Lua chunk want_code
 * returns. */
static void json_like(const char *code, const char *want_code)
{
    eval(L, code);
    sl_buf b;
    sl_buf_init(&b);
    int rc = sl_json_encode(L, -1, &b, err);
    eval(L, want_code);
    size_t wlen;
    const char *want = lua_tolstring(L, -1, &wlen);
    CHECK(rc == SL_CODEC_OK && b.len == wlen && memcmp(b.data, want, wlen) == 0,
          "%s: %.60s... (%zu bytes), want %.60s... (%zu bytes)", code, b.data, b.len, want,
          wlen);
    lua_pop(L, 2);
    sl_buf_free(&b);
}

/* Decodes the JSON text into the global t. */
static void json_global(const char *text)
{
    CHECK(jdec(text, strlen(text)) == SL_CODEC_OK, "decode %s: %s", text, err);
    lua_setglobal(L, "t");
}

static void test_order(void)
{
    /* a decoded object's keys come out as they came in, at every depth */
    json_same("{\"z\":1,\"a\":2,\"m\":3}");
    json_same("{\"z\":{\"y\":[{\"b\":1,\"a\":2},{\"a\":1,\"b\":2}],\"x\":null},\"a\":\"s\"}");
    json_global("{\"\":1,\"\\u00e9t\\u00e9\":2,\"a\\\"b\":3}");  /* escaped keys */
    json_is("return t", "{\"\":1,\"\xc3\xa9t\xc3\xa9\":2,\"a\\\"b\":3}");
    json_same("[{\"b\":1},{\"a\":1,\"b\":2},{}]");
    /* a key repeated keeps its first place and its last value */
    json_global("{\"a\":1,\"b\":2,\"a\":3}");
    json_is("return t", "{\"a\":3,\"b\":2}");
    /* added keys follow, sorted; removed ones go; numbers before strings */
    json_global("{\"ts\":1,\"price\":2,\"auction\":3}");
    json_is("t.x = 1; t.b = 2; t[2] = 0; t.price = nil; return t",
            "{\"ts\":1,\"auction\":3,\"2\":0,\"b\":2,\"x\":1}");
    /* built in Lua: all sorted */
    json_is("return {b = 1, a = 2, B = 3, [10] = 4, [9] = 5, [0.5] = 6}",
            "{\"0.5\":6,\"9\":5,\"10\":4,\"B\":3,\"a\":2,\"b\":1}");
    json_is("return {ab = 1, a = 2, abc = 3, ['a\\0'] = 4}",
            "{\"a\":2,\"a\\u0000\":4,\"ab\":1,\"abc\":3}");
    /* shared shapes; a user's metatable is not a shape */
    json_global("{\"p\":1,\"q\":2}");
    eval(L, "local a = t; return a");
    CHECK(jdec("{\"p\":3,\"q\":4}", 13) == SL_CODEC_OK, "decode");
    CHECK(lua_getmetatable(L, -1) && lua_getmetatable(L, -3) && lua_rawequal(L, -1, -2),
          "one shape for two records of the same keys");
    lua_settop(L, 0);
    json_is("return setmetatable({b = 1, a = 2}, {[0] = 'not a shape'})", "{\"a\":2,\"b\":1}");

    /* msgpack: the same order, both ways */
    {
        static const char in[] = "\x83\xa1" "b\x01\xa1" "a\x81\xa1" "y\x02\xa1" "c\xc0";
        size_t used;
        CHECK(mdec(in, sizeof in - 1, &used) == SL_CODEC_OK, "msgpack decode: %s", err);
        sl_buf b;
        sl_buf_init(&b);
        CHECK(sl_mpack_encode(L, -1, &b, err) == SL_CODEC_OK, "msgpack encode: %s", err);
        CHECK(b.len == sizeof in - 1 && memcmp(b.data, in, b.len) == 0, "msgpack order");
        b.len = 0;
        CHECK(sl_json_encode(L, -1, &b, err) == SL_CODEC_OK, "json encode: %s", err);
        static const char json[] = "{\"b\":1,\"a\":{\"y\":2},\"c\":null}";
        CHECK(b.len == sizeof json - 1 && memcmp(b.data, json, b.len) == 0,
              "msgpack to json: %.*s", (int)b.len, b.data);
        lua_pop(L, 1);
        sl_buf_free(&b);
    }

    /* csv: the header's order, every column of it for a writer */
    eval(L, "return {'zeta', 'alpha', 'mid'}");
    CHECK(cdec("1,,x", -1) == SL_CODEC_OK, "csv decode: %s", err);
    {
        sl_buf b;
        sl_buf_init(&b);
        CHECK(sl_json_encode(L, -1, &b, err) == SL_CODEC_OK, "csv to json: %s", err);
        CHECK(b.len == 20 && memcmp(b.data, "{\"zeta\":1,\"mid\":\"x\"}", 20) == 0,
              "csv to json: %.*s", (int)b.len, b.data);
        sl_buf_free(&b);
        CHECK(sl_codec_keys(L, -1) == 3, "csv columns");
        lua_setglobal(L, "cols");
        json_is("return cols", "[\"zeta\",\"alpha\",\"mid\"]");
        lua_pop(L, 2);
    }
    eval(L, "return {b = 1, a = 2, [1] = 3}");
    CHECK(sl_codec_keys(L, -1) == 2, "columns of a table built in Lua");
    lua_setglobal(L, "cols");
    json_is("return cols", "[\"a\",\"b\"]");
    lua_pop(L, 1);

    /* A wide object: past 64 keys its shape sorts by place; past SL_SHAPE_MAX_KEYS keys
     * it is a map, with no shape, so sorted; past the stack's room the values are fetched
     * again. */
    {
        sl_buf text;
        sl_buf_init(&text);
        sl_buf_putc(&text, '{');
        for (int i = 1024; i > 0; i--)
            sl_buf_printf(&text, "\"k%d\":%d%s", i, i, i > 1 ? "," : "}");
        json_same(sl_buf_cstr(&text));
        sl_buf_reset(&text);
        sl_buf_putc(&text, '{');
        for (int i = 1025; i > 0; i--)
            sl_buf_printf(&text, "\"%05d\":%d%s", i, i, i > 1 ? "," : "}");
        CHECK(jdec(text.data, text.len) == SL_CODEC_OK, "decode 1025 keys: %s", err);
        CHECK(!lua_getmetatable(L, -1), "an object of 1025 keys has no shape");
        lua_setglobal(L, "t");
        json_like("return t", "local p = {} for i = 1, 1025 do "
                  "p[i] = string.format('\"%05d\":%d', i, i) end "
                  "return '{' .. table.concat(p, ',') .. '}'");
        sl_buf_free(&text);
        eval(L, "local t, k = {}, {} for i = 1, 9000 do t['k' .. i] = i; k[i] = 'k' .. i end "
             "table.sort(k) local p = {} for i, n in ipairs(k) do p[i] = '\"' .. n .. '\":' "
             ".. t[n] end want = '{' .. table.concat(p, ',') .. '}' return t");
        sl_buf b;
        sl_buf_init(&b);
        CHECK(sl_json_encode(L, -1, &b, err) == SL_CODEC_OK, "wide: %s", err);
        lua_getglobal(L, "want");
        size_t wlen;
        const char *want = lua_tolstring(L, -1, &wlen);
        CHECK(b.len == wlen && memcmp(b.data, want, wlen) == 0, "a wide table, sorted");
        lua_pop(L, 2);
        sl_buf_free(&b);
    }

    /* State: a table of more than SL_SHAPE_MAX_KEYS keys is written as it comes (a
     * checkpoint's maps may be huge), and reads back the same. */
    eval(L, "local t = {} for i = 1, 3000 do t['s' .. i] = {b = i, a = -i} end return t");
    {
        sl_buf b;
        sl_buf_init(&b);
        CHECK(sl_mpack_encode_state(L, -1, &b, err) == SL_CODEC_OK, "state: %s", err);
        size_t used = 0;
        CHECK(mdec(b.data, b.len, &used) == SL_CODEC_OK && used == b.len, "state: %s", err);
        CHECK(deep_eq(-1, -2, 0), "state round trip");
        lua_pop(L, 2);
        sl_buf_free(&b);
    }

    /* The cache starts afresh past its bound; shapes given out before keep working. */
    json_global("{\"keep\":1,\"order\":2}");
    for (int i = 0; i < 70000; i++) {
        char rec[64];
        int n = snprintf(rec, sizeof rec, "{\"u%d\":1,\"v\":%d}", i, i);
        CHECK(jdec(rec, (size_t)n) == SL_CODEC_OK, "decode %s", rec);
        lua_pop(L, 1);
    }
    json_is("return t", "{\"keep\":1,\"order\":2}");
    json_same("{\"order\":1,\"keep\":2}");
    json_same("{\"u5\":1,\"v\":5}");

    /* JSON output is valid UTF-8: each ill-formed sequence becomes U+FFFD */
    json_is("return 'a\\195\\169\\240\\159\\152\\128'", "\"a\xc3\xa9\xf0\x9f\x98\x80\"");
    json_is("return '\\255\\254'", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    json_is("return '\\224\\160x'", "\"\xef\xbf\xbdx\"");
    json_is("return '\\237\\160\\128'", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    json_is("return '\\244\\144\\128\\128'",
            "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    json_is("return '\\240\\159\\152'", "\"\xef\xbf\xbd\"");
    json_is("return {['k\\255'] = 'v\\128'}", "{\"k\xef\xbf\xbd\":\"v\xef\xbf\xbd\"}");
    json_is("return string.rep('x', 40) .. '\\255' .. string.rep('\\195\\169', 3)",
            "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\xef\xbf\xbd\xc3\xa9\xc3\xa9\xc3\xa9\"");
    lua_pushnil(L);
    lua_setglobal(L, "t");
    lua_pushnil(L);
    lua_setglobal(L, "cols");
    lua_pushnil(L);
    lua_setglobal(L, "want");
}

/* ---- Fuzz: random and mutated inputs never crash and keep the stack balanced ------- */

static void fuzz(void)
{
    static const char *seeds[] = {
        "{\"auction\":1234,\"bidder\":55,\"price\":123.5,\"channel\":\"web\",\"ts\":17}",
        "[1,[2,[3,{\"a\":\"\\ud83d\\ude00\\n\"}]],null,true,false,-0.5e-3]",
        "a,\"b\"\"c\",1.5\r\n\"x\ny\",,3\n",
    };
    static const char alphabet[] = "{}[]\",:\\u0123456789eE.-+ \ntrufalsn\xc1\x91\xdd\x81\xa1";
    sl_buf enc;
    sl_buf_init(&enc);
    eval(L, "return {auction = 1, tags = {'a', 'b', {c = 1.5}}, n = false, s = 'x\\n'}");
    sl_mpack_encode(L, -1, &enc, err);
    lua_pop(L, 1);
    eval(L, "return {'a', 'b', 'c'}");
    int keys = lua_gettop(L);
    for (int i = 0; i < 200000; i++) {
        char buf[96];
        size_t len;
        int kind = (int)(rnd() % 4);
        if (kind == 3) {
            len = enc.len < sizeof buf ? enc.len : sizeof buf;
            memcpy(buf, enc.data, len);
        } else {
            const char *seed = seeds[kind];
            len = strlen(seed) < sizeof buf ? strlen(seed) : sizeof buf;
            memcpy(buf, seed, len);
        }
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = len ? rnd() % len : 0;
            switch (rnd() % 4) {
            case 0: buf[at] = alphabet[rnd() % (sizeof alphabet - 1)]; break;
            case 1: buf[at] = (char)rnd(); break;
            case 2: len = at; break;                            /* truncate */
            default: if (len) memmove(buf + at, buf + at + 1, len - at - 1), len--; break;
            }
        }
        int top = lua_gettop(L);
        char *copy = dup_exact(buf, len);
        size_t used = 0, rec = 0;
        int rc = sl_json_decode(L, copy, len, err);
        CHECK(lua_gettop(L) == top + (rc == SL_CODEC_OK), "fuzz json stack");
        lua_settop(L, top);
        rc = sl_mpack_decode(L, copy, len, &used, err);
        CHECK(lua_gettop(L) == top + (rc == SL_CODEC_OK), "fuzz msgpack stack");
        CHECK(rc == SL_CODEC_MORE || (used >= 1 && used <= len), "fuzz msgpack used");
        lua_settop(L, top);
        if (sl_csv_frame(copy, len, 1, &rec, &used) == SL_CODEC_OK) {
            CHECK(rec <= used && used <= len, "fuzz csv frame");
            rc = sl_csv_decode(L, copy, rec, i % 2 ? keys : 0, err);
            CHECK(lua_gettop(L) == top + (rc == SL_CODEC_OK), "fuzz csv stack");
            lua_settop(L, top);
        }
        free(copy);
        if (failures > 20)
            break;
    }
    lua_pop(L, 1);
    sl_buf_free(&enc);
}

/* ---- framing ----------------------------------------------------------------------- */

static sl_buf script;   /* what frame_all found, one line per answer */

/* Appends raw bytes to the script, printable ASCII as is and the rest as \xHH. */
static void put_raw(const char *raw, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c >= 0x20 && c < 0x7f)
            sl_buf_putc(&script, (char)c);
        else
            sl_buf_printf(&script, "\\x%02x", c);
    }
}

/* Frames what f holds a record at a time (batches of 1, in the table at keys + 1),
 * writing each answer to the script: "OFF:LINE value" (as JSON), "header names" or
 * "OFF:LINE bad REASON [first 5 bytes]" (an overlong record's bytes are what was buffered
 * when it was found: at least max_record + 1). */
static void frame_all(sl_framer *f, int keys, int eof)
{
    sl_frame first, fr;
    int rc, n;

    for (;;) {
        n = 0;
        rc = sl_framer_fill(f, L, keys, eof, keys + 1, &n, 1, &first, &fr);
        if (rc == SL_FRAME_WAIT)
            break;
        if (rc == SL_FRAME_BAD) {
            CHECK(n == 0, "a record before a bad one in a batch of 1");
            sl_buf_printf(&script, "%lld:%lld bad %s [", (long long)fr.off, (long long)fr.line,
                          fr.reason);
            put_raw(fr.raw, fr.rawlen < 5 ? fr.rawlen : 5);
            sl_buf_printf(&script, "]\n");
            continue;
        }
        if (rc == SL_FRAME_HEADER) {
            sl_buf_printf(&script, "header ");
        } else {
            CHECK(n == 1, "a full batch of %d", n);
            sl_buf_printf(&script, "%lld:%lld ", (long long)first.off, (long long)first.line);
            lua_rawgeti(L, keys + 1, 1);
        }
        CHECK(sl_json_encode(L, -1, &script, err) == SL_CODEC_OK, "%s", err);
        sl_buf_putc(&script, '\n');
        if (rc == SL_FRAME_HEADER)
            lua_replace(L, keys);
        else
            lua_pop(L, 1);
    }
}

/* Feeds in[0, len) to a framer made by setup, piece bytes at a time (0: all at once),
 * framing after each piece and once more at the end of input, and checks the script. */
static void expect_frames(void (*setup)(sl_framer *), const char *in, size_t len,
                          size_t piece, const char *want)
{
    sl_framer f;
    int keys;

    setup(&f);
    lua_pushnil(L);                                     /* keys */
    keys = lua_gettop(L);
    lua_newtable(L);                                    /* keys batch */
    sl_buf_reset(&script);
    for (size_t at = 0; at < len;) {
        size_t k = piece == 0 || len - at < piece ? len - at : piece;
        char *copy = dup_exact(in + at, k);
        sl_framer_append(&f, copy, k);
        free(copy);
        at += k;
        frame_all(&f, keys, 0);
    }
    frame_all(&f, keys, 1);
    CHECK(strcmp(sl_buf_cstr(&script), want) == 0, "pieces of %zu:\n%swant:\n%s", piece,
          sl_buf_cstr(&script), want);
    CHECK(lua_gettop(L) == keys + 1, "stack at %d", lua_gettop(L));
    lua_settop(L, keys - 1);
    sl_framer_free(&f);
}

/* The same, for pieces of 1, 2, 3 and 5 bytes and all at once: framing does not depend on
 * how the input arrives. */
static void expect_any_pieces(void (*setup)(sl_framer *), const char *in, size_t len,
                              const char *want)
{
    static const size_t pieces[] = {1, 2, 3, 5, 0};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        expect_frames(setup, in, len, pieces[i], want);
}

static void lines(sl_framer *f) { sl_framer_init(f, SL_FRAMER_LINES, 1024); }
static void json(sl_framer *f) { sl_framer_init(f, SL_FRAMER_JSON, 1024); }
static void json4(sl_framer *f) { sl_framer_init(f, SL_FRAMER_JSON, 4); }
static void lines_socket(sl_framer *f) { lines(f); f->partial_bad = 1; }
static void csv(sl_framer *f) { sl_framer_init(f, SL_FRAMER_CSV, 1024); }
static void csv_socket(sl_framer *f) { csv(f); f->partial_bad = 1; }
static void csv_header(sl_framer *f) { csv(f); f->keyed = f->want_header = 1; }
static void mpack(sl_framer *f) { sl_framer_init(f, SL_FRAMER_MSGPACK, 1024); }
static void mpack4(sl_framer *f) { sl_framer_init(f, SL_FRAMER_MSGPACK, 4); }
static void lines_resumed(sl_framer *f) { lines(f); sl_framer_start_at(f, 100, 7); }

#define S(lit) lit, sizeof(lit) - 1

static void test_framing(void)
{
    sl_framer f;
    sl_frame first, fr;
    int64_t off, line;
    int n;

    sl_buf_init(&script);
    /* lines: a BOM skipped, CRLF, an empty line is a record, the last needs no newline */
    expect_any_pieces(lines, S("\xEF\xBB\xBF" "a\r\nb\n\nc"),
                      "3:1 \"a\"\n6:2 \"b\"\n8:3 \"\"\n9:4 \"c\"\n");
    /* half a BOM is a record (the script shows it as JSON: one U+FFFD) */
    expect_any_pieces(lines, S("\xEF\xBB"), "0:1 \"\xEF\xBF\xBD\"\n");
    expect_any_pieces(lines, S("\xEF\xBB\xBF"), "");
    expect_any_pieces(lines, S(""), "");
    /* a socket's unterminated last record is bad */
    expect_any_pieces(lines_socket, S("a\nb"),
                      "0:1 \"a\"\n2:2 bad partial record at end of input (no newline) [b]\n");
    /* json: blank lines are no record, a bad one is reported where it starts */
    expect_any_pieces(json, S("{\"x\":1}\n \t\n[1,\n2]\n"),
                      "0:1 {\"x\":1}\n11:3 bad json: unexpected end of input at byte 3 [[1,]\n"
                      "15:4 bad json: trailing characters at byte 1 [2]]\n");
    /* overlong: reported once where it starts, skipped through its newline */
    expect_any_pieces(json4, S("[1]\n\"abcdefgh\"\n[22]\r\n[333]\n7"),
                      "0:1 [1]\n4:2 bad record longer than 4 bytes [\"abcd]\n"
                      "15:3 [22]\n21:4 bad record longer than 4 bytes [[333]]\n27:5 7\n");
    /* csv: quoted newlines, blank lines, arrays; a header names the columns */
    expect_any_pieces(csv, S("1,\"a\nb\"\r\n\n,x\n"),
                      "0:1 [1,\"a\\nb\"]\n10:4 [\"\",\"x\"]\n");
    expect_any_pieces(csv_header, S("name\n\"a,b\"\n7"),
                      "header [\"name\"]\n5:2 {\"name\":\"a,b\"}\n11:3 {\"name\":7}\n");
    expect_any_pieces(csv_socket, S("1\n2"),
                      "0:1 [1]\n2:2 bad partial record at end of input (no newline) [2]\n");
    /* msgpack: an object per record, numbered; truncated at the end is bad */
    expect_any_pieces(mpack, S("\x01\x92\x02\xa1x\x93"),
                      "0:1 1\n1:2 [2,\"x\"]\n5:3 bad msgpack: truncated object at end of input"
                      " [\\x93]\n");
    /* a run of undecodable bytes is one bad record, reported when something else comes
     * or the buffer runs out (so pieces of 1 make runs of 1) */
    expect_frames(mpack, S("\x01\xc1\xc1\x02"), 0,
                  "0:1 1\n1:2 bad msgpack: invalid type byte 0xc1 at byte 0 [\\xc1\\xc1]\n"
                  "3:2 2\n");
    expect_frames(mpack, S("\x01\xc1\xc1\x02"), 1,
                  "0:1 1\n1:2 bad msgpack: invalid type byte 0xc1 at byte 0 [\\xc1]\n"
                  "2:2 bad msgpack: invalid type byte 0xc1 at byte 0 [\\xc1]\n3:2 2\n");
    /* an overlong object is walked over, header by header, never buffered whole */
    expect_any_pieces(mpack4, S("\x01\x93\xa3xyz\x01\x02\x03"),
                      "0:1 1\n1:2 bad record longer than 4 bytes [\\x93\\xa3xyz]\n"
                      "8:3 3\n");
    /* resumed at an offset: counts from there, and a BOM is data */
    expect_any_pieces(lines_resumed, S("\xEF\xBB\xBFx\n"), "100:7 \"\xEF\xBB\xBF" "x\"\n");

    /* batches: filled to max, first says where element 1 starts; a bad record stops a
     * batch, which the next call goes on filling */
    lua_newtable(L);                                    /* batch */
    json(&f);
    sl_framer_append(&f, S("1\n2\n3\n4\nx\n5\n6"));
    n = 0;
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 3, &first, &fr) == SL_FRAME_RECORD && n == 3
          && first.off == 0 && first.line == 1, "a full batch of %d", n);
    lua_rawgeti(L, -1, 3);
    CHECK(lua_tonumber(L, -1) == 3, "batch[3]");
    lua_pop(L, 1);
    n = 0;
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 3, &first, &fr) == SL_FRAME_BAD && n == 1
          && first.off == 6 && first.line == 4 && fr.off == 8 && fr.line == 5,
          "stopped by a bad record: %d, %lld:%lld", n, (long long)fr.off, (long long)fr.line);
    first.off = -1;
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 3, &first, &fr) == SL_FRAME_WAIT && n == 2
          && first.off == -1, "went on to %d", n);
    lua_rawgeti(L, -1, 2);
    CHECK(lua_tonumber(L, -1) == 5, "batch[2]");
    lua_pop(L, 1);
    CHECK(sl_framer_fill(&f, L, 0, 1, -1, &n, 3, &first, &fr) == SL_FRAME_RECORD && n == 3,
          "the last, at the end of input");
    sl_framer_free(&f);

    /* the position: a record being skipped counts from its start, a bad run once it is
     * reported from its end */
    json4(&f);
    sl_framer_append(&f, S("[1]\n12345678"));
    n = 0;
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 9, &first, &fr) == SL_FRAME_BAD && n == 1,
          "a record, then the overlong one");
    n = 0;
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 9, &first, &fr) == SL_FRAME_WAIT && n == 0,
          "skipping");
    sl_framer_position(&f, &off, &line);
    CHECK(off == 4 && line == 2 && f.pos == f.len, "skipping at %lld:%lld", (long long)off,
          (long long)line);
    sl_framer_append(&f, S("9\n5\n"));
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 9, &first, &fr) == SL_FRAME_WAIT && n == 1
          && first.off == 14 && first.line == 3, "after the skip: %lld:%lld",
          (long long)first.off, (long long)first.line);
    sl_framer_position(&f, &off, &line);
    CHECK(off == 16 && line == 4, "at %lld:%lld", (long long)off, (long long)line);
    sl_framer_free(&f);

    mpack(&f);
    sl_framer_append(&f, S("\x01\xc1"));
    n = 0;
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 1, &first, &fr) == SL_FRAME_RECORD, "record");
    sl_framer_position(&f, &off, &line);
    CHECK(off == 1 && line == 2, "at %lld:%lld", (long long)off, (long long)line);
    n = 0;
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 1, &first, &fr) == SL_FRAME_BAD
          && fr.off == 1 && fr.rawlen == 1, "the run, when the buffer runs out");
    sl_framer_append(&f, S("\xc1\xc1\x02"));
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 1, &first, &fr) == SL_FRAME_BAD && n == 0
          && fr.off == 2 && fr.rawlen == 2, "a new run, ended by an object");
    sl_framer_position(&f, &off, &line);
    CHECK(off == 4 && line == 2, "after the run at %lld:%lld", (long long)off,
          (long long)line);
    CHECK(sl_framer_fill(&f, L, 0, 0, -1, &n, 1, &first, &fr) == SL_FRAME_RECORD
          && first.off == 4 && first.line == 2, "the object, decoded again");
    sl_framer_free(&f);
    lua_pop(L, 1);                                      /* -- */

    /* end_line: a line left unterminated (a rotated file, a datagram) ends there */
    lines(&f);
    sl_framer_append(&f, S("a"));
    sl_framer_end_line(&f);
    sl_framer_end_line(&f);             /* once: the buffer now ends in '\n' */
    sl_framer_append(&f, S("b\n"));
    CHECK(f.len - f.pos == 4 && memcmp(f.buf + f.pos, "a\nb\n", 4) == 0, "end_line");
    sl_framer_free(&f);
    mpack(&f);
    sl_framer_append(&f, S("\x01"));
    sl_framer_end_line(&f);
    CHECK(f.len == 1, "end_line in msgpack");
    sl_framer_free(&f);
    sl_buf_free(&script);
}

int main(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_pushlightuserdata(L, SL_NULL);
    lua_setglobal(L, "null");
    static const check_group groups[] = {
        { "numbers", test_numbers }, { "buf", test_buf }, { "json", test_json },
        { "csv", test_csv }, { "msgpack", test_mpack }, { "framing", test_framing },
        { "order", test_order }, { "fuzz", fuzz },
    };
    int passed = 0, failed = 0;
    run_groups("codec", 8, groups, sizeof groups / sizeof groups[0], &passed, &failed);
    CHECK(lua_gettop(L) == 0, "stack left at %d", lua_gettop(L));
    lua_close(L);
    return check_summary(passed, failed);
}
