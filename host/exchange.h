/* exchange.h -- how the workers of one job pass messages: a bounded single-producer
 * single-consumer ring for each ordered pair of workers, and a wake-up for each worker's
 * loop.
 *
 * A message is a byte string (a batch of records encoded by Lua, a watermark, an end of
 * input, a control word); the ring holds pointers to malloc'd copies, in order. A ring has
 * room for SL_RING_SLOTS messages; what is sent while it is full goes on its overflow, a
 * list under a lock that the consumer reads next, so a consumer never waits for a busy
 * producer. The producer is told how many wait there (its backlog) and pauses its sources
 * past a slack (exchange.lua), so memory stays bounded and back-pressure reaches the
 * sources. Push and pop on the ring take no lock: one atomic load and one atomic store each.
 */
#ifndef SL_EXCHANGE_H
#define SL_EXCHANGE_H

#include <lua.h>
#include <stddef.h>

#define SL_EXCHANGE_MT "sluice.exchange"   /* metatable of core.exchange endpoints */
#define SL_WORKERS_MAX 64
#define SL_RING_SLOTS 32

/* Creates the rings of an exchange between n workers (2 <= n <= SL_WORKERS_MAX), once per
 * process, before the worker threads start. Returns 0, or -1 when out of memory. */
int sl_exchange_create(int n);

/* Frees the exchange once every worker has closed its endpoint and its thread ended. */
void sl_exchange_destroy(void);

/* How many workers the exchange connects (0: none was created). */
int sl_exchange_size(void);

/* core.exchange(me, on_wake) -> endpoint of worker me (1-based) on this thread's loop;
 * on_wake() is called on the loop whenever a message may have come in or a full ring may
 * have room again. Methods:
 *   ep:send(to, s) -> backlog       the messages for `to` on its overflow (with this one
 *                                   if it went there)
 *   ep:backlog(to) -> n             those now; while n > 0, on_wake comes when `to` takes
 *                                   one
 *   ep:receive() -> from, s | nil   the next message, rings taken in turn, each in order
 *   ep:abort(why)                   the job fails on every worker: each is woken
 *   ep:aborted() -> worker, why | nil   whether (and which) a worker aborted
 *   ep:close()                      stops the wake-ups (idempotent; __gc closes too) */
int sl_exchange_open(lua_State *L);

/* Creates the endpoint metatable. Stack unchanged. */
void sl_exchange_register(lua_State *L);

#endif
