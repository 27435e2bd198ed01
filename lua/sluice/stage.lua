-- stage.lua -- the receivers a plan is made of: stages, unions, keyed operators, sinks.
--
-- Every receiver has push(batch, n, t, w, wend[, first]) and finish(). A batch is records
-- batch[1..n]; on a stream with event time, t[i] is record i's time and w[i] the watermark
-- to apply before it (the watermark a record raised goes ahead of it), and wend the
-- watermark after the batch (nil: unchanged). finish() says the input has ended: the
-- watermark goes to +infinity, everything pending fires, and the end is passed on.
-- A receiver that takes no more records (a take() reached its count) sets `done`.
local plan = require "sluice.plan"
local host = require "sluice.host"
local typed = require "sluice.typed"

local format, type, tostring, xpcall, getinfo = string.format, type, tostring, xpcall,
  debug.getinfo
local huge = math.huge
local PUT_BATCH = 1024          -- records an operator gathers before it sends them on

local stage = {}

-- One function that hands a batch to every receiver in the list.
-- With `meter`, it also counts what passes (meter.out, meter.wm) and shows each batch to
-- meter.tap when someone taps this output (job:tap): one table read per batch otherwise.
function stage.emitter(receivers, meter)
  local n = #receivers
  local function deliver(b, k, t, w, wend)
    for i = 1, n do receivers[i]:push(b, k, t, w, wend) end
  end
  if n == 1 then
    local r = receivers[1]
    deliver = function(b, k, t, w, wend) return r:push(b, k, t, w, wend) end
  end
  if not meter then return deliver end
  return function(b, k, t, w, wend)
    meter.out = meter.out + k
    if wend then meter.wm = wend end
    if meter.tap then typed.plain_batch(b, k); meter.tap(b, k) end
    return deliver(b, k, t, w, wend)
  end
end

-- A meter: the counts job:metrics() reports for one output.
function stage.meter(node)
  return { node = node, out = 0, errors = 0, wm = nil, tap = nil }
end

local function all_done(receivers)
  if #receivers == 0 then return false end
  for i = 1, #receivers do
    if not receivers[i].done then return false end
  end
  return true
end
stage.all_done = all_done

local function finish_all(receivers)
  for i = 1, #receivers do receivers[i]:finish() end
end

local function idle_all(receivers)
  for i = 1, #receivers do if receivers[i].idle then receivers[i]:idle() end end
end

-- Finds, at an error, the generated chunk's frame: which op was running (by line) and
-- the record it was given (its innermost live local `r`). Runs only on error.
local function error_finder(chunkname, line_op)
  return function(e)
    for level = 2, 60 do
      local info = getinfo(level, "Sl")
      if not info then break end
      if info.source == chunkname then
        local record, found = nil, false
        for k = 1, 200 do
          local name, value = debug.getlocal(level, k)
          if name == nil then break end
          if name == "r" then record, found = value, true end
        end
        return { err = e, op = line_op[info.currentline], record = record, found = found }
      end
    end
    return { err = e }
  end
end

-- ---- stages -------------------------------------------------------------------------------

-- Per-partition event time for a stage fed by a partitioned source (Kafka): `parts` is the
-- generated chunk's { max, raise } (plan.lua). The stage's watermark is the smallest of
-- the largest event times of the partitions assigned to the source (minus the
-- out-of-orderness), leaving out those silent for idle_ms when the timestamp has `idle`:
-- so partitions that are each in order, read in any interleaving, make no record late.
-- Returns the tracker: partition(id) before a batch of partition id, after_batch() once
-- it has run, assigned(ids) and revoked(ids) as the group changes, reevaluate() from the
-- idle timer (true when the watermark may have moved), state(new) for snapshots.
local function partition_clock(parts, idle_ms)
  local largest, seen, assigned = {}, {}, {}   -- id -> time; id -> clock; id -> true
  local current
  local pc = {}
  local function smallest()
    local low, any = huge, false
    local now = idle_ms and host.clock()
    for id in pairs(assigned) do
      if not (idle_ms and seen[id] and (now - seen[id]) * 1000 >= idle_ms) then
        local v = largest[id] or -huge
        if v < low then low = v end
        any = true
      end
    end
    return any and low or nil
  end
  function pc.partition(id)
    current = id
    assigned[id] = true
    seen[id] = idle_ms and host.clock() or true
    parts.max(largest[id] or -huge)
  end
  function pc.after_batch()
    if current == nil then return end
    largest[current] = parts.max()
    local low = smallest()
    if low then parts.raise(low) end
  end
  function pc.assigned(ids)
    for _, id in ipairs(ids) do
      assigned[id] = true
      seen[id] = idle_ms and host.clock() or true
    end
  end
  function pc.revoked(ids)
    for _, id in ipairs(ids) do assigned[id], largest[id], seen[id] = nil, nil, nil end
  end
  function pc.reevaluate()
    local low = smallest()
    if low then parts.raise(low) end
    return low ~= nil
  end
  function pc.state(new)
    if new then
      largest = {}
      for id, v in pairs(new) do largest[id] = v; assigned[id] = true end
    end
    local copy = {}
    for id, v in pairs(largest) do copy[id] = v end
    return copy
  end
  return pc
end

-- A stage: its generated loop, run protected per batch. opts: gen (a generator source
-- node fused into it), timed_in, timed_out, ts (the stage holds a timestamp op), idle_ms,
-- partitioned (its input is a partitioned source: each batch from one partition).
function stage.new_stage(st, ports, dl, opts)
  local ops, fns = st.ops, {}
  for k, node in ipairs(ops) do fns[k] = node.fn or false end
  fns.gen = opts.gen and opts.gen.spec.fn
  fns.keep = opts.gen and opts.gen.spec.keep
  local src, line_op = plan.codegen(ops, { generator = opts.gen ~= nil, keep = fns.keep ~= nil,
    timed_in = opts.timed_in, timed_out = opts.timed_out, partitioned = opts.partitioned })
  local chunkname = format("=sluice stage %d", st.id)
  local chunk = assert(load(src, chunkname))
  local recv = { done = false, stage = st, ops = ops }
  local receivers = { ports[1] or {}, ports[2] or {} }
  local every = {}
  for p = 1, 2 do for _, r in ipairs(receivers[p]) do every[#every + 1] = r end end
  for _, node in ipairs(ops) do
    if node.kind == "take" and node.n == 0 then recv.done = true end
  end

  local function bad_value(k, v)
    local kind = ops[k].kind
    if kind == "timestamp" then
      error(format("timestamp(): event time must be a number of ms, got %s", tostring(v)), 0)
    end
    error(format("flat_map() must return an array or nil, got %s", type(v)), 0)
  end
  local function on_take_done() recv.take_done = true end
  recv.meter = stage.meter(ops[#ops])
  local run, flush, cursor, state, watermark, parts = chunk(fns,
    stage.emitter(receivers[1], recv.meter), stage.emitter(receivers[2], recv.meter),
    on_take_done, bad_value)
  recv.state = state
  local pc = parts and partition_clock(parts, opts.idle_ms)
  if pc then
    recv.partition, recv.assigned, recv.revoked = pc.partition, pc.assigned, pc.revoked
    recv.state = function(new)
      if new then state(new.stage); pc.state(new.partitions) end
      return { stage = state(), partitions = pc.state() }
    end
  end
  local handler = error_finder(chunkname, line_op)
  local sent = -huge            -- the watermark last passed downstream
  local idle_timer, last_activity

  local function pass_wend(wend_in)
    if not opts.timed_out then return nil end
    local wend = opts.ts and watermark() or wend_in
    if wend ~= nil and wend > sent then sent = wend; return wend end
    return nil
  end

  function recv.push(_, inb, n, int, inw, wend, first)
    if recv.done then return end
    local s = first or 1
    while s <= n do
      local ok, e = xpcall(run, handler, inb, s, n, int, inw)
      if ok then break end
      local i = cursor()
      local reason = e.err
      if type(reason) ~= "string" then reason = tostring(reason) end
      recv.meter.errors = recv.meter.errors + 1
      if e.op == 0 then
        -- the fused generator raised: its index is the record
        dl.write { source = "generator", at = opts.gen.where, reason = reason, record = i }
      else
        local node = ops[e.op or 1]
        local record = e.record
        if not e.found then record = inb and inb[i] or i end
        dl.write { operator = node.kind, name = node.name, at = node.where, reason = reason,
          record = typed.plain_deep(record) }
      end
      s = i + 1
    end
    if idle_timer then last_activity = host.clock(); recv.idle_sent = false end
    if pc then pc.after_batch() end
    flush(pass_wend(wend))
    if recv.take_done or all_done(every) then recv.done = true end
  end

  function recv.finish()
    if idle_timer then idle_timer:close(); idle_timer = nil end
    if opts.timed_out then
      sent = huge
      flush(huge)
    else
      flush()
    end
    finish_all(every)
  end

  function recv.idle()
    -- an idle input upstream: nothing of ours to hold back, pass it on
    if not opts.ts then idle_all(every) end
  end

  -- timestamp{idle = d}: when no record came for d of processing time, say so downstream,
  -- so that a union stops waiting for this input's watermark
  if opts.idle_ms then
    last_activity = host.clock()
    idle_timer = host.core.timer(function()
      -- a partition gone silent stops holding the watermark back
      if pc and pc.reevaluate() then flush(pass_wend(nil)) end
      if not recv.idle_sent and (host.clock() - last_activity) * 1000 >= opts.idle_ms then
        recv.idle_sent = true
        idle_all(every)
      end
    end)
    idle_timer:start(opts.idle_ms, math.max(1, math.floor(opts.idle_ms / 4)))
    recv.close = function() if idle_timer then idle_timer:close(); idle_timer = nil end end
  end
  return recv
end

-- ---- unions -------------------------------------------------------------------------------

-- A union merges its inputs. On streams with event time its watermark is the smallest of
-- its inputs' (an idle input does not count until it sends again; an ended one is +inf),
-- and never goes back. Returns a function giving the receiver for input i, and the
-- union's state function (state() reads it, state(s) replaces it).
function stage.new_union(receivers, ninputs, timed)
  local emit = stage.emitter(receivers)
  local wms, idle, ended = {}, {}, {}
  for i = 1, ninputs do wms[i] = -huge end
  local finished = 0
  local out_wm = -huge
  local ow = {}
  local shared = { done = false }

  local function combined()
    local m, any = huge, false
    for i = 1, ninputs do
      if not idle[i] and not ended[i] then
        any = true
        if wms[i] < m then m = wms[i] end
      end
    end
    if not any then
      -- every input idle or ended: ended ones are +inf; all idle holds the watermark
      local all_ended = true
      for i = 1, ninputs do if not ended[i] then all_ended = false end end
      return all_ended and huge or out_wm
    end
    if m > out_wm then out_wm = m end
    return out_wm
  end

  local inputs = {}
  for i = 1, ninputs do
    local input = { done = false }
    function input.push(_, b, n, t, w, wend)
      if shared.done then input.done = true; return end
      if not timed then
        emit(b, n)
      else
        idle[i] = false
        for k = 1, n do
          wms[i] = w[k]
          ow[k] = combined()
        end
        if wend then wms[i] = wend end
        local before = out_wm
        local now = combined()
        emit(b, n, t, ow, now > before and now or nil)
      end
      if all_done(receivers) then shared.done = true; input.done = true end
    end
    function input.finish()
      if ended[i] then return end
      ended[i] = true
      finished = finished + 1
      if finished == ninputs then
        finish_all(receivers)
      elseif timed then
        local before = out_wm
        local now = combined()
        if now > before then emit({}, 0, {}, {}, now) end
      end
    end
    function input.idle()
      if not timed or idle[i] then return end
      idle[i] = true
      local before = out_wm
      local now = combined()
      if now > before and now < huge then emit({}, 0, {}, {}, now) end
    end
    inputs[i] = input
  end
  -- The union's own state, for snapshots and reload: its inputs' watermarks and ends.
  local function state(new)
    if new then
      finished = 0
      for i = 1, ninputs do
        wms[i] = new.wms[i] or -huge
        ended[i] = new.ended[i] or nil
        if ended[i] then finished = finished + 1 end
      end
      out_wm = new.out_wm
    end
    local e = {}
    for i = 1, ninputs do e[i] = ended[i] == true end
    return { wms = { unpack(wms, 1, ninputs) }, ended = e, out_wm = out_wm }
  end
  return function(i) return inputs[i] end, state
end

-- ---- keyed operators ------------------------------------------------------------------------

-- The shell of a keyed operator (operator.lua states the protocol): runs op.step per record
-- after moving the watermark to the record's, protected per batch like a stage; port 1
-- carries results, port 2 (windows) the late records.
function stage.new_operator(node, make, ports, dl, opts)
  local receivers = { ports[1] or {}, ports[2] or {} }
  local every = {}
  for p = 1, 2 do for _, r in ipairs(receivers[p]) do every[#every + 1] = r end end
  local meter = stage.meter(node)
  local emit1, emit2 = stage.emitter(receivers[1], meter), stage.emitter(receivers[2])
  local out = { {}, {} }
  local ot = { {}, {} }
  local ow = { {}, {} }
  local m = { 0, 0 }
  local op
  local late_dropped = 0
  local flush                   -- sends on what put gathered (below)
  local function put(port, r, t)
    if port == 2 and #receivers[2] == 0 then late_dropped = late_dropped + 1; return end
    local k = m[port] + 1
    m[port] = k
    out[port][k] = r
    ot[port][k] = t
    ow[port][k] = op.wm
    -- a window that fires many keys at once sends its results on a batch at a time, so
    -- they are not all held here (and downstream, which can fire as they come) at once
    if k >= PUT_BATCH then flush(nil) end
  end
  local ctx = {
    dead_letter = function(reason, record)
      if meter then meter.errors = meter.errors + 1 end
      dl.write { operator = node.computes or node.kind, name = node.name, at = node.where,
        reason = reason, record = typed.plain_deep(record) }
    end,
  }
  op = make(node, put, ctx)
  local recv = { done = false, op = op, node = node, meter = meter }
  local cur = 0
  local timed_in = opts.timed_in

  -- The watermark moves per record, but firing is rare: op.next_due (the earliest time a
  -- window or timer fires) makes the common case one comparison.
  local step = op.step
  local run
  if timed_in then
    run = function(b, s, n, t, w)
      for i = s, n do
        cur = i
        local wi = w[i]
        if wi > op.wm then
          if wi >= op.next_due then op.advance(wi) else op.wm = wi end
        end
        step(b[i], t[i])
      end
    end
  else
    run = function(b, s, n)
      for i = s, n do
        cur = i
        step(b[i], nil)
      end
    end
  end

  local sent = -huge
  function flush(wend)
    local pass = nil
    if opts.timed_out and wend and wend > sent then sent = wend; pass = wend end
    if m[1] > 0 or pass then
      local k = m[1]; m[1] = 0
      if opts.timed_out then emit1(out[1], k, ot[1], ow[1], pass) else emit1(out[1], k) end
    end
    if m[2] > 0 or pass then
      local k = m[2]; m[2] = 0
      if opts.timed_out then emit2(out[2], k, ot[2], ow[2], pass) else emit2(out[2], k) end
    end
  end

  -- typed records (typed.lua) live as long as their batch: an operator that may keep
  -- one gets its table form, unless what comes in is plain for sure
  local plain_in = #node.inputs > 0
  for _, input in ipairs(node.inputs) do
    -- port 2 of a window carries its late records, as they came
    if input.port ~= 1 or not typed.plain_out(input.node) then plain_in = false end
  end
  local keeps_records = not typed.views_safe_in(node) and not plain_in
  function recv.push(_, b, n, t, w, wend)
    if keeps_records then typed.plain_batch(b, n) end
    local s = 1
    while s <= n do
      local ok, err = pcall(run, b, s, n, t, w)
      if ok then break end
      ctx.dead_letter(type(err) == "string" and err or tostring(err), b[cur])
      s = cur + 1
    end
    if wend and wend > op.wm then op.advance(wend) end
    flush(op.wm)
  end

  function recv.finish()
    op.advance(huge)
    flush(huge)
    finish_all(every)
  end

  function recv.idle() idle_all(every) end

  -- trigger{every = d}: early results on a processing-time timer
  local early_timer
  if node.early_every then
    early_timer = host.core.timer(function()
      op.early()
      flush(nil)
    end)
    early_timer:start(node.early_every, node.early_every)
  end
  function recv.close()
    if early_timer then early_timer:close(); early_timer = nil end
    if op.close then op.close() end
  end
  function recv.late_dropped() return late_dropped end
  return recv
end

-- ---- sinks ------------------------------------------------------------------------------------

function stage.new_sink(s)
  return { done = false, push = function(_, b, n) s.push(b, n) end, finish = function() end }
end

return stage
