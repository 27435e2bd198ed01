/* combine.c -- a combiner's accumulators for one pane, by number key (combine.h).
 *
 * Open addressing with linear probing over a power-of-two table, at most half full: a pane
 * holds 100-600 k keys in the benchmarks, and each record costs one probe sequence, where
 * the Lua tables it replaces cost three lookups and their rehashing, and garbage.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "combine.h"

typedef struct entry {
    double key;
    double folded;              /* records folded into the slot */
    int32_t slot;               /* -1: empty */
} entry;

struct sl_combine_pane {
    entry *e;
    int64_t cap, len;           /* cap: a power of two */
    int mixed;                  /* every key's bits mixed (see hash) */
};

/* MAX_PROBE: a probe longer than this makes the map mix its keys' bits (hash) */
/* A fold asks ahead of its turn for what each record will touch: the record's bytes
 * REC_AHEAD records ahead (a batch of Nexmark events is 2 MB: they have left the cache), the
 * entry of its key AHEAD ahead, and the key's slot SLOT_AHEAD ahead (found by a probe of
 * its own then, the entry being in the cache). SLOTS_AHEAD: a take asks for the slot this
 * far ahead (see sl_agg_absorb_saved). */
enum { FIRST_CAP = 1024, MAX_PROBE = 64, REC_AHEAD = 16, AHEAD = 8, SLOT_AHEAD = 4,
       SLOTS_AHEAD = 32 };

/* Where key's probe starts. A whole key starts at its own value: keys that come close
 * together in time are often close in value (Nexmark's auctions, ids from a sequence), and
 * then lie close in the table too, so the keys in play stay in the cache and a pane's
 * partials go out in about the order of their keys (the owner's accumulators are in about
 * that order). Keys a power of two apart would pile up so: a map whose probe runs long
 * mixes every key's bits instead (`mixed`). */
static uint64_t hash(double key, int mixed)
{
    uint64_t bits;

    if (!mixed && fabs(key) < 9.2e18 && (double)(int64_t)key == key)
        return (uint64_t)(int64_t)key;
    memcpy(&bits, &key, sizeof bits);
    bits ^= bits >> 29;
    bits *= 0xbf58476d1ce4e5b9ULL;
    bits ^= bits >> 32;
    return bits;
}

static entry *table_new(int64_t cap)
{
    entry *e = malloc((size_t)cap * sizeof *e);

    if (e != NULL)
        for (int64_t i = 0; i < cap; i++)
            e[i].slot = -1;
    return e;
}

sl_combine_pane *sl_combine_pane_new(void)
{
    sl_combine_pane *m = malloc(sizeof *m);

    if (m == NULL)
        return NULL;
    m->cap = FIRST_CAP;
    m->len = 0;
    m->mixed = 0;
    m->e = table_new(m->cap);
    if (m->e == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void sl_combine_pane_free(sl_combine_pane *m, sl_agg_pool *pool)
{
    if (m == NULL)
        return;
    if (pool != NULL)
        for (int64_t i = 0; i < m->cap; i++)
            if (m->e[i].slot >= 0)
                sl_agg_pool_release(pool, m->e[i].slot);
    free(m->e);
    free(m);
}

void sl_combine_pane_clear(sl_combine_pane *m, sl_agg_pool *pool)
{
    if (m->len > 0)
        for (int64_t i = 0; i < m->cap; i++)
            if (m->e[i].slot >= 0) {
                sl_agg_pool_release(pool, m->e[i].slot);
                m->e[i].slot = -1;
            }
    m->len = 0;
    m->mixed = 0;
}

int64_t sl_combine_pane_len(const sl_combine_pane *m)
{
    return m->len;
}

/* Makes the table again at capacity cap (the same or larger), hashing as m->mixed says;
 * 0, or -1 when out of memory (the table is as it was). */
static int rehash(sl_combine_pane *m, int64_t cap)
{
    int64_t mask = cap - 1;
    entry *e = table_new(cap);

    if (e == NULL)
        return -1;
    for (int64_t i = 0; i < m->cap; i++) {
        if (m->e[i].slot < 0)
            continue;
        int64_t j = (int64_t)(hash(m->e[i].key, m->mixed) & (uint64_t)mask);
        while (e[j].slot >= 0)
            j = (j + 1) & mask;
        e[j] = m->e[i];
    }
    free(m->e);
    m->e = e;
    m->cap = cap;
    return 0;
}

/* The entry of key in m, NULL when there is none. */
static const entry *entry_find(const sl_combine_pane *m, double key)
{
    int64_t mask = m->cap - 1;
    int64_t j = (int64_t)(hash(key, m->mixed) & (uint64_t)mask);

    for (;;) {
        const entry *e = &m->e[j];
        if (e->slot < 0)
            return NULL;
        if (e->key == key)
            return e;
        j = (j + 1) & mask;
    }
}

/* The entry of key in m, made (with a fresh slot) when there is none; NULL when out of
 * memory. */
static entry *entry_of(sl_combine_pane *m, double key, sl_combine_batch *b)
{
    int64_t mask = m->cap - 1;
    int64_t j = (int64_t)(hash(key, m->mixed) & (uint64_t)mask);
    int probe = 0;

    for (;;) {
        entry *e = &m->e[j];
        if (e->slot < 0)
            break;
        if (e->key == key)
            return e;
        j = (j + 1) & mask;
        probe++;
    }
    if ((m->len + 1) * 4 > m->cap * 3 || (probe > MAX_PROBE && !m->mixed)) {
        int mixed = m->mixed;

        if ((m->len + 1) * 4 <= m->cap * 3)
            m->mixed = 1;
        if (rehash(m, m->mixed != mixed ? m->cap : m->cap * 2) != 0) {
            m->mixed = mixed;
            return NULL;
        }
        return entry_of(m, key, b);
    }
    int32_t slot = sl_agg_pool_alloc(b->pool);
    if (slot < 0)
        return NULL;
    entry *e = &m->e[j];
    e->key = key;
    e->folded = 0;
    e->slot = slot;
    m->len++;
    b->begun++;
    return e;
}

int sl_combine_fold(sl_combine_batch *b, int from, int n, sl_combine_pane *pane,
                    double start, double len, double next_due)
{
    double end = start + len, top = b->top;
    int i;

    for (i = from; i < n; i++) {
        const uint8_t *r = b->rec[i];
        double t = b->t[i], w = b->w[i], key;

        if (pane != NULL) {
            double ahead;
            const entry *e;

            if (i + REC_AHEAD < n)
                __builtin_prefetch(b->rec[i + REC_AHEAD] + b->key_at);
            if (i + AHEAD < n) {
                memcpy(&ahead, b->rec[i + AHEAD] + b->key_at, sizeof ahead);
                __builtin_prefetch(&pane->e[hash(ahead, pane->mixed) & (uint64_t)(pane->cap - 1)]);
            }
            if (i + SLOT_AHEAD < n) {
                memcpy(&ahead, b->rec[i + SLOT_AHEAD] + b->key_at, sizeof ahead);
                if ((e = entry_find(pane, ahead)) != NULL)
                    sl_agg_prefetch(b->pool, e->slot);
            }
        }

        if (w >= next_due)
            break;
        memcpy(&key, r + b->key_at, sizeof key);
        if (isnan(key))
            break;
        if (key == 0)
            key = 0;                /* -0 and 0 are one key, as in a Lua table */
        /* (whose key it is matters here only when this worker's own go to its window) */
        if (!b->fold_own && b->owner[sl_key_group_num(key)] == b->me) {
            b->mine[b->nmine++] = i;
        } else {
            if (!(t >= start && t < end))
                break;
            entry *e = entry_of(pane, key, b);
            if (e == NULL) {
                b->top = top;
                return -1;
            }
            e->folded += 1;
            b->folds++;
            sl_agg_add_bytes(b->pool, e->slot, r, b->value_at);
        }
        if (w > top)
            top = w;
    }
    b->top = top;
    return i;
}

int sl_combine_take(sl_combine_pane *m, int64_t *at, double start, double wm,
                    sl_agg_pool *pool, int width, const uint8_t *owner, double *const *dst,
                    int32_t *used, int32_t cap)
{
    int64_t rec = width + 4;

    for (int64_t i = *at; i < m->cap; i++) {
        entry *e = &m->e[i];
        /* (the slots of neighbouring keys are not neighbours: each is a cache miss) */
        if (i + SLOTS_AHEAD < m->cap && m->e[i + SLOTS_AHEAD].slot >= 0)
            sl_agg_prefetch(pool, m->e[i + SLOTS_AHEAD].slot);
        if (e->slot < 0)
            continue;
        int to = owner[sl_key_group_num(e->key)];
        if (used[to] >= cap) {
            *at = i;
            return to;
        }
        double *d = dst[to] + (int64_t)used[to]++ * rec;
        d[0] = e->key;
        d[1] = start;
        d[2] = e->folded;
        d[3] = wm;
        sl_agg_save(pool, e->slot, d + 4);
        sl_agg_pool_release(pool, e->slot);
        e->slot = -1;
        m->len--;
    }
    *at = m->cap;
    return -1;
}
