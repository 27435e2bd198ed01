/* Nexmark q3 baseline: people in OR, ID or CA joined with the auctions of category 10 they
 * sell, under scripts/nexmark/q3.lua's ttl join: a person and an auction pair when the rows
 * of their key (person id = seller, the rows that passed the filters), in time order, never
 * leave a gap of TTL or more between them (see common.h). Events come in time order, so a
 * key's current group is all that is kept: by person id (ids are dense from 1000), the
 * person if it came, and the auctions that came before it. */
#include "common.h"

#define TTL 10000

typedef struct key_state {
    int64_t last;               /* time of the group's last row; 0: no group */
    const sl_nexmark_person *person;    /* the group's person, or NULL */
    sl_nexmark_person held;
    int64_t waiting;            /* the group's auctions before its person: a list in next[] */
} key_state;

static int64_t *next_of, *auction_of, nnodes;   /* the lists of waiting auctions */

static void emit(const sl_nexmark_person *p, int64_t auction)
{
    out_begin();
    out_str("city", p->city.s, p->city.len);
    out_num("id", (double)auction);
    out_str("name", p->name.s, p->name.len);
    out_str("state", p->state.s, p->state.len);
    out_end();
}

/* The state of key id at time t: a gap of TTL or more since its last row starts a group. */
static key_state *enter(key_state *keys, int64_t id, int64_t t)
{
    key_state *k = &keys[id - SL_NEXMARK_FIRST_PERSON_ID];

    if (k->last != 0 && t - k->last >= TTL) {
        k->person = NULL;
        k->waiting = -1;
    }
    k->last = t;
    return k;
}

static int local_state(const sl_nexmark_str *s)
{
    return s->len == 2 && ((s->s[0] == 'O' && s->s[1] == 'R') ||
                           (s->s[0] == 'I' && s->s[1] == 'D') ||
                           (s->s[0] == 'C' && s->s[1] == 'A'));
}

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g;
    key_state *keys;
    int64_t nkeys;

    g = start(argc, argv, &cfg);
    nkeys = cfg.events / SL_NEXMARK_PROPORTIONS + 64;
    keys = calloc((size_t)nkeys, sizeof *keys);
    for (int64_t i = 0; i < nkeys; i++)
        keys[i].waiting = -1;
    next_of = malloc((size_t)(cfg.events / 10 + 64) * sizeof(int64_t));
    auction_of = malloc((size_t)(cfg.events / 10 + 64) * sizeof(int64_t));
    while (sl_nexmark_next(g, &ev)) {
        if (ev.type == SL_NEXMARK_PERSON) {
            key_state *k;
            if (!local_state(&ev.u.person.state))
                continue;
            k = enter(keys, ev.u.person.id, ev.date_time);
            k->held = ev.u.person;
            k->person = &k->held;
            for (int64_t n = k->waiting; n >= 0; n = next_of[n])
                emit(k->person, auction_of[n]);
            k->waiting = -1;
        } else if (ev.type == SL_NEXMARK_AUCTION) {
            key_state *k;
            if (ev.u.auction.category != 10)
                continue;
            k = enter(keys, ev.u.auction.seller, ev.date_time);
            if (k->person != NULL) {
                emit(k->person, ev.u.auction.id);
            } else {
                auction_of[nnodes] = ev.u.auction.id;
                next_of[nnodes] = k->waiting;
                k->waiting = nnodes++;
            }
        }
    }
    free(keys);
    free(next_of);
    free(auction_of);
    return finish(g);
}
