/* prims_test.c -- checks host/prims.h without Lua: timer heap order, window arithmetic,
 * the accumulator pool, and the accuracy, merge and snapshots of the HLL and KLL sketches.
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
                int64_t cnt = 0, maxc = (size + slide - 1) / slide;

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

    /* The double variants agree with the int64 ones, fractional times floored. */
    ok = 1;
    for (int64_t size = 1; size <= 20; size++) {
        for (int64_t slide = 1; slide <= 20; slide++) {
            for (int64_t t = -60; t <= 60; t++) {
                double ft = (double)t + 0.25 * (double)(t & 3);

                if (sl_window_tumbling_start_ms(ft, (double)size) !=
                        (double)sl_window_tumbling_start(t, size) ||
                    sl_window_sliding_first_ms(ft, (double)size, (double)slide) !=
                        (double)sl_window_sliding_first(t, size, slide))
                    ok = 0;
            }
        }
    }
    check(ok, "window: _ms variants match the int64 ones, t in [-60, 60] with fractions");
    check(sl_window_tumbling_start_ms(1700000012345.5, 10000) == 1700000010000.0 &&
          sl_window_tumbling_start_ms(-0.5, 10) == -10 &&
          sl_window_tumbling_start_ms(9007199254740991.0, 10) == 9007199254740990.0 &&
          sl_window_tumbling_start_ms(-9007199254740991.0, 10) == -9007199254741000.0 &&
          sl_window_tumbling_start_ms(4503599627370497.0, 3) ==
              (double)sl_window_tumbling_start(4503599627370497, 3),
          "window: _ms at epoch times, below zero and near 2^53");
    /* t / size rounds up to a whole number here: the start must still be at or below t. */
    ok = 1;
    for (double t = 4503599627370000.0; t < 4503599627370496.0; t += 37) {
        for (double size = 3; size < 40; size += 2) {
            double st = sl_window_tumbling_start_ms(t, size);

            if (!(st <= t && t < st + size && fmod(st, size) == 0))
                ok = 0;
        }
    }
    check(ok, "window: _ms tumbling start holds t and is aligned just below 2^52");
    check(isnan(sl_window_tumbling_start_ms(NAN, 10)) &&
          isnan(sl_window_tumbling_start_ms(INFINITY, 10)) &&
          isnan(sl_window_tumbling_start_ms(1e300, 10)) &&
          isnan(sl_window_tumbling_start_ms(5, 0)) &&
          isnan(sl_window_tumbling_start_ms(5, 2.5)) &&
          isnan(sl_window_sliding_first_ms(5, 10, 0)) &&
          isnan(sl_window_sliding_first_ms(NAN, 10, 5)),
          "window: _ms give NaN for a NaN or huge time, or a size that is not whole ms");
}

/* ---- accumulators ---- */

/* A pool with one entry of each kind C keeps, plus a Lua-held one between them (it has no
 * fields, and must not shift the others). */
enum { E_COUNT, E_SUM, E_MIN, E_MAX, E_HELD, E_AVG, E_FIRST, E_LAST, E_N };
static const int all_kinds[E_N] = { SL_AGG_COUNT, SL_AGG_SUM, SL_AGG_MIN, SL_AGG_MAX,
                                    SL_AGG_HELD, SL_AGG_AVG, SL_AGG_FIRST, SL_AGG_LAST };

/* Entry j's result, or NaN when it has none. */
static double res(const sl_agg_pool *p, int32_t slot, int j)
{
    double out[2];

    return sl_agg_result(p, slot, j, out) == 1 ? out[0] : NAN;
}

static double res_time(const sl_agg_pool *p, int32_t slot, int j)
{
    double out[2];

    return sl_agg_result(p, slot, j, out) == 1 ? out[1] : NAN;
}

static void add_all(sl_agg_pool *p, int32_t slot, double x, double t)
{
    sl_agg_count_add(p, slot, E_COUNT);
    sl_agg_sum_add(p, slot, E_SUM, x);
    sl_agg_min_add(p, slot, E_MIN, x);
    sl_agg_max_add(p, slot, E_MAX, x);
    sl_agg_avg_add(p, slot, E_AVG, x);
    sl_agg_first_add(p, slot, E_FIRST, x, t);
    sl_agg_last_add(p, slot, E_LAST, x, t);
}

static void test_agg(void)
{
    enum { N = 1000 };
    double v[N], out[2];
    uint64_t s = 7;
    double lo = INFINITY, hi = -INFINITY, total = 0;
    sl_agg_pool *p = sl_agg_pool_new(all_kinds, E_N);
    int32_t a, a1, a2, e;
    int bad_kind[2] = { SL_AGG_SUM, 99 };

    check(p != NULL && sl_agg_pool_new(bad_kind, 2) == NULL,
          "agg: a pool for every kind; an unknown kind is refused");
    check(sl_agg_pool_saved_width(p) == 1 + 2 + 1 + 1 + 1 + 3 + 2 + 2,
          "agg: saved width is the sum of each kind's (%d)", sl_agg_pool_saved_width(p));
    a = sl_agg_pool_alloc(p);
    e = sl_agg_pool_alloc(p);
    check(a >= 0 && e >= 0 && a != e && sl_agg_pool_live(p) == 2, "agg: two distinct slots");
    check(res(p, e, E_COUNT) == 0 && res(p, e, E_SUM) == 0 &&
          sl_agg_result(p, e, E_MIN, out) == 0 && sl_agg_result(p, e, E_MAX, out) == 0 &&
          sl_agg_result(p, e, E_AVG, out) == 0 && sl_agg_result(p, e, E_FIRST, out) == 0 &&
          sl_agg_result(p, e, E_LAST, out) == 0,
          "agg: empty results (count 0, sum 0, the others none)");

    for (int i = 0; i < N; i++) {
        v[i] = (double)(int64_t)(rnd(&s) % 2001) - 1000.0;   /* integers: exact sums */
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        total += v[i];
    }
    a1 = sl_agg_pool_alloc(p);
    a2 = sl_agg_pool_alloc(p);
    for (int i = 0; i < N; i++) {
        /* Event times out of arrival order: time = 5000 - i for the first half. */
        double t = i < N / 2 ? 5000.0 - i : 10000.0 + i;

        add_all(p, a, v[i], t);
        add_all(p, i % 3 == 0 ? a1 : a2, v[i], t);
    }
    check(res(p, a, E_COUNT) == N && res(p, a, E_SUM) == total && res(p, a, E_MIN) == lo &&
          res(p, a, E_MAX) == hi && res(p, a, E_AVG) == total / N,
          "agg: count, sum, min, max, avg");
    check(res(p, a, E_FIRST) == v[N / 2 - 1] && res_time(p, a, E_FIRST) == 5000.0 - (N / 2 - 1) &&
          res(p, a, E_LAST) == v[N - 1] && res_time(p, a, E_LAST) == 10000.0 + N - 1,
          "agg: first and last go by event time, not arrival");

    sl_agg_merge(p, a1, a2);
    check(res(p, a1, E_COUNT) == N && res(p, a1, E_SUM) == total && res(p, a1, E_MIN) == lo &&
          res(p, a1, E_MAX) == hi && res(p, a1, E_AVG) == total / N &&
          res(p, a1, E_FIRST) == v[N / 2 - 1] && res(p, a1, E_LAST) == v[N - 1],
          "agg: merging two interleaved parts gives the whole's results");
    sl_agg_merge(p, a1, e);
    sl_agg_merge(p, e, a1);
    check(res(p, a1, E_MIN) == lo && res(p, e, E_MIN) == lo && res(p, e, E_COUNT) == N &&
          res(p, e, E_FIRST) == v[N / 2 - 1],
          "agg: merging with an empty accumulator, either way round");
    check(res(p, a2, E_COUNT) == N - (N + 2) / 3, "agg: merge leaves its source as it was");

    /* Slots come back from the free list, zeroed; records never move. */
    sl_agg_pool_release(p, a2);
    sl_agg_pool_release(p, e);
    check(sl_agg_pool_live(p) == 2, "agg: release returns slots to the pool");
    e = sl_agg_pool_alloc(p);
    a2 = sl_agg_pool_alloc(p);
    check(((e == 1 && a2 == 3) || (e == 3 && a2 == 1)) && res(p, e, E_COUNT) == 0 &&
          sl_agg_result(p, e, E_MIN, out) == 0 && sl_agg_result(p, a2, E_FIRST, out) == 0,
          "agg: released slots are reused, fresh");
    {
        enum { MANY = 5 * SL_AGG_CHUNK + 3 };
        static int32_t slots[MANY];
        int ok = 1;
        size_t small = sl_agg_pool_bytes(p);

        for (int i = 0; i < MANY; i++) {
            slots[i] = sl_agg_pool_alloc(p);
            sl_agg_sum_add(p, slots[i], E_SUM, (double)i);
        }
        for (int i = 0; i < MANY; i++)
            if (slots[i] < 0 || res(p, slots[i], E_SUM) != (double)i)
                ok = 0;
        check(ok && res(p, a, E_COUNT) == N && sl_agg_pool_bytes(p) > small,
              "agg: %d slots over several chunks keep their values", MANY);
        for (int i = 0; i < MANY; i++)
            sl_agg_pool_release(p, slots[i]);
        for (int i = 0; i < MANY; i++)
            slots[i] = sl_agg_pool_alloc(p);
        ok = 1;
        for (int i = 0; i < MANY; i++)
            if (slots[i] < 0 || slots[i] >= MANY + 4 || res(p, slots[i], E_SUM) != 0)
                ok = 0;
        check(ok && sl_agg_pool_live(p) == MANY + 4,
              "agg: after releasing them all, the same slots again, zeroed");
        for (int i = 0; i < MANY; i++)
            sl_agg_pool_release(p, slots[i]);
    }

    /* Save and load: the layout of sl_agg_save, and a round trip. */
    {
        double saved[32], again[32];
        int w = sl_agg_pool_saved_width(p), same = 1;
        int32_t b = sl_agg_pool_alloc(p);

        sl_agg_save(p, a, saved);
        check(saved[0] == N && saved[1] + saved[2] == total && saved[3] == lo &&
              saved[4] == hi && isnan(saved[5]) && saved[8] == N &&
              saved[9] == v[N / 2 - 1] && saved[10] == 5000.0 - (N / 2 - 1),
              "agg: save writes count, sum, c, min, max, held, avg (s, c, n), first, last");
        sl_agg_load(p, b, saved);
        sl_agg_save(p, b, again);
        for (int i = 0; i < w; i++)
            if (!(saved[i] == again[i] || (isnan(saved[i]) && isnan(again[i]))))
                same = 0;
        check(same && res(p, b, E_AVG) == total / N && res(p, b, E_LAST) == v[N - 1],
              "agg: load(save(a)) saves the same and gives the same results");
        sl_agg_save(p, e, saved);
        check(isnan(saved[3]) && isnan(saved[4]) && isnan(saved[9]) && isnan(saved[10]),
              "agg: an empty min, max, first, last saves as NaN");
        sl_agg_load(p, b, saved);
        check(sl_agg_result(p, b, E_MIN, out) == 0 && sl_agg_result(p, b, E_LAST, out) == 0 &&
              res(p, b, E_COUNT) == 0, "agg: and loads back empty");
        sl_agg_pool_release(p, b);
    }

    /* Absorbing saved states: loaded into fresh slots, merged into others, skipped. */
    {
        enum { K = 40 };                      /* more than absorb's look-ahead */
        double saved[K * 32], want[32], got[32];
        unsigned char unaligned[sizeof saved + 8];
        int32_t slots[K], into[K], model[K];
        int w = sl_agg_pool_saved_width(p), same = 1;

        for (int i = 0; i < K; i++) {
            int32_t from = sl_agg_pool_alloc(p);
            sl_agg_count_add(p, from, E_COUNT);
            sl_agg_sum_add(p, from, E_SUM, i);
            sl_agg_max_add(p, from, E_MAX, i % 7);
            sl_agg_save(p, from, saved + i * (w + 1));   /* (a stride wider than the layout) */
            sl_agg_pool_release(p, from);
            into[i] = sl_agg_pool_alloc(p);
            model[i] = sl_agg_pool_alloc(p);
            if (i % 3 != 0) {                         /* a state to merge into */
                sl_agg_sum_add(p, into[i], E_SUM, 100);
                sl_agg_min_add(p, into[i], E_MIN, -i);
                sl_agg_merge(p, model[i], into[i]);
            }
            slots[i] = i % 3 == 0 ? -1 - into[i] : i % 5 == 1 ? SL_AGG_SKIP : into[i];
        }
        /* (read where they lie in a message: after its header, on no double's boundary) */
        memcpy(unaligned + 3, saved, sizeof saved);
        check(sl_agg_absorb_saved(p, slots, unaligned + 3, w + 1, K) == SL_PRIM_OK,
              "agg: absorb_saved takes %d saved states, unaligned", K);
        for (int i = 0; i < K; i++) {
            if (slots[i] != SL_AGG_SKIP) {            /* the model: load, then merge */
                int32_t t = sl_agg_pool_alloc(p);
                sl_agg_load(p, t, saved + i * (w + 1));
                sl_agg_merge(p, model[i], t);
                sl_agg_pool_release(p, t);
            }
            sl_agg_save(p, model[i], want);
            sl_agg_save(p, into[i], got);
            for (int j = 0; j < w; j++)
                if (!(want[j] == got[j] || (isnan(want[j]) && isnan(got[j]))))
                    same = 0;
            sl_agg_pool_release(p, into[i]);
            sl_agg_pool_release(p, model[i]);
        }
        check(same, "agg: a fresh slot takes the state, a slot merges it, SL_AGG_SKIP leaves it");
    }

    /* Handing an entry to Lua: add reports it, merge and result leave it alone. */
    {
        int32_t b = sl_agg_pool_alloc(p), c = sl_agg_pool_alloc(p);

        sl_agg_min_add(p, b, E_MIN, 5);
        sl_agg_min_add(p, c, E_MIN, 1);
        sl_agg_first_add(p, c, E_FIRST, 7, 1);
        sl_agg_hand_to_lua(p, b, E_MIN);
        sl_agg_hand_to_lua(p, b, E_FIRST);
        check(sl_agg_min_add(p, b, E_MIN, 0) == 1 && sl_agg_first_add(p, b, E_FIRST, 0, 0) == 1 &&
              sl_agg_max_add(p, b, E_MAX, 3) == 0 && sl_agg_min_add(p, c, E_MIN, 0) == 0,
              "agg: add returns 1 on an entry Lua holds, and does nothing");
        sl_agg_merge(p, b, c);
        sl_agg_merge(p, c, b);
        check(sl_agg_result(p, b, E_MIN, out) == -1 && sl_agg_result(p, b, E_FIRST, out) == -1 &&
              res(p, c, E_MIN) == 0 && res(p, c, E_FIRST) == 7 && res(p, c, E_MAX) == 3,
              "agg: merge skips entries Lua holds on either side");
        sl_agg_pool_release(p, b);
        b = sl_agg_pool_alloc(p);
        check(sl_agg_result(p, b, E_MIN, out) == 0 && sl_agg_min_add(p, b, E_MIN, 2) == 0 &&
              res(p, b, E_MIN) == 2, "agg: a released slot comes back held by C");
        sl_agg_pool_release(p, b);
        sl_agg_pool_release(p, c);
    }

    {
        int32_t b = sl_agg_pool_alloc(p);

        sl_agg_first_add(p, b, E_FIRST, 1, 100);
        sl_agg_first_add(p, b, E_FIRST, 2, 100);
        sl_agg_last_add(p, b, E_LAST, 1, 100);
        sl_agg_last_add(p, b, E_LAST, 2, 100);
        check(res(p, b, E_FIRST) == 1 && res(p, b, E_LAST) == 2,
              "agg: on equal times first keeps the first seen, last the last seen");
        sl_agg_pool_release(p, b);

        b = sl_agg_pool_alloc(p);
        sl_agg_sum_add(p, b, E_SUM, 1e16);
        for (int i = 0; i < 1000; i++)
            sl_agg_sum_add(p, b, E_SUM, 1.0);
        sl_agg_sum_add(p, b, E_SUM, -1e16);
        check(res(p, b, E_SUM) == 1000.0,
              "agg: compensated sum keeps 1e16 + 1000*1 - 1e16 = %g", res(p, b, E_SUM));
        sl_agg_pool_release(p, b);

        b = sl_agg_pool_alloc(p);
        for (int i = 0; i < 1000000; i++)
            sl_agg_sum_add(p, b, E_SUM, 0.1);
        check(fabs(res(p, b, E_SUM) - 100000.0) <= 1e-9,
              "agg: a million 0.1 sum to 100000 within 1e-9 (got %.12f)", res(p, b, E_SUM));
        sl_agg_pool_release(p, b);

        b = sl_agg_pool_alloc(p);
        sl_agg_sum_add(p, b, E_SUM, INFINITY);
        sl_agg_sum_add(p, b, E_SUM, 1.0);
        check(isinf(res(p, b, E_SUM)), "agg: sum with +inf is +inf");
        sl_agg_pool_release(p, b);

        b = sl_agg_pool_alloc(p);
        sl_agg_min_add(p, b, E_MIN, NAN);
        sl_agg_max_add(p, b, E_MAX, NAN);
        check(sl_agg_result(p, b, E_MIN, out) == 0, "agg: min of only NaN is none");
        sl_agg_min_add(p, b, E_MIN, 3);
        sl_agg_max_add(p, b, E_MAX, 3);
        sl_agg_min_add(p, b, E_MIN, NAN);
        check(res(p, b, E_MIN) == 3 && res(p, b, E_MAX) == 3, "agg: min and max skip NaN");
        sl_agg_pool_release(p, b);
    }

    /* A spec with no C fields (collect only) still has slots. */
    {
        int held = SL_AGG_HELD;
        sl_agg_pool *q = sl_agg_pool_new(&held, 1);
        int32_t x = sl_agg_pool_alloc(q), y = sl_agg_pool_alloc(q);

        check(q != NULL && x >= 0 && y >= 0 && x != y && sl_agg_pool_saved_width(q) == 1,
              "agg: a pool of Lua-held entries only");
        sl_agg_pool_release(q, x);
        check(sl_agg_pool_alloc(q) == x, "agg: and reuses its slots");
        sl_agg_pool_free(q);
    }
    sl_agg_pool_free(p);
    sl_agg_pool_free(NULL);
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
