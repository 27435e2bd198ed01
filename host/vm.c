/* vm.c -- creating and closing the LuaJIT state, and protected calls with a traceback.
 *
 * The state owns the libdir string (a registry field) that core.libdir reports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <mimalloc.h>
#include <lualib.h>

#include "memory.h"
#include "sl_api.h"
#include "vm.h"

/* next(t, k) through lua_next: a C function the JIT calls, where it would compile the
 * builtin next (and a pairs() loop) into its own code. The LuaJIT Debian 12 ships (2.1, the
 * git of 2022-03-20) can compile that code wrong: a register swap after lj_vm_next moves 32
 * bits of a pointer (LuaJIT issue 829, fixed upstream on 2022-04-05), and the trace reads
 * through the truncated pointer: jobs on several workers crashed so, now and then. */
static int traverse_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    if (lua_next(L, 1))
        return 2;
    lua_pushnil(L);
    return 1;
}

/* pairs(t): traverse_next over a table. A cdata goes to the builtin pairs (its __pairs
 * may say what to use instead) by a tail call, so that an error __pairs raises at level 2
 * names the script's line. */
static const char pairs_source[] =
    "local builtin, traverse, type, error = ...\n"
    "return function(t, ...)\n"
    "  local kind = type(t)\n"
    "  if kind == 'table' then return traverse, t, nil end\n"
    "  if kind == 'cdata' then return builtin(t, ...) end\n"
    "  error(\"bad argument #1 to 'pairs' (table expected, got \" .. kind .. \")\", 2)\n"
    "end\n";

/* Runs under lua_cpcall so that a failure while setting up is an error, not a panic. */
static int setup(lua_State *L)
{
    const char *libdir = lua_touserdata(L, 1);

    luaL_openlibs(L);
    /* SLUICE_JIT_PAIRS=1 keeps the builtins (a LuaJIT with the fix, or to compare) */
    if (getenv("SLUICE_JIT_PAIRS") == NULL) {
        if (luaL_loadbuffer(L, pairs_source, sizeof pairs_source - 1, "=pairs") != 0)
            return lua_error(L);                        /* chunk */
        lua_getglobal(L, "pairs");                      /* chunk builtin */
        lua_pushcfunction(L, traverse_next);            /* chunk builtin next */
        lua_pushvalue(L, -1);
        lua_setglobal(L, "next");
        lua_getglobal(L, "type");
        lua_getglobal(L, "error");                      /* chunk builtin next type error */
        lua_call(L, 4, 1);                              /* pairs */
        lua_setglobal(L, "pairs");                      /* -- */
    }
    lua_pushstring(L, libdir);
    lua_setfield(L, LUA_REGISTRYINDEX, SL_VM_LIBDIR_KEY);

    lua_getglobal(L, "package");                        /* package */
    lua_getfield(L, -1, "preload");                     /* package preload */
    lua_pushcfunction(L, luaopen_sluice_core);          /* package preload open */
    lua_setfield(L, -2, "sluice.core");                 /* package preload */
    lua_pop(L, 1);                                      /* package */

    lua_getfield(L, -1, "path");                        /* package path */
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", libdir, libdir,
                    lua_tostring(L, -1));               /* package path newpath */
    lua_setfield(L, -3, "path");                        /* package path */
    lua_pop(L, 2);                                      /* -- */
    return 0;
}

/* The state's heap is mimalloc's, not LuaJIT's own allocator. LuaJIT's hands the system
 * back each 128 KB segment a collection empties and maps it again as the heap regrows: in a
 * job on 2 workers, 1669 munmaps in a run where one worker makes 22, each of them stopping
 * the other core to flush its TLB and each new page zeroed on its first touch, 13-16 % of
 * the samples in the kernel. mimalloc keeps a thread's freed pages for its next blocks (and
 * a block may be freed by another thread). Linked in, it is the process's malloc too (the
 * rings' messages, librdkafka's buffers), which alone changes nothing measurable.
 * docs/performance.md has the figures; SLUICE_HEAP=luajit keeps LuaJIT's own, to compare. */
static void *heap_alloc(void *ud, void *block, size_t old_size, size_t new_size)
{
    (void)ud;
    (void)old_size;
    if (new_size == 0) {
        mi_free(block);
        return NULL;
    }
    return mi_realloc(block, new_size);
}

/* An error outside any protected call (luaL_newstate sets the like). */
static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);

    fprintf(stderr, "sluice: unprotected error in the Lua state: %s\n",
            msg != NULL ? msg : "(not a string)");
    return 0;
}

lua_State *sl_vm_open(const char *libdir)
{
    const char *heap = getenv("SLUICE_HEAP");
    lua_State *L;

    if (heap != NULL && strcmp(heap, "luajit") == 0)
        L = luaL_newstate();
    else if ((L = lua_newstate(heap_alloc, NULL)) != NULL)
        lua_atpanic(L, panic);

    if (L == NULL) {
        fprintf(stderr, "sluice: cannot create the Lua state: out of memory\n");
        return NULL;
    }
    if (lua_cpcall(L, setup, (void *)libdir) != 0) {
        fprintf(stderr, "sluice: cannot set up the Lua state: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

const char *sl_vm_libdir(lua_State *L)
{
    const char *dir;

    lua_getfield(L, LUA_REGISTRYINDEX, SL_VM_LIBDIR_KEY);   /* dir */
    dir = lua_tostring(L, -1);      /* still referenced from the registry after the pop */
    lua_pop(L, 1);                                          /* -- */
    return dir;
}

int sl_vm_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);                  /* err str */
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);                       /* err ... msg+traceback */
    return 1;
}

int sl_vm_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;                   /* index of the function */
    int status;

    lua_pushcfunction(L, sl_vm_traceback);              /* fn args handler */
    lua_insert(L, base);                                /* handler fn args */
    status = lua_pcall(L, nargs, nresults, base);       /* handler results|msg */
    lua_remove(L, base);                                /* results|msg */
    return status;
}

void sl_vm_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                 lua_CFunction tostring)
{
    luaL_newmetatable(L, name);                         /* mt */
    lua_newtable(L);                                    /* mt methods */
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");                     /* mt */
    if (gc != NULL) {
        lua_pushcfunction(L, gc);                       /* mt gc */
        lua_setfield(L, -2, "__gc");                    /* mt */
    }
    if (tostring != NULL) {
        lua_pushcfunction(L, tostring);                 /* mt tostring */
        lua_setfield(L, -2, "__tostring");              /* mt */
    }
    lua_pop(L, 1);                                      /* -- */
}

int sl_vm_opt(lua_State *L, const char *who, const char *name, int t)
{
    lua_getfield(L, 1, name);                           /* v */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);                                  /* -- */
        return 0;
    }
    if (lua_type(L, -1) != t)
        luaL_error(L, "%s: %s must be a %s, not a %s", who, name, lua_typename(L, t),
                   luaL_typename(L, -1));
    return 1;
}

void sl_vm_close(lua_State *L)
{
    if (L != NULL) {
        sl_memory_unwrap(L);                /* its own allocator frees its arena */
        lua_close(L);
    }
}
