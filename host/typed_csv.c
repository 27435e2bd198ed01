/* typed_csv.c -- CSV records of a schema (typed.h): one framed record decoded column by
 * column straight into a record's slots, and a record written back as one CSV line.
 *
 * Cells are split, unquoted, read and written as sl_csv_decode and sl_csv_encode do
 * (codec_csv.c, with the cell rules of csv_cell.h), so the same text gives the same value
 * and the same value the same text on either path. Strings point into the record's bytes;
 * only a quoted cell with doubled quotes is rewritten, into the batch's arena. */
#include "typed.h"
#include "codec.h"
#include "codec_shared.h"
#include "csv_cell.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The bytes of a wrong value that a reason quotes; the rest is cut to "...". */
#define SHOWN 40

/* ---- Decoding ---------------------------------------------------------------------- */

/* Returns BAD for a cell the field's type cannot take, naming the field and quoting the
 * cell's text (control characters as spaces, so the reason stays one line). */
static __attribute__((noinline)) int wrong_cell(char *err, const sl_schema_field *f,
                                                const char *p, size_t n)
{
    char shown[SHOWN + 1];
    size_t k = n < SHOWN ? n : SHOWN;
    for (size_t i = 0; i < k; i++)
        shown[i] = (unsigned char)p[i] < 0x20 ? ' ' : p[i];
    shown[k] = '\0';
    return fail(err, "field %s: want %s, got \"%s\"%s", f->name,
                sl_typed_type_names[f->type], shown, n > k ? "..." : "");
}

/* Whether p[0, n) is an i64: a whole decimal number of csv_scan's grammar with an
 * integral value in the int64 range. An integer of digits only is read exactly, whatever
 * its length (the table path keeps one of more than 15 digits as text, lest a double
 * round it; an i64 does not round); one with a fraction or an exponent ("1.5e3") through
 * the same double as the table path. */
static int read_i64(const char *p, size_t n, int64_t *out)
{
    csv_decimal d;
    double v;
    if (!csv_scan(p, n, &d))
        return 0;
    if (d.integral) {
        /* 19 digits never wrap a uint64; csv_scan allows no leading zeros, so more are
         * out of range. */
        if (d.ndig > 19 || d.mant > (uint64_t)INT64_MAX + d.neg)
            return 0;
        *out = d.neg ? (d.mant == 0 ? 0 : -(int64_t)(d.mant - 1) - 1) : (int64_t)d.mant;
        return 1;
    }
    if (decimal_value(p, n, d.neg, d.mant, d.ndig, d.exp10, &v) != 0)
        return 0;
    /* The range test first: converting an out-of-range double to int64 is UB. */
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
        return 0;
    *out = (int64_t)v;
    return (double)*out == v;
}

/* Whether p[0, n) is an f64: a whole decimal number of csv_scan's grammar, the same
 * double as the table path gives (an integer of more than 15 digits too, which the table
 * path keeps as text: the field's type says it is a number), not overflowing. */
static int read_f64(const char *p, size_t n, double *out)
{
    csv_decimal d;
    return csv_scan(p, n, &d)
        && decimal_value(p, n, d.neg, d.mant, d.ndig, d.exp10, out) == 0 && !isinf(*out);
}

/* Reads the cell p[0, n) into the field's slot v. A quoted cell of a number or bool field
 * comes here with its content, read the same way as an unquoted one ("\"12\"" is 12):
 * the field's type, not the quotes, says what the cell is. */
static inline int put_cell(const sl_schema_field *f, sl_typed_field *v, const char *p,
                           size_t n, char *err)
{
    switch (f->type) {
    case SL_TYPED_STRING:
        v->v.str = p;
        v->len = (uint32_t)n;
        break;
    case SL_TYPED_I64:
        if (!read_i64(p, n, &v->v.i64))
            return wrong_cell(err, f, p, n);
        break;
    case SL_TYPED_F64:
        if (!read_f64(p, n, &v->v.f64))
            return wrong_cell(err, f, p, n);
        break;
    default:    /* SL_TYPED_BOOL; records were refused before */
        if (n == 4 && memcmp(p, "true", 4) == 0)
            v->v.b = 1;
        else if (n == 5 && memcmp(p, "false", 5) == 0)
            v->v.b = 0;
        else
            return wrong_cell(err, f, p, n);
        break;
    }
    v->present = 1;
    return SL_CODEC_OK;
}

/* The quoted cell whose opening quote is at p[pos] and whose content holds doubled
 * quotes: sets *fend past its closing quote and, when keep, writes the content without
 * the doubling at the arena's end ((*cell, *n); a->used is not moved). OK, BAD for a
 * missing closing quote, or SL_TYPED_FULL. */
static __attribute__((noinline)) int unescape(const char *p, size_t len, size_t pos,
                                              int keep, sl_typed_arena *a,
                                              const char **cell, size_t *n, size_t *fend,
                                              char *err)
{
    char *o = a->base + a->used, *start = o;
    size_t i = pos + 1, left = a->cap - a->used;
    for (;;) {
        const char *q = memchr(p + i, '"', len - i);
        if (!q)
            return fail(err, "csv: unterminated quoted field at byte %zu", pos);
        size_t qi = (size_t)(q - p), seg = qi - i + 1;  /* + 1: a quote of a pair */
        int pair = qi + 1 < len && p[qi + 1] == '"';
        if (keep) {
            if (seg > left)
                return SL_TYPED_FULL;
            memcpy(o, p + i, seg - !pair);
            o += seg - !pair;
            left -= seg - !pair;
        }
        if (!pair) {
            *cell = start;
            *n = (size_t)(o - start);
            *fend = qi + 1;
            return SL_CODEC_OK;
        }
        i = qi + 2;
    }
}

int sl_typed_csv_decode(const sl_schema *s, const int *col_field, int ncols, const char *p,
                        size_t len, sl_typed_field *rec, sl_typed_arena *a, char *err)
{
    size_t used0 = a->used, pos = 0;
    int col = 0, wrong = 0;
    if (!p)
        p = "";     /* an empty record from a caller with no buffer */
    sl_typed_clear(s, rec);
    for (;;) {
        const sl_schema_field *f = NULL;
        const char *cell;
        size_t n, fend;
        int quoted = 0;
        if (col < ncols && col_field[col] >= 0) {
            if (col_field[col] >= s->nfields) {
                a->used = used0;
                return fail(err, "csv: column %d names field %d of a schema of %d",
                            col + 1, col_field[col], s->nfields);
            }
            f = &s->fields[col_field[col]];
            if (f->type == SL_TYPED_RECORD) {
                a->used = used0;
                return fail(err, "field %s: a nested record cannot be a CSV column",
                            f->name);
            }
        }
        if (pos < len && p[pos] == '"') {
            /* As push_quoted in codec_csv.c: a slice of the input unless quotes are
             * doubled; then a comma or the end must follow. */
            const char *q = memchr(p + pos + 1, '"', len - pos - 1);
            quoted = 1;
            if (q && !((size_t)(q - p) + 1 < len && q[1] == '"')) {
                cell = p + pos + 1;
                n = (size_t)(q - cell);
                fend = (size_t)(q - p) + 1;
            } else {
                int rc = unescape(p, len, pos, f != NULL, a, &cell, &n, &fend, err);
                if (rc != SL_CODEC_OK) {
                    a->used = used0;
                    return rc;
                }
                /* Kept for a string; a number or a bool is read from it at once. */
                if (f != NULL && f->type == SL_TYPED_STRING)
                    a->used += n;
            }
            if (fend < len && p[fend] != ',') {
                a->used = used0;
                return fail(err, "csv: unexpected character after closing quote at byte %zu",
                            fend);
            }
        } else {
            const char *c = memchr(p + pos, ',', len - pos);
            fend = c ? (size_t)(c - p) : len;
            cell = p + pos;
            n = fend - pos;
        }
        /* An unquoted empty cell is absent. After a wrong value the rest is only split:
         * the record is BAD, yet a wrong column count or quoting is the reason to give. */
        if (f != NULL && (n > 0 || quoted) && !wrong)
            wrong = put_cell(f, rec + f->slot, cell, n, err) != SL_CODEC_OK;
        col++;
        if (fend >= len)
            break;
        pos = fend + 1;     /* past the comma; a trailing comma makes one more cell */
    }
    if (col != ncols) {
        a->used = used0;
        return fail(err, "csv: record has %d fields, header has %d", col, ncols);
    }
    if (wrong) {
        a->used = used0;
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}

/* ---- Encoding ---------------------------------------------------------------------- */

static inline void put_char(sl_buf *out, char c)
{
    *room(out, 1) = c;
    out->len++;
}

/* Appends the i64's digits, as sl_codec_number writes an integral double. */
static inline void put_i64(sl_buf *out, int64_t i)
{
    out->len += (size_t)sl_codec_int(i, room(out, 21));
}

int sl_typed_csv_encode(const sl_typed_field *rec, const int *col_field, int ncols,
                        sl_buf *out, char *err)
{
    const sl_schema *s = rec[0].v.schema;
    size_t len0 = out->len;
    for (int c = 0; c < ncols; c++) {
        if (c > 0)
            put_char(out, ',');
        int fi = col_field[c];
        if (fi < 0)
            continue;                   /* a column not in the schema: empty */
        if (fi >= s->nfields) {
            out->len = len0;
            return fail(err, "csv: column %d names field %d of a schema of %d", c + 1, fi,
                        s->nfields);
        }
        const sl_schema_field *f = &s->fields[fi];
        const sl_typed_field *v = rec + f->slot;
        if (!v->present)
            continue;                   /* absent: an empty cell, as nil is */
        switch (f->type) {
        case SL_TYPED_I64:
            put_i64(out, v->v.i64);
            break;
        case SL_TYPED_F64: {
            int n = sl_codec_number(v->v.f64, room(out, 32));
            if (n < 0) {
                out->len = len0;
                return fail(err, "csv: field %s: cannot encode NaN/inf", f->name);
            }
            out->len += (size_t)n;
            break;
        }
        case SL_TYPED_BOOL:
            if (v->v.b)
                sl_buf_append(out, "true", 4);
            else
                sl_buf_append(out, "false", 5);
            break;
        case SL_TYPED_STRING:
            csv_put_text(out, v->v.str, v->len);
            break;
        default: {                      /* SL_TYPED_RECORD: its JSON, quoted */
            size_t from = out->len;
            if (sl_typed_json_encode(v, out, err) != SL_CODEC_OK) {
                out->len = len0;
                return SL_CODEC_BAD;
            }
            csv_quote_tail(out, from);
            break;
        }
        }
    }
    put_char(out, '\n');
    return SL_CODEC_OK;
}
