-- compile.lua -- a script into the graph it describes.
--
-- compile.script runs a pipeline script in a fresh global environment (reading through to
-- _G), so that a reload starts from the same state as the first run, and gathers every
-- mistake it can find before any record flows: builder misuse (report.lua, at the user's
-- line), an error the script raised, streams that reach no sink, windows that compute
-- nothing.
local graph = require "sluice.graph"
local report = require "sluice.report"

local format = string.format

local compile = {}

-- Streams that lead nowhere: a node (or a partition port) no sink reads.
local function dead_ends(declared)
  local found = {}
  for _, node in ipairs(declared.nodes) do
    if node.kind == "window" and not node.computes then
      found[#found + 1] = format("%s: this window computes nothing (call aggregate, reduce " ..
        "or apply on it)", node.where or "?")
    elseif node.kind ~= "sink" and not node.detached then
      -- a window's second port (late records) may stay unread: they are counted and dropped
      local ports = node.kind == "partition" and 2 or 1
      for port = 1, ports do
        local used = false
        for _, c in ipairs(node.consumers) do
          if c.port == port and not c.node.detached then used = true end
        end
        if not used then
          local what = ports == 2 and (port == 1 and "the first output of partition()"
            or "the second output of partition()") or "this stream"
          found[#found + 1] = format("%s: %s reaches no sink (end it with :sink(...))",
            node.where or "?", what)
        end
      end
    end
  end
  return found
end

-- Loads and runs the script at `path` to build its graph. Returns what it declared
-- (graph.begin(): its nodes and its dead letter sink) and the set of nodes to run, or nil
-- and the array of every mistake found.
function compile.script(path)
  local declared = graph.begin()
  local chunk, err = loadfile(path)
  if not chunk then
    if not io.open(path, "r") then return nil, { format("%s: cannot open the script", path) } end
    return nil, { err }
  end
  setfenv(chunk, setmetatable({}, { __index = _G }))
  report.collect()
  local ok, rerr = xpcall(chunk, function(e)
    if type(e) == "string" and not e:find(path, 1, true) then
      e = report.where() .. ": " .. e
    end
    return e
  end)
  local errors = report.collected()
  if not ok then errors[#errors + 1] = tostring(rerr) end
  for _, e in ipairs(dead_ends(declared)) do errors[#errors + 1] = e end
  local sinks = {}
  for _, node in ipairs(declared.nodes) do
    if node.kind == "sink" and not node.detached then sinks[#sinks + 1] = node end
  end
  if #errors == 0 and #sinks == 0 then
    errors[1] = format("%s: the script builds no stream that reaches a sink; nothing to run", path)
  end
  if #errors > 0 then return nil, errors end
  return declared, graph.ancestors(sinks)
end

return compile
