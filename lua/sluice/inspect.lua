-- inspect.lua -- looking inside a running job: per-operator metrics, taps on an operator's
-- output, and a keyed operator's state for a key (sluice attach, sluice top).
--
-- Every function takes the job (runtime.new) and reads it between two batches: the loop
-- runs one callback at a time, so what it sees is at rest.
local host = require "sluice.host"

local format = string.format

local inspect = {}

-- The receiver whose output is operator `name`'s (named operators end their stage), and
-- its node.
local function named(job, name)
  assert(job and job.graph, "no job is running")
  local g = job.graph
  for _, node in ipairs(g.nodes) do
    if node.name == name or node.state_id == name then
      for _, r in pairs(g.receiver) do
        if r.meter and r.meter.node == node then return r, node end
      end
      error(format("operator %q has no output of its own to look at", name), 0)
    end
  end
  error(format("no operator is named %q (see job:graph())", name), 0)
end

-- Per operator output: records out, records/s since the start, errors, watermark and its
-- lag behind the wall clock; then the rows the job's metrics hooks add (checkpoints).
function inspect.metrics(job)
  assert(job and job.graph, "no job is running")
  local list, elapsed, now = {}, host.clock() - job.started, host.now_ms()
  for _, r in pairs(job.graph.receiver) do
    local m = r.meter
    if m then
      list[#list + 1] = { operator = m.node.name or m.node.state_id, kind = m.node.kind,
        records_out = m.out, rate = elapsed > 0 and math.floor(m.out / elapsed) or 0,
        errors = m.errors, watermark = m.wm,
        watermark_lag_ms = m.wm and m.wm > -math.huge and m.wm < math.huge and now - m.wm or nil }
    end
  end
  for _, row in ipairs(job:hook_rows("metrics")) do list[#list + 1] = row end
  table.sort(list, function(a, b) return a.operator < b.operator end)
  return list
end

-- Makes meter.tap show each batch to the meter's taps, until none is left.
local function arm(meter)
  meter.tap = function(b, k)
    for t in pairs(meter.taps) do
      for i = 1, k do
        if t.left <= 0 then break end
        t.left = t.left - 1
        t.fn(b[i])
      end
      if t.left <= 0 then meter.taps[t] = nil end
    end
    if next(meter.taps) == nil then meter.tap = nil end
  end
end

-- Calls on_record(r) for the next n records operator `name` emits, then stops tapping.
-- Several taps on one operator each see every record; a tap outlives a reload that keeps
-- the operator. Returns a function that cancels it.
function inspect.tap(job, name, n, on_record)
  local r = named(job, name)
  local meter = r.meter
  meter.taps = meter.taps or {}
  local tap = { left = n or 10, fn = on_record, meter = meter }
  meter.taps[tap] = true
  arm(meter)
  return function()
    local m = tap.meter
    if m.taps then
      m.taps[tap] = nil
      if next(m.taps) == nil then m.tap = nil end
    end
  end
end

-- After a reload from graph `old` to graph `g`: each output of the new graph continues the
-- counts of the old output of the same id, and takes over its taps.
function inspect.carry_meters(old, g)
  local by_id = {}
  for _, r in pairs(old.receiver) do
    if r.meter then by_id[r.meter.node.state_id] = r.meter end
  end
  for _, r in pairs(g.receiver) do
    local m = r.meter
    local o = m and by_id[m.node.state_id]
    if o then
      m.out, m.errors, m.wm = o.out, o.errors, o.wm
      if o.taps and next(o.taps) ~= nil then
        m.taps = o.taps
        for t in pairs(m.taps) do t.meter = m end
        arm(m)
        o.taps, o.tap = nil, nil
      end
    end
  end
end

-- Operator `name`'s state for `key` (a plain value), or nil when the key has none.
function inspect.state(job, name, key)
  local r = named(job, name)
  if not (r.op and r.op.inspect) then
    error(format("operator %q keeps no keyed state", name), 0)
  end
  return r.op.inspect(key)
end

return inspect
