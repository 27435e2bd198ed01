/* nexmark.c -- the Nexmark event generator (see nexmark.h): plain C, no Lua.
 *
 * The model follows Apache Beam's sdks/java/testing/nexmark generator (GeneratorConfig,
 * PersonGenerator, AuctionGenerator, BidGenerator, StringsGenerator) and the channel and
 * url fields of the nexmark/nexmark one. Two liberties, both for speed and neither
 * visible to a query: the random streams are splitmix64, not java.util.Random, so the
 * values differ from Beam's while their distributions are the same; and every string is
 * drawn from a pool made when the generator is created (random text: 16 variants of each
 * length; emails and credit cards: 4096 of each), not made afresh for each event, so that
 * Lua builds each string once (interning a new string per event costs more than the
 * event itself).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexmark.h"

#define PERSON_ID_LEAD     10     /* people not yet created that a bid may name */
#define AUCTION_ID_LEAD    10     /* same, auctions */
#define HOT_AUCTION_RATIO  100    /* a hot auction is the first of each 100 */
#define HOT_SELLER_RATIO   100
#define HOT_BIDDER_RATIO   100
#define HOT_CHANNEL_RATIO  2      /* 1 - 1/2 of bids come through a hot channel */
#define NUM_CATEGORIES     5
#define MIN_STRING_LENGTH  3
#define EXTRA_VARIANTS     16     /* extra strings of one length: 16 different ones */
#define EXTRA_STRIDE       37     /* variant v starts v * 37 letters into the pool */
#define EXTRA_MAX          1000   /* the longest extra string */
#define NUM_CHANNELS       (4 + SL_NEXMARK_CHANNELS)
#define TEXT_MAX           100    /* the longest item name or description, before trimming */
#define PEOPLE_STRINGS     4096   /* emails, and credit cards, to choose from */

static const char *const first_names[] = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky",
    "Kate", "Julie", "Sarah", "Deiter", "Walter"};
static const char *const last_names[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
    "Walton", "Smith", "Jones", "Noris"};
static const char *const cities[] = {"Phoenix", "Los Angeles", "San Francisco", "Boise",
    "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"};
static const char *const states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
static const char *const hot_channels[] = {"Google", "Facebook", "Baidu", "Apple"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The string pool: numbers of each kind of string, one range after the other. */
enum {
    P_EXTRA = 1,                                            /* 1 + length * 16 + variant */
    P_CHANNEL = P_EXTRA + (EXTRA_MAX + 1) * EXTRA_VARIANTS, /* + channel (hot ones first) */
    P_URL = P_CHANNEL + NUM_CHANNELS,                       /* + channel */
    P_NAME = P_URL + NUM_CHANNELS,                          /* + first * 9 + last */
    P_CITY = P_NAME + 11 * 9,
    P_STATE = P_CITY + 10,
    P_EMAIL = P_STATE + 6,
    P_CARD = P_EMAIL + PEOPLE_STRINGS,
    P_TEXT = P_CARD + PEOPLE_STRINGS,                       /* + length * 16 + variant */
    P_END = P_TEXT + (TEXT_MAX + 1) * EXTRA_VARIANTS
};
_Static_assert(P_END == SL_NEXMARK_POOL_SIZE, "nexmark.h's SL_NEXMARK_POOL_SIZE is P_END");

struct sl_nexmark {
    sl_nexmark_config cfg;
    int64_t next;                       /* number of the next event */
    double ms_per_event;                /* 1000 / rate */
    int64_t auction_horizon;            /* events until in_flight_auctions more exist */
    char extra[EXTRA_VARIANTS * EXTRA_STRIDE + EXTRA_MAX];   /* letters for `extra` */
    char text[EXTRA_VARIANTS * EXTRA_STRIDE + TEXT_MAX];     /* letters and spaces */
    sl_nexmark_str pool[P_END];
    char *arena;                        /* the bytes of the other pooled strings */
    int split;                          /* sl_nexmark_split was called: */
    uint8_t mine[SL_NEXMARK_CLASSES];   /* the classes of events it makes */
    int64_t floor[SL_NEXMARK_CLASSES];  /* and the first event of each it makes */
    uint8_t skip[SL_NEXMARK_CLASSES];   /* from a class not its own: events to the next
                                         * that is (to the next round when none is) */
    sl_claims *claims;                  /* sl_nexmark_share'd: its events come from these, */
    int64_t stop;                       /* and it makes its claim's up to this one */
};

/* ---- random streams ------------------------------------------------------------------ */

typedef struct rng { uint64_t s; } rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform integer in [0, n), n < 2^32. */
static int64_t rng_int(rng *r, uint32_t n)
{
    return (int64_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* A uniform integer in [0, n), n >= 1. */
static int64_t rng_long(rng *r, int64_t n)
{
    return (int64_t)(rng_next(r) % (uint64_t)n);
}

static double rng_double(rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Event n's own stream: independent of every other event's, the same for the same seed. */
static void rng_seed(rng *r, uint64_t seed, int64_t n)
{
    r->s = seed * 0xd1b54a32d192ed03ULL + (uint64_t)n;
    r->s = rng_next(r);         /* scattered, so that no two events' streams overlap */
}

/* ---- the model ----------------------------------------------------------------------- */

static int64_t last_person(int64_t n)
{
    return n / SL_NEXMARK_PROPORTIONS;  /* one person per cycle, at its offset 0 */
}

/* The newest auction (base 0) at event n: n's own when n is an auction. */
static int64_t last_auction(int64_t n)
{
    int64_t epoch = n / SL_NEXMARK_PROPORTIONS, offset = n % SL_NEXMARK_PROPORTIONS;

    if (offset < SL_NEXMARK_PERSON_PROPORTION) {
        epoch--;
        offset = SL_NEXMARK_AUCTION_PROPORTION - 1;
    } else if (offset >= SL_NEXMARK_PERSON_PROPORTION + SL_NEXMARK_AUCTION_PROPORTION) {
        offset = SL_NEXMARK_AUCTION_PROPORTION - 1;
    } else {
        offset -= SL_NEXMARK_PERSON_PROPORTION;
    }
    return epoch * SL_NEXMARK_AUCTION_PROPORTION + offset;
}

/* A person among the active ones, or one of the next few to be created. */
static int64_t some_person(const sl_nexmark *g, int64_t n, rng *r)
{
    int64_t people = last_person(n) + 1;
    int64_t active = people < g->cfg.active_people ? people : g->cfg.active_people;

    return people - active + rng_long(r, active + PERSON_ID_LEAD);
}

/* An auction likely still open, or one of the next few. */
static int64_t some_auction(const sl_nexmark *g, int64_t n, rng *r)
{
    int64_t last = last_auction(n);
    int64_t lo = last - g->cfg.in_flight_auctions;

    if (lo < 0)
        lo = 0;
    return lo + rng_long(r, last - lo + 1 + AUCTION_ID_LEAD);
}

static int64_t next_price(rng *r)
{
    return llround(exp(rng_double(r) * 13.815510557964274) * 100.0);    /* 10^(6u) */
}

/* Random text of 3 to max_len - 1 letters and spaces, trimmed (an item name, a
 * description): one of the 16 pooled variants of the length drawn. */
static sl_nexmark_str next_text(const sl_nexmark *g, rng *r, int max_len)
{
    int len = MIN_STRING_LENGTH + (int)rng_int(r, (uint32_t)(max_len - MIN_STRING_LENGTH));
    return g->pool[P_TEXT + len * EXTRA_VARIANTS + (int)rng_int(r, EXTRA_VARIANTS)];
}

/* Padding that brings a record of current_size bytes to avg bytes on average. */
static sl_nexmark_str next_extra(const sl_nexmark *g, rng *r, int current_size, int avg)
{
    int want, delta, size;

    if (current_size > avg)
        return g->pool[P_EXTRA];
    want = avg - current_size;
    delta = (int)lround(want * 0.2);
    size = want - delta + (delta == 0 ? 0 : (int)rng_int(r, (uint32_t)(2 * delta)));
    if (size > EXTRA_MAX)
        size = EXTRA_MAX;
    return g->pool[P_EXTRA + size * EXTRA_VARIANTS + (int)rng_int(r, EXTRA_VARIANTS)];
}

static void make_person(const sl_nexmark *g, sl_nexmark_event *ev, rng *r)
{
    sl_nexmark_person *p = &ev->u.person;
    int first = (int)rng_int(r, COUNT(first_names)), last = (int)rng_int(r, COUNT(last_names));
    int size;

    p->id = last_person(ev->n) + SL_NEXMARK_FIRST_PERSON_ID;
    p->name = g->pool[P_NAME + first * COUNT(last_names) + last];
    p->email_address = g->pool[P_EMAIL + rng_int(r, PEOPLE_STRINGS)];
    p->credit_card = g->pool[P_CARD + rng_int(r, PEOPLE_STRINGS)];
    p->city = g->pool[P_CITY + rng_int(r, COUNT(cities))];
    p->state = g->pool[P_STATE + rng_int(r, COUNT(states))];
    size = 8 + (int)(p->name.len + p->email_address.len + p->credit_card.len + p->city.len +
                     p->state.len);
    p->extra = next_extra(g, r, size, g->cfg.avg_person_bytes);
}

static void make_auction(const sl_nexmark *g, sl_nexmark_event *ev, rng *r)
{
    sl_nexmark_auction *a = &ev->u.auction;
    int64_t n = ev->n, future;
    int size;

    a->id = last_auction(n) + SL_NEXMARK_FIRST_AUCTION_ID;
    if (rng_int(r, (uint32_t)g->cfg.hot_seller_ratio) > 0)
        a->seller = (last_person(n) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO;
    else
        a->seller = some_person(g, n, r);
    a->seller += SL_NEXMARK_FIRST_PERSON_ID;
    a->category = SL_NEXMARK_FIRST_CATEGORY_ID + rng_int(r, NUM_CATEGORIES);
    a->initial_bid = next_price(r);
    /* An auction lasts on average as long as it takes for in_flight_auctions more. */
    future = sl_nexmark_time_of(g, n + g->auction_horizon) - ev->date_time;
    a->expires = ev->date_time + 1 + rng_long(r, future * 2 > 1 ? future * 2 : 1);
    a->item_name = next_text(g, r, 20);
    a->description = next_text(g, r, TEXT_MAX);
    a->reserve = a->initial_bid + next_price(r);
    size = 8 + (int)(a->item_name.len + a->description.len) + 8 + 8 + 8 + 8 + 8;
    a->extra = next_extra(g, r, size, g->cfg.avg_auction_bytes);
}

static void make_bid(const sl_nexmark *g, sl_nexmark_event *ev, rng *r)
{
    sl_nexmark_bid *b = &ev->u.bid;
    int64_t n = ev->n;
    int c;

    if (rng_int(r, (uint32_t)g->cfg.hot_auction_ratio) > 0)
        b->auction = (last_auction(n) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO;
    else
        b->auction = some_auction(g, n, r);
    b->auction += SL_NEXMARK_FIRST_AUCTION_ID;
    if (rng_int(r, (uint32_t)g->cfg.hot_bidder_ratio) > 0)
        b->bidder = (last_person(n) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1;
    else
        b->bidder = some_person(g, n, r);
    b->bidder += SL_NEXMARK_FIRST_PERSON_ID;
    b->price = next_price(r);
    if (rng_int(r, HOT_CHANNEL_RATIO) > 0)
        c = (int)rng_int(r, COUNT(hot_channels));
    else
        c = 4 + (int)rng_int(r, SL_NEXMARK_CHANNELS);
    b->channel = g->pool[P_CHANNEL + c];
    b->url = g->pool[P_URL + c];
    b->extra = next_extra(g, r, 8 + 8 + 8 + 8, g->cfg.avg_bid_bytes);
}

/* ---- the generator ------------------------------------------------------------------- */

void sl_nexmark_config_init(sl_nexmark_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rate = 10000;
    cfg->first_time = 1700000000000LL;      /* 2023-11-14T22:13:20Z */
    cfg->active_people = 1000;
    cfg->in_flight_auctions = 100;
    cfg->hot_auction_ratio = 2;
    cfg->hot_seller_ratio = 4;
    cfg->hot_bidder_ratio = 4;
    cfg->avg_person_bytes = 200;
    cfg->avg_auction_bytes = 500;
    cfg->avg_bid_bytes = 100;
}

/* Five random letters and the channel's url, as the nexmark/nexmark generator makes them. */
static int write_url(char *p, rng *r, int channel)
{
    char part[3][6];

    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 5; i++)
            part[k][i] = (char)('a' + rng_int(r, 26));
        part[k][5] = '\0';
    }
    if (channel < 0)
        return sprintf(p, "https://www.nexmark.com/%s/%s/%s/item.htm?query=1", part[0],
                       part[1], part[2]);
    return sprintf(p, "https://www.nexmark.com/%s/%s/%s/item.htm?query=1&channel_id=%u",
                   part[0], part[1], part[2], (unsigned)channel);
}

/* Bit-reverses a 32-bit number (Java's Integer.reverse), for channel ids. */
static uint32_t reverse32(uint32_t x)
{
    uint32_t y = 0;

    for (int i = 0; i < 32; i++, x >>= 1)
        y = (y << 1) | (x & 1);
    return y;
}

/* Adds string number id, of bytes b..p (p: one past the end), to the pool. */
static void pool_add(sl_nexmark *g, int id, const char *b, const char *p)
{
    g->pool[id] = (sl_nexmark_str){b, (uint32_t)(p - b), (uint32_t)id};
}

sl_nexmark *sl_nexmark_new(const sl_nexmark_config *cfg)
{
    sl_nexmark *g;
    rng r;
    char *p;

    if (cfg->rate <= 0 || cfg->events < 0 || cfg->active_people < 1 ||
        cfg->in_flight_auctions < 1 || cfg->hot_auction_ratio < 1 ||
        cfg->hot_seller_ratio < 1 || cfg->hot_bidder_ratio < 1)
        return NULL;
    g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->arena = malloc((size_t)NUM_CHANNELS * 112 + 99 * 16 + PEOPLE_STRINGS * 40);
    if (g->arena == NULL) {
        free(g);
        return NULL;
    }
    g->cfg = *cfg;
    g->ms_per_event = 1000.0 / cfg->rate;
    g->auction_horizon = cfg->in_flight_auctions * SL_NEXMARK_PROPORTIONS /
                         SL_NEXMARK_AUCTION_PROPORTION;
    rng_seed(&r, cfg->seed, -1);
    for (size_t i = 0; i < sizeof g->extra; i++)
        g->extra[i] = (char)('a' + rng_int(&r, 26));
    for (size_t i = 0; i < sizeof g->text; i++)
        g->text[i] = rng_int(&r, 13) == 0 ? ' ' : (char)('a' + rng_int(&r, 26));
    for (int len = 0; len <= EXTRA_MAX; len++)
        for (int v = 0; v < EXTRA_VARIANTS; v++) {
            const char *b = g->extra + v * EXTRA_STRIDE;
            pool_add(g, P_EXTRA + len * EXTRA_VARIANTS + v, b, b + len);
        }
    for (int len = 0; len <= TEXT_MAX; len++)
        for (int v = 0; v < EXTRA_VARIANTS; v++) {
            const char *b = g->text + v * EXTRA_STRIDE, *e = b + len;
            while (b < e && *b == ' ')
                b++;
            while (e > b && e[-1] == ' ')
                e--;
            pool_add(g, P_TEXT + len * EXTRA_VARIANTS + v, b, e);
        }
    p = g->arena;
    for (int c = 0; c < NUM_CHANNELS; c++) {
        char *b = p;
        if (c < 4)
            p += sprintf(p, "%s", hot_channels[c]);
        else
            p += sprintf(p, "channel-%d", c - 4);
        pool_add(g, P_CHANNEL + c, b, p++);
        b = p;
        p += write_url(p, &r, c < 4 ? -1 : (int)(reverse32((uint32_t)(c - 4)) & 0x7fffffff));
        pool_add(g, P_URL + c, b, p++);
    }
    for (int f = 0; f < COUNT(first_names); f++)
        for (int l = 0; l < COUNT(last_names); l++) {
            char *b = p;
            p += sprintf(p, "%s %s", first_names[f], last_names[l]);
            pool_add(g, P_NAME + f * COUNT(last_names) + l, b, p++);
        }
    for (int i = 0; i < COUNT(cities); i++)
        pool_add(g, P_CITY + i, cities[i], cities[i] + strlen(cities[i]));
    for (int i = 0; i < COUNT(states); i++)
        pool_add(g, P_STATE + i, states[i], states[i] + strlen(states[i]));
    for (int i = 0; i < PEOPLE_STRINGS; i++) {
        char *b = p;
        int user = 3 + (int)rng_int(&r, 4), host = 3 + (int)rng_int(&r, 2);
        for (int k = 0; k < user; k++)
            *p++ = (char)('a' + rng_int(&r, 26));
        *p++ = '@';
        for (int k = 0; k < host; k++)
            *p++ = (char)('a' + rng_int(&r, 26));
        p += sprintf(p, ".com");
        pool_add(g, P_EMAIL + i, b, p++);
        b = p;
        p += sprintf(p, "%04d %04d %04d %04d", (int)rng_int(&r, 10000),
                     (int)rng_int(&r, 10000), (int)rng_int(&r, 10000),
                     (int)rng_int(&r, 10000));
        pool_add(g, P_CARD + i, b, p++);
    }
    return g;
}

void sl_nexmark_free(sl_nexmark *g)
{
    if (g == NULL)
        return;
    sl_claims_close(g->claims);
    free(g->arena);
    free(g);
}

int sl_nexmark_type_of(int64_t n)
{
    int64_t rem = n % SL_NEXMARK_PROPORTIONS;

    if (rem < SL_NEXMARK_PERSON_PROPORTION)
        return SL_NEXMARK_PERSON;
    if (rem < SL_NEXMARK_PERSON_PROPORTION + SL_NEXMARK_AUCTION_PROPORTION)
        return SL_NEXMARK_AUCTION;
    return SL_NEXMARK_BID;
}

int64_t sl_nexmark_time_of(const sl_nexmark *g, int64_t n)
{
    return g->cfg.first_time + (int64_t)floor((double)n * g->ms_per_event);
}

int sl_nexmark_next(sl_nexmark *g, sl_nexmark_event *ev)
{
    rng r;

    while (g->claims != NULL) {
        if (g->next < g->stop) {
            ev->n = g->next++;
            goto make;
        }
        if (!sl_claims_take(g->claims, &g->next, &g->stop))
            return 0;
    }
    for (;;) {
        int64_t n;
        int c;

        if (g->cfg.events > 0 && g->next >= g->cfg.events)
            return 0;
        n = g->next++;
        c = (int)(n % SL_NEXMARK_CLASSES);
        if (!g->split || (g->mine[c] && n >= g->floor[c])) {
            ev->n = n;
            break;
        }
        /* the other workers' classes come in runs: past this one at once */
        if (!g->mine[c])
            g->next = n + g->skip[c];
    }
make:
    ev->date_time = sl_nexmark_time_of(g, ev->n);
    ev->type = sl_nexmark_type_of(ev->n);
    rng_seed(&r, g->cfg.seed, ev->n);
    if (ev->type == SL_NEXMARK_BID)
        make_bid(g, ev, &r);
    else if (ev->type == SL_NEXMARK_AUCTION)
        make_auction(g, ev, &r);
    else
        make_person(g, ev, &r);
    return 1;
}

int64_t sl_nexmark_position(const sl_nexmark *g)
{
    return g->next;
}

void sl_nexmark_seek(sl_nexmark *g, int64_t n)
{
    g->next = n < 0 ? 0 : n;
}

void sl_nexmark_split(sl_nexmark *g, const uint8_t ismine[SL_NEXMARK_CLASSES],
                      const int64_t floor[SL_NEXMARK_CLASSES])
{
    int c;

    g->split = 1;
    for (c = 0; c < SL_NEXMARK_CLASSES; c++) {
        g->mine[c] = ismine[c] != 0;
        g->floor[c] = floor ? floor[c] : 0;
    }
    for (c = SL_NEXMARK_CLASSES - 1; c >= 0; c--) {
        int after = c + 1 < SL_NEXMARK_CLASSES ? g->skip[c + 1] : 0;

        /* (a class of its own needs none; the last class's run ends with the round) */
        if (c + 1 == SL_NEXMARK_CLASSES || g->mine[c + 1])
            g->skip[c] = 1;
        else
            g->skip[c] = (uint8_t)(after + 1);
    }
}

void sl_nexmark_share(sl_nexmark *g, sl_claims *claims)
{
    sl_claims_close(g->claims);
    g->claims = claims;
    g->next = g->stop = 0;
}

void sl_nexmark_resume_claim(sl_nexmark *g, int64_t from, int64_t to)
{
    g->next = from;
    g->stop = to;
}

int64_t sl_nexmark_claimed(const sl_nexmark *g, int64_t *stop)
{
    *stop = g->stop;
    return g->next;
}

sl_claims *sl_nexmark_claims(const sl_nexmark *g)
{
    return g->claims;
}

int64_t sl_nexmark_next_of(const sl_nexmark *g, int c)
{
    int64_t from = g->next, n;

    if (g->split && g->floor[c] > from)
        from = g->floor[c];
    n = from - from % SL_NEXMARK_CLASSES + c;
    return n < from ? n + SL_NEXMARK_CLASSES : n;
}

const sl_nexmark_str *sl_nexmark_pool_string(const sl_nexmark *g, int n)
{
    if (n < 1 || n >= P_END || !g->pool[n].s)
        return NULL;
    return &g->pool[n];
}
