/* Nexmark q9 baseline: the winning bid of each auction (winners.h), with the auction's
 * fields, not its extra, nor the bid's (see common.h). */
#include "winners.h"

static void emit(const slot *s)
{
    const sl_nexmark_auction *a = &s->auction;

    out_begin();
    out_num("auction", (double)s->best.auction);
    out_num("bid_date_time", (double)s->best_time);
    out_num("bidder", (double)s->best.bidder);
    out_num("category", (double)a->category);
    out_num("date_time", (double)s->date_time);
    out_str("description", a->description.s, a->description.len);
    out_num("expires", (double)a->expires);
    out_num("id", (double)a->id);
    out_num("initial_bid", (double)a->initial_bid);
    out_str("item_name", a->item_name.s, a->item_name.len);
    out_num("price", (double)s->best.price);
    out_num("reserve", (double)a->reserve);
    out_num("seller", (double)a->seller);
    out_end();
}

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g = start(argc, argv, &cfg);

    winners_init(&cfg, emit);
    while (sl_nexmark_next(g, &ev))
        winners_event(&ev);
    winners_end();
    return finish(g);
}
