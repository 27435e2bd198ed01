/* core.c -- luaopen_sluice_core: the one registration table of the "sluice.core" module.
 *
 * The objects live in loop.c, reader.c and writer.c; this file lists them, adds the
 * constants and the four whole-value codec functions.
 */
#include <unistd.h>
#include <lauxlib.h>

#include "sl_api.h"
#include "buf.h"
#include "codec.h"
#include "child.h"
#include "ctl.h"
#include "durable.h"
#include "exchange.h"
#include "forward.h"
#include "guard.h"
#include "http_client.h"
#include "http_server.h"
#include "kafka.h"
#include "lineedit.h"
#include "memory.h"
#include "loop.h"
#include "metrics_server.h"
#include "net.h"
#include "nexmark_lua.h"
#include "reader.h"
#include "redis.h"
#include "signals.h"
#include "typed_lua.h"
#include "vm.h"
#include "watch.h"
#include "workers.h"
#include "writer.h"

#ifndef SL_VERSION
#define SL_VERSION "0.0.0"
#endif

/* Pushes the bytes of b and frees it. */
static int push_buf(lua_State *L, sl_buf *b)
{
    lua_pushlstring(L, b->len > 0 ? b->data : "", b->len);     /* s */
    sl_buf_free(b);
    return 1;
}

/* core.json_encode(v) -> s */
static int json_encode(lua_State *L)
{
    char err[SL_CODEC_ERRLEN];
    sl_buf b;

    luaL_checkany(L, 1);
    sl_buf_init(&b);
    if (sl_json_encode(L, 1, &b, err) != SL_CODEC_OK) {
        sl_buf_free(&b);
        return luaL_error(L, "%s", err);
    }
    return push_buf(L, &b);
}

/* core.json_decode(s) -> v */
static int json_decode(lua_State *L)
{
    char err[SL_CODEC_ERRLEN];
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);

    if (sl_json_decode(L, s, len, err) != SL_CODEC_OK)
        return luaL_error(L, "%s", err);
    return 1;                                           /* v */
}

/* core.msgpack_encode(v) -> s */
static int msgpack_encode(lua_State *L)
{
    char err[SL_CODEC_ERRLEN];
    sl_buf b;

    luaL_checkany(L, 1);
    sl_buf_init(&b);
    if (sl_mpack_encode(L, 1, &b, err) != SL_CODEC_OK) {
        sl_buf_free(&b);
        return luaL_error(L, "%s", err);
    }
    return push_buf(L, &b);
}

/* core.msgpack_decode(s) -> v: s must hold exactly one object. */
static int msgpack_decode(lua_State *L)
{
    char err[SL_CODEC_ERRLEN];
    size_t len, used = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    int rc = sl_mpack_decode(L, s, len, &used, err);

    if (rc == SL_CODEC_MORE)
        return luaL_error(L, "msgpack: incomplete object (%d bytes)", (int)len);
    if (rc != SL_CODEC_OK)
        return luaL_error(L, "%s", err);
    if (used != len)
        return luaL_error(L, "msgpack: %d bytes after the object", (int)(len - used));
    return 1;                                           /* v */
}

static const luaL_Reg core_functions[] = {
    {"run", sl_loop_run},
    {"stop", sl_loop_stop},
    {"idle", sl_idle_new},
    {"timer", sl_timer_new},
    {"signal", sl_signal_new},
    {"guard", sl_guard_new},
    {"memory_limit", sl_memory_limit},
    {"memory", sl_memory_stats},
    {"watch", sl_watch_new},
    {"metrics_listen", sl_metrics_listen},
    {"usage", sl_metrics_usage},
    {"reader", sl_reader_new},
    {"schema", sl_schema_lua_new},
    {"holds_cdata", sl_holds_cdata_lua},
    {"listen", sl_listener_new},
    {"udp", sl_udp_new},
    {"writer", sl_writer_new},
    {"nexmark", sl_nexmark_lua_new},
    {"kafka_consumer", sl_kafka_consumer_new},
    {"kafka_producer", sl_kafka_producer_new},
    {"kafka_committed", sl_kafka_committed},
    {"kafka_topic_partitions", sl_kafka_topic_partitions},
    {"kafka_create_topic", sl_kafka_create_topic},
    {"kafka_read_partition", sl_kafka_read_partition},
    {"kafka_read_partitions", sl_kafka_read_partitions},
    {"http_client", sl_http_client_new},
    {"http_listen", sl_http_server_new},
    {"forward_conn", sl_forward_conn_new},
    {"forward_client", sl_forward_client_new},
    {"forward_pack", sl_forward_pack_lua},
    {"redis_source", sl_redis_source_new},
    {"redis_sink", sl_redis_sink_new},
    {"json_encode", json_encode},
    {"json_decode", json_decode},
    {"msgpack_encode", msgpack_encode},
    {"msgpack_decode", msgpack_decode},
    {"readline", sl_lineedit_read},
    {"history_add", sl_lineedit_history_add},
    {"history_load", sl_lineedit_history_load},
    {"history_save", sl_lineedit_history_save},
    {"completer", sl_lineedit_completer},
    {"interrupts", sl_lineedit_interrupts},
    {"interrupted", sl_lineedit_interrupted},
    {"term_width", sl_term_width},
    {"term_raw", sl_term_raw},
    {"read_key", sl_term_read_key},
    {"ctl_listen", sl_ctl_listen},
    {"ctl_connect", sl_ctl_connect},
    {"ctl_dir", sl_ctl_dir},
    {"ctl_sockets", sl_ctl_sockets},
    {"exchange", sl_exchange_open},
    {"workers_start", sl_workers_start},
    {"workers_join", sl_workers_join},
    {"workers_stop", sl_workers_stop},
    {"workers_stopping", sl_workers_stopping},
    {NULL, NULL}
};

int luaopen_sluice_core(lua_State *L)
{
    const char *libdir = sl_vm_libdir(L);

    sl_loop_register(L);
    sl_reader_register(L);
    sl_schema_register(L);
    sl_writer_register(L);
    sl_ctl_register(L);
    sl_signal_register(L);
    sl_guard_register(L);
    sl_watch_register(L);
    sl_metrics_server_register(L);
    sl_net_register(L);
    sl_nexmark_register(L);
    sl_kafka_consumer_register(L);
    sl_kafka_producer_register(L);
    sl_http_client_register(L);
    sl_forward_register(L);
    sl_redis_source_register(L);
    sl_redis_sink_register(L);
    sl_exchange_register(L);
    sl_http_server_register(L);
    lua_createtable(L, 0, 13);                          /* core */
    luaL_setfuncs(L, core_functions, 0);
    lua_pushliteral(L, SL_VERSION);
    lua_setfield(L, -2, "VERSION");
    lua_pushlightuserdata(L, SL_NULL);
    lua_setfield(L, -2, "null");
    lua_pushinteger(L, (lua_Integer)getpid());
    lua_setfield(L, -2, "pid");
    lua_pushinteger(L, (lua_Integer)geteuid());
    lua_setfield(L, -2, "uid");
    if (libdir != NULL)
        lua_pushstring(L, libdir);
    else
        lua_pushnil(L);
    lua_setfield(L, -2, "libdir");                      /* core */
    sl_durable_push(L);                                 /* core durable */
    lua_setfield(L, -2, "durable");                     /* core */
    sl_child_push(L);                                   /* core child */
    lua_setfield(L, -2, "child");                       /* core */
    return 1;
}
