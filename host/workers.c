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
    int prestarted;                 /* started with the process (early, below) */
    int go;                         /* if so: 0 waiting, 1 setup given, -1 not needed,
                                     * -2 no setup (out of memory) */
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

/* Threads started with the process (sl_workers_prestart): each has loaded the modules a
 * worker runs and waits, under lock, until core.workers_start gives it its setup (go = 1)
 * or the job turns out not to need it (go = -1). */
static struct {
    int n;                          /* the team they would make, 0 when none wait */
    worker *w;                      /* as team.w */
    int made;                       /* lock and changed made (once a process) */
    uv_mutex_t lock;
    uv_cond_t changed;
} early;

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

/* Runs under sl_vm_pcall: require("sluice.worker") -> the module, and require("sluice"),
 * which a script requires, loaded too. */
static int load_worker(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sluice");
    lua_call(L, 1, 0);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "sluice.worker");
    lua_call(L, 1, 1);                                  /* module */
    return 1;
}

/* Runs under sl_vm_pcall: module.main(me, n, setup) -> status, records_in, dead_letters,
 * records_out (what the sinks it has of its own took); the module and w at 1 and 2. */
static int call_main(lua_State *L)
{
    worker *w = lua_touserdata(L, 2);

    lua_getfield(L, 1, "main");                         /* module w main */
    lua_pushinteger(L, w->me);
    lua_pushinteger(L, w->n);
    lua_pushlstring(L, w->setup, w->setup_len);
    lua_call(L, 3, 4);                                  /* module w status in dead out */
    return 4;
}

/* What prestarted worker w is to do once worker 1 knows (its go); 1 when it was not
 * prestarted. */
static int wait_for_setup(worker *w)
{
    int go;

    if (!w->prestarted)
        return 1;
    uv_mutex_lock(&early.lock);
    while (w->go == 0)
        uv_cond_wait(&early.changed, &early.lock);
    go = w->go;
    uv_mutex_unlock(&early.lock);
    return go;
}

/* The message of the error on top of L, copied into w->err. */
static void take_error(worker *w, lua_State *L)
{
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);

    w->err = copy(msg != NULL ? msg : "(no message)", msg != NULL ? len : 12);
}

/* Runs worker.main (the module on top of L) for w, keeping what it returned in w. */
static void run_main(worker *w, lua_State *L)
{
    lua_pushcfunction(L, call_main);
    lua_insert(L, -2);                                  /* call_main module */
    lua_pushlightuserdata(L, w);
    if (sl_vm_pcall(L, 2, 4) != 0) {
        take_error(w, L);
        return;
    }
    w->status = lua_type(L, -4) == LUA_TNUMBER ? (int)lua_tointeger(L, -4) : 0;
    w->records_in = lua_tonumber(L, -3);
    w->dead = lua_tonumber(L, -2);
    w->out = lua_tonumber(L, -1);
}

/* A worker's thread: its loop and Lua state, its modules loaded; then, when it was
 * prestarted, it waits for worker 1 to give it its setup (or to end it unused); then
 * worker.main. */
static void thread_main(void *arg)
{
    worker *w = arg;
    uv_loop_t loop;
    lua_State *L = NULL;
    int go;

    w->status = 1;
    if (uv_loop_init(&loop) != 0) {
        w->err = copy("cannot make the worker's loop", 29);
        (void)wait_for_setup(w);
        return;
    }
    sl_loop_use(&loop);
    L = sl_vm_open(w->libdir);
    if (L == NULL) {
        w->err = copy("cannot create the worker's Lua state", 36);
    } else {
        lua_pushcfunction(L, load_worker);
        if (sl_vm_pcall(L, 0, 1) != 0)                  /* module | msg */
            take_error(w, L);
    }
    go = wait_for_setup(w);
    if (go == -2 && w->err == NULL)
        w->err = copy("out of memory for the worker's setup", 36);
    if (go < 0)
        w->status = w->err != NULL;                     /* (ended unused) */
    else if (w->err == NULL)
        run_main(w, L);
    if (L != NULL)
        sl_vm_close(L);
    sl_loop_close();
    sl_mpack_thread_end();
}

/* Gives the team's prestarted threads their setup, and they go. */
static void give_setup(const char *setup, size_t len)
{
    uv_mutex_lock(&early.lock);
    for (int i = 1; i < team.n; i++) {
        worker *w = &team.w[i];
        w->setup = copy(setup, len);
        w->setup_len = len;
        w->go = w->setup != NULL ? 1 : -2;
    }
    uv_cond_broadcast(&early.changed);
    uv_mutex_unlock(&early.lock);
}

/* Starts the team's threads, each with its setup. */
static void start_threads(const char *setup, size_t len, const char *libdir)
{
    for (int i = 1; i < team.n; i++) {
        worker *w = &team.w[i];
        w->me = i + 1;
        w->n = team.n;
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
}

int sl_workers_start(lua_State *L)
{
    int n = (int)luaL_checkinteger(L, 1);
    size_t len;
    const char *setup = luaL_checklstring(L, 2, &len);
    int prestarted = early.n == n;

    if (team.n != 0)
        return luaL_error(L, "core.workers_start: workers run already");
    if (n < 2 || n > SL_WORKERS_MAX)
        return luaL_error(L, "core.workers_start: %d workers (2 to %d)", n, SL_WORKERS_MAX);
    if (sl_exchange_create(n) != 0)
        return luaL_error(L, "core.workers_start: out of memory for %d workers' rings", n);
    if (prestarted) {
        team.w = early.w;               /* the threads started with the process */
        early.w = NULL;
        early.n = 0;
    } else {
        sl_workers_prestart_cancel();   /* (threads for another count of workers) */
        team.w = calloc((size_t)n, sizeof *team.w);
        if (team.w == NULL) {
            sl_exchange_destroy();
            return luaL_error(L, "core.workers_start: out of memory");
        }
    }
    team.n = n;
    stop_requested = 0;
    sl_claims_forget();                 /* (a source's claims are this team's) */
    if (prestarted)
        give_setup(setup, len);
    else
        start_threads(setup, len, sl_vm_libdir(L));
    lua_pushboolean(L, 1);
    return 1;
}

/* Starts workers 2..n's threads now (workers.h): started by core.workers_start, after
 * worker 1 had loaded its modules and compiled the script, they began 25 ms after it and
 * worker 1 waited on its rings. Nothing when n is out of range, and none when one cannot
 * start (core.workers_start starts them then). */
void sl_workers_prestart(int n, const char *libdir)
{
    if (early.n != 0 || n < 2 || n > SL_WORKERS_MAX)
        return;
    if (!early.made) {
        if (uv_mutex_init(&early.lock) != 0)
            return;
        if (uv_cond_init(&early.changed) != 0) {
            uv_mutex_destroy(&early.lock);
            return;
        }
        early.made = 1;
    }
    early.w = calloc((size_t)n, sizeof *early.w);
    if (early.w == NULL)
        return;
    early.n = n;
    for (int i = 1; i < n; i++) {
        worker *w = &early.w[i];
        w->me = i + 1;
        w->n = n;
        w->prestarted = 1;
        w->libdir = copy(libdir, strlen(libdir));
        if (w->libdir == NULL || uv_thread_create(&w->tid, thread_main, w) != 0) {
            free(w->libdir);
            w->libdir = NULL;
            w->me = -w->me;
            sl_workers_prestart_cancel();
            return;
        }
    }
}

void sl_workers_prestart_cancel(void)
{
    worker *ws = early.w;
    int n = early.n;

    if (ws == NULL)
        return;
    uv_mutex_lock(&early.lock);
    for (int i = 1; i < n; i++)
        ws[i].go = -1;
    uv_cond_broadcast(&early.changed);
    uv_mutex_unlock(&early.lock);
    for (int i = 1; i < n; i++) {
        if (ws[i].me > 0)
            uv_thread_join(&ws[i].tid);
        free(ws[i].libdir);
        free(ws[i].err);
    }
    free(ws);
    early.w = NULL;
    early.n = 0;
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
