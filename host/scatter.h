/* scatter.h -- a batch of fixed-size records split among the workers by key group, in one
 * call: the sending side of an exchange point for typed records (lua/sluice/exchange.lua),
 * where a loop in Lua would cost hundreds of instructions per record.
 */
#ifndef SL_SCATTER_H
#define SL_SCATTER_H

#include <stdint.h>

/* Splits the n records at rec[0..n-1] (size bytes each, read where they are) among
 * nworkers workers: record i goes to owner[g] (0-based), g the key group of the double at
 * byte key_at of the record (sl_key_group_num: the group Lua gives the same number), or
 * owner[0] when key_at is negative (records of one key, a window_all's). The
 * records of worker `me` stay: their indexes (0-based, in order) go to mine[]. Another
 * worker's go to out[to], which has room for n records of size + 16 bytes: its records'
 * bytes, in order, then, when t and w are given (event times and watermarks, n of each),
 * their times, then their watermarks, as doubles. count[to] is set to how many each got.
 * Records are of one origin when the 8 bytes at byte origin_at are the same in all (a
 * negative origin_at: no check). Returns 0, or -1 when they are not: then nothing written
 * is usable. */
int sl_scatter_by_key(const uint8_t *const *rec, int n, int size, int key_at, int origin_at,
                      const double *t, const double *w, const uint8_t *owner, int nworkers,
                      int me, uint8_t *const *out, int32_t *count, int32_t *mine);

#endif
