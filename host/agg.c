/* agg.c -- the accumulators behind sl.count, sum, min, max, avg, first and last.
 *
 * Each is a plain struct (see prims.h) that Lua may also read through the FFI. Sums are
 * compensated (Neumaier's variant of Kahan), so a window sum does not depend on how many
 * values it had or in what order they came, beyond the last bit or so.
 */
#include <math.h>

#include "prims.h"

/* ---- count ---- */

void sl_agg_count_init(sl_agg_count *a)
{
    a->n = 0;
}

void sl_agg_count_add(sl_agg_count *a)
{
    a->n++;
}

void sl_agg_count_merge(sl_agg_count *dst, const sl_agg_count *src)
{
    dst->n += src->n;
}

int64_t sl_agg_count_result(const sl_agg_count *a)
{
    return a->n;
}

/* ---- sum ---- */

void sl_agg_sum_init(sl_agg_sum *a)
{
    a->sum = 0.0;
    a->c = 0.0;
}

/* Neumaier: unlike plain Kahan, also right when x is larger than the running sum. This
 * needs strict IEEE arithmetic: never build this file with -ffast-math. */
void sl_agg_sum_add(sl_agg_sum *a, double x)
{
    double t = a->sum + x;

    if (fabs(a->sum) >= fabs(x))
        a->c += (a->sum - t) + x;
    else
        a->c += (x - t) + a->sum;
    a->sum = t;
}

void sl_agg_sum_merge(sl_agg_sum *dst, const sl_agg_sum *src)
{
    sl_agg_sum_add(dst, src->sum);
    dst->c += src->c;
}

/* Once the sum is infinite or NaN the compensation is NaN (inf - inf), and the sum itself
 * is the IEEE answer. */
double sl_agg_sum_result(const sl_agg_sum *a)
{
    return isfinite(a->sum) ? a->sum + a->c : a->sum;
}

/* ---- min and max ----
 * NaN has no order: comparing with it is false, so letting it in would make the result
 * depend on arrival order. Like SQL's NULL, it is skipped. */

void sl_agg_min_init(sl_agg_min *a)
{
    a->v = NAN;
    a->n = 0;
}

void sl_agg_min_add(sl_agg_min *a, double x)
{
    if (isnan(x))
        return;
    if (a->n == 0 || x < a->v)
        a->v = x;
    a->n++;
}

void sl_agg_min_merge(sl_agg_min *dst, const sl_agg_min *src)
{
    if (src->n == 0)
        return;
    if (dst->n == 0 || src->v < dst->v)
        dst->v = src->v;
    dst->n += src->n;
}

double sl_agg_min_result(const sl_agg_min *a)
{
    return a->n > 0 ? a->v : NAN;
}

void sl_agg_max_init(sl_agg_max *a)
{
    a->v = NAN;
    a->n = 0;
}

void sl_agg_max_add(sl_agg_max *a, double x)
{
    if (isnan(x))
        return;
    if (a->n == 0 || x > a->v)
        a->v = x;
    a->n++;
}

void sl_agg_max_merge(sl_agg_max *dst, const sl_agg_max *src)
{
    if (src->n == 0)
        return;
    if (dst->n == 0 || src->v > dst->v)
        dst->v = src->v;
    dst->n += src->n;
}

double sl_agg_max_result(const sl_agg_max *a)
{
    return a->n > 0 ? a->v : NAN;
}

/* ---- avg ---- */

void sl_agg_avg_init(sl_agg_avg *a)
{
    sl_agg_sum_init(&a->s);
    a->n = 0;
}

void sl_agg_avg_add(sl_agg_avg *a, double x)
{
    sl_agg_sum_add(&a->s, x);
    a->n++;
}

void sl_agg_avg_merge(sl_agg_avg *dst, const sl_agg_avg *src)
{
    sl_agg_sum_merge(&dst->s, &src->s);
    dst->n += src->n;
}

double sl_agg_avg_result(const sl_agg_avg *a)
{
    return a->n > 0 ? sl_agg_sum_result(&a->s) / (double)a->n : NAN;
}

/* ---- first and last ----
 * By event time, not arrival: first keeps the earliest time and, on a tie, the value seen
 * first; last keeps the latest time and, on a tie, the value seen last. merge treats dst
 * as seen before src. Times must not be NaN. */

void sl_agg_first_init(sl_agg_first *a)
{
    a->v = NAN;
    a->t = INFINITY;
    a->n = 0;
}

void sl_agg_first_add(sl_agg_first *a, double x, double t)
{
    if (a->n == 0 || t < a->t) {
        a->v = x;
        a->t = t;
    }
    a->n++;
}

void sl_agg_first_merge(sl_agg_first *dst, const sl_agg_first *src)
{
    if (src->n == 0)
        return;
    if (dst->n == 0 || src->t < dst->t) {
        dst->v = src->v;
        dst->t = src->t;
    }
    dst->n += src->n;
}

double sl_agg_first_result(const sl_agg_first *a)
{
    return a->n > 0 ? a->v : NAN;
}

void sl_agg_last_init(sl_agg_last *a)
{
    a->v = NAN;
    a->t = -INFINITY;
    a->n = 0;
}

void sl_agg_last_add(sl_agg_last *a, double x, double t)
{
    if (a->n == 0 || t >= a->t) {
        a->v = x;
        a->t = t;
    }
    a->n++;
}

void sl_agg_last_merge(sl_agg_last *dst, const sl_agg_last *src)
{
    if (src->n == 0)
        return;
    if (dst->n == 0 || src->t >= dst->t) {
        dst->v = src->v;
        dst->t = src->t;
    }
    dst->n += src->n;
}

double sl_agg_last_result(const sl_agg_last *a)
{
    return a->n > 0 ? a->v : NAN;
}
