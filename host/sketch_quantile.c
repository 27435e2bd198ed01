/* sketch_quantile.c -- the approximate quantiles behind sl.quantile: a KLL sketch
 * (Karnin, Lang and Liberty, "Optimal quantile approximation in streams", 2016) with
 * k = 400, capacities shrinking by 2/3 per level, and lazy compaction as in Apache
 * DataSketches.
 *
 * Level h holds items of weight 2^h. When the sketch is full, the lowest level at its
 * capacity is sorted and every other item, starting at a random offset, moves up with
 * twice the weight; that coin is the only randomness, drawn from an xorshift64* generator
 * whose state is part of the sketch (and of its snapshots), so results are reproducible.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prims.h"

#define K         SL_QUANTILE_K
#define MIN_WIDTH 8                         /* no level's capacity is below this */
#define MAX_LEVELS 60                       /* weights 2^h stay exact in a uint64 */
#define SEED      0x2545F4914F6CDD1DULL     /* any non-zero constant */
#define HEADER    36                        /* bytes before the level lengths */

struct level {
    double *v;          /* items; sorted, except at level 0; owned */
    uint32_t len;       /* items in use */
    uint32_t cap;       /* items allocated */
};

struct sl_quantile {
    struct level *lv;   /* nlv levels; owned */
    int nlv;            /* levels in use, >= 1 */
    uint64_t n;         /* values added, = sum of len * 2^h */
    uint64_t rng;       /* xorshift64* state, never 0 */
    double min, max;    /* exact extremes; meaningless when n == 0 */
    size_t size;        /* items held in all levels */
    size_t maxsize;     /* sum of the level capacities: compact when size reaches it */
};

static uint64_t next_random(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ceil(K * (2/3)^depth), at least MIN_WIDTH, in integers so that every machine agrees. */
static uint32_t capacity_at(int depth)
{
    uint64_t num = K, den = 1;

    if (depth > 30)
        return MIN_WIDTH;
    for (int i = 0; i < depth; i++) {
        num *= 2;
        den *= 3;
    }
    num = (num + den - 1) / den;
    return num < MIN_WIDTH ? MIN_WIDTH : (uint32_t)num;
}

static uint32_t capacity(const sl_quantile *sk, int h)
{
    return capacity_at(sk->nlv - 1 - h);
}

static void update_maxsize(sl_quantile *sk)
{
    sk->maxsize = 0;
    for (int h = 0; h < sk->nlv; h++)
        sk->maxsize += capacity(sk, h);
}

/* Makes room for at least need items at level h. Returns 0 or ENOMEM (nothing changed). */
static int reserve(struct level *l, size_t need)
{
    size_t cap = l->cap ? l->cap : MIN_WIDTH;
    double *v;

    if (need <= l->cap)
        return SL_PRIM_OK;
    if (need > UINT32_MAX / 2)
        return SL_PRIM_ENOMEM;
    while (cap < need)
        cap *= 2;
    v = realloc(l->v, cap * sizeof *v);
    if (v == NULL)
        return SL_PRIM_ENOMEM;
    l->v = v;
    l->cap = (uint32_t)cap;
    return SL_PRIM_OK;
}

/* Gives back what a level no longer needs, now that it is (nearly) empty: a level was
 * allocated for a larger capacity when it was the top one, and level 0 or a merge may have
 * grown it past its capacity. Without this the sketch would keep its largest size ever
 * per level. A failed shrink is harmless. */
static void shrink(struct level *l, uint32_t cap)
{
    double *v;

    if (l->cap <= 2 * cap)
        return;
    v = realloc(l->v, cap * sizeof *v);
    if (v != NULL) {
        l->v = v;
        l->cap = cap;
    }
}

/* Grows the level table to nlv levels (new ones empty). Returns 0 or ENOMEM. */
static int grow_levels(sl_quantile *sk, int nlv)
{
    struct level *lv;

    if (nlv <= sk->nlv)
        return SL_PRIM_OK;
    if (nlv > MAX_LEVELS)
        return SL_PRIM_ENOMEM;
    lv = realloc(sk->lv, (size_t)nlv * sizeof *lv);
    if (lv == NULL)
        return SL_PRIM_ENOMEM;
    memset(lv + sk->nlv, 0, (size_t)(nlv - sk->nlv) * sizeof *lv);
    sk->lv = lv;
    sk->nlv = nlv;
    update_maxsize(sk);
    return SL_PRIM_OK;
}

static void swap(double *a, double *b)
{
    double t = *a;

    *a = *b;
    *b = t;
}

/* Sorts a[0..n) ascending (no NaN is ever stored). Inlined comparisons make compaction
 * twice as fast as with qsort. Quicksort on a median of three, recursing into the smaller
 * part (O(log n) stack), insertion sort below 16; n is at most the sketch's size, about
 * 1200, which bounds even the quadratic worst case. */
static void sort_doubles(double *a, size_t n)
{
    while (n > 16) {
        size_t i = 0, j = n - 1, m = n / 2;
        double p;

        if (a[m] < a[0])
            swap(&a[m], &a[0]);
        if (a[j] < a[0])
            swap(&a[j], &a[0]);
        if (a[j] < a[m])
            swap(&a[j], &a[m]);
        p = a[m];
        /* Hoare's partition: afterwards a[0..j] <= p <= a[j+1..n), both parts non-empty. */
        for (;;) {
            while (a[i] < p)
                i++;
            while (p < a[j])
                j--;
            if (i >= j)
                break;
            swap(&a[i++], &a[j--]);
        }
        if (j + 1 < n - (j + 1)) {
            sort_doubles(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            sort_doubles(a + j + 1, n - (j + 1));
            n = j + 1;
        }
    }
    for (size_t i = 1; i < n; i++) {
        double x = a[i];
        size_t k = i;

        for (; k > 0 && a[k - 1] > x; k--)
            a[k] = a[k - 1];
        a[k] = x;
    }
}

/* Merges the sorted b[0], b[stride], ... (nb items) into the sorted level l, which has
 * room for them, from the back so that no scratch space is needed. */
static void merge_into(struct level *l, const double *b, uint32_t nb, uint32_t stride)
{
    int64_t i = (int64_t)l->len - 1, j = (int64_t)nb - 1, k = i + nb;

    while (j >= 0) {
        double y = b[j * stride];

        if (i >= 0 && l->v[i] > y) {
            l->v[k--] = l->v[i--];
        } else {
            l->v[k--] = y;
            j--;
        }
    }
    l->len += nb;
}

/* Halves level h into level h + 1. Returns 0 or ENOMEM (nothing changed). */
static int compact(sl_quantile *sk, int h)
{
    struct level *l;
    uint32_t pairs, off;

    if (h + 1 == sk->nlv && grow_levels(sk, sk->nlv + 1) != SL_PRIM_OK)
        return SL_PRIM_ENOMEM;
    l = &sk->lv[h];
    pairs = l->len / 2;
    if (reserve(&sk->lv[h + 1], (size_t)sk->lv[h + 1].len + pairs) != SL_PRIM_OK)
        return SL_PRIM_ENOMEM;
    if (h == 0)
        sort_doubles(l->v, l->len);
    off = (uint32_t)(next_random(&sk->rng) >> 63);
    merge_into(&sk->lv[h + 1], l->v + off, pairs, 2);
    /* With an odd count the largest item stays here, keeping its weight: no error. */
    if (l->len % 2 != 0) {
        l->v[0] = l->v[l->len - 1];
        l->len = 1;
    } else {
        l->len = 0;
    }
    sk->size -= pairs;
    shrink(l, capacity(sk, h));
    return SL_PRIM_OK;
}

/* Compacts the lowest levels at capacity until the sketch is below its size. Best effort:
 * on ENOMEM the sketch stays valid, just above its size until the next call. */
static void compress(sl_quantile *sk)
{
    for (int h = 0; h < sk->nlv && sk->size >= sk->maxsize; h++) {
        if (sk->lv[h].len >= capacity(sk, h) && compact(sk, h) != SL_PRIM_OK)
            return;
    }
}

sl_quantile *sl_quantile_new(void)
{
    sl_quantile *sk = calloc(1, sizeof *sk);

    if (sk == NULL)
        return NULL;
    sk->rng = SEED;
    if (grow_levels(sk, 1) != SL_PRIM_OK) {
        free(sk);
        return NULL;
    }
    return sk;
}

void sl_quantile_free(sl_quantile *sk)
{
    if (sk == NULL)
        return;
    for (int h = 0; h < sk->nlv; h++)
        free(sk->lv[h].v);
    free(sk->lv);
    free(sk);
}

int sl_quantile_add(sl_quantile *sk, double x)
{
    struct level *l0;

    /* NaN has no rank. */
    if (isnan(x))
        return SL_PRIM_EINVAL;
    if (sk->size >= sk->maxsize)
        compress(sk);
    l0 = &sk->lv[0];
    if (l0->len == l0->cap && reserve(l0, (size_t)l0->len + 1) != SL_PRIM_OK)
        return SL_PRIM_ENOMEM;
    l0->v[l0->len++] = x;
    sk->size++;
    if (sk->n == 0 || x < sk->min)
        sk->min = x;
    if (sk->n == 0 || x > sk->max)
        sk->max = x;
    sk->n++;
    return SL_PRIM_OK;
}

/* All allocation happens before dst changes, so ENOMEM leaves dst's contents as they were
 * (with perhaps more memory reserved). */
int sl_quantile_merge(sl_quantile *dst, const sl_quantile *src)
{
    if (dst == src)
        return SL_PRIM_EINVAL;
    if (src->n == 0)
        return SL_PRIM_OK;
    if (grow_levels(dst, src->nlv) != SL_PRIM_OK)
        return SL_PRIM_ENOMEM;
    for (int h = 0; h < src->nlv; h++)
        if (reserve(&dst->lv[h], (size_t)dst->lv[h].len + src->lv[h].len) != SL_PRIM_OK)
            return SL_PRIM_ENOMEM;

    for (int h = 0; h < src->nlv; h++) {
        const struct level *s = &src->lv[h];
        struct level *d = &dst->lv[h];

        if (s->len == 0)
            continue;
        if (h == 0) {
            memcpy(d->v + d->len, s->v, s->len * sizeof *s->v);
            d->len += s->len;
        } else {
            merge_into(d, s->v, s->len, 1);
        }
        dst->size += s->len;
    }
    if (dst->n == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->n == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->n += src->n;
    while (dst->size >= dst->maxsize) {
        size_t before = dst->size;

        compress(dst);
        if (dst->size == before)
            break;      /* out of memory: try again on the next add or merge */
    }
    return SL_PRIM_OK;
}

/* Walks the items of all levels in ascending order (each level is sorted once level 0 is)
 * and returns the first whose cumulative weight, counting half of its own, reaches q * n.
 * Sorting level 0 here changes no answer: compaction sorts it anyway. */
double sl_quantile_query(sl_quantile *sk, double q)
{
    uint32_t pos[MAX_LEVELS] = { 0 };
    double target, cum = 0.0;

    if (sk->n == 0 || !(q >= 0.0 && q <= 1.0))
        return NAN;
    if (q == 0.0)
        return sk->min;
    if (q == 1.0)
        return sk->max;
    sort_doubles(sk->lv[0].v, sk->lv[0].len);
    target = q * (double)sk->n;
    for (;;) {
        int best = -1;
        double v = 0.0, w;

        for (int h = 0; h < sk->nlv; h++) {
            if (pos[h] < sk->lv[h].len && (best < 0 || sk->lv[h].v[pos[h]] < v)) {
                best = h;
                v = sk->lv[h].v[pos[h]];
            }
        }
        if (best < 0)
            return sk->max;
        pos[best]++;
        w = ldexp(1.0, best);
        if (cum + w / 2 >= target)
            return v;
        cum += w;
    }
}

uint64_t sl_quantile_count(const sl_quantile *sk)
{
    return sk->n;
}

/* ---- snapshots ----
 * byte 0: SL_QUANTILE_VERSION; byte 1: levels; bytes 2-3: K; then n, rng (u64), min, max
 * (f64), the length of each level (u32) and the items level by level (f64); all
 * little-endian. Level 0 is saved in its current order. */

size_t sl_quantile_size(const sl_quantile *sk)
{
    return HEADER + 4 * (size_t)sk->nlv + 8 * sk->size;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void putd(unsigned char *p, double d)
{
    uint64_t v;

    memcpy(&v, &d, 8);
    put64(p, v);
}

static double getd(const unsigned char *p)
{
    uint64_t v = get64(p);
    double d;

    memcpy(&d, &v, 8);
    return d;
}

size_t sl_quantile_save(const sl_quantile *sk, char *out)
{
    unsigned char *p = (unsigned char *)out;

    p[0] = SL_QUANTILE_VERSION;
    p[1] = (unsigned char)sk->nlv;
    p[2] = K & 0xff;
    p[3] = K >> 8;
    put64(p + 4, sk->n);
    put64(p + 12, sk->rng);
    putd(p + 20, sk->min);
    putd(p + 28, sk->max);
    p += HEADER;
    for (int h = 0; h < sk->nlv; h++, p += 4)
        put32(p, sk->lv[h].len);
    for (int h = 0; h < sk->nlv; h++)
        for (uint32_t i = 0; i < sk->lv[h].len; i++, p += 8)
            putd(p, sk->lv[h].v[i]);
    return sl_quantile_size(sk);
}

/* Checks everything, since a snapshot may be truncated or come from another version: the
 * weights must add up to n, levels above 0 must be sorted, items within [min, max]. */
sl_quantile *sl_quantile_load(const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    sl_quantile *sk;
    uint64_t n, weight = 0;
    size_t items = 0;
    int nlv;

    if (buf == NULL || len < HEADER || p[0] != SL_QUANTILE_VERSION ||
        (p[2] | p[3] << 8) != K)
        return NULL;
    nlv = p[1];
    if (nlv < 1 || nlv > MAX_LEVELS || len < HEADER + 4 * (size_t)nlv)
        return NULL;
    for (int h = 0; h < nlv; h++) {
        uint64_t l = get32(p + HEADER + 4 * h);

        if (l > UINT32_MAX / 2 || (l != 0 && (l << h) >> h != l) ||
            weight + (l << h) < weight)
            return NULL;
        weight += l << h;
        items += l;
    }
    n = get64(p + 4);
    if (weight != n || len != HEADER + 4 * (size_t)nlv + 8 * items || get64(p + 12) == 0)
        return NULL;

    if ((sk = sl_quantile_new()) == NULL)
        return NULL;
    if (grow_levels(sk, nlv) != SL_PRIM_OK)
        goto bad;
    sk->n = n;
    sk->rng = get64(p + 12);
    sk->min = getd(p + 20);
    sk->max = getd(p + 28);
    if (n > 0 && !(sk->min <= sk->max))
        goto bad;
    {
        const unsigned char *lens = p + HEADER, *it = lens + 4 * nlv;

        for (int h = 0; h < nlv; h++) {
            struct level *l = &sk->lv[h];
            uint32_t cnt = get32(lens + 4 * h);

            if (reserve(l, cnt) != SL_PRIM_OK)
                goto bad;
            for (uint32_t i = 0; i < cnt; i++, it += 8) {
                double d = getd(it);

                /* Also rejects NaN, for which both comparisons are false. */
                if (!(d >= sk->min && d <= sk->max) || (h > 0 && i > 0 && d < l->v[i - 1]))
                    goto bad;
                l->v[i] = d;
            }
            l->len = cnt;
            sk->size += cnt;
        }
    }
    return sk;

bad:
    sl_quantile_free(sk);
    return NULL;
}
