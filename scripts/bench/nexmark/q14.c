/* Nexmark q14 baseline: bids between 1 M and 50 M euros, with their time of day and the
 * count of 'c' in their extra field (see common.h). */
#include "common.h"

static void q14(const sl_nexmark_event *ev)
{
    const sl_nexmark_bid *b = &ev->u.bid;
    double euros;
    int64_t hour, c = 0;
    const char *kind;
    if (ev->type != SL_NEXMARK_BID)
        return;
    euros = (double)b->price * 0.908;
    if (euros <= 1000000 || euros >= 50000000)
        return;
    hour = ev->date_time / 3600000 % 24;
    kind = hour >= 8 && hour <= 18 ? "dayTime"
         : hour <= 6 || hour >= 20 ? "nightTime" : "otherTime";
    for (uint32_t i = 0; i < b->extra.len; i++)
        c += b->extra.s[i] == 'c';
    out_begin();
    out_num("auction", (double)b->auction);
    out_str("bid_time_type", kind, strlen(kind));
    out_num("bidder", (double)b->bidder);
    out_num("c_counts", (double)c);
    out_num("date_time", (double)ev->date_time);
    out_str("extra", b->extra.s, b->extra.len);
    out_num("price", euros);
    out_end();
}

int main(int argc, char **argv)
{
    return each_event(argc, argv, q14);
}
