/* conn.c -- an outgoing TCP connection with a send queue, for sl.sink.tcp.
 *
 * The socket is a plain non-blocking descriptor watched by a uv_poll handle, so this file
 * owns every byte: the queue is a list of chunks (each one flush of whole records), writev
 * sends from its head, and when the connection breaks the chunk that was cut short is sent
 * again whole on the next connection (records are delivered at least once across a
 * reconnect, never torn). Each chunk knows where its records end, so that what was not
 * delivered is counted in records, not only bytes. Closing flushes synchronously with
 * poll(2), for as long as the peer takes bytes: it gives up after a time without any.
 */
#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "conn.h"
#include "loop.h"
#include "net.h"

#define IOV_MAX_CHUNKS 64

typedef struct chunk {
    struct chunk *next;
    size_t len;
    uint32_t *ends;         /* where each record ends, relative to data (after its bytes) */
    uint32_t nrec;          /* records in the chunk */
    uint32_t done;          /* of them, written whole (the head chunk's first `done`) */
    char data[];
} chunk;

/* A poll handle per socket: its memory goes in the close callback, after the socket. */
typedef struct watch {
    uv_poll_t poll;
} watch;

struct sl_conn {
    char *address;
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd;                 /* the socket, -1 while disconnected */
    int connected;          /* the connect completed */
    watch *w;               /* polls fd; NULL while disconnected */
    int events;             /* what w polls for */
    uv_timer_t retry;       /* reconnect after a backoff */
    int backoff_ms;
    chunk *head, *tail;     /* the queue; head's first off bytes are written */
    size_t off;
    size_t pending;         /* bytes queued and not written */
    size_t pending_records; /* records queued and not written whole */
    uint64_t written;       /* bytes the kernel took since the start (progress) */
    size_t low;             /* on_drain when pending falls to this after being above it */
    int above;              /* pending went above low since the last on_drain */
    sl_conn_drain_cb *on_drain;
    void *arg;
    int closing;
    int down_reported;      /* this outage was reported on stderr */
};

static void on_poll(uv_poll_t *p, int status, int events);

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: tcp sink: out of memory\n");
    abort();
}

static void on_watch_closed(uv_handle_t *h)
{
    free((watch *)h);               /* poll is the first member */
}

static void on_retry_closed(uv_handle_t *h)
{
    sl_conn *c = h->data;

    free(c->address);
    free(c);
}

static void watch_for(sl_conn *c, int events)
{
    if (c->w != NULL && events != c->events) {
        c->events = events;
        uv_poll_start(&c->w->poll, events, on_poll);
    }
}

/* Drops the socket; the next attempt comes after the backoff. */
static void disconnect(sl_conn *c)
{
    if (c->w != NULL) {
        uv_poll_stop(&c->w->poll);
        uv_close((uv_handle_t *)&c->w->poll, on_watch_closed);
        c->w = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->connected = 0;
    if (c->off > 0) {               /* the cut chunk goes again whole */
        c->pending += c->off;
        c->pending_records += c->head->done;
        c->head->done = 0;
        c->off = 0;
    }
}

static void on_retry(uv_timer_t *t);

/* Says once per outage that the peer is unreachable, with the reason (errno of the
 * failed call), so a stalled job is not a silent one. */
static void report_down(sl_conn *c, int err)
{
    if (c->down_reported)
        return;
    c->down_reported = 1;
    fprintf(stderr, "sluice: tcp sink %s: %s; retrying, records wait (%zu bytes queued)\n",
            c->address, err != 0 ? strerror(err) : "connection lost", c->pending);
}

static void schedule_retry(sl_conn *c)
{
    report_down(c, errno);
    disconnect(c);
    if (c->closing)
        return;
    uv_timer_start(&c->retry, on_retry, (uint64_t)c->backoff_ms, 0);
    c->backoff_ms *= 2;
    if (c->backoff_ms > SL_CONN_BACKOFF_MAX_MS)
        c->backoff_ms = SL_CONN_BACKOFF_MAX_MS;
}

/* Starts a non-blocking connect. Returns 0, or -1 when it failed at once. */
static int start_connect(sl_conn *c)
{
    int one = 1;

    c->fd = socket(c->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&c->ss, c->sslen) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void on_retry(uv_timer_t *t)
{
    sl_conn *c = t->data;

    if (start_connect(c) != 0) {
        schedule_retry(c);
        return;
    }
    c->w = malloc(sizeof *c->w);
    if (c->w == NULL)
        out_of_memory();
    uv_poll_init(sl_loop_get(), &c->w->poll, c->fd);
    c->w->poll.data = c;
    c->events = UV_WRITABLE;        /* writable: the connect finished, one way or another */
    uv_poll_start(&c->w->poll, UV_WRITABLE, on_poll);
}

/* Writes from the queue's head until it is empty or the socket is full. Returns 0, or -1
 * when the connection broke. */
static int write_some(sl_conn *c)
{
    while (c->head != NULL) {
        struct iovec iov[IOV_MAX_CHUNKS];
        chunk *k = c->head;
        int n = 0;
        ssize_t got;

        iov[n].iov_base = k->data + c->off;
        iov[n++].iov_len = k->len - c->off;
        for (k = k->next; k != NULL && n < IOV_MAX_CHUNKS; k = k->next) {
            iov[n].iov_base = k->data;
            iov[n++].iov_len = k->len;
        }
        got = writev(c->fd, iov, n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        c->pending -= (size_t)got;
        c->written += (uint64_t)got;
        while (got > 0) {
            size_t left = c->head->len - c->off;
            k = c->head;
            if ((size_t)got < left) {
                c->off += (size_t)got;
                while (k->done < k->nrec && k->ends[k->done] <= c->off) {
                    k->done++;
                    c->pending_records--;
                }
                break;
            }
            got -= (ssize_t)left;
            c->pending_records -= k->nrec - k->done;
            c->head = k->next;
            if (c->head == NULL)
                c->tail = NULL;
            c->off = 0;
            free(k);
        }
    }
    return 0;
}

/* After writing: tells the writer when the queue has drained to the low mark. */
static void check_drain(sl_conn *c)
{
    if (c->above && c->pending <= c->low) {
        c->above = 0;
        if (c->on_drain != NULL)
            c->on_drain(c->arg);
    }
}

static void flush_queue(sl_conn *c)
{
    if (write_some(c) != 0) {
        schedule_retry(c);
        return;
    }
    watch_for(c, c->head != NULL ? UV_READABLE | UV_WRITABLE : UV_READABLE);
    check_drain(c);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sl_conn *c = p->data;

    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        if (status < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            errno = err;
            schedule_retry(c);
            return;
        }
        if (c->down_reported)
            fprintf(stderr, "sluice: tcp sink %s: connected\n", c->address);
        c->down_reported = 0;
        c->connected = 1;
        c->backoff_ms = SL_CONN_BACKOFF_MIN_MS;
        flush_queue(c);
        return;
    }
    if (status < 0) {
        schedule_retry(c);
        return;
    }
    if (events & UV_READABLE) {     /* the peer sends nothing we want; EOF means gone */
        char scratch[4096];
        ssize_t got = read(c->fd, scratch, sizeof scratch);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
            if (got == 0)
                errno = 0;
            schedule_retry(c);
            return;
        }
    }
    if (events & UV_WRITABLE)
        flush_queue(c);
}

sl_conn *sl_conn_new(const char *address, size_t low, sl_conn_drain_cb *on_drain, void *arg,
                     char *err)
{
    sl_conn *c = calloc(1, sizeof *c);

    if (c == NULL)
        out_of_memory();
    if (sl_net_resolve(address, &c->ss, &c->sslen, err) != 0) {
        free(c);
        return NULL;
    }
    c->address = strdup(address);
    if (c->address == NULL)
        out_of_memory();
    c->fd = -1;
    c->low = low;
    c->on_drain = on_drain;
    c->arg = arg;
    c->backoff_ms = SL_CONN_BACKOFF_MIN_MS;
    uv_timer_init(sl_loop_get(), &c->retry);
    c->retry.data = c;
    uv_timer_start(&c->retry, on_retry, 0, 0);
    return c;
}

void sl_conn_send(sl_conn *c, const char *data, size_t len, const uint32_t *ends,
                  size_t nrec)
{
    size_t at = (len + sizeof *ends - 1) / sizeof *ends * sizeof *ends;   /* aligned */
    chunk *k;

    if (len == 0)
        return;
    k = malloc(sizeof *k + at + nrec * sizeof *ends);
    if (k == NULL)
        out_of_memory();
    k->next = NULL;
    k->len = len;
    k->ends = (uint32_t *)(void *)(k->data + at);
    k->nrec = (uint32_t)nrec;
    k->done = 0;
    memcpy(k->data, data, len);
    if (nrec > 0)
        memcpy(k->ends, ends, nrec * sizeof *ends);
    c->pending_records += nrec;
    if (c->tail != NULL)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
    c->pending += len;
    if (c->pending > c->low)
        c->above = 1;
    if (c->connected)
        flush_queue(c);
}

size_t sl_conn_pending(const sl_conn *c)
{
    return c->pending;
}

size_t sl_conn_pending_records(const sl_conn *c)
{
    return c->pending_records;
}

uint64_t sl_conn_written(const sl_conn *c)
{
    return c->written;
}

static int64_t now_ms(void)
{
    return (int64_t)(uv_hrtime() / 1000000);
}

/* Waits for fd to be ready for events until the deadline. Returns poll's revents, 0 on
 * timeout. */
static int wait_fd(int fd, int events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = (short)events};
    int64_t left = deadline - now_ms();

    if (left <= 0)
        return 0;
    if (poll(&p, 1, (int)left) <= 0)
        return 0;
    return p.revents;
}

int sl_conn_close(sl_conn *c, int timeout_ms, const char *stalled, char *err)
{
    int64_t deadline = now_ms() + timeout_ms;
    uint64_t seen = c->written;
    const char *why = NULL;
    int delay = SL_CONN_BACKOFF_MIN_MS, rc = 0;

    c->closing = 1;
    uv_timer_stop(&c->retry);
    while (c->head != NULL) {
        if (!c->connected) {
            int e = 0;
            socklen_t len = sizeof e;
            if (c->fd < 0 && start_connect(c) != 0) {
                why = strerror(errno);
            } else if (wait_fd(c->fd, POLLOUT, deadline) != 0
                       && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0) {
                c->connected = 1;
                why = NULL;
                continue;
            } else if (e != 0) {
                why = strerror(e);
            }
            report_down(c, e != 0 ? e : errno);
            disconnect(c);
            if (now_ms() + delay >= deadline)
                break;
            usleep((useconds_t)delay * 1000);
            delay = delay * 2 > SL_CONN_BACKOFF_MAX_MS ? SL_CONN_BACKOFF_MAX_MS : delay * 2;
            continue;
        }
        if (write_some(c) != 0) {
            why = strerror(errno);
            disconnect(c);
            continue;
        }
        if (c->written != seen) {   /* the peer takes bytes: it has the time it needs */
            seen = c->written;
            deadline = now_ms() + timeout_ms;
        }
        if (c->head != NULL && wait_fd(c->fd, POLLOUT, deadline) == 0)
            break;
    }
    if (c->head != NULL) {
        char took[64];
        if (why == NULL && stalled != NULL) {
            why = stalled;
        } else if (why == NULL) {
            snprintf(took, sizeof took, "it took no byte for %d ms", timeout_ms);
            why = took;
        }
        snprintf(err, SL_CONN_ERRLEN, "%zu record%s (%zu bytes) not delivered to %s: %s",
                 c->pending_records, c->pending_records == 1 ? "" : "s", c->pending,
                 c->address, why);
        rc = -1;
    }
    while (c->head != NULL) {
        chunk *k = c->head;
        c->head = k->next;
        free(k);
    }
    c->tail = NULL;
    c->off = 0;
    disconnect(c);
    uv_close((uv_handle_t *)&c->retry, on_retry_closed);
    return rc;
}
