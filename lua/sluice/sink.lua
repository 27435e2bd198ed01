-- sink.lua -- the sinks of the contract: what a script declares, and how it runs.
--
-- sl.sink.X{...} checks its options and returns a sink spec, which stream:sink() attaches
-- to the graph. At run time sink.open turns a spec into { push(batch, n), close() }:
-- stdout and file encode whole batches in C (host writer); tcp too, through a queued
-- connection that calls flow control when it falls behind; table buffers rows for people;
-- null counts; fn calls a user function; collect keeps the records.
local report = require "sluice.report"
local host = require "sluice.host"
local flow = require "sluice.flow"
local kafka = require "sluice.kafka"
local http_sink = require "sluice.http_sink"
local forward = require "sluice.forward"
local redis = require "sluice.redis"
local text = require "sluice.format"
local typed = require "sluice.typed"
local ffi = require "ffi"

local core = host.core
local type, format, pcall = type, string.format, pcall
local plain_batch, split_batch = typed.plain_batch, typed.split_batch
local fail, where = report.fail, report.where

local sink = {}

local out_formats = { lines = true, json = true, csv = true, msgpack = true, table = true }

local Sink = {}
Sink.__index = Sink

local function new_sink(spec)
  spec.is_sink = true
  spec.where = where()
  return setmetatable(spec, Sink)
end

local function want_format(m, opts)
  return report.want_format(m, opts, out_formats, "lines, json, csv, msgpack, table")
end

-- The options each sink takes (an unknown one is a mistake at the user's line, with the
-- nearest of these suggested).
local options = {
  stdout = { "format", "columns" },
  file = { "path", "format", "append", "columns" },
  tcp = { "connect", "format", "columns", "high" },
  none = {},
}

local function want_table(m, opts, kind) return report.want_options(m, opts, true, options[kind]) end

-- ---- declarations ---------------------------------------------------------------------

function sink.stdout(opts)
  opts = want_table("sink.stdout()", opts, "stdout")
  return new_sink { type = "stdout", format = want_format("sink.stdout()", opts),
    columns = opts.columns, label = "sink.stdout" }
end

function sink.file(opts)
  opts = want_table("sink.file()", opts, "file")
  if type(opts.path) ~= "string" then fail("sink.file(): path is required (a string)") end
  return new_sink { type = "file", path = opts.path, format = want_format("sink.file()", opts),
    append = opts.append, columns = opts.columns, label = "sink.file " .. tostring(opts.path) }
end

function sink.null(opts)
  want_table("sink.null()", opts, "none")
  return new_sink { type = "null", label = "sink.null" }
end

function sink.fn(f)
  if type(f) ~= "function" then
    fail(format("sink.fn(): expected a function, got %s", type(f)))
  end
  return new_sink { type = "fn", fn = f, label = "sink.fn" }
end

function sink.collect(opts)
  want_table("sink.collect()", opts, "none")
  return new_sink { type = "collect", collected = {}, label = "sink.collect" }
end

-- tcp{connect="host:port", format, high}: records are queued and written as the peer takes
-- them; a lost connection is retried with backoff and nothing queued is dropped. When more
-- than `high` bytes (default 4 MiB) wait, the sources pause until half of it is written.
function sink.tcp(opts)
  opts = want_table("sink.tcp()", opts, "tcp")
  local connect = opts.connect
  if type(connect) ~= "string" then
    fail('sink.tcp(): connect is required (a string "host:port")')
    connect = "?"
  end
  local f = want_format("sink.tcp()", opts)
  if f == "table" then fail("sink.tcp(): format table is for people; use lines, json, csv or msgpack") end
  local high = opts.high
  if high ~= nil and (type(high) ~= "number" or high < 1) then
    fail(format("sink.tcp(): high must be a number of bytes >= 1, got %s", tostring(high)))
    high = nil
  end
  return new_sink { type = "tcp", connect = connect, format = f, columns = opts.columns,
    high = high or 4 * 1024 * 1024, label = "sink.tcp " .. connect }
end

-- kafka{brokers, topic, key, format, exactly_once, high, options}: each record a message,
-- produced idempotently (kafka.lua).
function sink.kafka(opts) return new_sink(kafka.sink_spec(opts)) end

-- http{url, method, format, batch, every, headers, ...}: records POSTed in batches, retried
-- with backoff (http_sink.lua).
function sink.http(opts) return new_sink(http_sink.sink_spec(opts)) end
-- forward{connect, tag}: Fluent forward to Fluentd or Fluent Bit, waiting for acks
-- (forward.lua).
function sink.forward(opts) return new_sink(forward.sink_spec(opts)) end
-- redis{url, stream, maxlen}: each record an entry of its fields, by pipelined XADD (redis.lua).
function sink.redis(opts) return new_sink(redis.sink_spec(opts)) end

-- The records a collect sink received in its last run.
function Sink:records()
  if self.type ~= "collect" then error("records(): only sl.sink.collect() keeps records", 2) end
  return self.collected
end

-- ---- running --------------------------------------------------------------------------
--
-- sink.open(spec, ctx) returns { push = function(batch, n), close = function(failed) }
-- (failed: the job ends in failure; a transactional sink aborts then).
-- ctx.bad_output(record, reason) dead-letters a record the sink could not encode;
-- ctx.committed (a file's length to cut back to) and ctx.append resume a file sink;
-- ctx.user_error(err, record) dead-letters a record on which a sink.fn raised; ctx.files
-- (a table the job keeps) lets file sinks on one file share its writer.
-- A sink that queues output may add queued() -> bytes: what it holds that its peer has
-- not yet taken (the tcp sink's writer queue, Kafka's unacknowledged messages), shown
-- by job:metrics(), sluice top and --metrics (sluice_sink_queue_bytes); 0 once closed.

local open = {}

-- A file sink resumed from a checkpoint (ctx.committed bytes) is cut back to that length
-- and appended to; a file shorter than that was changed outside the job: it is said so,
-- and appended to where it ends.
local function resume_length(spec, ctx)
  local committed = ctx.committed
  if not committed then return nil end
  local st = core.durable.stat(spec.path)
  local size = st and st.size or 0
  if size < committed then
    io.stderr:write(format("sluice: sink.file %s: holds %d bytes, fewer than the %d its " ..
      "checkpoint committed (changed outside the job?); appending where it ends\n",
      spec.path, size, committed))
    return size
  end
  return committed
end

local function writer_target(spec, ctx)
  if spec.type == "stdout" then return { fd = 1, pipe_may_close = true } end
  return { path = spec.path, append = spec.append or ctx.append,
    truncate_to = resume_length(spec, ctx) }
end

-- After a write to stdout: if its reader has gone (EPIPE: `| head` has what it wanted),
-- the job is told once (ctx.output_closed) and ends quietly; what follows is dropped.
local function check_reader(w, ctx)
  if ctx.output_closed and w:reader_gone() then ctx.output_closed() end
end

-- A function that writes batches with writer w and hands the records it could not encode
-- to ctx.bad_output. C encodes each record as it is and stops at the first one that is,
-- or holds, a typed record (typed.lua): only from there does typed.split_batch look at
-- the batch (records of a schema as views C encodes from their slots, other typed records
-- in their table form) before C goes on. So a batch that holds no typed record, a map's
-- new tables say, is walked by no Lua loop. In the lines format a table's __tostring may
-- read the records it holds, so there split_batch sees the whole batch first, as always.
local views_ct = ffi.typeof("const void *[?]")
local function batch_writer(w, ctx, out_format)
  local views, cap, finds = nil, 0, out_format ~= "lines"
  local function dead_letters(batch, bad)
    for _, b in ipairs(bad) do ctx.bad_output(typed.plain(batch[b.index]), b.reason) end
  end
  return function(batch, n)
    local stopped = 1
    if finds then
      local bad
      bad, stopped = w:write(batch, n, nil, 1, true)
      if bad then dead_letters(batch, bad) end
      if not stopped then return end
    end
    if n > cap then cap = n; views = views_ct(n) end
    local any = split_batch(batch, n, views, stopped)
    local bad = w:write(batch, n, any and views or nil, stopped)
    if bad then dead_letters(batch, bad) end
  end
end

-- A writer and what writes it out: what a turn of the event loop produced is written at
-- the start of the next turn (a 0 ms timer), so a record that arrives alone reaches its
-- file or stdout at once, and at high rates one write carries all the batches that one
-- read delivered. `users` counts the sinks writing through it.
local function new_output(target, ctx)
  local out = { w = core.writer(target), pending = false, users = 1 }
  out.timer = core.timer(function()
    out.pending = false
    out.w:flush()
    check_reader(out.w, ctx)
  end)
  return out
end

-- The shape of what a file sink writes: sinks on one file share its writer only when
-- they agree on it (compile.lua says so at the script's line; a reload that changes a
-- sink's format opens a writer of its own, as before).
local function shape(spec)
  local cols = type(spec.columns) == "table" and table.concat(spec.columns, "\0") or ""
  return format("%s|%s|%s", spec.format, tostring(spec.append), cols)
end

-- The file a path names (device and inode, after the writer has made it), or nil.
local function file_id(path)
  local st = core.durable.stat(path)
  return st and (st.dev .. ":" .. st.ino) or nil
end

-- A sink that encodes in C: one writer call per batch. File sinks of one job on one file
-- share its writer (ctx.files: the job's shared outputs by file_id), so their records
-- interleave whole, batch by batch, and a checkpoint commits the one length they share;
-- two writers would each write from their own offset, over each other. The first of
-- them opens the file (cut back to a checkpoint's length); the last one closes it.
local function open_writer(spec, ctx)
  local files = spec.type == "file" and ctx.files or nil
  local id = files and file_id(spec.path)
  local out = id and files[id]
  if out and out.shape == shape(spec) then
    out.users = out.users + 1
  else
    local target = writer_target(spec, ctx)
    target.format, target.columns = spec.format, spec.columns
    out = new_output(target, ctx)
    id = files and file_id(spec.path)         -- the file exists now
    if id and not files[id] then
      out.shape, out.files, out.id = shape(spec), files, id
      files[id] = out
    end
  end
  local w, closed = out.w, false
  local write = batch_writer(w, ctx, spec.format)
  return {
    push = function(batch, n)
      write(batch, n)
      check_reader(w, ctx)
      if not out.pending then out.pending = true; out.timer:start(0) end
    end,
    close = function()
      if closed then return end
      closed, out.users = true, out.users - 1
      if out.users > 0 then return end
      if out.files and out.files[out.id] == out then out.files[out.id] = nil end
      out.timer:close()
      w:close()
    end,
    -- a file sink's committed length for a checkpoint: everything so far, written out
    path = spec.type == "file" and spec.path or nil,
    commit = spec.type == "file" and function() return w:size() end or nil,
    finds_typed = true,
  }
end

-- The `table` format is for people. On a terminal, rows are printed as they come, under
-- a header printed again whenever the columns must widen (format.live_table); elsewhere
-- they are buffered and printed as aligned columns at the end and every `page` rows, so
-- an unbounded job still shows its output.
local function open_table(spec, ctx)
  local target = writer_target(spec, ctx)
  target.format = "lines"
  local w = core.writer(target)
  if spec.type == "stdout" and host.isatty(1) then
    local live = text.live_table { columns = spec.columns, width = text.terminal_width() }
    return {
      push = function(batch, n)
        local out = live(batch, n)
        if out then w:write({ out }, 1); w:flush() end
      end,
      close = function() w:close() end,
    }
  end
  local rows, page = {}, 1000
  local function print_rows()
    if #rows > 0 then
      w:write({ text.table(rows, { columns = spec.columns }) }, 1)
      w:flush()
      check_reader(w, ctx)
      rows = {}
    end
  end
  return {
    push = function(batch, n)
      for i = 1, n do rows[#rows + 1] = batch[i] end
      if #rows >= page then print_rows() end
    end,
    close = function() print_rows(); w:close() end,
  }
end

function open.stdout(spec, ctx)
  if spec.format == "table" then return open_table(spec, ctx) end
  return open_writer(spec, ctx)
end
open.file = open.stdout

-- "10s", "250ms": a drain timeout for people.
-- The TCP sink also settles at the end (runtime.lua's Job:finish): handle.settle(ms, done)
-- waits in the loop, the job's other handles served, until its queue is written, giving
-- up only once the peer has taken nothing for ms; then close() reports the records it
-- could not deliver. handle.delivered() counts the bytes the peer took, for the job's
-- own watch over a drain.
function open.tcp(spec, ctx)
  local handle = {}
  local blocked, closed, settling, stalled = false, false, nil, nil
  local w = core.writer { connect = spec.connect, format = spec.format, columns = spec.columns,
    low = spec.high / 2,
    on_drain = function()
      if blocked then blocked = false; flow.unblock(handle) end
    end }
  local write = batch_writer(w, ctx, spec.format)
  handle.push = function(batch, n)
    write(batch, n)
    w:flush()           -- queued at once: a record alone goes out without waiting
    if not blocked and w:pending() > spec.high then
      blocked = true
      flow.block(handle)
    end
  end
  handle.delivered = function()
    local _, _, written = w:pending()
    return written
  end
  handle.finds_typed = true
  -- --metrics' sink queue: the bytes waiting for the peer
  handle.queued = function()
    if closed then return 0 end
    return (w:pending())
  end
  handle.settle = function(ms, done)
    w:flush()
    settling = flow.settle { ms = ms, pending = function() return w:pending() > 0 end,
      progress = handle.delivered,
      quiet = format("it took nothing for %s (--drain-timeout)", text.limit_ms(ms)),
      stalled = function(why) stalled = why end,
      done = function() settling = nil; done() end }
  end
  handle.close = function()
    if closed then return end
    closed = true
    if settling then settling:close(); settling = nil end
    if blocked then blocked = false; flow.unblock(handle) end
    if stalled then return w:close(0, stalled) end
    w:close()
  end
  return handle
end

open.kafka = kafka.open_sink
open.http = http_sink.open_sink
open.forward = forward.open_sink
open.redis = redis.open_sink

function open.null()
  return { push = function() end, close = function() end }
end

function open.collect(spec)
  local records = {}
  spec.collected = records
  return {
    push = function(batch, n)
      local m = #records
      for i = 1, n do records[m + i] = batch[i] end
    end,
    close = function() end,
  }
end

-- The user's function runs protected per batch: a record on which it raises is
-- dead-lettered and the loop resumes with the next record.
-- A sink the runtime adds itself (--group's repartition writers, repartition.lua): its
-- spec brings its opener.
function open.internal(spec, ctx) return spec.open(spec, ctx) end

function open.fn(spec, ctx)
  local f, cur = spec.fn, 0
  local function loop(batch, s, n)
    for i = s, n do cur = i; f(batch[i]) end
  end
  return {
    push = function(batch, n)
      local s = 1
      while s <= n do
        local ok, err = pcall(loop, batch, s, n)
        if ok then break end
        ctx.user_error(err, batch[cur])
        s = cur + 1
      end
    end,
    close = function() end,
  }
end

-- Every sink but null keeps or encodes what it gets, so typed records (typed.lua) reach
-- it in their table form. s.records counts what the sink received.
-- A sink that encodes in C (s.encodes_typed) gets records of a schema as they are, and
-- encodes them from their slots without a table; one that finds them itself
-- (s.finds_typed: batch_writer) gets every record as it is.
function sink.open(spec, ctx)
  local s = open[spec.type](spec, ctx)
  local push, plain = s.push, spec.type ~= "null"
  s.records = 0
  if s.finds_typed then
    s.push = function(batch, n, t)
      s.records = s.records + n
      return push(batch, n, t)
    end
    return s
  end
  if s.encodes_typed then
    local views, cap = nil, 0
    s.push = function(batch, n, t)
      s.records = s.records + n
      if n > cap then cap = n; views = views_ct(n) end
      if split_batch(batch, n, views) then return push(batch, n, t, views) end
      return push(batch, n, t)
    end
    return s
  end
  s.push = function(batch, n, t)     -- t: the records' event times, if the stream has them
    s.records = s.records + n
    if plain then plain_batch(batch, n) end
    return push(batch, n, t)
  end
  return s
end

return sink
