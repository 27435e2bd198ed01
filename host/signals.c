/* signals.c -- core.signal: runs a Lua function when the process gets a signal.
 *
 * The handle is a uv_signal_t, unreferenced so that a job whose sources have ended is not
 * kept alive by its signal handlers. Like loop.c's handles, the userdata holds a pointer;
 * close is explicit and idempotent, and frees in the close callback.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "loop.h"
#include "signals.h"
#include "vm.h"

typedef struct sl_signal {
    uv_signal_t uv;     /* the libuv handle; uv.data points back here */
    int fn_ref;         /* registry ref of the Lua callback; LUA_NOREF once closed */
    int self_ref;       /* registry ref of the userdata while open */
    int signum;
} sl_signal;

static const struct { const char *name; int signum; } names[] = {
    {"SIGINT", SIGINT}, {"SIGTERM", SIGTERM}, {"SIGHUP", SIGHUP}, {"SIGQUIT", SIGQUIT},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH}, {NULL, 0}
};

static void on_signal(uv_signal_t *uv, int signum)
{
    sl_signal *s = uv->data;
    lua_State *L = sl_loop_lua();

    if (L == NULL || s->fn_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->fn_ref);       /* fn */
    lua_pushstring(L, names[0].name);                   /* fn name (replaced below) */
    for (int i = 0; names[i].name != NULL; i++)
        if (names[i].signum == signum) {
            lua_pop(L, 1);                              /* fn */
            lua_pushstring(L, names[i].name);           /* fn name */
        }
    sl_loop_call(L, 1);                                 /* -- */
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

/* core.signal(name, fn) -> handle */
int sl_signal_new(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    sl_signal **ud, *s;
    int signum = 0, rc;

    luaL_checktype(L, 2, LUA_TFUNCTION);
    for (int i = 0; names[i].name != NULL; i++)
        if (strcmp(names[i].name, name) == 0)
            signum = names[i].signum;
    if (signum == 0)
        return luaL_error(L, "core.signal: unknown signal '%s' (SIGINT, SIGTERM, SIGHUP, "
                          "SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH)", name);
    ud = lua_newuserdata(L, sizeof *ud);                /* name fn ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_SIGNAL_MT);
    lua_setmetatable(L, -2);
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return luaL_error(L, "core.signal: out of memory");
    s->signum = signum;
    uv_signal_init(sl_loop_get(), &s->uv);
    s->uv.data = s;
    rc = uv_signal_start(&s->uv, on_signal, signum);
    if (rc < 0) {
        uv_close((uv_handle_t *)&s->uv, on_closed);
        return luaL_error(L, "core.signal: %s: %s", name, uv_strerror(rc));
    }
    uv_unref((uv_handle_t *)&s->uv);
    lua_pushvalue(L, 2);
    s->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);         /* name fn ud */
    lua_pushvalue(L, -1);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    *ud = s;
    return 1;
}

/* handle:close(): stops listening for the signal (its default action applies again).
 * Idempotent. Garbage collection cannot close an open handle: it is held until close. */
static int signal_close(lua_State *L)
{
    sl_signal **ud = luaL_checkudata(L, 1, SL_SIGNAL_MT);
    sl_signal *s = *ud;

    if (s == NULL)
        return 0;
    *ud = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, s->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, s->self_ref);
    s->fn_ref = s->self_ref = LUA_NOREF;
    uv_close((uv_handle_t *)&s->uv, on_closed);
    return 0;
}

static int signal_tostring(lua_State *L)
{
    sl_signal *s = *(sl_signal **)luaL_checkudata(L, 1, SL_SIGNAL_MT);

    if (s == NULL)
        lua_pushliteral(L, "sluice.signal (closed)");
    else
        lua_pushfstring(L, "sluice.signal (%d)", s->signum);
    return 1;
}

void sl_signal_register(lua_State *L)
{
    static const luaL_Reg methods[] = {{"close", signal_close}, {NULL, NULL}};

    sl_vm_class(L, SL_SIGNAL_MT, methods, signal_close, signal_tostring);
}
