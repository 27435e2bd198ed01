/* csv_filter.c -- the C baseline of csv_filter.lua: CSV of bids with a header line in,
 * the header and every row with price > 100 out.
 *
 *   csv_filter IN OUT
 *
 * The price column is found by name in the header. A kept row is copied as it came: the
 * input was written by sluice's csv sink (columns sorted by name, numbers in their shortest
 * form), so that is also how sluice writes the row again. Fields are split on commas, a
 * quoted field (a quote at its start) running to its closing quote. A row without a
 * numeric price is counted as bad. Prints "rows kept bad" on stderr. */
#include "common.h"

static long long rows, kept, bad;
static int price_col = -1;

/* The start of field col of the row s[0, len) (its end in *fend), or NULL. */
static const char *field(const char *s, const char *end, int col, const char **fend)
{
    const char *p = s;
    for (int c = 0;; c++) {
        const char *f = p;
        if (p < end && *p == '"') {
            for (p++; p < end; p++)
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"')
                        p++;
                    else
                        break;
                }
            p = memchr(p, ',', (size_t)(end - p));
        } else {
            p = memchr(p, ',', (size_t)(end - p));
        }
        if (c == col) {
            *fend = p ? p : end;
            return f;
        }
        if (p == NULL)
            return NULL;
        p++;
    }
}

static void on_line(const char *s, size_t len)
{
    const char *end = s + len, *fend;
    if (len > 0 && end[-1] == '\r')
        end--;
    if (price_col < 0) {                /* the header */
        for (int c = 0; field(s, end, c, &fend) != NULL; c++) {
            const char *f = field(s, end, c, &fend);
            if (fend - f == 5 && memcmp(f, "price", 5) == 0)
                price_col = c;
        }
        if (price_col < 0) {
            fprintf(stderr, "csv_filter: no price column in the header\n");
            exit(1);
        }
        out_put(s, (size_t)(end - s));
        out_put("\n", 1);
        return;
    }
    rows++;
    double price;
    const char *f = field(s, end, price_col, &fend);
    if (f == NULL || read_number(f, fend, &price) != fend) {
        bad++;
        return;
    }
    if (price > 100) {
        kept++;
        out_put(s, (size_t)(end - s));
        out_put("\n", 1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: csv_filter IN OUT\n");
        return 2;
    }
    out_open(argv[2]);
    each_line(argv[1], on_line);
    out_close();
    fprintf(stderr, "%lld %lld %lld\n", rows, kept, bad);
    return 0;
}
