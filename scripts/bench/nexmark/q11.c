/* Nexmark q11 baseline: bids per bidder per session, a session ending 10 s after its last
 * bid (see common.h). Events come in time order: a bid joins its bidder's open session
 * when it comes before the session's end, else the session is done. */
#include "common.h"

#define GAP 10000

typedef struct session { int64_t start, end, bids; } session;

static void emit(int64_t bidder, const session *s)
{
    out_begin();
    out_num("bidder", (double)(bidder + SL_NEXMARK_FIRST_PERSON_ID));
    out_num("bids", (double)s->bids);
    out_num("window_end", (double)s->end);
    out_num("window_start", (double)s->start);
    out_end();
}

int main(int argc, char **argv)
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g;
    session *sessions;
    int64_t people;

    g = start(argc, argv, &cfg);
    people = cfg.events / SL_NEXMARK_PROPORTIONS + 128;
    sessions = calloc((size_t)people, sizeof *sessions);
    while (sl_nexmark_next(g, &ev)) {
        session *s;
        int64_t t = ev.date_time;
        if (ev.type != SL_NEXMARK_BID)
            continue;
        s = &sessions[ev.u.bid.bidder - SL_NEXMARK_FIRST_PERSON_ID];
        if (s->bids > 0 && t <= s->end) {
            s->bids++;
            if (t + GAP > s->end)
                s->end = t + GAP;
            continue;
        }
        if (s->bids > 0)
            emit(ev.u.bid.bidder - SL_NEXMARK_FIRST_PERSON_ID, s);
        s->start = t;
        s->end = t + GAP;
        s->bids = 1;
    }
    for (int64_t b = 0; b < people; b++)
        if (sessions[b].bids > 0)
            emit(b, &sessions[b]);
    free(sessions);
    return finish(g);
}
