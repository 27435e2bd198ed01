/* main.c -- the sluice program: finds the Lua library, creates the VM and hands the
 * command line to require("sluice.cli").main(args), whose integer result is the exit status.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>

#include "loop.h"
#include "vm.h"
#include "workers.h"

#ifndef SL_LUADIR
#define SL_LUADIR "/usr/local/share/sluice/lua"
#endif

#define DIR_MAX (PATH_MAX + 32)     /* the executable's directory plus a suffix */

/* Whether dir/sluice/init.lua exists, i.e. dir holds the Lua library. */
static int has_library(const char *dir)
{
    char probe[DIR_MAX + 32];

    snprintf(probe, sizeof probe, "%s/sluice/init.lua", dir);
    return access(probe, R_OK) == 0;
}

/* Writes the Lua library directory into out: next to the executable in a checkout
 * (D/lua), in the installed layout (D/../share/sluice/lua), else SL_LUADIR. */
static void find_libdir(char *out, size_t size)
{
    char exe[PATH_MAX], cand[DIR_MAX], *slash;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    if (n > 0) {
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';                              /* exe is now the directory D */
            snprintf(cand, sizeof cand, "%s/lua", exe);
            if (has_library(cand)) {
                snprintf(out, size, "%s", cand);
                return;
            }
            snprintf(cand, sizeof cand, "%s/../share/sluice/lua", exe);
            if (has_library(cand)) {
                if (realpath(cand, out) == NULL || strlen(out) >= size)
                    snprintf(out, size, "%s", cand);
                return;
            }
        }
    }
    snprintf(out, size, "%s", SL_LUADIR);
}

/* The workers `sluice run ... --workers N` asks for, 1 when it asks for none: their
 * threads start before worker 1 reads its script (sl_workers_prestart). Only a guess made
 * early: cli.lua reads and checks the options, and threads it does not use end unused. */
static int workers_asked(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "run") != 0)
        return 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "--workers") == 0 && i + 1 < argc)
            return atoi(argv[i + 1]);
        if (strncmp(a, "--workers=", 10) == 0)
            return atoi(a + 10);
    }
    return 1;
}

/* Runs under sl_vm_pcall: require("sluice.cli").main(args), args at index 1. */
static int run_cli(lua_State *L)
{
    lua_getglobal(L, "require");                        /* args require */
    lua_pushliteral(L, "sluice.cli");                   /* args require name */
    lua_call(L, 1, 1);                                  /* args cli */
    lua_getfield(L, -1, "main");                        /* args cli main */
    lua_pushvalue(L, 1);                                /* args cli main args */
    lua_call(L, 1, 1);                                  /* args cli status */
    return 1;
}

int main(int argc, char **argv)
{
    char libdir[DIR_MAX];
    lua_State *L;
    int status = 0, i;

    signal(SIGPIPE, SIG_IGN);       /* writers report EPIPE as an error instead */
    find_libdir(libdir, sizeof libdir);
    sl_workers_prestart(workers_asked(argc, argv), libdir);
    L = sl_vm_open(libdir);
    if (L == NULL)
        return 1;

    lua_createtable(L, argc, 1);                        /* arg */
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");                            /* -- */

    lua_pushcfunction(L, run_cli);                      /* run_cli */
    lua_createtable(L, argc > 1 ? argc - 1 : 0, 0);     /* run_cli args */
    for (i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    if (sl_vm_pcall(L, 1, 1) != 0) {                    /* status | msg */
        fprintf(stderr, "sluice: internal error: %s\n", lua_tostring(L, -1));
        status = 1;
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        status = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);                                      /* -- */

    sl_workers_prestart_cancel();       /* (threads the job did not use) */
    sl_vm_close(L);
    if (sl_loop_close() != 0) {
        /* A read is still blocked in libuv's thread pool (a terminal or a pipe that has
         * not ended); exit() would wait for it in libuv's cleanup, so skip that. */
        fflush(NULL);
        _exit(status);
    }
    return status;
}
