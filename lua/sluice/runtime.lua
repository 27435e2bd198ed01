-- runtime.lua -- running a planned graph on the host's event loop.
--
-- runtime.run(set) builds the nodes of `set` into a graph of receivers (stage.lua): one
-- per fused stage, union, keyed operator and sink; then starts the sources and runs the
-- libuv loop until every source has ended (bounded input) or the job fails. Bad records
-- never stop a job: they go to the dead letter output with where and why, and the next
-- record flows (unless on_error is "fail"). It also snapshots and restores a job's state,
-- swaps a running job to a new graph (runtime.swap, for hot reload: reload.lua), and lets
-- a client look inside a running job (metrics, taps, keyed state).
local graph = require "sluice.graph"
local plan = require "sluice.plan"
local host = require "sluice.host"
local source = require "sluice.source"
local sink = require "sluice.sink"
local stage = require "sluice.stage"
local operator = require "sluice.operator"

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
-- script chose a sink with sl.dead_letter(). Counts what it wrote. A job resumed from a
-- checkpoint appends to a dead letter file rather than replacing it.
local function open_dead_letters(job, resuming)
  local dl = { count = 0 }
  local spec = job and job.dead_letter
  local out
  if spec then
    out = sink.open(spec, { bad_output = function() end, user_error = function() end,
      append = resuming })
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

-- ---- the shape of state ----------------------------------------------------------------

-- The aggregates of a spec as text: "hi=max,n=count" (entries are sorted by name).
local function aggregates_text(entries)
  local parts = {}
  for i, e in ipairs(entries or {}) do
    parts[i] = e.name .. "=" .. e.agg.aggregate .. (e.agg.q and ("(" .. e.agg.q .. ")") or "")
  end
  return table.concat(parts, ",")
end

-- What shape of state a node keeps, as text: state moves only between nodes of the same
-- id and the same kind ("aggregate{n=count}", "window tumbling 10000 aggregate{...}").
-- `ops` are the operators of a fused stage (its take counts and event-time watermarks).
function runtime.state_kind(node, ops)
  local kind = node.kind
  if kind == "rolling_aggregate" then
    return "aggregate{" .. aggregates_text(node.aggregates) .. "}"
  elseif kind == "rolling_reduce" then
    return "reduce"
  elseif kind == "process" then
    return "process"
  elseif kind == "window" then
    local a = node.assigner
    local shape = a.assigner .. " " .. tostring(a.size or a.gap or a.n)
      .. (a.slide and (" " .. tostring(a.slide)) or "")
    local what = node.computes or "?"
    if what == "aggregate" then what = "aggregate{" .. aggregates_text(node.aggregates) .. "}" end
    return "window " .. shape .. " " .. what .. (node.key_fn and "" or " all")
  elseif kind == "union" then
    return "union " .. #node.inputs
  end
  local held = {}
  for _, op in ipairs(ops or {}) do
    if op.kind == "take" or op.kind == "timestamp" then held[#held + 1] = op.kind end
  end
  return "stage " .. table.concat(held, ",")
end

-- ---- building a graph -------------------------------------------------------------------

-- Builds the receivers of every node of `set` (stage.lua), wired downstream first, so that
-- each is wired to what it feeds; the graph is inert until sources push into it. `dl` is
-- the dead letter output; open_sink(node, key) gives the running sink of a sink node (a
-- new one, or on reload the one already running). Returns the graph:
--   g.nodes        the nodes in topological order (with state_id set)
--   g.receiver     node -> its receiver (the first node of a fused stage holds the stage)
--   g.sinks        array of { node =, key =, handle = } (key: the sink's label, numbered)
--   g.stateful     state id -> { snapshot, restore, handover, adopt, kind, node, operator }
--   g.routes       source node -> { targets = receivers, st = the stage a generator is
--                  fused into, or nil }
--   g.closers      functions that release the receivers' timers and C state
-- or nil and a message (then what it built is released, except the sinks open_sink gave).
local function build(set, dl, open_sink)
  local stages = plan.assign_stages(set)
  local nodes = graph.ordered(set)
  assign_ids(nodes)
  local g = { set = set, nodes = nodes, receiver = {}, sinks = {}, stateful = {}, routes = {},
    closers = {} }
  local receiver, stateful, closers = g.receiver, g.stateful, g.closers
  local timed_memo = {}
  local fused = {}              -- generator or nexmark source node -> the stage that runs it
  local unions = {}             -- union node -> function(i) giving its input i
  local sink_keys = {}
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
    for i = #nodes, 1, -1 do
      local node = nodes[i]
      local timed_in = node.inputs[1] and plan.timed(node.inputs[1].node, timed_memo)
      local timed_out = plan.timed(node, timed_memo)
      if node.kind == "sink" then
        local key = tostring(node.label or node.spec.type)
        if sink_keys[key] then
          local k = 2
          while sink_keys[key .. "#" .. k] do k = k + 1 end
          key = key .. "#" .. k
        end
        sink_keys[key] = true
        local s = open_sink(node, key)
        g.sinks[#g.sinks + 1] = { node = node, key = key, handle = s }
        receiver[node] = stage.new_sink(s)
      elseif node.kind == "union" then
        local state
        unions[node], state = stage.new_union(receivers_of(node, 1), #node.inputs, timed_out)
        stateful[node.state_id] = { snapshot = state, restore = state, node = node,
          kind = runtime.state_kind(node) }
      elseif operator.kinds[node.kind] then
        local make = operator.kinds[node.kind]
        local r = stage.new_operator(node, make, { receivers_of(node, 1), receivers_of(node, 2) },
          dl, { timed_in = timed_in, timed_out = timed_out })
        receiver[node] = r
        closers[#closers + 1] = r.close
        stateful[node.state_id] = { snapshot = r.op.snapshot, restore = r.op.restore,
          handover = r.op.handover, adopt = r.op.adopt, node = node,
          kind = runtime.state_kind(node), operator = true }
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
          stateful[node.state_id] = { snapshot = r.state, restore = r.state, node = node,
            kind = runtime.state_kind(node, st.ops) }
          if gen then fused[gen] = r end
        end
      end
    end
    for _, node in ipairs(nodes) do
      if node.kind == "source" then
        g.routes[node] = { targets = receivers_of(node, 1), st = fused[node] }
      end
    end
  end)
  if not ok then
    for _, c in ipairs(closers) do pcall(c) end
    return nil, err
  end
  return g
end

-- Opens the running sink of a sink node; bad records go to the dead letters `dl`.
-- `committed`: the length of this file sink the restored checkpoint committed, or nil.
local function open_sink(node, dl, committed)
  local spec = node.spec
  return sink.open(spec, {
    committed = committed,
    bad_output = function(record, reason)
      dl.write { sink = spec.label, at = spec.where, reason = reason, record = record }
    end,
    user_error = function(e, record)
      dl.write { operator = "sink.fn", at = spec.where, reason = tostring(e), record = record }
    end,
  })
end

-- ---- the job ----------------------------------------------------------------------------

local current                   -- the running job (see runtime.run), for snapshots and reload

-- Points a source's route at its targets: what its batches go to. On reload a kept source
-- is pointed at the new graph this way; it is never reopened.
local function wire(route)
  route.push = stage.emitter(route.targets)
  local st = route.st
  -- a generator fused into its stage: the stage makes records from..to itself
  route.ctx.run_range = st and function(from, to)
    st:push(nil, to, nil, nil, nil, from)
    if runtime.options.after_batch then runtime.options.after_batch() end
    return st.done
  end or nil
end

-- The end of a source's input reaches its targets: the watermark goes to +infinity and
-- everything pending fires.
local function finish_targets(route)
  if route.st then route.st:finish() else for _, r in ipairs(route.targets) do r:finish() end end
end

-- Starts the source of `node` in job `j`, pushing into `route` (from g.routes). A source's
-- callbacks read the route each time, so a reload can rewire it. `position` is where to
-- start (a snapshot's), or nil. Raises when the source cannot start. The caller adds the
-- route to j.sources and counts it in j.live.
local function open_source(j, node, route, position)
  local spec = node.spec
  route.id, route.spec, route.node = node.state_id, spec, node
  local ctx = { batch_size = runtime.options.batch_size, position = position }
  route.ctx = ctx
  function ctx.push(b, n)
    route.push(b, n)
    if runtime.options.after_batch then runtime.options.after_batch() end
    return stage.all_done(route.targets)
  end
  function ctx.bad(info)
    -- a file by its path; a socket by its address ("tcp 127.0.0.1:7070")
    local sp = route.spec
    j.dl.write { source = sp.path or (sp.label or sp.type):gsub("^source%.", ""),
      at = sp.where, line = info.line,
      offset = info.offset, reason = info.reason, record = info.raw }
  end
  function ctx.user_error(e, i)
    j.dl.write { source = route.spec.type, at = route.spec.where, reason = tostring(e), record = i }
  end
  function ctx.ended()
    -- after an abort, a source that closes is not an end of input: nothing fires; nor
    -- is the end of a source a reload removed
    if route.ended or route.removed or runtime.aborted then return end
    route.ended = true
    if running and j.input_ended then j.input_ended(j.live == 1 or j.stopping) end  -- checkpoint
    finish_targets(route)
    j.live = j.live - 1
    if j.live == 0 then j.finish() end
  end
  if spec.type == "generator" then
    -- its fn is the current script's: a reload that keeps the generator changes it
    spec = setmetatable({ fn = function(i) return route.spec.fn(i) end }, { __index = spec })
  end
  wire(route)
  route.handle = source.open(spec, ctx)
  route.handle.id = node.state_id
  return route
end

-- Runs the nodes of `set` (every ancestor of the sinks to run) to the end of their input.
-- `job` is the graph.begin() job (for its dead letter sink), or nil. `opts.restore` is a
-- snapshot (runtime.snapshot()) to start from. Checkpoints (checkpoint.lua) add hooks:
-- opts.restored(unknown ids), opts.started() once the loop is about to run, and
-- opts.input_ended(last) when a source's input ends, before that end fires anything (last:
-- it is the last source still running, or the job is shutting down).
-- Returns true, or nil and a message.
function runtime.run(set, job, opts)
  opts = opts or {}
  if running then
    return nil, "cannot run a stream while a job is running (collect() inside a function?)"
  end
  local dl = open_dead_letters(job, opts.restore ~= nil)
  -- j: the running job. Its graph (j.graph) is replaced by a reload; its sources (routes)
  -- and dead letter output live as long as it runs.
  local j = { dl = dl, sources = {}, live = 0, started = host.clock(),
    input_ended = opts.input_ended }
  local committed = opts.restore and opts.restore.sinks or {}
  local g, err = build(set, dl, function(node)
    return open_sink(node, dl, node.spec.path and committed[node.spec.path])
  end)
  local ok = g ~= nil
  j.graph = g
  function j.finish()
    for _, s in ipairs(j.graph.sinks) do s.handle.close() end
    j.sinks_closed = true
    core.stop()
  end
  if ok then
    ok, err = pcall(function()
      if opts.restore then
        local unknown = runtime.restore_into(g.stateful, opts.restore)
        if opts.restored then opts.restored(unknown) end               -- checkpoint
      end
      for _, node in ipairs(g.nodes) do
        if node.kind == "source" then
          local position = opts.restore and opts.restore.sources
            and opts.restore.sources[node.state_id]
          j.live = j.live + 1
          j.sources[#j.sources + 1] = open_source(j, node, g.routes[node], position)
        end
      end
    end)
  end
  if ok then
    running = true
    current = j
    -- Stops reading: every source is closed, and what was already read drains through
    -- the graph before the sinks close (the loop ends once the last source has ended).
    runtime.shutdown = function()
      j.stopping = true
      for _, route in ipairs(j.sources) do route.handle.close() end
    end
    if opts.started then opts.started() end                             -- checkpoint
    ok, err = core.run()
    running = false
    current = nil
    runtime.shutdown = nil
  end
  for _, route in ipairs(j.sources) do pcall(route.handle.close) end
  runtime.aborted = nil
  if j.graph then
    if not j.sinks_closed then
      for _, s in ipairs(j.graph.sinks) do
        local closed, cerr = pcall(s.handle.close)
        if ok and not closed then ok, err = nil, cerr end
      end
    end
    for _, c in ipairs(j.graph.closers) do pcall(c) end
  end
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
  for id, s in pairs(current.graph.stateful) do snap.operators[id] = s.snapshot() end
  for _, route in ipairs(current.sources) do
    local src = route.handle
    if src.position then snap.sources[src.id] = src.position() end
  end
  return snap
end

-- The running job's open sinks (checkpoint.lua commits the file sinks among them); after
-- a reload, those of the graph running now.
function runtime.sinks()
  assert(current, "runtime.sinks(): no job is running")
  local list = {}
  for i, s in ipairs(current.graph.sinks) do list[i] = s.handle end
  return list
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
  local g = current.graph
  for _, node in ipairs(g.nodes) do
    if node.name == name or node.state_id == name then
      for _, r in pairs(g.receiver) do
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
  for _, r in pairs(current.graph.receiver) do
    local m = r.meter
    if m then
      list[#list + 1] = { operator = m.node.name or m.node.state_id, kind = m.node.kind,
        records_out = m.out, rate = elapsed > 0 and math.floor(m.out / elapsed) or 0,
        errors = m.errors, watermark = m.wm,
        watermark_lag_ms = m.wm and m.wm > -math.huge and m.wm < math.huge and now - m.wm or nil }
    end
  end
  if runtime.checkpoint_metrics then list[#list + 1] = runtime.checkpoint_metrics() end  -- checkpoint
  table.sort(list, function(a, b) return a.operator < b.operator end)
  return list
end

-- Makes meter.tap show each batch to the meter's taps, until none is left.
local function arm(meter)
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
end

-- Calls on_record(r) for the next n records operator `name` emits, then stops tapping.
-- Several taps on one operator each see every record; a tap outlives a reload that keeps
-- the operator. Returns a function that cancels it.
function runtime.tap(name, n, on_record)
  local r = named(name)
  local meter = r.meter
  meter.taps = meter.taps or {}
  local tap = { left = n or 10, fn = on_record, meter = meter }
  meter.taps[tap] = true
  arm(meter)
  return function()
    local m = tap.meter
    if m.taps then
      m.taps[tap] = nil
      if next(m.taps) == nil then m.tap = nil end
    end
  end
end

-- After a reload: each output of the new graph continues the counts of the old output of
-- the same id, and takes over its taps.
local function carry_meters(old, g)
  local by_id = {}
  for _, r in pairs(old.receiver) do
    if r.meter then by_id[r.meter.node.state_id] = r.meter end
  end
  for _, r in pairs(g.receiver) do
    local m = r.meter
    local o = m and by_id[m.node.state_id]
    if o then
      m.out, m.errors, m.wm = o.out, o.errors, o.wm
      if o.taps and next(o.taps) ~= nil then
        m.taps = o.taps
        for t in pairs(m.taps) do t.meter = m end
        arm(m)
        o.taps, o.tap = nil, nil
      end
    end
  end
end

-- ---- hot reload ---------------------------------------------------------------------------

-- Sinks that hold nothing worth keeping (no file, no connection) and run user code: a
-- reload always opens them again from the new script.
local fresh_sinks = { fn = true, collect = true, null = true }

-- Whether two source or sink specs describe the same thing: equal plain values, the script
-- line and user functions aside (a kept source runs the new script's functions).
local ignored = { where = true, node = true, collected = true }
local function same_spec(a, b, top)
  if a == b then return true end
  local ta, tb = type(a), type(b)
  if ta == "function" and tb == "function" then return true end
  if ta ~= "table" or tb ~= "table" then return false end
  for k, v in pairs(a) do
    if not (top and ignored[k]) and not same_spec(v, b[k], false) then return false end
  end
  for k in pairs(b) do
    if not (top and ignored[k]) and a[k] == nil then return false end
  end
  return true
end
function runtime.same_spec(a, b) return same_spec(a, b, true) end

-- Matches the state of two graphs (g.stateful tables: id -> { kind, node, operator }):
-- state moves between entries of the same id and kind. Returns
--   moves                  array of { from = old entry, to = new entry }
--   kept, added, dropped   sorted ids of keyed operators (stage and union state moves
--                          too, but is not reported)
--   changed                id -> { from = old kind, to = new kind } for ids whose kind
--                          changed (they are both added and dropped)
--   unnamed                sorted ids of keyed operators without a name() in the new graph
--                          (where[id]: the script line that made each)
function runtime.match_state(old, new)
  local r = { moves = {}, kept = {}, added = {}, dropped = {}, changed = {}, unnamed = {},
    where = {} }
  for id, s in pairs(new) do
    local o = old[id]
    if o and o.kind == s.kind then
      r.moves[#r.moves + 1] = { from = o, to = s }
      if s.operator then r.kept[#r.kept + 1] = id end
    elseif s.operator then
      r.added[#r.added + 1] = id
    end
    if s.operator and not s.node.name then
      r.unnamed[#r.unnamed + 1] = id
      r.where[id] = s.node.where
    end
  end
  for id, o in pairs(old) do
    local s = new[id]
    if o.operator and not (s and s.kind == o.kind) then
      r.dropped[#r.dropped + 1] = id
      if s then r.changed[id] = { from = o.kind, to = s.kind } end
    end
  end
  table.sort(r.kept)
  table.sort(r.added)
  table.sort(r.dropped)
  table.sort(r.unnamed)
  return r
end

-- The state ids and kinds a set of nodes would have when run, without running anything:
-- id -> { kind, node, operator }, as runtime.match_state takes them.
function runtime.describe_state(set)
  local stages = plan.assign_stages(set)
  local nodes = graph.ordered(set)
  assign_ids(nodes)
  local list = {}
  for _, node in ipairs(nodes) do
    if operator.kinds[node.kind] then
      list[node.state_id] = { kind = runtime.state_kind(node), node = node, operator = true }
    elseif node.kind == "union" then
      list[node.state_id] = { kind = runtime.state_kind(node), node = node }
    elseif plan.fusable[node.kind] and stages[node.stage].ops[1] == node then
      list[node.state_id] = { kind = runtime.state_kind(node, stages[node.stage].ops),
        node = node }
    end
  end
  return list
end

-- Stops a source the job no longer reads: what it still delivers goes nowhere, and the
-- second close stops it at once, without draining.
local function drop_route(route)
  route.removed, route.targets, route.st = true, {}, nil
  route.push = function() end
  route.ctx.run_range = nil
  pcall(route.handle.close)
  pcall(route.handle.close)
end

-- The sources of the new graph g of job j: an old source whose id and spec are unchanged
-- is kept (old route -> its node in g); the others are opened. Returns the routes of g in
-- order, the kept ones and the opened ones; or nil and why (then what it opened is closed).
local function keep_or_open_sources(j, g)
  local old_routes, kept, opened, routes = {}, {}, {}, {}
  for _, route in ipairs(j.sources) do old_routes[route.id] = route end
  local ok, err = pcall(function()
    for _, node in ipairs(g.nodes) do
      if node.kind == "source" then
        local o = old_routes[node.state_id]
        if o and not kept[o] and same_spec(o.spec, node.spec, true) then
          kept[o] = node
          routes[#routes + 1] = o
        else
          -- the same source changed (a format, say): it goes on where the old one was
          local position = o and o.spec.type == node.spec.type and o.handle.position
            and o.handle.position() or nil
          local route = open_source(j, node, g.routes[node], position)
          opened[#opened + 1] = route
          routes[#routes + 1] = route
        end
      end
    end
  end)
  if ok then return routes, kept, opened end
  for _, route in ipairs(opened) do drop_route(route) end
  return nil, err
end

-- Closes what the new graph no longer uses: sources not kept (what they still deliver
-- goes nowhere: the script dropped them), sinks not kept (flushed), and the old graph's
-- timers and C state. Returns the ids of the sources and sinks it closed.
local function retire(j, old, kept_routes, kept_sinks)
  local sources, sinks = {}, {}
  for _, route in ipairs(j.sources) do
    if not kept_routes[route] then
      sources[#sources + 1] = route.id
      drop_route(route)
    end
  end
  for _, s in ipairs(old.sinks) do
    if not kept_sinks[s] then
      sinks[#sinks + 1] = s.key
      local closed, err = pcall(s.handle.close)
      if not closed then io.stderr:write("sluice: closing ", s.key, ": ", tostring(err), "\n") end
    end
  end
  for _, c in ipairs(old.closers) do pcall(c) end
  return sources, sinks
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Replaces the running job's graph by the graph of `set`, between two batches (call it
-- from a loop callback: processing is synchronous, so no batch is in flight and every
-- source stands at a batch boundary). The new graph is built while the old one runs on
-- untouched; on any failure the new one is released and the job goes on as it was
-- (returns nil and why). Then, in a step that cannot fail: state moves by id and kind
-- (in memory, without a copy), sources and sinks whose id and spec are unchanged are kept
-- (a file keeps its read position, a listener its socket, a file sink is not reopened,
-- a tcp sink keeps its connection and queue) and only rewired, removed ones are closed (a
-- sink flushed first) and new ones opened. Returns the match (runtime.match_state) with
-- `sources` and `sinks`: { kept = n, opened = {ids}, closed = {ids} }.
function runtime.swap(set)
  local j = current
  if not j then return nil, "no job is running" end
  if j.stopping or j.sinks_closed then return nil, "the job is shutting down" end
  local old = j.graph
  local old_sinks, kept_sinks, opened_sinks = {}, {}, {}
  for _, s in ipairs(old.sinks) do old_sinks[s.key] = s end
  local g, err = build(set, j.dl, function(node, key)
    local o = old_sinks[key]
    if o and not kept_sinks[o] and not fresh_sinks[node.spec.type]
      and same_spec(o.node.spec, node.spec, true) then
      kept_sinks[o] = true
      return o.handle
    end
    local h = open_sink(node, j.dl)
    opened_sinks[#opened_sinks + 1] = { key = key, handle = h,
      fresh = fresh_sinks[node.spec.type] and o ~= nil and fresh_sinks[o.node.spec.type] }
    return h
  end)
  local routes, kept_routes, opened
  if g then
    routes, kept_routes, opened = keep_or_open_sources(j, g)
    if not routes then
      err = kept_routes
      for _, c in ipairs(g.closers) do pcall(c) end
    end
  end
  if not routes then
    for _, s in ipairs(opened_sinks) do pcall(s.handle.close) end
    return nil, err
  end

  -- From here on nothing fails: the job moves to the new graph.
  local match = runtime.match_state(old.stateful, g.stateful)
  for _, m in ipairs(match.moves) do
    if m.from.handover and m.to.adopt then m.to.adopt(m.from.handover())
    else m.to.restore(m.from.snapshot()) end
  end
  for route, node in pairs(kept_routes) do
    local fresh = g.routes[node]
    route.targets, route.st = fresh.targets, fresh.st
    route.spec, route.node, route.id = node.spec, node, node.state_id
    wire(route)
    g.routes[node] = route
  end
  local closed_sources, closed_sinks = retire(j, old, kept_routes, kept_sinks)
  j.sources, j.graph, j.live = routes, g, 0
  for _, route in ipairs(routes) do
    if not route.ended then j.live = j.live + 1 end
  end
  carry_meters(old, g)
  -- a kept source that had already ended has ended for the new graph too
  for route in pairs(kept_routes) do
    if route.ended then finish_targets(route) end
  end
  local opened_ids, opened_sink_keys = {}, {}
  for i, route in ipairs(opened) do opened_ids[i] = route.id end
  -- a fn, collect or null sink made anew in place of the same one is not news
  local replaced = {}
  for _, key in ipairs(closed_sinks) do replaced[key] = true end
  for _, s in ipairs(opened_sinks) do
    if replaced[s.key] and s.fresh then replaced[s.key] = "fresh"
    else opened_sink_keys[#opened_sink_keys + 1] = s.key end
  end
  for i = #closed_sinks, 1, -1 do
    if replaced[closed_sinks[i]] == "fresh" then table.remove(closed_sinks, i) end
  end
  match.sources = { kept = count_keys(kept_routes), opened = opened_ids, closed = closed_sources }
  match.sinks = { kept = count_keys(kept_sinks), opened = opened_sink_keys, closed = closed_sinks }
  if j.live == 0 then j.finish() end
  return match
end

-- The set of nodes the running job runs (it changes with a reload), or nil.
function runtime.running_set()
  return current and current.graph.set
end

-- Reloads the running job's script (reload.lua): true and what changed, or nil and why.
function runtime.reload()
  return require("sluice.reload").reload("job:reload()")
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
