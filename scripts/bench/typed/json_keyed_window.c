/* json_keyed_window.c -- the C baseline of json_keyed_window.lua: JSON lines of bids in,
 * ts as event time, keyed by auction, 1 s tumbling windows, per auction and window the
 * count of bids and the sum of price out as JSON lines {"bids":N,"key":A,"total":S,
 * "window_end":E,"window_start":B} (sluice's key order: sorted).
 *
 *   json_keyed_window IN OUT
 *
 * The watermark is the largest ts seen, as in msgpack_window.c, so only the window holding
 * it is open: its auctions live in one open-addressing hash table, written (in the order
 * they first came) and emptied when a bid of a later window closes it. Sluice writes a
 * window's keys in an order of its own, so typed.sh compares the two outputs sorted. A
 * line that is not an object with numeric auction, price and ts is counted as bad.
 * Prints "lines windows results late bad" on stderr. */
#include "common.h"

typedef struct acc {
    double key;
    long long bids;
    sum total;
} acc;

static long long lines, windows, results, late, bad;

static int open_window;
static int64_t start;
static acc *accs;                   /* the open window's auctions, in the order they came */
static size_t naccs, accs_cap;
static int32_t *slots;              /* hash table of indexes into accs, -1 when empty */
static size_t nslots = 1 << 12;

static inline size_t hash(double key)
{
    uint64_t u;
    memcpy(&u, &key, 8);
    u ^= u >> 33;
    u *= UINT64_C(0xff51afd7ed558ccd);
    u ^= u >> 33;
    return (size_t)u;
}

static void grow(void)
{
    free(slots);
    nslots *= 2;
    slots = malloc(nslots * sizeof *slots);
    if (slots == NULL)
        die("malloc", "hash table");
    memset(slots, 0xff, nslots * sizeof *slots);
    for (size_t i = 0; i < naccs; i++) {
        size_t h = hash(accs[i].key) & (nslots - 1);
        while (slots[h] >= 0)
            h = (h + 1) & (nslots - 1);
        slots[h] = (int32_t)i;
    }
}

static acc *find(double key)
{
    size_t h = hash(key) & (nslots - 1);
    for (;; h = (h + 1) & (nslots - 1)) {
        int32_t i = slots[h];
        if (i < 0)
            break;
        if (accs[i].key == key)
            return &accs[i];
    }
    if (naccs == accs_cap) {
        accs_cap = accs_cap ? 2 * accs_cap : 1024;
        accs = realloc(accs, accs_cap * sizeof *accs);
        if (accs == NULL)
            die("realloc", "window state");
    }
    slots[h] = (int32_t)naccs;
    acc *a = &accs[naccs++];
    *a = (acc){ key, 0, { 0, 0 } };
    if (2 * naccs > nslots) {
        grow();
        return &accs[naccs - 1];
    }
    return a;
}

static void close_window(void)
{
    for (size_t i = 0; i < naccs; i++) {
        const acc *a = &accs[i];
        char *o = out_room(200);
        size_t n;
        memcpy(o, "{\"bids\":", 8);
        n = 8 + (size_t)put_u64((uint64_t)a->bids, o + 8);
        memcpy(o + n, ",\"key\":", 7);
        n += 7;
        n += (size_t)put_double(a->key, o + n);
        memcpy(o + n, ",\"total\":", 9);
        n += 9;
        n += (size_t)put_double(sum_value(&a->total), o + n);
        memcpy(o + n, ",\"window_end\":", 14);
        n += 14;
        n += (size_t)put_double((double)(start + 1000), o + n);
        memcpy(o + n, ",\"window_start\":", 16);
        n += 16;
        n += (size_t)put_double((double)start, o + n);
        o[n++] = '}';
        o[n++] = '\n';
        out_len += n;
        /* empty the table by the slots this window used */
        size_t h = hash(a->key) & (nslots - 1);
        while (slots[h] != (int32_t)i)
            h = (h + 1) & (nslots - 1);
        slots[h] = -1;
    }
    results += (long long)naccs;
    naccs = 0;
    windows++;
}

static void on_line(const char *s, size_t len)
{
    bid b = { 0, 0, 0, 0 };
    lines++;
    if (!scan_object(s, s + len, on_bid_key, &b) || b.seen != 7) {
        bad++;
        return;
    }
    int64_t t = (int64_t)floor(b.ts), w = t - ((t % 1000) + 1000) % 1000;
    if (open_window && w < start) {
        late++;
        return;
    }
    if (open_window && w > start)
        close_window();
    open_window = 1;
    start = w;
    acc *a = find(b.auction);
    a->bids++;
    sum_add(&a->total, b.price);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: json_keyed_window IN OUT\n");
        return 2;
    }
    slots = malloc(nslots * sizeof *slots);
    if (slots == NULL)
        die("malloc", "hash table");
    memset(slots, 0xff, nslots * sizeof *slots);
    out_open(argv[2]);
    each_line(argv[1], on_line);
    if (open_window && naccs > 0)
        close_window();
    out_close();
    fprintf(stderr, "%lld %lld %lld %lld %lld\n", lines, windows, results, late, bad);
    return 0;
}
