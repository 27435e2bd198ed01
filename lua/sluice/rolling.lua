-- rolling.lua -- the rolling operators on a keyed stream: reduce and aggregate without a
-- window, which send the key's new result for each record.
--
-- Each keeps one accumulator per key (a Lua value for reduce, slots of the C aggregate
-- pool through agg.lua for aggregate) and is an operator as operator.lua describes it.
-- With ttl(d) (node.ttl), a key's accumulator is freed once it has gone d without a
-- record (expiry.lua); its next record starts it afresh.
local agg = require "sluice.agg"
local expiry = require "sluice.expiry"
local keyed = require "sluice.keyed"
local typed = require "sluice.typed"
local plain, plain_kept = typed.plain, typed.plain_kept

local type, pairs, ipairs, huge = type, pairs, ipairs, math.huge
local key_of, shallow_copy, merged_wm = keyed.key_of, keyed.shallow_copy, keyed.merged_wm

local rolling = {}

local function count_keys(t)
  local c = 0
  for _ in pairs(t) do c = c + 1 end
  return c
end

-- aggregate(spec) without a window: for each record, the key's updated aggregates.
function rolling.aggregate(node, out)
  local a = agg.compile(node.aggregates)
  local key = key_of(node)
  local accs = {}
  local nkeys = 0               -- keys in accs (op.live_keys)
  local op = { wm = -huge, next_due = huge }
  local seq = 0
  local ex = node.ttl and expiry.new(op, node.ttl, node.ttl_clock, function(k)
    a.free(accs[k])
    accs[k] = nil
    nkeys = nkeys - 1
  end, function(room) accs = expiry.copy(accs, room) end)
  function op.step(r, t)
    seq = seq + 1
    local k = key(r)
    local u = ex and ex.now(t)
    local acc = accs[k]
    if not acc then acc = a.fresh(); accs[k] = acc; nkeys = nkeys + 1 end
    -- noted before the update, which may raise: a key with state always has an entry
    local due_now = ex and ex.touch(k, u)
    a.update(acc, r, t or seq)
    local res = { key = k }
    a.result(acc, res)
    out(1, res, t)
    if due_now then op.next_due = ex.advance(op.wm) end
  end
  function op.advance(wm)
    if ex then op.next_due = ex.advance(wm) end
    op.wm = wm
  end
  function op.snapshot()
    local all = {}
    for k, acc in pairs(accs) do
      local e = { k, a.save(acc) }
      if ex then e[3], e[4] = ex.saved(k) end
      all[#all + 1] = e
    end
    return { wm = op.wm, seq = seq, accs = all, updates = ex and ex.updates() }
  end
  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    if snap.seq > seq then seq = snap.seq end
    if ex then ex.set_updates(snap.updates) end
    for _, e in ipairs(snap.accs) do
      local k = e[1]
      if keep == nil or keep(k) then
        -- keys of several snapshots are disjoint: one that comes again replaces its state
        if accs[k] then a.free(accs[k]) else nkeys = nkeys + 1 end
        accs[k] = a.load(e[2])
        if ex then ex.restore(k, e[3], e[4]) end
      end
    end
  end
  function op.handover()
    local live = { wm = op.wm, seq = seq, accs = accs, storage = a.handover(), keys = nkeys,
      expiry = ex and ex.handover() }
    accs, nkeys = {}, 0
    return live
  end
  function op.adopt(live)
    -- the slots in accs name records of the old pool: the new code keeps that pool
    a.close()
    a = agg.compile(node.aggregates, live.storage)
    op.wm, seq, accs = live.wm, live.seq, live.accs
    nkeys = live.keys or count_keys(accs)
    if ex then ex.adopt(live.expiry, accs) else expiry.discard(live.expiry) end
  end
  function op.inspect(k)
    if accs[k] == nil then return nil end
    local res = { key = k }
    a.result(accs[k], res)
    return res
  end
  function op.keys() return keyed.keys_of(accs) end
  function op.live_keys() return nkeys end
  function op.close()
    a.close()
    if ex then ex.close() end
  end
  return op
end

-- reduce(f) without a window: the key's accumulator f(acc, r) for each record (the first
-- record is the first accumulator). What goes out is a copy, so a function that changes
-- acc in place does not change records already emitted.
function rolling.reduce(node, out)
  local f = node.fn
  local key = key_of(node)
  local accs = {}
  local nkeys = 0               -- keys in accs (op.live_keys)
  local op = { wm = -huge, next_due = huge }
  local ex = node.ttl and expiry.new(op, node.ttl, node.ttl_clock, function(k)
    if accs[k] ~= nil then accs[k] = nil; nkeys = nkeys - 1 end
  end, function(room) accs = expiry.copy(accs, room) end)
  -- keys whose accumulator f returned as a table in this batch: it may hold views (r,
  -- r.user), looked for once at the batch's end (op.settle) rather than after every record
  local unsettled, n_unsettled, is_unsettled = {}, 0, {}
  function op.settle()
    for i = 1, n_unsettled do
      local k = unsettled[i]
      unsettled[i], is_unsettled[k] = nil, nil
      local acc = accs[k]
      if acc ~= nil then accs[k] = plain_kept(acc) end
    end
    n_unsettled = 0
  end
  function op.step(r, t)
    local k = key(r)
    local u = ex and ex.now(t)
    local acc = accs[k]
    if acc == nil then
      acc = plain(r)
      nkeys = nkeys + 1
    else
      acc = f(acc, r)
      if type(acc) ~= "table" then
        acc = plain(acc)
        if acc == nil then nkeys = nkeys - 1 end    -- f(acc, r) == nil: the key starts afresh
      elseif not is_unsettled[k] and typed.running > 0 then
        is_unsettled[k] = true
        n_unsettled = n_unsettled + 1
        unsettled[n_unsettled] = k
      end
    end
    accs[k] = acc
    -- noted once the update is through (f may raise): the key has state from here on
    local due_now = ex and ex.touch(k, u)
    out(1, type(acc) == "table" and shallow_copy(acc) or acc, t)
    if due_now then op.next_due = ex.advance(op.wm) end
  end
  function op.advance(wm)
    if ex then op.next_due = ex.advance(wm) end
    op.wm = wm
  end
  function op.snapshot()
    local all = {}
    for k, acc in pairs(accs) do
      local e = { k, acc }
      if ex then e[3], e[4] = ex.saved(k) end
      all[#all + 1] = e
    end
    return { wm = op.wm, accs = all, updates = ex and ex.updates() }
  end
  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    if ex then ex.set_updates(snap.updates) end
    for _, e in ipairs(snap.accs) do
      local k = e[1]
      if keep == nil or keep(k) then
        if accs[k] == nil then nkeys = nkeys + 1 end
        accs[k] = e[2]
        if ex then ex.restore(k, e[3], e[4]) end
      end
    end
  end
  function op.handover()
    local live = { wm = op.wm, accs = accs, keys = nkeys, expiry = ex and ex.handover() }
    accs, nkeys = {}, 0
    return live
  end
  function op.adopt(live)
    op.wm, accs = live.wm, live.accs
    nkeys = live.keys or count_keys(accs)
    if ex then ex.adopt(live.expiry, accs) else expiry.discard(live.expiry) end
  end
  function op.inspect(k) return accs[k] end
  function op.keys() return keyed.keys_of(accs) end
  function op.live_keys() return nkeys end
  function op.close() if ex then ex.close() end end
  return op
end

return rolling
