/* schema.c -- typed records' schemas: the fields in order, their slots, and the lookup by
 * name that a decoder makes for every key it reads (see typed.h).
 *
 * The lookup is an open-addressing table of field numbers hashed on the name's length and
 * first and last bytes, built once: a key is found with one or two comparisons, and a key
 * the schema lacks (skipped) costs as little. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "typed.h"

const char *const sl_typed_type_names[] = { "?", "i64", "f64", "bool", "string", "record" };

static uint32_t name_hash(const char *name, size_t len)
{
    uint32_t h = (uint32_t)len * 2654435761u;

    if (len > 0)
        h ^= (uint32_t)(unsigned char)name[0] * 40503u
           ^ (uint32_t)(unsigned char)name[len - 1] * 2246822519u
           ^ (uint32_t)(unsigned char)name[len / 2] * 3266489917u;
    return h ^ (h >> 15);
}

static int by_name(const void *a, const void *b)
{
    const sl_schema_field *x = a, *y = b;
    size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
    int c = memcmp(x->name, y->name, n);

    if (c != 0)
        return c;
    return x->namelen < y->namelen ? -1 : x->namelen > y->namelen;
}

void sl_schema_free(sl_schema *s)
{
    int i;

    if (s == NULL)
        return;
    for (i = 0; i < s->nfields; i++)
        free((char *)s->fields[i].name);
    free(s->fields);
    free(s->index);
    free(s);
}

sl_schema *sl_schema_new(const sl_schema_field *fields, int n, char *err)
{
    sl_schema *s = calloc(1, sizeof *s);
    uint32_t size = 4;
    int i, slot = 1;

    if (s == NULL || n < 0)
        goto oom;
    s->fields = calloc((size_t)(n > 0 ? n : 1), sizeof *s->fields);
    if (s->fields == NULL)
        goto oom;
    s->nfields = n;             /* from here on, sl_schema_free frees every copied name */
    if (n > 254) {              /* the index holds field numbers in a byte, 0xff empty */
        snprintf(err, SL_CODEC_ERRLEN, "more than 254 fields in one schema");
        goto bad;
    }
    for (i = 0; i < n; i++) {
        sl_schema_field *f = &s->fields[i];
        size_t len = fields[i].name ? strlen(fields[i].name) : 0;

        *f = fields[i];
        f->name = NULL;
        if (len == 0) {
            snprintf(err, SL_CODEC_ERRLEN, "field %d has an empty name", i + 1);
            goto bad;
        }
        f->name = strdup(fields[i].name);
        if (f->name == NULL)
            goto oom;
        f->namelen = (uint32_t)len;
        if (f->type < SL_TYPED_I64 || f->type > SL_TYPED_RECORD
            || (f->type == SL_TYPED_RECORD) != (f->record != NULL)) {
            snprintf(err, SL_CODEC_ERRLEN, "field %s: unknown type", f->name);
            goto bad;
        }
    }
    qsort(s->fields, (size_t)n, sizeof *s->fields, by_name);
    s->depth = 1;
    for (i = 0; i < n; i++) {
        sl_schema_field *f = &s->fields[i];

        if (i > 0 && by_name(&s->fields[i - 1], f) == 0) {
            snprintf(err, SL_CODEC_ERRLEN, "field %s is declared twice", f->name);
            goto bad;
        }
        f->slot = slot;
        slot += f->type == SL_TYPED_RECORD ? f->record->nslots : 1;
        if (f->type == SL_TYPED_RECORD && f->record->depth + 1 > s->depth)
            s->depth = f->record->depth + 1;
        if (s->depth > SL_TYPED_MAX_DEPTH) {
            snprintf(err, SL_CODEC_ERRLEN, "field %s: records nested deeper than %d",
                     f->name, SL_TYPED_MAX_DEPTH);
            goto bad;
        }
        if (slot > SL_TYPED_MAX_SLOTS) {
            snprintf(err, SL_CODEC_ERRLEN, "more than %d fields, nested ones counted",
                     SL_TYPED_MAX_SLOTS - 1);
            goto bad;
        }
    }
    s->nslots = slot;
    while (size < (uint32_t)n * 2)
        size *= 2;
    s->index = malloc(size);
    if (s->index == NULL)
        goto oom;
    memset(s->index, 0xff, size);
    s->index_mask = size - 1;
    for (i = 0; i < n; i++) {
        uint32_t h = name_hash(s->fields[i].name, s->fields[i].namelen) & s->index_mask;

        while (s->index[h] != 0xff)
            h = (h + 1) & s->index_mask;
        s->index[h] = (uint8_t)i;
    }
    return s;
oom:
    snprintf(err, SL_CODEC_ERRLEN, "out of memory");
bad:
    sl_schema_free(s);
    return NULL;
}

/* memcmp(a, b, n) == 0 for the short names of fields, without a call. */
static inline int same_bytes(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

const sl_schema_field *sl_schema_find(const sl_schema *s, const char *name, size_t len)
{
    uint32_t h = name_hash(name, len) & s->index_mask;

    for (;;) {
        uint8_t i = s->index[h];
        const sl_schema_field *f;

        if (i == 0xff)
            return NULL;
        f = &s->fields[i];
        if (f->namelen == len && same_bytes(f->name, name, len))
            return f;
        h = (h + 1) & s->index_mask;
    }
}

void sl_typed_clear(const sl_schema *s, sl_typed_field *rec)
{
    int i;

    rec[0].v.schema = s;
    rec[0].len = (uint32_t)s->nslots;
    rec[0].present = 1;
    if (s->depth == 1) {            /* flat: slots 1 .. nslots - 1 are its fields */
        for (i = 1; i < s->nslots; i++)
            rec[i].present = 0;
        return;
    }
    for (i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];

        if (f->type == SL_TYPED_RECORD) {
            sl_typed_clear(f->record, rec + f->slot);
            rec[f->slot].present = 0;
        } else {
            rec[f->slot].present = 0;
        }
    }
}
