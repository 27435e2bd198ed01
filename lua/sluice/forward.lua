-- forward.lua -- sl.source.forward and sl.sink.forward: Fluent's forward protocol in and
-- out, so Fluent Bit and Fluentd ship to sluice and sluice ships to them.
--
-- The source listens (core.listen, net.c) and gives each connection to C
-- (host/forward_conn.c), which decodes the four modes and hands batches of events {tag,
-- time, record} here; it acks a chunk once ctx.push has taken its events. Bad events and
-- entries are dead-lettered with the peer and the byte offset; malformed msgpack closes
-- that connection only (nothing after it can be framed).
--
-- The sink packs each batch into Forward-mode entries (one per tag), each a chunk with an
-- id, writes them over one connection (host/forward_client.c) and keeps every chunk until
-- its ack comes. After a reconnect, or when an ack is overdue, the unacked chunks are sent
-- again: delivery is at least once. The sources pause while the unacked bytes are over
-- `high`; at the end of a job the sink waits (--drain-timeout) for the acks and reports
-- what was not acknowledged.
local host = require "sluice.host"
local report = require "sluice.report"
local flow = require "sluice.flow"
local duration = require "sluice.duration"

local core = host.core
local type, format, tostring, pairs, ipairs = type, string.format, tostring, pairs, ipairs
local fail = report.fail

local forward = {}

local MAX_ENTRY = 64 * 1024 * 1024      -- bytes an entry may take on a connection
local HIGH = 8 * 1024 * 1024            -- unacked bytes over which the sources pause
local ACK_TIMEOUT_MS = 30000            -- an ack later than this: reconnect and resend

-- ---- declarations ------------------------------------------------------------------------

local function want_address(m, opts, field)
  local a = opts[field]
  if type(a) ~= "string" or not a:match("^.+:%d+$") then
    fail(format('%s: %s is required (a string "host:port"), got %s', m, field, tostring(a)))
    return "?:0"
  end
  return a
end

-- forward{listen="host:port", max_entry}: one record {tag, time, record} per event.
function forward.source_spec(opts)
  local m = "source.forward()"
  opts = report.want_options(m, opts, false, { "listen", "max_entry" })
  local listen = want_address(m, opts, "listen")
  return { type = "forward", listen = listen, max_entry = report.want_whole(m, opts, "max_entry",
    MAX_ENTRY, "bytes"), label = "source.forward " .. listen }
end

-- forward{connect="host:port", tag, high, ack_timeout}: tag is that of records that are
-- not forward events themselves.
function forward.sink_spec(opts)
  local m = "sink.forward()"
  opts = report.want_options(m, opts, false, { "connect", "tag", "high", "ack_timeout" })
  local connect = want_address(m, opts, "connect")
  local tag = opts.tag
  if tag == nil then tag = "sluice" end
  if type(tag) ~= "string" or tag == "" then
    fail(format("%s: tag must be a non-empty string, got %s", m, tostring(tag)))
    tag = "sluice"
  end
  local ack_ms = ACK_TIMEOUT_MS
  if opts.ack_timeout ~= nil then
    local ms, err = duration.parse(opts.ack_timeout)
    if err or not ms or ms <= 0 then
      fail(format("%s: ack_timeout: %s", m, err or "must be > 0"))
    else
      ack_ms = ms
    end
  end
  return { type = "forward", connect = connect, tag = tag,
    high = report.want_whole(m, opts, "high", HIGH, "bytes"), ack_timeout = ack_ms,
    label = "sink.forward " .. connect }
end

-- ---- the source at run time --------------------------------------------------------------

-- Opens the source of `spec` (ctx as source.open's). Unbounded: it ends when closed. A
-- close ends at once: what was received and not decoded is not acked, so a client that
-- waits for acks sends it again.
function forward.open_source(spec, ctx)
  local conns = {}
  local listener, handle
  local done, paused = false, false
  local function finish()
    if done then return end
    done = true
    flow.leave(handle)
    if listener then listener:close(); listener = nil end
    local unread = 0
    for c in pairs(conns) do
      unread = unread + c:unread()
      c:close()
    end
    conns = {}
    if unread > 0 then
      report.say("sluice: %s: %d bytes received were left at the end, not acknowledged " ..
        "(clients that wait for acks send them again)", spec.label, unread)
    end
    ctx.ended()
  end
  local function on_connection(fd, peer)
    local from = spec.label .. " from " .. peer
    local conn
    conn = core.forward_conn {
      fd = fd, peer = peer, batch = ctx.batch_size, max_entry = spec.max_entry,
      on_batch = function(batch, n)
        if ctx.push(batch, n) then finish() end
      end,
      on_bad = function(info)
        ctx.bad { offset = info.offset, reason = from .. ": " .. info.reason, raw = info.raw }
      end,
      on_end = function(err)
        if err then ctx.bad { offset = 0, reason = from .. ": " .. err, raw = "" } end
        conns[conn] = nil
        conn:close()
      end,
    }
    if done then return conn:close() end
    conns[conn] = true
    if not paused then conn:start() end
  end
  listener = core.listen { address = spec.listen, on_connection = on_connection,
    shared = ctx.shared ~= nil }
  handle = {
    pause = function()
      paused = true
      if done then return end
      listener:stop()
      for c in pairs(conns) do c:stop() end
    end,
    resume = function()
      paused = false
      if done then return end
      listener:start()
      for c in pairs(conns) do c:start() end
    end,
    close = finish,
  }
  flow.join(handle)
  return handle
end

-- ---- the sink at run time ----------------------------------------------------------------

-- Whether r is an event as the source gives them: sent with its own tag, time and record.
local function is_event(r)
  return type(r) == "table" and type(r.tag) == "string" and type(r.time) == "number"
    and type(r.record) == "table"
end

-- Opens the sink of `spec` (ctx as sink.open's: bad_output(record, reason) dead-letters).
-- push(batch, n, t): t[i] is record i's event time on a stream that has one.
function forward.open_sink(spec, ctx)
  local handle = {}
  local chunks, first, last = {}, 1, 0   -- chunks[first..last]: sent or waiting, in order
  local by_id = {}                        -- id -> chunk not acked yet
  local unacked_bytes, unacked_records, unacked_chunks = 0, 0, 0
  local acked_records = 0
  local blocked, closed, said = false, false, false
  local client, timer, settling, stalled
  local prefix = format("%x%04x", os.time(), math.random(0, 0xffff))
  local seq = 0
  -- the bytes of the chunks not acked yet (sluice_sink_queue_bytes, docs/metrics.md)
  function handle.queued() return unacked_bytes end

  local function send(c)
    if client:send(c.bytes) then c.sent = host.clock() else c.sent = nil end
  end
  local function trim()
    while first <= last and chunks[first].acked do
      chunks[first] = nil
      first = first + 1
    end
  end
  local function on_ack(id)
    local c = by_id[id]
    if not c then return end
    by_id[id] = nil
    c.acked = true
    unacked_bytes = unacked_bytes - #c.bytes
    unacked_records = unacked_records - c.n
    unacked_chunks = unacked_chunks - 1
    acked_records = acked_records + c.n
    c.bytes = nil
    trim()
    if blocked and unacked_bytes <= spec.high / 2 then
      blocked = false
      flow.unblock(handle)
    end
  end
  -- a connection (again): every chunk not acked goes (again), in order
  local function on_connect()
    if said then
      report.say("sluice: %s: connected again; sending %d unacknowledged chunk%s", spec.label,
        unacked_chunks, unacked_chunks == 1 and "" or "s")
    end
    said = false
    for i = first, last do
      local c = chunks[i]
      if c and not c.acked then send(c) end
    end
  end
  local function on_error(msg)
    if not said then report.say("sluice: %s", msg) end
    said = true
    for i = first, last do
      local c = chunks[i]
      if c then c.sent = nil end
    end
  end
  client = core.forward_client { connect = spec.connect, on_ack = on_ack,
    on_connect = on_connect, on_error = on_error }

  -- an ack overdue: the connection is dropped and made again, which resends
  local step = math.max(10, math.min(1000, spec.ack_timeout / 4))
  timer = core.timer(function()
    local c = chunks[first]
    if c and c.sent and (host.clock() - c.sent) * 1000 > spec.ack_timeout then
      client:reset(format("%s: no ack for chunk %s within %dms; reconnecting to send again",
        spec.label, c.id, spec.ack_timeout))
    end
  end)
  timer:start(step, step)

  local function add_chunk(tag, recs, times, src, k, now)
    seq = seq + 1
    local id = prefix .. "-" .. seq
    local bytes, bad = core.forward_pack(tag, id, recs, times, k, now)
    if bad then
      for _, b in ipairs(bad) do ctx.bad_output(src[b.index], b.reason) end
    end
    if not bytes then return end
    local c = { id = id, bytes = bytes, n = k - (bad and #bad or 0) }
    last = last + 1
    chunks[last] = c
    by_id[id] = c
    unacked_bytes = unacked_bytes + #bytes
    unacked_records = unacked_records + c.n
    unacked_chunks = unacked_chunks + 1
    send(c)
  end

  function handle.push(batch, n, t)
    local now = host.now_ms()
    local groups, order = {}, {}
    for i = 1, n do
      local r = batch[i]
      local tag, rec, time = spec.tag, r, t and t[i] or now
      if is_event(r) then tag, rec, time = r.tag, r.record, r.time end
      local g = groups[tag]
      if not g then
        g = { recs = {}, times = {}, src = {}, n = 0 }
        groups[tag] = g
        order[#order + 1] = tag
      end
      local k = g.n + 1
      g.n, g.recs[k], g.times[k], g.src[k] = k, rec, time, r
    end
    for _, tag in ipairs(order) do
      local g = groups[tag]
      add_chunk(tag, g.recs, g.times, g.src, g.n, now)
    end
    if not blocked and unacked_bytes > spec.high then
      blocked = true
      flow.block(handle)
    end
  end

  -- The end of the job: waits in the loop until every chunk is acked, giving up once no
  -- ack has come for ms (--drain-timeout); close() then reports what was not acked.
  function handle.settle(ms, done)
    settling = flow.settle { ms = ms, pending = function() return unacked_chunks > 0 end,
      progress = function() return acked_records end,
      quiet = format("no ack came for %dms (--drain-timeout)", ms),
      stalled = function(why) stalled = why end,
      done = function() settling = nil; done() end }
  end

  function handle.close()
    if closed then return end
    closed = true
    if settling then settling:close(); settling = nil end
    if blocked then blocked = false; flow.unblock(handle) end
    timer:close()
    client:close()
    if unacked_chunks > 0 then
      error(format("%s: %d record%s in %d chunk%s not acknowledged by %s (%s)", spec.label,
        unacked_records, unacked_records == 1 and "" or "s", unacked_chunks,
        unacked_chunks == 1 and "" or "s", spec.connect, stalled or "the job ended"), 0)
    end
  end
  return handle
end

return forward
