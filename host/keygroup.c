/* keygroup.c -- the key group of a key: a 64-bit hash of its bytes (a string) or of its
 * value (a number), folded onto SL_KEY_GROUPS. FNV-1a over the bytes, then a finalizer
 * (splitmix64's) so that keys differing in their last byte spread over every group.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "prims.h"

static uint64_t mix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

int sl_key_group_str(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return (int)(mix(h) % SL_KEY_GROUPS);
}

int sl_key_group_num(double x)
{
    uint64_t bits;

    if (x == 0)
        x = 0;                      /* -0 and 0 are one key */
    /* (whole when it converts to the same integer: floor() would cost a call) */
    if (fabs(x) < 9.2e18 && (double)(int64_t)x == x) {
        int64_t i = (int64_t)x;
        memcpy(&bits, &i, sizeof bits);
        bits ^= 0x5555555555555555ULL;  /* integers apart from the doubles' bit patterns */
    } else {
        memcpy(&bits, &x, sizeof bits);
    }
    return (int)(mix(bits) % SL_KEY_GROUPS);
}
