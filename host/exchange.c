/* exchange.c -- the rings between workers and each worker's endpoint on its own loop.
 *
 * Ring (from, to) is written only by worker `from`'s thread and read only by worker `to`'s:
 * head is advanced by the consumer, tail by the producer, each published with a release
 * store and read with an acquire load, so a slot's pointer is seen before the index that
 * covers it. What a producer sends while the ring is full goes on the ring's overflow, a
 * list under a lock that the consumer reads once the ring is empty: the consumer then goes
 * on reading while its producer is busy (a window firing, a combiner sending a pane's
 * partials), where waiting for the producer to refill the ring left one worker idle while
 * the other worked, turn about. The producer counts what waits there (backlog) and pauses
 * its sources past Lua's slack, so memory stays bounded as before. A producer whose message
 * went to the overflow sets `wanted`; the consumer, taking a message, wakes it. Wake-ups
 * go through each worker's uv_async, which libuv coalesces; a
 * lock per worker keeps a wake-up from reaching a handle its thread is closing (wake-ups
 * come once per message, not per record).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <uv.h>

#include "exchange.h"
#include "loop.h"
#include "vm.h"

typedef struct message {
    struct message *next;           /* in a ring's overflow */
    size_t len;
    size_t cap;                     /* bytes data has room for */
    char data[];
} message;

/* Messages a worker has read, kept for the next ones it sends: a block of a few hundred
 * kilobytes malloc'd by one thread and freed by another is given back to the system and
 * faulted in again, message after message (a third of the exchange's system time). */
#define SPARES 8

typedef struct ring {
    _Atomic size_t head;            /* next slot to read (consumer) */
    char pad1[64 - sizeof(size_t)];
    _Atomic size_t tail;            /* next slot to write (producer) */
    _Atomic int wanted;             /* the producer wants to know when a message is taken */
    char pad2[64 - sizeof(size_t) - sizeof(int)];
    message *slots[SL_RING_SLOTS];
    _Atomic size_t backlog;         /* messages on the overflow (only the producer adds) */
    uv_mutex_t lock;                /* the overflow's */
    message *first, *last;          /* the overflow, oldest first */
} ring;

typedef struct endpoint {
    uv_async_t async;               /* this worker's wake-up; async.data = the endpoint */
    int on_wake;                    /* registry ref; LUA_NOREF once closed */
    int me;                         /* 0-based */
    int next_from;                  /* the ring receive() looks at first */
    int closed;
    message *held;                  /* what receive(true) gave last, freed at the next */
    message *spares[SPARES];        /* read messages kept for sending (NULL: none) */
} endpoint;

static struct {
    int n;
    ring *rings;                    /* n * n, ring (from, to) at from * n + to */
    endpoint *eps[SL_WORKERS_MAX];  /* under locks[i]: worker i's open endpoint or NULL */
    uv_mutex_t locks[SL_WORKERS_MAX];
    int aborted;                    /* under locks[0]: the worker (1-based) that failed */
    char *why;                      /* under locks[0]: what it said */
} ex;

static ring *ring_of(int from, int to)
{
    return &ex.rings[(size_t)from * (size_t)ex.n + (size_t)to];
}

static void wake(int worker)
{
    uv_mutex_lock(&ex.locks[worker]);
    if (ex.eps[worker] != NULL)
        uv_async_send(&ex.eps[worker]->async);
    uv_mutex_unlock(&ex.locks[worker]);
}

int sl_exchange_create(int n)
{
    if (n < 2 || n > SL_WORKERS_MAX || ex.n != 0)
        return -1;
    ex.rings = calloc((size_t)n * (size_t)n, sizeof *ex.rings);
    if (ex.rings == NULL)
        return -1;
    for (int i = 0; i < n * n; i++) {
        if (uv_mutex_init(&ex.rings[i].lock) != 0) {
            while (i-- > 0)
                uv_mutex_destroy(&ex.rings[i].lock);
            free(ex.rings);
            ex.rings = NULL;
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        if (uv_mutex_init(&ex.locks[i]) != 0) {
            while (i-- > 0)
                uv_mutex_destroy(&ex.locks[i]);
            for (int j = 0; j < n * n; j++)
                uv_mutex_destroy(&ex.rings[j].lock);
            free(ex.rings);
            ex.rings = NULL;
            return -1;
        }
        ex.eps[i] = NULL;
    }
    ex.n = n;
    return 0;
}

void sl_exchange_destroy(void)
{
    if (ex.rings == NULL)
        return;
    for (int i = 0; i < ex.n * ex.n; i++) {
        ring *r = &ex.rings[i];
        size_t head = atomic_load(&r->head), tail = atomic_load(&r->tail);
        for (; head != tail; head++)
            free(r->slots[head % SL_RING_SLOTS]);
        while (r->first != NULL) {
            message *m = r->first;
            r->first = m->next;
            free(m);
        }
        uv_mutex_destroy(&r->lock);
    }
    for (int i = 0; i < ex.n; i++)
        uv_mutex_destroy(&ex.locks[i]);
    free(ex.why);
    ex.why = NULL;
    ex.aborted = 0;
    free(ex.rings);
    ex.rings = NULL;
    ex.n = 0;
}

int sl_exchange_size(void)
{
    return ex.n;
}

/* ---- the endpoint ------------------------------------------------------------------ */

/* A message of len bytes to fill: a spare with room, or a new one (NULL: out of memory). */
static message *message_for(endpoint *ep, size_t len)
{
    message *m;
    int best = -1;

    for (int i = 0; i < SPARES; i++) {
        if (ep->spares[i] == NULL)
            continue;
        if (ep->spares[i]->cap >= len) {
            best = i;
            break;
        }
        if (best < 0)
            best = i;
    }
    if (best >= 0) {
        m = ep->spares[best];
        ep->spares[best] = NULL;
        if (m->cap < len) {
            message *grown = realloc(m, sizeof *m + len);

            if (grown == NULL) {
                free(m);
                return NULL;
            }
            m = grown;
            m->cap = len;
        }
    } else {
        m = malloc(sizeof *m + len);
        if (m == NULL)
            return NULL;
        m->cap = len;
    }
    m->len = len;
    return m;
}

/* Keeps a message read for a later send, or frees it when there are spares enough. */
static void message_done(endpoint *ep, message *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < SPARES; i++) {
        if (ep->spares[i] == NULL) {
            ep->spares[i] = m;
            return;
        }
    }
    free(m);
}

static endpoint *check_ep(lua_State *L)
{
    endpoint **ud = luaL_checkudata(L, 1, SL_EXCHANGE_MT);

    if (*ud == NULL || (*ud)->closed)
        luaL_error(L, "exchange: the endpoint is closed");
    return *ud;
}

static void on_async(uv_async_t *a)
{
    endpoint *ep = a->data;
    lua_State *L = sl_loop_lua();

    if (ep->closed || L == NULL || !lua_checkstack(L, 2))
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ep->on_wake);     /* fn */
    sl_loop_call(L, 0);                                 /* -- */
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

int sl_exchange_open(lua_State *L)
{
    int me = (int)luaL_checkinteger(L, 1) - 1;
    endpoint *ep, **ud;

    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (ex.n == 0)
        return luaL_error(L, "core.exchange: no exchange (the job has one worker)");
    if (me < 0 || me >= ex.n)
        return luaL_error(L, "core.exchange: worker %d of %d", me + 1, ex.n);
    uv_mutex_lock(&ex.locks[me]);
    ep = ex.eps[me];
    uv_mutex_unlock(&ex.locks[me]);
    if (ep != NULL)
        return luaL_error(L, "core.exchange: worker %d has an endpoint already", me + 1);
    ud = lua_newuserdata(L, sizeof *ud);                /* me fn ud */
    *ud = NULL;
    ep = calloc(1, sizeof *ep);
    if (ep == NULL)
        return luaL_error(L, "core.exchange: out of memory");
    if (uv_async_init(sl_loop_get(), &ep->async, on_async) != 0) {
        free(ep);
        return luaL_error(L, "core.exchange: cannot make a wake-up handle");
    }
    ep->async.data = ep;
    ep->me = me;
    lua_pushvalue(L, 2);                                /* me fn ud fn */
    ep->on_wake = luaL_ref(L, LUA_REGISTRYINDEX);       /* me fn ud */
    *ud = ep;
    luaL_getmetatable(L, SL_EXCHANGE_MT);
    lua_setmetatable(L, -2);
    uv_mutex_lock(&ex.locks[me]);
    ex.eps[me] = ep;
    uv_mutex_unlock(&ex.locks[me]);
    /* messages sent before this endpoint existed woke nobody: look now */
    uv_async_send(&ep->async);
    return 1;
}

/* ep:send(to, s) or ep:send(to, address, len) -> backlog: the message is s, or the
 * len bytes at address (a number: a string.buffer's, read with ffi, which spares the string
 * a large message would be); backlog, the messages for `to` on its ring's overflow. */
static int ep_send(lua_State *L)
{
    endpoint *ep = check_ep(L);
    int to = (int)luaL_checkinteger(L, 2) - 1;
    size_t len, backlog;
    const char *s;
    ring *r;
    size_t head, tail;
    message *m;

    if (lua_type(L, 3) == LUA_TNUMBER) {
        s = (const char *)(uintptr_t)lua_tonumber(L, 3);
        len = (size_t)luaL_checknumber(L, 4);
    } else {
        s = luaL_checklstring(L, 3, &len);
    }
    if (to < 0 || to >= ex.n || to == ep->me)
        return luaL_error(L, "exchange: cannot send to worker %d", to + 1);
    m = message_for(ep, len);
    if (m == NULL)
        return luaL_error(L, "exchange: out of memory for a message of %d bytes", (int)len);
    memcpy(m->data, s, len);
    r = ring_of(ep->me, to);
    tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    head = atomic_load_explicit(&r->head, memory_order_acquire);
    /* (only this thread adds to the overflow: none there now means none older than m) */
    backlog = atomic_load_explicit(&r->backlog, memory_order_acquire);
    if (backlog == 0 && tail - head < SL_RING_SLOTS) {
        r->slots[tail % SL_RING_SLOTS] = m;
        atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    } else {
        m->next = NULL;
        uv_mutex_lock(&r->lock);
        if (r->last != NULL)
            r->last->next = m;
        else
            r->first = m;
        r->last = m;
        backlog = atomic_fetch_add(&r->backlog, 1) + 1;
        uv_mutex_unlock(&r->lock);
        atomic_store_explicit(&r->wanted, 1, memory_order_seq_cst);
    }
    wake(to);
    lua_pushinteger(L, (lua_Integer)backlog);
    return 1;
}

/* ep:backlog(to) -> the messages for `to` on its ring's overflow; while there are any,
 * this worker is woken when `to` takes one. */
static int ep_backlog(lua_State *L)
{
    endpoint *ep = check_ep(L);
    int to = (int)luaL_checkinteger(L, 2) - 1;
    ring *r;
    size_t backlog;

    if (to < 0 || to >= ex.n || to == ep->me)
        return luaL_error(L, "exchange: no ring to worker %d", to + 1);
    r = ring_of(ep->me, to);
    atomic_store_explicit(&r->wanted, 1, memory_order_seq_cst);
    backlog = atomic_load_explicit(&r->backlog, memory_order_seq_cst);
    if (backlog == 0)
        atomic_store_explicit(&r->wanted, 0, memory_order_relaxed);
    lua_pushinteger(L, (lua_Integer)backlog);
    return 1;
}

/* ep:receive() -> from, s | nil; ep:receive(true) -> from, address, len | nil: the
 * message's bytes stay where they are (read them with ffi) until the next receive or
 * close, so that no string is made of them. */
static int ep_receive(lua_State *L)
{
    endpoint *ep = check_ep(L);
    int raw = lua_toboolean(L, 2);

    message_done(ep, ep->held);
    ep->held = NULL;

    for (int k = 0; k < ex.n; k++) {
        int from = (ep->next_from + k) % ex.n;
        ring *r;
        size_t head, tail, backlog;
        message *m;

        if (from == ep->me)
            continue;
        r = ring_of(from, ep->me);
        /* the overflow's count first: while it is not 0 the producer puts nothing on the
         * ring (only this thread takes it down), so a ring found empty after it stays empty
         * and the overflow holds the oldest message; read after the ring, the ring could
         * have filled, and spilled, in between */
        backlog = atomic_load_explicit(&r->backlog, memory_order_seq_cst);
        head = atomic_load_explicit(&r->head, memory_order_relaxed);
        tail = atomic_load_explicit(&r->tail, memory_order_seq_cst);
        if (head != tail) {
            m = r->slots[head % SL_RING_SLOTS];
            atomic_store_explicit(&r->head, head + 1, memory_order_seq_cst);
        } else {
            if (backlog == 0)
                continue;
            uv_mutex_lock(&r->lock);
            m = r->first;
            if (m != NULL) {
                r->first = m->next;
                if (r->first == NULL)
                    r->last = NULL;
                atomic_fetch_sub(&r->backlog, 1);
            }
            uv_mutex_unlock(&r->lock);
            if (m == NULL)
                continue;
        }
        if (atomic_exchange_explicit(&r->wanted, 0, memory_order_seq_cst))
            wake(from);
        ep->next_from = (from + 1) % ex.n;
        lua_pushinteger(L, from + 1);
        if (raw) {
            ep->held = m;
            lua_pushnumber(L, (lua_Number)(uintptr_t)m->data);
            lua_pushnumber(L, (lua_Number)m->len);
            return 3;
        }
        lua_pushlstring(L, m->data, m->len);
        message_done(ep, m);
        return 2;
    }
    lua_pushnil(L);
    return 1;
}

/* ep:abort(why): the job fails on every worker; the first abort's message is kept, and
 * every worker is woken to see it (ep:aborted()). Does not go through the rings, which a
 * stuck worker may have left full. */
static int ep_abort(lua_State *L)
{
    endpoint *ep = check_ep(L);
    size_t len;
    const char *why = luaL_checklstring(L, 2, &len);

    uv_mutex_lock(&ex.locks[0]);
    if (ex.aborted == 0) {
        ex.aborted = ep->me + 1;
        ex.why = malloc(len + 1);
        if (ex.why != NULL)
            memcpy(ex.why, why, len + 1);
    }
    uv_mutex_unlock(&ex.locks[0]);
    for (int i = 0; i < ex.n; i++)
        if (i != ep->me)
            wake(i);
    return 0;
}

/* ep:aborted() -> worker, why | nil: whether a worker aborted the job, which and why */
static int ep_aborted(lua_State *L)
{
    int who;

    check_ep(L);
    uv_mutex_lock(&ex.locks[0]);
    who = ex.aborted;
    if (who != 0) {
        lua_pushinteger(L, who);
        lua_pushstring(L, ex.why != NULL ? ex.why : "(no message)");
    }
    uv_mutex_unlock(&ex.locks[0]);
    if (who == 0) {
        lua_pushnil(L);
        return 1;
    }
    return 2;
}

static int ep_close(lua_State *L)
{
    endpoint **ud = luaL_checkudata(L, 1, SL_EXCHANGE_MT);
    endpoint *ep = *ud;

    if (ep == NULL)
        return 0;
    *ud = NULL;
    ep->closed = 1;
    free(ep->held);
    ep->held = NULL;
    for (int i = 0; i < SPARES; i++) {
        free(ep->spares[i]);
        ep->spares[i] = NULL;
    }
    uv_mutex_lock(&ex.locks[ep->me]);
    ex.eps[ep->me] = NULL;
    uv_mutex_unlock(&ex.locks[ep->me]);
    luaL_unref(L, LUA_REGISTRYINDEX, ep->on_wake);
    ep->on_wake = LUA_NOREF;
    uv_close((uv_handle_t *)&ep->async, on_closed);
    return 0;
}

static const luaL_Reg ep_methods[] = {
    {"send", ep_send},
    {"backlog", ep_backlog},
    {"receive", ep_receive},
    {"abort", ep_abort},
    {"aborted", ep_aborted},
    {"close", ep_close},
    {NULL, NULL}
};

void sl_exchange_register(lua_State *L)
{
    sl_vm_class(L, SL_EXCHANGE_MT, ep_methods, ep_close, NULL);
}
