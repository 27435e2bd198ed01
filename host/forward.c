/* forward.c -- the bytes of Fluent's forward protocol v1: entries in, entries out.
 *
 * An entry is a msgpack array: [tag, time, record(, option)] (Message), [tag, [[time,
 * record], ...](, option)] (Forward), [tag, bin-or-str of concatenated [time, record]
 * (, option)] (PackedForward; CompressedPackedForward when option.compressed is "gzip":
 * gzip members, maybe several). time is whole seconds or EventTime (ext type 0: big-endian
 * uint32 seconds, uint32 nanoseconds); it becomes ms, as every event time in sluice.
 * Bytes are measured first (codec_mpack.c's walker), so msgpack-c only ever unpacks a
 * whole, bounded object. Events are tables shaped tag, time, record (codec_shared.h's key
 * order), so a JSON sink writes them in that order. */
#include "forward.h"
#include "codec.h"
#include "codec_shared.h"

#include <lauxlib.h>
#include <math.h>
#include <msgpack.h>
#include <string.h>
#include <zlib.h>

/* The decoder's zones are cleared on each use, so decoding does not malloc once they have
 * grown to the largest entry seen. Two: an entry's option and packed bytes stay in `outer`
 * while each packed event is unpacked in `inner`. */
int sl_forward_decoder_init(sl_forward_decoder *d)
{
    sl_buf_init(&d->scratch);
    if (!msgpack_zone_init(&d->outer, MSGPACK_ZONE_CHUNK_SIZE))
        return -1;
    if (!msgpack_zone_init(&d->inner, MSGPACK_ZONE_CHUNK_SIZE)) {
        msgpack_zone_destroy(&d->outer);
        return -1;
    }
    return 0;
}

void sl_forward_decoder_free(sl_forward_decoder *d)
{
    msgpack_zone_destroy(&d->outer);
    msgpack_zone_destroy(&d->inner);
    sl_buf_free(&d->scratch);
}

static const char *type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_EXT: return "an ext";
    }
    return "?";
}

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* The ms of an event's time: seconds (integer, or a float as old Fluentd sent) or an
 * EventTime. Returns 0, or -1 with why in err. */
static int event_ms(const msgpack_object *t, double *ms, char *err)
{
    switch (t->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *ms = (double)t->via.u64 * 1000.0;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *ms = (double)t->via.i64 * 1000.0;
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(t->via.f64))
            break;
        *ms = t->via.f64 * 1000.0;
        return 0;
    case MSGPACK_OBJECT_EXT:
        if (t->via.ext.type != 0 || t->via.ext.size != 8) {
            snprintf(err, SL_FORWARD_ERRLEN, "time is ext type %d of %u bytes, not an "
                     "EventTime (type 0, 8 bytes)", t->via.ext.type, t->via.ext.size);
            return -1;
        }
        *ms = (double)be32(t->via.ext.ptr) * 1000.0 + (double)be32(t->via.ext.ptr + 4) / 1e6;
        return 0;
    default:
        break;
    }
    snprintf(err, SL_FORWARD_ERRLEN, "time is %s, not seconds or an EventTime",
             type_name(t));
    return -1;
}

/* Appends {tag=, time=, record=} of one event to the batch at bi, at n + 1. Returns 0, or
 * -1 with why in err (stack unchanged either way). */
/* How deep o's containers nest (a scalar: 0), counting no further than limit + 1. */
static int depth_of(const msgpack_object *o, int limit)
{
    int deepest = 0;

    if (limit < 0)
        return 1;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size && deepest <= limit; i++) {
            int d = depth_of(&o->via.array.ptr[i], limit - 1);
            if (d > deepest)
                deepest = d;
        }
        return deepest + 1;
    }
    if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size && deepest <= limit; i++) {
            int dk = depth_of(&o->via.map.ptr[i].key, limit - 1);
            int dv = depth_of(&o->via.map.ptr[i].val, limit - 1);
            if (dk > deepest)
                deepest = dk;
            if (dv > deepest)
                deepest = dv;
        }
        return deepest + 1;
    }
    return 0;
}

static int push_event(lua_State *L, int bi, int n, const msgpack_object *tag,
                      const msgpack_object *time, const msgpack_object *rec, char *err)
{
    char why[SL_CODEC_ERRLEN];
    double ms;

    /* Fluent Bit's events of format v2 hold [time, metadata] where the time goes; the
     * metadata is dropped, as Fluent Bit's own forward output does by default */
    if (time->type == MSGPACK_OBJECT_ARRAY && time->via.array.size == 2
        && time->via.array.ptr[1].type == MSGPACK_OBJECT_MAP)
        time = &time->via.array.ptr[0];
    if (event_ms(time, &ms, err) != 0)
        return -1;
    if (rec->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, SL_FORWARD_ERRLEN, "record is %s, not a map", type_name(rec));
        return -1;
    }
    /* PackedForward and Message entries hold records up to 31 deep; what is taken must
     * also go on in Forward mode, which wraps a record 3 deep */
    if (depth_of(rec, SL_FORWARD_RECORD_DEPTH) > SL_FORWARD_RECORD_DEPTH) {
        snprintf(err, SL_FORWARD_ERRLEN, "record nested deeper than %d levels",
                 SL_FORWARD_RECORD_DEPTH);
        return -1;
    }
    if (!lua_checkstack(L, 8)) {
        snprintf(err, SL_FORWARD_ERRLEN, "out of Lua stack");
        return -1;
    }
    if (sl_mpack_push(L, rec, why) != SL_CODEC_OK) {            /* rec */
        snprintf(err, SL_FORWARD_ERRLEN, "record: %s", why);
        return -1;
    }
    /* the shapes are taken once the record is whole (sl_shapes_get may start afresh) */
    sl_shapes *sh = sl_shapes_get(L);
    int node = 0;
    lua_createtable(L, 0, 3);                                   /* rec ev */
    lua_pushliteral(L, "tag");
    node = shape_step(L, sh, node, "tag", 3, -1);
    lua_pushlstring(L, tag->via.str.ptr, tag->via.str.size);
    lua_rawset(L, -3);
    lua_pushliteral(L, "time");
    node = shape_step(L, sh, node, "time", 4, -1);
    lua_pushnumber(L, ms);
    lua_rawset(L, -3);
    lua_pushliteral(L, "record");
    node = shape_step(L, sh, node, "record", 6, -1);
    lua_pushvalue(L, -3);                                       /* rec ev "record" rec */
    lua_rawset(L, -3);                                          /* rec ev */
    sl_shape_set(L, sh, node, -1);
    lua_rawseti(L, bi, n + 1);                                  /* rec */
    lua_pop(L, 1);                                              /* -- */
    return 0;
}

/* One event [time, record] of a Forward or PackedForward entry. */
static int push_pair(lua_State *L, int bi, int n, const msgpack_object *tag,
                     const msgpack_object *pair, char *err)
{
    if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2) {
        snprintf(err, SL_FORWARD_ERRLEN, "event is %s, not [time, record]", type_name(pair));
        return -1;
    }
    return push_event(L, bi, n, tag, &pair->via.array.ptr[0], &pair->via.array.ptr[1], err);
}

/* Inflates the gzip members in s[0, len) (one after another) into out. Returns 0, or -1
 * with why in err. */
static int gunzip(const char *s, size_t len, sl_buf *out, char *err)
{
    z_stream z;
    int rc;

    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        snprintf(err, SL_FORWARD_ERRLEN, "gzip: cannot start inflating");
        return -1;
    }
    sl_buf_reset(out);
    z.next_in = (Bytef *)s;
    z.avail_in = (uInt)len;
    for (;;) {
        if (out->len >= SL_FORWARD_INFLATE_MAX) {
            snprintf(err, SL_FORWARD_ERRLEN, "gzip: inflates past %u MiB",
                     SL_FORWARD_INFLATE_MAX >> 20);
            goto fail;
        }
        size_t want = 64 * 1024;
        char *at = room(out, want);
        z.next_out = (Bytef *)at;
        z.avail_out = (uInt)want;
        rc = inflate(&z, Z_NO_FLUSH);
        out->len += want - z.avail_out;
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            inflateReset(&z);           /* another member follows */
            continue;
        }
        if (rc == Z_BUF_ERROR && z.avail_in == 0) {
            snprintf(err, SL_FORWARD_ERRLEN, "gzip: the data ends inside a member");
            goto fail;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            snprintf(err, SL_FORWARD_ERRLEN, "gzip: %s", z.msg ? z.msg : "corrupt data");
            goto fail;
        }
    }
    inflateEnd(&z);
    return 0;
fail:
    inflateEnd(&z);
    return -1;
}

/* Whether the msgpack string o is `lit`. */
static int is_str(const msgpack_object *o, const char *lit)
{
    size_t n = strlen(lit);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n
        && memcmp(o->via.str.ptr, lit, n) == 0;
}

/* Reads option (a map or nil): chunk into e, whether compressed is gzip into *gzip.
 * Returns 0, or -1 with why in err. */
static int read_option(const msgpack_object *opt, sl_forward_entry *e, int *gzip, char *err)
{
    *gzip = 0;
    if (opt == NULL || opt->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (opt->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, SL_FORWARD_ERRLEN, "option is %s, not a map", type_name(opt));
        return -1;
    }
    for (uint32_t i = 0; i < opt->via.map.size; i++) {
        const msgpack_object *k = &opt->via.map.ptr[i].key, *v = &opt->via.map.ptr[i].val;
        if (is_str(k, "chunk")) {
            if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0
                || v->via.str.size > SL_FORWARD_CHUNK_MAX) {
                snprintf(err, SL_FORWARD_ERRLEN, "option chunk must be a string of 1 to %d "
                         "bytes", SL_FORWARD_CHUNK_MAX);
                return -1;
            }
            memcpy(e->chunk, v->via.str.ptr, v->via.str.size);
            e->chunk[v->via.str.size] = '\0';
            e->chunk_len = v->via.str.size;
        } else if (is_str(k, "compressed")) {
            if (is_str(v, "gzip"))
                *gzip = 1;
            else if (!is_str(v, "text")) {
                snprintf(err, SL_FORWARD_ERRLEN, "option compressed must be \"gzip\" or "
                         "\"text\"");
                return -1;
            }
        }
        /* size (the event count) and the rest are hints we do not need */
    }
    return 0;
}

/* The events of a PackedForward entry: the [time, record] objects of p[0, len), each
 * measured and unpacked on its own. Malformed bytes end the entry (nothing after them can
 * be framed); the events before them are in. Returns events pushed. */
static int push_packed(lua_State *L, msgpack_zone *inner, int bi, int n,
                       const msgpack_object *tag, const char *p, size_t len,
                       sl_forward_bad_cb *on_bad, void *arg, sl_forward_entry *e)
{
    char err[SL_FORWARD_ERRLEN], why[SL_CODEC_ERRLEN];
    size_t pos = 0;
    int pushed = 0;

    while (pos < len) {
        size_t size = 0, off = 0;
        int index = pushed + e->bad + 1;
        int rc = sl_mpack_measure(p + pos, len - pos, 1, &size, why);
        if (rc != SL_CODEC_OK) {
            snprintf(err, SL_FORWARD_ERRLEN, "packed events: %.150s at byte %zu of %zu; the "
                     "rest of the entry is dropped", rc == SL_CODEC_MORE ? "truncated event"
                     : why, pos, len);
            e->bad++;
            on_bad(arg, index, err);
            break;
        }
        msgpack_object pair;
        msgpack_zone_clear(inner);
        if (msgpack_unpack(p + pos, size, &off, inner, &pair) != MSGPACK_UNPACK_SUCCESS) {
            snprintf(err, SL_FORWARD_ERRLEN, "packed events: cannot unpack at byte %zu", pos);
            e->bad++;
            on_bad(arg, index, err);
            break;
        }
        pos += size;
        if (push_pair(L, bi, n + pushed, tag, &pair, err) == 0) {
            pushed++;
        } else {
            e->bad++;
            on_bad(arg, index, err);
        }
    }
    msgpack_zone_clear(inner);
    return pushed;
}

int sl_forward_decode(lua_State *L, sl_forward_decoder *d, const char *s, size_t len,
                      int batch, int n, sl_forward_bad_cb *on_bad, void *arg,
                      sl_forward_entry *e, char *err)
{
    char why[SL_CODEC_ERRLEN];
    size_t size = 0, off = 0;
    int gzip = 0, top = lua_gettop(L);

    memset(e, 0, sizeof *e);
    e->chunk[0] = '\0';
    if (batch < 0)
        batch = top + batch + 1;
    int rc = sl_mpack_measure(s, len, 1, &size, why);
    if (rc == SL_CODEC_MORE)
        return SL_FORWARD_MORE;
    if (rc != SL_CODEC_OK) {
        snprintf(err, SL_FORWARD_ERRLEN, "malformed msgpack (%s)", why);
        return SL_FORWARD_BROKEN;
    }
    e->used = size;
    msgpack_object o;
    msgpack_zone_clear(&d->outer);
    if (msgpack_unpack(s, size, &off, &d->outer, &o) != MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, SL_FORWARD_ERRLEN, "msgpack-c cannot unpack the entry");
        return SL_FORWARD_SKIP;
    }
    uint32_t k = o.type == MSGPACK_OBJECT_ARRAY ? o.via.array.size : 0;
    const msgpack_object *a = k > 0 ? o.via.array.ptr : NULL;
    if (k < 2 || k > 4) {
        snprintf(err, SL_FORWARD_ERRLEN, "not a forward entry ([tag, time, record], [tag, "
                 "[[time, record], ...]] or [tag, packed events], each with an option map): "
                 "%s%s", type_name(&o), o.type == MSGPACK_OBJECT_ARRAY ? " of the wrong size"
                 : "");
        goto skip;
    }
    if (a[0].type != MSGPACK_OBJECT_STR) {
        snprintf(err, SL_FORWARD_ERRLEN, "the tag is %s, not a string", type_name(&a[0]));
        goto skip;
    }
    switch (a[1].type) {
    case MSGPACK_OBJECT_ARRAY:                              /* Forward */
    case MSGPACK_OBJECT_STR:                                /* PackedForward */
    case MSGPACK_OBJECT_BIN:
        if (k > 3) {
            snprintf(err, SL_FORWARD_ERRLEN, "a Forward or PackedForward entry has 2 or 3 "
                     "elements, not 4");
            goto skip;
        }
        if (read_option(k == 3 ? &a[2] : NULL, e, &gzip, err) != 0)
            goto skip;
        break;
    default:                                                /* Message */
        if (k < 3) {
            snprintf(err, SL_FORWARD_ERRLEN, "a Message entry [tag, time, record] has no "
                     "record");
            goto skip;
        }
        if (read_option(k == 4 ? &a[3] : NULL, e, &gzip, err) != 0)
            goto skip;
        break;
    }

    if (a[1].type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < a[1].via.array.size; i++) {
            if (push_pair(L, batch, n + e->events, &a[0], &a[1].via.array.ptr[i], err) == 0) {
                e->events++;
            } else {
                e->bad++;
                on_bad(arg, (int)i + 1, err);
            }
        }
    } else if (a[1].type == MSGPACK_OBJECT_STR || a[1].type == MSGPACK_OBJECT_BIN) {
        const char *p = a[1].type == MSGPACK_OBJECT_STR ? a[1].via.str.ptr : a[1].via.bin.ptr;
        size_t plen = a[1].type == MSGPACK_OBJECT_STR ? a[1].via.str.size : a[1].via.bin.size;
        if (gzip) {
            if (gunzip(p, plen, &d->scratch, err) != 0)
                goto skip;
            p = d->scratch.data;
            plen = d->scratch.len;
        }
        e->events = push_packed(L, &d->inner, batch, n, &a[0], p, plen, on_bad, arg, e);
    } else if (push_event(L, batch, n, &a[0], &a[1], &a[2], err) == 0) {
        e->events = 1;
    } else {
        e->bad = 1;
        on_bad(arg, 1, err);
    }
    msgpack_zone_clear(&d->outer);
    lua_settop(L, top);
    return SL_FORWARD_OK;
skip:
    msgpack_zone_clear(&d->outer);
    lua_settop(L, top);
    e->events = 0;
    return SL_FORWARD_SKIP;
}

/* ---- Packing --------------------------------------------------------------------- */

static int write_buf(void *data, const char *p, size_t n)
{
    sl_buf_append(data, p, n);
    return 0;
}

/* Packs ms as an EventTime: seconds and nanoseconds, big-endian. */
static void pack_time(msgpack_packer *pk, double ms)
{
    double sec = floor(ms / 1000.0);
    double ns = floor((ms - sec * 1000.0) * 1e6 + 0.5);
    char b[8];
    if (!isfinite(sec) || sec < 0)
        sec = 0, ns = 0;
    if (sec > 4294967295.0)
        sec = 4294967295.0;
    if (ns > 999999999.0)
        ns = 999999999.0;
    uint32_t s = (uint32_t)sec, n = (uint32_t)ns;
    for (int i = 0; i < 4; i++) {
        b[i] = (char)(s >> (24 - 8 * i));
        b[4 + i] = (char)(n >> (24 - 8 * i));
    }
    msgpack_pack_ext(pk, 8, 0);
    msgpack_pack_ext_body(pk, b, 8);
}

int sl_forward_pack(lua_State *L, const char *tag, size_t tag_len, int recs, int times, int n,
                    double now_ms, const char *chunk, size_t chunk_len, sl_buf *out,
                    sl_forward_bad_cb *on_bad, void *arg)
{
    char err[SL_CODEC_ERRLEN];
    msgpack_packer pk;
    sl_buf events;
    int packed = 0;

    sl_buf_init(&events);
    msgpack_packer_init(&pk, &events, write_buf);
    for (int i = 1; i <= n; i++) {
        double ms = now_ms;
        if (times != 0) {
            lua_rawgeti(L, times, i);
            if (lua_type(L, -1) == LUA_TNUMBER)
                ms = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        size_t at = events.len;
        msgpack_pack_array(&pk, 2);
        pack_time(&pk, ms);
        lua_rawgeti(L, recs, i);
        if (lua_type(L, -1) != LUA_TTABLE) {
            snprintf(err, sizeof err, "a forward record must be a table, not a %s",
                     luaL_typename(L, -1));
            events.len = at;
            on_bad(arg, i, err);
        } else if (sl_mpack_encode(L, -1, &events, err) != SL_CODEC_OK) {
            events.len = at;
            on_bad(arg, i, err);
        } else {
            packed++;
        }
        lua_pop(L, 1);
    }
    if (packed > 0) {
        msgpack_packer_init(&pk, out, write_buf);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_str(&pk, tag_len);
        msgpack_pack_str_body(&pk, tag, tag_len);
        msgpack_pack_array(&pk, (size_t)packed);
        sl_buf_append(out, events.data, events.len);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str(&pk, 5);
        msgpack_pack_str_body(&pk, "chunk", 5);
        msgpack_pack_str(&pk, chunk_len);
        msgpack_pack_str_body(&pk, chunk, chunk_len);
    }
    sl_buf_free(&events);
    return packed;
}

void sl_forward_pack_ack(const char *chunk, size_t chunk_len, sl_buf *out)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, out, write_buf);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "ack", 3);
    msgpack_pack_str(&pk, chunk_len);
    msgpack_pack_str_body(&pk, chunk, chunk_len);
}
