/* durable.c -- core.durable: the system calls that make a checkpoint survive a crash
 * (write a temporary file, fsync, rename, fsync the directory), fsync and truncation of
 * the file sinks it commits, a lock on the state directory and a CRC-32 for torn files.
 *
 * Everything here is synchronous POSIX I/O and never touches the event loop, so a forked
 * child (core.child, in child.c) may call it while the parent's loop runs on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <lauxlib.h>

#include "buf.h"
#include "codec.h"
#include "durable.h"

/* ---- C functions -------------------------------------------------------------------- */

static int fail(char *err, const char *what, const char *path)
{
    snprintf(err, SL_DURABLE_ERRLEN, "%s %.400s: %s", what, path, strerror(errno));
    return -1;
}

/* Writes all of data to fd, looping on short writes and EINTR. */
static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsyncs the directory that holds path, so a rename or create in it is durable. */
static int sync_parent(const char *path, char *err)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd, rc;

    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return fail(err, "open directory", dir);
    rc = fsync(fd);
    if (rc != 0)
        fail(err, "fsync directory", dir);
    close(fd);
    return rc == 0 ? 0 : -1;
}

int sl_durable_replace(const char *path, const char *data, size_t len, char *err)
{
    char tmp[4096];
    int fd;

    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(err, SL_DURABLE_ERRLEN, "write %s: path too long", path);
        return -1;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return fail(err, "open", tmp);
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        fail(err, "write", tmp);
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        fail(err, "close", tmp);
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        fail(err, "rename to", path);
        unlink(tmp);
        return -1;
    }
    return sync_parent(path, err);
}

int sl_durable_sync(const char *path, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0)
        return fail(err, "open", path);
    rc = fsync(fd);
    if (rc != 0)
        fail(err, "fsync", path);
    close(fd);
    return rc == 0 ? 0 : -1;
}

uint32_t sl_durable_crc32(uint32_t crc, const void *data, size_t len)
{
    static uint32_t table[256];
    static int ready;
    const unsigned char *p = data;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    while (len-- > 0)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- Lua functions: core.durable.* --------------------------------------------------- */

/* Returns nil, err to Lua. */
static int push_fail(lua_State *L, const char *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

static int push_errno(lua_State *L, const char *what, const char *path)
{
    char err[SL_DURABLE_ERRLEN];

    fail(err, what, path);
    return push_fail(L, err);
}

/* durable.replace(path, data) -> true | nil, msg */
static int durable_replace(lua_State *L)
{
    char err[SL_DURABLE_ERRLEN];
    size_t len;
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);

    if (sl_durable_replace(path, data, len, err) != 0)
        return push_fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* durable.sync(path) -> true | nil, msg */
static int durable_sync(lua_State *L)
{
    char err[SL_DURABLE_ERRLEN];

    if (sl_durable_sync(luaL_checkstring(L, 1), err) != 0)
        return push_fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* durable.stat(path) -> {size=, ino=, dev=, regular=} | nil, msg */
static int durable_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;

    if (stat(path, &st) != 0)
        return push_errno(L, "stat", path);
    lua_createtable(L, 0, 4);                           /* t */
    lua_pushnumber(L, (lua_Number)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, (lua_Number)st.st_ino);
    lua_setfield(L, -2, "ino");
    lua_pushnumber(L, (lua_Number)st.st_dev);
    lua_setfield(L, -2, "dev");
    lua_pushboolean(L, S_ISREG(st.st_mode));
    lua_setfield(L, -2, "regular");                     /* t */
    return 1;
}

/* durable.list(dir) -> array of the names in dir (no "." or "..") | nil, msg */
static int durable_list(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return push_errno(L, "open directory", path);
    lua_newtable(L);                                    /* names */
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        lua_pushstring(L, e->d_name);                   /* names name */
        lua_rawseti(L, -2, ++n);                        /* names */
    }
    closedir(d);
    return 1;
}

/* durable.remove(path) -> true | nil, msg (a missing file is no error) */
static int durable_remove(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);

    if (unlink(path) != 0 && errno != ENOENT)
        return push_errno(L, "remove", path);
    lua_pushboolean(L, 1);
    return 1;
}

/* durable.mkdir(path) -> true | nil, msg: makes path and its missing parents (0755). */
static int durable_mkdir(lua_State *L)
{
    char buf[4096];
    const char *path = luaL_checkstring(L, 1);
    struct stat st;

    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return push_fail(L, "mkdir: path too long");
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return push_errno(L, "mkdir", buf);
            *p = c;
            if (c == '\0')
                break;
        }
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return push_errno(L, "mkdir", path);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* durable.lock(path) -> true | nil, msg | false (another process holds it): an exclusive
 * flock on path (created if missing), held until this process ends. A forked child
 * shares the lock, so a checkpoint still being written keeps a restarted job waiting. */
static int durable_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

    if (fd < 0)
        return push_errno(L, "open", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        if (busy) {
            close(fd);
            lua_pushboolean(L, 0);
            return 1;
        }
        push_errno(L, "lock", path);
        close(fd);
        return 2;
    }
    lua_pushboolean(L, 1);          /* fd stays open: the lock lives as long as we do */
    return 1;
}

/* durable.encode(v) -> s: msgpack of state (infinities allowed), for a checkpoint */
static int durable_encode(lua_State *L)
{
    char err[SL_CODEC_ERRLEN];
    sl_buf b;

    luaL_checkany(L, 1);
    sl_buf_init(&b);
    if (sl_mpack_encode_state(L, 1, &b, err) != SL_CODEC_OK) {
        sl_buf_free(&b);
        return luaL_error(L, "%s", err);
    }
    lua_pushlstring(L, b.len > 0 ? b.data : "", b.len);    /* s */
    sl_buf_free(&b);
    return 1;
}

/* durable.crc32(s) -> number */
/* durable.hash(s) -> a 52-bit hash of s (FNV-1a, 64 bits, the top 52 kept: a Lua number
 * holds them exactly): what --group's changelog remembers of each key's last write, to
 * know whether it changed, in 8 bytes instead of the encoding itself. */
static int durable_hash(lua_State *L)
{
    size_t len;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    lua_pushnumber(L, (lua_Number)(h >> 12));
    return 1;
}

static int durable_crc32(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);

    lua_pushnumber(L, (lua_Number)sl_durable_crc32(0, s, len));
    return 1;
}

void sl_durable_push(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"replace", durable_replace},
        {"sync", durable_sync},
        {"stat", durable_stat},
        {"list", durable_list},
        {"remove", durable_remove},
        {"mkdir", durable_mkdir},
        {"lock", durable_lock},
        {"crc32", durable_crc32},
        {"hash", durable_hash},
        {"encode", durable_encode},
        {NULL, NULL}
    };

    lua_createtable(L, 0, 8);                           /* durable */
    luaL_setfuncs(L, functions, 0);
}
