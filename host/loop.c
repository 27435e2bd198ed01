/* loop.c -- the process's libuv loop, core.run/core.stop, and idle and timer handles.
 *
 * Handles follow luv's lhandle.c: the userdata holds a pointer to a malloc'd struct that
 * embeds the uv handle; close is explicit, frees in the close callback, and is idempotent.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>

#include "loop.h"
#include "vm.h"

typedef struct handle {
    union {
        uv_handle_t handle;
        uv_idle_t idle;
        uv_timer_t timer;
    } uv;               /* the libuv handle; uv.handle.data points back here */
    int fn_ref;         /* registry ref of the Lua callback; LUA_NOREF once closed */
    int self_ref;       /* registry ref of the userdata while started, so a running
                           handle is not collected; else LUA_NOREF */
} handle;

/* Each worker thread of a job has its own loop and Lua state (workers.c); the main thread
 * uses the default loop. */
static _Thread_local uv_loop_t *thread_loop;
static _Thread_local lua_State *run_L;  /* the thread inside core.run(), NULL outside it */
static _Thread_local char *run_err;     /* first error a callback raised in this run, malloc'd */

uv_loop_t *sl_loop_get(void)
{
    return thread_loop != NULL ? thread_loop : uv_default_loop();
}

void sl_loop_use(uv_loop_t *loop)
{
    thread_loop = loop;
}

lua_State *sl_loop_lua(void)
{
    return run_L;
}

/* ---- core.run / core.stop ---------------------------------------------------------- */

int sl_loop_run(lua_State *L)
{
    if (run_L != NULL)
        return luaL_error(L, "core.run: the loop is already running");
    free(run_err);
    run_err = NULL;
    run_L = L;
    uv_run(sl_loop_get(), UV_RUN_DEFAULT);
    run_L = NULL;
    if (run_err != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, run_err);                     /* nil msg */
        free(run_err);
        run_err = NULL;
        return 2;
    }
    lua_pushboolean(L, 1);                              /* true */
    return 1;
}

/* Outside core.run() there is nothing to stop (and uv_stop would cut the next run short). */
int sl_loop_stop(lua_State *L)
{
    if (run_L != NULL)
        uv_stop(sl_loop_get());
    return 0;
}

int sl_loop_call(lua_State *L, int nargs)
{
    /* The message is what the user sees ("job.lua:5: ..."), so no traceback is added
     * unless SLUICE_DEBUG is set, for chasing a fault inside sluice itself. */
    static int debug = -1;
    if (debug < 0)
        debug = getenv("SLUICE_DEBUG") != NULL;
    if ((debug ? sl_vm_pcall(L, nargs, 0) : lua_pcall(L, nargs, 0, 0)) == 0)  /* -- */
        return 0;
    if (run_err == NULL) {                              /* msg */
        const char *msg = lua_tostring(L, -1);
        run_err = strdup(msg != NULL ? msg : "(error object is not a string)");
    }
    lua_pop(L, 1);                                      /* -- */
    uv_stop(sl_loop_get());
    return -1;
}

int sl_loop_open(lua_State *L, const char *path, int flags, int mode)
{
    uv_fs_t req;
    int fd = uv_fs_open(NULL, &req, path, flags, mode, NULL);

    uv_fs_req_cleanup(&req);
    if (fd < 0) {
        char cwd[PATH_MAX];

        /* a relative path is named as resolved too: which directory the job looked in */
        if (path[0] != '/' && getcwd(cwd, sizeof cwd) != NULL)
            lua_pushfstring(L, "open %s (%s%s%s): %s", path, cwd, strcmp(cwd, "/") ? "/" : "",
                            path, uv_strerror(fd));
        else
            lua_pushfstring(L, "open %s: %s", path, uv_strerror(fd));   /* msg */
        lua_error(L);
    }
    return fd;
}

/* ---- handles ------------------------------------------------------------------------ */

static void on_closed(uv_handle_t *uvh)
{
    free(uvh->data);
}

static handle **check_handle(lua_State *L)
{
    handle **ud = luaL_testudata(L, 1, SL_TIMER_MT);

    if (ud == NULL)
        ud = luaL_checkudata(L, 1, SL_IDLE_MT);
    return ud;
}

static void hold(lua_State *L, handle *h, int idx)
{
    if (h->self_ref == LUA_NOREF) {
        lua_pushvalue(L, idx);                          /* ud */
        h->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* -- */
    }
}

static void release(lua_State *L, handle *h)
{
    luaL_unref(L, LUA_REGISTRYINDEX, h->self_ref);
    h->self_ref = LUA_NOREF;
}

/* Calls the handle's Lua function. The handle may be stopped or closed by it; its memory
 * stays valid until the close callback, which runs later in the loop iteration. */
static void fire(handle *h)
{
    lua_State *L = run_L;

    if (L == NULL || h->fn_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->fn_ref);       /* fn */
    sl_loop_call(L, 0);                                 /* -- */
    if (h->fn_ref != LUA_NOREF && !uv_is_active(&h->uv.handle))
        release(L, h);                                  /* a one-shot timer is done */
}

static void on_idle(uv_idle_t *idle)
{
    fire(idle->data);
}

static void on_timer(uv_timer_t *timer)
{
    fire(timer->data);
}

/* Pushes a new handle userdata of metatable mt for the function at index 1. The caller
 * initialises the uv handle. */
static handle *new_handle(lua_State *L, const char *mt)
{
    handle **ud;
    handle *h;

    luaL_checktype(L, 1, LUA_TFUNCTION);
    ud = lua_newuserdata(L, sizeof *ud);                /* fn ud */
    *ud = NULL;
    luaL_getmetatable(L, mt);                           /* fn ud mt */
    lua_setmetatable(L, -2);                            /* fn ud */
    h = calloc(1, sizeof *h);
    if (h == NULL)
        luaL_error(L, "core.%s: out of memory", mt + sizeof "sluice." - 1);
    h->self_ref = LUA_NOREF;
    lua_pushvalue(L, 1);                                /* fn ud fn */
    h->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);         /* fn ud */
    *ud = h;
    return h;
}

int sl_idle_new(lua_State *L)
{
    handle *h = new_handle(L, SL_IDLE_MT);              /* fn ud */

    uv_idle_init(sl_loop_get(), &h->uv.idle);
    h->uv.handle.data = h;
    uv_idle_start(&h->uv.idle, on_idle);
    hold(L, h, -1);
    return 1;
}

int sl_timer_new(lua_State *L)
{
    handle *h = new_handle(L, SL_TIMER_MT);             /* fn ud */

    uv_timer_init(sl_loop_get(), &h->uv.timer);
    h->uv.handle.data = h;
    return 1;
}

/* idle:start() */
static int idle_start(lua_State *L)
{
    handle *h = *(handle **)luaL_checkudata(L, 1, SL_IDLE_MT);

    if (h == NULL)
        return luaL_error(L, "idle:start(): the handle is closed");
    uv_idle_start(&h->uv.idle, on_idle);
    hold(L, h, 1);
    return 0;
}

/* timer:start(timeout_ms [, repeat_ms]) */
static int timer_start(lua_State *L)
{
    handle *h = *(handle **)luaL_checkudata(L, 1, SL_TIMER_MT);
    lua_Number timeout = luaL_checknumber(L, 2);
    lua_Number repeat = luaL_optnumber(L, 3, 0);

    luaL_argcheck(L, timeout >= 0 && timeout < 1e15, 2, "timeout must be >= 0 ms");
    luaL_argcheck(L, repeat >= 0 && repeat < 1e15, 3, "repeat must be >= 0 ms");
    if (h == NULL)
        return luaL_error(L, "timer:start(): the handle is closed");
    uv_timer_start(&h->uv.timer, on_timer, (uint64_t)timeout, (uint64_t)repeat);
    hold(L, h, 1);
    return 0;
}

static int handle_stop(lua_State *L)
{
    handle *h = *check_handle(L);

    if (h == NULL)
        return 0;
    if (h->uv.handle.type == UV_TIMER)
        uv_timer_stop(&h->uv.timer);
    else
        uv_idle_stop(&h->uv.idle);
    release(L, h);
    return 0;
}

/* handle:close() and __gc: stops the handle and drops the callback at once; the memory
 * goes in the close callback. */
static int handle_close(lua_State *L)
{
    handle **ud = check_handle(L);
    handle *h = *ud;

    if (h == NULL)
        return 0;
    *ud = NULL;
    release(L, h);
    luaL_unref(L, LUA_REGISTRYINDEX, h->fn_ref);
    h->fn_ref = LUA_NOREF;
    uv_close(&h->uv.handle, on_closed);
    return 0;
}

static int handle_tostring(lua_State *L)
{
    handle **ud = check_handle(L);
    int timer = luaL_testudata(L, 1, SL_TIMER_MT) != NULL;

    lua_pushfstring(L, "sluice.%s (%s%s)", timer ? "timer" : "idle",
                    *ud == NULL ? "closed" : "open",
                    *ud != NULL && uv_is_active(&(*ud)->uv.handle) ? ", active" : "");
    return 1;
}

void sl_loop_register(lua_State *L)
{
    static const luaL_Reg idle_methods[] = {
        {"start", idle_start}, {"stop", handle_stop}, {"close", handle_close}, {NULL, NULL}};
    static const luaL_Reg timer_methods[] = {
        {"start", timer_start}, {"stop", handle_stop}, {"close", handle_close}, {NULL, NULL}};

    sl_vm_class(L, SL_IDLE_MT, idle_methods, handle_close, handle_tostring);
    sl_vm_class(L, SL_TIMER_MT, timer_methods, handle_close, handle_tostring);
}

/* ---- shutdown ----------------------------------------------------------------------- */

int sl_loop_close(void)
{
    uv_loop_t *loop = sl_loop_get();

    uv_run(loop, UV_RUN_NOWAIT);
    return uv_loop_close(loop);
}
