/* prims.h -- the C primitives that window operators call over the FFI: a timer heap,
 * window arithmetic, a pool of accumulators, the distinct-count and quantile sketches, and
 * the key groups of keys.
 *
 * Everything between the include lines is plain C that lua/sluice/host.lua may paste into
 * its ffi.cdef as is. None of these functions calls back into Lua or keeps a pointer it was
 * given, except that each new/load returns an object the caller owns and frees with the
 * matching free. An object is not thread-safe; one operator owns it.
 */
#ifndef SL_PRIMS_H
#define SL_PRIMS_H

#include <stddef.h>
#include <stdint.h>

/* ---- Constants ----------------------------------------------------------------------- */

enum {
    SL_PRIM_OK = 0,              /* success */
    SL_PRIM_ENOMEM = -1,         /* an allocation failed; nothing was added or merged */
    SL_PRIM_EINVAL = -2,         /* a bad argument (NaN time or value, merge with self) */

    SL_AGG_COUNT = 1,            /* the kinds of an aggregate entry, for sl_agg_pool_new */
    SL_AGG_SUM = 2,
    SL_AGG_AVG = 3,
    SL_AGG_MIN = 4,
    SL_AGG_MAX = 5,
    SL_AGG_FIRST = 6,
    SL_AGG_LAST = 7,
    SL_AGG_HELD = 8,             /* kept by Lua (collect, distinct, quantile): no fields */
    SL_AGG_CHUNK = 1024,         /* records per chunk of a pool */

    SL_HLL_P = 14,               /* dense precision: 2^14 registers, std. error 0.81% */
    SL_HLL_SPARSE_P = 25,        /* precision of the sparse (index, rank) list */
    SL_HLL_SPARSE_MAX = 3072,    /* sparse entries (4 bytes each) before going dense */
    SL_HLL_VERSION = 1,          /* first byte of sl_hll_save's output */

    SL_QUANTILE_K = 400,         /* KLL k: rank error ~0.3%, at most ~10 KiB of items */
    SL_QUANTILE_VERSION = 1      /* first byte of sl_quantile_save's output */
};

/* ---- Types --------------------------------------------------------------------------- */

/* A min-heap of (time, id) pairs, e.g. pending window ends and timers. Opaque. */
typedef struct sl_timeq sl_timeq;

/* The accumulators of one aggregate spec: a pool of fixed-size records, one per key and
 * pane, named by slot. Opaque. */
typedef struct sl_agg_pool sl_agg_pool;

/* A HyperLogLog distinct counter, sparse while small. Opaque. */
typedef struct sl_hll sl_hll;

/* A KLL quantile sketch. Opaque. */
typedef struct sl_quantile sl_quantile;

/* ---- Timer heap (timeq.c) ------------------------------------------------------------ */

sl_timeq *sl_timeq_new(void);                     /* NULL on OOM */
void sl_timeq_free(sl_timeq *q);                  /* NULL is a no-op */
int sl_timeq_push(sl_timeq *q, double t, int64_t id);   /* 0, ENOMEM, or EINVAL on NaN t */
size_t sl_timeq_len(const sl_timeq *q);
double sl_timeq_peek_time(const sl_timeq *q);     /* earliest time; +inf when empty */
int sl_timeq_pop(sl_timeq *q, double *t, int64_t *id);  /* 0, or -1 when empty */
/* Pops, in (time, id) order, every entry with time <= wm, at most cap of them, into
 * ids_out[] and times_out[] (times_out may be NULL). Returns how many it popped; call
 * again while it returns cap. */
int sl_timeq_pop_until(sl_timeq *q, double wm, int64_t *ids_out, double *times_out,
                       int cap);

/* ---- Window arithmetic (window.c) -----------------------------------------------------
 * Times are ms since the epoch and may be negative; windows are [start, start + size),
 * aligned to the epoch (offset 0). size and slide must be > 0: otherwise the functions
 * return INT64_MIN. Lua calls the _ms variants, on doubles. */

int64_t sl_window_tumbling_start(int64_t t, int64_t size);
/* The earliest start of a sliding window that holds t. The windows that hold t start at
 * first, first + slide, ... up to sl_window_tumbling_start(t, slide), and there are
 * ceil(size/slide) or one fewer of them; first > t when there are none (slide > size). */
int64_t sl_window_sliding_first(int64_t t, int64_t size, int64_t slide);
/* The same on Lua numbers (doubles, exact up to 2^53 ms): t is floored, then as above;
 * NaN when t is NaN or beyond +-2^53, or size or slide is not a whole number of ms >= 1. */
double sl_window_tumbling_start_ms(double t, double size);
double sl_window_sliding_first_ms(double t, double size, double slide);

/* ---- Accumulators (agg.c) -------------------------------------------------------------
 * A pool keeps the count/sum/avg/min/max/first/last state of one aggregate spec, entries
 * numbered j = 0, 1, ... in the order of kinds[]. A slot is valid from alloc to release;
 * passing any other slot, or a j out of range or of another kind, is undefined. Records
 * never move, and released slots are reused. min/max skip NaN; min/max/first/last can
 * hand an entry to Lua (for values that are not numbers): from then on its add returns 1
 * and does nothing, merge skips it, and result returns -1, until the slot is released. */

sl_agg_pool *sl_agg_pool_new(const int *kinds, int n); /* NULL on OOM or a bad kind */
void sl_agg_pool_free(sl_agg_pool *p);            /* NULL is a no-op */
int32_t sl_agg_pool_alloc(sl_agg_pool *p);        /* a fresh slot, or ENOMEM */
void sl_agg_pool_release(sl_agg_pool *p, int32_t slot);
size_t sl_agg_pool_live(const sl_agg_pool *p);    /* slots allocated and not released */
size_t sl_agg_pool_bytes(const sl_agg_pool *p);   /* memory the pool holds */
int sl_agg_pool_saved_width(const sl_agg_pool *p);    /* doubles sl_agg_save writes */
/* Asks for a slot's record in the cache: a loop over slots that lie apart in memory (a
 * pane's, in the order of its keys) calls it some entries ahead of the one it works on. */
void sl_agg_prefetch(const sl_agg_pool *p, int32_t slot);

void sl_agg_count_add(sl_agg_pool *p, int32_t slot, int j);
void sl_agg_sum_add(sl_agg_pool *p, int32_t slot, int j, double x);
void sl_agg_avg_add(sl_agg_pool *p, int32_t slot, int j, double x);
int sl_agg_min_add(sl_agg_pool *p, int32_t slot, int j, double x);    /* 0, or 1: Lua's */
int sl_agg_max_add(sl_agg_pool *p, int32_t slot, int j, double x);
/* Where a slot's fields lie. They stay there while the slot is held (a pool's chunks never
 * move), so whoever holds the slot may keep the pointer (combine.c's map does). */
double *sl_agg_record(const sl_agg_pool *p, int32_t slot);
/* n records' bytes, record i into every entry of the slot whose fields are at r[i]
 * (sl_agg_record; count, sum, avg, min, max only): entry j reads the double at
 * rec[i] + value_at[j] (count reads none), as its add above would, records in order (two
 * of them may be one slot's). */
void sl_agg_add_bytes(const sl_agg_pool *p, double *const *r, const uint8_t *const *rec,
                      int n, const int *value_at);
/* By event time t: first keeps the earliest (ties: the first seen), last the latest
 * (ties: the last seen). t must not be NaN. */
int sl_agg_first_add(sl_agg_pool *p, int32_t slot, int j, double x, double t);
int sl_agg_last_add(sl_agg_pool *p, int32_t slot, int j, double x, double t);
/* Folds every entry of src into dst, as if dst had seen src's values after its own. */
void sl_agg_merge(sl_agg_pool *p, int32_t dst, int32_t src);
/* Entry j's result in out[0] (first/last: their time in out[1]). Returns 1, 0 when there
 * is none (avg/min/max/first/last of no values), or -1 when Lua holds the entry. count
 * and sum always have one (sum of nothing is 0). */
int sl_agg_result(const sl_agg_pool *p, int32_t slot, int j, double *out);
/* Marks entry j (min/max/first/last) as held by Lua; read its result first. */
void sl_agg_hand_to_lua(sl_agg_pool *p, int32_t slot, int j);
/* A slot's state as sl_agg_pool_saved_width doubles, per entry: count n; sum s, c; avg
 * s, c, n; min/max v (NaN: empty); first/last v, t (t NaN: empty); held: a NaN for Lua to
 * fill. load reads the same layout into a fresh slot. */
void sl_agg_save(const sl_agg_pool *p, int32_t slot, double *out);
void sl_agg_load(sl_agg_pool *p, int32_t slot, const double *in);
/* Saved states into slots, n of them: slots[i] takes the values at saved + i * stride
 * doubles (that layout; they need not lie on a double's boundary: a message's): merged in when slots[i] is a slot (as sl_agg_merge of a slot loaded with
 * them would), loaded into slot -1 - slots[i] when it is negative (a fresh one), skipped
 * when SL_AGG_SKIP. The slots are fetched ahead of their turn: a window takes a pane's
 * partials so, hundreds of thousands at once, each slot elsewhere in memory. Returns 0, or
 * ENOMEM (nothing from the first merge on is taken). */
#define SL_AGG_SKIP INT32_MIN
int sl_agg_absorb_saved(sl_agg_pool *p, const int32_t *slots, const void *saved,
                        int64_t stride, int64_t n);

/* ---- Distinct counter (sketch_hll.c) --------------------------------------------------
 * The add functions return 0, or ENOMEM (the value is then not counted). hash must be a
 * well-mixed 64-bit hash; add_num and add_str hash with XXH64 (seed 0), which is part of
 * the snapshot format: values added before and after a load must hash alike. */

sl_hll *sl_hll_new(void);                         /* empty and sparse; NULL on OOM */
void sl_hll_free(sl_hll *h);                      /* NULL is a no-op */
int sl_hll_add_hash(sl_hll *h, uint64_t hash);
int sl_hll_add_num(sl_hll *h, double x);          /* -0 counts as 0, all NaNs as one */
int sl_hll_add_str(sl_hll *h, const char *s, size_t len);
int sl_hll_merge(sl_hll *dst, const sl_hll *src); /* 0 or ENOMEM (dst unchanged) */
double sl_hll_estimate(const sl_hll *h);
size_t sl_hll_size(const sl_hll *h);              /* bytes sl_hll_save will write */
size_t sl_hll_save(const sl_hll *h, char *out);   /* writes sl_hll_size(h) bytes */
sl_hll *sl_hll_load(const char *buf, size_t len); /* NULL on bad input or OOM */

/* ---- Quantile sketch (sketch_quantile.c) ----------------------------------------------
 * Deterministic: the same values in the same order (and the same merges) give the same
 * answers, across save and load too. */

sl_quantile *sl_quantile_new(void);               /* NULL on OOM */
void sl_quantile_free(sl_quantile *sk);           /* NULL is a no-op */
int sl_quantile_add(sl_quantile *sk, double x);   /* 0, ENOMEM, or EINVAL on NaN */
/* Folds src into dst; src is unchanged. Returns 0, ENOMEM (dst's contents unchanged), or
 * EINVAL when dst == src. */
int sl_quantile_merge(sl_quantile *dst, const sl_quantile *src);
/* The value at rank q in [0, 1] (q = 0: the exact minimum, q = 1: the exact maximum);
 * NaN when empty or q is not in [0, 1]. Not const: it sorts the sketch's unsorted
 * buffer in place, which changes no answer (a save afterwards may differ in bytes). */
double sl_quantile_query(sl_quantile *sk, double q);
uint64_t sl_quantile_count(const sl_quantile *sk);
size_t sl_quantile_size(const sl_quantile *sk);
size_t sl_quantile_save(const sl_quantile *sk, char *out);
sl_quantile *sl_quantile_load(const char *buf, size_t len);

/* ---- Key groups ------------------------------------------------------------------------ */

/* The key group (0 .. SL_KEY_GROUPS - 1) of a key, the unit in which keyed state is placed on
 * workers and stored in checkpoints: the same for the same key in every Lua state and run.
 * A number that is a whole number hashes as that integer (1 and 1.0 are one key, as in Lua). */
enum { SL_KEY_GROUPS = 128 };
int sl_key_group_str(const char *s, size_t len);
int sl_key_group_num(double x);

#endif
