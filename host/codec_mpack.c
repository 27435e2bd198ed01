/* codec_mpack.c -- msgpack between bytes and Lua values, with msgpack-c.
 *
 * Decoding first measures the object with a small walker of our own, then lets msgpack-c
 * unpack exactly those bytes into a reused zone and converts the result to Lua values.
 * Encoding drives a msgpack_packer that appends to the caller's sl_buf. */
#include "codec.h"
#include "codec_shared.h"

#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The C unpacker in libmsgpackc keeps open containers in a fixed stack of
 * MSGPACK_EMBED_STACK_SIZE entries, 32 as the library is built (a value fixed inside the
 * library, so not taken from its headers), and fails beyond it; so msgpack nests at most
 * 32 deep here, not SL_CODEC_MAX_DEPTH. */
#define DECODE_DEPTH 32

/* ---- Decoder ----------------------------------------------------------------------- */

static uint32_t be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Finds the size of the first object in s[0, len) without building anything. This is
 * what makes handing bytes to msgpack-c safe: it allocates an array's or map's slots as
 * soon as it reads the header, so 5 bytes declaring 2^32 elements would ask for ~100 GB;
 * here a container is only counted, and msgpack-c is called once the whole object is
 * present (so every count is bounded by the input size). Also rejects nesting deeper
 * than msgpack-c accepts, with a clear reason.
 * Returns OK and *size; MORE; or BAD with *size set to the bytes to skip: 1 for
 * malformed bytes, the whole object when it is well-formed but holds an ext. */
static int measure(const char *s, size_t len, int allow_ext, size_t *size, char *err)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t outer[DECODE_DEPTH];   /* values still to read in each open container */
    uint64_t left = 1;              /* values still to read at this level */
    int depth = 0, has_ext = 0;
    size_t pos = 0;
    for (;;) {
        if (left == 0) {
            if (depth == 0)
                break;
            left = outer[--depth];
            continue;
        }
        left--;
        if (pos >= len)
            return SL_CODEC_MORE;
        unsigned c = p[pos];
        size_t head = 1;        /* bytes of the header, the type byte included */
        uint64_t body = 0;      /* bytes after the header */
        uint64_t items = 0;     /* values in a container */
        int container = 0;
        if (c <= 0x7f || c >= 0xe0 || (c >= 0xc0 && c <= 0xc3 && c != 0xc1)) {
            /* fixint, nil, false, true */
        } else if (c >= 0x80 && c <= 0x8f) {
            items = 2 * (uint64_t)(c & 0x0f);
            container = 1;
        } else if (c >= 0x90 && c <= 0x9f) {
            items = c & 0x0f;
            container = 1;
        } else if (c >= 0xa0 && c <= 0xbf) {
            body = c & 0x1f;
        } else {
            /* The rest carry a length or count field of lenb bytes, or a fixed body. */
            int lenb = 0, ext = 0;
            switch (c) {
            case 0xc4: case 0xd9: lenb = 1; break;                  /* bin8, str8 */
            case 0xc5: case 0xda: lenb = 2; break;                  /* bin16, str16 */
            case 0xc6: case 0xdb: lenb = 4; break;                  /* bin32, str32 */
            case 0xc7: lenb = 1; ext = 1; break;                    /* ext8 */
            case 0xc8: lenb = 2; ext = 1; break;                    /* ext16 */
            case 0xc9: lenb = 4; ext = 1; break;                    /* ext32 */
            case 0xca: body = 4; break;                             /* float32 */
            case 0xcb: body = 8; break;                             /* float64 */
            case 0xcc: case 0xd0: body = 1; break;                  /* (u)int8 */
            case 0xcd: case 0xd1: body = 2; break;                  /* (u)int16 */
            case 0xce: case 0xd2: body = 4; break;                  /* (u)int32 */
            case 0xcf: case 0xd3: body = 8; break;                  /* (u)int64 */
            case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:  /* fixext 1..16 */
                body = 1 + ((uint64_t)1 << (c - 0xd4));             /* type + data */
                has_ext = 1;
                break;
            case 0xdc: case 0xde: lenb = 2; container = 1; break;   /* array16, map16 */
            case 0xdd: case 0xdf: lenb = 4; container = 1; break;   /* array32, map32 */
            default:                                                /* 0xc1, never used */
                *size = 1;
                return fail(err, "msgpack: invalid type byte 0xc1 at byte %zu", pos);
            }
            if (lenb) {
                head = 1 + (size_t)lenb;
                if (len - pos < head)
                    return SL_CODEC_MORE;
                const unsigned char *f = p + pos + 1;
                uint64_t count = lenb == 1 ? f[0] : lenb == 2 ? be16(f) : be32(f);
                if (container)
                    items = (c == 0xde || c == 0xdf) ? 2 * count : count;
                else
                    body = count + (uint64_t)ext;           /* ext: type byte + data */
                has_ext |= ext;
            }
        }
        if (container) {
            if (depth >= DECODE_DEPTH) {
                *size = 1;
                return fail(err, "msgpack: nested deeper than %d levels at byte %zu",
                            DECODE_DEPTH, pos);
            }
            pos += head;
            if (items > 0) {
                outer[depth++] = left;
                left = items;
            }
            continue;
        }
        if (len - pos < head || len - pos - head < body)
            return SL_CODEC_MORE;
        pos += head + (size_t)body;
    }
    *size = pos;
    if (has_ext && !allow_ext)
        return fail(err, "msgpack: ext types are not supported");
    return SL_CODEC_OK;
}

static int push_object(lua_State *L, sl_shapes *sh, const msgpack_object *o, char *err);

/* Pushes a map key: strings and numbers only, as JSON objects would have them. */
static int push_key(lua_State *L, sl_shapes *sh, const msgpack_object *k, char *err)
{
    switch (k->type) {
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return push_object(L, sh, k, err);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isnan(k->via.f64))
            return fail(err, "msgpack: map key is NaN");
        return push_object(L, sh, k, err);
    default:
        return fail(err, "msgpack: map keys must be strings or numbers");
    }
}

/* Pushes the Lua value of o (a map with the shape of its keys, when they are strings):
 * stack +1 on OK; on BAD the caller restores the stack. Nesting is bounded by measure(),
 * and each level checks for stack room. */
static int push_object(lua_State *L, sl_shapes *sh, const msgpack_object *o, char *err)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        lua_pushlightuserdata(L, SL_NULL);
        return SL_CODEC_OK;
    case MSGPACK_OBJECT_BOOLEAN:
        lua_pushboolean(L, o->via.boolean);
        return SL_CODEC_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        lua_pushnumber(L, (lua_Number)o->via.u64);
        return SL_CODEC_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        lua_pushnumber(L, (lua_Number)o->via.i64);
        return SL_CODEC_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        lua_pushnumber(L, o->via.f64);
        return SL_CODEC_OK;
    case MSGPACK_OBJECT_STR:
        lua_pushlstring(L, o->via.str.ptr, o->via.str.size);
        return SL_CODEC_OK;
    case MSGPACK_OBJECT_BIN:
        lua_pushlstring(L, o->via.bin.ptr, o->via.bin.size);
        return SL_CODEC_OK;
    case MSGPACK_OBJECT_ARRAY: {
        uint32_t n = o->via.array.size;
        if (!lua_checkstack(L, 3))
            return fail(err, "msgpack: out of Lua stack");
        lua_createtable(L, (int)n, 0);
        for (uint32_t i = 0; i < n; i++) {
            if (push_object(L, sh, &o->via.array.ptr[i], err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            lua_rawseti(L, -2, (int)i + 1);
        }
        return SL_CODEC_OK;
    }
    case MSGPACK_OBJECT_MAP: {
        uint32_t n = o->via.map.size;
        if (!lua_checkstack(L, 4))
            return fail(err, "msgpack: out of Lua stack");
        lua_createtable(L, 0, (int)n);
        int node = n <= SL_SHAPE_MAX_KEYS ? 0 : -1;
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (push_key(L, sh, &kv->key, err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            if (kv->key.type == MSGPACK_OBJECT_STR)
                node = shape_step(L, sh, node, kv->key.via.str.ptr, kv->key.via.str.size, -1);
            else
                node = -1;          /* a bin or number key: no shape, keys sorted */
            if (push_object(L, sh, &kv->val, err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            lua_rawset(L, -3);      /* duplicate keys: the last wins */
        }
        sl_shape_set(L, sh, node, -1);
        return SL_CODEC_OK;
    }
    default:
        return fail(err, "msgpack: ext types are not supported");
    }
}

/* One zone per thread serves every call and is cleared each time, so decoding does not
 * malloc once the zone has grown to the largest object seen. A worker thread frees its
 * zone as it ends (sl_mpack_thread_end). */
static _Thread_local msgpack_zone zone;
static _Thread_local int zone_ready;

void sl_mpack_thread_end(void)
{
    if (zone_ready) {
        msgpack_zone_destroy(&zone);
        zone_ready = 0;
    }
}

int sl_mpack_decode(lua_State *L, const char *s, size_t len, size_t *used, char *err)
{
    size_t size = 0;
    *used = 0;
    if (!s)
        s = "";
    int rc = measure(s, len, 0, &size, err);
    if (rc == SL_CODEC_MORE)
        return SL_CODEC_MORE;
    if (rc != SL_CODEC_OK) {
        *used = size;
        return SL_CODEC_BAD;
    }
    if (!zone_ready) {
        if (!msgpack_zone_init(&zone, MSGPACK_ZONE_CHUNK_SIZE))
            return fail(err, "msgpack: out of memory");
        zone_ready = 1;
    }
    msgpack_zone_clear(&zone);  /* also after a conversion that raised */
    msgpack_object obj;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(s, size, &off, &zone, &obj);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        /* Not expected once measure() has passed the bytes; it would mean no memory. */
        msgpack_zone_clear(&zone);
        *used = 1;
        return fail(err, "msgpack: cannot unpack (code %d)", (int)ur);
    }
    int top = lua_gettop(L);
    rc = push_object(L, sl_shapes_get(L), &obj, err);
    msgpack_zone_clear(&zone);
    *used = size;       /* on BAD too: the object is whole, skip all of it */
    if (rc != SL_CODEC_OK)
        lua_settop(L, top);
    return rc;
}

int sl_mpack_measure(const char *s, size_t len, int allow_ext, size_t *size, char *err)
{
    *size = 0;
    return measure(s ? s : "", len, allow_ext, size, err);
}

int sl_mpack_push(lua_State *L, const msgpack_object *o, char *err)
{
    int top = lua_gettop(L);
    int rc = push_object(L, sl_shapes_get(L), o, err);
    if (rc != SL_CODEC_OK)
        lua_settop(L, top);
    return rc;
}

/* ---- Encoder ----------------------------------------------------------------------- */

typedef struct enc {
    lua_State *L;
    sl_buf *out;
    msgpack_packer pk;
    char *err;
    int any_number;     /* state, not records: infinities and NaN are allowed */
} enc;

static int write_buf(void *data, const char *p, size_t n)
{
    sl_buf_append(data, p, n);
    return 0;
}

static int put_number(enc *e, double x)
{
    if (!isfinite(x) && !e->any_number)
        return fail(e->err, "msgpack: cannot encode NaN/inf");
    /* The range test first: converting an out-of-range double to int64 is UB. */
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0) {
        int64_t i = (int64_t)x;
        if ((double)i == x) {
            if (i >= 0)
                msgpack_pack_uint64(&e->pk, (uint64_t)i);
            else
                msgpack_pack_int64(&e->pk, i);
            return SL_CODEC_OK;
        }
    }
    msgpack_pack_double(&e->pk, x);
    return SL_CODEC_OK;
}

static int enc_value(enc *e, int idx, int depth);

/* Whether the table at idx has more than max entries. Stack unchanged. */
static int count_over(lua_State *L, int idx, int max)
{
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (++n > max) {
            lua_pop(L, 1);
            return 1;
        }
    }
    return 0;
}

/* Rewrites the 5 bytes reserved at out[at] as the smallest map header for count entries,
 * moving the entries back over the unused header bytes. */
static void patch_map_header(sl_buf *out, size_t at, uint32_t count)
{
    unsigned char h[5];
    size_t hn;
    if (count <= 15) {
        h[0] = (unsigned char)(0x80 | count);
        hn = 1;
    } else if (count <= 0xffff) {
        h[0] = 0xde;
        h[1] = (unsigned char)(count >> 8);
        h[2] = (unsigned char)count;
        hn = 3;
    } else {
        h[0] = 0xdf;
        h[1] = (unsigned char)(count >> 24);
        h[2] = (unsigned char)(count >> 16);
        h[3] = (unsigned char)(count >> 8);
        h[4] = (unsigned char)count;
        hn = 5;
    }
    char *base = out->data + at;
    if (hn < 5) {
        memmove(base + hn, base + 5, out->len - at - 5);
        out->len -= 5 - hn;
    }
    memcpy(base, h, hn);
}

/* A map written in the order lua_next gives its entries. The entry count is known only
 * after the walk: reserve the largest header, then shrink it. */
static int enc_map_as_is(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    size_t at = e->out->len;
    sl_buf_append(e->out, "\0\0\0\0\0", 5);
    uint32_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING) {
            size_t klen;
            const char *k = lua_tolstring(L, -2, &klen);
            msgpack_pack_str_with_body(&e->pk, k, klen);
        } else if (kt == LUA_TNUMBER) {
            if (put_number(e, lua_tonumber(L, -2)) != SL_CODEC_OK)
                return SL_CODEC_BAD;
        } else {
            return fail(e->err, "msgpack: cannot encode a table key of type %s",
                        lua_typename(L, kt));
        }
        if (enc_value(e, lua_gettop(L), depth + 1) != SL_CODEC_OK)
            return SL_CODEC_BAD;
        lua_pop(L, 1);
        count++;
    }
    patch_map_header(e->out, at, count);
    return SL_CODEC_OK;
}

static int enc_table(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    if (depth > SL_CODEC_MAX_DEPTH || !lua_checkstack(L, 4))
        return fail(e->err, "msgpack: nested too deep (a cycle?)");
    size_t n = lua_objlen(L, idx);
    if (n > 0 && is_array(L, idx, n)) {
        msgpack_pack_array(&e->pk, n);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, (int)i);
            if (enc_value(e, lua_gettop(L), depth + 1) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            lua_pop(L, 1);
        }
        return SL_CODEC_OK;
    }
    /* A map: its entries gathered, then written in order (codec_keys.c); but state
     * (e->any_number) may hold tables of millions of keys, which have no shape and need
     * no order: one of more than SL_SHAPE_MAX_KEYS keys is written as it comes. */
    if (e->any_number && count_over(L, idx, SL_SHAPE_MAX_KEYS) && !sl_shaped(L, idx))
        return enc_map_as_is(e, idx, depth);
    sl_object ob;
    int rc = SL_CODEC_OK, kt = 0;
    sl_object_begin(L, idx, &ob);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if ((kt = sl_object_add(L, &ob)) != 0)
            break;
    }
    if (kt != 0) {
        sl_object_end(L, &ob);
        return fail(e->err, "msgpack: cannot encode a table key of type %s",
                    lua_typename(L, kt));
    }
    sl_object_sort(&ob);
    msgpack_pack_map(&e->pk, ob.n);
    for (size_t i = 0; i < ob.n && rc == SL_CODEC_OK; i++) {
        const sl_entry *en = sl_object_entry(&ob, i);
        if (en->s != NULL)
            msgpack_pack_str_with_body(&e->pk, en->s, en->len);
        else if ((rc = put_number(e, en->num)) != SL_CODEC_OK)
            break;
        int vi = sl_object_value(L, &ob, en);
        rc = enc_value(e, vi, depth + 1);
        if (en->slot == 0)
            lua_settop(L, vi - 1);
    }
    sl_object_end(L, &ob);
    return rc;
}

/* Appends the value at the absolute index idx. May leave the stack dirty on BAD;
 * sl_mpack_encode restores it. */
static int enc_value(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    int t = lua_type(L, idx);
    switch (t) {
    case LUA_TNIL:
        msgpack_pack_nil(&e->pk);
        return SL_CODEC_OK;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            msgpack_pack_true(&e->pk);
        else
            msgpack_pack_false(&e->pk);
        return SL_CODEC_OK;
    case LUA_TNUMBER:
        return put_number(e, lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        msgpack_pack_str_with_body(&e->pk, s, len);
        return SL_CODEC_OK;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == SL_NULL) {
            msgpack_pack_nil(&e->pk);
            return SL_CODEC_OK;
        }
        break;
    case LUA_TTABLE:
        return enc_table(e, idx, depth);
    default:
        break;
    }
    return fail(e->err, "msgpack: cannot encode a %s", lua_typename(L, t));
}

static int encode(lua_State *L, int idx, sl_buf *out, char *err, int any_number)
{
    int top = lua_gettop(L);
    idx = absolute_index(L, idx);
    size_t len0 = out->len;
    enc e = { L, out, { 0 }, err, any_number };
    msgpack_packer_init(&e.pk, out, write_buf);
    if (enc_value(&e, idx, 1) != SL_CODEC_OK) {
        lua_settop(L, top);
        out->len = len0;    /* no partial output */
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}

int sl_mpack_encode(lua_State *L, int idx, sl_buf *out, char *err)
{
    return encode(L, idx, out, err, 0);
}

int sl_mpack_encode_state(lua_State *L, int idx, sl_buf *out, char *err)
{
    return encode(L, idx, out, err, 1);
}
