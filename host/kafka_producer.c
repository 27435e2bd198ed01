/* kafka_producer.c -- core.kafka_producer: batches of Lua values encoded in C and produced
 * to one topic by an idempotent (optionally transactional) librdkafka producer.
 *
 * write() encodes each record and hands it to librdkafka's queue, keyed by a field of the
 * record or by keys Lua computed, and stops at the first record the queue has no room
 * for, saying where: the caller keeps the rest and holds back its sources until the queue
 * drains. Delivery reports come back through the loop (kafka.h): a message that failed
 * is handed to on_failed with its value and why, never dropped silently; on_event() is
 * called after each round of reports so the caller can resume.
 *
 * produce() is the raw path --group's runtime takes for changelogs and repartition
 * topics: messages already made of bytes, each to its own topic and partition, with keys,
 * headers and timestamps; a producer made without a topic serves only that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "buf.h"
#include "codec.h"
#include "kafka.h"
#include "typed.h"
#include "loop.h"

enum { FMT_JSON, FMT_LINES, FMT_MSGPACK };
static const char *const formats[] = {"json", "lines", "msgpack", NULL};

typedef struct sl_kafka_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;      /* the topic of write(), or NULL: produce() only */
    rd_kafka_queue_t *q;        /* the main queue: delivery reports and errors */
    sl_kafka_wakeup wake;
    lua_State *L;               /* the state reports are built on while a call serves them */
    int format;
    char *key_field;            /* the record field that holds the message key, or NULL */
    char *what;                 /* "sink.kafka TOPIC", for messages */
    int on_failed, on_event, on_error, failed_ref, self_ref;    /* registry refs */
    int nfailed;                /* entries in the failed table not yet handed on */
    double delivered, failures;
    double queued;              /* bytes (values and keys) produced and not yet reported */
    int reported;               /* the kind of error said last, so that it is said once */
    int closed;
} sl_kafka_producer;

/* ---- reports ------------------------------------------------------------------------- */

/* A delivery report: a failed message goes into the failed table, with its value. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    sl_kafka_producer *p = opaque;
    lua_State *L = p->L;

    (void)rk;
    p->queued -= (double)(m->len + m->key_len);
    if (p->queued < 0)
        p->queued = 0;
    if (!m->err) {
        p->delivered++;
        p->reported = 0;
        return;
    }
    p->failures++;
    if (L == NULL)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->failed_ref);  /* failed */
    lua_createtable(L, 0, 5);                           /* failed f */
    lua_pushstring(L, rd_kafka_err2str(m->err));
    lua_setfield(L, -2, "reason");
    lua_pushstring(L, rd_kafka_topic_name(m->rkt));
    lua_setfield(L, -2, "topic");
    lua_pushinteger(L, m->partition);
    lua_setfield(L, -2, "partition");
    lua_pushlstring(L, m->payload ? m->payload : "", m->payload ? m->len : 0);
    lua_setfield(L, -2, "value");
    if (m->key != NULL) {
        lua_pushlstring(L, m->key, m->key_len);
        lua_setfield(L, -2, "key");
    }
    lua_rawseti(L, -2, ++p->nfailed);                   /* failed */
    lua_pop(L, 1);                                      /* -- */
}

/* Calls on_error(msg, fatal) once per kind of error (every way of not reaching the
 * brokers is one) until a delivery succeeds again; a fatal one always. */
static void report(lua_State *L, sl_kafka_producer *p, int err, const char *msg, int fatal)
{
    int kind = err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__RESOLVE
               ? RD_KAFKA_RESP_ERR__TRANSPORT : err;

    if (p->on_error == LUA_NOREF || L == NULL)
        return;
    if (!fatal && p->reported == kind)
        return;
    p->reported = kind;
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->on_error);     /* fn */
    lua_pushstring(L, msg);
    lua_pushboolean(L, fatal);
    sl_loop_call(L, 2);                                 /* -- */
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    sl_kafka_producer *p = opaque;
    char msg[512];

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT
        || err == RD_KAFKA_RESP_ERR__RESOLVE)
        snprintf(msg, sizeof msg, "%s: brokers unreachable (%s); retrying, records wait",
                 p->what, reason);
    else
        snprintf(msg, sizeof msg, "%s: %s", p->what, reason);
    report(p->L, p, err, msg, err == RD_KAFKA_RESP_ERR__FATAL);
}

/* librdkafka's log lines of errors repeat what error_cb says (once, here); only the
 * critical ones pass, unless the options asked for librdkafka's `debug` contexts. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= 2 || (level >= 7 && rk != NULL))
        fprintf(stderr, "sluice: kafka: %s: %s\n", fac, buf);
}

/* Serves the queue's reports on L, then hands failures to on_failed(list) and calls
 * on_event(). Stack unchanged. */
static void serve(lua_State *L, sl_kafka_producer *p, int timeout_ms)
{
    if (p->closed || L == NULL)
        return;
    p->L = L;
    rd_kafka_poll(p->rk, timeout_ms);
    if (p->nfailed > 0 && p->on_failed != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->on_failed);    /* fn */
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->failed_ref);   /* fn failed */
        lua_newtable(L);
        lua_rawseti(L, LUA_REGISTRYINDEX, p->failed_ref);
        p->nfailed = 0;
        sl_loop_call(L, 1);                             /* -- */
    }
    if (p->on_event != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, p->on_event); /* fn */
        sl_loop_call(L, 0);                             /* -- */
    }
}

static void on_ready(sl_kafka_wakeup *w)
{
    serve(sl_loop_lua(), w->owner, 0);
}

/* ---- Lua methods -------------------------------------------------------------------- */

static sl_kafka_producer *check_producer(lua_State *L, const char *method)
{
    sl_kafka_producer **ud = luaL_checkudata(L, 1, SL_KAFKA_PRODUCER_MT);

    if (*ud == NULL || (*ud)->closed)
        luaL_error(L, "kafka producer:%s(): the producer is closed", method);
    (*ud)->L = L;
    return *ud;
}

/* Appends the value of the record at idx to out. */
static int encode(lua_State *L, sl_kafka_producer *p, int idx, sl_buf *out, char *err)
{
    switch (p->format) {
    case FMT_JSON:
        return sl_json_encode(L, idx, out, err);
    case FMT_LINES:
        return sl_line_encode(L, idx, out, err);
    default:
        return sl_mpack_encode(L, idx, out, err);
    }
}

/* Appends the value of the typed record rec (typed.h) to out, as encode() would its
 * table form. */
static int encode_typed(sl_kafka_producer *p, const sl_typed_field *rec, sl_buf *out,
                        char *err)
{
    if (p->format == FMT_JSON || p->format == FMT_LINES)
        return sl_typed_json_encode(rec, out, err);
    return sl_typed_mpack_encode(rec, out, err);
}

/* Pushes the key field of the typed record rec, as key_of reads a table's: a string, a
 * number, or nil. */
static void push_typed_key(lua_State *L, const sl_kafka_producer *p, const sl_typed_field *rec)
{
    const sl_schema_field *f = sl_schema_find(rec[0].v.schema, p->key_field,
                                              strlen(p->key_field));
    const sl_typed_field *v = f != NULL ? &rec[f->slot] : NULL;

    if (v == NULL || !v->present)
        lua_pushnil(L);
    else if (f->type == SL_TYPED_STRING)
        lua_pushlstring(L, v->v.str, v->len);
    else if (f->type == SL_TYPED_I64)
        lua_pushnumber(L, (lua_Number)v->v.i64);
    else if (f->type == SL_TYPED_F64)
        lua_pushnumber(L, v->v.f64);
    else
        lua_pushnil(L);
}

/* The key of the record at idx: keys[i] when a keys table is at ki, else its key field.
 * Strings and numbers serve; anything else (or none) means no key. */
static const char *key_of(lua_State *L, sl_kafka_producer *p, int idx, int ki, int i,
                          const sl_typed_field *typed, size_t *len)
{
    if (ki != 0)
        lua_rawgeti(L, ki, i);                          /* key */
    else if (p->key_field != NULL && typed != NULL)
        push_typed_key(L, p, typed);                    /* key */
    else if (p->key_field != NULL && lua_istable(L, idx))
        lua_getfield(L, idx, p->key_field);             /* key */
    else
        lua_pushnil(L);                                 /* nil */
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
        return lua_tolstring(L, -1, len);               /* key (converted in place) */
    *len = 0;
    return NULL;
}

/* producer:write(batch, n [, keys [, views]]) -> bad, stopped: views, as writer.c's
 * write takes them, says which records are typed (encoded from their slots); bad is nil
 * or an array of
 * {index=, reason=} for records it could not encode or that librdkafka refused (skipped);
 * stopped is nil, or the index of the first record not produced because the queue is
 * full (that one and the rest are the caller's to write again). */
static int producer_write(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "write");
    int n = (int)luaL_checkinteger(L, 3), ki = 0, nbad = 0, bad_idx = 0, i;
    char err[SL_CODEC_ERRLEN];
    sl_buf buf;

    const sl_typed_field *const *views = NULL;

    if (p->rkt == NULL)
        return luaL_error(L, "%s: producer:write(): this producer was made without a topic "
                          "(for produce() only)", p->what);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_istable(L, 4))
        ki = 4;
    if (!lua_isnoneornil(L, 5))     /* an FFI array: lua_topointer gives its elements */
        views = (const sl_typed_field *const *)lua_topointer(L, 5);
    lua_settop(L, 5);
    sl_buf_init(&buf);
    for (i = 1; i <= n; i++) {
        size_t klen;
        const char *key;
        rd_kafka_resp_err_t perr;
        const char *reason = NULL;
        const sl_typed_field *typed = views != NULL ? views[i - 1] : NULL;
        int rc;

        lua_rawgeti(L, 2, i);                           /* rec */
        buf.len = 0;
        if (typed != NULL)
            rc = encode_typed(p, typed, &buf, err);
        else
            rc = encode(L, p, lua_gettop(L), &buf, err);
        if (rc != SL_CODEC_OK) {
            reason = err;
            lua_pop(L, 1);                              /* -- */
        } else {
            key = key_of(L, p, lua_gettop(L), ki, i, typed, &klen);     /* rec key */
            perr = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->rkt),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_VALUE(buf.len ? buf.data : "", buf.len),
                                     RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_END);
            lua_pop(L, 2);                              /* -- */
            if (perr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            if (perr)
                reason = rd_kafka_err2str(perr);
            else
                p->queued += (double)(buf.len + klen);
        }
        if (reason != NULL) {
            if (bad_idx == 0) {
                lua_newtable(L);                        /* bad */
                bad_idx = lua_gettop(L);
            }
            lua_createtable(L, 0, 2);                   /* bad b */
            lua_pushinteger(L, i);
            lua_setfield(L, -2, "index");
            lua_pushstring(L, reason);
            lua_setfield(L, -2, "reason");
            lua_rawseti(L, bad_idx, ++nbad);            /* bad */
        }
    }
    sl_buf_free(&buf);
    if (bad_idx != 0)
        lua_pushvalue(L, bad_idx);                      /* bad */
    else
        lua_pushnil(L);
    if (i <= n)
        lua_pushinteger(L, i);
    else
        lua_pushnil(L);
    return 2;
}

/* Adds a failure that librdkafka reported at once (not in a delivery report) to the
 * failed table, as dr_msg_cb does: on_failed has it with the next reports. */
static void failed_now(lua_State *L, sl_kafka_producer *p, rd_kafka_resp_err_t err,
                       const char *topic, int32_t partition, const char *key, size_t klen,
                       const char *value, size_t vlen)
{
    p->failures++;
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->failed_ref);  /* failed */
    lua_createtable(L, 0, 5);                           /* failed f */
    lua_pushstring(L, rd_kafka_err2str(err));
    lua_setfield(L, -2, "reason");
    lua_pushstring(L, topic);
    lua_setfield(L, -2, "topic");
    lua_pushinteger(L, partition);
    lua_setfield(L, -2, "partition");
    lua_pushlstring(L, value != NULL ? value : "", vlen);
    lua_setfield(L, -2, "value");
    if (key != NULL) {
        lua_pushlstring(L, key, klen);
        lua_setfield(L, -2, "key");
    }
    lua_rawseti(L, -2, ++p->nfailed);                   /* failed */
    lua_pop(L, 1);                                      /* -- */
}

/* The headers table at idx ({ name = value, ... }) as librdkafka headers, or NULL when
 * there is none. Raises on a value that is not a string (nothing allocated then). */
static rd_kafka_headers_t *headers_of(lua_State *L, int idx, int i)
{
    rd_kafka_headers_t *hdrs;

    if (lua_isnil(L, idx))
        return NULL;
    if (!lua_istable(L, idx))
        luaL_error(L, "kafka producer:produce(): message %d: headers must be a table", i);
    lua_pushnil(L);                                     /* nil */
    while (lua_next(L, idx) != 0) {                     /* k v */
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "kafka producer:produce(): message %d: headers must map names to "
                       "strings", i);
        lua_pop(L, 1);                                  /* k */
    }
    hdrs = rd_kafka_headers_new(8);
    lua_pushnil(L);                                     /* nil */
    while (lua_next(L, idx) != 0) {                     /* k v */
        size_t nlen, vlen;
        const char *name = lua_tolstring(L, -2, &nlen);
        const char *value = lua_tolstring(L, -1, &vlen);
        rd_kafka_header_add(hdrs, name, (ssize_t)nlen, value, (ssize_t)vlen);
        lua_pop(L, 1);                                  /* k */
    }
    return hdrs;
}

/* producer:produce(list [, first]) -> nil when every message of list from index first (1
 * by default) on was queued, else the index of the first the full queue refused (it and
 * the rest are the caller's to produce again, from that index, after poll() or flush()). Each message is { topic = s, partition = n|nil (nil: the
 * partitioner), key = s|nil, value = s|nil (nil: a tombstone), timestamp = ms|nil,
 * headers = { name = s }|nil }, raw bytes. A message librdkafka refuses at once (an
 * unknown partition, too large) goes to on_failed with the delivery failures, with its
 * topic and partition. A transactional producer's messages join the open transaction. */
static int producer_produce(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "produce");
    int n, i, first;

    luaL_checktype(L, 2, LUA_TTABLE);
    first = (int)luaL_optinteger(L, 3, 1);
    if (first < 1)
        return luaL_error(L, "%s: producer:produce(): first must be 1 or more", p->what);
    lua_settop(L, 2);
    n = (int)lua_objlen(L, 2);
    for (i = first; i <= n; i++) {
        size_t klen = 0, vlen = 0;
        const char *topic, *key, *value;
        int32_t partition = RD_KAFKA_PARTITION_UA;
        int64_t ts = 0;
        rd_kafka_headers_t *hdrs;
        rd_kafka_resp_err_t err;

        lua_rawgeti(L, 2, i);                           /* m */
        if (!lua_istable(L, 3))
            return luaL_error(L, "%s: producer:produce(): message %d is a %s, not a table",
                              p->what, i, luaL_typename(L, 3));
        lua_getfield(L, 3, "topic");                    /* m topic */
        lua_getfield(L, 3, "partition");                /* m topic part */
        lua_getfield(L, 3, "key");                      /* m topic part key */
        lua_getfield(L, 3, "value");                    /* m topic part key value */
        lua_getfield(L, 3, "timestamp");                /* m topic part key value ts */
        lua_getfield(L, 3, "headers");                  /* m topic part key value ts hdrs */
        if (lua_type(L, 4) != LUA_TSTRING)
            return luaL_error(L, "%s: producer:produce(): message %d has no topic", p->what, i);
        topic = lua_tostring(L, 4);
        if (!lua_isnil(L, 5)) {
            if (lua_type(L, 5) != LUA_TNUMBER || lua_tointeger(L, 5) < 0)
                return luaL_error(L, "%s: producer:produce(): message %d: partition must be "
                                  "a number >= 0 or nil", p->what, i);
            partition = (int32_t)lua_tointeger(L, 5);
        }
        key = lua_type(L, 6) == LUA_TSTRING ? lua_tolstring(L, 6, &klen) : NULL;
        value = lua_type(L, 7) == LUA_TSTRING ? lua_tolstring(L, 7, &vlen) : NULL;
        if ((!lua_isnil(L, 6) && key == NULL) || (!lua_isnil(L, 7) && value == NULL))
            return luaL_error(L, "%s: producer:produce(): message %d: key and value must be "
                              "strings or nil", p->what, i);
        if (lua_type(L, 8) == LUA_TNUMBER)
            ts = (int64_t)lua_tonumber(L, 8);
        hdrs = headers_of(L, 9, i);
        err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_VALUE((void *)value, vlen),
                                RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_TIMESTAMP(ts),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (err && hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);     /* librdkafka owns them only on success */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        if (err)
            failed_now(L, p, err, topic, partition, key, klen, value, vlen);
        else
            p->queued += (double)(vlen + klen);
        lua_settop(L, 2);                               /* -- */
    }
    lua_settop(L, 2);
    if (i <= n)
        lua_pushinteger(L, i);
    else
        lua_pushnil(L);
    return 1;
}

/* producer:poll() serves delivery reports now. */
static int producer_poll(lua_State *L)
{
    serve(L, check_producer(L, "poll"), 0);
    return 0;
}

/* producer:outq() -> messages not yet delivered (queued or in flight). */
static int producer_outq(lua_State *L)
{
    lua_pushinteger(L, rd_kafka_outq_len(check_producer(L, "outq")->rk));
    return 1;
}

/* producer:queued() -> bytes, messages: what was produced and not yet reported delivered
 * or failed (values and keys; librdkafka's own overhead is not counted). */
static int producer_queued(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "queued");

    lua_pushnumber(L, p->queued);
    lua_pushinteger(L, rd_kafka_outq_len(p->rk));
    return 2;
}

/* producer:stats() -> delivered, failed (counts of delivery reports). */
static int producer_stats(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "stats");
    lua_pushnumber(L, p->delivered);
    lua_pushnumber(L, p->failures);
    return 2;
}

/* producer:flush(timeout_ms) -> messages still undelivered when it gave up (0: all
 * delivered); reports are served, so failures reach on_failed first. */
static int producer_flush(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "flush");
    int ms = (int)luaL_optinteger(L, 2, 10000);

    rd_kafka_flush(p->rk, ms);
    serve(L, p, 0);
    lua_pushinteger(L, rd_kafka_outq_len(p->rk));
    return 1;
}

/* Returns the result of a transactional call: true, or nil, message, what to do
 * ("retry", "abort" or "fatal"). */
static int txn_result(lua_State *L, sl_kafka_producer *p, rd_kafka_error_t *e, const char *call)
{
    const char *todo;

    if (e == NULL) {
        lua_pushboolean(L, 1);
        return 1;
    }
    todo = rd_kafka_error_is_fatal(e) ? "fatal"
         : rd_kafka_error_txn_requires_abort(e) ? "abort"
         : rd_kafka_error_is_retriable(e) ? "retry" : "fatal";
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s: %s", p->what, call, rd_kafka_error_string(e));
    lua_pushstring(L, todo);
    rd_kafka_error_destroy(e);
    return 3;
}

static int producer_init_transactions(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "init_transactions");
    return txn_result(L, p, rd_kafka_init_transactions(p->rk, (int)luaL_optinteger(L, 2, 30000)),
                      "init_transactions");
}

static int producer_begin_transaction(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "begin_transaction");
    return txn_result(L, p, rd_kafka_begin_transaction(p->rk), "begin_transaction");
}

/* producer:send_offsets(consumer, offsets [, timeout_ms]): the consumer's offsets
 * { topic = { [p] = next offset } } go into the open transaction. */
static int producer_send_offsets(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "send_offsets");
    rd_kafka_t *consumer = sl_kafka_consumer_handle(L, 2);
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_consumer_group_metadata_t *meta;
    rd_kafka_error_t *e;

    luaL_checktype(L, 3, LUA_TTABLE);
    list = sl_kafka_offsets_from(L, 3);
    meta = rd_kafka_consumer_group_metadata(consumer);
    e = rd_kafka_send_offsets_to_transaction(p->rk, list, meta,
                                             (int)luaL_optinteger(L, 4, 30000));
    rd_kafka_consumer_group_metadata_destroy(meta);
    rd_kafka_topic_partition_list_destroy(list);
    return txn_result(L, p, e, "send_offsets_to_transaction");
}

static int producer_commit_transaction(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "commit_transaction");
    rd_kafka_error_t *e = rd_kafka_commit_transaction(p->rk, (int)luaL_optinteger(L, 2, 30000));
    serve(L, p, 0);
    return txn_result(L, p, e, "commit_transaction");
}

static int producer_abort_transaction(lua_State *L)
{
    sl_kafka_producer *p = check_producer(L, "abort_transaction");
    rd_kafka_error_t *e = rd_kafka_abort_transaction(p->rk, (int)luaL_optinteger(L, 2, 30000));
    serve(L, p, 0);
    return txn_result(L, p, e, "abort_transaction");
}

/* The poll handle's close callback: its data is the wakeup, whose owner is the producer. */
static void on_closed(uv_handle_t *h)
{
    sl_kafka_producer *p = ((sl_kafka_wakeup *)h->data)->owner;
    free(p->key_field);
    free(p->what);
    free(p);
}

/* producer:close(): destroys the client at once (flush first to deliver what is queued:
 * what is still queued is lost). Idempotent. */
static int producer_close(lua_State *L)
{
    sl_kafka_producer **ud = luaL_checkudata(L, 1, SL_KAFKA_PRODUCER_MT);
    sl_kafka_producer *p = *ud;
    int refs[5];

    if (p == NULL || p->closed)
        return 0;
    p->closed = 1;
    *ud = NULL;
    refs[0] = p->on_failed; refs[1] = p->on_event; refs[2] = p->on_error;
    refs[3] = p->failed_ref; refs[4] = p->self_ref;
    sl_kafka_wakeup_stop(&p->wake, p->q, on_closed);
    rd_kafka_queue_destroy(p->q);
    if (p->rkt != NULL)
        rd_kafka_topic_destroy(p->rkt);
    rd_kafka_destroy(p->rk);
    for (int i = 0; i < 5; i++)
        if (refs[i] != LUA_NOREF)
            luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
    return 0;
}

/* ---- core.kafka_producer{...} ----------------------------------------------------------- */

static int opt_ref(lua_State *L, const char *name)
{
    lua_getfield(L, 1, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return LUA_NOREF;
    }
    if (!lua_isfunction(L, -1))
        luaL_error(L, "core.kafka_producer: %s must be a function", name);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

int sl_kafka_producer_new(lua_State *L)
{
    char errstr[SL_KAFKA_ERRLEN];
    rd_kafka_conf_t *conf;
    sl_kafka_producer *p, **ud;
    const char *what, *fmt, *topic, *key_field;
    int format;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "what");
    what = lua_isstring(L, -1) ? lua_tostring(L, -1) : "sink.kafka";
    lua_getfield(L, 1, "format");
    fmt = lua_isstring(L, -1) ? lua_tostring(L, -1) : "json";
    for (format = 0; formats[format] != NULL && strcmp(formats[format], fmt) != 0; format++)
        ;
    if (formats[format] == NULL)
        return luaL_error(L, "%s: unknown format '%s' (json, lines or msgpack)", what, fmt);
    lua_getfield(L, 1, "topic");
    topic = lua_tostring(L, -1);     /* NULL: a producer for produce() only */
    lua_getfield(L, 1, "key_field");
    key_field = lua_tostring(L, -1);

    conf = rd_kafka_conf_new();
    sl_kafka_conf_set(L, conf, "enable.idempotence", "true", what);
    sl_kafka_conf_set(L, conf, "linger.ms", "5", what);
    sl_kafka_conf_set(L, conf, "log_level", "3", what);
    sl_kafka_conf_apply(L, 1, conf, what);
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        rd_kafka_conf_destroy(conf);
        return luaL_error(L, "%s: out of memory", what);
    }
    p->format = format;
    p->what = strdup(what);
    p->key_field = key_field ? strdup(key_field) : NULL;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (p->rk == NULL) {
        free(p->what);
        free(p->key_field);
        free(p);
        return luaL_error(L, "%s: %s", what, errstr);
    }
    p->rkt = topic != NULL ? rd_kafka_topic_new(p->rk, topic, NULL) : NULL;
    p->q = rd_kafka_queue_get_main(p->rk);
    p->on_failed = opt_ref(L, "on_failed");
    p->on_event = opt_ref(L, "on_event");
    p->on_error = opt_ref(L, "on_error");
    lua_newtable(L);
    p->failed_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 1);
    ud = lua_newuserdata(L, sizeof *ud);                /* opts ud */
    *ud = p;
    luaL_getmetatable(L, SL_KAFKA_PRODUCER_MT);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    p->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    sl_kafka_wakeup_start(L, &p->wake, p->q, on_ready, p);
    p->L = L;
    return 1;                                           /* ud */
}

static const luaL_Reg producer_methods[] = {
    {"write", producer_write},
    {"produce", producer_produce},
    {"poll", producer_poll},
    {"outq", producer_outq},
    {"queued", producer_queued},
    {"stats", producer_stats},
    {"flush", producer_flush},
    {"init_transactions", producer_init_transactions},
    {"begin_transaction", producer_begin_transaction},
    {"send_offsets", producer_send_offsets},
    {"commit_transaction", producer_commit_transaction},
    {"abort_transaction", producer_abort_transaction},
    {"close", producer_close},
    {NULL, NULL}
};

void sl_kafka_producer_register(lua_State *L)
{
    luaL_newmetatable(L, SL_KAFKA_PRODUCER_MT);         /* mt */
    lua_newtable(L);                                    /* mt methods */
    luaL_setfuncs(L, producer_methods, 0);
    lua_setfield(L, -2, "__index");                     /* mt */
    lua_pushcfunction(L, producer_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);                                      /* -- */
}
