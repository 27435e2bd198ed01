/* guard.c -- the last resort of a job whose loop cannot answer.
 *
 * Signals reach Lua only through the loop, so a user function that never returns would
 * leave SIGINT and SIGTERM unheard. While a job runs, the guard takes them in C: the
 * handler counts them and wakes the loop (uv_async_send), which calls the Lua function as
 * core.signal would; a watchdog thread ends the process when the loop has not come round
 * to the first signal within the grace period, or to a second within a second (its Lua
 * function ends the process itself, with the control socket removed and what was in
 * flight counted). The message names the operator the runtime last entered
 * (sl_guard_enter, once per batch). The handler touches only sig_atomic_t flags and
 * async-signal-safe calls; the watchdog, those flags and fixed buffers.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>

#include "guard.h"
#include "loop.h"
#include "sl_api.h"
#include "vm.h"

/* ---- the running operator ------------------------------------------------------------ */

static char labels[SL_GUARD_LABELS][SL_GUARD_LABEL_MAX];   /* [0] stays "": none */
static char remove_path[256];           /* a file a hard exit removes (control socket) */
static volatile sig_atomic_t nlabels = 1;
static volatile sig_atomic_t current;                       /* index into labels */

int sl_guard_label(const char *text)
{
    char cut[SL_GUARD_LABEL_MAX];
    int i, n = nlabels;

    snprintf(cut, sizeof cut, "%s", text != NULL ? text : "");
    for (i = 1; i < n; i++)
        if (strcmp(labels[i], cut) == 0)
            return i;
    if (n == SL_GUARD_LABELS)
        return 0;
    memcpy(labels[n], cut, sizeof cut);
    nlabels = n + 1;                    /* a reader sees the label only once it is whole */
    return n;
}

int sl_guard_enter(int id)
{
    int was = current;

    current = id > 0 && id < nlabels ? id : 0;
    return was;
}

/* ---- the exit ------------------------------------------------------------------------ */

/* A line built without stdio (async-signal-safe); what does not fit is cut. */
typedef struct line {
    char text[768];
    size_t len;
} line;

static void put(line *l, const char *s)
{
    size_t n = strlen(s), room = sizeof l->text - 1 - l->len;

    if (n > room)
        n = room;
    memcpy(l->text + l->len, s, n);
    l->len += n;
}

_Noreturn void sl_guard_exit(int status, const char *what, const char *after)
{
    line l = {.len = 0};
    const char *op = labels[current];

    put(&l, "sluice: ");
    put(&l, what);
    put(&l, op[0] != '\0' ? op : "sluice itself (no operator)");
    put(&l, after);
    put(&l, "\n");
    while (write(2, l.text, l.len) < 0 && errno == EINTR)
        ;
    if (remove_path[0] != '\0')
        unlink(remove_path);
    _exit(status);
}

/* ---- signals ------------------------------------------------------------------------- */

/* The guard's libuv handle, freed in its close callback. */
typedef struct guard {
    uv_async_t async;       /* wakes the loop for a signal */
    int fn_ref;             /* registry ref of on_signal; LUA_NOREF once closed */
} guard;

static guard *active;                       /* the open guard, or NULL */
static volatile sig_atomic_t received;      /* signals since the guard opened */
static volatile sig_atomic_t answered;      /* of those, the ones the loop has taken */
static volatile sig_atomic_t first_two[2];  /* the first two signal numbers */
static volatile sig_atomic_t closing;       /* the watchdog is to end */
static int grace_ms;
static sem_t kick;                          /* a signal came, or closing */
static pthread_t watchdog;
static struct sigaction saved_int, saved_term;

static const char *name_of(int signum)
{
    return signum == SIGTERM ? "SIGTERM" : "SIGINT";
}

static void on_raw_signal(int signum)
{
    int saved = errno, n = received + 1;

    received = n;
    if (n <= 2)
        first_two[n - 1] = signum;
    if (active != NULL)
        uv_async_send(&active->async);
    sem_post(&kick);
    errno = saved;
}

/* From the loop: each signal not yet answered goes to on_signal(name). */
static void on_async(uv_async_t *async)
{
    guard *g = async->data;
    lua_State *L = sl_loop_lua();

    while (answered < received) {
        int k = answered;

        answered = k + 1;
        if (L == NULL || g->fn_ref == LUA_NOREF)
            continue;
        lua_rawgeti(L, LUA_REGISTRYINDEX, g->fn_ref);           /* fn */
        lua_pushstring(L, name_of(first_two[k < 2 ? k : 1]));  /* fn name */
        sl_loop_call(L, 1);                                     /* -- */
    }
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The watchdog: after a signal, waits for the loop to answer it, grace_ms for the first
 * and a second for a later one (which on_signal ends the process for); when it does not,
 * ends the process. */
static void *watch(void *arg)
{
    for (;;) {
        double first_at, second_at = -1;

        while (sem_wait(&kick) != 0 && errno == EINTR)
            ;
        if (closing)
            return NULL;
        first_at = now_ms();
        while (answered < received && !closing) {
            struct timespec pause = {0, 10 * 1000 * 1000};
            double now = now_ms();

            if (received >= 2 && second_at < 0)
                second_at = now;
            if (second_at >= 0 && now - second_at >= 1000)
                sl_guard_exit(SL_GUARD_STATUS, first_two[1] == SIGTERM
                              ? "second SIGTERM while the job is busy in "
                              : "second SIGINT while the job is busy in ",
                              ": exiting at once (status 130), abandoning what is in flight");
            if (answered == 0 && now - first_at >= grace_ms) {
                char what[96], after[160];

                snprintf(what, sizeof what, "%s: the job has been busy in ",
                         name_of(first_two[0]));
                snprintf(after, sizeof after, " for %.0f s, the loop never coming round "
                         "(a function that never returns?): exiting at once (status 130)",
                         grace_ms / 1e3);
                sl_guard_exit(SL_GUARD_STATUS, what, after);
            }
            nanosleep(&pause, NULL);
        }
    }
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

/* guard:close() and __gc: both signals go back to what handled them before, the
 * watchdog ends, the handles close. Idempotent. */
static int guard_close(lua_State *L)
{
    guard **ud = luaL_checkudata(L, 1, SL_GUARD_MT);
    guard *g = *ud;

    if (g == NULL)
        return 0;
    *ud = NULL;
    remove_path[0] = '\0';
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGTERM, &saved_term, NULL);
    active = NULL;
    closing = 1;
    sem_post(&kick);
    pthread_join(watchdog, NULL);
    sem_destroy(&kick);
    luaL_unref(L, LUA_REGISTRYINDEX, g->fn_ref);
    g->fn_ref = LUA_NOREF;
    uv_close((uv_handle_t *)&g->async, on_closed);
    return 0;
}

int sl_guard_new(lua_State *L)
{
    struct sigaction sa;
    sigset_t all, old;
    guard **ud, *g;
    int rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (active != NULL)
        return luaL_error(L, "core.guard: a guard is open already");
    lua_getfield(L, 1, "on_signal");                    /* opts fn */
    luaL_argcheck(L, lua_isfunction(L, -1), 1, "on_signal must be a function");
    lua_getfield(L, 1, "grace_ms");                     /* opts fn grace */
    grace_ms = (int)luaL_optinteger(L, -1, 5000);
    luaL_argcheck(L, grace_ms > 0, 1, "grace_ms must be > 0");
    lua_getfield(L, 1, "remove");                       /* opts fn grace path */
    snprintf(remove_path, sizeof remove_path, "%s", luaL_optstring(L, -1, ""));
    lua_pop(L, 2);                                      /* opts fn */
    ud = lua_newuserdata(L, sizeof *ud);                /* opts fn ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_GUARD_MT);
    lua_setmetatable(L, -2);
    g = calloc(1, sizeof *g);
    if (g == NULL || sem_init(&kick, 0, 0) != 0) {
        free(g);
        return luaL_error(L, "core.guard: %s", strerror(errno));
    }
    received = answered = closing = 0;
    /* the watchdog takes no signal: they go to the loop's thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&watchdog, NULL, watch, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        sem_destroy(&kick);
        free(g);
        return luaL_error(L, "core.guard: cannot start its thread: %s", strerror(rc));
    }
    uv_async_init(sl_loop_get(), &g->async, on_async);
    g->async.data = g;
    uv_unref((uv_handle_t *)&g->async);
    lua_pushvalue(L, -2);                               /* opts fn ud fn */
    g->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);         /* opts fn ud */
    *ud = active = g;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_raw_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);                     /* one handler at a time */
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &saved_int);
    sigaction(SIGTERM, &sa, &saved_term);
    return 1;
}

static int guard_tostring(lua_State *L)
{
    guard **ud = luaL_checkudata(L, 1, SL_GUARD_MT);

    lua_pushstring(L, *ud == NULL ? "sluice.guard (closed)" : "sluice.guard (open)");
    return 1;
}

void sl_guard_register(lua_State *L)
{
    static const luaL_Reg methods[] = {{"close", guard_close}, {NULL, NULL}};

    sl_vm_class(L, SL_GUARD_MT, methods, guard_close, guard_tostring);
}
