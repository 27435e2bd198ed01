/* metrics_server.h -- --metrics HOST:PORT: GET /metrics, /healthz and /readyz, served by a
 * thread of its own so that a job whose loop is stuck still answers /healthz.
 *
 * The job's loop renders the exposition text (lua/sluice/prometheus.lua) and hands it
 * over whole with server:publish(text); the server thread answers every scrape from the
 * text published last, so a scrape never waits for the job and the job never waits for
 * a scrape. A timer on the job's loop stamps a heartbeat every SL_METRICS_BEAT_MS; /healthz
 * answers 503 once the stamp is older than SL_METRICS_STALL_MS.
 */
#ifndef SL_METRICS_SERVER_H
#define SL_METRICS_SERVER_H

#include <lua.h>

#define SL_METRICS_SERVER_MT "sluice.metrics_server"  /* metatable of core.metrics_listen */
#define SL_METRICS_BEAT_MS   100      /* how often the job's loop stamps its heartbeat */
#define SL_METRICS_STALL_MS  1000     /* a heartbeat older than this: /healthz says 503 */
#define SL_METRICS_WHY_LEN   512      /* longest reason /readyz gives for 503 */

/* Creates the metatable. Stack unchanged. */
void sl_metrics_server_register(lua_State *L);

/* core.metrics_listen(address) -> server | nil, message: listens on "host:port" (as
 * net.h's sl_net_resolve reads it) and starts the server thread; the heartbeat timer
 * runs on the calling thread's loop (unreferenced). server:publish(text) replaces what
 * /metrics answers; server:ready(ok [, why]) sets what /readyz answers; server:close()
 * stops the thread, closes every connection and the listener (idempotent). */
int sl_metrics_listen(lua_State *L);

/* core.usage() -> {cpu=seconds, rss=bytes}: the CPU time (user + system) the process has
 * used, from getrusage, and its resident size (/proc/self/statm). */
int sl_metrics_usage(lua_State *L);

#endif
