-- tests/operators.lua -- what the specs of single operators share (scan, dedupe, changes,
-- batch): running a pipeline over records at a batch size, and a snapshot as a checkpoint
-- file gives it back; and what the specs driving keyed operators record by record share
-- (key_state, restore_keep): the events, the operator, its outputs as texts, the driving.
-- Specs do `local ops = require "tests.operators"`.
local sl = require "sluice"
local runtime = require "sluice.runtime"
local graph = require "sluice.graph"
local checkpoint = require "sluice.checkpoint"
local operator = require "sluice.operator"
local host = require "sluice.host"

local ops = {}

-- Runs build(source of `records`) into a collect sink with batches of `batch` records, its
-- dead letters into another; returns both sinks' records.
function ops.run(records, build, batch)
  graph.begin()
  runtime.defaults.batch_size = batch
  local out, dead = sl.sink.collect(), sl.sink.collect()
  build(sl.source.values(records)):sink(out)
  local ok, err = runtime.run(graph.ancestors({ out.node }), { dead_letter = dead })
  runtime.defaults.batch_size = 1024
  assert(ok, err)
  return out:records(), dead:records()
end

-- snap as a checkpoint file gives it back.
function ops.as_on_disk(snap)
  return assert(checkpoint.decode(checkpoint.encode({ version = 1, op = snap }))).op
end

-- What msgpack gives back of v, as a checkpoint encodes it (infinities allowed): new
-- tables, so that no two operators share state.
function ops.through_msgpack(v) return sl.msgpack.decode(host.core.durable.encode(v)) end

-- n events: times rising by up to 900 ms, each shifted back by up to ooo (never late: an
-- event's watermark is the largest time so far - ooo, its own included), values 1..9,
-- the key of event i key_of(i). side2: the share of events on side 2 (a join's right
-- input, a lookup's table), nil: one input. The same seed gives the same events.
function ops.events(seed, n, ooo, key_of, side2)
  math.randomseed(seed)
  local events, t, max = {}, 1000000, -math.huge
  for i = 1, n do
    t = t + math.random(0, 900)
    local ts = t - math.random(0, ooo)
    if ts > max then max = ts end
    local k = key_of(i)
    local side = side2 and (math.random() < side2 and 2 or 1) or nil
    events[i] = { r = { k = k, ts = ts, v = math.random(1, 9), i = i }, t = ts, side = side,
      key = k, wm = max - ooo }
  end
  return events
end

-- A value as text, tables with their fields sorted, for comparing outputs.
function ops.show(v)
  if type(v) ~= "table" then return tostring(v) end
  local names = {}
  for name in pairs(v) do names[#names + 1] = name end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for i, name in ipairs(names) do parts[i] = tostring(name) .. "=" .. ops.show(v[name]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- A new operator of node, as the shell makes one (a dead letter is an error). What it
-- sends goes to got as texts "port@time{fields}": with c.key, each key's in order under
-- got[c.key(record)]; without, all in order.
function ops.new_op(c, node, got)
  local function out(port, r, t)
    local list = got
    if c.key then
      local k = c.key(r)
      list = got[k]
      if not list then list = {}; got[k] = list end
    end
    list[#list + 1] = port .. "@" .. tostring(t) .. ops.show(r)
  end
  return operator.kinds[node.kind](node, out, { dead_letter = function(reason) error(reason) end })
end

-- Feeds events from..to to op as the shell does: each event's watermark first, unless
-- held (hold_from: from that event on, no watermark), then the record if keep (nil: any)
-- takes its key (c.all: the operator's one key, true). Each record is a copy: no run sees
-- another's tables.
function ops.drive(c, op, events, from, to, keep, hold_from)
  for i = from, to do
    local e = events[i]
    if not (hold_from and i >= hold_from) and e.wm > op.wm then
      if e.wm >= op.next_due then op.advance(e.wm) else op.wm = e.wm end
    end
    if keep == nil or keep(c.all or e.key) then
      local r = {}
      for name, x in pairs(e.r) do r[name] = x end
      op.step(r, e.t, e.side)
    end
  end
end

function ops.close(op) if op.close then op.close() end end

return ops
