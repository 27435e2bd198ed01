/* kafka_admin.c -- what `--group` asks of the cluster outside the flow of records: how many
 * partitions a topic has, creating a compacted changelog or a repartition topic, and
 * reading whole partitions back (a member restoring a task's state from its changelog).
 *
 * Each call makes its own short-lived librdkafka client, configured like the consumer and
 * producer (brokers=, options=), and blocks the calling thread until it has the answer or
 * `timeout` ms have passed: they run when a member is assigned partitions, before any of
 * their records are processed, so there is nothing else for the loop to do meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>

#include "kafka.h"
#include "loop.h"

#define DEFAULT_MS  30000       /* timeout when the options table names none */
#define READ_BATCH   4096       /* messages taken from the queue per call */
#define CONFIG_MAX     32       /* topic config entries create_topic accepts */
#define ANSWER_GRACE_MS 2000   /* how long past its own timeout a CreateTopics answer may come */

/* ---- clients ------------------------------------------------------------------------- */

/* The timeout field of the options table at 1, in ms. */
static int timeout_of(lua_State *L)
{
    int ms;

    lua_getfield(L, 1, "timeout");                      /* t */
    ms = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : DEFAULT_MS;
    lua_pop(L, 1);                                      /* -- */
    return ms > 0 ? ms : 1;
}

/* The topic field of the options table at 1 (raises when it is not a string). */
static const char *topic_of(lua_State *L, const char *fn)
{
    const char *topic;

    lua_getfield(L, 1, "topic");                        /* topic */
    topic = lua_tostring(L, -1);
    if (topic == NULL || *topic == '\0')
        luaL_error(L, "core.%s: topic is required", fn);
    lua_pop(L, 1);      /* the string stays alive in the options table */
    return topic;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

/* A client of `type` configured from the options table at 1 plus the properties in
 * extra (name, value pairs, NULL-ended), which the user's options may override. Raises on
 * a refused property or when librdkafka cannot make the client. */
static rd_kafka_t *client_new(lua_State *L, rd_kafka_type_t type, const char *fn,
                              const char *const *extra)
{
    char errstr[SL_KAFKA_ERRLEN], what[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    snprintf(what, sizeof what, "core.%s", fn);
    /* errors reach the caller as return values; librdkafka's log would say them twice */
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    for (; extra != NULL && extra[0] != NULL; extra += 2)
        sl_kafka_conf_set(L, conf, extra[0], extra[1], what);
    sl_kafka_conf_apply(L, 1, conf, what);
    rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (rk == NULL)
        luaL_error(L, "%s: %s", what, errstr);
    return rk;
}

/* ---- partitions of a topic ------------------------------------------------------------ */

/* The partitions of topic as the cluster's metadata for all topics lists them: > 0, or 0
 * when it has no such topic, or -1 with why (brokers unreachable, ...). Asking for all
 * topics, not this one by name, is what keeps a broker with auto.create.topics.enable
 * (and librdkafka's mock) from creating it. */
static int count_partitions(rd_kafka_t *rk, const char *topic, int ms, char *why, size_t len)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, ms);
    int n = 0;

    if (err) {
        snprintf(why, len, "no metadata from the brokers within %d ms: %s", ms,
                 rd_kafka_err2str(err));
        return -1;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, topic) != 0)
            continue;
        if (t->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = t->partition_cnt;
        else if (t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            snprintf(why, len, "topic %s: %s", topic, rd_kafka_err2str(t->err));
            n = -1;
        }
        break;
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

/* core.kafka_topic_partitions{brokers=, options=, topic=, timeout=} -> n | nil, "missing"
 * | nil, why */
int sl_kafka_topic_partitions(lua_State *L)
{
    static const char *const extra[] = {"log_level", "0", NULL};
    char why[SL_KAFKA_ERRLEN];
    const char *topic;
    rd_kafka_t *rk;
    int ms, n;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    topic = topic_of(L, "kafka_topic_partitions");
    ms = timeout_of(L);
    rk = client_new(L, RD_KAFKA_PRODUCER, "kafka_topic_partitions", extra);
    n = count_partitions(rk, topic, ms, why, sizeof why);
    rd_kafka_destroy(rk);
    if (n > 0) {
        lua_pushinteger(L, n);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, n == 0 ? "missing" : why);
    return 2;
}

/* ---- creating a topic ---------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const char *const *)a)[0], ((const char *const *)b)[0]);
}

/* Reads the config table at idx into pairs (name, value, sorted by name) and writes
 * "N partitions, name=value, ..." into desc. Returns the number of pairs. The strings
 * live in the config table (booleans are C's "true" and "false"). Raises on a value that is not a string, number or boolean. */
static int read_config(lua_State *L, int idx, int partitions, const char *(*pairs)[2],
                       char *desc, size_t len)
{
    int n = 0;
    size_t at;

    if (lua_istable(L, idx)) {
        lua_pushnil(L);                                 /* nil */
        while (lua_next(L, idx) != 0) {                 /* k v */
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "core.kafka_create_topic: config: keys must be topic config names");
            if (n == CONFIG_MAX)
                luaL_error(L, "core.kafka_create_topic: config: more than %d entries", CONFIG_MAX);
            if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER
                && lua_type(L, -1) != LUA_TBOOLEAN)
                luaL_error(L, "core.kafka_create_topic: config %s: expected a string, number "
                           "or boolean, got %s", lua_tostring(L, -2), luaL_typename(L, -1));
            pairs[n][0] = lua_tostring(L, -2);
            if (lua_type(L, -1) == LUA_TBOOLEAN)
                pairs[n][1] = lua_toboolean(L, -1) ? "true" : "false";
            else
                pairs[n][1] = lua_tostring(L, -1);      /* a number converted in place */
            n++;
            lua_pop(L, 1);                              /* k */
        }
    }
    qsort(pairs, (size_t)n, sizeof pairs[0], by_name);
    at = (size_t)snprintf(desc, len, "%d partition%s", partitions, partitions == 1 ? "" : "s");
    for (int i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(desc + at, len - at, ", %s=%s", pairs[i][0], pairs[i][1]);
    return n;
}

/* Sends CreateTopics for one topic and waits at most ms for the answer: 0 when it was
 * created or is there already, else -1 with why. */
static int create(rd_kafka_t *rk, const char *topic, int partitions,
                  const char *(*pairs)[2], int npairs, int ms, char *why, size_t len)
{
    char errstr[SL_KAFKA_ERRLEN];
    rd_kafka_NewTopic_t *nt;
    rd_kafka_AdminOptions_t *ao;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    int rc = -1;

    /* -1: the brokers' default replication factor (default.replication.factor) */
    nt = rd_kafka_NewTopic_new(topic, partitions, -1, errstr, sizeof errstr);
    if (nt == NULL) {
        snprintf(why, len, "%s", errstr);
        return -1;
    }
    for (int i = 0; i < npairs; i++)
        if (rd_kafka_NewTopic_set_config(nt, pairs[i][0], pairs[i][1])) {
            snprintf(why, len, "config %s=%s refused", pairs[i][0], pairs[i][1]);
            rd_kafka_NewTopic_destroy(nt);
            return -1;
        }
    ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, ms, errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_operation_timeout(ao, ms, errstr, sizeof errstr);
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    /* the request's own timeout (the same ms) answers then, with librdkafka's reason;
     * this later bound holds if nothing does (its timer fires late on a loaded machine,
     * so waiting exactly ms would race it) */
    ev = rd_kafka_queue_poll(q, ms + ANSWER_GRACE_MS);
    if (ev == NULL)
        snprintf(why, len, "no answer from the brokers within %d ms", ms + ANSWER_GRACE_MS);
    else if (rd_kafka_event_error(ev))
        snprintf(why, len, "%s", rd_kafka_event_error_string(ev));
    else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        rd_kafka_resp_err_t err = cnt == 1 ? rd_kafka_topic_result_error(res[0])
                                           : RD_KAFKA_RESP_ERR__BAD_MSG;
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = 0;
        else
            snprintf(why, len, "%s", cnt == 1 && rd_kafka_topic_result_error_string(res[0])
                     ? rd_kafka_topic_result_error_string(res[0]) : rd_kafka_err2str(err));
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Pushes nil and "topic T has N partitions; sluice needs M (as many as its input)". */
static int wrong_count(lua_State *L, const char *topic, int has, int needs)
{
    lua_pushnil(L);
    lua_pushfstring(L, "topic %s has %d partition%s; sluice needs %d (as many as its input)",
                    topic, has, has == 1 ? "" : "s", needs);
    return 2;
}

/* core.kafka_create_topic{brokers=, options=, topic=, partitions=, config=, timeout=}
 * -> true | nil, why */
int sl_kafka_create_topic(lua_State *L)
{
    static const char *const extra[] = {"log_level", "0", NULL};
    const char *pairs[CONFIG_MAX][2];
    char why[SL_KAFKA_ERRLEN], desc[SL_KAFKA_ERRLEN];
    const char *topic;
    rd_kafka_t *rk;
    int ms, partitions, npairs, n;
    uint64_t deadline;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    topic = topic_of(L, "kafka_create_topic");
    lua_getfield(L, 1, "partitions");                   /* parts */
    partitions = (int)lua_tointeger(L, -1);
    if (partitions < 1)
        return luaL_error(L, "core.kafka_create_topic: partitions must be a count >= 1");
    lua_getfield(L, 1, "config");                       /* parts config */
    npairs = read_config(L, 3, partitions, pairs, desc, sizeof desc);
    ms = timeout_of(L);
    deadline = uv_hrtime() / 1000000 + (uint64_t)ms;
    rk = client_new(L, RD_KAFKA_PRODUCER, "kafka_create_topic", extra);
    n = count_partitions(rk, topic, ms, why, sizeof why);
    if (n == 0) {
        uint64_t now = uv_hrtime() / 1000000;
        int left = now < deadline ? (int)(deadline - now) : 1;
        if (create(rk, topic, partitions, pairs, npairs, left, why, sizeof why) == 0) {
            /* a created topic reaches the metadata of every broker a moment later */
            do {
                now = uv_hrtime() / 1000000;
                left = now < deadline ? (int)(deadline - now) : 1;
                n = count_partitions(rk, topic, left, why, sizeof why);
            } while (n == 0 && now < deadline);
            if (n == 0)
                snprintf(why, sizeof why, "created, but not in the brokers' metadata "
                         "within %d ms", ms);
        } else
            n = -1;
    }
    rd_kafka_destroy(rk);
    if (n == partitions) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (n > 0)
        return wrong_count(L, topic, n, partitions);
    lua_pushnil(L);
    lua_pushfstring(L, "could not create topic %s (%s): %s; create it yourself", topic,
                    desc, why);
    return 2;
}

/* ---- reading partitions whole --------------------------------------------------------- */

/* One partition being read: the array its entries go into, and whether its end came. */
typedef struct part_read {
    int32_t partition;
    int ref;                    /* registry ref of its array */
    int n;                      /* entries in it */
    int64_t next;               /* the offset after the last entry */
    int done;
} part_read;

/* Appends m to its partition's array as { key =, value =, offset =, timestamp = }. */
static void push_entry(lua_State *L, part_read *pr, int arr, const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);

    lua_createtable(L, 0, 4);                           /* e */
    if (m->key != NULL) {
        lua_pushlstring(L, m->key, m->key_len);
        lua_setfield(L, -2, "key");
    }
    if (m->payload != NULL) {
        lua_pushlstring(L, m->payload, m->len);
        lua_setfield(L, -2, "value");
    }
    lua_pushnumber(L, (lua_Number)m->offset);
    lua_setfield(L, -2, "offset");
    if (ts >= 0 && tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) {
        lua_pushnumber(L, (lua_Number)ts);
        lua_setfield(L, -2, "timestamp");
    }
    lua_rawseti(L, arr, ++pr->n);                       /* -- */
    pr->next = m->offset + 1;
}

static part_read *find_part(part_read *parts, int n, int32_t partition)
{
    for (int i = 0; i < n; i++)
        if (parts[i].partition == partition)
            return &parts[i];
    return NULL;
}

/* Whether err, on a message of the consumer queue, means the read cannot go on. The
 * others (brokers down, a connection refused) are retried by librdkafka until the
 * timeout. */
static int fatal_read_error(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
        || err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
        || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
        || err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
        || err == RD_KAFKA_RESP_ERR__FATAL;
}

/* Reads every partition of parts from its beginning to its end (the end of partition
 * event, at the high watermark, or at the last stable offset with read_committed) into
 * the registry arrays of parts. Returns 0, or -1 with why. */
static int read_all(lua_State *L, rd_kafka_t *rk, const char *topic, part_read *parts,
                    int nparts, int ms, char *why, size_t len)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(nparts);
    rd_kafka_message_t *msgs[READ_BATCH];
    rd_kafka_queue_t *q;
    rd_kafka_resp_err_t err, last = RD_KAFKA_RESP_ERR_NO_ERROR;
    uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)ms;
    int left = nparts, rc = -1, cur = -1, arr = 0;

    /* Offset 0, not RD_KAFKA_OFFSET_BEGINNING: the logical offset is looked up on a timer
     * that waits 500 ms when the partition's leader is not known yet, as it never is in a
     * fresh client. A log that starts later (compacted, or deleted by retention) is out
     * of range at 0, and auto.offset.reset=earliest moves the read to its start. */
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(list, topic, parts[i].partition)->offset = 0;
    err = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        snprintf(why, len, "assign: %s", rd_kafka_err2str(err));
        return -1;
    }
    q = rd_kafka_queue_get_consumer(rk);
    while (left > 0) {
        uint64_t now = uv_hrtime() / 1000000;
        ssize_t got;

        if (now >= deadline) {
            char at[256];
            size_t used = 0;
            for (int i = 0; i < nparts && used < sizeof at; i++)
                if (!parts[i].done)
                    used += (size_t)snprintf(at + used, sizeof at - used, "%s%d at offset %lld",
                                             used ? ", " : "", (int)parts[i].partition,
                                             (long long)parts[i].next);
            snprintf(why, len, "did not reach the end within %d ms (partition %s)%s%s", ms, at,
                     last ? ": " : "", last ? rd_kafka_err2str(last) : "");
            goto out;
        }
        got = rd_kafka_consume_batch_queue(q, (int)(deadline - now < 100 ? deadline - now : 100),
                                           msgs, READ_BATCH);
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            part_read *pr = find_part(parts, nparts, m->partition);

            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (pr != NULL && !pr->done) {
                    pr->done = 1;
                    left--;
                }
            } else if (m->err) {
                last = m->err;
                if (fatal_read_error(m->err)) {
                    snprintf(why, len, "partition %d: %s", (int)m->partition,
                             rd_kafka_message_errstr(m));
                    for (; i < got; i++)
                        rd_kafka_message_destroy(msgs[i]);
                    goto out;
                }
            } else if (pr != NULL && !pr->done) {
                /* the arrays stay on the stack while a run of one partition's messages
                 * lasts: one registry lookup per run, not per message */
                if (cur != pr->partition) {
                    if (arr != 0)
                        lua_pop(L, 1);                  /* -- */
                    lua_rawgeti(L, LUA_REGISTRYINDEX, pr->ref);     /* arr */
                    arr = lua_gettop(L);
                    cur = pr->partition;
                }
                push_entry(L, pr, arr, m);
            }
            rd_kafka_message_destroy(m);
        }
    }
    rc = 0;
out:
    if (arr != 0)
        lua_pop(L, 1);                                  /* -- */
    rd_kafka_queue_destroy(q);
    return rc;
}

/* Reads partitions whole: the options table is at 1, the partition numbers are given.
 * Pushes { [p] = array } (many) or the array (one), or nil, why. */
static int read_partitions(lua_State *L, const char *fn, const int32_t *nums, int nparts,
                           int many)
{
    static const char *const plain[] = {
        "enable.partition.eof", "true",
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest",
        /* big fetches, and enough of them queued ahead, so that a restore goes at the speed
         * of the network rather than of round trips */
        "fetch.max.bytes", "104857600",
        "max.partition.fetch.bytes", "33554432",
        "queued.max.messages.kbytes", "262144",
        "queued.min.messages", "1000000",
        "fetch.wait.max.ms", "10",
        "log_level", "0",
        "group.id", "sluice-reader",    /* never joined: the partitions are assigned */
        NULL};
    char why[SL_KAFKA_ERRLEN];
    const char *topic;
    const char *extra[sizeof plain / sizeof plain[0] + 2];
    part_read *parts;
    rd_kafka_t *rk;
    size_t k = 0;
    int ms, rc, total;
    uint64_t start;

    topic = topic_of(L, fn);
    ms = timeout_of(L);
    for (; plain[k] != NULL; k++)
        extra[k] = plain[k];
    lua_getfield(L, 1, "read_committed");
    extra[k++] = "isolation.level";
    extra[k++] = lua_toboolean(L, -1) ? "read_committed" : "read_uncommitted";
    extra[k] = NULL;
    lua_pop(L, 1);
    rk = client_new(L, RD_KAFKA_CONSUMER, fn, extra);
    /* The topic and its partitions first, from the metadata of all topics: an assigned
     * partition that does not exist would only make the read wait out its timeout, and
     * asking for the topic by name would create it on a broker that creates topics. */
    start = uv_hrtime() / 1000000;
    total = count_partitions(rk, topic, ms, why, sizeof why);
    for (int i = 0; i < nparts && total > 0; i++)
        if (nums[i] >= total) {
            snprintf(why, sizeof why, "it has %d partition%s: no partition %d", total,
                     total == 1 ? "" : "s", (int)nums[i]);
            total = -1;
        }
    if (total <= 0) {
        rd_kafka_destroy(rk);
        lua_pushnil(L);
        if (total == 0)
            lua_pushfstring(L, "reading topic %s: there is no such topic", topic);
        else
            lua_pushfstring(L, "reading topic %s: %s", topic, why);
        return 2;
    }
    parts = lua_newuserdata(L, (size_t)nparts * sizeof *parts);    /* parts */
    memset(parts, 0, (size_t)nparts * sizeof *parts);
    for (int i = 0; i < nparts; i++) {
        parts[i].partition = nums[i];
        lua_newtable(L);
        parts[i].ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    /* what is left of the timeout (at least 1 ms) */
    ms -= (int)(uv_hrtime() / 1000000 - start);
    rc = read_all(L, rk, topic, parts, nparts, ms > 0 ? ms : 1, why, sizeof why);
    rd_kafka_destroy(rk);
    if (rc == 0 && many)
        lua_createtable(L, 0, nparts);                  /* parts t */
    for (int i = 0; i < nparts; i++) {
        if (rc == 0) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, parts[i].ref);    /* parts [t] arr */
            if (many)
                lua_rawseti(L, -2, parts[i].partition); /* parts t */
        }
        luaL_unref(L, LUA_REGISTRYINDEX, parts[i].ref);
    }
    if (rc == 0)
        return 1;
    lua_pushnil(L);
    lua_pushfstring(L, "reading topic %s: %s", topic, why);
    return 2;
}

/* core.kafka_read_partition{brokers=, options=, topic=, partition=, read_committed=,
 * timeout=} -> { {key=, value=, offset=, timestamp=}, ... } | nil, why */
int sl_kafka_read_partition(lua_State *L)
{
    int32_t p;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "partition");
    if (!lua_isnumber(L, -1) || lua_tointeger(L, -1) < 0)
        return luaL_error(L, "core.kafka_read_partition: partition must be a number >= 0");
    p = (int32_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return read_partitions(L, "kafka_read_partition", &p, 1, 0);
}

/* core.kafka_read_partitions{..., partitions = {p1, p2, ...}} -> { [p] = array } | nil,
 * why */
int sl_kafka_read_partitions(lua_State *L)
{
    int32_t *nums;
    int n;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "partitions");                   /* parts */
    if (!lua_istable(L, 2) || (n = (int)lua_objlen(L, 2)) == 0)
        return luaL_error(L, "core.kafka_read_partitions: partitions must be a non-empty "
                          "array of partition numbers");
    nums = lua_newuserdata(L, (size_t)n * sizeof *nums);   /* parts nums (freed by the GC) */
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (!lua_isnumber(L, -1) || lua_tointeger(L, -1) < 0)
            return luaL_error(L, "core.kafka_read_partitions: partitions[%d] must be a "
                              "number >= 0", i + 1);
        nums[i] = (int32_t)lua_tointeger(L, -1);
        lua_pop(L, 1);
        for (int j = 0; j < i; j++)
            if (nums[j] == nums[i])
                return luaL_error(L, "core.kafka_read_partitions: partition %d is listed "
                                  "twice", (int)nums[i]);
    }
    /* nums stays referenced from the stack (slot 3) while it is read */
    return read_partitions(L, "kafka_read_partitions", nums, n, 1);
}
