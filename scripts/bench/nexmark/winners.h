/* winners.h -- the winning bid of each auction, for the q4 and q9 baselines: the highest
 * bid whose time is within the auction's [date_time, expires], the earliest on a tie of
 * price, then the lowest bidder (scripts/nexmark/winners.lua says why).
 *
 * Events come in time order and a bid names an auction among the in_flight newest or the
 * next few (host/nexmark.c), so the auctions live in a ring indexed by id: an auction's slot
 * is taken by a newer one only when no bid can name it any more, and on_winner(a, best)
 * is called then (or at the end) if it had a bid in time. A bid may name an auction still
 * to come, in the same ms: such bids wait in the slot, the best of the latest ms. */
#include "common.h"

typedef struct slot {
    int64_t id;                 /* the auction's, -1: free */
    int arrived;                /* whether auction holds it yet */
    int have;                   /* whether best holds a bid */
    sl_nexmark_auction auction;
    int64_t date_time;          /* the auction's */
    sl_nexmark_bid best;
    int64_t best_time;          /* best's time: before the auction came, all bids' latest */
} slot;

typedef void (*winner_fn)(const slot *s);

static slot *ring;
static int64_t ring_mask;
static winner_fn on_winner;

static void winners_init(const sl_nexmark_config *cfg, winner_fn fn)
{
    int64_t size = 64;

    while (size < cfg->in_flight_auctions + 64)
        size *= 2;
    ring = malloc((size_t)size * sizeof *ring);
    for (int64_t i = 0; i < size; i++) {
        ring[i].id = -1;
        ring[i].have = 0;
    }
    ring_mask = size - 1;
    on_winner = fn;
}

static void done(slot *s)
{
    if (s->id >= 0 && s->arrived && s->have)
        on_winner(s);
    s->id = -1;
}

/* The slot of auction id, taken from the auction it held before. */
static slot *slot_of(int64_t id)
{
    slot *s = &ring[id & ring_mask];

    if (s->id != id) {
        done(s);
        s->id = id;
        s->arrived = 0;
        s->have = 0;
    }
    return s;
}

static int beats(const sl_nexmark_bid *b, int64_t t, const slot *s)
{
    if (b->price != s->best.price)
        return b->price > s->best.price;
    if (t != s->best_time)
        return t < s->best_time;
    return b->bidder < s->best.bidder;
}

/* One event, in time order. */
static void winners_event(const sl_nexmark_event *ev)
{
    slot *s;

    if (ev->type == SL_NEXMARK_AUCTION) {
        s = slot_of(ev->u.auction.id);
        s->arrived = 1;
        s->auction = ev->u.auction;
        s->date_time = ev->date_time;
        if (s->have && s->best_time != ev->date_time)
            s->have = 0;
    } else if (ev->type == SL_NEXMARK_BID) {
        const sl_nexmark_bid *b = &ev->u.bid;
        int64_t t = ev->date_time;
        s = slot_of(b->auction);
        if (s->arrived) {
            if (t > s->auction.expires)
                return;
        } else if (s->have && t > s->best_time) {
            s->have = 0;        /* the auction comes at t or later */
        }
        if (!s->have || beats(b, t, s)) {
            s->best = *b;
            s->best_time = t;
            s->have = 1;
        }
    }
}

static void winners_end(void)
{
    for (int64_t i = 0; i <= ring_mask; i++)
        done(&ring[i]);
    free(ring);
}
