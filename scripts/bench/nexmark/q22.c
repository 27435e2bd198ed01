/* Nexmark q22 baseline: bids with the first three directories of their url (common.h). */
#include "common.h"

static void q22(const sl_nexmark_event *ev)
{
    const sl_nexmark_bid *b = &ev->u.bid;
    const char *d[4], *p;
    if (ev->type != SL_NEXMARK_BID)
        return;
    p = strstr(b->url.s, "//");
    p = strchr(p + 2, '/') + 1;             /* after the host */
    for (int k = 0; k < 4; k++) {
        d[k] = p;
        p = strchr(p, '/');
        p = p ? p + 1 : d[k] + strlen(d[k]) + 1;
    }
    out_begin();
    out_num("auction", (double)b->auction);
    out_num("bidder", (double)b->bidder);
    out_str("channel", b->channel.s, b->channel.len);
    out_str("dir1", d[0], (size_t)(d[1] - d[0] - 1));
    out_str("dir2", d[1], (size_t)(d[2] - d[1] - 1));
    out_str("dir3", d[2], (size_t)(d[3] - d[2] - 1));
    out_num("price", (double)b->price);
    out_end();
}

int main(int argc, char **argv)
{
    return each_event(argc, argv, q22);
}
