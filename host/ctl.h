/* ctl.h -- the control socket: a Unix-domain server on the job's loop, and a blocking
 * client for `sluice attach` and `sluice top`.
 *
 * Both ends speak frames: a 4-byte big-endian length, then that many bytes (a msgpack
 * object, encoded and decoded in Lua). C frames; Lua gives the frames their meaning.
 */
#ifndef SL_CTL_H
#define SL_CTL_H

#include <lua.h>

#define SL_CTL_SERVER_MT "sluice.ctl_server"   /* metatable of core.ctl_listen servers */
#define SL_CTL_CONN_MT   "sluice.ctl_conn"     /* a client connected to a server */
#define SL_CTL_CLIENT_MT "sluice.ctl_client"   /* core.ctl_connect: the blocking client */
#define SL_CTL_MAX_FRAME (16u << 20)           /* longest frame; longer ends the connection */

/* Creates the metatables. Stack unchanged. */
void sl_ctl_register(lua_State *L);

/* core.ctl_listen(path, on_message, on_close) -> server */
int sl_ctl_listen(lua_State *L);

/* core.ctl_connect(path) -> client | nil, message */
int sl_ctl_connect(lua_State *L);

/* core.ctl_dir(path) -> true | nil, message: a directory only this user can enter */
int sl_ctl_dir(lua_State *L);

/* core.ctl_sockets(dir) -> array of the names in dir that end in ".sock" */
int sl_ctl_sockets(lua_State *L);

#endif
