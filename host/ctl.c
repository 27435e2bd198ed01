/* ctl.c -- the control socket: core.ctl_listen (a libuv pipe server inside the job) and
 * core.ctl_connect (a blocking client for attach and top).
 *
 * The server and its connections are unreferenced libuv handles: they never keep a job
 * alive. C owns their memory and frees it in the close callbacks; a connection's userdata
 * is held in the registry while it is open, so Lua may use it as a table key, and points
 * to NULL once closed. Lua callbacks run protected: an error in one is printed and the
 * job goes on, since nothing said over the socket may stop the job.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <lauxlib.h>

#include "buf.h"
#include "ctl.h"
#include "loop.h"
#include "vm.h"

typedef struct ctl_conn ctl_conn;

typedef struct ctl_server {
    uv_pipe_t pipe;         /* the listening socket; pipe.data points back here */
    int on_message;         /* registry refs of the Lua callbacks */
    int on_close;
    ctl_conn *conns;        /* open connections, a list through ctl_conn.next */
    int closed;             /* close() was called */
} ctl_server;

struct ctl_conn {
    uv_pipe_t pipe;         /* the accepted connection; pipe.data points back here */
    ctl_server *server;     /* NULL once the server closed */
    ctl_conn *next;
    ctl_conn **slot;        /* the userdata's pointer, set to NULL when closed */
    int self_ref;           /* registry ref of the userdata while open */
    int closed;
    sl_buf in;              /* bytes received and not yet framed */
};

typedef struct ctl_client {
    int fd;                 /* the connected socket, -1 once closed */
    sl_buf in;              /* bytes received and not yet framed */
} ctl_client;

/* ---- framing ------------------------------------------------------------------------ */

static void put_len(unsigned char *p, size_t n)
{
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

static size_t get_len(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    return ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
}

/* The length of the complete frame at the start of b, or 0 when there is none yet;
 * (size_t)-1 when the frame is too long to accept. */
static size_t frame_ready(const sl_buf *b)
{
    size_t n;

    if (b->len < 4)
        return 0;
    n = get_len(b->data);
    if (n > SL_CTL_MAX_FRAME)
        return (size_t)-1;
    return b->len >= 4 + n ? 4 + n : 0;
}

static void drop_front(sl_buf *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* ---- server: connections ------------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
    ctl_conn *c = h->data;

    sl_buf_free(&c->in);
    free(c);
}

/* Closes a connection: unlinks it from its server, tells Lua (on_close) when `notify`,
 * and lets go of the userdata. Idempotent. */
static void conn_close(lua_State *L, ctl_conn *c, int notify)
{
    ctl_server *s = c->server;

    if (c->closed)
        return;
    c->closed = 1;
    if (s != NULL) {
        ctl_conn **p = &s->conns;
        while (*p != NULL && *p != c)
            p = &(*p)->next;
        if (*p == c)
            *p = c->next;
    }
    if (L != NULL) {
        if (notify && s != NULL && s->on_close != LUA_NOREF) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_close);     /* fn */
            lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);     /* fn ud */
            if (lua_pcall(L, 1, 0, 0) != 0) {                   /* -- | err */
                fprintf(stderr, "sluice: control: %s\n", lua_tostring(L, -1));
                lua_pop(L, 1);                                  /* -- */
            }
        }
        *c->slot = NULL;
        luaL_unref(L, LUA_REGISTRYINDEX, c->self_ref);
    }
    c->self_ref = LUA_NOREF;
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    ctl_conn *c = h->data;

    (void)hint;
    sl_buf_reserve(&c->in, 64 * 1024);
    buf->base = c->in.data + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

/* Hands every complete frame to on_message(conn, body); stops when Lua closed the
 * connection from inside the callback. */
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    ctl_conn *c = stream->data;
    lua_State *L = sl_loop_lua();
    size_t n;

    (void)buf;
    if (nread < 0) {
        conn_close(L, c, 1);
        return;
    }
    c->in.len += (size_t)nread;
    while (!c->closed && (n = frame_ready(&c->in)) != 0) {
        if (n == (size_t)-1 || L == NULL || c->server == NULL) {
            conn_close(L, c, 1);
            return;
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->server->on_message);  /* fn */
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->self_ref);             /* fn ud */
        lua_pushlstring(L, c->in.data + 4, n - 4);                  /* fn ud body */
        drop_front(&c->in, n);
        if (lua_pcall(L, 2, 0, 0) != 0) {                           /* -- | err */
            fprintf(stderr, "sluice: control: %s\n", lua_tostring(L, -1));
            lua_pop(L, 1);                                          /* -- */
        }
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    ctl_server *s = server->data;
    lua_State *L = sl_loop_lua();
    ctl_conn *c, **ud;

    if (status < 0 || L == NULL || s->closed)
        return;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_pipe_init(sl_loop_get(), &c->pipe, 0);
    c->pipe.data = c;
    sl_buf_init(&c->in);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        c->closed = 1;
        uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
        return;
    }
    uv_unref((uv_handle_t *)&c->pipe);
    ud = lua_newuserdata(L, sizeof *ud);                /* ud */
    *ud = c;
    luaL_getmetatable(L, SL_CTL_CONN_MT);               /* ud mt */
    lua_setmetatable(L, -2);                            /* ud */
    c->slot = ud;
    c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);       /* -- */
    c->server = s;
    c->next = s->conns;
    s->conns = c;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void on_write(uv_write_t *req, int status)
{
    (void)status;                   /* a client that went away: its close follows */
    free(req->data);
    free(req);
}

/* conn:send(body) -> true | false (the connection is closed) */
static int conn_send(lua_State *L)
{
    ctl_conn *c = *(ctl_conn **)luaL_checkudata(L, 1, SL_CTL_CONN_MT);
    size_t len;
    const char *body = luaL_checklstring(L, 2, &len);
    uv_write_t *req;
    unsigned char *frame;
    uv_buf_t b;

    luaL_argcheck(L, len <= SL_CTL_MAX_FRAME, 2, "frame too long");
    if (c == NULL || c->closed) {
        lua_pushboolean(L, 0);
        return 1;
    }
    req = malloc(sizeof *req);
    frame = malloc(len + 4);
    if (req == NULL || frame == NULL) {
        free(req);
        free(frame);
        return luaL_error(L, "conn:send(): out of memory");
    }
    put_len(frame, len);
    memcpy(frame + 4, body, len);
    req->data = frame;
    b = uv_buf_init((char *)frame, (unsigned)(len + 4));
    if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, on_write) != 0) {
        free(frame);
        free(req);
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:close(): ends the connection without calling on_close. */
static int conn_close_lua(lua_State *L)
{
    ctl_conn *c = *(ctl_conn **)luaL_checkudata(L, 1, SL_CTL_CONN_MT);

    if (c != NULL)
        conn_close(L, c, 0);
    return 0;
}

static int conn_tostring(lua_State *L)
{
    ctl_conn *c = *(ctl_conn **)luaL_checkudata(L, 1, SL_CTL_CONN_MT);

    lua_pushfstring(L, "sluice.ctl_conn (%s)", c == NULL ? "closed" : "open");
    return 1;
}

/* ---- server: listening -------------------------------------------------------------- */

static void on_server_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Whether something accepts connections at path (a live server, not a stale socket). */
static int is_live(const char *path)
{
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Whether the directory path would be created in does not exist. */
static int parent_missing(const char *path)
{
    char dir[sizeof ((struct sockaddr_un *)0)->sun_path];
    char *slash;
    struct stat st;

    snprintf(dir, sizeof dir, "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        return 0;
    *slash = '\0';
    return dir[0] != '\0' && stat(dir, &st) != 0 && errno == ENOENT;
}

int sl_ctl_listen(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ctl_server *s, **ud;
    struct stat st;
    mode_t old_mask;
    int rc;

    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    if (strlen(path) >= sizeof ((struct sockaddr_un *)0)->sun_path)
        return luaL_error(L, "control %s: path too long for a Unix socket", path);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return luaL_error(L, "control %s: exists and is not a socket", path);
        if (is_live(path))
            return luaL_error(L, "control %s: another job is listening there", path);
        unlink(path);                                   /* a stale socket: a job that died */
    }
    ud = lua_newuserdata(L, sizeof *ud);                /* ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_CTL_SERVER_MT);
    lua_setmetatable(L, -2);
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return luaL_error(L, "control %s: out of memory", path);
    s->on_message = s->on_close = LUA_NOREF;
    uv_pipe_init(sl_loop_get(), &s->pipe, 0);
    s->pipe.data = s;
    *ud = s;
    /* The socket is born 0600: no moment when another user could connect. */
    old_mask = umask(0177);
    rc = uv_pipe_bind(&s->pipe, path);
    umask(old_mask);
    if (rc == 0 && chmod(path, 0600) != 0)
        rc = uv_translate_sys_error(errno);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->pipe, 16, on_connection);
    if (rc == UV_EACCES && parent_missing(path))
        rc = UV_ENOENT;                         /* libuv reports a missing directory so */
    if (rc != 0) {
        *ud = NULL;
        s->closed = 1;
        uv_close((uv_handle_t *)&s->pipe, on_server_closed);
        return luaL_error(L, "control %s: %s", path, uv_strerror(rc));
    }
    uv_unref((uv_handle_t *)&s->pipe);
    lua_pushvalue(L, 2);
    s->on_message = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 3);
    s->on_close = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;                                           /* ud */
}

/* server:close() and __gc: stops listening and closes every connection (without
 * on_close). The socket file is the caller's to remove. */
static int server_close(lua_State *L)
{
    ctl_server **ud = luaL_checkudata(L, 1, SL_CTL_SERVER_MT);
    ctl_server *s = *ud;

    if (s == NULL)
        return 0;
    *ud = NULL;
    s->closed = 1;
    while (s->conns != NULL)
        conn_close(L, s->conns, 0);
    luaL_unref(L, LUA_REGISTRYINDEX, s->on_message);
    luaL_unref(L, LUA_REGISTRYINDEX, s->on_close);
    s->on_message = s->on_close = LUA_NOREF;
    uv_close((uv_handle_t *)&s->pipe, on_server_closed);
    return 0;
}

/* ---- the blocking client ------------------------------------------------------------ */

int sl_ctl_connect(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct sockaddr_un a;
    ctl_client *c;
    int fd;

    if (strlen(path) >= sizeof a.sun_path) {
        lua_pushnil(L);
        lua_pushfstring(L, "connect %s: path too long for a Unix socket", path);
        return 2;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return luaL_error(L, "socket: %s", strerror(errno));
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "connect %s: %s", path, strerror(e));
        return 2;
    }
    c = lua_newuserdata(L, sizeof *c);                  /* c */
    c->fd = fd;
    sl_buf_init(&c->in);
    luaL_getmetatable(L, SL_CTL_CLIENT_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static ctl_client *check_client(lua_State *L)
{
    ctl_client *c = luaL_checkudata(L, 1, SL_CTL_CLIENT_MT);

    if (c->fd < 0)
        luaL_error(L, "the control connection is closed");
    return c;
}

/* client:send(body) -> true | nil, message */
static int client_send(lua_State *L)
{
    ctl_client *c = check_client(L);
    size_t len, off = 0;
    const char *body = luaL_checklstring(L, 2, &len);
    unsigned char head[4];

    luaL_argcheck(L, len <= SL_CTL_MAX_FRAME, 2, "frame too long");
    put_len(head, len);
    while (off < len + 4) {
        const char *p = off < 4 ? (const char *)head + off : body + (off - 4);
        size_t n = off < 4 ? 4 - off : len - (off - 4);
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "control: %s", strerror(errno));
            return 2;
        }
        off += (size_t)w;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* client:recv([timeout_ms]) -> body | nil, "closed" | nil, "timeout": waits for one
 * frame (for ever without a timeout). */
static int client_recv(lua_State *L)
{
    ctl_client *c = check_client(L);
    int timeout = (int)luaL_optinteger(L, 2, -1);
    size_t n;

    while ((n = frame_ready(&c->in)) == 0) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        ssize_t r;
        int ready = poll(&p, 1, timeout);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "timeout");
            return 2;
        }
        sl_buf_reserve(&c->in, 64 * 1024);
        r = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "closed");
            return 2;
        }
        c->in.len += (size_t)r;
    }
    if (n == (size_t)-1) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    lua_pushlstring(L, c->in.data + 4, n - 4);          /* body */
    drop_front(&c->in, n);
    return 1;
}

/* client:close() and __gc. Idempotent. */
static int client_close(lua_State *L)
{
    ctl_client *c = luaL_checkudata(L, 1, SL_CTL_CLIENT_MT);

    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
        sl_buf_free(&c->in);
    }
    return 0;
}

/* ---- the socket's directory --------------------------------------------------------- */

int sl_ctl_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;

    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        goto fail;
    if (lstat(path, &st) != 0)
        goto fail;
    if (!S_ISDIR(st.st_mode)) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s is not a directory", path);
        return 2;
    }
    /* Another user's directory (made before this user's first job, as anyone may in
     * /tmp) could hold a socket that impersonates a job: it is never used. */
    if (st.st_uid != geteuid()) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s belongs to another user (uid %d, not %d)", path,
                        (int)st.st_uid, (int)geteuid());
        return 2;
    }
    if ((st.st_mode & 077) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s is open to other users (mode %o; it must be 700)", path,
                        (int)(st.st_mode & 0777));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
fail:
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
}

int sl_ctl_sockets(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    lua_newtable(L);                                    /* names */
    if (d == NULL)
        return 1;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".sock") == 0) {
            lua_pushstring(L, e->d_name);
            lua_rawseti(L, -2, ++n);
        }
    }
    closedir(d);
    return 1;
}

/* ---- registration ------------------------------------------------------------------- */

void sl_ctl_register(lua_State *L)
{
    static const luaL_Reg server_methods[] = {{"close", server_close}, {NULL, NULL}};
    static const luaL_Reg conn_methods[] = {
        {"send", conn_send}, {"close", conn_close_lua}, {NULL, NULL}};
    static const luaL_Reg client_methods[] = {
        {"send", client_send}, {"recv", client_recv}, {"close", client_close}, {NULL, NULL}};

    sl_vm_class(L, SL_CTL_SERVER_MT, server_methods, server_close, NULL);
    sl_vm_class(L, SL_CTL_CONN_MT, conn_methods, NULL, conn_tostring);
    sl_vm_class(L, SL_CTL_CLIENT_MT, client_methods, client_close, NULL);
}
