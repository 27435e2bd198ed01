-- dedupe.lua -- dedupe(f, within) on any stream: drops a record whose value f(r) was let
-- through within `within` of its time, an operator as operator.lua describes it.
--
-- Per key and value on a keyed stream, per value otherwise (key_of gives every record the
-- key true). The time is the record's event time, or, on a stream without, the wall clock
-- when the record came (wall, not monotonic: a checkpoint taken before a restart must
-- still mean the same instants after it). What it keeps is the time of each record it let
-- through, an anchor, until the watermark (the clock) reaches anchor + within: the
-- anchors wait in a C timer queue (host/timeq.c) by that time, as process.lua's timers.
local host = require "sluice.host"
local keyed = require "sluice.keyed"
local plain = require("sluice.typed").plain

local ffi = require "ffi"
local C = host.C
local type, pairs, ipairs, tonumber, huge = type, pairs, ipairs, tonumber, math.huge
local format, remove = string.format, table.remove
local key_of, merged_wm = keyed.key_of, keyed.merged_wm

local dedupe = {}

-- The rule, per key and value v: a record at time t is dropped when an anchor a of v is
-- held with |t - a| < within (so a record at exactly a + within passes, and one earlier
-- than an anchor is dropped when it is as close); otherwise it goes on and t becomes an
-- anchor of v. Dropped records make no anchor: v is let through at most once per
-- `within`. An anchor is freed once the watermark reaches a + within; a record at or
-- above the watermark could not be within of it any more, so for every record that is
-- not behind its watermark the result is exact: it passes if and only if no record of v
-- let through before it (in arrival order) lies less than `within` from it. A record
-- behind the watermark may find an anchor already freed, and pass.
--
-- Anchors of one value are >= within apart, so a value holds one anchor unless records
-- come out of order by more than within: one anchor is a number, more are an array.
function dedupe.new(node, out)
  local f, within, field = node.fn, node.within, node.field
  local key = key_of(node)
  local seen = {}               -- key -> { value -> anchor time, or array of them }
  local held = {}               -- key -> how many values it holds (next() on a table
                                -- emptied from the front walks its dead slots)
  local live = 0                -- values (of all keys) holding an anchor
  local id_key, id_val = {}, {} -- queue id -> its anchor's key and value (the queue has
                                -- its time + within)
  local next_id = 0
  local due = C.sl_timeq_new()
  local pt, pid = ffi.new("double[1]"), ffi.new("int64_t[1]")
  local now_ms = host.now_ms    -- read here, so that a spec can give an operator its clock
  local last_clock = -huge      -- the clock never goes back here, even if the wall does
  local op = { wm = -huge, next_due = huge }

  local function hold(k, v, t)
    local vals = seen[k]
    if vals == nil then vals = {}; seen[k] = vals; held[k] = 0 end
    local a = vals[v]
    if a == nil then
      vals[v] = t
      held[k] = held[k] + 1
      live = live + 1
    elseif type(a) == "number" then
      vals[v] = { a, t }
    else
      a[#a + 1] = t
    end
    next_id = next_id + 1
    id_key[next_id], id_val[next_id] = k, v
    local d = t + within
    C.sl_timeq_push(due, d, next_id)
    if d < op.next_due then op.next_due = d end
  end

  -- Frees the anchor of k's value v that is due at `d` (its time + within: the same sum,
  -- so equal to the bit).
  local function release(k, v, d)
    local vals = seen[k]
    local a = vals[v]
    if type(a) == "number" then
      vals[v] = nil
      live = live - 1
      local left = held[k] - 1
      if left == 0 then seen[k], held[k] = nil, nil else held[k] = left end
      return
    end
    for i = 1, #a do
      if a[i] + within == d then remove(a, i); break end
    end
    if #a == 1 then vals[v] = a[1] end
  end

  -- Frees the anchors due by `now` (a watermark, or the clock).
  local function expire(now)
    while C.sl_timeq_len(due) > 0 and C.sl_timeq_peek_time(due) <= now do
      C.sl_timeq_pop(due, pt, pid)
      local id = tonumber(pid[0])
      release(id_key[id], id_val[id], pt[0])
      id_key[id], id_val[id] = nil, nil
    end
    op.next_due = C.sl_timeq_peek_time(due)
  end

  local function clock()
    local now = now_ms()
    if now < last_clock then now = last_clock end
    last_clock = now
    return now
  end

  local function near(a, t)
    for i = 1, #a do
      local d = t - a[i]
      if d < within and d > -within then return true end
    end
    return false
  end

  function op.step(r, t)
    local k = key(r)
    local v = f(r)
    if v == nil or v ~= v then
      if field then error(format("dedupe(): the record's %q is %s", field, tostring(v)), 0) end
      error(format("dedupe(): f returned %s", tostring(v)), 0)
    end
    if type(v) == "cdata" then v = plain(v) end
    local at = t
    if at == nil then
      at = clock()
      if at >= op.next_due then expire(at) end
    end
    local vals = seen[k]
    local a = vals and vals[v]
    if a ~= nil then
      if type(a) == "number" then
        local d = at - a
        if d < within and d > -within then return end
      elseif near(a, at) then
        return
      end
    end
    -- an anchor the watermark has already passed would be freed at once: keep none
    if at + within > op.wm then hold(k, v, at) end
    out(1, r, t)
  end

  function op.advance(wm)
    expire(wm)
    op.wm = wm
  end

  -- The shell's processing-time timer, which stream.lua sets (node.early_every) only on a
  -- stream without event time: an idle stream frees its anchors too.
  function op.early() expire(clock()) end

  -- The anchors as { {key, value, time}, ... }, in no particular order: anchors due at
  -- the same time may expire in any order, as nothing tells them apart.
  local function anchor_list()
    local list = {}
    for k, vals in pairs(seen) do
      for v, a in pairs(vals) do
        if type(a) == "number" then
          list[#list + 1] = { k, v, a }
        else
          for i = 1, #a do list[#list + 1] = { k, v, a[i] } end
        end
      end
    end
    return list
  end

  function op.snapshot()
    return { wm = op.wm, clock = last_clock, anchors = anchor_list() }
  end

  -- Anchors come back due at time + this operator's within (a reload may change it).
  -- The clock goes on from the latest of the snapshots'.
  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    local clock_was = snap.clock or -huge
    if clock_was > last_clock then last_clock = clock_was end
    for _, e in ipairs(snap.anchors) do
      if keep == nil or keep(e[1]) then hold(e[1], e[2], e[3]) end
    end
  end

  -- A key's values, each with its anchor time (or times), as a copy.
  function op.inspect(k)
    local vals = seen[k]
    if vals == nil then return nil end
    local copy = {}
    for v, a in pairs(vals) do
      if type(a) == "table" then a = { unpack(a) } end
      copy[v] = a
    end
    return copy
  end

  function op.keys() return keyed.keys_of(seen) end

  function op.live_keys() return live end

  function op.close()
    C.sl_timeq_free(due)
    due = nil
  end

  return op
end

return dedupe
