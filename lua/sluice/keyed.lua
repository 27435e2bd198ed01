-- keyed.lua -- what the keyed operators share: the key of a record, and a table's copy.
--
-- Windows (window.lua), the rolling operators (rolling.lua), process (process.lua) and
-- scan, dedupe, changes and batch each keep their state per key, found by key_of(node);
-- reduce and scan hand out copies of their accumulator (shallow_copy), so that user code
-- changing it changes nothing sent, and scan gives each key its own copy of the initial
-- value (deep_copy). Each operator's restore(snap, keep) may merge several snapshots
-- (restore_all), with the watermark rule of merged_wm.
local format, pairs, type, tostring = string.format, pairs, type, tostring

local keyed = {}

-- The key function of a keyed operator: a field read, or the user's function. A nil key
-- is an error on that record (it goes to the dead letters), not a crash.
function keyed.key_of(node)
  local field, fn = node.key_field, node.key_fn
  if not fn then return function() return true end end     -- window_all: one key
  if field then
    return function(r)
      local k = r[field]
      if k == nil then error(format("key_by: the record has no %q (nil key)", field), 0) end
      return k
    end
  end
  return function(r)
    local k = fn(r)
    if k == nil then error("key_by: the key function returned nil", 0) end
    return k
  end
end

-- A new table with t's fields; the values themselves are not copied.
function keyed.shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- A copy of v in which every table is new, down to 16 levels (deeper tables are shared);
-- other values are returned as they are.
local function deep_copy(v, depth)
  if type(v) ~= "table" or depth > 16 then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = deep_copy(x, depth + 1) end
  return c
end
function keyed.deep_copy(v) return deep_copy(v, 0) end

-- The keys of table t, as an array in any order: an operator's op.keys().
function keyed.keys_of(t)
  local list = {}
  for k in pairs(t) do list[#list + 1] = k end
  return list
end

-- Sends on port 1 of out (the operator protocol's out(port, record, time)) what a user
-- function returned for one result: a record, an array of records, or nil (nothing).
function keyed.send_results(out, res, t)
  if type(res) ~= "table" then
    if res ~= nil then out(1, res, t) end
  elseif res[1] ~= nil then
    for i = 1, #res do out(1, res[i], t) end
  else
    out(1, res, t)
  end
end

-- Keys of any type in one order: by type name, then by value (tostring for what has no <),
-- so that what several keys do at one time comes out in an order timing cannot change.
function keyed.key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- ---- restores that filter and merge -------------------------------------------------
-- With workers, a checkpoint holds one snapshot of an operator per worker, and a new
-- worker restores every old worker's snapshot of it, keeping the keys it owns now
-- (operator.lua: restore(snap, keep)).

-- Restores each snapshot of `snaps` into op, in order, keeping the keys keep(k) accepts
-- (keep nil: every key).
function keyed.restore_all(op, snaps, keep)
  for i = 1, #snaps do op.restore(snaps[i], keep) end
end

-- The watermark of an operator that restores a snapshot taken at watermark `wm`: that
-- watermark for the first snapshot restored into it (`first`), else the smaller of the
-- two. Never more than any snapshot's: a key's state would find the windows and timers
-- its own operator had not fired yet treated as past.
function keyed.merged_wm(cur, wm, first)
  if first or wm < cur then return wm end
  return cur
end

return keyed
