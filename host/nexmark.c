/* nexmark.c -- the Nexmark event generator (see nexmark.h), and its Lua object.
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

struct sl_nexmark {
    sl_nexmark_config cfg;
    int64_t next;                       /* number of the next event */
    double ms_per_event;                /* 1000 / rate */
    int64_t auction_horizon;            /* events until in_flight_auctions more exist */
    char extra[EXTRA_VARIANTS * EXTRA_STRIDE + EXTRA_MAX];   /* letters for `extra` */
    char text[EXTRA_VARIANTS * EXTRA_STRIDE + TEXT_MAX];     /* letters and spaces */
    sl_nexmark_str pool[P_END];
    char *arena;                        /* the bytes of the other pooled strings */
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

    if (g->cfg.events > 0 && g->next >= g->cfg.events)
        return 0;
    ev->n = g->next++;
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

#ifndef SL_NEXMARK_NO_LUA
/* ---- the Lua object: core.nexmark{...} ------------------------------------------------
 *
 * The userdata holds the generator, one event to fill, and the raw buffer of fill_raw.
 * Its environment table holds the field names as Lua strings (pushing a cached name and
 * lua_rawset skips hashing it for every field of every record) and the cache of pooled
 * strings, an array by pool number that fill and fill_raw complete as they meet them.
 */
#include <lauxlib.h>

#include "vm.h"

#define NEXMARK_MT "sluice.nexmark"
#define RAW_MAX    4096           /* most events per fill_raw */
#define RAW_STRIDE 12             /* numbers per event in the raw buffer */

typedef struct lnexmark {
    sl_nexmark *g;
    sl_nexmark_event ev;
    double raw[RAW_MAX * RAW_STRIDE];
    uint8_t cached[P_END];        /* which pooled strings the cache holds */
} lnexmark;

/* The field names, in the order of the keys array of the environment. */
enum {
    K_TYPE = 1, K_PERSON, K_AUCTION, K_BID, K_ID, K_NAME, K_EMAIL, K_CARD, K_CITY, K_STATE,
    K_DATE_TIME, K_EXTRA, K_ITEM_NAME, K_DESCRIPTION, K_INITIAL_BID, K_RESERVE, K_EXPIRES,
    K_SELLER, K_CATEGORY, K_BIDDER, K_PRICE, K_CHANNEL, K_URL, K_COUNT = K_URL
};
static const char *const key_names[K_COUNT] = {"type", "person", "auction", "bid", "id",
    "name", "email_address", "credit_card", "city", "state", "date_time", "extra",
    "item_name", "description", "initial_bid", "reserve", "expires", "seller", "category",
    "bidder", "price", "channel", "url"};

/* Stack slots while filling. */
enum { S_SELF = 1, S_BATCH, S_MAX, S_KEYS, S_STRINGS };
enum { E_KEYS = 1, E_STRINGS };

static lnexmark *check_gen(lua_State *L)
{
    lnexmark *x = luaL_checkudata(L, 1, NEXMARK_MT);
    if (x->g == NULL)
        luaL_error(L, "nexmark: generator is closed");
    return x;
}

static double opt_num(lua_State *L, int t, const char *field, double dflt)
{
    double v = dflt;

    lua_getfield(L, t, field);                          /* v */
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1))
            luaL_error(L, "nexmark: %s must be a number", field);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* core.nexmark{events=, rate=, seed=, first_time=, people=, auctions=, ...} -> generator */
int sl_nexmark_lua_new(lua_State *L)
{
    sl_nexmark_config cfg;
    lnexmark *x;

    luaL_checktype(L, 1, LUA_TTABLE);
    sl_nexmark_config_init(&cfg);
    cfg.events = (int64_t)opt_num(L, 1, "events", 0);
    cfg.rate = opt_num(L, 1, "rate", cfg.rate);
    cfg.seed = (uint64_t)(int64_t)opt_num(L, 1, "seed", 0);
    cfg.first_time = (int64_t)opt_num(L, 1, "first_time", (double)cfg.first_time);
    cfg.active_people = (int64_t)opt_num(L, 1, "people", (double)cfg.active_people);
    cfg.in_flight_auctions = (int64_t)opt_num(L, 1, "auctions", (double)cfg.in_flight_auctions);
    cfg.hot_auction_ratio = (int)opt_num(L, 1, "hot_auction_ratio", cfg.hot_auction_ratio);
    cfg.hot_seller_ratio = (int)opt_num(L, 1, "hot_seller_ratio", cfg.hot_seller_ratio);
    cfg.hot_bidder_ratio = (int)opt_num(L, 1, "hot_bidder_ratio", cfg.hot_bidder_ratio);
    x = lua_newuserdata(L, sizeof *x);                  /* t x */
    x->g = NULL;
    memset(x->cached, 0, sizeof x->cached);
    luaL_getmetatable(L, NEXMARK_MT);
    lua_setmetatable(L, -2);
    x->g = sl_nexmark_new(&cfg);
    if (x->g == NULL)
        return luaL_error(L, "nexmark: bad options (rate > 0, events >= 0, people, auctions "
                          "and ratios >= 1) or out of memory");
    lua_createtable(L, 2, 0);                           /* t x env */
    lua_createtable(L, K_COUNT, 0);                     /* t x env keys */
    for (int k = 0; k < K_COUNT; k++) {
        lua_pushstring(L, key_names[k]);
        lua_rawseti(L, -2, k + 1);
    }
    lua_rawseti(L, -2, E_KEYS);                         /* t x env */
    lua_createtable(L, P_END, 0);
    lua_rawseti(L, -2, E_STRINGS);
    lua_setfenv(L, -2);                                 /* t x */
    return 1;
}

static int gen_gc(lua_State *L)
{
    lnexmark *x = luaL_checkudata(L, 1, NEXMARK_MT);
    sl_nexmark_free(x->g);
    x->g = NULL;
    return 0;
}

/* Pushes field name k. */
#define KEY(k) lua_rawgeti(L, S_KEYS, (k))

/* Makes sure the cache (stack slot S_STRINGS) holds pooled string s; returns its number. */
static double cached(lua_State *L, lnexmark *x, const sl_nexmark_str *s)
{
    if (!x->cached[s->pool]) {
        lua_pushlstring(L, s->s, s->len);
        lua_rawseti(L, S_STRINGS, (int)s->pool);
        x->cached[s->pool] = 1;
    }
    return s->pool;
}

static void set_num(lua_State *L, int k, int64_t v)
{
    KEY(k);
    lua_pushnumber(L, (lua_Number)v);
    lua_rawset(L, -3);
}

static void set_str(lua_State *L, lnexmark *x, int k, const sl_nexmark_str *s)
{
    KEY(k);
    lua_rawgeti(L, S_STRINGS, (int)cached(L, x, s));
    lua_rawset(L, -3);
}

/* Pushes the record {type=T, T={...}} of x->ev. */
static void push_event(lua_State *L, lnexmark *x)
{
    const sl_nexmark_event *ev = &x->ev;
    int k = ev->type == SL_NEXMARK_BID ? K_BID : ev->type == SL_NEXMARK_AUCTION ? K_AUCTION
                                                                                 : K_PERSON;

    lua_createtable(L, 0, 2);                           /* r */
    KEY(K_TYPE);
    KEY(k);
    lua_rawset(L, -3);
    KEY(k);                                             /* r name */
    if (ev->type == SL_NEXMARK_BID) {
        const sl_nexmark_bid *b = &ev->u.bid;
        lua_createtable(L, 0, 7);                       /* r name bid */
        set_num(L, K_AUCTION, b->auction);
        set_num(L, K_BIDDER, b->bidder);
        set_num(L, K_PRICE, b->price);
        set_str(L, x, K_CHANNEL, &b->channel);
        set_str(L, x, K_URL, &b->url);
        set_num(L, K_DATE_TIME, ev->date_time);
        set_str(L, x, K_EXTRA, &b->extra);
    } else if (ev->type == SL_NEXMARK_AUCTION) {
        const sl_nexmark_auction *a = &ev->u.auction;
        lua_createtable(L, 0, 10);                      /* r name auction */
        set_num(L, K_ID, a->id);
        set_str(L, x, K_ITEM_NAME, &a->item_name);
        set_str(L, x, K_DESCRIPTION, &a->description);
        set_num(L, K_INITIAL_BID, a->initial_bid);
        set_num(L, K_RESERVE, a->reserve);
        set_num(L, K_DATE_TIME, ev->date_time);
        set_num(L, K_EXPIRES, a->expires);
        set_num(L, K_SELLER, a->seller);
        set_num(L, K_CATEGORY, a->category);
        set_str(L, x, K_EXTRA, &a->extra);
    } else {
        const sl_nexmark_person *p = &ev->u.person;
        lua_createtable(L, 0, 8);                       /* r name person */
        set_num(L, K_ID, p->id);
        set_str(L, x, K_NAME, &p->name);
        set_str(L, x, K_EMAIL, &p->email_address);
        set_str(L, x, K_CARD, &p->credit_card);
        set_str(L, x, K_CITY, &p->city);
        set_str(L, x, K_STATE, &p->state);
        set_num(L, K_DATE_TIME, ev->date_time);
        set_str(L, x, K_EXTRA, &p->extra);
    }
    lua_rawset(L, -3);                                  /* r */
}

/* Leaves self batch max keys strings on the stack. */
static lnexmark *fill_args(lua_State *L, int *max)
{
    lnexmark *x = check_gen(L);

    luaL_checktype(L, 2, LUA_TTABLE);
    *max = (int)luaL_optinteger(L, 3, 1024);
    lua_settop(L, S_MAX);
    lua_getfenv(L, S_SELF);                             /* self batch max env */
    lua_rawgeti(L, S_KEYS, E_KEYS);
    lua_rawgeti(L, S_KEYS, E_STRINGS);                  /* self batch max env keys strings */
    lua_remove(L, S_KEYS);                              /* self batch max keys strings */
    return x;
}

/* gen:fill(batch [, max=1024]) -> n: batch[1..n] are the next n events as new records
 * (batch[n+1] is set to nil); 0 at the end of a bounded generator. */
static int gen_fill(lua_State *L)
{
    int max, n = 0;
    lnexmark *x = fill_args(L, &max);

    while (n < max && sl_nexmark_next(x->g, &x->ev)) {
        push_event(L, x);                               /* ... r */
        lua_rawseti(L, S_BATCH, ++n);
    }
    lua_pushnil(L);
    lua_rawseti(L, S_BATCH, n + 1);
    lua_pushinteger(L, n);
    return 1;
}

/* gen:fill_raw(batch [, max=1024]) -> n: the next n events (n <= 4096) as numbers in the
 * raw buffer (gen:raw()), for a caller that makes the records itself: event i (from 0)
 * at raw[i * 12 + k], strings as their numbers in the cache of pooled strings:
 *   k    0     1          2        3          4            5            6
 *   bid  3     date_time  auction  bidder     price        channel      url
 *   auc  2     date_time  id       item_name  description  initial_bid  reserve
 *   per  1     date_time  id       name       email        credit_card  city
 *   k    7        8       9         10
 *   bid  extra
 *   auc  expires  seller  category  extra
 *   per  state    extra
 * Slot 11 is left to the caller (lua/sluice/nexmark.lua writes there which cache its
 * typed views read strings from). Every string named is in the cache when fill_raw
 * returns. batch is not touched (it is an argument so that a later version may put
 * records there). */
static int gen_fill_raw(lua_State *L)
{
    int max, n = 0;
    lnexmark *x = fill_args(L, &max);

    if (max > RAW_MAX)
        max = RAW_MAX;
    while (n < max && sl_nexmark_next(x->g, &x->ev)) {
        const sl_nexmark_event *ev = &x->ev;
        double *o = x->raw + (size_t)n++ * RAW_STRIDE;
        o[0] = ev->type;
        o[1] = (double)ev->date_time;
        if (ev->type == SL_NEXMARK_BID) {
            const sl_nexmark_bid *b = &ev->u.bid;
            o[2] = (double)b->auction;
            o[3] = (double)b->bidder;
            o[4] = (double)b->price;
            o[5] = cached(L, x, &b->channel);
            o[6] = cached(L, x, &b->url);
            o[7] = cached(L, x, &b->extra);
        } else if (ev->type == SL_NEXMARK_AUCTION) {
            const sl_nexmark_auction *a = &ev->u.auction;
            o[2] = (double)a->id;
            o[3] = cached(L, x, &a->item_name);
            o[4] = cached(L, x, &a->description);
            o[5] = (double)a->initial_bid;
            o[6] = (double)a->reserve;
            o[7] = (double)a->expires;
            o[8] = (double)a->seller;
            o[9] = (double)a->category;
            o[10] = cached(L, x, &a->extra);
        } else {
            const sl_nexmark_person *p = &ev->u.person;
            o[2] = (double)p->id;
            o[3] = cached(L, x, &p->name);
            o[4] = cached(L, x, &p->email_address);
            o[5] = cached(L, x, &p->credit_card);
            o[6] = cached(L, x, &p->city);
            o[7] = cached(L, x, &p->state);
            o[8] = cached(L, x, &p->extra);
        }
    }
    lua_pushinteger(L, n);
    return 1;
}

/* gen:raw() -> buffer, strings: the raw buffer of fill_raw (a light userdata: 4096 * 12
 * doubles, owned by gen and valid while it lives; read it with ffi.cast) and the cache
 * of pooled strings (an array). */
static int gen_raw(lua_State *L)
{
    lnexmark *x = check_gen(L);

    lua_pushlightuserdata(L, x->raw);
    lua_getfenv(L, 1);                                  /* gen raw env */
    lua_rawgeti(L, -1, E_STRINGS);                      /* gen raw env strings */
    lua_remove(L, -2);
    return 2;
}

/* gen:position() -> the number of the next event (0 at the start) */
static int gen_position(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)sl_nexmark_position(check_gen(L)->g));
    return 1;
}

/* gen:seek(n): the next event is number n */
static int gen_seek(lua_State *L)
{
    sl_nexmark_seek(check_gen(L)->g, (int64_t)luaL_checknumber(L, 2));
    return 0;
}

/* gen:time_of(n) -> the event time of event n */
static int gen_time_of(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)sl_nexmark_time_of(check_gen(L)->g,
                                                     (int64_t)luaL_checknumber(L, 2)));
    return 1;
}

static const luaL_Reg gen_methods[] = {
    {"fill", gen_fill},
    {"fill_raw", gen_fill_raw},
    {"raw", gen_raw},
    {"position", gen_position},
    {"seek", gen_seek},
    {"time_of", gen_time_of},
    {NULL, NULL}
};

void sl_nexmark_register(lua_State *L)
{
    sl_vm_class(L, NEXMARK_MT, gen_methods, gen_gc, NULL);
}
#endif
