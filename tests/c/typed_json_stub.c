/* typed_json_stub.c -- a stand-in for sl_typed_json_encode (host/typed_json.c, written on
 * another branch) so that the typed CSV tests and fuzz targets link before it is merged.
 * The Makefile links it only while host/typed_json.c does not exist. It writes the JSON of
 * the simple records the tests use (ASCII strings; " \ and control bytes escaped). */
#include "typed.h"
#include "codec.h"

#include <inttypes.h>
#include <stdio.h>

static void put_json_string(sl_buf *out, const char *s, size_t len)
{
    sl_buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            sl_buf_printf(out, "\\%c", c);
        else if (c < 0x20)
            sl_buf_printf(out, "\\u%04x", c);
        else
            sl_buf_putc(out, (char)c);
    }
    sl_buf_putc(out, '"');
}

int sl_typed_json_encode(const sl_typed_field *rec, sl_buf *out, char *err)
{
    const sl_schema *s = rec[0].v.schema;
    int first = 1;
    sl_buf_putc(out, '{');
    for (int i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];
        const sl_typed_field *v = rec + f->slot;
        char num[32];
        int n;
        if (!v->present)
            continue;
        if (!first)
            sl_buf_putc(out, ',');
        first = 0;
        put_json_string(out, f->name, f->namelen);
        sl_buf_putc(out, ':');
        switch (f->type) {
        case SL_TYPED_I64:
            sl_buf_printf(out, "%" PRId64, v->v.i64);
            break;
        case SL_TYPED_F64:
            n = sl_codec_number(v->v.f64, num);
            if (n < 0) {
                snprintf(err, SL_CODEC_ERRLEN, "json: cannot encode NaN/inf");
                return SL_CODEC_BAD;
            }
            sl_buf_append(out, num, (size_t)n);
            break;
        case SL_TYPED_BOOL:
            sl_buf_printf(out, "%s", v->v.b ? "true" : "false");
            break;
        case SL_TYPED_STRING:
            put_json_string(out, v->v.str, v->len);
            break;
        default:
            if (sl_typed_json_encode(v, out, err) != SL_CODEC_OK)
                return SL_CODEC_BAD;
            break;
        }
    }
    sl_buf_putc(out, '}');
    return SL_CODEC_OK;
}
