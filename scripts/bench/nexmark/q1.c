/* Nexmark q1 baseline: bids with the price in euros (see common.h). */
#include "common.h"

static void q1(const sl_nexmark_event *ev)
{
    if (ev->type != SL_NEXMARK_BID)
        return;
    out_begin();
    out_num("auction", (double)ev->u.bid.auction);
    out_num("bidder", (double)ev->u.bid.bidder);
    out_num("date_time", (double)ev->date_time);
    out_num("price", (double)ev->u.bid.price * 0.908);
    out_end();
}

int main(int argc, char **argv)
{
    return each_event(argc, argv, q1);
}
