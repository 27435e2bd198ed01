-- source.lua -- the sources of the contract: what a script declares, and how it runs.
--
-- sl.source.X{...} checks its options at the user's line and returns a stream on a new
-- source node. At run time, source.open turns the node's spec into a running source that
-- pushes batches downstream: values and generator from a libuv idle handle, file and stdin
-- through the host's reader, which frames and decodes in C.
local graph = require "sluice.graph"
local report = require "sluice.report"
local stream = require "sluice.stream"
local host = require "sluice.host"

local core = host.core
local type, format, floor, min = type, string.format, math.floor, math.min
local fail, where = report.fail, report.where

local source = {}

local formats = { lines = true, json = true, csv = true, msgpack = true }

local function new_source(spec)
  spec.where = where()
  local node = graph.node("source", {}, { spec = spec, label = spec.label, where = spec.where })
  return stream.new(node, 1)
end

local function want_table(m, opts)
  if type(opts) ~= "table" then
    fail(format("%s: expected an options table, got %s", m, type(opts)))
    return {}
  end
  return opts
end

local function want_format(m, opts)
  local f = opts.format or "lines"
  if not formats[f] then
    fail(format("%s: unknown format %q (lines, json, csv, msgpack)", m, tostring(f)))
  end
  return f
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
  opts = want_table("source.file()", opts)
  if type(opts.path) ~= "string" then
    fail("source.file(): path is required (a string)")
  end
  if opts.follow then
    fail("source.file(): follow=true is not implemented in this version of sluice")
  end
  return new_source { type = "file", path = opts.path, format = want_format("source.file()", opts),
    header = opts.header, label = "source.file " .. tostring(opts.path) }
end

function source.stdin(opts)
  opts = opts or {}
  opts = want_table("source.stdin()", opts)
  return new_source { type = "stdin", format = want_format("source.stdin()", opts),
    header = opts.header, label = "source.stdin" }
end

function source.generator(opts)
  opts = want_table("source.generator()", opts)
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

-- Sources of later issues: declared, so that a script using them gets a clear message.
local function not_yet(name)
  return function()
    fail(format("%s: not implemented in this version of sluice", name))
    return new_source { type = "values", array = {}, label = name }
  end
end
source.tcp = not_yet("source.tcp()")
source.udp = not_yet("source.udp()")
source.nexmark = not_yet("source.nexmark()")

-- ---- running --------------------------------------------------------------------------
--
-- source.open(spec, ctx) starts a source. ctx supplies:
--   ctx.batch_size           records per batch
--   ctx.push(batch, n)       hands a batch downstream; returns true when every consumer
--                            is done (a take() reached its count), so the source may stop
--   ctx.bad(info)            a malformed input record (info as the reader's on_bad)
--   ctx.user_error(e, i)     fn raised on record i (generator)
--   ctx.ended()              the source has no more records
-- It returns { close = function() } to stop it early.

local open = {}

-- An idle handle that calls produce() once per loop turn until it returns false.
local function idle_loop(ctx, produce)
  local handle
  local running = true
  local function stop()
    if running then
      running = false
      handle:close()
      ctx.ended()
    end
  end
  handle = core.idle(function()
    if not produce() then stop() end
  end)
  return { close = stop, idle = handle }
end

function open.values(spec, ctx)
  local array, i, batch, size = spec.array, 1, {}, ctx.batch_size
  local total = #array
  return idle_loop(ctx, function()
    local n = min(size, total - i + 1)
    if n <= 0 then return false end
    for k = 1, n do batch[k] = array[i + k - 1] end
    i = i + n
    return not ctx.push(batch, n) and i <= total
  end)
end

-- Generators run user code to make records, so each batch runs protected: if fn raises
-- on index i, that index is dead-lettered and the batch goes on from i + 1.
function open.generator(spec, ctx)
  local fn, count, rate, size = spec.fn, spec.count, spec.rate, ctx.batch_size
  local batch, nb, cur = {}, 0, 0
  local next_i = 1
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
        timer = timer or core.timer(function() handle.idle:start() end)
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
  return handle
end

local function open_reader(spec, ctx, target)
  local reader
  local done = false
  local function finish()
    if not done then
      done = true
      reader:close()
      ctx.ended()
    end
  end
  target.format = spec.format
  target.header = spec.header
  target.batch = ctx.batch_size
  target.on_batch = function(batch, n)
    if ctx.push(batch, n) then finish() end
  end
  target.on_bad = ctx.bad
  target.on_end = function(err)
    if err then error(err, 0) end
    finish()
  end
  reader = core.reader(target)
  reader:start()
  return { close = finish }
end

function open.file(spec, ctx) return open_reader(spec, ctx, { path = spec.path }) end
function open.stdin(spec, ctx) return open_reader(spec, ctx, { fd = 0 }) end

function source.open(spec, ctx)
  return open[spec.type](spec, ctx)
end

return source
