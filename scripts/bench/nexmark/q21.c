/* Nexmark q21 baseline: bids with their channel's id, known for the four big channels,
 * else the url's channel_id parameter (see common.h). */
#include "common.h"

static const char *const known[][2] = {{"apple", "0"}, {"google", "1"}, {"facebook", "2"},
    {"baidu", "3"}};

static void q21(const sl_nexmark_event *ev)
{
    const sl_nexmark_bid *b = &ev->u.bid;
    const char *id = NULL, *p;
    size_t len = 0;
    if (ev->type != SL_NEXMARK_BID)
        return;
    for (int k = 0; k < 4 && id == NULL; k++)
        if (b->channel.len == strlen(known[k][0]) &&
            strncasecmp(b->channel.s, known[k][0], b->channel.len) == 0)
            id = known[k][1], len = 1;
    for (p = b->url.s; id == NULL && (p = strstr(p, "channel_id=")) != NULL; p++)
        if (p > b->url.s && (p[-1] == '&' || p[-1] == '?')) {
            id = p + 11;
            len = strcspn(id, "&");
        }
    if (id == NULL)
        return;
    out_begin();
    out_num("auction", (double)b->auction);
    out_num("bidder", (double)b->bidder);
    out_str("channel", b->channel.s, b->channel.len);
    out_str("channel_id", id, len);
    out_num("price", (double)b->price);
    out_end();
}

int main(int argc, char **argv)
{
    return each_event(argc, argv, q21);
}
