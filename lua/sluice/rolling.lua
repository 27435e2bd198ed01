-- rolling.lua -- the rolling operators on a keyed stream: reduce and aggregate without a
-- window, which send the key's new result for each record.
--
-- Each keeps one accumulator per key (a Lua value for reduce, slots of the C aggregate
-- pool through agg.lua for aggregate) and is an operator as operator.lua describes it.
local agg = require "sluice.agg"
local keyed = require "sluice.keyed"
local plain = require("sluice.typed").plain

local type, pairs, ipairs, huge = type, pairs, ipairs, math.huge
local key_of, shallow_copy = keyed.key_of, keyed.shallow_copy

local rolling = {}

-- aggregate(spec) without a window: for each record, the key's updated aggregates.
function rolling.aggregate(node, out)
  local a = agg.compile(node.aggregates)
  local key = key_of(node)
  local accs = {}
  local op = { wm = -huge, next_due = huge }
  local seq = 0
  function op.step(r, t)
    seq = seq + 1
    local k = key(r)
    local acc = accs[k]
    if not acc then acc = a.fresh(); accs[k] = acc end
    a.update(acc, r, t or seq)
    local res = { key = k }
    a.result(acc, res)
    out(1, res, t)
  end
  function op.advance(wm) op.wm = wm end
  function op.snapshot()
    local all = {}
    for k, acc in pairs(accs) do all[#all + 1] = { k, a.save(acc) } end
    return { wm = op.wm, seq = seq, accs = all }
  end
  function op.restore(snap)
    op.wm, seq = snap.wm, snap.seq
    for _, e in ipairs(snap.accs) do accs[e[1]] = a.load(e[2]) end
  end
  function op.handover()
    local live = { wm = op.wm, seq = seq, accs = accs, storage = a.handover() }
    accs = {}
    return live
  end
  function op.adopt(live)
    -- the slots in accs name records of the old pool: the new code keeps that pool
    a.close()
    a = agg.compile(node.aggregates, live.storage)
    op.wm, seq, accs = live.wm, live.seq, live.accs
  end
  function op.inspect(k)
    if accs[k] == nil then return nil end
    local res = { key = k }
    a.result(accs[k], res)
    return res
  end
  function op.keys()
    local list = {}
    for k in pairs(accs) do list[#list + 1] = k end
    return list
  end
  function op.close() a.close() end
  return op
end

-- reduce(f) without a window: the key's accumulator f(acc, r) for each record (the first
-- record is the first accumulator). What goes out is a copy, so a function that changes
-- acc in place does not change records already emitted.
function rolling.reduce(node, out)
  local f = node.fn
  local key = key_of(node)
  local accs = {}
  local op = { wm = -huge, next_due = huge }
  function op.step(r, t)
    local k = key(r)
    local acc = accs[k]
    if acc == nil then acc = plain(r) else acc = plain(f(acc, r)) end
    accs[k] = acc
    out(1, type(acc) == "table" and shallow_copy(acc) or acc, t)
  end
  function op.advance(wm) op.wm = wm end
  function op.snapshot()
    local all = {}
    for k, acc in pairs(accs) do all[#all + 1] = { k, acc } end
    return { wm = op.wm, accs = all }
  end
  function op.restore(snap)
    op.wm = snap.wm
    for _, e in ipairs(snap.accs) do accs[e[1]] = e[2] end
  end
  function op.handover()
    local live = { wm = op.wm, accs = accs }
    accs = {}
    return live
  end
  function op.adopt(live) op.wm, accs = live.wm, live.accs end
  function op.inspect(k) return accs[k] end
  function op.keys()
    local list = {}
    for k in pairs(accs) do list[#list + 1] = k end
    return list
  end
  function op.close() end
  return op
end

return rolling
