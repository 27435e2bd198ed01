-- graph.lua -- the operator graph a script builds: nodes, edges, and the job they belong to.
--
-- A node is one operator (a source, map, union, sink, ...). Its inputs are {node, port}
-- pairs (port 2 is the "rest" output of a partition); its consumers are the nodes that read
-- it. The graph is a DAG: streams fan out, union merges, partition splits. Every node is
-- registered with the current job, so `sluice run` can find all streams that reach a sink.
local format, concat = string.format, table.concat

local graph = {}

local job                      -- the job being built: { nodes = {...}, dead_letter = sink }

-- Starts a new, empty job; nodes created from now on belong to it. Returns it.
function graph.begin()
  job = { nodes = {}, dead_letter = nil }
  return job
end

function graph.current() return job end

-- Creates a node of `kind` reading from `inputs` (array of {node=, port=}) and registers it.
function graph.node(kind, inputs, fields)
  local node = fields or {}
  node.kind = kind
  node.inputs = inputs
  node.consumers = {}
  node.id = #job.nodes + 1
  job.nodes[node.id] = node
  for index, input in ipairs(inputs) do
    local list = input.node.consumers
    list[#list + 1] = { node = node, port = input.port, index = index }
  end
  return node
end

-- Adds one more input to an existing node (a sink fed by several streams).
function graph.connect(node, input)
  node.inputs[#node.inputs + 1] = input
  local list = input.node.consumers
  list[#list + 1] = { node = node, port = input.port, index = #node.inputs }
end

-- The set of nodes from which any of `targets` can be reached, targets included.
function graph.ancestors(targets)
  local seen, stack = {}, {}
  for _, t in ipairs(targets) do stack[#stack + 1] = t end
  while #stack > 0 do
    local node = table.remove(stack)
    if not seen[node] then
      seen[node] = true
      for _, input in ipairs(node.inputs) do stack[#stack + 1] = input.node end
    end
  end
  return seen
end

-- The nodes of `set` in topological order (by id, which creation order already makes
-- topological: a node is created after its inputs).
function graph.ordered(set)
  local list = {}
  for node in pairs(set) do list[#list + 1] = node end
  table.sort(list, function(a, b) return a.id < b.id end)
  return list
end

-- A short human label: "map", "filter big", "source.file bids.jsonl".
function graph.label(node)
  local label = node.label or node.kind
  if node.name then label = format("%s %q", label, node.name) end
  return label
end

local function input_ids(node, set)
  local ids = {}
  for _, input in ipairs(node.inputs) do
    if not set or set[input.node] then
      ids[#ids + 1] = input.port == 1 and tostring(input.node.id)
        or format("%d.%d", input.node.id, input.port)
    end
  end
  return ids
end

-- Renders the nodes of `set` as text, dot or mermaid.
function graph.render(set, fmt)
  local nodes = graph.ordered(set)
  local out = {}
  if fmt == "dot" then
    out[1] = "digraph sluice {"
    out[2] = "  rankdir=LR;"
    out[3] = '  node [shape=box, fontname="Helvetica"];'
    for _, n in ipairs(nodes) do
      out[#out + 1] = format('  n%d [label="%s\\n%s"];', n.id,
        (graph.label(n):gsub("\\", "\\\\"):gsub('"', '\\"')), n.where or "")
    end
    for _, n in ipairs(nodes) do
      for _, input in ipairs(n.inputs) do
        if set[input.node] then
          local attr = input.node.kind == "partition"
            and (input.port == 1 and ' [label="true"]' or ' [label="rest"]') or ""
          out[#out + 1] = format("  n%d -> n%d%s;", input.node.id, n.id, attr)
        end
      end
    end
    out[#out + 1] = "}"
  elseif fmt == "mermaid" then
    out[1] = "flowchart LR"
    for _, n in ipairs(nodes) do
      out[#out + 1] = format('  n%d["%s"]', n.id, graph.label(n):gsub('"', "#quot;"))
    end
    for _, n in ipairs(nodes) do
      for _, input in ipairs(n.inputs) do
        if set[input.node] then
          local arrow = input.node.kind == "partition"
            and (input.port == 1 and " -->|true| " or " -->|rest| ") or " --> "
          out[#out + 1] = format("  n%d%sn%d", input.node.id, arrow, n.id)
        end
      end
    end
  else
    for _, n in ipairs(nodes) do
      local ids = input_ids(n, set)
      local from = #ids > 0 and ("<- " .. concat(ids, ", ")) or ""
      local stage = n.stage and format("[stage %d]", n.stage) or ""
      out[#out + 1] = format("%3d  %-36s %-12s %-10s %s", n.id, graph.label(n), from, stage,
        n.where or ""):gsub("%s+$", "")
    end
  end
  return concat(out, "\n")
end

return graph
