/* Nexmark q1 baseline: bids with the price in euros (see common.h). */
#include "common.h"

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g;

    setup(argc, argv, &cfg);
    g = generator(&cfg);
    while (sl_nexmark_next(g, &ev)) {
        if (ev.type != SL_NEXMARK_BID)
            continue;
        out_begin();
        out_num("auction", (double)ev.u.bid.auction);
        out_num("bidder", (double)ev.u.bid.bidder);
        out_num("date_time", (double)ev.date_time);
        out_num("price", (double)ev.u.bid.price * 0.908);
        out_end();
    }
    sl_nexmark_free(g);
    return finish();
}
