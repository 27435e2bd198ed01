/* watch.c -- core.watch: calls a Lua function when files change, debounced.
 *
 * Editors save a file in several steps, or write a new file and rename it over the old
 * one, which ends a watch on the old file's inode. So a watcher watches the directory of
 * each path (one uv_fs_event per directory) and keeps the events about the names it was
 * given; the rename that replaces a file is such an event, and the next save is seen
 * too, with no watch to renew. Each event (re)starts one timer; when no event came for
 * the debounce time, on_change() runs once. Events about other files in those
 * directories (a growing log next to the script) cost a name comparison here and never
 * reach Lua.
 *
 * Like loop.c's handles, the userdata holds a pointer; close is explicit and idempotent.
 * The watcher owns its timer and directory handles; each frees its own memory in its
 * close callback, and the watcher struct goes with the timer's.
 */
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "loop.h"
#include "vm.h"
#include "watch.h"

typedef struct watch_dir {
    uv_fs_event_t uv;     /* the libuv handle on the directory; uv.data points here */
    struct sl_watch *w;   /* the watcher; NULL once it closed */
    char *path;           /* the directory, as derived from the paths given */
    char **names;         /* the file names watched in it */
    int nnames;
} watch_dir;

typedef struct sl_watch {
    uv_timer_t debounce;  /* restarted by each event; on_change runs when it fires */
    uint64_t debounce_ms;
    watch_dir **dirs;
    int ndirs;
    int fn_ref;           /* registry ref of on_change; LUA_NOREF once closed */
    int self_ref;         /* registry ref of the userdata while open */
} sl_watch;

static void free_dir(watch_dir *d)
{
    for (int i = 0; i < d->nnames; i++)
        free(d->names[i]);
    free(d->names);
    free(d->path);
    free(d);
}

static void on_dir_closed(uv_handle_t *h)
{
    free_dir(h->data);
}

static void on_timer_closed(uv_handle_t *h)
{
    sl_watch *w = h->data;

    free(w->dirs);
    free(w);
}

/* The debounce time passed without another event: runs on_change(). */
static void on_quiet(uv_timer_t *t)
{
    sl_watch *w = t->data;
    lua_State *L = sl_loop_lua();

    if (L == NULL || w->fn_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->fn_ref);       /* fn */
    sl_loop_call(L, 0);                                 /* -- */
}

static void on_event(uv_fs_event_t *ev, const char *filename, int events, int status)
{
    watch_dir *d = ev->data;
    int match = filename == NULL;       /* no name: something changed, look anyway */

    (void)events;
    if (status < 0 || d->w == NULL)
        return;
    for (int i = 0; !match && i < d->nnames; i++)
        match = strcmp(d->names[i], filename) == 0;
    if (match)
        uv_timer_start(&d->w->debounce, on_quiet, d->w->debounce_ms, 0);
}

/* The watch_dir of directory `dir` in w, made (initialised, not started) when new; NULL
 * when out of memory. */
static watch_dir *dir_of(sl_watch *w, const char *dir)
{
    watch_dir *d, **grown;

    for (int i = 0; i < w->ndirs; i++)
        if (strcmp(w->dirs[i]->path, dir) == 0)
            return w->dirs[i];
    grown = realloc(w->dirs, (size_t)(w->ndirs + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    w->dirs = grown;
    d = calloc(1, sizeof *d);
    if (d == NULL || (d->path = strdup(dir)) == NULL) {
        free(d);
        return NULL;
    }
    d->w = w;
    uv_fs_event_init(sl_loop_get(), &d->uv);
    d->uv.data = d;
    w->dirs[w->ndirs++] = d;
    return d;
}

/* Adds `path` to w: its directory is watched for its file name. Returns 0, or a libuv
 * error code (UV_ENOMEM when out of memory). */
static int add_path(sl_watch *w, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char *dir, **names;
    watch_dir *d;
    int rc = 0;

    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return UV_ENOMEM;
    d = dir_of(w, dir);
    free(dir);
    if (d == NULL)
        return UV_ENOMEM;
    names = realloc(d->names, (size_t)(d->nnames + 1) * sizeof *names);
    if (names == NULL)
        return UV_ENOMEM;
    d->names = names;
    if ((d->names[d->nnames] = strdup(name)) == NULL)
        return UV_ENOMEM;
    d->nnames++;
    if (d->nnames == 1) {
        rc = uv_fs_event_start(&d->uv, on_event, d->path, 0);
        if (rc == 0)
            uv_unref((uv_handle_t *)&d->uv);
    }
    return rc;
}

/* Stops every handle of w; their memory goes in their close callbacks. */
static void close_watch(lua_State *L, sl_watch *w)
{
    luaL_unref(L, LUA_REGISTRYINDEX, w->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, w->self_ref);
    w->fn_ref = w->self_ref = LUA_NOREF;
    for (int i = 0; i < w->ndirs; i++) {
        watch_dir *d = w->dirs[i];

        d->w = NULL;
        uv_close((uv_handle_t *)&d->uv, on_dir_closed);
    }
    w->ndirs = 0;
    uv_close((uv_handle_t *)&w->debounce, on_timer_closed);
}

/* core.watch{paths = {...}, on_change = fn, debounce = 100} -> watcher */
int sl_watch_new(lua_State *L)
{
    sl_watch **ud, *w;
    lua_Number debounce = 100;
    int npaths;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (!sl_vm_opt(L, "core.watch", "paths", LUA_TTABLE))
        return luaL_error(L, "core.watch: paths is required (an array of file paths)");
    npaths = (int)lua_objlen(L, -1);
    lua_pop(L, 1);
    if (!sl_vm_opt(L, "core.watch", "on_change", LUA_TFUNCTION))
        return luaL_error(L, "core.watch: on_change is required (a function)");
    lua_pop(L, 1);
    if (sl_vm_opt(L, "core.watch", "debounce", LUA_TNUMBER)) {
        debounce = lua_tonumber(L, -1);
        lua_pop(L, 1);
        luaL_argcheck(L, debounce >= 0 && debounce < 1e9, 1, "debounce must be >= 0 ms");
    }
    ud = lua_newuserdata(L, sizeof *ud);                /* opts ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_WATCH_MT);
    lua_setmetatable(L, -2);
    w = calloc(1, sizeof *w);
    if (w == NULL)
        return luaL_error(L, "core.watch: out of memory");
    w->debounce_ms = (uint64_t)debounce;
    w->fn_ref = w->self_ref = LUA_NOREF;
    uv_timer_init(sl_loop_get(), &w->debounce);
    uv_unref((uv_handle_t *)&w->debounce);
    w->debounce.data = w;
    *ud = w;
    lua_getfield(L, 1, "on_change");                    /* opts ud fn */
    w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);         /* opts ud */
    lua_pushvalue(L, -1);
    w->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, 1, "paths");                        /* opts ud paths */
    for (int i = 1; i <= npaths; i++) {
        const char *path;
        int rc;

        lua_rawgeti(L, -1, i);                          /* opts ud paths path */
        path = lua_tostring(L, -1);
        if (path == NULL) {
            *ud = NULL;
            close_watch(L, w);
            return luaL_error(L, "core.watch: paths[%d] must be a string", i);
        }
        rc = add_path(w, path);
        if (rc < 0) {
            *ud = NULL;
            close_watch(L, w);
            return luaL_error(L, "watch %s: %s", path, uv_strerror(rc));
        }
        lua_pop(L, 1);                                  /* opts ud paths */
    }
    lua_pop(L, 1);                                      /* opts ud */
    return 1;
}

/* watcher:close(): stops watching. Idempotent. Garbage collection cannot close an open
 * watcher: it is held until close. */
static int watch_close(lua_State *L)
{
    sl_watch **ud = luaL_checkudata(L, 1, SL_WATCH_MT);
    sl_watch *w = *ud;

    if (w == NULL)
        return 0;
    *ud = NULL;
    close_watch(L, w);
    return 0;
}

static int watch_tostring(lua_State *L)
{
    sl_watch *w = *(sl_watch **)luaL_checkudata(L, 1, SL_WATCH_MT);

    if (w == NULL)
        lua_pushliteral(L, "sluice.watch (closed)");
    else
        lua_pushfstring(L, "sluice.watch (%d directories)", w->ndirs);
    return 1;
}

void sl_watch_register(lua_State *L)
{
    static const luaL_Reg methods[] = {{"close", watch_close}, {NULL, NULL}};

    sl_vm_class(L, SL_WATCH_MT, methods, watch_close, watch_tostring);
}
