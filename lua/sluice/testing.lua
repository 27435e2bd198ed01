-- testing.lua -- sl.testing: a pipeline script run inside a spec, on records the spec gives.
--
-- testing.run(path, opts) compiles the script as `sluice run` does, replaces the sources
-- the spec names by the records it gives (no file, socket or stdin is opened), runs the
-- job to its end, and returns what each named operator and each sink emitted: the spec
-- asserts on that with busted. Sinks that write somewhere (stdout, file, tcp) are not
-- opened: what reaches them is only recorded; fn, collect and null sinks run as written.
local graph = require "sluice.graph"
local sink = require "sluice.sink"
local compile = require "sluice.compile"
local runtime = require "sluice.runtime"

local format, concat, type = string.format, table.concat, type

local testing = {}

-- Sinks that only hold or hand records to the script's own code: they run in a test.
local local_sinks = { fn = true, collect = true, null = true }

-- Why a source cannot run in a test as it is (it would wait for the world), or nil.
local function needs_input(spec)
  local t = spec.type
  if t == "tcp" or t == "udp" then return "listens on " .. tostring(spec.listen) end
  if t == "stdin" then return "reads stdin" end
  if t == "file" and spec.follow then return "follows a file and never ends" end
  if t == "generator" and not spec.count then return "generates records without end" end
  if t == "nexmark" and not spec.events then return "generates events without end" end
  return nil
end

-- The names a spec may give a source's records under: its name(), its label
-- ("source.file in.jsonl") and, for a file, its path.
local function source_names(node)
  local names = {}
  if node.name then names[#names + 1] = node.name end
  if node.label then names[#names + 1] = node.label end
  if node.spec.type == "file" then names[#names + 1] = node.spec.path end
  return names
end

-- Adds a collect sink reading `inputs` (an array of {node=, port=}) to the script's graph;
-- returns the node and its spec, whose records() are what it received.
local function collector(inputs, label)
  local spec = sink.collect()
  local copy = {}
  for i, input in ipairs(inputs) do copy[i] = { node = input.node, port = input.port } end
  local node = graph.node("sink", copy, { spec = spec, label = label, transient = true })
  return node, spec
end

-- testing.run's work; raises messages without a position.
local function run_script(path, opts)
  local declared, set = compile.script(path, { args = opts.args, params = opts.params })
  if not declared then error(concat(set, "\n"), 0) end
  local inputs, nodes = opts.inputs or {}, graph.ordered(set)
  -- every input must name a source
  local given, known = {}, {}
  for _, node in ipairs(nodes) do
    if node.kind == "source" then
      for _, name in ipairs(source_names(node)) do
        known[#known + 1], known[name] = format("%q", name), node
      end
    end
  end
  for name, records in pairs(inputs) do
    local node = known[name]
    if not node then
      error(format("testing.run(): no source of %s is called %q (its sources: %s)", path,
        tostring(name), concat(known, ", ")), 0)
    end
    given[node] = records
  end
  local taps, targets, seen_labels = {}, {}, {}
  for _, node in ipairs(nodes) do
    if node.kind == "source" then
      local records = given[node]
      if records ~= nil then
        if type(records) ~= "table" then
          error(format("testing.run(): inputs for %s: expected an array of records, got %s",
            node.label, type(records)), 0)
        end
        node.spec = { type = "values", array = records, label = node.label,
          where = node.spec.where }
      elseif needs_input(node.spec) then
        error(format("testing.run(): %s (%s) %s; give its records in inputs[%q]", node.label,
          node.where or "?", needs_input(node.spec), node.name or node.label), 0)
      end
    elseif node.kind == "sink" then
      local key = tostring(node.label or node.spec.type)
      seen_labels[key] = (seen_labels[key] or 0) + 1
      if seen_labels[key] > 1 then key = key .. "#" .. seen_labels[key] end
      local c, spec = collector(node.inputs, key)
      taps[key], targets[#targets + 1] = spec, c
      if local_sinks[node.spec.type] then targets[#targets + 1] = node end
    end
    if node.name and node.kind ~= "sink" then
      local c, spec = collector({ { node = node, port = 1 } }, node.name)
      taps[node.name], targets[#targets + 1] = spec, c
    end
  end
  local dead = sink.collect()
  local ok, err = runtime.run(graph.ancestors(targets), { dead_letter = dead,
    batch_size = opts.batch_size })
  if not ok then error(err, 0) end
  local out = {}
  for name, spec in pairs(taps) do out[name] = spec:records() end
  return out, dead:records()
end

-- Runs the pipeline script at `path` and returns what it emitted: a table from name to the
-- array of records, with an entry for every named operator (its output; a partition's
-- first one) and every sink (by its label, "sink.stdout", "sink.file out.jsonl"; a later
-- sink with the same label gets "#2", "#3"); and the array of its dead letters (each
-- { reason =, record =, at = ... }), which go nowhere else. opts (all optional):
--   inputs      name -> array of records: the source of that name (its :name(), its label
--               or a file's path) gives these records instead of reading anything
--   params      name -> value, for sl.param (as `--set name=value`)
--   args        the script's arguments (`arg`, `...`)
--   batch_size  records per batch (default as for sluice run)
-- A mistake in the script, an input no source takes, or a source that would wait for the
-- world (a socket, stdin, an endless generator) without inputs raises at the caller.
function testing.run(path, opts)
  if type(path) ~= "string" then
    error(format("testing.run(): expected the path of a script, got %s", type(path)), 2)
  end
  local ok, out, dead = pcall(run_script, path, opts or {})
  -- the spec's own streams from here on are not the script's (its dead letter sink, say)
  graph.begin()
  if not ok then error(out, 2) end
  return out, dead
end

return testing
