/* timeq.c -- a binary min-heap of (time, id) pairs for window ends and event-time timers.
 *
 * Entries order by time, then by id, so entries due at the same time fire in the same
 * order on every run. The per-record check is one call to sl_timeq_peek_time.
 */
#include <math.h>
#include <stdlib.h>

#include "prims.h"

#define MIN_CAP 16

struct entry {
    double t;
    int64_t id;
};

struct sl_timeq {
    struct entry *a;    /* a[0] is the minimum; owned */
    size_t n;           /* entries in use */
    size_t cap;         /* entries allocated */
};

static int before(const struct entry *x, const struct entry *y)
{
    return x->t < y->t || (x->t == y->t && x->id < y->id);
}

sl_timeq *sl_timeq_new(void)
{
    sl_timeq *q = malloc(sizeof *q);

    if (q == NULL)
        return NULL;
    q->a = malloc(MIN_CAP * sizeof *q->a);
    if (q->a == NULL) {
        free(q);
        return NULL;
    }
    q->n = 0;
    q->cap = MIN_CAP;
    return q;
}

void sl_timeq_free(sl_timeq *q)
{
    if (q == NULL)
        return;
    free(q->a);
    free(q);
}

/* Sifts e up from the hole at i. */
static void sift_up(struct entry *a, size_t i, struct entry e)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;

        if (!before(&e, &a[p]))
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = e;
}

/* Fills the hole at the root with e, keeping the heap order over a[0..n). */
static void sift_down(struct entry *a, size_t n, struct entry e)
{
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= n)
            break;
        if (c + 1 < n && before(&a[c + 1], &a[c]))
            c++;
        if (!before(&a[c], &e))
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = e;
}

int sl_timeq_push(sl_timeq *q, double t, int64_t id)
{
    struct entry e = { t, id };

    /* A NaN time compares false with everything and would break the heap order. */
    if (isnan(t))
        return SL_PRIM_EINVAL;
    if (q->n == q->cap) {
        size_t cap = q->cap * 2;
        struct entry *a;

        if (cap > SIZE_MAX / sizeof *a)
            return SL_PRIM_ENOMEM;
        a = realloc(q->a, cap * sizeof *a);
        if (a == NULL)
            return SL_PRIM_ENOMEM;
        q->a = a;
        q->cap = cap;
    }
    sift_up(q->a, q->n++, e);
    return SL_PRIM_OK;
}

size_t sl_timeq_len(const sl_timeq *q)
{
    return q->n;
}

double sl_timeq_peek_time(const sl_timeq *q)
{
    return q->n > 0 ? q->a[0].t : INFINITY;
}

/* Gives memory back after a burst, e.g. when a large backlog of windows has fired.
 * Halving only below a quarter keeps push and pop amortised O(log n). A failed shrink is
 * harmless. */
static void maybe_shrink(sl_timeq *q)
{
    if (q->cap > MIN_CAP && q->n < q->cap / 4) {
        struct entry *a = realloc(q->a, q->cap / 2 * sizeof *a);

        if (a != NULL) {
            q->a = a;
            q->cap /= 2;
        }
    }
}

int sl_timeq_pop(sl_timeq *q, double *t, int64_t *id)
{
    if (q->n == 0)
        return -1;
    if (t != NULL)
        *t = q->a[0].t;
    if (id != NULL)
        *id = q->a[0].id;
    q->n--;
    if (q->n > 0)
        sift_down(q->a, q->n, q->a[q->n]);
    maybe_shrink(q);
    return 0;
}

int sl_timeq_pop_until(sl_timeq *q, double wm, int64_t *ids_out, double *times_out,
                       int cap)
{
    int k = 0;

    /* A NaN watermark compares false, so nothing is due. */
    while (k < cap && q->n > 0 && q->a[0].t <= wm) {
        ids_out[k] = q->a[0].id;
        if (times_out != NULL)
            times_out[k] = q->a[0].t;
        k++;
        q->n--;
        if (q->n > 0)
            sift_down(q->a, q->n, q->a[q->n]);
    }
    maybe_shrink(q);
    return k;
}
