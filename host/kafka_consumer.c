/* kafka_consumer.c -- core.kafka_consumer: a consumer-group member whose messages are
 * decoded in C, a batch at a time, and handed to Lua from the loop (see kafka.h).
 *
 * The consumer owns its librdkafka handle and the pipe its queue wakes the loop through.
 * Serving the queue delivers, in queue order: each run of messages of one partition as
 * one on_batch call (so a partition's records stay in order and the caller knows their
 * partition), undecodable ones to on_bad, rebalances to on_assign/on_revoke (partitions
 * are assigned cooperatively and start where the `offsets` table says, else at the
 * group's committed offset, else at `start`; on_assigning(list), called before that, may
 * fill the table), and errors to on_error, each condition once
 * until messages flow again. With bounded=true, on_end is called once every assigned
 * partition has reached the end it had when it was assigned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "codec.h"
#include "kafka.h"
#include "loop.h"
#include "typed.h"
#include "typed_lua.h"

enum { FMT_LINES, FMT_JSON, FMT_CSV, FMT_MSGPACK };
static const char *const formats[] = {"lines", "json", "csv", "msgpack", NULL};

#define BATCH_MAX   1024        /* records per on_batch call, by default */
#define RAW_MAX      512        /* bytes of a bad message's value shown in on_bad */
#define QUERY_MS    5000        /* how long a bounded source waits for a partition's end */
#define CHECK_MS    3000        /* how long the start waits to learn whether topics exist */
#define COMMIT_MS   "5000"      /* how often stored offsets go to the group */

/* A partition of a bounded consumer: where it ends, and whether it got there. */
typedef struct part_end {
    char *topic;
    int32_t partition;
    int64_t end;                /* the high watermark when it was assigned */
    int done;
} part_end;

typedef struct sl_kafka_consumer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;        /* the consumer queue: messages, rebalances, errors */
    sl_kafka_wakeup wake;
    uv_idle_t more;             /* serves again next turn after a full batch */
    int more_on;
    int format, meta, batch_max, bounded;
    int paused, closing, closed, ended, assigned;
    int serving;                /* inside serve(): librdkafka's frames are on the stack */
    int close_pending;          /* close() came while serving: done when serve returns */
    struct sl_kafka_consumer **slot;    /* the userdata's pointer, emptied at close */
    int on_batch, on_bad, on_assign, on_revoke, on_error, on_end;   /* registry refs */
    int on_assigning;           /* called before an assignment takes its start offsets */
    int offsets_ref;            /* resume offsets { topic = { [p] = offset } }, or NOREF */
    int columns_ref;            /* csv column names, or LUA_NOREF (arrays of fields) */
    int batch_ref;              /* the batch table, reused */
    int self_ref;               /* keeps the userdata alive until close */
    char *what;                 /* "source.kafka TOPIC", for messages */
    int reported;               /* the kind of error said last, so that it is said once */
    uint64_t error_ms;          /* uv_hrtime() in ms of the last error, said or not; 0: none
                                 * since messages last flowed (for --metrics' /readyz) */
    part_end *parts;            /* bounded: the assigned partitions */
    int nparts, capparts;
    rd_kafka_topic_partition_list_t *revoked;   /* given up during the current serve() */

    /* schema=: each message's value is decoded by C into the slots of record n of the
       batch (typed.h), which Lua puts into the batch as views (kafka.lua). Strings point
       into the messages' payloads, which live until serve() returns, after the last
       on_batch of the messages it took, or into the arena, reset with each batch */
    const sl_schema *schema;
    int schema_ref;             /* keeps the schema's userdata, or LUA_NOREF */
    sl_typed_field *slots;      /* batch_max records of schema->nslots */
    sl_typed_arena arena;       /* strings the decoders rewrote (JSON escapes, CSV "") */
    int *col_field;             /* csv: the field of each of the `columns` (or -1) */
    int ncols;
} sl_kafka_consumer;

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: kafka: out of memory\n");
    abort();
}

/* ---- callbacks into Lua ------------------------------------------------------------- */

/* The kind of an error, for saying each once: every way of not reaching the brokers is
 * one kind. */
static int error_kind(int err)
{
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT
        || err == RD_KAFKA_RESP_ERR__RESOLVE)
        return RD_KAFKA_RESP_ERR__TRANSPORT;
    return err;
}

/* Calls on_error(msg, fatal) once per kind of error until messages flow again (a fatal
 * one always). */
static void report_error(lua_State *L, sl_kafka_consumer *c, int err, const char *msg,
                         int fatal)
{
    if (c->on_error == LUA_NOREF || c->closing)
        return;
    if (!fatal && c->reported == error_kind(err))
        return;
    c->reported = error_kind(err);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_error);     /* fn */
    lua_pushstring(L, msg);                             /* fn msg */
    lua_pushboolean(L, fatal);                          /* fn msg fatal */
    sl_loop_call(L, 2);                                 /* -- */
}

/* Calls on_bad{topic=, partition=, offset=, reason=, raw=}. Stack unchanged. */
static void report_bad(lua_State *L, sl_kafka_consumer *c, const rd_kafka_message_t *m,
                       const char *reason)
{
    size_t rawlen = m->len < RAW_MAX ? m->len : RAW_MAX;

    if (c->on_bad == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_bad);       /* fn */
    lua_createtable(L, 0, 5);                           /* fn info */
    lua_pushstring(L, rd_kafka_topic_name(m->rkt));
    lua_setfield(L, -2, "topic");
    lua_pushinteger(L, m->partition);
    lua_setfield(L, -2, "partition");
    lua_pushnumber(L, (lua_Number)m->offset);
    lua_setfield(L, -2, "offset");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_pushlstring(L, m->payload ? m->payload : "", rawlen);
    lua_setfield(L, -2, "raw");                         /* fn info */
    sl_loop_call(L, 1);                                 /* -- */
}

/* Calls on_batch(batch, n, topic, partition, last_offset) for the n records in the batch
 * table at bi, clearing what a longer batch left past n first. */
static void deliver(lua_State *L, sl_kafka_consumer *c, int bi, int n, int *filled,
                    const char *topic, int32_t partition, int64_t last)
{
    for (int i = n + 1; i <= *filled; i++) {
        lua_pushnil(L);
        lua_rawseti(L, bi, i);
    }
    *filled = n;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_batch);     /* fn */
    lua_pushvalue(L, bi);                               /* fn batch */
    lua_pushinteger(L, n);                              /* fn batch n */
    lua_pushstring(L, topic);                           /* fn batch n topic */
    lua_pushinteger(L, partition);                      /* fn batch n topic p */
    lua_pushnumber(L, (lua_Number)last);                /* fn batch n topic p last */
    if (c->schema != NULL)      /* typed: the records are in the slots */
        lua_pushlightuserdata(L, c->slots);             /* fn batch n topic p last slots */
    sl_loop_call(L, c->schema != NULL ? 6 : 5);         /* -- */
    c->arena.used = 0;          /* the batch is gone, and with it its views */
}

/* Calls on_assign(list) or on_revoke(list), list = { {topic=, partition=}, ... }. */
static void call_parts(lua_State *L, int ref, const rd_kafka_topic_partition_list_t *parts)
{
    if (ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);             /* fn */
    lua_createtable(L, parts->cnt, 0);                  /* fn list */
    for (int i = 0; i < parts->cnt; i++) {
        lua_createtable(L, 0, 2);                       /* fn list p */
        lua_pushstring(L, parts->elems[i].topic);
        lua_setfield(L, -2, "topic");
        lua_pushinteger(L, parts->elems[i].partition);
        lua_setfield(L, -2, "partition");
        lua_rawseti(L, -2, i + 1);                      /* fn list */
    }
    sl_loop_call(L, 1);                                 /* -- */
}

/* ---- decoding ----------------------------------------------------------------------- */

/* Pushes the record of message m; on a bad value returns SL_CODEC_BAD with err set and
 * the stack unchanged. */
static int decode_value(lua_State *L, sl_kafka_consumer *c, const rd_kafka_message_t *m,
                        char *err)
{
    const char *s = m->payload ? m->payload : "";
    size_t len = m->len, used = 0;
    int rc;

    switch (c->format) {
    case FMT_LINES:
        lua_pushlstring(L, s, len);
        return SL_CODEC_OK;
    case FMT_JSON:
        return sl_json_decode(L, s, len, err);
    case FMT_CSV: {
        int ki = 0;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
            len--;
        if (c->columns_ref != LUA_NOREF) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, c->columns_ref);  /* cols */
            ki = lua_gettop(L);
        }
        rc = sl_csv_decode(L, s, len, ki, err);         /* [cols] rec */
        if (ki != 0)
            lua_remove(L, ki);                          /* rec | -- */
        return rc;
    }
    default:
        rc = sl_mpack_decode(L, s, len, &used, err);
        if (rc == SL_CODEC_MORE) {
            snprintf(err, SL_CODEC_ERRLEN, "msgpack: incomplete object (%d bytes)", (int)len);
            return SL_CODEC_BAD;
        }
        if (rc == SL_CODEC_OK && used != len) {
            lua_pop(L, 1);
            snprintf(err, SL_CODEC_ERRLEN, "msgpack: %d bytes after the object",
                     (int)(len - used));
            return SL_CODEC_BAD;
        }
        return rc;
    }
}

/* Decodes the value of message m into rec, a record of c->schema: SL_CODEC_OK, BAD with
 * err set (a wrong type names the field), or SL_TYPED_FULL (the arena cannot hold its
 * rewritten strings; nothing kept). Formats as decode_value reads them. */
static int decode_typed(sl_kafka_consumer *c, const rd_kafka_message_t *m,
                        sl_typed_field *rec, char *err)
{
    const char *s = m->payload ? m->payload : "";
    size_t len = m->len, used = 0;
    int rc;

    switch (c->format) {
    case FMT_JSON:
        return sl_typed_json_decode(c->schema, s, len, rec, &c->arena, err);
    case FMT_CSV:
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
            len--;
        return sl_typed_csv_decode(c->schema, c->col_field, c->ncols, s, len, rec, &c->arena,
                                   err);
    default:                    /* FMT_MSGPACK (lines cannot be typed: kafka.lua) */
        rc = sl_typed_mpack_decode(c->schema, s, len, &used, rec, err);
        if (rc == SL_CODEC_MORE) {
            snprintf(err, SL_CODEC_ERRLEN, "msgpack: incomplete object (%d bytes)", (int)len);
            return SL_CODEC_BAD;
        }
        if (rc == SL_CODEC_OK && used != len) {
            snprintf(err, SL_CODEC_ERRLEN, "msgpack: %d bytes after the object",
                     (int)(len - used));
            return SL_CODEC_BAD;
        }
        return rc;
    }
}

/* Room in the arena for the rewritten strings of a value of len bytes (never longer than
 * the value), when the arena holds nothing of a batch out: grows it. */
static void arena_fit(sl_kafka_consumer *c, size_t len)
{
    size_t want = len + 64;

    if (c->arena.cap >= want)
        return;
    if (want < 2 * c->arena.cap)
        want = 2 * c->arena.cap;
    free(c->arena.base);
    c->arena.base = malloc(want);
    if (c->arena.base == NULL)
        out_of_memory();
    c->arena.cap = want;
    c->arena.used = 0;
}

/* Pushes {topic, partition, offset, key, timestamp, headers, value} around the value on
 * top of the stack (meta=true). Stack: value -> record. */
static void wrap_meta(lua_State *L, const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    rd_kafka_headers_t *hdrs = NULL;

    lua_createtable(L, 0, 7);                           /* value rec */
    lua_insert(L, -2);                                  /* rec value */
    lua_setfield(L, -2, "value");                       /* rec */
    lua_pushstring(L, rd_kafka_topic_name(m->rkt));
    lua_setfield(L, -2, "topic");
    lua_pushinteger(L, m->partition);
    lua_setfield(L, -2, "partition");
    lua_pushnumber(L, (lua_Number)m->offset);
    lua_setfield(L, -2, "offset");
    if (m->key != NULL) {
        lua_pushlstring(L, m->key, m->key_len);
        lua_setfield(L, -2, "key");
    }
    if (ts >= 0) {
        lua_pushnumber(L, (lua_Number)ts);
        lua_setfield(L, -2, "timestamp");
    }
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL) {
        const char *name;
        const void *value;
        size_t size;
        lua_newtable(L);                                /* rec headers */
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size)
                           == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
            lua_pushlstring(L, value ? value : "", value ? size : 0);
            lua_setfield(L, -2, name);
        }
        lua_setfield(L, -2, "headers");                 /* rec */
    }
}

/* ---- bounded input --------------------------------------------------------------------- */

static part_end *find_part(sl_kafka_consumer *c, const char *topic, int32_t partition)
{
    for (int i = 0; i < c->nparts; i++)
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0)
            return &c->parts[i];
    return NULL;
}

/* Notes where each newly assigned partition ends now (a blocking query, once per
 * assignment); one already read to its end (resumed there) is done at once. */
static void note_ends(sl_kafka_consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo = 0, hi = 0;
        part_end *e = find_part(c, p->topic, p->partition);
        if (e == NULL) {
            if (c->nparts == c->capparts) {
                c->capparts = c->capparts ? 2 * c->capparts : 16;
                c->parts = realloc(c->parts, (size_t)c->capparts * sizeof *c->parts);
                if (c->parts == NULL)
                    out_of_memory();
            }
            e = &c->parts[c->nparts++];
            e->topic = strdup(p->topic);
            e->partition = p->partition;
            e->done = 0;
        }
        if (rd_kafka_query_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi,
                                             QUERY_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hi = INT64_MAX;     /* unknown: done only at an end-of-partition event past it */
        e->end = hi;
        e->done = hi == 0 || (p->offset >= 0 && p->offset >= hi);
    }
}

static void reached(sl_kafka_consumer *c, const char *topic, int32_t partition, int64_t next)
{
    part_end *e = find_part(c, topic, partition);

    if (e != NULL && !e->done && next >= e->end)
        e->done = 1;
}

/* Calls on_end() once every assigned partition is done. */
static void check_end(lua_State *L, sl_kafka_consumer *c)
{
    if (!c->bounded || c->ended || !c->assigned || c->closing)
        return;
    for (int i = 0; i < c->nparts; i++)
        if (!c->parts[i].done)
            return;
    c->ended = 1;
    if (c->on_end != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->on_end);   /* fn */
        sl_loop_call(L, 0);                             /* -- */
    }
}

/* ---- librdkafka callbacks (on the loop thread, while the queue is served) ---------------- */

/* Sets each partition's start from the resume offsets, where they name it. */
static void set_starts(lua_State *L, sl_kafka_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    if (c->offsets_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->offsets_ref);  /* offsets */
    for (int i = 0; i < parts->cnt; i++) {
        lua_getfield(L, -1, parts->elems[i].topic);     /* offsets parts|nil */
        if (lua_istable(L, -1)) {
            lua_rawgeti(L, -1, parts->elems[i].partition);  /* offsets parts off|nil */
            if (lua_type(L, -1) == LUA_TNUMBER)
                parts->elems[i].offset = (int64_t)lua_tonumber(L, -1);
            lua_pop(L, 1);                              /* offsets parts */
        }
        lua_pop(L, 1);                                  /* offsets */
    }
    lua_pop(L, 1);                                      /* -- */
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sl_kafka_consumer *c = opaque;
    lua_State *L = sl_loop_lua();
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* on_assigning may put where these partitions start into the offsets table (a
         * --group member: where the state it restored leaves off) */
        if (L != NULL && !c->closing) {
            call_parts(L, c->on_assigning, parts);
            set_starts(L, c, parts);
        }
        if (c->bounded)
            note_ends(c, parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (c->paused)
            rd_kafka_pause_partitions(rk, parts);
        c->assigned = 1;
        if (L != NULL && !c->closing)
            call_parts(L, c->on_assign, parts);
        /* the end of a bounded read is seen when serve() returns, not inside librdkafka */
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (L != NULL && !c->closing)
            call_parts(L, c->on_revoke, parts);
        /* messages of these partitions fetched before the revoke may sit in the batch
         * being served: they are the next owner's, from the offset committed above */
        for (int i = 0; i < parts->cnt; i++)
            rd_kafka_topic_partition_list_add(c->revoked, parts->elems[i].topic,
                                              parts->elems[i].partition);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    } else {
        rd_kafka_assign(rk, NULL);
        if (L != NULL) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: rebalance: %s", c->what, rd_kafka_err2str(err));
            report_error(L, c, err, msg, 0);
        }
    }
    if (error != NULL) {
        if (L != NULL) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: rebalance: %s", c->what, rd_kafka_error_string(error));
            report_error(L, c, rd_kafka_error_code(error), msg, 0);
        }
        rd_kafka_error_destroy(error);
    }
}

/* Client-level errors (brokers unreachable, ...): said once each, librdkafka retries. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    sl_kafka_consumer *c = opaque;
    lua_State *L = sl_loop_lua();
    char msg[512];
    int fatal = err == RD_KAFKA_RESP_ERR__FATAL;

    (void)rk;
    c->error_ms = uv_hrtime() / 1000000u;
    if (L == NULL)
        return;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT
        || err == RD_KAFKA_RESP_ERR__RESOLVE)
        snprintf(msg, sizeof msg, "%s: brokers unreachable (%s); retrying, records wait",
                 c->what, reason);
    else
        snprintf(msg, sizeof msg, "%s: %s", c->what, reason);
    report_error(L, c, err, msg, fatal);
}

/* librdkafka's log lines of errors repeat what error_cb says (once, here); only the
 * critical ones pass, unless the options asked for librdkafka's `debug` contexts. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= 2 || (level >= 7 && rk != NULL))
        fprintf(stderr, "sluice: kafka: %s: %s\n", fac, buf);
}

/* ---- serving the queue ------------------------------------------------------------------ */

static void serve(sl_kafka_consumer *c);
static void close_consumer(lua_State *L, sl_kafka_consumer *c);

static void on_more(uv_idle_t *h)
{
    serve(h->data);
}

static void set_more(sl_kafka_consumer *c, int on)
{
    if (on && !c->more_on)
        uv_idle_start(&c->more, on_more);
    else if (!on && c->more_on)
        uv_idle_stop(&c->more);
    c->more_on = on;
}

/* Handles one message that carries an error instead of a value. */
static void message_error(lua_State *L, sl_kafka_consumer *c, rd_kafka_message_t *m)
{
    char msg[512];

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->rkt != NULL)
            reached(c, rd_kafka_topic_name(m->rkt), m->partition, m->offset);
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
        || m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        snprintf(msg, sizeof msg, "%s: topic %s does not exist (%s)", c->what,
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "?", rd_kafka_message_errstr(m));
        report_error(L, c, m->err, msg, 1);
        return;
    }
    snprintf(msg, sizeof msg, "%s: %s", c->what, rd_kafka_message_errstr(m));
    report_error(L, c, m->err, msg, 0);
}

/* Takes what the queue holds, up to one batch: delivers each partition's run of records,
 * then serves again next turn if the batch was full. */
static void serve(sl_kafka_consumer *c)
{
    lua_State *L = sl_loop_lua();
    rd_kafka_message_t **msgs;
    ssize_t got;
    int bi, n = 0, filled, top;
    const char *run_topic = NULL;
    int32_t run_part = -1;
    int64_t run_last = -1, before = -1;
    char err[SL_CODEC_ERRLEN];

    if (L == NULL || c->closed || c->closing || c->paused) {
        set_more(c, 0);
        return;
    }
    msgs = malloc((size_t)c->batch_max * sizeof *msgs);
    if (msgs == NULL)
        out_of_memory();
    c->serving = 1;
    c->arena.used = 0;
    rd_kafka_topic_partition_list_destroy(c->revoked);
    c->revoked = rd_kafka_topic_partition_list_new(4);
    got = rd_kafka_consume_batch_queue(c->q, 0, msgs, (size_t)c->batch_max);
    top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->batch_ref);    /* batch */
    bi = lua_gettop(L);
    filled = (int)lua_objlen(L, bi);
    for (ssize_t i = 0; i < got && !c->closing && !c->closed; i++) {
        rd_kafka_message_t *m = msgs[i];
        const char *topic;
        if (m->err) {
            message_error(L, c, m);
            continue;
        }
        topic = rd_kafka_topic_name(m->rkt);
        if (c->revoked->cnt > 0
            && rd_kafka_topic_partition_list_find(c->revoked, topic, m->partition) != NULL)
            continue;
        if (n > 0 && (m->partition != run_part || strcmp(run_topic, topic) != 0)) {
            deliver(L, c, bi, n, &filled, run_topic, run_part, run_last);
            n = 0;
        }
        run_topic = topic;      /* lives while the message holds its topic handle */
        run_part = m->partition;
        before = run_last;
        run_last = m->offset;
        c->reported = 0;                                /* messages flow: say errors again */
        c->error_ms = 0;
        if (c->schema != NULL) {
            int rc = decode_typed(c, m, c->slots + (size_t)n * (size_t)c->schema->nslots,
                                  err);
            if (rc == SL_TYPED_FULL) {
                /* the records before it go first, then it is decoded again into an
                   empty arena that fits it */
                if (n > 0)
                    deliver(L, c, bi, n, &filled, run_topic, run_part, before);
                n = 0;
                if (c->closing || c->closed)
                    break;
                c->arena.used = 0;
                arena_fit(c, m->len);
                rc = decode_typed(c, m, c->slots, err);
            }
            if (rc == SL_CODEC_OK) {
                if (c->meta) {          /* the value (a view) is Lua's to put in */
                    lua_pushnil(L);                     /* batch nil */
                    wrap_meta(L, m);                    /* batch rec */
                    lua_rawseti(L, bi, n + 1);          /* batch */
                }
                n++;
            } else {
                report_bad(L, c, m, err);
            }
        } else if (decode_value(L, c, m, err) == SL_CODEC_OK) {    /* batch value */
            if (c->meta)
                wrap_meta(L, m);                        /* batch rec */
            lua_rawseti(L, bi, ++n);                    /* batch */
        } else {
            report_bad(L, c, m, err);
        }
        if (c->bounded)
            reached(c, topic, m->partition, m->offset + 1);
    }
    if (n > 0 && !c->closing && !c->closed)
        deliver(L, c, bi, n, &filled, run_topic, run_part, run_last);
    lua_settop(L, top);                                 /* -- */
    for (ssize_t i = 0; i < got; i++)
        rd_kafka_message_destroy(msgs[i]);
    free(msgs);
    if (!c->closed && !c->closing)
        check_end(L, c);
    c->serving = 0;
    if (c->close_pending) {
        close_consumer(L, c);
        return;
    }
    /* a full batch, or ops that came while serving: serve again next turn */
    set_more(c, (got == c->batch_max || rd_kafka_queue_length(c->q) > 0) && !c->paused
                && !c->closed && !c->closing);
}

static void on_ready(sl_kafka_wakeup *w)
{
    serve(w->owner);
}

/* ---- Lua methods -------------------------------------------------------------------------- */

static sl_kafka_consumer *check_consumer(lua_State *L, const char *method)
{
    sl_kafka_consumer **ud = luaL_checkudata(L, 1, SL_KAFKA_CONSUMER_MT);

    if (*ud == NULL || (*ud)->closed)
        luaL_error(L, "kafka consumer:%s(): the consumer is closed", method);
    return *ud;
}

/* consumer:stop(): flow control pauses fetching; consumer:start() resumes it. */
static int consumer_pause(lua_State *L, int pause)
{
    sl_kafka_consumer *c = check_consumer(L, pause ? "stop" : "start");
    rd_kafka_topic_partition_list_t *assigned = NULL;

    if (c->paused == pause)
        return 0;
    c->paused = pause;
    if (rd_kafka_assignment(c->rk, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR && assigned) {
        if (pause)
            rd_kafka_pause_partitions(c->rk, assigned);
        else
            rd_kafka_resume_partitions(c->rk, assigned);
        rd_kafka_topic_partition_list_destroy(assigned);
    }
    set_more(c, !pause);        /* what the queue holds already is served next turn */
    return 0;
}

static int consumer_stop(lua_State *L) { return consumer_pause(L, 1); }
static int consumer_start(lua_State *L) { return consumer_pause(L, 0); }

/* consumer:watermarks() -> array of {topic=, partition=, high=, position=}: for each
 * partition assigned here, the high watermark last known (each fetch response brings it;
 * no request is made, so this never blocks) and the consumer's position (the offset of
 * the next message it would hand over; nil before the first). A partition whose high
 * watermark is not known yet is left out. For --metrics' consumer lag. */
static int consumer_watermarks(lua_State *L)
{
    sl_kafka_consumer *c = check_consumer(L, "watermarks");
    rd_kafka_topic_partition_list_t *assigned = NULL;
    int n = 0;

    lua_newtable(L);                                    /* list */
    if (rd_kafka_assignment(c->rk, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR || !assigned)
        return 1;
    rd_kafka_position(c->rk, assigned);
    for (int i = 0; i < assigned->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &assigned->elems[i];
        int64_t low = -1, high = -1;

        if (rd_kafka_get_watermark_offsets(c->rk, tp->topic, tp->partition, &low, &high)
                != RD_KAFKA_RESP_ERR_NO_ERROR || high < 0)
            continue;
        lua_createtable(L, 0, 4);                       /* list t */
        lua_pushstring(L, tp->topic);
        lua_setfield(L, -2, "topic");
        lua_pushinteger(L, tp->partition);
        lua_setfield(L, -2, "partition");
        lua_pushnumber(L, (lua_Number)high);
        lua_setfield(L, -2, "high");
        if (tp->offset >= 0) {
            lua_pushnumber(L, (lua_Number)tp->offset);
            lua_setfield(L, -2, "position");
        }
        lua_rawseti(L, -2, ++n);                        /* list */
    }
    rd_kafka_topic_partition_list_destroy(assigned);
    return 1;
}

/* consumer:error_age() -> seconds since librdkafka last reported an error (each one counts,
 * also those not said again), or nil when none came since messages last flowed. While the
 * brokers stay unreachable librdkafka repeats its error at least every 30 s. */
static int consumer_error_age(lua_State *L)
{
    sl_kafka_consumer *c = check_consumer(L, "error_age");

    if (c->error_ms == 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)(uv_hrtime() / 1000000u - c->error_ms) / 1000);
    return 1;
}

/* consumer:commit(offsets [, sync]): hands { topic = { [p] = next offset } } to the group.
 * Without sync the offsets are only stored: librdkafka's auto-commit timer sends them
 * every COMMIT_MS, and commits a partition's stored offset when the partition is revoked
 * and at close. That timer skips its turn while the group rebalances; a commit sent then
 * goes out with the old generation behind the JoinGroup, and in librdkafka before 2.8.3
 * (issue #4059) its ILLEGAL_GENERATION answer resets the member's generation to -1, so
 * that its SyncGroup fails and it rejoins, again and again while commits keep coming.
 * With sync (a partition given up in a rebalance: the member that takes it over must find
 * its offset there) they are also committed now, unless the assignment was lost (the
 * partitions are someone else's already and the member's generation is gone). Offsets of
 * partitions not assigned to this member are left out. */
static int consumer_commit(lua_State *L)
{
    sl_kafka_consumer *c = check_consumer(L, "commit");
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int sync = lua_toboolean(L, 3);

    luaL_checktype(L, 2, LUA_TTABLE);
    list = sl_kafka_offsets_from(L, 2);
    if (list->cnt > 0) {
        err = rd_kafka_offsets_store(c->rk, list);
        if (err == RD_KAFKA_RESP_ERR__STATE)
            err = RD_KAFKA_RESP_ERR_NO_ERROR;      /* none of them is assigned here now */
        else if (!err && sync && !rd_kafka_assignment_lost(c->rk))
            err = rd_kafka_commit(c->rk, list, 0);
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        lua_pushnil(L);
        lua_pushstring(L, rd_kafka_err2str(err));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* The consumer handle, for the producer's send_offsets (kafka_producer.c). */
rd_kafka_t *sl_kafka_consumer_handle(lua_State *L, int idx)
{
    sl_kafka_consumer **ud = luaL_checkudata(L, idx, SL_KAFKA_CONSUMER_MT);

    if (*ud == NULL || (*ud)->closed)
        luaL_error(L, "kafka: the consumer is closed");
    return (*ud)->rk;
}

/* The poll handle closes first (its data is the wakeup, whose owner is the consumer),
 * then the idle handle (its data is the consumer), which frees the consumer. */
static void on_closed(uv_handle_t *h)
{
    sl_kafka_consumer *c;

    if (h->type == UV_POLL) {
        c = ((sl_kafka_wakeup *)h->data)->owner;
        uv_close((uv_handle_t *)&c->more, on_closed);
        return;
    }
    c = h->data;
    free(c->what);
    free(c->slots);
    free(c->arena.base);
    free(c->col_field);
    rd_kafka_topic_partition_list_destroy(c->revoked);
    for (int i = 0; i < c->nparts; i++)
        free(c->parts[i].topic);
    free(c->parts);
    free(c);
}

/* Leaves the group (revoking what it holds), destroys the client, releases the refs. */
static void close_consumer(lua_State *L, sl_kafka_consumer *c)
{
    int refs[] = {c->on_batch, c->on_bad, c->on_assign, c->on_revoke, c->on_error,
                  c->on_end, c->on_assigning, c->offsets_ref, c->columns_ref, c->batch_ref, c->self_ref,
                  c->schema_ref};

    if (c->closed)
        return;
    c->closing = 1;
    set_more(c, 0);
    if (c->serving) {
        /* never from inside librdkafka's own call: serve() closes it on its way out */
        c->close_pending = 1;
        return;
    }
    if (c->slot != NULL)
        *c->slot = NULL;
    rd_kafka_consumer_close(c->rk);
    sl_kafka_wakeup_stop(&c->wake, c->q, on_closed);
    rd_kafka_queue_destroy(c->q);
    /* librdkafka 2.0 asserts when a cooperative-sticky member is destroyed between its
     * first JoinGroup and SyncGroup (rd_kafka_cgrp_destroy_final has no NULL check for
     * the assignor's state before 2.1): a consumer that never got an assignment is left
     * to the end of the process instead (its threads idle, the group has been left). */
    if (c->assigned)
        rd_kafka_destroy(c->rk);
    c->closed = 1;
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        if (refs[i] != LUA_NOREF && refs[i] != LUA_REFNIL)
            luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
}

static int consumer_close(lua_State *L)
{
    sl_kafka_consumer **ud = luaL_checkudata(L, 1, SL_KAFKA_CONSUMER_MT);

    if (*ud != NULL && !(*ud)->closed)
        close_consumer(L, *ud);     /* empties *ud, now or when serve() returns */
    return 0;
}

static int consumer_gc(lua_State *L)
{
    return consumer_close(L);
}

/* ---- core.kafka_consumer{...} ----------------------------------------------------------- */

/* Whether each topic of the array at ti exists: when the brokers answer within CHECK_MS
 * and say one does not, returns its name (else NULL: they exist, or the brokers cannot be
 * reached yet, which the consumer reports and retries). */
static const char *missing_topic(lua_State *L, rd_kafka_t *rk, int ti)
{
    for (int i = 1; i <= (int)lua_objlen(L, ti); i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        int missing;
        lua_rawgeti(L, ti, i);                          /* name */
        rkt = rd_kafka_topic_new(rk, lua_tostring(L, -1), NULL);
        err = rd_kafka_metadata(rk, 0, rkt, &md, CHECK_MS);
        missing = err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1
                  && (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                      || md->topics[0].err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC);
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (missing)
            return lua_tostring(L, -1);     /* anchored by the topics array */
        lua_pop(L, 1);                                  /* -- */
    }
    return NULL;
}

static int opt_ref(lua_State *L, const char *name, int type, int required)
{
    lua_getfield(L, 1, name);
    if (lua_isnil(L, -1) && !required) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    if (lua_type(L, -1) != type)
        luaL_error(L, "core.kafka_consumer: %s must be a %s", name, lua_typename(L, type));
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static int opt_bool(lua_State *L, const char *name)
{
    int b;
    lua_getfield(L, 1, name);
    b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

/* Makes c decode typed records of schema sc (opts at index 1; csv: its columns, each the
 * field of its name or none). */
static void set_schema(lua_State *L, sl_kafka_consumer *c, const sl_schema *sc)
{
    c->schema = sc;
    c->slots = malloc((size_t)c->batch_max * (size_t)sc->nslots * sizeof *c->slots);
    c->arena.cap = 64 * 1024;
    c->arena.base = malloc(c->arena.cap);
    if (c->slots == NULL || c->arena.base == NULL)
        out_of_memory();
    if (c->format != FMT_CSV)
        return;
    lua_getfield(L, 1, "columns");                      /* cols */
    c->col_field = sl_schema_columns(L, lua_gettop(L), sc, &c->ncols);
    lua_pop(L, 1);                                      /* -- */
}

/* The share of worker `me` of `n` (sluice run --workers N): of every partition of the
 * topics (opts.topics at index 1), in the order of the topics and then of their partitions,
 * the i-th is worker i % n + 1's. Assigned as a group's rebalance would (resume offsets,
 * bounded ends, on_assign), but once: the workers of one job share the partitions among
 * themselves, without the group protocol, so that no partition moves while they run. */
static rd_kafka_resp_err_t assign_share(lua_State *L, sl_kafka_consumer *c, int me, int n)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int i = 0;

    lua_getfield(L, 1, "topics");                       /* ... topics */
    for (int t = 1; t <= (int)lua_objlen(L, -1) && !err; t++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        const char *topic;

        lua_rawgeti(L, -1, t);                          /* ... topics name */
        topic = lua_tostring(L, -1);
        rkt = rd_kafka_topic_new(c->rk, topic, NULL);
        err = rd_kafka_metadata(c->rk, 0, rkt, &md, CHECK_MS);
        if (!err && md->topic_cnt == 1 && md->topics[0].err)
            err = md->topics[0].err;
        if (!err)
            for (int p = 0; p < md->topics[0].partition_cnt; p++, i++)
                if (i % n == me - 1)
                    rd_kafka_topic_partition_list_add(parts, topic,
                                                      md->topics[0].partitions[p].id);
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        lua_pop(L, 1);                                  /* ... topics */
    }
    lua_pop(L, 1);                                      /* ... */
    if (!err) {
        set_starts(L, c, parts);
        if (c->bounded)
            note_ends(c, parts);
        err = rd_kafka_assign(c->rk, parts);
    }
    if (!err) {
        c->assigned = 1;
        call_parts(L, c->on_assign, parts);
        set_more(c, 1);         /* serve once: a bounded share may be at its end already */
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return err;
}

int sl_kafka_consumer_new(lua_State *L)
{
    char errstr[SL_KAFKA_ERRLEN];
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t err;
    sl_kafka_consumer *c, **ud;
    const char *fmt, *group, *start, *what;
    int format, share_me, share_n;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "what");
    what = lua_isstring(L, -1) ? lua_tostring(L, -1) : "source.kafka";
    lua_getfield(L, 1, "format");
    fmt = lua_isstring(L, -1) ? lua_tostring(L, -1) : "json";
    for (format = 0; formats[format] != NULL && strcmp(formats[format], fmt) != 0; format++)
        ;
    if (formats[format] == NULL)
        return luaL_error(L, "%s: unknown format '%s' (lines, json, csv or msgpack)", what, fmt);
    lua_getfield(L, 1, "group");
    group = lua_tostring(L, -1);
    if (group == NULL)
        return luaL_error(L, "%s: group is required", what);
    lua_getfield(L, 1, "start");
    start = lua_isstring(L, -1) ? lua_tostring(L, -1) : "earliest";
    lua_getfield(L, 1, "topics");
    if (!lua_istable(L, -1) || lua_objlen(L, -1) == 0)
        return luaL_error(L, "%s: topics must be an array of names", what);
    lua_getfield(L, 1, "on_batch");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "%s: on_batch must be a function", what);
    lua_getfield(L, 1, "schema");
    if (!lua_isnil(L, -1)) {
        sl_schema_check(L, -1);
        if (format == FMT_LINES)
            return luaL_error(L, "%s: schema needs format json, csv or msgpack", what);
        lua_getfield(L, 1, "columns");
        if (format == FMT_CSV && !lua_istable(L, -1))
            return luaL_error(L, "%s: schema with format csv needs columns", what);
    }
    lua_getfield(L, 1, "share_me");
    share_me = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 1;
    lua_getfield(L, 1, "share_n");
    share_n = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 1;
    if (share_n < 1 || share_me < 1 || share_me > share_n)
        return luaL_error(L, "%s: share %d of %d", what, share_me, share_n);
    lua_settop(L, 1);

    conf = rd_kafka_conf_new();
    sl_kafka_conf_set(L, conf, "group.id", group, what);
    sl_kafka_conf_set(L, conf, "partition.assignment.strategy", "cooperative-sticky", what);
    sl_kafka_conf_set(L, conf, "enable.auto.commit", "true", what);   /* what commit() stores */
    sl_kafka_conf_set(L, conf, "enable.auto.offset.store", "false", what);
    sl_kafka_conf_set(L, conf, "auto.commit.interval.ms", COMMIT_MS, what);
    sl_kafka_conf_set(L, conf, "auto.offset.reset", start, what);
    sl_kafka_conf_set(L, conf, "queued.max.messages.kbytes", "16384", what);
    sl_kafka_conf_set(L, conf, "log_level", "3", what);
    if (opt_bool(L, "bounded"))
        sl_kafka_conf_set(L, conf, "enable.partition.eof", "true", what);
    sl_kafka_conf_apply(L, 1, conf, what);

    c = calloc(1, sizeof *c);
    if (c == NULL)
        out_of_memory();
    c->format = format;
    c->meta = opt_bool(L, "meta");
    c->bounded = opt_bool(L, "bounded");
    lua_getfield(L, 1, "batch");
    c->batch_max = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : BATCH_MAX;
    lua_pop(L, 1);
    if (c->batch_max < 1)
        c->batch_max = 1;
    c->what = strdup(what);
    c->revoked = rd_kafka_topic_partition_list_new(4);
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (c->rk == NULL) {
        free(c->what);
        free(c);
        return luaL_error(L, "%s: %s", what, errstr);
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->q = rd_kafka_queue_get_consumer(c->rk);

    c->on_batch = opt_ref(L, "on_batch", LUA_TFUNCTION, 1);
    c->on_bad = opt_ref(L, "on_bad", LUA_TFUNCTION, 0);
    c->on_assign = opt_ref(L, "on_assign", LUA_TFUNCTION, 0);
    c->on_assigning = opt_ref(L, "on_assigning", LUA_TFUNCTION, 0);
    c->on_revoke = opt_ref(L, "on_revoke", LUA_TFUNCTION, 0);
    c->on_error = opt_ref(L, "on_error", LUA_TFUNCTION, 0);
    c->on_end = opt_ref(L, "on_end", LUA_TFUNCTION, 0);
    c->offsets_ref = opt_ref(L, "offsets", LUA_TTABLE, 0);
    c->columns_ref = opt_ref(L, "columns", LUA_TTABLE, 0);
    lua_createtable(L, c->batch_max, 0);
    c->batch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    c->schema_ref = LUA_NOREF;
    lua_getfield(L, 1, "schema");                       /* opts schema|nil */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);                                  /* opts */
    } else {
        set_schema(L, c, sl_schema_check(L, -1));
        c->schema_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* opts */
    }

    ud = lua_newuserdata(L, sizeof *ud);                /* opts ud */
    *ud = c;
    c->slot = ud;
    luaL_getmetatable(L, SL_KAFKA_CONSUMER_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    uv_idle_init(sl_loop_get(), &c->more);
    c->more.data = c;
    sl_kafka_wakeup_start(L, &c->wake, c->q, on_ready, c);

    lua_getfield(L, 1, "topics");                       /* opts ud topics */
    {
        const char *missing = missing_topic(L, c->rk, lua_gettop(L));
        if (missing != NULL) {
            lua_pushfstring(L, "%s: topic %s does not exist", what, missing);
            close_consumer(L, c);
            *ud = NULL;
            return lua_error(L);
        }
    }
    topics = rd_kafka_topic_partition_list_new((int)lua_objlen(L, -1));
    for (int i = 1; i <= (int)lua_objlen(L, -1); i++) {
        lua_rawgeti(L, -1, i);
        rd_kafka_topic_partition_list_add(topics, luaL_checkstring(L, -1),
                                          RD_KAFKA_PARTITION_UA);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);                                      /* opts ud */
    if (share_n > 1) {
        /* a worker's share, chosen here (no group protocol between the workers) */
        rd_kafka_topic_partition_list_destroy(topics);
        err = assign_share(L, c, share_me, share_n);
        if (err) {
            close_consumer(L, c);
            *ud = NULL;
            return luaL_error(L, "%s: assign: %s", what, rd_kafka_err2str(err));
        }
        return 1;
    }
    err = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        close_consumer(L, c);
        *ud = NULL;
        return luaL_error(L, "%s: subscribe: %s", what, rd_kafka_err2str(err));
    }
    return 1;                                           /* ud */
}

/* core.kafka_committed{brokers=, group=, options=, offsets=, timeout=} -> the group's
 * committed offsets { topic = { [p] = offset } } for the partitions of `offsets` (offset
 * < 0: none committed), or nil, message when the brokers did not answer in time. Asks
 * with a client of its own that joins no group: a restart uses it to learn whether the
 * transaction of its newest checkpoint committed. */
int sl_kafka_committed(lua_State *L)
{
    char errstr[SL_KAFKA_ERRLEN];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err;
    int ms;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "group");
    if (!lua_isstring(L, -1))
        return luaL_error(L, "core.kafka_committed: group is required");
    conf = rd_kafka_conf_new();
    sl_kafka_conf_set(L, conf, "group.id", lua_tostring(L, -1), "kafka");
    sl_kafka_conf_set(L, conf, "log_level", "0", "kafka");
    sl_kafka_conf_apply(L, 1, conf, "kafka");
    lua_getfield(L, 1, "timeout");
    ms = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 30000;
    /* A transaction whose commit a crash interrupted still completes on the brokers: a
     * producer of the same transactional.id that initializes waits for that (and aborts
     * one never committed), so the offsets read after it are final. */
    lua_getfield(L, 1, "transactional_id");
    if (lua_isstring(L, -1)) {
        rd_kafka_conf_t *pc = rd_kafka_conf_new();
        rd_kafka_t *p;
        rd_kafka_error_t *e;
        sl_kafka_conf_set(L, pc, "transactional.id", lua_tostring(L, -1), "kafka");
        sl_kafka_conf_set(L, pc, "log_level", "0", "kafka");
        sl_kafka_conf_apply(L, 1, pc, "kafka");
        p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr);
        if (p == NULL) {
            rd_kafka_conf_destroy(conf);
            return luaL_error(L, "kafka: %s", errstr);
        }
        e = rd_kafka_init_transactions(p, ms);
        rd_kafka_destroy(p);
        if (e != NULL) {
            rd_kafka_conf_destroy(conf);
            lua_pushnil(L);
            lua_pushstring(L, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return 2;
        }
    }
    lua_pop(L, 1);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk == NULL)
        return luaL_error(L, "kafka: %s", errstr);
    lua_getfield(L, 1, "offsets");
    if (!lua_istable(L, -1)) {
        rd_kafka_destroy(rk);
        return luaL_error(L, "core.kafka_committed: offsets must be a table");
    }
    list = sl_kafka_offsets_from(L, lua_gettop(L));
    err = list->cnt > 0 ? rd_kafka_committed(rk, list, ms) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err) {
        rd_kafka_topic_partition_list_destroy(list);
        rd_kafka_destroy(rk);
        lua_pushnil(L);
        lua_pushstring(L, rd_kafka_err2str(err));
        return 2;
    }
    sl_kafka_push_offsets(L, list);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_destroy(rk);
    return 1;
}

static const luaL_Reg consumer_methods[] = {
    {"start", consumer_start},
    {"stop", consumer_stop},
    {"commit", consumer_commit},
    {"watermarks", consumer_watermarks},
    {"error_age", consumer_error_age},
    {"close", consumer_close},
    {NULL, NULL}
};

void sl_kafka_consumer_register(lua_State *L)
{
    luaL_newmetatable(L, SL_KAFKA_CONSUMER_MT);         /* mt */
    lua_newtable(L);                                    /* mt methods */
    luaL_setfuncs(L, consumer_methods, 0);
    lua_setfield(L, -2, "__index");                     /* mt */
    lua_pushcfunction(L, consumer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);                                      /* -- */
}
