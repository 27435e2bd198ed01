/* reader.c -- core.reader: reads a file or descriptor in chunks through libuv, has a
 * framer (framing.c) frame and decode its records, and calls Lua once per batch, never
 * once per record.
 *
 * Files are read with uv_fs_read; pipes, terminals and sockets as a libuv stream, so that
 * stopping or closing never waits on a read blocked for input that has not come. C owns
 * the reader: it is freed once closed, with no read in flight and its handles closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <lauxlib.h>

#include "framing.h"
#include "loop.h"
#include "reader.h"
#include "typed_lua.h"
#include "vm.h"

#define EAGAIN_RETRY_MS 10      /* a non-blocking descriptor had no data: retry then */
#define FOLLOW_POLL_MS  50      /* follow=true at the end of the file: look again then */
#define DRAIN_STEP_MS   1       /* a stream draining: its next chunk after this */

typedef struct sl_reader {
    uv_fs_t req;            /* the uv_fs_read in flight */
    uv_timer_t kick;        /* zero-delay timer: start() resumes framing from the loop */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tty_t tty;
        uv_tcp_t tcp;
    } s;                    /* the stream, for pipes, terminals and sockets */
    int is_stream;          /* s is in use; else fd is read with uv_fs_read */
    int stream_reading;     /* uv_read_start is in effect */
    int open_handles;       /* handles not yet through their close callback */
    uv_file fd;             /* what is read */
    int own_fd;             /* ours to close when the reader is freed */
    char *path;             /* the path, or "<stdin>" / "<fd N>", for messages */
    char *errmsg;           /* "read PATH: reason" once a read failed, else NULL */
    int feed;               /* no descriptor: sl_reader_feed hands the bytes in */
    int draining;           /* drain(): deliver what was read, then end */
    int64_t drain_left;     /* draining a stream: bytes the kernel held at drain() not
                               read yet (-1: unknown, read until there is nothing) */
    int follow;             /* a file followed like tail -F: its end is not the end */
    int64_t file_off;       /* follow: bytes read from the open file */
    uint64_t ino, dev;      /* path: identity of the open file (follow: to notice rotation) */
    int64_t file_base;      /* stream offset of the open file's byte 0 (0 until a rotation) */
    int64_t prev_base;      /* follow: the same for the file before the last rotation ... */
    uint64_t prev_ino, prev_dev;    /* ... and its identity, while its tail is buffered */
    int batch_max;          /* most records per on_batch call */

    int on_batch;           /* registry refs of the callbacks, LUA_NOREF when absent */
    int on_bad;
    int on_end;
    int on_caught_up;       /* follow: called once, when the file's end is first reached */
    int batch_ref;          /* registry ref of the batch table, reused for every batch */
    int keys_ref;           /* csv header=true: registry ref of the column names */
    int schema_ref;         /* schema=: registry ref of the schema (typed_lua.c) */
    int self_ref;           /* registry ref of the userdata while started */

    sl_framer fr;           /* the bytes read and not framed yet, and the framing state */
    int n;                  /* records in the batch table not delivered yet */
    int64_t pend_off;       /* n > 0: stream offset and line of the first of them */
    int64_t pend_line;
    int filled;             /* batch[1..filled] may still hold values of earlier batches */

    int reading;            /* started and not stopped */
    int inflight;           /* a uv_fs_read is pending; req and fr's buffer belong to libuv */
    int eof;                /* a read returned 0 or failed */
    int ended;              /* on_end was called */
    int closed;             /* close() was called: waiting for the read and the handles */
    int pumping;            /* inside pump(): a start() from a callback needs no kick */
} sl_reader;

/* ---- small helpers ------------------------------------------------------------------ */

static void out_of_memory(void)
{
    fprintf(stderr, "sluice: reader: out of memory\n");
    abort();
}

/* Returns a malloc'd formatted string. */
static char *strfmt(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
        out_of_memory();
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int live(const sl_reader *r)
{
    return r->reading && !r->closed;
}

/* The input has ended and its unterminated tail is to be framed: as a last record
 * (files, pipes) or as a bad partial one (partial_bad, even after a read error). */
static int at_end(const sl_reader *r)
{
    return r->eof && (r->errmsg == NULL || r->fr.partial_bad);
}

static void unref(lua_State *L, int *ref)
{
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    *ref = LUA_NOREF;
}

/* Stops reading: no read is issued and no callback made until start(). */
static void pause_reader(lua_State *L, sl_reader *r)
{
    r->reading = 0;
    if (!r->closed)
        uv_timer_stop(&r->kick);
    if (r->stream_reading) {
        uv_read_stop(&r->s.stream);
        r->stream_reading = 0;
    }
    unref(L, &r->self_ref);
}

/* Frees the reader once nothing refers to it any more: not before its read in flight
 * completes (libuv writes into buf) nor before its handles are closed. */
static void maybe_free(sl_reader *r)
{
    if (r->inflight || r->open_handles > 0)
        return;
    if (r->own_fd) {
        uv_fs_t req;
        uv_fs_close(NULL, &req, r->fd, NULL);
        uv_fs_req_cleanup(&req);
    }
    sl_framer_free(&r->fr);
    free(r->path);
    free(r->errmsg);
    free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    sl_reader *r = h->data;

    r->open_handles--;
    maybe_free(r);
}

/* ---- callbacks into Lua ------------------------------------------------------------- */

/* Calls on_bad{line=, offset=, reason=, raw=}. Stack unchanged. */
static void report_bad(lua_State *L, sl_reader *r, int64_t line, int64_t off,
                       const char *reason, const char *raw, size_t rawlen)
{
    if (r->on_bad == LUA_NOREF)
        return;
    if (rawlen > SL_READER_RAW_MAX)
        rawlen = SL_READER_RAW_MAX;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->on_bad);       /* fn */
    lua_createtable(L, 0, 4);                           /* fn info */
    lua_pushnumber(L, (lua_Number)line);
    lua_setfield(L, -2, "line");
    lua_pushnumber(L, (lua_Number)off);
    lua_setfield(L, -2, "offset");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_pushlstring(L, raw, rawlen);
    lua_setfield(L, -2, "raw");                         /* fn info */
    if (sl_loop_call(L, 1) != 0)                        /* -- */
        pause_reader(L, r);
}

/* Calls on_batch(batch, n) with the records collected so far. The batch table at bi is
 * reused: entries past n left from a longer batch are cleared first. Returns whether
 * the reader is still live afterwards. */
static int deliver(lua_State *L, sl_reader *r, int bi)
{
    int n = r->n, i;

    if (n == 0 || !live(r))
        return live(r);
    for (i = n + 1; i <= r->filled; i++) {
        lua_pushnil(L);
        lua_rawseti(L, bi, i);
    }
    r->filled = n;
    r->n = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->on_batch);    /* fn */
    lua_pushvalue(L, bi);                               /* fn batch */
    lua_pushinteger(L, n);                              /* fn batch n */
    if (r->fr.schema != NULL)       /* typed: the records are in the framer's slots */
        lua_pushlightuserdata(L, r->fr.slots);          /* fn batch n slots */
    if (sl_loop_call(L, r->fr.schema != NULL ? 3 : 2) != 0)    /* -- */
        pause_reader(L, r);
    return live(r);
}

/* End of input: calls on_end(nil) or on_end("read PATH: reason"), once. */
static void finish(lua_State *L, sl_reader *r)
{
    r->ended = 1;
    r->reading = 0;
    if (r->on_end != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->on_end);   /* fn */
        if (r->errmsg != NULL)
            lua_pushstring(L, r->errmsg);               /* fn err */
        else
            lua_pushnil(L);                             /* fn nil */
        sl_loop_call(L, 1);                             /* -- */
    }
    if (!r->closed)
        pause_reader(L, r);
}

/* A followed file's end, reached the first time: every record before it has been handed
 * to Lua (each read is framed and delivered as it completes), so on_caught_up() tells that
 * what the file held at the start is in. Once. */
static void caught_up(sl_reader *r)
{
    lua_State *L = sl_loop_lua();
    int ref = r->on_caught_up;

    if (L == NULL || !lua_checkstack(L, 4))
        return;
    r->on_caught_up = LUA_NOREF;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);             /* fn */
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    sl_loop_call(L, 0);                                 /* -- */
}

/* ---- framing ------------------------------------------------------------------------ */

/* Frames and decodes the records buffered into the batch table at bi (the csv column
 * names at ki), calling on_bad for each bad one and on_batch whenever the batch is full.
 * Returns 1 when the buffer holds no further complete record, 0 when a callback stopped,
 * closed or failed the reader. */
static int frame(lua_State *L, sl_reader *r, int bi, int ki)
{
    sl_frame first, rec;

    while (live(r)) {
        int n = r->n, rc;

        rc = sl_framer_fill(&r->fr, L, ki, at_end(r), bi, &r->n, r->batch_max, &first, &rec);
        if (n == 0 && r->n > 0) {
            r->pend_off = first.off;
            r->pend_line = first.line;
        }
        if (r->n > r->filled)
            r->filled = r->n;
        switch (rc) {
        case SL_FRAME_WAIT:
            return 1;
        case SL_FRAME_RECORD:                           /* the batch is full */
            deliver(L, r, bi);
            break;
        case SL_FRAME_BAD:
            report_bad(L, r, rec.line, rec.off, rec.reason, rec.raw, rec.rawlen);
            break;
        case SL_FRAME_HEADER:                           /* names */
            lua_pushvalue(L, -1);                       /* names names */
            r->keys_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* names */
            lua_replace(L, ki);                         /* -- (keys slot = names) */
            break;
        }
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------------ */

static void on_read(uv_fs_t *req);
static void on_kick(uv_timer_t *timer);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_stream_read(uv_stream_t *stream, ssize_t got, const uv_buf_t *b);

/* Room for a chunk at the end of the framer's buffer. Only between pumps: framing holds
 * pointers into the buffer. */
static char *make_room(sl_reader *r)
{
    return sl_framer_reserve(&r->fr, SL_READER_CHUNK);
}

/* Reads on: asks the thread pool for the next chunk (sequential reads, offset -1), or
 * starts the stream. A failure to start ends the input from the kick timer. */
static void read_more(sl_reader *r)
{
    uv_buf_t b;
    int rc;

    if (r->is_stream) {
        rc = uv_read_start(&r->s.stream, on_alloc, on_stream_read);
        if (rc == 0) {
            r->stream_reading = 1;
            return;
        }
    } else {
        b = uv_buf_init(make_room(r), SL_READER_CHUNK);
        r->req.data = r;
        rc = uv_fs_read(sl_loop_get(), &r->req, r->fd, &b, 1, r->follow ? r->file_off : -1,
                        on_read);
        if (rc == 0) {
            r->inflight = 1;
            return;
        }
    }
    r->errmsg = strfmt("read %s: %s", r->path, uv_strerror(rc));
    r->eof = 1;
    uv_timer_start(&r->kick, on_kick, 0, 0);
}

/* A stream being drained: takes in, without waiting, the next chunk of what the kernel
 * held for us when drain() was called, and marks the end of input once it is all in (or
 * the peer closed). A chunk a pump, so that a paused source reads no further: what it
 * delivers stays within what its sinks take. Only between framings (it may move the
 * buffer). */
static void drain_stream(sl_reader *r)
{
    uv_os_fd_t fd;
    size_t want = SL_READER_CHUNK;
    ssize_t got = 0;

    if (r->stream_reading) {
        uv_read_stop(&r->s.stream);
        r->stream_reading = 0;
    }
    if (r->eof)
        return;
    if (r->drain_left >= 0 && (int64_t)want > r->drain_left)
        want = (size_t)r->drain_left;
    if (want > 0 && uv_fileno(&r->s.handle, &fd) == 0) {
        do
            got = read(fd, make_room(r), want);
        while (got < 0 && errno == EINTR);
    }
    if (got > 0) {
        sl_framer_commit(&r->fr, (size_t)got);
        if (r->drain_left >= 0)
            r->drain_left -= got;
    }
    /* 0: the peer closed, or all it held is in; EAGAIN: nothing more after all */
    if (got <= 0 || r->drain_left == 0)
        r->eof = 1;
}

/* Frames what is buffered, hands it to Lua, then either reads on or ends. Runs only from
 * the loop (a read completed, or the kick timer after start()), never from a Lua call.
 * Draining, it ends once what was read is delivered: a stream's tail counts as read (it
 * is framed, and a partial record there is bad), a file's unterminated tail does not. */
static void pump(sl_reader *r)
{
    lua_State *L = sl_loop_lua();
    int top;

    if (L == NULL || r->pumping || !live(r) || !lua_checkstack(L, 16))
        return;
    r->pumping = 1;
    top = lua_gettop(L);
    if (r->draining && r->is_stream)
        drain_stream(r);
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->batch_ref);    /* batch */
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->keys_ref);     /* batch keys|nil */
    if (frame(L, r, top + 1, top + 2) && deliver(L, r, top + 1)) {
        if (r->eof || (r->draining && !r->is_stream && !r->inflight))
            finish(L, r);
        else if (r->draining && r->is_stream)   /* its next chunk, from the loop's next */
            uv_timer_start(&r->kick, on_kick, DRAIN_STEP_MS, 0);   /* turn: 0 reruns at once */
        else if (!r->inflight && !r->stream_reading && !r->feed)
            read_more(r);
    }
    lua_settop(L, top);                                 /* -- */
    r->pumping = 0;
}

/* Starts a new file (ino, dev) after the bytes buffered so far, which are the tail of the
 * file before, at its offset 0. */
static void new_file(sl_reader *r, uint64_t ino, uint64_t dev)
{
    r->prev_ino = r->ino;
    r->prev_dev = r->dev;
    r->prev_base = r->file_base;
    r->ino = ino;
    r->dev = dev;
    r->file_base = r->fr.base + (int64_t)r->fr.len;
    r->file_off = 0;
}

/* follow=true, at the end of the open file: has the path been rotated (renamed away and
 * created again: another inode) or truncated (shorter than what was read)? Switches to
 * the new file, or to the start of the truncated one, and returns 1; else 0. A path that
 * is missing for a moment (between rename and create) keeps the old file. */
static int follow_rotated(sl_reader *r)
{
    struct stat st, fst;

    if (stat(r->path, &st) != 0)
        return 0;
    if ((uint64_t)st.st_ino != r->ino || (uint64_t)st.st_dev != r->dev) {
        int fd = open(r->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        if (fstat(fd, &fst) != 0) {
            close(fd);
            return 0;
        }
        sl_framer_end_line(&r->fr);    /* the old file's last line ends there */
        close(r->fd);
        r->fd = fd;
        new_file(r, (uint64_t)fst.st_ino, (uint64_t)fst.st_dev);
        return 1;
    }
    if (fstat(r->fd, &fst) == 0 && fst.st_size < r->file_off) {
        sl_framer_end_line(&r->fr);    /* the old file's last line ends there */
        new_file(r, r->ino, r->dev);
        return 1;
    }
    return 0;
}

static void on_read(uv_fs_t *req)
{
    sl_reader *r = req->data;
    ssize_t got = req->result;

    uv_fs_req_cleanup(req);
    r->inflight = 0;
    if (r->closed) {
        maybe_free(r);
        return;
    }
    if (got == UV_EAGAIN) {         /* a non-blocking descriptor: try again shortly */
        if (r->reading)
            uv_timer_start(&r->kick, on_kick, EAGAIN_RETRY_MS, 0);
        return;
    }
    if (got < 0) {
        r->errmsg = strfmt("read %s: %s", r->path, uv_strerror((int)got));
        r->eof = 1;
    } else if (got == 0 && r->follow) {
        if (r->on_caught_up != LUA_NOREF)
            caught_up(r);
        if (!follow_rotated(r)) {   /* nothing new: look again shortly */
            if (r->reading && !r->draining)
                uv_timer_start(&r->kick, on_kick, FOLLOW_POLL_MS, 0);
            if (!r->draining)
                return;
        }
    } else if (got == 0) {
        r->eof = 1;
    } else {
        sl_framer_commit(&r->fr, (size_t)got);
        r->file_off += got;
    }
    pump(r);                        /* does nothing while stopped: the bytes wait */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    sl_reader *r = h->data;

    *b = uv_buf_init(make_room(r), SL_READER_CHUNK);
}

static void on_stream_read(uv_stream_t *stream, ssize_t got, const uv_buf_t *b)
{
    sl_reader *r = stream->data;

    if (got == 0)                   /* nothing to read after all (EAGAIN) */
        return;
    if (got > 0) {
        sl_framer_commit(&r->fr, (size_t)got);
    } else {
        if (got != UV_EOF)
            r->errmsg = strfmt("read %s: %s", r->path, uv_strerror((int)got));
        r->eof = 1;
        uv_read_stop(stream);
        r->stream_reading = 0;
    }
    pump(r);
}

static void on_kick(uv_timer_t *timer)
{
    pump(timer->data);
}

/* Reads a pipe, terminal or socket as a libuv stream; leaves anything else (regular
 * files, /dev/null, ...) to uv_fs_read. libuv closes the stream's descriptor (never
 * 0-2), so a descriptor given as fd= is duplicated first. */
static void open_stream(sl_reader *r)
{
    uv_loop_t *loop = sl_loop_get();
    uv_handle_type type = uv_guess_handle(r->fd);
    int fd = r->fd, rc;

    if (type != UV_TTY && type != UV_NAMED_PIPE && type != UV_TCP)
        return;
    if (!r->own_fd && fd > 2 && (fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 3)) < 0)
        return;
    if (type == UV_TTY) {
        rc = uv_tty_init(loop, &r->s.tty, fd, 1);
    } else if (type == UV_NAMED_PIPE) {
        if ((rc = uv_pipe_init(loop, &r->s.pipe, 0)) == 0 && uv_pipe_open(&r->s.pipe, fd) != 0)
            rc = 1;
    } else {
        if ((rc = uv_tcp_init(loop, &r->s.tcp)) == 0 && uv_tcp_open(&r->s.tcp, fd) != 0)
            rc = 1;
    }
    if (rc < 0) {                   /* no handle: read with uv_fs_read after all */
        if (fd != r->fd)
            close(fd);
        return;
    }
    r->s.handle.data = r;
    r->open_handles++;
    if (rc > 0) {                   /* a handle that cannot take the descriptor */
        uv_close(&r->s.handle, on_handle_closed);
        if (fd != r->fd)
            close(fd);
        return;
    }
    r->is_stream = 1;
    r->own_fd = 0;                  /* the stream closes it now */
}

/* ---- Lua methods -------------------------------------------------------------------- */

static sl_reader **check_reader(lua_State *L)
{
    return luaL_checkudata(L, 1, SL_READER_MT);
}

/* Marks r reading, keeps its userdata (at index 1) alive from the registry while it
 * reads, and has the loop resume the framing unless it is already under way. */
static void read_on(lua_State *L, sl_reader *r)
{
    if (!r->reading) {
        r->reading = 1;
        if (r->self_ref == LUA_NOREF) {
            lua_pushvalue(L, 1);                            /* ud */
            r->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* -- */
        }
    }
    if (!r->pumping)
        uv_timer_start(&r->kick, on_kick, 0, 0);
}

/* reader:start(): reads on. The framing resumes from the loop, not inside this call. */
static int reader_start(lua_State *L)
{
    sl_reader *r = *check_reader(L);

    if (r == NULL)
        return luaL_error(L, "reader:start(): the reader is closed");
    if (r->ended || r->reading)
        return 0;
    read_on(L, r);
    return 0;
}

/* reader:stop(): no callback after the current one, no read issued; a read in flight
 * completes and its bytes wait for start(). */
static int reader_stop(lua_State *L)
{
    sl_reader *r = *check_reader(L);

    if (r != NULL)
        pause_reader(L, r);
    return 0;
}

/* reader:drain(): ends the input where it stands, without waiting for more: the records
 * already read (and, for a socket or pipe, the bytes the kernel holds for it now) are
 * delivered, then on_end(nil) is called. Resumes a stopped reader to do so; stop() and
 * start() still pause and resume it while it drains. */
static int reader_drain(lua_State *L)
{
    sl_reader *r = *check_reader(L);
    uv_os_fd_t fd;
    int held;

    if (r == NULL || r->ended)
        return 0;
    if (!r->draining) {
        r->draining = 1;
        r->drain_left = -1;
        if (r->is_stream && uv_fileno(&r->s.handle, &fd) == 0 && ioctl(fd, FIONREAD, &held) == 0)
            r->drain_left = held;
    }
    read_on(L, r);
    return 0;
}

/* reader:unread() -> bytes received and not delivered: what the buffer holds and, while
 * a stream drains, what the kernel held at drain() and is not read yet. */
static int reader_unread(lua_State *L)
{
    sl_reader *r = *check_reader(L);
    double n = 0;

    if (r != NULL) {
        n = (double)(r->fr.len - r->fr.pos);
        if (r->draining && !r->eof && r->drain_left > 0)
            n += (double)r->drain_left;
    }
    lua_pushnumber(L, n);
    return 1;
}

/* reader:position() -> offset, line, ino, dev [, columns]: where the first record not yet
 * delivered starts (records framed into a batch that on_batch has not had are not
 * delivered; nor is an overlong or undecodable record still being skipped): its byte
 * offset in the file that holds it, its line (msgpack: ordinal), and that file's inode
 * and device (0 for a descriptor). A followed file rotated since keeps its old identity
 * until its buffered tail is delivered. columns: csv header=true, once the header is read.
 * Reopened with path=, offset=, line= and columns=, a reader continues from there. */
static int reader_position(lua_State *L)
{
    sl_reader *r = *check_reader(L);
    int64_t at, line;

    if (r == NULL)
        return luaL_error(L, "reader:position(): the reader is closed");
    if (r->n > 0) {
        at = r->pend_off;
        line = r->pend_line;
    } else {
        sl_framer_position(&r->fr, &at, &line);
    }
    if (at >= r->file_base) {
        lua_pushnumber(L, (lua_Number)(at - r->file_base));
        lua_pushnumber(L, (lua_Number)line);
        lua_pushnumber(L, (lua_Number)r->ino);
        lua_pushnumber(L, (lua_Number)r->dev);
    } else {
        lua_pushnumber(L, (lua_Number)(at - r->prev_base));
        lua_pushnumber(L, (lua_Number)line);
        lua_pushnumber(L, (lua_Number)r->prev_ino);
        lua_pushnumber(L, (lua_Number)r->prev_dev);
    }
    if (r->keys_ref == LUA_NOREF)
        return 4;
    lua_rawgeti(L, LUA_REGISTRYINDEX, r->keys_ref);     /* offset line ino dev cols */
    return 5;
}

void sl_reader_feed(sl_reader *r, const char *data, size_t len, int truncated)
{
    if (r->closed || r->ended)
        return;
    if (truncated) {
        lua_State *L = sl_loop_lua();
        if (L != NULL)
            report_bad(L, r, r->fr.line, r->fr.base + (int64_t)r->fr.len,
                       "datagram larger than the receive buffer", data, len);
        return;
    }
    sl_framer_reserve(&r->fr, len + 1 > SL_READER_CHUNK ? len + 1 : SL_READER_CHUNK);
    sl_framer_append(&r->fr, data, len);
    if (len > 0)
        sl_framer_end_line(&r->fr);     /* a datagram ends its last line */
    pump(r);
}

/* reader:close() and __gc: stops for good and drops the Lua references at once; the
 * memory and the descriptor go when the read in flight and the timer are done. Safe
 * from inside the reader's own callbacks (pump checks closed after each one). */
static int reader_close(lua_State *L)
{
    sl_reader **ud = check_reader(L);
    sl_reader *r = *ud;

    if (r == NULL)
        return 0;
    *ud = NULL;
    pause_reader(L, r);
    r->closed = 1;
    if (r->is_stream)
        uv_close(&r->s.handle, on_handle_closed);
    unref(L, &r->on_batch);
    unref(L, &r->on_bad);
    unref(L, &r->on_end);
    unref(L, &r->on_caught_up);
    unref(L, &r->batch_ref);
    unref(L, &r->keys_ref);
    unref(L, &r->schema_ref);
    uv_close((uv_handle_t *)&r->kick, on_handle_closed);
    return 0;
}

static int reader_tostring(lua_State *L)
{
    sl_reader *r = *check_reader(L);

    if (r == NULL)
        lua_pushliteral(L, "sluice.reader (closed)");
    else
        lua_pushfstring(L, "sluice.reader (%s %s)", sl_framer_formats[r->fr.format], r->path);
    return 1;
}

/* Pushes field name of the options table at index 1 if it is of type t; raises if it is
 * of another type; returns 0 (nothing pushed) if it is nil. */
static int opt(lua_State *L, const char *name, int t)
{
    return sl_vm_opt(L, "core.reader", name, t);
}

static lua_Integer opt_int(lua_State *L, const char *name, lua_Integer def, lua_Integer max)
{
    lua_Number v;

    if (!opt(L, name, LUA_TNUMBER))
        return def;
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (v != (lua_Number)(lua_Integer)v || v < 1 || v > (lua_Number)max)
        luaL_error(L, "core.reader: %s must be an integer from 1 to %d", name, (int)max);
    return (lua_Integer)v;
}

static int opt_ref(lua_State *L, const char *name, int required)
{
    if (!opt(L, name, LUA_TFUNCTION)) {
        if (required)
            luaL_error(L, "core.reader: %s must be a function", name);
        return LUA_NOREF;
    }
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

int sl_reader_new(lua_State *L)
{
    const char *path = NULL, *fmt, *name = NULL;
    lua_Integer batch, max_record;
    lua_Number offset = 0, line = 1;
    const sl_schema *schema;
    int fd = -1, format, header = 0, own_fd = 0, feed = 0, partial_bad = 0, follow = 0;
    sl_reader **ud, *r;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (opt(L, "path", LUA_TSTRING))
        path = lua_tostring(L, -1);     /* stays referenced by the options table */
    if (opt(L, "fd", LUA_TNUMBER))
        fd = (int)lua_tointeger(L, -1);
    if (opt(L, "feed", LUA_TBOOLEAN))
        feed = lua_toboolean(L, -1);
    if ((path != NULL) + (fd >= 0) + feed != 1)
        return luaL_error(L, "core.reader: give one of path=, fd= (a descriptor >= 0) or "
                          "feed=true");
    if (fd >= 0 && opt(L, "own", LUA_TBOOLEAN))
        own_fd = lua_toboolean(L, -1);
    if (opt(L, "name", LUA_TSTRING))
        name = lua_tostring(L, -1);     /* stays referenced by the options table */
    if (opt(L, "partial_bad", LUA_TBOOLEAN))
        partial_bad = lua_toboolean(L, -1);
    if (path != NULL && opt(L, "follow", LUA_TBOOLEAN))
        follow = lua_toboolean(L, -1);
    if (!opt(L, "format", LUA_TSTRING))
        return luaL_error(L, "core.reader: format must be lines, json, csv or msgpack");
    fmt = lua_tostring(L, -1);
    for (format = 0; sl_framer_formats[format] != NULL
                     && strcmp(sl_framer_formats[format], fmt) != 0; format++)
        ;
    if (sl_framer_formats[format] == NULL)
        return luaL_error(L, "core.reader: unknown format '%s' (lines, json, csv or msgpack)",
                          fmt);
    if (opt(L, "header", LUA_TBOOLEAN))
        header = lua_toboolean(L, -1);
    if (path != NULL && opt(L, "offset", LUA_TNUMBER))
        offset = lua_tonumber(L, -1);
    if (path != NULL && opt(L, "line", LUA_TNUMBER))
        line = lua_tonumber(L, -1);
    if (offset < 0 || offset != (lua_Number)(int64_t)offset || line < 1
        || line != (lua_Number)(int64_t)line)
        return luaL_error(L, "core.reader: offset must be a whole number >= 0 and line >= 1");
    opt(L, "columns", LUA_TTABLE);
    lua_getfield(L, 1, "schema");
    schema = sl_schema_opt(L, -1);      /* kept alive by schema_ref below */
    if (schema != NULL && (format == SL_FRAMER_LINES || (format == SL_FRAMER_CSV && !header)))
        return luaL_error(L, "core.reader: schema= needs json, msgpack or csv with a header");
    batch = opt_int(L, "batch", SL_READER_BATCH, 1 << 20);
    max_record = opt_int(L, "max_record", SL_READER_MAX_RECORD, 1 << 30);
    if (!opt(L, "on_batch", LUA_TFUNCTION))
        return luaL_error(L, "core.reader: on_batch must be a function");
    opt(L, "on_bad", LUA_TFUNCTION);    /* checks the types before anything is opened */
    opt(L, "on_end", LUA_TFUNCTION);
    lua_settop(L, 1);

    if (path != NULL) {
        fd = sl_loop_open(L, path, O_RDONLY, 0);
        own_fd = 1;
        /* a file read from a position: uv_fs_read reads on from the descriptor's offset
         * (follow reads at file_off instead) */
        if (offset > 0 && !follow && lseek(fd, (off_t)offset, SEEK_SET) < 0) {
            int e = errno;
            close(fd);
            return luaL_error(L, "seek %s to %f: %s", path, offset, strerror(e));
        }
    }

    ud = lua_newuserdata(L, sizeof *ud);                /* opts ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_READER_MT);                 /* opts ud mt */
    lua_setmetatable(L, -2);                            /* opts ud */
    r = calloc(1, sizeof *r);
    if (r == NULL)
        out_of_memory();
    r->fd = fd;
    r->own_fd = own_fd;
    if (name != NULL)
        r->path = strfmt("%s", name);
    else if (path != NULL)
        r->path = strfmt("%s", path);
    else if (fd == 0)
        r->path = strfmt("<stdin>");
    else
        r->path = strfmt("<fd %d>", fd);
    sl_framer_init(&r->fr, format, (size_t)max_record);
    r->feed = feed;
    if (path != NULL) {
        struct stat st;
        r->follow = follow;
        if (fstat(fd, &st) == 0) {
            r->ino = (uint64_t)st.st_ino;
            r->dev = (uint64_t)st.st_dev;
        }
    }
    /* stream offsets are file offsets: a reader opened at an offset starts its count
     * there, so dead letters and position() name places in the file */
    sl_framer_start_at(&r->fr, (int64_t)offset, (int64_t)line);
    r->file_off = (int64_t)offset;
    r->fr.partial_bad = partial_bad;
    r->fr.keyed = format == SL_FRAMER_CSV && header;
    r->batch_max = (int)batch;
    r->self_ref = r->keys_ref = r->schema_ref = LUA_NOREF;
    if (schema != NULL) {
        sl_framer_set_schema(&r->fr, schema);
        lua_getfield(L, 1, "schema");                   /* opts ud schema */
        r->schema_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* opts ud */
    }
    if (r->fr.keyed) {
        lua_getfield(L, 1, "columns");                  /* opts ud cols|nil */
        if (lua_istable(L, -1))
            r->keys_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* opts ud */
        else
            lua_pop(L, 1);                              /* opts ud */
        r->fr.want_header = r->keys_ref == LUA_NOREF;   /* else resumed past the header */
    }
    r->on_batch = opt_ref(L, "on_batch", 1);
    r->on_bad = opt_ref(L, "on_bad", 0);
    r->on_end = opt_ref(L, "on_end", 0);
    r->on_caught_up = opt_ref(L, "on_caught_up", 0);
    lua_createtable(L, (int)(batch < 1024 ? batch : 1024), 0);  /* opts ud batch */
    r->batch_ref = luaL_ref(L, LUA_REGISTRYINDEX);      /* opts ud */
    uv_timer_init(sl_loop_get(), &r->kick);
    r->kick.data = r;
    r->open_handles = 1;
    if (!feed)
        open_stream(r);
    *ud = r;
    return 1;
}

void sl_reader_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"start", reader_start},
        {"stop", reader_stop},
        {"drain", reader_drain},
        {"unread", reader_unread},
        {"position", reader_position},
        {"close", reader_close},
        {NULL, NULL}
    };

    sl_vm_class(L, SL_READER_MT, methods, reader_close, reader_tostring);
}
