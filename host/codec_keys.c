/* codec_keys.c -- the order of an object's keys, kept from decoding to encoding.
 *
 * A Lua table has no order, and LuaJIT's iteration order changes from run to run (its
 * string hashes are seeded per state), so without help the same input would come out
 * with its keys in another order on every run. So the decoders give every object they
 * build a *shape*, a metatable that holds the object's keys in the order the input had
 * them, and the encoders write an object's keys in that order, then any other keys
 * sorted (numbers ascending, then strings bytewise); a table built in Lua has no shape,
 * so its keys all come sorted.
 *
 * Decoding. Shapes are interned per Lua state in a trie of key sequences: a node is one
 * key after its parent's sequence and holds the metatable of the objects whose keys are
 * exactly root..node. A stream of records of one shape shares one metatable, and each key
 * of a record costs one comparison with the key the last record had there. The trie is
 * bounded: past SHAPE_MAX_NODES nodes it starts afresh at the next record (metatables
 * given out stay valid: they are plain tables).
 *
 * A shape metatable mt holds mt[1..n], the keys in order, and mt[0], a userdata (struct
 * shape_info) that finds a key's place from its interned string's address. It has no
 * string keys, so no record key can ever act as a metamethod.
 *
 * Encoding. An encoder walks a table with lua_next as it comes, and sl_object keeps each
 * entry's key (and its place in the shape) in C and its value on the Lua stack; then it
 * puts the entries in order, and the encoder writes them. So the table is visited once
 * through the Lua API, as before there was any order.
 */
#include "codec.h"
#include "codec_shared.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE_MAX_NODES 65536       /* trie nodes past which the cache starts afresh */
#define SHAPE_MAGIC UINT64_C(0x736c756963655368)   /* marks a shape_info userdata */

static const char cache_key;        /* its address is the registry key of the cache */

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: codec: out of memory\n");
    abort();
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        out_of_memory();
    return p;
}

/* ---- a shape's own index (struct shape_info, codec_shared.h) ---------------------------- */

/* The shape_info of the table at idx, or NULL when it has no shape. Stack unchanged. */
static const shape_info *shape_of(lua_State *L, int idx)
{
    const shape_info *si = NULL;
    if (lua_getmetatable(L, idx)) {                     /* mt */
        lua_rawgeti(L, -1, 0);                          /* mt info? */
        /* a full userdata big enough (a light one has no size, anything else no
         * address) that starts with the mark */
        const shape_info *p = lua_touserdata(L, -1);
        if (p != NULL && lua_objlen(L, -1) >= sizeof *p && p->magic == SHAPE_MAGIC)
            si = p;
        lua_pop(L, 2);                                  /* -- */
    }
    return si;      /* lives as long as the table keeps its metatable */
}

int sl_shaped(lua_State *L, int idx)
{
    return shape_of(L, idx) != NULL;
}

/* ---- the shape cache of a Lua state ----------------------------------------------------- */

static unsigned bytes_hash(const char *s, size_t len, int parent)
{
    uint32_t h = 2166136261u ^ (uint32_t)parent * 16777619u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* The cache last found, by the address of its state's registry (shared by all the
 * state's threads), so that most calls make one Lua API call; its __gc forgets it before
 * the state's memory can be reused. Thread-local, as each thread runs its own states. */
static _Thread_local const void *last_registry;
static _Thread_local sl_shapes *last_shapes;

/* Makes the slot table hold nslots slots (a power of two) and enters every node again. */
static void rehash(sl_shapes *sh, size_t nslots)
{
    free(sh->slots);
    sh->slots = calloc(nslots, sizeof *sh->slots);
    if (sh->slots == NULL)
        out_of_memory();
    sh->mask = nslots - 1;
    for (int id = 1; id < sh->n; id++) {
        const shape_node *nd = &sh->nodes[id];
        size_t i = bytes_hash(nd->key, nd->len, nd->parent) & sh->mask;
        while (sh->slots[i] != 0)
            i = (i + 1) & sh->mask;
        sh->slots[i] = id;
    }
}

/* Forgets every shape (the metatables given out stay as they are) and the csv names. */
static void reset(lua_State *L, sl_shapes *sh)
{
    for (int id = 1; id < sh->n; id++) {
        luaL_unref(L, LUA_REGISTRYINDEX, sh->nodes[id].key_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, sh->nodes[id].meta_ref);
    }
    luaL_unref(L, LUA_REGISTRYINDEX, sh->names_ref);
    sh->names_ref = LUA_NOREF;
    sh->names = NULL;
    sh->n = 1;
    sh->nodes[0].last = 0;
    memset(sh->slots, 0, (sh->mask + 1) * sizeof *sh->slots);
}

static int shapes_gc(lua_State *L)
{
    sl_shapes *sh = lua_touserdata(L, 1);
    if (last_shapes == sh) {
        last_shapes = NULL;
        last_registry = NULL;
    }
    free(sh->nodes);
    free(sh->slots);
    sh->nodes = NULL;
    sh->slots = NULL;
    return 0;
}

sl_shapes *sl_shapes_get(lua_State *L)
{
    const void *registry = lua_topointer(L, LUA_REGISTRYINDEX);
    sl_shapes *sh = registry == last_registry ? last_shapes : NULL;
    if (sh == NULL) {
        lua_pushlightuserdata(L, (void *)&cache_key);   /* key */
        lua_rawget(L, LUA_REGISTRYINDEX);               /* ud|nil */
        sh = lua_touserdata(L, -1);
        lua_pop(L, 1);                                  /* -- */
    }
    if (sh != NULL) {
        if (sh->n > SHAPE_MAX_NODES)
            reset(L, sh);
        last_registry = registry;
        last_shapes = sh;
        return sh;
    }
    lua_pushlightuserdata(L, (void *)&cache_key);       /* key */
    sh = lua_newuserdata(L, sizeof *sh);                /* key ud */
    memset(sh, 0, sizeof *sh);
    if (luaL_newmetatable(L, "sluice.shapes")) {        /* key ud mt */
        lua_pushcfunction(L, shapes_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);                            /* key ud */
    lua_rawset(L, LUA_REGISTRYINDEX);                   /* -- */
    sh->cap = 64;
    sh->nodes = xrealloc(NULL, (size_t)sh->cap * sizeof *sh->nodes);
    sh->nodes[0] = (shape_node){ NULL, 0, -1, 0, LUA_NOREF, LUA_NOREF, 0 };
    sh->n = 1;
    sh->names_ref = LUA_NOREF;
    rehash(sh, 256);
    return sh;
}

int sl_shape_step_slow(lua_State *L, sl_shapes *sh, int node, const char *key, size_t len,
                       int kidx)
{
    size_t i = bytes_hash(key, len, node) & sh->mask;
    for (int id; (id = sh->slots[i]) != 0; i = (i + 1) & sh->mask) {
        const shape_node *nd = &sh->nodes[id];
        if (nd->parent == node && nd->len == len && same_bytes(nd->key, key, len)) {
            sh->nodes[node].last = id;
            return id;
        }
    }
    /* A new sequence: a node that anchors its key string and points at its bytes. */
    if (lua_type(L, kidx) != LUA_TSTRING)
        return -1;
    if (sh->n == sh->cap) {
        sh->cap *= 2;
        sh->nodes = xrealloc(sh->nodes, (size_t)sh->cap * sizeof *sh->nodes);
    }
    if ((size_t)(sh->n + 1) * 2 > sh->mask + 1) {
        rehash(sh, (sh->mask + 1) * 2);
        i = bytes_hash(key, len, node) & sh->mask;
        while (sh->slots[i] != 0)
            i = (i + 1) & sh->mask;
    }
    int id = sh->n++;
    const char *anchored = lua_tostring(L, kidx);
    lua_pushvalue(L, kidx);                             /* key */
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);           /* -- */
    sh->nodes[id] = (shape_node){ anchored, len, node, sh->nodes[node].depth + 1, ref,
                                  LUA_NOREF, 0 };
    sh->slots[i] = id;
    sh->nodes[node].last = id;
    return id;
}

/* Makes the metatable of the sequence root..node: its keys in order, each once (a key
 * repeated in the input keeps its first place; its last value is the one kept), and its
 * shape_info. Stack unchanged. */
static void make_meta(lua_State *L, sl_shapes *sh, int node)
{
    int depth = sh->nodes[node].depth, n = 0;
    int small[32], *chain = depth <= 32 ? small : xrealloc(NULL, (size_t)depth * sizeof *chain);
    for (int id = node, j = depth; id > 0; id = sh->nodes[id].parent)
        chain[--j] = id;
    unsigned nslots = 4;
    while (nslots < 2 * (unsigned)depth)
        nslots *= 2;
    lua_createtable(L, depth, 1);                       /* mt */
    int mt = lua_gettop(L);
    shape_info *si = lua_newuserdata(L, sizeof *si + (size_t)depth * sizeof(char *)
                                     + nslots * sizeof(int));      /* mt info */
    si->magic = SHAPE_MAGIC;
    si->mask = nslots - 1;
    si->keys = (const char **)(si + 1);
    si->slots = (int *)(si->keys + depth);
    memset(si->slots, 0, nslots * sizeof(int));
    for (int j = 0; j < depth; j++) {
        const char *s = sh->nodes[chain[j]].key;       /* interned: the address is the key */
        if (shape_place(si, s) >= 0)
            continue;
        si->keys[n] = s;
        unsigned i = ptr_hash(s) & si->mask;
        while (si->slots[i] != 0)
            i = (i + 1) & si->mask;
        si->slots[i] = ++n;
        lua_rawgeti(L, LUA_REGISTRYINDEX, sh->nodes[chain[j]].key_ref);    /* mt info key */
        lua_rawseti(L, mt, n);                          /* mt info */
    }
    si->n = n;
    lua_rawseti(L, mt, 0);                              /* mt */
    sh->nodes[node].meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);     /* -- */
    if (chain != small)
        free(chain);
}

void sl_shape_set(lua_State *L, sl_shapes *sh, int node, int tidx)
{
    if (node <= 0)
        return;
    tidx = absolute_index(L, tidx);
    if (sh->nodes[node].meta_ref == LUA_NOREF)
        make_meta(L, sh, node);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sh->nodes[node].meta_ref);   /* mt */
    lua_setmetatable(L, tidx);                                      /* -- */
}

void sl_shape_set_names(lua_State *L, sl_shapes *sh, int names_idx, int tidx)
{
    names_idx = absolute_index(L, names_idx);
    const void *names = lua_topointer(L, names_idx);
    if (names != sh->names) {
        int n = (int)lua_objlen(L, names_idx);
        int node = n <= SL_SHAPE_MAX_KEYS ? 0 : -1;
        for (int i = 1; i <= n && node >= 0; i++) {
            lua_rawgeti(L, names_idx, i);               /* name */
            size_t len;
            const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
            node = s ? shape_step(L, sh, node, s, len, -1) : -1;
            lua_pop(L, 1);                              /* -- */
        }
        luaL_unref(L, LUA_REGISTRYINDEX, sh->names_ref);
        lua_pushvalue(L, names_idx);                    /* names */
        sh->names_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* -- */
        sh->names = names;
        sh->names_node = node;
    }
    sl_shape_set(L, sh, sh->names_node, tidx);
}

/* ---- writing in order -------------------------------------------------------------------- */

void sl_object_begin(lua_State *L, int idx, sl_object *ob)
{
    ob->t = absolute_index(L, idx);
    ob->top = lua_gettop(L);
    ob->base = ob->top + 1;
    ob->shape = shape_of(L, ob->t);
    ob->extras = 0;
    ob->room = 0;
    ob->n = 0;
    ob->cap = SL_OBJECT_SMALL;
    ob->e = ob->small;
    ob->order = ob->small_order;
}

/* Makes room on the stack for the values of 16 more entries (two slots each, and some
 * to spare); returns 0 when the stack cannot grow (the values are then fetched again). */
int sl_object_room(lua_State *L, sl_object *ob)
{
    if (!lua_checkstack(L, 2 * 16 + 4))
        return 0;
    ob->room = 16;
    return 1;
}

sl_entry *sl_object_grow(sl_object *ob)
{
    size_t cap = ob->cap * 2;
    sl_entry *grown = xrealloc(ob->e == ob->small ? NULL : ob->e, cap * sizeof *grown);
    if (ob->e == ob->small)
        memcpy(grown, ob->small, sizeof ob->small);
    ob->e = grown;
    ob->cap = cap;
    return &ob->e[ob->n++];
}

/* Whether entry a goes before b: the shape's keys by their place, then the others (rank
 * -1): numbers ascending, then strings bytewise. */
static int before(const sl_entry *a, const sl_entry *b)
{
    if (a->rank != b->rank) {
        if (a->rank < 0 || b->rank < 0)
            return a->rank >= 0;
        return a->rank < b->rank;
    }
    if (a->rank >= 0)
        return 0;
    if ((a->s == NULL) != (b->s == NULL))
        return a->s == NULL;
    if (a->s == NULL)
        return a->num < b->num;
    size_t n = a->len < b->len ? a->len : b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a->s[i], y = (unsigned char)b->s[i];
        if (x != y)
            return x < y;
    }
    return a->len < b->len;
}

static int index_cmp(const void *x, const void *y, void *entries)
{
    const sl_entry *e = entries;
    const sl_entry *a = &e[*(const uint32_t *)x], *b = &e[*(const uint32_t *)y];
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Sorts order[0, n) by before(): insertion for a few entries, else qsort_r. */
static void sort_entries(const sl_entry *e, uint32_t *order, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t g = order[i];
            size_t j = i;
            for (; j > 0 && before(&e[g], &e[order[j - 1]]); j--)
                order[j] = order[j - 1];
            order[j] = g;
        }
    } else {
        qsort_r(order, n, sizeof *order, index_cmp, (void *)e);
    }
}

void sl_object_sort(sl_object *ob)
{
    size_t n = ob->n, k = 0;
    uint32_t *order = ob->order;
    if (n > SL_OBJECT_SMALL)
        order = ob->order = xrealloc(NULL, n * sizeof *order);
    if (ob->shape != NULL && ob->shape->n <= 64) {
        /* The keys of the shape go by their places, with no comparison; the others
         * (a key a script added, say) follow, sorted among themselves. */
        /* at[r]: the index of the entry at place r, or -1. An index, not a small number:
         * a table may hold any number of entries besides its shape's keys. */
        int32_t at[64];
        int places = ob->shape->n;
        size_t x = n - (size_t)ob->extras;      /* where the others go */
        memset(at, -1, sizeof at);
        for (size_t i = 0; i < n; i++) {
            int r = ob->e[i].rank;
            if (r >= 0)
                at[r] = (int32_t)i;
            else
                order[x++] = (uint32_t)i;
        }
        for (int r = 0; r < places; r++)
            if (at[r] >= 0)
                order[k++] = (uint32_t)at[r];
        if (ob->extras > 1)
            sort_entries(ob->e, order + k, (size_t)ob->extras);
        return;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    sort_entries(ob->e, order, n);
}

int sl_object_fetch(lua_State *L, const sl_object *ob, const sl_entry *en)
{
    if (en->s != NULL)
        lua_pushlstring(L, en->s, en->len);     /* key: the table's own string */
    else
        lua_pushnumber(L, en->num);             /* key */
    lua_rawget(L, ob->t);                       /* value */
    return lua_gettop(L);
}

void sl_object_end(lua_State *L, sl_object *ob)
{
    if (ob->e != ob->small)
        free(ob->e);
    if (ob->order != ob->small_order)
        free(ob->order);
    ob->e = ob->small;
    ob->order = ob->small_order;
    lua_settop(L, ob->top);
}

int sl_codec_keys(lua_State *L, int idx)
{
    idx = absolute_index(L, idx);
    sl_object ob;
    int n = 0;

    lua_newtable(L);                                    /* keys */
    int keys = lua_gettop(L);
    sl_object_begin(L, idx, &ob);
    if (ob.shape != NULL) {
        /* every column of the shape, even those this record lacks */
        lua_getmetatable(L, idx);                       /* keys mt */
        for (int i = 1; i <= ob.shape->n; i++) {
            lua_rawgeti(L, -1, i);                      /* keys mt key */
            lua_rawseti(L, keys, ++n);                  /* keys mt */
        }
        lua_pop(L, 1);                                  /* keys */
    }
    lua_pushnil(L);                                     /* keys nil */
    while (lua_next(L, idx)) {                          /* keys ... key value */
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 1);                              /* keys ... key */
            continue;
        }
        sl_object_add(L, &ob);                          /* keys ... value key */
    }                                                   /* keys ... */
    sl_object_sort(&ob);
    for (size_t i = 0; i < ob.n; i++) {
        const sl_entry *en = sl_object_entry(&ob, i);
        if (en->rank >= 0)
            continue;                                   /* listed with the shape */
        lua_pushlstring(L, en->s, en->len);             /* keys ... key (the same string) */
        lua_rawseti(L, keys, ++n);                      /* keys ... */
    }
    sl_object_end(L, &ob);                              /* keys */
    return n;
}
