/* window.c -- which windows an event time falls in, on int64 milliseconds, and the same on
 * doubles for the window operators of lua/sluice/window.lua, which call it per record.
 *
 * Windows are aligned to the epoch as in Flink (offset 0), and C's % truncates toward
 * zero, so every modulo here is turned into a floor modulo for times before 1970.
 */
#include <math.h>

#include "prims.h"

/* t mod m in [0, m), for m > 0. */
static int64_t floor_mod(int64_t t, int64_t m)
{
    int64_t r = t % m;

    return r < 0 ? r + m : r;
}

int64_t sl_window_tumbling_start(int64_t t, int64_t size)
{
    int64_t r;

    if (size <= 0)
        return INT64_MIN;
    r = floor_mod(t, size);
    /* Only within size of INT64_MIN can the start not be represented. */
    if (t < INT64_MIN + r)
        return INT64_MIN;
    return t - r;
}

/* The windows holding t are those whose start s is a multiple of slide with
 * t - size < s <= t; the earliest is the first multiple of slide at or above
 * t - size + 1. */
int64_t sl_window_sliding_first(int64_t t, int64_t size, int64_t slide)
{
    int64_t x, r;

    if (size <= 0 || slide <= 0)
        return INT64_MIN;
    if (t < INT64_MIN + size - 1)
        return INT64_MIN;
    x = t - size + 1;
    r = floor_mod(x, slide);
    if (r == 0)
        return x;
    if (x > INT64_MAX - (slide - r))
        return INT64_MIN;
    return x + (slide - r);
}

/* ---- on Lua numbers ----
 * Lua's numbers are doubles, and an int64_t result would reach Lua as a boxed cdata. These
 * take and return doubles, which hold every ms exactly up to 2^53 (285,000 years). A
 * fractional t is floored first, which changes no window it falls in when the size and
 * slide are whole ms. NaN when t is NaN or beyond ±2^53, or size or slide is not a
 * whole number of ms in [1, 2^53]. */

#define EXACT 9007199254740992.0   /* 2^53 */

static int whole_ms(double x)
{
    return x >= 1 && x <= EXACT && x == floor(x);
}

/* Per record, so on doubles throughout (an int64 division costs several times a double
 * one). Below 2^52 every product and difference here is an exact integer, and the two
 * corrections undo the rounding of t / size; beyond, the int64 path. */
double sl_window_tumbling_start_ms(double t, double size)
{
    double s;

    if (!(fabs(t) <= EXACT) || !whole_ms(size))
        return NAN;
    t = floor(t);
    if (fabs(t) >= EXACT / 2 || size >= EXACT / 2)
        return (double)sl_window_tumbling_start((int64_t)t, (int64_t)size);
    s = floor(t / size) * size;
    if (s > t)
        s -= size;
    else if (t - s >= size)
        s += size;
    return s;
}

double sl_window_sliding_first_ms(double t, double size, double slide)
{
    if (!(fabs(t) <= EXACT) || !whole_ms(size) || !whole_ms(slide))
        return NAN;
    return (double)sl_window_sliding_first((int64_t)floor(t), (int64_t)size, (int64_t)slide);
}
