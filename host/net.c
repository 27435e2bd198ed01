/* net.c -- sockets for sources: address parsing, the TCP listener and the UDP socket.
 *
 * The listener polls a non-blocking listening socket and accepts with accept4, so each
 * connection is a plain descriptor that a core.reader then owns and reads as a libuv
 * stream: one framer serves files, pipes and sockets. The UDP socket hands each datagram
 * to a reader's framer (sl_reader_feed). C owns both handles; the userdata holds a pointer,
 * close is explicit and idempotent, and the memory goes in the close callback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>

#include "loop.h"
#include "net.h"
#include "reader.h"
#include "vm.h"

/* ---- addresses ---------------------------------------------------------------------- */

int sl_net_resolve(const char *address, struct sockaddr_storage *ss, socklen_t *len,
                   char *err)
{
    char host[256], *end;
    const char *colon, *port;
    struct addrinfo hints, *res = NULL;
    long pnum;
    size_t hlen;
    int rc;

    if (address[0] == '[') {                        /* [v6]:port */
        const char *close = strchr(address, ']');
        if (close == NULL || close[1] != ':')
            goto bad;
        hlen = (size_t)(close - address - 1);
        if (hlen == 0 || hlen >= sizeof host)
            goto bad;
        memcpy(host, address + 1, hlen);
        port = close + 2;
    } else {
        colon = strrchr(address, ':');
        if (colon == NULL || colon == address || strchr(address, ':') != colon)
            goto bad;
        hlen = (size_t)(colon - address);
        if (hlen >= sizeof host)
            goto bad;
        memcpy(host, address, hlen);
        port = colon + 1;
    }
    host[hlen] = '\0';
    errno = 0;
    pnum = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || errno != 0 || pnum < 0 || pnum > 65535)
        goto bad;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, SL_NET_ERRLEN, "resolve %s: %s", address,
                 rc != 0 ? gai_strerror(rc) : "no address");
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(err, SL_NET_ERRLEN, "bad address \"%s\" (expected host:port, [ipv6]:port or "
             "localhost:port)", address);
    return -1;
}

void sl_net_name(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(out, outlen, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(out, outlen, "%s:%d", ip, ntohs(a->sin_port));
    } else {
        snprintf(out, outlen, "?");
    }
}

/* Opens a non-blocking socket of type bound to address; `shared`: with SO_REUSEPORT, so
 * that the workers of one job each listen on the port and the kernel spreads the
 * connections over them. Returns the descriptor, or -1 with "what ADDRESS: reason" in err. */
static int bound_socket(const char *what, const char *address, int type, int shared,
                        char *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;

    if (sl_net_resolve(address, &ss, &len, err) != 0)
        return -1;
    fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, SL_NET_ERRLEN, "%s %s: %s", what, address, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        snprintf(err, SL_NET_ERRLEN, "%s %s: SO_REUSEPORT: %s", what, address, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0
        || (type == SOCK_STREAM && listen(fd, SOMAXCONN) != 0)) {
        snprintf(err, SL_NET_ERRLEN, "%s %s: %s", what, address, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the TCP listener --------------------------------------------------------------- */

typedef struct listener {
    uv_poll_t poll;         /* readable: connections are waiting */
    int fd;                 /* the listening socket, ours */
    int fn_ref;             /* on_connection(fd, peer), LUA_NOREF once closed */
    int self_ref;           /* the userdata, held while open */
    int polling;
} listener;

static void on_listener_closed(uv_handle_t *h)
{
    listener *l = h->data;

    close(l->fd);
    free(l);
}

/* Accepts every waiting connection and calls on_connection(fd, "ip:port") for each; the
 * callee owns fd. Returns the number accepted. */
static int accept_all(lua_State *L, listener *l)
{
    int n = 0;

    while (l->fn_ref != LUA_NOREF) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char peer[80];
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;          /* EAGAIN: none left; EMFILE and the like: try on next poll */
        }
        sl_net_name((struct sockaddr *)&ss, peer, sizeof peer);
        lua_rawgeti(L, LUA_REGISTRYINDEX, l->fn_ref);   /* fn */
        lua_pushinteger(L, fd);
        lua_pushstring(L, peer);                        /* fn fd peer */
        n++;
        if (sl_loop_call(L, 2) != 0)                    /* -- */
            break;
    }
    return n;
}

static void on_listener_ready(uv_poll_t *p, int status, int events)
{
    lua_State *L = sl_loop_lua();

    if (L != NULL && status == 0)
        accept_all(L, p->data);
}

static listener *check_listener(lua_State *L)
{
    return *(listener **)luaL_checkudata(L, 1, SL_LISTENER_MT);
}

/* core.listen{address=, on_connection=function(fd, peer), shared=bool} -> listener,
 * listening at once (shared: SO_REUSEPORT, see bound_socket) */
int sl_listener_new(lua_State *L)
{
    char err[SL_NET_ERRLEN];
    const char *address;
    listener **ud, *l;
    int fd;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "address");
    address = lua_tostring(L, -1);
    if (address == NULL)
        return luaL_error(L, "core.listen: address must be a string");
    lua_getfield(L, 1, "on_connection");
    luaL_argcheck(L, lua_isfunction(L, -1), 1, "on_connection must be a function");
    lua_getfield(L, 1, "shared");
    fd = bound_socket("listen tcp", address, SOCK_STREAM, lua_toboolean(L, -1), err);
    lua_pop(L, 1);
    if (fd < 0) {
        lua_pushstring(L, err);
        return lua_error(L);
    }
    ud = lua_newuserdata(L, sizeof *ud);                /* opts addr fn ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_LISTENER_MT);
    lua_setmetatable(L, -2);
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        close(fd);
        return luaL_error(L, "core.listen: out of memory");
    }
    l->fd = fd;
    uv_poll_init(sl_loop_get(), &l->poll, fd);
    l->poll.data = l;
    uv_poll_start(&l->poll, UV_READABLE, on_listener_ready);
    l->polling = 1;
    lua_pushvalue(L, -2);
    l->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);         /* opts addr fn ud */
    lua_pushvalue(L, -1);
    l->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    *ud = l;
    return 1;
}

/* listener:stop() / listener:start(): no accepting while stopped (connections wait in
 * the kernel's backlog). */
static int listener_stop(lua_State *L)
{
    listener *l = check_listener(L);

    if (l != NULL && l->polling) {
        uv_poll_stop(&l->poll);
        l->polling = 0;
    }
    return 0;
}

static int listener_start(lua_State *L)
{
    listener *l = check_listener(L);

    if (l != NULL && !l->polling) {
        uv_poll_start(&l->poll, UV_READABLE, on_listener_ready);
        l->polling = 1;
    }
    return 0;
}

/* listener:accept_pending() -> n: accepts, now, the connections already waiting (for a
 * shutdown that must not lose what peers have sent), calling on_connection for each. */
static int listener_accept_pending(lua_State *L)
{
    listener *l = check_listener(L);

    lua_pushinteger(L, l != NULL ? accept_all(L, l) : 0);
    return 1;
}

/* listener:close(): stops listening and closes the socket. Idempotent. */
static int listener_close(lua_State *L)
{
    listener **ud = luaL_checkudata(L, 1, SL_LISTENER_MT);
    listener *l = *ud;

    if (l == NULL)
        return 0;
    *ud = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, l->fn_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, l->self_ref);
    l->fn_ref = l->self_ref = LUA_NOREF;
    uv_close((uv_handle_t *)&l->poll, on_listener_closed);
    return 0;
}

/* ---- the UDP socket ----------------------------------------------------------------- */

typedef struct udp {
    uv_udp_t uv;
    int reader_ref;         /* the reader userdata datagrams are fed to */
    int self_ref;
    int receiving;
    char buf[SL_UDP_MAX];   /* one datagram */
} udp;

static void on_udp_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    udp *u = h->data;

    *b = uv_buf_init(u->buf, sizeof u->buf);
}

static void on_udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                        unsigned flags)
{
    udp *u = h->data;
    lua_State *L = sl_loop_lua();
    sl_reader **rd;

    if (L == NULL || n < 0 || (n == 0 && from == NULL) || u->reader_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, u->reader_ref);   /* reader */
    rd = luaL_testudata(L, -1, SL_READER_MT);
    if (rd != NULL && *rd != NULL)
        sl_reader_feed(*rd, b->base, (size_t)n, (flags & UV_UDP_PARTIAL) != 0);
    lua_pop(L, 1);                                      /* -- */
}

static udp *check_udp(lua_State *L)
{
    return *(udp **)luaL_checkudata(L, 1, SL_UDP_MT);
}

/* core.udp{address=, reader=} -> udp, receiving at once */
int sl_udp_new(lua_State *L)
{
    char err[SL_NET_ERRLEN];
    const char *address;
    udp **ud, *u;
    int fd, rc;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "address");
    address = lua_tostring(L, -1);
    if (address == NULL)
        return luaL_error(L, "core.udp: address must be a string");
    lua_getfield(L, 1, "reader");
    luaL_checkudata(L, -1, SL_READER_MT);
    fd = bound_socket("listen udp", address, SOCK_DGRAM, 0, err);
    if (fd < 0) {
        lua_pushstring(L, err);
        return lua_error(L);
    }
    ud = lua_newuserdata(L, sizeof *ud);                /* opts addr reader ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_UDP_MT);
    lua_setmetatable(L, -2);
    u = calloc(1, sizeof *u);
    if (u == NULL) {
        close(fd);
        return luaL_error(L, "core.udp: out of memory");
    }
    uv_udp_init(sl_loop_get(), &u->uv);
    u->uv.data = u;
    rc = uv_udp_open(&u->uv, fd);
    if (rc == 0)
        rc = uv_udp_recv_start(&u->uv, on_udp_alloc, on_udp_recv);
    if (rc < 0) {
        uv_close((uv_handle_t *)&u->uv, on_udp_closed);
        return luaL_error(L, "listen udp %s: %s", address, uv_strerror(rc));
    }
    u->receiving = 1;
    lua_pushvalue(L, -2);
    u->reader_ref = luaL_ref(L, LUA_REGISTRYINDEX);     /* opts addr reader ud */
    lua_pushvalue(L, -1);
    u->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    *ud = u;
    return 1;
}

static int udp_stop(lua_State *L)
{
    udp *u = check_udp(L);

    if (u != NULL && u->receiving) {
        uv_udp_recv_stop(&u->uv);
        u->receiving = 0;
    }
    return 0;
}

static int udp_start(lua_State *L)
{
    udp *u = check_udp(L);

    if (u != NULL && !u->receiving) {
        uv_udp_recv_start(&u->uv, on_udp_alloc, on_udp_recv);
        u->receiving = 1;
    }
    return 0;
}

static int udp_close(lua_State *L)
{
    udp **ud = luaL_checkudata(L, 1, SL_UDP_MT);
    udp *u = *ud;

    if (u == NULL)
        return 0;
    *ud = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, u->reader_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, u->self_ref);
    u->reader_ref = u->self_ref = LUA_NOREF;
    uv_close((uv_handle_t *)&u->uv, on_udp_closed);
    return 0;
}

/* ---- registration ------------------------------------------------------------------- */

void sl_net_register(lua_State *L)
{
    static const luaL_Reg listener_methods[] = {
        {"start", listener_start},
        {"stop", listener_stop},
        {"accept_pending", listener_accept_pending},
        {"close", listener_close},
        {NULL, NULL}
    };
    static const luaL_Reg udp_methods[] = {
        {"start", udp_start},
        {"stop", udp_stop},
        {"close", udp_close},
        {NULL, NULL}
    };

    sl_vm_class(L, SL_LISTENER_MT, listener_methods, listener_close, NULL);
    sl_vm_class(L, SL_UDP_MT, udp_methods, udp_close, NULL);
}
