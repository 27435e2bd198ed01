/* kafka.h -- Kafka on the job's loop, with librdkafka: core.kafka_consumer (the source)
 * and core.kafka_producer (the sink). The contract Lua sees is in sl_api.h.
 *
 * librdkafka runs its own threads; none of them ever touches Lua. Each client's queue is
 * made to write a byte to a pipe when it goes from empty to non-empty
 * (rd_kafka_queue_io_event_enable), the loop watches the pipe with a uv_poll handle, and
 * the queue is served from the loop thread: messages, rebalances, delivery reports and
 * errors all reach Lua from there, a batch at a time.
 */
#ifndef SL_KAFKA_H
#define SL_KAFKA_H

#include <lua.h>
#include <uv.h>
#include <librdkafka/rdkafka.h>

#define SL_KAFKA_CONSUMER_MT "sluice.kafka_consumer"  /* metatable of consumer userdata */
#define SL_KAFKA_PRODUCER_MT "sluice.kafka_producer"  /* metatable of producer userdata */
#define SL_KAFKA_ERRLEN      512                      /* librdkafka's errstr buffers */

/* The pipe a client's queue wakes the loop through. */
typedef struct sl_kafka_wakeup {
    int fds[2];             /* read end watched by poll, write end given to librdkafka */
    uv_poll_t poll;
    int started;            /* poll is active */
    void (*on_ready)(struct sl_kafka_wakeup *); /* the queue has events: serve it */
    void *owner;
} sl_kafka_wakeup;

/* core.kafka_consumer{...} and core.kafka_producer{...} (kafka_consumer.c and
 * kafka_producer.c), and their metatables. */
int sl_kafka_consumer_new(lua_State *L);
int sl_kafka_producer_new(lua_State *L);
int sl_kafka_committed(lua_State *L);
void sl_kafka_consumer_register(lua_State *L);
void sl_kafka_producer_register(lua_State *L);

/* ---- what --group asks of the cluster (kafka_admin.c) -----------------------------------
 * Each blocks the calling thread on a client of its own, configured from brokers= and
 * options= as the consumer and producer are, for at most timeout= ms (30000 if none).
 * Internal: the Lua runtime of --group calls them, users do not (not in docs/reference.md).
 *
 * core.kafka_topic_partitions{brokers=, options=, topic=, timeout=}
 *   -> n: the partitions of topic; or nil, "missing" when the cluster has no such topic;
 *   or nil, why (no metadata within the timeout, ...). Asks for the metadata of all
 *   topics, so that asking never creates the topic (a broker with
 *   auto.create.topics.enable, and librdkafka's mock, create one asked about by name).
 *
 * core.kafka_create_topic{brokers=, options=, topic=, partitions=, config=, timeout=}
 *   -> true when topic exists with exactly `partitions` partitions afterwards (created
 *   now by CreateTopics with the topic configs of `config`, e.g. ["cleanup.policy"] =
 *   "compact", and the brokers' replication factor; or there already). Else nil, why:
 *   "topic T has 4 partitions; sluice needs 6 (as many as its input)", or "could not
 *   create topic T (6 partitions, cleanup.policy=compact): <why>; create it yourself"
 *   (librdkafka's mock has no CreateTopics: "Failed while waiting for controller: Local:
 *   Timed out" after the whole timeout).
 *
 * core.kafka_read_partition{brokers=, options=, topic=, partition=, read_committed=,
 *   timeout=}
 *   -> every message of that partition from its beginning to its end, in offset order:
 *   { { key = s|nil, value = s|nil (nil: a tombstone), offset = n, timestamp = ms|nil },
 *   ... }; or nil, why: no such topic, no such partition (both from the metadata of all
 *   topics, which creates nothing), no metadata within the timeout, or the end not
 *   reached within it (saying the offset each partition got to). The end is the high
 *   watermark when the reader gets there, or with read_committed=true the last stable
 *   offset: messages of aborted or still open transactions are not read (on a real
 *   broker; librdkafka 2.0.2's mock keeps no transaction state and reads them all). A
 *   consumer assigned the partitions (never a group member), fetching up to 100 MB at a
 *   time: about 0.1 s to start, then ~100 MB/s on the mock (docs/performance.md).
 * core.kafka_read_partitions{..., partitions = {p1, p2, ...}}
 *   -> { [p1] = array, [p2] = array, ... }: several partitions of one topic read in one
 *   pass by one consumer; or nil, why.
 */
int sl_kafka_topic_partitions(lua_State *L);
int sl_kafka_create_topic(lua_State *L);
int sl_kafka_read_partition(lua_State *L);
int sl_kafka_read_partitions(lua_State *L);

/* The librdkafka handle of the consumer userdata at idx (raises if it is closed): the
 * producer sends a consumer's offsets in its transactions. */
rd_kafka_t *sl_kafka_consumer_handle(lua_State *L, int idx);

/* ---- shared by the two (kafka_conf.c) ------------------------------------------------- */

/* A librdkafka configuration from the options table at idx: bootstrap.servers from its
 * "brokers" string, then every key = value of its "options" table (librdkafka property
 * names, values as strings, numbers or booleans) over the defaults already set in conf.
 * Raises "WHAT: option NAME: reason" on a property librdkafka refuses (conf destroyed). */
void sl_kafka_conf_apply(lua_State *L, int idx, rd_kafka_conf_t *conf, const char *what);

/* Sets one property; raises as above. */
void sl_kafka_conf_set(lua_State *L, rd_kafka_conf_t *conf, const char *name,
                       const char *value, const char *what);

/* Makes the pipe and enables queue q's IO event on it; on_ready is called from the loop
 * whenever the queue may have events. Raises on failure. */
void sl_kafka_wakeup_start(lua_State *L, sl_kafka_wakeup *w, rd_kafka_queue_t *q,
                           void (*on_ready)(sl_kafka_wakeup *), void *owner);
/* Disables the IO event and closes the pipe and the poll handle (freed with its owner's
 * close callback: the caller keeps the owner alive until then). */
void sl_kafka_wakeup_stop(sl_kafka_wakeup *w, rd_kafka_queue_t *q, uv_close_cb on_closed);

/* Pushes a table { [topic] = { [partition] = offset, ... }, ... } of the partitions in
 * list. Stack +1. */
void sl_kafka_push_offsets(lua_State *L, const rd_kafka_topic_partition_list_t *list);

/* A partition list from such a table at idx (offsets as given). Caller destroys it. */
rd_kafka_topic_partition_list_t *sl_kafka_offsets_from(lua_State *L, int idx);

#endif
