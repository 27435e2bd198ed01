/* combine.h -- a combiner's accumulators for one pane, by number key, and the fold of a
 * batch of typed records into them in one call (lua/sluice/combiner.lua): the loop in Lua
 * cost some 35 ns a record, three table lookups in tables of 100-600 k keys among them.
 */
#ifndef SL_COMBINE_H
#define SL_COMBINE_H

#include <stdint.h>

#include "prims.h"

/* One pane's accumulators: key (a double, 0 and -0 one key) -> an aggregate pool's slot and
 * the records folded into it. */
typedef struct sl_combine_pane sl_combine_pane;

sl_combine_pane *sl_combine_pane_new(void);        /* NULL on OOM */
/* Frees the map; the slots it still holds go back to `pool` (NULL: the pool is gone). */
void sl_combine_pane_free(sl_combine_pane *m, sl_agg_pool *pool);
/* Empties the map for another pane, keeping its table (a fresh one is faulted in page by
 * page as it grows); the slots it still holds go back to `pool`. */
void sl_combine_pane_clear(sl_combine_pane *m, sl_agg_pool *pool);
int64_t sl_combine_pane_len(const sl_combine_pane *m);

/* What a fold reads and what it tells (one per combiner, filled in Lua). */
typedef struct sl_combine_batch {
    const uint8_t *const *rec;  /* the records' bytes */
    const double *t, *w;        /* their event times and watermarks */
    int key_at;                 /* the byte of the key, a double */
    const uint8_t *owner;       /* key group -> worker (0-based) */
    int me;                     /* this worker (0-based) */
    int fold_own;               /* fold this worker's own records too (else to mine) */
    sl_agg_pool *pool;
    const int *value_at;        /* by aggregate of the pool: the byte of the double it
                                 * reads (count: none, see sl_agg_add_bytes) */
    int32_t *mine;              /* out: indexes of this worker's own records (0-based) */
    int32_t nmine;
    int64_t begun, folds;       /* out: accumulators begun, records folded (added to) */
    double top;                 /* out: the largest watermark of the records taken */
} sl_combine_batch;

/* Takes records from..n-1 of b in order: this worker's own to b->mine (unless
 * b->fold_own), the others' folded into `pane`, which holds times [start, start + len). Stops at the first record that is
 * not in the pane (or whose time or key is NaN) or whose watermark is next_due or more,
 * and returns its index (n: all taken). Returns -1 when out of memory (the record at the
 * index b->begun counted up to is not folded). */
int sl_combine_fold(sl_combine_batch *b, int from, int n, sl_combine_pane *pane,
                    double start, double len, double next_due);

/* Writes the partials of `pane`, from its entry number *at on, as `width` + 4 doubles each
 * (key, pane start, records folded, watermark wm, the slot's saved values: what
 * exchange.partials holds) into dst[to] at entry used[to], to the key's owner `to`, and
 * gives their slots back to the pool. Stops when an owner has cap entries: returns that
 * owner (0-based), *at left at the next entry to write; returns -1 when every entry is
 * written. */
int sl_combine_take(sl_combine_pane *m, int64_t *at, double start, double wm,
                    sl_agg_pool *pool, int width, const uint8_t *owner, double *const *dst,
                    int32_t *used, int32_t cap);

#endif
