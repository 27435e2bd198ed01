/* forward.h -- Fluent's forward protocol (v1): its bytes, and the two ends sluice has.
 *
 * forward.c decodes the entries a Fluent Bit or Fluentd client sends (Message, Forward,
 * PackedForward and CompressedPackedForward modes, EventTime) into Lua events, and packs
 * events into Forward-mode entries for a server. It is pure over buffers (no loop), so a
 * fuzz target drives it as a connection does. forward_conn.c is an accepted connection
 * of sl.source.forward (reads, decodes, acks chunks once the job has their records);
 * forward_client.c the connection of sl.sink.forward (writes entries, reads acks,
 * reconnects). The handshake (HELO/PING/PONG, for shared_key) is not implemented.
 */
#ifndef SL_FORWARD_H
#define SL_FORWARD_H

#include <stddef.h>
#include <lua.h>
#include <msgpack.h>

#include "buf.h"

#define SL_FORWARD_CHUNK_MAX   128          /* longest option.chunk taken (Fluent Bit: 24) */
#define SL_FORWARD_INFLATE_MAX (64u << 20)  /* most bytes a compressed entry inflates to */
#define SL_FORWARD_ERRLEN      256
#define SL_FORWARD_RECORD_DEPTH 29          /* deepest record taken: one that can be sent on
                                               in Forward mode ([tag, [[time, record]], option])
                                               within msgpack's 32 levels */

#define SL_FORWARD_OK       0   /* an entry decoded; its bytes and chunk in the entry */
#define SL_FORWARD_MORE     1   /* the entry is not complete yet */
#define SL_FORWARD_SKIP    -1   /* well-formed msgpack that is no entry: skip e->used bytes */
#define SL_FORWARD_BROKEN  -2   /* malformed msgpack: the stream cannot be resynchronised */

#define SL_FORWARD_CONN_MT   "sluice.forward_conn"    /* metatable of core.forward_conn */
#define SL_FORWARD_CLIENT_MT "sluice.forward_client"  /* metatable of core.forward_client */

/* What decoding a connection's entries needs between calls: one per connection. */
typedef struct sl_forward_decoder {
    msgpack_zone outer;     /* an entry as msgpack-c unpacked it (its option, its events) */
    msgpack_zone inner;     /* one packed event at a time */
    sl_buf scratch;         /* a compressed entry's events, inflated */
} sl_forward_decoder;

/* What one decoded entry was. */
typedef struct sl_forward_entry {
    size_t used;                            /* bytes of the entry in the input */
    int events;                             /* events appended to the batch */
    int bad;                                /* events reported bad instead */
    size_t chunk_len;                       /* option.chunk's length; 0: no ack asked */
    char chunk[SL_FORWARD_CHUNK_MAX + 1];   /* option.chunk, NUL-terminated */
} sl_forward_entry;

/* Told about an event that cannot be taken (index: its place in the entry, from 1;
 * reason: one line). The other events of the entry go on. */
typedef void sl_forward_bad_cb(void *arg, int index, const char *reason);

/* Sets up d; returns 0, or -1 when out of memory. sl_forward_decoder_free releases what
 * it holds. */
int sl_forward_decoder_init(sl_forward_decoder *d);
void sl_forward_decoder_free(sl_forward_decoder *d);

/* Decodes the first entry of s[0, len) and appends its events, each a table {tag=,
 * time=<ms since the epoch>, record=}, to the Lua array at stack index batch from index
 * n + 1. Returns OK, MORE, SKIP (reason in err, e->used set) or BROKEN (reason in err).
 * Stack unchanged. */
int sl_forward_decode(lua_State *L, sl_forward_decoder *d, const char *s, size_t len,
                      int batch, int n, sl_forward_bad_cb *on_bad, void *arg,
                      sl_forward_entry *e, char *err);

/* Appends to out the Forward-mode entry [tag, [[time, record], ...], {"chunk": chunk}]
 * of records recs[1..n] (a Lua array at stack index recs) with times[i] in ms (the array
 * at stack index times; 0: none, then now_ms), each time as an EventTime. A record that
 * cannot be encoded is left out and told to on_bad. Returns how many were packed (0: out
 * is unchanged). Stack unchanged. */
int sl_forward_pack(lua_State *L, const char *tag, size_t tag_len, int recs, int times, int n,
                    double now_ms, const char *chunk, size_t chunk_len, sl_buf *out,
                    sl_forward_bad_cb *on_bad, void *arg);

/* The ack a server sends for chunk: {"ack": chunk}. */
void sl_forward_pack_ack(const char *chunk, size_t chunk_len, sl_buf *out);

/* Create the forward_client and forward_conn metatables (the first calls the second).
 * Stack unchanged. */
void sl_forward_register(lua_State *L);
void sl_forward_conn_register(lua_State *L);

/* core.forward_conn{fd=, peer=, batch=, max_entry=, on_batch=, on_bad=, on_end=} -> conn */
int sl_forward_conn_new(lua_State *L);

/* core.forward_client{connect=, on_ack=, on_connect=, on_error=} -> client */
int sl_forward_client_new(lua_State *L);

/* core.forward_pack(tag, chunk, records, times|nil, n, now_ms) -> bytes|nil, bad|nil */
int sl_forward_pack_lua(lua_State *L);

#endif
