/* fuzz_http.c -- the HTTP source's request handling (http_request.c, then the framing of
 * each body as http_server.c does) over a connection whose bytes arrive in pieces. The
 * first byte picks the size of the pieces (1, 7, 64 bytes, or all at once), a small
 * max_body (so 413 is reached), whether the head callback discards bodies, and the body's
 * format; the rest is what the client sent.
 *
 * Besides memory errors it checks what http_request.h promises: a request's target and
 * body stay within their limits, the path is a prefix of the target, every byte is taken
 * before WAIT, a failure has a reason and stays failed; and that the requests found do not
 * depend on how the bytes were cut: the same input whole gives the same requests. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "framing.h"
#include "http_request.h"

#define FAIL(...) do { fprintf(stderr, "fuzz_http: " __VA_ARGS__); abort(); } while (0)

static int discard_bodies;

static void on_head(sl_http_request *r, void *arg)
{
    (void)arg;
    if (r->path_len > r->target_len)
        FAIL("a path of %zu bytes in a target of %zu\n", r->path_len, r->target_len);
    r->discard = discard_bodies && r->target_len > 1;
}

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* Frames a body into a Lua batch as http_server.c's take() does. */
static void frame_body(lua_State *L, int format, const char *body, size_t len, size_t max)
{
    sl_framer fr;
    sl_frame first, bad;
    int n = 0;

    lua_settop(L, 0);
    lua_newtable(L);
    lua_pushnil(L);
    sl_framer_init(&fr, format, max);
    if (len > 0)
        sl_framer_append(&fr, body, len);
    for (;;) {
        int rc = sl_framer_fill(&fr, L, 2, 1, 1, &n, 16, &first, &bad);
        if (rc == SL_FRAME_RECORD)
            n = 0;
        else if (rc == SL_FRAME_BAD && (bad.reason == NULL || bad.reason[0] == '\0'))
            FAIL("a bad line without a reason\n");
        else if (rc == SL_FRAME_HEADER)
            lua_pop(L, 1);
        else if (rc == SL_FRAME_WAIT)
            break;
    }
    sl_framer_free(&fr);
    lua_settop(L, 0);
}

/* Parses data in pieces of `piece` bytes (0: whole); returns a digest of the requests. */
static uint64_t run(const uint8_t *data, size_t size, size_t piece, size_t max_body,
                    int format, int frame)
{
    sl_http_request r;
    uint64_t h = 14695981039346656037ULL;
    size_t off = 0;
    int rc = SL_HTTP_WAIT;

    sl_http_request_init(&r, max_body, on_head, NULL);
    while (off < size) {
        size_t len = piece == 0 || size - off < piece ? size - off : piece, used = 0;
        const char *at = (const char *)data + off;

        rc = sl_http_request_parse(&r, at, len, &used);
        if (used > len)
            FAIL("took %zu of %zu bytes\n", used, len);
        if (rc == SL_HTTP_WAIT && used != len)
            FAIL("WAIT with %zu of %zu bytes taken\n", used, len);
        off += used;
        if (rc == SL_HTTP_DONE) {
            if (r.target_len > SL_HTTP_MAX_TARGET || r.target[r.target_len] != '\0'
                || r.path_len > r.target_len)
                FAIL("a target of %zu bytes, path %zu\n", r.target_len, r.path_len);
            if (r.body_len > max_body || r.body_seen > max_body
                || (r.discard ? r.body_len != 0 : r.body_len != r.body_seen))
                FAIL("a body of %zu bytes (%llu seen, max %zu)\n", r.body_len,
                     (unsigned long long)r.body_seen, max_body);
            h = mix(h, &r.method, sizeof r.method);
            h = mix(h, r.target, r.target_len + 1);
            h = mix(h, &r.body_seen, sizeof r.body_seen);
            h = mix(h, r.body != NULL ? r.body : "", r.body_len);
            h = mix(h, &r.keep_alive, sizeof r.keep_alive);
            if (frame)
                frame_body(fuzz_lua(), format, r.body, r.body_len, max_body);
            sl_http_request_next(&r);   /* (the server closes after !keep_alive; parsing
                                           on is defined all the same) */
        } else if (rc != SL_HTTP_WAIT) {
            size_t again;
            if (r.err[0] == '\0')
                FAIL("failed without a reason\n");
            if (sl_http_request_parse(&r, "x", 1, &again) != rc || again != 0)
                FAIL("a failed parser parsed on\n");
            break;
        }
    }
    if (rc == SL_HTTP_WAIT) {
        size_t used;
        int busy = sl_http_request_busy(&r);
        rc = sl_http_request_parse(&r, "", 0, &used);   /* the peer closed */
        if ((rc == SL_HTTP_BAD) != busy)
            FAIL("a close %s a request answered %d\n", busy ? "in" : "between", rc);
    }
    h = mix(h, &rc, sizeof rc);
    sl_http_request_free(&r);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[] = { 1, 7, 64, 0 };
    static const int formats[] = { SL_FRAMER_JSON, SL_FRAMER_LINES, SL_FRAMER_CSV,
                                   SL_FRAMER_MSGPACK };
    size_t piece, max_body;
    int format;
    uint64_t cut, whole;

    if (size < 1)
        return 0;
    piece = pieces[data[0] & 3];
    max_body = (data[0] & 4) ? 64 : 4096;
    discard_bodies = (data[0] & 8) != 0;
    format = formats[(data[0] >> 4) & 3];
    cut = run(data + 1, size - 1, piece, max_body, format, 1);
    whole = run(data + 1, size - 1, 0, max_body, format, 0);
    /* a body over max_body is refused at the piece that passes it, so only the requests
     * before a failure are comparable: both runs must agree on them and on the end */
    if (cut != whole)
        FAIL("pieces of %zu bytes give other requests than the whole input\n", piece);
    return 0;
}
