/* check.h -- what the C test programs (codec_test.c, typed_test.c,
 * typed_csv_mpack_test.c) share: CHECK, which counts and reports a failed check without
 * stopping, groups of checks run and counted as the tests of the summary line that
 * tests/run.sh reads, and the helpers they feed inputs with. */
#ifndef CHECK_H
#define CHECK_H

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define CHECK(cond, ...) do {                                                   \
        checks++;                                                               \
        if (!(cond)) {                                                          \
            failures++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* A group of checks: one test in the summary, failed if any check in it fails. */
typedef struct check_group {
    const char *name;
    void (*fn)(void);
} check_group;

/* Runs groups[0, n), printing "<what> <name> ok|FAILED" for each (the name padded to
 * width), and adds them to *passed and *failed. */
static inline void run_groups(const char *what, int width, const check_group *groups,
                              size_t n, int *passed, int *failed)
{
    for (size_t g = 0; g < n; g++) {
        int before = failures;
        groups[g].fn();
        int ok = failures == before;
        printf("%s %-*s %s\n", what, width, groups[g].name, ok ? "ok" : "FAILED");
        if (ok)
            (*passed)++;
        else
            (*failed)++;
    }
}

/* Prints the summary line and returns the program's exit status. */
static inline int check_summary(int passed, int failed)
{
    printf("(%d checks)\n%d passed, %d failed\n", checks, passed, failed);
    return failures ? 1 : 0;
}

/* An exact-size heap copy, so reading s[len] is an ASan error. */
static inline char *dup_exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    memcpy(p, s, len);
    return p;
}

/* Runs a Lua chunk that returns one value and leaves it on the stack. */
static inline void eval(lua_State *L, const char *code)
{
    if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
        exit(2);
    }
}

#endif
