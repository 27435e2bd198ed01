/* agg.c -- the accumulators behind sl.count, sum, avg, min, max, first and last, kept in
 * a pool of fixed-size records that one window operator owns.
 *
 * A pool is made for one aggregate spec: its entries' fields lie side by side in one
 * record of doubles, laid out once in sl_agg_pool_new. Records live in chunks of
 * SL_AGG_CHUNK that never move, so a record is named by a small integer, its slot, which
 * Lua keeps per key and pane instead of a table. A released slot goes on a free list
 * threaded through the free records, and the next alloc takes it back.
 *
 * Sums are compensated (Neumaier's variant of Kahan), so a window sum does not depend on
 * how many values it had or in what order they came, beyond the last bit or so.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prims.h"

/* Where one entry's fields start in a record, and how to treat them. */
typedef struct entry {
    int kind;                    /* an SL_AGG_* kind */
    int off;                     /* index of its first field, in doubles */
} entry;

struct sl_agg_pool {
    double **chunks;             /* chunks[i] holds slots i*SL_AGG_CHUNK ...; owned */
    int32_t nchunks, chunks_cap; /* chunks in use, and room in the chunks array */
    int32_t used;                /* slots below this were handed out at least once since
                                  * the pool was last empty */
    int32_t free_head;           /* first free slot, or -1 */
    size_t live;                 /* slots handed out and not yet released */
    int width;                   /* doubles per record (at least 1, for the free list) */
    int nentries;
    entry entries[];             /* the spec's entries, in the order Lua numbers them */
};

/* Fields per entry in a record, and values per entry in sl_agg_save's layout. */
static int fields_of(int kind)
{
    switch (kind) {
    case SL_AGG_COUNT: return 1;     /* n */
    case SL_AGG_SUM: return 2;       /* sum, c */
    case SL_AGG_AVG: return 3;       /* sum, c, n */
    case SL_AGG_MIN:
    case SL_AGG_MAX: return 2;       /* v, n */
    case SL_AGG_FIRST:
    case SL_AGG_LAST: return 3;      /* v, t, n */
    case SL_AGG_HELD: return 0;
    default: return -1;
    }
}

static int saved_of(int kind)
{
    switch (kind) {
    case SL_AGG_COUNT: return 1;     /* n */
    case SL_AGG_SUM: return 2;       /* sum, c */
    case SL_AGG_AVG: return 3;       /* sum, c, n */
    case SL_AGG_MIN:
    case SL_AGG_MAX: return 1;       /* v, NaN when empty */
    case SL_AGG_FIRST:
    case SL_AGG_LAST: return 2;      /* v, t; t NaN when empty */
    default: return 1;               /* SL_AGG_HELD: a place Lua fills */
    }
}

/* The record of a live slot. */
static double *record(const sl_agg_pool *p, int32_t slot)
{
    uint32_t n = (uint32_t)slot;       /* (unsigned: a shift and a mask, not a division) */

    return p->chunks[n / SL_AGG_CHUNK] + (size_t)(n % SL_AGG_CHUNK) * (size_t)p->width;
}

/* The fields of entry j of a slot. */
static double *fields(const sl_agg_pool *p, int32_t slot, int j)
{
    return record(p, slot) + p->entries[j].off;
}

/* ---- one entry's fields ---- */

static void init_entry(int kind, double *f)
{
    switch (kind) {
    case SL_AGG_COUNT: f[0] = 0; break;
    case SL_AGG_SUM: f[0] = 0; f[1] = 0; break;
    case SL_AGG_AVG: f[0] = 0; f[1] = 0; f[2] = 0; break;
    case SL_AGG_MIN:
    case SL_AGG_MAX: f[0] = NAN; f[1] = 0; break;
    case SL_AGG_FIRST:
    case SL_AGG_LAST: f[0] = NAN; f[1] = NAN; f[2] = 0; break;
    default: break;
    }
}

/* Neumaier: unlike plain Kahan, also right when x is larger than the running sum. This
 * needs strict IEEE arithmetic: never build this file with -ffast-math. f = {sum, c}. */
static void sum_add(double *f, double x)
{
    double t = f[0] + x;

    if (fabs(f[0]) >= fabs(x))
        f[1] += (f[0] - t) + x;
    else
        f[1] += (x - t) + f[0];
    f[0] = t;
}

/* Once the sum is infinite or NaN the compensation is NaN (inf - inf), and the sum itself
 * is the IEEE answer. */
static double sum_result(const double *f)
{
    return isfinite(f[0]) ? f[0] + f[1] : f[0];
}

/* ---- the pool ---- */

sl_agg_pool *sl_agg_pool_new(const int *kinds, int n)
{
    sl_agg_pool *p;
    int off = 0;

    if (n < 0)
        return NULL;
    p = malloc(sizeof *p + (size_t)n * sizeof(entry));
    if (p == NULL)
        return NULL;
    for (int j = 0; j < n; j++) {
        int w = fields_of(kinds[j]);

        if (w < 0) {
            free(p);
            return NULL;
        }
        p->entries[j].kind = kinds[j];
        p->entries[j].off = off;
        off += w;
    }
    p->nentries = n;
    p->width = off > 0 ? off : 1;
    p->chunks = NULL;
    p->nchunks = p->chunks_cap = 0;
    p->used = 0;
    p->free_head = -1;
    p->live = 0;
    return p;
}

void sl_agg_pool_free(sl_agg_pool *p)
{
    if (p == NULL)
        return;
    for (int32_t i = 0; i < p->nchunks; i++)
        free(p->chunks[i]);
    free(p->chunks);
    free(p);
}

/* Adds one chunk; the chunks array may move, the records never do. */
static int grow(sl_agg_pool *p)
{
    double *chunk;

    if (p->nchunks >= INT32_MAX / SL_AGG_CHUNK)
        return SL_PRIM_ENOMEM;
    if (p->nchunks == p->chunks_cap) {
        int32_t cap = p->chunks_cap ? p->chunks_cap * 2 : 8;
        double **grown = realloc(p->chunks, (size_t)cap * sizeof *grown);

        if (grown == NULL)
            return SL_PRIM_ENOMEM;
        p->chunks = grown;
        p->chunks_cap = cap;
    }
    chunk = malloc((size_t)SL_AGG_CHUNK * p->width * sizeof *chunk);
    if (chunk == NULL)
        return SL_PRIM_ENOMEM;
    p->chunks[p->nchunks++] = chunk;
    return SL_PRIM_OK;
}

int32_t sl_agg_pool_alloc(sl_agg_pool *p)
{
    int32_t slot;
    double *r;

    if (p->free_head >= 0) {
        slot = p->free_head;
        p->free_head = (int32_t)record(p, slot)[0];
        /* The next alloc reads the next free record's link: released in whatever order
         * their keys left (a combiner's pane taken in its map's order), free records lie
         * scattered, and that read was a cache miss nearly every time (90 % of this
         * function's time, 5 % of a 2-worker job's with a pane of many keys). */
        if (p->free_head >= 0)
            __builtin_prefetch(record(p, p->free_head), 1);
    } else {
        if (p->used == p->nchunks * SL_AGG_CHUNK && grow(p) != SL_PRIM_OK)
            return SL_PRIM_ENOMEM;
        slot = p->used++;
    }
    r = record(p, slot);
    for (int j = 0; j < p->nentries; j++)
        init_entry(p->entries[j].kind, r + p->entries[j].off);
    p->live++;
    return slot;
}

/* The free list's link is the record's first double (a slot fits exactly). When the last
 * live slot goes, the pool starts again from its first slot: the next slots are handed out
 * in order, side by side, instead of down a free list in the order they were released (a
 * combiner's pane, taken whole, empties its pool every 65536 keys). */
void sl_agg_pool_release(sl_agg_pool *p, int32_t slot)
{
    if (--p->live == 0) {
        p->free_head = -1;
        p->used = 0;
        return;
    }
    record(p, slot)[0] = (double)p->free_head;
    p->free_head = slot;
}

size_t sl_agg_pool_live(const sl_agg_pool *p)
{
    return p->live;
}

size_t sl_agg_pool_bytes(const sl_agg_pool *p)
{
    return sizeof *p + (size_t)p->nentries * sizeof(entry) +
           (size_t)p->chunks_cap * sizeof *p->chunks +
           (size_t)p->nchunks * SL_AGG_CHUNK * p->width * sizeof(double);
}

/* ---- updates ---- */

void sl_agg_count_add(sl_agg_pool *p, int32_t slot, int j)
{
    fields(p, slot, j)[0] += 1;
}

void sl_agg_sum_add(sl_agg_pool *p, int32_t slot, int j, double x)
{
    sum_add(fields(p, slot, j), x);
}

/* avg's fields f = {sum, c, n} take x */
static void avg_add(double *f, double x)
{
    sum_add(f, x);
    f[2] += 1;
}

void sl_agg_avg_add(sl_agg_pool *p, int32_t slot, int j, double x)
{
    avg_add(fields(p, slot, j), x);
}

/* min's and max's fields f = {v, n} take x: 1 when Lua holds the entry (n < 0), else 0.
 * NaN has no order: comparing with it is false, so letting it in would make the result
 * depend on arrival order. Like SQL's NULL, it is skipped. */
static int min_add(double *f, double x)
{
    if (f[1] < 0)
        return 1;
    if (isnan(x))
        return 0;
    if (f[1] == 0 || x < f[0])
        f[0] = x;
    f[1] += 1;
    return 0;
}

static int max_add(double *f, double x)
{
    if (f[1] < 0)
        return 1;
    if (isnan(x))
        return 0;
    if (f[1] == 0 || x > f[0])
        f[0] = x;
    f[1] += 1;
    return 0;
}

int sl_agg_min_add(sl_agg_pool *p, int32_t slot, int j, double x)
{
    return min_add(fields(p, slot, j), x);
}

int sl_agg_max_add(sl_agg_pool *p, int32_t slot, int j, double x)
{
    return max_add(fields(p, slot, j), x);
}

/* Records into every entry of their slots, as the adds above would take them one entry at
 * a time: what a combiner's fold does with a chunk of records, each found once. */
void sl_agg_add_bytes(const sl_agg_pool *p, double *const *r, const uint8_t *const *rec,
                      int n, const int *value_at)
{
    /* Entry by entry, each over all n records: the entry's kind is asked once, and each
     * loop is a few instructions a record (a record at a time, with its switch, cost 54
     * for a count and a max). An entry's records still come in their order. */
    for (int j = 0; j < p->nentries; j++) {
        int off = p->entries[j].off, at = value_at[j];
        double x;

        switch (p->entries[j].kind) {
        case SL_AGG_COUNT:
            for (int i = 0; i < n; i++)
                r[i][off] += 1;
            break;
        case SL_AGG_SUM:
            for (int i = 0; i < n; i++) {
                memcpy(&x, rec[i] + at, sizeof x);
                sum_add(r[i] + off, x);
            }
            break;
        case SL_AGG_AVG:
            for (int i = 0; i < n; i++) {
                memcpy(&x, rec[i] + at, sizeof x);
                avg_add(r[i] + off, x);
            }
            break;
        case SL_AGG_MIN:
            for (int i = 0; i < n; i++) {
                memcpy(&x, rec[i] + at, sizeof x);
                (void)min_add(r[i] + off, x);
            }
            break;
        case SL_AGG_MAX:
            for (int i = 0; i < n; i++) {
                memcpy(&x, rec[i] + at, sizeof x);
                (void)max_add(r[i] + off, x);
            }
            break;
        default: break;
        }
    }
}

/* By event time, not arrival: first keeps the earliest time and, on a tie, the value seen
 * first; last keeps the latest time and, on a tie, the value seen last. */
int sl_agg_first_add(sl_agg_pool *p, int32_t slot, int j, double x, double t)
{
    double *f = fields(p, slot, j);

    if (f[2] < 0)
        return 1;
    if (f[2] == 0 || t < f[1]) {
        f[0] = x;
        f[1] = t;
    }
    f[2] += 1;
    return 0;
}

int sl_agg_last_add(sl_agg_pool *p, int32_t slot, int j, double x, double t)
{
    double *f = fields(p, slot, j);

    if (f[2] < 0)
        return 1;
    if (f[2] == 0 || t >= f[1]) {
        f[0] = x;
        f[1] = t;
    }
    f[2] += 1;
    return 0;
}

/* ---- merge, results, hand-over to Lua ---- */

/* dst is treated as seen before src (that decides first/last ties). An entry that Lua
 * holds in either record is left to Lua. */
void sl_agg_merge(sl_agg_pool *p, int32_t dst, int32_t src)
{
    double *d = record(p, dst), *s = record(p, src);

    for (int j = 0; j < p->nentries; j++) {
        int off = p->entries[j].off;
        double *df = d + off, *sf = s + off;

        switch (p->entries[j].kind) {
        case SL_AGG_COUNT:
            df[0] += sf[0];
            break;
        case SL_AGG_SUM:
        case SL_AGG_AVG:
            sum_add(df, sf[0]);
            df[1] += sf[1];
            if (p->entries[j].kind == SL_AGG_AVG)
                df[2] += sf[2];
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX:
            if (df[1] < 0 || sf[1] <= 0)
                break;
            if (df[1] == 0 || (p->entries[j].kind == SL_AGG_MIN ? sf[0] < df[0]
                                                                 : sf[0] > df[0]))
                df[0] = sf[0];
            df[1] += sf[1];
            break;
        case SL_AGG_FIRST:
        case SL_AGG_LAST:
            if (df[2] < 0 || sf[2] <= 0)
                break;
            if (df[2] == 0 || (p->entries[j].kind == SL_AGG_FIRST ? sf[1] < df[1]
                                                                   : sf[1] >= df[1])) {
                df[0] = sf[0];
                df[1] = sf[1];
            }
            df[2] += sf[2];
            break;
        default:
            break;
        }
    }
}

int sl_agg_result(const sl_agg_pool *p, int32_t slot, int j, double *out)
{
    const double *f = fields(p, slot, j);

    switch (p->entries[j].kind) {
    case SL_AGG_COUNT:
        out[0] = f[0];
        return 1;
    case SL_AGG_SUM:
        out[0] = sum_result(f);
        return 1;
    case SL_AGG_AVG:
        if (f[2] == 0)
            return 0;
        out[0] = sum_result(f) / f[2];
        return 1;
    case SL_AGG_MIN:
    case SL_AGG_MAX:
        if (f[1] <= 0)
            return f[1] < 0 ? -1 : 0;
        out[0] = f[0];
        return 1;
    case SL_AGG_FIRST:
    case SL_AGG_LAST:
        if (f[2] <= 0)
            return f[2] < 0 ? -1 : 0;
        out[0] = f[0];
        out[1] = f[1];
        return 1;
    default:
        return -1;
    }
}

void sl_agg_hand_to_lua(sl_agg_pool *p, int32_t slot, int j)
{
    double *f = fields(p, slot, j);

    switch (p->entries[j].kind) {
    case SL_AGG_MIN:
    case SL_AGG_MAX:
        f[1] = -1;
        break;
    case SL_AGG_FIRST:
    case SL_AGG_LAST:
        f[2] = -1;
        break;
    default:
        break;
    }
}

/* ---- snapshots ---- */

void sl_agg_save(const sl_agg_pool *p, int32_t slot, double *out)
{
    const double *r = record(p, slot);

    for (int j = 0; j < p->nentries; j++) {
        const double *f = r + p->entries[j].off;

        switch (p->entries[j].kind) {
        case SL_AGG_COUNT:
            *out++ = f[0];
            break;
        case SL_AGG_SUM:
            *out++ = f[0];
            *out++ = f[1];
            break;
        case SL_AGG_AVG:
            *out++ = f[0];
            *out++ = f[1];
            *out++ = f[2];
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX:
            *out++ = f[1] > 0 ? f[0] : NAN;
            break;
        case SL_AGG_FIRST:
        case SL_AGG_LAST:
            *out++ = f[2] > 0 ? f[0] : NAN;
            *out++ = f[2] > 0 ? f[1] : NAN;
            break;
        default:
            *out++ = NAN;
            break;
        }
    }
}

/* The next saved value at *in, which need not lie on a double's boundary (a partial
 * aggregate read where it lies in a message, after its header). */
static double next_saved(const unsigned char **in)
{
    double x;

    memcpy(&x, *in, sizeof x);
    *in += sizeof x;
    return x;
}

/* A loaded min/max/first/last counts as one value seen: the count is not saved, and only
 * emptiness is ever read from it. */
static void load_bytes(sl_agg_pool *p, int32_t slot, const unsigned char *in)
{
    double *r = record(p, slot);

    for (int j = 0; j < p->nentries; j++) {
        double *f = r + p->entries[j].off;

        switch (p->entries[j].kind) {
        case SL_AGG_COUNT:
            f[0] = next_saved(&in);
            break;
        case SL_AGG_SUM:
            f[0] = next_saved(&in);
            f[1] = next_saved(&in);
            break;
        case SL_AGG_AVG:
            f[0] = next_saved(&in);
            f[1] = next_saved(&in);
            f[2] = next_saved(&in);
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX:
            f[0] = next_saved(&in);
            f[1] = isnan(f[0]) ? 0 : 1;
            break;
        case SL_AGG_FIRST:
        case SL_AGG_LAST:
            f[0] = next_saved(&in);
            f[1] = next_saved(&in);
            f[2] = isnan(f[1]) ? 0 : 1;
            break;
        default:
            in += sizeof(double);
            break;
        }
    }
}

void sl_agg_load(sl_agg_pool *p, int32_t slot, const double *in)
{
    load_bytes(p, slot, (const unsigned char *)in);
}

int sl_agg_absorb_saved(sl_agg_pool *p, const int32_t *slots, const void *saved,
                        int64_t stride, int64_t n)
{
    /* (the slot this far ahead is asked for: over 300 k slots in random order, 8 ahead hid
     * little of each miss, 32 most of it, 150 ns a merge down to 45) */
    enum { AHEAD = 32 };
    int32_t tmp = -1;

    for (int64_t i = 0; i < n; i++) {
        if (i + AHEAD < n && slots[i + AHEAD] != SL_AGG_SKIP)
            sl_agg_prefetch(p, slots[i + AHEAD] < 0 ? -1 - slots[i + AHEAD]
                                                     : slots[i + AHEAD]);
        int32_t s = slots[i];
        const unsigned char *in = (const unsigned char *)saved + i * stride * sizeof(double);

        if (s == SL_AGG_SKIP)
            continue;
        if (s < 0) {
            load_bytes(p, -1 - s, in);
            continue;
        }
        /* (one slot to load each into, taken once: merge's arithmetic is written once) */
        if (tmp < 0 && (tmp = sl_agg_pool_alloc(p)) < 0)
            return SL_PRIM_ENOMEM;
        load_bytes(p, tmp, in);
        sl_agg_merge(p, s, tmp);
    }
    if (tmp >= 0)
        sl_agg_pool_release(p, tmp);
    return SL_PRIM_OK;
}

double *sl_agg_record(const sl_agg_pool *p, int32_t slot)
{
    return record(p, slot);
}

void sl_agg_prefetch(const sl_agg_pool *p, int32_t slot)
{
    __builtin_prefetch(record(p, slot), 1);
}

int sl_agg_pool_saved_width(const sl_agg_pool *p)
{
    int w = 0;

    for (int j = 0; j < p->nentries; j++)
        w += saved_of(p->entries[j].kind);
    return w;
}
