/* http_server.h -- core.http_listen: the HTTP source's listener on the job's loop. Each
 * connection's requests are parsed by http_request.c; a POST to the path has its body
 * framed and decoded in C (framing.c) into batches handed to Lua, and is answered once
 * Lua has taken them: 200, or 400 listing the bad lines. The contract is in
 * docs/http.md ("HTTP source").
 */
#ifndef SL_HTTP_SERVER_H
#define SL_HTTP_SERVER_H

#include <lua.h>

#define SL_HTTP_SERVER_MT    "sluice.http_server"   /* metatable of core.http_listen */
#define SL_HTTP_READ_CHUNK   (64 * 1024)    /* bytes asked of each read of a connection */
#define SL_HTTP_REPLY_ERRORS 100            /* most bad lines a 400 reply lists */
#define SL_HTTP_WRITE_HIGH   (256 * 1024)   /* replies a peer has not taken, in bytes, over
                                               which its further requests wait unread */
#define SL_HTTP_RAW_MAX      256            /* most bytes of a bad request in on_bad */

/* Creates the metatable. Stack unchanged. */
void sl_http_server_register(lua_State *L);

/* core.http_listen{address=, path=, format=, max_body=, batch=, shared=, what=,
 * on_batch=fn(batch, n), on_bad=fn(info), on_end=fn()} -> server, listening at once.
 * Methods: pause() (requests that complete meanwhile are answered 503), resume(),
 * drain() (no new connections; requests in flight are answered, then on_end()), close()
 * (everything closed at once, no callback after it), connections() -> n. */
int sl_http_server_new(lua_State *L);

#endif
