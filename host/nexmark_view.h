/* nexmark_view.h -- the raw buffer of core.nexmark's gen:fill_raw, one slot per event.
 *
 * nexmark_lua.c writes event i of a batch into slot i as numbers, and Lua reads the slot
 * in place through these same structs (typed records: lua/sluice/nexmark.lua makes views
 * of them, and the table form from them). Everything below is plain C that
 * lua/sluice/host.lua pastes into its ffi.cdef as is; tests/unit/host_spec.lua holds the
 * two to each other field by field.
 *
 * A slot is 12 doubles: the event's type (SL_NEXMARK_BID, _AUCTION or _PERSON of
 * nexmark.h), then the member of u that the type names. A string field (its name ends in
 * _) holds the string's number in the generator's cache of pooled strings (gen:raw()), and
 * every string named is in the cache when fill_raw returns. cache_, the slot's last
 * double, is the caller's: fill_raw never writes it (nexmark.lua puts there which
 * generator's cache the strings are in), nor the unused_ doubles of a bid or person.
 */
#ifndef SL_NEXMARK_VIEW_H
#define SL_NEXMARK_VIEW_H

#define SL_NEXMARK_RAW_MAX 4096      /* slots in the buffer: most events per fill_raw */

typedef struct sl_nexmark_bid_view {
    double date_time;           /* ms since the epoch */
    double auction;
    double bidder;
    double price;
    double channel_;            /* strings: numbers in the cache */
    double url_;
    double extra_;
    double unused_[3];
    double cache_;              /* the caller's */
} sl_nexmark_bid_view;

typedef struct sl_nexmark_auction_view {
    double date_time;
    double id;
    double item_name_;
    double description_;
    double initial_bid;
    double reserve;
    double expires;
    double seller;
    double category;
    double extra_;
    double cache_;
} sl_nexmark_auction_view;

typedef struct sl_nexmark_person_view {
    double date_time;
    double id;
    double name_;
    double email_address_;
    double credit_card_;
    double city_;
    double state_;
    double extra_;
    double unused_[2];
    double cache_;
} sl_nexmark_person_view;

typedef struct sl_nexmark_event_view {
    double type_;               /* 3 bid, 2 auction, 1 person */
    union {
        sl_nexmark_bid_view bid_;
        sl_nexmark_auction_view auction_;
        sl_nexmark_person_view person_;
    } u;
} sl_nexmark_event_view;

#endif
