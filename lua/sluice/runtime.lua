-- runtime.lua -- running a planned graph on the host's event loop.
--
-- runtime.run(set) instantiates the nodes of `set` as receivers (stage.lua): one per fused
-- stage, union, keyed operator and sink; then starts the sources and runs the libuv loop
-- until every source has ended (bounded input) or the job fails. Bad records never stop a
-- job: they go to the dead letter output with where and why, and the next record flows
-- (unless on_error is "fail"). It also snapshots and restores a job's state, and lets a
-- client look inside a running job (metrics, taps, keyed state).
local graph = require "sluice.graph"
local plan = require "sluice.plan"
local host = require "sluice.host"
local source = require "sluice.source"
local sink = require "sluice.sink"
local stage = require "sluice.stage"

local core = host.core
local format, tostring = string.format, tostring

local runtime = {}

-- Settings for every job in this process; the command line sets them.
runtime.options = {
  batch_size = tonumber(os.getenv("SLUICE_BATCH_SIZE")) or 1024,
  on_error = "dead-letter",     -- or "fail": the first bad record stops the job, status 1
}

local running = false

-- ---- dead letters ---------------------------------------------------------------------

-- The dead letter output of one run: one JSON object per record, on stderr unless the
-- script chose a sink with sl.dead_letter(). Counts what it wrote.
local function open_dead_letters(job)
  local dl = { count = 0 }
  local spec = job and job.dead_letter
  local out
  if spec then
    out = sink.open(spec, { bad_output = function() end, user_error = function() end })
  else
    local w = core.writer { fd = 2, format = "json" }
    out = { push = function(b, n) local bad = w:write(b, n); w:flush(); return bad end,
      close = function() w:close() end }
  end
  function dl.write(entry)
    if runtime.options.on_error == "fail" then
      local where = entry.line and format("%s:%d", tostring(entry.source), entry.line)
        or entry.at or "?"
      local reason = tostring(entry.reason)
      local what = entry.operator and format(" (in %s at %s)", entry.operator, entry.at or "?")
        or ""
      error((reason:find(where, 1, true) == 1 and reason or (where .. ": " .. reason)) .. what, 0)
    end
    dl.count = dl.count + 1
    if out.push({ entry }, 1) then
      -- the record itself could not be encoded (a function in it, say): keep its text
      entry.record = tostring(entry.record)
      out.push({ entry }, 1)
    end
  end
  dl.close = out.close
  return dl
end

-- ---- state ids ---------------------------------------------------------------------------

-- The stable id of a node's state: its name(), else a path of kinds from its source
-- ("source.file in.jsonl/timestamp/key_by/window"), numbered when two paths are equal.
-- Unnamed ids survive edits that leave the path alone; names survive any edit.
local function assign_ids(nodes)
  local used = {}
  for _, node in ipairs(nodes) do
    local id = node.name
    if not id then
      local up = node.inputs[1] and node.inputs[1].node
      id = up and ((up.state_id or up.label or up.kind) .. "/" .. node.kind) or (node.label or node.kind)
      if used[id] then
        local k = 2
        while used[id .. "#" .. k] do k = k + 1 end
        id = id .. "#" .. k
      end
    end
    used[id] = true
    node.state_id = id
  end
end

-- ---- the job --------------------------------------------------------------------------

local current                   -- the running job: receivers, sources, for snapshots

local operator_kinds = { window = true, rolling_aggregate = true, rolling_reduce = true,
  process = true }

-- Runs the nodes of `set` (every ancestor of the sinks to run) to the end of their input.
-- `job` is the graph.begin() job (for its dead letter sink), or nil. `opts.restore` is a
-- snapshot (runtime.snapshot()) to start from. Returns true, or nil and a message.
function runtime.run(set, job, opts)
  opts = opts or {}
  if running then
    return nil, "cannot run a stream while a job is running (collect() inside a function?)"
  end
  local window = require "sluice.window"
  local stages = plan.assign_stages(set)
  local nodes = graph.ordered(set)
  assign_ids(nodes)
  local timed_memo = {}
  local dl = open_dead_letters(job)
  local receiver, sinks, sources, closers = {}, {}, {}, {}
  local stateful = {}           -- state id -> { snapshot = fn, restore = fn }
  local fused = {}              -- generator or nexmark source node -> the stage that runs it
  local unions = {}             -- union node -> function(i) giving its input i
  local ok, err = pcall(function()
    local function receiver_of(c)
      if c.node.kind == "union" then return unions[c.node](c.index) end
      return receiver[c.node]
    end
    local function receivers_of(node, port)
      local list = {}
      for _, c in ipairs(plan.consumers_in(node, set)) do
        if c.port == port then list[#list + 1] = receiver_of(c) end
      end
      return list
    end
    -- Receivers downstream first, so each is wired to what it feeds.
    for i = #nodes, 1, -1 do
      local node = nodes[i]
      local timed_in = node.inputs[1] and plan.timed(node.inputs[1].node, timed_memo)
      local timed_out = plan.timed(node, timed_memo)
      if node.kind == "sink" then
        local spec = node.spec
        local s = sink.open(spec, {
          bad_output = function(record, reason)
            dl.write { sink = spec.label, at = spec.where, reason = reason, record = record }
          end,
          user_error = function(e, record)
            dl.write { operator = "sink.fn", at = spec.where, reason = tostring(e), record = record }
          end,
        })
        sinks[#sinks + 1] = s
        receiver[node] = stage.new_sink(s)
      elseif node.kind == "union" then
        unions[node] = stage.new_union(receivers_of(node, 1), #node.inputs, timed_out)
      elseif operator_kinds[node.kind] then
        local make = node.kind == "window" and window.new or window[node.kind]
        local r = stage.new_operator(node, make, { receivers_of(node, 1), receivers_of(node, 2) },
          dl, { timed_in = timed_in, timed_out = timed_out })
        receiver[node] = r
        closers[#closers + 1] = r.close
        stateful[node.state_id] = { snapshot = r.op.snapshot, restore = r.op.restore, node = node }
      elseif plan.fusable[node.kind] then
        local st = stages[node.stage]
        if st.ops[1] == node then
          local last = st.ops[#st.ops]
          local up = node.inputs[1].node
          local gen = #node.inputs == 1 and up.kind == "source" and source.fusable[up.spec.type]
            and #plan.consumers_in(up, set) == 1 and up or nil
          local ts, idle_ms = false, nil
          for _, op in ipairs(st.ops) do
            if op.kind == "timestamp" then ts = true; idle_ms = op.idle end
          end
          local r = stage.new_stage(st, { receivers_of(last, 1), receivers_of(last, 2) }, dl,
            { gen = gen, timed_in = timed_in, timed_out = plan.timed(last, timed_memo), ts = ts,
              idle_ms = idle_ms })
          receiver[node] = r
          if r.close then closers[#closers + 1] = r.close end
          stateful[node.state_id] = { snapshot = r.state, restore = r.state, node = node }
          if gen then fused[gen] = r end
        end
      end
    end
    if opts.restore then runtime.restore_into(stateful, opts.restore) end
    local live = 0
    local function finish()
      for _, s in ipairs(sinks) do s.close() end
      sinks = {}
      core.stop()
    end
    for _, node in ipairs(nodes) do
      if node.kind == "source" then
        local spec = node.spec
        local targets = receivers_of(node, 1)
        local push = stage.emitter(targets)
        local st = fused[node]
        live = live + 1
        local ended = false
        local position = opts.restore and opts.restore.sources
          and opts.restore.sources[node.state_id]
        local src = source.open(spec, {
          batch_size = runtime.options.batch_size,
          position = position,
          push = function(b, n)
            push(b, n)
            if runtime.options.after_batch then runtime.options.after_batch() end
            return stage.all_done(targets)
          end,
          -- a generator fused into its stage: the stage makes records from..to itself
          run_range = st and function(from, to)
            st:push(nil, to, nil, nil, nil, from)
            if runtime.options.after_batch then runtime.options.after_batch() end
            return st.done
          end,
          bad = function(info)
            -- a file by its path; a socket by its address ("tcp 127.0.0.1:7070")
            dl.write { source = spec.path or (spec.label or spec.type):gsub("^source%.", ""),
              at = spec.where, line = info.line,
              offset = info.offset, reason = info.reason, record = info.raw }
          end,
          user_error = function(e, i)
            dl.write { source = spec.type, at = spec.where, reason = tostring(e), record = i }
          end,
          ended = function()
            -- after an abort, a source that closes is not an end of input: nothing fires
            if ended or runtime.aborted then return end
            ended = true
            if st then st:finish() else for _, r in ipairs(targets) do r:finish() end end
            live = live - 1
            if live == 0 then finish() end
          end,
        })
        src.id = node.state_id
        sources[#sources + 1] = src
      end
    end
  end)
  if ok then
    running = true
    current = { stateful = stateful, sources = sources, receiver = receiver, nodes = nodes,
      started = host.clock() }
    -- Stops reading: every source is closed, and what was already read drains through
    -- the graph before the sinks close (the loop ends once the last source has ended).
    runtime.shutdown = function()
      for _, s in ipairs(sources) do s.close() end
    end
    ok, err = core.run()
    running = false
    current = nil
    runtime.shutdown = nil
  end
  for _, s in ipairs(sources) do pcall(s.close) end
  runtime.aborted = nil
  for _, s in ipairs(sinks) do
    local closed, cerr = pcall(s.close)
    if ok and not closed then ok, err = nil, cerr end
  end
  for _, c in ipairs(closers) do pcall(c) end
  pcall(dl.close)
  runtime.dead_letters = dl.count
  if not ok then return nil, err end
  return true
end

-- The state of the running job, between batches: every stateful operator's state by id,
-- and each source's position. Plain values msgpack can carry.
function runtime.snapshot()
  assert(current, "runtime.snapshot(): no job is running")
  local snap = { version = 1, operators = {}, sources = {} }
  for id, s in pairs(current.stateful) do snap.operators[id] = s.snapshot() end
  for _, src in ipairs(current.sources) do
    if src.position then snap.sources[src.id] = src.position() end
  end
  return snap
end

-- Restores operator state by id; returns the ids it did not know (state dropped).
function runtime.restore_into(stateful, snap)
  local unknown = {}
  for id, state in pairs(snap.operators or {}) do
    local s = stateful[id]
    if s then s.restore(state) else unknown[#unknown + 1] = id end
  end
  table.sort(unknown)
  return unknown
end

-- ---- looking inside a running job (sluice attach) ------------------------------------------

-- The receiver whose output is operator `name`'s (named operators end their stage).
local function named(name)
  assert(current, "no job is running")
  for _, node in ipairs(current.nodes) do
    if node.name == name or node.state_id == name then
      for _, r in pairs(current.receiver) do
        if r.meter and r.meter.node == node then return r, node end
      end
      error(string.format("operator %q has no output of its own to look at", name), 0)
    end
  end
  error(string.format("no operator is named %q (see job:graph())", name), 0)
end

-- Per operator output: records out, records/s since the start, errors, watermark and its
-- lag behind the wall clock.
function runtime.metrics()
  assert(current, "no job is running")
  local list, elapsed, now = {}, host.clock() - current.started, host.now_ms()
  for _, r in pairs(current.receiver) do
    local m = r.meter
    if m then
      list[#list + 1] = { operator = m.node.name or m.node.state_id, kind = m.node.kind,
        records_out = m.out, rate = elapsed > 0 and math.floor(m.out / elapsed) or 0,
        errors = m.errors, watermark = m.wm,
        watermark_lag_ms = m.wm and m.wm > -math.huge and m.wm < math.huge and now - m.wm or nil }
    end
  end
  table.sort(list, function(a, b) return a.operator < b.operator end)
  return list
end

-- Calls on_record(r) for the next n records operator `name` emits, then stops tapping.
-- Several taps on one operator each see every record. Returns a function that cancels it.
function runtime.tap(name, n, on_record)
  local r = named(name)
  local meter = r.meter
  meter.taps = meter.taps or {}
  local tap = { left = n or 10, fn = on_record }
  meter.taps[tap] = true
  local function cancel()
    meter.taps[tap] = nil
    if next(meter.taps) == nil then meter.tap = nil end
  end
  meter.tap = function(b, k)
    for t in pairs(meter.taps) do
      for i = 1, k do
        if t.left <= 0 then break end
        t.left = t.left - 1
        t.fn(b[i])
      end
      if t.left <= 0 then meter.taps[t] = nil end
    end
    if next(meter.taps) == nil then meter.tap = nil end
  end
  return cancel
end

-- Operator `name`'s state for `key` (a plain value), or nil when the key has none.
function runtime.state(name, key)
  local r = named(name)
  if not (r.op and r.op.inspect) then
    error(string.format("operator %q keeps no keyed state", name), 0)
  end
  return r.op.inspect(key)
end

-- Stops the running job where it is, as a crash would: no end of input, nothing fires.
function runtime.abort()
  runtime.aborted = true
  core.stop()
end

-- Runs the graph that feeds stream `s` and returns the array of the records it carries.
function runtime.collect(s)
  local spec = sink.collect()
  local node = graph.node("sink", { { node = s.node, port = s.port } },
    { spec = spec, label = "collect", transient = true })
  -- sinks attached to this very stream run too: s:sink(file):collect() writes the file
  local targets = { node }
  for _, c in ipairs(s.node.consumers) do
    if c.port == s.port and c.node.kind == "sink" and not c.node.detached then
      targets[#targets + 1] = c.node
    end
  end
  local ok, err = runtime.run(graph.ancestors(targets), graph.current())
  -- the collect node served this call only: take it out of the job's graph again
  node.detached = true
  local list = s.node.consumers
  for i = #list, 1, -1 do
    if list[i].node == node then table.remove(list, i) end
  end
  if not ok then error(err, 0) end
  return spec.collected
end

return runtime
