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

-- ---- pictures --------------------------------------------------------------------------

-- A configured duration as a script would spell it: "1m", "10s", "1.5s", "250ms".
local function ms_text(ms)
  if ms < 0 then return "-" .. ms_text(-ms) end
  for _, u in ipairs({ { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" } }) do
    if ms >= u[1] and ms % u[1] == 0 then return format("%d%s", ms / u[1], u[2]) end
  end
  if ms >= 1000 then return format("%gs", ms / 1000) end
  return format("%gms", ms)
end

local function count_text(n)
  local s = tostring(math.floor(n))
  local k
  repeat s, k = s:gsub("^(%d+)(%d%d%d)", "%1,%2") until k == 0
  return s
end

-- "requests = count()", "p99_ms = quantile(ms, 0.99)", "errors = sum(fn)".
local function aggregate_lines(entries)
  local lines = {}
  for i, e in ipairs(entries or {}) do
    local a = e.agg
    local args = {}
    if a.field then args[1] = a.field elseif a.fn then args[1] = "fn" end
    if a.q then args[#args + 1] = tostring(a.q) end
    lines[i] = format("%s = %s(%s)", e.name, a.aggregate, concat(args, ", "))
  end
  return lines
end

local function key_text(node)
  if node.key_field then return "key " .. node.key_field end
  if node.key_fn then return "key fn" end
  return "all records"
end

local function assigner_text(a)
  if a.assigner == "tumbling" then return "tumbling " .. ms_text(a.size)
  elseif a.assigner == "sliding" then
    return format("sliding %s every %s", ms_text(a.size), ms_text(a.slide))
  elseif a.assigner == "session" then return "session, gap " .. ms_text(a.gap)
  end
  return format("count window of %s", count_text(a.n or 0))
end

-- What a picture shows of a node: its title ("#4 window" and its name), the lines of its
-- essentials (a source's input, a window's assigner and key and aggregates, a sink's
-- format and path), where the script made it, and its class (source, sink, keyed, other).
function graph.describe(node)
  local kind, spec = node.kind, node.spec or {}
  local head, lines, class = node.kind, {}, "op"
  if kind == "source" then
    class = "source"
    head = "source." .. tostring(spec.type)
    local t = spec.type
    if t == "values" then lines[1] = count_text(#(spec.array or {})) .. " values"
    elseif t == "file" then
      lines[1] = tostring(spec.path)
      lines[2] = "format " .. tostring(spec.format or "lines") .. (spec.follow and ", follow" or "")
    elseif t == "stdin" then lines[1] = "format " .. tostring(spec.format or "lines")
    elseif t == "generator" then
      lines[1] = spec.count and ("count " .. count_text(spec.count)) or "unbounded"
      if spec.rate then lines[#lines + 1] = format("%s records/s", count_text(spec.rate)) end
    elseif t == "tcp" or t == "udp" then
      lines[1] = "listen " .. tostring(spec.listen)
      lines[2] = "format " .. tostring(spec.format or "lines")
    elseif t == "nexmark" then
      lines[1] = spec.events and (count_text(spec.events) .. " events") or "unbounded"
      lines[2] = format("%s events/s, seed %s%s", count_text(spec.rate or 0), tostring(spec.seed),
        spec.typed and ", typed" or "")
    end
  elseif kind == "sink" then
    class = "sink"
    head = "sink." .. tostring(spec.type)
    if spec.path then lines[1] = tostring(spec.path) end
    if spec.connect then lines[#lines + 1] = "connect " .. tostring(spec.connect) end
    if spec.format then lines[#lines + 1] = "format " .. spec.format end
    if spec.columns then lines[#lines + 1] = "columns " .. concat(spec.columns, ", ") end
  elseif kind == "window" then
    class = "keyed"
    head = node.key_fn and "window" or "window_all"
    lines[1] = assigner_text(node.assigner)
    lines[2] = key_text(node)
    if (node.lateness or 0) > 0 then lines[#lines + 1] = "allowed lateness " .. ms_text(node.lateness) end
    if node.early_every then lines[#lines + 1] = "early results every " .. ms_text(node.early_every) end
    local what = node.computes or "?"
    if what == "aggregate" then
      for _, l in ipairs(aggregate_lines(node.aggregates)) do lines[#lines + 1] = l end
    else
      lines[#lines + 1] = what
    end
  elseif kind == "rolling_aggregate" or kind == "rolling_reduce" or kind == "process" then
    class = "keyed"
    head = kind == "process" and "process" or kind == "rolling_reduce" and "reduce" or "aggregate"
    lines[1] = key_text(node)
    for _, l in ipairs(aggregate_lines(node.aggregates)) do lines[#lines + 1] = l end
  elseif kind == "key_by" then
    lines[1] = key_text({ key_field = node.field, key_fn = true })
  elseif kind == "timestamp" then
    lines[1] = "event time " .. (node.field or "fn")
    if (node.ooo or 0) > 0 then lines[#lines + 1] = "out of order " .. ms_text(node.ooo) end
    if node.idle then lines[#lines + 1] = "idle after " .. ms_text(node.idle) end
  elseif kind == "join" then
    class = "keyed"
    head = node.outer and "left_join" or "join"
    if node.how == "window" then lines[1] = assigner_text(node.assigner)
    elseif node.how == "between" then
      lines[1] = format("between %s and %s", ms_text(node.lower or 0), ms_text(node.upper or 0))
    else
      lines[1] = "ttl " .. ms_text(node.ttl or 0)
    end
    lines[2] = "left " .. key_text(node.left or {}) .. ", right " .. key_text(node.right or {})
    lines[3] = node.computes
  elseif kind == "take" then
    head = "take " .. tostring(node.n)
  elseif kind == "union" then
    head = format("union of %d", #node.inputs)
  end
  local title = format("#%d %s", node.id, head)
  if node.name then title = format("%s %q", title, node.name) end
  return { title = title, lines = lines, where = node.where, class = class }
end

-- The input edges of node n within set: { from = node, port = 1|2, label = nil|"true"|
-- "rest"|"late" }.
local function edges_into(n, set)
  local list = {}
  for _, input in ipairs(n.inputs) do
    if set[input.node] then
      local label
      if input.node.kind == "partition" then label = input.port == 1 and "true" or "rest"
      elseif input.port == 2 then label = "late"
      elseif n.kind == "join" then label = #list == 0 and "left" or "right" end
      list[#list + 1] = { from = input.node, port = input.port, label = label }
    end
  end
  return list
end

-- A line over `width` characters broken after its commas (a sink's columns, say).
local function wrap(line, width)
  if #line <= width then return { line } end
  local out, cur = {}, ""
  for piece in line:gmatch("[^,]+,?") do
    if #cur > 0 and #cur + #piece > width then
      out[#out + 1] = cur
      cur = piece:gsub("^%s+", "")
    else
      cur = cur .. piece
    end
  end
  if #cur > 0 then out[#out + 1] = cur end
  return out
end

-- The essentials of a node, wrapped for a box.
local function box_lines(d)
  local lines = {}
  for _, l in ipairs(d.lines) do
    for _, w in ipairs(wrap(l, 40)) do lines[#lines + 1] = w end
  end
  return lines
end

local function html(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

local DOT_CLASS = {
  source = 'fillcolor="#e7f5ec", color="#2f855a"',
  sink = 'fillcolor="#e8f0fc", color="#2c5aa0"',
  keyed = 'fillcolor="#fdf1e3", color="#b7611d"',
  op = 'fillcolor="#f5f7fa", color="#5a6675"',
}

-- dot: top-down, each node a box with its title, essentials and script line; sources,
-- sinks and keyed operators in colours; a fused stage of several operators in a dashed
-- frame; partition and late edges labelled.
local function render_dot(nodes, set)
  local out = {
    "digraph sluice {",
    '  graph [rankdir=TB, fontname="Helvetica", fontsize=10, nodesep=0.4, ranksep=0.35, pad=0.2];',
    '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12, ' ..
      'penwidth=1.2, margin="0.2,0.12"];',
    '  edge [color="#5a6675", arrowsize=0.7, fontname="Helvetica", fontsize=10, ' ..
      'fontcolor="#5a6675"];',
  }
  local function node_line(n, indent)
    local d = graph.describe(n)
    local parts = { "<b>" .. html(d.title) .. "</b>" }
    for _, l in ipairs(box_lines(d)) do parts[#parts + 1] = html(l) end
    if d.where then
      parts[#parts + 1] = '<font point-size="9" color="#7a8594">' .. html(d.where) .. "</font>"
    end
    return format("%sn%d [label=<%s>, %s];", indent, n.id, concat(parts, "<br/>"),
      DOT_CLASS[d.class])
  end
  local stages, in_stage = {}, {}
  for _, n in ipairs(nodes) do
    if n.stage then
      stages[n.stage] = stages[n.stage] or {}
      table.insert(stages[n.stage], n)
    end
  end
  local stage_ids = {}
  for id, list in pairs(stages) do
    if #list > 1 then
      stage_ids[#stage_ids + 1] = id
      for _, n in ipairs(list) do in_stage[n] = true end
    end
  end
  table.sort(stage_ids)
  for _, n in ipairs(nodes) do
    if not in_stage[n] then out[#out + 1] = node_line(n, "  ") end
  end
  for _, id in ipairs(stage_ids) do
    out[#out + 1] = format("  subgraph cluster_stage%d {", id)
    out[#out + 1] = format('    label="stage %d: one fused loop"; labeljust=l; style="dashed,rounded"; ' ..
      'color="#a3adb8"; fontcolor="#7a8594";', id)
    for _, n in ipairs(stages[id]) do out[#out + 1] = node_line(n, "    ") end
    out[#out + 1] = "  }"
  end
  for _, n in ipairs(nodes) do
    for _, e in ipairs(edges_into(n, set)) do
      local attr = ""
      if e.label == "late" then attr = ' [label="late", style=dashed]'
      elseif e.label then attr = format(' [label="%s"]', e.label) end
      out[#out + 1] = format("  n%d -> n%d%s;", e.from.id, n.id, attr)
    end
  end
  out[#out + 1] = "}"
  return concat(out, "\n")
end

-- mermaid: a top-down flowchart, the same boxes (sources and sinks rounded), classes for
-- the colours.
local function render_mermaid(nodes, set)
  local out = { "flowchart TD" }
  local classes = { source = {}, sink = {}, keyed = {} }
  local function label(s) return (tostring(s):gsub('"', "#quot;"):gsub("<", "#lt;"):gsub(">", "#gt;")) end
  for _, n in ipairs(nodes) do
    local d = graph.describe(n)
    local parts = { "<b>" .. label(d.title) .. "</b>" }
    for _, l in ipairs(box_lines(d)) do parts[#parts + 1] = label(l) end
    if d.where then parts[#parts + 1] = "<small>" .. label(d.where) .. "</small>" end
    local body = '"' .. concat(parts, "<br/>") .. '"'
    local open, close = "[", "]"
    if d.class == "source" or d.class == "sink" then open, close = "([", "])" end
    out[#out + 1] = format("  n%d%s%s%s", n.id, open, body, close)
    if classes[d.class] then table.insert(classes[d.class], "n" .. n.id) end
  end
  for _, n in ipairs(nodes) do
    for _, e in ipairs(edges_into(n, set)) do
      local arrow = e.label == "late" and " -.->|late| " or e.label and (" -->|" .. e.label .. "| ")
        or " --> "
      out[#out + 1] = format("  n%d%sn%d", e.from.id, arrow, n.id)
    end
  end
  out[#out + 1] = "  classDef source fill:#e7f5ec,stroke:#2f855a"
  out[#out + 1] = "  classDef sink fill:#e8f0fc,stroke:#2c5aa0"
  out[#out + 1] = "  classDef keyed fill:#fdf1e3,stroke:#b7611d"
  for _, c in ipairs({ "source", "sink", "keyed" }) do
    if #classes[c] > 0 then out[#out + 1] = format("  class %s %s", concat(classes[c], ","), c) end
  end
  return concat(out, "\n")
end

-- text: a line per node (id, title, its inputs, its fused stage, its script line), its
-- essentials on the lines under it.
local function render_text(nodes, set)
  local out = {}
  for _, n in ipairs(nodes) do
    local d = graph.describe(n)
    local from = {}
    for _, e in ipairs(edges_into(n, set)) do
      from[#from + 1] = "#" .. e.from.id .. (e.label and (" " .. e.label) or "")
    end
    local title = d.title:gsub("^#%d+ ", "")
    out[#out + 1] = (format("%-5s %-32s %-14s %-9s %s", "#" .. n.id, title,
      #from > 0 and ("<- " .. concat(from, ", ")) or "",
      n.stage and format("stage %d", n.stage) or "", n.where or ""):gsub("%s+$", ""))
    for _, l in ipairs(d.lines) do out[#out + 1] = "        " .. l end
  end
  return concat(out, "\n")
end

-- Renders the nodes of `set` as text, dot or mermaid.
function graph.render(set, fmt)
  local nodes = graph.ordered(set)
  if fmt == "dot" then return render_dot(nodes, set) end
  if fmt == "mermaid" then return render_mermaid(nodes, set) end
  return render_text(nodes, set)
end

return graph
