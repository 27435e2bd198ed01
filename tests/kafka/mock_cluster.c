/* mock_cluster.c -- a Kafka cluster for tests and for trying sluice without Kafka:
 * librdkafka's mock brokers (rdkafka_mock.h), which speak the real protocol on loopback
 * (produce, fetch, consumer groups, offsets, idempotence, transactions).
 *
 *   kafka_mock [--brokers N] [--missing TOPIC]... TOPIC[:PARTITIONS]...
 *
 * Creates each topic (1 partition unless given), prints the bootstrap address ("host:port,
 * ...") on the first line of stdout, then serves until SIGTERM or SIGINT. SIGUSR1 takes
 * every broker down (connections dropped, new ones refused), SIGUSR2 brings them back:
 * how specs test a broker restart. The mock brokers create a topic that a client asks
 * about, as a broker with auto.create.topics.enable does; a topic named with --missing is
 * answered "unknown topic" instead, as by a broker without it. Each partition keeps at
 * most 5 MB or 100000 messages (librdkafka's mock deletes the oldest beyond that).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop, down, up;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        down = 1;
    else if (sig == SIGUSR2)
        up = 1;
    else
        stop = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: kafka_mock [--brokers N] [--missing TOPIC]... TOPIC[:PARTITIONS]...\n");
    exit(2);
}

static void set_brokers(rd_kafka_mock_cluster_t *mc, int n, int is_up)
{
    for (int b = 1; b <= n; b++) {
        rd_kafka_resp_err_t err = is_up ? rd_kafka_mock_broker_set_up(mc, b)
                                        : rd_kafka_mock_broker_set_down(mc, b);
        if (err)
            fprintf(stderr, "kafka_mock: broker %d %s: %s\n", b, is_up ? "up" : "down",
                    rd_kafka_err2str(err));
    }
    fprintf(stderr, "kafka_mock: brokers %s\n", is_up ? "up" : "down");
}

int main(int argc, char **argv)
{
    char errstr[512];
    int brokers = 1, i = 1;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    struct sigaction sa;

    const char *missing[16];
    int nmissing = 0;

    for (;;) {
        if (i + 1 < argc && strcmp(argv[i], "--brokers") == 0)
            brokers = atoi(argv[i + 1]);
        else if (i + 1 < argc && strcmp(argv[i], "--missing") == 0 && nmissing < 16)
            missing[nmissing++] = argv[i + 1];
        else
            break;
        i += 2;
    }
    if (i >= argc || brokers < 1)
        usage();
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka_mock: %s\n", errstr);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        fprintf(stderr, "kafka_mock: %s\n", errstr);
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (mc == NULL) {
        fprintf(stderr, "kafka_mock: cannot start %d mock brokers\n", brokers);
        return 1;
    }
    for (; i < argc; i++) {
        char name[256];
        int parts = 1;
        const char *colon = strchr(argv[i], ':');
        size_t len = colon ? (size_t)(colon - argv[i]) : strlen(argv[i]);
        rd_kafka_resp_err_t err;

        if (len == 0 || len >= sizeof name)
            usage();
        memcpy(name, argv[i], len);
        name[len] = '\0';
        if (colon && (parts = atoi(colon + 1)) < 1)
            usage();
        err = rd_kafka_mock_topic_create(mc, name, parts, brokers < 3 ? brokers : 3);
        if (err) {
            fprintf(stderr, "kafka_mock: topic %s: %s\n", name, rd_kafka_err2str(err));
            return 1;
        }
    }
    for (int m = 0; m < nmissing; m++)
        rd_kafka_mock_topic_set_error(mc, missing[m], RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (!stop) {
        if (down) {
            down = 0;
            set_brokers(mc, brokers, 0);
        }
        if (up) {
            up = 0;
            set_brokers(mc, brokers, 1);
        }
        usleep(20000);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
