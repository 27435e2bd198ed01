/* Nexmark q0 baseline: every event, as is (see common.h). */
#include "common.h"

#define S(k, f) out_str(k, (f).s, (f).len)

static void q0(const sl_nexmark_event *ev)
{
    out_begin();
    if (ev->type == SL_NEXMARK_BID) {
        const sl_nexmark_bid *b = &ev->u.bid;
        out_num("bid.auction", (double)b->auction);
        out_num("bid.bidder", (double)b->bidder);
        S("bid.channel", b->channel);
        out_num("bid.date_time", (double)ev->date_time);
        S("bid.extra", b->extra);
        out_num("bid.price", (double)b->price);
        S("bid.url", b->url);
        out_str("type", "bid", 3);
    } else if (ev->type == SL_NEXMARK_AUCTION) {
        const sl_nexmark_auction *a = &ev->u.auction;
        out_num("auction.category", (double)a->category);
        out_num("auction.date_time", (double)ev->date_time);
        S("auction.description", a->description);
        out_num("auction.expires", (double)a->expires);
        S("auction.extra", a->extra);
        out_num("auction.id", (double)a->id);
        out_num("auction.initial_bid", (double)a->initial_bid);
        S("auction.item_name", a->item_name);
        out_num("auction.reserve", (double)a->reserve);
        out_num("auction.seller", (double)a->seller);
        out_str("type", "auction", 7);
    } else {
        const sl_nexmark_person *p = &ev->u.person;
        S("person.city", p->city);
        S("person.credit_card", p->credit_card);
        out_num("person.date_time", (double)ev->date_time);
        S("person.email_address", p->email_address);
        S("person.extra", p->extra);
        out_num("person.id", (double)p->id);
        S("person.name", p->name);
        S("person.state", p->state);
        out_str("type", "person", 6);
    }
    out_end();
}

int main(int argc, char **argv)
{
    return each_event(argc, argv, q0);
}
