/* Nexmark q2 baseline: the bids on auctions whose id is a multiple of 123 (common.h). */
#include "common.h"

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g;

    setup(argc, argv, &cfg);
    g = generator(&cfg);
    while (sl_nexmark_next(g, &ev)) {
        if (ev.type != SL_NEXMARK_BID || ev.u.bid.auction % 123 != 0)
            continue;
        out_begin();
        out_num("auction", (double)ev.u.bid.auction);
        out_num("price", (double)ev.u.bid.price);
        out_end();
    }
    sl_nexmark_free(g);
    return finish();
}
