/* common.h -- what every Nexmark C baseline shares: options, the event loop, output.
 *
 * A baseline is a small C program that computes one query's result over the same events
 * as scripts/nexmark/qN.lua, the generator linked in (host/nexmark.c, without Lua):
 *   qN [-p] EVENTS [SEED [RATE [AUCTIONS]]]
 * Without -p it only counts its results and prints "results checksum" on stderr; with -p
 * it prints each result as one canonical line (fields sorted by name, "name=value",
 * numbers as integers or %.17g), which scripts/bench/nexmark/canon.lua also writes for
 * sluice's JSON output, so the two can be compared with sort and cmp.
 *
 * A query that keeps nothing from one event to the next is one function handed to
 * each_event(), which is its whole main(); one that keeps state takes the generator from
 * start(), loops over it, flushes what it holds and ends with finish().
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexmark.h"

static int print_mode;
static long long results;
static double checksum;

/* Parses the command line into cfg. */
static inline void setup(int argc, char **argv, sl_nexmark_config *cfg)
{
    int i = 1;

    sl_nexmark_config_init(cfg);
    if (i < argc && strcmp(argv[i], "-p") == 0) {
        print_mode = 1;
        i++;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [-p] EVENTS [SEED [RATE [AUCTIONS]]]\n", argv[0]);
        exit(2);
    }
    cfg->events = atoll(argv[i++]);
    if (i < argc) cfg->seed = (uint64_t)atoll(argv[i++]);
    if (i < argc) cfg->rate = atof(argv[i++]);
    if (i < argc && atoll(argv[i]) > 0) cfg->in_flight_auctions = atoll(argv[i]);
    i++;
}

/* Parses the command line into cfg and returns the generator of its events; the caller
 * hands it to finish(). A configuration the generator refuses ends the program. */
static inline sl_nexmark *start(int argc, char **argv, sl_nexmark_config *cfg)
{
    sl_nexmark *g;

    setup(argc, argv, cfg);
    g = sl_nexmark_new(cfg);
    if (g == NULL) {
        fprintf(stderr, "nexmark: bad configuration\n");
        exit(2);
    }
    return g;
}

/* One result: begin, fields in name order, end. */
static int nfield;
static inline void out_begin(void) { results++; nfield = 0; }
static inline void out_num(const char *k, double v)
{
    checksum += v;
    if (!print_mode) return;
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        printf("%s%s=%lld", nfield++ ? " " : "", k, (long long)v);
    else
        printf("%s%s=%.17g", nfield++ ? " " : "", k, v);
}
static inline void out_str(const char *k, const char *s, size_t len)
{
    checksum += (double)len;
    if (print_mode) printf("%s%s=%.*s", nfield++ ? " " : "", k, (int)len, s);
}
static inline void out_end(void) { if (print_mode) putchar('\n'); }

/* Frees the generator and prints "results checksum" on stderr; main returns its value. */
static inline int finish(sl_nexmark *g)
{
    sl_nexmark_free(g);
    fprintf(stderr, "%lld %.17g\n", results, checksum);
    return 0;
}

/* The whole main() of a query that looks at each event on its own, keeping nothing from
 * one to the next: on_event(ev) for every event, in order. */
static inline int each_event(int argc, char **argv, void (*on_event)(const sl_nexmark_event *ev))
{
    sl_nexmark_config cfg;
    sl_nexmark_event ev;
    sl_nexmark *g = start(argc, argv, &cfg);

    while (sl_nexmark_next(g, &ev))
        on_event(&ev);
    return finish(g);
}
