-- stage.lua -- the receivers a plan is made of: stages, unions, keyed operators, sinks.
--
-- Every receiver has push(batch, n, t, w, wend[, first]) and finish(). A batch is records
-- batch[1..n]; on a stream with event time, t[i] is record i's time and w[i] the watermark
-- to apply before it (the watermark a record raised goes ahead of it), and wend the
-- watermark after the batch (nil: unchanged). finish() says the input has ended: the
-- watermark goes to +infinity, everything pending fires, and the end is passed on.
-- A receiver that takes no more records sets `done`: a take() that reached its count, and
-- any receiver all of whose consumers are done (a sink never is). A source all of whose
-- targets are done stops (runtime.lua), so the end of a branch travels upstream.
local plan = require "sluice.plan"
local host = require "sluice.host"
local typed = require "sluice.typed"
local tasks = require "sluice.tasks"

local format, type, tostring, xpcall, getinfo = string.format, type, tostring, xpcall,
  debug.getinfo
local huge = math.huge
local PUT_BATCH = 1024          -- records an operator gathers before it sends them on

local stage = {}

-- One function that hands a batch to every receiver in the list.
-- With `meter`, it also counts what passes (meter.out, meter.wm) and shows each batch to
-- meter.tap when someone taps this output (job:tap): one table read per batch otherwise.
-- With `release`: when the one receiver is an exchange point that sent the whole batch to
-- other workers as copies (its sent_away, exchange.lua) and no tap saw it, nothing holds
-- the batch's records any more, and release(b, k) gives them back to the operator that
-- made them (a window's result tables, made again in place: window.lua).
function stage.emitter(receivers, meter, release)
  local n = #receivers
  local function deliver(b, k, t, w, wend)
    for i = 1, n do receivers[i]:push(b, k, t, w, wend) end
  end
  if n == 1 then
    local r = receivers[1]
    deliver = function(b, k, t, w, wend) return r:push(b, k, t, w, wend) end
  end
  if not meter then return deliver end
  local one = release and n == 1 and receivers[1] or nil
  return function(b, k, t, w, wend)
    meter.out = meter.out + k
    if wend then meter.wm = wend end
    -- (a tap that has seen its count unsets meter.tap: whether one saw this batch is kept)
    local tap = meter.tap
    if tap then typed.plain_batch(b, k); tap(b, k) end
    if not one or tap then return deliver(b, k, t, w, wend) end
    deliver(b, k, t, w, wend)
    if k > 0 and one.sent_away then release(b, k) end
  end
end

-- ---- meters -------------------------------------------------------------------------------
--
-- A meter counts for one receiver what job:metrics() and sluice top report, and is where
-- its taps hook in (inspect.lua owns the taps; tap is nil while there is none):
--   node       the node it reports for (a fused stage: its last operator)
--   nodes      every node whose work it counts, in order (a fused stage: its operators)
--   input      records received (a source: none; a fused generator: indices generated)
--   out        records sent on (a sink: none)
--   errors     records on which a user function raised
--   dead       records it sent to the dead letters (errors included)
--   late       records that came after their window had closed (to late() or dropped)
--   wm         the last watermark it passed on, or nil
--   tap        nil, or function(batch, n) that shows a batch to the taps
--   samples    recent { clock, input, out } triples, oldest first (stage.sample)
local RATE_WINDOW = 5           -- seconds of samples a rate is measured over

function stage.meter(node, nodes)
  return { node = node, nodes = nodes or { node }, input = 0, out = 0, errors = 0, dead = 0,
    late = 0, wm = nil, tap = nil, samples = { { host.clock(), 0, 0 } } }
end

-- A tap point inside a fused stage, where no batch passes (inspect.lua arms it like a
-- meter's tap): on_change() is called when its first tap comes or its last goes.
local function point(node, on_change)
  return { node = node, nodes = { node }, tap = nil, on_change = on_change }
end

-- Notes the meter's counts at clock time `now` (a timer of the job calls it every second),
-- keeping the samples of the last RATE_WINDOW seconds and the one just before them.
function stage.sample(m, now)
  local s = m.samples
  s[#s + 1] = { now, m.input, m.out }
  while s[2] and s[2][1] <= now - RATE_WINDOW do table.remove(s, 1) end
end

-- The meter's current rates, records in and out per second over the last RATE_WINDOW
-- seconds (less while the job is younger): counts now against the oldest sample kept.
function stage.rates(m, now)
  local first = m.samples[1]
  local dt = now - first[1]
  if dt <= 0 then return 0, 0 end
  return (m.input - first[2]) / dt, (m.out - first[3]) / dt
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
-- Returns the tracker (pc.parts: the chunk's hooks, replaced when the loop is made again
-- for a tap): partition(id, topic, p) before a batch of partition id (partition p of
-- topic), after_batch() once
-- it has run, assigned(ids) and revoked(ids) as the group changes, reevaluate() from the
-- idle timer (true when the watermark may have moved), state(new) for snapshots.
-- `clock(id)`, optional: the watermark of partition id, from the source, in place of the
-- largest time seen.
local function partition_clock(parts, idle_ms, clock)
  local largest, seen, assigned = {}, {}, {}   -- id -> time; id -> clock; id -> true
  local current
  local pc = { parts = parts }
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
  -- each partition's own watermark goes to tasks.lua too: under --group a keyed operator
  -- fires each partition's windows by that partition's time
  local topic, task
  function pc.partition(id, in_topic, p)
    current, topic, task = id, in_topic, p
    assigned[id] = true
    seen[id] = idle_ms and host.clock() or true
    local v = largest[id] or -huge
    pc.parts.max(v)
    tasks.clock(topic, task, v - pc.parts.ooo, "before")
  end
  function pc.after_batch()
    if current == nil then return end
    -- a source that knows its partitions' watermarks (a --group repartition topic, whose
    -- writers say theirs) gives them; else they are the largest time seen, as in Flink
    local v = clock and clock(current) or pc.parts.max()
    largest[current] = v
    tasks.clock(topic, task, v - pc.parts.ooo, "after")
    local low = smallest()
    if low then pc.parts.raise(low) end
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
    if low then pc.parts.raise(low) end
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
  recv.meter = stage.meter(ops[#ops], ops)
  local emit1 = stage.emitter(receivers[1], recv.meter)
  local emit2 = stage.emitter(receivers[2], recv.meter)
  local run, flush, cursor, state, watermark, parts = chunk(fns, emit1, emit2, on_take_done,
    bad_value)
  -- snapshots and restores go to whichever instance of the loop runs (retap, below); a
  -- stage fed by a partitioned source keeps its partitions' event times beside
  local pc = parts and partition_clock(parts, opts.idle_ms, opts.clock)
  if pc then
    recv.partition, recv.assigned, recv.revoked = pc.partition, pc.assigned, pc.revoked
    recv.state = function(new)
      if new then state(new.stage); pc.state(new.partitions) end
      return { stage = state(), partitions = pc.state() }
    end
  else
    recv.state = function(new) return state(new) end
  end

  -- Taps inside the loop. The output of the stage's last operator passes its meter; the
  -- other operators' outputs, and the records a fused generator makes, pass no batch, so
  -- a tap there instantiates the loop again with those functions wrapped to show what
  -- passes them (plain functions again when the last tap goes). Between batches only: the
  -- loop's state (take counts, watermarks) moves to the new instance. recv.points: node
  -- -> its tap point, for every operator but the last, and the fused generator.
  recv.points = {}
  local sites = {}              -- node -> { how = "out"|"in"|"gen", k = op index }
  local function retap()
    local f = {}
    for k, v in pairs(fns) do f[k] = v end
    for node, p in pairs(recv.points) do
      local site = sites[node]
      if p.tap and site then
        local show = function(r)
          local t = p.tap
          if t then pcall(t, { typed.plain(r) }, 1) end
        end
        local k, inner = site.k, nil
        if site.how == "gen" then
          inner = f.gen
          f.gen = function(i)
            local r = inner(i)
            if r ~= nil then show(r) end
            return r
          end
        elseif site.how == "in" then
          inner = f[k]
          f[k] = function(r) show(r); return inner(r) end
        else
          inner = f[k]
          local kind = ops[k].kind
          if kind == "map" then
            f[k] = function(r)
              local x = inner(r)
              if x ~= nil then show(x) end
              return x
            end
          elseif kind == "filter" then
            f[k] = function(r)
              local keep = inner(r)
              if keep then show(r) end
              return keep
            end
          elseif kind == "flat_map" then
            f[k] = function(r)
              local a = inner(r)
              if type(a) == "table" then for j = 1, #a do show(a[j]) end end
              return a
            end
          else                  -- peek, partition: r goes on (on one port or the other)
            f[k] = function(r)
              local x = inner(r)
              show(r)
              return x
            end
          end
        end
      end
    end
    local kept = state()
    run, flush, cursor, state, watermark, parts = chunk(f, emit1, emit2, on_take_done, bad_value)
    state(kept)
    if pc then pc.parts = parts end
  end
  -- a tap comes or goes inside the loop too (its count reached): the loop is replaced
  -- before the next batch, never under the one running
  local retap_due = false
  local function on_change() retap_due = true end
  -- where each operator's output can be seen: its own function's result (map, filter,
  -- flat_map, peek, partition), else the input of the next operator that calls a function
  -- on the record with only key_by or a field timestamp (which pass records unchanged)
  -- between; nothing when a take() stands between (it has no function to wrap)
  local calls = { map = true, filter = true, flat_map = true, peek = true, partition = true }
  for k = 1, #ops - 1 do
    local node = ops[k]
    local same_as_last = false
    if calls[node.kind] then
      sites[node] = { how = "out", k = k }
    else
      same_as_last = true
      for j = k + 1, #ops do
        local o = ops[j]
        if calls[o.kind] or (o.kind == "timestamp" and not o.field) then
          sites[node] = { how = "in", k = j }
          same_as_last = false
          break
        elseif o.kind == "take" then
          same_as_last = false
          break
        end
      end
    end
    if same_as_last then
      recv.points[node] = recv.meter           -- what it passes on is the stage's output
    else
      recv.points[node] = point(node, on_change)
      recv.points[node].tappable = sites[node] ~= nil
    end
  end
  if opts.gen then
    sites[opts.gen] = { how = "gen" }
    recv.points[opts.gen] = point(opts.gen, on_change)
    recv.points[opts.gen].tappable = true
  end
  -- the first error of the stage also keeps its traceback (dl.write's second argument,
  -- which the REPL shows); later ones cost no traceback
  local finder, meter = error_finder(chunkname, line_op), recv.meter
  local function handler(e)
    local found = finder(e)
    if meter.errors == 0 then found.traceback = debug.traceback("", 2) end
    return found
  end
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
    if retap_due then retap_due = false; retap() end
    local s = first or 1
    meter.input = meter.input + (n - s + 1)
    while s <= n do
      local ok, e = xpcall(run, handler, inb, s, n, int, inw)
      if ok then break end
      local i = cursor()
      local reason = e.err
      if type(reason) ~= "string" then reason = tostring(reason) end
      meter.errors = meter.errors + 1
      meter.dead = meter.dead + 1
      if e.op == 0 then
        -- the fused generator raised: its index is the record
        dl.write({ source = "generator", at = opts.gen.where, reason = reason, record = i },
          e.traceback)
      else
        local node = ops[e.op or 1]
        local record = e.record
        if not e.found then record = inb and inb[i] or i end
        dl.write({ operator = node.kind, name = node.name, at = node.where, reason = reason,
          record = typed.plain_deep(record) }, e.traceback)
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

-- ---- unions ----------------------------------------------------------------------------------

-- What unions and two-input operators share: inputs merged into one stream of records, whose
-- watermark is the smallest of the inputs' (an idle input does not count until it sends
-- again; an ended one is +inf), and never goes back. send(i, b, n, t, w, wend) takes a batch
-- of input i with the merged watermarks; finish() comes once every input has ended;
-- done() says whether what it feeds takes no more. `timed`: whether the merged stream has
-- event time; `untimed_in`, when it has, the inputs that have none (a lookup's table
-- without event time): they hold no watermark back, and their records come with no time.
-- Returns a function giving the receiver for input i, the merge's state function
-- (state() reads it, state(s) replaces it), and push_mixed(b, n, t, w, from): a batch of
-- records of several inputs (input from[k]), in that order. `meter` counts what comes in.
local NO_TIMES = setmetatable({}, { __newindex = function() error("NO_TIMES is read-only") end })
local function merge(ninputs, timed, meter, send, finish, done, untimed_in)
  untimed_in = untimed_in or {}
  local wms, idle, ended = {}, {}, {}
  for i = 1, ninputs do wms[i] = -huge end
  local finished = 0
  local out_wm = -huge
  local ow = {}
  local shared = { done = false }
  local inputs = {}

  local function combined()
    local m, any = huge, false
    for i = 1, ninputs do
      if not idle[i] and not ended[i] and not untimed_in[i] then
        any = true
        if wms[i] < m then m = wms[i] end
      end
    end
    if not any then
      -- every input idle or ended: ended ones are +inf; all idle holds the watermark
      local all_ended = true
      for i = 1, ninputs do
        if not ended[i] and not untimed_in[i] then all_ended = false end
      end
      return all_ended and huge or out_wm
    end
    if m > out_wm then out_wm = m end
    return out_wm
  end

  -- every consumer done: so is every input, and the sources that feed them stop
  local function end_all()
    shared.done = true
    for i = 1, ninputs do inputs[i].done = true end
  end
  for i = 1, ninputs do
    local input = { done = false }
    function input.push(_, b, n, t, w, wend)
      if shared.done then input.done = true; return end
      if meter then meter.input = meter.input + n end
      if not timed then
        send(i, b, n)
      elseif untimed_in[i] then
        local now = combined()
        for k = 1, n do ow[k] = now end
        send(i, b, n, NO_TIMES, ow, nil)
      else
        idle[i] = false
        -- (a batch's watermarks mostly repeat: the merged one is worked out when one moves)
        local last_w, last = nil, nil
        for k = 1, n do
          local wk = w[k]
          if wk ~= last_w then
            wms[i] = wk
            last_w, last = wk, combined()
          end
          ow[k] = last
        end
        if wend then wms[i] = wend end
        local before = out_wm
        local now = combined()
        send(i, b, n, t, ow, now > before and now or nil)
      end
      if done() then end_all() end
    end
    function input.finish()
      if ended[i] then return end
      ended[i] = true
      finished = finished + 1
      if finished == ninputs then
        finish()
      elseif timed then
        local before = out_wm
        local now = combined()
        if now > before then send(i, {}, 0, {}, {}, now) end
      end
    end
    function input.idle()
      if not timed or idle[i] then return end
      idle[i] = true
      local before = out_wm
      local now = combined()
      if now > before and now < huge then send(i, {}, 0, {}, {}, now) end
    end
    inputs[i] = input
  end
  -- A batch whose records came through several inputs (from[k]: record k's), in this order
  -- (ordered.lua puts the workers' streams back into one): as input.push, record by record.
  local from_ow = {}
  local function push_mixed(b, n, t, w, from)
    if shared.done then return end
    if meter then meter.input = meter.input + n end
    if not timed then return send(nil, b, n) end
    local before = out_wm
    local last = before
    for k = 1, n do
      local i, wk = from[k], w[k]
      if wk ~= wms[i] or idle[i] then
        idle[i], wms[i] = false, wk
        last = combined()
      end
      from_ow[k] = last
    end
    local now = combined()
    send(nil, b, n, t, from_ow, now > before and now or nil)
    if done() then end_all() end
  end

  -- The merge's own state, for snapshots and reload: its inputs' watermarks and ends.
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
  return function(i) return inputs[i] end, state, push_mixed
end
stage.merge = merge

-- A union merges its inputs into one stream for `receivers`; `meter` counts what comes in
-- and goes out. Returns merge's pair: the receiver of input i, and the state function.
function stage.new_union(receivers, ninputs, timed, meter)
  local emit = stage.emitter(receivers, meter)
  return merge(ninputs, timed, meter,
    function(_, b, n, t, w, wend) return emit(b, n, t, w, wend) end,
    function() finish_all(receivers) end,
    function() return all_done(receivers) end)
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
  local op
  -- (an ordered point's labels refer to the batch: its records are not given back)
  local release = not opts.labels and function(b, k) if op.release then op.release(b, k) end end
  local emit1, emit2 = stage.emitter(receivers[1], meter, release), stage.emitter(receivers[2])
  local out = { {}, {} }
  local ot = { {}, {} }
  local ow = { {}, {} }
  -- opts.labels (--workers, exchange.lua's team.labels): the operator takes a numbered
  -- point's batches whole, each record with its label (lab.input_labels, for the batch
  -- lab.input_of), and what it puts out carries the label of the record it was taking
  -- (lab.batch_labels for the batch lab.batch_of), read by the ordered points it feeds
  -- directly
  local lab = opts.labels
  local oq = { {}, {} }
  local m = { 0, 0 }
  local late_dropped = 0
  local flush                   -- sends on what put gathered (below)
  local function put(port, r, t)
    if port == 2 then
      meter.late = meter.late + 1
      if #receivers[2] == 0 then late_dropped = late_dropped + 1; return end
    end
    local k = m[port] + 1
    m[port] = k
    out[port][k] = r
    ot[port][k] = t
    ow[port][k] = op.wm
    if lab then oq[port][k] = lab.label end
    -- a window that fires many keys at once sends its results on a batch at a time, so
    -- they are not all held here (and downstream, which can fire as they come) at once
    if k >= PUT_BATCH then flush(nil) end
  end
  local ctx = {
    dead_letter = function(reason, record, traceback)
      meter.errors = meter.errors + 1
      meter.dead = meter.dead + 1
      dl.write({ operator = node.computes or node.kind, name = node.name, at = node.where,
        reason = reason, record = typed.plain_deep(record) }, traceback)
    end,
  }
  op = make(node, put, ctx)
  local recv = { done = false, op = op, node = node, meter = meter }
  local cur = 0
  local timed_in = opts.timed_in

  -- The watermark moves per record, but firing is rare: op.next_due (the earliest time a
  -- window or timer fires) makes the common case one comparison.
  -- `side` is the input a batch came from, for an operator of two (joins); nil otherwise.
  local step = op.step
  -- record i of a batch with event time: the watermark first (LuaJIT inlines this call)
  local function timed_step(b, i, t, w, side)
    local wi = w[i]
    if wi > op.wm then
      if wi >= op.next_due then op.advance(wi) else op.wm = wi end
    end
    step(b[i], t[i], side)
  end
  local run
  if timed_in then
    run = function(b, s, n, t, w, side)
      for i = s, n do
        cur = i
        timed_step(b, i, t, w, side)
      end
    end
  else
    run = function(b, s, n, _, _, side)
      for i = s, n do
        cur = i
        step(b[i], nil, side)
      end
    end
  end
  -- the same, each record's label set first (opts.labels)
  local run_labelled = function(b, s, n, t, w, side)
    local q = lab.input_labels
    for i = s, n do
      cur = i
      lab.label = q[i]
      if timed_in then timed_step(b, i, t, w, side) else step(b[i], nil, side) end
    end
  end

  local sent = -huge
  function flush(wend)
    local pass = nil
    if opts.timed_out and wend and wend > sent then sent = wend; pass = wend end
    -- (a flush downstream, within this one, sets its own labels: these come back after)
    local outer_labels, outer_of
    if lab then outer_labels, outer_of = lab.batch_labels, lab.batch_of end
    if m[1] > 0 or pass then
      local k = m[1]; m[1] = 0
      if lab then lab.batch_labels, lab.batch_of = oq[1], out[1] end
      if opts.timed_out then emit1(out[1], k, ot[1], ow[1], pass) else emit1(out[1], k) end
    end
    if m[2] > 0 or pass then
      local k = m[2]; m[2] = 0
      if lab then lab.batch_labels, lab.batch_of = oq[2], out[2] end
      if opts.timed_out then emit2(out[2], k, ot[2], ow[2], pass) else emit2(out[2], k) end
    end
    if lab then lab.batch_labels, lab.batch_of = outer_labels, outer_of end
  end

  -- typed records (typed.lua) live as long as their batch: an operator that may keep
  -- one gets its table form, unless what comes in is plain for sure
  local plain_in = #node.inputs > 0
  for _, input in ipairs(node.inputs) do
    -- port 2 of a window carries its late records, as they came
    if input.port ~= 1 or not typed.plain_out(input.node) then plain_in = false end
  end
  local keeps_records = not typed.views_safe_in(node) and not plain_in
  -- an error keeps its traceback the first time only (the REPL shows it)
  local function handler(e)
    if meter.errors == 0 then return { err = e, traceback = debug.traceback("", 2) } end
    return { err = e }
  end
  function recv.push(_, b, n, t, w, wend, side)
    if recv.done then return end
    meter.input = meter.input + n
    if keeps_records then typed.plain_batch(b, n) end
    local s = 1
    local run_batch = lab and lab.input_of == b and run_labelled or run
    while s <= n do
      local ok, e = xpcall(run_batch, handler, b, s, n, t, w, side)
      if ok then break end
      local err = e.err
      ctx.dead_letter(type(err) == "string" and err or tostring(err), b[cur], e.traceback)
      s = cur + 1
    end
    -- the batch's typed records die with it: what the operator kept of them is made plain
    if op.settle then op.settle() end
    if wend and wend > op.wm then op.advance(wend) end
    -- partial aggregates in (combiner.lua) count as the records they folded
    if op.represented and (op.represented ~= 0 or op.represented_late ~= 0) then
      meter.input = meter.input + op.represented
      meter.late = meter.late + op.represented_late
      op.represented, op.represented_late = 0, 0
    end
    flush(op.wm)
    -- every consumer is done (a take() downstream reached its count): so is this operator
    if all_done(every) then recv.done = true end
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
      if recv.done then return end
      op.early()
      flush(nil)
      if all_done(every) then recv.done = true end
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

-- A keyed operator of two inputs (a join): the shell of new_operator behind a merge of its
-- inputs, so the operator sees one watermark, the smaller of the two, and each record with
-- the side it came from (op.step(r, t, side), side 1 or 2). Returns the shell's receiver
-- (recv.input(i) is the receiver of input i) and the merge's state function. With
-- opts.timed_in, opts.untimed_in[i] says input i has no event time (a lookup's table).
function stage.new_join(node, make, ports, dl, opts)
  local recv = stage.new_operator(node, make, ports, dl, opts)
  local input, state = merge(2, opts.timed_in, nil,
    function(i, b, n, t, w, wend) return recv:push(b, n, t, w, wend, i) end,
    function() recv:finish() end,
    function() return recv.done end, opts.untimed_in)
  recv.input = input
  return recv, state
end

-- ---- sinks ------------------------------------------------------------------------------------

-- A sink's receiver: `s` is the running sink (sink.open). Its meter counts what comes in,
-- and its taps see each batch on its way in.
function stage.new_sink(s, node)
  local meter = stage.meter(node)
  return { done = false, meter = meter, finish = function() end,
    push = function(_, b, n, t)
      meter.input = meter.input + n
      if meter.tap then typed.plain_batch(b, n); meter.tap(b, n) end
      s.push(b, n, t)
    end }
end

return stage
