-- lookup.lua -- s:lookup(t, f): each record of a keyed stream enriched with the row of table
-- t for its key, an operator as operator.lua describes it, fed by stage.new_join: side 1 is
-- the records, side 2 the table's rows (a table file's lines, or a changelog stream).
--
-- Without event time on both sides, a record meets the table as it stands when the record
-- comes (the job starts the other sources once a table file is loaded, runtime.lua). With
-- event time on both, the join is temporal, as Flink's versioned tables: the table keeps
-- each key's versions by time, a record waits until the watermark (the smaller of the two
-- sides') has passed its time, and meets the version valid at its time: the latest whose
-- time is at or before it. Then the output does not depend on arrival timing. Records and
-- rows behind the watermark are late (port 2).
local host = require "sluice.host"
local keyed = require "sluice.keyed"

local ffi = require "ffi"
local C = host.C
local pairs, ipairs, tostring, pcall, huge = pairs, ipairs, tostring, pcall, math.huge
local key_of, merged_wm = keyed.key_of, keyed.merged_wm
local sort = table.sort

local lookup = {}

local DELETED = false           -- a version that removes its key (saved as it is)

function lookup.new(node, out, ctx)
  local key_record, key_row = key_of(node), key_of(node.table_key)
  local f, inner, deleted, temporal = node.fn, node.inner, node.deleted, node.temporal
  local rows = {}               -- key -> row (not temporal)
  local versions = {}           -- key -> array of { time, row or DELETED } by time (temporal)
  local crowded = {}            -- keys with more than one version, to prune
  local waiting = {}            -- id -> { record, time, seq }: records the watermark holds
  local seq = 0
  local live = 0
  local op = { wm = -huge, next_due = huge }
  local q = C.sl_timeq_new()
  local pt, pid = ffi.new("double[1]"), ffi.new("int64_t[1]")

  local function deliver(res, t) return keyed.send_results(out, res, t) end

  local function enrich(r, row, t)
    if row == nil and inner then return end
    local ok, res = pcall(f, r, row)
    if not ok then
      ctx.dead_letter(tostring(res), r)
      return
    end
    deliver(res, t)
  end

  local function is_deletion(row)
    if not deleted then return false end
    local ok, yes = pcall(deleted, row)
    if not ok then error("deleted(): " .. tostring(yes), 0) end
    return yes and true or false
  end

  -- The version of key k valid at time t: the last whose time is <= t.
  local function valid_at(k, t)
    local list = versions[k]
    if list == nil then return nil end
    for i = #list, 1, -1 do
      local v = list[i]
      if v[1] <= t then
        if v[2] == DELETED then return nil end
        return v[2]
      end
    end
    return nil
  end

  local function add_version(k, t, row)
    local list = versions[k]
    if list == nil then
      -- a deletion is a version too: a row of an earlier time may still come, which it
      -- must hide from the records after it
      list = {}
      versions[k] = list
      live = live + 1
    end
    local i = #list
    while i > 0 and list[i][1] > t do i = i - 1 end
    table.insert(list, i + 1, { t, row })
    if #list > 1 or row == DELETED then crowded[k] = true end
  end

  -- Drops the versions no record still to come can meet: records to come have times >= wm,
  -- so of the versions at or before wm only the last is needed (none, if it deletes).
  local function prune(wm)
    for k in pairs(crowded) do
      local list = versions[k]
      local keep = 1
      for i = 2, #list do
        if list[i][1] <= wm then keep = i end
      end
      if keep > 1 then
        local rest = {}
        for i = keep, #list do rest[#rest + 1] = list[i] end
        list = rest
        versions[k] = list
      end
      if list[1][2] == DELETED and list[1][1] <= wm then
        table.remove(list, 1)
      end
      if #list == 0 then versions[k] = nil; live = live - 1 end
      if #list <= 1 and (list[1] == nil or list[1][2] ~= DELETED) then crowded[k] = nil end
    end
  end

  function op.step(r, t, side)
    if side == 2 then
      local k = key_row(r)
      local gone = is_deletion(r)
      if not temporal then
        if gone then
          if rows[k] ~= nil then rows[k] = nil; live = live - 1 end
        else
          if rows[k] == nil then live = live + 1 end
          rows[k] = r
        end
        return
      end
      if t < op.wm then return out(2, r, t) end
      if gone then add_version(k, t, DELETED) else add_version(k, t, r) end
      return
    end
    if not temporal then
      local k = key_record(r)
      return enrich(r, rows[k], t)
    end
    key_record(r)                 -- a record without a key fails here, not when released
    if t < op.wm then return out(2, r, t) end
    seq = seq + 1
    waiting[seq] = { r, t, seq }
    -- released once the watermark is past t: due at t, popped only when wm > t
    C.sl_timeq_push(q, t, seq)
    if t < op.next_due then op.next_due = t end
  end

  function op.advance(wm)
    local due = {}
    while C.sl_timeq_len(q) > 0 and C.sl_timeq_peek_time(q) < wm do
      C.sl_timeq_pop(q, pt, pid)
      local id = tonumber(pid[0])
      due[#due + 1] = waiting[id]
      waiting[id] = nil
    end
    -- the queue pops by (time, seq): the records' own order
    for _, w in ipairs(due) do
      local r, t = w[1], w[2]
      enrich(r, valid_at(key_record(r), t), t)
    end
    if temporal then prune(wm) end
    op.next_due = C.sl_timeq_peek_time(q)
    op.wm = wm
  end

  function op.snapshot()
    local list, wait = {}, {}
    if temporal then
      for k, vs in pairs(versions) do list[#list + 1] = { k, vs } end
    else
      for k, row in pairs(rows) do list[#list + 1] = { k, row } end
    end
    for _, w in pairs(waiting) do wait[#wait + 1] = w end
    sort(wait, function(a, b) return a[3] < b[3] end)
    return { wm = op.wm, seq = seq, table = list, waiting = wait }
  end

  -- The table's rows are kept by their key, the waiting records by theirs. A snapshot
  -- restored after another has its waiting records numbered after the ones restored
  -- already, in their order: records of one time are released in the order of the
  -- snapshots, each snapshot's in its own.
  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    for _, e in ipairs(snap.table) do
      local k = e[1]
      if keep == nil or keep(k) then
        if temporal then
          if versions[k] == nil then live = live + 1 end
          versions[k] = e[2]
          local list = e[2]
          if #list > 1 or (list[1] and list[1][2] == DELETED) then crowded[k] = true end
        else
          if rows[k] == nil then live = live + 1 end
          rows[k] = e[2]
        end
      end
    end
    local base = seq
    for _, w in ipairs(snap.waiting) do
      if keep == nil or keep(key_record(w[1])) then
        local id = base + w[3]
        waiting[id] = { w[1], w[2], id }
        C.sl_timeq_push(q, w[2], id)
        if w[2] < op.next_due then op.next_due = w[2] end
      end
    end
    seq = base + snap.seq
  end

  function op.inspect(k)
    if temporal then
      local list = versions[k]
      if not list then return nil end
      local res = {}
      for i, v in ipairs(list) do
        res[i] = { time = v[1], row = v[2] == DELETED and "deleted" or v[2] }
      end
      return { versions = res }
    end
    if rows[k] == nil then return nil end
    return { row = rows[k] }
  end
  function op.keys() return keyed.keys_of(temporal and versions or rows) end
  function op.live_keys() return live end
  function op.close()
    if q ~= nil then C.sl_timeq_free(q); q = nil end
  end
  return op
end

return lookup
