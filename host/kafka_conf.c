/* kafka_conf.c -- what the Kafka consumer and producer share: configuration from a Lua
 * options table, the pipe through which a librdkafka queue wakes the loop, and offsets as
 * Lua tables.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>

#include "kafka.h"
#include "loop.h"

void sl_kafka_conf_set(lua_State *L, rd_kafka_conf_t *conf, const char *name,
                       const char *value, const char *what)
{
    char errstr[SL_KAFKA_ERRLEN];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        luaL_error(L, "%s: option %s: %s", what, name, errstr);
    }
}

void sl_kafka_conf_apply(lua_State *L, int idx, rd_kafka_conf_t *conf, const char *what)
{
    lua_getfield(L, idx, "brokers");                    /* brokers */
    if (lua_type(L, -1) == LUA_TSTRING)
        sl_kafka_conf_set(L, conf, "bootstrap.servers", lua_tostring(L, -1), what);
    lua_pop(L, 1);                                      /* -- */
    lua_getfield(L, idx, "options");                    /* options */
    if (lua_istable(L, -1)) {
        lua_pushnil(L);                                 /* options nil */
        while (lua_next(L, -2) != 0) {                  /* options k v */
            const char *value;
            if (lua_type(L, -2) != LUA_TSTRING) {
                rd_kafka_conf_destroy(conf);
                luaL_error(L, "%s: options: keys must be librdkafka property names", what);
            }
            if (lua_type(L, -1) == LUA_TBOOLEAN)
                value = lua_toboolean(L, -1) ? "true" : "false";
            else if (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TSTRING)
                value = lua_tostring(L, -1);            /* converts a number in place */
            else {
                rd_kafka_conf_destroy(conf);
                luaL_error(L, "%s: option %s: expected a string, number or boolean, got %s",
                           what, lua_tostring(L, -2), luaL_typename(L, -1));
                return;
            }
            sl_kafka_conf_set(L, conf, lua_tostring(L, -2), value, what);
            lua_pop(L, 1);                              /* options k */
        }
    }
    lua_pop(L, 1);                                      /* -- */
}

/* ---- waking the loop ----------------------------------------------------------------- */

static void on_pipe(uv_poll_t *h, int status, int events)
{
    sl_kafka_wakeup *w = h->data;
    char drain[64];

    (void)status;
    (void)events;
    while (read(w->fds[0], drain, sizeof drain) > 0)
        ;
    w->on_ready(w);
}

void sl_kafka_wakeup_start(lua_State *L, sl_kafka_wakeup *w, rd_kafka_queue_t *q,
                           void (*on_ready)(sl_kafka_wakeup *), void *owner)
{
    if (pipe2(w->fds, O_NONBLOCK | O_CLOEXEC) != 0)
        luaL_error(L, "kafka: pipe: %s", strerror(errno));
    w->on_ready = on_ready;
    w->owner = owner;
    uv_poll_init(sl_loop_get(), &w->poll, w->fds[0]);
    w->poll.data = w;
    uv_poll_start(&w->poll, UV_READABLE, on_pipe);
    w->started = 1;
    rd_kafka_queue_io_event_enable(q, w->fds[1], "1", 1);
    /* librdkafka writes only when the queue goes from empty to non-empty: what it queued
     * before this (an error of a first connection, say) would never wake the loop, and the
     * queue would never be served again. So the first turn serves it anyway. */
    if (write(w->fds[1], "1", 1) < 0)
        luaL_error(L, "kafka: pipe: %s", strerror(errno));
}

void sl_kafka_wakeup_stop(sl_kafka_wakeup *w, rd_kafka_queue_t *q, uv_close_cb on_closed)
{
    if (!w->started)
        return;
    w->started = 0;
    if (q != NULL)
        rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
    uv_poll_stop(&w->poll);
    close(w->fds[1]);
    uv_close((uv_handle_t *)&w->poll, on_closed);
    close(w->fds[0]);
}

/* ---- offsets as Lua tables ---------------------------------------------------------- */

void sl_kafka_push_offsets(lua_State *L, const rd_kafka_topic_partition_list_t *list)
{
    lua_newtable(L);                                    /* t */
    for (int i = 0; list != NULL && i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &list->elems[i];
        lua_getfield(L, -1, p->topic);                  /* t parts|nil */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);                              /* t */
            lua_newtable(L);                            /* t parts */
            lua_pushvalue(L, -1);                       /* t parts parts */
            lua_setfield(L, -3, p->topic);              /* t parts */
        }
        lua_pushnumber(L, (lua_Number)p->offset);       /* t parts off */
        lua_rawseti(L, -2, p->partition);               /* t parts */
        lua_pop(L, 1);                                  /* t */
    }
}

rd_kafka_topic_partition_list_t *sl_kafka_offsets_from(lua_State *L, int idx)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);

    lua_pushnil(L);                                     /* nil */
    while (lua_next(L, idx) != 0) {                     /* topic parts */
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            const char *topic = lua_tostring(L, -2);
            lua_pushnil(L);                             /* topic parts nil */
            while (lua_next(L, -2) != 0) {              /* topic parts p off */
                if (lua_type(L, -2) == LUA_TNUMBER && lua_type(L, -1) == LUA_TNUMBER)
                    rd_kafka_topic_partition_list_add(list, topic,
                        (int32_t)lua_tonumber(L, -2))->offset = (int64_t)lua_tonumber(L, -1);
                lua_pop(L, 1);                          /* topic parts p */
            }
        }
        lua_pop(L, 1);                                  /* topic */
    }                                                   /* -- */
    return list;
}
