-- runtime.lua -- running a planned graph on the host's event loop.
--
-- runtime.run(set) instantiates the nodes of `set`: one receiver per stage head, union and
-- sink, each with push(batch, n); each stage's generated loop; the sinks; then starts the
-- sources and runs the libuv loop until every source has ended (bounded input) or the job
-- fails. Bad records never stop a job: they go to the dead letter output with where and
-- why, and the next record flows (unless on_error is "fail").
local graph = require "sluice.graph"
local plan = require "sluice.plan"
local host = require "sluice.host"
local source = require "sluice.source"
local sink = require "sluice.sink"

local core = host.core
local format, type, tostring, xpcall, getinfo = string.format, type, tostring, xpcall,
  debug.getinfo

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

-- ---- stages ---------------------------------------------------------------------------

local function make_emit(receivers)
  local n = #receivers
  if n == 0 then return function() end end
  if n == 1 then
    local r = receivers[1]
    return function(b, k) return r:push(b, k) end
  end
  return function(b, k)
    for i = 1, n do receivers[i]:push(b, k) end
  end
end

local function all_done(receivers)
  if #receivers == 0 then return false end
  for i = 1, #receivers do
    if not receivers[i].done then return false end
  end
  return true
end

-- Builds the receiver of a stage: its generated loop, run protected per batch.
local function new_stage(stage, ports, dl, gen_source)
  local ops, fns = stage.ops, {}
  for k, node in ipairs(ops) do fns[k] = node.fn or false end
  fns.gen = gen_source and gen_source.spec.fn
  local src, line_op = plan.codegen(ops, gen_source ~= nil)
  local chunkname = format("=sluice stage %d", stage.id)
  local chunk = assert(load(src, chunkname))
  local recv = { done = false, stage = stage }
  local receivers = {}
  for p = 1, 2 do receivers[p] = ports[p] or {} end
  local every = {}
  for p = 1, 2 do for _, r in ipairs(receivers[p]) do every[#every + 1] = r end end
  for _, node in ipairs(ops) do
    if node.kind == "take" and node.n == 0 then recv.done = true end
  end

  local function bad_return(k, v)
    error(format("flat_map() must return an array or nil, got %s", type(v)), 0)
  end
  local function on_take_done() recv.take_done = true end
  local run, flush, cursor = chunk(fns, make_emit(receivers[1]), make_emit(receivers[2]),
    on_take_done, bad_return)

  -- Finds the operator whose code was running when an error was raised, and the record
  -- it was given: the innermost live local `r` of the generated loop (so after a map, the
  -- mapped record). Runs only on error, so the loop itself pays nothing for it.
  local function handler(e)
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

  function recv.push(_, inb, n, first)
    if recv.done then return end
    local s = first or 1
    while s <= n do
      local ok, e = xpcall(run, handler, inb, s, n)
      if ok then break end
      local i = cursor()
      local reason = e.err
      if type(reason) ~= "string" then reason = tostring(reason) end
      if e.op == 0 then
        -- the fused generator raised: its index is the record
        dl.write { source = "generator", at = gen_source.where, reason = reason, record = i }
      else
        local node = ops[e.op or 1]
        local record = e.record
        if not e.found then record = inb and inb[i] or i end
        dl.write { operator = node.kind, name = node.name, at = node.where, reason = reason,
          record = record }
      end
      s = i + 1
    end
    flush()
    if recv.take_done or all_done(every) then recv.done = true end
  end
  return recv
end

-- A union only merges: whatever reaches it goes on to its consumers.
local function new_union(receivers)
  local recv = { done = false }
  function recv.push(_, b, n)
    if recv.done then return end
    for i = 1, #receivers do receivers[i]:push(b, n) end
    if all_done(receivers) then recv.done = true end
  end
  return recv
end

-- ---- the job --------------------------------------------------------------------------

-- Runs the nodes of `set` (every ancestor of the sinks to run) to the end of their input.
-- `job` is the graph.begin() job (for its dead letter sink), or nil. Returns true, or nil
-- and a message.
function runtime.run(set, job)
  if running then
    return nil, "cannot run a stream while a job is running (collect() inside a function?)"
  end
  local stages = plan.assign_stages(set)
  local nodes = graph.ordered(set)
  local dl = open_dead_letters(job)
  local receiver, sinks, sources = {}, {}, {}
  local fused = {}              -- generator source node -> the stage that runs it
  local ok, err = pcall(function()
    local function receivers_of(node, port)
      local list = {}
      for _, c in ipairs(plan.consumers_in(node, set)) do
        if c.port == port then list[#list + 1] = receiver[c.node] end
      end
      return list
    end
    -- Receivers downstream first, so each stage can be wired to what it feeds.
    for i = #nodes, 1, -1 do
      local node = nodes[i]
      if node.kind == "sink" then
        local spec = node.spec
        local ctx = {
          bad_output = function(record, reason)
            dl.write { sink = spec.label, at = spec.where, reason = reason, record = record }
          end,
          user_error = function(e, record)
            dl.write { operator = "sink.fn", at = spec.where, reason = tostring(e), record = record }
          end,
        }
        local s = sink.open(spec, ctx)
        sinks[#sinks + 1] = s
        receiver[node] = { done = false, push = function(_, b, n) s.push(b, n) end }
      elseif node.kind == "union" then
        receiver[node] = new_union(receivers_of(node, 1))
      elseif plan.fusable[node.kind] then
        local stage = stages[node.stage]
        if stage.ops[1] == node then
          local last = stage.ops[#stage.ops]
          local up = node.inputs[1].node
          local gen = #node.inputs == 1 and up.kind == "source" and up.spec.type == "generator"
            and #plan.consumers_in(up, set) == 1 and up or nil
          receiver[node] = new_stage(stage, { receivers_of(last, 1), receivers_of(last, 2) }, dl,
            gen)
          if gen then fused[gen] = receiver[node] end
        end
      end
    end
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
        local push = make_emit(targets)
        local stage = fused[node]
        live = live + 1
        local ended = false
        sources[#sources + 1] = source.open(spec, {
          batch_size = runtime.options.batch_size,
          push = function(b, n) push(b, n); return all_done(targets) end,
          -- a generator fused into its stage: the stage makes records from..to itself
          run_range = stage and function(from, to)
            stage:push(nil, to, from)
            return stage.done
          end,
          bad = function(info)
            dl.write { source = spec.path or spec.type, at = spec.where, line = info.line,
              offset = info.offset, reason = info.reason, record = info.raw }
          end,
          user_error = function(e, i)
            dl.write { source = spec.type, at = spec.where, reason = tostring(e), record = i }
          end,
          ended = function()
            if ended then return end
            ended = true
            live = live - 1
            if live == 0 then finish() end
          end,
        })
      end
    end
  end)
  if ok then
    running = true
    -- Stops reading: every source is closed, and what was already read drains through
    -- the graph before the sinks close (the loop ends once the last source has ended).
    runtime.shutdown = function()
      for _, s in ipairs(sources) do s.close() end
    end
    ok, err = core.run()
    running = false
    runtime.shutdown = nil
  end
  for _, s in ipairs(sources) do pcall(s.close) end
  for _, s in ipairs(sinks) do
    local closed, cerr = pcall(s.close)
    if ok and not closed then ok, err = nil, cerr end
  end
  pcall(dl.close)
  runtime.dead_letters = dl.count
  if not ok then return nil, err end
  return true
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
