/* codec_number.c -- sl_codec_number: how every encoder writes a double.
 *
 * Integral values print as plain digits (a hand-written itoa for the common int64 case);
 * other values print with the fewest digits that read back to the same double. Both -0.0
 * and 0.0 print "0", as JavaScript prints them. sl_codec_int writes an int64 (a typed
 * record's i64 field) with the same digits. */
#include "codec.h"
#include "codec_shared.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static const uint64_t pow10_u64[20] = {
    UINT64_C(1), UINT64_C(10), UINT64_C(100), UINT64_C(1000), UINT64_C(10000),
    UINT64_C(100000), UINT64_C(1000000), UINT64_C(10000000), UINT64_C(100000000),
    UINT64_C(1000000000), UINT64_C(10000000000), UINT64_C(100000000000),
    UINT64_C(1000000000000), UINT64_C(10000000000000), UINT64_C(100000000000000),
    UINT64_C(1000000000000000), UINT64_C(10000000000000000),
    UINT64_C(100000000000000000), UINT64_C(1000000000000000000),
    UINT64_C(10000000000000000000),
};

/* Decimal digits in u: the bit length times log10(2) (1233/4096) is the count or one
 * short of it. */
static inline int count_digits(uint64_t u)
{
    if (u == 0)
        return 1;
    int d = ((64 - __builtin_clzll(u)) * 1233) >> 12;
    return d + (u >= pow10_u64[d]);
}

/* Writes the nd decimal digits of u (nd <= 8) to o[0, nd), two at a time from the right,
 * in 32-bit arithmetic. */
static inline void put_digits8(uint32_t u, char *o, int nd)
{
    char *p = o + nd;
    while (u >= 100) {
        uint32_t r = u % 100;
        u /= 100;
        p -= 2;
        memcpy(p, digit_pairs + 2 * r, 2);
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * u, 2);
    } else {
        *--p = (char)('0' + u);
    }
}

/* Writes exactly 8 digits of u < 10^8 (leading zeros included) to o[0, 8): two blocks of
 * four that do not wait on each other. */
static inline void put_block8(uint32_t u, char *o)
{
    uint32_t hi = u / 10000, lo = u % 10000;
    memcpy(o, digit_pairs + 2 * (hi / 100), 2);
    memcpy(o + 2, digit_pairs + 2 * (hi % 100), 2);
    memcpy(o + 4, digit_pairs + 2 * (lo / 100), 2);
    memcpy(o + 6, digit_pairs + 2 * (lo % 100), 2);
}

/* Writes the nd decimal digits of u to o[0, nd): blocks of eight from the right, so that
 * a long number (a millisecond timestamp) costs one 64-bit division per eight digits
 * rather than one per two. */
static inline void put_digits(uint64_t u, char *o, int nd)
{
    while (nd > 8) {
        nd -= 8;
        put_block8((uint32_t)(u % 100000000), o + nd);
        u /= 100000000;
    }
    put_digits8((uint32_t)u, o, nd);
}

static int put_int(int64_t i, char *out)
{
    char *o = out;
    uint64_t u = (uint64_t)i;
    if (i < 0) {
        *o++ = '-';
        u = (uint64_t)0 - u;
    }
    int nd = count_digits(u);
    put_digits(u, o, nd);
    o[nd] = '\0';
    return (int)(o - out) + nd;
}

/* Writes the number whose decimal digits are those of `digits` with a point k places from
 * the right (k = 0: none), negative when neg, and a NUL; returns the length. */
static int put_fixed(int neg, uint64_t digits, int k, char *out)
{
    int nd = count_digits(digits);
    char *o = out;

    if (neg)
        *o++ = '-';
    if (k == 0) {
        put_digits(digits, o, nd);
        o += nd;
    } else if (nd > k) {
        /* ddd.ddd: the digits written once, then copied around the point in copies of
         * a fixed size (a few moves each, where a division by 10^k or a memmove of k
         * bytes would cost more than the digits themselves); nd <= 20, so the copies stay
         * inside digs and whole, and what goes to out is at most 22 bytes of its 32 */
        char digs[56], whole[48];
        int nw = nd - k, at = (int)(o - out);
        put_digits(digits, digs, nd);
        memcpy(whole, out, 2);                      /* the sign, if any */
        memcpy(whole + at, digs, 24);
        whole[at + nw] = '.';
        memcpy(whole + at + nw + 1, digs + nw, 24);
        whole[at + nd + 1] = '\0';
        memcpy(out, whole, 32);
        return at + nd + 1;
    } else {
        /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        memset(o, '0', (size_t)(k - nd));
        o += k - nd;
        put_digits(digits, o, nd);
        o += nd;
    }
    *o = '\0';
    return (int)(o - out);
}

/* One step of strip_zeros: divides d by 10^w (STEP, a constant) when it is a multiple and
 * k allows, with conditional moves rather than a branch. */
#define STRIP_STEP(d, kk, w, STEP)                                  \
    do {                                                            \
        uint64_t q_ = (d) / (STEP);                                 \
        int take_ = (q_ * (STEP) == (d)) & ((kk) >= (w));           \
        (d) = take_ ? q_ : (d);                                     \
        (kk) -= take_ ? (w) : 0;                                    \
    } while (0)

/* Strips the trailing zeros of *digits while k > 0 (digits != 0, k <= 19): by eight
 * (twice), four, two, then one, without a branch on how many there are, which is anyone's
 * guess from one number to the next. */
static inline void strip_zeros(uint64_t *digits, int *k)
{
    uint64_t d = *digits;
    int kk = *k;
    STRIP_STEP(d, kk, 8, UINT64_C(100000000));
    STRIP_STEP(d, kk, 8, UINT64_C(100000000));
    STRIP_STEP(d, kk, 4, UINT64_C(10000));
    STRIP_STEP(d, kk, 2, UINT64_C(100));
    STRIP_STEP(d, kk, 1, UINT64_C(10));
    *digits = d;
    *k = kk;
}

/* The fast path for values with a short decimal form such as 123.5 or 0.25: finds the
 * least k for which m = x * 10^k is an integer below 10^15 and m / 10^k gives back x.
 * m and 10^k are exact doubles and IEEE division rounds correctly, so the digits of m
 * with a point k places from the right read back to x; having at most 15 significant
 * digits they are also exactly what %.15g prints. Limited to 1e-4 <= |x| < 1e15, where
 * %g uses fixed notation too. Returns the length, or 0 to take the slow path. */
static int put_short_decimal(double x, char *out)
{
    double a = fabs(x);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int k = 1; k <= 15; k++) {
        double m = a * pow10_exact[k];
        if (m >= 1e15)
            return 0;
        int64_t i = (int64_t)(m + 0.5);
        if ((double)i / pow10_exact[k] != a)
            continue;
        return put_fixed(x < 0, (uint64_t)i, k, out);
    }
    return 0;
}

/* The commonest values written, short decimals such as 92.2484 (a price times a rate),
 * with one division: m = x * 10^k rounded, for the k that gives m eight digits; when
 * m / 10^k gives back x, the digits of m (trailing zeros stripped) with a point k places
 * from the right are those put_exact_decimal finds, as at most one decimal of 15
 * significant digits lies within half an ulp of x (their spacing, relative, is at least
 * 1e-15; an ulp at most 2^-52), and m padded to 15 digits is one. Limited to
 * 1 <= |x| < 1e7, where k is 1 to 7. Returns the length, or 0 to take another path. */
static int put_short8(double x, char *out)
{
    double a = fabs(x);
    if (!(a >= 1 && a < 1e7))
        return 0;
    int k = 8 - count_digits((uint64_t)a);
    uint64_t m = (uint64_t)(a * pow10_exact[k] + 0.5);
    if ((double)m / pow10_exact[k] != a)
        return 0;
    strip_zeros(&m, &k);
    return put_fixed(x < 0, m, k, out);
}

/* The digits of a, a non-integral value with 1e-3 <= a < 1e14, exactly as the slow path
 * below gives them (%.15g, else %.16g, else %.17g: the first that reads back to a), in
 * integers rather than through printf and strtod, which cost microseconds a number.
 * a = mant * 2^-s exactly; for N significant digits with k of them after the point,
 * D = mant * 10^k, and a * 10^k rounded half to even is q = D / 2^s rounded so (as printf
 * rounds the exact value). Those digits read back to a when q / 10^k is nearer to a than
 * to its neighbours, half an ulp each side (a quarter below a power of two, where the
 * lower neighbour is nearer), a tie going to the even mantissa as strtod rounds:
 * |q * 2^s - D| against 10^k / 2. Everything fits in 128 bits: mant < 2^53, 10^k <=
 * 10^19, q < 10^17, s <= 63. In this range %g writes fixed notation. Returns the length
 * written to out (sign included), or 0 to take the slow path. */
static int put_exact_decimal(double x, char *out)
{
    typedef unsigned __int128 u128;
    double a = fabs(x);
    int e2, s, p, n;

    if (!(a >= 1e-3 && a < 1e14))
        return 0;
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    e2 = (int)(bits >> 52);                     /* normal here: a = mant * 2^(e2 - 1075) */
    uint64_t mant = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52;
    s = 1075 - e2;
    if (s <= 0 || s > 63)
        return 0;
    /* p: the largest with 10^p <= a */
    if (a >= 1) {
        p = count_digits((uint64_t)a) - 1;
    } else {
        p = -1;
        while ((u128)mant * pow10_u64[-p] < (u128)1 << s)
            p--;
    }
    for (n = 15; n <= 17; n++) {
        int k = n - 1 - p, rt;
        u128 d = (u128)mant * pow10_u64[k], half = (u128)1 << (s - 1);
        u128 q = d >> s, r = d - (q << s), qs, diff, tenk = pow10_u64[k];

        if (r > half || (r == half && (q & 1)))
            q++;
        qs = q << s;
        diff = qs > d ? qs - d : d - qs;
        if (mant == UINT64_C(1) << 52 && qs < d)
            rt = 4 * diff < tenk;
        else
            rt = 2 * diff < tenk || (2 * diff == tenk && (mant & 1) == 0);
        if (!rt && n < 17)
            continue;
        if (q >= (u128)pow10_u64[n])
            return 0;       /* rounded up to another power of ten: let printf say it */
        uint64_t digits = (uint64_t)q;
        if (digits != 0)
            strip_zeros(&digits, &k);
        return put_fixed(x < 0, digits, k, out);
    }
    return 0;
}

int sl_codec_int(int64_t i, char *out)
{
    return put_int(i, out);
}

int sl_codec_number(double x, char *out)
{
    if (!isfinite(x))
        return -1;
    /* The range test comes first: converting an out-of-range double to int64 is UB. */
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0) {
        int64_t i = (int64_t)x;
        if ((double)i == x)
            return put_int(i, out);     /* -0.0 lands here too and prints "0" */
    } else if (fabs(x) < 1e21) {
        /* Every double this large is an integer; %.0f prints its exact digits. */
        return snprintf(out, 32, "%.0f", x);
    }
    /* (the exact path first: within its range it gives what the short one does, in one
     * product rather than a division per digit tried) */
    int n = put_short8(x, out);
    if (n > 0)
        return n;
    n = put_exact_decimal(x, out);
    if (n > 0)
        return n;
    n = put_short_decimal(x, out);
    if (n > 0)
        return n;
    /* The general case: 15 digits are enough for most values, 17 for every value. */
    static const char *const fmts[] = { "%.15g", "%.16g" };
    for (int f = 0; f < 2; f++) {
        n = snprintf(out, 32, fmts[f], x);
        if (strtod(out, NULL) == x)
            return n;
    }
    return snprintf(out, 32, "%.17g", x);
}
