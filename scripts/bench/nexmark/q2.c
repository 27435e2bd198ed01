/* Nexmark q2 baseline: the bids on auctions whose id is a multiple of 123 (common.h). */
#include "common.h"

static void q2(const sl_nexmark_event *ev)
{
    if (ev->type != SL_NEXMARK_BID || ev->u.bid.auction % 123 != 0)
        return;
    out_begin();
    out_num("auction", (double)ev->u.bid.auction);
    out_num("price", (double)ev->u.bid.price);
    out_end();
}

int main(int argc, char **argv)
{
    return each_event(argc, argv, q2);
}
