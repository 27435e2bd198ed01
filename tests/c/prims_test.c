/* prims_test.c -- checks host/prims.h without Lua: timer heap order, window arithmetic,
 * accumulators, and the accuracy, merge and snapshots of the HLL and KLL sketches.
 *
 * Prints one line per check and exits 1 if any failed. Deterministic: fixed seeds.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prims.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static int failures, passes;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;

    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    if (ok)
        passes++;
    else
        failures++;
}

/* splitmix64: the test's own generator, independent of the sketches'. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static double unif(uint64_t *s)
{
    return ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* ---- timeq ---- */

struct ent {
    double t;
    int64_t id;
};

static int cmp_ent(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;

    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void test_timeq(void)
{
    enum { N = 20000 };
    sl_timeq *q = sl_timeq_new();
    struct ent *ref = malloc(N * sizeof *ref);
    uint64_t s = 1;
    int ok = 1, k;
    double t;
    int64_t id;
    int64_t ids[64];
    double times[64];

    if (q == NULL || ref == NULL) {
        check(0, "timeq: allocation");
        return;
    }
    check(sl_timeq_len(q) == 0 && isinf(sl_timeq_peek_time(q)) && sl_timeq_peek_time(q) > 0,
          "timeq: empty queue has length 0 and peeks +inf");
    check(sl_timeq_pop(q, &t, &id) == -1, "timeq: pop on empty returns -1");
    check(sl_timeq_push(q, NAN, 1) == SL_PRIM_EINVAL && sl_timeq_len(q) == 0,
          "timeq: NaN time is refused");

    /* Many duplicate times (only 500 distinct) exercise the id tie-break. */
    for (int i = 0; i < N; i++) {
        ref[i].t = (double)(rnd(&s) % 500) - 100.0;
        ref[i].id = (int64_t)(rnd(&s) % 1000000) - 500000;
        if (sl_timeq_push(q, ref[i].t, ref[i].id) != 0)
            ok = 0;
    }
    check(ok && sl_timeq_len(q) == N, "timeq: %d pushes", N);
    qsort(ref, N, sizeof *ref, cmp_ent);
    for (int i = 0; i < N; i++) {
        if (sl_timeq_peek_time(q) != ref[i].t || sl_timeq_pop(q, &t, &id) != 0 ||
            t != ref[i].t || id != ref[i].id) {
            ok = 0;
            break;
        }
    }
    check(ok && sl_timeq_len(q) == 0, "timeq: pops come out in (time, id) order");

    sl_timeq_push(q, 5, 3);
    sl_timeq_push(q, 5, 1);
    sl_timeq_push(q, 1, 9);
    sl_timeq_push(q, 5, 2);
    sl_timeq_push(q, 5, -7);
    {
        int64_t want[] = { 9, -7, 1, 2, 3 };

        k = sl_timeq_pop_until(q, 5, ids, times, 64);
        ok = k == 5;
        for (int i = 0; ok && i < 5; i++)
            ok = ids[i] == want[i];
        check(ok && times[0] == 1 && times[4] == 5,
              "timeq: equal times fire by ascending id");
    }

    for (int i = 99; i >= 0; i--)
        sl_timeq_push(q, i, 1000 + i);
    sl_timeq_push(q, INFINITY, 7);
    k = sl_timeq_pop_until(q, 49.5, ids, times, 16);
    ok = k == 16 && ids[0] == 1000 && ids[15] == 1015 && times[15] == 15;
    k = sl_timeq_pop_until(q, 49.5, ids, NULL, 64);
    ok = ok && k == 34 && ids[33] == 1049;
    check(ok && sl_timeq_peek_time(q) == 50 && sl_timeq_len(q) == 51,
          "timeq: pop_until stops at the watermark and at cap");
    check(sl_timeq_pop_until(q, NAN, ids, times, 64) == 0 &&
          sl_timeq_pop_until(q, 49.9, ids, times, 64) == 0 &&
          sl_timeq_pop_until(q, 10, ids, times, 0) == 0,
          "timeq: pop_until with nothing due, a NaN watermark or cap 0 pops nothing");
    k = sl_timeq_pop_until(q, INFINITY, ids, times, 64);
    check(k == 51 && ids[50] == 7 && isinf(times[50]) && sl_timeq_len(q) == 0,
          "timeq: watermark +inf pops everything, +inf entries included");

    sl_timeq_free(q);
    sl_timeq_free(NULL);
    free(ref);
}

/* ---- window ---- */

static void test_window(void)
{
    int ok = 1;

    check(sl_window_tumbling_start(0, 10) == 0 && sl_window_tumbling_start(9, 10) == 0 &&
          sl_window_tumbling_start(10, 10) == 10 &&
          sl_window_tumbling_start(1700000012345, 10000) == 1700000010000,
          "window: tumbling start for t >= 0");
    check(sl_window_tumbling_start(-1, 10) == -10 &&
          sl_window_tumbling_start(-10, 10) == -10 &&
          sl_window_tumbling_start(-11, 10) == -20 &&
          sl_window_tumbling_start(-9999, 10000) == -10000,
          "window: tumbling start for t < 0 uses a floor modulo");
    for (int64_t size = 1; size <= 13; size++) {
        for (int64_t t = -100; t <= 100; t++) {
            int64_t s = sl_window_tumbling_start(t, size);

            if (!(s <= t && t < s + size && (s / size) * size == s))
                ok = 0;
        }
    }
    check(ok, "window: tumbling start holds t and is aligned, t in [-100, 100]");
    check(sl_window_tumbling_start(5, 0) == INT64_MIN && sl_window_tumbling_start(5, -3) ==
          INT64_MIN && sl_window_tumbling_start(INT64_MIN, 7) == INT64_MIN,
          "window: bad size or unrepresentable start gives INT64_MIN");

    check(sl_window_sliding_count(10, 5) == 2 && sl_window_sliding_count(10, 3) == 4 &&
          sl_window_sliding_count(10, 10) == 1 && sl_window_sliding_count(5, 10) == 1 &&
          sl_window_sliding_count(0, 1) == -1,
          "window: sliding count is ceil(size/slide)");
    check(sl_window_sliding_first(5, 10, 5) == 0 &&
          sl_window_sliding_first(0, 10, 5) == -5 &&
          sl_window_sliding_first(-1, 10, 5) == -10 &&
          sl_window_sliding_first(7, 5, 10) > 7,
          "window: sliding first, examples");

    /* Against brute force: every multiple of slide whose window holds t. */
    ok = 1;
    for (int64_t size = 1; size <= 20; size++) {
        for (int64_t slide = 1; slide <= 20; slide++) {
            for (int64_t t = -60; t <= 60; t++) {
                int64_t first = sl_window_sliding_first(t, size, slide), want = INT64_MAX;
                int64_t cnt = 0, maxc = sl_window_sliding_count(size, slide);

                for (int64_t s = -200; s <= 200; s++) {
                    if (((s % slide) + slide) % slide == 0 && s <= t && t < s + size) {
                        if (s < want)
                            want = s;
                        cnt++;
                    }
                }
                if (cnt > 0) {
                    int64_t n = 0, last = sl_window_tumbling_start(t, slide);

                    for (int64_t s = first; s <= last; s += slide)
                        n++;
                    if (first != want || n != cnt || cnt > maxc || cnt < maxc - 1)
                        ok = 0;
                } else if (first <= t) {
                    ok = 0;
                }
            }
        }
    }
    check(ok, "window: sliding first and count match brute force, t in [-60, 60]");
}

/* ---- accumulators ---- */

static void test_agg(void)
{
    enum { N = 1000 };
    double v[N];
    uint64_t s = 7;
    sl_agg_count c, c1, c2;
    sl_agg_sum su, su1, su2;
    sl_agg_min mi, mi1, mi2;
    sl_agg_max ma, ma1, ma2;
    sl_agg_avg av, av1, av2;
    sl_agg_first fi, fi1, fi2;
    sl_agg_last la, la1, la2;
    double lo = INFINITY, hi = -INFINITY, total = 0;

    sl_agg_count_init(&c);
    sl_agg_sum_init(&su);
    sl_agg_min_init(&mi);
    sl_agg_max_init(&ma);
    sl_agg_avg_init(&av);
    sl_agg_first_init(&fi);
    sl_agg_last_init(&la);
    check(sl_agg_count_result(&c) == 0 && sl_agg_sum_result(&su) == 0 &&
          isnan(sl_agg_min_result(&mi)) && isnan(sl_agg_max_result(&ma)) &&
          isnan(sl_agg_avg_result(&av)) && isnan(sl_agg_first_result(&fi)) &&
          isnan(sl_agg_last_result(&la)),
          "agg: empty results (count 0, sum 0, others NaN)");

    for (int i = 0; i < N; i++) {
        v[i] = (double)(int64_t)(rnd(&s) % 2001) - 1000.0;   /* integers: exact sums */
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        total += v[i];
    }
    sl_agg_count_init(&c1); sl_agg_count_init(&c2);
    sl_agg_sum_init(&su1); sl_agg_sum_init(&su2);
    sl_agg_min_init(&mi1); sl_agg_min_init(&mi2);
    sl_agg_max_init(&ma1); sl_agg_max_init(&ma2);
    sl_agg_avg_init(&av1); sl_agg_avg_init(&av2);
    sl_agg_first_init(&fi1); sl_agg_first_init(&fi2);
    sl_agg_last_init(&la1); sl_agg_last_init(&la2);
    for (int i = 0; i < N; i++) {
        /* Event times out of arrival order: time = 5000 - i for the first half. */
        double t = i < N / 2 ? 5000.0 - i : 10000.0 + i;

        sl_agg_count_add(&c);
        sl_agg_sum_add(&su, v[i]);
        sl_agg_min_add(&mi, v[i]);
        sl_agg_max_add(&ma, v[i]);
        sl_agg_avg_add(&av, v[i]);
        sl_agg_first_add(&fi, v[i], t);
        sl_agg_last_add(&la, v[i], t);
        if (i % 3 == 0) {
            sl_agg_count_add(&c1);
            sl_agg_sum_add(&su1, v[i]);
            sl_agg_min_add(&mi1, v[i]);
            sl_agg_max_add(&ma1, v[i]);
            sl_agg_avg_add(&av1, v[i]);
            sl_agg_first_add(&fi1, v[i], t);
            sl_agg_last_add(&la1, v[i], t);
        } else {
            sl_agg_count_add(&c2);
            sl_agg_sum_add(&su2, v[i]);
            sl_agg_min_add(&mi2, v[i]);
            sl_agg_max_add(&ma2, v[i]);
            sl_agg_avg_add(&av2, v[i]);
            sl_agg_first_add(&fi2, v[i], t);
            sl_agg_last_add(&la2, v[i], t);
        }
    }
    check(sl_agg_count_result(&c) == N && sl_agg_sum_result(&su) == total &&
          sl_agg_min_result(&mi) == lo && sl_agg_max_result(&ma) == hi &&
          sl_agg_avg_result(&av) == total / N,
          "agg: count, sum, min, max, avg");
    check(sl_agg_first_result(&fi) == v[N / 2 - 1] && fi.t == 5000.0 - (N / 2 - 1) &&
          sl_agg_last_result(&la) == v[N - 1] && la.t == 10000.0 + N - 1,
          "agg: first and last go by event time, not arrival");

    sl_agg_count_merge(&c1, &c2);
    sl_agg_sum_merge(&su1, &su2);
    sl_agg_min_merge(&mi1, &mi2);
    sl_agg_max_merge(&ma1, &ma2);
    sl_agg_avg_merge(&av1, &av2);
    sl_agg_first_merge(&fi1, &fi2);
    sl_agg_last_merge(&la1, &la2);
    check(sl_agg_count_result(&c1) == N && sl_agg_sum_result(&su1) == total &&
          sl_agg_min_result(&mi1) == lo && sl_agg_max_result(&ma1) == hi &&
          sl_agg_avg_result(&av1) == total / N &&
          sl_agg_first_result(&fi1) == v[N / 2 - 1] && sl_agg_last_result(&la1) == v[N - 1],
          "agg: merging two interleaved parts gives the whole's results");
    sl_agg_min_init(&mi2);
    sl_agg_min_merge(&mi1, &mi2);
    sl_agg_min_merge(&mi2, &mi1);
    check(sl_agg_min_result(&mi1) == lo && sl_agg_min_result(&mi2) == lo,
          "agg: merging with an empty accumulator, either way round");

    sl_agg_first_init(&fi);
    sl_agg_last_init(&la);
    sl_agg_first_add(&fi, 1, 100);
    sl_agg_first_add(&fi, 2, 100);
    sl_agg_last_add(&la, 1, 100);
    sl_agg_last_add(&la, 2, 100);
    check(sl_agg_first_result(&fi) == 1 && sl_agg_last_result(&la) == 2,
          "agg: on equal times first keeps the first seen, last the last seen");

    sl_agg_sum_init(&su);
    sl_agg_sum_add(&su, 1e16);
    for (int i = 0; i < 1000; i++)
        sl_agg_sum_add(&su, 1.0);
    sl_agg_sum_add(&su, -1e16);
    check(sl_agg_sum_result(&su) == 1000.0,
          "agg: compensated sum keeps 1e16 + 1000*1 - 1e16 = %g", sl_agg_sum_result(&su));
    sl_agg_sum_init(&su);
    for (int i = 0; i < 1000000; i++)
        sl_agg_sum_add(&su, 0.1);
    check(fabs(sl_agg_sum_result(&su) - 100000.0) <= 1e-9,
          "agg: a million 0.1 sum to 100000 within 1e-9 (got %.12f)",
          sl_agg_sum_result(&su));
    sl_agg_sum_init(&su);
    sl_agg_sum_add(&su, INFINITY);
    sl_agg_sum_add(&su, 1.0);
    check(isinf(sl_agg_sum_result(&su)), "agg: sum with +inf is +inf");

    sl_agg_min_init(&mi);
    sl_agg_max_init(&ma);
    sl_agg_min_add(&mi, NAN);
    sl_agg_max_add(&ma, NAN);
    sl_agg_min_add(&mi, 3);
    sl_agg_max_add(&ma, 3);
    sl_agg_min_add(&mi, NAN);
    check(sl_agg_min_result(&mi) == 3 && mi.n == 1 && sl_agg_max_result(&ma) == 3,
          "agg: min and max skip NaN");
}

/* ---- HyperLogLog ---- */

static sl_hll *hll_range(uint64_t from, uint64_t to)
{
    sl_hll *h = sl_hll_new();

    for (uint64_t i = from; h != NULL && i < to; i++)
        if (sl_hll_add_num(h, (double)i) != 0) {
            sl_hll_free(h);
            return NULL;
        }
    return h;
}

/* Saves h, loads it back, and checks that the copy estimates and saves the same. */
static int hll_roundtrip(const sl_hll *h)
{
    size_t n = sl_hll_size(h);
    char *a = malloc(n), *b = malloc(n);
    sl_hll *g;
    int ok;

    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return 0;
    }
    ok = sl_hll_save(h, a) == n && (g = sl_hll_load(a, n)) != NULL;
    if (ok) {
        ok = sl_hll_size(g) == n && sl_hll_save(g, b) == n && memcmp(a, b, n) == 0 &&
             sl_hll_estimate(g) == sl_hll_estimate(h);
        sl_hll_free(g);
    }
    /* Truncated, extended or versioned differently: refused. */
    ok = ok && sl_hll_load(a, n - 1) == NULL && sl_hll_load(a, 2) == NULL;
    a[0] = (char)(SL_HLL_VERSION + 1);
    ok = ok && sl_hll_load(a, n) == NULL;
    free(a);
    free(b);
    return ok;
}

static void test_hll(void)
{
    long small[] = { 0, 1, 10, 1000 };
    long big[] = { 100000, 1000000 };
    sl_hll *h, *a, *b;
    double e;
    char key[32];

    for (int i = 0; i < 4; i++) {
        h = hll_range(0, (uint64_t)small[i]);
        /* Adding everything twice must not change anything. */
        for (long j = 0; h != NULL && j < small[i]; j++)
            sl_hll_add_num(h, (double)j);
        e = h ? sl_hll_estimate(h) : -1;
        check(h != NULL && fabs(e - small[i]) <= 0.002 * small[i] + 0.01,
              "hll: %ld distinct -> %.3f (sparse, near exact)", small[i], e);
        if (h != NULL && small[i] > 0)
            check(sl_hll_size(h) == 7 + 4 * (size_t)small[i],
                  "hll: %ld distinct take %zu bytes saved", small[i], sl_hll_size(h));
        sl_hll_free(h);
    }
    for (int i = 0; i < 2; i++) {
        h = hll_range(0, (uint64_t)big[i]);
        e = h ? sl_hll_estimate(h) : -1;
        check(h != NULL && fabs(e / big[i] - 1) <= 0.02,
              "hll: %ld distinct numbers -> %.0f (error %+.3f%%)", big[i], e,
              100 * (e / big[i] - 1));
        sl_hll_free(h);

        h = sl_hll_new();
        for (long j = 0; h != NULL && j < big[i]; j++) {
            int n = snprintf(key, sizeof key, "user-%ld", j);

            sl_hll_add_str(h, key, (size_t)n);
        }
        e = h ? sl_hll_estimate(h) : -1;
        check(h != NULL && fabs(e / big[i] - 1) <= 0.02,
              "hll: %ld distinct strings -> %.0f (error %+.3f%%)", big[i], e,
              100 * (e / big[i] - 1));
        sl_hll_free(h);
    }
    h = sl_hll_new();
    sl_hll_add_num(h, 0.0);
    sl_hll_add_num(h, -0.0);
    sl_hll_add_num(h, NAN);
    sl_hll_add_num(h, -NAN);
    sl_hll_add_str(h, "", 0);
    check(fabs(sl_hll_estimate(h) - 3) < 0.01, "hll: 0 and -0 count once, NaNs once");
    sl_hll_free(h);

    /* Halves, in each combination of sparse and dense; the union of registers is exact,
     * so the merged sketch equals the whole one. */
    {
        uint64_t cut[][3] = { { 0, 1000, 2000 },       /* sparse + sparse -> sparse */
                              { 0, 3000, 6000 },       /* sparse + sparse -> dense */
                              { 0, 2000, 500000 },     /* dense into sparse */
                              { 0, 498000, 500000 },   /* sparse into dense */
                              { 0, 500000, 1000000 } };/* dense + dense */

        for (int i = 0; i < 5; i++) {
            sl_hll *w = hll_range(cut[i][0], cut[i][2]);
            int ok;

            a = hll_range(cut[i][0], cut[i][1]);
            b = hll_range(cut[i][1], cut[i][2]);
            ok = w && a && b && sl_hll_merge(a, b) == 0 && sl_hll_merge(a, a) == 0 &&
                 sl_hll_estimate(a) == sl_hll_estimate(w) &&
                 sl_hll_size(a) == sl_hll_size(w);
            check(ok, "hll: merge of [0,%llu) and [%llu,%llu) equals the whole (%.0f)",
                  (unsigned long long)cut[i][1], (unsigned long long)cut[i][1],
                  (unsigned long long)cut[i][2], w ? sl_hll_estimate(w) : -1.0);
            /* The merged sketch must go on like the whole one. */
            for (uint64_t j = 0; ok && j < 500; j++)
                ok = sl_hll_add_num(a, 1e7 + (double)j) == 0 &&
                     sl_hll_add_num(w, 1e7 + (double)j) == 0;
            check(ok && sl_hll_estimate(a) == sl_hll_estimate(w),
                  "hll: ... and after 500 more values too (%.0f)", sl_hll_estimate(a));
            check(a && hll_roundtrip(a),
                  "hll: save/load round trip at %llu distinct (%zu bytes)",
                  (unsigned long long)cut[i][2], a ? sl_hll_size(a) : 0);
            sl_hll_free(a);
            sl_hll_free(b);
            sl_hll_free(w);
        }
    }
    h = sl_hll_new();
    check(h && hll_roundtrip(h) && sl_hll_estimate(h) == 0, "hll: empty sketch round trip");
    sl_hll_free(h);
    {
        static const char junk[] = { SL_HLL_VERSION, SL_HLL_P, 0, 2, 0, 0, 0,
                                     0x41, 0, 0, 0, 0x41, 0, 0, 0 };

        check(sl_hll_load(junk, sizeof junk) == NULL && sl_hll_load(NULL, 0) == NULL,
              "hll: load refuses unsorted sparse entries");
    }
}

/* ---- quantiles ---- */

/* The distance from q to the interval of rank fractions that v has in sorted[0..n). */
static double rank_error(const double *sorted, size_t n, double v, double q)
{
    size_t lo = 0, hi = n, below, upto;

    while (lo < hi) {           /* first index with sorted[i] >= v */
        size_t mid = lo + (hi - lo) / 2;

        if (sorted[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    below = lo;
    hi = n;
    while (lo < hi) {           /* first index with sorted[i] > v */
        size_t mid = lo + (hi - lo) / 2;

        if (sorted[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    upto = lo;
    if (q < (double)below / n)
        return (double)below / n - q;
    if (q > (double)upto / n)
        return q - (double)upto / n;
    return 0.0;
}

static const double qs[] = { 0.01, 0.1, 0.5, 0.9, 0.99 };

/* The largest rank error of sk over qs, against the sorted data. */
static double max_rank_error(sl_quantile *sk, const double *sorted, size_t n)
{
    double worst = 0.0;

    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        double err = rank_error(sorted, n, sl_quantile_query(sk, qs[i]), qs[i]);

        if (err > worst)
            worst = err;
    }
    return worst;
}

static sl_quantile *quantile_of(const double *v, size_t from, size_t to)
{
    sl_quantile *sk = sl_quantile_new();

    for (size_t i = from; sk != NULL && i < to; i++)
        if (sl_quantile_add(sk, v[i]) != 0) {
            sl_quantile_free(sk);
            return NULL;
        }
    return sk;
}

static void test_quantile(void)
{
    enum { N = 1000000, PARTS = 10 };
    const char *names[] = { "uniform", "normal", "exponential", "pareto", "sorted",
                            "reverse-sorted", "100 distinct values" };
    double *v = malloc(N * sizeof *v), *sorted = malloc(N * sizeof *sorted);
    sl_quantile *sk, *parts[PARTS];
    uint64_t s = 42;

    if (v == NULL || sorted == NULL) {
        check(0, "quantile: allocation");
        free(v);
        free(sorted);
        return;
    }
    sk = sl_quantile_new();
    check(sk && isnan(sl_quantile_query(sk, 0.5)) && sl_quantile_count(sk) == 0 &&
          sl_quantile_add(sk, NAN) == SL_PRIM_EINVAL && sl_quantile_count(sk) == 0,
          "quantile: empty sketch answers NaN; NaN is refused");
    sl_quantile_free(sk);

    for (int d = 0; d < 7; d++) {
        double err, merr = 0.0;
        size_t bytes;

        for (size_t i = 0; i < N; i++) {
            double u = unif(&s);

            switch (d) {
            case 0: v[i] = u; break;
            case 1: v[i] = sqrt(-2 * log(u)) * cos(2 * M_PI * unif(&s)); break;
            case 2: v[i] = -log(u); break;
            case 3: v[i] = pow(u, -1.0 / 1.2); break;        /* heavy tail */
            case 4: v[i] = (double)i; break;
            case 5: v[i] = (double)(N - i); break;
            default: v[i] = (double)(rnd(&s) % 100); break;
            }
        }
        memcpy(sorted, v, N * sizeof *v);
        qsort(sorted, N, sizeof *sorted, cmp_double);

        sk = quantile_of(v, 0, N);
        if (sk == NULL) {
            check(0, "quantile: %s: allocation", names[d]);
            continue;
        }
        err = max_rank_error(sk, sorted, N);
        bytes = sl_quantile_size(sk);
        check(err <= 0.01 && sl_quantile_count(sk) == N,
              "quantile: %s, 1e6 values: max rank error %.4f%% (saved %zu bytes)",
              names[d], 100 * err, bytes);
        check(sl_quantile_query(sk, 0) == sorted[0] &&
              sl_quantile_query(sk, 1) == sorted[N - 1] &&
              isnan(sl_quantile_query(sk, 1.5)) && isnan(sl_quantile_query(sk, -0.1)),
              "quantile: %s: q=0 and q=1 are the exact extremes", names[d]);
        check(bytes <= 16384, "quantile: %s: stays small (%zu <= 16384 bytes)", names[d],
              bytes);

        /* Ten contiguous parts merged into the first. */
        for (int p = 0; p < PARTS; p++)
            parts[p] = quantile_of(v, (size_t)p * N / PARTS, (size_t)(p + 1) * N / PARTS);
        for (int p = 1; p < PARTS; p++) {
            if (parts[0] == NULL || parts[p] == NULL ||
                sl_quantile_merge(parts[0], parts[p]) != 0)
                merr = 1.0;
        }
        if (merr == 0.0)
            merr = max_rank_error(parts[0], sorted, N);
        check(merr <= 0.01 && parts[0] && sl_quantile_count(parts[0]) == N &&
              sl_quantile_merge(parts[0], parts[0]) == SL_PRIM_EINVAL,
              "quantile: %s, merge of %d parts: max rank error %.4f%% (saved %zu bytes)",
              names[d], PARTS, 100 * merr, parts[0] ? sl_quantile_size(parts[0]) : 0);
        for (int p = 0; p < PARTS; p++)
            sl_quantile_free(parts[p]);

        /* Lopsided merges: a big sketch into a small one (more levels arrive) and back. */
        if (d == 0 || d == 5) {
            sl_quantile *x = quantile_of(v, 0, 1000), *y = quantile_of(v, 1000, N);
            sl_quantile *z = quantile_of(v, 0, N - 1000), *w = quantile_of(v, N - 1000, N);
            int ok = x && y && z && w && sl_quantile_merge(x, y) == 0 &&
                     sl_quantile_merge(z, w) == 0;
            double e1 = ok ? max_rank_error(x, sorted, N) : 1.0;
            double e2 = ok ? max_rank_error(z, sorted, N) : 1.0;

            check(ok && e1 <= 0.01 && e2 <= 0.01,
                  "quantile: %s, merge of 1e3 and 1e6-1e3 values: %.4f%%, %.4f%%",
                  names[d], 100 * e1, 100 * e2);
            sl_quantile_free(x);
            sl_quantile_free(y);
            sl_quantile_free(z);
            sl_quantile_free(w);
        }

        /* Round trip, then both copies must go on identically. */
        if (d == 2 || d == 4) {
            size_t n = sl_quantile_size(sk);
            char *a = malloc(n), *b = malloc(n);
            sl_quantile *g = NULL;
            int ok = a && b && sl_quantile_save(sk, a) == n &&
                     (g = sl_quantile_load(a, n)) != NULL;

            for (size_t i = 0; ok && i < sizeof qs / sizeof *qs; i++)
                ok = sl_quantile_query(g, qs[i]) == sl_quantile_query(sk, qs[i]);
            for (size_t i = 0; ok && i < 100000; i++)
                ok = sl_quantile_add(sk, v[i]) == 0 && sl_quantile_add(g, v[i]) == 0;
            free(a);
            free(b);
            n = sl_quantile_size(sk);
            a = malloc(n);
            b = malloc(n);
            ok = ok && a && b && sl_quantile_size(g) == n && sl_quantile_save(sk, a) == n &&
                 sl_quantile_save(g, b) == n && memcmp(a, b, n) == 0;
            check(ok, "quantile: %s: save/load round trip; the copy evolves identically",
                  names[d]);
            ok = ok && sl_quantile_load(a, n - 1) == NULL;
            a[0] = (char)(SL_QUANTILE_VERSION + 1);
            ok = ok && sl_quantile_load(a, n) == NULL;
            a[0] = SL_QUANTILE_VERSION;
            a[4] ^= 1;      /* n no longer matches the weights */
            ok = ok && sl_quantile_load(a, n) == NULL;
            check(ok, "quantile: load refuses truncated, misversioned, inconsistent input");
            free(a);
            free(b);
            sl_quantile_free(g);
        }
        sl_quantile_free(sk);
    }

    /* Same input, same answers. */
    {
        sl_quantile *x = quantile_of(v, 0, 200000), *y = quantile_of(v, 0, 200000);
        int ok = x && y;

        for (int i = 0; ok && i <= 100; i++)
            ok = sl_quantile_query(x, i / 100.0) == sl_quantile_query(y, i / 100.0);
        check(ok, "quantile: deterministic for the same input");
        sl_quantile_free(x);
        sl_quantile_free(y);
    }
    /* Small inputs are exact. */
    {
        double w[] = { 5, 1, 4, 2, 3 };
        sl_quantile *x = quantile_of(w, 0, 5);

        check(x && sl_quantile_query(x, 0.5) == 3 && sl_quantile_query(x, 0.1) == 1 &&
              sl_quantile_query(x, 0.9) == 5 && sl_quantile_query(x, 0.3) == 2,
              "quantile: five values are answered exactly");
        sl_quantile_free(x);
    }
    free(v);
    free(sorted);
}

int main(void)
{
    test_timeq();
    test_window();
    test_agg();
    test_hll();
    test_quantile();
    printf("%d passed, %d failed\n", passes, failures);
    return failures != 0;
}
