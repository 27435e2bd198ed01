/* http_client.h -- core.http_client: batches of Lua values encoded in C into request
 * bodies and sent by libcurl's multi-socket interface on the job's loop (the contract Lua
 * sees is in sl_api.h).
 *
 * One client per HTTP sink: one CURLM whose sockets are watched by uv_poll handles
 * (CURLMOPT_SOCKETFUNCTION) and whose timeouts run on a uv_timer (CURLMOPT_TIMERFUNCTION).
 * Lua owns the order of things (which body goes next, retries, backoff); C owns the
 * bodies, the easy handles (kept for reuse, so connections stay alive) and the sockets.
 */
#ifndef SL_HTTP_CLIENT_H
#define SL_HTTP_CLIENT_H

#include <lua.h>

#define SL_HTTP_CLIENT_MT  "sluice.http_client"  /* metatable of client userdata */
#define SL_HTTP_REPLY_MAX  4096                  /* bytes of a reply kept for Lua */

/* Creates the client metatable. Stack unchanged. */
void sl_http_client_register(lua_State *L);

/* core.http_client{...} -> client. */
int sl_http_client_new(lua_State *L);

#endif
