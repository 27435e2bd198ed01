/* conn.h -- an outgoing TCP connection with a send queue: bytes wait in order while it
 * connects or reconnects (with backoff), and are written as the socket takes them.
 *
 * Used by the writer for sl.sink.tcp. The loop does the writing; sl_conn_close flushes
 * what is left synchronously, as long as the peer takes bytes, since the job is ending.
 */
#ifndef SL_CONN_H
#define SL_CONN_H

#include <stddef.h>
#include <stdint.h>

#define SL_CONN_BACKOFF_MIN_MS  50      /* first reconnect delay; doubles per failure */
#define SL_CONN_BACKOFF_MAX_MS  2000    /* longest reconnect delay */
#define SL_CONN_ERRLEN          256

typedef struct sl_conn sl_conn;

/* Called from the loop when the queued bytes fall to the low mark after having been
 * above it (arg as given to sl_conn_new). */
typedef void sl_conn_drain_cb(void *arg);

/* Resolves address ("host:port") and starts connecting. Returns NULL with a message in
 * err when the address is bad; a refused connection is retried, never an error. */
sl_conn *sl_conn_new(const char *address, size_t low, sl_conn_drain_cb *on_drain, void *arg,
                     char *err);

/* Queues a copy of data[0, len) behind what is queued, and writes it when it can. It
 * holds nrec records, the i-th ending at byte ends[i] (ascending; bytes after the last
 * end, a csv header before the first, belong to no record). */
void sl_conn_send(sl_conn *c, const char *data, size_t len, const uint32_t *ends,
                  size_t nrec);

/* Bytes queued and not yet taken by the kernel; the records among them not taken whole;
 * and the bytes taken since the connection was made (what progress is measured by). */
size_t sl_conn_pending(const sl_conn *c);
size_t sl_conn_pending_records(const sl_conn *c);
uint64_t sl_conn_written(const sl_conn *c);

/* Writes what is queued (connecting again if need be) until the peer has taken nothing
 * for timeout_ms, then closes and frees the connection. Returns 0, or -1 with "N records
 * (B bytes) not delivered to ADDR: reason" in err; the reason for a peer that took nothing
 * is `stalled` when not NULL. */
int sl_conn_close(sl_conn *c, int timeout_ms, const char *stalled, char *err);

#endif
