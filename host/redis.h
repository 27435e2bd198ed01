/* redis.h -- Redis Streams on the job's loop, with hiredis's async API: core.redis_source
 * (XREADGROUP in a consumer group) and core.redis_sink (pipelined XADD). The contract Lua
 * sees is in sl_api.h.
 *
 * Each object owns an sl_redis_conn: one hiredis async context attached to the loop
 * (a uv_poll handle: see redis_conn.c), remade with backoff when the server goes away. A
 * lost server is said once on stderr and once more when it is back; callers' commands in
 * flight at the loss get their callbacks with a NULL reply (hiredis's rule).
 */
#ifndef SL_REDIS_H
#define SL_REDIS_H

#include <lua.h>
#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define SL_REDIS_SOURCE_MT "sluice.redis_source"   /* metatable of source userdata */
#define SL_REDIS_SINK_MT   "sluice.redis_sink"     /* metatable of sink userdata */
#define SL_REDIS_WHY       256                     /* bytes of a reason kept */

/* The arena a connection's replies are built in (redis_reply.c). */
typedef struct sl_redis_arena sl_redis_arena;

/* A connection to one server that comes back after a loss. Embedded in its owner; the
 * owner is freed from on_closed, once the retry timer's close callback has run. */
typedef struct sl_redis_conn {
    redisAsyncContext *ac;      /* NULL while down */
    char *host;
    int port, db;               /* db: SELECT after connecting when not 0 */
    char *password;             /* AUTH after connecting, or NULL */
    char *user;                 /* AUTH user password (an ACL user), or NULL */
    char *what;                 /* "source.redis redis://..." for messages */
    sl_redis_arena *arena;      /* where hiredis builds this connection's replies */
    uv_timer_t retry;           /* the next attempt while down */
    int backoff_ms;             /* the wait before the next attempt */
    int up;                     /* connected: commands may be issued */
    int setup_left;             /* AUTH and SELECT replies still due before up */
    int said_down;              /* the loss was said: say when it is back */
    int closing;
    int pending;                /* commands issued, replies not in yet (this connection) */
    void (*on_up)(struct sl_redis_conn *);      /* connected: the owner issues its setup */
    void (*on_down)(struct sl_redis_conn *);    /* lost: pending callbacks already ran */
    void (*on_closed)(struct sl_redis_conn *);  /* after close: the owner frees itself */
    void *owner;
} sl_redis_conn;

/* core.redis_source{...} and core.redis_sink{...} (redis_source.c, redis_sink.c), and
 * their metatables. */
int sl_redis_source_new(lua_State *L);
int sl_redis_sink_new(lua_State *L);
void sl_redis_source_register(lua_State *L);
void sl_redis_sink_register(lua_State *L);

/* ---- the connection (redis_conn.c) ------------------------------------------------------ */

/* Fills c from the options table at idx (host, port, db, password, what) and starts
 * connecting. Raises on bad options. */
void sl_redis_conn_open(lua_State *L, int idx, sl_redis_conn *c);

/* Issues a command (argv as for redisAsyncCommandArgv) counted in c->pending; fn gets
 * the reply, or NULL when the connection was lost first. Returns 0, or -1 when not up
 * (not connected, or AUTH and SELECT not accepted yet). */
int sl_redis_conn_command(sl_redis_conn *c, redisCallbackFn *fn, void *privdata, int argc,
                          const char **argv, const size_t *argvlen);

/* The same for a command already written in the protocol (cmd[0, len)). */
int sl_redis_conn_formatted(sl_redis_conn *c, redisCallbackFn *fn, void *privdata,
                            const char *cmd, size_t len);

/* The callback of every counted command must call this first. */
void sl_redis_conn_replied(sl_redis_conn *c);

/* Serves c's socket here and now, outside the loop, until no reply is pending or ms have
 * passed (a checkpoint or the end waits for its replies). Returns the replies still
 * pending (0: all in). Callbacks run from inside it. */
int sl_redis_conn_wait(sl_redis_conn *c, int ms);

/* The owner's setup worked (a source's group is there; a sink is connected): a loss said
 * before is said to be over, and the backoff starts again from its first step. Until
 * then a connection that comes up and fails again is not said again. */
void sl_redis_conn_healthy(sl_redis_conn *c);

/* Drops the connection after a failure the owner saw (a reply it cannot use): the loss
 * path follows, with why said once. */
void sl_redis_conn_fail(sl_redis_conn *c, const char *why);

/* Closes: pending callbacks run with NULL, then on_closed, from the loop. */
void sl_redis_conn_close(sl_redis_conn *c);

/* ---- reply objects (redis_reply.c) ----------------------------------------------------- */

/* An empty arena; sl_redis_arena_use makes ac's reader build its replies there (each
 * freed root empties it); sl_redis_arena_free once no reader uses it. */
sl_redis_arena *sl_redis_arena_new(void);
void sl_redis_arena_use(sl_redis_arena *a, redisAsyncContext *ac);
void sl_redis_arena_free(sl_redis_arena *a);

#endif
