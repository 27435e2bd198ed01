/* claims.h -- numbered work (a Nexmark source's event numbers) handed out in ranges to the
 * workers of one job as each asks for more: a worker that runs ahead takes more, and one
 * slowed down (by a busier share of the keys, or a slower core) takes less, as Flink's
 * split enumerator hands splits to the readers that ask. The ranges are handed out in
 * increasing order, so each worker makes its numbers in order.
 */
#ifndef SL_CLAIMS_H
#define SL_CLAIMS_H

#include <stdint.h>

typedef struct sl_claims sl_claims;

/* The work: `nleft` ranges [left[2i], left[2i+1]) in increasing order (what a checkpoint
 * had left undone), then every number from `tail` on, in ranges of `chunk`, up to `end`
 * (excluded; < 0: no end). */
typedef struct sl_claims_work {
    const int64_t *left;
    int nleft;
    int64_t tail, chunk, end;
} sl_claims_work;

/* The claims named `name`, made from `work` by the first worker that opens them (*made set
 * to 1); the others get the same ones (`work` unused, *made 0). A name stays until
 * sl_claims_forget (a new team of workers): a worker that opens it after the others have
 * closed it must not make the work again. Name NULL: claims of its own. NULL when out of
 * memory or work is invalid (chunk < 1, ranges out of order). Each open is closed once. */
sl_claims *sl_claims_open(const char *name, const sl_claims_work *work, int *made);
void sl_claims_close(sl_claims *c);

/* Claims the next range: 1 with [*from, *to), or 0 when no work is left. Any thread. */
int sl_claims_take(sl_claims *c, int64_t *from, int64_t *to);

/* What nobody has claimed yet: the ranges left over, as pairs into out (the first max of
 * them), their number returned; *tail, where the numbers after them start (all of them,
 * up to the end). Exact only while nobody claims (a checkpoint's cut pauses every source). */
int sl_claims_unclaimed(sl_claims *c, int64_t *out, int max, int64_t *tail);

/* Forgets every name: the claims opened from now on are new (their holders keep theirs). */
void sl_claims_forget(void);

#endif
