/* writer.c -- core.writer: encodes batches of Lua values with the codecs into one buffer
 * and writes it synchronously through libuv when it passes 64 KiB, at flush and at close;
 * or, for connect=, hands it to an outgoing TCP connection's queue (conn.c).
 *
 * C owns the writer: the userdata holds a pointer; close flushes, closes the file (not a
 * descriptor given as fd=) and frees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <lauxlib.h>

#include "buf.h"
#include "codec.h"
#include "conn.h"
#include "loop.h"
#include "net.h"
#include "vm.h"
#include "json_shape.h"
#include "typed_lua.h"
#include "writer.h"

enum { FMT_JSON, FMT_LINES, FMT_CSV, FMT_MSGPACK };
static const char *const formats[] = {"json", "lines", "csv", "msgpack", NULL};

typedef struct sl_writer {
    uv_file fd;             /* where the bytes go */
    int own_fd;             /* opened from path=, so closed by close() */
    char *path;             /* the path, or "<stdout>" / "<stderr>" / "<fd N>" */
    int format;             /* FMT_* */
    int header;             /* csv: write a header line */
    int columns_known;      /* csv: columns_ref is settled (from columns= or a record) */
    const sl_schema *col_schema;    /* csv: the schema whose fields col_field holds */
    int *col_field;         /* csv: each column's field in col_schema (-1: none) */
    int ncols;
    int columns_ref;        /* csv: registry ref of the column names; LUA_NOREF for
                               array records */
    int header_done;        /* csv: the header line is in the buffer or written */
    sl_buf out;             /* encoded bytes not written yet */
    sl_json_shape shape;    /* json: the keys of the plain tables written (json_shape.h) */
    sl_conn *conn;          /* connect=: the connection that takes flushed bytes */
    uint32_t *ends;         /* connect=: where each record in out ends (conn.c counts */
    size_t nends, cap;      /* records not delivered by them) */
    int on_drain_ref;       /* connect=: registry ref of on_drain, or LUA_NOREF */
    int linger_ms;          /* connect=: how long close() may wait to deliver */
    int pipe_may_close;     /* pipe_may_close=: EPIPE means the reader has gone, not a failure */
    int reader_gone;        /* the reader went away (EPIPE): what comes is dropped */
} sl_writer;

#define SL_WRITER_LINGER_MS 5000    /* default linger of a connect= writer */

/* conn.c: the queue fell to the low mark. Calls on_drain() from the loop. */
static void on_conn_drain(void *arg)
{
    sl_writer *w = arg;
    lua_State *L = sl_loop_lua();

    if (L == NULL || w->on_drain_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->on_drain_ref);    /* fn */
    sl_loop_call(L, 0);                                     /* -- */
}

/* ---- writing ------------------------------------------------------------------------ */

/* Writes out's bytes, looping on short writes. Returns 0 or a libuv error; the buffer is
 * emptied either way (after a failed write its bytes cannot be placed reliably). */
static int flush_out(sl_writer *w)
{
    size_t done = 0;
    int rc = 0;

    if (w->conn != NULL) {          /* queued in order; conn.c writes it from the loop */
        sl_conn_send(w->conn, w->out.data, w->out.len, w->ends, w->nends);
        sl_buf_reset(&w->out);
        w->nends = 0;
        return 0;
    }
    while (!w->reader_gone && done < w->out.len) {
        uv_fs_t req;
        uv_buf_t b = uv_buf_init(w->out.data + done, (unsigned)(w->out.len - done));

        rc = uv_fs_write(NULL, &req, w->fd, &b, 1, -1, NULL);
        uv_fs_req_cleanup(&req);
        if (rc == UV_EAGAIN) {      /* a non-blocking descriptor: wait until writable */
            struct pollfd p = {.fd = w->fd, .events = POLLOUT};
            poll(&p, 1, -1);
            continue;
        }
        if (rc == UV_EPIPE && w->pipe_may_close) {
            w->reader_gone = 1;     /* `| head`: the end of the output, as for grep */
            rc = 0;
            break;
        }
        if (rc <= 0) {
            if (rc == 0)
                rc = UV_EIO;
            break;
        }
        done += (size_t)rc;
        rc = 0;
    }
    sl_buf_reset(&w->out);
    return rc;
}

static int flush_or_raise(lua_State *L, sl_writer *w)
{
    int rc = flush_out(w);

    if (rc < 0) {
        lua_pushfstring(L, "write %s: %s", w->path, uv_strerror(rc));
        return lua_error(L);
    }
    return 0;
}

/* ---- encoding ----------------------------------------------------------------------- */

/* Settles the csv columns from the first table record at idx: its string keys in the
 * order the encoders write them (codec.h), every column of its shape included: a record
 * from a csv file gives its header's columns, one from JSON its keys as they came. A
 * record without string keys means array records and no header. Stack unchanged. */
static void columns_from(lua_State *L, sl_writer *w, int idx)
{
    w->columns_known = 1;
    if (sl_codec_keys(L, idx) > 0)                      /* cols */
        w->columns_ref = luaL_ref(L, LUA_REGISTRYINDEX);    /* -- */
    else
        lua_pop(L, 1);                                  /* -- */
}

/* Appends the csv header line once the columns are known. Stack unchanged. */
static void csv_header(lua_State *L, sl_writer *w)
{
    char err[SL_CODEC_ERRLEN];

    w->header_done = 1;
    if (!w->header || w->columns_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->columns_ref);  /* cols */
    sl_csv_encode(L, lua_gettop(L), 0, &w->out, err);
    lua_pop(L, 1);                                      /* -- */
}

/* Settles the columns from the first table record and writes the header line before
 * the first record. Stack unchanged. */
static void csv_prepare(lua_State *L, sl_writer *w, int idx)
{
    if (!w->columns_known && lua_istable(L, idx))
        columns_from(L, w, idx);
    if (w->columns_known && !w->header_done)
        csv_header(L, w);
}

static int encode_csv(lua_State *L, sl_writer *w, int idx, char *err)
{
    int rc, ki = 0;

    if (w->columns_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, w->columns_ref);  /* cols */
        ki = lua_gettop(L);
    }
    rc = sl_csv_encode(L, idx, ki, &w->out, err);
    if (ki != 0)
        lua_pop(L, 1);                                  /* -- */
    return rc;
}

/* csv: settles the columns from the first record when it is typed (its schema's fields),
 * and makes col_field for rec's schema. Stack unchanged. */
static void csv_prepare_typed(lua_State *L, sl_writer *w, const sl_typed_field *rec)
{
    const sl_schema *s = rec[0].v.schema;
    int c;

    if (!w->columns_known) {
        w->columns_known = 1;
        lua_createtable(L, s->nfields, 0);              /* cols */
        for (c = 0; c < s->nfields; c++) {
            lua_pushlstring(L, s->fields[c].name, s->fields[c].namelen);
            lua_rawseti(L, -2, c + 1);
        }
        w->columns_ref = luaL_ref(L, LUA_REGISTRYINDEX);    /* -- */
    }
    if (!w->header_done)
        csv_header(L, w);
    if (w->col_schema == s)
        return;
    free(w->col_field);
    w->col_field = NULL;
    w->ncols = 0;
    w->col_schema = s;
    if (w->columns_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->columns_ref);  /* cols */
    w->col_field = sl_schema_columns(L, lua_gettop(L), s, &w->ncols);
    lua_pop(L, 1);                                      /* -- */
}

/* Appends the typed record rec (typed.h) in the writer's format, as encode() does. */
static int encode_typed(lua_State *L, sl_writer *w, const sl_typed_field *rec, char *err)
{
    size_t mark = w->out.len;
    int rc;

    switch (w->format) {
    case FMT_JSON:
    case FMT_LINES:                 /* a record without __tostring is written as JSON */
        rc = sl_typed_json_encode(rec, &w->out, err);
        if (rc == SL_CODEC_OK)
            sl_buf_putc(&w->out, '\n');
        break;
    case FMT_CSV:
        csv_prepare_typed(L, w, rec);
        mark = w->out.len;
        rc = sl_typed_csv_encode(rec, w->col_field, w->ncols, &w->out, err);
        break;
    default:
        rc = sl_typed_mpack_encode(rec, &w->out, err);
        break;
    }
    if (rc != SL_CODEC_OK) {
        w->out.len = mark;
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}

/* Appends the record at idx in the writer's format. On failure the buffer is left as it
 * was and err says why. Stack unchanged. */
static int encode(lua_State *L, sl_writer *w, int idx, char *err)
{
    size_t mark;
    int rc;

    if (w->format == FMT_CSV)
        csv_prepare(L, w, idx);
    mark = w->out.len;
    switch (w->format) {
    case FMT_JSON:
        rc = sl_json_shape_encode(L, &w->shape, idx, &w->out, err);
        if (rc == SL_CODEC_OK)
            sl_buf_putc(&w->out, '\n');
        break;
    case FMT_LINES:
        rc = sl_line_encode(L, idx, &w->out, err);
        if (rc == SL_CODEC_OK)
            sl_buf_putc(&w->out, '\n');
        break;
    case FMT_CSV:
        rc = encode_csv(L, w, idx, err);
        break;
    default:
        rc = sl_mpack_encode(L, idx, &w->out, err);
        break;
    }
    if (rc != SL_CODEC_OK) {
        w->out.len = mark;          /* drop a half-encoded record */
        return SL_CODEC_BAD;
    }
    return SL_CODEC_OK;
}

/* connect=: notes that a record ends where out ends now. */
static void note_end(sl_writer *w)
{
    if (w->nends == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        uint32_t *ends = realloc(w->ends, cap * sizeof *ends);
        if (ends == NULL) {
            fprintf(stderr, "sluice: writer: out of memory\n");
            abort();
        }
        w->ends = ends;
        w->cap = cap;
    }
    w->ends[w->nends++] = (uint32_t)w->out.len;
}

/* ---- Lua methods -------------------------------------------------------------------- */

static sl_writer *check_writer(lua_State *L, const char *method)
{
    sl_writer *w = *(sl_writer **)luaL_checkudata(L, 1, SL_WRITER_MT);

    if (w == NULL)
        luaL_error(L, "writer:%s(): the writer is closed", method);
    return w;
}

/* writer:write(batch, n [, views [, first [, stop_at_cdata]]]) -> bad|nil, stopped|nil
 * Encodes batch[first..n] (first: 1 by default). bad: {{index=i, reason=msg}, ...}, the
 * records that could not be encoded. With stop_at_cdata, a record that could not be
 * encoded and is, or holds, a cdata (a typed record, typed.lua) stops the call instead:
 * stopped is its index, and the records from there on are left to a call with views. */
static int writer_write(lua_State *L)
{
    sl_writer *w = check_writer(L, "write");
    char err[SL_CODEC_ERRLEN];
    lua_Integer n, i, first;
    int nbad = 0, stop_at_cdata;

    const sl_typed_field *const *views = NULL;

    luaL_checktype(L, 2, LUA_TTABLE);
    n = luaL_optinteger(L, 3, (lua_Integer)lua_objlen(L, 2));
    first = luaL_optinteger(L, 5, 1);
    stop_at_cdata = lua_toboolean(L, 6);
    /* views (typed.lua's split_batch): an FFI array whose element i - 1 is the slots of
     * record i when that is a typed record of a schema, else NULL; for a cdata,
     * lua_topointer gives where its array starts */
    if (!lua_isnoneornil(L, 4))
        views = (const sl_typed_field *const *)lua_topointer(L, 4);
    lua_settop(L, 6);
    if (!lua_checkstack(L, 2 * SL_JSON_SHAPE_KEYS + 8))
        return luaL_error(L, "writer:write(): out of Lua stack");
    lua_pushnil(L);                                     /* w batch n views first stop bad|nil */
    for (i = first < 1 ? 1 : first; i <= n; i++) {
        int rc;

        err[0] = '\0';
        if (views != NULL && views[i - 1] != NULL) {
            rc = encode_typed(L, w, views[i - 1], err);
            lua_pushnil(L);                             /* ... nil */
        } else {
            lua_rawgeti(L, 2, (int)i);                  /* ... rec */
            rc = encode(L, w, 8, err);
        }
        if (rc == SL_CODEC_OK) {
            if (w->conn != NULL)
                note_end(w);
        } else if (stop_at_cdata && sl_holds_cdata(L, 8, 0)) {
            lua_pop(L, 1);                              /* w batch n views first stop bad */
            lua_pushinteger(L, i);                      /* ... bad stopped */
            return 2;
        } else {
            if (nbad == 0) {
                lua_createtable(L, 4, 0);               /* ... rec list */
                lua_replace(L, 7);                      /* ... rec */
            }
            lua_createtable(L, 0, 2);                   /* ... rec info */
            lua_pushinteger(L, i);
            lua_setfield(L, -2, "index");
            lua_pushstring(L, err);
            lua_setfield(L, -2, "reason");
            lua_rawseti(L, 7, ++nbad);                  /* ... rec */
        }
        lua_pop(L, 1);                                  /* w batch n views first stop bad */
        if (w->out.len > SL_WRITER_FLUSH)
            flush_or_raise(L, w);
    }
    return nbad > 0 ? 1 : 0;
}

/* writer:pending() -> bytes queued on the connection and not yet written, the records
 * among them not written whole, and the bytes written since the start (all 0 without
 * connect=) */
static int writer_pending(lua_State *L)
{
    sl_writer *w = check_writer(L, "pending");

    lua_pushnumber(L, (lua_Number)(w->out.len + (w->conn ? sl_conn_pending(w->conn) : 0)));
    lua_pushnumber(L, (lua_Number)(w->nends + (w->conn ? sl_conn_pending_records(w->conn) : 0)));
    lua_pushnumber(L, (lua_Number)(w->conn ? sl_conn_written(w->conn) : 0));
    return 3;
}

/* writer:size() -> bytes in the file once what is buffered is written: its committed
 * length for a checkpoint (a file sink truncated back to it resumes exactly there). */
static int writer_size(lua_State *L)
{
    sl_writer *w = check_writer(L, "size");
    struct stat st;

    flush_or_raise(L, w);
    if (w->conn != NULL || fstat(w->fd, &st) != 0)
        return luaL_error(L, "writer:size(): %s is not a file", w->path);
    lua_pushnumber(L, (lua_Number)st.st_size);
    return 1;
}

/* writer:flush() */
static int writer_flush(lua_State *L)
{
    return flush_or_raise(L, check_writer(L, "flush"));
}

/* writer:reader_gone() -> whether a pipe_may_close= writer's reader has gone away */
static int writer_reader_gone(lua_State *L)
{
    lua_pushboolean(L, check_writer(L, "reader_gone")->reader_gone);
    return 1;
}

/* Flushes (writing a csv header if no record came), closes the file and frees the
 * writer. Returns 0 or the first libuv error; *what says which step failed. */
static int close_writer(lua_State *L, sl_writer *w, const char *stalled, const char **what)
{
    int rc, crc = 0;

    if (w->format == FMT_CSV && w->columns_known && !w->header_done)
        csv_header(L, w);
    rc = flush_out(w);
    *what = "write";
    if (w->conn != NULL) {
        char err[SL_CONN_ERRLEN];
        if (sl_conn_close(w->conn, w->linger_ms, stalled, err) != 0 && rc == 0) {
            /* the message names the address, the bytes lost and why */
            free(w->path);
            w->path = strdup(err);
            rc = UV_ETIMEDOUT;
            *what = NULL;
        }
        w->conn = NULL;
        luaL_unref(L, LUA_REGISTRYINDEX, w->on_drain_ref);
        free(w->ends);
    }
    if (w->own_fd) {
        uv_fs_t req;
        crc = uv_fs_close(NULL, &req, w->fd, NULL);
        uv_fs_req_cleanup(&req);
    }
    if (rc == 0 && crc < 0) {
        rc = crc;
        *what = "close";
    }
    luaL_unref(L, LUA_REGISTRYINDEX, w->columns_ref);
    free(w->col_field);
    sl_json_shape_free(L, &w->shape);
    sl_buf_free(&w->out);
    return rc;
}

/* How close_once() went; on a failure it has pushed the message. */
typedef enum closed {
    CLOSED,             /* cleanly, or closed already */
    STEP_FAILED,        /* "write PATH: reason" (or close) */
    PEER_FAILED         /* "tcp sink: " and sl_conn_close's message, naming the address */
} closed;

/* Closes and frees the writer of the userdata at index 1, once: the userdata then holds
 * NULL, and another call finds nothing to do. Stack +1 on a failure (the message). */
static closed close_once(lua_State *L)
{
    sl_writer **ud = luaL_checkudata(L, 1, SL_WRITER_MT);
    sl_writer *w = *ud;
    const char *what;
    closed how = CLOSED;
    int rc;

    if (w == NULL)
        return CLOSED;
    *ud = NULL;
    if (lua_isnumber(L, 2))         /* close(linger_ms): this once, wait that long */
        w->linger_ms = (int)lua_tonumber(L, 2);
    rc = close_writer(L, w, lua_tostring(L, 3), &what);
    if (rc < 0 && what == NULL) {
        lua_pushfstring(L, "tcp sink: %s", w->path);                        /* msg */
        how = PEER_FAILED;
    } else if (rc < 0) {
        lua_pushfstring(L, "%s %s: %s", what, w->path, uv_strerror(rc));   /* msg */
        how = STEP_FAILED;
    }
    free(w->path);
    free(w);
    return how;
}

/* writer:close([linger_ms [, why]]): flushes, closes, frees; raises "write PATH: reason"
 * on failure (the writer is closed all the same). Idempotent. connect=: linger_ms, when
 * given, replaces the writer's linger for this close (0: what the socket takes now), and
 * `why` the reason given when the peer took nothing. */
static int writer_close(lua_State *L)
{
    switch (close_once(L)) {
    case CLOSED:
        return 0;
    case PEER_FAILED:               /* an I/O failure names the address, not a Lua line */
        return lua_error(L);
    default:
        return luaL_error(L, "%s", lua_tostring(L, -1));
    }
}

/* __gc: closes without raising; a failure can only be reported on stderr. */
static int writer_gc(lua_State *L)
{
    if (close_once(L) != CLOSED)
        fprintf(stderr, "sluice: %s\n", lua_tostring(L, -1));
    return 0;
}

static int writer_tostring(lua_State *L)
{
    sl_writer *w = *(sl_writer **)luaL_checkudata(L, 1, SL_WRITER_MT);

    if (w == NULL)
        lua_pushliteral(L, "sluice.writer (closed)");
    else
        lua_pushfstring(L, "sluice.writer (%s %s)", formats[w->format], w->path);
    return 1;
}

/* Pushes field name of the options table at index 1 if it is of type t; raises if it is
 * of another type; returns 0 (nothing pushed) if it is nil. */
static int opt(lua_State *L, const char *name, int t)
{
    return sl_vm_opt(L, "core.writer", name, t);
}

int sl_writer_new(lua_State *L)
{
    const char *path = NULL, *fmt, *connect = NULL;
    lua_Number truncate_to = -1;
    int fd = -1, format, append = 0, header = 1, columns = 0, own_fd = 0, linger = -1;
    int pipe_may_close = 0;
    size_t low = 0;
    sl_writer **ud, *w;
    char name[300];

    luaL_checktype(L, 1, LUA_TTABLE);
    if (opt(L, "path", LUA_TSTRING))
        path = lua_tostring(L, -1);     /* stays referenced by the options table */
    if (opt(L, "fd", LUA_TNUMBER))
        fd = (int)lua_tointeger(L, -1);
    if (opt(L, "connect", LUA_TSTRING))
        connect = lua_tostring(L, -1);  /* stays referenced by the options table */
    if ((path != NULL) + (fd >= 0) + (connect != NULL) != 1)
        return luaL_error(L, "core.writer: give one of path=, fd= (a descriptor >= 0) or "
                          "connect=");
    if (opt(L, "low", LUA_TNUMBER))
        low = (size_t)lua_tonumber(L, -1);
    if (opt(L, "linger", LUA_TNUMBER))
        linger = (int)lua_tonumber(L, -1);
    opt(L, "on_drain", LUA_TFUNCTION);
    if (!opt(L, "format", LUA_TSTRING))
        return luaL_error(L, "core.writer: format must be json, lines, csv or msgpack");
    fmt = lua_tostring(L, -1);
    for (format = 0; formats[format] != NULL && strcmp(formats[format], fmt) != 0; format++)
        ;
    if (formats[format] == NULL)
        return luaL_error(L, "core.writer: unknown format '%s' (json, lines, csv or msgpack)",
                          fmt);
    if (opt(L, "append", LUA_TBOOLEAN))
        append = lua_toboolean(L, -1);
    if (opt(L, "header", LUA_TBOOLEAN))
        header = lua_toboolean(L, -1);
    if (opt(L, "pipe_may_close", LUA_TBOOLEAN))
        pipe_may_close = lua_toboolean(L, -1);
    if (path != NULL && opt(L, "truncate_to", LUA_TNUMBER))
        truncate_to = lua_tonumber(L, -1);
    if (truncate_to > 0)
        header = 0;                 /* csv: the file kept its header line */
    columns = opt(L, "columns", LUA_TTABLE);            /* ... [cols] */
    lua_settop(L, 1);

    if (truncate_to >= 0)
        append = 1;   /* resuming from a checkpoint: what was written after it goes, the rest stays */
    if (path != NULL) {
        fd = sl_loop_open(L, path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
        own_fd = 1;
        if (truncate_to >= 0 && ftruncate(fd, (off_t)truncate_to) != 0) {
            int e = errno;
            close(fd);
            return luaL_error(L, "truncate %s to %f bytes: %s", path, truncate_to, strerror(e));
        }
    }

    ud = lua_newuserdata(L, sizeof *ud);                /* opts ud */
    *ud = NULL;
    luaL_getmetatable(L, SL_WRITER_MT);                 /* opts ud mt */
    lua_setmetatable(L, -2);                            /* opts ud */
    w = calloc(1, sizeof *w);
    if (w != NULL)
        w->on_drain_ref = LUA_NOREF;
    if (w != NULL && connect != NULL) {
        char err[SL_NET_ERRLEN > SL_CONN_ERRLEN ? SL_NET_ERRLEN : SL_CONN_ERRLEN];
        w->conn = sl_conn_new(connect, low, on_conn_drain, w, err);
        if (w->conn == NULL) {
            free(w);
            lua_pushfstring(L, "tcp sink: %s", err);
            return lua_error(L);
        }
        w->linger_ms = linger >= 0 ? linger : SL_WRITER_LINGER_MS;
        lua_getfield(L, 1, "on_drain");                 /* opts ud fn|nil */
        if (lua_isfunction(L, -1))
            w->on_drain_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* opts ud */
        else
            lua_pop(L, 1);                              /* opts ud */
        snprintf(name, sizeof name, "tcp %s", connect);
        path = name;
        fd = -1;
    }
    if (path == NULL)
        snprintf(name, sizeof name, fd == 1 ? "<stdout>" : fd == 2 ? "<stderr>" : "<fd %d>",
                 fd);
    if (w == NULL || (w->path = strdup(path != NULL ? path : name)) == NULL) {
        fprintf(stderr, "sluice: writer: out of memory\n");
        abort();
    }
    w->fd = fd;
    w->own_fd = own_fd;
    w->format = format;
    w->header = header;
    w->pipe_may_close = pipe_may_close;
    w->columns_ref = LUA_NOREF;
    sl_buf_init(&w->out);
    sl_json_shape_init(&w->shape);
    if (format == FMT_CSV && columns) {
        lua_getfield(L, 1, "columns");                  /* opts ud cols */
        w->columns_ref = luaL_ref(L, LUA_REGISTRYINDEX);    /* opts ud */
        w->columns_known = 1;
    }
    *ud = w;
    return 1;
}

void sl_writer_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"write", writer_write},
        {"flush", writer_flush},
        {"reader_gone", writer_reader_gone},
        {"pending", writer_pending},
        {"size", writer_size},
        {"close", writer_close},
        {NULL, NULL}
    };

    sl_vm_class(L, SL_WRITER_MT, methods, writer_gc, writer_tostring);
}
