-- source.lua -- the sources of the contract: what a script declares, and how it runs.
--
-- sl.source.X{...} checks its options at the user's line and returns a stream on a new
-- source node. At run time, source.open turns the node's spec into a running source that
-- pushes batches downstream: values and generator from a libuv idle handle, file and stdin
-- through the host's reader, which frames and decodes in C; tcp through a listener that
-- gives each connection its own reader, udp through a socket that feeds one. Every running
-- source joins flow control (flow.lua) and closes gracefully: the first close() drains.
local graph = require "sluice.graph"
local report = require "sluice.report"
local stream = require "sluice.stream"
local host = require "sluice.host"
local flow = require "sluice.flow"
local nexmark = require "sluice.nexmark"
local kafka = require "sluice.kafka"
local http = require "sluice.http"
local forward = require "sluice.forward"
local redis = require "sluice.redis"
local schema = require "sluice.schema"
local typed = require "sluice.typed"

local core = host.core
local type, format, floor, min = type, string.format, math.floor, math.min
local fail, where = report.fail, report.where

local source = {}

local formats = { lines = true, json = true, csv = true, msgpack = true }

-- Whether every worker of a job (--workers N) reads a source of `spec`, each a share:
-- a TCP listener on a given port (each worker listens there, SO_REUSEPORT, and the kernel
-- spreads the connections). Worker 1 reads the others alone (runtime.lua, exchange.lua).
-- Port 0 would give each worker a port of its own: worker 1 alone listens then. A Nexmark
-- source: the workers share its events out as they go (nexmark.lua). A Kafka source: each
-- worker reads a share of the partitions (kafka.lua). A Fluent forward listener: as TCP.
function source.spread(spec)
  if spec.type == "nexmark" or spec.type == "kafka" then return true end
  if spec.type == "tcp" or spec.type == "http" or spec.type == "forward" then
    return type(spec.listen) == "string" and spec.listen:match(":0*$") == nil
  end
  return false
end

-- Whether the workers share a spread source's records out as each asks for more (a Nexmark
-- source), so that what one worker reads next may be what another had left: a checkpoint's
-- parts then restore as with another number of workers (runtime.restore_parts).
function source.shared_out(spec)
  return spec.type == "nexmark"
end

-- The position of a source every worker reads from its shares' positions (list[w]: worker
-- w's, nil where it has none): a Nexmark source's shares put together; else worker 1's.
function source.merge_positions(spec, list)
  if spec.type == "nexmark" then return nexmark.merge_positions(list) end
  if spec.type == "kafka" then
    -- each worker's partitions' next offsets (each partition is one worker's for the run)
    local merged = {}
    for _, pos in pairs(list) do
      for topic, parts in pairs(type(pos) == "table" and pos or {}) do
        merged[topic] = merged[topic] or {}
        for p, o in pairs(parts) do
          if (merged[topic][p] or -1) < o then merged[topic][p] = o end
        end
      end
    end
    return merged
  end
  return list[1]
end

local function new_source(spec)
  spec.where = where()
  local node = graph.node("source", {}, { spec = spec, label = spec.label, where = spec.where })
  return stream.new(node, 1)
end

-- The options each source takes (an unknown one is a mistake at the user's line, with the
-- nearest of these suggested).
local options = {
  file = { "path", "format", "header", "follow", "max_record", "schema" },
  stdin = { "format", "header", "max_record", "schema" },
  generator = { "count", "rate", "fn" },
  tcp = { "listen", "format", "header", "max_record", "schema" },
  udp = { "listen", "format", "header", "max_record", "schema" },
}

local function want_table(m, opts, kind) return report.want_options(m, opts, false, options[kind]) end

local function want_format(m, opts)
  return report.want_format(m, opts, formats, "lines, json, csv, msgpack")
end

-- The schema rule of the sources read by core.reader: C decodes json and msgpack records,
-- and csv ones by the names of a header, into slots.
local function reader_schema(_, opts)
  local f = opts.format or "lines"
  if f == "lines" or (f == "csv" and not opts.header) then
    return format("schema needs format json, msgpack, or csv with header = true (got %s%s)",
      f, f == "csv" and " without a header" or "")
  end
  return nil
end

-- max_record: the longest record in bytes (default 1 MiB); longer ones are dead-lettered.
local function want_max_record(m, opts)
  local n = opts.max_record
  if n ~= nil and (type(n) ~= "number" or n < 1 or n % 1 ~= 0 or n > 2 ^ 30) then
    fail(format("%s: max_record must be a whole number of bytes from 1 to 2^30, got %s", m,
      tostring(n)))
    return nil
  end
  return n
end

-- An address "host:port": checked for its shape here, resolved when the job starts.
local function want_address(m, opts, field)
  local a = opts[field]
  if type(a) ~= "string" then
    fail(format('%s: %s is required (a string "host:port")', m, field))
    return "?"
  end
  return a
end

-- ---- declarations ---------------------------------------------------------------------

function source.values(array)
  if type(array) ~= "table" then
    fail(format("source.values(): expected an array, got %s", type(array)))
    array = {}
  end
  return new_source { type = "values", array = array, label = "source.values" }
end

function source.file(opts)
  opts = want_table("source.file()", opts, "file")
  if type(opts.path) ~= "string" then
    fail("source.file(): path is required (a string)")
  end
  return new_source { type = "file", path = opts.path, format = want_format("source.file()", opts),
    header = opts.header, follow = opts.follow and true or nil,
    max_record = want_max_record("source.file()", opts),
    schema = schema.want("source.file()", opts, reader_schema),
    label = "source.file " .. tostring(opts.path) }
end

-- sl.table.file{path, format, key, follow, header, deleted}: a table for lookup(), its rows
-- the records of a file keyed by `key` (a field name or a function); the job's other
-- sources start once the file is loaded whole (runtime.lua); follow=true applies lines
-- added later as updates (deleted(row) true: the key is removed).
function source.table_file(opts)
  opts = report.want_options("table.file()", opts, false,
    { "path", "format", "key", "follow", "header", "deleted", "max_record" })
  if type(opts.path) ~= "string" then fail("table.file(): path is required (a string)") end
  local key = opts.key
  if type(key) ~= "string" and type(key) ~= "function" then
    fail(format("table.file(): key is required: a field name or a function, got %s", type(key)))
    key = "?"
  end
  if opts.deleted ~= nil and type(opts.deleted) ~= "function" then
    fail(format("table.file(): deleted must be a function, got %s", type(opts.deleted)))
  end
  local rows = new_source { type = "file", path = opts.path, table = true,
    format = want_format("table.file()", opts), header = opts.header,
    follow = opts.follow and true or nil, max_record = want_max_record("table.file()", opts),
    label = "table.file " .. tostring(opts.path) }
  return { is_table = true, stream = rows:key_by(key), where = where(),
    deleted = type(opts.deleted) == "function" and opts.deleted or nil }
end

function source.stdin(opts)
  opts = opts or {}
  opts = want_table("source.stdin()", opts, "stdin")
  return new_source { type = "stdin", format = want_format("source.stdin()", opts),
    header = opts.header, max_record = want_max_record("source.stdin()", opts),
    schema = schema.want("source.stdin()", opts, reader_schema), label = "source.stdin" }
end

function source.generator(opts)
  opts = want_table("source.generator()", opts, "generator")
  local count, rate, fn = opts.count, opts.rate, opts.fn
  if count ~= nil and (type(count) ~= "number" or count < 0) then
    fail(format("source.generator(): count must be a number >= 0, got %s", tostring(count)))
    count = 0
  end
  if rate ~= nil and (type(rate) ~= "number" or rate <= 0) then
    fail(format("source.generator(): rate must be a number > 0 (records/s), got %s",
      tostring(rate)))
    rate = nil
  end
  if fn ~= nil and type(fn) ~= "function" then
    fail(format("source.generator(): fn must be a function, got %s", type(fn)))
    fn = nil
  end
  return new_source { type = "generator", count = count and floor(count), rate = rate,
    fn = fn or function(i) return i end,
    label = count and format("source.generator %d", count) or "source.generator" }
end


-- tcp{listen="host:port", format}: every connection is framed on its own; unbounded.
function source.tcp(opts)
  opts = want_table("source.tcp()", opts, "tcp")
  local listen = want_address("source.tcp()", opts, "listen")
  return new_source { type = "tcp", listen = listen, format = want_format("source.tcp()", opts),
    header = opts.header, max_record = want_max_record("source.tcp()", opts),
    schema = schema.want("source.tcp()", opts, reader_schema), label = "source.tcp " .. listen }
end

-- udp{listen="host:port", format}: one record per datagram (lines: one per line).
function source.udp(opts)
  opts = want_table("source.udp()", opts, "udp")
  local listen = want_address("source.udp()", opts, "listen")
  return new_source { type = "udp", listen = listen, format = want_format("source.udp()", opts),
    header = opts.header, max_record = want_max_record("source.udp()", opts),
    schema = schema.want("source.udp()", opts, reader_schema), label = "source.udp " .. listen }
end

-- Sources a stage may run inside its own loop (runtime.lua): their spec.fn(i) makes
-- record i, so a record the stage only reads is never stored in a batch.
source.fusable = { generator = true, nexmark = true }

-- nexmark{events, rate, seed}: the Nexmark benchmark's events, generated in C.
function source.nexmark(opts) return nexmark.declare(opts, new_source) end

-- kafka{brokers, topic, group, format, ...}: one record per message (kafka.lua).
function source.kafka(opts) return new_source(kafka.source_spec(opts)) end

-- http{listen, path, format, max_body}: one record per line of each POST body (http.lua).
function source.http(opts) return new_source(http.source_spec(opts)) end
-- forward{listen}: Fluent forward protocol events {tag, time, record} (forward.lua).
function source.forward(opts) return new_source(forward.source_spec(opts)) end
-- redis{url, stream, group, consumer, format, meta, ...}: one record per stream entry (redis.lua).
function source.redis(opts) return new_source(redis.source_spec(opts)) end

-- Sources whose batches each come from one partition of their input, said to the stage
-- they feed (ctx.partition), so that a timestamp there keeps a watermark per partition.
source.partitioned = { kafka = true }

-- ---- running --------------------------------------------------------------------------
--
-- source.open(spec, ctx) starts a source. ctx supplies:
--   ctx.batch_size           records per batch
--   ctx.push(batch, n)       hands a batch downstream; returns true when every consumer
--                            is done (a take() reached its count), so the source may stop
--   ctx.bad(info)            a malformed input record (info as the reader's on_bad)
--   ctx.user_error(e, i)     fn raised on record i (generator)
--   ctx.ended()              the source has no more records
--   ctx.position             optional: where to start, a value its position() returned
--   ctx.caught_up()          optional (a followed file): the file's end was reached the
--                            first time, all it held then delivered
--   ctx.shared               on several workers, a source every worker reads
--                            (source.spread): { me, n, owns(key group) -> bool }; a TCP
--                            listener shares its port, a Nexmark source makes its share
-- It returns { close = function() } to stop it early, and position() when it can replay
-- from a position (values, generator, file): what a checkpoint records. Optional, for
-- --metrics: ready() -> true | false, why (default: ready once open; false while it
-- cannot read, such as brokers it cannot reach: /readyz says 503 and why), and lag() ->
-- { {topic=, partition=, lag=} } (records its input holds that it has not read yet).

local open = {}

-- An idle handle that calls produce() once per loop turn until it returns false.
-- It joins flow control: paused, the handle stops until the sinks catch up.
local function idle_loop(ctx, produce)
  local handle, src
  local running = true
  local function stop()
    if running then
      running = false
      flow.leave(src)
      handle:close()
      ctx.ended()
    end
  end
  handle = core.idle(function()
    if not produce() then stop() end
  end)
  src = { close = stop, idle = handle,
    pause = function() if running then handle:stop() end end,
    resume = function() if running then handle:start() end end }
  flow.join(src)
  return src
end

function open.values(spec, ctx)
  local array, i, batch, size = spec.array, ctx.position or 1, {}, ctx.batch_size
  local total = #array
  local handle = idle_loop(ctx, function()
    local n = min(size, total - i + 1)
    if n <= 0 then return false end
    for k = 1, n do batch[k] = array[i + k - 1] end
    i = i + n
    return not ctx.push(batch, n) and i <= total
  end)
  handle.position = function() return i end    -- the next element to read
  return handle
end

-- Generators run user code to make records, so each batch runs protected: if fn raises
-- on index i, that index is dead-lettered and the batch goes on from i + 1.
function open.generator(spec, ctx)
  local fn, count, rate, size = spec.fn, spec.count, spec.rate, ctx.batch_size
  local batch, nb, cur = {}, 0, 0
  local next_i = ctx.position or 1
  local function fill(from, to)
    for i = from, to do
      cur = i
      local r = fn(i)
      if r ~= nil then nb = nb + 1; batch[nb] = r end
    end
  end
  local started = host.clock()
  local timer, handle
  handle = idle_loop(ctx, function()
    local last = next_i + size - 1
    if count and last > count then last = count end
    if rate then
      local allowed = floor((host.clock() - started) * rate) + 1
      if allowed < last then last = allowed end
      if last < next_i then
        -- ahead of the rate: sleep until the next record is due, without spinning
        local wait_ms = math.max(1, ((next_i - 1) / rate - (host.clock() - started)) * 1000)
        -- (paused meanwhile, by back-pressure or a checkpoint's cut: resume() starts it)
        timer = timer or core.timer(function()
          if not flow.paused() then handle.idle:start() end
        end)
        handle.idle:stop()
        timer:start(wait_ms)
        return true
      end
    end
    if last < next_i then return false end
    if ctx.run_range then
      -- fused: the stage calls fn itself and dead-letters what it raises on
      local done = ctx.run_range(next_i, last)
      next_i = last + 1
      return not done and (not count or next_i <= count)
    end
    nb = 0
    local s = next_i
    while true do
      local ok, err = pcall(fill, s, last)
      if ok then break end
      ctx.user_error(err, cur)
      s = cur + 1
    end
    next_i = last + 1
    if nb > 0 and ctx.push(batch, nb) then return false end
    return not count or next_i <= count
  end)
  local close = handle.close
  handle.close = function()
    if timer then timer:close() end
    close()
  end
  handle.position = function() return next_i end   -- the next index to generate
  return handle
end

-- Reader options shared by every reader-based source. (With a schema, C decodes records
-- into slots and on_batch(batch, n, slots) gets them there: new_reader puts them into the
-- batch as views, schema.lua, before the source's on_batch sees it.)
local function reader_options(spec, ctx, target)
  target.format = spec.format
  target.header = spec.header
  target.batch = ctx.batch_size
  target.max_record = spec.max_record
  return target
end

-- core.reader(target), with the typed records of spec.schema put into each batch.
local function new_reader(spec, target)
  if spec.schema then
    target.schema = spec.schema.ud
    local fill, on_batch = schema.filler(spec.schema), target.on_batch
    target.on_batch = function(batch, n, slots)
      fill(batch, n, slots)
      return on_batch(batch, n)
    end
  end
  return core.reader(target)
end

-- A file or stdin. close() is graceful the first time (a shutdown): the records already
-- read are delivered before the source ends; a second close() stops at once.
local function open_reader(spec, ctx, target)
  local reader, handle
  local done, draining = false, false
  local last                    -- the position when the reader closed
  local function position()
    if last then return last end
    local offset, line, ino, dev, columns = reader:position()
    return { offset = offset, line = line, ino = ino, dev = dev, columns = columns }
  end
  local function finish()
    if not done then
      done = true
      flow.leave(handle)
      if target.path then last = position() end
      reader:close()
      ctx.ended()
    end
  end
  reader_options(spec, ctx, target)
  target.on_batch = function(batch, n)
    if ctx.push(batch, n) then finish() end
  end
  target.on_bad = ctx.bad
  target.on_end = function(err)
    if err then error(err, 0) end
    finish()
  end
  reader = new_reader(spec, target)
  handle = {
    pause = function() if not draining then reader:stop() end end,
    resume = function() if not done then reader:start() end end,
    close = function()
      if done then return end
      if draining then return finish() end
      draining = true
      reader:drain()
    end,
  }
  if target.path then handle.position = position end
  flow.join(handle)
  if not flow.paused() then reader:start() end
  return handle
end

-- Where a file source resumes from a checkpoint's position: there, if the path still
-- holds the same file (inode and device) and it is not shorter; else from the start of
-- what is there now, after saying why (a followed file rotated while the job was down).
local function resume_at(spec, target, pos)
  local st = core.durable.stat(spec.path)
  if not st or not st.regular then return end   -- missing (opening says so), or a pipe
  local why
  if st.ino ~= pos.ino or st.dev ~= pos.dev then
    why = "is another file than at the checkpoint (rotated or replaced)"
  elseif st.size < pos.offset then
    why = format("is shorter (%d bytes) than the checkpoint's position %d (truncated)",
      st.size, pos.offset)
  end
  if why then
    io.stderr:write(format("sluice: source.file %s %s; reading it from the start\n",
      spec.path, why))
    return
  end
  target.offset, target.line, target.columns = pos.offset, pos.line, pos.columns
end

function open.file(spec, ctx)
  -- a followed file says when what it held at the start is in (a table's file is loaded
  -- whole before the job's other sources start: runtime.lua)
  local target = { path = spec.path, follow = spec.follow, on_caught_up = ctx.caught_up }
  if type(ctx.position) == "table" then resume_at(spec, target, ctx.position) end
  return open_reader(spec, ctx, target)
end
function open.stdin(spec, ctx) return open_reader(spec, ctx, { fd = 0 }) end
function open.nexmark(spec, ctx) return nexmark.open(spec, ctx) end
open.kafka = kafka.open_source
open.http = http.open_source
open.forward = forward.open_source
open.redis = redis.open_source

-- A TCP listener: each accepted connection gets its own reader (framing never mixes two
-- connections), which owns the socket. A connection's end is not the source's end: the
-- source ends only when it is closed. A partial record at a connection's end, and a read
-- error on a connection, are dead-lettered; the job goes on. The first close() drains:
-- what the kernel holds for each connection then is read, still paused and resumed by
-- flow control, so a shutdown reads no faster than the sinks take; a second close() ends
-- at once and says how many bytes received it drops (ctx.lost).
function open.tcp(spec, ctx)
  local conns, nconns = {}, 0
  local listener, handle
  local closing, done, paused = false, false, false
  local function finish()
    if done then return end
    done = true
    flow.leave(handle)
    if listener then listener:close() end
    for r in pairs(conns) do r:close() end
    conns = {}
    ctx.ended()
  end
  local function maybe_end()
    if closing and nconns == 0 then finish() end
  end
  local function on_connection(fd, peer)
    local reader
    local from = "tcp " .. spec.listen .. " from " .. peer
    local target = reader_options(spec, ctx, { fd = fd, own = true, name = from,
      partial_bad = true })
    target.on_batch = function(batch, n)
      if ctx.push(batch, n) then finish() end
    end
    target.on_bad = function(info)
      info.reason = from .. ": " .. tostring(info.reason)
      ctx.bad(info)
    end
    target.on_end = function(err)
      if err then ctx.bad { line = 0, offset = 0, reason = err, raw = "" } end
      if conns[reader] then
        conns[reader] = nil
        nconns = nconns - 1
      end
      reader:close()
      maybe_end()
    end
    reader = new_reader(spec, target)
    if done then return reader:close() end
    conns[reader] = true
    nconns = nconns + 1
    if closing then
      reader:drain()
      if paused then reader:stop() end
    elseif not paused then reader:start() end
  end
  listener = core.listen { address = spec.listen, on_connection = on_connection,
    shared = ctx.shared ~= nil }
  handle = {
    pause = function()
      paused = true
      if done then return end
      if listener then listener:stop() end
      for r in pairs(conns) do r:stop() end
    end,
    resume = function()
      paused = false
      if done then return end
      if listener then listener:start() end
      for r in pairs(conns) do r:start() end
    end,
    close = function()
      if done then return end
      if closing then
        local unread = 0
        for r in pairs(conns) do unread = unread + r:unread() end
        if unread > 0 and ctx.lost then
          ctx.lost(format("%d bytes received from its peers were not read", unread))
        end
        return finish()
      end
      closing = true
      -- connections the kernel completed are accepted input: take them, then drain all
      listener:accept_pending()
      listener:close()
      listener = nil
      for r in pairs(conns) do
        r:drain()
        if paused then r:stop() end
      end
      maybe_end()
    end,
  }
  flow.join(handle)
  return handle
end

-- A UDP socket: each datagram is fed to one reader's framer. UDP has no back-pressure:
-- while paused the socket is not read and the kernel drops what overflows its buffer.
function open.udp(spec, ctx)
  local reader, sock, handle
  local done, draining = false, false
  local function finish()
    if done then return end
    done = true
    flow.leave(handle)
    sock:close()
    reader:close()
    ctx.ended()
  end
  local target = reader_options(spec, ctx, { feed = true, name = "udp " .. spec.listen })
  target.on_batch = function(batch, n)
    if ctx.push(batch, n) then finish() end
  end
  target.on_bad = ctx.bad
  target.on_end = function() finish() end
  reader = new_reader(spec, target)
  sock = core.udp { address = spec.listen, reader = reader }
  handle = {
    pause = function() if not draining then sock:stop() end end,
    resume = function() if not done then sock:start() end end,
    close = function()
      if done then return end
      if draining then return finish() end
      draining = true
      sock:stop()
      reader:drain()
    end,
  }
  flow.join(handle)
  reader:start()
  return handle
end

-- A source with a schema counts among the typed sources running (typed.opened) from its
-- opening to its end: meanwhile a table may hold a view a function put there.
function source.open(spec, ctx)
  if not spec.schema then return open[spec.type](spec, ctx) end
  typed.opened()
  local ended, counted = ctx.ended, true
  ctx.ended = function(...)
    if counted then counted = false; typed.closed() end
    return ended(...)
  end
  return open[spec.type](spec, ctx)
end

-- Why `position` (from a checkpoint) cannot be where the source of `spec` resumes: a
-- string, or nil when it can. Each type's position is what its position() gives.
local function whole(n) return type(n) == "number" and n >= 0 and n % 1 == 0 and n < math.huge end
function source.bad_position(spec, position)
  local t = spec.type
  if t == "file" then
    if type(position) ~= "table" then return "a file's position is a table, not a " .. type(position) end
    if not whole(position.offset) then return "its offset is not a whole number >= 0" end
    if not whole(position.line) then return "its line is not a whole number >= 0" end
    if position.ino ~= nil and type(position.ino) ~= "number" then return "its inode is not a number" end
    if position.dev ~= nil and type(position.dev) ~= "number" then return "its device is not a number" end
    local cols = position.columns
    if cols ~= nil and type(cols) ~= "table" then return "its columns are not an array" end
    for _, c in pairs(cols or {}) do
      if type(c) ~= "string" then return "its columns are not an array of names" end
    end
  elseif t == "values" or t == "generator" then
    if not whole(position) or position < 1 then return "it is not a whole number >= 1" end
  elseif t == "nexmark" then
    if type(position) == "table" and position.classes == nil then
      -- shared by workers: the events of its ranges and from its tail on (nexmark.lua)
      local ranges, last = position.ranges, 0
      if type(ranges) ~= "table" or not whole(position.tail) then
        return "it has no ranges and tail"
      end
      for i = 1, #ranges, 2 do
        local from, to = ranges[i], ranges[i + 1]
        if not whole(from) or not whole(to) or from < last or to <= from then
          return "its ranges are not pairs of whole numbers >= 0 in increasing order"
        end
        last = to
      end
      if position.tail < last then return "its tail is before its last range" end
      local own = position.own
      if own ~= nil and (type(own) ~= "table" or not whole(own[1]) or not whole(own[2])
        or own[2] <= own[1]) then
        return "its own claim is not a pair of whole numbers >= 0, in increasing order"
      end
    elseif type(position) == "table" then
      -- a source spread over workers by classes: the first event of each not made yet
      if type(position.classes) ~= "table" then return "it has no classes" end
      for c, n in pairs(position.classes) do
        if not whole(c) or c < 1 or c > 128 or not whole(n) then
          return "its classes are not whole numbers >= 0 by class 1 to 128"
        end
      end
    elseif not whole(position) then return "it is not a whole number >= 0" end
  elseif t == "redis" then
    return redis.bad_position(position)
  elseif t == "kafka" then
    if type(position) ~= "table" then return "a Kafka position is a table, not a " .. type(position) end
    for topic, parts in pairs(position) do
      if type(topic) ~= "string" or type(parts) ~= "table" then
        return "it is not a table of topics, each a table of partitions"
      end
      for p, offset in pairs(parts) do
        if not whole(p) or not whole(offset) then
          return format("topic %s: its partitions and offsets are not whole numbers >= 0", topic)
        end
      end
    end
  end
  return nil
end

-- Whether the source of `spec` has records past `position` (what its position() gave
-- when it ended): true or false where it can tell without reading (a file by its size and
-- identity; values, generator and nexmark by their count), nil where it cannot (stdin,
-- sockets, Kafka). A finished job with state (checkpoint.lua) runs again only if so.
function source.more(spec, position)
  local t = spec.type
  if t == "file" then
    if type(position) ~= "table" then return true end
    local st = core.durable.stat(spec.path)
    if not st or not st.regular then return nil end
    return st.ino ~= position.ino or st.dev ~= position.dev or st.size ~= position.offset
  elseif t == "values" then
    return type(position) ~= "number" or position <= #spec.array
  elseif t == "generator" then
    return type(position) ~= "number" or not spec.count or position <= spec.count
  elseif t == "nexmark" then
    if not spec.events then return true end
    if type(position) == "table" and type(position.ranges) == "table" then
      return #position.ranges > 0 or (position.tail or 0) < spec.events
    end
    if type(position) == "table" and type(position.classes) == "table" then
      for c = 1, 128 do
        local n = position.classes[c]
        if n == nil or n < spec.events then return true end
      end
      return false
    end
    return type(position) ~= "number" or position < spec.events
  end
  return nil
end

return source
