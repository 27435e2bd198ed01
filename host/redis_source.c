/* redis_source.c -- core.redis_source: a consumer of a Redis Streams consumer group whose
 * entries are turned into records in C, a batch per XREADGROUP reply (see redis.h).
 *
 * Once connected it makes the group (XGROUP CREATE ... MKSTREAM, at the start of the
 * stream or at its end; an existing group is kept), then reads this consumer's own
 * pending entries (XREADGROUP ... 0: read before a crash, never acknowledged), then new
 * ones (XREADGROUP ... BLOCK ... >), READS_AHEAD reads in flight (the server answers
 * them in turn, each with entries no other read got) and none issued while paused.
 * Each entry becomes a table of its fields (field -> value strings, in the entry's
 * order; meta=true adds `id`), or, with json=true, the JSON document in one field. An
 * entry that cannot be a record goes to on_bad with its id and why; it is acknowledged
 * with the others. The source keeps the ids it delivered and not acknowledged yet:
 * mark() numbers what was delivered so far and ack(mark) sends XACK for every id up to
 * it (with autoack, after each batch).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "codec.h"
#include "codec_shared.h"
#include "loop.h"
#include "redis.h"
#include "typed.h"
#include "typed_lua.h"

#define BATCH_MAX     1024      /* entries per XREADGROUP, by default */
#define BLOCK_MS       200      /* how long a read waits for new entries */
#define READS_AHEAD      2      /* reads of new entries in flight: the server reads the
                                   next batch while this one is turned into records */
#define ACK_CHUNK     1024      /* ids per XACK command */
#define RAW_MAX        512      /* bytes of a bad entry's value shown in on_bad */
#define ID_LEN          48      /* "ms-seq" of two uint64 and a NUL */

typedef struct stream_id {
    uint64_t ms, seq;
} stream_id;

typedef struct sl_redis_source {
    sl_redis_conn conn;         /* first: the connection's callbacks find the source */
    char *stream, *group, *consumer, *field;
    int start_latest, json, meta, batch_max, block_ms, autoack;
    int paused, closed;
    int reading;                /* XREADGROUPs in flight */
    int in_callback;            /* Lua runs from inside a reply: close waits for it */
    int close_pending;          /* close() came in a callback: done by a zero timer */
    int backlog;                /* reading this consumer's pending entries (from `after`) */
    int backlog_done;           /* read once per run, at the first connection */
    char after[ID_LEN];         /* the last pending entry read */
    stream_id *ids;             /* delivered, not acknowledged: ids[i] is mark acked+i+1 */
    size_t nids, capids;
    uint64_t delivered;         /* entries delivered (the mark) */
    uint64_t acked;             /* entries up to this mark acknowledged */
    uv_timer_t later;           /* the deferred close */
    int on_batch, on_bad, batch_ref, self_ref;      /* registry refs */
    struct sl_redis_source **slot;

    /* schema= (json only): each entry's document is decoded by C into the slots of record
       n of the batch (typed.h), which Lua puts into the batch as views (redis.lua).
       Strings point into the reply, which lives while on_read runs (every on_batch of
       its entries), or into the arena, reset with each batch */
    const sl_schema *schema;
    int schema_ref;             /* keeps the schema's userdata, or LUA_NOREF */
    sl_typed_field *slots;      /* batch_max records of schema->nslots */
    sl_typed_field *dst;        /* where push_record decodes the next record */
    sl_typed_arena arena;       /* strings the JSON decoder rewrote (escapes) */
    int id_slot;                /* meta: the slot of the schema's string field id */
} sl_redis_source;

static void read_more(sl_redis_source *s);
static void finish_close(sl_redis_source *s);

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: redis: out of memory\n");
    abort();
}

/* ---- acknowledging ---------------------------------------------------------------------- */

static void on_ack(redisAsyncContext *ac, void *r, void *privdata)
{
    sl_redis_source *s = ac->data;
    redisReply *reply = r;

    (void)privdata;
    sl_redis_conn_replied(&s->conn);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !s->closed)
        fprintf(stderr, "sluice: %s: XACK: %s\n", s->conn.what, reply->str);
}

static void remember(sl_redis_source *s, const char *id)
{
    stream_id sid = {0, 0};
    char *end;

    sid.ms = strtoull(id, &end, 10);
    if (*end == '-')
        sid.seq = strtoull(end + 1, NULL, 10);
    if (s->nids == s->capids) {
        s->capids = s->capids ? 2 * s->capids : 1024;
        s->ids = realloc(s->ids, s->capids * sizeof *s->ids);
        if (s->ids == NULL)
            out_of_memory();
    }
    s->ids[s->nids++] = sid;
    s->delivered++;
}

/* XACK of every id delivered up to `mark`. Ids whose XACK cannot be sent (the server is
 * down) stay pending in the group and are read again by the next run. */
static void ack_upto(sl_redis_source *s, uint64_t mark)
{
    size_t k, done = 0;
    const char **argv;
    size_t *lens;
    char (*text)[ID_LEN];

    if (mark > s->delivered)
        mark = s->delivered;
    if (mark <= s->acked)
        return;
    k = (size_t)(mark - s->acked);
    argv = malloc((ACK_CHUNK + 3) * sizeof *argv);
    lens = malloc((ACK_CHUNK + 3) * sizeof *lens);
    text = malloc(ACK_CHUNK * sizeof *text);
    if (argv == NULL || lens == NULL || text == NULL)
        out_of_memory();
    argv[0] = "XACK";
    argv[1] = s->stream;
    argv[2] = s->group;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    while (done < k) {
        size_t m = k - done < ACK_CHUNK ? k - done : ACK_CHUNK;
        for (size_t i = 0; i < m; i++) {
            const stream_id *id = &s->ids[done + i];
            lens[3 + i] = (size_t)snprintf(text[i], ID_LEN, "%" PRIu64 "-%" PRIu64,
                                           id->ms, id->seq);
            argv[3 + i] = text[i];
        }
        sl_redis_conn_command(&s->conn, on_ack, NULL, (int)(3 + m), argv, lens);
        done += m;
    }
    free(argv);
    free(lens);
    free(text);
    memmove(s->ids, s->ids + k, (s->nids - k) * sizeof *s->ids);
    s->nids -= k;
    s->acked = mark;
}

/* ---- entries into records ------------------------------------------------------------------ */

static void push_fields(lua_State *L, sl_redis_source *s, const redisReply *fields,
                        const char *id);

/* Calls on_bad{id=, reason=, raw=}: raw is the bytes given, else the table of the entry's
 * fields when they are strings (what the dead letter shows). Stack unchanged. */
static void report_bad(lua_State *L, sl_redis_source *s, const char *id, const char *reason,
                       const char *raw, size_t rawlen, const redisReply *fields)
{
    char msg[SL_REDIS_WHY + SL_CODEC_ERRLEN];

    if (s->on_bad == LUA_NOREF)
        return;
    snprintf(msg, sizeof msg, "%s: entry %s: %s", s->conn.what, id, reason);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_bad);       /* fn */
    lua_createtable(L, 0, 3);                           /* fn info */
    lua_pushstring(L, id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "reason");
    if (raw == NULL && fields != NULL) {
        int meta = s->meta;
        s->meta = 0;
        push_fields(L, s, fields, id);
        s->meta = meta;
    } else {
        lua_pushlstring(L, raw ? raw : "", rawlen < RAW_MAX ? rawlen : RAW_MAX);
    }
    lua_setfield(L, -2, "raw");                         /* fn info */
    sl_loop_call(L, 1);                                 /* -- */
}

/* Pushes the table of the entry's fields, shaped in their order; meta adds id. */
static void push_fields(lua_State *L, sl_redis_source *s, const redisReply *fields,
                        const char *id)
{
    sl_shapes *sh = sl_shapes_get(L);
    int node = 0, t;

    lua_createtable(L, 0, (int)(fields->elements / 2) + (s->meta ? 1 : 0));   /* rec */
    t = lua_gettop(L);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        lua_pushlstring(L, k->str ? k->str : "", k->str ? k->len : 0);  /* rec key */
        node = node < SL_SHAPE_MAX_KEYS - 1 ? shape_step(L, sh, node, lua_tostring(L, -1),
                                                          lua_objlen(L, -1), -1) : -1;
        lua_pushlstring(L, v->str ? v->str : "", v->str ? v->len : 0);  /* rec key value */
        lua_rawset(L, t);                                               /* rec */
    }
    if (s->meta) {
        lua_pushliteral(L, "id");                                       /* rec "id" */
        node = shape_step(L, sh, node, "id", 2, -1);
        lua_pushstring(L, id);                                          /* rec "id" id */
        lua_rawset(L, t);                                               /* rec */
    }
    sl_shape_set(L, sh, node, t);
}

/* Typed: decodes the document doc (of the field `name` of entry id) into s->dst, and with
 * meta sets its id field. Returns SL_CODEC_OK (nothing pushed), SL_CODEC_BAD after
 * reporting why, or SL_TYPED_FULL when the arena holds strings of records of this batch
 * and has no room for this one's (nothing kept: the caller delivers the batch, then
 * decodes it again). An empty arena too small for it is grown first. */
static int push_typed(lua_State *L, sl_redis_source *s, const char *id,
                      const redisReply *doc, const char *name)
{
    char err[SL_CODEC_ERRLEN], why[SL_CODEC_ERRLEN + 64];
    int rc = sl_typed_json_decode(s->schema, doc->str, doc->len, s->dst, &s->arena, err);

    if (rc == SL_TYPED_FULL && s->arena.used == 0) {
        /* no string points into it: room for this document's rewritten strings, which
           are never longer than it */
        size_t want = doc->len + 64 > 2 * s->arena.cap ? doc->len + 64 : 2 * s->arena.cap;
        free(s->arena.base);
        s->arena.base = malloc(want);
        if (s->arena.base == NULL)
            out_of_memory();
        s->arena.cap = want;
        rc = sl_typed_json_decode(s->schema, doc->str, doc->len, s->dst, &s->arena, err);
    }
    if (rc == SL_TYPED_FULL)
        return rc;
    if (rc != SL_CODEC_OK) {
        snprintf(why, sizeof why, "field %s: %s", name, err);
        report_bad(L, s, id, why, doc->str, doc->len, NULL);
        return SL_CODEC_BAD;
    }
    if (s->meta) {
        s->dst[s->id_slot].v.str = id;      /* lives in the reply too */
        s->dst[s->id_slot].len = (uint32_t)strlen(id);
        s->dst[s->id_slot].present = 1;
    }
    return SL_CODEC_OK;
}

/* Pushes the record of one entry (id, fields) and returns SL_CODEC_OK, or returns
 * SL_CODEC_BAD after reporting why (stack unchanged). Typed (s->schema): decodes it into
 * s->dst instead, pushing nothing, and may return SL_TYPED_FULL (push_typed). */
static int push_record(lua_State *L, sl_redis_source *s, const char *id,
                       const redisReply *fields)
{
    char err[SL_CODEC_ERRLEN], why[SL_CODEC_ERRLEN + 64];
    const redisReply *doc = NULL;
    const char *name = "";

    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) {
        report_bad(L, s, id, "deleted from the stream before it was acknowledged", NULL, 0,
                   NULL);
        return SL_CODEC_BAD;
    }
    if (fields->elements % 2 != 0) {
        report_bad(L, s, id, "an odd number of field and value items", NULL, 0, NULL);
        return SL_CODEC_BAD;
    }
    for (size_t i = 0; i < fields->elements; i++) {
        if (fields->element[i]->type != REDIS_REPLY_STRING) {
            report_bad(L, s, id, "a field or value that is not a string", NULL, 0, NULL);
            return SL_CODEC_BAD;
        }
    }
    if (!s->json) {
        push_fields(L, s, fields, id);
        return SL_CODEC_OK;
    }
    /* json: the document is the value of the field named `field`, or of the only one */
    if (s->field != NULL) {
        for (size_t i = 0; i + 1 < fields->elements; i += 2)
            if (strcmp(fields->element[i]->str, s->field) == 0)
                doc = fields->element[i + 1];
        if (doc == NULL) {
            snprintf(why, sizeof why, "no field %s (format=json)", s->field);
            report_bad(L, s, id, why, NULL, 0, fields);
            return SL_CODEC_BAD;
        }
        name = s->field;
    } else if (fields->elements != 2) {
        snprintf(why, sizeof why, "%d fields, not one holding a JSON document (format=json; "
                 "field= names which)", (int)(fields->elements / 2));
        report_bad(L, s, id, why, NULL, 0, fields);
        return SL_CODEC_BAD;
    } else {
        doc = fields->element[1];
        name = fields->element[0]->str;
    }
    if (s->schema != NULL)
        return push_typed(L, s, id, doc, name);
    if (sl_json_decode(L, doc->str, doc->len, err) != SL_CODEC_OK) {
        snprintf(why, sizeof why, "field %s: %s", name, err);
        report_bad(L, s, id, why, doc->str, doc->len, NULL);
        return SL_CODEC_BAD;
    }
    if (s->meta) {
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            report_bad(L, s, id, "meta=true needs a JSON object to add the id to",
                       doc->str, doc->len, NULL);
            return SL_CODEC_BAD;
        }
        lua_pushstring(L, id);
        lua_setfield(L, -2, "id");
    }
    return SL_CODEC_OK;
}

/* Calls on_batch(batch, n, last id [, slots]) with the batch table at bi (typed: the
 * records are in the slots), clearing what a longer batch left past n first. */
static void call_batch(lua_State *L, sl_redis_source *s, int bi, int n, int *filled,
                       const char *last)
{
    for (int i = n + 1; i <= *filled; i++) {
        lua_pushnil(L);
        lua_rawseti(L, bi, i);
    }
    *filled = n;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->on_batch);     /* fn */
    lua_pushvalue(L, bi);                               /* fn batch */
    lua_pushinteger(L, n);                              /* fn batch n */
    lua_pushstring(L, last);                            /* fn batch n last */
    if (s->schema != NULL)
        lua_pushlightuserdata(L, s->slots);             /* fn batch n last slots */
    sl_loop_call(L, s->schema != NULL ? 4 : 3);         /* -- */
    s->arena.used = 0;          /* the batch is gone, and with it its views */
}

/* Turns the entries of one read into records and hands them to on_batch(batch, n, last
 * id); returns how many entries the reply held. Typed records whose rewritten strings
 * fill the arena end a batch early. */
static size_t deliver(lua_State *L, sl_redis_source *s, const redisReply *entries)
{
    int top = lua_gettop(L), bi, filled, n = 0, rc;
    const char *last = NULL;

    lua_rawgeti(L, LUA_REGISTRYINDEX, s->batch_ref);    /* batch */
    bi = lua_gettop(L);
    filled = (int)lua_objlen(L, bi);
    s->in_callback = 1;
    s->arena.used = 0;
    for (size_t i = 0; i < entries->elements && !s->closed; i++) {
        const redisReply *e = entries->element[i];
        const redisReply *fields;
        const char *id;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1
            || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        id = e->element[0]->str;
        fields = e->elements > 1 ? e->element[1] : NULL;
        if (s->schema != NULL)
            s->dst = s->slots + (size_t)n * (size_t)s->schema->nslots;
        rc = push_record(L, s, id, fields);
        if (rc == SL_TYPED_FULL) {
            /* the records before it go first (n > 0: an empty arena is grown to fit) */
            if (n > 0)
                call_batch(L, s, bi, n, &filled, last);
            n = 0;
            s->arena.used = 0;
            if (s->closed)
                break;
            s->dst = s->slots;
            rc = push_record(L, s, id, fields);
        }
        last = id;
        remember(s, id);        /* after an early batch: its mark does not cover this one */
        if (rc == SL_CODEC_OK && s->schema != NULL)
            n++;
        else if (rc == SL_CODEC_OK)
            lua_rawseti(L, bi, ++n);                    /* batch */
    }
    if (last != NULL && s->backlog)
        snprintf(s->after, sizeof s->after, "%s", last);
    if (n > 0 && !s->closed)
        call_batch(L, s, bi, n, &filled, last);
    s->in_callback = 0;
    lua_settop(L, top);                                 /* -- */
    return entries->elements;
}

/* ---- reading ------------------------------------------------------------------------------- */

static void on_read(redisAsyncContext *ac, void *r, void *privdata)
{
    sl_redis_source *s = ac->data;
    redisReply *reply = r;
    lua_State *L = sl_loop_lua();
    size_t got = 0;

    (void)privdata;
    sl_redis_conn_replied(&s->conn);
    if (s->reading > 0)
        s->reading--;
    if (reply == NULL || s->closed || L == NULL)
        return;                 /* lost (read again once back) or closing */
    if (!s->backlog && reply->type != REDIS_REPLY_ERROR)
        read_more(s);           /* the server works on the next batch meanwhile */
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[SL_REDIS_WHY];
        /* a server that restarted empty has no group: reconnecting makes it again */
        snprintf(why, sizeof why, "XREADGROUP: %s", reply->str);
        sl_redis_conn_fail(&s->conn, why);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        const redisReply *st = reply->element[0];
        if (st->type == REDIS_REPLY_ARRAY && st->elements == 2
            && st->element[1]->type == REDIS_REPLY_ARRAY)
            got = deliver(L, s, st->element[1]);
    }
    /* what was delivered is acknowledged even when the job took it and ended (take) */
    if (s->autoack)
        ack_upto(s, s->delivered);
    if (s->close_pending || s->closed)
        return;
    if (s->backlog && got == 0)
        s->backlog = 0;         /* this consumer's pending entries are all read again */
    read_more(s);
}

/* Issues XREADGROUPs until READS_AHEAD are in flight (one while reading the pending
 * entries: each read starts after the last one's entries), unless the source is paused
 * or closed, or the server is down. */
static void read_more(sl_redis_source *s)
{
    char count[24], block[24];
    const char *argv[11];
    int argc = 0;

    if (s->reading >= (s->backlog ? 1 : READS_AHEAD) || s->paused || s->closed
        || s->close_pending || !s->conn.up)
        return;
    snprintf(count, sizeof count, "%d", s->batch_max);
    snprintf(block, sizeof block, "%d", s->block_ms);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = s->group;
    argv[argc++] = s->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    if (!s->backlog) {
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
    }
    argv[argc++] = "STREAMS";
    argv[argc++] = s->stream;
    argv[argc++] = s->backlog ? s->after : ">";
    if (sl_redis_conn_command(&s->conn, on_read, NULL, argc, argv, NULL) == 0) {
        s->reading++;
        read_more(s);
    }
}

static void on_group(redisAsyncContext *ac, void *r, void *privdata)
{
    sl_redis_source *s = ac->data;
    redisReply *reply = r;

    (void)privdata;
    sl_redis_conn_replied(&s->conn);
    if (reply == NULL || s->closed)
        return;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        char why[SL_REDIS_WHY];
        snprintf(why, sizeof why, "XGROUP CREATE: %s", reply->str);
        sl_redis_conn_fail(&s->conn, why);
        return;
    }
    sl_redis_conn_healthy(&s->conn);
    read_more(s);
}

/* Connected: the group is made if missing, then reading starts: first this consumer's
 * pending entries (once per run: after a mere reconnect what is pending was delivered
 * here and waits for its checkpoint), then new ones. */
static void on_up(sl_redis_conn *c)
{
    sl_redis_source *s = (sl_redis_source *)c;
    const char *argv[] = {"XGROUP", "CREATE", s->stream, s->group,
                          s->start_latest ? "$" : "0", "MKSTREAM"};

    s->reading = 0;
    if (!s->backlog_done) {
        s->backlog_done = 1;
        s->backlog = 1;
        snprintf(s->after, sizeof s->after, "0");
    }
    sl_redis_conn_command(c, on_group, NULL, 6, argv, NULL);
}

static void on_down(sl_redis_conn *c)
{
    ((sl_redis_source *)c)->reading = 0;
}

/* ---- closing ------------------------------------------------------------------------------- */

static void on_conn_closed(sl_redis_conn *c)
{
    sl_redis_source *s = (sl_redis_source *)c;
    free(s->stream);
    free(s->group);
    free(s->consumer);
    free(s->field);
    free(s->ids);
    free(s->slots);
    free(s->arena.base);
    free(s);
}

static void on_later_closed(uv_handle_t *h)
{
    sl_redis_source *s = h->data;
    sl_redis_conn_close(&s->conn);
}

static void release_refs(lua_State *L, sl_redis_source *s)
{
    int *refs[] = {&s->on_batch, &s->on_bad, &s->batch_ref, &s->self_ref, &s->schema_ref};
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        if (L != NULL)
            luaL_unref(L, LUA_REGISTRYINDEX, *refs[i]);
        *refs[i] = LUA_NOREF;
    }
}

/* The acknowledgements sent wait for their replies (bounded: a read in flight may be
 * blocked for block_ms before them), then the connection closes. */
static void finish_close(sl_redis_source *s)
{
    sl_redis_conn_wait(&s->conn, READS_AHEAD * s->block_ms + 2000);
    if (s->slot != NULL)
        *s->slot = NULL;
    release_refs(sl_loop_lua(), s);
    uv_close((uv_handle_t *)&s->later, on_later_closed);
}

static void on_later(uv_timer_t *t)
{
    finish_close(t->data);
}

/* ---- Lua methods --------------------------------------------------------------------------- */

static sl_redis_source *check_source(lua_State *L, const char *method)
{
    sl_redis_source **ud = luaL_checkudata(L, 1, SL_REDIS_SOURCE_MT);

    if (*ud == NULL || (*ud)->closed)
        luaL_error(L, "redis source:%s(): the source is closed", method);
    return *ud;
}

/* source:stop() while flow control holds the job; source:start() to read again. */
static int source_stop(lua_State *L)
{
    check_source(L, "stop")->paused = 1;
    return 0;
}

static int source_start(lua_State *L)
{
    sl_redis_source *s = check_source(L, "start");
    s->paused = 0;
    read_more(s);
    return 0;
}

/* source:mark() -> the number of entries delivered so far: a position to ack up to. */
static int source_mark(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)check_source(L, "mark")->delivered);
    return 1;
}

/* source:ack(mark): XACK of every entry delivered up to mark. */
static int source_ack(lua_State *L)
{
    sl_redis_source *s = check_source(L, "ack");
    lua_Number mark = luaL_checknumber(L, 2);
    if (mark > 0)
        ack_upto(s, (uint64_t)mark);
    return 0;
}

/* source:close(): no more reads; entries delivered and not acked stay pending in the
 * group (the next run reads them again). Idempotent. */
static int source_close(lua_State *L)
{
    sl_redis_source **ud = luaL_checkudata(L, 1, SL_REDIS_SOURCE_MT);
    sl_redis_source *s = *ud;

    if (s == NULL || s->closed)
        return 0;
    s->closed = 1;
    if (s->in_callback) {
        /* hiredis is delivering a reply: the wait for the acks cannot run inside it */
        s->close_pending = 1;
        uv_timer_start(&s->later, on_later, 0, 0);
        return 0;
    }
    finish_close(s);
    return 0;
}

static int source_gc(lua_State *L)
{
    sl_redis_source **ud = luaL_checkudata(L, 1, SL_REDIS_SOURCE_MT);
    sl_redis_source *s = *ud;

    if (s == NULL)
        return 0;
    if (!s->closed)
        source_close(L);
    /* a close deferred to the loop must not clear this userdata once it is freed */
    s->slot = NULL;
    *ud = NULL;
    return 0;
}

static char *opt_dup(lua_State *L, int idx, const char *field, int required)
{
    const char *v;
    char *d;

    lua_getfield(L, idx, field);
    if (lua_isnil(L, -1) && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    v = lua_tostring(L, -1);
    if (v == NULL)
        luaL_error(L, "core.redis_source: %s must be a string", field);
    d = strdup(v);
    if (d == NULL)
        out_of_memory();
    lua_pop(L, 1);
    return d;
}

static int opt_int(lua_State *L, int idx, const char *field, int dflt)
{
    int v;
    lua_getfield(L, idx, field);
    v = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : dflt;
    lua_pop(L, 1);
    return v;
}

static int opt_bool(lua_State *L, int idx, const char *field)
{
    int v;
    lua_getfield(L, idx, field);
    v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int opt_ref(lua_State *L, int idx, const char *field)
{
    lua_getfield(L, idx, field);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* core.redis_source{host, port, db, password, what, stream, group, consumer, start =
 * "earliest"|"latest", json, field, meta, batch, block_ms, autoack, on_batch(batch, n,
 * last_id), on_bad{id, reason, raw}} -> source, reading at once. */
int sl_redis_source_new(lua_State *L)
{
    sl_redis_source *s, **ud;
    const char *start;

    luaL_checktype(L, 1, LUA_TTABLE);
    s = calloc(1, sizeof *s);
    if (s == NULL)
        out_of_memory();
    s->stream = opt_dup(L, 1, "stream", 1);
    s->group = opt_dup(L, 1, "group", 1);
    s->consumer = opt_dup(L, 1, "consumer", 1);
    s->field = opt_dup(L, 1, "field", 0);
    lua_getfield(L, 1, "start");
    start = luaL_optstring(L, -1, "earliest");
    s->start_latest = strcmp(start, "latest") == 0;
    lua_pop(L, 1);
    s->json = opt_bool(L, 1, "json");
    s->meta = opt_bool(L, 1, "meta");
    s->autoack = opt_bool(L, 1, "autoack");
    s->batch_max = opt_int(L, 1, "batch", BATCH_MAX);
    if (s->batch_max < 1)
        s->batch_max = BATCH_MAX;
    s->block_ms = opt_int(L, 1, "block_ms", BLOCK_MS);
    s->schema_ref = LUA_NOREF;
    lua_getfield(L, 1, "schema");                       /* schema|nil */
    if (!lua_isnil(L, -1)) {
        const sl_schema_field *idf;
        s->schema = sl_schema_check(L, -1);
        idf = sl_schema_find(s->schema, "id", 2);
        if (!s->json || (s->meta && (idf == NULL || idf->type != SL_TYPED_STRING))) {
            free(s->stream);
            free(s->group);
            free(s->consumer);
            free(s->field);
            free(s);
            return luaL_error(L, "core.redis_source: schema needs json, and with meta a "
                              "string field id");
        }
        s->id_slot = idf != NULL ? idf->slot : 0;
        s->slots = malloc((size_t)s->batch_max * (size_t)s->schema->nslots
                          * sizeof *s->slots);
        s->arena.cap = 64 * 1024;
        s->arena.base = malloc(s->arena.cap);
        if (s->slots == NULL || s->arena.base == NULL)
            out_of_memory();
        s->schema_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* -- */
    } else {
        lua_pop(L, 1);                                  /* -- */
    }
    s->on_batch = opt_ref(L, 1, "on_batch");
    s->on_bad = opt_ref(L, 1, "on_bad");
    lua_createtable(L, s->batch_max, 0);
    s->batch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    uv_timer_init(sl_loop_get(), &s->later);
    s->later.data = s;

    ud = lua_newuserdata(L, sizeof *ud);                /* ud */
    *ud = s;
    s->slot = ud;
    luaL_getmetatable(L, SL_REDIS_SOURCE_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);       /* ud */

    s->conn.owner = s;
    s->conn.on_up = on_up;
    s->conn.on_down = on_down;
    s->conn.on_closed = on_conn_closed;
    sl_redis_conn_open(L, 1, &s->conn);
    return 1;
}

static const luaL_Reg source_methods[] = {
    {"start", source_start},
    {"stop", source_stop},
    {"mark", source_mark},
    {"ack", source_ack},
    {"close", source_close},
    {NULL, NULL},
};

void sl_redis_source_register(lua_State *L)
{
    luaL_newmetatable(L, SL_REDIS_SOURCE_MT);           /* mt */
    lua_newtable(L);                                    /* mt methods */
    luaL_register(L, NULL, source_methods);
    lua_setfield(L, -2, "__index");                     /* mt */
    lua_pushcfunction(L, source_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);                                      /* -- */
}
