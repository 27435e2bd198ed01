/* scatter.c -- records split among the workers by key group (scatter.h).
 *
 * One pass over the batch: each record's key group picks its worker, its bytes are copied
 * to that worker's area and its time and watermark set aside; a second step moves each
 * area's times and watermarks right after its records. The area of worker `to` holds, while
 * the pass runs, its records from byte 0, its times from n * size and its watermarks from
 * n * size + 8 * n: n records fit whatever the split.
 */
#include <string.h>

#include "prims.h"
#include "scatter.h"

int sl_scatter_by_key(const uint8_t *const *rec, int n, int size, int key_at, int origin_at,
                      const double *t, const double *w, const uint8_t *owner, int nworkers,
                      int me, uint8_t *const *out, int32_t *count, int32_t *mine)
{
    uint64_t origin = 0;
    double key;
    size_t records = (size_t)n * (size_t)size;

    for (int to = 0; to < nworkers; to++)
        count[to] = 0;
    if (n <= 0)
        return 0;
    if (origin_at >= 0)
        memcpy(&origin, rec[0] + origin_at, sizeof origin);
    for (int i = 0; i < n; i++) {
        const uint8_t *r = rec[i];
        int to, j;

        if (origin_at >= 0) {
            uint64_t o;         /* compared as bytes: any 8 bytes can say the origin */

            memcpy(&o, r + origin_at, sizeof o);
            if (o != origin)
                return -1;
        }
        if (key_at >= 0) {
            memcpy(&key, r + key_at, sizeof key);
            to = owner[sl_key_group_num(key)];
        } else {
            to = owner[0];
        }
        j = count[to]++;
        if (to == me) {
            mine[j] = i;
            continue;
        }
        memcpy(out[to] + (size_t)j * (size_t)size, r, (size_t)size);
        if (t != NULL) {
            /* (the area need not be aligned for doubles: it follows a message's header) */
            memcpy(out[to] + records + (size_t)j * sizeof(double), &t[i], sizeof(double));
            memcpy(out[to] + records + ((size_t)n + (size_t)j) * sizeof(double), &w[i],
                   sizeof(double));
        }
    }
    if (t != NULL) {
        for (int to = 0; to < nworkers; to++) {
            size_t k = (size_t)count[to];

            if (to == me || k == 0)
                continue;
            /* the times, then the watermarks, down to right after the k records (a time
             * area moved first cannot reach the watermarks still to move: k <= n) */
            memmove(out[to] + k * (size_t)size, out[to] + records, k * sizeof(double));
            memmove(out[to] + k * (size_t)size + k * sizeof(double),
                    out[to] + records + (size_t)n * sizeof(double), k * sizeof(double));
        }
    }
    return 0;
}
