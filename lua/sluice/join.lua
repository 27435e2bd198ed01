-- join.lua -- joins of two keyed streams: by window, by interval (between) and by ttl, inner
-- or left; operators as operator.lua describes them, fed by stage.new_join, which merges the
-- two inputs' watermarks and calls step(r, t, side) with side 1 (left) or 2 (right).
--
-- Every join is exact the way windows are: for a given input, which pairs join and which
-- left records go out alone does not depend on batch sizes, on how the two inputs interleave
-- or on reloads, as long as no record is late (behind its operator's watermark, which is
-- the smaller of the two inputs' watermarks). Late records go to port 2 (late()).
-- What is emitted at once (interval and ttl pairs) comes in arrival order; what a watermark
-- fires comes in order of due time, then key.
local host = require "sluice.host"
local keyed = require "sluice.keyed"

local ffi = require "ffi"
local C = host.C
local pairs, ipairs, tostring, pcall, huge = pairs, ipairs, tostring, pcall, math.huge
local key_of, merged_wm = keyed.key_of, keyed.merged_wm
local sort = table.sort

local join = {}

-- ---- what every join shares ----------------------------------------------------------------

local key_less = keyed.key_less

-- Entries { time, key, ... } by due time, then key.
local function due_order(x, y)
  if x[1] ~= y[1] then return x[1] < y[1] end
  return key_less(x[2], y[2])
end

-- A queue of values by time on host/timeq.c: push(t, v); peek() the earliest time (huge
-- when empty); due(now[, strict]) whether it is <= now (< now); pop() the earliest entry's
-- time and value. Entries of one time pop in push order.
local function queue()
  local q = C.sl_timeq_new()
  local values, next_id = {}, 0
  local pt, pid = ffi.new("double[1]"), ffi.new("int64_t[1]")
  local self = {}
  function self.push(t, v)
    next_id = next_id + 1
    values[next_id] = v
    C.sl_timeq_push(q, t, next_id)
  end
  function self.peek() return C.sl_timeq_peek_time(q) end
  -- whether an entry is due by `now` (inclusive) or before it (strict)
  function self.due(now, strict)
    if C.sl_timeq_len(q) == 0 then return false end
    local t = C.sl_timeq_peek_time(q)
    if strict then return t < now end
    return t <= now
  end
  function self.pop()
    C.sl_timeq_pop(q, pt, pid)
    local id = tonumber(pid[0])
    local v = values[id]
    values[id] = nil
    return pt[0], v
  end
  function self.close()
    if q ~= nil then C.sl_timeq_free(q); q = nil end
  end
  return self
end

-- The parts of a join: its key functions by side, how its user function's results go out
-- (a record, an array of records, or nil), and the count of keys holding state.
local function parts(node, out, ctx)
  local p = { keys = { key_of(node.left), key_of(node.right) }, live = 0 }
  local f = node.fn
  local function deliver(res, t) return keyed.send_results(out, res, t) end
  p.deliver = deliver
  -- f(l, r) for one pair (r nil: a left record that found no match); an error sends the
  -- pair to the dead letters and the join goes on
  function p.pair(l, r, t)
    local ok, res = pcall(f, l, r)
    if not ok then
      ctx.dead_letter(tostring(res), { left = l, right = r == nil and host.null or r })
      return
    end
    deliver(res, t)
  end
  return p
end

-- A row is { record, time, seq, matched }: seq numbers the rows of a side in arrival order,
-- which is the same on every run (one input's order), so rows sorted by (time, seq) are
-- in an order arrival timing cannot change.
local function row_order(a, b)
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[3] < b[3]
end

local function plain_rows(rows)
  local list = {}
  for i, row in ipairs(rows) do list[i] = row[1] end
  return list
end

-- restore(snap, keep) of every join: the watermark as keyed.merged_wm makes it, and the
-- rows numbers after the largest of the snapshots' (a key's rows all come from one
-- snapshot, so their order stays theirs). `first`: no snapshot was restored before.
local function restore_counts(op, seq, snap, first)
  op.wm = merged_wm(op.wm, snap.wm, first)
  for side = 1, 2 do
    if snap.seq[side] > seq[side] then seq[side] = snap.seq[side] end
  end
end

-- Rows as plain values for a snapshot (nil time: the null of msgpack) and back.
local function save_rows(rows)
  local list = {}
  for i, row in ipairs(rows) do
    list[i] = { row[1], row[2] == nil and host.null or row[2], row[3], row[4] or false }
  end
  return list
end
local function load_rows(list)
  local rows = {}
  for i, e in ipairs(list) do
    rows[i] = { e[1], e[2] ~= host.null and e[2] or nil, e[3], e[4] or nil }
  end
  return rows
end

-- ---- window joins ----------------------------------------------------------------------------

-- A window join's rows of one side are packed in one array, three slots a row (record,
-- time, seq), which saves a table per record: put appends one.
local function put(rows, r, t, n)
  local i = #rows
  rows[i + 1], rows[i + 2], rows[i + 3] = r, t, n
end

-- Sorts packed rows by (time, seq), unless they are in that order already: rows mostly
-- come in it, and a check is cheaper than a sort.
local function sort_packed(rows)
  for i = 4, #rows, 3 do
    local t, u = rows[i + 1], rows[i - 2]
    if t < u or (t == u and rows[i + 2] < rows[i - 1]) then
      local list = {}
      for j = 1, #rows, 3 do list[#list + 1] = { rows[j], rows[j + 1], rows[j + 2] } end
      sort(list, row_order)
      for j, row in ipairs(list) do
        local o = 3 * j - 2
        rows[o], rows[o + 1], rows[o + 2] = row[1], row[2], row[3]
      end
      return
    end
  end
end

local function plain_packed(rows)
  local list = {}
  for i = 1, #rows, 3 do list[#list + 1] = rows[i] end
  return list
end

-- Packed rows in a snapshot as save_rows writes rows, and back.
local function save_packed(rows)
  local list = {}
  for i = 1, #rows, 3 do list[#list + 1] = { rows[i], rows[i + 1], rows[i + 2], false } end
  return list
end
local function load_packed(list)
  local rows = {}
  for _, e in ipairs(list) do put(rows, e[1], e[2], e[3]) end
  return rows
end

-- What a window of key k, [s, e), sends when it fires, its rows packed (each side sorted by
-- time here): cogroup's one call with both sides; else each pair, and in a left_join each
-- left row alone when the right side has none; event time e - 1.
local function window_out(p, f, cogroup, outer, ctx, k, s, e, ls, rs)
  sort_packed(ls)
  sort_packed(rs)
  if cogroup then
    local ok, res = pcall(f, k, { window_start = s, window_end = e }, plain_packed(ls),
      plain_packed(rs))
    if not ok then
      ctx.dead_letter(tostring(res), { key = k, window_start = s, window_end = e })
    else
      p.deliver(res, e - 1)
    end
    return
  end
  for i = 1, #ls, 3 do
    local l = ls[i]
    for j = 1, #rs, 3 do p.pair(l, rs[j], e - 1) end
    if outer and #rs == 0 then p.pair(l, nil, e - 1) end
  end
end

-- Tumbling and sliding windows: the pairs of a key in one window, when the watermark
-- reaches its end (a window [s, e) fires when the watermark is >= e, as windows do). A record
-- is late when every window that would hold it has fired; sliding windows that fired are
-- skipped, as in Flink.
local function fixed_windows(node, out, ctx)
  local p = parts(node, out, ctx)
  local a = node.assigner
  local size = a.size
  local slide = a.assigner == "sliding" and a.slide or size
  local f, cogroup, outer = node.fn, node.computes == "cogroup", node.outer
  local wins = {}               -- window start -> key -> { left rows, right rows }
  local refs = {}               -- key -> windows holding it
  local seq = { 0, 0 }
  local q = queue()
  local op = { wm = -huge, next_due = huge }

  local function hold(s, k)
    local w = wins[s]
    if w == nil then
      w = {}
      wins[s] = w
      q.push(s + size, s)
      if s + size < op.next_due then op.next_due = s + size end
    end
    local cell = w[k]
    if cell == nil then
      cell = { {}, {} }
      w[k] = cell
      local n = refs[k]
      if n == nil then p.live = p.live + 1 end
      refs[k] = (n or 0) + 1
    end
    return cell
  end

  function op.step(r, t, side)
    local k = p.keys[side](r)
    local last = t - t % slide
    if last + size <= op.wm then return out(2, r, t) end
    local n = seq[side] + 1
    seq[side] = n
    local s = last
    while s > t - size do
      if s + size > op.wm then put(hold(s, k)[side], r, t, n) end
      s = s - slide
    end
  end

  local function emit(k, s, cell)
    window_out(p, f, cogroup, outer, ctx, k, s, s + size, cell[1], cell[2])
  end

  local function fire(s)
    local w = wins[s]
    wins[s] = nil
    local ks = {}
    for k in pairs(w) do ks[#ks + 1] = k end
    sort(ks, key_less)
    for _, k in ipairs(ks) do
      emit(k, s, w[k])
      local n = refs[k] - 1
      if n == 0 then refs[k] = nil; p.live = p.live - 1 else refs[k] = n end
    end
  end

  function op.advance(wm)
    while q.due(wm) do
      local at, s = q.pop()
      fire(s)
      if at > op.wm then op.wm = at end
    end
    op.next_due = q.peek()
    op.wm = wm
  end

  function op.snapshot()
    local list = {}
    for s, w in pairs(wins) do
      local cells = {}
      for k, cell in pairs(w) do
        cells[#cells + 1] = { k, save_packed(cell[1]), save_packed(cell[2]) }
      end
      list[#list + 1] = { s, cells }
    end
    return { wm = op.wm, seq = seq, windows = list }
  end

  local restored = false
  function op.restore(snap, keep)
    restore_counts(op, seq, snap, not restored)
    restored = true
    for _, e in ipairs(snap.windows) do
      for _, c in ipairs(e[2]) do
        if keep == nil or keep(c[1]) then
          local cell = hold(e[1], c[1])
          cell[1], cell[2] = load_packed(c[2]), load_packed(c[3])
        end
      end
    end
  end

  function op.inspect(k)
    local list = {}
    for s, w in pairs(wins) do
      local cell = w[k]
      if cell then
        list[#list + 1] = { window_start = s, window_end = s + size,
          left = plain_packed(cell[1]), right = plain_packed(cell[2]) }
      end
    end
    if #list == 0 then return nil end
    sort(list, function(x, y) return x.window_start < y.window_start end)
    return list
  end
  function op.keys() return keyed.keys_of(refs) end
  function op.live_keys() return p.live end
  op.close = q.close
  return op
end

-- Session windows: a key's records of both sides closer than `gap` to the next (by event
-- time) form one session, [first, last + gap), which fires when the watermark reaches its
-- end. Closer than, not as close as: a record exactly `gap` after a session's last starts a
-- new one, so whether it joins cannot depend on whether the session fired before it came.
local function session_windows(node, out, ctx)
  local p = parts(node, out, ctx)
  local gap = node.assigner.gap
  local f, cogroup, outer = node.fn, node.computes == "cogroup", node.outer
  -- key -> array of sessions { start, end, left rows, right rows, key }
  local sessions = {}
  local seq = { 0, 0 }
  local q = queue()
  local op = { wm = -huge, next_due = huge }

  -- A session has one entry in the queue at a time (sess.queued): a record that moves its
  -- end on leaves the entry where it is, and the entry, when it comes due early, goes back
  -- in at the session's end then.
  local function schedule(sess)
    if sess.queued then return end
    sess.queued = true
    q.push(sess[2], sess)
    if sess[2] < op.next_due then op.next_due = sess[2] end
  end

  local function add(k, s, e, ls, rs)
    local list = sessions[k]
    if list == nil then list = {}; sessions[k] = list; p.live = p.live + 1 end
    local sess = { s, e, ls, rs, k }
    list[#list + 1] = sess
    schedule(sess)
    return sess
  end

  -- A record that falls into or extends its key's one session, the common case, joins it
  -- in place; any other goes through step_any.
  local step_any
  function op.step(r, t, side)
    local k = p.keys[side](r)
    local list = sessions[k]
    local sess = list and list[1]
    local e = t + gap
    if sess == nil or #list ~= 1 or sess[1] >= e or t >= sess[2] then
      return step_any(r, t, side, k)
    end
    if e < sess[2] then e = sess[2] end
    if e <= op.wm then return out(2, r, t) end
    local n = seq[side] + 1
    seq[side] = n
    put(sess[2 + side], r, t, n)
    if t < sess[1] then sess[1] = t end
    sess[2] = e
  end

  -- A record that starts a session, or merges the sessions it touches into one.
  step_any = function(r, t, side, k)
    local s, e = t, t + gap
    local list = sessions[k]
    local touching = {}
    if list then
      for i = 1, #list do
        local sess = list[i]
        if sess[1] < e and s < sess[2] then
          touching[#touching + 1] = i
          if sess[1] < s then s = sess[1] end
          if sess[2] > e then e = sess[2] end
        end
      end
    end
    if e <= op.wm then return out(2, r, t) end
    local n = seq[side] + 1
    seq[side] = n
    if #touching == 1 then
      local sess = list[touching[1]]
      sess[1], sess[2] = s, e
      put(sess[2 + side], r, t, n)
      return
    end
    -- a new session, or sessions merged (and the record's window): one session in their
    -- place; the old ones' queue entries find them gone
    local ls, rs = {}, {}
    for j = #touching, 1, -1 do
      local old = table.remove(list, touching[j])
      old.gone = true
      for _, x in ipairs(old[3]) do ls[#ls + 1] = x end
      for _, x in ipairs(old[4]) do rs[#rs + 1] = x end
    end
    put(side == 1 and ls or rs, r, t, n)
    if list and #list == 0 then sessions[k] = nil; p.live = p.live - 1 end
    add(k, s, e, ls, rs)
  end

  local function emit(k, sess)
    window_out(p, f, cogroup, outer, ctx, k, sess[1], sess[2], sess[3], sess[4])
  end

  local function drop(k, sess)
    local list = sessions[k]
    for i = 1, #list do
      if list[i] == sess then table.remove(list, i); break end
    end
    if #list == 0 then sessions[k] = nil; p.live = p.live - 1 end
  end

  function op.advance(wm)
    while q.due(wm) do
      -- every session due by the same time, in key order
      local at = q.peek()
      local due
      while q.due(at) do
        local _, sess = q.pop()
        if not sess.gone then
          if sess[2] > at then
            q.push(sess[2], sess)
          else
            sess.gone = true
            due = due or {}
            due[#due + 1] = { at, sess[5], sess }
          end
        end
      end
      if due then
        if #due > 1 then sort(due, due_order) end
        for _, d in ipairs(due) do
          drop(d[2], d[3])
          emit(d[2], d[3])
        end
      end
      if at > op.wm then op.wm = at end
    end
    op.next_due = q.peek()
    op.wm = wm
  end

  function op.snapshot()
    local list = {}
    for k, ss in pairs(sessions) do
      for _, sess in ipairs(ss) do
        list[#list + 1] = { k, sess[1], sess[2], save_packed(sess[3]), save_packed(sess[4]) }
      end
    end
    return { wm = op.wm, seq = seq, sessions = list }
  end

  local restored = false
  function op.restore(snap, keep)
    restore_counts(op, seq, snap, not restored)
    restored = true
    for _, e in ipairs(snap.sessions) do
      if keep == nil or keep(e[1]) then
        add(e[1], e[2], e[3], load_packed(e[4]), load_packed(e[5]))
      end
    end
  end

  function op.inspect(k)
    local list = sessions[k]
    if not list then return nil end
    local res = {}
    for i, sess in ipairs(list) do
      res[i] = { window_start = sess[1], window_end = sess[2], left = plain_packed(sess[3]),
        right = plain_packed(sess[4]) }
    end
    return res
  end
  function op.keys() return keyed.keys_of(sessions) end
  function op.live_keys() return p.live end
  op.close = q.close
  return op
end

-- ---- interval joins -----------------------------------------------------------------------------

-- between(lower, upper): l and r pair when lower <= r.time - l.time <= upper, at once when
-- the second of them comes, with event time max(l.time, r.time). A record behind the
-- watermark is late. A left row can match no right record still to come once the
-- watermark is past l.time + upper, a right row once it is past r.time - lower: then it is
-- freed, and a left_join sends f(l, nil), with l's time, for a left row that never matched.
local function interval(node, out, ctx)
  local p = parts(node, out, ctx)
  local lower, upper, outer = node.lower, node.upper, node.outer
  -- key -> { left rows, right rows, due }: due is the earliest watermark past which a row
  -- of the key can be freed, the time of the key's one live entry in the queue (entries it
  -- left behind when a row lowered it are skipped), false while advance holds the key
  local bufs = {}
  local seq = { 0, 0 }
  local q = queue()
  local op = { wm = -huge, next_due = huge }
  local due_keys, due_at = {}, {}     -- the keys advance frees, reused
  local reach = { function(t) return t + upper end, function(t) return t - lower end }

  -- One entry per key, not per row: a row pushes one only when it can be freed before
  -- every row the key holds; freeing the key's rows pushes the next.
  local function schedule(k, b, until_t)
    local d = b[3]
    if d and d <= until_t then return end
    b[3] = until_t
    q.push(until_t, k)
    if until_t < op.next_due then op.next_due = until_t end
  end

  function op.step(r, t, side)
    local k = p.keys[side](r)
    if t < op.wm then return out(2, r, t) end
    local b = bufs[k]
    if b == nil then b = { {}, {}, nil }; bufs[k] = b; p.live = p.live + 1 end
    local n = seq[side] + 1
    seq[side] = n
    local row = { r, t, n }
    local others = b[3 - side]
    for i = 1, #others do
      local o = others[i]
      local lt, rt = t, o[2]
      if side == 2 then lt, rt = rt, t end
      local d = rt - lt
      if d >= lower and d <= upper then
        if side == 1 then
          row[4] = true
          p.pair(r, o[1], rt > lt and rt or lt)
        else
          o[4] = true
          p.pair(o[1], r, rt > lt and rt or lt)
        end
      end
    end
    local rows = b[side]
    rows[#rows + 1] = row
    schedule(k, b, reach[side](t))
  end

  -- Frees the rows of key k that can match nothing still to come at watermark wm, in
  -- place, and schedules the key's next freeing.
  local function clean(k, wm)
    local b = bufs[k]
    local next_t = huge
    for side = 1, 2 do
      local rows = b[side]
      local until_t = reach[side]
      local kept = 0
      for i = 1, #rows do
        local row = rows[i]
        local u = until_t(row[2])
        if u >= wm then
          kept = kept + 1
          rows[kept] = row
          if u < next_t then next_t = u end
        elseif side == 1 and outer and not row[4] then
          p.pair(row[1], nil, row[2])
        end
      end
      for i = #rows, kept + 1, -1 do rows[i] = nil end
    end
    if next_t == huge then
      bufs[k] = nil
      p.live = p.live - 1
    else
      schedule(k, b, next_t)
    end
  end

  -- The keys due, freed in order of due time, then key (a left_join's unmatched rows go
  -- out in that order; an inner join frees without sending, in any order).
  function op.advance(wm)
    local n = 0
    while q.due(wm, true) do
      local at, k = q.pop()
      local b = bufs[k]
      if b and b[3] == at then
        b[3] = false
        n = n + 1
        due_keys[n], due_at[n] = k, at
      end
    end
    if n > 0 then
      if outer and n > 1 then
        local due = {}
        for i = 1, n do due[i] = { due_at[i], due_keys[i] } end
        sort(due, due_order)
        for i = 1, n do due_keys[i] = due[i][2] end
      end
      for i = 1, n do
        clean(due_keys[i], wm)
        due_keys[i] = nil
      end
    end
    op.next_due = q.peek()
    op.wm = wm
  end

  function op.snapshot()
    local list = {}
    for k, b in pairs(bufs) do list[#list + 1] = { k, save_rows(b[1]), save_rows(b[2]) } end
    return { wm = op.wm, seq = seq, keys = list }
  end

  local restored = false
  function op.restore(snap, keep)
    restore_counts(op, seq, snap, not restored)
    restored = true
    for _, e in ipairs(snap.keys) do
      local k = e[1]
      if keep == nil or keep(k) then
        local b = { load_rows(e[2]), load_rows(e[3]), nil }
        if bufs[k] == nil then p.live = p.live + 1 end
        bufs[k] = b
        for side = 1, 2 do
          for _, row in ipairs(b[side]) do schedule(k, b, reach[side](row[2])) end
        end
      end
    end
  end

  function op.inspect(k)
    local b = bufs[k]
    if not b then return nil end
    return { left = plain_rows(b[1]), right = plain_rows(b[2]) }
  end
  function op.keys() return keyed.keys_of(bufs) end
  function op.live_keys() return p.live end
  op.close = q.close
  return op
end

-- ---- joins with a ttl ------------------------------------------------------------------------------

-- ttl(d): every pair of a key's rows, at once when the second comes, with event time
-- max(l.time, r.time). A key's rows are kept until d of event time passes without a new
-- one: they form groups, each row closer than d to the next, and a group is freed when
-- the watermark reaches its last row's time + d (a left_join then sends f(l, nil), with l's
-- time, for each of its left rows that never matched). Two rows pair when they are in one
-- group; a row that bridges two groups pairs their rows across. So which pairs join depends
-- on the rows' times only, not on when they came. Without event time, d is processing time
-- since the key's last row, and every row of the key pairs until then.
local function with_ttl(node, out, ctx)
  local p = parts(node, out, ctx)
  local d, outer = node.ttl, node.outer
  -- key -> array of groups { first time, last time, left rows, right rows, key }
  local groups = {}
  local seq = { 0, 0 }
  local q = queue()
  local op = { wm = -huge, next_due = huge }
  local untimed = false

  -- A group has one entry in the queue at a time (g.queued), not one per row: a row that
  -- moves its last time on leaves the entry where it is, and the entry, when it comes due
  -- early, goes back in at the group's due time then.
  local function schedule(g)
    if g.queued then return end
    g.queued = true
    q.push(g[2] + d, g)
    if g[2] + d < op.next_due then op.next_due = g[2] + d end
  end

  local function pair_rows(l, r)
    l[4] = true
    local lt, rt = l[2], r[2]
    p.pair(l[1], r[1], lt and (rt > lt and rt or lt) or nil)
  end

  local function free(k, g)
    g.gone = true
    local list = groups[k]
    for i = 1, #list do
      if list[i] == g then table.remove(list, i); break end
    end
    if #list == 0 then groups[k] = nil; p.live = p.live - 1 end
    if outer then
      for _, l in ipairs(g[3]) do
        if not l[4] then p.pair(l[1], nil, l[2]) end
      end
    end
  end

  -- Frees the groups due by `now` (the watermark, or the clock in ms), in order of due
  -- time, then key.
  local function expire(now)
    local due
    while q.due(now) do
      local at, g = q.pop()
      if not g.gone then
        local t = g[2] + d
        if t > at then
          q.push(t, g)
        else
          g.gone = true
          due = due or {}
          due[#due + 1] = { at, g[5], g }
        end
      end
    end
    if due == nil then return end
    if #due > 1 then sort(due, due_order) end
    for _, e in ipairs(due) do free(e[2], e[3]) end
  end

  -- Pairs row with each of others (rows of the other side): row is the left one when
  -- `left`.
  local function pair_all(row, others, left)
    for i = 1, #others do
      if left then pair_rows(row, others[i]) else pair_rows(others[i], row) end
    end
  end

  -- The group of key k (groups `list`) that a row at `time` joins: the one it touches, or
  -- a new group, or the groups it bridges merged into one after their rows pair across.
  local function touch(k, list, time)
    local touching = {}
    for i = 1, #list do
      local g = list[i]
      if untimed or (time > g[1] - d and time < g[2] + d) then touching[#touching + 1] = i end
    end
    if #touching == 1 then return list[touching[1]] end
    local merged = {}
    for j = #touching, 1, -1 do
      local old = table.remove(list, touching[j])
      old.gone = true
      merged[#merged + 1] = old
    end
    local g = { time, time, {}, {}, k }
    for a = 1, #merged do
      local A = merged[a]
      for b = 1, #merged do
        if a ~= b then
          for _, l in ipairs(A[3]) do
            for _, x in ipairs(merged[b][4]) do pair_rows(l, x) end
          end
        end
      end
      if A[1] < g[1] then g[1] = A[1] end
      if A[2] > g[2] then g[2] = A[2] end
      for _, x in ipairs(A[3]) do g[3][#g[3] + 1] = x end
      for _, x in ipairs(A[4]) do g[4][#g[4] + 1] = x end
    end
    list[#list + 1] = g
    return g
  end

  function op.step(r, t, side)
    local k = p.keys[side](r)
    local time = t
    if t == nil then
      -- no event time: the clock ages the groups, and every row of a key is one group
      untimed = true
      time = host.clock() * 1000
      expire(time)
    elseif t < op.wm then
      return out(2, r, t)
    end
    local list = groups[k]
    if list == nil then list = {}; groups[k] = list; p.live = p.live + 1 end
    local g = list[1]
    -- the common case, a key of one group that the row joins, takes no loop
    if #list ~= 1 or not (untimed or (time > g[1] - d and time < g[2] + d)) then
      g = touch(k, list, time)
    end
    local n = seq[side] + 1
    seq[side] = n
    local row = { r, t, n }
    if side == 1 then
      local others = g[4]
      if #others == 1 then pair_rows(row, others[1])
      elseif #others > 1 then pair_all(row, others, true) end
    else
      local others = g[3]
      if #others == 1 then pair_rows(others[1], row)
      elseif #others > 1 then pair_all(row, others, false) end
    end
    local rows = g[2 + side]
    rows[#rows + 1] = row
    if time < g[1] then g[1] = time end
    if time > g[2] then g[2] = time end
    schedule(g)
  end

  function op.advance(wm)
    if untimed and wm < huge then return end
    expire(wm)
    op.next_due = untimed and huge or q.peek()
    op.wm = wm
  end

  function op.snapshot()
    local list = {}
    for k, gs in pairs(groups) do
      for _, g in ipairs(gs) do
        list[#list + 1] = { k, g[1], g[2], save_rows(g[3]), save_rows(g[4]) }
      end
    end
    return { wm = op.wm, seq = seq, groups = list, untimed = untimed }
  end

  -- A restored group without event time starts its ttl again from now: the clock of the
  -- run that saved it is not this one's.
  -- Snapshots of a stream without event time say so (untimed): one of them is enough.
  local restored = false
  function op.restore(snap, keep)
    restore_counts(op, seq, snap, not restored)
    restored = true
    untimed = untimed or snap.untimed or false
    local now = host.clock() * 1000
    for _, e in ipairs(snap.groups) do
      local k = e[1]
      if keep == nil or keep(k) then
        local list = groups[k]
        if list == nil then list = {}; groups[k] = list; p.live = p.live + 1 end
        local g = { e[2], e[3], load_rows(e[4]), load_rows(e[5]), k }
        if untimed then g[1], g[2] = now, now end
        list[#list + 1] = g
        schedule(g)
      end
    end
    if untimed then op.next_due = huge end
  end

  function op.inspect(k)
    local list = groups[k]
    if not list then return nil end
    local left, right = {}, {}
    for _, g in ipairs(list) do
      for _, x in ipairs(plain_rows(g[3])) do left[#left + 1] = x end
      for _, x in ipairs(plain_rows(g[4])) do right[#right + 1] = x end
    end
    return { left = left, right = right }
  end
  function op.keys() return keyed.keys_of(groups) end
  function op.live_keys() return p.live end
  op.close = q.close
  return op
end

-- The join operator of a node made by a:join(b) (stream.lua): node.how is "window",
-- "between" or "ttl".
function join.new(node, out, ctx)
  if node.how == "window" then
    if node.assigner.assigner == "session" then return session_windows(node, out, ctx) end
    return fixed_windows(node, out, ctx)
  elseif node.how == "between" then
    return interval(node, out, ctx)
  end
  return with_ttl(node, out, ctx)
end

return join
