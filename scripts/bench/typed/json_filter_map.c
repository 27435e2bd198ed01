/* json_filter_map.c -- the C baseline of json_filter_map.lua: JSON lines of bids in, for
 * each bid with price > 100 the line {"auction":A,"eur":P*0.92,"ts":T} out (keys in the
 * order sluice writes a table's: sorted).
 *
 *   json_filter_map IN OUT
 *
 * A line is walked key by key (any order, other keys skipped); auction, price and ts are
 * read as numbers. A line that is not such an object, or lacks price, is counted as bad
 * and skipped. Prints "lines kept bad" on stderr. */
#include "common.h"

static long long lines, kept, bad;

static void on_line(const char *s, size_t len)
{
    bid b = { 0, 0, 0, 0 };
    lines++;
    if (!scan_object(s, s + len, on_bid_key, &b) || !(b.seen & 2)) {
        bad++;
        return;
    }
    if (!(b.price > 100))
        return;
    kept++;
    /* sluice writes a field whose value is nil not at all */
    char *o = out_room(3 * 48);
    size_t n = 0;
    o[n++] = '{';
    if (b.seen & 1) {
        memcpy(o + n, "\"auction\":", 10);
        n += 10;
        n += (size_t)put_double(b.auction, o + n);
        o[n++] = ',';
    }
    memcpy(o + n, "\"eur\":", 6);
    n += 6;
    n += (size_t)put_double(b.price * 0.92, o + n);
    if (b.seen & 4) {
        memcpy(o + n, ",\"ts\":", 6);
        n += 6;
        n += (size_t)put_double(b.ts, o + n);
    }
    o[n++] = '}';
    o[n++] = '\n';
    out_len += n;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: json_filter_map IN OUT\n");
        return 2;
    }
    out_open(argv[2]);
    each_line(argv[1], on_line);
    out_close();
    fprintf(stderr, "%lld %lld %lld\n", lines, kept, bad);
    return 0;
}
