/* window.c -- which windows an event time falls in, on int64 milliseconds.
 *
 * Windows are aligned to the epoch as in Flink (offset 0), and C's % truncates toward
 * zero, so every modulo here is turned into a floor modulo for times before 1970.
 */
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

int64_t sl_window_sliding_count(int64_t size, int64_t slide)
{
    if (size <= 0 || slide <= 0)
        return -1;
    return size / slide + (size % slide != 0);
}
