/* Nexmark q8 baseline: each person who opened an auction in the 10 s tumbling window they
 * entered in, once per person and window (see common.h). Events come in time order, so a
 * window is done when an event falls past it: its people are kept in a list, and by person
 * id (ids are dense from 1000) the last window each person sold in. */
#include "common.h"

#define SIZE 10000

static sl_nexmark_person *people;       /* the window's people */
static int64_t npeople;
static int64_t *sold_in;                /* by person id: start of the last window sold in */

static void fire(int64_t start)
{
    for (int64_t i = 0; i < npeople; i++) {
        const sl_nexmark_person *p = &people[i];
        if (sold_in[p->id - SL_NEXMARK_FIRST_PERSON_ID] != start)
            continue;
        out_begin();
        out_num("id", (double)p->id);
        out_str("name", p->name.s, p->name.len);
        out_num("starttime", (double)start);
        out_end();
    }
    npeople = 0;
}

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g;
    int64_t nkeys, window = -1;

    g = start(argc, argv, &cfg);
    nkeys = cfg.events / SL_NEXMARK_PROPORTIONS + 64;
    people = malloc((size_t)nkeys * sizeof *people);
    sold_in = malloc((size_t)nkeys * sizeof *sold_in);
    for (int64_t i = 0; i < nkeys; i++)
        sold_in[i] = -1;
    while (sl_nexmark_next(g, &ev)) {
        int64_t s = ev.date_time - ev.date_time % SIZE;
        if (ev.type == SL_NEXMARK_BID)
            continue;
        if (s != window) {
            if (window >= 0)
                fire(window);
            window = s;
        }
        if (ev.type == SL_NEXMARK_PERSON)
            people[npeople++] = ev.u.person;
        else
            sold_in[ev.u.auction.seller - SL_NEXMARK_FIRST_PERSON_ID] = s;
    }
    if (window >= 0)
        fire(window);
    free(people);
    free(sold_in);
    return finish(g);
}
