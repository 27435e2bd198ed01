-- runtime.lua -- a job: a planned graph running on the host's event loop.
--
-- runtime.new(set, opts) makes the job of a set of nodes; job:run() builds the nodes into a
-- graph of receivers (stage.lua): one per fused stage, union, keyed operator and sink; then
-- starts the sources and runs the libuv loop until every source has ended (bounded input)
-- or the job fails. Bad records never stop a job: they go to its dead letter output with
-- where and why (dead_letters.lua), and the next record flows (unless on_error is "fail").
-- The job is one value: its graph, sources, dead letters, shutdown and abort, and the
-- hooks through which checkpoints (checkpoint.lua) follow it. Hot reload (reload.lua) and
-- looking inside a running job (inspect.lua) work on this value too.
local graph = require "sluice.graph"
local plan = require "sluice.plan"
local host = require "sluice.host"
local source = require "sluice.source"
local sink = require "sluice.sink"
local stage = require "sluice.stage"
local operator = require "sluice.operator"
local tasks = require "sluice.tasks"
local dead_letters = require "sluice.dead_letters"
local exchange = require "sluice.exchange"
local combiner = require "sluice.combiner"
local agg = require "sluice.agg"
local keyed = require "sluice.keyed"
local guard = require "sluice.guard"

local core = host.core
local tostring = tostring

local runtime = {}

local control_handlers = {}    -- runtime.on_control_message


-- What a new job starts from where runtime.new is not told otherwise. A script run by
-- `sluice run` may set after_batch here (the benchmarks do) to look at its job between
-- batches: after_batch(job).
runtime.defaults = {
  batch_size = tonumber(os.getenv("SLUICE_BATCH_SIZE")) or 1024,
  on_error = "dead-letter",     -- or "fail": the first bad record stops the job, status 1
  -- a drain (a shutdown, or the sinks' last writes at the end) waits as long as records
  -- or bytes move, and gives up after this many ms without any (--drain-timeout)
  drain_timeout = 10000,
  after_batch = nil,
  -- without sl.dead_letter(), report(entry, traceback) takes each dead letter in place
  -- of stderr (the REPL sets it while a chunk runs: dead_letters.open)
  dead_letter_report = nil,
}

-- The job running on this Lua state's loop, if any: the loop runs one job at a time.
local active

-- ---- state ids ---------------------------------------------------------------------------

-- The stable id of a node's state: its name(), else a path of kinds from its source
-- ("source.file in.jsonl/timestamp/key_by/window"), numbered when two paths are equal.
-- Unnamed ids survive edits that leave the path alone; names survive any edit.
function runtime.assign_ids(nodes)
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

-- Whether nodes of `kind` keep keyed state (reload.lua reports on those by id).
function runtime.keyed_kind(kind) return operator.kinds[kind] ~= nil end

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
  elseif kind == "scan" or kind == "dedupe" or kind == "changes" or kind == "batch" then
    return kind .. (node.key_fn and "" or " all")
  elseif kind == "window" then
    local a = node.assigner
    local shape = a.assigner .. " " .. tostring(a.size or a.gap or a.n)
      .. (a.slide and (" " .. tostring(a.slide)) or "")
    local what = node.computes or "?"
    if what == "aggregate" then what = "aggregate{" .. aggregates_text(node.aggregates) .. "}" end
    return "window " .. shape .. " " .. what .. (node.key_fn and "" or " all")
  elseif kind == "union" then
    return "union " .. #node.inputs
  elseif kind == "join" then
    local how = node.how
    if how == "window" then
      local a = node.assigner
      how = "window " .. a.assigner .. " " .. tostring(a.size or a.gap)
        .. (a.slide and (" " .. tostring(a.slide)) or "")
    elseif how == "between" then
      how = "between " .. tostring(node.lower) .. " " .. tostring(node.upper)
    else
      how = "ttl"
    end
    return (node.outer and "left_join " or "join ") .. how .. " " .. node.computes
  elseif kind == "lookup" then
    return node.temporal and "lookup temporal" or "lookup"
  end
  local held = {}
  for _, op in ipairs(ops or {}) do
    if op.kind == "take" or op.kind == "timestamp" then held[#held + 1] = op.kind end
  end
  return "stage " .. table.concat(held, ",")
end

-- ---- building a graph -------------------------------------------------------------------

-- Whether each worker has a sink node of its own (on several workers) instead of sending
-- its records to worker 1's: a null sink, which keeps and writes nothing, so that nothing
-- needs to come together in one place (as a discarding sink runs at the job's parallelism
-- in Flink). A file, stdout, a socket or a collect() stays one sink, one writer.
function runtime.sink_everywhere(node)
  return node.spec.type == "null"
end

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
--   g.meters       the meters of the receivers (stage.lua), in the order of their nodes
--   g.points       node -> where its output can be tapped: a meter, or a point inside a
--                  fused stage (a source's is its route's meter, set when it opens, unless
--                  it is fused into a stage)
-- or nil and a message (then what it built is released, except the sinks open_sink gave).
-- `team`: this worker's exchange team (exchange.lua) when the job runs on several workers:
-- then every edge into a keyed operator, join, lookup or sink is an exchange point, and
-- only worker 1 opens the sinks (but those runtime.sink_everywhere says every worker has).
-- `make_of(kind)`, optional: the constructor of the keyed operators of a kind (--group's
-- keep their state per task: group.lua); default operator.kinds.
function runtime.build(set, dl, open_sink, team, make_of)
  make_of = make_of or function(kind) return operator.kinds[kind] end
  local spread_memo = {}
  local spread
  -- A take() whose records can come from every worker runs on worker 1 alone, so that it
  -- takes n in all (not n on each): the edge into it is an exchange point that sends every
  -- record to worker 1 (and watermarks and the end of input to every worker, where the
  -- take's stage also runs, with nothing to take), and the take begins a stage.
  local function gathered(node)
    return team ~= nil and node.kind == "take" and spread(node.inputs[1].node)
  end
  local function exchanged(node)
    return team ~= nil and ((node.kind == "sink" and not runtime.sink_everywhere(node))
      or operator.kinds[node.kind] ~= nil or gathered(node))
  end
  -- Whether records can come out of `node` on every worker (a keyed operator's results;
  -- what follows a source every worker reads), or only on worker 1, which reads the other
  -- sources: then worker 1 alone feeds the exchange points downstream.
  spread = function(node)
    if spread_memo[node] == nil then
      local s = false
      if node.kind == "source" then s = source.spread(node.spec)
      elseif gathered(node) then s = false
      elseif exchanged(node) then s = true
      else
        for _, input in ipairs(node.inputs) do
          if spread(input.node) then s = true end
        end
      end
      spread_memo[node] = s
    end
    return spread_memo[node]
  end
  -- Whether every source upstream of `node` is read by worker 1 alone: then one worker's
  -- order of its records is known (worker 1 numbers them), and kept after a second key_by.
  local single_memo = {}
  local function single_origin(node)
    if single_memo[node] == nil then
      local s = true
      if node.kind == "source" then s = not source.spread(node.spec)
      else
        for _, input in ipairs(node.inputs) do
          if not single_origin(input.node) then s = false end
        end
      end
      single_memo[node] = s
    end
    return single_memo[node]
  end
  -- How the exchange point on input i of `node` keeps one worker's order (exchange.lua's
  -- Team:point): "ordered" where its records come from every worker but all began on
  -- worker 1 (after a keyed operator: a second key_by); "numbered" where worker 1 alone
  -- sends, into an operator that feeds an ordered point; else nil. SLUICE_ORDER=0 turns
  -- it off.
  local ordering = false
  local order_of
  -- whether what `node` puts out reaches an ordered point before any other exchange
  local feeds_memo = {}
  local function feeds_ordered(node)
    if feeds_memo[node] == nil then
      local f = false
      for _, c in ipairs(plan.consumers_in(node, set)) do
        if exchanged(c.node) then
          if order_of(c.node, c.index) == "ordered" then f = true end
        elseif feeds_ordered(c.node) then f = true end
      end
      feeds_memo[node] = f
    end
    return feeds_memo[node]
  end
  -- whether an ordered point that `node` feeds feeds another: then the labels of what its
  -- merge hands on are read again, and each record must keep its own (no runs)
  local function feeds_twice(node)
    for _, c in ipairs(plan.consumers_in(node, set)) do
      if exchanged(c.node) then
        if order_of(c.node, c.index) == "ordered" and feeds_ordered(c.node) then return true end
      elseif feeds_twice(c.node) then return true end
    end
    return false
  end
  -- whether everything `node` puts out goes straight into exchange points
  local function feeds_points_only(node)
    for _, c in ipairs(plan.consumers_in(node, set)) do
      if not exchanged(c.node) then return false end
    end
    return true
  end
  order_of = function(node, i)
    if node.kind == "sink" or gathered(node) then return nil end
    local up = node.inputs[i].node
    if not spread(up) then return ordering and feeds_ordered(node) and "numbered" or nil end
    if single_origin(up) then return "ordered" end
    return nil
  end
  if team and team.n > 1 and os.getenv("SLUICE_ORDER") ~= "0" then
    for _, node in ipairs(graph.ordered(set)) do
      if exchanged(node) then
        for i in ipairs(node.inputs) do
          if order_of(node, i) == "ordered" then ordering = true end
        end
      end
    end
  end
  if team then team:number_records(ordering) end
  if not ordering then order_of = function() return nil end end
  local stages = plan.assign_stages(set, gathered)
  local nodes = graph.ordered(set)
  runtime.assign_ids(nodes)
  local g = { set = set, nodes = nodes, receiver = {}, sinks = {}, stateful = {}, routes = {},
    closers = {}, meters = {}, points = {} }
  local receiver, stateful, closers = g.receiver, g.stateful, g.closers
  local timed_memo = {}
  local fused = {}              -- generator or nexmark source node -> the stage that runs it
  local unions = {}             -- union or join node -> function(i) giving its input i
  local sink_keys = {}
  local mine = {}               -- exchanged node -> input index -> this worker's point input
  local function point_id(node, index) return node.id .. "/" .. index end
  local ok, err = pcall(function()
    local function receiver_of(c)
      local merged = unions[c.node]
      if merged then return merged(c.index) end
      return receiver[c.node]
    end
    -- the ordered points nearest upstream of `node`: what it sends on came through them
    local function ordered_above(node, list, seen)
      list, seen = list or {}, seen or {}
      if seen[node] then return list end
      seen[node] = true
      if exchanged(node) then
        for i in ipairs(node.inputs) do
          if order_of(node, i) == "ordered" then list[#list + 1] = point_id(node, i) end
        end
      else
        for _, input in ipairs(node.inputs) do ordered_above(input.node, list, seen) end
      end
      return list
    end
    -- on several workers: the sending side of the exchange point on the edge to c
    local function sender_of(c, up)
      local node, i = c.node, c.index
      local key, only, field, one_key = nil, nil, nil, nil
      if node.kind == "sink" or gathered(node) then only = 1
      elseif node.kind == "join" then
        key, field, one_key = exchange.key_reader(i == 1 and node.left or node.right)
      elseif node.kind == "lookup" then
        key, field, one_key = exchange.key_reader(i == 1 and node or node.table_key)
      else key, field, one_key = exchange.key_reader(node) end
      -- a window's aggregate results (port 1) are agg.lua's records: their fields are known
      local fields = c.port == 1 and up.kind == "window" and up.computes == "aggregate"
        and agg.result_fields(up.aggregates) or nil
      local order = order_of(node, i)
      local s = team:sender(point_id(node, i), key, only, mine[node] and mine[node][i],
        plan.timed(up, timed_memo), team.me ~= 1 and not spread(up), gathered(node), field, fields,
        one_key, order, order == "ordered" and ordered_above(up) or nil)
      if not node.combined then return s end
      -- the window's aggregates begin here, on this worker's own records (combiner.lua)
      local comb = combiner.new(node, s, team, point_id(node, i), mine[node] and mine[node][i])
      closers[#closers + 1] = comb.close
      return comb
    end
    local function receivers_of(node, port)
      local list = {}
      for _, c in ipairs(plan.consumers_in(node, set)) do
        if c.port == port then
          list[#list + 1] = exchanged(c.node) and sender_of(c, node) or receiver_of(c)
        end
      end
      return list
    end
    -- the receiving sides of an exchanged node's points: input i's batches go to send(i, ...)
    local function points_of(node, send, finish, done, direct)
      mine[node] = {}
      for i, input in ipairs(node.inputs) do
        mine[node][i] = team:point(point_id(node, i), plan.timed(input.node, timed_memo),
          function(...) return send(i, ...) end, function() finish(i) end, done,
          not spread(input.node), order_of(node, i), feeds_ordered(node), not feeds_twice(node),
          direct)
      end
    end
    for i = #nodes, 1, -1 do
      local node = nodes[i]
      local timed_in = node.inputs[1] and plan.timed(node.inputs[1].node, timed_memo)
      -- a join's inputs both have event time or neither (stream.lua checks); a lookup's
      -- records may have it where its table has not
      local untimed_in = nil
      if node.inputs[2] and not plan.timed(node.inputs[2].node, timed_memo) then
        if node.kind == "lookup" then untimed_in = { [2] = true } else timed_in = false end
      end
      local timed_out = plan.timed(node, timed_memo)
      if node.kind == "sink" then
        -- on several workers, worker 1 alone writes the sinks (the others send it theirs),
        -- but for one that every worker has (runtime.sink_everywhere)
        local everywhere = team and runtime.sink_everywhere(node)
        if not team or team.me == 1 or everywhere then
          local key = tostring(node.label or node.spec.type)
          if sink_keys[key] then
            local k = 2
            while sink_keys[key .. "#" .. k] do k = k + 1 end
            key = key .. "#" .. k
          end
          sink_keys[key] = true
          local s = open_sink(node, key)
          g.sinks[#g.sinks + 1] = { node = node, key = key, handle = s }
          receiver[node] = stage.new_sink(s, node)
          g.points[node] = receiver[node].meter
          if team and not everywhere then
            local r = receiver[node]
            points_of(node, function(_, b, n) r:push(b, n) end, function() end,
              function() return false end)
          end
        end
      elseif node.kind == "union" then
        local state
        g.points[node] = stage.meter(node)
        unions[node], state = stage.new_union(receivers_of(node, 1), #node.inputs, timed_out,
          g.points[node])
        stateful[node.state_id] = { snapshot = state, restore = state, node = node,
          kind = runtime.state_kind(node) }
      elseif operator.kinds[node.kind] and #node.inputs == 2 then
        -- a join: its state is the operator's and its inputs' watermarks
        local r, inputs = stage.new_join(node, make_of(node.kind),
          { receivers_of(node, 1), receivers_of(node, 2) }, dl,
          { timed_in = timed_in, timed_out = timed_out, untimed_in = untimed_in })
        receiver[node], unions[node] = r, r.input
        g.points[node] = r.meter
        if team then
          points_of(node, function(side, b, n, t, w, wend) r.input(side):push(b, n, t, w, wend) end,
            function(side) r.input(side):finish() end, function() return r.done end)
        end
        closers[#closers + 1] = r.close
        local op = r.op
        stateful[node.state_id] = { node = node, kind = runtime.state_kind(node), operator = true,
          snapshot = function() return { op = op.snapshot(), inputs = inputs() } end,
          restore = function(s) op.restore(s.op); inputs(s.inputs) end,
          -- from several workers' snapshots (keyed.lua): its keys' rows; the inputs'
          -- watermarks start again
          restore_keys = function(list, keep)
            local ops = {}
            for x, s in ipairs(list) do ops[x] = s.op end
            keyed.restore_all(op, ops, keep)
          end,
          handover = op.handover and function() return { op = op.handover(), inputs = inputs() } end,
          adopt = op.adopt and function(live) op.adopt(live.op); inputs(live.inputs) end }
      elseif operator.kinds[node.kind] then
        -- on several workers, a window that only aggregates is begun by its senders
        -- (combiner.lua; SLUICE_COMBINE=0 turns that off, to compare)
        node.combined = nil
        -- (not where one worker's order is kept: a partial has no label)
        if team and timed_in and os.getenv("SLUICE_COMBINE") ~= "0" and not order_of(node, 1) then
          local late_read = false
          for _, c in ipairs(plan.consumers_in(node, set)) do
            if c.port == 2 then late_read = true end
          end
          node.combined = combiner.fits(node, late_read) or nil
        end
        -- (a numbered input whose operator feeds exchange points only: the operator takes
        -- its batches whole and labels each record, exchange.lua's push_numbered)
        local direct = order_of(node, 1) == "numbered" and feeds_points_only(node)
        local r = stage.new_operator(node, make_of(node.kind), { receivers_of(node, 1), receivers_of(node, 2) },
          dl, { timed_in = timed_in, timed_out = timed_out, labels = direct and team.labels or nil })
        receiver[node] = r
        g.points[node] = r.meter
        closers[#closers + 1] = r.close
        if team then
          points_of(node, function(_, b, n, t, w, wend) r:push(b, n, t, w, wend) end,
            function() r:finish() end, function() return r.done end, direct)
        end
        local op = r.op
        stateful[node.state_id] = { snapshot = op.snapshot, restore = op.restore,
          restore_keys = function(list, keep) keyed.restore_all(op, list, keep) end,
          handover = op.handover, adopt = op.adopt, node = node,
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
          local partitioned = #node.inputs == 1 and up.kind == "source"
            and source.partitioned[up.spec.type] or nil
          local r = stage.new_stage(st, { receivers_of(last, 1), receivers_of(last, 2) }, dl,
            { gen = gen, timed_in = timed_in, timed_out = plan.timed(last, timed_memo), ts = ts,
              idle_ms = idle_ms, partitioned = partitioned,
              clock = partitioned and up.spec.clock })
          receiver[node] = r
          for n, p in pairs(r.points) do g.points[n] = p end
          g.points[last] = r.meter
          if r.close then closers[#closers + 1] = r.close end
          if gathered(node) then
            points_of(node, function(_, b, n, t, w, wend) r:push(b, n, t, w, wend) end,
              function() r:finish() end, function() return r.done end)
          end
          -- a take's count is worker 1's, the one worker where records reach it (a take on
          -- records from every worker is gathered there): a restore on another number of
          -- workers takes worker 1's part of such a stage, not the lowest
          local takes = nil
          for _, op in ipairs(st.ops) do if op.kind == "take" then takes = true end end
          stateful[node.state_id] = { snapshot = r.state, restore = r.state, node = node,
            kind = runtime.state_kind(node, st.ops), first_part = takes }
          if gen then fused[gen] = r end
        end
      end
    end
    -- every receiver names itself while it runs, for a hard exit's message (guard.lua)
    local fused_into = {}
    for gen, r in pairs(fused) do fused_into[r] = gen end
    for node, r in pairs(receiver) do
      local ops = r.ops or { node }
      if fused_into[r] then ops = { fused_into[r], unpack(ops) } end
      guard.wrap(r, guard.label(ops))
    end
    local listed = {}
    for _, node in ipairs(nodes) do
      if node.kind == "source" then
        g.routes[node] = { targets = receivers_of(node, 1), st = fused[node] }
      end
      local p = g.points[node]
      if p and p.input and not listed[p] then
        listed[p] = true
        g.meters[#g.meters + 1] = p
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
-- `committed`: the length of this file sink the restored checkpoint committed, or nil;
-- `checkpointing`: the job takes checkpoints (a transactional sink needs them); `files`:
-- the job's table through which file sinks on one file share a writer (job.files). The
-- sink counts them (handle.dead; handle.errors: a sink.fn raised), across reloads that keep it.
function runtime.open_sink(node, dl, committed, checkpointing, files)
  local spec = node.spec
  local handle
  handle = sink.open(spec, {
    committed = committed,
    checkpointing = checkpointing,
    files = files,
    bad_output = function(record, reason)
      handle.dead = handle.dead + 1
      dl.write { sink = spec.label, at = spec.where, reason = reason, record = record }
    end,
    user_error = function(e, record)
      handle.dead, handle.errors = handle.dead + 1, handle.errors + 1
      dl.write { operator = "sink.fn", at = spec.where, reason = tostring(e), record = record }
    end,
    -- stdout's reader went away (`| head`): the job ends quietly, as grep would, once
    -- the batch in hand is through (from a timer, never inside a push)
    output_closed = function()
      local j = active
      if not j or j.output_closed then return end
      j.output_closed = true
      local timer
      timer = core.timer(function() timer:close(); j:shutdown() end)
      timer:start(0)
    end,
  })
  handle.dead, handle.errors = 0, 0
  return handle
end

-- The end of a source's input reaches its targets: the watermark goes to +infinity and
-- everything pending fires.
function runtime.finish_targets(route)
  if route.st then route.st:finish() else for _, r in ipairs(route.targets) do r:finish() end end
end

-- Restores operator state by id; returns the ids it did not know (state dropped), and
-- those whose state is of another kind than their operator now (snap.kinds: a changed
-- script; dropped too, as a reload does): { id =, was =, now = }.
function runtime.restore_into(stateful, snap)
  local unknown, other = {}, {}
  local kinds = snap.kinds or {}
  for id, state in pairs(snap.operators or {}) do
    local s = stateful[id]
    if not s then
      unknown[#unknown + 1] = id
    elseif kinds[id] ~= nil and kinds[id] ~= s.kind then
      other[#other + 1] = { id = id, was = kinds[id], now = s.kind }
    else
      s.restore(state)
    end
  end
  table.sort(unknown)
  table.sort(other, function(a, b) return a.id < b.id end)
  return unknown, other
end

-- The lowest of states list[1..n] of the same shape: numbers the smallest (watermarks,
-- counts), booleans true where all are, tables key by key; anything else list[1]'s.
local function lowest(list)
  local first = list[1]
  local t = type(first)
  if t == "number" then
    local m = first
    for i = 2, #list do
      local v = list[i]
      if type(v) == "number" and v < m then m = v end
    end
    return m
  elseif t == "boolean" then
    for i = 2, #list do if list[i] ~= true then return false end end
    return first
  elseif t == "table" then
    local out = {}
    for k in pairs(first) do
      local at = {}
      for i = 1, #list do
        local v = type(list[i]) == "table" and list[i][k]
        if v ~= nil then at[#at + 1] = v end
      end
      out[k] = lowest(at)
    end
    return out
  end
  return first
end

-- Restores the state of a cut of several workers (exchange.lua: checkpoint.lua keeps
-- parts[w], worker w's snapshot) into this worker's graph, whatever the number of workers
-- then and now: a keyed operator takes, from every part, the keys this worker owns now
-- (keep(k)); any other state (a stage's watermarks and take counts, a union's) is this
-- worker's own part with as many workers as the cut had; with another number, where worker
-- w now is not worker w then, the lowest of every part's (lowest), so that no record a
-- worker has not read yet is behind a watermark it restores; but worker 1's part for a
-- stage that holds a take() (first_part: its count is worker 1's). `shuffled`: as with
-- another number, whatever the number (a source whose events the workers share out as they
-- ask, nexmark.lua: what worker w reads next may be what another had not read). Returns, as
-- restore_into does, the ids it had no operator for and those whose state is of another
-- kind now (dropped).
function runtime.restore_parts(stateful, parts, keep, me, n, shuffled)
  local unknown, other, seen = {}, {}, {}
  local function usable(part, id)
    local st = part.operators and part.operators[id]
    local was = part.kinds and part.kinds[id]
    if st == nil then return nil end
    if was ~= nil and was ~= stateful[id].kind then
      if not seen[id] then
        seen[id] = true
        other[#other + 1] = { id = id, was = was, now = stateful[id].kind }
      end
      return nil
    end
    return st
  end
  for _, part in ipairs(parts) do
    for id in pairs(part.operators or {}) do
      if not stateful[id] and not seen[id] then seen[id] = true; unknown[#unknown + 1] = id end
    end
  end
  for id, s in pairs(stateful) do
    if s.operator then
      local list = {}
      for _, part in ipairs(parts) do list[#list + 1] = usable(part, id) end
      if #list > 0 then s.restore_keys(list, keep) end
    elseif (shuffled or #parts ~= (n or #parts)) and s.first_part then
      local first = parts[1] and usable(parts[1], id)
      if first ~= nil then s.restore(first) end
    elseif shuffled or #parts ~= (n or #parts) then
      local list = {}
      for _, part in ipairs(parts) do list[#list + 1] = usable(part, id) end
      if #list > 0 then s.restore(lowest(list)) end
    elseif parts[me] then
      local own = usable(parts[me], id)
      if own ~= nil then s.restore(own) end
    end
  end
  table.sort(unknown)
  table.sort(other, function(a, b) return a.id < b.id end)
  return unknown, other
end

-- ---- the job ----------------------------------------------------------------------------

local Job = {}
Job.__index = Job

-- The job of the nodes `set` (every ancestor of the sinks to run). opts (each defaults to
-- runtime.defaults): batch_size, on_error, after_batch, dead_letter_report; dead_letter,
-- the sink spec of sl.dead_letter() (nil: stderr); checkpointing, true when checkpoints
-- will be taken (a Kafka source then leaves committing offsets to them); team, this
-- worker's exchange team when the job runs on several workers (exchange.lua; worker.lua
-- makes it). Nothing runs until job:run().
--   job.graph      the graph it runs (replaced by a reload), once running
--   job.sources    the routes of its open sources: { id, spec, node, handle, ctx, targets,
--                  st, push, ended, removed }
--   job.live       how many of them have not ended
--   job.dead_letters   how many records went to the dead letters, once it has run
--   job.records_in     how many records its sources have read (job:records_out(): how
--                      many its sinks have received)
--   job.files      the writers its file sinks share, by file (sink.lua), once running
function runtime.new(set, opts)
  opts = opts or {}
  local defaults = runtime.defaults
  local function pick(name)
    if opts[name] ~= nil then return opts[name] end
    return defaults[name]
  end
  return setmetatable({
    set = set,
    team = opts.team,
    dead_letter = opts.dead_letter,
    -- --group (group.lua): its keyed operators keep state per task, and it commits as
    -- checkpoints do (Kafka sources leave their offsets to it; exactly_once sinks work)
    group = opts.group,
    make_of = opts.group and function(kind) return opts.group:maker(kind) end,
    checkpointing = opts.checkpointing == true or opts.group ~= nil,
    options = { batch_size = pick("batch_size"), on_error = pick("on_error"),
      after_batch = pick("after_batch"), dead_letter_report = pick("dead_letter_report"),
      drain_timeout = pick("drain_timeout") },
    hooks = { restored = {}, started = {}, input_ended = {}, metrics = {}, revoked = {} },
    sources = {}, live = 0, dead_letters = 0, records_in = 0, records_out_retired = 0,
    lost = {},          -- what a drain that gave up could not deliver, one text each
  }, Job)
end

-- Adds a hook: fn is called at `event` of this job, in the order hooks were added.
--   restored(unknown ids, other kinds)  after state was restored from a snapshot (ids it
--                          had no operator for, and {id, was, now} of state of another
--                          kind: that state is dropped)
--   started()              once the loop is about to run
--   input_ended(last)      when a source's input ends, before that end fires anything
--                          (last: it is the last source still running, or the job is
--                          shutting down)
--   metrics() -> row       one more row for inspect.metrics (job:metrics(), sluice top)
--   revoked(list)          a Kafka source is giving partitions up, list = { {topic=,
--                          partition=}, ... }, after their last records were pushed
function Job:on(event, fn)
  local list = self.hooks[event]
  if not list then error("job:on(): no event " .. tostring(event), 2) end
  list[#list + 1] = fn
end

local function fire(j, event, ...)
  for _, fn in ipairs(j.hooks[event]) do fn(...) end
end

-- Calls the after_batch option between batches (tests and benchmarks look in there).
local function after_batch(j)
  local f = j.options.after_batch
  if f then f(j) end
end

-- Points a source's route at its targets: what its batches go to. On reload a kept source
-- is pointed at the new graph this way; it is never reopened.
function Job:wire(route)
  local j = self
  local meter = route.meter
  meter.node, meter.nodes = route.node, { route.node }
  route.push = stage.emitter(route.targets, meter)
  route.ctx.spec = route.spec            -- the node's spec now (a reload's): nexmark.lua
  local st = route.st
  -- a generator fused into its stage: the stage makes records from..to itself (so its
  -- meter counts the indices it generates; fn may return nil for some)
  route.ctx.run_range = st and function(from, to)
    meter.out = meter.out + (to - from + 1)
    j.records_in = j.records_in + (to - from + 1)
    st:push(nil, to, nil, nil, nil, from)
    after_batch(j)
    return st.done
  end or nil
end

-- Starts the source of `node`, pushing into `route` (from g.routes). A source's callbacks
-- read the route each time, so a reload can rewire it. `position` is where to start (a
-- snapshot's), or nil. Raises when the source cannot start. The caller adds the route to
-- job.sources and counts it in job.live. `loaded`, for a table's source: called once, when
-- the records it held at the start are delivered (its end, or a followed file's end).
function Job:open_source(node, route, position, loaded)
  local j = self
  local spec = node.spec
  route.id, route.spec, route.node = node.state_id, spec, node
  local ctx = { batch_size = j.options.batch_size, position = position,
    checkpointing = j.checkpointing, transactional = j:transactional(),
    shared = nil }
  if j.team and source.spread(spec) then
    -- this worker's share of a source every worker reads: the key groups it owns; `name`:
    -- what the workers' shares of this source have in common (nexmark.lua's claims)
    local me, n = j.team.me, j.team.n
    ctx.shared = { me = me, n = n, name = "source " .. tostring(node.state_id),
      owns = function(g) return exchange.owner_of_group(g, n) == me end }
  end
  if loaded then
    local once = false
    ctx.caught_up = function()
      if once then return end
      once = true
      loaded()
    end
  end
  route.ctx = ctx
  route.meter = route.meter or stage.meter(node)
  local meter = route.meter
  function ctx.push(b, n)
    j.records_in = j.records_in + n
    route.push(b, n)
    after_batch(j)
    return stage.all_done(route.targets)
  end
  function ctx.bad(info)
    -- a file by its path; a socket by its address ("tcp 127.0.0.1:7070"); a Kafka
    -- message by its topic, partition and offset
    local sp = route.spec
    meter.dead = meter.dead + 1
    j.dl.write { source = sp.path or (sp.label or sp.type):gsub("^source%.", ""),
      at = sp.where, line = info.line, topic = info.topic, partition = info.partition,
      offset = info.offset, id = info.id, reason = info.reason, record = info.raw }
  end
  -- A partitioned source (Kafka) says which partition its next batch comes from, and
  -- which partitions it holds; the stages it feeds keep event time per partition.
  local function tell(what, ...)
    for _, r in ipairs(route.targets) do
      local f = r[what]
      if f then f(...) end
    end
  end
  -- (under --group the keyed operators keep state per partition: tasks.lua says which)
  function ctx.partition(id, topic, p)
    if j.group then tasks.begin(p) end
    tell("partition", id, topic, p)
  end
  -- (--group: the partitions' state is restored, and where it leaves off is where they
  -- start: { topic = { [p] = offset } })
  if j.group then
    function ctx.assigning(list) return j.group:assigning(list) end
  end
  function ctx.assigned(ids) tell("assigned", ids) end
  function ctx.revoked(ids, list)
    if list then fire(j, "revoked", list) end
    tell("revoked", ids)
  end
  function ctx.user_error(e, i)
    meter.errors, meter.dead = meter.errors + 1, meter.dead + 1
    j.dl.write { source = route.spec.type, at = route.spec.where, reason = tostring(e), record = i }
  end
  -- a source closed at once (a drain that gave up) says what it received and dropped
  function ctx.lost(what)
    j.lost[#j.lost + 1] = (route.spec.label or route.spec.type) .. ": " .. what
  end
  function ctx.ended()
    -- after an abort, a source that closes is not an end of input: nothing fires; nor
    -- is the end of a source a reload removed
    if route.ended or route.removed or j.aborted then return end
    route.ended = true
    if ctx.caught_up then ctx.caught_up() end
    if j.running then fire(j, "input_ended", j.live == 1 or j.stopping) end
    runtime.finish_targets(route)
    j.live = j.live - 1
    j:maybe_finish()
  end
  if spec.type == "generator" then
    -- its fn is the current script's: a reload that keeps the generator changes it
    spec = setmetatable({ fn = function(i) return route.spec.fn(i) end }, { __index = spec })
  end
  j:wire(route)
  route.handle = source.open(spec, ctx)
  route.handle.id = node.state_id
  return route
end

-- Finishes the job once its sources have ended and, on several workers, every exchange
-- point of this worker has ended and nothing waits to be sent; a worker other than 1 also
-- waits for worker 1 to finish (its "release"): until then worker 1 may still take a cut (a
-- checkpoint, a reload), which needs every worker's answer, however early its part ended
-- (a worker with nothing keyed downstream of worker 1's sources has none from the start).
function Job:maybe_finish()
  local team = self.team
  if self.live == 0 and not self.finishing
    and (not team or (team:through() and (team.me == 1 or self.released))) then
    self:finish()
  end
end

-- The input has ended everywhere: the sinks settle (a TCP sink writes what it queued, in
-- the loop, as long as its peer takes bytes), then close (flushing), and the loop stops.
-- A sink that cannot deliver everything says what it lost (job.lost: the job fails).
function Job:finish()
  if self.finishing then return end
  self.finishing = true
  if self.team and self.team.me == 1 then self.team:broadcast { k = "c", c = "release" } end
  local j, waiting = self, 1
  local function settled()
    waiting = waiting - 1
    if waiting > 0 then return end
    for _, s in ipairs(j.graph.sinks) do
      local ok, err = pcall(s.handle.close)
      if not ok then j.lost[#j.lost + 1] = tostring(err) end
    end
    j.sinks_closed = true
    -- Worker 1's release may still wait on the overflow of a ring another worker has not
    -- emptied yet: the loop goes on until that worker has taken it (stopped, the loop
    -- would no longer see it go, and the others would wait for it for ever)
    local team = j.team
    if team and team.me == 1 and not team:overflow_taken() then
      team.on_progress = function()
        if team:overflow_taken() or team.ep:aborted() then core.stop() end
      end
      return
    end
    core.stop()
  end
  local wait_ms = j.gave_up and 0 or j.options.drain_timeout
  for _, s in ipairs(j.graph.sinks) do
    if s.handle.settle then
      waiting = waiting + 1
      s.handle.settle(wait_ms, settled)
    end
  end
  settled()
end

-- Moves the job to graph g, whose sources are `routes` (reload.lua, once the new graph is
-- built and wired): the ones that have not ended are live; with none, the job finishes.
function Job:switch_to(g, routes)
  self.graph, self.sources, self.live = g, routes, 0
  for _, route in ipairs(routes) do
    if not route.ended then self.live = self.live + 1 end
  end
  self:maybe_finish()
end

-- Runs the job to the end of its input. `restore` is a snapshot (job:snapshot()) to start
-- from, or nil. Returns true, or nil and a message.
function Job:run(restore)
  local j = self
  if active then
    return nil, "cannot run a stream while a job is running (collect() inside a function?)"
  end
  local team = j.team
  local dl
  if team and team.me ~= 1 and j.dead_letter then
    dl = runtime.forwarded_dead_letters(team, j.options.on_error)
  else
    dl = dead_letters.open(j.dead_letter, { append = restore ~= nil,
      on_error = j.options.on_error, report = j.options.dead_letter_report })
  end
  j.dl, j.started, j.files = dl, host.clock(), {}
  local committed = restore and restore.sinks or {}
  local g, err = runtime.build(j.set, dl, function(node)
    return runtime.open_sink(node, dl, node.spec.path and committed[node.spec.path],
      j.checkpointing, j.files)
  end, team, j.make_of)
  local ok = g ~= nil
  j.graph = g
  if ok then
    ok, err = pcall(function()
      if restore and (restore.parts or team) then
        -- a checkpoint of several workers (exchange.lua's cuts), or one restored on several:
        -- each worker takes its keys
        local me = team and team.me or 1
        local n = team and team.n or 1
        local function keep(k)
          local grp = exchange.group_of(k)
          if grp == nil then return me == 1 end
          return exchange.owner_of_group(grp, n) == me
        end
        -- (any worker may read what another had left)
        local shuffled = false
        for _, node in ipairs(g.nodes) do
          if node.kind == "source" and source.shared_out(node.spec) then shuffled = true end
        end
        fire(j, "restored", runtime.restore_parts(g.stateful, restore.parts or { restore }, keep,
          me, n, shuffled and n > 1))
      elseif restore then
        fire(j, "restored", runtime.restore_into(g.stateful, restore))
      end
      if team then
        team.on_control = function(from, m) j:on_control(from, m) end
        team.on_progress = function() j:maybe_finish() end
        team.snapshot_here = function() return j:snapshot() end
      end
      local tables, others, elsewhere = {}, {}, {}
      for _, node in ipairs(g.nodes) do
        if node.kind == "source" and team and team.me ~= 1 and not source.spread(node.spec) then
          -- on several workers, worker 1 reads the sources that are not spread over them
          elsewhere[#elsewhere + 1] = node
        elseif node.kind == "source" then
          j.live = j.live + 1
          local list = node.spec.table and tables or others
          list[#list + 1] = node
        end
      end
      local function open_all(list, loaded)
        for _, node in ipairs(list) do
          local position = restore and restore.sources and restore.sources[node.state_id]
          j.sources[#j.sources + 1] = j:open_source(node, g.routes[node], position, loaded)
        end
      end
      -- a table's file is loaded whole before the other sources start (lookup.lua): each
      -- says when it is, by its end or, followed, by reaching its end the first time
      local loading = #tables
      open_all(tables, function()
        loading = loading - 1
        if loading == 0 and not j.aborted then open_all(others) end
      end)
      if #tables == 0 then open_all(others) end
      -- a source another worker reads ends here at once: its records come through the
      -- exchange points, with that worker's watermark
      for _, node in ipairs(elsewhere) do runtime.finish_targets(g.routes[node]) end
      j:maybe_finish()
    end)
  end
  if ok then
    active, j.running = j, true
    fire(j, "started")
    -- the meters' rates (stage.sample): a sample a second while the job runs
    -- (on several workers every worker samples: the others send theirs to worker 1)
    local sampler = (j.live > 0 or team) and core.timer(function() j:sample() end) or nil
    if sampler then sampler:start(1000, 1000) end
    -- (a worker with no source and no exchange point, when nothing keyed is downstream of
    -- worker 1's sources, is through as it starts: core.stop does nothing before the loop
    -- runs, and the sampler would keep it turning for ever)
    if not j.sinks_closed then ok, err = core.run() end
    if sampler then sampler:close() end
    active, j.running = nil, false
  end
  if j.drain_watch then j.drain_watch:close(); j.drain_watch = nil end
  if team then
    -- another worker failed: say which and why; this one failed: every worker stops
    if j.failed then ok, err = nil, j.failed
    elseif not ok then team.ep:abort(tostring(err)) end
  end
  for _, route in ipairs(j.sources) do pcall(route.handle.close) end
  if j.graph then
    if not j.sinks_closed then
      for _, s in ipairs(j.graph.sinks) do
        -- after a failure, a transactional sink aborts rather than commits
        local closed, cerr = pcall(s.handle.close, not ok)
        if ok and not closed then ok, err = nil, cerr end
      end
    end
    for _, c in ipairs(j.graph.closers) do pcall(c) end
  end
  pcall(dl.close)
  j.dead_letters = dl.count
  if ok and #j.lost > 0 then ok, err = nil, table.concat(j.lost, "; ") end
  if not ok then return nil, err end
  return true
end

-- How far a drain has come: records read and through the sinks, bytes sinks delivered.
local function drain_progress(j)
  local n = j.records_in + j:records_out()
  for _, s in ipairs(j.graph.sinks) do
    if s.handle.delivered then n = n + s.handle.delivered() end
  end
  return n
end

-- Stops reading: every source is closed, and what was already read (a socket's: what the
-- kernel held for it) drains through the graph before the sinks close, at the pace the
-- sinks take it (flow.lua keeps pausing the sources); the loop ends once the last source
-- has ended. A drain that moves nothing for the drain timeout gives up: the sources close
-- at once and what they and the sinks still held is reported (job.lost).
function Job:shutdown(from_peer)
  if not self.running then return end
  self.stopping = true
  -- on several workers, every worker stops reading
  if self.team and not from_peer then self.team:broadcast { k = "c", c = "shutdown" } end
  for _, route in ipairs(self.sources) do route.handle.close() end
  if self.drain_watch or self.finishing then return end
  local j, ms = self, self.options.drain_timeout
  local step = math.max(10, math.min(1000, ms / 10))
  local last, quiet = drain_progress(j), 0
  j.drain_watch = core.timer(function()
    local now = drain_progress(j)
    if j.finishing or now ~= last then
      last, quiet = now, 0
      if j.finishing then j.drain_watch:close(); j.drain_watch = nil end
      return
    end
    quiet = quiet + step
    if quiet < ms then return end
    j.drain_watch:close()
    j.drain_watch = nil
    j.gave_up = true
    j.lost[#j.lost + 1] = string.format("the drain moved nothing for %gms (--drain-timeout) " ..
      "and gave up", ms)
    for _, route in ipairs(j.sources) do route.handle.close() end
  end)
  j.drain_watch:start(step, step)
end

-- A control message of the job from worker `from` (exchange.lua): stop reading, fail (a
-- worker aborted), or a dead letter another worker sends to the job's dead letter sink.
function Job:on_control(from, m)
  if m.c == "shutdown" then
    self:shutdown(true)
  elseif m.c == "release" then
    self.released = true
    self:maybe_finish()
  elseif m.c == "abort" then
    self.failed = string.format("worker %d: %s", from, tostring(m.why))
    self:abort()
  elseif m.c == "dl" then
    self.dl.write(m.e)
  elseif m.c == "metrics" then
    -- worker `from`'s meters, a second old at most (job:metrics() adds them)
    self.worker_metrics = self.worker_metrics or {}
    self.worker_metrics[from] = m.rows
    self.worker_out = self.worker_out or {}
    self.worker_out[from] = m.out
  elseif control_handlers[m.c] then
    control_handlers[m.c](self, from, m)
  end
end

-- Control messages between workers that the layers above take (inspect.lua's taps):
-- fn(job, from, message) for messages whose `c` is `kind`.
function runtime.on_control_message(kind, fn) control_handlers[kind] = fn end

-- The dead letters of a worker other than 1 when the job has a dead letter sink, which
-- worker 1 alone writes: each entry goes there (the default, stderr, each writes itself).
function runtime.forwarded_dead_letters(team, on_error)
  local dl = { count = 0 }
  function dl.write(entry)
    dl.count = dl.count + 1
    if on_error == "fail" then return dead_letters.raise(entry) end
    team:send(1, exchange.encode { k = "c", c = "dl", e = entry })
  end
  function dl.close() end
  return dl
end

-- Stops the job where it is, as a crash would: no end of input, nothing fires.
function Job:abort()
  self.aborted = true
  core.stop()
end

-- The state of the running job, between batches: every stateful operator's state by id,
-- and each source's position. Plain values msgpack can carry.
function Job:snapshot()
  assert(self.running, "job:snapshot(): the job is not running")
  local snap = { version = 1, operators = {}, kinds = {}, sources = self:positions() }
  for id, s in pairs(self.graph.stateful) do
    snap.operators[id], snap.kinds[id] = s.snapshot(), s.kind
  end
  if self:transactional() then
    -- where a restart learns whether this checkpoint's transaction committed: the groups
    -- the sources' offsets were committed to in it (checkpoint.lua)
    snap.transactions = {}
    local ids = {}
    for _, s in ipairs(self.graph.sinks) do
      if s.handle.transactional then ids[#ids + 1] = s.handle.transactional end
    end
    for _, route in ipairs(self.sources) do
      local home = route.handle.offsets_home
      if home then
        snap.transactions[#snap.transactions + 1] = { source = route.handle.id,
          brokers = home.brokers, group = home.group, options = home.options,
          transactional_ids = ids }
      end
    end
  end
  return snap
end

-- Whether a sink writes in transactions committed with checkpoints (a Kafka sink with
-- exactly_once): then the offsets of Kafka sources go to their group in those
-- transactions only.
function Job:transactional()
  for _, s in ipairs(self.graph and self.graph.sinks or {}) do
    if s.handle.transactional then return true end
  end
  return false
end

-- Each source's position now (what job:snapshot() holds of it): id -> position.
function Job:positions()
  local list = {}
  for _, route in ipairs(self.sources) do
    local src = route.handle
    if src.position then list[src.id] = src.position() end
  end
  return list
end

-- The moment of a checkpoint, just before its state is taken, with `positions` (from
-- job:positions()): a transactional sink delivers what it has and puts the sources'
-- offsets into its transaction, then holds what comes next until the checkpoint is
-- durable (or failed). Raises when a sink cannot; then no checkpoint is taken.
function Job:barrier(positions)
  local handles = {}
  for i, route in ipairs(self.sources) do handles[i] = route.handle end
  for _, s in ipairs(self.graph.sinks) do
    if s.handle.barrier then s.handle.barrier(positions, handles) end
  end
end

-- A checkpoint holding `positions` is durable: each source that wants to know hears its
-- own (a Kafka source commits it to the group) and each transactional sink commits.
function Job:checkpointed(positions)
  for _, s in ipairs(self.graph.sinks) do
    if s.handle.checkpointed then s.handle.checkpointed() end
  end
  for _, route in ipairs(self.sources) do
    local src = route.handle
    if src.checkpointed and positions[src.id] ~= nil then src.checkpointed(positions[src.id]) end
  end
end

-- The checkpoint after the last barrier failed: transactional sinks go on in the open
-- transaction, which the next durable checkpoint commits.
function Job:checkpoint_failed()
  for _, s in ipairs(self.graph.sinks) do
    if s.handle.checkpoint_failed then s.handle.checkpoint_failed() end
  end
end

-- The running job's open sinks (checkpoint.lua commits the file sinks among them); after
-- a reload, those of the graph running now.
function Job:sinks()
  assert(self.running, "job:sinks(): the job is not running")
  local list = {}
  for i, s in ipairs(self.graph.sinks) do list[i] = s.handle end
  return list
end

-- Notes every meter's counts now, for the rates job:metrics() shows (stage.rates).
function Job:sample()
  local now = host.clock()
  for _, m in ipairs(self.graph.meters) do stage.sample(m, now) end
  for _, route in ipairs(self.sources) do stage.sample(route.meter, now) end
  local team = self.team
  if team and team.me ~= 1 then
    team:send(1, exchange.encode { k = "c", c = "metrics", rows = self:meter_counts(now),
      out = self:records_out() })
  end
end

-- This worker's counts of each meter, by node id: what worker 1 adds to its own in
-- job:metrics() (inspect.lua) for the whole job. Plain numbers, to cross as a message.
function Job:meter_counts(now)
  local rows = {}
  local queued = {}     -- a sink's node -> its handle's queued bytes (--metrics)
  for _, s in ipairs(self.graph.sinks) do
    if s.handle.queued then
      local ok, bytes = pcall(s.handle.queued)
      if ok then queued[s.node] = bytes end
    end
  end
  local function add(m)
    if not m then return end
    local rate_in, rate_out = stage.rates(m, now)
    local recv = self.graph.receiver[m.node]
    local op = recv and recv.op
    rows[m.node.id] = { input = m.input, out = m.out, errors = m.errors, dead = m.dead,
      late = m.late, wm = m.wm, rate_in = rate_in, rate_out = rate_out,
      keys = op and op.live_keys and op.live_keys() or nil, queued = queued[m.node] }
  end
  for _, m in ipairs(self.graph.meters) do add(m) end
  for _, route in ipairs(self.sources) do
    if not route.removed and route.meter then
      add(route.meter)
      local row = rows[route.meter.node.id]
      row.source = true
      if route.handle.lag then
        local ok, lag = pcall(route.handle.lag)
        if ok then row.lag = lag end
      end
    end
  end
  return rows
end

-- The records the job's sources have read: this worker's, and on several workers what the
-- others last said they had read (each says so every second).
function Job:records_read()
  local n = self.records_in
  for _, rows in pairs(self.worker_metrics or {}) do
    for _, c in pairs(rows) do
      if c.source then n = n + c.out end
    end
  end
  return n
end

-- How many records the job's sinks have received (each sink counts what it got), those a
-- reload closed included. On several workers, worker 1's sinks and what the others' own
-- sinks took (runtime.sink_everywhere): worker_out, what each last said (every second),
-- and once they have ended the total they returned (cli.lua).
function Job:records_out()
  local n = self.records_out_retired
  for _, s in ipairs(self.graph and self.graph.sinks or {}) do n = n + (s.handle.records or 0) end
  for _, out in pairs(self.worker_out or {}) do n = n + out end
  return n
end

-- Rows that the job's metrics hooks add (checkpoint.lua's, say), for inspect.metrics.
function Job:hook_rows(event)
  local rows = {}
  for _, fn in ipairs(self.hooks[event]) do rows[#rows + 1] = fn() end
  return rows
end

-- The job running on this Lua state's loop, or nil (the REPL's Ctrl-C stops it).
function runtime.running() return active end

-- Runs the nodes of `set` as a new job to the end of their input: runtime.new(set, opts)
-- and job:run(opts.restore). Returns true and the job, or nil and a message.
function runtime.run(set, opts)
  local j = runtime.new(set, opts)
  local ok, err = j:run(opts and opts.restore)
  if not ok then return nil, err end
  return true, j
end

return runtime
