/* child.c -- core.child: a forked copy of the job that writes a checkpoint while the job
 * runs on, as Redis's BGSAVE does. The child sees the state as it was at fork() without
 * the parent copying it (the kernel copies pages only when the parent changes them).
 *
 * The child shares the parent's descriptors, its libuv loop among them, so it must never
 * call into libuv: fork() stops the child's garbage collector (a __gc that closes a libuv
 * handle would change the parent's epoll set), and the child ends with child.exit(),
 * which skips atexit handlers and stdio buffers. It dies with its parent.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <lauxlib.h>

#include "child.h"
#include "memory.h"

/* child.fork() -> pid in the parent, 0 in the child | nil, msg */
static int child_fork(lua_State *L)
{
    pid_t parent = getpid(), pid = fork();

    if (pid < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "fork: %s", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        lua_gc(L, LUA_GCSTOP, 0);
        /* a checkpoint finished after its job was killed would race the restarted job */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        sl_memory_forked();
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
    }
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

/* child.wait(pid [, block]) -> nil while it runs (block=false) | its exit status, or
 * 128 + the signal that ended it */
static int child_wait(lua_State *L)
{
    pid_t pid = (pid_t)luaL_checkinteger(L, 1);
    int block = lua_toboolean(L, 2), status = 0;
    pid_t got;

    do
        got = waitpid(pid, &status, block ? 0 : WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == 0)
        return 0;
    if (got < 0)
        return luaL_error(L, "child.wait(%d): %s", (int)pid, strerror(errno));
    lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 1;
}

/* child.exit(status): ends the child at once (_exit) */
static int child_exit(lua_State *L)
{
    _exit((int)luaL_optinteger(L, 1, 0));
    return 0;
}

void sl_child_push(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"fork", child_fork},
        {"wait", child_wait},
        {"exit", child_exit},
        {NULL, NULL}
    };

    lua_createtable(L, 0, 3);                           /* child */
    luaL_setfuncs(L, functions, 0);
}
