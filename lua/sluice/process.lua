-- process.lua -- the process operator: the user's functions over per-key state and
-- event-time timers, an operator as operator.lua describes it.
--
-- The state of a key is a table the user's functions change in place; the timers wait in
-- a C queue (host/timeq.c) by time, and fire in order as the watermark passes them.
local host = require "sluice.host"
local keyed = require "sluice.keyed"

local ffi = require "ffi"
local C = host.C
local type, pairs, ipairs, huge = type, pairs, ipairs, math.huge
local key_of = keyed.key_of

local process = {}

-- process{init, on_record, on_timer}: per-key state (a table) and event-time timers, one
-- per key and time. A timer at t fires once the watermark is >= t, in time order (ties in
-- the order they were set); what on_timer emits has event time t.
function process.new(node, out, ctx)
  local init, on_record, on_timer = node.init, node.on_record, node.on_timer
  local key = key_of(node)
  local states = {}            -- key -> state table
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
      pctx.state = st
      if init then init(pctx) end
    end
    pctx.state = st
  end

  function op.step(r, t)
    local k = key(r)
    enter(k)
    emit_time = t
    on_record(pctx, r)
  end

  function op.advance(wm)
    while C.sl_timeq_len(due) > 0 and C.sl_timeq_peek_time(due) <= wm do
      C.sl_timeq_pop(due, pt, pid)
      local id = tonumber(pid[0])
      local k, t = id_key[id], id_time[id]
      id_key[id], id_time[id] = nil, nil
      if k ~= nil and fired_at[k] ~= t then
        fired_at[k] = t
        if last_set[k] == t then last_set[k] = nil end
        if on_timer then
          enter(k)
          pctx.watermark = wm
          emit_time = t
          local ok, err = pcall(on_timer, pctx, t)
          if not ok then ctx.dead_letter(tostring(err), { key = k, timer = t }) end
        end
      end
    end
    op.next_due = C.sl_timeq_peek_time(due)
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
  local function set_timers(tm)
    for _, e in ipairs(tm) do
      pctx.key = e[1]
      pctx.timer(nil, e[2])
    end
  end

  function op.snapshot()
    local st = {}
    for k, s in pairs(states) do st[#st + 1] = { k, s } end
    return { wm = op.wm, states = st, timers = timer_list() }
  end

  function op.inspect(k) return states[k] end
  function op.keys()
    local list = {}
    for k in pairs(states) do list[#list + 1] = k end
    return list
  end

  function op.restore(snap)
    op.wm = snap.wm
    for _, e in ipairs(snap.states) do states[e[1]] = e[2] end
    set_timers(snap.timers)
  end

  function op.handover()
    local live = { wm = op.wm, states = states, timers = timer_list() }
    states, id_key, id_time = {}, {}, {}
    return live
  end

  function op.adopt(live)
    op.wm, states = live.wm, live.states
    set_timers(live.timers)
  end

  function op.close() C.sl_timeq_free(due); due = nil end
  return op
end

return process
