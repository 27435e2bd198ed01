/* msgpack_window.c -- the C baseline of msgpack_window.lua: a stream of msgpack maps (bids)
 * in, ts as event time, 1 s tumbling windows over the whole stream, per window the count of
 * bids and the sum of price out as JSON lines {"bids":N,"total":S,"window_end":E,
 * "window_start":B} (sluice's key order: sorted).
 *
 *   msgpack_window IN OUT
 *
 * The watermark is the largest ts seen (no out-of-orderness), so the only window open is
 * the one holding the largest ts: a bid of a later window closes it (written as it
 * closes), a bid of an earlier one is late and dropped, as sluice drops it. The sum is
 * compensated as sluice's sl.sum is (Neumaier), so the totals are the same doubles. A map
 * without a numeric ts or price, or anything but a map, is counted as bad and skipped.
 * Prints "records windows late bad" on stderr. */
#include "common.h"

static long long records, windows, late, bad;

static int open_window;                 /* whether start, bids, total hold a window */
static int64_t start;
static long long bids;
static sum total;

static inline uint64_t be16(const unsigned char *p) { return (uint64_t)p[0] << 8 | p[1]; }
static inline uint64_t be32(const unsigned char *p)
{
    return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
}
static inline uint64_t be64(const unsigned char *p) { return be32(p) << 32 | be32(p + 4); }

/* The byte after the value at p, or NULL when the buffer ends inside it. */
static const unsigned char *skip(const unsigned char *p, const unsigned char *end)
{
    uint64_t n, items = 0;
    if (p >= end)
        return NULL;
    unsigned c = *p++;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return p;
    if (c >= 0xa0 && c <= 0xbf)
        n = c & 0x1f;
    else if (c >= 0x90 && c <= 0x9f)
        n = 0, items = c & 0x0f;
    else if (c >= 0x80 && c <= 0x8f)
        n = 0, items = 2 * (c & 0x0f);
    else
        switch (c) {
        case 0xcc: case 0xd0: n = 1; break;
        case 0xcd: case 0xd1: n = 2; break;
        case 0xce: case 0xd2: case 0xca: n = 4; break;
        case 0xcf: case 0xd3: case 0xcb: n = 8; break;
        case 0xd4: n = 2; break;
        case 0xd5: n = 3; break;
        case 0xd6: n = 5; break;
        case 0xd7: n = 9; break;
        case 0xd8: n = 17; break;
        case 0xd9: case 0xc4: case 0xc7:
            if (end - p < 1) return NULL;
            n = p[0] + (c == 0xc7);
            p += 1;
            break;
        case 0xda: case 0xc5: case 0xc8:
            if (end - p < 2) return NULL;
            n = be16(p) + (c == 0xc8);
            p += 2;
            break;
        case 0xdb: case 0xc6: case 0xc9:
            if (end - p < 4) return NULL;
            n = be32(p) + (c == 0xc9);
            p += 4;
            break;
        case 0xdc: if (end - p < 2) return NULL; n = 0; items = be16(p); p += 2; break;
        case 0xdd: if (end - p < 4) return NULL; n = 0; items = be32(p); p += 4; break;
        case 0xde: if (end - p < 2) return NULL; n = 0; items = 2 * be16(p); p += 2; break;
        case 0xdf: if (end - p < 4) return NULL; n = 0; items = 2 * be32(p); p += 4; break;
        default: return end + 1;            /* 0xc1, never used: bad input */
        }
    if ((uint64_t)(end - p) < n)
        return NULL;
    p += n;
    while (items-- > 0)
        if ((p = skip(p, end)) == NULL || p > end)
            return p;
    return p;
}

/* Reads the number at p into *out; 0 when p holds something else. */
static int number(const unsigned char *p, double *out)
{
    unsigned c = *p;
    uint64_t u;
    if (c <= 0x7f) { *out = c; return 1; }
    if (c >= 0xe0) { *out = (int8_t)c; return 1; }
    switch (c) {
    case 0xcc: *out = p[1]; return 1;
    case 0xcd: *out = (double)be16(p + 1); return 1;
    case 0xce: *out = (double)be32(p + 1); return 1;
    case 0xcf: *out = (double)be64(p + 1); return 1;
    case 0xd0: *out = (int8_t)p[1]; return 1;
    case 0xd1: *out = (int16_t)be16(p + 1); return 1;
    case 0xd2: *out = (int32_t)be32(p + 1); return 1;
    case 0xd3: *out = (double)(int64_t)be64(p + 1); return 1;
    case 0xca: {
        uint32_t b = (uint32_t)be32(p + 1);
        float f;
        memcpy(&f, &b, 4);
        *out = f;
        return 1;
    }
    case 0xcb:
        u = be64(p + 1);
        memcpy(out, &u, 8);
        return 1;
    default:
        return 0;
    }
}

static void close_window(void)
{
    char *o = out_room(160);
    size_t n = 0;
    memcpy(o, "{\"bids\":", 8);
    n = 8 + (size_t)put_u64((uint64_t)bids, o + 8);
    memcpy(o + n, ",\"total\":", 9);
    n += 9;
    n += (size_t)put_double(sum_value(&total), o + n);
    memcpy(o + n, ",\"window_end\":", 14);
    n += 14;
    n += (size_t)put_double((double)(start + 1000), o + n);
    memcpy(o + n, ",\"window_start\":", 16);
    n += 16;
    n += (size_t)put_double((double)start, o + n);
    o[n++] = '}';
    o[n++] = '\n';
    out_len += n;
    windows++;
}

/* One map, whole in [p, end). */
static void on_record(const unsigned char *p, const unsigned char *end)
{
    uint64_t pairs;
    double ts = 0, price = 0;
    int seen = 0;
    records++;
    if (*p >= 0x80 && *p <= 0x8f) {
        pairs = *p & 0x0f;
        p++;
    } else if (*p == 0xde) {
        pairs = be16(p + 1);
        p += 3;
    } else if (*p == 0xdf) {
        pairs = be32(p + 1);
        p += 5;
    } else {
        bad++;
        return;
    }
    while (pairs-- > 0) {
        const unsigned char *k = p, *v = skip(p, end);
        size_t klen = 0;            /* keys this short are fixstr; others are not ours */
        if (*k >= 0xa0 && *k <= 0xbf) {
            klen = *k & 0x1f;
            k++;
        }
        if (klen == 2 && memcmp(k, "ts", 2) == 0)
            seen |= number(v, &ts);
        else if (klen == 5 && memcmp(k, "price", 5) == 0)
            seen |= number(v, &price) << 1;
        p = skip(v, end);
    }
    if (seen != 3) {
        bad++;
        return;
    }
    int64_t t = (int64_t)floor(ts), w = t - ((t % 1000) + 1000) % 1000;
    if (open_window && w < start) {
        late++;
        return;
    }
    if (open_window && w > start)
        close_window();
    if (!open_window || w > start) {
        open_window = 1;
        start = w;
        bids = 0;
        total = (sum){ 0, 0 };
    }
    bids++;
    sum_add(&total, price);
}

int main(int argc, char **argv)
{
    input in;
    if (argc != 3) {
        fprintf(stderr, "usage: msgpack_window IN OUT\n");
        return 2;
    }
    out_open(argv[2]);
    in_open(&in, argv[1]);
    int more = 1;
    while (more) {
        more = in_fill(&in);
        for (;;) {
            const unsigned char *p = (const unsigned char *)in.buf + in.pos;
            const unsigned char *end = (const unsigned char *)in.buf + in.len;
            const unsigned char *after = p < end ? skip(p, end) : NULL;
            if (after == NULL)
                break;                          /* the rest comes with the next chunk */
            if (after > end) {
                fprintf(stderr, "msgpack_window: %s: bad byte at offset %zu of a chunk\n",
                        argv[1], in.pos);
                return 1;
            }
            on_record(p, after);
            in.pos += (size_t)(after - p);
        }
        if (!more && in.pos < in.len) {
            fprintf(stderr, "msgpack_window: %s: the last object is cut short\n", argv[1]);
            bad++;
        }
    }
    if (open_window)
        close_window();
    out_close();
    close(in.fd);
    free(in.buf);
    fprintf(stderr, "%lld %lld %lld %lld\n", records, windows, late, bad);
    return 0;
}
