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

-- n records { k, v, ts, i } for the window specs: times rising by up to 900 ms; "ordered"
-- as they rise, "disordered" each shifted back by up to ooo, "stragglers" also 5 % of them
-- by ooo to 40 s (late); keys k1..k`keys` (5 unless given), values -50..100.
function ops.window_records(mode, n, seed, keys, ooo)
  math.randomseed(seed)
  local out, t = {}, 1000000
  for i = 1, n do
    t = t + math.random(0, 900)
    local ts = t
    if mode == "disordered" then ts = t - math.random(0, ooo)
    elseif mode == "stragglers" then
      ts = t - math.random(0, ooo)
      if math.random() < 0.05 then ts = t - math.random(ooo, 40000) end
    end
    out[i] = { k = "k" .. math.random(1, keys or 5), v = math.random(-50, 100), ts = ts, i = i }
  end
  return out
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

-- What the cases of keyed operators are made of: src() an event-time source (out of
-- orderness ooo) of records { k, ts, v, i }, by(s) s keyed by k, pair(l, r) a join's
-- output, rk / rkey / whole the key of an output record (its k, its key, the one key).
function ops.case_parts(ooo)
  return {
    src = function() return sl.source.values({}):timestamp("ts", { out_of_orderness = ooo }) end,
    by = function(s) return s:key_by("k") end,
    pair = function(l, r) return { k = l.k, l = l.i, r = r and r.i } end,
    rk = function(r) return r.k end,
    rkey = function(r) return r.key end,
    whole = function() return true end,
  }
end

-- Keyed operators of the kinds both key_state_spec and restore_keep_spec run, by name:
-- { name, node builder (event time with out of orderness ooo), the key of an output
-- record, share of records on side 2 (nil: one input), true when the operator has one
-- key }, the case entries of those specs.
function ops.keyed_cases(ooo)
  local parts = ops.case_parts(ooo)
  local src, by, pair, rk, rkey, whole = parts.src, parts.by, parts.pair, parts.rk, parts.rkey,
    parts.whole
  local function looked_up(r, row) return { k = r.k, i = r.i, row = row and row.i } end
  local list = {
    { "tumbling window aggregate", function()
      return by(src()):window(sl.tumbling "5s"):aggregate { n = sl.count(), s = sl.sum "v",
        f = sl.first "v" }.node end, rkey },
    { "sliding window aggregate", function()
      return by(src()):window(sl.sliding("6s", "2s")):aggregate { lo = sl.min "v",
        hi = sl.max "v", l = sl.last "v" }.node end, rkey },
    { "sliding window apply", function()
      return by(src()):window(sl.sliding("4s", "2s")):apply(function(k, w, list)
        local ids = {}
        for i, r in ipairs(list) do ids[i] = r.i end
        table.sort(ids)
        return { key = k, ws = w.window_start, ids = table.concat(ids, ",") }
      end).node end, rkey },
    { "session window aggregate", function()
      return by(src()):window(sl.session "2s"):aggregate { n = sl.count(), s = sl.sum "v" }.node
      end, rkey },
    { "window_all aggregate", function()
      return src():window_all(sl.tumbling "4s"):aggregate { n = sl.count(), s = sl.sum "v" }
        .node end, whole, nil, true },
    { "rolling aggregate", function()
      return by(src()):aggregate { n = sl.count(), s = sl.sum "v", l = sl.last "v" }.node
      end, rkey },
    { "rolling aggregate, ttl", function()
      return by(src()):aggregate { n = sl.count(), s = sl.sum "v" }:ttl("4s").node end, rkey },
    { "rolling reduce, ttl", function()
      return by(src()):reduce(function(a, r) return { k = a.k, v = a.v + r.v } end):ttl("4s")
        .node end, rk },
    { "tumbling window join", function()
      return by(src()):join(by(src())):window(sl.tumbling "5s"):apply(pair).node end, rk, 0.5 },
    { "sliding window left join", function()
      return by(src()):left_join(by(src())):window(sl.sliding("6s", "2s")):apply(pair).node
      end, rk, 0.5 },
    { "window cogroup", function()
      return by(src()):join(by(src())):window(sl.tumbling "4s"):cogroup(function(k, w, ls, rs)
        return { k = k, ws = w.window_start, nl = #ls, nr = #rs }
      end).node end, rk, 0.5 },
    { "session window left join", function()
      return by(src()):left_join(by(src())):window(sl.session "2s"):apply(pair).node
      end, rk, 0.5 },
    { "interval left join", function()
      return by(src()):left_join(by(src())):between("-2s", "1s"):apply(pair).node end, rk, 0.5 },
    { "ttl left join", function()
      return by(src()):left_join(by(src())):ttl("1500ms"):apply(pair).node end, rk, 0.5 },
    { "temporal lookup, deletions", function()
      return by(src()):lookup(by(src()):as_table { deleted = function(row) return row.v == 9 end },
        looked_up).node end, rk, 0.3 },
    { "lookup without event time", function()
      return by(sl.source.values({})):lookup(by(sl.source.values({})):as_table(), looked_up).node
      end, rk, 0.3 },
    { "scan", function()
      return by(src()):scan(function(acc, r) return { k = r.k, n = acc.n + 1, s = acc.s + r.v } end,
        { n = 0, s = 0 }).node end, rk },
    { "dedupe", function() return by(src()):dedupe("v", "3s").node end, rk },
    { "dedupe, not keyed", function() return src():dedupe("v", "2s").node end, whole, nil, true },
    { "changes", function()
      return by(src()):changes(function(r) return r.v % 3 end).node end, rk },
  }
  local cases = {}
  for _, case in ipairs(list) do cases[case[1]] = case end
  -- a misspelt name would end a spec's list there (ipairs stops at nil)
  return setmetatable(cases, { __index = function(_, name)
    error("tests.operators: no keyed case named " .. tostring(name), 2)
  end })
end

return ops
