/* Nexmark q5 baseline: for each sliding window of 10 s every 2 s, the auctions with the
 * most bids (see common.h). Counts are kept per 2 s pane in a ring of 5, each pane with
 * the list of auctions it saw, so a window sums only what its panes hold. */
#include "common.h"

#define SLIDE 2000
#define PANES 5                         /* size / slide */

static int32_t *count[PANES], *sum;     /* by auction (base 0) */
static int64_t *seen[PANES], *listed, nseen[PANES];

static void fire(int64_t end)
{
    int64_t n = 0, top = 0;

    for (int64_t p = end - PANES * SLIDE; p < end; p += SLIDE) {
        int s = (int)((p / SLIDE) % PANES);
        for (int64_t i = 0; i < nseen[s]; i++) {
            int64_t a = seen[s][i];
            if (sum[a] == 0)
                listed[n++] = a;
            sum[a] += count[s][a];
        }
    }
    for (int64_t i = 0; i < n; i++)
        if (sum[listed[i]] > top)
            top = sum[listed[i]];
    for (int64_t i = 0; i < n; i++) {
        int64_t a = listed[i];
        if (sum[a] == top) {
            out_begin();
            out_num("auction", (double)(a + SL_NEXMARK_FIRST_AUCTION_ID));
            out_num("num", (double)top);
            out_num("window_end", (double)end);
            out_end();
        }
        sum[a] = 0;
    }
}

/* Frees the slot of the pane starting at p. */
static void clear(int64_t p)
{
    int s = (int)((p / SLIDE) % PANES);
    for (int64_t i = 0; i < nseen[s]; i++)
        count[s][seen[s][i]] = 0;
    nseen[s] = 0;
}

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g;
    int64_t auctions, pane = -1;

    g = start(argc, argv, &cfg);
    auctions = cfg.events * SL_NEXMARK_AUCTION_PROPORTION / SL_NEXMARK_PROPORTIONS + 64;
    for (int s = 0; s < PANES; s++) {
        count[s] = calloc((size_t)auctions, sizeof(int32_t));
        seen[s] = malloc((size_t)auctions * sizeof(int64_t));
    }
    sum = calloc((size_t)auctions, sizeof(int32_t));
    listed = malloc((size_t)auctions * sizeof(int64_t));
    while (sl_nexmark_next(g, &ev)) {
        int64_t p, a;
        int s;
        if (ev.type != SL_NEXMARK_BID)
            continue;
        p = ev.date_time - ev.date_time % SLIDE;
        if (pane < 0)
            pane = p;
        for (; pane < p; pane += SLIDE) {       /* windows ending by p fire */
            fire(pane + SLIDE);
            clear(pane + SLIDE - PANES * SLIDE);
        }
        s = (int)((p / SLIDE) % PANES);
        a = ev.u.bid.auction - SL_NEXMARK_FIRST_AUCTION_ID;
        if (count[s][a]++ == 0)
            seen[s][nseen[s]++] = a;
    }
    for (int64_t e = pane + SLIDE; pane >= 0 && e <= pane + PANES * SLIDE; e += SLIDE) {
        fire(e);
        clear(e - PANES * SLIDE);
    }
    for (int s = 0; s < PANES; s++) {
        free(count[s]);
        free(seen[s]);
    }
    free(sum);
    free(listed);
    return finish(g);
}
