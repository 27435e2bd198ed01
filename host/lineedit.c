/* lineedit.c -- the terminal, for people: GNU readline, the terminal's width, raw keys.
 *
 * Readline is used only when fd 0 is a terminal (the REPL reads pipes with io.read). Tab
 * completion calls back into Lua: the completer is a registry ref, called on the thread
 * that is inside core.readline(), with errors swallowed (a broken completer offers
 * nothing). Ctrl-C at the prompt abandons the line instead of ending the process.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <lauxlib.h>
#include <readline/readline.h>
#include <readline/history.h>

#include "lineedit.h"

static lua_State *read_L;                       /* the thread inside core.readline() */
static int completer_ref = LUA_NOREF;           /* registry ref of the Lua completer */
static volatile sig_atomic_t interrupted;       /* SIGINT arrived during core.readline() */
static int line_cancelled;                      /* getc ended the line for a Ctrl-C */
static int initialised;

/* ---- readline ----------------------------------------------------------------------- */

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Reads one byte for readline. A Ctrl-C, whenever it comes while a line is being typed,
 * ends the line emptied (readline's own getc would retry the interrupted read): SIGINT is
 * blocked except inside ppoll, so it is either seen before the wait or ends the wait. */
static int getc_interruptible(FILE *f)
{
    struct pollfd p = { .fd = fileno(f), .events = POLLIN };
    sigset_t block, orig;
    unsigned char c;
    ssize_t n;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);
    for (;;) {
        if (interrupted) {
            sigprocmask(SIG_SETMASK, &orig, NULL);
            line_cancelled = 1;
            rl_replace_line("", 0);
            return '\n';
        }
        if (ppoll(&p, 1, NULL, &orig) >= 0)
            break;
        if (errno != EINTR) {
            sigprocmask(SIG_SETMASK, &orig, NULL);
            return EOF;
        }
    }
    sigprocmask(SIG_SETMASK, &orig, NULL);
    do
        n = read(p.fd, &c, 1);
    while (n < 0 && errno == EINTR);
    return n == 1 ? c : EOF;
}

/* The longest common prefix of words[1..n], malloc'd: what Tab inserts at once. */
static char *common_prefix(char **words, int n)
{
    size_t len = strlen(words[1]);
    char *out;
    int i;

    for (i = 2; i <= n; i++) {
        size_t k = 0;
        while (k < len && words[i][k] == words[1][k])
            k++;
        len = k;
    }
    out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, words[1], len);
        out[len] = '\0';
    }
    return out;
}

/* Readline's completion hook: the Lua completer's words, as readline wants them
 * (matches[0] the replacement, then every candidate, NULL-terminated, all malloc'd). */
static char **complete(const char *text, int start, int end)
{
    lua_State *L = read_L;
    char **matches = NULL;
    int n, i, top;

    (void)start;
    (void)end;
    rl_attempted_completion_over = 1;           /* never fall back to file names */
    rl_completion_append_character = '\0';     /* reset to ' ' before every attempt */
    if (L == NULL || completer_ref == LUA_NOREF)
        return NULL;
    top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);   /* fn */
    lua_pushstring(L, text);                            /* fn word */
    lua_pushstring(L, rl_line_buffer);                  /* fn word line */
    if (lua_pcall(L, 2, 1, 0) != 0 || !lua_istable(L, -1))   /* words | err */
        goto done;
    n = (int)lua_objlen(L, -1);
    if (n == 0)
        goto done;
    matches = calloc((size_t)n + 2, sizeof *matches);
    if (matches == NULL)
        goto done;
    for (i = 1; i <= n; i++) {
        const char *w;
        lua_rawgeti(L, -1, i);                          /* words w */
        w = lua_tostring(L, -1);
        matches[i] = strdup(w != NULL ? w : "");
        lua_pop(L, 1);                                  /* words */
    }
    if (n == 1) {
        matches[0] = matches[1];
        matches[1] = NULL;
    } else {
        matches[0] = common_prefix(matches, n);
    }
done:
    lua_settop(L, top);                                 /* -- */
    return matches;
}

static void init_readline(void)
{
    if (initialised)
        return;
    initialised = 1;
    rl_readline_name = "sluice";
    rl_getc_function = getc_interruptible;
    rl_catch_signals = 0;
    rl_attempted_completion_function = complete;
    /* "sl.source.fi" and "s:ma" are one word each: '.' and ':' do not break words. */
    rl_basic_word_break_characters = " \t\n\"'`><=;|&{(,)}[]+-*/%^~#";
    rl_completer_word_break_characters = rl_basic_word_break_characters;
    rl_completion_append_character = '\0';
    /* A chunk of several lines is one entry, in the file too: each entry starts with a
     * "#<time>" line, and the lines up to the next one belong to it. */
    history_comment_char = '#';
    history_write_timestamps = 1;
    history_multiline_entries = 1;
    using_history();
}

int sl_lineedit_read(lua_State *L)
{
    const char *prompt = luaL_optstring(L, 1, "");
    struct sigaction sa, old;
    char *line;

    init_readline();
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;                  /* no SA_RESTART: the read must end */
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    line_cancelled = 0;
    sigaction(SIGINT, &sa, &old);
    read_L = L;
    line = readline(prompt);
    read_L = NULL;
    sigaction(SIGINT, &old, NULL);
    interrupted = 0;                /* spent on the line, or came after Enter: dropped */
    if (line_cancelled) {
        free(line);
        lua_pushboolean(L, 0);                          /* false */
        return 1;
    }
    if (line == NULL) {
        lua_pushnil(L);                                 /* nil */
        return 1;
    }
    lua_pushstring(L, line);                            /* line */
    free(line);
    return 1;
}

int sl_lineedit_history_add(lua_State *L)
{
    const char *line = luaL_checkstring(L, 1);

    init_readline();
    if (line[0] != '\0')
        add_history(line);
    return 0;
}

/* core.history_load(path): a missing file is an empty history, not an error. */
int sl_lineedit_history_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);

    init_readline();
    read_history(path);
    return 0;
}

/* core.history_save(path, max) -> true | nil, message: writes the session's history and
 * keeps the last max entries of the file. */
int sl_lineedit_history_save(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int max = (int)luaL_optinteger(L, 2, 1000);
    int rc;

    init_readline();
    rc = write_history(path);
    if (rc == 0)
        rc = history_truncate_file(path, max);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "history %s: %s", path, strerror(rc));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int sl_lineedit_completer(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TFUNCTION);
    luaL_unref(L, LUA_REGISTRYINDEX, completer_ref);
    completer_ref = LUA_NOREF;
    if (!lua_isnoneornil(L, 1)) {
        lua_pushvalue(L, 1);                            /* fn */
        completer_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* -- */
    }
    return 0;
}

/* core.interrupts(on [, on_interrupt]): while on, Ctrl-C (SIGINT) sets a flag that
 * core.interrupted() reads, and interrupts blocking calls (poll returns EINTR). With
 * on_interrupt, it also stops the Lua code running, as the standalone lua does: a hook is
 * set from the signal handler (lua_sethook is safe there), and at the next instruction it
 * calls on_interrupt(), which returns true when it has dealt with it (a job asked to
 * stop), else the hook raises "interrupted". Each Ctrl-C sets the hook again; none ends
 * the process (the REPL quits on Ctrl-D). LuaJIT runs no hook inside compiled code, so
 * the REPL runs the chunks typed at it with the JIT off for them (repl.lua). */
static struct sigaction saved_sigint;
static int catching;
static lua_State *hook_L;                       /* the state to stop, in hook mode */
static int on_interrupt_ref = LUA_NOREF;

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    if (on_interrupt_ref != LUA_NOREF) {
        int handled;
        lua_rawgeti(L, LUA_REGISTRYINDEX, on_interrupt_ref);    /* fn */
        handled = lua_pcall(L, 0, 1, 0) == 0 && lua_toboolean(L, -1);  /* ok | err */
        lua_pop(L, 1);                                          /* -- */
        if (handled)
            return;
    }
    luaL_error(L, "interrupted");
}

static void on_sigint_hook(int sig)
{
    (void)sig;
    interrupted = 1;
    lua_sethook(hook_L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

int sl_lineedit_interrupts(lua_State *L)
{
    int on = lua_toboolean(L, 1);
    struct sigaction sa;

    if (catching) {
        sigaction(SIGINT, &saved_sigint, NULL);
        catching = 0;
        if (hook_L != NULL)
            lua_sethook(hook_L, NULL, 0, 0);
        hook_L = NULL;
        luaL_unref(L, LUA_REGISTRYINDEX, on_interrupt_ref);
        on_interrupt_ref = LUA_NOREF;
    }
    if (on) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        if (lua_isfunction(L, 2)) {
            lua_pushvalue(L, 2);                                /* fn */
            on_interrupt_ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* -- */
            hook_L = L;
            sa.sa_handler = on_sigint_hook;
        }
        sigemptyset(&sa.sa_mask);
        interrupted = 0;
        sigaction(SIGINT, &sa, &saved_sigint);
        catching = 1;
    }
    return 0;
}

/* core.interrupted() -> boolean: whether Ctrl-C came since the last call. */
int sl_lineedit_interrupted(lua_State *L)
{
    lua_pushboolean(L, interrupted != 0);
    interrupted = 0;
    return 1;
}

/* ---- the terminal ------------------------------------------------------------------- */

int sl_term_width(lua_State *L)
{
    int fd = (int)luaL_optinteger(L, 1, 1);
    struct winsize ws;

    if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, ws.ws_col);
    return 1;
}

static struct termios saved_termios;
static int raw_on;

int sl_term_raw(lua_State *L)
{
    int on = lua_toboolean(L, 1);
    struct termios t;

    if (on && !raw_on) {
        if (tcgetattr(0, &saved_termios) != 0)
            goto fail;
        t = saved_termios;
        /* Keys arrive one at a time and unechoed; Ctrl-C arrives as byte 3, so the
         * caller can restore the terminal before it exits. */
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(0, TCSANOW, &t) != 0)
            goto fail;
        raw_on = 1;
    } else if (!on && raw_on) {
        if (tcsetattr(0, TCSANOW, &saved_termios) != 0)
            goto fail;
        raw_on = 0;
    }
    lua_pushboolean(L, 1);
    return 1;
fail:
    lua_pushnil(L);
    lua_pushfstring(L, "terminal: %s", strerror(errno));
    return 2;
}

int sl_term_read_key(lua_State *L)
{
    int timeout = (int)luaL_optinteger(L, 1, 0);
    struct pollfd p = { .fd = 0, .events = POLLIN };
    char buf[32];
    ssize_t n;

    if (poll(&p, 1, timeout) <= 0) {
        lua_pushnil(L);
        return 1;
    }
    n = read(0, buf, sizeof buf);
    lua_pushlstring(L, buf, n > 0 ? (size_t)n : 0);     /* "" at end of input */
    return 1;
}
