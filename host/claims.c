/* claims.c -- numbered work handed out in ranges to the workers that ask (claims.h).
 *
 * Claim i is the i-th range in order: the ranges left over first, then the chunks from the
 * tail on. A claim is one atomic increment of i, so a worker that asks never waits for
 * another. Named claims are found in a list under a mutex, which only opening and closing
 * take. (C11's threads, not libuv's: the Nexmark baselines link nexmark.c and this alone.)
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "claims.h"

struct sl_claims {
    _Atomic int64_t next;           /* the next claim's number */
    int64_t *left;                  /* the ranges left over, as pairs */
    int64_t nleft, tail, chunk, end;
    int refs;                       /* opens not closed (under the list's mutex) */
    int named;                      /* in the list */
    char *name;
    struct sl_claims *link;         /* the next in the list */
};

/* the named claims: a list, and the mutex over it (made once) */
static once_flag named_once = ONCE_FLAG_INIT;
static mtx_t named_mutex;
static sl_claims *named_first;

static void init_mutex(void)
{
    if (mtx_init(&named_mutex, mtx_plain) != thrd_success)
        abort();                    /* (no mutex at start-up: nothing can run) */
}

static int valid(const sl_claims_work *w)
{
    int64_t last = INT64_MIN;

    if (w->chunk < 1 || w->nleft < 0 || (w->nleft > 0 && w->left == NULL))
        return 0;
    for (int i = 0; i < w->nleft; i++) {
        int64_t from = w->left[2 * i], to = w->left[2 * i + 1];
        if (from < last || to <= from)
            return 0;
        last = to;
    }
    return w->tail >= last;
}

static sl_claims *make(const char *name, const sl_claims_work *w)
{
    sl_claims *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    if (w->nleft > 0) {
        c->left = malloc((size_t)w->nleft * 2 * sizeof *c->left);
        if (c->left == NULL) {
            free(c);
            return NULL;
        }
        memcpy(c->left, w->left, (size_t)w->nleft * 2 * sizeof *c->left);
    }
    if (name != NULL && (c->name = strdup(name)) == NULL) {
        free(c->left);
        free(c);
        return NULL;
    }
    atomic_init(&c->next, 0);
    c->nleft = w->nleft;
    c->tail = w->tail;
    c->chunk = w->chunk;
    c->end = w->end;
    c->refs = 1;
    return c;
}

static void destroy(sl_claims *c)
{
    free(c->left);
    free(c->name);
    free(c);
}

sl_claims *sl_claims_open(const char *name, const sl_claims_work *work, int *made)
{
    sl_claims *c;

    *made = 1;
    if (!valid(work))
        return NULL;
    if (name == NULL)
        return make(NULL, work);
    call_once(&named_once, init_mutex);
    mtx_lock(&named_mutex);
    for (c = named_first; c != NULL; c = c->link)
        if (strcmp(c->name, name) == 0)
            break;
    if (c != NULL) {
        c->refs++;
        *made = 0;
    } else if ((c = make(name, work)) != NULL) {
        c->named = 1;
        c->link = named_first;
        named_first = c;
    }
    mtx_unlock(&named_mutex);
    return c;
}

void sl_claims_close(sl_claims *c)
{
    int gone;

    if (c == NULL)
        return;
    if (c->name == NULL) {
        destroy(c);
        return;
    }
    mtx_lock(&named_mutex);
    gone = --c->refs == 0 && !c->named;
    mtx_unlock(&named_mutex);
    if (gone)
        destroy(c);
}

void sl_claims_forget(void)
{
    sl_claims *c, *link, *gone = NULL;

    call_once(&named_once, init_mutex);
    mtx_lock(&named_mutex);
    for (c = named_first; c != NULL; c = link) {
        link = c->link;
        c->named = 0;
        if (c->refs == 0) {
            c->link = gone;
            gone = c;
        }
    }
    named_first = NULL;
    mtx_unlock(&named_mutex);
    for (c = gone; c != NULL; c = link) {
        link = c->link;
        destroy(c);
    }
}

/* Claim i's range; 0 when it is past the end. */
static int range_of(const sl_claims *c, int64_t i, int64_t *from, int64_t *to)
{
    if (i < c->nleft) {
        *from = c->left[2 * i];
        *to = c->left[2 * i + 1];
    } else {
        int64_t k = i - c->nleft;
        if (c->end >= 0 && k >= (c->end - c->tail + c->chunk - 1) / c->chunk)
            return 0;
        *from = c->tail + k * c->chunk;
        *to = *from + c->chunk;
    }
    if (c->end >= 0 && *to > c->end)
        *to = c->end;
    return *from < *to;
}

int sl_claims_take(sl_claims *c, int64_t *from, int64_t *to)
{
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (range_of(c, i, from, to))
            return 1;
        if (i >= c->nleft)
            return 0;
        /* (a range left over that the end cuts off: the next may still be short of it) */
    }
}

int sl_claims_unclaimed(sl_claims *c, int64_t *out, int max, int64_t *tail)
{
    int64_t i = atomic_load(&c->next), k;
    int n = 0;

    for (; i < c->nleft; i++) {
        int64_t from, to;
        if (range_of(c, i, &from, &to)) {
            if (n < max) {
                out[2 * n] = from;
                out[2 * n + 1] = to;
            }
            n++;
        }
    }
    k = i - c->nleft;
    *tail = c->tail + k * c->chunk;
    if (c->end >= 0 && *tail > c->end)
        *tail = c->end;
    return n;
}
