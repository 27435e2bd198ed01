-- typed.lua -- typed records: FFI struct views a source fills in C, and their table form.
--
-- A typed record is a view (a cdata reference) into a buffer its source refills for every
-- batch: reading its fields costs no allocation, and inside a fused stage loop LuaJIT
-- keeps it in registers. It is valid while its batch passes through the graph, so
-- whatever keeps a record longer (sinks that encode or collect, window and keyed state,
-- dead letters, taps) keeps its table form, made here by plain(). Sources register their
-- view types with register(ctype, to_table).
local ffi = require "ffi"

local type, istype = type, ffi.istype

local typed = {}

local kinds, nkinds = {}, 0     -- { ctype, to_table } of every registered view type

-- Registers a view type: to_table(v) returns the table form of a view v of ctype ct
-- (a new table the caller owns; nested views become nested tables).
function typed.register(ct, to_table)
  nkinds = nkinds + 1
  kinds[nkinds] = { ct, to_table }
end

-- v itself, or, when v is a registered typed record, its table form.
local function plain(v)
  if type(v) ~= "cdata" then return v end
  for i = 1, nkinds do
    local k = kinds[i]
    if istype(k[1], v) then return k[2](v) end
  end
  return v
end
typed.plain = plain

-- Replaces every typed record of batch[1..n] by its table form, in place.
function typed.plain_batch(batch, n)
  if nkinds == 0 then return end
  for i = 1, n do
    local r = batch[i]
    if type(r) == "cdata" then batch[i] = plain(r) end
  end
end

-- Whether a keyed or window operator may be handed typed records as they are: it keeps
-- only values read from them (aggregates of numbers over fields: count, sum, min, max,
-- avg, distinct, quantile) or copies what it keeps (reduce, see window.lua). Any other
-- operator gets the table form (a key function or a process may keep the record itself).
local keeps_no_record = { count = true, sum = true, min = true, max = true, avg = true,
  distinct = true, quantile = true }
function typed.views_safe_in(node)
  if node.key_fn and not node.key_field then return false end
  local computes = node.computes or node.kind
  if computes == "reduce" or computes == "rolling_reduce" then return true end
  if computes ~= "aggregate" and computes ~= "rolling_aggregate" then return false end
  for _, e in ipairs(node.aggregates or {}) do
    if e.agg.fn or not keeps_no_record[e.agg.aggregate] then return false end
  end
  return true
end

return typed
