/* prims.h -- the C primitives that window operators call over the FFI: a timer heap,
 * window arithmetic, accumulators, and the distinct-count and quantile sketches.
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

/* Accumulators. Plain structs: the caller embeds or allocates them (ffi.new works), calls
 * init once, and may read the fields directly. None of them allocates. */
typedef struct sl_agg_count {
    int64_t n;                   /* values seen */
} sl_agg_count;

typedef struct sl_agg_sum {
    double sum;                  /* running sum */
    double c;                    /* Neumaier compensation: the low-order bits sum lost */
} sl_agg_sum;

typedef struct sl_agg_min {
    double v;                    /* smallest value so far; meaningless when n == 0 */
    int64_t n;                   /* values seen (NaN values are skipped, not counted) */
} sl_agg_min;

typedef struct sl_agg_max {
    double v;                    /* largest value so far; meaningless when n == 0 */
    int64_t n;                   /* values seen (NaN values are skipped, not counted) */
} sl_agg_max;

typedef struct sl_agg_avg {
    sl_agg_sum s;                /* compensated sum of the values */
    int64_t n;                   /* values seen */
} sl_agg_avg;

typedef struct sl_agg_first {
    double v;                    /* value of the earliest event time (first seen on ties) */
    double t;                    /* its event time, ms */
    int64_t n;                   /* values seen */
} sl_agg_first;

typedef struct sl_agg_last {
    double v;                    /* value with the latest event time (last seen on ties) */
    double t;                    /* its event time, ms */
    int64_t n;                   /* values seen */
} sl_agg_last;

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
 * return INT64_MIN (starts) or -1 (count). From Lua: a number passed as int64_t is
 * truncated toward zero, so floor a fractional time first (-0.5 belongs before 0); an
 * int64_t result is a boxed cdata, to be read with tonumber(). */

int64_t sl_window_tumbling_start(int64_t t, int64_t size);
/* The earliest start of a sliding window that holds t. The windows that hold t start at
 * first, first + slide, ... up to sl_window_tumbling_start(t, slide), and there are
 * ceil(size/slide) or one fewer of them; first > t when there are none (slide > size). */
int64_t sl_window_sliding_first(int64_t t, int64_t size, int64_t slide);
int64_t sl_window_sliding_count(int64_t size, int64_t slide);   /* ceil(size/slide) */

/* ---- Accumulators (agg.c) -------------------------------------------------------------
 * merge(dst, src) folds src into dst as if dst had seen src's values after its own. */

void sl_agg_count_init(sl_agg_count *a);
void sl_agg_count_add(sl_agg_count *a);
void sl_agg_count_merge(sl_agg_count *dst, const sl_agg_count *src);
int64_t sl_agg_count_result(const sl_agg_count *a);

void sl_agg_sum_init(sl_agg_sum *a);
void sl_agg_sum_add(sl_agg_sum *a, double x);
void sl_agg_sum_merge(sl_agg_sum *dst, const sl_agg_sum *src);
double sl_agg_sum_result(const sl_agg_sum *a);    /* 0 when empty */

void sl_agg_min_init(sl_agg_min *a);
void sl_agg_min_add(sl_agg_min *a, double x);
void sl_agg_min_merge(sl_agg_min *dst, const sl_agg_min *src);
double sl_agg_min_result(const sl_agg_min *a);    /* NaN when empty */

void sl_agg_max_init(sl_agg_max *a);
void sl_agg_max_add(sl_agg_max *a, double x);
void sl_agg_max_merge(sl_agg_max *dst, const sl_agg_max *src);
double sl_agg_max_result(const sl_agg_max *a);    /* NaN when empty */

void sl_agg_avg_init(sl_agg_avg *a);
void sl_agg_avg_add(sl_agg_avg *a, double x);
void sl_agg_avg_merge(sl_agg_avg *dst, const sl_agg_avg *src);
double sl_agg_avg_result(const sl_agg_avg *a);    /* NaN when empty */

void sl_agg_first_init(sl_agg_first *a);
void sl_agg_first_add(sl_agg_first *a, double x, double t);
void sl_agg_first_merge(sl_agg_first *dst, const sl_agg_first *src);
double sl_agg_first_result(const sl_agg_first *a);    /* NaN when empty */

void sl_agg_last_init(sl_agg_last *a);
void sl_agg_last_add(sl_agg_last *a, double x, double t);
void sl_agg_last_merge(sl_agg_last *dst, const sl_agg_last *src);
double sl_agg_last_result(const sl_agg_last *a);      /* NaN when empty */

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

#endif
