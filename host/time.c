/* time.c -- the host's clocks, exported for the FFI (see sl_api.h).
 *
 * Both are plain functions on no arguments, so LuaJIT can call them without a lua_State.
 */
#include <time.h>
#include <uv.h>

#include "sl_api.h"

double sl_time_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

uint64_t sl_time_hrtime_ns(void)
{
    return uv_hrtime();
}
