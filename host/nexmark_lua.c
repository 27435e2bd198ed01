/* nexmark_lua.c -- core.nexmark{...}: the Lua object over the generator of nexmark.c.
 *
 * The userdata holds the generator, one event to fill, and the raw buffer of fill_raw:
 * records of the Event schema nexmark.lua declares (nexmark_typed.h), set up by
 * gen:layout. Its environment table holds the field names as Lua strings (pushing a cached
 * name and lua_rawset skips hashing it for every field of every record), the cache of
 * pooled strings, an array by pool number that fill and fill_raw complete as they meet
 * them, and the schema of the raw buffer's records (so that it outlives them).
 */
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "codec.h"
#include "nexmark.h"
#include "nexmark_lua.h"
#include "nexmark_typed.h"
#include "typed_lua.h"
#include "vm.h"

#define NEXMARK_MT "sluice.nexmark"
#define RAW_MAX 4096            /* records in the raw buffer: most events per fill_raw */

typedef struct lnexmark {
    sl_nexmark *g;
    sl_nexmark_event ev;
    sl_nexmark_layout lo;
    sl_typed_field *raw;        /* fill_raw's buffer: RAW_MAX records of lo.event, or NULL
                                   before gen:layout */
    uint8_t cached[SL_NEXMARK_POOL_SIZE];   /* which pooled strings the cache holds */
    int32_t fresh[SL_NEXMARK_POOL_SIZE];    /* fill_raw's: the strings it puts in the cache */
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

/* Stack slots while filling: fill's, and fill_raw's. */
enum { S_SELF = 1, S_BATCH, S_MAX, S_KEYS, S_STRINGS };
enum { R_SELF = 1, R_MAX, R_STRINGS };
enum { E_KEYS = 1, E_STRINGS, E_SCHEMA };

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
    x->raw = NULL;
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
    lua_createtable(L, SL_NEXMARK_POOL_SIZE, 0);
    lua_rawseti(L, -2, E_STRINGS);
    lua_setfenv(L, -2);                                 /* t x */
    return 1;
}

static int gen_gc(lua_State *L)
{
    lnexmark *x = luaL_checkudata(L, 1, NEXMARK_MT);
    sl_nexmark_free(x->g);
    x->g = NULL;
    free(x->raw);
    x->raw = NULL;
    return 0;
}

/* Pushes field name k. */
#define KEY(k) lua_rawgeti(L, S_KEYS, (k))

/* Makes sure the cache (at stack index si) holds pooled string s; returns its number. */
static double cached(lua_State *L, lnexmark *x, int si, const sl_nexmark_str *s)
{
    if (!x->cached[s->pool]) {
        lua_pushlstring(L, s->s, s->len);
        lua_rawseti(L, si, (int)s->pool);
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
    lua_rawgeti(L, S_STRINGS, (int)cached(L, x, S_STRINGS, s));
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

/* fill's arguments: leaves self batch max keys strings on the stack. */
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

/* gen:layout(schema, origin): the records of fill_raw's buffer are of schema, the
 * Event schema of nexmark_typed.h (raises naming what it lacks), each number's len is
 * origin (a whole number from 1 to 2^32 - 1 that the caller picks). Once per generator. */
static int gen_layout(lua_State *L)
{
    lnexmark *x = check_gen(L);
    const sl_schema *s = sl_schema_check(L, 2);
    lua_Number origin = luaL_checknumber(L, 3);
    char err[SL_CODEC_ERRLEN];

    if (x->raw != NULL)
        return luaL_error(L, "nexmark: gen:layout: the generator has its layout already");
    if (!(origin >= 1 && origin <= 4294967295.0))
        return luaL_error(L, "nexmark: gen:layout: origin must be from 1 to 2^32 - 1");
    if (sl_nexmark_layout_init(&x->lo, s, err) != 0)
        return luaL_error(L, "%s", err);
    x->raw = malloc((size_t)RAW_MAX * (size_t)s->nslots * sizeof *x->raw);
    if (x->raw == NULL)
        return luaL_error(L, "nexmark: gen:layout: out of memory");
    sl_nexmark_typed_prepare(&x->lo, x->raw, RAW_MAX, (uint32_t)origin);
    lua_getfenv(L, 1);                                  /* self schema origin env */
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, E_SCHEMA);
    return 0;
}

/* gen:fill_raw([max=1024 [, strings]]) -> n: the next n events (n <= 4096) in the raw
 * buffer (gen:raw()), for a caller that reads them in place or makes the records itself:
 * event i (from 0) in record i, as nexmark_typed.h writes them. strings: also puts every
 * string of them in the cache of pooled strings (by its number, a string field's present).
 */
static int gen_fill_raw(lua_State *L)
{
    lnexmark *x = check_gen(L);
    int max = (int)luaL_optinteger(L, 2, 1024), strings = lua_toboolean(L, 3), n, nfresh = 0;

    if (x->raw == NULL)
        return luaL_error(L, "nexmark: gen:fill_raw before gen:layout");
    if (max > RAW_MAX)
        max = RAW_MAX;
    n = sl_nexmark_typed_fill(&x->lo, x->g, &x->ev, x->raw, max, strings ? x->cached : NULL,
                              x->fresh, &nfresh);
    if (nfresh > 0) {
        lua_settop(L, R_MAX);
        lua_getfenv(L, R_SELF);                         /* self max env */
        lua_rawgeti(L, -1, E_STRINGS);                  /* self max env strings */
        lua_replace(L, R_STRINGS);                      /* self max strings */
        for (int i = 0; i < nfresh; i++) {
            const sl_nexmark_str *str = sl_nexmark_pool_string(x->g, x->fresh[i]);
            lua_pushlstring(L, str->s, str->len);
            lua_rawseti(L, R_STRINGS, (int)str->pool);
        }
    }
    lua_pushinteger(L, n);
    return 1;
}

/* gen:raw() -> buffer, strings: the raw buffer of fill_raw (a light userdata: 4096
 * records of the layout's schema, owned by gen and valid while it lives; read it with
 * ffi.cast) and the cache of pooled strings (an array). */
static int gen_raw(lua_State *L)
{
    lnexmark *x = check_gen(L);

    if (x->raw == NULL)
        return luaL_error(L, "nexmark: gen:raw before gen:layout");
    lua_pushlightuserdata(L, x->raw);
    lua_getfenv(L, 1);                                  /* gen raw env */
    lua_rawgeti(L, -1, E_STRINGS);                      /* gen raw env strings */
    lua_remove(L, -2);
    return 2;
}

/* gen:pointer() -> the sl_nexmark, as a light userdata (for sl_nexmark_adopt), valid while
 * gen lives */
static int gen_pointer(lua_State *L)
{
    lua_pushlightuserdata(L, check_gen(L)->g);
    return 1;
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

/* gen:split(mine, floors): makes only the events of the classes c (0..127) with
 * mine[c] true, and of each only those >= floors[c] (floors may be nil, or lack c): the
 * share of one worker (sl_nexmark_split). */
static int gen_split(lua_State *L)
{
    lnexmark *x = check_gen(L);
    uint8_t mine[SL_NEXMARK_CLASSES];
    int64_t floor[SL_NEXMARK_CLASSES];
    int c, any = 0;

    luaL_checktype(L, 2, LUA_TTABLE);
    for (c = 0; c < SL_NEXMARK_CLASSES; c++) {
        lua_rawgeti(L, 2, c);
        mine[c] = (uint8_t)lua_toboolean(L, -1);
        any |= mine[c];
        lua_pop(L, 1);
        floor[c] = 0;
        if (lua_istable(L, 3)) {
            lua_rawgeti(L, 3, c);
            if (lua_isnumber(L, -1))
                floor[c] = (int64_t)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    }
    if (!any)
        return luaL_error(L, "nexmark: split: no class of events is this generator's");
    sl_nexmark_split(x->g, mine, floor);
    return 0;
}

/* gen:share(name, left, tail, chunk, end) -> made: makes the events of the ranges it
 * claims (sl_nexmark_share) from the claims named `name` (nil: its own), which the first
 * to open that name makes (made: true) of: the ranges of `left` (an array of numbers, from
 * and to of each), then every event from `tail` on, in claims of `chunk`, up to `end` (nil:
 * no end). */
static int gen_share(lua_State *L)
{
    lnexmark *x = check_gen(L);
    const char *name = luaL_optstring(L, 2, NULL);
    sl_claims_work work;
    sl_claims *c;
    int64_t *left;
    int n, made;

    luaL_checktype(L, 3, LUA_TTABLE);
    n = (int)lua_objlen(L, 3);
    luaL_argcheck(L, n % 2 == 0, 3, "ranges as pairs of numbers");
    work.tail = (int64_t)luaL_checknumber(L, 4);
    work.chunk = (int64_t)luaL_checknumber(L, 5);
    work.end = lua_isnoneornil(L, 6) ? -1 : (int64_t)luaL_checknumber(L, 6);
    /* (a userdata: the collector frees it whatever raises) */
    left = lua_newuserdata(L, (size_t)(n > 0 ? n : 1) * sizeof *left);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 3, i + 1);
        left[i] = (int64_t)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    work.left = left;
    work.nleft = n / 2;
    c = sl_claims_open(name, &work, &made);
    if (c == NULL)
        return luaL_error(L, "nexmark: share: out of memory, or ranges not in order");
    sl_nexmark_share(x->g, c);
    lua_pushboolean(L, made);
    return 1;
}

/* gen:claimed([from, to]) -> next, stop: a sharing generator's claim (the next event it
 * makes, the end of its claim); with from and to, its claim is [from, to) first (the rest
 * of another generator's, which this one goes on from). */
static int gen_claimed(lua_State *L)
{
    lnexmark *x = check_gen(L);
    int64_t stop, next;

    if (sl_nexmark_claims(x->g) == NULL)
        return luaL_error(L, "nexmark: claimed: the generator does not share");
    if (!lua_isnoneornil(L, 2))
        sl_nexmark_resume_claim(x->g, (int64_t)luaL_checknumber(L, 2),
                                (int64_t)luaL_checknumber(L, 3));
    next = sl_nexmark_claimed(x->g, &stop);
    lua_pushnumber(L, (lua_Number)next);
    lua_pushnumber(L, (lua_Number)stop);
    return 2;
}

/* gen:unclaimed() -> ranges, tail: what a sharing generator has still to make, and what
 * no generator has claimed: its claim's rest first, then the claims' ranges left over
 * (an array of numbers, from and to of each), and `tail`, where every event after them
 * is (sl_claims_unclaimed: exact while no generator sharing them runs). */
static int gen_unclaimed(lua_State *L)
{
    lnexmark *x = check_gen(L);
    sl_claims *c = sl_nexmark_claims(x->g);
    int64_t stop, next, tail, *left;
    int n, got, k = 0;

    if (c == NULL)
        return luaL_error(L, "nexmark: unclaimed: the generator does not share");
    next = sl_nexmark_claimed(x->g, &stop);
    n = sl_claims_unclaimed(c, NULL, 0, &tail);
    left = lua_newuserdata(L, (size_t)(n > 0 ? n : 1) * 2 * sizeof *left);
    /* (fewer now if a generator claimed since: never more) */
    got = sl_claims_unclaimed(c, left, n, &tail);
    if (got < n)
        n = got;
    lua_createtable(L, 2 * n + 2, 0);
    if (next < stop) {
        lua_pushnumber(L, (lua_Number)next);
        lua_rawseti(L, -2, ++k);
        lua_pushnumber(L, (lua_Number)stop);
        lua_rawseti(L, -2, ++k);
    }
    for (int i = 0; i < 2 * n; i++) {
        lua_pushnumber(L, (lua_Number)left[i]);
        lua_rawseti(L, -2, ++k);
    }
    lua_pushnumber(L, (lua_Number)tail);
    return 2;
}

/* gen:next_of(c) -> the first event of class c not made yet */
static int gen_next_of(lua_State *L)
{
    int c = (int)luaL_checkinteger(L, 2);

    luaL_argcheck(L, c >= 0 && c < SL_NEXMARK_CLASSES, 2, "a class from 0 to 127");
    lua_pushnumber(L, (lua_Number)sl_nexmark_next_of(check_gen(L)->g, c));
    return 1;
}

/* gen:pool_string(n) -> pooled string n, or nil */
static int gen_pool_string(lua_State *L)
{
    const sl_nexmark_str *s = sl_nexmark_pool_string(check_gen(L)->g,
                                                     (int)luaL_checkinteger(L, 2));
    if (!s)
        return 0;
    lua_pushlstring(L, s->s, s->len);
    return 1;
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
    {"layout", gen_layout},
    {"pointer", gen_pointer},
    {"position", gen_position},
    {"seek", gen_seek},
    {"time_of", gen_time_of},
    {"split", gen_split},
    {"next_of", gen_next_of},
    {"share", gen_share},
    {"claimed", gen_claimed},
    {"unclaimed", gen_unclaimed},
    {"pool_string", gen_pool_string},
    {NULL, NULL}
};

void sl_nexmark_register(lua_State *L)
{
    sl_vm_class(L, NEXMARK_MT, gen_methods, gen_gc, NULL);
}
