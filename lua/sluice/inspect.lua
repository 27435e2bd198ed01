-- inspect.lua -- looking inside a running job: per-operator metrics, taps on any operator's
-- output (sources and sinks included), and a keyed operator's state (sluice attach, top, tap).
--
-- Every function takes the job (runtime.new) and reads it between two batches: the loop
-- runs one callback at a time, so what it sees is at rest. Operators are found by name,
-- by id (`#3`, the number job:graph() shows), by state id, label or kind, or by a glob on
-- those (`win*`).
local host = require "sluice.host"
local stage = require "sluice.stage"
local keyed = require "sluice.keyed"
local text = require "sluice.format"
local runtime = require "sluice.runtime"
local exchange = require "sluice.exchange"
local typed = require "sluice.typed"

local core = host.core
local format, type, floor = string.format, type, math.floor
local huge = math.huge

local inspect = {}

-- ---- finding operators ----------------------------------------------------------------

local function glob_pattern(glob)
  return "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
end

-- The nodes of the running graph that `pattern` names, in id order: a number or "#N" is
-- the node of that id; a pattern with * or ? is a glob over names, labels ("source.file
-- in.log") and kinds ("map", "source.file"); anything else matches those, or a state id,
-- exactly. Raises when none does.
function inspect.find(job, pattern)
  assert(job and job.graph, "no job is running")
  local nodes, found = job.graph.nodes, {}
  local id = type(pattern) == "number" and pattern
    or type(pattern) == "string" and tonumber(pattern:match("^#?(%d+)$"))
  if type(pattern) ~= "string" and not id then
    error(format("expected an operator's name, #id or a glob, got %s", type(pattern)), 0)
  end
  local glob = not id and pattern:find("[*?]") and glob_pattern(pattern)
  for _, node in ipairs(nodes) do
    local hit
    if id then hit = node.id == id
    else
      -- a glob looks at names, labels and kinds; an exact pattern at state ids too
      local typed_kind = node.spec and node.spec.type and (node.kind .. "." .. node.spec.type)
      local names = { node.name or false, node.label or false, node.kind, typed_kind or false,
        not glob and node.state_id or false }
      for _, s in ipairs(names) do
        if s and (glob and s:find(glob) or s == pattern) then hit = true; break end
      end
    end
    if hit then found[#found + 1] = node end
  end
  if #found == 0 then
    if id then error(format("no operator has the id #%d (see job:graph())", id), 0) end
    if glob then error(format("no operator matches %q (see job:graph())", pattern), 0) end
    error(format("no operator is named %q (see job:graph())", pattern), 0)
  end
  -- a name or id names one operator even when a label or kind is the same as it
  for _, node in ipairs(found) do
    if node.name == pattern or node.state_id == pattern then return { node } end
  end
  return found
end

-- "#3 map" / "#2 \"evens\"": a node for people.
local function title(node)
  if node.name then return format("#%d %s", node.id, node.name) end
  return format("#%d %s", node.id, node.label or node.kind)
end
inspect.title = title

-- Where the output of `node` can be tapped: a meter, or a point inside a fused stage.
local function point_of(job, node)
  local g = job.graph
  if node.kind == "source" then
    local route = g.routes[node]
    if not route then return nil end
    if route.st then return route.st.points[node] end
    return route.meter
  end
  return g.points[node]
end

-- ---- metrics ----------------------------------------------------------------------------

-- "#3" or "#2-#4" (a fused stage of consecutive operators) or "#2,#5".
local function ids_text(nodes)
  local ids, consecutive = {}, true
  for i, n in ipairs(nodes) do
    ids[i] = "#" .. n.id
    if i > 1 and n.id ~= nodes[i - 1].id + 1 then consecutive = false end
  end
  if #ids > 2 and consecutive then return ids[1] .. "-" .. ids[#ids] end
  return table.concat(ids, ",")
end

-- The operator column: a name of the nodes if one has one, else their labels.
local function operator_text(nodes)
  for i = #nodes, 1, -1 do if nodes[i].name then return nodes[i].name end end
  local labels = {}
  for i, n in ipairs(nodes) do labels[i] = n.label or n.kind end
  return table.concat(labels, " > ")
end

local function round(x) return floor(x + 0.5) end

-- One row of metrics for meter m.
local function row(m, now, now_ms, extra)
  local nodes = m.nodes or { m.node }
  local kind = m.node.kind
  local r = { id = ids_text(nodes), operator = operator_text(nodes), kind = kind,
    errors = m.errors, dead_letters = m.dead }
  local rate_in, rate_out = stage.rates(m, now)
  if kind ~= "source" then r.records_in, r.rate_in = m.input, round(rate_in) end
  if kind ~= "sink" then r.records_out, r.rate_out = m.out, round(rate_out) end
  if kind == "window" then r.late = m.late end
  local wm = m.wm
  if wm and wm > -huge and wm < huge then
    r.watermark = wm
    r.watermark_lag = text.duration(now_ms - wm)
  end
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- The lag of a source over its partitions (source handle's lag()).
local function lag_total(list)
  local n = 0
  for _, l in ipairs(list) do n = n + l.lag end
  return n
end

-- What a source's handle says of its consumer lag, or nil: { {topic, partition, lag} }.
local function lag_of(handle)
  if not handle.lag then return nil end
  local ok, list = pcall(handle.lag)
  if ok and type(list) == "table" then return list end
  return nil
end

-- Adds to row r (of node `id`, this worker's) what the other workers last said of that
-- node (runtime.lua's meter_counts, sent every second): counts and rates summed, live keys
-- summed, the watermark the smallest; r.workers says how many workers it covers.
local function with_workers(r, id, others, now_ms)
  local n = 1
  local wm = r.watermark
  for _, rows in pairs(others) do
    local c = rows[id]
    if c then
      n = n + 1
      if r.records_in then r.records_in = r.records_in + c.input end
      if r.records_out then r.records_out = r.records_out + c.out end
      if r.rate_in then r.rate_in = round(r.rate_in + c.rate_in) end
      if r.rate_out then r.rate_out = round(r.rate_out + c.rate_out) end
      r.errors = (r.errors or 0) + (c.errors or 0)
      r.dead_letters = (r.dead_letters or 0) + (c.dead or 0)
      if r.late then r.late = r.late + (c.late or 0) end
      if c.keys then r.keys = (r.keys or 0) + c.keys end
      if c.queued then r.queued_bytes = (r.queued_bytes or 0) + c.queued end
      if c.lag then
        r.partition_lag = r.partition_lag or {}
        for _, l in ipairs(c.lag) do r.partition_lag[#r.partition_lag + 1] = l end
        r.consumer_lag = (r.consumer_lag or 0) + lag_total(c.lag)
      end
      if c.wm and c.wm > -huge and c.wm < huge and (wm == nil or c.wm < wm) then wm = c.wm end
    end
  end
  if wm and wm ~= r.watermark then
    r.watermark, r.watermark_lag = wm, text.duration(now_ms - wm)
  end
  r.workers = n
end

-- The process's row: resident memory, Lua heap, CPU seconds, and the CPU it used over the
-- last CPU_WINDOW seconds (percent of one core), from samples of it kept on the job, one
-- a second at most, taken when the metrics are asked for.
local CPU_WINDOW = 5
local function process_row(job, now)
  local u, m = core.usage(), core.memory()
  local r = { operator = "(process)", kind = "process", rss = u.rss, heap = m.heap,
    cpu_seconds = u.cpu }
  local samples = job.cpu_samples or {}
  job.cpu_samples = samples
  if #samples == 0 or now - samples[#samples].at >= 1 then
    samples[#samples + 1] = { at = now, cpu = u.cpu }
  end
  while #samples > 1 and now - samples[1].at > CPU_WINDOW do table.remove(samples, 1) end
  local first = samples[1]
  if now - first.at >= 0.5 then r.cpu_percent = round(100 * (u.cpu - first.cpu) / (now - first.at)) end
  return r
end

-- Per operator, sources and sinks included, in the order of the graph: records in and out
-- and their rates over the last seconds, errors (a user function raised), dead letters,
-- late records (windows), live keys (keyed operators: keys that hold state now), bytes
-- read or written where known, the watermark and its lag behind the wall clock, a sink's
-- queued bytes (its handle's queued()), a source's consumer lag (its handle's lag(): the
-- total, and partition_lag per partition); then the rows the job's metrics hooks add
-- (checkpoints), and the process's (memory, CPU).
function inspect.metrics(job)
  assert(job and job.graph, "no job is running")
  local g = job.graph
  local now, now_ms = host.clock(), host.now_ms()
  local list, order = {}, {}
  local others = job.worker_metrics
  local function add(m, extra)
    local r = row(m, now, now_ms, extra)
    if others then with_workers(r, m.node.id, others, now_ms) end
    list[#list + 1] = r
    order[r] = m.node.id
  end
  for _, route in ipairs(job.sources) do
    if not route.removed and route.meter then
      local extra = {}
      local pos = route.handle and route.handle.position
      if pos then
        local ok, p = pcall(pos)
        if ok and type(p) == "table" and p.offset then extra.bytes = p.offset end
      end
      local lag = route.handle and lag_of(route.handle)
      if lag then extra.partition_lag, extra.consumer_lag = lag, lag_total(lag) end
      add(route.meter, extra)
    end
  end
  local sink_of = {}
  for _, s in ipairs(g.sinks) do sink_of[s.node] = s.handle end
  for _, m in ipairs(g.meters) do
    local extra
    local handle = sink_of[m.node]
    if handle then
      extra = { errors = handle.errors, dead_letters = handle.dead }
      if handle.commit then
        local ok, size = pcall(handle.commit)
        if ok then extra.bytes = size end
      end
      if handle.queued then
        local ok, bytes = pcall(handle.queued)
        if ok then extra.queued_bytes = bytes end
      end
    end
    -- a keyed operator: how many keys hold state now
    local recv = g.receiver[m.node]
    local op = recv and recv.op
    if op and op.live_keys then extra = { keys = op.live_keys() } end
    add(m, extra)
  end
  table.sort(list, function(a, b) return order[a] < order[b] end)
  for _, r in ipairs(job:hook_rows("metrics")) do list[#list + 1] = r end
  list[#list + 1] = process_row(job, now)
  return list
end

-- ---- taps -------------------------------------------------------------------------------

-- Makes point.tap show each batch to the point's taps, until none is left. A point inside
-- a fused stage is told when its first tap comes and its last goes (on_change).
local function arm(p)
  local was = p.tap
  p.tap = function(b, k)
    for t in pairs(p.taps) do
      for i = 1, k do
        if t.left <= 0 then break end
        t.left = t.left - 1
        t.fn(b[i], t.node)
      end
      if t.left <= 0 then p.taps[t] = nil end
    end
    if next(p.taps) == nil then
      p.tap = nil
      if p.on_change then p.on_change() end
    end
  end
  if not was and p.on_change then p.on_change() end
end

-- worker 1's taps whose records other workers send: request id -> { node id -> tap }
local remote_taps, next_tap = {}, 0

local function disarm(tap)
  local p = tap.point
  if p.taps and p.taps[tap] then
    p.taps[tap] = nil
    if next(p.taps) == nil then
      p.tap = nil
      if p.on_change then p.on_change() end
    end
  end
end

-- Calls on_record(r, node) for each of the next n records (nil: every one) that each
-- operator `pattern` names (inspect.find) emits; a sink's are the records it receives.
-- Several taps on one operator each see every record; a tap outlives a reload that keeps
-- the operator. Returns a function that cancels it, and the nodes tapped.
function inspect.tap(job, pattern, n, on_record)
  local nodes = inspect.find(job, pattern)
  local points = {}
  for i, node in ipairs(nodes) do
    local p = point_of(job, node)
    if not p then error(format("%s has no output to look at", title(node)), 0) end
    if p.tappable == false then
      error(format("%s cannot be tapped where it stands in its fused stage (a take() " ..
        "follows it): name() it, so that its output is its own", title(node)), 0)
    end
    points[i] = p
  end
  local taps = {}
  for i, node in ipairs(nodes) do
    local p = points[i]
    p.taps = p.taps or {}
    local tap = { left = n or huge, fn = on_record, point = p, node = node }
    p.taps[tap] = true
    taps[i] = tap
    arm(p)
  end
  local team = job.team
  if team and team.me == 1 and team.n > 1 then
    -- the other workers tap the same operators and send what passes (remote_tap below)
    local by_id = {}
    for _, tap in ipairs(taps) do by_id[tap.node.id] = tap end
    next_tap = next_tap + 1
    local id = next_tap
    remote_taps[id] = by_id
    team:broadcast { k = "c", c = "tap", tap = id, pattern = pattern, n = n }
    return function()
      for _, tap in ipairs(taps) do disarm(tap) end
      if remote_taps[id] then
        remote_taps[id] = nil
        team:broadcast { k = "c", c = "untap", tap = id }
      end
    end, nodes
  end
  return function()
    for _, tap in ipairs(taps) do disarm(tap) end
  end, nodes
end

-- ---- taps across workers: worker 1 asks, the others send what passes ----------------------

-- On a worker other than 1: its own taps of tap request `id`, by id, until untapped.
local tapping = {}

runtime.on_control_message("tap", function(job, from, m)
  local ok, cancel = pcall(inspect.tap, job, m.pattern, m.n, function(record, node)
    local sent, s = pcall(exchange.encode, { k = "c", c = "tapped", tap = m.tap, node = node.id,
      r = typed.plain_deep(keyed.deep_copy(record)) })
    if not sent then
      s = exchange.encode { k = "c", c = "tapped", tap = m.tap, node = node.id,
        r = tostring(record) }
    end
    job.team:send(from, s)
  end)
  if ok then tapping[m.tap] = cancel end
end)

runtime.on_control_message("untap", function(_, _, m)
  local cancel = tapping[m.tap]
  tapping[m.tap] = nil
  if cancel then cancel() end
end)

-- On worker 1: a record another worker's tap saw goes to the tap of its operator here,
-- which counts it against its n as its own.
runtime.on_control_message("tapped", function(_, _, m)
  local by_id = remote_taps[m.tap]
  local tap = by_id and by_id[m.node]
  if not tap or tap.left <= 0 then return end
  tap.left = tap.left - 1
  tap.fn(m.r, tap.node)
  if tap.left <= 0 then disarm(tap) end
end)

-- After a reload from graph `old` to graph `g`: each output of the new graph continues the
-- counts of the old output of the same id, and takes over its taps. (A kept source keeps
-- its route, and so its meter.)
function inspect.carry_meters(old, g)
  local by_id = {}
  for node, p in pairs(old.points) do by_id[node.state_id] = p end
  for node, p in pairs(g.points) do
    local o = by_id[node.state_id]
    if o and o ~= p then
      if o.input and p.input then
        p.input, p.out, p.errors, p.dead, p.late, p.wm = o.input, o.out, o.errors, o.dead,
          o.late, o.wm
        p.samples = o.samples
      end
      if o.taps and next(o.taps) ~= nil then
        p.taps = o.taps
        for t in pairs(p.taps) do t.point = p end
        o.taps, o.tap = nil, nil
        arm(p)
      end
    end
  end
end

-- ---- state ------------------------------------------------------------------------------

local KEYS_SHOWN = 20

-- The state of `key` in operator `name` on worker `owner`, which owns the key: asked
-- through the rings, and waited for here (at most 2 s), with every other message that
-- comes meanwhile handled as the loop would (team:wake).
local asked, answers = 0, {}
local function state_from(job, owner, name, key)
  asked = asked + 1
  local id = asked
  local team = job.team
  team:send(owner, exchange.encode { k = "c", c = "state?", id = id, name = name, key = key })
  local deadline = host.clock() + 2
  -- (the owner answers within a loop turn of its own: a few microseconds of spinning)
  while answers[id] == nil and host.clock() < deadline do team:wake() end
  local a = answers[id]
  answers[id] = nil
  if a == nil then
    if key == nil then error(format("worker %d did not answer in 2 s", owner), 0) end
    error(format("worker %d, which owns key %s, did not answer in 2 s", owner, tostring(key)), 0)
  end
  if not a.ok then error(a.err, 0) end
  return a.value
end

runtime.on_control_message("state?", function(job, from, m)
  local ok, v = pcall(inspect.state, job, m.name, m.key, true)
  local reply = { k = "c", c = "state!", id = m.id, ok = ok }
  if ok then reply.value = typed.plain_deep(keyed.deep_copy(v)) else reply.err = tostring(v) end
  local sent, s = pcall(exchange.encode, reply)
  if not sent then
    s = exchange.encode { k = "c", c = "state!", id = m.id, ok = false,
      err = "the state cannot be sent between workers: " .. tostring(s) }
  end
  job.team:send(from, s)
end)

runtime.on_control_message("state!", function(_, _, m) answers[m.id] = m end)

local key_less = keyed.key_less

-- Operator `name`'s state for `key` (plain values: a window's open windows with their
-- current results), or nil when the key has none. Without a key: the first keys that have
-- state, sorted, and how many there are, over every worker (each key is on the worker that
-- owns it; `here`: this worker's alone, what another worker asks for).
function inspect.state(job, name, key, here)
  local nodes = inspect.find(job, name)
  local r
  for _, node in ipairs(nodes) do
    local recv = job.graph.receiver[node]
    if recv and recv.op and recv.op.inspect then
      if r then error(format("%q names several operators with state; use its #id", name), 0) end
      r = recv
    end
  end
  if not r then
    error(format("operator %q keeps no keyed state", name), 0)
  end
  if key ~= nil then
    local team = job.team
    local g = team and team.n > 1 and exchange.group_of(key)
    local owner = g and exchange.owner_of_group(g, team.n)
    if owner and owner ~= team.me then return state_from(job, owner, name, key) end
    return r.op.inspect(key)
  end
  local keys = r.op.keys and r.op.keys() or {}
  local count = #keys
  local team = job.team
  if team and team.n > 1 and not here then
    -- every other worker's first keys (the first of all are among them) and its count
    for w = 1, team.n do
      if w ~= team.me then
        local theirs = state_from(job, w, name, nil)
        for _, k in ipairs(theirs.keys) do keys[#keys + 1] = k end
        count = count + theirs.count
      end
    end
  end
  table.sort(keys, key_less)
  local shown = {}
  for i = 1, math.min(#keys, KEYS_SHOWN) do shown[i] = keys[i] end
  return { keys = shown, count = count,
    more = count > KEYS_SHOWN and (count - KEYS_SHOWN) or nil }
end

return inspect
