/* Nexmark q7 baseline: the highest bid of each 10 s tumbling window, the first to arrive
 * on a tie (see common.h). Events come in time order, so a window ends when the next
 * bid falls past it. */
#include "common.h"

#define SIZE 10000

static void emit(const sl_nexmark_bid *b, int64_t t, int64_t end)
{
    out_begin();
    out_num("auction", (double)b->auction);
    out_num("bidder", (double)b->bidder);
    out_num("date_time", (double)t);
    out_num("price", (double)b->price);
    out_num("window_end", (double)end);
    out_end();
}

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark_bid best;
    int64_t best_t = 0, end = 0;
    int have = 0;
    sl_nexmark *g;

    g = start(argc, argv, &cfg);
    while (sl_nexmark_next(g, &ev)) {
        if (ev.type != SL_NEXMARK_BID)
            continue;
        if (have && ev.date_time >= end) {
            emit(&best, best_t, end);
            have = 0;
        }
        if (!have || ev.u.bid.price > best.price) {
            if (!have)
                end = ev.date_time - ev.date_time % SIZE + SIZE;
            best = ev.u.bid;
            best_t = ev.date_time;
            have = 1;
        }
    }
    if (have)
        emit(&best, best_t, end);
    return finish(g);
}
