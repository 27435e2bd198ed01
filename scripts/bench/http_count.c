/* http_count.c -- the HTTP server of the HTTP sink's bench: takes every request on
 * 127.0.0.1:PORT over kept-alive connections (libuv + http-parser, one thread), counts the
 * lines of the bodies, replies 200 "ok". At SIGTERM or SIGINT it prints
 * "requests records connections" on stdout and exits 0. Not a test peer: it checks
 * nothing, so that the server costs as little as it can next to the job it measures.
 *
 *   cc -O2 -o http_count scripts/bench/http_count.c -luv -lhttp_parser
 *   http_count PORT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <http_parser.h>
#include <uv.h>

static const char REPLY[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                            "Content-Type: text/plain\r\n\r\nok";

static unsigned long long requests, records, connections;
static http_parser_settings settings;
static uv_loop_t *loop;

typedef struct conn {
    uv_tcp_t tcp;
    http_parser parser;
} conn;

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    (void)p;
    for (const char *s = at, *end = at + len; (s = memchr(s, '\n', (size_t)(end - s))); s++)
        records++;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init((char *)REPLY, sizeof REPLY - 1);

    requests++;
    if (w == NULL || uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        free(w);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char space[256 * 1024];
    (void)h;
    (void)hint;
    *buf = uv_buf_init(space, sizeof space);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;

    if (n < 0) {
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    if (n > 0 && http_parser_execute(&c->parser, &settings, buf->base, (size_t)n) != (size_t)n)
        uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    conn *c;

    if (status < 0 || (c = calloc(1, sizeof *c)) == NULL)
        return;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    connections++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    printf("%llu %llu %llu\n", requests, records, connections);
    fflush(stdout);
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    uv_tcp_t server;
    uv_signal_t term, intr;

    if (argc != 2) {
        fprintf(stderr, "usage: http_count PORT\n");
        return 2;
    }
    loop = uv_default_loop();
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0
        || uv_listen((uv_stream_t *)&server, 128, on_connection) != 0) {
        fprintf(stderr, "http_count: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    uv_signal_init(loop, &term);
    uv_signal_start(&term, on_signal, SIGTERM);
    uv_signal_init(loop, &intr);
    uv_signal_start(&intr, on_signal, SIGINT);
    fprintf(stderr, "listening\n");
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
