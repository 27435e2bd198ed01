/* kafka_baseline.c -- the C side of the Kafka benchmark (scripts/bench/kafka.sh): what a
 * hand-written librdkafka program does for the same job as scripts/bench/kafka_filter_map.lua.
 *
 *   kafka_baseline BROKERS IN_TOPIC [OUT_TOPIC]
 *
 * Consumes IN_TOPIC from the start to the end each partition had when assigned (a group of
 * its own, batches of 1024 from the consumer queue), keeps the bids whose "price" is over
 * 100, and for each writes {"auction":A,"eur":P*0.92,"ts":T} to OUT_TOPIC with an
 * idempotent producer (or only counts them without OUT_TOPIC). Fields are found with
 * strstr and read with strtod, as a hand-written filter would; prints the counts.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <librdkafka/rdkafka.h>

static int ends, parts_done, parts_total;

static double field(const char *s, size_t len, const char *name)
{
    char key[32];
    const char *p;
    int k = snprintf(key, sizeof key, "\"%s\":", name);

    p = memmem(s, len, key, (size_t)k);
    return p ? strtod(p + k, NULL) : 0;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_baseline: %s\n", err);
        exit(1);
    }
}

static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        parts_total += parts->cnt;
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

int main(int argc, char **argv)
{
    char err[512], out[128];
    rd_kafka_conf_t *cc = rd_kafka_conf_new(), *pc;
    rd_kafka_t *consumer, *producer = NULL;
    rd_kafka_topic_t *rkt = NULL;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_queue_t *q;
    rd_kafka_message_t *msgs[1024];
    long in = 0, kept = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: kafka_baseline BROKERS IN_TOPIC [OUT_TOPIC]\n");
        return 2;
    }
    set(cc, "bootstrap.servers", argv[1]);
    set(cc, "group.id", "kafka-baseline");
    set(cc, "auto.offset.reset", "earliest");
    set(cc, "enable.auto.commit", "false");
    set(cc, "enable.partition.eof", "true");
    set(cc, "queued.max.messages.kbytes", "16384");
    rd_kafka_conf_set_rebalance_cb(cc, rebalance);
    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    if (consumer == NULL) {
        fprintf(stderr, "kafka_baseline: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(consumer);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    q = rd_kafka_queue_get_consumer(consumer);
    if (argc > 3) {
        pc = rd_kafka_conf_new();
        set(pc, "bootstrap.servers", argv[1]);
        set(pc, "enable.idempotence", "true");
        set(pc, "linger.ms", "5");
        producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
        if (producer == NULL) {
            fprintf(stderr, "kafka_baseline: %s\n", err);
            return 1;
        }
        rkt = rd_kafka_topic_new(producer, argv[3], NULL);
    }
    while (parts_total == 0 || parts_done < parts_total) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, 1024);
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                parts_done++;
            } else if (!m->err) {
                const char *s = m->payload;
                in++;
                if (field(s, m->len, "price") > 100) {
                    kept++;
                    if (producer != NULL) {
                        int k = snprintf(out, sizeof out, "{\"auction\":%.0f,\"eur\":%.17g,\"ts\":%.0f}",
                                         field(s, m->len, "auction"),
                                         field(s, m->len, "price") * 0.92, field(s, m->len, "ts"));
                        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                                out, (size_t)k, NULL, 0, NULL) != 0)
                            rd_kafka_poll(producer, 10);        /* queue full: wait */
                    }
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (producer != NULL)
            rd_kafka_poll(producer, 0);                         /* delivery reports */
    }
    if (producer != NULL) {
        rd_kafka_flush(producer, 60000);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(producer);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    printf("%ld in, %ld kept\n", in, kept);
    (void)ends;
    return 0;
}
