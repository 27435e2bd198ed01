/* nexmark_typed.h -- Nexmark's events as typed records (typed.h): records of the Event
 * schema that lua/sluice/nexmark.lua declares with sl.schema's machinery,
 *
 *   Event  = { auction = Auction, bid = Bid, person = Person }   (one of the three present)
 *   Bid    = { auction, bidder, price, date_time = f64, channel, url, extra = string }
 *   Auction, Person likewise (every number an f64, every text a string),
 *
 * so that a Nexmark view is a view of schema.lua like any other. nexmark_lua.c has the
 * events of gen:fill_raw written into such records; nexmark.lua reads them in place.
 *
 * Two things a Nexmark record holds that typed.h leaves open (nexmark.lua uses them):
 * - a string field's `present` is the string's number in the generator's pool
 *   (sl_nexmark_str.pool, >= 1, so still "present"): Lua reads the string from the
 *   generator's cache of Lua strings by it; and its v.str points into the generator that
 *   made it, so a worker that receives the record points it into its own generator of the
 *   same seed, whose pool has the same bytes at the same number (sl_nexmark_adopt);
 * - an f64 field's `len` (unused by typed.h for numbers) is the record's origin: a number
 *   the caller gives, the same in every record of one buffer, which says which generator
 *   the strings are from (nexmark.lua maps it to the seed).
 */
#ifndef SL_NEXMARK_TYPED_H
#define SL_NEXMARK_TYPED_H

#include <stdint.h>

#include "nexmark.h"
#include "typed.h"

/* The fields of the Event schema that a generator writes, and where they are. */
enum {
    SL_NX_AUCTION, SL_NX_BID, SL_NX_PERSON,             /* the nested records' headers */
    SL_NX_B_AUCTION, SL_NX_B_BIDDER, SL_NX_B_PRICE, SL_NX_B_DATE_TIME, SL_NX_B_CHANNEL,
    SL_NX_B_URL, SL_NX_B_EXTRA,
    SL_NX_A_ID, SL_NX_A_INITIAL_BID, SL_NX_A_RESERVE, SL_NX_A_DATE_TIME, SL_NX_A_EXPIRES,
    SL_NX_A_SELLER, SL_NX_A_CATEGORY, SL_NX_A_ITEM_NAME, SL_NX_A_DESCRIPTION, SL_NX_A_EXTRA,
    SL_NX_P_ID, SL_NX_P_DATE_TIME, SL_NX_P_NAME, SL_NX_P_EMAIL, SL_NX_P_CARD, SL_NX_P_CITY,
    SL_NX_P_STATE, SL_NX_P_EXTRA,
    SL_NX_FIELDS
};

typedef struct sl_nexmark_layout {
    const sl_schema *event;
    int at[SL_NX_FIELDS];       /* each field's slot in an event record */
} sl_nexmark_layout;

/* Finds the fields of the Event schema `event` (exactly those above, of those types):
 * 0, or -1 with the field that is missing or of another type in err (SL_CODEC_ERRLEN). */
int sl_nexmark_layout_init(sl_nexmark_layout *lo, const sl_schema *event, char *err);

/* Sets up recs[0, n) (event records) as the records of a generator's buffer: headers,
 * every number present with `origin` in its len. Done once; writing an event then sets
 * only what differs from one event to the next. */
void sl_nexmark_typed_prepare(const sl_nexmark_layout *lo, sl_typed_field *recs, int n,
                              uint32_t origin);

/* Writes the next events of g, at most max, into recs[0, max) (records prepared by
 * sl_nexmark_typed_prepare), event i into recs + i * lo->event->nslots; ev is scratch.
 * seen (SL_NEXMARK_POOL_SIZE flags, or NULL): the pool numbers of the strings met before;
 * each string not seen yet is flagged and its number appended to fresh[*nfresh] (room for
 * SL_NEXMARK_POOL_SIZE numbers: each is fresh once). Returns how many events: 0 when a
 * bounded generator is done. */
int sl_nexmark_typed_fill(const sl_nexmark_layout *lo, sl_nexmark *g, sl_nexmark_event *ev,
                          sl_typed_field *recs, int max, uint8_t *seen, int32_t *fresh,
                          int *nfresh);

/* ---- FFI door (lua/sluice/host.lua declares it; nexmark.lua calls it per batch) -------- */

/* Makes recs[0, n), records of schema s (the Event schema or one of its nested ones) that
 * another worker's generator wrote and that were copied here as bytes, records of this
 * worker: each header's schema is s (or the nested schema), each string of a present
 * record points into g's pool by its number, each number's len is origin. Returns 0, or
 * -1 when a string's number is not one of g's pool or its length differs (records of
 * another configuration: nothing after that record is changed). */
int sl_nexmark_adopt(const struct sl_nexmark *g, const struct sl_schema *s,
                     sl_typed_field *recs, int n, uint32_t origin);

#endif
