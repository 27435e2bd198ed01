/* buf.c -- a growable byte buffer (see buf.h).
 *
 * Growth doubles the capacity, so a run of appends costs amortised O(1) per byte; the
 * buffer never shrinks until sl_buf_free. Allocation failure aborts the process. */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAP 64

static void out_of_memory(size_t want)
{
    fprintf(stderr, "sluice: out of memory (buffer of %zu bytes)\n", want);
    abort();
}

void sl_buf_init(sl_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* The slow half of sl_buf_reserve, kept out of line so the check stays cheap. */
static void grow(sl_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        out_of_memory(SIZE_MAX);
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        out_of_memory(cap);
    b->data = p;
    b->cap = cap;
}

void sl_buf_reserve(sl_buf *b, size_t extra)
{
    if (b->cap - b->len < extra)
        grow(b, extra);
}

void sl_buf_append(sl_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;     /* p may be NULL for an empty slice; memcpy must not see it */
    sl_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void sl_buf_putc(sl_buf *b, char c)
{
    sl_buf_reserve(b, 1);
    b->data[b->len++] = c;
}

/* Formats straight into the free space when it fits; otherwise vsnprintf has told us
 * the exact size, so one reserve and a second pass always suffice. */
void sl_buf_printf(sl_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {                /* an encoding error: append nothing */
        va_end(ap2);
        return;
    }
    if ((size_t)n >= room) {    /* vsnprintf also needs room for its NUL */
        sl_buf_reserve(b, (size_t)n + 1);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}

const char *sl_buf_cstr(sl_buf *b)
{
    sl_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    return b->data;
}

void sl_buf_reset(sl_buf *b)
{
    b->len = 0;
}

void sl_buf_free(sl_buf *b)
{
    free(b->data);
    sl_buf_init(b);
}
