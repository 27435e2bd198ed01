/* net.h -- sockets for sources: "host:port" addresses, a TCP listener that hands each
 * accepted connection to Lua as a descriptor (read by a core.reader), and a UDP socket
 * that feeds each datagram to a reader (the contract is in sl_api.h).
 */
#ifndef SL_NET_H
#define SL_NET_H

#include <sys/socket.h>
#include <lua.h>

#define SL_LISTENER_MT  "sluice.listener"  /* metatable of core.listen handles */
#define SL_UDP_MT       "sluice.udp"       /* metatable of core.udp handles */
#define SL_NET_ERRLEN   256
#define SL_UDP_MAX      65536              /* largest datagram received whole */

/* Resolves "host:port", "[v6addr]:port" or "localhost:port" (numeric port) into *ss.
 * Returns 0, or -1 with a message in err ("bad address ..."/"resolve ..."). */
int sl_net_resolve(const char *address, struct sockaddr_storage *ss, socklen_t *len,
                   char *err);

/* Writes "ip:port" (IPv6 as "[ip]:port") of sa into out (at least 64 bytes). */
void sl_net_name(const struct sockaddr *sa, char *out, size_t outlen);

/* Creates the listener and udp metatables. Stack unchanged. */
void sl_net_register(lua_State *L);

/* core.listen{address=, on_connection=} -> listener */
int sl_listener_new(lua_State *L);

/* core.udp{address=, reader=} -> udp */
int sl_udp_new(lua_State *L);

#endif
