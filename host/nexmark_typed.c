/* nexmark_typed.c -- Nexmark's events written as records of the Event schema, and records
 * another worker wrote made this worker's (nexmark_typed.h).
 *
 * Writing an event is a store per field at a slot known when this file is compiled (a
 * store through a table of slots costs a third more per event), so the slots are written
 * out below, as sl_schema_new numbers the fields (sorted by name); the schema nexmark.lua
 * declares stays the one truth of the layout: sl_nexmark_layout_init looks each field up
 * in it by name and refuses a schema whose slots are not these. */
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "nexmark_typed.h"

/* The slots of an event record: Event {auction (11 slots), bid (8), person (9)}, each
 * record's fields after its header in the order of their names. */
enum {
    AT_AUCTION = 1, AT_BID = 12, AT_PERSON = 20, EVENT_SLOTS = 29,
    /* Auction: category, date_time, description, expires, extra, id, initial_bid,
     * item_name, reserve, seller */
    AT_A_CATEGORY = AT_AUCTION + 1, AT_A_DATE_TIME, AT_A_DESCRIPTION, AT_A_EXPIRES,
    AT_A_EXTRA, AT_A_ID, AT_A_INITIAL_BID, AT_A_ITEM_NAME, AT_A_RESERVE, AT_A_SELLER,
    /* Bid: auction, bidder, channel, date_time, extra, price, url */
    AT_B_AUCTION = AT_BID + 1, AT_B_BIDDER, AT_B_CHANNEL, AT_B_DATE_TIME, AT_B_EXTRA,
    AT_B_PRICE, AT_B_URL,
    /* Person: city, credit_card, date_time, email_address, extra, id, name, state */
    AT_P_CITY = AT_PERSON + 1, AT_P_CARD, AT_P_DATE_TIME, AT_P_EMAIL, AT_P_EXTRA, AT_P_ID,
    AT_P_NAME, AT_P_STATE
};

/* Each field: the record it is in (a field of the event, or -1: the event itself), its
 * name there, its type, and its slot in an event. */
static const struct {
    int in;
    const char *name;
    int type;
    int at;
} fields[SL_NX_FIELDS] = {
    [SL_NX_AUCTION] = {-1, "auction", SL_TYPED_RECORD, AT_AUCTION},
    [SL_NX_BID] = {-1, "bid", SL_TYPED_RECORD, AT_BID},
    [SL_NX_PERSON] = {-1, "person", SL_TYPED_RECORD, AT_PERSON},
    [SL_NX_B_AUCTION] = {SL_NX_BID, "auction", SL_TYPED_F64, AT_B_AUCTION},
    [SL_NX_B_BIDDER] = {SL_NX_BID, "bidder", SL_TYPED_F64, AT_B_BIDDER},
    [SL_NX_B_PRICE] = {SL_NX_BID, "price", SL_TYPED_F64, AT_B_PRICE},
    [SL_NX_B_DATE_TIME] = {SL_NX_BID, "date_time", SL_TYPED_F64, AT_B_DATE_TIME},
    [SL_NX_B_CHANNEL] = {SL_NX_BID, "channel", SL_TYPED_STRING, AT_B_CHANNEL},
    [SL_NX_B_URL] = {SL_NX_BID, "url", SL_TYPED_STRING, AT_B_URL},
    [SL_NX_B_EXTRA] = {SL_NX_BID, "extra", SL_TYPED_STRING, AT_B_EXTRA},
    [SL_NX_A_ID] = {SL_NX_AUCTION, "id", SL_TYPED_F64, AT_A_ID},
    [SL_NX_A_INITIAL_BID] = {SL_NX_AUCTION, "initial_bid", SL_TYPED_F64, AT_A_INITIAL_BID},
    [SL_NX_A_RESERVE] = {SL_NX_AUCTION, "reserve", SL_TYPED_F64, AT_A_RESERVE},
    [SL_NX_A_DATE_TIME] = {SL_NX_AUCTION, "date_time", SL_TYPED_F64, AT_A_DATE_TIME},
    [SL_NX_A_EXPIRES] = {SL_NX_AUCTION, "expires", SL_TYPED_F64, AT_A_EXPIRES},
    [SL_NX_A_SELLER] = {SL_NX_AUCTION, "seller", SL_TYPED_F64, AT_A_SELLER},
    [SL_NX_A_CATEGORY] = {SL_NX_AUCTION, "category", SL_TYPED_F64, AT_A_CATEGORY},
    [SL_NX_A_ITEM_NAME] = {SL_NX_AUCTION, "item_name", SL_TYPED_STRING, AT_A_ITEM_NAME},
    [SL_NX_A_DESCRIPTION] = {SL_NX_AUCTION, "description", SL_TYPED_STRING,
                             AT_A_DESCRIPTION},
    [SL_NX_A_EXTRA] = {SL_NX_AUCTION, "extra", SL_TYPED_STRING, AT_A_EXTRA},
    [SL_NX_P_ID] = {SL_NX_PERSON, "id", SL_TYPED_F64, AT_P_ID},
    [SL_NX_P_DATE_TIME] = {SL_NX_PERSON, "date_time", SL_TYPED_F64, AT_P_DATE_TIME},
    [SL_NX_P_NAME] = {SL_NX_PERSON, "name", SL_TYPED_STRING, AT_P_NAME},
    [SL_NX_P_EMAIL] = {SL_NX_PERSON, "email_address", SL_TYPED_STRING, AT_P_EMAIL},
    [SL_NX_P_CARD] = {SL_NX_PERSON, "credit_card", SL_TYPED_STRING, AT_P_CARD},
    [SL_NX_P_CITY] = {SL_NX_PERSON, "city", SL_TYPED_STRING, AT_P_CITY},
    [SL_NX_P_STATE] = {SL_NX_PERSON, "state", SL_TYPED_STRING, AT_P_STATE},
    [SL_NX_P_EXTRA] = {SL_NX_PERSON, "extra", SL_TYPED_STRING, AT_P_EXTRA},
};

int sl_nexmark_layout_init(sl_nexmark_layout *lo, const sl_schema *event, char *err)
{
    const sl_schema *within[SL_NX_FIELDS];
    int counts[SL_NX_FIELDS] = {0}, top = 0;

    lo->event = event;
    for (int i = 0; i < SL_NX_FIELDS; i++) {
        int in = fields[i].in;
        const sl_schema *s = in < 0 ? event : within[in];
        const sl_schema_field *f = sl_schema_find(s, fields[i].name, strlen(fields[i].name));

        if (f == NULL || f->type != fields[i].type) {
            snprintf(err, SL_CODEC_ERRLEN, "nexmark: the event schema has no %s field %s%s%s",
                     sl_typed_type_names[fields[i].type], in < 0 ? "" : fields[in].name,
                     in < 0 ? "" : ".", fields[i].name);
            return -1;
        }
        within[i] = f->record;
        lo->at[i] = (in < 0 ? 0 : lo->at[in]) + f->slot;
        if (lo->at[i] != fields[i].at) {
            snprintf(err, SL_CODEC_ERRLEN, "nexmark: field %s%s%s of the event schema is at "
                     "slot %d, nexmark_typed.c writes it at %d", in < 0 ? "" : fields[in].name,
                     in < 0 ? "" : ".", fields[i].name, lo->at[i], fields[i].at);
            return -1;
        }
        if (in < 0)
            top++;
        else
            counts[in]++;
    }
    /* and no other field, which no event would set */
    if (event->nfields != top || within[SL_NX_BID]->nfields != counts[SL_NX_BID]
        || within[SL_NX_AUCTION]->nfields != counts[SL_NX_AUCTION]
        || within[SL_NX_PERSON]->nfields != counts[SL_NX_PERSON]) {
        snprintf(err, SL_CODEC_ERRLEN, "nexmark: the event schema has fields no event has");
        return -1;
    }
    if (event->nslots != EVENT_SLOTS) {
        snprintf(err, SL_CODEC_ERRLEN, "nexmark: the event schema has %d slots, not %d",
                 event->nslots, EVENT_SLOTS);
        return -1;
    }
    return 0;
}

void sl_nexmark_typed_prepare(const sl_nexmark_layout *lo, sl_typed_field *recs, int n,
                              uint32_t origin)
{
    int size = lo->event->nslots;

    for (int r = 0; r < n; r++) {
        sl_typed_field *rec = recs + (size_t)r * (size_t)size;

        sl_typed_clear(lo->event, rec);
        for (int i = 0; i < SL_NX_FIELDS; i++) {
            if (fields[i].type == SL_TYPED_F64) {
                rec[lo->at[i]].present = 1;
                rec[lo->at[i]].len = origin;
            } else if (fields[i].type == SL_TYPED_STRING) {
                rec[lo->at[i]].v.str = NULL;
            }
        }
    }
}

/* Writes ev into rec, a prepared record: the nested records' presence, and the fields of
 * the present one. */
static inline void write_event(const sl_nexmark_event *ev, sl_typed_field *rec,
                               uint8_t *seen, int32_t *fresh, int *nfresh)
{
#define NUM(at, x) (rec[at].v.f64 = (double)(x))
#define STR(at, x) do { \
        rec[at].v.str = (x).s, rec[at].len = (x).len, rec[at].present = (x).pool; \
        if (seen != NULL && !seen[(x).pool]) { \
            seen[(x).pool] = 1; \
            fresh[(*nfresh)++] = (int32_t)(x).pool; \
        } \
    } while (0)
    rec[AT_AUCTION].present = ev->type == SL_NEXMARK_AUCTION;
    rec[AT_BID].present = ev->type == SL_NEXMARK_BID;
    rec[AT_PERSON].present = ev->type == SL_NEXMARK_PERSON;
    if (ev->type == SL_NEXMARK_BID) {
        const sl_nexmark_bid *b = &ev->u.bid;
        NUM(AT_B_AUCTION, b->auction);
        NUM(AT_B_BIDDER, b->bidder);
        NUM(AT_B_PRICE, b->price);
        NUM(AT_B_DATE_TIME, ev->date_time);
        STR(AT_B_CHANNEL, b->channel);
        STR(AT_B_URL, b->url);
        STR(AT_B_EXTRA, b->extra);
    } else if (ev->type == SL_NEXMARK_AUCTION) {
        const sl_nexmark_auction *a = &ev->u.auction;
        NUM(AT_A_ID, a->id);
        NUM(AT_A_INITIAL_BID, a->initial_bid);
        NUM(AT_A_RESERVE, a->reserve);
        NUM(AT_A_DATE_TIME, ev->date_time);
        NUM(AT_A_EXPIRES, a->expires);
        NUM(AT_A_SELLER, a->seller);
        NUM(AT_A_CATEGORY, a->category);
        STR(AT_A_ITEM_NAME, a->item_name);
        STR(AT_A_DESCRIPTION, a->description);
        STR(AT_A_EXTRA, a->extra);
    } else {
        const sl_nexmark_person *p = &ev->u.person;
        NUM(AT_P_ID, p->id);
        NUM(AT_P_DATE_TIME, ev->date_time);
        STR(AT_P_NAME, p->name);
        STR(AT_P_EMAIL, p->email_address);
        STR(AT_P_CARD, p->credit_card);
        STR(AT_P_CITY, p->city);
        STR(AT_P_STATE, p->state);
        STR(AT_P_EXTRA, p->extra);
    }
#undef NUM
#undef STR
}

int sl_nexmark_typed_fill(const sl_nexmark_layout *lo, sl_nexmark *g, sl_nexmark_event *ev,
                          sl_typed_field *recs, int max, uint8_t *seen, int32_t *fresh,
                          int *nfresh)
{
    int n = 0;

    (void)lo;                   /* its slots are the constants above (layout_init checked) */
    while (n < max && sl_nexmark_next(g, ev)) {
        write_event(ev, recs + (size_t)n * EVENT_SLOTS, seen, fresh, nfresh);
        n++;
    }
    return n;
}

/* adopt's work on one record of s at rec: live says whether it is present (an absent
 * nested record's strings are not read, and may be stale). */
static int adopt_record(const sl_nexmark *g, const sl_schema *s, sl_typed_field *rec,
                        uint32_t origin, int live, int depth)
{
    rec[0].v.schema = s;
    if (depth > SL_TYPED_MAX_DEPTH)
        return -1;
    for (int i = 0; i < s->nfields; i++) {
        const sl_schema_field *f = &s->fields[i];
        sl_typed_field *v = rec + f->slot;

        if (f->type == SL_TYPED_RECORD) {
            if (adopt_record(g, f->record, v, origin, live && v->present, depth + 1) != 0)
                return -1;
        } else if (f->type == SL_TYPED_F64) {
            v->len = origin;
        } else if (f->type == SL_TYPED_STRING && live && v->present) {
            const sl_nexmark_str *p = sl_nexmark_pool_string(g, (int)v->present);

            if (p == NULL || p->len != v->len)
                return -1;
            v->v.str = p->s;
        }
    }
    return 0;
}

int sl_nexmark_adopt(const struct sl_nexmark *g, const struct sl_schema *s,
                     sl_typed_field *recs, int n, uint32_t origin)
{
    for (int r = 0; r < n; r++)
        if (adopt_record(g, s, recs + (size_t)r * (size_t)s->nslots, origin, 1, 0) != 0)
            return -1;
    return 0;
}
