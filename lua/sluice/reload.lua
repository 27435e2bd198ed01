-- reload.lua -- hot reload of a running job: `sluice run --watch`, SIGHUP and job:reload().
--
-- A reload compiles the script again, as `run` compiled it (compile.script: a fresh global
-- environment, mistakes reported at script.lua:LINE), with the Lua modules it required
-- loaded afresh. If that fails, the error is printed and the running job is untouched.
-- Otherwise reload.swap moves the job to the new graph between two batches: state moves by
-- operator id and kind, sources and sinks whose spec is unchanged are kept, and one line
-- says what was kept, added and dropped, and how long the job stood still.
--
-- --watch watches the script and every module it required from a file (recorded by a
-- searcher in front of Lua's own, while a script compiles) through core.watch, which
-- debounces the several writes of one save; an event that leaves every file as it was
-- (a touch) reloads nothing.
local host = require "sluice.host"
local report = require "sluice.report"
local graph = require "sluice.graph"
local plan = require "sluice.plan"
local runtime = require "sluice.runtime"
local compile = require "sluice.compile"
local inspect = require "sluice.inspect"
local source = require "sluice.source"

local format, concat, tostring = string.format, table.concat, tostring

local reload = {}

local say = report.say

-- ---- the modules a script requires --------------------------------------------------

local recording         -- name -> path while a script compiles, else nil
-- Puts a searcher in front of Lua's file searcher that notes where each module required
-- while a script compiles was found. Modules of sluice itself, and those installed under
-- /usr, are not the user's code and are left alone.
local library = host.libdir and (host.libdir .. "/") or nil
local function track_requires()
  local loaders = package.loaders
  if loaders.sluice_tracked then return end
  loaders.sluice_tracked = true
  local lua_searcher = loaders[2]
  loaders[2] = function(name)
    local found = lua_searcher(name)
    if recording and type(found) == "function" then
      local path = package.searchpath(name, package.path)
      if path and not (library and path:sub(1, #library) == library)
        and path:sub(1, 5) ~= "/usr/" then
        recording[name] = path
      end
    end
    return found
  end
end

-- The content of the file at path, or nil when it cannot be read.
function reload.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

-- Compiles `path` with compile.script (`opts` as it takes them: arguments, params, text),
-- the modules of `previous` (name -> path: those the running job's script required)
-- loaded afresh. Returns what the script declared, its set of nodes and the modules it
-- required (name -> path); or nil and the array of mistakes, and then package.loaded is
-- as it was.
function reload.compile(path, previous, opts)
  track_requires()
  local saved = {}
  for name in pairs(previous or {}) do
    saved[name] = package.loaded[name]
    package.loaded[name] = nil
  end
  recording = {}
  local ok, declared, set = pcall(compile.script, path, opts)
  local required = recording
  recording = nil
  if not ok then declared, set = nil, { tostring(declared) } end
  if not declared then
    for name, m in pairs(saved) do package.loaded[name] = m end
    return nil, set
  end
  return declared, set, required
end

-- ---- moving a running job to a new graph ----------------------------------------------

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
function reload.same_spec(a, b) return same_spec(a, b, true) end

-- Matches the state of two graphs (g.stateful tables: id -> { kind, node, operator }):
-- state moves between entries of the same id and kind. Returns
--   moves                  array of { from = old entry, to = new entry }
--   kept, added, dropped   sorted ids of keyed operators (stage and union state moves
--                          too, but is not reported)
--   changed                id -> { from = old kind, to = new kind } for ids whose kind
--                          changed (they are both added and dropped)
--   unnamed                sorted ids of keyed operators without a name() in the new graph
--                          (where[id]: the script line that made each)
function reload.match_state(old, new)
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
-- id -> { kind, node, operator }, as reload.match_state takes them.
function reload.describe_state(set)
  local stages = plan.assign_stages(set)
  local nodes = graph.ordered(set)
  runtime.assign_ids(nodes)
  local list = {}
  for _, node in ipairs(nodes) do
    if runtime.keyed_kind(node.kind) then
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
-- On a worker other than 1, a source worker 1 alone reads is not opened (elsewhere: the
-- nodes, whose routes the caller ends).
local function keep_or_open_sources(j, g, elsewhere)
  local old_routes, kept, opened, routes = {}, {}, {}, {}
  for _, route in ipairs(j.sources) do old_routes[route.id] = route end
  local team = j.team
  local ok, err = pcall(function()
    for _, node in ipairs(g.nodes) do
      if node.kind == "source" and team and team.me ~= 1 and not source.spread(node.spec) then
        elsewhere[#elsewhere + 1] = node
      elseif node.kind == "source" then
        local o = old_routes[node.state_id]
        if o and not kept[o] and same_spec(o.spec, node.spec, true) then
          kept[o] = node
          routes[#routes + 1] = o
        else
          -- the same source changed (a format, say): it goes on where the old one was
          local position = o and o.spec.type == node.spec.type and o.handle.position
            and o.handle.position() or nil
          local route = j:open_source(node, g.routes[node], position)
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
      j.records_out_retired = j.records_out_retired + (s.handle.records or 0)
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
-- sink flushed first) and new ones opened. Returns the match (reload.match_state) with
-- `sources` and `sinks`: { kept = n, opened = {ids}, closed = {ids} }.
function reload.swap(j, set)
  if not (j and j.running) then return nil, "no job is running" end
  if j.stopping or j.sinks_closed then return nil, "the job is shutting down" end
  if j.group then
    -- (its graph has repartition topics put in, and its state moves with partitions)
    return nil, "a job run with --group is not reloaded: stop its members one by one and " ..
      "start them with the new script; each partition's state waits in the changelog topics"
  end
  local old, team = j.graph, j.team
  -- on several workers each swaps at the same cut (Reloader:reload): the new graph's
  -- exchange points replace the old ones, none of which has anything in flight
  local old_points, old_open
  if team then
    old_points, old_open = team.points, team.open
    team.points, team.open = {}, 0
  end
  local old_sinks, kept_sinks, opened_sinks = {}, {}, {}
  for _, s in ipairs(old.sinks) do old_sinks[s.key] = s end
  local g, err = runtime.build(set, j.dl, function(node, key)
    local o = old_sinks[key]
    if o and not kept_sinks[o] and not fresh_sinks[node.spec.type]
      and same_spec(o.node.spec, node.spec, true) then
      kept_sinks[o] = true
      return o.handle
    end
    local h = runtime.open_sink(node, j.dl, nil, j.checkpointing, j.files)
    opened_sinks[#opened_sinks + 1] = { key = key, handle = h,
      fresh = fresh_sinks[node.spec.type] and o ~= nil and fresh_sinks[o.node.spec.type] }
    return h
  end, team, j.make_of)
  local routes, kept_routes, opened
  local elsewhere = {}
  if g then
    routes, kept_routes, opened = keep_or_open_sources(j, g, elsewhere)
    if not routes then
      err = kept_routes
      for _, c in ipairs(g.closers) do pcall(c) end
    end
  end
  if not routes then
    for _, s in ipairs(opened_sinks) do pcall(s.handle.close) end
    if team then team.points, team.open = old_points, old_open end
    return nil, err
  end

  -- From here on nothing fails: the job moves to the new graph.
  local match = reload.match_state(old.stateful, g.stateful)
  for _, m in ipairs(match.moves) do
    if m.from.handover and m.to.adopt then m.to.adopt(m.from.handover())
    else m.to.restore(m.from.snapshot()) end
  end
  for route, node in pairs(kept_routes) do
    local fresh = g.routes[node]
    route.targets, route.st = fresh.targets, fresh.st
    route.spec, route.node, route.id = node.spec, node, node.state_id
    j:wire(route)
    g.routes[node] = route
  end
  local closed_sources, closed_sinks = retire(j, old, kept_routes, kept_sinks)
  inspect.carry_meters(old, g)
  -- a kept source that had already ended has ended for the new graph too
  for route in pairs(kept_routes) do
    if route.ended then runtime.finish_targets(route) end
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
  j:switch_to(g, routes)
  -- a source another worker reads ends here at once, as at the start (runtime.lua)
  for _, node in ipairs(elsewhere) do runtime.finish_targets(g.routes[node]) end
  return match
end

-- ---- on several workers ----------------------------------------------------------------

-- Worker 1 (j's, on several workers): every worker moves to the script's new graph at one
-- cut (exchange.lua: every source paused, nothing in flight). The others compile the
-- script themselves (`path`, with the modules of `modules` afresh and `opts` as
-- reload.compile takes them) and swap first; worker 1, which compiled it as `set`, swaps
-- last, and every source goes on. Waits for it here (handling the messages that come, as
-- the loop would), at most 10 s. Returns the match of worker 1's swap, or nil and why
-- nothing changed. A worker that cannot swap once others have stops the job: their graphs
-- would differ.
function reload.swap_all(j, set, path, modules, opts)
  local team = j.team
  local finished, match, err = false, nil, nil
  local started = team:cut(function()
    local done, m, e = pcall(reload.swap, j, set)
    if not done then m, e = nil, m end
    match, err = m, e
    return { ok = m ~= nil, err = e and tostring(e) }
  end, function(parts)
    finished = true
    local failed = {}
    for w = 1, team.n do
      local p = parts[w]
      if not (p and p.ok) then
        failed[#failed + 1] = format("worker %d: %s", w, tostring(p and p.err or "no answer"))
      end
    end
    if #failed > 0 and #failed < team.n then
      -- some moved, some did not: the job cannot go on as one
      local why = "reload: the workers' graphs would differ (" .. concat(failed, "; ") .. ")"
      team.ep:abort(why)
      j.failed = why
      j:abort()
    end
    if #failed > 0 and not err then err = concat(failed, "; ") end
    team:resume()
  end, { act = "reload", path = path, modules = modules, compile = opts })
  if not started then return nil, "a checkpoint of the workers is being taken; try again" end
  local deadline = host.clock() + 10
  while not finished and host.clock() < deadline do team:wake() end
  if not finished then return nil, "the workers did not all answer within 10 s" end
  return match, err
end

-- A worker other than 1: its part of swap_all, asked by message m (its path, modules and
-- compile options). Returns { ok = true } or { ok = false, err = why }.
function reload.swap_here(j, m)
  local declared, set = reload.compile(m.path, m.modules, m.compile)
  if not declared then return { ok = false, err = concat(set, "; ") } end
  local done, match, err = pcall(reload.swap, j, set)
  if not done then err = match; match = nil end
  if not match then return { ok = false, err = tostring(err) } end
  return { ok = true }
end

-- ---- the line a reload prints ---------------------------------------------------------

local function ids(list, extra)
  if #list == 0 then return "0" end
  local shown = {}
  for i, id in ipairs(list) do shown[i] = extra and extra(id) or id end
  return format("%d (%s)", #list, concat(shown, ", "))
end

-- "kept 2 (counts, totals), added 1 (x), dropped 1 (old)", and the sources and sinks
-- that were opened or closed, from reload.swap's result.
function reload.summary(match)
  local text = format("kept %s, added %s, dropped %s", ids(match.kept), ids(match.added),
    ids(match.dropped, function(id)
      local c = match.changed[id]
      return c and format("%s: %s is now %s", id, c.from, c.to) or id
    end))
  for _, what in ipairs({ "sources", "sinks" }) do
    local m = match[what]
    if m and #m.opened > 0 then text = text .. format("; opened %s", concat(m.opened, ", ")) end
    if m and #m.closed > 0 then text = text .. format("; closed %s", concat(m.closed, ", ")) end
  end
  return text
end

-- The warning about stateful operators without a name(): their id is their path from the
-- source, so an edit that moves them loses their state.
local function warn_unnamed(match)
  if #match.unnamed == 0 then return end
  local list = {}
  for i, id in ipairs(match.unnamed) do
    list[i] = format("%s (%s)", match.where[id] or "?", id)
  end
  say("sluice: warning: stateful operators without a name() keep their state only while " ..
    "their path from the source is unchanged; name them with :name(\"...\") to keep it " ..
    "across any edit: %s", concat(list, ", "))
end

-- ---- reloading --------------------------------------------------------------------------

-- A reloader: what reloads one running job, from the script at `path`.
local Reloader = {}
Reloader.__index = Reloader

-- The files of the job: the script and the modules it required.
function Reloader:files()
  local list = { self.script }
  local names = {}
  for name in pairs(self.modules) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do list[#list + 1] = self.modules[name] end
  return list
end

-- Notes the modules the job's script required now, and the content of each file.
function Reloader:remember(required)
  self.modules = required or {}
  self.contents = {}
  for _, path in ipairs(self:files()) do self.contents[path] = reload.read(path) end
end

-- Reloads the job's script now (from a loop callback: between two batches). `why` names
-- what asked ("SIGHUP", "job:reload()", "--watch"). Returns true and the summary line, or
-- nil and why nothing changed; says either on stderr.
function Reloader:reload(why)
  local script = self.script
  local started = host.clock()
  local declared, set, required = reload.compile(script, self.modules, self.compile_opts)
  if not declared then
    for _, e in ipairs(set) do say("%s", e) end
    say("sluice: reload (%s) of %s failed; the job runs on unchanged", why, script)
    return nil, concat(set, "\n")
  end
  local match, err
  if self.job.team then
    match, err = reload.swap_all(self.job, set, self.script, self.modules, self.compile_opts)
  else
    local done
    done, match, err = pcall(reload.swap, self.job, set)
    if not done then match, err = nil, match end
  end
  if not match then
    say("sluice: reload (%s) of %s failed: %s; the job runs on unchanged", why, script,
      tostring(err))
    return nil, tostring(err)
  end
  self:remember(required)
  local line = format("reloaded %s in %.1f ms: %s", script:match("[^/]+$") or script,
    (host.clock() - started) * 1000, reload.summary(match))
  say("sluice: %s", line)
  warn_unnamed(match)
  if self.watcher then
    -- a module in a directory that cannot be watched must not stop the job
    local ok, werr = pcall(self.watch, self)
    if not ok then say("sluice: --watch: %s", tostring(werr)) end
  end
  return true, line
end

-- Watches the job's files (again: the modules may have changed); a change whose content
-- differs from what the job runs reloads it.
function Reloader:watch()
  if self.watcher then self.watcher:close() end
  self.watcher = host.core.watch { paths = self:files(), on_change = function()
    for _, path in ipairs(self:files()) do
      if reload.read(path) ~= self.contents[path] then
        self:reload("--watch")
        return
      end
    end
  end }
end

-- Stops watching and listening for SIGHUP (the job has ended).
function Reloader:stop()
  if self.watcher then self.watcher:close(); self.watcher = nil end
  if self.signal then self.signal:close(); self.signal = nil end
end

-- Sets up reloading for `job`, which runs the script at `path` (compiled by reload.compile,
-- which gave `required`): SIGHUP always, file watching with opts.watch; opts.compile is
-- what reload.compile was given (a reload compiles with the same arguments and params).
-- Returns the reloader; reloader:stop() when the job has ended.
function reload.start(job, path, required, opts)
  local self = setmetatable({ job = job, script = path, compile_opts = opts and opts.compile },
    Reloader)
  self:remember(required)
  if host.core.signal then
    self.signal = host.core.signal("SIGHUP", function() self:reload("SIGHUP") end)
  end
  if opts and opts.watch then self:watch() end
  return self
end

return reload
