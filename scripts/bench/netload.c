/* netload.c -- load generators for scripts/bench/net.sh, on 127.0.0.1 only.
 *
 *   netload send PORT CONNS RECORDS      RECORDS JSON lines {"i":n,"v":n%10,...} spread over
 *                                        CONNS connections, as fast as they are taken
 *   netload latency PORT BACKPORT RATE COUNT
 *                                        sends COUNT lines {"t":ns} at RATE/s on one
 *                                        connection to PORT, accepts the job's TCP sink on
 *                                        BACKPORT, and prints p50 and p99 of the time from
 *                                        send to receipt, in ms
 *   netload append PATH RATE SECONDS     appends RATE lines/s to PATH for SECONDS
 *
 * Connections are retried until the job listens (at most 10 s).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct sockaddr_in local(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int dial(int port)
{
    struct sockaddr_in a = local(port);
    for (int i = 0; i < 1000; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
        close(fd);
        usleep(10000);
    }
    fprintf(stderr, "netload: cannot connect to 127.0.0.1:%d\n", port);
    exit(1);
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            perror("netload: write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

typedef struct { int port; long from, to; } job;

static void *sender(void *arg)
{
    job *j = arg;
    int fd = dial(j->port);
    char *buf = malloc(1 << 20);
    size_t len = 0;

    for (long i = j->from; i < j->to; i++) {
        len += (size_t)sprintf(buf + len, "{\"i\":%ld,\"v\":%ld,\"user\":\"u%ld\",\"ok\":true}\n",
                               i, i % 10, i % 1000);
        if (len > (1 << 20) - 128) {
            send_all(fd, buf, len);
            len = 0;
        }
    }
    send_all(fd, buf, len);
    close(fd);
    free(buf);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int latency(int port, int backport, long rate, long count)
{
    struct sockaddr_in a = local(backport);
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0), out, in;
    uint64_t *lat = calloc((size_t)count, sizeof *lat), start, step = 1000000000u / (uint64_t)rate;
    long sent = 0, got = 0;
    char buf[65536], line[128];
    size_t ll = 0;

    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4) != 0) {
        perror("netload: listen");
        return 1;
    }
    out = dial(port);
    setsockopt(out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    in = accept(lfd, NULL, NULL);
    /* one thread: the sends are paced, and between them the echoes are read without
     * blocking */
    fcntl(in, F_SETFL, fcntl(in, F_GETFL) | O_NONBLOCK);
    start = now_ns();
    while (got < count) {
        uint64_t t = now_ns();
        if (sent < count && t >= start + (uint64_t)sent * step) {
            int n = sprintf(line, "{\"t\":%llu}\n", (unsigned long long)t);
            send_all(out, line, (size_t)n);
            sent++;
            continue;
        }
        ssize_t r = read(in, buf, sizeof buf);
        if (r > 0) {
            uint64_t now = now_ns();
            static char acc[256];
            for (ssize_t k = 0; k < r; k++) {
                if (buf[k] == '\n') {
                    acc[ll] = '\0';
                    const char *p = strstr(acc, "\"t\":");
                    if (p != NULL && got < count)
                        lat[got++] = now - strtoull(p + 4, NULL, 10);
                    ll = 0;
                } else if (ll < sizeof acc - 1) {
                    acc[ll++] = buf[k];
                }
            }
        } else if (r == 0) {
            break;
        } else if (sent >= count) {
            usleep(50);
        }
    }
    close(out);
    qsort(lat, (size_t)got, sizeof *lat, cmp_u64);
    if (got == 0)
        return 1;
    printf("%ld %.3f %.3f\n", got, lat[got / 2] / 1e6, lat[(long)(got * 0.99)] / 1e6);
    return 0;
}

static int append(const char *path, long rate, long seconds)
{
    FILE *f = fopen(path, "a");
    uint64_t start = now_ns();
    long total = rate * seconds, done = 0;

    if (f == NULL) {
        perror(path);
        return 1;
    }
    while (done < total) {
        long due = (long)((now_ns() - start) / 1000000u * (uint64_t)rate / 1000u);
        if (due > total)
            due = total;
        for (; done < due; done++)
            fprintf(f, "{\"i\":%ld,\"msg\":\"a log line of moderate length\"}\n", done);
        fflush(f);
        usleep(1000);
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "send") == 0) {
        int port = atoi(argv[2]), conns = atoi(argv[3]);
        long records = atol(argv[4]);
        pthread_t t[64];
        job j[64];
        for (int c = 0; c < conns && c < 64; c++) {
            j[c] = (job){port, records * c / conns, records * (c + 1) / conns};
            pthread_create(&t[c], NULL, sender, &j[c]);
        }
        for (int c = 0; c < conns && c < 64; c++)
            pthread_join(t[c], NULL);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "latency") == 0)
        return latency(atoi(argv[2]), atoi(argv[3]), atol(argv[4]), atol(argv[5]));
    if (argc == 5 && strcmp(argv[1], "append") == 0)
        return append(argv[2], atol(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: netload send PORT CONNS RECORDS | latency PORT BACKPORT RATE COUNT"
            " | append PATH RATE SECONDS\n");
    return 2;
}
