/* workers.c -- the worker threads of one job: each with a loop and a Lua state of its own.
 *
 * A worker's Lua state never touches another's: records cross between workers only as bytes
 * through the exchange (exchange.c). A worker that fails reports its message here, and
 * core.workers_join hands it to worker 1.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <uv.h>

#include "claims.h"
#include "codec.h"
#include "exchange.h"
#include "loop.h"
#include "vm.h"
#include "workers.h"

typedef struct worker {
    uv_thread_t tid;
    int me, n;
    char *setup;                    /* the setup string, a copy */
    size_t setup_len;
    char *libdir;                   /* a copy */
    int status;                     /* what main() returned (1 when it raised) */
    double records_in, dead, out;   /* and the counts it returned after the status */
    char *err;                      /* malloc'd message when it raised, else NULL */
} worker;

static struct {
    int n;                          /* workers, 0 when none run */
    worker *w;                      /* w[0] is unused: worker 1 is the main thread */
} team;

/* Workers that exchange nothing (--group: each a member of the Kafka group on its own)
 * learn that worker 1 is stopping from this flag, which they poll. */
static _Atomic int stop_requested;

static char *copy(const char *s, size_t len)
{
    char *c = malloc(len + 1);

    if (c != NULL) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

/* Runs under sl_vm_pcall: require("sluice.worker").main(me, n, setup) -> status,
 * records_in, dead_letters, records_out (what the sinks it has of its own took). */
static int call_main(lua_State *L)
{
    worker *w = lua_touserdata(L, 1);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "sluice.worker");
    lua_call(L, 1, 1);                                  /* w module */
    lua_getfield(L, -1, "main");                        /* w module main */
    lua_pushinteger(L, w->me);
    lua_pushinteger(L, w->n);
    lua_pushlstring(L, w->setup, w->setup_len);
    lua_call(L, 3, 4);                                  /* w module status in dead out */
    return 4;
}

static void thread_main(void *arg)
{
    worker *w = arg;
    uv_loop_t loop;
    lua_State *L;

    w->status = 1;
    if (uv_loop_init(&loop) != 0) {
        w->err = copy("cannot make the worker's loop", 29);
        return;
    }
    sl_loop_use(&loop);
    L = sl_vm_open(w->libdir);
    if (L != NULL) {
        lua_pushcfunction(L, call_main);
        lua_pushlightuserdata(L, w);
        if (sl_vm_pcall(L, 1, 4) != 0) {
            size_t len;
            const char *msg = lua_tolstring(L, -1, &len);
            w->err = copy(msg != NULL ? msg : "(no message)", msg != NULL ? len : 12);
        } else {
            w->status = lua_type(L, -4) == LUA_TNUMBER ? (int)lua_tointeger(L, -4) : 0;
            w->records_in = lua_tonumber(L, -3);
            w->dead = lua_tonumber(L, -2);
            w->out = lua_tonumber(L, -1);
        }
        sl_vm_close(L);
    } else {
        w->err = copy("cannot create the worker's Lua state", 36);
    }
    sl_loop_close();
    sl_mpack_thread_end();
}

int sl_workers_start(lua_State *L)
{
    int n = (int)luaL_checkinteger(L, 1);
    size_t len;
    const char *setup = luaL_checklstring(L, 2, &len);
    const char *libdir = sl_vm_libdir(L);

    if (team.n != 0)
        return luaL_error(L, "core.workers_start: workers run already");
    if (n < 2 || n > SL_WORKERS_MAX)
        return luaL_error(L, "core.workers_start: %d workers (2 to %d)", n, SL_WORKERS_MAX);
    if (sl_exchange_create(n) != 0)
        return luaL_error(L, "core.workers_start: out of memory for %d workers' rings", n);
    team.w = calloc((size_t)n, sizeof *team.w);
    if (team.w == NULL) {
        sl_exchange_destroy();
        return luaL_error(L, "core.workers_start: out of memory");
    }
    team.n = n;
    stop_requested = 0;
    sl_claims_forget();                 /* (a source's claims are this team's) */
    for (int i = 1; i < n; i++) {
        worker *w = &team.w[i];
        w->me = i + 1;
        w->n = n;
        w->setup = copy(setup, len);
        w->setup_len = len;
        w->libdir = copy(libdir != NULL ? libdir : "", libdir != NULL ? strlen(libdir) : 0);
        if (w->setup == NULL || w->libdir == NULL || uv_thread_create(&w->tid, thread_main, w) != 0) {
            /* the ones started go on; worker 1 sees this one's failure when it joins */
            w->status = 1;
            w->err = copy("cannot start the worker's thread", 32);
            w->me = -w->me;             /* not started: join skips it */
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

int sl_workers_join(lua_State *L)
{
    lua_createtable(L, team.n > 1 ? team.n - 1 : 0, 0);    /* list */
    for (int i = 1; i < team.n; i++) {
        worker *w = &team.w[i];
        if (w->me > 0)
            uv_thread_join(&w->tid);
        lua_createtable(L, 0, 5);                       /* list entry */
        lua_pushinteger(L, w->me > 0 ? w->me : -w->me);
        lua_setfield(L, -2, "me");
        lua_pushinteger(L, w->status);
        lua_setfield(L, -2, "status");
        lua_pushnumber(L, w->records_in);
        lua_setfield(L, -2, "records_in");
        lua_pushnumber(L, w->dead);
        lua_setfield(L, -2, "dead_letters");
        lua_pushnumber(L, w->out);
        lua_setfield(L, -2, "records_out");
        if (w->err != NULL) {
            lua_pushstring(L, w->err);
            lua_setfield(L, -2, "error");
        }
        lua_rawseti(L, -2, i);                          /* list */
        free(w->setup);
        free(w->libdir);
        free(w->err);
    }
    free(team.w);
    team.w = NULL;
    team.n = 0;
    sl_exchange_destroy();
    sl_claims_forget();
    return 1;
}

int sl_workers_stop(lua_State *L)
{
    (void)L;
    stop_requested = 1;
    return 0;
}

int sl_workers_stopping(lua_State *L)
{
    lua_pushboolean(L, stop_requested != 0);
    return 1;
}
