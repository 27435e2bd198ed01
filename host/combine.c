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
    double *fields;             /* the slot's (sl_agg_record): a record costs no lookup */
    int32_t slot;               /* -1: empty */
} entry;

struct sl_combine_pane {
    entry *e;
    int64_t cap, len;           /* cap: a power of two */
    int mixed;                  /* every key's bits mixed (see hash) */
    int64_t gen;                /* how many times the table was made again (rehash) */
};

/* MAX_PROBE: a probe longer than this makes the map mix its keys' bits (hash) */
/* A fold goes through a batch CHUNK records at a time, in three passes: the first reads
 * each record's key and time and decides whether it folds, asking for the entry where its
 * key's probe starts; the second probes, asking for each found entry's slot; the third
 * adds. Each record is then read, hashed and probed once, and what a pass touches has
 * been asked for a chunk before (a batch of Nexmark events is 2 MB: its records have left
 * the cache; REC_AHEAD: the first pass asks this many records ahead for a record's bytes).
 * Only in a map of PREFETCH_LEN keys or more: q5's of 2000 keys stay in the cache, and
 * there asking ahead cost 22 instructions a record for nothing; at 16384, the probes of a
 * map filling again after its pane was sent (from 4096 keys, 128 KB of entries) missed the
 * cache, 16 % of the fold's time in a 10 s window of 600 k keys. SLOTS_AHEAD: a take asks for the slot this far ahead (see
 * sl_agg_absorb_saved). */
enum { FIRST_CAP = 1024, MAX_PROBE = 64, CHUNK = 32, REC_AHEAD = 16, PREFETCH_LEN = 4096,
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
    m->gen = 0;
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
    m->gen++;
    return 0;
}

/* Where key's probe starts in m as it is. */
static int64_t home_of(const sl_combine_pane *m, double key)
{
    return (int64_t)(hash(key, m->mixed) & (uint64_t)(m->cap - 1));
}

/* The index of key's entry in m, its probe started at `home`; -1 when there is none. */
static int64_t find_from(const sl_combine_pane *m, double key, int64_t home)
{
    int64_t mask = m->cap - 1;

    for (int64_t j = home;; j = (j + 1) & mask) {
        const entry *e = &m->e[j];
        if (e->slot < 0)
            return -1;
        if (e->key == key)
            return j;
    }
}

/* The entry of key in m, made (with a fresh slot) when there is none, its probe started at
 * `home` (home_of); NULL when out of memory. */
static entry *entry_of(sl_combine_pane *m, double key, int64_t home, sl_combine_batch *b)
{
    int64_t mask = m->cap - 1;
    int64_t j = home;
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
        return entry_of(m, key, home_of(m, key), b);
    }
    int32_t slot = sl_agg_pool_alloc(b->pool);
    if (slot < 0)
        return NULL;
    entry *e = &m->e[j];
    e->key = key;
    e->folded = 0;
    e->fields = sl_agg_record(b->pool, slot);
    e->slot = slot;
    m->len++;
    b->begun++;
    return e;
}

/* The key of a record, -0 made 0 (one key, as in a Lua table). */
static double key_of(const uint8_t *rec, int key_at)
{
    double key;

    memcpy(&key, rec + key_at, sizeof key);
    return key == 0 ? 0 : key;
}

int sl_combine_fold(sl_combine_batch *b, int from, int n, sl_combine_pane *pane,
                    double start, double len, double next_due)
{
    double end = start + len, top = b->top;
    /* the records of a chunk that fold: their bytes and keys, where each key's probe
     * starts, then its entry's index (-1: none yet), then its entry's fields */
    const uint8_t *recs[CHUNK];
    double keys[CHUNK];
    int64_t at[CHUNK];
    double *fields[CHUNK];
    int i = from;

    while (i < n) {
        int last = n - i > CHUNK ? i + CHUNK : n, stop = -1, k = 0;
        /* (in a map that fits in the cache, asking ahead only costs) */
        int ahead = pane != NULL && pane->len >= PREFETCH_LEN;

        for (; i < last; i++) {
            const uint8_t *r = b->rec[i];
            double t = b->t[i], w = b->w[i], key;

            if (ahead && i + REC_AHEAD < n)
                __builtin_prefetch(b->rec[i + REC_AHEAD] + b->key_at);
            if (w >= next_due)
                break;
            key = key_of(r, b->key_at);
            if (isnan(key))
                break;
            /* (whose key it is matters here only when this worker's own go to its window) */
            if (!b->fold_own && b->owner[sl_key_group_num(key)] == b->me) {
                b->mine[b->nmine++] = i;
            } else {
                if (pane == NULL || !(t >= start && t < end))
                    break;
                recs[k] = r;
                keys[k] = key;
                if (ahead) {
                    at[k] = home_of(pane, key);
                    __builtin_prefetch(&pane->e[at[k]]);
                }
                k++;
            }
            if (w > top)
                top = w;
        }
        if (i < last)
            stop = i;
        if (k == 0) {
            if (stop >= 0)
                break;
            continue;
        }
        int64_t gen = pane->gen;
        entry *es = pane->e;
        int moved = 0;
        if (ahead)
            for (int j = 0; j < k; j++) {
                at[j] = find_from(pane, keys[j], at[j]);
                if (at[j] >= 0)
                    __builtin_prefetch(pane->e[at[j]].fields, 1);
            }
        for (int j = 0; j < k; j++) {
            /* an entry found above is still its key's unless the map was made again since
             * (entries move only then; a key new in this chunk was not found) */
            entry *e;
            if (ahead && at[j] >= 0 && !moved) {
                e = &es[at[j]];
            } else {
                e = entry_of(pane, keys[j], home_of(pane, keys[j]), b);
                if (e == NULL) {
                    sl_agg_add_bytes(b->pool, fields, recs, j, b->value_at);
                    b->top = top;
                    return -1;
                }
                moved |= pane->gen != gen;
            }
            e->folded += 1;
            fields[j] = e->fields;
        }
        sl_agg_add_bytes(b->pool, fields, recs, k, b->value_at);
        b->folds += k;
        if (stop >= 0)
            break;
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
            __builtin_prefetch(m->e[i + SLOTS_AHEAD].fields, 1);
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
