/* redis_reply.c -- hiredis reply objects from an arena, instead of a malloc per element.
 *
 * An XREADGROUP reply of 1024 entries of 4 fields is about 11,000 redisReply objects and
 * as many strings; hiredis's default functions allocate and free each one, which was a
 * third of the source's time. A connection's reader gets these functions instead: every
 * object of a reply, its strings and its element arrays are carved from the connection's
 * arena, and freeing the root (hiredis frees only roots: after the reply's callback, or
 * when the reader fails or is freed) empties the arena at once. The reader builds one
 * reply at a time and the previous one is freed before the next is begun, so the arena
 * never holds objects of two replies. Each object is preceded by a pointer to its arena,
 * which is how freeObject finds it.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

#define BLOCK_MIN (256 * 1024)  /* bytes of an arena block, unless one object needs more */

typedef struct block {
    struct block *next;
    size_t size, used;
    max_align_t data[];
} block;

struct sl_redis_arena {
    block *first;               /* blocks, kept for the next reply */
    block *cur;                 /* the block being carved */
};

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: redis: out of memory\n");
    abort();
}

static void *carve(sl_redis_arena *a, size_t n)
{
    block *b = a->cur;

    n = (n + 15) & ~(size_t)15;
    while (b != NULL && b->size - b->used < n) {
        b = b->next;
        if (b != NULL)
            b->used = 0;
    }
    if (b == NULL) {
        size_t size = n > BLOCK_MIN ? n : BLOCK_MIN;
        b = malloc(sizeof *b + size);
        if (b == NULL)
            out_of_memory();
        b->size = size;
        b->used = 0;
        b->next = NULL;
        if (a->cur != NULL) {
            b->next = a->cur->next;
            a->cur->next = b;
        } else {
            a->first = b;
        }
    }
    a->cur = b;
    b->used += n;
    return (char *)b->data + b->used - n;
}

/* A reply object of `type`, hung on its parent's element array; its arena comes from the
 * parent, or for a root from the reader's privdata. */
static redisReply *new_object(const redisReadTask *task, int type)
{
    sl_redis_arena *a;
    sl_redis_arena **head;
    redisReply *r;

    if (task->parent != NULL)
        a = ((sl_redis_arena **)task->parent->obj)[-2];
    else
        a = task->privdata;
    head = carve(a, 16 + sizeof *r);
    head[0] = a;
    r = (redisReply *)((char *)head + 16);
    memset(r, 0, sizeof *r);
    r->type = type;
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = new_object(task, task->type);
    char *s = carve(((sl_redis_arena **)r)[-2], len + 1);

    memcpy(s, str, len);
    s[len] = '\0';
    r->str = s;
    r->len = len;
    return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
    redisReply *r = new_object(task, REDIS_REPLY_ARRAY);

    r->elements = (size_t)elements;
    if (elements > 0) {
        r->element = carve(((sl_redis_arena **)r)[-2], (size_t)elements * sizeof *r->element);
        memset(r->element, 0, (size_t)elements * sizeof *r->element);
    }
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = new_object(task, REDIS_REPLY_INTEGER);
    r->integer = value;
    return r;
}

static void *create_nil(const redisReadTask *task)
{
    return new_object(task, REDIS_REPLY_NIL);
}

/* Frees a root: the whole arena is empty again (its blocks are kept). */
static void free_object(void *reply)
{
    sl_redis_arena *a = ((sl_redis_arena **)reply)[-2];
    a->cur = a->first;
    if (a->cur != NULL)
        a->cur->used = 0;
}

static redisReplyObjectFunctions functions = {
    create_string, create_array, create_integer, create_nil, free_object,
};

sl_redis_arena *sl_redis_arena_new(void)
{
    sl_redis_arena *a = calloc(1, sizeof *a);
    if (a == NULL)
        out_of_memory();
    return a;
}

void sl_redis_arena_use(sl_redis_arena *a, redisAsyncContext *ac)
{
    ac->c.reader->fn = &functions;
    ac->c.reader->privdata = a;
}

void sl_redis_arena_free(sl_redis_arena *a)
{
    block *b = a->first;
    while (b != NULL) {
        block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}
