-- explore.lua -- exploring a bounded stream without a job: stream:collect(), :show(n) and
-- :graph(), in the REPL and in specs.
--
-- The DSL (stream.lua) only describes streams; running one is the runtime's. This module,
-- loaded by init.lua, gives streams the methods that run what feeds them, so the layers
-- stay one way: the DSL never requires the runtime.
local graph = require "sluice.graph"
local plan = require "sluice.plan"
local format = require "sluice.format"
local stream = require "sluice.stream"
local sink = require "sluice.sink"
local runtime = require "sluice.runtime"

local Stream = stream.Stream

local explore = {}

-- Runs the graph that feeds stream `s` and returns the array of the records it carries.
function explore.collect(s)
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
  local declared = graph.current()
  local ok, err = runtime.run(graph.ancestors(targets),
    { dead_letter = declared and declared.dead_letter })
  -- the collect node served this call only: take it out of the job's graph again
  node.detached = true
  local list = s.node.consumers
  for i = #list, 1, -1 do
    if list[i].node == node then table.remove(list, i) end
  end
  if not ok then error(err, 0) end
  return spec.collected
end

-- Runs the graph up to this stream and returns the array of its records.
function Stream:collect()
  return explore.collect(self)
end

-- Prints the first n records (default 10) as an aligned table; returns nothing.
function Stream:show(n)
  n = n or 10
  local records = explore.collect(self:take(n))
  io.stdout:write(format.table(records), "\n")
end

-- The operator graph that feeds this stream: an indented tree, or fmt "text" (a table),
-- "dot" or "mermaid".
function Stream:graph(fmt)
  local set = graph.ancestors({ self.node })
  plan.assign_stages(set)
  if fmt == nil then return format.graph(set) end
  return graph.render(set, fmt)
end

return explore
