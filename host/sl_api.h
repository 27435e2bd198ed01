/* sl_api.h -- everything Lua may call in the host, in one place.
 *
 * Two doors, chosen by how often they are used (see STYLE.md):
 * - The FFI door: plain C functions on scalars and pointers, for per-record and per-batch
 *   work that needs no lua_State, and the layouts of the buffers Lua reads in place: the
 *   functions below and the headers included under "FFI door", nothing else. None of
 *   the functions calls back into Lua. lua/sluice/host.lua mirrors what it uses of them in
 *   its one ffi.cdef, and tests/unit/host_spec.lua checks each of its declarations
 *   against these headers (it reads the list of includes here).
 * - The Lua C API door: the module "sluice.core", for setup, for objects that own libuv
 *   handles, and for work that builds Lua values (decoding a batch builds its tables).
 *   Its functions are listed below and registered in core.c.
 */
#ifndef SL_API_H
#define SL_API_H

#include <stdint.h>
#include <lua.h>

/* ---- FFI door ---------------------------------------------------------------------- */

#include "prims.h"          /* timer heap, window arithmetic, accumulators, sketches */
#include "nexmark_typed.h"  /* Nexmark's events as typed records (gen:fill_raw) */
#include "scatter.h"        /* typed records split among workers by key group */
#include "combine.h"        /* a combiner's accumulators by number key, a batch folded */
#include "typed.h"          /* the slots of typed records of a schema (sl.schema) */

double sl_time_now_ms(void);          /* wall clock, ms since the Unix epoch (time.c) */
uint64_t sl_time_hrtime_ns(void);     /* monotonic clock, ns */

/* guard.c: the operator running now, which a hard exit names. sl_guard_label notes a label
 * ("map at job.lua:3", truncated to 199 bytes) and returns its id, the same for the same
 * text (0, no operator, once 512 are kept); sl_guard_enter makes an id current and
 * returns the one it replaces (a plain store, cheap enough for every batch). */
int sl_guard_label(const char *text);
int sl_guard_enter(int id);

/* ---- Lua C API door: require "sluice.core" ----------------------------------------------
 *
 * core.VERSION                  "x.y.z"
 * core.null                     light userdata SL_NULL (JSON null, msgpack nil)
 * core.libdir                   directory the Lua library was loaded from
 * core.run()                    runs the libuv loop until no handle or request is active or
 *                               core.stop() is called. Returns true; or nil, message when a
 *                               callback raised (the message carries a traceback; the loop
 *                               stops at the first error). Raises if already running.
 * core.stop()                   makes core.run() return after the current callback (does
 *                               nothing outside core.run()).
 *
 * core.idle(fn)     -> handle   calls fn() once per loop iteration; started at once.
 * core.timer(fn)    -> handle   handle:start(timeout_ms [, repeat_ms]) calls fn() then.
 *   handle:start(...), handle:stop(), handle:close() (idempotent; garbage collection
 *   closes a handle too, but a started handle is kept alive until it stops or closes).
 *
 * core.signal(name, fn) -> handle   calls fn(name) from the loop when the process gets
 *                               signal name ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT",
 *                               "SIGUSR1", "SIGUSR2", "SIGWINCH"). The handle is unref'd:
 *                               it never keeps core.run() going by itself. handle:close()
 *                               restores the default action (idempotent).
 *
 * core.guard{on_signal=fn, grace_ms=5000, remove=path} -> guard   (guard.c)
 *                               takes SIGINT and SIGTERM in C while a job runs: each
 *                               calls fn(name) from the loop.
 *                               When the loop does not come round to the first within
 *                               grace_ms (a user function that never returns), or to a
 *                               later one within a second (fn must end the process then:
 *                               os.exit), the process ends at once from C with status 130,
 *                               naming the operator that runs (sl_guard_enter), after
 *                               removing the file `remove` (the control socket). Unref'd.
 *                               guard:close() gives both signals back to what handled
 *                               them before (idempotent); one guard at a time.
 * core.memory_limit(bytes|nil [, heap_bytes])   (memory.c) from the first call on, the Lua
 *                               state allocates through a counter: an allocation that would
 *                               take its heap (garbage not yet collected included) past
 *                               heap_bytes (default: bytes, the process's limit, which the
 *                               message names) ends the process at once with status 1,
 *                               naming the operator that runs (guard.c). nil or 0: no
 *                               limit. A forked child has none.
 * core.memory() -> {heap=, rss=, limit=}   the Lua heap (counted since the first
 *                               core.memory_limit, else as collectgarbage reports it) and
 *                               the resident size of the process in bytes, and the limit.
 * core.watch{paths=, on_change=, debounce=100} -> watcher   (watch.c) calls on_change()
 *                               from the loop once the files at paths (an array) have
 *                               changed and no further change came for debounce ms. Each
 *                               path's directory is watched for its name, so a file
 *                               replaced by a rename (as editors save) stays watched, and
 *                               one created later is seen. A directory that cannot be
 *                               watched raises "watch PATH: reason". Unref'd: it never
 *                               keeps core.run() going. watcher:close() (idempotent).
 *
 * core.reader{...}  -> reader   frames and decodes a file or descriptor into batches.
 *   path=string | fd=integer | feed=true
 *                               what to read (fd is not closed at the end unless own=true).
 *                               Pipes, terminals and sockets are read as libuv streams,
 *                               anything else with uv_fs_read in 256 KiB chunks. feed=true:
 *                               no descriptor; core.udp hands datagrams in (for lines, json
 *                               and csv a datagram ends its last line).
 *   own=boolean                 fd: the reader owns the descriptor and closes it
 *   name=string                 what messages call the input (default the path, "<stdin>")
 *   follow=boolean              path: at the end of the file look again every 50 ms, like
 *                               tail -F: a rename-and-recreate (another inode at the path)
 *                               or a truncation (shorter than what was read) switches to
 *                               the new content; an unterminated last line is ended first.
 *                               The input never ends by itself.
 *   partial_bad=boolean         an unterminated record at the end of input (or after a read
 *                               error) goes to on_bad as "partial record at end of input"
 *                               instead of being a record (sockets)
 *   format="lines"|"json"|"csv"|"msgpack"
 *                               lines, json, csv: one record per line ("\r\n" too; a
 *                               leading UTF-8 BOM is skipped; csv quoted fields may hold
 *                               newlines). Blank lines are no record in json and csv, an
 *                               empty string in lines. msgpack: a stream of objects.
 *   header=boolean              csv: the first record names the columns (records are
 *                               then tables keyed by them)
 *   batch=integer               most records per on_batch call (default 1024)
 *   max_record=integer          longest record in bytes (default 1 MiB); longer is bad,
 *                               and is skipped as it arrives, never buffered whole
 *   on_batch=function(batch, n) batch[1..n] are the records (batch[n+1] is nil); the table
 *                               is reused, so it is valid only during the call
 *   on_bad=function(info)       optional: a malformed record, info = {line=, offset=,
 *                               reason=, raw=} (line 1-based where the record starts,
 *                               msgpack: the object's ordinal; offset in bytes from the
 *                               start of input; raw at most 256 bytes of it); the reader
 *                               goes on. Without on_bad bad records are dropped.
 *   on_end=function(err)        optional: end of input (err nil) or a read error (err is
 *                               "read PATH: reason"); called once
 *   on_caught_up=function()     optional, follow=true: the end of the file was reached
 *                               the first time, every record before it delivered; once
 *   Opening happens at once: a missing file raises "open PATH: reason". A new reader is
 *   stopped: reader:start() starts or resumes reading (asynchronously: callbacks come only
 *   from core.run()); reader:stop() pauses after the current callback (the rest of the
 *   input read so far waits for start()); reader:close() stops for good and frees the
 *   buffers (idempotent, safe inside the reader's own callbacks; garbage collection
 *   closes an unstarted or stopped reader). A callback that raises stops the reader.
 *   reader:drain() ends the input where it stands (for a shutdown): the complete records
 *   already read are delivered, the bytes the kernel holds for a socket or pipe at the call
 *   are read too, a chunk a loop turn (a partial record there is bad), a file's
 *   unterminated tail is left unread; then on_end(nil). A stopped reader is resumed to
 *   drain; stop() and start() pause and resume the drain (flow control goes on).
 *   reader:unread() -> bytes received and not delivered (buffered, and while a socket
 *                               drains the rest of what the kernel held)
 *   reader:position() -> offset, line, ino, dev [, columns]   where the first record not
 *                               yet delivered starts (framed records still waiting for
 *                               on_batch are not delivered): byte offset in the file that
 *                               holds it and its line, that file's inode and device (a
 *                               followed file rotated since is named until its buffered
 *                               tail is delivered), and csv header names once read
 *   offset=number, line=number, columns=array   path: start reading at byte offset (line
 *                               numbers from line; csv header=true: columns are the header
 *                               already read), as position() gave them (checkpoints)
 *
 * core.listen{address="host:port", on_connection=function(fd, peer)} -> listener
 *                               listens on TCP at once ("host:port", "[v6]:port",
 *                               "localhost:port"); a bad address or a port in use raises
 *                               "bad address ..." / "listen tcp ADDR: reason". Each accepted
 *                               connection is a non-blocking descriptor the callee owns
 *                               (give it to core.reader{fd=, own=true}); peer is "ip:port".
 *   listener:stop(), :start()   stop / resume accepting (connections wait in the backlog)
 *   listener:accept_pending()   accepts now what is waiting (for a shutdown); -> count
 *   listener:close()            idempotent
 * core.udp{address=, reader=}   -> udp: binds a UDP socket and feeds each datagram (up to
 *                               64 KiB) to reader (made with feed=true); :stop(), :start(),
 *                               :close().
 *
 * core.writer{...}  -> writer   encodes batches and writes them through libuv.
 *   path=string | fd=integer, format="json"|"lines"|"csv"|"msgpack", append=boolean,
 *   columns=array (csv: column order; default the sorted string keys of the first table
 *   record, and array records when it has none),
 *   header=boolean (csv: write the header line, default true)
 *   json and csv write one record per line, msgpack concatenated objects; lines writes
 *   strings verbatim, numbers, booleans and null as text, a table with __tostring
 *   through it, and other tables as JSON.
 *   writer:write(batch [, n]) -> nil, or an array of {index=i, reason=msg} for the records
 *                               it could not encode (they are skipped, the rest written);
 *                               n defaults to #batch
 *   connect="host:port" instead of path/fd: a TCP connection (conn.c) that queues what is
 *   flushed, writes it from the loop, reconnects with backoff (50 ms doubling to 2 s) and
 *   drops nothing; low=bytes and on_drain=function() (called from the loop when the queue
 *   falls to low after being above it); linger=ms (default 5000): close() delivers the
 *   rest for as long as the peer takes bytes, and gives up after linger ms without any
 *   ("tcp sink: N records (B bytes) not delivered to ADDR: reason"); close(ms, why) sets
 *   the linger for that close and the reason given when the peer took nothing.
 *   writer:pending() -> bytes queued and not yet written (buffer + connection), the
 *                               records among them not written whole, and the bytes the
 *                               connection has written since it was made
 *   writer:size() -> the file's length once the buffer is written (path= or a file fd=)
 *   truncate_to=bytes           path: resume a file at this length (cut back, then append;
 *                               csv writes no second header)
 *   writer:flush(), writer:close()   write errors raise "write PATH: reason" (PATH is
 *                               "<stdout>" for fd 1); a descriptor given as fd is not
 *                               closed. Garbage collection closes a writer without raising
 *                               (a failure is printed on stderr).
 *   pipe_may_close=boolean      EPIPE (the reader of a pipe went away, as with `| head`)
 *                               is no error: writer:reader_gone() -> true from then on,
 *                               and what comes is dropped
 *
 * core.kafka_consumer{...} -> consumer   (kafka_consumer.c) a consumer-group member served
 *                               from the loop: what=label, brokers=, topics=array, group=,
 *                               format="json"|"lines"|"csv"|"msgpack", start="earliest"|
 *                               "latest", meta=, bounded=, batch=n, columns= (csv),
 *                               offsets={topic={[p]=offset}} (where assigned partitions
 *                               start), options={librdkafka properties}; callbacks
 *                               on_batch(batch, n, topic, partition, last_offset) (one
 *                               partition's records in order), on_bad{topic=, partition=,
 *                               offset=, reason=, raw=}, on_assign(list), on_revoke(list)
 *                               (list = {{topic=, partition=}, ...}), on_error(msg, fatal),
 *                               on_end() (bounded: every partition at its end). Raises when
 *                               the brokers say a topic does not exist.
 *   consumer:stop(), :start()   pause / resume fetching (flow control)
 *   consumer:commit(offsets [, sync])   offsets for the group (see kafka_consumer.c)
 *   consumer:watermarks() -> {{topic=, partition=, high=, position=}, ...}   the cached
 *                               high watermark of each partition assigned here (never
 *                               blocks), for --metrics' consumer lag
 *   consumer:error_age() -> seconds since librdkafka's last error, or nil (none since
 *                               messages last flowed), for --metrics' /readyz
 *   consumer:close()            leaves the group; idempotent
 * core.kafka_producer{...} -> producer   (kafka_producer.c) an idempotent producer: what=,
 *                               brokers=, topic=, format="json"|"lines"|"msgpack",
 *                               key_field=, options=; on_failed(list of {reason=, value=,
 *                               key=}), on_event() after each round of delivery reports,
 *                               on_error(msg, fatal).
 *   producer:write(batch, n [, keys]) -> bad, stopped   (bad: {{index=, reason=}...};
 *                               stopped: the first index a full queue refused)
 *   producer:poll(), :outq() -> n, :stats() -> delivered, failed, :flush(ms) -> undelivered
 *   producer:queued() -> bytes, messages   produced and not yet reported (--metrics)
 *   producer:init_transactions(ms), :begin_transaction(), :send_offsets(consumer, offsets,
 *                               ms), :commit_transaction(ms), :abort_transaction(ms) -> true
 *                               | nil, message, "retry"|"abort"|"fatal"
 *   producer:close()            destroys the client (flush first); idempotent
 * core.kafka_committed{brokers=, group=, options=, offsets=, timeout=} -> the group's
 *                               committed offsets for those partitions, or nil, message
 *
 * core.http_client{...} -> client   (http_client.c) request bodies sent with libcurl's
 *                               multi-socket interface from the loop: what=label, url=,
 *                               method="POST", format="json"|"lines"|"msgpack",
 *                               headers={"Name: value", ...}, cacert=path, insecure=,
 *                               timeout_ms=30000, connect_timeout_ms=10000, on_done(id,
 *                               status, text) (status 0: text is libcurl's error; else
 *                               the reply's first 4 KiB)
 *   client:encode(batch, n) -> id | nil, bytes, bad   one body of the encodable records
 *                               (JSON lines, lines, or msgpack objects end to end)
 *   client:post(id)             sends the body (again after a failure; it is kept)
 *   client:drop(id)             frees the body (not while in flight)
 *   client:records(id) -> array of the body's records, encoded (no newline)
 *   client:wait(ms) -> in flight   drives transfers without the loop (a checkpoint's
 *                               barrier); on_done is called for those that complete
 *   client:stats() -> in flight, bytes held;  client:close() aborts; idempotent *
 * core.redis_source{...} -> source   (redis_source.c) a consumer of a Redis Streams consumer
 *                               group on the loop: what=label, host=, port=, db=, password=,
 *                               stream=, group=, consumer=, start="earliest"|"latest" (where
 *                               a new group starts), json= (the record is the JSON document
 *                               in field=, or in the entry's only field), meta= (adds id),
 *                               batch=n, autoack= (XACK after each batch); callbacks
 *                               on_batch(batch, n, last_id), on_bad{id=, reason=, raw=}
 *   source:stop(), :start()     pause / resume reading (flow control)
 *   source:mark() -> n          entries delivered so far; source:ack(n) XACKs those up to n
 *   source:close()              waits (bounded) for the XACKs sent; idempotent
 * core.redis_sink{...} -> sink   (redis_sink.c) pipelined XADD: what=, host=, port=, db=,
 *                               password=, stream=, maxlen=; on_event(answered, errors,
 *                               lost_from) after a loop turn with replies (errors: {{seq=,
 *                               reason=}...}; lost_from: the first XADD lost with the
 *                               connection) or after connecting
 *   sink:write(batch, n [, from]) -> bad, stopped   (bad: {{index=, reason=}...}; stopped:
 *                               the first index not sent, the server being down)
 *   sink:counts() -> sent, answered, up   sink:wait(ms) -> in flight (serves the socket
 *                               until every reply is in, then on_event)   sink:close()
 *
 * core.json_encode(v) -> s       core.json_decode(s) -> v      (raise on bad input, with
 * core.msgpack_encode(v) -> s    core.msgpack_decode(s) -> v    the codec's message; s
 *                                                               must hold exactly one value)
 *
 * core.nexmark{...} -> generator   Nexmark events (nexmark_lua.c over nexmark.c),
 *                               deterministic for a seed.
 *   events=integer (nil or 0: unbounded), rate=events per second of event time (10000),
 *   seed=integer (0), first_time=ms of event 0 (1700000000000), people= (active people,
 *   1000), auctions= (auctions in flight, 100), hot_auction_ratio=2, hot_seller_ratio=4,
 *   hot_bidder_ratio=4 (as Beam's NexmarkConfiguration)
 *   gen:fill(batch [, max=1024]) -> n   batch[1..n] = the next n events as new records
 *                               {type="bid", bid={auction=, ...}} (batch[n+1] = nil);
 *                               0 when a bounded generator is done
 *   gen:layout(schema, origin)  the raw buffer's records are of schema, nexmark.lua's
 *                               Event (nexmark_typed.h), their numbers' len origin; once
 *   gen:fill_raw([max=1024 [, strings]]) -> n   the next n (<= 4096) events as records
 *                               of the layout's schema in the raw buffer (strings: also
 *                               in the string cache); lua/sluice/nexmark.lua reads them in
 *                               place, or makes the table records from them in a
 *                               JIT-compiled loop
 *   gen:raw() -> buffer, strings   the raw buffer (light userdata: sl_typed_field slots,
 *                               owned by gen; read with ffi.cast) and the cache (an array
 *                               of strings, by pool number)
 *   gen:pointer() -> the generator (light userdata) for sl_nexmark_adopt
 *   gen:position() -> next event number; gen:seek(n); gen:time_of(n) -> its event time
 *
 * core.pid, core.uid            this process's id and effective user id
 *
 * Checkpoints (durable.c, child.c; plain POSIX, never the loop, so a forked child may call
 * them). Each returns true (or its value), or nil and "what PATH: reason":
 * core.durable.replace(path, data)   path.tmp written, fsynced, renamed to path, directory
 *                               fsynced: after a crash path holds the old or the new data
 * core.durable.sync(path)       fsync of the file at path
 * core.durable.stat(path) -> {size=, ino=, dev=, regular=}
 * core.durable.list(dir) -> array of names     core.durable.remove(path) (missing: true)
 * core.durable.mkdir(path)      with its parents
 * core.durable.lock(path) -> true | false (held by another process) | nil, msg   an
 *                               exclusive flock held until this process (and any child
 *                               forked since) ends
 * core.durable.crc32(s) -> number     core.durable.encode(v) -> msgpack of state (as
 *                               core.msgpack_encode, but infinities and NaN are allowed)
 * core.child.fork() -> pid | 0 in the child | nil, msg   the child's garbage collector is
 *                               stopped, it dies with the parent (PR_SET_PDEATHSIG) and must
 *                               not call into libuv; it ends with core.child.exit(status)
 * core.child.wait(pid [, block]) -> nil (running, block=false) | exit status (128 + signal)
 *
 * The terminal (lineedit.c; for the REPL, attach and top, never the data path):
 * core.readline(prompt) -> line | nil at end of input | false on Ctrl-C (GNU readline;
 *                               only when fd 0 is a terminal)
 * core.history_add(line), core.history_load(path), core.history_save(path [, max=1000])
 *                               -> true | nil, msg (a missing file loads as empty)
 * core.completer(fn | nil)      Tab calls fn(word, line) -> array of words that may
 *                               replace word ('.' and ':' do not break words)
 * core.interrupts(on [, on_interrupt])   while on, Ctrl-C only sets a flag (and
 *                               interrupts a blocking wait); core.interrupted() ->
 *                               whether it came since the last call. With on_interrupt,
 *                               Ctrl-C also stops the running Lua code at its next
 *                               instruction: on_interrupt() is called there, and unless
 *                               it returns true, "interrupted" is raised; each
 *                               Ctrl-C does so again (none ends the process)
 * core.term_width([fd=1]) -> columns | nil (not a terminal)
 * core.term_raw(on) -> true | nil, msg    keys one at a time, unechoed, Ctrl-C as "\3"
 * core.read_key(timeout_ms) -> bytes | nil (timeout) | "" (end of input)
 *
 * The control socket (ctl.c; frames are a 4-byte big-endian length and that many bytes):
 * core.ctl_listen(path, on_message, on_close) -> server
 *                               listens on a Unix socket created with mode 0600 (a stale
 *                               socket there is replaced; a live one raises). For each
 *                               frame a client sends: on_message(conn, body); when a
 *                               client goes away: on_close(conn). conn:send(body) -> true
 *                               | false (closed); conn:close(). server:close() stops
 *                               listening and closes every conn (the file stays). Neither
 *                               keeps the loop alive; errors in the callbacks are printed.
 * core.ctl_connect(path) -> client | nil, msg    blocking: client:send(body) -> true |
 *                               nil, msg; client:recv([timeout_ms]) -> body | nil,
 *                               "closed" | nil, "timeout"; client:close()
 * core.ctl_dir(path) -> true | nil, msg   makes path (0700) or checks that it is a
 *                               directory owned by this user that no one else may enter
 * core.ctl_sockets(dir) -> array of the names in dir ending in ".sock"
 *
 * --metrics (metrics_server.c; an HTTP server on a thread of its own):
 * core.metrics_listen(address) -> server | nil, msg   listens on "host:port" and serves
 *                               GET /metrics (what server:publish(text) last gave),
 *                               /healthz (503 once the heartbeat a timer on this loop
 *                               stamps every 100 ms is a second old), /readyz (what
 *                               server:ready(ok [, why]) last said); server:close() stops
 *                               the thread and closes everything (idempotent). Unref'd.
 * core.usage() -> {cpu=, rss=}  CPU seconds (user + system) and resident bytes
 */
int luaopen_sluice_core(lua_State *L);

#endif
