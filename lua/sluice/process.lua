-- process.lua -- the process operator: the user's functions over per-key state and
-- event-time timers, an operator as operator.lua describes it.
--
-- The state of a key is a table the user's functions change in place; the timers wait in
-- a C queue (host/timeq.c) by time, and fire in order as the watermark passes them. With
-- ttl(d) (node.ttl), a key's state is freed once it has gone d without a record
-- (expiry.lua), after on_expire has seen it.
local expiry = require "sluice.expiry"
local host = require "sluice.host"
local keyed = require "sluice.keyed"

local ffi = require "ffi"
local C = host.C
local type, pairs, ipairs, huge = type, pairs, ipairs, math.huge
local key_of, merged_wm = keyed.key_of, keyed.merged_wm

local process = {}

-- process{init, on_record, on_timer, on_expire}: per-key state (a table) and event-time
-- timers, one per key and time. A timer at t fires once the watermark is >= t, in time
-- order (ties in the order they were set); what on_timer emits has event time t.
--
-- ttl: only records keep a key alive. Its pending timers do not (as in Flink, where state
-- TTL and timers are independent), and a timer firing does not refresh it; a timer that
-- fires after its key expired finds a fresh state (init runs), which is an update at the
-- timer's time. Expiry and timers go in time order, an expiry first at equal times: a
-- timer at t sees the state as it is at watermark t. on_expire(ctx) sees ctx.key and
-- ctx.state just before they go; what it emits has the expiry time as event time.
function process.new(node, out, ctx)
  local init, on_record, on_timer = node.init, node.on_record, node.on_timer
  local on_expire = node.on_expire
  local key = key_of(node)
  local states = {}            -- key -> state table
  local nkeys = 0              -- keys in states (op.live_keys)
  -- One timer per key and time, without a table per key: setting the time a key set last
  -- is a no-op at once, and any other repeat is skipped when it pops (a key's entries for
  -- one time pop one after the other's time, since the queue is in time order).
  local last_set, fired_at = {}, {}    -- key -> time of its last timer set / fired
  local id_key, id_time = {}, {}       -- queue id -> its key and time (ids in set order)
  local next_id = 0
  local due = C.sl_timeq_new()
  local pt, pid = ffi.new("double[1]"), ffi.new("int64_t[1]")
  local op = { wm = -huge, next_due = huge }
  local emit_time
  local pctx = {}
  function pctx.emit(_, r) out(1, r, emit_time) end
  -- ctx:clear(): the key's state goes now (Flink's state.clear()), so that a key that is
  -- done costs nothing; a timer of the key still to fire finds a fresh state (init runs)
  function pctx.clear()
    local k = pctx.key
    if states[k] ~= nil then
      states[k] = nil
      nkeys = nkeys - 1
    end
    last_set[k], fired_at[k] = nil, nil
    pctx.state = nil
  end
  function pctx.timer(_, t)
    if type(t) ~= "number" or t ~= t then error("ctx:timer(): expected a time in ms", 2) end
    local k = pctx.key
    if last_set[k] == t then return end
    last_set[k] = t
    next_id = next_id + 1
    id_key[next_id], id_time[next_id] = k, t
    C.sl_timeq_push(due, t, next_id)
    if t < op.next_due then op.next_due = t end
  end

  local function enter(k)
    local st = states[k]
    pctx.key = k
    pctx.watermark = op.wm
    if st == nil then
      st = {}
      states[k] = st
      nkeys = nkeys + 1
      pctx.state = st
      if init then init(pctx) end
    end
    pctx.state = st
  end

  -- The watermark advance is firing for (on_expire's ctx.watermark), else nil.
  local firing_wm
  local ex = node.ttl and expiry.new(op, node.ttl, node.ttl_clock, function(k, at)
    local st = states[k]
    if st == nil then return end
    if on_expire then
      pctx.key, pctx.state, pctx.watermark = k, st, firing_wm or op.wm
      emit_time = not node.ttl_clock and at or nil
      local ok, err = pcall(on_expire, pctx)
      if not ok then ctx.dead_letter(tostring(err), { key = k, expired = at }) end
    end
    states[k] = nil
    nkeys = nkeys - 1
    -- a fresh key may set any time again (a duplicate entry still queued is skipped as
    -- it pops: fired_at is set by the first of them)
    last_set[k], fired_at[k] = nil, nil
  end, function(room)
    states = expiry.copy(states, room)
    last_set, fired_at = expiry.copy(last_set), expiry.copy(fired_at)
  end)
  -- expiry by the watermark (not by the clock) goes in the timers' order
  local ex_wm = ex and not node.ttl_clock
  local function next_due()
    local tt = C.sl_timeq_peek_time(due)
    if ex_wm then
      local te = ex.peek()
      if te < tt then return te end
    end
    return tt
  end

  function op.step(r, t)
    local k = key(r)
    local u = ex and ex.now(t)
    enter(k)
    local due_now = ex and ex.touch(k, u)
    emit_time = t
    on_record(pctx, r)
    if due_now then
      -- a new key behind the watermark by the ttl or more: gone at once
      firing_wm = op.wm
      ex.expire(op.wm)
      firing_wm = nil
      op.next_due = next_due()
    end
  end

  -- Fires timer entry id (a repeat of a key's time is skipped).
  local function fire(id, wm)
    local k, t = id_key[id], id_time[id]
    id_key[id], id_time[id] = nil, nil
    if k ~= nil and fired_at[k] ~= t then
      fired_at[k] = t
      if last_set[k] == t then last_set[k] = nil end
      if on_timer then
        -- a key that expired: its fresh state is an update at the timer's time
        local u = ex and states[k] == nil and ex.now(t)
        enter(k)
        if u then ex.touch(k, u) end
        pctx.watermark = wm
        emit_time = t
        local ok, err = pcall(on_timer, pctx, t)
        if not ok then ctx.dead_letter(tostring(err), { key = k, timer = t }) end
      end
    end
  end

  function op.advance(wm)
    firing_wm = wm
    while true do
      local tt = C.sl_timeq_peek_time(due)
      local te = ex_wm and ex.peek() or huge
      if te <= tt then
        if te > wm or te == huge then break end
        ex.pop()
      else
        if tt > wm then break end
        C.sl_timeq_pop(due, pt, pid)
        fire(tonumber(pid[0]), wm)
      end
    end
    firing_wm = nil
    op.next_due = next_due()
    op.wm = wm
  end

  -- The pending timers as { {key, time}, ... } in the order they were set, and back.
  local function timer_list()
    local ids, tm = {}, {}
    for id in pairs(id_key) do ids[#ids + 1] = id end
    table.sort(ids)
    for i, id in ipairs(ids) do tm[i] = { id_key[id], id_time[id] } end
    return tm
  end
  local function set_timers(tm, keep)
    for _, e in ipairs(tm) do
      if keep == nil or keep(e[1]) then
        pctx.key = e[1]
        pctx.timer(nil, e[2])
      end
    end
  end

  function op.snapshot()
    local st = {}
    for k, s in pairs(states) do
      local e = { k, s }
      if ex then e[3], e[4] = ex.saved(k) end
      st[#st + 1] = e
    end
    return { wm = op.wm, states = st, timers = timer_list(), updates = ex and ex.updates() }
  end

  function op.inspect(k) return states[k] end
  function op.keys() return keyed.keys_of(states) end

  -- Timers of several snapshots due at one time fire in the order the snapshots were
  -- restored (each snapshot's in the order they were set).
  local restored = false
  function op.restore(snap, keep)
    op.wm = merged_wm(op.wm, snap.wm, not restored)
    restored = true
    if ex then ex.set_updates(snap.updates) end
    for _, e in ipairs(snap.states) do
      local k = e[1]
      if keep == nil or keep(k) then
        if states[k] == nil then nkeys = nkeys + 1 end
        states[k] = e[2]
        if ex then ex.restore(k, e[3], e[4]) end
      end
    end
    set_timers(snap.timers, keep)
  end

  function op.handover()
    local live = { wm = op.wm, states = states, timers = timer_list(), keys = nkeys,
      expiry = ex and ex.handover() }
    states, id_key, id_time, nkeys = {}, {}, {}, 0
    return live
  end

  function op.adopt(live)
    op.wm, states = live.wm, live.states
    if live.keys then
      nkeys = live.keys
    else
      for _ in pairs(states) do nkeys = nkeys + 1 end
    end
    set_timers(live.timers)
    if ex then ex.adopt(live.expiry, states) else expiry.discard(live.expiry) end
  end

  function op.live_keys() return nkeys end

  function op.close()
    C.sl_timeq_free(due); due = nil
    if ex then ex.close() end
  end
  return op
end

return process
