/* csv_cell.h -- the rules for one CSV cell that the table codec (codec_csv.c) and the typed
 * codec (typed_csv.c) both apply, so that the same text gives the same value and the same
 * value the same text on either path.
 *
 * Reading: which unquoted text is a number, and its value (csv_scan, csv_number).
 * Writing: when a string cell is quoted (csv_put_text), and quoting text already written,
 * such as a nested value's JSON (csv_quote_tail). All static inline: they run per cell. */
#ifndef SL_CSV_CELL_H
#define SL_CSV_CELL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "codec_shared.h"

/* A decimal number's text as csv_scan read it. */
typedef struct csv_decimal {
    int neg;            /* a leading '-' */
    int ndig;           /* digits, integer and fraction parts (no leading zeros but "0") */
    int exp10;          /* the power of ten that scales mant */
    int integral;       /* digits only: no fraction, no exponent */
    uint64_t mant;      /* all the digits as an integer (wrapped when ndig > 19) */
} csv_decimal;

/* Whether p[0, n) is a whole decimal number, -?\d+(\.\d+)?([eE][+-]?\d+)?, read into *d.
 * Text that a number would not give back is not one: a leading "+" and a leading zero
 * ("02134", a code). Checking the characters first keeps strtod (in decimal_value) from
 * accepting "inf", "nan", hex or leading spaces. */
static inline int csv_scan(const char *p, size_t n, csv_decimal *d)
{
    /* Locals, stored once at the end: stores through d inside the loops would alias the
     * bytes read (char may alias anything) and be made on every digit. */
    size_t i = 0;
    int neg = 0, ndig = 0, exp10 = 0, eneg = 0, e = 0;
    uint64_t mant = 0;
    if (i < n && p[i] == '-')
        neg = p[i++] == '-';
    if (i >= n || !is_digit(p[i]))
        return 0;
    /* A leading zero before more digits ("02134") is a code, not a number: keep it. */
    if (p[i] == '0' && i + 1 < n && is_digit(p[i + 1]))
        return 0;
    size_t from = i;
    while (i < n && is_digit(p[i]))
        mant = mant * 10 + (uint64_t)(p[i++] - '0');
    ndig = (int)(i - from);
    d->integral = i == n;
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || !is_digit(p[i]))
            return 0;
        from = i;
        while (i < n && is_digit(p[i]))
            mant = mant * 10 + (uint64_t)(p[i++] - '0');
        ndig += (int)(i - from);
        exp10 = -(int)(i - from);
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        if (i >= n || !is_digit(p[i]))
            return 0;
        while (i < n && is_digit(p[i])) {
            if (e < 100000)
                e = e * 10 + (p[i] - '0');
            i++;
        }
        exp10 += eneg ? -e : e;
    }
    d->neg = neg;
    d->ndig = ndig;
    d->exp10 = exp10;
    d->mant = mant;
    return i == n;
}

/* Whether p[0, n) is a number in a CSV cell of the table codec, and if so its value: a
 * whole decimal number (csv_scan) that is not an integer of more than 15 digits (ids,
 * phone numbers, which may not survive a double: they stay text) and does not overflow
 * to infinity. The digits become the correctly rounded double in decimal_value(). */
static inline int csv_number(const char *p, size_t n, double *out)
{
    csv_decimal d;
    if (!csv_scan(p, n, &d) || (d.integral && d.ndig > 15))
        return 0;
    return decimal_value(p, n, d.neg, d.mant, d.ndig, d.exp10, out) == 0 && !isinf(*out);
}

/* Appends s as a cell, quoted (with quotes doubled) when it holds , " CR or LF. */
static inline void csv_put_text(sl_buf *out, const char *s, size_t len)
{
    size_t quotes = 0;
    int special = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"')
            quotes++;
        else if (c == ',' || c == '\n' || c == '\r')
            special = 1;
    }
    double ignored;
    /* An empty string and a string that reads as a number are quoted, so that they come
     * back as strings (an unquoted empty field is a missing value). */
    if (len == 0 || csv_number(s, len, &ignored))
        special = 1;
    if (!special && !quotes) {
        memcpy(room(out, len), s, len);
        out->len += len;
        return;
    }
    char *o = room(out, len + quotes + 2);
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            *o++ = '"';
        *o++ = s[i];
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
}

/* Quotes out[from, out->len) in place, doubling its quotes. Works from the end so that
 * no byte is overwritten before it is read. */
static inline void csv_quote_tail(sl_buf *out, size_t from)
{
    size_t quotes = 0;
    for (size_t i = from; i < out->len; i++)
        quotes += out->data[i] == '"';
    room(out, quotes + 2);
    char *src = out->data + out->len, *dst = src + quotes + 2, *begin = out->data + from;
    out->len += quotes + 2;
    *--dst = '"';
    while (src > begin) {
        char c = *--src;
        *--dst = c;
        if (c == '"')
            *--dst = '"';
    }
    *--dst = '"';
}

#endif
