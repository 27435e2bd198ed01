/* memory.c -- --memory-limit: the Lua heap counted at every allocation, and the resident
 * size of the process.
 *
 * LuaJIT allocates through one function of its state (its own allocator on x86-64); once
 * a limit is set, that function is wrapped by one that counts bytes and, when an
 * allocation would take the heap past the limit, ends the process at once with status 1,
 * naming the operator that runs (guard.c): a function allocating without bound is
 * stopped there, long before the kernel's OOM killer would be called, whether or not it
 * ever returns. What C allocates (buffers, aggregate pools) is not counted here: every
 * 100 ms the job lowers the limit on the heap by what the rest of the process holds, and
 * stops cleanly when the resident size is past the limit all the same (memory.lua).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <lauxlib.h>

#include "guard.h"
#include "memory.h"

static lua_Alloc real_alloc;    /* the state's own allocator, once wrapped; else NULL */
static void *real_ud;
static size_t heap;             /* bytes the state holds, garbage included */
static size_t limit = SIZE_MAX; /* the process's limit (SIZE_MAX: none), for messages */
static size_t heap_limit = SIZE_MAX;    /* the heap's share of it */

size_t sl_memory_rss(void)
{
    char text[128];
    ssize_t n;
    unsigned long long pages = 0;
    int fd = open("/proc/self/statm", O_RDONLY), i = 0;

    if (fd < 0)
        return 0;
    n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    while (text[i] != ' ' && text[i] != '\0')           /* size; resident is next */
        i++;
    while (text[i] == ' ')
        i++;
    for (; text[i] >= '0' && text[i] <= '9'; i++)
        pages = pages * 10 + (unsigned)(text[i] - '0');
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static unsigned long mib(size_t bytes)
{
    return (unsigned long)((bytes + (1 << 20) - 1) >> 20);
}

/* An allocation would take the heap to `would` bytes, past the limit. */
static _Noreturn void over(size_t would)
{
    char what[96], after[192];

    snprintf(what, sizeof what, "memory limit %lu MiB reached in ", mib(limit));
    snprintf(after, sizeof after, ": the Lua heap would grow to %lu MiB (the process holds "
             "%lu MiB); exiting at once (status 1)", mib(would), mib(sl_memory_rss()));
    sl_guard_exit(SL_MEMORY_STATUS, what, after);
}

/* The state's allocator while wrapped: LuaJIT passes osize 0 for a new block. A few
 * instructions and a tail call, as every table and string comes through here (a failed
 * allocation stays counted: LuaJIT raises "not enough memory" then). */
static void *counting(void *ud, void *ptr, size_t osize, size_t nsize)
{
    heap += nsize - osize;                  /* modulo 2^64: a shrink subtracts */
    if (nsize > osize && heap > heap_limit)
        over(heap);
    return real_alloc(ud, ptr, osize, nsize);
}

int sl_memory_limit(lua_State *L)
{
    lua_Number bytes = luaL_optnumber(L, 1, 0), share = luaL_optnumber(L, 2, bytes);

    luaL_argcheck(L, bytes >= 0 && bytes < 9e18, 1, "expected a number of bytes >= 0");
    luaL_argcheck(L, share >= 0 && share < 9e18, 2, "expected a number of bytes >= 0");
    if (real_alloc == NULL) {
        real_alloc = lua_getallocf(L, &real_ud);
        heap = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
        lua_setallocf(L, counting, real_ud);
    }
    limit = bytes > 0 ? (size_t)bytes : SIZE_MAX;
    heap_limit = bytes > 0 && share > 0 ? (size_t)share : SIZE_MAX;
    return 0;
}

int sl_memory_stats(lua_State *L)
{
    lua_createtable(L, 0, 3);                           /* t */
    lua_pushnumber(L, real_alloc != NULL ? (lua_Number)heap
                   : lua_gc(L, LUA_GCCOUNT, 0) * 1024.0 + lua_gc(L, LUA_GCCOUNTB, 0));
    lua_setfield(L, -2, "heap");
    lua_pushnumber(L, (lua_Number)sl_memory_rss());
    lua_setfield(L, -2, "rss");
    if (limit != SIZE_MAX) {
        lua_pushnumber(L, (lua_Number)limit);
        lua_setfield(L, -2, "limit");
    }
    return 1;                                           /* t */
}

void sl_memory_forked(void)
{
    limit = heap_limit = SIZE_MAX;
}

void sl_memory_unwrap(lua_State *L)
{
    if (real_alloc != NULL) {
        lua_setallocf(L, real_alloc, real_ud);
        real_alloc = NULL;
    }
}
