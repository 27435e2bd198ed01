/* nexmark.h -- the Nexmark event generator: people, auctions and bids.
 *
 * The standard model of the Nexmark benchmark as Apache Beam's and the nexmark/nexmark
 * generators define it: in every 50 events, 1 person, 3 auctions and 46 bids; person and
 * auction ids from 1000; most bids go to a few hot auctions and come from a few hot
 * bidders; event n happens at first_time + n * 1000 / rate ms. Event n depends only on the
 * configuration and n (each event draws from its own random stream, seeded by the seed and
 * n), so a generator can start anywhere and the same seed always gives the same events.
 *
 * Plain C, no Lua: a C program links nexmark.c alone (scripts/bench/nexmark/ does). The
 * "sluice.core" object that fills Lua batches from it is nexmark_lua.c.
 */
#ifndef SL_NEXMARK_H
#define SL_NEXMARK_H

#include <stdint.h>

#include "claims.h"

/* ---- constants --------------------------------------------------------------------- */

#define SL_NEXMARK_PERSON_PROPORTION  1
#define SL_NEXMARK_AUCTION_PROPORTION 3
#define SL_NEXMARK_BID_PROPORTION     46
#define SL_NEXMARK_PROPORTIONS        50     /* events in one person-auction-bid cycle */
#define SL_NEXMARK_FIRST_PERSON_ID    1000
#define SL_NEXMARK_FIRST_AUCTION_ID   1000
#define SL_NEXMARK_FIRST_CATEGORY_ID  10
#define SL_NEXMARK_CHANNELS           10000  /* plus 4 hot channels */
#define SL_NEXMARK_POOL_SIZE          45948  /* pooled strings are numbered 1 .. size - 1 */

enum { SL_NEXMARK_PERSON = 1, SL_NEXMARK_AUCTION = 2, SL_NEXMARK_BID = 3 };

/* ---- types ------------------------------------------------------------------------- */

/* What to generate. sl_nexmark_config_init fills in the defaults of Beam's
 * NexmarkConfiguration; a caller changes what it wants, then calls sl_nexmark_new. */
typedef struct sl_nexmark_config {
    int64_t events;             /* how many events; 0: unbounded */
    double rate;                /* events per second of event time (default 10000) */
    uint64_t seed;              /* the random streams (default 0) */
    int64_t first_time;         /* event time of event 0, ms since the epoch */
    int64_t active_people;      /* people bids and auctions choose among (1000) */
    int64_t in_flight_auctions; /* auctions a cold bid chooses among (100) */
    int hot_auction_ratio;      /* 1 - 1/ratio of bids go to a hot auction (2) */
    int hot_seller_ratio;       /* ... of auctions have a hot seller (4) */
    int hot_bidder_ratio;       /* ... of bids come from a hot bidder (4) */
    int avg_person_bytes;       /* the average sizes the `extra` field pads to (200, */
    int avg_auction_bytes;      /* 500, */
    int avg_bid_bytes;          /* 100) */
} sl_nexmark_config;

/* A string field. Every string an event holds comes from the generator's pool of strings
 * (names, cities, the 16 variants of each length of random text, urls, ...), so that a
 * caller that builds values from strings can build each one once: pool is the string's
 * number there (from 1, below SL_NEXMARK_POOL_SIZE; the same number is always the same
 * bytes), and s points into the generator (valid as long as it lives; not NUL-terminated). */
typedef struct sl_nexmark_str {
    const char *s;
    uint32_t len;
    uint32_t pool;
} sl_nexmark_str;

typedef struct sl_nexmark_person {
    int64_t id;
    sl_nexmark_str name, email_address, credit_card, city, state, extra;
} sl_nexmark_person;

typedef struct sl_nexmark_auction {
    int64_t id, initial_bid, reserve, expires, seller, category;
    sl_nexmark_str item_name, description, extra;
} sl_nexmark_auction;

typedef struct sl_nexmark_bid {
    int64_t auction, bidder, price;
    sl_nexmark_str channel, url, extra;
} sl_nexmark_bid;

/* One event. Only the member named by type is set. */
typedef struct sl_nexmark_event {
    int type;                   /* SL_NEXMARK_PERSON, _AUCTION or _BID */
    int64_t n;                  /* its number, from 0 */
    int64_t date_time;          /* its event time, ms since the epoch */
    union {
        sl_nexmark_person person;
        sl_nexmark_auction auction;
        sl_nexmark_bid bid;
    } u;
} sl_nexmark_event;

typedef struct sl_nexmark sl_nexmark;

/* ---- functions --------------------------------------------------------------------- */

void sl_nexmark_config_init(sl_nexmark_config *cfg);

/* A new generator at event 0, or NULL when out of memory or cfg is invalid (rate <= 0,
 * events < 0, ratios < 1). The caller owns it; sl_nexmark_free frees it and its pools. */
sl_nexmark *sl_nexmark_new(const sl_nexmark_config *cfg);
void sl_nexmark_free(sl_nexmark *g);

/* Writes the next event into ev and returns 1, or returns 0 when all events are made. */
int sl_nexmark_next(sl_nexmark *g, sl_nexmark_event *ev);

/* The number of the next event; seeking sets it (a resumed source starts there). */
int64_t sl_nexmark_position(const sl_nexmark *g);
void sl_nexmark_seek(sl_nexmark *g, int64_t n);

/* Splits the events among generators (the workers of one job): this one makes only the
 * events n whose class n % SL_NEXMARK_CLASSES is in `mine` (ismine[c] != 0), and of those
 * only n >= floor[c] (floor may be NULL: no floor), the first event of class c not made
 * yet where a checkpoint was taken. Generators whose classes do not overlap make disjoint
 * events; together, every event once. */
#define SL_NEXMARK_CLASSES 128
void sl_nexmark_split(sl_nexmark *g, const uint8_t ismine[SL_NEXMARK_CLASSES],
                      const int64_t floor[SL_NEXMARK_CLASSES]);

/* Shares the events out among generators (the workers of one job) as each asks for more
 * (claims.h): from now on this one makes the events of the ranges it claims, in the order
 * it claims them; together, the generators sharing `claims` make the claims' events once.
 * The generator owns its open of claims (sl_nexmark_free closes it). */
void sl_nexmark_share(sl_nexmark *g, sl_claims *claims);
/* A sharing generator's claim: returns the next event it makes, *stop the end of its claim
 * (the same when it has made all of it). */
int64_t sl_nexmark_claimed(const sl_nexmark *g, int64_t *stop);
sl_claims *sl_nexmark_claims(const sl_nexmark *g);    /* NULL when it does not share */
/* Makes [from, to) first, the rest of a claim of another sharing generator (which this one
 * replaces), then claims as before. */
void sl_nexmark_resume_claim(sl_nexmark *g, int64_t from, int64_t to);

/* The first event of class c this generator has not made yet: what a checkpoint stores of
 * a split generator, per class it makes. */
int64_t sl_nexmark_next_of(const sl_nexmark *g, int c);

/* Pooled string n (1 <= n < SL_NEXMARK_POOL_SIZE), or NULL: the same bytes in every
 * generator of the same configuration. */
const sl_nexmark_str *sl_nexmark_pool_string(const sl_nexmark *g, int n);

/* The event time of event n, and the type of event n. */
int64_t sl_nexmark_time_of(const sl_nexmark *g, int64_t n);
int sl_nexmark_type_of(int64_t n);

#endif
