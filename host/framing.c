/* framing.c -- records out of a byte stream (see framing.h): where each record ends, what
 * to skip (a BOM, blank lines, overlong records as they arrive, runs of bytes that are not
 * msgpack), and the decoding of each record by the codecs.
 *
 * Pure over the framer's buffer: it reads and writes nothing but the framer and the Lua
 * stack, so a caller may drive it from any source of bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "typed_lua.h"

/* What one step found, besides the public answers: bytes consumed, nothing to say. */
enum { SKIP = -1, FULL = -2 };     /* FULL: a typed record's strings need a new arena */

const char *const sl_framer_formats[] = {"lines", "json", "csv", "msgpack", NULL};

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: reader: out of memory\n");
    abort();
}

/* ---- the buffer --------------------------------------------------------------------- */

void sl_framer_init(sl_framer *f, int format, size_t max_record)
{
    memset(f, 0, sizeof *f);
    f->format = format;
    f->max_record = max_record;
    f->line = 1;
}

void sl_framer_start_at(sl_framer *f, int64_t offset, int64_t line)
{
    f->base = offset;
    f->line = line;
    f->bom_done = offset > 0;
}

char *sl_framer_reserve(sl_framer *f, size_t n)
{
    if (f->pos > 0) {
        memmove(f->buf, f->buf + f->pos, f->len - f->pos);
        f->base += (int64_t)f->pos;
        f->len -= f->pos;
        f->pos = 0;
    }
    if (f->cap - f->len < n) {
        size_t cap = f->len + n;
        char *p = realloc(f->buf, cap);
        if (p == NULL)
            out_of_memory();
        f->buf = p;
        f->cap = cap;
    }
    return f->buf + f->len;
}

void sl_framer_commit(sl_framer *f, size_t n)
{
    f->len += n;
}

void sl_framer_append(sl_framer *f, const char *data, size_t n)
{
    if (n == 0)
        return;
    memcpy(sl_framer_reserve(f, n), data, n);
    f->len += n;
}

void sl_framer_end_line(sl_framer *f)
{
    if (f->format == SL_FRAMER_MSGPACK || f->len == f->pos || f->buf[f->len - 1] == '\n')
        return;
    *sl_framer_reserve(f, 1) = '\n';
    f->len++;
}

void sl_framer_position(const sl_framer *f, int64_t *off, int64_t *line)
{
    if (f->skipping) {
        *off = f->skip_off;
        *line = f->skip_line;
    } else {
        *off = f->base + (int64_t)f->pos;
        *line = f->line;
    }
}

void sl_framer_free(sl_framer *f)
{
    free(f->slots);
    free(f->arena.base);
    free(f->col_field);
    f->slots = NULL;
    f->arena.base = NULL;
    f->col_field = NULL;
    f->slots_cap = f->ncols = 0;
    free(f->buf);
    f->buf = NULL;
    f->cap = f->len = f->pos = 0;
}

/* ---- answers ------------------------------------------------------------------------ */

/* Describes a bad record in out; returns SL_FRAME_BAD. */
static int bad(sl_frame *out, int64_t line, int64_t off, const char *reason, const char *raw,
               size_t rawlen)
{
    out->line = line;
    out->off = off;
    out->reason = reason;
    out->raw = raw;
    out->rawlen = rawlen;
    return SL_FRAME_BAD;
}

static int too_long(sl_framer *f, sl_frame *out, int64_t line, int64_t off, const char *raw,
                    size_t rawlen)
{
    snprintf(f->err, sizeof f->err, "record longer than %zu bytes", f->max_record);
    return bad(out, line, off, f->err, raw, rawlen);
}

/* An overlong record starts at buf[pos] and is not complete in the buffer: it is bad, and
 * skipped as it arrives. */
static int too_long_pending(sl_framer *f, sl_frame *out)
{
    size_t avail = f->len - f->pos;
    int64_t line = f->line, off = f->base + (int64_t)f->pos;

    f->skipping = 1;
    f->skip_off = off;
    f->skip_line = line;
    if (f->format == SL_FRAMER_MSGPACK) {
        f->skip_objs = 1;
        f->line++;
    }
    return too_long(f, out, line, off, f->buf + f->pos, avail);
}

/* Answers for the run of undecodable msgpack bytes collected so far, as one bad record. */
static int close_run(sl_framer *f, sl_frame *out)
{
    f->run_open = 0;
    return bad(out, f->run_line, f->run_off, f->run_reason, f->run_raw, f->run_rawlen);
}

/* ---- skipping ----------------------------------------------------------------------- */

/* Skips a UTF-8 byte order mark at the start of a text stream. Returns 0 when the bytes
 * so far could still be the start of one. */
static int skip_bom(sl_framer *f, int eof)
{
    static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
    size_t avail = f->len - f->pos;

    if (avail == 0 && !eof)
        return 0;                   /* nothing read yet */
    if (f->format != SL_FRAMER_MSGPACK && avail > 0
        && memcmp(f->buf + f->pos, bom, avail < 3 ? avail : 3) == 0) {
        if (avail < 3 && !eof)
            return 0;
        if (avail >= 3)
            f->pos += 3;
    }
    f->bom_done = 1;
    return 1;
}

/* Drops the rest of an overlong text record, through its '\n'. Returns 0 when the
 * buffer ran out first. */
static int skip_line(sl_framer *f)
{
    const char *nl = memchr(f->buf + f->pos, '\n', f->len - f->pos);

    if (nl == NULL) {
        f->pos = f->len;
        return 0;
    }
    f->pos = (size_t)(nl - f->buf) + 1;
    f->line++;
    f->skipping = 0;
    return 1;
}

static uint64_t be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = v << 8 | *p++;
    return v;
}

/* Reads the msgpack header at p: its size in *hdr, then *payload bytes of data and
 * *children nested objects follow. Returns 1, 0 when avail is too short, -1 on 0xc1. */
static int mpack_header(const unsigned char *p, size_t avail, size_t *hdr,
                        uint64_t *payload, uint64_t *children)
{
    unsigned b = p[0];
    size_t lenbytes = 0;
    uint64_t n;
    enum { DATA, EXT, ARRAY, MAP } kind = DATA;

    *hdr = 1;
    *payload = 0;
    *children = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 1;
    if (b <= 0x8f) { *children = 2 * (uint64_t)(b & 0x0f); return 1; }
    if (b <= 0x9f) { *children = b & 0x0f; return 1; }
    if (b <= 0xbf) { *payload = b & 0x1f; return 1; }
    switch (b) {
    case 0xca: case 0xce: case 0xd2: *payload = 4; return 1;
    case 0xcb: case 0xcf: case 0xd3: *payload = 8; return 1;
    case 0xcc: case 0xd0: *payload = 1; return 1;
    case 0xcd: case 0xd1: *payload = 2; return 1;
    case 0xd4: *payload = 2; return 1;                  /* fixext: type byte + data */
    case 0xd5: *payload = 3; return 1;
    case 0xd6: *payload = 5; return 1;
    case 0xd7: *payload = 9; return 1;
    case 0xd8: *payload = 17; return 1;
    case 0xc4: case 0xd9: lenbytes = 1; break;          /* bin8, str8 */
    case 0xc5: case 0xda: lenbytes = 2; break;
    case 0xc6: case 0xdb: lenbytes = 4; break;
    case 0xc7: lenbytes = 1; kind = EXT; break;
    case 0xc8: lenbytes = 2; kind = EXT; break;
    case 0xc9: lenbytes = 4; kind = EXT; break;
    case 0xdc: lenbytes = 2; kind = ARRAY; break;
    case 0xdd: lenbytes = 4; kind = ARRAY; break;
    case 0xde: lenbytes = 2; kind = MAP; break;
    case 0xdf: lenbytes = 4; kind = MAP; break;
    default: return -1;                                 /* 0xc1, never used */
    }
    if (avail < 1 + lenbytes)
        return 0;
    n = be(p + 1, lenbytes);
    *hdr = 1 + lenbytes;
    switch (kind) {
    case DATA: *payload = n; break;
    case EXT: *payload = n + 1; break;
    case ARRAY: *children = n; break;
    case MAP: *children = 2 * n; break;
    }
    return 1;
}

/* Drops an overlong msgpack object by walking its headers, so it is never buffered
 * whole. Returns 0 when the buffer ran out first. */
static int skip_mpack(sl_framer *f)
{
    while (f->skip_objs > 0 || f->skip_bytes > 0) {
        size_t avail = f->len - f->pos, hdr;
        uint64_t payload, children;
        int rc;

        if (f->skip_bytes > 0) {
            size_t k = f->skip_bytes < avail ? (size_t)f->skip_bytes : avail;
            f->pos += k;
            f->skip_bytes -= k;
            if (f->skip_bytes > 0)
                return 0;
            continue;
        }
        if (avail == 0)
            return 0;
        rc = mpack_header((const unsigned char *)f->buf + f->pos, avail, &hdr, &payload,
                          &children);
        if (rc == 0)
            return 0;
        if (rc < 0)
            break;          /* not msgpack: let the decoder report what follows */
        f->pos += hdr;
        f->skip_objs += children - 1;
        f->skip_bytes = payload;
    }
    f->skip_objs = 0;
    f->skip_bytes = 0;
    f->skipping = 0;
    return 1;
}

/* ---- typed records ------------------------------------------------------------------ */

static void *alloc_or_die(void *p)
{
    if (p == NULL) {
        fprintf(stderr, "sluice: framing: out of memory\n");
        abort();
    }
    return p;
}

void sl_framer_set_schema(sl_framer *f, const sl_schema *s)
{
    f->schema = s;
}

sl_typed_field *sl_framer_slots(sl_framer *f, int max)
{
    if (f->slots_cap < max) {
        free(f->slots);
        f->slots = alloc_or_die(malloc((size_t)max * (size_t)f->schema->nslots
                                       * sizeof *f->slots));
        f->slots_cap = max;
    }
    if (f->arena.base == NULL) {    /* a record's rewritten strings are never longer */
        f->arena.cap = f->max_record + 64;
        f->arena.base = alloc_or_die(malloc(f->arena.cap));
    }
    return f->slots;
}

/* csv: the field of each column named by the array at idx. Stack unchanged. */
static void typed_columns(sl_framer *f, lua_State *L, int idx)
{
    free(f->col_field);
    f->col_field = sl_schema_columns(L, idx, f->schema, &f->ncols);
}

/* Decodes the framed record s[0, len) into f->dst: SL_CODEC_OK, BAD or SL_TYPED_FULL. */
static int typed_decode(sl_framer *f, const char *s, size_t len)
{
    if (f->format == SL_FRAMER_CSV)
        return sl_typed_csv_decode(f->schema, f->col_field, f->ncols, s, len, f->dst,
                                   &f->arena, f->err);
    return sl_typed_json_decode(f->schema, s, len, f->dst, &f->arena, f->err);
}

/* ---- one record of each format ------------------------------------------------------ */

/* lines and json: one record per '\n'. */
static int next_line(sl_framer *f, lua_State *L, int eof, sl_frame *out)
{
    const char *s = f->buf + f->pos, *nl;
    size_t avail = f->len - f->pos, end, len, i;
    int64_t line = f->line, off = f->base + (int64_t)f->pos;

    nl = memchr(s, '\n', avail);
    if (nl != NULL) {
        end = (size_t)(nl - s);
        f->pos += end + 1;
        f->line++;
    } else if (eof) {
        end = avail;                /* the last line has no '\n' */
        f->pos += end;
        if (f->partial_bad)
            return bad(out, line, off, "partial record at end of input (no newline)", s, end);
    } else {
        if (avail <= f->max_record + 1)     /* + 1: a '\r' may end a longest record */
            return SL_FRAME_WAIT;
        return too_long_pending(f, out);
    }
    len = end > 0 && s[end - 1] == '\r' ? end - 1 : end;
    if (len > f->max_record)
        return too_long(f, out, line, off, s, len);
    if (f->format == SL_FRAMER_LINES) {
        lua_pushlstring(L, s, len);                     /* line */
        return SL_FRAME_RECORD;
    }
    for (i = 0; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
        ;
    if (i == len)
        return SKIP;                                    /* blank: no record */
    if (f->schema != NULL) {
        int rc = typed_decode(f, s, len);
        if (rc == SL_CODEC_OK || rc == SL_TYPED_FULL)
            return rc == SL_CODEC_OK ? SL_FRAME_RECORD : FULL;
    } else if (sl_json_decode(L, s, len, f->err) == SL_CODEC_OK) {     /* value */
        return SL_FRAME_RECORD;
    }
    return bad(out, line, off, f->err, s, len);
}

/* csv: sl_csv_frame finds the record's end, so quoted fields may hold newlines. */
static int next_csv(sl_framer *f, lua_State *L, int keys_idx, int eof, sl_frame *out)
{
    const char *s = f->buf + f->pos;
    size_t avail = f->len - f->pos, len = 0, used = 0, i;
    int64_t line = f->line, off = f->base + (int64_t)f->pos;
    int rc;

    rc = sl_csv_frame(s, avail, eof, &len, &used);
    if (eof && f->partial_bad && (used == avail ? avail > 0 && s[avail - 1] != '\n' : 0)) {
        f->pos = f->len;
        return bad(out, line, off, "partial record at end of input (no newline)", s, avail);
    }
    if (rc == SL_CODEC_MORE || used == 0) {
        if (eof) {                  /* cannot happen by sl_csv_frame's contract */
            len = used = avail;
        } else if (avail <= f->max_record + 1) {
            return SL_FRAME_WAIT;
        } else {
            return too_long_pending(f, out);
        }
    }
    if (used > avail)
        used = avail;
    if (len > used)
        len = used;
    for (i = 0; i < used; i++)
        if (s[i] == '\n')
            f->line++;
    f->pos += used;
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (len == 0)
        return SKIP;                                    /* blank line: no record */
    if (len > f->max_record)
        return too_long(f, out, line, off, s, len);
    if (f->want_header) {
        if (sl_csv_decode(L, s, len, 0, f->err) != SL_CODEC_OK)
            return bad(out, line, off, f->err, s, len);
        f->want_header = 0;
        if (f->schema != NULL)
            typed_columns(f, L, lua_gettop(L));
        return SL_FRAME_HEADER;                         /* names */
    }
    if (f->schema != NULL) {
        if (f->col_field == NULL && keys_idx != 0 && lua_istable(L, keys_idx))
            typed_columns(f, L, keys_idx);
        rc = typed_decode(f, s, len);
        if (rc == SL_CODEC_OK || rc == SL_TYPED_FULL)
            return rc == SL_CODEC_OK ? SL_FRAME_RECORD : FULL;
    } else if (sl_csv_decode(L, s, len, f->keyed ? keys_idx : 0, f->err) == SL_CODEC_OK) {
        return SL_FRAME_RECORD;                         /* record */
    }
    return bad(out, line, off, f->err, s, len);
}

/* msgpack: a stream of objects. Bytes the decoder rejects are skipped one by one (as
 * sl_mpack_decode asks) and answered for together, as one bad record per run, before
 * whatever ends the run (which is then decoded again on the next call). */
static int next_mpack(sl_framer *f, lua_State *L, int eof, sl_frame *out)
{
    const char *s = f->buf + f->pos;
    size_t avail = f->len - f->pos, used = 0;
    int64_t line = f->line, off = f->base + (int64_t)f->pos;
    int rc;

    if (f->schema != NULL) {
        size_t size = 0;
        char why[SL_CODEC_ERRLEN];

        rc = sl_typed_mpack_decode(f->schema, s, avail, &used, f->dst, f->err);
        /* a well-formed object of the wrong shape is one bad record, not bytes to skip */
        if (rc == SL_CODEC_BAD && sl_mpack_measure(s, avail, 0, &size, why) == SL_CODEC_OK) {
            if (f->run_open)
                return close_run(f, out);       /* the object comes again next */
            f->pos += size;
            f->line++;
            return bad(out, line, off, f->err, s, size);
        }
    } else {
        rc = sl_mpack_decode(L, s, avail, &used, f->err);  /* value | -- */
    }
    if (rc == SL_CODEC_BAD) {
        if (used == 0 || used > avail)
            used = 1;
        if (!f->run_open) {
            f->run_open = 1;
            f->run_off = off;
            f->run_line = line;
            f->run_rawlen = 0;
            snprintf(f->run_reason, sizeof f->run_reason, "%s", f->err);
        }
        if (f->run_rawlen < sizeof f->run_raw) {
            size_t k = sizeof f->run_raw - f->run_rawlen;
            memcpy(f->run_raw + f->run_rawlen, s, used < k ? used : k);
            f->run_rawlen += used < k ? used : k;
        }
        f->pos += used;
        return SKIP;
    }
    if (f->run_open) {
        if (rc == SL_CODEC_OK && f->schema == NULL)
            lua_pop(L, 1);                              /* -- */
        return close_run(f, out);
    }
    if (rc == SL_CODEC_MORE) {
        if (eof) {
            f->pos = f->len;
            f->line++;
            return bad(out, line, off, "msgpack: truncated object at end of input", s, avail);
        }
        if (avail <= f->max_record)
            return SL_FRAME_WAIT;
        return too_long_pending(f, out);
    }
    f->pos += used;
    f->line++;
    if (used > f->max_record) {
        if (f->schema == NULL)
            lua_pop(L, 1);                              /* -- */
        return too_long(f, out, line, off, s, used);
    }
    return SL_FRAME_RECORD;                             /* value */
}

/* Frames the next record at buf[pos]: returns SL_FRAME_RECORD with its value pushed and
 * *out saying where it starts, or any other answer of sl_framer_fill's. Blank lines (json,
 * csv), a BOM and the bytes of a skipped record are consumed without an answer. */
static int next(sl_framer *f, lua_State *L, int keys_idx, int eof, sl_frame *out)
{
    int rc;

    for (;;) {
        if (!f->bom_done && !skip_bom(f, eof))
            return SL_FRAME_WAIT;
        if (f->skipping && !(f->format == SL_FRAMER_MSGPACK ? skip_mpack(f) : skip_line(f)))
            return SL_FRAME_WAIT;
        if (f->pos == f->len)
            return f->run_open ? close_run(f, out) : SL_FRAME_WAIT;
        size_t pos = f->pos;
        int64_t line = f->line;

        f->err[0] = '\0';
        out->off = f->base + (int64_t)f->pos;       /* where a record starts (bad() sets */
        out->line = f->line;                        /* its own: a run starts earlier) */
        if (f->format == SL_FRAMER_MSGPACK)
            rc = next_mpack(f, L, eof, out);
        else if (f->format == SL_FRAMER_CSV)
            rc = next_csv(f, L, keys_idx, eof, out);
        else
            rc = next_line(f, L, eof, out);
        if (rc == FULL && f->arena.used > 0) {
            f->pos = pos;           /* framed again, into the next batch's empty arena */
            f->line = line;
        } else if (rc == FULL) {            /* not even into an empty one */
            rc = bad(out, line, out->off, "typed record: its strings need more room than "
                     "max_record", f->buf + pos, f->pos - pos);
        }
        if (rc != SKIP)
            return rc;
    }
}

int sl_framer_fill(sl_framer *f, lua_State *L, int keys_idx, int eof, int batch_idx, int *n,
                   int max, sl_frame *first, sl_frame *out)
{
    int k = *n, rc = SL_FRAME_RECORD;

    if (batch_idx < 0)                  /* values are pushed above it: make it absolute */
        batch_idx = lua_gettop(L) + batch_idx + 1;
    if (keys_idx < 0)
        keys_idx = lua_gettop(L) + keys_idx + 1;
    if (f->schema != NULL) {
        sl_typed_field *slots = sl_framer_slots(f, max);
        int nslots = f->schema->nslots;

        if (k == 0)
            f->arena.used = 0;
        while (k < max) {
            f->dst = slots + (size_t)k * (size_t)nslots;
            rc = next(f, L, keys_idx, eof, out);
            if (rc == FULL) {               /* (only with records before it: see next) */
                rc = SL_FRAME_RECORD;       /* deliver these; the record comes next */
                break;
            }
            if (rc != SL_FRAME_RECORD)
                break;
            if (k == 0)
                *first = *out;
            k++;
        }
        *n = k;
        return rc;
    }
    while (k < max) {
        rc = next(f, L, keys_idx, eof, out);
        if (rc != SL_FRAME_RECORD)
            break;
        if (k == 0)
            *first = *out;
        lua_rawseti(L, batch_idx, ++k);                 /* -- */
    }
    *n = k;
    return rc;
}
