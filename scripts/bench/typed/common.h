/* common.h -- what the four typed-records C baselines share (scripts/bench/typed.sh):
 * reading a file in big chunks, writing through a big buffer, reading a JSON number and
 * writing a double the way sluice's JSON and CSV sinks do.
 *
 * Each baseline is what a careful C programmer writes for one job and nothing more: no
 * general JSON, CSV or msgpack library, a scanner that knows the fields it wants, read()
 * and write() of 1 MiB at a time. It is self-contained on purpose (nothing from host/): it
 * is the yardstick sluice is measured against, not a second copy of sluice. Only the
 * rules that decide the output bytes are the same as sluice's, so that the outputs can be
 * compared with cmp: a number's digits become the correctly rounded double, and a double
 * is written as plain digits when integral, else with the fewest digits that read back to
 * it (a short-decimal fast path, then %.15g, %.16g, %.17g, the first that reads back).
 */
/* Each baseline uses its own part of this header. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static void die(const char *what, const char *path)
{
    fprintf(stderr, "%s: %s: ", what, path);
    perror(NULL);
    exit(1);
}

/* ---- input: a file read CHUNK bytes at a time ---------------------------------------- */

typedef struct input {
    int fd;
    const char *path;
    char *buf;          /* bytes [pos, len) not yet used; room for CHUNK more */
    size_t pos, len, cap;
    int eof;
} input;

static void in_open(input *in, const char *path)
{
    in->fd = open(path, O_RDONLY);
    if (in->fd < 0)
        die("open", path);
    in->path = path;
    in->cap = 2 * CHUNK;
    in->buf = malloc(in->cap);
    if (in->buf == NULL)
        die("malloc", path);
    in->pos = in->len = 0;
    in->eof = 0;
}

/* Moves the unused bytes to the front and reads up to CHUNK more (growing the buffer when
 * the unused bytes fill it: one record longer than a chunk). Returns 0 at end of file. */
static int in_fill(input *in)
{
    if (in->eof)
        return 0;
    memmove(in->buf, in->buf + in->pos, in->len - in->pos);
    in->len -= in->pos;
    in->pos = 0;
    if (in->cap - in->len < CHUNK) {
        in->cap *= 2;
        in->buf = realloc(in->buf, in->cap);
        if (in->buf == NULL)
            die("realloc", in->path);
    }
    ssize_t n = read(in->fd, in->buf + in->len, CHUNK);
    if (n < 0)
        die("read", in->path);
    if (n == 0) {
        in->eof = 1;
        return 0;
    }
    in->len += (size_t)n;
    return 1;
}

/* Calls on_line(line, len) for each line of the file (no newline; a last line without
 * one counts too). */
static void each_line(const char *path, void (*on_line)(const char *s, size_t len))
{
    input in;
    in_open(&in, path);
    while (in_fill(&in) || in.pos < in.len) {
        for (;;) {
            const char *s = in.buf + in.pos;
            const char *nl = memchr(s, '\n', in.len - in.pos);
            if (nl == NULL)
                break;
            on_line(s, (size_t)(nl - s));
            in.pos += (size_t)(nl - s) + 1;
        }
        if (in.eof) {
            if (in.pos < in.len)
                on_line(in.buf + in.pos, in.len - in.pos);
            break;
        }
    }
    close(in.fd);
    free(in.buf);
}

/* ---- output: a buffer written CHUNK bytes at a time ---------------------------------- */

static char out_buf[CHUNK + 4096];
static size_t out_len;
static int out_fd = 1;
static const char *out_path = "stdout";

static void out_open(const char *path)
{
    out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0)
        die("open", path);
    out_path = path;
}

static void out_flush(void)
{
    size_t done = 0;
    while (done < out_len) {
        ssize_t n = write(out_fd, out_buf + done, out_len - done);
        if (n < 0)
            die("write", out_path);
        done += (size_t)n;
    }
    out_len = 0;
}

/* Room for n more bytes (n <= 4096). */
static inline char *out_room(size_t n)
{
    if (out_len + n > sizeof out_buf)
        out_flush();
    return out_buf + out_len;
}

static inline void out_put(const char *s, size_t n)
{
    if (n > 4096) {                 /* a long line: what is buffered, then it, straight out */
        out_flush();
        for (size_t done = 0; done < n;) {
            ssize_t w = write(out_fd, s + done, n - done);
            if (w < 0)
                die("write", out_path);
            done += (size_t)w;
        }
        return;
    }
    memcpy(out_room(n), s, n);
    out_len += n;
}

static void out_close(void)
{
    out_flush();
    if (out_fd != 1 && close(out_fd) != 0)
        die("close", out_path);
}

/* ---- numbers --------------------------------------------------------------------------- */

static const double pow10_tab[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads the number at p (JSON or CSV decimal: -?\d+(\.\d+)?([eE][+-]?\d+)?) into *out and
 * returns the byte after it, or NULL when p holds no digits. The digits become the
 * correctly rounded double: exactly when they fit in 2^53 and the power of ten is exact
 * (the case of every field here), else strtod. */
static const char *read_number(const char *p, const char *end, double *out)
{
    const char *start = p;
    int neg = 0, ndig = 0, exp10 = 0;
    uint64_t m = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    while (p < end && is_digit(*p)) {
        m = m * 10 + (uint64_t)(*p++ - '0');
        ndig++;
    }
    if (ndig == 0)
        return NULL;
    if (p < end && *p == '.') {
        p++;
        while (p < end && is_digit(*p)) {
            m = m * 10 + (uint64_t)(*p++ - '0');
            ndig++;
            exp10--;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E'))
        exp10 = 1000;                               /* rare: strtod below */
    if (ndig <= 19 && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 0) {
        double v = exp10 < 0 ? (double)m / pow10_tab[-exp10] : (double)m;
        *out = neg ? -v : v;
        return p;
    }
    char tmp[400];
    size_t n = (size_t)(end - start) < sizeof tmp - 1 ? (size_t)(end - start) : sizeof tmp - 1;
    memcpy(tmp, start, n);
    tmp[n] = '\0';
    char *after;
    *out = strtod(tmp, &after);
    return start + (after - tmp);
}

static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Writes u's digits at o; returns how many. */
static inline int put_u64(uint64_t u, char *o)
{
    char tmp[20];
    char *p = tmp + sizeof tmp;
    while (u >= 100) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * (u % 100), 2);
        u /= 100;
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * u, 2);
    } else {
        *--p = (char)('0' + u);
    }
    int n = (int)(tmp + sizeof tmp - p);
    memcpy(o, p, (size_t)n);
    return n;
}

/* %.15g, %.16g, then %.17g, the first that reads back to x, for 1e-4 <= |x| < 1e15 (where
 * %g writes no exponent), without printf: x = m / 2^s exactly, so x * 10^k is the 128-bit
 * integer m * 10^k shifted right by s, rounded half to even as printf rounds; P digits read
 * back to x when they lie within half an ulp of it (the ends included when m is even, as
 * strtod rounds ties to even). Returns 0 for what it leaves to printf: a power of two (its
 * lower gap is half the upper) and a rounding that carries into one more digit. */
static int put_exact(double x, char *o)
{
    typedef unsigned __int128 u128;
    static const uint64_t p10[21] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL, 0 };
    int exp2;
    double a = fabs(x), f = frexp(a, &exp2);        /* a = f * 2^exp2, f in [0.5, 1) */
    uint64_t m = (uint64_t)ldexp(f, 53);
    int s = 53 - exp2;                              /* a = m / 2^s */
    if (m == (UINT64_C(1) << 52) || s <= 0 || s > 70)
        return 0;
    /* X, the decimal exponent: a * 10^20 has X + 21 digits before the point. */
    u128 ten20 = (u128)p10[19] * 10;
    u128 big = ((u128)m * ten20) >> s;
    int nd = 0;
    while (big > 0) {
        big /= 10;
        nd++;
    }
    int X = nd - 21;
    u128 half_mask = ((u128)1 << s) - 1;
    for (int P = 15; P <= 17; P++) {
        int k = P - 1 - X;                          /* 0 <= k <= 20 */
        u128 pk = k == 20 ? ten20 : (u128)p10[k];
        u128 num = (u128)m * pk;
        uint64_t d = (uint64_t)(num >> s);
        u128 r = num & half_mask, half = (u128)1 << (s - 1);
        if (r > half || (r == half && (d & 1)))
            d++;
        if (d >= p10[P])
            return 0;
        /* |d * 2^s - m * 10^k| against 10^k / 2, all times 2 */
        u128 ds = (u128)d << s, diff = ds > num ? ds - num : num - ds;
        if (!(2 * diff < pk || (2 * diff == pk && !(m & 1))))
            continue;
        char dig[24];
        int n = 0, len = put_u64(d, dig);
        while (len > 1 && dig[len - 1] == '0' && len > X + 1)
            len--;                                  /* %g drops trailing zeros */
        if (x < 0)
            o[n++] = '-';
        if (X >= 0) {
            memcpy(o + n, dig, (size_t)(X + 1));
            n += X + 1;
            if (len > X + 1) {
                o[n++] = '.';
                memcpy(o + n, dig + X + 1, (size_t)(len - X - 1));
                n += len - X - 1;
            }
        } else {
            o[n++] = '0';
            o[n++] = '.';
            memset(o + n, '0', (size_t)(-X - 1));
            n += -X - 1;
            memcpy(o + n, dig, (size_t)len);
            n += len;
        }
        return n;
    }
    return 0;
}

/* Writes x at o (room for 32 bytes) as sluice's sinks write a number; returns the length.
 * x must be finite. */
static int put_double(double x, char *o)
{
    if (x > -9007199254740992.0 && x < 9007199254740992.0 && x == (double)(int64_t)x) {
        int64_t i = (int64_t)x;
        if (i < 0) {
            *o = '-';
            return 1 + put_u64((uint64_t)0 - (uint64_t)i, o + 1);
        }
        return put_u64((uint64_t)i, o);
    }
    /* Few digits after the point (123.45): the least k with x * 10^k integral below 10^15
     * that divides back to x; those digits are what %.15g prints. */
    double a = fabs(x);
    if (a >= 1e-4 && a < 1e15) {
        for (int k = 1; k <= 15; k++) {
            double m = a * pow10_tab[k];
            if (m >= 1e15)
                break;
            uint64_t i = (uint64_t)(m + 0.5);
            if ((double)i / pow10_tab[k] != a)
                continue;
            char d[24];
            int nd = put_u64(i, d), n = 0;
            if (x < 0)
                o[n++] = '-';
            if (nd > k) {
                memcpy(o + n, d, (size_t)(nd - k));
                n += nd - k;
                o[n++] = '.';
                memcpy(o + n, d + nd - k, (size_t)k);
                n += k;
            } else {
                o[n++] = '0';
                o[n++] = '.';
                memset(o + n, '0', (size_t)(k - nd));
                n += k - nd;
                memcpy(o + n, d, (size_t)nd);
                n += nd;
            }
            return n;
        }
    }
    if (a >= 1e-4 && a < 1e15) {
        int n = put_exact(x, o);
        if (n > 0)
            return n;
    }
    if (a >= 9007199254740992.0 && a < 1e21)
        return snprintf(o, 32, "%.0f", x);
    int n = snprintf(o, 32, "%.15g", x);
    if (strtod(o, NULL) == x)
        return n;
    n = snprintf(o, 32, "%.16g", x);
    if (strtod(o, NULL) == x)
        return n;
    return snprintf(o, 32, "%.17g", x);
}

/* ---- sums as sluice's sl.sum adds them (Neumaier's compensated sum) -------------------- */

typedef struct sum { double s, c; } sum;

static inline void sum_add(sum *f, double x)
{
    double t = f->s + x;
    if (fabs(f->s) >= fabs(x))
        f->c += (f->s - t) + x;
    else
        f->c += (x - t) + f->s;
    f->s = t;
}

static inline double sum_value(const sum *f)
{
    return isfinite(f->s) ? f->s + f->c : f->s;
}

/* ---- a JSON object scanned for known fields ------------------------------------------- */

/* Steps over the JSON value at p (string, number, literal, or a nested object or array,
 * brackets counted outside strings); returns the byte after it. */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\')
                    p++;
            p++;
        } else if (c == '{' || c == '[') {
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return p;
            depth--;
            p++;
        } else if (c == ',' && depth == 0) {
            return p;
        } else {
            p++;
        }
        if (depth == 0 && p < end && (*p == ',' || *p == '}'))
            return p;
    }
    return p;
}

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    return p;
}

/* Walks the object on one line: for each key, on_key(key, klen, value, end, ctx) returns
 * the byte after the value it read, or NULL to have the value skipped. Returns 0 when the
 * line is not an object of that form. */
typedef const char *(*key_fn)(const char *k, size_t klen, const char *v, const char *end,
                              void *ctx);
static int scan_object(const char *p, const char *end, key_fn on_key, void *ctx)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return 1;
    for (;;) {
        if (p >= end || *p != '"')
            return 0;
        const char *k = ++p;
        while (p < end && *p != '"')
            p += *p == '\\' ? 2 : 1;
        if (p >= end)
            return 0;
        size_t klen = (size_t)(p - k);
        p = skip_ws(p + 1, end);
        if (p >= end || *p != ':')
            return 0;
        p = skip_ws(p + 1, end);
        const char *after = on_key(k, klen, p, end, ctx);
        p = skip_ws(after ? after : skip_value(p, end), end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        return p < end && *p == '}';
    }
}

/* The fields of a bid that the JSON baselines read, as scan_object's on_key fills them:
 * auction, price and ts as numbers; seen has bit 1 for auction, 2 for price, 4 for ts. */
typedef struct bid {
    double auction, price, ts;
    int seen;
} bid;

static const char *on_bid_key(const char *k, size_t klen, const char *v, const char *end,
                              void *ctx)
{
    bid *b = ctx;
    double *slot;
    int bit;
    if (klen == 5 && memcmp(k, "price", 5) == 0) {
        slot = &b->price;
        bit = 2;
    } else if (klen == 7 && memcmp(k, "auction", 7) == 0) {
        slot = &b->auction;
        bit = 1;
    } else if (klen == 2 && memcmp(k, "ts", 2) == 0) {
        slot = &b->ts;
        bit = 4;
    } else {
        return NULL;
    }
    const char *after = read_number(v, end, slot);
    if (after != NULL)
        b->seen |= bit;
    return after;
}
