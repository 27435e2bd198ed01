/* Nexmark q4 baseline: the running average winning price of each category (see common.h),
 * one result per auction with a winner (winners.h), in the order q4.lua sends them: by
 * expires, then auction id. Winners wait in a heap until no auction still held, or still to
 * come, can close before them. */
#include "winners.h"

#define CATEGORIES 5

typedef struct closing {
    int64_t end, id, category, price;
} closing;

static closing *heap;
static int64_t nheap, heap_cap;
static double sum[CATEGORIES];
static int64_t count[CATEGORIES];

static int before(const closing *x, const closing *y)
{
    return x->end < y->end || (x->end == y->end && x->id < y->id);
}

static void push(const slot *s)
{
    closing c = {s->auction.expires, s->auction.id, s->auction.category, s->best.price};
    int64_t i;

    if (nheap == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = realloc(heap, (size_t)heap_cap * sizeof *heap);
    }
    for (i = nheap++; i > 0 && before(&c, &heap[(i - 1) / 2]); i = (i - 1) / 2)
        heap[i] = heap[(i - 1) / 2];
    heap[i] = c;
}

/* Sends the winners that close before `bound`, in order. */
static void pop_before(int64_t bound)
{
    while (nheap > 0 && heap[0].end < bound) {
        closing c = heap[0], last = heap[--nheap];
        int64_t i = 0, k = c.category - SL_NEXMARK_FIRST_CATEGORY_ID;

        for (;;) {
            int64_t child = 2 * i + 1;
            if (child >= nheap)
                break;
            if (child + 1 < nheap && before(&heap[child + 1], &heap[child]))
                child++;
            if (!before(&heap[child], &last))
                break;
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = last;
        sum[k] += (double)c.price;
        count[k]++;
        out_begin();
        out_num("auctions", (double)count[k]);
        out_num("avg", sum[k] / (double)count[k]);
        out_num("category", (double)c.category);
        out_end();
    }
}

/* The earliest expires of an auction still held, or still to come when events have reached
 * time now (an auction expires after it starts). */
static int64_t held_floor(int64_t now)
{
    int64_t least = now;

    for (int64_t i = 0; i <= ring_mask; i++)
        if (ring[i].id >= 0 && ring[i].arrived && ring[i].auction.expires < least)
            least = ring[i].auction.expires;
    return least;
}

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g = start(argc, argv, &cfg);

    winners_init(&cfg, push);
    while (sl_nexmark_next(g, &ev)) {
        winners_event(&ev);
        if ((ev.n & 4095) == 0)
            pop_before(held_floor(ev.date_time));
    }
    winners_end();
    pop_before(INT64_MAX);
    free(heap);
    return finish(g);
}
